/* Activation quantizer calibration for one block, inside the quantization pipeline.
 *
 * The linears are calibrated one at a time in forward order on the quantized model's activations
 * (sequential, as EasyQuant does): each sees the earlier layers' weight and activation quantization.
 * Then NoisyQuant (when asked) searches the layer's noise, and the layer gets int8 weights when its
 * grid allows integer execution. */
#include "quant/act_calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "kernels/i8gemm.h"
#include "methods/noisyquant.h"
#include "quant/dist.h"
#include "quant/quantizer.h"

typedef struct {
    ptq_lin_role role;
    ptq_act_sample *s;
} sample_ctx;

static int sample_hook(void *user, int layer, ptq_lin_role role, const ptq_linear *lin, const float *X,
                       const float *Y, int rows) {
    (void)layer, (void)lin, (void)Y;
    sample_ctx *c = user;
    if (role == c->role) ptq_act_sample_add(c->s, X, rows);
    return 0;
}

static ptq_status collect(const ptq_model *m, int l, ptq_lin_role role, const float *x, int n_seq, int T,
                          ptq_act_sample *s, ptq_error *err) {
    int chunk = ptq_calib_chunk(T); /* the batches a process split keeps whole (dist.h) */
    size_t per = (size_t)T * m->cfg.dim;
    float *buf = ptq_alloc((size_t)chunk * per, sizeof(float), "calibration chunk", err);
    if (!buf) return PTQ_ERR_NOMEM;
    sample_ctx c = {role, s};
    ptq_block_opts o = {sample_hook, &c, 0, NULL, NULL};
    ptq_status st = PTQ_OK;
    for (int i = 0; st == PTQ_OK && i < n_seq; i += chunk) {
        int k = n_seq - i < chunk ? n_seq - i : chunk;
        memcpy(buf, x + i * per, (size_t)k * per * sizeof(float));
        st = ptq_block_forward_ex(m, l, buf, k, T, 0, NULL, &o, err);
    }
    ptq_free(buf);
    return st;
}

/* ---- the attention matrix products: q, k, v samples seen by an observer */

typedef struct {
    ptq_act_sample s[3];
    int width[3];
    float *tmp;
} attn_ctx;

static void attn_observe(void *user, int layer, const float *q, int qs, const float *k, int ks, const float *v,
                         int vs, int rows) {
    (void)layer;
    attn_ctx *c = user;
    const float *src[3] = {q, k, v};
    int stride[3] = {qs, ks, vs};
    for (int t = 0; t < 3; t++)
        for (int r = 0; r < rows; r++) {
            memcpy(c->tmp, src[t] + (size_t)r * stride[t], (size_t)c->width[t] * sizeof(float));
            ptq_act_sample_add(&c->s[t], c->tmp, 1);
        }
}

/* Static per-tensor steps for q, k and v of block l (after the q/k/v projections are calibrated), with
 * the distribution calibrators; the probabilities use the fixed [0, 1] grid. */
static ptq_status calibrate_attention(ptq_model *m, int l, const ptq_quant_params *p, const float *x, int n_seq,
                                      int T, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    attn_ctx ac;
    memset(&ac, 0, sizeof ac);
    ac.width[0] = c->n_heads * c->head_dim;
    ac.width[1] = ac.width[2] = c->n_kv_heads * c->head_dim;
    int64_t before, rows;
    ptq_status st = ptq_dist_offset(p->dist, (int64_t)n_seq * T, &before, &rows, err);
    for (int t = 0; t < 3 && st == PTQ_OK; t++) {
        st = ptq_act_sample_init(&ac.s[t], ac.width[t], (size_t)rows * ac.width[t], (int)rows, err);
        if (st == PTQ_OK) ptq_act_sample_seek(&ac.s[t], (size_t)before * ac.width[t], (int)before);
    }
    ac.tmp = st == PTQ_OK ? malloc((size_t)ac.width[0] * sizeof(float)) : NULL;
    if (st == PTQ_OK && !ac.tmp) st = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory calibrating attention");
    int chunk = ptq_calib_chunk(T); /* the batches a process split keeps whole (dist.h) */
    size_t per = (size_t)T * c->dim;
    float *buf = st == PTQ_OK ? ptq_alloc((size_t)chunk * per, sizeof(float), "calibration chunk", err) : NULL;
    if (st == PTQ_OK && !buf) st = PTQ_ERR_NOMEM;
    ptq_block_opts o = {NULL, NULL, 0, attn_observe, &ac};
    for (int i = 0; st == PTQ_OK && i < n_seq; i += chunk) {
        int k = n_seq - i < chunk ? n_seq - i : chunk;
        memcpy(buf, x + i * per, (size_t)k * per * sizeof(float));
        st = ptq_block_forward_ex(m, l, buf, k, T, 0, NULL, &o, err);
    }
    for (int t = 0; t < 3 && st == PTQ_OK; t++) st = ptq_act_sample_merge(&ac.s[t], p->dist, err);
    if (st == PTQ_OK) {
        ptq_act_calib method = p->act_calib == PTQ_AQ_EASYQUANT || p->act_calib == PTQ_AQ_TWIN ? PTQ_AQ_MSE : p->act_calib;
        for (int t = 0; t < 3; t++) {
            ptq_actq q = {.bits = p->abits, .sym = 1};
            ptq_actq_calibrate(&q, &ac.s[t], method, p->act_percentile);
            m->blocks[l].attn_scale[t] = q.scale;
        }
        m->blocks[l].attn_bits = p->abits;
    }
    ptq_free(buf);
    free(ac.tmp);
    for (int t = 0; t < 3; t++) ptq_act_sample_free(&ac.s[t]);
    return st;
}

/* Cosine similarity between the layer's quantized output and its float output on the sample rows. */
static double output_cosine(const ptq_linear *lin, const float *X, int n, float *yq, float *yf) {
    ptq_linear_forward(lin, X, n, yq);
    ptq_linear_forward_float(lin, X, n, yf);
    double dot = 0, a = 0, b = 0;
    for (size_t i = 0; i < (size_t)n * lin->out; i++) {
        dot += (double)yq[i] * yf[i];
        a += (double)yq[i] * yq[i];
        b += (double)yf[i] * yf[i];
    }
    return a > 0 && b > 0 ? dot / sqrt(a * b) : 0;
}

/* Re-quantize an RTN layer with every row's step multiplied by gamma (EasyQuant's weight search). */
static void requantize_scaled(ptq_linear *lin, const float *base_scales, double gamma) {
    ptq_qweight *q = lin->q;
    int maxq = (1 << (q->grid_bits ? q->grid_bits : q->bits)) - 1, in = lin->in;
    uint8_t *codes = malloc((size_t)in);
    if (!codes) return;
    for (int r = 0; r < lin->out; r++) {
        float s = base_scales[r] * (float)gamma;
        s = ptq_f16_to_f32(ptq_f32_to_f16(s));
        if (!(s > 0)) s = base_scales[r];
        q->scales[r] = ptq_f32_to_f16(s);
        for (int j = 0; j < in; j++) codes[j] = (uint8_t)ptq_wq_code(lin->w[(size_t)r * in + j], s, ptq_qweight_zeros_of(q, r)[0], 1, maxq);
        ptq_qweight_set_row(q, r, codes);
    }
    free(codes);
}

/* EasyQuant (METHODS.md 2.4): steps on the grid [0.5, 1.2] x the initial step, 100 candidates, one round
 * of weights (RTN per-channel layers only: a common multiplier on every row's step) then activations,
 * keeping the candidate with the highest output cosine similarity. */
static ptq_status easyquant(ptq_linear *lin, const ptq_act_sample *s, int weights_too, ptq_error *err) {
    /* 200 candidates, each a full pass over the rows: an evenly spread subset of at most
       EASYQUANT_ROWS sample rows keeps this affordable on wide layers (the sample rows are already a
       random pick, one per stratum, so every k-th of them is still spread over all images and positions) */
    enum { EASYQUANT_ROWS = 1024 };
    int n = s->n_rows < EASYQUANT_ROWS ? s->n_rows : EASYQUANT_ROWS;
    float *X = ptq_alloc((size_t)n * lin->in, sizeof(float), "EasyQuant", err);
    float *yq = X ? ptq_alloc((size_t)n * lin->out, sizeof(float), "EasyQuant", err) : NULL;
    float *yf = yq ? ptq_alloc((size_t)n * lin->out, sizeof(float), "EasyQuant", err) : NULL;
    if (!yf) {
        ptq_free(X);
        ptq_free(yq);
        return PTQ_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++)
        memcpy(X + (size_t)i * lin->in, s->rows + (size_t)((int64_t)i * s->n_rows / n) * lin->in,
               (size_t)lin->in * sizeof(float));
    if (weights_too && lin->q && lin->w && lin->q->n_groups == 1 && !lin->q->perm) {
        float *base = malloc((size_t)lin->out * sizeof *base);
        if (base) {
            for (int r = 0; r < lin->out; r++) base[r] = ptq_f16_to_f32(lin->q->scales[r]);
            double best = -2, keep = 1.0;
            for (int i = 0; i < 100; i++) {
                double g = 0.5 + i * 0.7 / 100.0;
                requantize_scaled(lin, base, g);
                double c = output_cosine(lin, X, n, yq, yf);
                if (c > best) best = c, keep = g;
            }
            requantize_scaled(lin, base, keep);
            free(base);
        }
    }
    ptq_actq *aq = lin->aq;
    float s0 = aq->scale, keep = s0;
    double best = -2;
    for (int i = 0; i < 100; i++) {
        aq->scale = s0 * (float)(0.5 + i * 0.7 / 100.0);
        double c = output_cosine(lin, X, n, yq, yf);
        if (c > best) best = c, keep = aq->scale;
    }
    aq->scale = keep;
    ptq_free(X);
    ptq_free(yq);
    ptq_free(yf);
    return PTQ_OK;
}

ptq_status ptq_linear_prepare_i8(ptq_linear *lin, ptq_error *err) {
    const ptq_qweight *q = lin->q;
    /* only symmetric, non-twin activations run on the int8 kernels (see try_integer in ops/linear.c) */
    if (!q || !lin->aq || !lin->aq->sym || lin->aq->twin || lin->i8 || q->n_groups != 1 || q->perm) return PTQ_OK;
    int half = 1 << ((q->grid_bits ? q->grid_bits : q->bits) - 1);
    for (int r = 0; r < q->out; r++)
        if (ptq_qweight_zeros_of(q, r)[0] != half) return PTQ_OK; /* not a symmetric grid: stays simulated */
    int8_t *codes = malloc((size_t)q->out * q->in);
    float *scales = malloc((size_t)q->out * sizeof *scales);
    uint8_t *row = malloc((size_t)q->in);
    ptq_status st = codes && scales && row ? PTQ_OK : ptq_fail(err, PTQ_ERR_NOMEM, "out of memory preparing int8 weights");
    for (int r = 0; st == PTQ_OK && r < q->out; r++) {
        ptq_unpack_row(q->bits, q->codes + (size_t)r * q->row_bytes, q->in, row);
        for (int j = 0; j < q->in; j++) {
            int v = (int)row[j] - half;
            if (v < -127) { /* code 0 of a plain symmetric grid: no exact int8 form, stay simulated */
                free(codes), free(scales), free(row);
                return PTQ_OK;
            }
            codes[(size_t)r * q->in + j] = (int8_t)v;
        }
        scales[r] = ptq_f16_to_f32(q->scales[r]);
    }
    ptq_i8weight *w = st == PTQ_OK ? calloc(1, sizeof *w) : NULL;
    if (st == PTQ_OK && !w) st = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory preparing int8 weights");
    if (st == PTQ_OK) st = ptq_i8weight_init(w, codes, scales, q->out, q->in, err);
    if (st == PTQ_OK) lin->i8 = w;
    else free(w);
    free(codes), free(scales), free(row);
    return st;
}

/* Squared error of block l's output against the float block, per sequence, on sequences [s0, s0 + n) of x. */
static ptq_status block_errors(ptq_model *m, int l, const float *x, int s0, int n, int T, float *yq, float *yf,
                               double *e, ptq_error *err) {
    size_t per = (size_t)T * m->cfg.dim;
    memcpy(yq, x + s0 * per, (size_t)n * per * sizeof(float));
    ptq_block_opts o = {NULL, NULL, 0, NULL, NULL};
    PTQ_TRY(ptq_block_forward_ex(m, l, yq, n, T, 0, NULL, &o, err));
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (size_t k = 0; k < per; k++) {
            double d = (double)yq[i * per + k] - yf[i * per + k];
            s += d * d;
        }
        e[i] = s;
    }
    return PTQ_OK;
}

/* NoisyQuant's second guard, on the block's output: the per-layer search minimises that layer's output
 * error, which is not what the block needs everywhere (a noise that lowers the q or k projection's
 * error can still disturb the attention pattern). For each layer that kept noise, in forward order, the
 * block output on held-out sequences (the second half of the calibration set, capped) is compared with
 * and without that layer's noise, against the float block on the same input; the noise stays only if
 * it lowers the error by more than twice the standard error of the paired per-sequence difference. */
static ptq_status noisyquant_block_check(ptq_model *m, int l, const float *xq, int n_seq, int T,
                                         const ptq_dist *dist, ptq_error *err) {
    ptq_block *blk = &m->blocks[l];
    int any = 0;
    for (int r = 0; r < PTQ_LIN_COUNT; r++) any |= ptq_nq_has_noise(&blk->lin[r]);
    int64_t before, total; /* with a process split: this process's sequences among all */
    PTQ_TRY(ptq_dist_offset(dist, n_seq, &before, &total, err));
    if (!any || total < 2) return PTQ_OK;
    int n = (int)(total / 2), s0 = (int)total - n;
    if ((size_t)n * T > 16384) n = 16384 / T > 1 ? 16384 / T : 2;
    /* the held-out sequences [s0, s0 + n) that this process holds: local [a, a + k) */
    int64_t lo = s0 > before ? s0 : before, hi = s0 + n < before + n_seq ? s0 + n : before + n_seq;
    int a = (int)(lo - before), k = hi > lo ? (int)(hi - lo) : 0;
    size_t per = (size_t)T * m->cfg.dim;
    float *yf = ptq_alloc((size_t)k * per, sizeof(float), "NoisyQuant block check", err);
    float *yq = yf ? ptq_alloc((size_t)k * per, sizeof(float), "NoisyQuant block check", err) : NULL;
    double *e_on = yq ? ptq_alloc((size_t)2 * n + k, sizeof(double), "NoisyQuant block check", err) : NULL;
    double *e_off = e_on ? e_on + n : NULL, *e_mine = e_on ? e_on + 2 * n : NULL;
    ptq_status st = e_on ? PTQ_OK : PTQ_ERR_NOMEM;
    if (st == PTQ_OK) {
        memcpy(yf, xq + a * per, (size_t)k * per * sizeof(float));
        ptq_block_opts o = {NULL, NULL, 1, NULL, NULL};
        st = ptq_block_forward_ex(m, l, yf, k, T, 0, NULL, &o, err);
    }
    if (st == PTQ_OK) st = block_errors(m, l, xq, a, k, T, yq, yf, e_mine, err);
    if (st == PTQ_OK) st = ptq_dist_gather_doubles(dist, e_mine, k, e_on, n, "NoisyQuant block errors", err);
    for (int r = 0; st == PTQ_OK && r < PTQ_LIN_COUNT; r++) {
        ptq_linear *lin = &blk->lin[r];
        ptq_actq *aq = lin->aq;
        if (!ptq_nq_has_noise(lin)) continue;
        float *noise = aq->noise, *bias = aq->noise_bias;
        aq->noise = NULL, aq->noise_bias = NULL;
        st = block_errors(m, l, xq, a, k, T, yq, yf, e_mine, err);
        aq->noise = noise, aq->noise_bias = bias;
        if (st == PTQ_OK) st = ptq_dist_gather_doubles(dist, e_mine, k, e_off, n, "NoisyQuant block errors", err);
        if (st != PTQ_OK) break;
        if (!ptq_nq_clear_gain(e_on, e_off, n)) { /* no clear gain for the block: this layer goes back to plain quantization */
            memset(noise, 0, (size_t)lin->in * sizeof *noise);
            memset(bias, 0, (size_t)lin->out * sizeof *bias);
            memcpy(e_on, e_off, (size_t)n * sizeof *e_on);
        }
    }
    ptq_free(yf);
    ptq_free(yq);
    ptq_free(e_on);
    return st;
}

ptq_status ptq_calibrate_block_acts(ptq_model *m, int l, const ptq_quant_params *p, const float *xq, int n_seq,
                                    int T, ptq_error *err) {
    ptq_block *blk = &m->blocks[l];
    for (int r = 0; r < PTQ_LIN_COUNT; r++) {
        ptq_linear *lin = &blk->lin[r];
        /* the attention products are calibrated once q, k and v are final, before their consumer (O) */
        if (r == PTQ_LIN_O && p->quant_attention)
            PTQ_TRY(calibrate_attention(m, l, p, xq, n_seq, T, err));
        if (!ptq_linear_present(lin)) continue;
        ptq_actq *aq = calloc(1, sizeof *aq);
        if (!aq) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory calibrating %s", lin->name);
        aq->bits = p->abits;
        aq->sym = !p->act_asym;
        aq->per_token = p->act_per_token;
        ptq_act_sample s;
        memset(&s, 0, sizeof s);
        int64_t before, rows; /* this process's rows come after `before` of the `rows` rows of all processes */
        ptq_status st = ptq_dist_offset(p->dist, (int64_t)n_seq * T, &before, &rows, err);
        if (st == PTQ_OK) st = ptq_act_sample_init(&s, lin->in, (size_t)rows * lin->in, (int)rows, err);
        if (st == PTQ_OK) ptq_act_sample_seek(&s, (size_t)before * lin->in, (int)before);
        if (st == PTQ_OK) st = collect(m, l, (ptq_lin_role)r, xq, n_seq, T, &s, err);
        if (st == PTQ_OK) st = ptq_act_sample_merge(&s, p->dist, err);
        /* twin uniform only where the input follows a plain activation (the input of fc2) */
        int post_act = r == PTQ_LIN_DOWN && !m->cfg.gated_mlp;
        if (st == PTQ_OK) {
            if (p->act_calib == PTQ_AQ_TWIN && post_act && !aq->per_token) ptq_actq_calibrate_twin(aq, &s);
            else ptq_actq_calibrate(aq, &s, p->act_calib, p->act_percentile);
            lin->aq = aq;
            aq = NULL;
            if (p->act_calib == PTQ_AQ_EASYQUANT && !lin->aq->per_token)
                st = easyquant(lin, &s, p->method == PTQ_WQ_RTN, err);
        }
        if (st == PTQ_OK && p->noisyquant && !lin->aq->per_token && !lin->aq->twin)
            st = ptq_noisyquant_search(m, lin, s.rows, s.n_rows,
                                       (p->noisyquant_reference ? PTQ_NQ_REFERENCE : 0) |
                                           (p->noisyquant_unchecked ? PTQ_NQ_UNCHECKED : 0),
                                       p->seed, NULL, NULL, err);
        if (st == PTQ_OK) st = ptq_linear_prepare_i8(lin, err);
        free(aq);
        ptq_act_sample_free(&s);
        if (st != PTQ_OK) return ptq_fail_context(err, "calibrating the input of %s", lin->name);
    }
    if (p->noisyquant && !p->noisyquant_unchecked) PTQ_TRY(noisyquant_block_check(m, l, xq, n_seq, T, p->dist, err));
    return PTQ_OK;
}
