/* The k-quants' parameter choice (Q2_K..Q6_K): ggml's scale searches (make_qx_quants, make_q3_quants,
 * make_qkx2_quants in ggml-quants.c, re-implemented with the same float operations in the same order, so the
 * chosen scales are ggml's bit for bit), then the quantization of the sub-block scales and mins against the
 * super-block's fp16 d and dmin as quantize_row_*_ref does it. */
#include <math.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* ggml rounds every product and sum separately: no fused multiply-adds */
#endif

#include "io/gguf.h"
#include "io/safetensors.h"
#include "quant/ggml_quants_impl.h"

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* nearest for a ratio that may be out of the trick's range */
static int nearest_safe(float f, int lo, int hi) {
    if (!(f > -4e6f)) return lo;
    if (f > 4e6f) return hi;
    return clampi(ptq_ggml_nearest(f), lo, hi);
}

/* Symmetric scale search for codes in [-nmax, nmax-1] (L gets code + nmax): the scale of the value of
 * largest magnitude, then (rmse_type > 0) the weighted least-squares scale of its rounding and of 18 nearby
 * trial scales, keeping the best. Weights: qw, or by rmse_type 1: x^2, 2: 1, 3: |x|, else sqrt|x|. */
float ptq_ggml_make_qx(int n, int nmax, const float *x, int8_t *L, int rmse_type, const float *qw) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax < PTQ_GGML_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = (float)-nmax / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clampi(ptq_ggml_nearest(iscale * x[i]), -nmax, nmax - 1));
        return 1 / iscale;
    }
    int early = rmse_type < 0;
    if (early) rmse_type = -rmse_type;
#define QX_WEIGHT(i)                                                                                                 \
    (qw ? qw[i] : rmse_type == 1 ? x[i] * x[i] : rmse_type == 2 ? 1 : rmse_type == 3 ? fabsf(x[i]) : sqrtf(fabsf(x[i])))
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(ptq_ggml_nearest(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = QX_WEIGHT(i);
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    if (early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(ptq_ggml_nearest(iscale * x[i]), -nmax, nmax - 1);
            float w = QX_WEIGHT(i);
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clampi(ptq_ggml_nearest(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
#undef QX_WEIGHT
    return scale;
}

/* Q3_K's symmetric search: round with the largest-magnitude scale, then move single codes to the value the
 * least-squares fit of the others asks for while the x^2-weighted fit improves (at most 5 sweeps). */
static float make_q3(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax < PTQ_GGML_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = (float)-nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(ptq_ggml_nearest(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i], slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int nl = clampi(ptq_ggml_nearest(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (nl != L[i]) {
                    slx += w * x[i] * (float)nl;
                    sl2 += w * (float)nl * (float)nl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)nl, sumlx = slx, suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Affine search, codes 0..nmax, value = scale * L - the_min (the_min >= 0): min-max rounding, then the
 * weighted least-squares (scale, min) of the roundings at nstep+1 trial scales, keeping the one of least
 * weighted squared (or absolute, use_mad) error. */
float ptq_ggml_make_qkx2(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min, uint8_t *Laux,
                         float rmin, float rdelta, int nstep, int use_mad) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(ptq_ggml_nearest(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(ptq_ggml_nearest(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) this_min = 0, this_scale = sum_xl / sum_l2;
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error, scale = this_scale, min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* the weights ggml's reference gives Q4_K / Q5_K's search: rms of the sub-block + |x| */
static void k4_weights(const float *x, float *w) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; l++) sum_x2 += x[l] * x[l];
    float av_x = sqrtf(sum_x2 / 32);
    for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[l]);
}

/* one sub-block's float scale (and min) and search codes */
static float search_sub(uint32_t type, const float *x, const float *imp, uint8_t *L, float *the_min) {
    float w[32];
    uint8_t Laux[32];
    int8_t Ls[32];
    float s;
    *the_min = 0;
    switch (type) {
    case PTQ_GGML_Q2_K:
        for (int l = 0; l < 16; l++) w[l] = imp ? imp[l] : fabsf(x[l]);
        return ptq_ggml_make_qkx2(16, 3, x, w, L, the_min, Laux, -0.5f, 0.1f, 15, 1);
    case PTQ_GGML_Q4_K: case PTQ_GGML_Q5_K:
        if (imp) memcpy(w, imp, 32 * sizeof *w);
        else k4_weights(x, w);
        return type == PTQ_GGML_Q4_K ? ptq_ggml_make_qkx2(32, 15, x, w, L, the_min, Laux, -1.f, 0.1f, 20, 0)
                                     : ptq_ggml_make_qkx2(32, 31, x, w, L, the_min, Laux, -0.5f, 0.1f, 15, 0);
    case PTQ_GGML_Q3_K:
        s = imp ? ptq_ggml_make_qx(16, 4, x, Ls, 1, imp) : make_q3(16, 4, x, Ls);
        break;
    default: /* Q6_K */
        s = ptq_ggml_make_qx(16, 32, x, Ls, 1, imp);
        break;
    }
    for (int l = 0; l < 16; l++) L[l] = (uint8_t)Ls[l];
    return s;
}

void ptq_ggml_kq_choose(uint32_t type, const float *x, const float *imp, ptq_ggml_block_params *p, uint8_t *L) {
    memset(p, 0, sizeof *p);
    p->type = type;
    const ptq_ggml_qtype *t = ptq_ggml_qtype_get(type);
    int sub = t->sub, n_sub = PTQ_GGML_QK_K / sub;
    float scales[16], mins[16];
    for (int j = 0; j < n_sub; j++)
        scales[j] = search_sub(type, x + sub * j, imp ? imp + sub * j : NULL, L + sub * j, &mins[j]);

    if (t->affine) {
        /* scales and mins are >= 0: quantized against the largest of each */
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < n_sub; j++) {
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (type == PTQ_GGML_Q2_K) { /* 4-bit scales and mins in one byte */
            uint8_t b[16] = {0};
            if (max_scale > 0) {
                float iscale = 15.f / max_scale;
                for (int j = 0; j < 16; j++) b[j] = (uint8_t)ptq_ggml_nearest(iscale * scales[j]);
                p->d = ptq_f32_to_f16(max_scale / 15.f);
            }
            if (max_min > 0) {
                float iscale = 15.f / max_min;
                for (int j = 0; j < 16; j++) b[j] |= (uint8_t)(ptq_ggml_nearest(iscale * mins[j]) << 4);
                p->dmin = ptq_f32_to_f16(max_min / 15.f);
            }
            for (int j = 0; j < 16; j++) p->sc[j] = b[j] & 15, p->mn[j] = b[j] >> 4;
        } else { /* 6-bit */
            float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
            for (int j = 0; j < 8; j++) {
                uint8_t ls = (uint8_t)ptq_ggml_nearest(inv_scale * scales[j]), lm = (uint8_t)ptq_ggml_nearest(inv_min * mins[j]);
                p->sc[j] = ls < 63 ? ls : 63, p->mn[j] = lm < 63 ? lm : 63;
            }
            p->d = ptq_f32_to_f16(max_scale / 63.f), p->dmin = ptq_f32_to_f16(max_min / 63.f);
        }
    } else {
        /* signed scales, quantized against the one of largest magnitude */
        float max_scale = 0, amax = 0;
        for (int j = 0; j < n_sub; j++)
            if (fabsf(scales[j]) > amax) amax = fabsf(scales[j]), max_scale = scales[j];
        if (type == PTQ_GGML_Q3_K) { /* 6-bit, stored + 32 */
            if (max_scale != 0) {
                float iscale = -32.f / max_scale;
                for (int j = 0; j < 16; j++) p->sc[j] = (int16_t)(clampi((int8_t)ptq_ggml_nearest(iscale * scales[j]), -32, 31) + 32);
                p->d = ptq_f32_to_f16(1 / iscale);
            }
        } else { /* Q6_K: int8 */
            if (amax < PTQ_GGML_EPS) {
                memset(L, 0, PTQ_GGML_QK_K); /* ggml zeroes the whole block */
            } else {
                float iscale = -128.f / max_scale;
                p->d = ptq_f32_to_f16(1 / iscale);
                for (int j = 0; j < 16; j++) {
                    int l = ptq_ggml_nearest(iscale * scales[j]);
                    p->sc[j] = (int8_t)(l < 127 ? l : 127);
                }
            }
        }
    }
    ptq_ggml_params_derive(p);
}

void ptq_ggml_kq_rechoose_sub(const float *x, const float *imp, int s, ptq_ggml_block_params *p) {
    uint8_t L[32];
    float the_min, scale = search_sub(p->type, x, imp, L, &the_min);
    float d = ptq_f16_to_f32(p->d), dmin = ptq_f16_to_f32(p->dmin);
    if (d == 0) return;
    switch (p->type) {
    case PTQ_GGML_Q2_K: case PTQ_GGML_Q4_K: case PTQ_GGML_Q5_K: {
        int top = p->type == PTQ_GGML_Q2_K ? 15 : 63;
        p->sc[s] = (int16_t)nearest_safe(scale / d, 0, top);
        p->mn[s] = (int16_t)(dmin > 0 ? nearest_safe(the_min / dmin, 0, top) : 0);
        break;
    }
    case PTQ_GGML_Q3_K: p->sc[s] = (int16_t)(nearest_safe(scale / d, -32, 31) + 32); break;
    default: p->sc[s] = (int16_t)nearest_safe(scale / d, -128, 127); break;
    }
    ptq_ggml_params_derive(p);
}
