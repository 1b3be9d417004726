/* The weight-quantization pipeline: block by block over calibration data (DESIGN.md "the one data flow").
 * For each block: one forward pass accumulates, for every distinct linear-layer input, the Hessian
 * H = 2 X^T X / n in float32 (as the reference GPTQ does: half the memory of double, which on a 7B model's
 * block is 1.4 GB, and GPTQ's output error does not move, RESULTS.md); every linear of the block is then
 * quantized (RTN or GPTQ); a second pass through the now-quantized block produces the next block's inputs.
 * The stream between blocks is float32 or, with --calib-dtype, bf16/f16 (calib_stream.h). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "methods/bias_compensation.h"
#include "methods/noisyquant.h"
#include "quant/act_calib.h"
#include "quant/calib_stream.h"
#include "quant/dist.h"
#include "models/forward.h"
#include "models/gguf_export.h"
#include "quant/ggml_quants.h"
#include "quant/head_embed.h"
#include "quant/quantizer.h"

ptq_quant_params ptq_quant_default_params(void) {
    ptq_quant_params p;
    memset(&p, 0, sizeof p);
    p.wbits = 4;
    p.group = 0;
    p.method = PTQ_WQ_GPTQ;
    p.percdamp = 0.01;
    p.act_calib = PTQ_AQ_MINMAX;
    p.act_percentile = 99.99;
    p.seed = 1;
    return p;
}

uint64_t ptq_hash_bytes(const void *data, size_t n, uint64_t seed) {
    const unsigned char *b = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void add_summary(const ptq_linear *lin, ptq_quant_summary *s) {
    s->noisy_linears += ptq_nq_has_noise(lin);
    const ptq_qweight *q = lin->q;
    if (!q) return;
    s->linears++;
    s->weights += (int64_t)q->in * q->out;
    s->bits += (double)q->bits * q->in * q->out + (q->zeros ? 24.0 : 16.0) * q->out * q->n_groups +
               (q->perm ? 32.0 * q->in : 0);
}

void ptq_model_quant_summary(const ptq_model *m, ptq_quant_summary *s) {
    memset(s, 0, sizeof *s);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++) add_summary(&m->blocks[l].lin[r], s);
    add_summary(&m->head, s);
    s->bits_per_weight = s->weights ? s->bits / (double)s->weights : 0;
}

/* Linears that read the same input share one Hessian. */
enum { H_ATTN_IN = 0, H_O_IN, H_MLP_IN, H_DOWN_IN, H_COUNT };

static int hessian_of(ptq_lin_role r) {
    switch (r) {
    case PTQ_LIN_QKV:
    case PTQ_LIN_Q:
    case PTQ_LIN_K:
    case PTQ_LIN_V: return H_ATTN_IN;
    case PTQ_LIN_O: return H_O_IN;
    case PTQ_LIN_GATE:
    case PTQ_LIN_UP: return H_MLP_IN;
    default: return H_DOWN_IN;
    }
}

typedef struct {
    const ptq_model *m;
    float *H[H_COUNT];
    int dim[H_COUNT];
    int64_t rows[H_COUNT];
} hess_ctx;

static int accumulate(void *user, int layer, ptq_lin_role role, const ptq_linear *lin, const float *X,
                      const float *Y, int rows) {
    (void)layer;
    (void)Y;
    hess_ctx *c = user;
    int h = hessian_of(role);
    /* only the first linear reading a given input accumulates it */
    const ptq_linear *L = c->m->blocks[layer].lin;
    if ((role == PTQ_LIN_K || role == PTQ_LIN_V) || (role == PTQ_LIN_UP && ptq_linear_present(&L[PTQ_LIN_GATE])))
        return 0;
    /* one batch's X^T X is added to the float sum (a batch holds ptq_calib_chunk's 4096 tokens) */
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, lin->in, rows, 1.0f, X, lin->in, 1.0f, c->H[h], lin->in);
    c->rows[h] += rows;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *method_name(ptq_wq_method m) { return m == PTQ_WQ_GPTQ ? "gptq" : "rtn"; }

static ptq_gguf_tensor_kind ggml_kind(ptq_lin_role r) {
    switch (r) {
    case PTQ_LIN_QKV: return PTQ_GT_ATTN_QKV;
    case PTQ_LIN_Q: return PTQ_GT_ATTN_Q;
    case PTQ_LIN_K: return PTQ_GT_ATTN_K;
    case PTQ_LIN_V: return PTQ_GT_ATTN_V;
    case PTQ_LIN_O: return PTQ_GT_ATTN_OUTPUT;
    case PTQ_LIN_GATE: return PTQ_GT_FFN_GATE;
    case PTQ_LIN_UP: return PTQ_GT_FFN_UP;
    default: return PTQ_GT_FFN_DOWN;
    }
}

/* A double copy of an n x n float Hessian, for the consumers that read double (GPTQ into ggml types, the layer
 * error): one at a time, freed by the caller. */
static double *hessian_double(const float *H, int n, ptq_error *err) {
    double *d = ptq_alloc((size_t)n * n, sizeof(double), "Hessian (double copy)", err);
    for (size_t i = 0; d && i < (size_t)n * n; i++) d[i] = H[i];
    return d;
}

/* One linear into the ggml type llama.cpp's rules give it (GPTQ against the type's grid, or RTN = ggml's own
 * rounding); the runtime path then uses the dequantized weights. */

static ptq_status quantize_ggml(ptq_model *m, int l, ptq_lin_role r, const double *H, const ptq_quant_params *p,
                                double *rel, ptq_error *err) {
    ptq_linear *lin = &m->blocks[l].lin[r];
    const ptq_config *c = &m->cfg;
    ptq_gguf_type_ctx tc = {(ptq_gguf_ftype)p->ggml_ftype, p->ggml_pure, c->n_layers, c->n_heads / c->n_kv_heads,
                            m->tok_emb && m->head.w == m->tok_emb};
    uint32_t t = ptq_gguf_tensor_type(&tc, ggml_kind(r), l, lin->in);
    size_t nb = (size_t)lin->out * ptq_ggml_row_bytes(t, lin->in);
    if (!nb) return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: no ggml type for rows of %d", lin->name, lin->in);
    void *bytes = ptq_alloc(nb, 1, lin->name, err);
    if (!bytes) return PTQ_ERR_NOMEM;
    ptq_status s = ptq_model_own(m, bytes, err); /* frees bytes when it fails */
    if (s != PTQ_OK) return s;
    if (p->method == PTQ_WQ_GPTQ && ptq_ggml_quant_supported(t)) {
        ptq_gptq_ggml_params gp = ptq_gptq_ggml_default_params(t);
        gp.percdamp = p->percdamp > 0 ? p->percdamp : 0.01;
        s = ptq_gptq_ggml_quantize(lin->w, lin->out, lin->in, H, &gp, bytes, nb, &p->cb, err);
    } else { /* RTN, and the F16 fallback of rows no block divides */
        s = ptq_ggml_quantize_rows(t, lin->w, bytes, lin->out, lin->in, err);
    }
    float *wq = s == PTQ_OK ? ptq_model_floats(m, (size_t)lin->out * lin->in, lin->name, err) : NULL;
    if (s == PTQ_OK && !wq) s = err->status ? err->status : PTQ_ERR_NOMEM;
    if (s == PTQ_OK) s = ptq_ggml_dequantize_rows(t, bytes, wq, lin->out, lin->in, err);
    if (s != PTQ_OK) return s;
    lin->ggml = bytes;
    lin->ggml_type = t;
    lin->wq = wq;
    *rel = ptq_dense_rel_error(lin->w, wq, lin->out, lin->in, H);
    return PTQ_OK;
}

static ptq_status quantize_block(ptq_model *m, int l, hess_ctx *hc, const ptq_quant_params *p, int *done,
                                 int total, const char *stage, ptq_error *err) {
    /* finish the Hessians: mirror the upper triangle, scale by 2/n */
    for (int h = 0; h < H_COUNT; h++) {
        int n = hc->dim[h];
        float s = hc->rows[h] > 0 ? (float)(2.0 / (double)hc->rows[h]) : 0;
        for (int a = 0; a < n; a++)
            for (int b = a; b < n; b++) {
                float v = hc->H[h][(size_t)a * n + b] * s;
                hc->H[h][(size_t)a * n + b] = v;
                hc->H[h][(size_t)b * n + a] = v;
            }
    }
    double *Hd = NULL; /* the double copy of Hessian Hd_of, made when a consumer needs it */
    int Hd_of = -1;
    ptq_status st = PTQ_OK;
    for (int r = 0; r < PTQ_LIN_COUNT; r++) {
        ptq_linear *lin = &m->blocks[l].lin[r];
        if (!lin->w) continue;
        int h = hessian_of((ptq_lin_role)r);
        const float *H = hc->H[h];
        if ((p->ggml || !p->skip_layer_error) && Hd_of != h) {
            ptq_free(Hd);
            Hd_of = (Hd = hessian_double(H, hc->dim[h], err)) ? h : -1;
            if (!Hd) {
                st = PTQ_ERR_NOMEM;
                break;
            }
        }
        double t0 = now_s();
        if (p->ggml) {
            double rel = 0;
            if (quantize_ggml(m, l, (ptq_lin_role)r, Hd, p, &rel, err) != PTQ_OK) {
                st = ptq_fail_context(err, "quantizing %s", lin->name);
                break;
            }
            ptq_layer_report rep = {lin->name, l, lin->in, lin->out, now_s() - t0, rel};
            if (p->report) p->report(p->report_user, &rep);
            ptq_progress(&p->cb, stage, ++*done, total);
            continue;
        }
        ptq_qweight *q = calloc(1, sizeof *q);
        if (!q) {
            st = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory quantizing %s", lin->name);
            break;
        }
        /* with activation quantization, per-channel weights use the restricted symmetric grid, so the
           layer can run on the int8 kernels */
        int restricted = p->abits > 0 && p->group <= 0;
        ptq_wq_params wq = {p->wbits, p->group, p->sym || restricted, restricted};
        ptq_status s;
        if (p->method == PTQ_WQ_GPTQ) {
            ptq_gptq_params gp = ptq_gptq_default_params();
            gp.wq = wq;
            gp.act_order = p->act_order;
            gp.percdamp = p->percdamp > 0 ? p->percdamp : 0.01;
            gp.reference_groups = !p->gptq_updated_groups;
            s = ptq_gptq_quantize(lin->w, lin->out, lin->in, H, &gp, q, &p->cb, err);
        } else {
            s = ptq_rtn_quantize(lin->w, lin->out, lin->in, &wq, q, err);
        }
        if (s != PTQ_OK) {
            free(q);
            st = ptq_fail_context(err, "quantizing %s", lin->name);
            break;
        }
        lin->q = q;
        ptq_layer_report rep = {lin->name, l, lin->in, lin->out, now_s() - t0,
                                p->skip_layer_error ? NAN : ptq_layer_rel_error(lin->w, q, lin->out, lin->in, Hd)};
        if (p->report) p->report(p->report_user, &rep);
        ptq_progress(&p->cb, stage, ++*done, total);
        /* streamed weights: without BC or activation calibration nothing reads this float copy again */
        if (!p->bc_scope && !p->abits) ptq_linear_release(lin);
    }
    ptq_free(Hd);
    return st;
}

/* Embed a calibration set into a residual stream [n_seq * T][dim] stored as `dtype`: this process's share of its
 * sequences (all of them without a process split); a compact stream is filled a sequence at a time. */
static ptq_status embed_stream(ptq_model *m, const ptq_calib_data *d, const ptq_dist *dist, ptq_calib_dtype dtype,
                               ptq_calib_stream *cs, int *n_seq, int *T, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    memset(cs, 0, sizeof *cs);
    if (c->arch == PTQ_ARCH_VIT) {
        if (!d->images || d->images->count <= 0)
            return ptq_fail(err, PTQ_ERR_ARG, "%s: a ViT needs image calibration data", m->path);
        *n_seq = d->images->count;
        *T = c->max_seq;
    } else {
        if (!d->tokens || d->n_seqs <= 0 || d->seq_len <= 0)
            return ptq_fail(err, PTQ_ERR_ARG, "%s: a language model needs token calibration data", m->path);
        *n_seq = d->n_seqs;
        *T = d->seq_len;
        if (*T > c->max_seq)
            return ptq_fail(err, PTQ_ERR_ARG, "calibration windows of %d tokens exceed the context of %d", *T,
                            c->max_seq);
    }
    int s0, s1, chunk = ptq_calib_chunk(*T);
    ptq_dist_share(dist, *n_seq, chunk, &s0, &s1);
    if (s1 <= s0)
        return ptq_fail(err, PTQ_ERR_ARG,
                        "%d calibration sequences (%d batches of %d) cannot be split across %d processes: every "
                        "process needs a batch", *n_seq, (*n_seq + chunk - 1) / chunk, chunk, dist->size);
    *n_seq = s1 - s0;
    size_t per = (size_t)*T * c->dim;
    PTQ_TRY(ptq_calib_stream_alloc(cs, dtype, (size_t)*n_seq * per, err));
    float *x = cs->f ? cs->f : ptq_alloc(per, sizeof(float), "calibration sequence", err);
    ptq_status s = x ? PTQ_OK : PTQ_ERR_NOMEM;
    if (s == PTQ_OK && c->arch == PTQ_ARCH_VIT && cs->f) {
        size_t img = (size_t)d->images->channels * d->images->height * d->images->width;
        s = ptq_embed_images(m, d->images->pixels + (size_t)s0 * img, *n_seq, x, err);
    } else {
        size_t img = d->images ? (size_t)d->images->channels * d->images->height * d->images->width : 0;
        for (int i = 0; s == PTQ_OK && i < *n_seq; i++) {
            float *xi = cs->f ? x + i * per : x;
            if (c->arch == PTQ_ARCH_VIT) s = ptq_embed_images(m, d->images->pixels + (size_t)(s0 + i) * img, 1, xi, err);
            else s = ptq_embed_tokens(m, d->tokens + (size_t)(s0 + i) * *T, *T, 0, xi, err);
            if (s == PTQ_OK && !cs->f) s = ptq_calib_stream_put(cs, i * per, per, x, err);
        }
    }
    if (!cs->f) ptq_free(x);
    if (s != PTQ_OK) ptq_calib_stream_free(cs);
    return s;
}

/* Push a stream through block l (float or runtime path), in chunks. */
static ptq_status advance(ptq_model *m, int l, float *x, int n_seq, int T, int float_weights, ptq_error *err) {
    int chunk = ptq_calib_chunk(T); /* the batches a process split keeps whole (dist.h) */
    size_t per = (size_t)T * m->cfg.dim;
    ptq_block_opts o = {NULL, NULL, float_weights, NULL, NULL};
    for (int i = 0; i < n_seq; i += chunk) {
        int k = n_seq - i < chunk ? n_seq - i : chunk;
        PTQ_TRY(ptq_block_forward_ex(m, l, x + i * per, k, T, 0, NULL, &o, err));
    }
    return PTQ_OK;
}

/* A float Hessian summed over the processes, in double, a slice at a time (every process makes the same calls). */
static ptq_status dist_sum_floats(const ptq_dist *dist, float *buf, size_t n, ptq_error *err) {
    enum { SLICE = 1 << 20 };
    double *d = ptq_alloc(n < SLICE ? n : SLICE, sizeof(double), "Hessian sum", err);
    if (!d) return PTQ_ERR_NOMEM;
    ptq_status s = PTQ_OK;
    for (size_t i = 0; s == PTQ_OK && i < n; i += SLICE) {
        size_t k = n - i < SLICE ? n - i : SLICE;
        for (size_t j = 0; j < k; j++) d[j] = buf[i + j];
        s = ptq_dist_sum(dist, d, k, "a Hessian", err);
        for (size_t j = 0; s == PTQ_OK && j < k; j++) buf[i + j] = (float)d[j];
    }
    ptq_free(d);
    return s;
}

/* advance on a calibration stream: a compact one a batch at a time through a float32 copy, stored back rounded. */
static ptq_status advance_stream(ptq_model *m, int l, ptq_calib_stream *cs, int n_seq, int T, ptq_error *err) {
    if (cs->f) return advance(m, l, cs->f, n_seq, T, 0, err);
    int chunk = ptq_calib_chunk(T);
    size_t per = (size_t)T * m->cfg.dim;
    float *x = ptq_alloc((size_t)chunk * per, sizeof(float), "calibration batch", err);
    if (!x) return PTQ_ERR_NOMEM;
    ptq_status s = PTQ_OK;
    for (int i = 0; s == PTQ_OK && i < n_seq; i += chunk) {
        int k = n_seq - i < chunk ? n_seq - i : chunk;
        ptq_calib_stream_get(cs, i * per, k * per, x);
        s = advance(m, l, x, k, T, 0, err);
        if (s == PTQ_OK) s = ptq_calib_stream_put(cs, i * per, k * per, x, err);
    }
    ptq_free(x);
    return s;
}

/* The Hessians of block l from this process's stream x; with a process split, summed over the processes
 * (each sums its own chunks in order, then the sums are added: equal to the single-process sums up to
 * the order of the additions). */
static ptq_status accumulate_hessians(ptq_model *m, int l, hess_ctx *hc, const ptq_calib_stream *x, int n_seq, int T,
                                      const ptq_dist *dist, ptq_error *err) {
    int chunk = ptq_calib_chunk(T); /* the batches a process split keeps whole (dist.h) */
    size_t per = (size_t)T * m->cfg.dim;
    for (int h = 0; h < H_COUNT; h++) {
        memset(hc->H[h], 0, (size_t)hc->dim[h] * hc->dim[h] * sizeof(float));
        hc->rows[h] = 0;
    }
    float *xs = ptq_alloc((size_t)chunk * per, sizeof(float), "calibration chunk", err);
    if (!xs) return PTQ_ERR_NOMEM;
    ptq_status s = PTQ_OK;
    for (int i = 0; s == PTQ_OK && i < n_seq; i += chunk) {
        int k = n_seq - i < chunk ? n_seq - i : chunk;
        ptq_calib_stream_get(x, i * per, k * per, xs);
        s = ptq_block_forward(m, l, xs, k, T, 0, NULL, accumulate, hc, err);
    }
    ptq_free(xs);
    for (int h = 0; s == PTQ_OK && ptq_dist_on(dist) && h < H_COUNT; h++) {
        double rows = (double)hc->rows[h];
        s = dist_sum_floats(dist, hc->H[h], (size_t)hc->dim[h] * hc->dim[h], err);
        if (s == PTQ_OK) s = ptq_dist_sum(dist, &rows, 1, "Hessian rows", err);
        hc->rows[h] = (int64_t)rows;
    }
    return s;
}

/* ---- NoisyQuant's last guard, on the model's output.
 * The per-layer and per-block checks judge each noise vector locally, and against layers calibrated
 * with the noise in place; what users see is the model's prediction. So when noise survives them, the
 * model is quantized with and without NoisyQuant, and both are compared on the held-out half of the
 * calibration set (the second half of its images or windows, at most 64 windows or 8192 tokens): per
 * sequence, the KL divergence of the quantized prediction from the float one, summed over positions (a
 * ViT has one). The noisy model is kept only if it lowers that divergence by more than twice the
 * standard error of the paired difference (and is then quantized once more, as the plain pass replaced
 * it); else the plain pass, exactly the base quantizer, is the result. */

/* KL(softmax(f) || softmax(q)) for one row of logits. */
static double kl_row(const float *f, const float *q, int n) {
    double mf = f[0], mq = q[0], zf = 0, zq = 0, s = 0;
    for (int i = 1; i < n; i++) mf = f[i] > mf ? f[i] : mf, mq = q[i] > mq ? q[i] : mq;
    for (int i = 0; i < n; i++) zf += exp(f[i] - mf), zq += exp(q[i] - mq);
    double lzf = mf + log(zf), lzq = mq + log(zq);
    for (int i = 0; i < n; i++) s += exp(f[i] - lzf) * ((f[i] - lzf) - (q[i] - lzq));
    return s;
}

/* Sequences [s0, s0 + k) of the calibration data through the float and the quantized model;
 * kl[i] = KL of the quantized prediction from the float one, summed over sequence i's positions. */
static ptq_status model_kl(ptq_model *m, const ptq_calib_data *d, int s0, int k, double *kl, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    int vit = c->arch == PTQ_ARCH_VIT, T = vit ? c->max_seq : d->seq_len, out_rows = vit ? k : k * T;
    int width = c->vocab_size;
    size_t per = (size_t)T * c->dim;
    float *x[2] = {ptq_alloc((size_t)k * per, sizeof(float), "NoisyQuant model check", err), NULL};
    x[1] = x[0] ? ptq_alloc((size_t)k * per, sizeof(float), "NoisyQuant model check", err) : NULL;
    float *lg[2] = {x[1] ? ptq_alloc((size_t)out_rows * width, sizeof(float), "NoisyQuant model check", err) : NULL,
                    NULL};
    lg[1] = lg[0] ? ptq_alloc((size_t)out_rows * width, sizeof(float), "NoisyQuant model check", err) : NULL;
    ptq_status s = lg[1] ? PTQ_OK : PTQ_ERR_NOMEM;
    if (s == PTQ_OK && vit) {
        size_t img = (size_t)d->images->channels * d->images->height * d->images->width;
        s = ptq_embed_images(m, d->images->pixels + (size_t)s0 * img, k, x[0], err);
    }
    for (int i = 0; !vit && s == PTQ_OK && i < k; i++)
        s = ptq_embed_tokens(m, d->tokens + (size_t)(s0 + i) * T, T, 0, x[0] + i * per, err);
    if (s == PTQ_OK) memcpy(x[1], x[0], (size_t)k * per * sizeof(float));
    for (int run = 0; run < 2 && s == PTQ_OK; run++) { /* run 0: float, run 1: quantized */
        for (int l = 0; s == PTQ_OK && l < c->n_layers; l++) s = advance(m, l, x[run], k, T, run == 0, err);
        if (s == PTQ_OK) s = ptq_head_forward_ex(m, x[run], out_rows, lg[run], run == 0, err);
    }
    for (int i = 0; s == PTQ_OK && i < k; i++) kl[i] = 0;
    for (int r = 0; s == PTQ_OK && r < out_rows; r++)
        kl[vit ? r : r / T] += kl_row(lg[0] + (size_t)r * width, lg[1] + (size_t)r * width, width);
    ptq_free(x[0]), ptq_free(x[1]), ptq_free(lg[0]), ptq_free(lg[1]);
    return s;
}

/* The held-out sequences of the model check: [*s0, *s0 + *n). */
static void held_out_range(const ptq_model *m, const ptq_calib_data *d, int *s0, int *n) {
    int vit = m->cfg.arch == PTQ_ARCH_VIT, n_seq = vit ? d->images->count : d->n_seqs;
    int T = vit ? m->cfg.max_seq : d->seq_len;
    *n = n_seq / 2;
    if (*n > 64 && !vit) *n = 64;
    if ((size_t)*n * T > 8192) *n = 8192 / T > 1 ? 8192 / T : 2;
    if (*n > n_seq / 2) *n = n_seq / 2;
    *s0 = n_seq - *n;
}

/* Per held-out sequence KL of the current (quantized) model; kl has room for n values. With a process
 * split each process computes its share of the sequences, then all are gathered in order. */
static ptq_status held_out_kl(ptq_model *m, const ptq_calib_data *d, const ptq_dist *dist, double *kl,
                              ptq_error *err) {
    int s0, n, a, b;
    held_out_range(m, d, &s0, &n);
    int T = m->cfg.arch == PTQ_ARCH_VIT ? m->cfg.max_seq : d->seq_len;
    int chunk = m->cfg.arch == PTQ_ARCH_VIT ? 256 : (1024 / T > 0 ? 1024 / T : 1);
    ptq_dist_share(dist, n, chunk, &a, &b);
    for (int i = a; i < b; i += chunk) PTQ_TRY(model_kl(m, d, s0 + i, b - i < chunk ? b - i : chunk, kl + i, err));
    return ptq_dist_gather_doubles(dist, kl + a, b - a, kl, n, "held-out KL divergences", err);
}

/* Back to the float model: quantized weights, activation quantizers, attention quantization and BC
 * biases dropped (their model-owned buffers stay until the model is freed). */
static void drop_quantization(ptq_model *m) {
    for (int l = 0; l < m->cfg.n_layers; l++) {
        ptq_block *blk = &m->blocks[l];
        for (int r = 0; r < PTQ_LIN_COUNT; r++) {
            ptq_linear *lin = &blk->lin[r];
            ptq_linear_drop_quant(lin);
            lin->bc = lin->bc_pos = NULL;
            lin->bc_len = 0;
        }
        blk->attn_bits = 0;
        blk->bc = blk->bc_pos = NULL;
        blk->bc_len = 0;
    }
    m->head.bc = m->head.bc_pos = NULL;
    m->head.bc_len = 0;
}

static ptq_status quantize_pass(ptq_model *m, const ptq_calib_data *data, const ptq_quant_params *p,
                                const char *stage, ptq_error *err);
static ptq_status finish_quantization(ptq_model *m, const ptq_quant_params *p, int noise_kept, ptq_status s);

ptq_status ptq_quantize_model(ptq_model *m, const ptq_calib_data *data, const ptq_quant_params *p, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    if (p->wbits < 2 || p->wbits > 8)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "--wbits %d: supported widths are 2 to 8", p->wbits);
    if ((p->group < 0 && p->group != PTQ_GROUP_TENSOR) || (p->group > 0 && p->group % PTQ_QCHUNK != 0))
        return ptq_fail(err, PTQ_ERR_ARG, "--group %d: use 0 (per channel), -1 (per tensor) or a multiple of %d",
                        p->group, PTQ_QCHUNK);
    if (p->abits && (p->abits < 2 || p->abits > 8))
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "--abits %d: supported activation widths are 2 to 8", p->abits);
    if (p->noisyquant && (!p->abits || p->act_per_token))
        return ptq_fail(err, PTQ_ERR_ARG, "NoisyQuant needs static activation quantization (--abits, not per token)");
    if (p->bc_scope & ~(PTQ_BC_LINEAR | PTQ_BC_BLOCK | PTQ_BC_LOGITS))
        return ptq_fail(err, PTQ_ERR_ARG, "unknown BC scope bits 0x%x", p->bc_scope);
    /* a GGUF's k-quant matrices are quantized from their values, as llama.cpp dequantizes them */
    PTQ_TRY(ptq_model_widen_ggml(m, err));
    for (int l = 0; l < c->n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++)
            if (m->blocks[l].lin[r].q || m->blocks[l].lin[r].wq)
                return ptq_fail(err, PTQ_ERR_ARG,
                                "%s: the model is already quantized (%s holds quantized weights, e.g. a .ptq file or "
                                "a GGUF's Q4_0/Q5_0/Q8_0 blocks); quantization starts from a float model",
                                m->path, m->blocks[l].lin[r].name);
    if (p->ggml && (p->abits || p->noisyquant))
        return ptq_fail(err, PTQ_ERR_ARG, "quantization into ggml types is weight-only (no --abits, NoisyQuant)");
    if (p->calib_dtype != PTQ_CALIB_F32 && p->method == PTQ_WQ_GPTQ && p->head_bits && p->head_bits != 16)
        return ptq_fail(err, PTQ_ERR_ARG, "--calib-dtype %s: GPTQ on the head (--head-bits) reads the float32 stream "
                        "after the last block (use f32, or --method rtn)", ptq_calib_dtype_name(p->calib_dtype));
    if (p->calib_dtype != PTQ_CALIB_F32 && (p->abits || p->bc_scope))
        return ptq_fail(err, PTQ_ERR_ARG, "--calib-dtype %s stores the activations between blocks compactly for "
                        "weight-only quantization; activation quantization and BC read float32 streams (use f32)",
                        ptq_calib_dtype_name(p->calib_dtype));
    if (p->ggml && p->act_order)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "--act-order cannot be used with ggml types: their blocks are runs of consecutive columns");
    if (p->noisyquant && !p->noisyquant_unchecked && (p->block_done || m->src_st))
        return ptq_fail(err, PTQ_ERR_ARG, "%s: NoisyQuant's model check runs the whole model again: it cannot stream "
                        "blocks (load the model whole, or use --noisyquant-unchecked)", m->path);
    PTQ_TRY(ptq_embed_quantize(m, p, err)); /* before calibration: the blocks see the embeddings as stored */
    if (!p->noisyquant || p->noisyquant_unchecked)
        return finish_quantization(m, p, p->noisyquant, quantize_pass(m, data, p, "quantize", err));
    ptq_quant_params plain = *p;
    plain.noisyquant = 0;
    /* the NoisyQuant pass first: when its layer and block checks leave no noise (the usual case on
       small models) one plain pass follows and nothing needs comparing */
    ptq_status s = quantize_pass(m, data, p, "quantize (NoisyQuant)", err);
    ptq_quant_summary qs;
    ptq_model_quant_summary(m, &qs);
    int s0, n;
    held_out_range(m, data, &s0, &n);
    if (s != PTQ_OK || (qs.noisy_linears > 0 && n < 2)) /* too little data to compare: the local checks decide */
        return finish_quantization(m, p, qs.noisy_linears > 0, s);
    int keep = 0;
    if (qs.noisy_linears > 0) {
        double *kl = calloc((size_t)2 * n, sizeof *kl); /* [0, n): with noise, [n, 2n): without */
        if (!kl) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory checking NoisyQuant");
        s = held_out_kl(m, data, p->dist, kl, err);
        drop_quantization(m);
        if (s == PTQ_OK) s = quantize_pass(m, data, &plain, "quantize (without noise, for the check)", err);
        if (s == PTQ_OK) s = held_out_kl(m, data, p->dist, kl + n, err);
        keep = s == PTQ_OK && ptq_nq_clear_gain(kl, kl + n, n);
        free(kl);
        if (keep) { /* quantize with noise again: the same, deterministic result as the first pass */
            drop_quantization(m);
            s = quantize_pass(m, data, p, "quantize (NoisyQuant, kept)", err);
        }
    } else {
        /* the first pass's later layers were calibrated on inputs with the since-rejected noise: only a
           fresh pass is exactly the base quantizer */
        drop_quantization(m);
        s = quantize_pass(m, data, &plain, "quantize (NoisyQuant kept no noise: without noise)", err);
    }
    return finish_quantization(m, p, keep, s);
}

/* Records the parameters in the model's metadata once quantization succeeded. */
static ptq_status finish_quantization(ptq_model *m, const ptq_quant_params *p, int noise_kept, ptq_status s) {
    if (s == PTQ_OK) {
        snprintf(m->quant.method, sizeof m->quant.method, "%s", method_name(p->method));
        m->quant.wbits = p->wbits;
        m->quant.group = p->group;
        m->quant.sym = p->sym;
        m->quant.act_order = p->method == PTQ_WQ_GPTQ && p->act_order;
        m->quant.bc_scope = p->bc_scope;
        m->quant.abits = p->abits;
        m->quant.act_calib = p->act_calib;
        m->quant.noisyquant = p->noisyquant && noise_kept;
        m->quant.bc_shape = p->bc_shape;
        m->quant.bc_mode = p->bc_mode;
    }
    return s;
}

/* One pass of the data flow over all blocks; `stage` names it in the progress reports. */
static ptq_status quantize_pass(ptq_model *m, const ptq_calib_data *data, const ptq_quant_params *p,
                                const char *stage, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    int bc = p->bc_scope != 0;
    ptq_bc_streams cal = {0}, hold = {0};
    ptq_calib_stream cs, hs = {0};
    PTQ_TRY(embed_stream(m, data, p->dist, p->calib_dtype, &cs, &cal.n_seq, &cal.seq_len, err));
    cal.xq = cs.f; /* float32: BC and the activation calibration read it */
    ptq_status s = PTQ_OK;
    if (bc) {
        size_t n = (size_t)cal.n_seq * cal.seq_len * c->dim;
        cal.xf = ptq_alloc(n, sizeof(float), "float calibration activations", err);
        if (!cal.xf) s = PTQ_ERR_NOMEM;
        else memcpy(cal.xf, cal.xq, n * sizeof(float));
        if (s == PTQ_OK && p->holdout) {
            s = embed_stream(m, p->holdout, p->dist, PTQ_CALIB_F32, &hs, &hold.n_seq, &hold.seq_len, err);
            hold.xq = hs.f;
            if (s == PTQ_OK && p->bc_shape == PTQ_BC_POSITION && hold.seq_len != cal.seq_len)
                s = ptq_fail(err, PTQ_ERR_ARG, "held-apart windows (%d tokens) differ from calibration windows (%d)",
                             hold.seq_len, cal.seq_len);
            size_t hn = (size_t)hold.n_seq * hold.seq_len * c->dim;
            if (s == PTQ_OK && !(hold.xf = ptq_alloc(hn, sizeof(float), "held-apart activations", err)))
                s = PTQ_ERR_NOMEM;
            if (s == PTQ_OK) memcpy(hold.xf, hold.xq, hn * sizeof(float));
        }
    }
    hess_ctx hc;
    memset(&hc, 0, sizeof hc);
    hc.m = m;
    hc.dim[H_ATTN_IN] = c->dim;
    hc.dim[H_O_IN] = c->n_heads * c->head_dim;
    hc.dim[H_MLP_IN] = c->dim;
    hc.dim[H_DOWN_IN] = c->hidden_dim;
    for (int h = 0; h < H_COUNT && s == PTQ_OK; h++) {
        hc.H[h] = ptq_alloc((size_t)hc.dim[h] * hc.dim[h], sizeof(float), "Hessian", err);
        if (!hc.H[h]) s = PTQ_ERR_NOMEM;
    }
    int done = 0, total = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++) total += m->blocks[l].lin[r].w != NULL || m->blocks[l].lin[r].src != NULL;
    ptq_bc_opts bo = {p->bc_scope, p->bc_shape, p->bc_mode, p->dist};
    const ptq_bc_streams *hp = hold.xq ? &hold : NULL;
    for (int l = 0; s == PTQ_OK && l < c->n_layers; l++) {
        s = ptq_block_materialize(m, l, err); /* streamed weights: this block's float32 copy (materialize.c) */
        if (s == PTQ_OK) s = accumulate_hessians(m, l, &hc, &cs, cal.n_seq, cal.seq_len, p->dist, err);
        if (s == PTQ_OK) s = quantize_block(m, l, &hc, p, &done, total, stage, err);
        if (s == PTQ_OK && p->abits) s = ptq_calibrate_block_acts(m, l, p, cal.xq, cal.n_seq, cal.seq_len, err);
        if (s == PTQ_OK && (bo.scope & (PTQ_BC_LINEAR | PTQ_BC_BLOCK)))
            s = ptq_bc_fit_block(m, l, &bo, &cal, hp, p->bc_report, p->report_user, err);
        /* the quantized block produces the next block's inputs; the float stream follows the float model */
        if (s == PTQ_OK) s = advance_stream(m, l, &cs, cal.n_seq, cal.seq_len, err);
        if (s == PTQ_OK && cal.xf) s = advance(m, l, cal.xf, cal.n_seq, cal.seq_len, 1, err);
        if (s == PTQ_OK && hp) s = advance(m, l, hold.xq, hold.n_seq, hold.seq_len, 0, err);
        if (s == PTQ_OK && hp) s = advance(m, l, hold.xf, hold.n_seq, hold.seq_len, 1, err);
        if (s == PTQ_OK && p->block_done) s = p->block_done(p->block_user, m, l, err); /* e.g. written out */
        ptq_block_release(m, l);
    }
    if (s == PTQ_OK) s = ptq_head_quantize(m, p, cal.xq, cal.n_seq, cal.seq_len, err); /* --head-bits */
    if (s == PTQ_OK && (bo.scope & PTQ_BC_LOGITS)) s = ptq_linear_materialize(m, &m->head, err);
    if (s == PTQ_OK && (bo.scope & PTQ_BC_LOGITS))
        s = ptq_bc_fit_logits(m, &cal, hp, p->dist, p->bc_report, p->report_user, err);
    for (int h = 0; h < H_COUNT; h++) ptq_free(hc.H[h]);
    ptq_calib_stream_free(&cs);
    ptq_free(cal.xf);
    ptq_calib_stream_free(&hs);
    ptq_free(hold.xf);
    /* streamed: the token embedding left the mapping only for the calibration tokens; the writer takes it whole */
    if (s == PTQ_OK) s = ptq_embedding_materialize(m, m->src_st, err);
    return s;
}
