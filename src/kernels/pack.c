/* Packing of low-bit codes in 32-column chunks (layout in qweight.h), and the reference dequantizer. */
#include <string.h>

#include "io/safetensors.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qweight.h"

size_t ptq_qweight_row_bytes(int bits, int in) {
    if (in <= 0 || (bits != 2 && bits != 3 && bits != 4 && bits != 8)) return 0;
    return (size_t)((in + PTQ_QCHUNK - 1) / PTQ_QCHUNK) * 4u * (size_t)bits;
}

/* One chunk: q holds 32 codes (already masked to `bits`). */
static void pack_chunk(int bits, const uint8_t *q, uint8_t *dst) {
    switch (bits) {
    case 8:
        memcpy(dst, q, 32);
        break;
    case 4:
        for (int k = 0; k < 16; k++) dst[k] = (uint8_t)(q[k] | q[k + 16] << 4);
        break;
    case 2:
    case 3: {
        for (int k = 0; k < 8; k++) {
            unsigned b = 0;
            for (int i = 0; i < 4; i++) b |= (unsigned)(q[k + 8 * i] & 3u) << (2 * i);
            dst[k] = (uint8_t)b;
        }
        if (bits == 3) {
            uint32_t hi = 0;
            for (int j = 0; j < 32; j++) hi |= (uint32_t)((q[j] >> 2) & 1u) << j;
            for (int b = 0; b < 4; b++) dst[8 + b] = (uint8_t)(hi >> (8 * b));
        }
        break;
    }
    default:
        break;
    }
}

void ptq_pack_row(int bits, const uint8_t *q, int in, uint8_t *dst) {
    const uint8_t mask = (uint8_t)((1u << bits) - 1u);
    const int nch = (in + PTQ_QCHUNK - 1) / PTQ_QCHUNK;
    for (int c = 0; c < nch; c++) {
        uint8_t buf[PTQ_QCHUNK];
        int n = in - c * PTQ_QCHUNK < PTQ_QCHUNK ? in - c * PTQ_QCHUNK : PTQ_QCHUNK;
        for (int j = 0; j < PTQ_QCHUNK; j++) buf[j] = j < n ? (uint8_t)(q[c * PTQ_QCHUNK + j] & mask) : 0;
        pack_chunk(bits, buf, dst + (size_t)c * 4u * (size_t)bits);
    }
}

void ptq_unpack_row(int bits, const uint8_t *src, int in, uint8_t *q) {
    const int nch = (in + PTQ_QCHUNK - 1) / PTQ_QCHUNK;
    for (int c = 0; c < nch; c++) {
        uint8_t buf[PTQ_QCHUNK];
        int n = in - c * PTQ_QCHUNK < PTQ_QCHUNK ? in - c * PTQ_QCHUNK : PTQ_QCHUNK;
        ptq_unpack_chunk(bits, src + (size_t)c * 4u * (size_t)bits, buf);
        memcpy(q + (size_t)c * PTQ_QCHUNK, buf, (size_t)n);
    }
}

/* dst is in the layer's input-column order: with act-order, packed column j lands at perm[j]. */
void ptq_qweight_dequant_row(const ptq_qweight *w, int row, float *dst) {
    const uint8_t *src = w->codes + (size_t)row * w->row_bytes;
    const uint16_t *sr = w->scales + (size_t)row * (size_t)w->n_groups;
    const uint8_t *zr = w->zeros + (size_t)row * (size_t)w->n_groups;
    const int nch = (w->in + PTQ_QCHUNK - 1) / PTQ_QCHUNK;
    for (int c = 0; c < nch; c++) {
        uint8_t q[PTQ_QCHUNK];
        ptq_unpack_chunk(w->bits, src + (size_t)c * 4u * (size_t)w->bits, q);
        for (int k = 0; k < PTQ_QCHUNK; k++) {
            int j = c * PTQ_QCHUNK + k;
            if (j >= w->in) break;
            int g = j / w->group;
            float v = ptq_f16_to_f32(sr[g]) * (float)((int)q[k] - (int)zr[g]);
            dst[w->perm ? w->perm[j] : j] = v;
        }
    }
}
