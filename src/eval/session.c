/* Token-by-token running of a language model with a KV cache, and sampling. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "models/forward.h"

/* Memory follows use: the KV cache starts small and doubles when a feed needs more positions (up to
 * max_tokens), so a model with a long context costs what a generation uses, not its whole context. */
#define SESSION_FIRST_CAPACITY 256
#define SESSION_CHUNK 128     /* prompt tokens per forward by default: see ptq_session_feed */
#define SESSION_MAX_CHUNK 65536 /* ptq_session_set_chunk's bound */

struct ptq_session {
    ptq_model *m;
    ptq_kv_cache cache; /* cache.max_seq positions allocated */
    int pos, max_tokens;
    float *x;      /* [max_chunk][dim] */
    float *logits; /* [vocab] */
    int max_chunk; /* rows x has room for */
    int chunk;     /* prompt tokens per forward */
};

ptq_status ptq_session_new(ptq_model *m, int max_tokens, ptq_session **out, ptq_error *err) {
    *out = NULL;
    if (m->cfg.arch == PTQ_ARCH_VIT) return ptq_fail(err, PTQ_ERR_ARG, "%s: sessions need a language model", m->path);
    if (max_tokens <= 0 || max_tokens > m->cfg.max_seq) max_tokens = m->cfg.max_seq;
    ptq_session *s = calloc(1, sizeof *s);
    if (!s) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate session");
    s->m = m;
    s->max_tokens = max_tokens;
    s->chunk = SESSION_CHUNK;
    int cap = max_tokens < SESSION_FIRST_CAPACITY ? max_tokens : SESSION_FIRST_CAPACITY;
    ptq_status st = ptq_kv_cache_init(&s->cache, m, cap, err);
    if (st == PTQ_OK) {
        s->logits = ptq_alloc((size_t)m->cfg.vocab_size, sizeof(float), "logits", err);
        if (!s->logits) st = PTQ_ERR_NOMEM;
    }
    if (st != PTQ_OK) {
        ptq_session_free(s);
        return st;
    }
    *out = s;
    return PTQ_OK;
}

void ptq_session_free(ptq_session *s) {
    if (!s) return;
    ptq_kv_cache_free(&s->cache);
    ptq_free(s->x);
    ptq_free(s->logits);
    free(s);
}

int ptq_session_pos(const ptq_session *s) { return s->pos; }

int ptq_session_capacity(const ptq_session *s) { return s->cache.max_seq; }

ptq_status ptq_session_set_chunk(ptq_session *s, int tokens, ptq_error *err) {
    if (tokens < 1 || tokens > SESSION_MAX_CHUNK)
        return ptq_fail(err, PTQ_ERR_ARG, "prompt chunk of %d tokens: expected 1 to %d", tokens, SESSION_MAX_CHUNK);
    if (tokens < s->chunk) { /* the activations sized for larger chunks are not needed any more */
        ptq_free(s->x);
        s->x = NULL;
        s->max_chunk = 0;
        ptq_kv_cache_drop_scratch(&s->cache);
    }
    s->chunk = tokens;
    return PTQ_OK;
}

int ptq_session_chunk(const ptq_session *s) { return s->chunk; }

ptq_status ptq_session_feed(ptq_session *s, const int *tokens, int n, const float **logits, ptq_error *err) {
    if (n <= 0) return ptq_fail(err, PTQ_ERR_ARG, "feed needs at least one token");
    if (n > s->max_tokens - s->pos)
        return ptq_fail(err, PTQ_ERR_ARG, "context full: %d + %d tokens exceeds %d", s->pos, n, s->max_tokens);
    const ptq_model *m = s->m;
    PTQ_TRY(ptq_kv_cache_reserve(&s->cache, s->pos + n, s->max_tokens, err));
    const int chunk = n < s->chunk ? n : s->chunk;
    if (chunk > s->max_chunk) {
        float *x = ptq_alloc((size_t)chunk * m->cfg.dim, sizeof(float), "session activations", err);
        if (!x) return PTQ_ERR_NOMEM;
        ptq_free(s->x);
        s->x = x;
        s->max_chunk = chunk;
    }
    /* a long prompt runs in chunks through the cache: the block activations are sized for a chunk (the
       results are those of one forward over the whole prompt, within float rounding); a failure leaves the
       position where it was, and what the chunks before it cached is written again by the next feed */
    for (int t = 0; t < n; t += chunk) {
        const int c = n - t < chunk ? n - t : chunk;
        ptq_status st = ptq_embed_tokens(m, tokens + t, c, s->pos + t, s->x, err);
        for (int l = 0; st == PTQ_OK && l < m->cfg.n_layers; l++)
            st = ptq_block_forward(m, l, s->x, 1, c, s->pos + t, &s->cache, NULL, NULL, err);
        if (st == PTQ_OK && t + c == n)
            st = ptq_head_forward(m, s->x + (size_t)(c - 1) * m->cfg.dim, 1, s->logits, err);
        if (st != PTQ_OK) return st;
    }
    s->pos += n;
    *logits = s->logits;
    return PTQ_OK;
}

ptq_sampler_params ptq_sampler_default_params(void) {
    ptq_sampler_params p = {1.0f, 0.9f, 42};
    return p;
}

static uint64_t next_u64(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static float next_f32(uint64_t *s) { return (float)(next_u64(s) >> 40) / 16777216.0f; }

typedef struct {
    float p;
    int i;
} prob_idx;

static int cmp_prob_desc(const void *a, const void *b) {
    float pa = ((const prob_idx *)a)->p, pb = ((const prob_idx *)b)->p;
    return (pa < pb) - (pa > pb);
}

int ptq_sample(const float *logits, int n, const ptq_sampler_params *p, uint64_t *rng) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    if (p->temperature <= 0.0f) return best;
    if (*rng == 0) *rng = 0x9E3779B97F4A7C15ULL;
    prob_idx *pi = malloc((size_t)n * sizeof *pi);
    if (!pi) return best;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        pi[i].p = expf((logits[i] - logits[best]) / p->temperature);
        pi[i].i = i;
        sum += pi[i].p;
    }
    for (int i = 0; i < n; i++) pi[i].p = (float)(pi[i].p / sum);
    int keep = n;
    if (p->top_p > 0.0f && p->top_p < 1.0f) {
        qsort(pi, (size_t)n, sizeof *pi, cmp_prob_desc);
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += pi[i].p;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double total = 0;
    for (int i = 0; i < keep; i++) total += pi[i].p;
    double r = next_f32(rng) * total, cum = 0;
    int pick = pi[keep - 1].i;
    for (int i = 0; i < keep; i++) {
        cum += pi[i].p;
        if (r < cum) {
            pick = pi[i].i;
            break;
        }
    }
    free(pi);
    return pick;
}
