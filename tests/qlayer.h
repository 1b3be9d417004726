/* A random packed low-bit layer for the kernel tests (test_qkernels, test_qgemv_a8, test_qgemm_a8): random codes,
 * fp16 scales in [0.002, 0.05) with one in eight negative, random zero points (or none: tu_drop_zeros), optionally
 * a random act-order
 * permutation; the codes are also kept unpacked, [out][in] in packed column order, for the references. */
#ifndef PTQ_TESTS_QLAYER_H
#define PTQ_TESTS_QLAYER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "kernels/qweight.h"
#include "testutil.h"

typedef struct {
    ptq_qweight w;
    uint8_t *q; /* [out][in] codes in packed column order */
} tu_layer;

static inline uint64_t tu_next(uint64_t *rng) {
    *rng = tu_splitmix64(*rng);
    return *rng;
}

static inline float tu_urand(uint64_t *rng, float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(tu_next(rng) >> 11) / 9007199254740992.0);
}

static inline tu_layer tu_make_layer(uint64_t *rng, int bits, int in, int out, int group, int with_perm) {
    tu_layer L;
    memset(&L, 0, sizeof L);
    ptq_qweight *w = &L.w;
    w->bits = w->grid_bits = bits;
    w->in = in;
    w->out = out;
    w->group = group;
    w->n_groups = (in + group - 1) / group;
    w->row_bytes = ptq_qweight_row_bytes(bits, in);
    w->codes = malloc((size_t)out * w->row_bytes);
    w->scales = malloc((size_t)out * (size_t)w->n_groups * sizeof(uint16_t));
    w->zeros = malloc((size_t)out * (size_t)w->n_groups);
    L.q = malloc((size_t)out * (size_t)in);
    const unsigned qmax = (1u << bits) - 1u;
    for (size_t i = 0; i < (size_t)out * (size_t)in; i++) L.q[i] = (uint8_t)(tu_next(rng) & qmax);
    for (size_t i = 0; i < (size_t)out * (size_t)w->n_groups; i++) {
        const float s = tu_urand(rng, 0.002f, 0.05f);
        w->scales[i] = ptq_f32_to_f16((tu_next(rng) & 7) == 0 ? -s : s);
        w->zeros[i] = (uint8_t)(tu_next(rng) % (qmax + 1));
    }
    for (int o = 0; o < out; o++)
        ptq_pack_row(bits, L.q + (size_t)o * (size_t)in, in, w->codes + (size_t)o * w->row_bytes);
    if (with_perm) {
        w->perm = malloc((size_t)in * sizeof(int32_t));
        for (int j = 0; j < in; j++) w->perm[j] = j;
        for (int j = in - 1; j > 0; j--) { /* Fisher-Yates */
            const int k = (int)(tu_next(rng) % (uint64_t)(j + 1));
            const int32_t t = w->perm[j];
            w->perm[j] = w->perm[k];
            w->perm[k] = t;
        }
    }
    return L;
}

/* The same codes and scales on a symmetric grid: every zero point 2^(bits-1), none stored (qweight.h). */
static inline void tu_drop_zeros(tu_layer *L) {
    ptq_qweight *w = &L->w;
    free(w->zeros);
    w->zeros = NULL;
    w->zero_row = malloc((size_t)w->n_groups);
    memset(w->zero_row, 1 << (w->grid_bits - 1), (size_t)w->n_groups);
}

static inline void tu_free_layer(tu_layer *L) {
    free(L->w.codes);
    free(L->w.scales);
    free(L->w.zeros);
    free(L->w.zero_row);
    free(L->w.perm);
    free(L->q);
}

#endif
