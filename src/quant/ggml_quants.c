/* ggml's block types: the table, packing, the grid of a block, dequantization, and the legacy (32-value
 * block) reference quantizers. The k-quants' scale searches are in ggml_kquants.c. Layouts and rounding
 * follow ggml-common.h / ggml-quants.c (read, not copied): every float operation is done in the order ggml
 * does it, so the bytes and the dequantized floats are ggml's own. */
#include <float.h>
#include <math.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF /* ggml rounds every product and sum separately: no fused multiply-adds */
#endif

#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "quant/ggml_quants_impl.h"

static const ptq_ggml_qtype k_types[] = {
    /* type, name, block, bytes, sub, qmax, zero, affine */
    {PTQ_GGML_Q4_0, "Q4_0", 32, 18, 32, 15, 8, 0},     {PTQ_GGML_Q4_1, "Q4_1", 32, 20, 32, 15, 0, 1},
    {PTQ_GGML_Q5_0, "Q5_0", 32, 22, 32, 31, 16, 0},    {PTQ_GGML_Q5_1, "Q5_1", 32, 24, 32, 31, 0, 1},
    {PTQ_GGML_Q8_0, "Q8_0", 32, 34, 32, 255, 128, 0},  {PTQ_GGML_Q2_K, "Q2_K", 256, 84, 16, 3, 0, 1},
    {PTQ_GGML_Q3_K, "Q3_K", 256, 110, 16, 7, 4, 0},    {PTQ_GGML_Q4_K, "Q4_K", 256, 144, 32, 15, 0, 1},
    {PTQ_GGML_Q5_K, "Q5_K", 256, 176, 32, 31, 0, 1},   {PTQ_GGML_Q6_K, "Q6_K", 256, 210, 16, 63, 32, 0},
};

const ptq_ggml_qtype *ptq_ggml_qtype_get(uint32_t type) {
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++)
        if (k_types[i].type == type) return &k_types[i];
    return NULL;
}

int ptq_ggml_quant_supported(uint32_t type) { return ptq_ggml_qtype_get(type) != NULL; }

int ptq_ggml_quant_affine(uint32_t type) {
    const ptq_ggml_qtype *t = ptq_ggml_qtype_get(type);
    return t && t->affine;
}

const char *ptq_ggml_quant_list(void) { return "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"; }

/* block size and bytes of the ten and of the float types; 0 when neither */
static int block_of(uint32_t type, int *bytes) {
    const ptq_ggml_qtype *t = ptq_ggml_qtype_get(type);
    if (t) return *bytes = t->bytes, t->block;
    if (type == PTQ_GGML_F32) return *bytes = 4, 1;
    if (type == PTQ_GGML_F16 || type == PTQ_GGML_BF16) return *bytes = 2, 1;
    return *bytes = 0, 0;
}

size_t ptq_ggml_row_bytes(uint32_t type, int64_t n) {
    int bytes, block = block_of(type, &bytes);
    if (!block || n <= 0 || n % block) return 0;
    return (size_t)(n / block) * (size_t)bytes;
}

/* ---------------------------------------------------------------- parameters and the grid */

static float h2f(uint16_t h) { return ptq_f16_to_f32(h); }

void ptq_ggml_params_derive(ptq_ggml_block_params *p) {
    const ptq_ggml_qtype *t = ptq_ggml_qtype_get(p->type);
    if (!t) return;
    p->n = t->block, p->sub = t->sub, p->n_sub = t->block / t->sub, p->qmax = t->qmax, p->zero = t->zero;
    p->affine = t->affine;
    float d = h2f(p->d), dmin = h2f(p->dmin);
    for (int s = 0; s < p->n_sub; s++) {
        switch (p->type) {
        case PTQ_GGML_Q3_K: p->scale[s] = d * (float)(p->sc[s] - 32), p->min[s] = 0; break;
        case PTQ_GGML_Q2_K: case PTQ_GGML_Q4_K: case PTQ_GGML_Q5_K:
            p->scale[s] = d * (float)p->sc[s], p->min[s] = dmin * (float)p->mn[s];
            break;
        case PTQ_GGML_Q6_K: p->scale[s] = d * (float)p->sc[s], p->min[s] = 0; break;
        default: /* legacy: value = d*q + m, i.e. min = -m */
            p->scale[s] = d, p->min[s] = t->affine ? -dmin : 0;
        }
    }
}

float ptq_ggml_grid_value(const ptq_ggml_block_params *p, int j, int q) {
    int s = j / p->sub;
    if (p->affine) return p->scale[s] * (float)q - p->min[s];
    return p->scale[s] * (float)(q - p->zero);
}

int ptq_ggml_grid_code(const ptq_ggml_block_params *p, int j, float w, float *deq) {
    int s = j / p->sub, lo = p->affine ? 0 : -p->zero, hi = p->qmax - (p->affine ? 0 : p->zero), l;
    float sc = p->scale[s];
    if (sc == 0) {
        l = 0; /* every code stands for the same value */
    } else {
        /* ggml's final rounding: nearest((x + dmin*m) / (d*sc)) resp. nearest(x / (d*sc)) */
        float f = p->affine ? (w + p->min[s]) / sc : w / sc;
        l = f > 4e6f ? hi : f > -4e6f ? ptq_ggml_nearest(f) : lo; /* NaN goes low */
        l = l < lo ? lo : l > hi ? hi : l;
    }
    int q = p->affine ? l : l + p->zero;
    if (deq) *deq = ptq_ggml_grid_value(p, j, q);
    return q;
}

/* ---------------------------------------------------------------- packing */

static void put16(unsigned char *b, uint16_t v) { b[0] = (unsigned char)v, b[1] = (unsigned char)(v >> 8); }
static uint16_t get16(const unsigned char *b) { return (uint16_t)(b[0] | (b[1] << 8)); }

/* 16 six-bit values (Q3_K) in 12 bytes: low nibbles of 0..7 in bytes 0..7, of 8..15 in their high nibbles,
 * the top two bits of value j in byte 8 + j%4 at bit 2*(j/4) */
static void pack_q3k_scales(const int16_t *sc, unsigned char *b) {
    memset(b, 0, 12);
    for (int j = 0; j < 16; j++) {
        int v = sc[j] & 63;
        if (j < 8) b[j] |= (unsigned char)(v & 15);
        else b[j - 8] |= (unsigned char)((v & 15) << 4);
        b[8 + j % 4] |= (unsigned char)((v >> 4) << (2 * (j / 4)));
    }
}
static void unpack_q3k_scales(const unsigned char *b, int16_t *sc) {
    for (int j = 0; j < 16; j++)
        sc[j] = (int16_t)((j < 8 ? b[j] & 15 : b[j - 8] >> 4) | (((b[8 + j % 4] >> (2 * (j / 4))) & 3) << 4));
}
/* 8 six-bit scales and mins (Q4_K, Q5_K) in 12 bytes: 0..3 whole in bytes 0..3 / 4..7; 4..7 as low nibbles
 * in bytes 8..11 with their top two bits in the top bits of bytes 0..3 (scales) / 4..7 (mins) */
static void pack_k4_scales(const int16_t *sc, const int16_t *mn, unsigned char *b) {
    memset(b, 0, 12);
    for (int j = 0; j < 8; j++) {
        int ls = sc[j] & 63, lm = mn[j] & 63;
        if (j < 4) {
            b[j] |= (unsigned char)ls, b[j + 4] |= (unsigned char)lm;
        } else {
            b[j + 4] = (unsigned char)((ls & 15) | ((lm & 15) << 4));
            b[j - 4] |= (unsigned char)((ls >> 4) << 6);
            b[j] |= (unsigned char)((lm >> 4) << 6);
        }
    }
}
static void unpack_k4_scales(const unsigned char *b, int16_t *sc, int16_t *mn) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) sc[j] = b[j] & 63, mn[j] = b[j + 4] & 63;
        else sc[j] = (int16_t)((b[j + 4] & 15) | ((b[j - 4] >> 6) << 4)), mn[j] = (int16_t)((b[j + 4] >> 4) | ((b[j] >> 6) << 4));
    }
}
/* 2-bit fields of 128 values in 32 bytes: byte l holds values l, l+32, l+64, l+96 (Q2_K, Q3_K low bits) */
static void pack_2bit(const uint8_t *c, unsigned char *qs) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *v = c + 128 * h + l;
            qs[32 * h + l] = (unsigned char)((v[0] & 3) | ((v[32] & 3) << 2) | ((v[64] & 3) << 4) | ((v[96] & 3) << 6));
        }
}
static void unpack_2bit(const unsigned char *qs, uint8_t *c) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++)
            for (int k = 0; k < 4; k++) c[128 * h + 32 * k + l] = (qs[32 * h + l] >> (2 * k)) & 3;
}
/* nibbles of 64-value groups: byte l of group g holds values 64g+l (low) and 64g+32+l (high) (Q4_K, Q5_K) */
static void pack_nib64(const uint8_t *c, unsigned char *qs) {
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) qs[32 * g + l] = (unsigned char)((c[64 * g + l] & 15) | ((c[64 * g + 32 + l] & 15) << 4));
}
static void unpack_nib64(const unsigned char *qs, uint8_t *c) {
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++) c[64 * g + l] = qs[32 * g + l] & 15, c[64 * g + 32 + l] = qs[32 * g + l] >> 4;
}

void ptq_ggml_pack_block(const ptq_ggml_block_params *p, const uint8_t *c, void *dst) {
    unsigned char *b = dst;
    switch (p->type) {
    case PTQ_GGML_Q4_0: case PTQ_GGML_Q4_1: case PTQ_GGML_Q5_0: case PTQ_GGML_Q5_1: {
        /* d [m] [qh: bit j = bit 4 of value j] qs: byte j holds values j (low) and j+16 (high) */
        int aff = p->type == PTQ_GGML_Q4_1 || p->type == PTQ_GGML_Q5_1, five = p->type == PTQ_GGML_Q5_0 || p->type == PTQ_GGML_Q5_1;
        put16(b, p->d);
        b += 2;
        if (aff) put16(b, p->dmin), b += 2;
        if (five) {
            uint32_t qh = 0;
            for (int j = 0; j < 32; j++) qh |= (uint32_t)((c[j] >> 4) & 1) << j;
            for (int k = 0; k < 4; k++) b[k] = (unsigned char)(qh >> (8 * k));
            b += 4;
        }
        for (int j = 0; j < 16; j++) b[j] = (unsigned char)((c[j] & 15) | ((c[j + 16] & 15) << 4));
        break;
    }
    case PTQ_GGML_Q8_0:
        put16(b, p->d);
        for (int j = 0; j < 32; j++) b[2 + j] = (unsigned char)(c[j] - 128); /* int8 two's complement */
        break;
    case PTQ_GGML_Q2_K: /* scales[16] (scale | min << 4), qs[64], d, dmin */
        for (int s = 0; s < 16; s++) b[s] = (unsigned char)((p->sc[s] & 15) | ((p->mn[s] & 15) << 4));
        pack_2bit(c, b + 16);
        put16(b + 80, p->d), put16(b + 82, p->dmin);
        break;
    case PTQ_GGML_Q3_K: /* hmask[32] (bit 2 of value e in byte e%32, bit e/32), qs[64], scales[12], d */
        memset(b, 0, 32);
        for (int e = 0; e < 256; e++) b[e % 32] |= (unsigned char)(((c[e] >> 2) & 1) << (e / 32));
        pack_2bit(c, b + 32);
        pack_q3k_scales(p->sc, b + 96);
        put16(b + 108, p->d);
        break;
    case PTQ_GGML_Q4_K: /* d, dmin, scales[12], qs[128] */
        put16(b, p->d), put16(b + 2, p->dmin);
        pack_k4_scales(p->sc, p->mn, b + 4);
        pack_nib64(c, b + 16);
        break;
    case PTQ_GGML_Q5_K: /* d, dmin, scales[12], qh[32] (bits 2g / 2g+1: bit 4 of 64g+l / 64g+32+l), qs[128] */
        put16(b, p->d), put16(b + 2, p->dmin);
        pack_k4_scales(p->sc, p->mn, b + 4);
        memset(b + 16, 0, 32);
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++)
                b[16 + l] |= (unsigned char)((((c[64 * g + l] >> 4) & 1) << (2 * g)) | (((c[64 * g + 32 + l] >> 4) & 1) << (2 * g + 1)));
        pack_nib64(c, b + 48);
        break;
    case PTQ_GGML_Q6_K: /* ql[128], qh[64], scales[16] int8, d; per 128-half h, l < 32, e = 128h + l */
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *v = c + 128 * h + l;
                b[64 * h + l] = (unsigned char)((v[0] & 15) | ((v[64] & 15) << 4));
                b[64 * h + 32 + l] = (unsigned char)((v[32] & 15) | ((v[96] & 15) << 4));
                b[128 + 32 * h + l] = (unsigned char)(((v[0] >> 4) & 3) | (((v[32] >> 4) & 3) << 2) | (((v[64] >> 4) & 3) << 4) |
                                                      (((v[96] >> 4) & 3) << 6));
            }
        for (int s = 0; s < 16; s++) b[192 + s] = (unsigned char)(p->sc[s] & 0xff);
        put16(b + 208, p->d);
        break;
    default: break;
    }
}

void ptq_ggml_unpack_block(uint32_t type, const void *src, ptq_ggml_block_params *p, uint8_t *codes) {
    const unsigned char *b = src;
    uint8_t tmp[256], *c = codes ? codes : tmp;
    memset(p, 0, sizeof *p);
    p->type = type;
    switch (type) {
    case PTQ_GGML_Q4_0: case PTQ_GGML_Q4_1: case PTQ_GGML_Q5_0: case PTQ_GGML_Q5_1: {
        int aff = type == PTQ_GGML_Q4_1 || type == PTQ_GGML_Q5_1, five = type == PTQ_GGML_Q5_0 || type == PTQ_GGML_Q5_1;
        p->d = get16(b);
        b += 2;
        if (aff) p->dmin = get16(b), b += 2;
        uint32_t qh = 0;
        if (five) {
            qh = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
            b += 4;
        }
        for (int j = 0; j < 16; j++) {
            c[j] = (uint8_t)((b[j] & 15) | (((qh >> j) & 1) << 4));
            c[j + 16] = (uint8_t)((b[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
        }
        break;
    }
    case PTQ_GGML_Q8_0:
        p->d = get16(b);
        for (int j = 0; j < 32; j++) c[j] = (uint8_t)((int)(int8_t)b[2 + j] + 128);
        break;
    case PTQ_GGML_Q2_K:
        for (int s = 0; s < 16; s++) p->sc[s] = b[s] & 15, p->mn[s] = b[s] >> 4;
        unpack_2bit(b + 16, c);
        p->d = get16(b + 80), p->dmin = get16(b + 82);
        break;
    case PTQ_GGML_Q3_K:
        unpack_2bit(b + 32, c);
        for (int e = 0; e < 256; e++) c[e] |= (uint8_t)(((b[e % 32] >> (e / 32)) & 1) << 2);
        unpack_q3k_scales(b + 96, p->sc);
        p->d = get16(b + 108);
        break;
    case PTQ_GGML_Q4_K: case PTQ_GGML_Q5_K:
        p->d = get16(b), p->dmin = get16(b + 2);
        unpack_k4_scales(b + 4, p->sc, p->mn);
        if (type == PTQ_GGML_Q4_K) {
            unpack_nib64(b + 16, c);
        } else {
            unpack_nib64(b + 48, c);
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++) {
                    c[64 * g + l] |= (uint8_t)(((b[16 + l] >> (2 * g)) & 1) << 4);
                    c[64 * g + 32 + l] |= (uint8_t)(((b[16 + l] >> (2 * g + 1)) & 1) << 4);
                }
        }
        break;
    case PTQ_GGML_Q6_K:
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                uint8_t *v = c + 128 * h + l;
                unsigned char lo0 = b[64 * h + l], lo1 = b[64 * h + 32 + l], hb = b[128 + 32 * h + l];
                v[0] = (uint8_t)((lo0 & 15) | ((hb & 3) << 4));
                v[32] = (uint8_t)((lo1 & 15) | (((hb >> 2) & 3) << 4));
                v[64] = (uint8_t)((lo0 >> 4) | (((hb >> 4) & 3) << 4));
                v[96] = (uint8_t)((lo1 >> 4) | (((hb >> 6) & 3) << 4));
            }
        for (int s = 0; s < 16; s++) p->sc[s] = (int8_t)b[192 + s];
        p->d = get16(b + 208);
        break;
    default: return;
    }
    ptq_ggml_params_derive(p);
}

/* ---------------------------------------------------------------- legacy reference quantizers */

/* Q4_0 / Q5_0: d = (the value of largest magnitude) / -2^(bits-1); codes truncate x/d + 2^(bits-1) + 0.5 */
static void ref_sym32(const float *x, int half, ptq_ggml_block_params *p, uint8_t *c) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
    float d = max / (float)-half, id = d != 0 ? 1.0f / d : 0.0f, off = (float)half + 0.5f;
    p->d = ptq_f32_to_f16(d);
    for (int j = 0; j < 32; j++) {
        int q = (int)(x[j] * id + off);
        c[j] = (uint8_t)(q > 2 * half - 1 ? 2 * half - 1 : q);
    }
}
/* Q4_1 / Q5_1: d = (max - min) / (2^bits - 1), m = min; codes truncate (x - min)/d + 0.5 */
static void ref_aff32(const float *x, int qmax, ptq_ggml_block_params *p, uint8_t *c) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    float d = (max - min) / (float)qmax, id = d != 0 ? 1.0f / d : 0.0f;
    p->d = ptq_f32_to_f16(d), p->dmin = ptq_f32_to_f16(min);
    for (int j = 0; j < 32; j++) {
        int q = (int)((x[j] - min) * id + 0.5f);
        c[j] = (uint8_t)(qmax == 15 ? (q > 15 ? 15 : q) : q & 31); /* Q5_1 keeps the low 5 bits, as ggml */
    }
}
/* Q8_0: d = max|x| / 127, codes round half away from zero */
static void ref_q8_0(const float *x, ptq_ggml_block_params *p, uint8_t *c) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
    float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
    p->d = ptq_f32_to_f16(d);
    for (int j = 0; j < 32; j++) c[j] = (uint8_t)((int)roundf(x[j] * id) + 128);
}

static void legacy_ref(uint32_t type, const float *x, ptq_ggml_block_params *p, uint8_t *c) {
    memset(p, 0, sizeof *p);
    p->type = type;
    switch (type) {
    case PTQ_GGML_Q4_0: ref_sym32(x, 8, p, c); break;
    case PTQ_GGML_Q5_0: ref_sym32(x, 16, p, c); break;
    case PTQ_GGML_Q4_1: ref_aff32(x, 15, p, c); break;
    case PTQ_GGML_Q5_1: ref_aff32(x, 31, p, c); break;
    default: ref_q8_0(x, p, c); break;
    }
    ptq_ggml_params_derive(p);
}

/* ---------------------------------------------------------------- choosing parameters */

void ptq_ggml_choose_params(uint32_t type, const float *x, const float *imp, ptq_ggml_block_params *p) {
    const ptq_ggml_qtype *t = ptq_ggml_qtype_get(type);
    uint8_t L[256];
    if (!t) {
        memset(p, 0, sizeof *p);
        return;
    }
    if (t->block == PTQ_GGML_QK_K) {
        ptq_ggml_kq_choose(type, x, imp, p, L);
        return;
    }
    legacy_ref(type, x, p, L);
    if (!imp || type == PTQ_GGML_Q8_0) return; /* Q8_0's grid is fine enough: ggml ignores importance too */
    /* importance-weighted: the weighted least-squares scale searches of the k-quants on the 32 values */
    if (t->affine) {
        uint8_t Laux[32];
        float the_min;
        float s = ptq_ggml_make_qkx2(32, t->qmax, x, imp, L, &the_min, Laux, -0.9f, 0.05f, 36, 0);
        p->d = ptq_f32_to_f16(s), p->dmin = ptq_f32_to_f16(-the_min);
    } else {
        int8_t Ls[32];
        p->d = ptq_f32_to_f16(ptq_ggml_make_qx(32, t->zero, x, Ls, 1, imp));
    }
    ptq_ggml_params_derive(p);
}

/* weighted squared error of values x[0..n) at block positions j0.. against p */
static double sub_error(const ptq_ggml_block_params *p, int j0, const float *x, const float *imp, int n) {
    double e = 0;
    for (int i = 0; i < n; i++) {
        float v;
        ptq_ggml_grid_code(p, j0 + i, x[i], &v);
        double d = (double)x[i] - v;
        e += (imp ? imp[i] : 1.0) * d * d;
    }
    return e;
}

void ptq_ggml_rechoose_sub(const float *x, const float *imp, int s, ptq_ggml_block_params *p) {
    const ptq_ggml_qtype *t = ptq_ggml_qtype_get(p->type);
    if (!t) return;
    ptq_ggml_block_params q = *p;
    if (t->block == PTQ_GGML_QK_K) ptq_ggml_kq_rechoose_sub(x, imp, s, &q);
    else ptq_ggml_choose_params(p->type, x, imp, &q);
    /* keep the new choice only where it is no worse on these values */
    if (sub_error(&q, s * p->sub, x, imp, p->sub) < sub_error(p, s * p->sub, x, imp, p->sub)) *p = q;
}

/* ---------------------------------------------------------------- rows */

static ptq_status check_rows(uint32_t type, int64_t nrows, int64_t n, int *block, int *bytes, ptq_error *err) {
    char buf[32];
    *block = block_of(type, bytes);
    if (!*block)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "ggml type %s is not supported; supported: F32, F16, BF16, %s",
                        ptq_ggml_type_name(type, buf, sizeof buf), ptq_ggml_quant_list());
    if (nrows < 0 || n <= 0 || n % *block)
        return ptq_fail(err, PTQ_ERR_ARG, "%s rows of %lld values: the row length must be a positive multiple of %d",
                        ptq_ggml_type_name(type, buf, sizeof buf), (long long)n, *block);
    return PTQ_OK;
}

/* The k-quants' blocks straight into floats (the same operations as ptq_ggml_grid_value, so the same values:
   step * q - offset, each in float, no fused multiply-add), without unpacking the codes first: these run for every
   GEMV of the types without their own kernel and for every tile of the prefill path (kernels/ggml_gemm.c). */
static void deq_k45(const unsigned char *b, float *y, int five) {
    const float d = h2f(get16(b)), dmin = h2f(get16(b + 2));
    int16_t sc[8], mn[8];
    unpack_k4_scales(b + 4, sc, mn);
    const unsigned char *qh = b + 16, *q = b + (five ? 48 : 16);
    for (int g = 0; g < 4; g++, q += 32, y += 64) {
        const float d1 = d * (float)sc[2 * g], m1 = dmin * (float)mn[2 * g];
        const float d2 = d * (float)sc[2 * g + 1], m2 = dmin * (float)mn[2 * g + 1];
        const int h1 = five ? 2 * g : 8, h2 = five ? 2 * g + 1 : 8; /* bit 8 of a byte: 0 */
        for (int l = 0; l < 32; l++) y[l] = d1 * (float)((q[l] & 15) | (((qh[l] >> h1) & 1) << 4)) - m1;
        for (int l = 0; l < 32; l++) y[32 + l] = d2 * (float)((q[l] >> 4) | (((qh[l] >> h2) & 1) << 4)) - m2;
    }
}

static void deq_q6k(const unsigned char *b, float *y) {
    const float d = h2f(get16(b + 208));
    for (int h = 0; h < 2; h++, y += 128) {
        const unsigned char *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const signed char *sc = (const signed char *)b + 192 + 8 * h;
        for (int k = 0; k < 2; k++) { /* l in 16k .. 16k + 15: sub-blocks 8h + k, + 2, + 4, + 6 */
            const float s0 = d * (float)sc[k], s1 = d * (float)sc[k + 2], s2 = d * (float)sc[k + 4], s3 = d * (float)sc[k + 6];
            for (int l = 16 * k; l < 16 * k + 16; l++) {
                y[l] = s0 * (float)(((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
                y[l + 32] = s1 * (float)(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
                y[l + 64] = s2 * (float)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                y[l + 96] = s3 * (float)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
    }
}

/* Q2_K (three = 0) and Q3_K (three = 1): 2-bit fields (byte 32h + l holds values 128h + l + 32i at bits 2i); Q3_K's
   third bit of value e in hmask byte e % 32, bit e / 32 */
static void deq_k23(const unsigned char *b, float *y, int three) {
    float scale[16], min[16];
    if (three) {
        int16_t sc[16];
        unpack_q3k_scales(b + 96, sc);
        const float d = h2f(get16(b + 108));
        for (int s = 0; s < 16; s++) scale[s] = d * (float)(sc[s] - 32), min[s] = 0;
    } else {
        const float d = h2f(get16(b + 80)), dmin = h2f(get16(b + 82));
        for (int s = 0; s < 16; s++) scale[s] = d * (float)(b[s] & 15), min[s] = dmin * (float)(b[s] >> 4);
    }
    const unsigned char *qs = b + (three ? 32 : 16), *hm = b;
    for (int e0 = 0; e0 < 256; e0 += 16) { /* sub-block e0 / 16 */
        const int h = e0 / 128, i = (e0 / 32) % 4, l0 = e0 % 32, s = e0 / 16;
        for (int l = l0; l < l0 + 16; l++) {
            const int q = (qs[32 * h + l] >> (2 * i)) & 3;
            y[e0 + l - l0] = three ? scale[s] * (float)(q + 4 * ((hm[l] >> (e0 / 32)) & 1) - 4) : scale[s] * (float)q - min[s];
        }
    }
}

int64_t ptq_ggml_first_nonfinite(uint32_t type, const void *src, int64_t nblocks) {
    int block, bytes, d = 0, m = -1; /* offsets of the fp16 fields */
    if (!ptq_ggml_qtype_get(type) || !(block = block_of(type, &bytes))) return -1;
    switch (type) {
    case PTQ_GGML_Q4_1: case PTQ_GGML_Q5_1: case PTQ_GGML_Q4_K: case PTQ_GGML_Q5_K: m = 2; break;
    case PTQ_GGML_Q2_K: d = 80, m = 82; break;
    case PTQ_GGML_Q3_K: d = 108; break;
    case PTQ_GGML_Q6_K: d = 208; break;
    default: break; /* Q4_0, Q5_0, Q8_0: d first */
    }
    const unsigned char *b = src;
    for (int64_t k = 0; k < nblocks; k++, b += bytes)
        if ((get16(b + d) & 0x7C00) == 0x7C00 || (m >= 0 && (get16(b + m) & 0x7C00) == 0x7C00)) return k;
    return -1;
}

ptq_status ptq_ggml_dequantize_rows(uint32_t type, const void *src, float *dst, int64_t nrows, int64_t n,
                                    ptq_error *err) {
    int block, bytes;
    PTQ_TRY(check_rows(type, nrows, n, &block, &bytes, err));
    const unsigned char *b = src;
    size_t total = (size_t)nrows * (size_t)n;
    if (block == 1) {
        for (size_t i = 0; i < total; i++) {
            const unsigned char *e = b + i * (size_t)bytes;
            if (type == PTQ_GGML_F32) memcpy(&dst[i], e, 4);
            else dst[i] = type == PTQ_GGML_F16 ? ptq_f16_to_f32(get16(e)) : ptq_bf16_to_f32(get16(e));
        }
        return PTQ_OK;
    }
    ptq_ggml_block_params p;
    uint8_t c[256];
    for (size_t k = 0; k < total / (size_t)block; k++, b += bytes, dst += block) {
        switch (type) {
        case PTQ_GGML_Q2_K: deq_k23(b, dst, 0); continue;
        case PTQ_GGML_Q3_K: deq_k23(b, dst, 1); continue;
        case PTQ_GGML_Q4_K: deq_k45(b, dst, 0); continue;
        case PTQ_GGML_Q5_K: deq_k45(b, dst, 1); continue;
        case PTQ_GGML_Q6_K: deq_q6k(b, dst); continue;
        default: break;
        }
        ptq_ggml_unpack_block(type, b, &p, c);
        for (int s = 0; s < p.n_sub; s++) {
            const float sc = p.scale[s], mn = p.min[s];
            const uint8_t *cs = c + s * p.sub;
            float *o = dst + s * p.sub;
            if (p.affine)
                for (int i = 0; i < p.sub; i++) o[i] = sc * (float)cs[i] - mn;
            else
                for (int i = 0; i < p.sub; i++) o[i] = sc * (float)((int)cs[i] - p.zero);
        }
    }
    return PTQ_OK;
}

ptq_status ptq_ggml_quantize_rows(uint32_t type, const float *src, void *dst, int64_t nrows, int64_t n,
                                  ptq_error *err) {
    int block, bytes;
    PTQ_TRY(check_rows(type, nrows, n, &block, &bytes, err));
    size_t total = (size_t)nrows * (size_t)n;
    for (size_t i = 0; i < total; i++)
        if (!isfinite(src[i]))
            return ptq_fail(err, PTQ_ERR_NUMERIC, "quantizing to ggml type: %s at row %lld, column %lld",
                            isnan(src[i]) ? "NaN" : "Inf", (long long)(i / (size_t)n), (long long)(i % (size_t)n));
    unsigned char *b = dst;
    if (block == 1) {
        for (size_t i = 0; i < total; i++, b += bytes) {
            if (type == PTQ_GGML_F32) memcpy(b, &src[i], 4);
            else put16(b, type == PTQ_GGML_F16 ? ptq_f32_to_f16(src[i]) : ptq_f32_to_bf16(src[i]));
        }
        return PTQ_OK;
    }
    /* blocks are independent: the k-quants' scale searches are slow enough to share out */
    long long nblocks = (long long)(total / (size_t)block);
#pragma omp parallel for schedule(static) if (nblocks >= 64 && block == PTQ_GGML_QK_K)
    for (long long k = 0; k < nblocks; k++) {
        ptq_ggml_block_params p;
        uint8_t c[256];
        const float *x = src + (size_t)k * (size_t)block;
        if (block == PTQ_GGML_QK) {
            legacy_ref(type, x, &p, c);
        } else {
            /* ggml's final pass: every value against the quantized scales, except in a sub-block whose scale
               is zero, where the search's codes stay */
            ptq_ggml_kq_choose(type, x, NULL, &p, c);
            for (int j = 0; j < block; j++)
                if (p.scale[j / p.sub] != 0) c[j] = (uint8_t)ptq_ggml_grid_code(&p, j, x[j], NULL);
        }
        ptq_ggml_pack_block(&p, c, b + (size_t)k * (size_t)bytes);
    }
    return PTQ_OK;
}
