/* GGUF tokenizer.ggml.* metadata -> ptq_tok_spec. The defaults for absent keys are llama.cpp's
 * (llama_vocab::impl::load), so that a GGUF tokenizes in ptq as it does in llama.cpp. */
#include "text/gguf_vocab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define K "tokenizer.ggml."

/* Byte-level BPE pre-tokenizers for which llama.cpp adds BOS and lets a pre-token that is itself a token
 * skip the merges (Llama 3 and the models built on its tokenizer). */
static const char *const k_llama3_like[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                                            "midm-2.0", "lfm2", "jina-v5-nano", "tekken"};

static int in_list(const char *s, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

/* An optional value: PTQ_OK untouched when the key is absent. */
static ptq_status opt_bool(const ptq_gguf *g, const char *key, int *v, ptq_error *err) {
    return ptq_gguf_find_kv(g, key) ? ptq_gguf_get_bool(g, key, v, err) : PTQ_OK;
}

/* A special-token id: absent keeps the default (disabled when out of range, as llama.cpp does); a present id
 * must name a token. */
static ptq_status opt_id(const ptq_gguf *g, const char *key, int n_tokens, int *id, ptq_error *err) {
    if (*id >= n_tokens) *id = -1;
    if (!ptq_gguf_find_kv(g, key)) return PTQ_OK;
    uint32_t v;
    PTQ_TRY(ptq_gguf_get_u32(g, key, &v, err));
    if (v >= (uint32_t)n_tokens)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: %s is %u, but the vocabulary has %d tokens", g->path, key, v,
                        n_tokens);
    *id = (int)v;
    return PTQ_OK;
}

static int cmp_tok_ptr(const void *a, const void *b) {
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* Tokens must be unique: llama.cpp maps text -> id, and a repeated text would make one id unreachable. */
static ptq_status check_unique(const ptq_gguf *g, const ptq_tok_spec *s, ptq_error *err) {
    char ***order = malloc((size_t)(s->n_tokens ? s->n_tokens : 1) * sizeof *order);
    if (!order) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot check the vocabulary", g->path);
    for (int i = 0; i < s->n_tokens; i++) order[i] = &s->tokens[i];
    qsort(order, (size_t)s->n_tokens, sizeof *order, cmp_tok_ptr);
    ptq_status st = PTQ_OK;
    for (int i = 1; i < s->n_tokens; i++)
        if (strcmp(*order[i - 1], *order[i]) == 0) {
            int a = (int)(order[i - 1] - s->tokens), b = (int)(order[i] - s->tokens);
            char t[96];
            ptq_snippet(t, sizeof t, *order[i], strlen(*order[i]));
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: " K "tokens holds \"%s\" twice (ids %d and %d)", g->path, t,
                          a < b ? a : b, a < b ? b : a);
            break;
        }
    free(order);
    return st;
}

static ptq_status fill(const ptq_gguf *g, ptq_tok_spec *s, ptq_error *err) {
    char *model = NULL;
    if (!ptq_gguf_find_kv(g, K "model"))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: no tokenizer in this GGUF file (no key " K "model)", g->path);
    PTQ_TRY(ptq_gguf_get_string(g, K "model", &model, err));
    if (strcmp(model, "no_vocab") == 0 || strcmp(model, "none") == 0) { /* llama.cpp's names for no tokenizer */
        free(model);
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: no tokenizer in this GGUF file (" K "model is \"no_vocab\")",
                        g->path);
    }
    if (strcmp(model, "llama") == 0) {
        s->model = PTQ_TOK_SPM;
    } else if (strcmp(model, "gpt2") == 0) {
        s->model = PTQ_TOK_BYTE_BPE;
    } else {
        char m[64];
        ptq_snippet(m, sizeof m, model, strlen(model));
        free(model);
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: " K "model is \"%s\"; ptq reads \"llama\" (SentencePiece-style BPE) and \"gpt2\" "
                        "(byte-level BPE) tokenizers",
                        g->path, m);
    }
    free(model);

    if (ptq_gguf_find_kv(g, K "pre")) {
        char *pre = NULL;
        PTQ_TRY(ptq_gguf_get_string(g, K "pre", &pre, err));
        size_t n = strlen(pre);
        if (n >= sizeof s->pre) {
            free(pre);
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: " K "pre is %zu bytes long (at most %zu)", g->path, n,
                            sizeof s->pre - 1);
        }
        memcpy(s->pre, pre, n + 1);
        free(pre);
    }

    if (!ptq_gguf_find_kv(g, K "tokens"))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: the tokenizer has no vocabulary (no key " K "tokens)", g->path);
    PTQ_TRY(ptq_gguf_get_strings(g, K "tokens", &s->tokens, &s->n_tokens, err));
    if (s->n_tokens == 0) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: " K "tokens is empty", g->path);
    PTQ_TRY(check_unique(g, s, err));

    const ptq_gguf_kv *kv = ptq_gguf_find_kv(g, K "scores");
    int n = 0;
    if (kv && kv->type == PTQ_GGUF_ARRAY && kv->elem_type != PTQ_GGUF_F32) {
        /* llama.cpp also takes integer scores */
        int32_t *is = NULL;
        PTQ_TRY(ptq_gguf_get_i32s(g, K "scores", &is, &n, err));
        s->scores = malloc((size_t)(n ? n : 1) * sizeof *s->scores);
        if (!s->scores) {
            free(is);
            return ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory reading " K "scores", g->path);
        }
        for (int i = 0; i < n; i++) s->scores[i] = (float)is[i];
        free(is);
    } else if (kv) {
        PTQ_TRY(ptq_gguf_get_f32s(g, K "scores", &s->scores, &n, err));
    }
    if (kv && n != s->n_tokens)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: " K "scores has %d entries for %d tokens", g->path, n, s->n_tokens);
    for (int i = 0; s->scores && i < n; i++)
        if (!isfinite(s->scores[i]))
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: " K "scores[%d] is not a finite number", g->path, i);

    if (ptq_gguf_find_kv(g, K "token_type")) {
        PTQ_TRY(ptq_gguf_get_i32s(g, K "token_type", &s->types, &n, err));
        if (n != s->n_tokens)
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: " K "token_type has %d entries for %d tokens", g->path, n,
                            s->n_tokens);
        for (int i = 0; i < n; i++)
            if (s->types[i] < PTQ_TOKTYPE_UNDEFINED || s->types[i] > PTQ_TOKTYPE_BYTE)
                return ptq_fail(err, PTQ_ERR_FORMAT, "%s: " K "token_type[%d] is %d (expected 0..%d)", g->path, i,
                                s->types[i], PTQ_TOKTYPE_BYTE);
    }

    if (ptq_gguf_find_kv(g, K "merges")) {
        PTQ_TRY(ptq_gguf_get_strings(g, K "merges", &s->merges, &s->n_merges, err));
        for (int i = 0; i < s->n_merges; i++)
            if (!s->merges[i][0] || !strchr(s->merges[i] + 1, ' ')) {
                char m[96];
                ptq_snippet(m, sizeof m, s->merges[i], strlen(s->merges[i]));
                return ptq_fail(err, PTQ_ERR_FORMAT, "%s: " K "merges[%d] is \"%s\", expected \"left right\"",
                                g->path, i, m);
            }
    } else if (s->model == PTQ_TOK_BYTE_BPE) {
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: a \"gpt2\" tokenizer needs " K "merges, which is absent", g->path);
    }

    /* llama.cpp's defaults per model; byte-level BPE's BOS/EOS default 11 is its historical GPT-2 choice */
    if (s->model == PTQ_TOK_SPM) {
        s->bos = 1, s->eos = 2, s->unk = 0, s->pad = -1;
        s->add_bos = 1, s->add_eos = 0, s->add_space_prefix = 1;
    } else {
        s->bos = 11, s->eos = 11, s->unk = -1, s->pad = -1;
        s->add_bos = 0, s->add_eos = 0, s->add_space_prefix = 0;
        if (in_list(s->pre, k_llama3_like, sizeof k_llama3_like / sizeof *k_llama3_like)) s->add_bos = s->ignore_merges = 1;
    }
    PTQ_TRY(opt_id(g, K "bos_token_id", s->n_tokens, &s->bos, err));
    PTQ_TRY(opt_id(g, K "eos_token_id", s->n_tokens, &s->eos, err));
    PTQ_TRY(opt_id(g, K "unknown_token_id", s->n_tokens, &s->unk, err));
    PTQ_TRY(opt_id(g, K "padding_token_id", s->n_tokens, &s->pad, err));
    PTQ_TRY(opt_bool(g, K "add_bos_token", &s->add_bos, err));
    PTQ_TRY(opt_bool(g, K "add_eos_token", &s->add_eos, err));
    PTQ_TRY(opt_bool(g, K "add_space_prefix", &s->add_space_prefix, err));
    return PTQ_OK;
}

ptq_status ptq_gguf_tok_spec(const ptq_gguf *g, ptq_tok_spec *out, ptq_error *err) {
    if (!g || !out) return ptq_fail(err, PTQ_ERR_ARG, "ptq_gguf_tok_spec: NULL argument");
    memset(out, 0, sizeof *out);
    out->bos = out->eos = out->unk = out->pad = -1;
    ptq_status s = fill(g, out, err);
    if (s != PTQ_OK) ptq_tok_spec_free(out);
    return s;
}
