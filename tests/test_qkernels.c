/* Packed low-bit weights and the quantized GEMM/GEMV kernels.
 *
 * - packing: pack_row writes exactly the layout of qweight.h (checked by an independent bit reader
 *   written from the spec), unpack_row inverts it, padding codes are zero, nothing past row_bytes
 *   is touched;
 * - dequant_row equals s * (q - z) placed at perm[j];
 * - ptq_qgemm_isa for every bits x group x shape x rows x perm x ISA the CPU has equals a double
 *   reference computed here from the codes, within 1e-4 of sum |w||x|; SIMD kernels equal the
 *   scalar kernel within 1e-5 of the sum of |terms|; the fused GEMV path, both tiled paths and the
 *   no-memory fallback all meet the reference bound (forced through ptq_qgemm_path_isa);
 * - ptq_qweight_validate rejects each kind of malformed weight, naming the tensor.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qweight.h"
#include "qlayer.h"
#include "testutil.h"

static uint64_t rng_state = 0x1234567887654321ULL;

static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static float urand(float lo, float hi) { return lo + (hi - lo) * (float)((double)(rnd() >> 11) / 9007199254740992.0); }

/* Code of column j straight from the layout described in qweight.h. */
static unsigned spec_code(int bits, const uint8_t *row, int j) {
    const uint8_t *ch = row + (size_t)(j / 32) * 4u * (size_t)bits;
    const int k = j % 32;
    switch (bits) {
    case 8: return ch[k];
    case 4: return k < 16 ? (ch[k] & 15u) : (unsigned)(ch[k - 16] >> 4);
    case 2: return (ch[k % 8] >> (2 * (k / 8))) & 3u;
    case 3: {
        unsigned lo = (ch[k % 8] >> (2 * (k / 8))) & 3u;
        uint32_t plane = (uint32_t)ch[8] | (uint32_t)ch[9] << 8 | (uint32_t)ch[10] << 16 | (uint32_t)ch[11] << 24;
        return lo | ((plane >> k) & 1u) << 2;
    }
    case 5:
    case 6:
    case 7: { /* low nibble as 4 bits; bits 4-5 as the 2-bit layout at byte 16; the last bit as a plane */
        unsigned v = k < 16 ? (ch[k] & 15u) : (unsigned)(ch[k - 16] >> 4);
        if (bits >= 6) v |= ((ch[16 + k % 8] >> (2 * (k / 8))) & 3u) << 4;
        if (bits != 6) {
            const uint8_t *pl = ch + (bits == 5 ? 16 : 24);
            uint32_t plane = (uint32_t)pl[0] | (uint32_t)pl[1] << 8 | (uint32_t)pl[2] << 16 | (uint32_t)pl[3] << 24;
            v |= ((plane >> k) & 1u) << (bits - 1);
        }
        return v;
    }
    }
    return 0xffffu;
}

static void test_packing(void) {
    const int bits_list[] = {2, 3, 4, 5, 6, 7, 8};
    const int ins[] = {1, 31, 32, 33, 172, 4096 + 17};
    for (int bi = 0; bi < 7; bi++)
        for (int ii = 0; ii < 6; ii++) {
            const int bits = bits_list[bi], in = ins[ii];
            const size_t rb = ptq_qweight_row_bytes(bits, in);
            CHECK(rb == (size_t)((in + 31) / 32) * 4u * (size_t)bits);
            uint8_t *q = malloc((size_t)in), *back = malloc((size_t)in + 64), *buf = malloc(rb + 16);
            for (int pattern = 0; pattern < 3; pattern++) {
                for (int j = 0; j < in; j++) {
                    unsigned v = (unsigned)rnd() & ((1u << bits) - 1u);
                    if (pattern == 1) v = (1u << bits) - 1u; /* all ones */
                    if (pattern == 2) v = (unsigned)j % (1u << bits);
                    q[j] = (uint8_t)v;
                }
                memset(buf, 0xA5, rb + 16);
                ptq_pack_row(bits, q, in, buf);
                int bad = 0;
                for (int j = 0; j < in; j++) bad += spec_code(bits, buf, j) != q[j];
                for (int j = in; j < (in + 31) / 32 * 32; j++) bad += spec_code(bits, buf, j) != 0;
                for (int i = 0; i < 16; i++) bad += buf[rb + i] != 0xA5;
                CHECK_MSG(bad == 0, "pack bits=%d in=%d pattern=%d: %d mismatches with the spec layout", bits, in,
                          pattern, bad);
                memset(back, 0x5A, (size_t)in + 64);
                ptq_unpack_row(bits, buf, in, back);
                CHECK_MSG(memcmp(back, q, (size_t)in) == 0, "unpack(pack) bits=%d in=%d", bits, in);
                for (int i = 0; i < 64; i++) bad += back[in + i] != 0x5A;
                CHECK_MSG(bad == 0, "unpack bits=%d in=%d wrote past in", bits, in);
            }
            free(q);
            free(back);
            free(buf);
        }
    CHECK(ptq_qweight_row_bytes(9, 32) == 0 && ptq_qweight_row_bytes(1, 32) == 0);
    CHECK(ptq_qweight_row_bytes(4, 0) == 0);
}

typedef tu_layer layer;

static int sym_pass; /* 1: the layers stored without zero points (a symmetric grid), as quantize --sym makes them */

static layer make_layer(int bits, int in, int out, int group, int with_perm) {
    layer L = tu_make_layer(&rng_state, bits, in, out, group, with_perm);
    if (sym_pass) tu_drop_zeros(&L);
    return L;
}

#define free_layer tu_free_layer

/* Weight of packed column j of row o, from the generated codes. */
static double ref_weight(const layer *L, int o, int j) {
    const ptq_qweight *w = &L->w;
    const int g = j / w->group;
    const size_t gi = (size_t)o * (size_t)w->n_groups + (size_t)g;
    return (double)ptq_f16_to_f32(w->scales[gi]) *
           ((double)L->q[(size_t)o * (size_t)w->in + (size_t)j] - (double)ptq_qweight_zeros_of(w, o)[g]);
}

static void test_dequant_row(void) {
    const int bits_list[] = {2, 3, 4, 5, 6, 7, 8};
    for (int bi = 0; bi < 7; bi++)
        for (int with_perm = 0; with_perm < 2; with_perm++) {
            const int in = 172, out = 5, group = 64;
            layer L = make_layer(bits_list[bi], in, out, group, with_perm);
            float *d = malloc(sizeof(float) * (size_t)in);
            int bad = 0;
            for (int o = 0; o < out; o++) {
                for (int j = 0; j < in; j++) d[j] = NAN;
                ptq_qweight_dequant_row(&L.w, o, d);
                for (int j = 0; j < in; j++) {
                    const int dst = with_perm ? L.w.perm[j] : j;
                    const size_t gi = (size_t)o * (size_t)L.w.n_groups + (size_t)(j / group);
                    const float want = ptq_f16_to_f32(L.w.scales[gi]) *
                                       (float)((int)L.q[(size_t)o * (size_t)in + (size_t)j] - (int)ptq_qweight_zeros_of(&L.w, o)[j / group]);
                    bad += !(d[dst] == want);
                }
            }
            CHECK_MSG(bad == 0, "dequant_row bits=%d perm=%d: %d wrong values", bits_list[bi], with_perm, bad);
            free(d);
            free_layer(&L);
        }
}

typedef struct {
    long runs, fails;
    double worst_ref, worst_simd;
} stats;

/* The double reference for one layer and input: ref = x W^T, mag = sum_j |w x| (the bound for
 * kernels vs reference), terms = sum_j |s| (q + z) |x| (what the kernels add up: SIMD vs scalar). */
typedef struct {
    double *ref, *mag, *terms;
} reference;

static reference make_reference(const layer *L, const float *x, int rows) {
    const ptq_qweight *w = &L->w;
    const size_t n = (size_t)rows * (size_t)w->out;
    reference R = {malloc(n * sizeof(double)), malloc(n * sizeof(double)), malloc(n * sizeof(double))};
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < w->out; o++) {
            double ref = 0.0, mag = 0.0, terms = 0.0;
            for (int j = 0; j < w->in; j++) {
                const size_t gi = (size_t)o * (size_t)w->n_groups + (size_t)(j / w->group);
                const double xv = x[(size_t)r * (size_t)w->in + (size_t)(w->perm ? w->perm[j] : j)];
                const double wv = ref_weight(L, o, j);
                ref += wv * xv;
                mag += fabs(wv * xv);
                terms += fabs((double)ptq_f16_to_f32(w->scales[gi])) *
                         ((double)L->q[(size_t)o * (size_t)w->in + (size_t)j] + (double)ptq_qweight_zeros_of(w, o)[j / w->group]) * fabs(xv);
            }
            const size_t i = (size_t)r * (size_t)w->out + (size_t)o;
            R.ref[i] = ref;
            R.mag[i] = mag;
            R.terms[i] = terms;
        }
    return R;
}

static void free_reference(reference *R) {
    free(R->ref);
    free(R->mag);
    free(R->terms);
}

/* y against the double reference (tol 1e-4 of sum|w||x|). */
static int check_ref(const char *what, const layer *L, const reference *R, int rows, const float *y, stats *st) {
    const ptq_qweight *w = &L->w;
    int bad = 0;
    for (size_t i = 0; i < (size_t)rows * (size_t)w->out && bad < 3; i++) {
        const double rel = fabs((double)y[i] - R->ref[i]) / (R->mag[i] > 0 ? R->mag[i] : 1e-30);
        if (rel > st->worst_ref) st->worst_ref = rel;
        if (!(rel <= 1e-4)) {
            fprintf(stderr, "%s bits=%d in=%d out=%d group=%d rows=%d perm=%d: y[%zu]=%.9g ref=%.9g (rel %.3g)\n", what,
                    w->bits, w->in, w->out, w->group, rows, w->perm != NULL, i, y[i], R->ref[i], rel);
            bad++;
        }
    }
    return bad;
}

/* Two kernel outputs against each other: tol 1e-5 of the sum of |terms| they add. */
static int check_pair(const char *what, const layer *L, const reference *R, int rows, const float *a, const float *b,
                      stats *st) {
    const ptq_qweight *w = &L->w;
    int bad = 0;
    for (size_t i = 0; i < (size_t)rows * (size_t)w->out && bad < 3; i++) {
        const double rel = fabs((double)a[i] - (double)b[i]) / (R->terms[i] > 0 ? R->terms[i] : 1e-30);
        if (rel > st->worst_simd) st->worst_simd = rel;
        if (!(rel <= 1e-5)) {
            fprintf(stderr, "%s bits=%d in=%d out=%d group=%d rows=%d perm=%d: y[%zu] %.9g vs %.9g (rel %.3g)\n", what,
                    w->bits, w->in, w->out, w->group, rows, w->perm != NULL, i, a[i], b[i], rel);
            bad++;
        }
    }
    return bad;
}

static void test_qgemm(void) {
    const ptq_isa best = ptq_isa_best();
    int have[3] = {1, best >= PTQ_ISA_AVX2, best >= PTQ_ISA_AVX512};
    printf("ISAs run:");
    for (int i = 0; i < 3; i++)
        if (have[i]) printf(" %s", ptq_isa_name((ptq_isa)i));
    printf("; skipped (CPU lacks):");
    for (int i = 0; i < 3; i++)
        if (!have[i]) printf(" %s", ptq_isa_name((ptq_isa)i));
    printf("\n");

    const int bits_list[] = {2, 3, 4, 5, 6, 7, 8};
    const int shapes[][2] = {{32, 1}, {172, 64}, {100, 3}, {4096, 17}, {1000, 33}};
    const int rows_list[] = {1, 3, 8, 17};
    stats st = {0, 0, 0.0, 0.0};
    for (int bi = 0; bi < 7; bi++)
        for (int si = 0; si < 5; si++)
            for (int gi = 0; gi < 4; gi++) {
                const int in = shapes[si][0], out = shapes[si][1];
                const int groups[] = {32, 64, 128, in};
                const int group = groups[gi];
                if (si == 2 && group != in) continue; /* (100, 3): per-channel only */
                for (int with_perm = 0; with_perm < 2; with_perm++) {
                    layer L = make_layer(bits_list[bi], in, out, group, with_perm);
                    for (int ri = 0; ri < 4; ri++) {
                        const int rows = rows_list[ri];
                        float *x = malloc(sizeof(float) * (size_t)rows * (size_t)in);
                        for (size_t i = 0; i < (size_t)rows * (size_t)in; i++) x[i] = urand(-1.0f, 1.0f);
                        if (rows == 3) x[5 % in] = 40.0f; /* an outlier */
                        const size_t ny = (size_t)rows * (size_t)out;
                        reference R = make_reference(&L, x, rows);
                        float *ys[3], *yp = malloc(sizeof(float) * ny), *ys0_gemv = malloc(sizeof(float) * ny);
                        for (int isa = 0; isa < 3; isa++) {
                            ys[isa] = NULL;
                            if (!have[isa]) continue;
                            ys[isa] = malloc(sizeof(float) * ny);
                            for (size_t i = 0; i < ny; i++) ys[isa][i] = NAN;
                            ptq_qgemm_isa((ptq_isa)isa, &L.w, x, rows, ys[isa]);
                            st.runs++;
                            st.fails += check_ref(ptq_isa_name((ptq_isa)isa), &L, &R, rows, ys[isa], &st) != 0;
                            if (isa > 0)
                                st.fails += check_pair("simd vs scalar", &L, &R, rows, ys[isa], ys[0], &st) != 0;
                            /* every path explicitly, whichever ptq_qgemm_isa picked for this row count */
                            {
                                const ptq_qgemm_path other[4] = {PTQ_QGEMM_GEMV, PTQ_QGEMM_TILES_PARALLEL,
                                                                 PTQ_QGEMM_TILES_SERIAL, PTQ_QGEMM_DIRECT};
                                for (int p = 0; p < (isa == 0 ? 4 : 3); p++) {
                                    for (size_t i = 0; i < ny; i++) yp[i] = NAN;
                                    ptq_qgemm_path_isa(other[p], (ptq_isa)isa, &L.w, x, rows, yp);
                                    st.runs++;
                                    st.fails += check_ref("path", &L, &R, rows, yp, &st) != 0;
                                    if (p == 0 && isa > 0) /* fused GEMV: SIMD vs scalar */
                                        st.fails +=
                                            check_pair("gemv simd vs scalar", &L, &R, rows, yp, ys0_gemv, &st) != 0;
                                    if (p == 0 && isa == 0) memcpy(ys0_gemv, yp, sizeof(float) * ny);
                                }
                            }
                        }
                        for (int isa = 0; isa < 3; isa++) free(ys[isa]);
                        free_reference(&R);
                        free(yp);
                        free(ys0_gemv);
                        free(x);
                    }
                    free_layer(&L);
                }
            }
    printf("qgemm: %ld runs, %ld failed; worst error vs double reference %.3g of sum|w||x|, worst SIMD vs scalar "
           "%.3g of sum|terms|\n",
           st.runs, st.fails, st.worst_ref, st.worst_simd);
    CHECK(st.fails == 0);

    /* an ISA the CPU lacks (or a bogus value) falls back to one it has; rows = 0 writes nothing */
    layer L = make_layer(4, 64, 8, 32, 0);
    float x[64], y[8], y0[8];
    for (int j = 0; j < 64; j++) x[j] = urand(-1.0f, 1.0f);
    ptq_qgemm_isa(PTQ_ISA_SCALAR, &L.w, x, 1, y0);
    ptq_qgemm_isa((ptq_isa)7, &L.w, x, 1, y);
    stats s2 = {0, 0, 0.0, 0.0};
    reference R = make_reference(&L, x, 1);
    CHECK(check_pair("fallback", &L, &R, 1, y, y0, &s2) == 0);
    ptq_qgemm(&L.w, x, 1, y);
    CHECK(check_pair("ptq_qgemm", &L, &R, 1, y, y0, &s2) == 0);
    CHECK(check_ref("ptq_qgemm", &L, &R, 1, y, &s2) == 0);
    free_reference(&R);
    y[0] = 123.0f;
    ptq_qgemm(&L.w, x, 0, y);
    CHECK(y[0] == 123.0f);
    free_layer(&L);
    CHECK(strcmp(ptq_isa_name(PTQ_ISA_SCALAR), "scalar") == 0);
    CHECK(strcmp(ptq_isa_name(PTQ_ISA_AVX512), "avx512") == 0);
}

static void test_validate(void) {
    layer L = make_layer(3, 100, 4, 100, 1);
    ptq_error err;
    memset(&err, 0, sizeof err);
    CHECK(ptq_qweight_validate(&L.w, "blk.0.wq", &err) == PTQ_OK);
    ptq_qweight w = L.w;
    w.group = 48;
    CHECK(ptq_qweight_validate(&w, "blk.0.wq", &err) == PTQ_ERR_UNSUPPORTED && strstr(err.msg, "blk.0.wq"));
    w = L.w;
    w.n_groups = 2;
    CHECK(ptq_qweight_validate(&w, "blk.0.wq", &err) == PTQ_ERR_FORMAT);
    w = L.w;
    w.row_bytes += 1;
    CHECK(ptq_qweight_validate(&w, "blk.0.wq", &err) == PTQ_ERR_FORMAT);
    w = L.w;
    w.bits = 9;
    CHECK(ptq_qweight_validate(&w, "blk.0.wq", &err) == PTQ_ERR_UNSUPPORTED);
    uint8_t z = L.w.zeros[2];
    L.w.zeros[2] = 8; /* 3 bits: zero points 0..7 */
    CHECK(ptq_qweight_validate(&L.w, "blk.0.wq", &err) == PTQ_ERR_FORMAT && strstr(err.msg, "zero point"));
    L.w.zeros[2] = z;
    uint16_t sc = L.w.scales[1];
    L.w.scales[1] = 0x7e00; /* NaN */
    CHECK(ptq_qweight_validate(&L.w, "blk.0.wq", &err) == PTQ_ERR_NUMERIC);
    L.w.scales[1] = sc;
    int32_t p0 = L.w.perm[0];
    L.w.perm[0] = L.w.perm[1]; /* a duplicate */
    CHECK(ptq_qweight_validate(&L.w, "blk.0.wq", &err) == PTQ_ERR_FORMAT && strstr(err.msg, "perm"));
    L.w.perm[0] = 100; /* out of range */
    CHECK(ptq_qweight_validate(&L.w, "blk.0.wq", &err) == PTQ_ERR_FORMAT);
    L.w.perm[0] = p0;
    CHECK(ptq_qweight_validate(&L.w, "blk.0.wq", &err) == PTQ_OK);
    free_layer(&L);
}

int main(int argc, char **argv) {
    /* Idle OpenMP workers spin for milliseconds after each parallel region; on a shared machine with
     * fewer cores than runnable threads that made this test ~15x slower. Results do not depend on it. */
    (void)argc;
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0) execv("/proc/self/exe", argv);
    test_validate();
    test_packing();
    for (sym_pass = 0; sym_pass < 2; sym_pass++) {
        test_dequant_row();
        test_qgemm();
    }
    return tu_done("test_qkernels");
}
