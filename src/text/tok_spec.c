/* ptq_tok_spec: freeing and copying (the spec itself is described in tok_spec.h). */
#include "text/tok_spec.h"

#include <stdlib.h>
#include <string.h>

void ptq_tok_spec_free(ptq_tok_spec *s) {
    if (!s) return;
    for (int i = 0; s->tokens && i < s->n_tokens; i++) free(s->tokens[i]);
    for (int i = 0; s->merges && i < s->n_merges; i++) free(s->merges[i]);
    free(s->tokens);
    free(s->scores);
    free(s->types);
    free(s->attrs);
    free(s->merges);
    memset(s, 0, sizeof *s);
}

static void *dup_bytes(const void *p, size_t n, int *fail) {
    if (!p) return NULL;
    void *q = malloc(n ? n : 1);
    if (!q) {
        *fail = 1;
        return NULL;
    }
    memcpy(q, p, n);
    return q;
}

static char **dup_strings(char *const *v, int n, int *fail) {
    if (!v) return NULL;
    char **d = calloc(n > 0 ? (size_t)n : 1, sizeof *d);
    if (!d) {
        *fail = 1;
        return NULL;
    }
    for (int i = 0; i < n; i++) d[i] = v[i] ? dup_bytes(v[i], strlen(v[i]) + 1, fail) : NULL;
    return d;
}

int ptq_tok_spec_copy(ptq_tok_spec *dst, const ptq_tok_spec *src) {
    int fail = 0;
    *dst = *src;
    size_t n = src->n_tokens > 0 ? (size_t)src->n_tokens : 0;
    dst->tokens = dup_strings(src->tokens, src->n_tokens, &fail);
    dst->merges = dup_strings(src->merges, src->n_merges, &fail);
    dst->scores = dup_bytes(src->scores, n * sizeof *src->scores, &fail);
    dst->types = dup_bytes(src->types, n * sizeof *src->types, &fail);
    dst->attrs = dup_bytes(src->attrs, n * sizeof *src->attrs, &fail);
    if (fail) {
        ptq_tok_spec_free(dst);
        return -1;
    }
    return 0;
}
