/* GPTQ into a ggml block type: ptq_gptq_quantize's column-by-column error feedback (same inverse-Hessian
 * factor, same lazy batched updates), with each column rounded to the real grid of its ggml (sub-)block:
 * fp16 d/dmin, sub-block scales and mins quantized as ggml stores them (quant/ggml_quants.h). A block's
 * parameters are chosen before the pass from the original weights (static) or when the pass reaches the
 * block, from the weights as the errors of the columns before it left them (dynamic); the lazy batch is a
 * multiple of the block, so those weights are fully updated at that point. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/gguf.h"
#include "quant/ggml_quants_impl.h"
#include "quant/quantizer.h"

ptq_gptq_ggml_params ptq_gptq_ggml_default_params(uint32_t type) {
    ptq_gptq_ggml_params p;
    memset(&p, 0, sizeof p);
    p.type = type;
    p.mode = PTQ_GGML_PARAMS_DYNAMIC_SUB;
    p.weighted = 1;
    p.block = 256;
    p.percdamp = 0.01;
    return p;
}

ptq_status ptq_gptq_ggml_quantize(const float *W, int out, int in, const double *H, const ptq_gptq_ggml_params *p,
                                  void *dst, size_t dst_cap, const ptq_callbacks *cb, ptq_error *err) {
    char tn[32];
    const ptq_ggml_qtype *t = ptq_ggml_qtype_get(p->type);
    if (!t)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "GPTQ into ggml type %s: not supported; supported: %s",
                        ptq_ggml_type_name(p->type, tn, sizeof tn), ptq_ggml_quant_list());
    if (p->act_order)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "GPTQ into %s: act-order is not expressible: a ggml block holds contiguous columns, and a "
                        "permuted order would need the permutation undone at inference; quantize without act-order",
                        t->name);
    if (out <= 0 || in <= 0 || in % t->block)
        return ptq_fail(err, PTQ_ERR_ARG, "GPTQ into %s: the input width %d is not a positive multiple of its block (%d)",
                        t->name, in, t->block);
    size_t row_bytes = ptq_ggml_row_bytes(p->type, in);
    if (dst_cap / row_bytes < (size_t)out)
        return ptq_fail(err, PTQ_ERR_ARG, "GPTQ into %s: output buffer of %zu bytes, %d rows need %zu", t->name, dst_cap,
                        out, row_bytes * (size_t)out);
    int blk = t->block, B = p->block > 0 ? p->block : 256;
    B = (B + blk - 1) / blk * blk;
    if (B > in) B = in;
    int dyn = p->mode != PTQ_GGML_PARAMS_STATIC, dyn_sub = p->mode == PTQ_GGML_PARAMS_DYNAMIC_SUB && blk == PTQ_GGML_QK_K;

    ptq_status st = PTQ_OK;
    double *Wd = ptq_alloc((size_t)out * in, sizeof(double), "GPTQ weights", err);
    double *U = ptq_alloc((size_t)in * in, sizeof(double), "GPTQ inverse Hessian", err);
    double *Err = ptq_alloc((size_t)out * B, sizeof(double), "GPTQ errors", err);
    float *imp = ptq_alloc((size_t)in, sizeof(float), "GPTQ importance", err);
    if (!Wd || !U || !Err || !imp) {
        st = PTQ_ERR_NOMEM;
        goto done;
    }
    /* dead inputs (never active in calibration): weight 0, unit curvature (as ptq_gptq_quantize) */
    for (int j = 0; j < in; j++) {
        double h = H[(size_t)j * in + j];
        imp[j] = h == 0 ? 1.0f : (float)h;
    }
    for (int r = 0; r < out; r++)
        for (int j = 0; j < in; j++) Wd[(size_t)r * in + j] = H[(size_t)j * in + j] == 0 ? 0.0 : W[(size_t)r * in + j];
    st = ptq_gptq_inverse_hessian(H, in, NULL, p->percdamp, U, cb, err);
    if (st != PTQ_OK) goto done;
    const float *wimp = p->weighted ? imp : NULL;

    int oom = 0;
    for (int i1 = 0; i1 < in && !oom; i1 += B) {
        int i2 = i1 + B < in ? i1 + B : in, cnt = i2 - i1;
#pragma omp parallel
        {
            double *W1 = malloc((size_t)cnt * sizeof *W1);
            float x[PTQ_GGML_QK_K];
            uint8_t codes[PTQ_GGML_QK_K];
            ptq_ggml_block_params bp;
            memset(&bp, 0, sizeof bp);
#pragma omp for schedule(static)
            for (int r = 0; r < out; r++) {
                if (!W1) {
#pragma omp atomic write
                    oom = 1;
                    continue;
                }
                double *wr = Wd + (size_t)r * in;
                unsigned char *row = (unsigned char *)dst + (size_t)r * row_bytes;
                memcpy(W1, wr + i1, (size_t)cnt * sizeof *W1);
                for (int i = 0; i < cnt; i++) {
                    int j = i1 + i, jb = j % blk;
                    if (jb == 0) {
                        /* the block's parameters: from the original (dead-zeroed) weights, or from the
                           updated ones, all inside this batch */
                        for (int c = 0; c < blk; c++)
                            x[c] = dyn ? (float)W1[i + c]
                                       : (H[(size_t)(j + c) * in + j + c] == 0 ? 0.0f : W[(size_t)r * in + j + c]);
                        ptq_ggml_choose_params(p->type, x, wimp ? wimp + j : NULL, &bp);
                    } else if (dyn_sub && jb % bp.sub == 0) {
                        for (int c = 0; c < bp.sub; c++) x[c] = (float)W1[i + c];
                        ptq_ggml_rechoose_sub(x, wimp ? wimp + j : NULL, jb / bp.sub, &bp);
                    }
                    double w = W1[i];
                    float deq;
                    codes[jb] = (uint8_t)ptq_ggml_grid_code(&bp, jb, (float)w, &deq);
                    double e = (w - (double)deq) / U[(size_t)j * in + j];
                    Err[(size_t)r * B + i] = e;
                    const double *Uj = U + (size_t)j * in + i1;
                    for (int k = i + 1; k < cnt; k++) W1[k] -= e * Uj[k];
                    if (jb == blk - 1) ptq_ggml_pack_block(&bp, codes, row + (size_t)(j / blk) * (size_t)t->bytes);
                }
            }
            free(W1);
        }
        if (i2 < in)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in - i2, cnt, -1.0, Err, B,
                        U + (size_t)i1 * in + i2, in, 1.0, Wd + i2, in);
    }
    if (oom) st = ptq_fail(err, PTQ_ERR_NOMEM, "GPTQ into %s: out of memory", t->name);

done:
    ptq_free(Wd);
    ptq_free(U);
    ptq_free(Err);
    ptq_free(imp);
    return st;
}
