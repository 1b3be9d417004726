/* Scalar reference kernels: plain C, any CPU. The SIMD kernels are tested against these. */
#include "io/safetensors.h"
#include "kernels/qgemm_impl.h"

/* B is a constant after inlining, so the unpacking specializes per bit width. One input row at a
 * time: simple loops the compiler vectorizes (eight partial sums per dot product). */
static inline __attribute__((always_inline)) void gemv_bits(const int B, const ptq_qgemv_args *a, int o0, int o1) {
    const ptq_qweight *w = a->w;
    const int ng = w->n_groups;
    const size_t cbytes = 4u * (size_t)B;
    for (int o = o0; o < o1; o++) {
        const uint8_t *codes = w->codes + (size_t)o * w->row_bytes;
        const uint16_t *sr = w->scales + (size_t)o * (size_t)ng;
        const uint8_t *zr = ptq_qweight_zeros_of(w, o);
        for (int r = 0; r < a->rows; r++) {
            const float *xr = a->xp + (size_t)r * a->ldx;
            const float *xs = a->xsum + (size_t)r * (size_t)ng;
            float acc = 0.0f;
            for (int g = 0; g < ng; g++) {
                const int c0 = g * a->cpg;
                const int c1 = c0 + a->cpg < a->nchunks ? c0 + a->cpg : a->nchunks;
                float d[8] = {0};
                for (int c = c0; c < c1; c++) {
                    uint8_t q[PTQ_QCHUNK];
                    float qf[PTQ_QCHUNK];
                    ptq_unpack_chunk(B, codes + (size_t)c * cbytes, q);
                    for (int j = 0; j < PTQ_QCHUNK; j++) qf[j] = (float)q[j];
                    const float *x = xr + (size_t)c * PTQ_QCHUNK;
                    for (int k = 0; k < 8; k++) /* elementwise in k: the compiler vectorizes it */
                        d[k] +=
                            (qf[k] * x[k] + qf[k + 8] * x[k + 8]) + (qf[k + 16] * x[k + 16] + qf[k + 24] * x[k + 24]);
                }
                const float dot = ((d[0] + d[4]) + (d[1] + d[5])) + ((d[2] + d[6]) + (d[3] + d[7]));
                acc += ptq_f16_to_f32(sr[g]) * (dot - (float)zr[g] * xs[g]);
            }
            a->y[(size_t)r * (size_t)w->out + (size_t)o] = acc;
        }
    }
}

void ptq_qgemv_scalar(const ptq_qgemv_args *a, int o0, int o1) {
    switch (a->w->bits) {
    case 2: gemv_bits(2, a, o0, o1); break;
    case 3: gemv_bits(3, a, o0, o1); break;
    case 4: gemv_bits(4, a, o0, o1); break;
    case 5: gemv_bits(5, a, o0, o1); break;
    case 6: gemv_bits(6, a, o0, o1); break;
    case 7: gemv_bits(7, a, o0, o1); break;
    case 8: gemv_bits(8, a, o0, o1); break;
    default: break;
    }
}

void ptq_qdequant_scalar(const ptq_qweight *w, int o0, int o1, float *dst, size_t ld) {
    const int nch = (w->in + PTQ_QCHUNK - 1) / PTQ_QCHUNK;
    const int cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nch;
    const size_t cbytes = 4u * (size_t)w->bits;
    for (int o = o0; o < o1; o++) {
        const uint8_t *codes = w->codes + (size_t)o * w->row_bytes;
        const uint16_t *sr = w->scales + (size_t)o * (size_t)w->n_groups;
        const uint8_t *zr = ptq_qweight_zeros_of(w, o);
        float *d = dst + (size_t)(o - o0) * ld;
        for (int c = 0; c < nch; c++) {
            const int g = c / cpg;
            const float s = ptq_f16_to_f32(sr[g]);
            const int z = zr[g];
            uint8_t q[PTQ_QCHUNK];
            ptq_unpack_chunk(w->bits, codes + (size_t)c * cbytes, q);
            for (int j = 0; j < PTQ_QCHUNK; j++) d[c * PTQ_QCHUNK + j] = s * (float)((int)q[j] - z);
        }
    }
}
