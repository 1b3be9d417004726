/* The generic transformer forward pass (see forward.h), one block at a time. */
#include "models/forward.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "ops/ops.h"
#include "quant/head_embed.h"

ptq_status ptq_kv_cache_init(ptq_kv_cache *c, const ptq_model *m, int max_seq, ptq_error *err) {
    memset(c, 0, sizeof *c);
    c->n_layers = m->cfg.n_layers;
    c->max_seq = max_seq;
    c->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    size_t n = (size_t)c->n_layers * max_seq * c->kv_dim;
    c->k = ptq_alloc(n, sizeof(float), "KV cache", err);
    c->v = c->k ? ptq_alloc(n, sizeof(float), "KV cache", err) : NULL;
    if (!c->v) {
        ptq_kv_cache_free(c);
        return PTQ_ERR_NOMEM;
    }
    return PTQ_OK;
}

void ptq_kv_cache_drop_scratch(ptq_kv_cache *c) {
    ptq_free(c->scratch);
    c->scratch = NULL;
    c->scratch_floats = 0;
}

ptq_status ptq_kv_cache_reserve(ptq_kv_cache *c, int need, int limit, ptq_error *err) {
    if (need <= c->max_seq) return PTQ_OK;
    if (need > limit)
        return ptq_fail(err, PTQ_ERR_ARG, "KV cache: %d positions requested, the limit is %d", need, limit);
    int cap = c->max_seq > limit / 2 ? limit : 2 * c->max_seq; /* double, so growing costs O(1) per token */
    if (cap < need) cap = need;
    /* the block scratch (sized for the largest chunk seen, a prompt's) goes first: the old and the new cache
       live side by side during the copy, and the next block call allocates the scratch it needs */
    ptq_kv_cache_drop_scratch(c);
    size_t n = (size_t)c->n_layers * cap * c->kv_dim, row = (size_t)c->kv_dim * sizeof(float);
    float *k = ptq_alloc(n, sizeof(float), "KV cache", err);
    float *v = k ? ptq_alloc(n, sizeof(float), "KV cache", err) : NULL;
    if (!v) {
        ptq_free(k);
        return PTQ_ERR_NOMEM;
    }
    for (int l = 0; l < c->n_layers; l++) { /* values [layer][position][dim]: each layer's rows */
        memcpy(v + (size_t)l * cap * c->kv_dim, c->v + (size_t)l * c->max_seq * c->kv_dim, row * c->max_seq);
        for (size_t r = 0; r < (size_t)c->kv_dim; r++) /* keys [layer][dim][position]: each dimension's positions */
            memcpy(k + ((size_t)l * c->kv_dim + r) * cap, c->k + ((size_t)l * c->kv_dim + r) * c->max_seq,
                   (size_t)c->max_seq * sizeof(float));
    }
    ptq_free(c->k);
    ptq_free(c->v);
    c->k = k;
    c->v = v;
    c->max_seq = cap;
    return PTQ_OK;
}

void ptq_kv_cache_free(ptq_kv_cache *c) {
    ptq_free(c->k);
    ptq_free(c->v);
    ptq_free(c->scratch);
    c->k = c->v = c->scratch = NULL;
    c->scratch_floats = 0;
}

ptq_status ptq_embed_tokens(const ptq_model *m, const int *tokens, int n, int pos0, float *x, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    if (pos0 < 0 || pos0 + n > c->max_seq)
        return ptq_fail(err, PTQ_ERR_ARG, "positions %d..%d exceed the model's context of %d tokens", pos0,
                        pos0 + n - 1, c->max_seq);
    int ed = c->embed_dim;
    float *e = x;
    if (ptq_linear_present(&m->proj_in)) {
        e = ptq_alloc((size_t)n * ed, sizeof(float), "embedding", err);
        if (!e) return PTQ_ERR_NOMEM;
    }
    ptq_status s = PTQ_OK;
    for (int i = 0; s == PTQ_OK && i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            s = ptq_fail(err, PTQ_ERR_ARG, "token id %d at position %d is outside the vocabulary of %d", tokens[i],
                         pos0 + i, c->vocab_size);
    if (s == PTQ_OK) s = ptq_embedding_rows(m, tokens, n, e, err); /* streamed: converted from the mapping */
    if (s != PTQ_OK) {
        if (e != x) ptq_free(e);
        return s;
    }
    if (e != x) {
        ptq_linear_forward(&m->proj_in, e, n, x);
        ptq_free(e);
    }
    if (m->pos_emb) {
        for (int i = 0; i < n; i++) {
            const float *p = m->pos_emb + (size_t)(pos0 + i + c->pos_offset) * c->dim;
            float *xi = x + (size_t)i * c->dim;
            for (int d = 0; d < c->dim; d++) xi[d] += p[d];
        }
    }
    return PTQ_OK;
}

ptq_status ptq_embed_images(const ptq_model *m, const float *pixels, int n_img, float *x, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    int P = c->patch_size, g = c->img_size / P, C = c->in_chans, T = c->max_seq, D = c->dim;
    int pd = C * P * P, npatch = g * g; /* bounded by ptq_model_validate */
    if (n_img < 0 || (int64_t)n_img * T > INT_MAX)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: %d images of %d tokens are too many for one forward", m->path, n_img,
                        T);
    float *patches = ptq_alloc((size_t)n_img * npatch * pd, sizeof(float), "patches", err);
    float *emb = patches ? ptq_alloc((size_t)n_img * npatch * D, sizeof(float), "patch embeddings", err) : NULL;
    if (!emb) {
        ptq_free(patches);
        return PTQ_ERR_NOMEM;
    }
    size_t img_sz = (size_t)C * c->img_size * c->img_size;
    for (int b = 0; b < n_img; b++) {
        const float *im = pixels + (size_t)b * img_sz;
        for (int py = 0; py < g; py++)
            for (int px = 0; px < g; px++) {
                float *dst = patches + ((size_t)b * npatch + py * g + px) * pd;
                for (int ch = 0; ch < C; ch++)
                    for (int yy = 0; yy < P; yy++)
                        for (int xx = 0; xx < P; xx++)
                            *dst++ = im[((size_t)ch * c->img_size + py * P + yy) * c->img_size + px * P + xx];
            }
    }
    ptq_linear_forward(&m->patch, patches, n_img * npatch, emb);
    int first = c->cls_token ? 1 : 0;
    for (int b = 0; b < n_img; b++) {
        float *xb = x + (size_t)b * T * D;
        if (first) memcpy(xb, m->cls_token, (size_t)D * sizeof(float));
        memcpy(xb + (size_t)first * D, emb + (size_t)b * npatch * D, (size_t)npatch * D * sizeof(float));
        if (m->pos_emb)
            for (size_t i = 0; i < (size_t)T * D; i++) xb[i] += m->pos_emb[i];
    }
    ptq_free(patches);
    ptq_free(emb);
    return PTQ_OK;
}

/* Scratch buffers of a block call: carved from one buffer that a KV cache (a session: one allocation
 * for its whole life) or a whole-model forward (one per forward, not one per block) keeps; a block
 * called without either allocates its own. Large buffers come from mmap, so a fresh one per call
 * would also pay its page faults every call. */
typedef struct {
    float *h, *qkv, *att, *out, *up, *gate;
    float *own; /* allocated by this call, or NULL */
} scratch;

typedef struct {
    float *buf;
    size_t floats;
} scratch_pool;

static void scratch_free(scratch *s) { ptq_free(s->own); }

static ptq_status scratch_alloc(scratch *s, const ptq_config *c, int rows, scratch_pool *pool, ptq_error *err) {
    memset(s, 0, sizeof *s);
    const size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    const size_t wide = (size_t)c->dim > qd ? (size_t)c->dim : qd, r = (size_t)rows;
    const size_t pad = 16; /* each piece starts 64-byte aligned */
    const size_t sz[6] = {r * c->dim, r * (qd + 2 * kvd), r * wide, r * c->dim, r * c->hidden_dim,
                          c->gated_mlp ? r * c->hidden_dim : 0};
    size_t total = 0;
    for (int i = 0; i < 6; i++) total += (sz[i] + pad - 1) / pad * pad;
    float *buf;
    if (pool && pool->floats >= total) {
        buf = pool->buf;
    } else {
        buf = ptq_alloc(total, sizeof(float), "block activations", err);
        if (!buf) return PTQ_ERR_NOMEM;
        if (pool) {
            ptq_free(pool->buf);
            pool->buf = buf;
            pool->floats = total;
        } else {
            s->own = buf;
        }
    }
    float **dst[6] = {&s->h, &s->qkv, &s->att, &s->out, &s->up, &s->gate};
    for (int i = 0; i < 6; i++) {
        *dst[i] = sz[i] ? buf : NULL;
        buf += (sz[i] + pad - 1) / pad * pad;
    }
    return PTQ_OK;
}

typedef struct {
    const ptq_model *m;
    int layer;
    ptq_linear_hook hook;
    void *user;
    int float_weights;
    int seq_len, pos0;
    ptq_attn_observer attn_observer;
    void *attn_user;
} lin_ctx;

static void fake_quant_rows(float *x, int rows, int stride, int width, float scale, int bits) {
    float lo = -(float)(1 << (bits - 1)), hi = (float)((1 << (bits - 1)) - 1);
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * stride;
        for (int j = 0; j < width; j++) {
            float c = rintf(xr[j] / scale);
            xr[j] = scale * (c < lo ? lo : c > hi ? hi : c);
        }
    }
}

/* Add a per-position bias [len][n] to rows at positions pos0 + r % seq_len. */
static ptq_status add_pos_bias(float *y, const float *bias, int len, int n, int rows, int seq_len, int pos0,
                               const char *what, ptq_error *err) {
    if (pos0 + (rows < seq_len ? rows : seq_len) > len)
        return ptq_fail(err, PTQ_ERR_ARG,
                        "%s has a position-specific bias for %d positions; it cannot run at positions up to %d "
                        "(use a context of at most %d, or per-channel BC)",
                        what, len, pos0 + seq_len - 1, len);
    for (int r = 0; r < rows; r++) {
        const float *b = bias + (size_t)(pos0 + r % seq_len) * n;
        float *yr = y + (size_t)r * n;
        for (int o = 0; o < n; o++) yr[o] += b[o];
    }
    return PTQ_OK;
}

/* After a linear's product: its position-dependent bias, then the hook. */
static ptq_status finish_linear(const lin_ctx *lc, const ptq_linear *lin, ptq_lin_role role, const float *x, int rows,
                                float *y, ptq_error *err) {
    if (!lc->float_weights && lin->bc_pos)
        PTQ_TRY(add_pos_bias(y, lin->bc_pos, lin->bc_len, lin->out, rows, lc->seq_len, lc->pos0, lin->name, err));
    if (lc->hook && lc->hook(lc->user, lc->layer, role, lin, x, y, rows))
        return ptq_fail(err, PTQ_ERR_CALLBACK, "stopped by callback at %s", lin->name);
    return PTQ_OK;
}

static ptq_status run_linear(const lin_ctx *lc, ptq_lin_role role, const float *x, int rows, float *y,
                             ptq_error *err) {
    const ptq_linear *lin = &lc->m->blocks[lc->layer].lin[role];
    if (lc->float_weights) {
        if (!lin->w)
            return ptq_fail(err, PTQ_ERR_ARG, "%s: the float weights of %s are not available", lc->m->path, lin->name);
        ptq_linear_forward_float(lin, x, rows, y);
    } else {
        ptq_linear_forward(lin, x, rows, y);
    }
    return finish_linear(lc, lin, role, x, rows, y, err);
}

/* n linears on the same input (q, k, v; gate, up): one call, so that decoding shares their work. */
static ptq_status run_linears(const lin_ctx *lc, const ptq_lin_role *roles, int n, const float *x, int rows,
                              float *const *ys, ptq_error *err) {
    const ptq_linear *lins[3];
    for (int i = 0; i < n; i++) lins[i] = &lc->m->blocks[lc->layer].lin[roles[i]];
    if (lc->float_weights || !ptq_linear_forward_many(lins, n, x, rows, ys)) {
        for (int i = 0; i < n; i++) PTQ_TRY(run_linear(lc, roles[i], x, rows, ys[i], err));
        return PTQ_OK;
    }
    for (int i = 0; i < n; i++) PTQ_TRY(finish_linear(lc, lins[i], roles[i], x, rows, ys[i], err));
    return PTQ_OK;
}

/* Attention sub-layer: h (normalised input) -> s->out (after the output projection). */
static ptq_status attention_nomem(const lin_ctx *lc, int n_kv, ptq_error *err) {
    return ptq_fail(err, PTQ_ERR_NOMEM, "%s: block %d attention over %d positions: out of memory for the probability rows",
                    lc->m->path, lc->layer, n_kv);
}

static ptq_status attention_part(const lin_ctx *lc, scratch *s, const float *h, int n_seq, int T, int pos0,
                                 ptq_kv_cache *cache, ptq_error *err) {
    const ptq_model *m = lc->m;
    const ptq_config *c = &m->cfg;
    const ptq_block *blk = &m->blocks[lc->layer];
    int rows = n_seq * T;
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    float *q, *k, *v;
    int qs, ks, vs;
    if (ptq_linear_present(&blk->lin[PTQ_LIN_QKV])) {
        PTQ_TRY(run_linear(lc, PTQ_LIN_QKV, h, rows, s->qkv, err));
        q = s->qkv;
        k = q + qd;
        v = k + kvd;
        qs = ks = vs = qd + 2 * kvd;
    } else {
        q = s->qkv;
        k = q + (size_t)rows * qd;
        v = k + (size_t)rows * kvd;
        qs = qd;
        ks = vs = kvd;
        const ptq_lin_role roles[3] = {PTQ_LIN_Q, PTQ_LIN_K, PTQ_LIN_V};
        float *const ys[3] = {q, k, v};
        PTQ_TRY(run_linears(lc, roles, 3, h, rows, ys, err));
    }
    ptq_rope(c->rope, q, rows, T, qs, c->n_heads, c->head_dim, pos0, c->rope_theta);
    ptq_rope(c->rope, k, rows, T, ks, c->n_kv_heads, c->head_dim, pos0, c->rope_theta);
    if (lc->attn_observer) lc->attn_observer(lc->attn_user, lc->layer, q, qs, k, ks, v, vs, rows);
    int pbits = 0;
    if (blk->attn_bits && !lc->float_weights) {
        fake_quant_rows(q, rows, qs, qd, blk->attn_scale[0], blk->attn_bits);
        fake_quant_rows(k, rows, ks, kvd, blk->attn_scale[1], blk->attn_bits);
        fake_quant_rows(v, rows, vs, kvd, blk->attn_scale[2], blk->attn_bits);
        pbits = blk->attn_bits;
    }
    if (cache) {
        /* one sequence: append its keys (by dimension) and values, attend over everything cached */
        const size_t ms = (size_t)cache->max_seq;
        float *ckt = cache->k + (size_t)lc->layer * ms * kvd;
        float *cv = cache->v + (size_t)lc->layer * ms * kvd;
        for (int i = 0; i < T; i++) {
            for (int r = 0; r < kvd; r++) ckt[(size_t)r * ms + (size_t)(pos0 + i)] = k[(size_t)i * ks + (size_t)r];
            memcpy(cv + (size_t)(pos0 + i) * kvd, v + (size_t)i * vs, (size_t)kvd * sizeof(float));
        }
        if (ptq_attention_kt(q, qs, ckt, ms, cv, kvd, s->att, qd, T, pos0 + T, pos0, c->n_heads, c->n_kv_heads,
                             c->head_dim, c->causal, pbits) != PTQ_OK)
            return attention_nomem(lc, pos0 + T, err);
    } else {
        for (int b = 0; b < n_seq; b++) {
            size_t r0 = (size_t)b * T;
            if (ptq_attention_q(q + r0 * qs, qs, k + r0 * ks, ks, v + r0 * vs, vs, s->att + r0 * qd, qd, T, T, 0,
                                c->n_heads, c->n_kv_heads, c->head_dim, c->causal, pbits) != PTQ_OK)
                return attention_nomem(lc, T, err);
        }
    }
    return run_linear(lc, PTQ_LIN_O, s->att, rows, s->out, err);
}

/* MLP sub-layer: h -> s->out. */
static ptq_status mlp_part(const lin_ctx *lc, scratch *s, const float *h, int rows, ptq_error *err) {
    const ptq_config *c = &lc->m->cfg;
    size_t n = (size_t)rows * c->hidden_dim;
    if (c->gated_mlp) {
        const ptq_lin_role roles[2] = {PTQ_LIN_GATE, PTQ_LIN_UP};
        float *const ys[2] = {s->gate, s->up};
        PTQ_TRY(run_linears(lc, roles, 2, h, rows, ys, err));
        ptq_act_inplace(c->act, s->gate, n);
        for (size_t i = 0; i < n; i++) s->up[i] *= s->gate[i];
    } else {
        PTQ_TRY(run_linear(lc, PTQ_LIN_UP, h, rows, s->up, err));
        ptq_act_inplace(c->act, s->up, n);
    }
    return run_linear(lc, PTQ_LIN_DOWN, s->up, rows, s->out, err);
}

static void add_into(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

ptq_status ptq_block_forward(const ptq_model *m, int layer, float *x, int n_seq, int seq_len, int pos0,
                             ptq_kv_cache *cache, ptq_linear_hook hook, void *hook_user, ptq_error *err) {
    ptq_block_opts o = {hook, hook_user, 0, NULL, NULL};
    return ptq_block_forward_ex(m, layer, x, n_seq, seq_len, pos0, cache, &o, err);
}

static ptq_status block_forward(const ptq_model *m, int layer, float *x, int n_seq, int seq_len, int pos0,
                                ptq_kv_cache *cache, const ptq_block_opts *opts, scratch_pool *pool, ptq_error *err);

ptq_status ptq_block_forward_ex(const ptq_model *m, int layer, float *x, int n_seq, int seq_len, int pos0,
                                ptq_kv_cache *cache, const ptq_block_opts *opts, ptq_error *err) {
    scratch_pool pool = {cache ? cache->scratch : NULL, cache ? cache->scratch_floats : 0};
    ptq_status st = block_forward(m, layer, x, n_seq, seq_len, pos0, cache, opts, cache ? &pool : NULL, err);
    if (cache) {
        cache->scratch = pool.buf;
        cache->scratch_floats = pool.floats;
    }
    return st;
}

static ptq_status block_forward(const ptq_model *m, int layer, float *x, int n_seq, int seq_len, int pos0,
                                ptq_kv_cache *cache, const ptq_block_opts *opts, scratch_pool *pool, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    if (layer < 0 || layer >= c->n_layers) return ptq_fail(err, PTQ_ERR_ARG, "block %d out of range", layer);
    if (cache && (n_seq != 1 || pos0 + seq_len > cache->max_seq))
        return ptq_fail(err, PTQ_ERR_ARG, "KV cache: %d sequences at positions %d..%d (cache holds %d)", n_seq, pos0,
                        pos0 + seq_len - 1, cache->max_seq);
    int rows = n_seq * seq_len;
    size_t n = (size_t)rows * c->dim;
    scratch s;
    PTQ_TRY(scratch_alloc(&s, c, rows, pool, err));
    lin_ctx lc = {m,       layer, opts->hook,          opts->hook_user, opts->float_weights,
                  seq_len, pos0,  opts->attn_observer, opts->attn_user};
    const ptq_block *blk = &m->blocks[layer];
    ptq_status st;
    if (c->pre_norm) {
        ptq_norm_apply(c, &blk->norm1, x, rows, s.h);
        st = attention_part(&lc, &s, s.h, n_seq, seq_len, pos0, cache, err);
        if (st == PTQ_OK) {
            add_into(x, s.out, n);
            ptq_norm_apply(c, &blk->norm2, x, rows, s.h);
            st = mlp_part(&lc, &s, s.h, rows, err);
        }
        if (st == PTQ_OK) add_into(x, s.out, n);
    } else {
        st = attention_part(&lc, &s, x, n_seq, seq_len, pos0, cache, err);
        if (st == PTQ_OK) {
            add_into(x, s.out, n);
            ptq_norm_apply(c, &blk->norm1, x, rows, x);
            st = mlp_part(&lc, &s, x, rows, err);
        }
        if (st == PTQ_OK) {
            add_into(x, s.out, n);
            ptq_norm_apply(c, &blk->norm2, x, rows, x);
        }
    }
    scratch_free(&s);
    if (st == PTQ_OK && !opts->float_weights) {
        if (blk->bc)
            for (int r = 0; r < rows; r++) add_into(x + (size_t)r * c->dim, blk->bc, (size_t)c->dim);
        if (blk->bc_pos) {
            char what[64];
            snprintf(what, sizeof what, "block %d", layer);
            st = add_pos_bias(x, blk->bc_pos, blk->bc_len, c->dim, rows, seq_len, pos0, what, err);
        }
    }
    return st;
}

#define HEAD_STACK 8192 /* floats */

ptq_status ptq_head_forward(const ptq_model *m, const float *x, int rows, float *logits, ptq_error *err) {
    return ptq_head_forward_ex(m, x, rows, logits, 0, err);
}

ptq_status ptq_head_forward_ex(const ptq_model *m, const float *x, int rows, float *logits, int float_weights,
                               ptq_error *err) {
    const ptq_config *c = &m->cfg;
    /* one decoded row (up to dim 8192) needs no allocation */
    float hstack[HEAD_STACK], estack[HEAD_STACK];
    float *h = (size_t)rows * c->dim <= HEAD_STACK ? hstack
                                                   : ptq_alloc((size_t)rows * c->dim, sizeof(float), "head input", err);
    if (!h) return PTQ_ERR_NOMEM;
    if (c->arch == PTQ_ARCH_VIT) {
        for (int b = 0; b < rows; b++)
            memcpy(h + (size_t)b * c->dim, x + (size_t)b * c->max_seq * c->dim, (size_t)c->dim * sizeof(float));
    } else {
        memcpy(h, x, (size_t)rows * c->dim * sizeof(float));
    }
    if (m->final_norm.w) ptq_norm_apply(c, &m->final_norm, h, rows, h);
    const float *hin = h;
    float *e = NULL;
    if (ptq_linear_present(&m->proj_out)) {
        e = (size_t)rows * c->embed_dim <= HEAD_STACK
                ? estack
                : ptq_alloc((size_t)rows * c->embed_dim, sizeof(float), "head input", err);
        if (!e) {
            if (h != hstack) ptq_free(h);
            return PTQ_ERR_NOMEM;
        }
        ptq_linear_forward(&m->proj_out, h, rows, e);
        hin = e;
    }
    if (float_weights) ptq_linear_forward_float(&m->head, hin, rows, logits);
    else ptq_linear_forward(&m->head, hin, rows, logits);
    if (e != estack) ptq_free(e);
    if (h != hstack) ptq_free(h);
    return PTQ_OK;
}

ptq_status ptq_forward_tokens(const ptq_model *m, const int *tokens, int n, float *logits, ptq_error *err) {
    if (m->cfg.arch == PTQ_ARCH_VIT) return ptq_fail(err, PTQ_ERR_ARG, "%s: a ViT takes images, not tokens", m->path);
    float *x = ptq_alloc((size_t)n * m->cfg.dim, sizeof(float), "activations", err);
    if (!x) return PTQ_ERR_NOMEM;
    ptq_status s = ptq_embed_tokens(m, tokens, n, 0, x, err);
    const ptq_block_opts o = {NULL, NULL, 0, NULL, NULL};
    scratch_pool pool = {NULL, 0};
    for (int l = 0; s == PTQ_OK && l < m->cfg.n_layers; l++) s = block_forward(m, l, x, 1, n, 0, NULL, &o, &pool, err);
    ptq_free(pool.buf);
    if (s == PTQ_OK) s = ptq_head_forward(m, x, n, logits, err);
    ptq_free(x);
    return s;
}

ptq_status ptq_forward_images(const ptq_model *m, const float *pixels, int n_img, float *logits, ptq_error *err) {
    if (m->cfg.arch != PTQ_ARCH_VIT)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: a language model takes tokens, not images", m->path);
    int T = m->cfg.max_seq;
    if (n_img < 0 || (int64_t)n_img * T > INT_MAX) /* rows are counted in int below */
        return ptq_fail(err, PTQ_ERR_ARG, "%s: %d images of %d tokens are too many for one forward", m->path, n_img,
                        T);
    float *x = ptq_alloc((size_t)n_img * T * m->cfg.dim, sizeof(float), "activations", err);
    if (!x) return PTQ_ERR_NOMEM;
    ptq_status s = ptq_embed_images(m, pixels, n_img, x, err);
    const ptq_block_opts o = {NULL, NULL, 0, NULL, NULL};
    scratch_pool pool = {NULL, 0};
    for (int l = 0; s == PTQ_OK && l < m->cfg.n_layers; l++)
        s = block_forward(m, l, x, n_img, T, 0, NULL, &o, &pool, err);
    ptq_free(pool.buf);
    if (s == PTQ_OK) s = ptq_head_forward(m, x, n_img, logits, err);
    ptq_free(x);
    return s;
}
