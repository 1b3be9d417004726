/* Whole-model forward with activation caches, and its backward, over the generic block of models/model.h.
 *
 * Pre-norm block (ViT, LLaMA, GPT-2, OPT):           Post-norm block (OPT-350M):
 *     h1 = norm1(x)                                      s1 = x + O(attn(QKV(x)))
 *     m  = x + O(attn(QKV(h1)))                          x1 = norm1(s1)
 *     h2 = norm2(m)                                      s2 = x1 + DOWN(mlp(x1))
 *     y  = m + DOWN(mlp(h2))                             y  = norm2(s2)
 * with mlp(h) = act(GATE h) * UP h (gated) or act(UP h). The forward uses the ops of models/forward.c (attention
 * through BLAS here, attention.c, so it matches `ptq eval` to float rounding). The backward is the chain rule over
 * the ops' backward functions (ops/backward.h); the outlier-loss gradient of each monitored tensor (a linear
 * layer's input) is added where that tensor's gradient is formed.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "models/forward.h"
#include "ops/backward.h"
#include "ops/ops.h"
#include "train/train.h"
#include "train/train_internal.h"

/* ---------------------------------------------------------------- workspace */

typedef struct blk_cache {
    float *h1, *n1_mean, *n1_rstd; /* pre-norm: norm1(x) and its statistics; post-norm: statistics of norm1(s1) */
    float *qkv;                    /* q, k (after RoPE) and v, in forward.c's layout */
    float *probs;                  /* [n_seq][H][T][T] */
    float *att;                    /* [R][qd] attention output (input of O) */
    float *mid;                    /* pre-norm: m; post-norm: s1 */
    float *h2, *n2_mean, *n2_rstd; /* pre-norm: norm2(m); post-norm: x1 = norm1(s1). Stats of norm2 */
    float *gate, *up, *u;          /* MLP pre-activations and the DOWN input */
    float *s2;                     /* post-norm: x1 + DOWN(...) */
} blk_cache;

struct ptq_train_ws {
    const ptq_model *m;
    int rows, n_seq, seq_len; /* capacity */
    void **bufs;
    int n_bufs, cap_bufs;
    blk_cache *bc;
    float *xs; /* (L + 1) residual-stream states [R][D] */
    /* head */
    float *xc, *hf, *hf_mean, *hf_rstd, *he, *logits, *dlogits, *dhe, *dhf, *dxc;
    int chunk;
    /* backward scratch */
    float *dx, *dx2, *dh, *datt, *dqkv, *dg, *du, *dup;
    float *attn_work; /* T*T floats per thread */
    /* embeddings */
    float *e_in, *de, *patches, *emb, *demb;
};

ptq_train_ws *ptq_train_ws_new(void) { return calloc(1, sizeof(ptq_train_ws)); }

static void ws_release(ptq_train_ws *ws) {
    for (int i = 0; i < ws->n_bufs; i++) ptq_free(ws->bufs[i]);
    free(ws->bufs);
    free(ws->bc);
    memset(ws, 0, sizeof *ws);
}

void ptq_train_ws_free(ptq_train_ws *ws) {
    if (!ws) return;
    ws_release(ws);
    free(ws);
}

static float *wsa(ptq_train_ws *ws, size_t n, ptq_error *err) {
    if (n == 0) n = 1;
    if (ws->n_bufs == ws->cap_bufs) {
        int cap = ws->cap_bufs ? 2 * ws->cap_bufs : 64;
        void **b = realloc(ws->bufs, (size_t)cap * sizeof *b);
        if (!b) {
            ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate training workspace");
            return NULL;
        }
        ws->bufs = b;
        ws->cap_bufs = cap;
    }
    float *p = ptq_alloc(n, sizeof(float), "training activations", err);
    if (p) ws->bufs[ws->n_bufs++] = p;
    return p;
}

#define WSA(dst, n)                                 \
    do {                                            \
        if (!((dst) = wsa(ws, (n), err))) goto oom; \
    } while (0)

static ptq_status ws_ensure(ptq_train_ws *ws, const ptq_model *m, int n_seq, int T, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    int R = n_seq * T;
    if (ws->m == m && ws->n_seq >= n_seq && ws->seq_len == T) return PTQ_OK;
    ws_release(ws);
    int L = c->n_layers;
    size_t D = (size_t)c->dim, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t F = (size_t)c->hidden_dim, E = (size_t)c->embed_dim, V = (size_t)c->vocab_size, Rz = (size_t)R;
    size_t qkvd = qd + 2 * kvd;
    int vit = c->arch == PTQ_ARCH_VIT;
    size_t HR = vit ? (size_t)n_seq : Rz;
    ws->bc = calloc((size_t)L, sizeof *ws->bc);
    if (!ws->bc) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate training caches");
    WSA(ws->xs, (size_t)(L + 1) * Rz * D);
    for (int l = 0; l < L; l++) {
        blk_cache *k = &ws->bc[l];
        if (c->pre_norm) WSA(k->h1, Rz * D);
        WSA(k->n1_mean, Rz);
        WSA(k->n1_rstd, Rz);
        WSA(k->qkv, Rz * qkvd);
        WSA(k->probs, (size_t)n_seq * c->n_heads * T * T);
        WSA(k->att, Rz * qd);
        WSA(k->mid, Rz * D);
        WSA(k->h2, Rz * D);
        WSA(k->n2_mean, Rz);
        WSA(k->n2_rstd, Rz);
        if (c->gated_mlp) WSA(k->gate, Rz * F);
        WSA(k->up, Rz * F);
        WSA(k->u, Rz * F);
        if (!c->pre_norm) WSA(k->s2, Rz * D);
    }
    size_t Ein = ptq_linear_present(&m->proj_out) ? E : D;
    ws->chunk = (int)(HR < 1024 ? HR : 1024);
    if ((size_t)ws->chunk * V > ((size_t)1 << 24)) ws->chunk = (int)(((size_t)1 << 24) / V) + 1;
    WSA(ws->xc, HR * D);
    WSA(ws->hf, HR * D);
    WSA(ws->hf_mean, HR);
    WSA(ws->hf_rstd, HR);
    WSA(ws->he, HR * Ein);
    WSA(ws->logits, (size_t)ws->chunk * V);
    WSA(ws->dlogits, (size_t)ws->chunk * V);
    WSA(ws->dhe, HR * Ein);
    WSA(ws->dhf, HR * D);
    WSA(ws->dxc, HR * D);
    WSA(ws->dx, Rz * D);
    WSA(ws->dx2, Rz * D);
    WSA(ws->dh, Rz * D);
    WSA(ws->datt, Rz * qd);
    WSA(ws->dqkv, Rz * qkvd);
    if (c->gated_mlp) WSA(ws->dg, Rz * F);
    WSA(ws->du, Rz * F);
    WSA(ws->dup, Rz * F);
    WSA(ws->attn_work, (size_t)omp_get_max_threads() * T * T);
    if (vit) {
        size_t g = (size_t)(c->img_size / c->patch_size), np = g * g, pd = (size_t)c->in_chans * c->patch_size * c->patch_size;
        WSA(ws->patches, (size_t)n_seq * np * pd);
        WSA(ws->emb, (size_t)n_seq * np * D);
        WSA(ws->demb, (size_t)n_seq * np * D);
    } else {
        WSA(ws->e_in, Rz * E);
        WSA(ws->de, Rz * E);
    }
    ws->m = m;
    ws->rows = R;
    ws->n_seq = n_seq;
    ws->seq_len = T;
    return PTQ_OK;
oom:
    ws_release(ws);
    return err && err->status ? err->status : PTQ_ERR_NOMEM;
}

/* ---------------------------------------------------------------- helpers */

typedef struct {
    ptq_trainable *t;
    ptq_train_ws *ws;
    const ptq_outlier_cfg *oc;
    int n_seq, T, R;
    int want_grad;
    double outlier_bwd; /* outlier terms valued in the backward */
} ctx;

typedef struct {
    float *q, *k, *v;
    int qs, ks, vs;
} qkv_view;

static qkv_view qkv_of(const ptq_config *c, const ptq_block *b, float *buf, int R) {
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    qkv_view v;
    if (ptq_linear_present(&b->lin[PTQ_LIN_QKV])) {
        v.q = buf;
        v.k = buf + qd;
        v.v = buf + qd + kvd;
        v.qs = v.ks = v.vs = qd + 2 * kvd;
    } else {
        v.q = buf;
        v.k = buf + (size_t)R * qd;
        v.v = v.k + (size_t)R * kvd;
        v.qs = qd;
        v.ks = v.vs = kvd;
    }
    return v;
}

static void zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

/* The outlier term of a monitored tensor is always reported (also with lambda = 0, to compare runs); its
 * gradient is added only when lambda > 0. */
static int reported(const ctx *x, unsigned bit) { return x->oc && (x->oc->monitor & bit); }
static int monitored(const ctx *x, unsigned bit) { return reported(x, bit) && x->oc->lambda > 0; }

/* The outlier term of tensor A (n floats); dA (nullable) += lambda * its gradient. */
static double outlier_term(const ctx *x, const float *A, size_t n, float *dA) {
    const ptq_outlier_cfg *oc = x->oc;
    return oc->relative ? ptq_train_outlier_rel(A, n, oc->tau, dA, oc->lambda)
                        : ptq_outlier_loss(A, n, oc->tau, dA, oc->lambda);
}

/* ---------------------------------------------------------------- block forward / backward */

static double block_forward(ctx *x, int l, const float *xin, float *y) {
    const ptq_model *m = x->t->m;
    const ptq_config *c = &m->cfg;
    const ptq_block *b = &m->blocks[l];
    blk_cache *k = &x->ws->bc[l];
    int R = x->R, T = x->T, S = x->n_seq;
    int qd = c->n_heads * c->head_dim;
    size_t nD = (size_t)R * c->dim, nF = (size_t)R * c->hidden_dim;
    ptq_norm_cache c1 = {k->n1_mean, k->n1_rstd}, c2 = {k->n2_mean, k->n2_rstd};

    const float *a_qkv = xin;
    if (c->pre_norm) {
        ptq_norm_forward_cache(c, &b->norm1, xin, R, k->h1, &c1);
        a_qkv = k->h1;
    }
    qkv_view v = qkv_of(c, b, k->qkv, R);
    if (ptq_linear_present(&b->lin[PTQ_LIN_QKV])) {
        ptq_linear_forward_float(&b->lin[PTQ_LIN_QKV], a_qkv, R, k->qkv);
    } else {
        ptq_linear_forward_float(&b->lin[PTQ_LIN_Q], a_qkv, R, v.q);
        ptq_linear_forward_float(&b->lin[PTQ_LIN_K], a_qkv, R, v.k);
        ptq_linear_forward_float(&b->lin[PTQ_LIN_V], a_qkv, R, v.v);
    }
    ptq_rope(c->rope, v.q, R, T, v.qs, c->n_heads, c->head_dim, 0, c->rope_theta);
    ptq_rope(c->rope, v.k, R, T, v.ks, c->n_kv_heads, c->head_dim, 0, c->rope_theta);
    int H = c->n_heads, hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    size_t pp = (size_t)H * T * T;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (S * H > 1)
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++) {
            size_t r0 = (size_t)s * T;
            int kh = h / group;
            ptq_train_attn_head_fwd(v.q + r0 * v.qs + (size_t)h * hd, v.qs, v.k + r0 * v.ks + (size_t)kh * hd, v.ks,
                                    v.v + r0 * v.vs + (size_t)kh * hd, v.vs, k->att + r0 * qd + (size_t)h * hd, qd, T,
                                    hd, c->causal, k->probs + (size_t)s * pp + (size_t)h * T * T);
        }
    ptq_linear_forward_float(&b->lin[PTQ_LIN_O], k->att, R, y);
    for (size_t i = 0; i < nD; i++) k->mid[i] = xin[i] + y[i];
    if (c->pre_norm) ptq_norm_forward_cache(c, &b->norm2, k->mid, R, k->h2, &c2);
    else ptq_norm_forward_cache(c, &b->norm1, k->mid, R, k->h2, &c1);
    if (c->gated_mlp) {
        ptq_linear_forward_float(&b->lin[PTQ_LIN_GATE], k->h2, R, k->gate);
        ptq_linear_forward_float(&b->lin[PTQ_LIN_UP], k->h2, R, k->up);
        ptq_gated_forward(c->act, k->gate, k->up, k->u, nF);
    } else {
        ptq_linear_forward_float(&b->lin[PTQ_LIN_UP], k->h2, R, k->up);
        memcpy(k->u, k->up, nF * sizeof(float));
        ptq_act_inplace(c->act, k->u, nF);
    }
    ptq_linear_forward_float(&b->lin[PTQ_LIN_DOWN], k->u, R, y);
    if (c->pre_norm) {
        for (size_t i = 0; i < nD; i++) y[i] += k->mid[i];
    } else {
        for (size_t i = 0; i < nD; i++) k->s2[i] = k->h2[i] + y[i];
        ptq_norm_forward_cache(c, &b->norm2, k->s2, R, y, &c2);
    }
    double out = 0;
    if (x->oc) {
        /* terms whose gradient the backward computes are valued there (one pass instead of two) */
#define VALUE_HERE(bit) (reported(x, bit) && !(x->want_grad && monitored(x, bit)))
        if (VALUE_HERE(PTQ_MON_QKV)) out += outlier_term(x, a_qkv, nD, NULL);
        if (VALUE_HERE(PTQ_MON_PROJ)) out += outlier_term(x, k->att, (size_t)R * qd, NULL);
        if (VALUE_HERE(PTQ_MON_FC1)) out += outlier_term(x, k->h2, nD, NULL);
        if (VALUE_HERE(PTQ_MON_FC2)) out += outlier_term(x, k->u, nF, NULL);
#undef VALUE_HERE
    }
    return out;
}

/* dy: gradient of the block output (consumed: may be overwritten); dxin (zeroed here) receives the gradient of
 * the block input. */
static ptq_status block_backward(ctx *x, int l, const float *xin, float *dy, float *dxin, ptq_error *err) {
    const ptq_model *m = x->t->m;
    const ptq_config *c = &m->cfg;
    const ptq_block *b = &m->blocks[l];
    ptq_block_grad *g = &x->t->g_blocks[l];
    blk_cache *k = &x->ws->bc[l];
    ptq_train_ws *ws = x->ws;
    int R = x->R, T = x->T, S = x->n_seq;
    int D = c->dim, F = c->hidden_dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    size_t nD = (size_t)R * D, nF = (size_t)R * F;
    ptq_norm_cache c1 = {k->n1_mean, k->n1_rstd}, c2 = {k->n2_mean, k->n2_rstd};
    (void)err;

    /* gradient at the MLP output residual sum: pre-norm y = m + d; post-norm y = norm2(s2), s2 = x1 + d */
    float *dsum = dy;
    if (!c->pre_norm) {
        zero(ws->dx2, nD);
        ptq_norm_backward(c, &b->norm2, k->s2, dy, &c2, R, ws->dx2, &g->norm2);
        dsum = ws->dx2;
    }
    /* DOWN */
    zero(ws->du, nF);
    const ptq_linear *ld = &b->lin[PTQ_LIN_DOWN];
    ptq_linear_backward(k->u, ld->w, dsum, R, F, D, ws->du, g->lin[PTQ_LIN_DOWN].w, g->lin[PTQ_LIN_DOWN].b);
    if (monitored(x, PTQ_MON_FC2)) x->outlier_bwd += outlier_term(x, k->u, nF, ws->du);
    /* activation, GATE / UP -> dh (gradient of the MLP input h2) */
    zero(ws->dup, nF);
    zero(ws->dh, nD);
    if (c->gated_mlp) {
        zero(ws->dg, nF);
        ptq_gated_backward(c->act, k->gate, k->up, ws->du, ws->dg, ws->dup, nF);
        ptq_linear_backward(k->h2, b->lin[PTQ_LIN_GATE].w, ws->dg, R, D, F, ws->dh, g->lin[PTQ_LIN_GATE].w,
                            g->lin[PTQ_LIN_GATE].b);
    } else {
        ptq_act_backward(c->act, k->up, ws->du, ws->dup, nF);
    }
    ptq_linear_backward(k->h2, b->lin[PTQ_LIN_UP].w, ws->dup, R, D, F, ws->dh, g->lin[PTQ_LIN_UP].w,
                        g->lin[PTQ_LIN_UP].b);
    if (monitored(x, PTQ_MON_FC1)) x->outlier_bwd += outlier_term(x, k->h2, nD, ws->dh);
    /* gradient at the attention residual sum (m or s1), in dxin for now */
    float *dmid = dxin;
    if (c->pre_norm) {
        memcpy(dmid, dsum, nD * sizeof(float));
        ptq_norm_backward(c, &b->norm2, k->mid, ws->dh, &c2, R, dmid, &g->norm2);
    } else {
        ptq_add_acc(ws->dh, dsum, nD); /* x1 feeds the residual too */
        zero(dmid, nD);
        ptq_norm_backward(c, &b->norm1, k->mid, ws->dh, &c1, R, dmid, &g->norm1);
    }
    /* O */
    zero(ws->datt, (size_t)R * qd);
    ptq_linear_backward(k->att, b->lin[PTQ_LIN_O].w, dmid, R, qd, D, ws->datt, g->lin[PTQ_LIN_O].w,
                        g->lin[PTQ_LIN_O].b);
    if (monitored(x, PTQ_MON_PROJ)) x->outlier_bwd += outlier_term(x, k->att, (size_t)R * qd, ws->datt);
    /* attention */
    qkv_view v = qkv_of(c, b, k->qkv, R), dv = qkv_of(c, b, ws->dqkv, R);
    zero(ws->dqkv, (size_t)R * (qd + 2 * kvd));
    int H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, group = H / KV;
    size_t pp = (size_t)H * T * T;
    /* one (sequence, kv head) per iteration: it owns dK and dV of that kv head, summed over its query heads */
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (S * KV > 1)
    for (int s = 0; s < S; s++)
        for (int kh = 0; kh < KV; kh++) {
            size_t r0 = (size_t)s * T;
            float *W = ws->attn_work + (size_t)omp_get_thread_num() * T * T;
            for (int h = kh * group; h < (kh + 1) * group; h++)
                ptq_train_attn_head_bwd(v.q + r0 * v.qs + (size_t)h * hd, v.qs, v.k + r0 * v.ks + (size_t)kh * hd,
                                        v.ks, v.v + r0 * v.vs + (size_t)kh * hd, v.vs,
                                        k->probs + (size_t)s * pp + (size_t)h * T * T, ws->datt + r0 * qd + (size_t)h * hd,
                                        qd, dv.q + r0 * dv.qs + (size_t)h * hd, dv.k + r0 * dv.ks + (size_t)kh * hd,
                                        dv.v + r0 * dv.vs + (size_t)kh * hd, T, hd, W);
        }
    ptq_rope_backward(c->rope, dv.q, R, T, dv.qs, c->n_heads, c->head_dim, 0, c->rope_theta);
    ptq_rope_backward(c->rope, dv.k, R, T, dv.ks, c->n_kv_heads, c->head_dim, 0, c->rope_theta);
    /* QKV -> gradient of its input (h1, or the block input for post-norm) */
    const float *a_qkv = c->pre_norm ? k->h1 : xin;
    float *da = c->pre_norm ? ws->dh : dxin;
    if (c->pre_norm) zero(ws->dh, nD); /* post-norm: dxin holds dmid, the residual part, and QKV's adds to it */
    if (ptq_linear_present(&b->lin[PTQ_LIN_QKV])) {
        ptq_linear_backward(a_qkv, b->lin[PTQ_LIN_QKV].w, ws->dqkv, R, D, qd + 2 * kvd, da,
                            g->lin[PTQ_LIN_QKV].w, g->lin[PTQ_LIN_QKV].b);
    } else {
        ptq_linear_backward(a_qkv, b->lin[PTQ_LIN_Q].w, dv.q, R, D, qd, da, g->lin[PTQ_LIN_Q].w, g->lin[PTQ_LIN_Q].b);
        ptq_linear_backward(a_qkv, b->lin[PTQ_LIN_K].w, dv.k, R, D, kvd, da, g->lin[PTQ_LIN_K].w, g->lin[PTQ_LIN_K].b);
        ptq_linear_backward(a_qkv, b->lin[PTQ_LIN_V].w, dv.v, R, D, kvd, da, g->lin[PTQ_LIN_V].w, g->lin[PTQ_LIN_V].b);
    }
    if (monitored(x, PTQ_MON_QKV)) x->outlier_bwd += outlier_term(x, a_qkv, nD, da);
    if (c->pre_norm) ptq_norm_backward(c, &b->norm1, xin, ws->dh, &c1, R, dxin, &g->norm1); /* dxin = dmid + ... */
    return PTQ_OK;
}

/* ---------------------------------------------------------------- embeddings */

static ptq_status embed_forward(ctx *x, const ptq_batch *bt, float *x0, ptq_error *err) {
    const ptq_model *m = x->t->m;
    const ptq_config *c = &m->cfg;
    ptq_train_ws *ws = x->ws;
    int R = x->R, T = x->T, S = x->n_seq;
    if (c->arch == PTQ_ARCH_VIT) {
        int g = c->img_size / c->patch_size, np = g * g;
        ptq_patchify(bt->pixels, S, c->in_chans, c->img_size, c->patch_size, ws->patches);
        ptq_linear_forward_float(&m->patch, ws->patches, S * np, ws->emb);
        ptq_cls_concat(c->cls_token ? m->cls_token : NULL, ws->emb, S, np, c->dim, x0);
        if (m->pos_emb) ptq_pos_add(x0, R, T, c->dim, 0, m->pos_emb);
        return PTQ_OK;
    }
    for (int i = 0; i < R; i++)
        if (bt->tokens[i] < 0 || bt->tokens[i] >= c->vocab_size)
            return ptq_fail(err, PTQ_ERR_ARG, "token id %d (sequence %d, position %d) is outside the vocabulary of %d",
                            bt->tokens[i], i / T, i % T, c->vocab_size);
    if (ptq_linear_present(&m->proj_in)) {
        ptq_embedding_forward(m->tok_emb, bt->tokens, R, c->embed_dim, ws->e_in);
        ptq_linear_forward_float(&m->proj_in, ws->e_in, R, x0);
    } else {
        ptq_embedding_forward(m->tok_emb, bt->tokens, R, c->dim, x0);
    }
    if (m->pos_emb) ptq_pos_add(x0, R, T, c->dim, c->pos_offset, m->pos_emb);
    return PTQ_OK;
}

static ptq_status embed_backward(ctx *x, const ptq_batch *bt, const float *dx0, ptq_error *err) {
    const ptq_model *m = x->t->m;
    const ptq_config *c = &m->cfg;
    ptq_trainable *t = x->t;
    ptq_train_ws *ws = x->ws;
    int R = x->R, T = x->T, S = x->n_seq;
    if (m->pos_emb && t->g_pos_emb) ptq_pos_add_backward(dx0, R, T, c->dim, c->arch == PTQ_ARCH_VIT ? 0 : c->pos_offset,
                                                         t->g_pos_emb);
    if (c->arch == PTQ_ARCH_VIT) {
        int g = c->img_size / c->patch_size, np = g * g;
        zero(ws->demb, (size_t)S * np * c->dim);
        ptq_cls_concat_backward(dx0, S, np, c->dim, c->cls_token, t->g_cls, ws->demb);
        ptq_linear_backward(ws->patches, m->patch.w, ws->demb, S * np, m->patch.in, m->patch.out, NULL, t->g_patch.w,
                            t->g_patch.b);
        return PTQ_OK;
    }
    if (ptq_linear_present(&m->proj_in)) {
        zero(ws->de, (size_t)R * c->embed_dim);
        ptq_linear_backward(ws->e_in, m->proj_in.w, dx0, R, c->embed_dim, c->dim, ws->de, t->g_proj_in.w, NULL);
        if (t->g_tok_emb) PTQ_TRY(ptq_embedding_backward(bt->tokens, R, ws->de, c->embed_dim, c->vocab_size,
                                                         t->g_tok_emb, err));
    } else if (t->g_tok_emb) {
        PTQ_TRY(ptq_embedding_backward(bt->tokens, R, dx0, c->dim, c->vocab_size, t->g_tok_emb, err));
    }
    return PTQ_OK;
}

/* ---------------------------------------------------------------- head + loss */

/* Final norm, project_out, head and cross-entropy; with want_grad, dxL (zeroed here) gets the gradient of the
 * last residual state. */
static ptq_status head_loss(ctx *x, const ptq_batch *bt, const float *xL, float *dxL, ptq_loss_parts *out,
                            ptq_error *err) {
    const ptq_model *m = x->t->m;
    const ptq_config *c = &m->cfg;
    ptq_trainable *t = x->t;
    ptq_train_ws *ws = x->ws;
    int vit = c->arch == PTQ_ARCH_VIT;
    int HR = vit ? x->n_seq : x->R, D = c->dim, V = c->vocab_size;
    const float *xin = xL;
    if (vit) {
        for (int s = 0; s < x->n_seq; s++)
            memcpy(ws->xc + (size_t)s * D, xL + (size_t)s * x->T * D, (size_t)D * sizeof(float));
        xin = ws->xc;
    }
    ptq_norm_cache fc = {ws->hf_mean, ws->hf_rstd};
    const float *hin = xin;
    if (m->final_norm.w) {
        ptq_norm_forward_cache(c, &m->final_norm, xin, HR, ws->hf, &fc);
        hin = ws->hf;
    }
    int po = ptq_linear_present(&m->proj_out);
    const float *e = hin;
    int Ein = po ? m->proj_out.out : D;
    if (po) {
        ptq_linear_forward_float(&m->proj_out, hin, HR, ws->he);
        e = ws->he;
    }
    const int *tg = bt->targets;
    int total = 0;
    for (int r = 0; r < HR; r++) {
        if (tg[r] < -1 || tg[r] >= V)
            return ptq_fail(err, PTQ_ERR_ARG, "target %d of row %d is outside [0, %d)", tg[r], r, V);
        total += tg[r] != -1;
    }
    out->n_targets = total;
    out->correct = 0;
    /* gradient of e (the head input) */
    float *de = po ? ws->dhe : m->final_norm.w ? ws->dhf : vit ? ws->dxc : dxL;
    if (x->want_grad) zero(de, (size_t)HR * Ein);
    double ce = 0;
    for (int r0 = 0; r0 < HR; r0 += ws->chunk) {
        int cr = HR - r0 < ws->chunk ? HR - r0 : ws->chunk;
        const float *ec = e + (size_t)r0 * Ein;
        ptq_linear_forward_float(&m->head, ec, cr, ws->logits);
        int nv = 0;
        for (int r = 0; r < cr; r++) nv += tg[r0 + r] != -1;
        if (nv == 0) continue;
        if (vit)
            for (int r = 0; r < cr; r++) {
                const float *lr = ws->logits + (size_t)r * V;
                int best = 0;
                for (int i = 1; i < V; i++)
                    if (lr[i] > lr[best]) best = i;
                out->correct += best == tg[r0 + r];
            }
        double l;
        if (x->want_grad) zero(ws->dlogits, (size_t)cr * V);
        PTQ_TRY(ptq_cross_entropy(ws->logits, tg + r0, cr, V, &l, x->want_grad ? ws->dlogits : NULL,
                                  (float)((double)nv / total), NULL, err));
        ce += l * nv / total;
        if (x->want_grad)
            ptq_linear_backward(ec, m->head.w, ws->dlogits, cr, Ein, V, de + (size_t)r0 * Ein, t->g_head.w, t->g_head.b);
    }
    out->ce = ce;
    if (!x->want_grad) return PTQ_OK;
    float *dh = m->final_norm.w ? ws->dhf : vit ? ws->dxc : dxL;
    if (po) {
        zero(dh, (size_t)HR * D);
        ptq_linear_backward(hin, m->proj_out.w, ws->dhe, HR, D, Ein, dh, t->g_proj_out.w, NULL);
    }
    float *dxin = vit ? ws->dxc : dxL;
    if (m->final_norm.w) {
        zero(dxin, (size_t)HR * D);
        ptq_norm_backward(c, &m->final_norm, xin, ws->dhf, &fc, HR, dxin, &t->g_final_norm);
    }
    if (vit) {
        zero(dxL, (size_t)x->R * D);
        for (int s = 0; s < x->n_seq; s++)
            memcpy(dxL + (size_t)s * x->T * D, ws->dxc + (size_t)s * D, (size_t)D * sizeof(float));
    }
    return PTQ_OK;
}

/* ---------------------------------------------------------------- the whole model */

ptq_status ptq_train_forward_backward(ptq_trainable *t, ptq_train_ws *ws, const ptq_batch *b,
                                      const ptq_outlier_cfg *oc, int want_grad, ptq_loss_parts *out, ptq_error *err) {
    const ptq_model *m = t->m;
    const ptq_config *c = &m->cfg;
    memset(out, 0, sizeof *out);
    int T = c->arch == PTQ_ARCH_VIT ? c->max_seq : b->seq_len;
    if (b->n_seq < 1 || T < 1) return ptq_fail(err, PTQ_ERR_ARG, "empty batch");
    if (c->arch == PTQ_ARCH_VIT) {
        if (!b->pixels || !b->targets) return ptq_fail(err, PTQ_ERR_ARG, "a ViT batch needs pixels and labels");
    } else {
        if (!b->tokens || !b->targets) return ptq_fail(err, PTQ_ERR_ARG, "a language-model batch needs tokens and targets");
        if (T > c->max_seq)
            return ptq_fail(err, PTQ_ERR_ARG, "sequences of %d tokens exceed the model's context of %d", T, c->max_seq);
        if (m->pos_emb && T + c->pos_offset > m->n_pos)
            return ptq_fail(err, PTQ_ERR_ARG, "sequences of %d tokens exceed the %d learned positions", T, m->n_pos);
    }
    PTQ_TRY(ws_ensure(ws, m, b->n_seq, T, err));
    ctx x = {t, ws, oc, b->n_seq, T, b->n_seq * T, want_grad, 0.0};
    size_t nD = (size_t)x.R * c->dim;
    int L = c->n_layers;
    PTQ_TRY(embed_forward(&x, b, ws->xs, err));
    double outl = 0;
    for (int l = 0; l < L; l++) outl += block_forward(&x, l, ws->xs + (size_t)l * nD, ws->xs + (size_t)(l + 1) * nD);
    PTQ_TRY(head_loss(&x, b, ws->xs + (size_t)L * nD, ws->dx, out, err));
    out->outlier = outl;
    out->loss = out->ce + (oc ? (double)oc->lambda * outl : 0.0);
    if (!want_grad) return PTQ_OK;
    /* the gradient ping-pongs between ws->dx and the last residual state xs[L], which the backward no longer
     * needs (every block keeps what it needs in its cache, and block l reads only xs[l], l < L) */
    float *bufA = ws->dx, *bufB = ws->xs + (size_t)L * nD, *dy = bufA;
    for (int l = L - 1; l >= 0; l--) {
        float *din = dy == bufA ? bufB : bufA;
        PTQ_TRY(block_backward(&x, l, ws->xs + (size_t)l * nD, dy, din, err));
        dy = din;
    }
    PTQ_TRY(embed_backward(&x, b, dy, err));
    out->outlier += x.outlier_bwd;
    if (oc) out->loss = out->ce + (double)oc->lambda * out->outlier;
    return PTQ_OK;
}
