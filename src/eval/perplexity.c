/* Perplexity over non-overlapping windows, and the document protocol of the sample data. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "models/forward.h"

ptq_ppl_params ptq_ppl_default_params(void) {
    ptq_ppl_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* Run one window and add -log p(target) of every position to the sums. */
static ptq_status score_window(const ptq_model *m, const int *win, int n, double *sum, double *sum_sq,
                               ptq_error *err) {
    const ptq_config *c = &m->cfg;
    int V = c->vocab_size, chunk = 64;
    float *x = ptq_alloc((size_t)n * c->dim, sizeof(float), "activations", err);
    float *logits = x ? ptq_alloc((size_t)chunk * V, sizeof(float), "logits", err) : NULL;
    if (!logits) {
        ptq_free(x);
        return PTQ_ERR_NOMEM;
    }
    ptq_status s = ptq_embed_tokens(m, win, n, 0, x, err);
    for (int l = 0; s == PTQ_OK && l < c->n_layers; l++) s = ptq_block_forward(m, l, x, 1, n, 0, NULL, NULL, NULL, err);
    for (int r0 = 0; s == PTQ_OK && r0 < n; r0 += chunk) {
        int rows = n - r0 < chunk ? n - r0 : chunk;
        s = ptq_head_forward(m, x + (size_t)r0 * c->dim, rows, logits, err);
        for (int r = 0; s == PTQ_OK && r < rows; r++) {
            const float *lg = logits + (size_t)r * V;
            double mx = lg[0];
            for (int v = 1; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
            double se = 0;
            for (int v = 0; v < V; v++) se += exp(lg[v] - mx);
            double ce = log(se) + mx - lg[win[r0 + r + 1]];
            if (!isfinite(ce)) s = ptq_fail(err, PTQ_ERR_NUMERIC, "non-finite logits at window position %d", r0 + r);
            *sum += ce;
            *sum_sq += ce * ce;
        }
    }
    ptq_free(logits);
    ptq_free(x);
    return s;
}

ptq_status ptq_eval_perplexity(ptq_model *m, const int *tokens, int64_t n, const ptq_ppl_params *p,
                               ptq_ppl_result *res, ptq_error *err) {
    memset(res, 0, sizeof *res);
    if (m->cfg.arch == PTQ_ARCH_VIT) return ptq_fail(err, PTQ_ERR_ARG, "%s: perplexity needs a language model", m->path);
    int ctx = p && p->ctx > 0 ? p->ctx : m->cfg.max_seq;
    if (ctx > m->cfg.max_seq)
        return ptq_fail(err, PTQ_ERR_ARG, "--ctx %d exceeds the model's context of %d tokens", ctx, m->cfg.max_seq);
    if (n < 2) return ptq_fail(err, PTQ_ERR_ARG, "perplexity needs at least 2 tokens, got %lld", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return ptq_fail(err, PTQ_ERR_ARG, "token %lld is id %d, outside the vocabulary of %d", (long long)i,
                            tokens[i], m->cfg.vocab_size);
    int64_t windows = (n - 1 + ctx - 1) / ctx;
    double sum = 0, sum_sq = 0;
    for (int64_t w = 0; w < windows; w++) {
        int64_t start = w * ctx;
        int len = (int)(n - start < ctx + 1 ? n - start : ctx + 1);
        PTQ_TRY(score_window(m, tokens + start, len - 1, &sum, &sum_sq, err));
        ptq_progress(p ? &p->cb : NULL, "eval", w + 1, windows);
    }
    int64_t scored = n - 1;
    double mean = sum / (double)scored;
    double var = sum_sq / (double)scored - mean * mean;
    if (var < 0) var = 0;
    res->tokens = n;
    res->scored = scored;
    res->mean_ce = mean;
    res->ppl = exp(mean);
    /* delta method: d exp(mu) = exp(mu) d mu, with the standard error of the mean token CE */
    res->ppl_stderr = res->ppl * sqrt(var / (double)scored);
    return PTQ_OK;
}

static int is_space(char c) { return isspace((unsigned char)c) != 0; }

ptq_status ptq_encode_documents(const ptq_tokenizer *t, const char *text, size_t len, const char *sep,
                                int first_doc, int last_doc, int **tokens, int64_t *n, ptq_error *err) {
    *tokens = NULL;
    *n = 0;
    size_t seplen = sep ? strlen(sep) : 0;
    int64_t cap = 1024, count = 0;
    int *all = malloc((size_t)cap * sizeof *all);
    if (!all) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory encoding text");
    size_t pos = 0;
    int doc = 0;
    while (pos <= len) {
        size_t end = len;
        if (seplen) {
            const char *hit = NULL;
            for (size_t i = pos; i + seplen <= len; i++)
                if (memcmp(text + i, sep, seplen) == 0) {
                    hit = text + i;
                    break;
                }
            if (hit) end = (size_t)(hit - text);
        }
        size_t a = pos, b = end;
        while (a < b && is_space(text[a])) a++;
        while (b > a && is_space(text[b - 1])) b--;
        int keep = b > a && doc >= first_doc && (last_doc < 0 || doc < last_doc);
        if (b > a) doc++;
        if (keep) {
            int *ids, m;
            ptq_status s = ptq_tokenizer_encode(t, text + a, b - a, 1, &ids, &m, err);
            if (s != PTQ_OK) {
                free(all);
                return s;
            }
            if (count + m > cap) {
                while (count + m > cap) cap *= 2;
                int *grown = realloc(all, (size_t)cap * sizeof *all);
                if (!grown) {
                    free(ids);
                    free(all);
                    return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory encoding text");
                }
                all = grown;
            }
            memcpy(all + count, ids, (size_t)m * sizeof *ids);
            count += m;
            free(ids);
        }
        if (end == len) break;
        pos = end + seplen;
    }
    if (count == 0) {
        free(all);
        return ptq_fail(err, PTQ_ERR_ARG, "no text in documents [%d, %d) (the text has %d documents)", first_doc,
                        last_doc, doc);
    }
    *tokens = all;
    *n = count;
    return PTQ_OK;
}
