/* Packing of low-bit codes in 32-column chunks (layout in qweight.h), and the reference dequantizer. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qweight.h"

size_t ptq_qweight_row_bytes(int bits, int in) {
    if (in <= 0 || bits < 2 || bits > 8) return 0;
    return (size_t)((in + PTQ_QCHUNK - 1) / PTQ_QCHUNK) * 4u * (size_t)bits;
}

/* The 2-bit layout of the low two bits of q[0..31] into 8 bytes. */
static void pack2(const uint8_t *q, uint8_t *dst) {
    for (int k = 0; k < 8; k++) {
        unsigned b = 0;
        for (int i = 0; i < 4; i++) b |= (unsigned)(q[k + 8 * i] & 3u) << (2 * i);
        dst[k] = (uint8_t)b;
    }
}

/* A 32-bit plane (little-endian): bit j = bit `bit` of q[j]. */
static void pack_plane(const uint8_t *q, int bit, uint8_t *dst) {
    uint32_t hi = 0;
    for (int j = 0; j < 32; j++) hi |= (uint32_t)((q[j] >> bit) & 1u) << j;
    for (int b = 0; b < 4; b++) dst[b] = (uint8_t)(hi >> (8 * b));
}

/* One chunk: q holds 32 codes (already masked to `bits`). 5-7 bits: the 4-bit layout of the low
 * nibbles, then the high bits (q >> 4) in the 1-bit plane / 2-bit / 3-bit layout. */
static void pack_chunk(int bits, const uint8_t *q, uint8_t *dst) {
    if (bits == 8) {
        memcpy(dst, q, 32);
        return;
    }
    if (bits >= 4) {
        uint8_t hi[PTQ_QCHUNK];
        for (int k = 0; k < 16; k++) dst[k] = (uint8_t)((q[k] & 15u) | (q[k + 16] & 15u) << 4);
        for (int j = 0; j < PTQ_QCHUNK; j++) hi[j] = (uint8_t)(q[j] >> 4);
        if (bits == 5) pack_plane(hi, 0, dst + 16);
        if (bits >= 6) pack2(hi, dst + 16);
        if (bits == 7) pack_plane(hi, 2, dst + 24);
        return;
    }
    pack2(q, dst);
    if (bits == 3) pack_plane(q, 2, dst + 8);
}

void ptq_pack_row(int bits, const uint8_t *q, int in, uint8_t *dst) {
    if (ptq_qweight_row_bytes(bits, in) == 0) return; /* unsupported bits or no columns */
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
    if (ptq_qweight_row_bytes(bits, in) == 0) return;
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
    const uint8_t *zr = ptq_qweight_zeros_of(w, row);
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

ptq_status ptq_qweight_validate(const ptq_qweight *w, const char *name, ptq_error *err) {
    if (!name) name = "quantized weight";
    if (!w) return ptq_fail(err, PTQ_ERR_ARG, "%s: no weight given", name);
    if (w->bits < 2 || w->bits > 8)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: %d-bit codes; expected 2 to 8", name, w->bits);
    if (w->in <= 0 || w->out <= 0)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: shape [%d][%d]; expected positive out and in", name, w->out, w->in);
    if (w->group <= 0 || (w->group % PTQ_QCHUNK != 0 && w->group != w->in))
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: group size %d; expected a multiple of 32 or in (%d)", name,
                        w->group, w->in);
    const int ng = (w->in + w->group - 1) / w->group;
    if (w->n_groups != ng)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: n_groups %d; expected ceil(%d / %d) = %d", name, w->n_groups, w->in,
                        w->group, ng);
    if (w->row_bytes != ptq_qweight_row_bytes(w->bits, w->in))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: row_bytes %zu; expected %zu for %d columns of %d bits", name,
                        w->row_bytes, ptq_qweight_row_bytes(w->bits, w->in), w->in, w->bits);
    if (!w->codes || !w->scales || (!w->zeros && !w->zero_row))
        return ptq_fail(err, PTQ_ERR_ARG, "%s: codes, scales and zero points (or their shared row) must be present", name);
    const size_t n = (size_t)w->out * (size_t)ng;
    for (size_t i = 0; i < n; i++) {
        const uint8_t z = ptq_qweight_zeros_of(w, (int)(i / (size_t)ng))[i % (size_t)ng];
        if (z >> w->bits)
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: zero point %u at row %zu group %zu; expected < %u", name, z,
                            i / (size_t)ng, i % (size_t)ng, 1u << w->bits);
        if ((w->scales[i] & 0x7c00u) == 0x7c00u)
            return ptq_fail(err, PTQ_ERR_NUMERIC, "%s: scale at row %zu group %zu is Inf or NaN (fp16 0x%04x)", name,
                            i / (size_t)ng, i % (size_t)ng, w->scales[i]);
    }
    if (w->perm) {
        uint8_t *seen = ptq_alloc((size_t)w->in, 1, name, err);
        if (!seen) return PTQ_ERR_NOMEM;
        for (int j = 0; j < w->in; j++) {
            const int32_t p = w->perm[j];
            if (p < 0 || p >= w->in || seen[p]) {
                ptq_free(seen);
                return ptq_fail(err, PTQ_ERR_FORMAT, "%s: perm[%d] = %d; expected a permutation of 0..%d", name, j,
                                (int)p, w->in - 1);
            }
            seen[p] = 1;
        }
        ptq_free(seen);
    }
    return PTQ_OK;
}
