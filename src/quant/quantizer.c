/* Uniform min-max weight quantizer, qweight allocation, and round-to-nearest. */
#include "quant/quantizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/safetensors.h"

/* The scale as it will be stored (fp16), never zero. */
static float fp16_scale(double s) {
    float f = ptq_f16_to_f32(ptq_f32_to_f16((float)s));
    const float tiny = 5.9604645e-08f; /* 2^-24, the smallest fp16 subnormal */
    return f >= tiny ? f : tiny;
}

void ptq_wq_find_params(const ptq_wq_params *p, const double *w, int n, int stride, float *scale, int *zero) {
    int maxq = (1 << p->bits) - 1;
    double xmin = 0, xmax = 0;
    for (int j = 0; j < n; j++) {
        double v = w[(size_t)j * stride];
        if (v < xmin) xmin = v;
        if (v > xmax) xmax = v;
    }
    if (p->restricted) {
        double a = fmax(-xmin, xmax);
        *scale = fp16_scale((a > 0 ? a : 1.0) / ((1 << (p->bits - 1)) - 1));
        *zero = 1 << (p->bits - 1);
        return;
    }
    if (p->sym) {
        double a = fmax(-xmin, xmax);
        xmax = a;
        if (xmin < 0) xmin = -a;
    }
    if (xmin == 0 && xmax == 0) {
        xmin = -1;
        xmax = 1;
    }
    float s = fp16_scale((xmax - xmin) / maxq);
    *scale = s;
    if (p->sym) {
        *zero = (maxq + 1) / 2;
    } else {
        double z = nearbyint(-xmin / s);
        *zero = z < 0 ? 0 : z > maxq ? maxq : (int)z;
    }
}

void ptq_wq_tensor_params(const ptq_wq_params *p, const float *W, size_t n, float *scale, int *zero) {
    double range[2] = {0, 0}; /* ptq_wq_find_params looks only at the extremes */
    for (size_t i = 0; i < n; i++) {
        if (W[i] < range[0]) range[0] = W[i];
        if (W[i] > range[1]) range[1] = W[i];
    }
    ptq_wq_find_params(p, range, 2, 1, scale, zero);
}

int ptq_wq_code(double w, float scale, int zero, int qmin, int maxq) {
    double q = nearbyint(w / scale) + zero; /* default rounding mode: half to even, as torch.round */
    return q < qmin ? qmin : q > maxq ? maxq : (int)q;
}

ptq_status ptq_qweight_shape(ptq_qweight *q, int bits, int group, int in, int out, ptq_error *err) {
    memset(q, 0, sizeof *q);
    if (bits < 2 || bits > 8)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%d-bit weights are not supported (2 to 8)", bits);
    if (in < 1 || out < 1)
        return ptq_fail(err, PTQ_ERR_ARG, "a quantized matrix needs positive sizes, got %d x %d", out, in);
    if (group <= 0 || group >= in) group = in;
    else if (group % PTQ_QCHUNK != 0)
        return ptq_fail(err, PTQ_ERR_ARG, "group size %d is not a multiple of %d", group, PTQ_QCHUNK);
    q->grid_bits = bits;
    q->bits = bits; /* stored at its own width (5-7 bits tightly: kernels/qweight.h) */
    q->in = in;
    q->out = out;
    q->group = group;
    q->n_groups = (in + group - 1) / group;
    q->row_bytes = ptq_qweight_row_bytes(q->bits, in);
    return PTQ_OK;
}

ptq_status ptq_qweight_alloc(ptq_qweight *q, int bits, int group, int in, int out, int with_perm, ptq_error *err) {
    PTQ_TRY(ptq_qweight_shape(q, bits, group, in, out, err));
    q->codes = ptq_alloc((size_t)out, q->row_bytes, "packed weights", err);
    q->scales = ptq_alloc((size_t)out * q->n_groups, sizeof(uint16_t), "scales", err);
    q->zeros = ptq_alloc((size_t)out * q->n_groups, 1, "zero points", err);
    if (with_perm) q->perm = ptq_alloc((size_t)in, sizeof(int32_t), "permutation", err);
    if (!q->codes || !q->scales || !q->zeros || (with_perm && !q->perm)) {
        ptq_qweight_free(q);
        return PTQ_ERR_NOMEM;
    }
    return PTQ_OK;
}

void ptq_qweight_free(ptq_qweight *q) {
    ptq_free(q->codes);
    ptq_free(q->scales);
    ptq_free(q->zeros);
    ptq_free(q->zero_row);
    ptq_free(q->perm);
    memset(q, 0, sizeof *q);
}

ptq_status ptq_qweight_drop_sym_zeros(ptq_qweight *q, ptq_error *err) {
    if (!q->zeros) return PTQ_OK;
    const uint8_t half = (uint8_t)(1 << (q->grid_bits - 1));
    const size_t n = (size_t)q->out * (size_t)q->n_groups;
    for (size_t i = 0; i < n; i++)
        if (q->zeros[i] != half) return PTQ_OK;
    uint8_t *row = ptq_alloc((size_t)q->n_groups, 1, "zero points", err);
    if (!row) return PTQ_ERR_NOMEM;
    memset(row, half, (size_t)q->n_groups);
    ptq_free(q->zeros);
    q->zeros = NULL;
    q->zero_row = row;
    return PTQ_OK;
}

void ptq_qweight_set_row(ptq_qweight *q, int r, const uint8_t *codes) {
    ptq_pack_row(q->bits, codes, q->in, q->codes + (size_t)r * q->row_bytes);
}

ptq_status ptq_rtn_quantize(const float *W, int out, int in, const ptq_wq_params *p, ptq_qweight *q, ptq_error *err) {
    PTQ_TRY(ptq_qweight_alloc(q, p->bits, p->group, in, out, 0, err));
    int maxq = (1 << p->bits) - 1, G = q->group, tensor_zero = 0;
    float tensor_scale = 0;
    if (p->group == PTQ_GROUP_TENSOR) ptq_wq_tensor_params(p, W, (size_t)out * in, &tensor_scale, &tensor_zero);
    ptq_status st = PTQ_OK;
#pragma omp parallel
    {
        double *row = malloc((size_t)in * sizeof *row);
        uint8_t *codes = malloc((size_t)in);
        if (!row || !codes) {
#pragma omp critical
            st = ptq_fail(err, PTQ_ERR_NOMEM, "RTN: out of memory");
        } else {
#pragma omp for schedule(static)
            for (int r = 0; r < out; r++) {
                for (int j = 0; j < in; j++) row[j] = W[(size_t)r * in + j];
                for (int g = 0; g < q->n_groups; g++) {
                    int j0 = g * G, n = in - j0 < G ? in - j0 : G, zero;
                    float s;
                    if (p->group == PTQ_GROUP_TENSOR) s = tensor_scale, zero = tensor_zero;
                    else ptq_wq_find_params(p, row + j0, n, 1, &s, &zero);
                    q->scales[(size_t)r * q->n_groups + g] = ptq_f32_to_f16(s);
                    q->zeros[(size_t)r * q->n_groups + g] = (uint8_t)zero;
                    for (int j = j0; j < j0 + n; j++) codes[j] = (uint8_t)ptq_wq_code(row[j], s, zero, ptq_wq_qmin(p), maxq);
                }
                ptq_qweight_set_row(q, r, codes);
            }
        }
        free(row);
        free(codes);
    }
    if (st == PTQ_OK) st = ptq_qweight_drop_sym_zeros(q, err);
    if (st != PTQ_OK) ptq_qweight_free(q);
    return st;
}
