/* Quantized or 16-bit LM head and token embeddings (see head_embed.h). */
#include "quant/head_embed.h"
#include "quant/ggml_quants.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/qweight.h"
#include "models/forward.h"
#include "ops/ops.h"
#include "quant/dist.h"
#include "quant/quantizer.h"

int ptq_head_tied(const ptq_model *m) {
    return (m->head.w && m->head.w == m->tok_emb) || (m->head.q && m->head.q == m->tok_emb_q) ||
           (ptq_linear_is_ggml(&m->head) && m->head.ggml == m->tok_emb_ggml);
}

static int bits_ok(int b) { return b == 0 || (b >= 2 && b <= 8) || b == 16; }
static int group_ok(int g) { return g == 0 || g == PTQ_GROUP_TENSOR || (g > 0 && g % PTQ_QCHUNK == 0); }

ptq_status ptq_head_embed_check(const ptq_model *m, const ptq_quant_params *p, ptq_error *err) {
    const char *opt[2] = {"--head-bits", "--embed-bits"};
    const int bits[2] = {p->head_bits, p->embed_bits}, group[2] = {p->head_group, p->embed_group};
    for (int i = 0; i < 2; i++) {
        if (!bits_ok(bits[i]))
            return ptq_fail(err, PTQ_ERR_ARG, "%s %d: use 2 to 8 (packed), 16 (f16/bf16), or leave it out "
                            "(float32)", opt[i], bits[i]);
        if (!group_ok(group[i]))
            return ptq_fail(err, PTQ_ERR_ARG, "%s %d: use 0 (per channel), -1 (per tensor) or a multiple of %d",
                            i ? "--embed-group" : "--head-group", group[i], PTQ_QCHUNK);
    }
    if (!bits[0] && !bits[1]) return PTQ_OK;
    if (p->ggml)
        return ptq_fail(err, PTQ_ERR_ARG, "--head-bits and --embed-bits apply to .ptq files; a GGUF's output and "
                        "token_embd types follow llama.cpp's rules for --type");
    if (m->tok_emb_q || m->tok_emb_h || m->head.q)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: the head or the embeddings are already quantized", m->path);
    if (bits[1] && !m->tok_emb && !m->tok_emb_src)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: --embed-bits: the model has no token embeddings (an image model)",
                        m->path);
    if (ptq_head_tied(m) && bits[0] && bits[1] && (bits[0] != bits[1] || group[0] != group[1]))
        return ptq_fail(err, PTQ_ERR_ARG,
                        "%s ties its head to the token embeddings (one table serves both), but --head-bits %d "
                        "--head-group %d and --embed-bits %d --embed-group %d disagree: give one of the two, or the "
                        "same values", m->path, bits[0], group[0], bits[1], group[1]);
    return PTQ_OK;
}

ptq_dtype ptq_pick16(const float *w, size_t n) {
    int bf16_exact = 1, f16_range = 1;
    for (size_t i = 0; i < n && (bf16_exact || f16_range); i++) {
        if (ptq_bf16_to_f32(ptq_f32_to_bf16(w[i])) != w[i]) bf16_exact = 0;
        if (!(fabsf(w[i]) <= 65504.0f)) f16_range = 0;
    }
    return bf16_exact || !f16_range ? PTQ_DT_BF16 : PTQ_DT_F16;
}

void ptq_round16(float *w, size_t n, ptq_dtype dt) {
    for (size_t i = 0; i < n; i++)
        w[i] = dt == PTQ_DT_BF16 ? ptq_bf16_to_f32(ptq_f32_to_bf16(w[i])) : ptq_f16_to_f32(ptq_f32_to_f16(w[i]));
}

static ptq_status rtn(const float *w, int out, int in, int bits, int group, int sym, ptq_qweight **q, ptq_error *err) {
    *q = calloc(1, sizeof **q);
    if (!*q) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
    ptq_wq_params wq = {bits, group, sym, 0};
    ptq_status s = ptq_rtn_quantize(w, out, in, &wq, *q, err);
    if (s != PTQ_OK) {
        free(*q);
        *q = NULL;
    }
    return s;
}

ptq_status ptq_embed_quantize(ptq_model *m, const ptq_quant_params *p, ptq_error *err) {
    PTQ_TRY(ptq_head_embed_check(m, p, err));
    int tied = ptq_head_tied(m);
    /* a tied table takes whichever setting was given (the check made them agree) */
    int bits = p->embed_bits || !tied ? p->embed_bits : p->head_bits;
    int group = p->embed_bits || !tied ? p->embed_group : p->head_group;
    if (!bits) return PTQ_OK;
    /* a streamed model's table is still in its file: quantizing it needs it whole, as float32 (materialize.c) */
    PTQ_TRY(ptq_embedding_materialize(m, m->src_st, err));
    const ptq_config *c = &m->cfg;
    size_t n = (size_t)c->vocab_size * c->embed_dim;
    if (bits == 16) { /* the float table now holds exactly the stored values: calibration and a tied head see them */
        m->tok_emb_dt = ptq_pick16(m->tok_emb, n);
        ptq_round16(m->tok_emb, n, (ptq_dtype)m->tok_emb_dt);
        return PTQ_OK;
    }
    if (tied && p->method == PTQ_WQ_GPTQ)
        ptq_log(&p->cb, PTQ_LOG_INFO, "the head shares the token embeddings: their one table is rounded to nearest "
                "(RTN) before calibration; GPTQ applies to the blocks");
    if (rtn(m->tok_emb, c->vocab_size, c->embed_dim, bits, group, p->sym, &m->tok_emb_q, err) != PTQ_OK)
        return ptq_fail_context(err, "quantizing the token embeddings");
    if (tied) m->head.q = m->tok_emb_q; /* freed once, as the head's (ptq_model_free) */
    return PTQ_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* H = 2 X^T X / rows over the head's inputs: the final norm (and OPT's proj_out) of every row of x, or of each
 * image's class token for a ViT; summed over the processes of a split. */
static ptq_status head_hessian(const ptq_model *m, const float *x, int n_seq, int T, const ptq_dist *dist, double *H,
                               ptq_error *err) {
    const ptq_config *c = &m->cfg;
    int vit = c->arch == PTQ_ARCH_VIT, in = m->head.in, chunk = 512;
    int64_t rows = vit ? n_seq : (int64_t)n_seq * T;
    float *h = ptq_alloc((size_t)chunk, (size_t)c->dim * sizeof(float), "head inputs", err);
    float *e = h ? ptq_alloc((size_t)chunk, (size_t)in * sizeof(float), "head inputs", err) : NULL;
    double *d = e ? ptq_alloc((size_t)chunk, (size_t)in * sizeof(double), "head inputs", err) : NULL;
    ptq_status s = d ? PTQ_OK : PTQ_ERR_NOMEM;
    memset(H, 0, (size_t)in * in * sizeof *H);
    for (int64_t r0 = 0; s == PTQ_OK && r0 < rows; r0 += chunk) {
        int k = rows - r0 < chunk ? (int)(rows - r0) : chunk;
        for (int i = 0; i < k; i++) /* a ViT's class token is row 0 of its image */
            memcpy(h + (size_t)i * c->dim, x + (size_t)(vit ? (r0 + i) * T : r0 + i) * c->dim,
                   (size_t)c->dim * sizeof(float));
        if (m->final_norm.w) ptq_norm_apply(c, &m->final_norm, h, k, h);
        const float *hin = h;
        if (ptq_linear_present(&m->proj_out)) {
            ptq_linear_forward(&m->proj_out, h, k, e);
            hin = e;
        }
        for (size_t i = 0; i < (size_t)k * in; i++) d[i] = hin[i];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, in, k, 1.0, d, in, 1.0, H, in);
    }
    double total = (double)rows;
    if (s == PTQ_OK && ptq_dist_on(dist)) s = ptq_dist_sum(dist, H, (size_t)in * in, "the head's Hessian", err);
    if (s == PTQ_OK && ptq_dist_on(dist)) s = ptq_dist_sum(dist, &total, 1, "head rows", err);
    for (int a = 0; s == PTQ_OK && a < in; a++)
        for (int b = a; b < in; b++) H[(size_t)b * in + a] = H[(size_t)a * in + b] *= 2.0 / total;
    ptq_free(h);
    ptq_free(e);
    ptq_free(d);
    return s;
}

ptq_status ptq_head_quantize(ptq_model *m, const ptq_quant_params *p, const float *x, int n_seq, int T,
                             ptq_error *err) {
    ptq_linear *head = &m->head;
    if (!p->head_bits || ptq_head_tied(m)) return PTQ_OK; /* tied: done with the embeddings */
    PTQ_TRY(ptq_linear_materialize(m, head, err));
    if (!head->w) return ptq_fail(err, PTQ_ERR_ARG, "%s: the head has no float weights to quantize", m->path);
    if (p->head_bits == 16) {
        m->head_dt = ptq_pick16(head->w, (size_t)head->out * head->in);
        ptq_round16(head->w, (size_t)head->out * head->in, (ptq_dtype)m->head_dt);
        return PTQ_OK;
    }
    ptq_linear_drop_quant(head); /* an earlier pass's (NoisyQuant's checks run the pipeline again) */
    double t0 = now_s(), rel = NAN;
    ptq_qweight *q = NULL;
    ptq_status s;
    if (p->method == PTQ_WQ_GPTQ) {
        /* the Hessian is in x in: 32 MB for a 2048-wide head, and one pass over the calibration rows */
        double *H = ptq_alloc((size_t)head->in * head->in, sizeof(double), "the head's Hessian", err);
        s = H ? head_hessian(m, x, n_seq, T, p->dist, H, err) : PTQ_ERR_NOMEM;
        q = s == PTQ_OK ? calloc(1, sizeof *q) : NULL;
        if (s == PTQ_OK && !q) s = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
        if (s == PTQ_OK) {
            ptq_gptq_params gp = ptq_gptq_default_params();
            gp.wq = (ptq_wq_params){p->head_bits, p->head_group, p->sym, 0};
            gp.act_order = p->act_order;
            gp.percdamp = p->percdamp > 0 ? p->percdamp : 0.01;
            gp.reference_groups = !p->gptq_updated_groups;
            /* GPTQ takes a float32 Hessian (gptq.c); the double one stays for the error report */
            float *Hf = ptq_alloc((size_t)head->in * head->in, sizeof(float), "the head's Hessian", err);
            s = Hf ? PTQ_OK : PTQ_ERR_NOMEM;
            for (size_t i = 0; s == PTQ_OK && i < (size_t)head->in * head->in; i++) Hf[i] = (float)H[i];
            if (s == PTQ_OK) s = ptq_gptq_quantize(head->w, head->out, head->in, Hf, &gp, q, &p->cb, err);
            ptq_free(Hf);
            if (s != PTQ_OK) free(q), q = NULL;
        }
        if (s == PTQ_OK && !p->skip_layer_error) rel = ptq_layer_rel_error(head->w, q, head->out, head->in, H);
        ptq_free(H);
    } else {
        s = rtn(head->w, head->out, head->in, p->head_bits, p->head_group, p->sym, &q, err);
    }
    if (s != PTQ_OK) return ptq_fail_context(err, "quantizing the head %s", head->name);
    head->q = q;
    if (!p->bc_scope) ptq_linear_release(head); /* a streamed head's float32 copy: only logit BC reads it again */
    ptq_layer_report rep = {head->name, m->cfg.n_layers, head->in, head->out, now_s() - t0, rel};
    if (p->report && p->method == PTQ_WQ_GPTQ) p->report(p->report_user, &rep); /* RTN gathers no Hessian */
    return PTQ_OK;
}

void ptq_embed_row(const ptq_model *m, int token, float *dst) {
    int ed = m->cfg.embed_dim;
    if (m->tok_emb_q) {
        ptq_qweight_dequant_row(m->tok_emb_q, token, dst);
    } else if (m->tok_emb_ggml) {
        const size_t rb = ptq_ggml_row_bytes(m->tok_emb_ggml_type, ed); /* checked at load */
        (void)ptq_ggml_dequantize_rows(m->tok_emb_ggml_type, (const uint8_t *)m->tok_emb_ggml + (size_t)token * rb, dst, 1,
                                       ed, NULL);
    } else if (m->tok_emb_h) {
        const uint16_t *h = m->tok_emb_h + (size_t)token * ed;
        if (m->tok_emb_dt == PTQ_DT_BF16)
            for (int j = 0; j < ed; j++) dst[j] = ptq_bf16_to_f32(h[j]);
        else
            for (int j = 0; j < ed; j++) dst[j] = ptq_f16_to_f32(h[j]);
    } else {
        memcpy(dst, m->tok_emb + (size_t)token * ed, (size_t)ed * sizeof(float));
    }
}
