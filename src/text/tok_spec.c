/* ptq_tok_spec: freeing (the spec itself is described in tok_spec.h). */
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
    free(s->merges);
    memset(s, 0, sizeof *s);
}
