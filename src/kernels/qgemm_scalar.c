/* Scalar reference kernels: plain C, any CPU. The SIMD kernels are tested against these. */
#include "io/safetensors.h"
#include "kernels/qgemm_impl.h"

/* Input rows handled per pass over a weight row (codes are unpacked once per chunk per pass). */
#define SCALAR_RB 8

void ptq_qgemv_scalar(const ptq_qgemv_args *a, int o0, int o1) {
    const ptq_qweight *w = a->w;
    const int ng = w->n_groups;
    const size_t cbytes = 4u * (size_t)w->bits;
    for (int o = o0; o < o1; o++) {
        const uint8_t *codes = w->codes + (size_t)o * w->row_bytes;
        const uint16_t *sr = w->scales + (size_t)o * (size_t)ng;
        const uint8_t *zr = w->zeros + (size_t)o * (size_t)ng;
        for (int r0 = 0; r0 < a->rows; r0 += SCALAR_RB) {
            const int nr = a->rows - r0 < SCALAR_RB ? a->rows - r0 : SCALAR_RB;
            float acc[SCALAR_RB] = {0};
            for (int g = 0; g < ng; g++) {
                const float s = ptq_f16_to_f32(sr[g]);
                const float z = (float)zr[g];
                const int c0 = g * a->cpg;
                const int c1 = c0 + a->cpg < a->nchunks ? c0 + a->cpg : a->nchunks;
                float dot[SCALAR_RB] = {0};
                for (int c = c0; c < c1; c++) {
                    uint8_t q[PTQ_QCHUNK];
                    ptq_unpack_chunk(w->bits, codes + (size_t)c * cbytes, q);
                    for (int r = 0; r < nr; r++) {
                        const float *x = a->xp + (size_t)(r0 + r) * a->ldx + (size_t)c * PTQ_QCHUNK;
                        float d = 0.0f;
                        for (int j = 0; j < PTQ_QCHUNK; j++) d += (float)q[j] * x[j];
                        dot[r] += d;
                    }
                }
                for (int r = 0; r < nr; r++)
                    acc[r] += s * (dot[r] - z * a->xsum[(size_t)(r0 + r) * (size_t)ng + (size_t)g]);
            }
            for (int r = 0; r < nr; r++) a->y[(size_t)(r0 + r) * (size_t)w->out + (size_t)o] = acc[r];
        }
    }
}

void ptq_qdequant_scalar(const ptq_qweight *w, int o0, int o1, float *dst, size_t ld) {
    const int nch = (w->in + PTQ_QCHUNK - 1) / PTQ_QCHUNK;
    const int cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nch;
    const size_t cbytes = 4u * (size_t)w->bits;
    for (int o = o0; o < o1; o++) {
        const uint8_t *codes = w->codes + (size_t)o * w->row_bytes;
        const uint16_t *sr = w->scales + (size_t)o * (size_t)w->n_groups;
        const uint8_t *zr = w->zeros + (size_t)o * (size_t)w->n_groups;
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
