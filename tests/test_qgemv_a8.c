/* The int8-activation GEMV (src/kernels/qgemv_a8.h), on odd shapes (in not a multiple of 32 / 128 /
 * 256 / 512, out not a multiple of the 16-row blocks, 1..5 input rows), every bit width, group 32, 64,
 * 96, 128 and per channel, with and without act-order:
 * - ptq_a8_quantize meets its definition: d = max|x| / 127 per 32-column chunk of the permuted row,
 *   |code| <= 127, |x - d code| <= d / 2, qsum = sum of codes, zero padding; the SIMD order places
 *   column j of chunk c where qgemv_a8.h says (re-derived here from that text);
 * - the scalar kernel equals a double reference computed here from the packed codes (spec reader)
 *   and the activation codes, within 1e-5 of the sum of |terms| (float rounding only: the integer
 *   dot products are exact);
 * - the AVX-512 VNNI, AVX2 (vpmaddubsw) and AVX-VNNI kernels equal the scalar kernel within 2e-5 of
 *   the sum of |terms| (different summation order of the same per-chunk terms), each where the CPU
 *   has it;
 * - exactly (memcmp) when every product is exact: power-of-two weight scales and activation scales
 *   and in <= 512, so every partial sum is an integer below 2^24 times one power of two and float
 *   addition is exact in any order: this pins the integer dot products (incl. AVX2's 8-bit sign
 *   trick and the 3-bit plane shuffles) bit for bit;
 * - the whole call (ptq_qgemm_a8_isa, stack and heap scratch) is within the int8-activation error
 *   bound of the exact float product: |y - W x| <= sum_c |s| d_c / 2 sum_j |q - z| + 1e-5 sum |w x|;
 * - NaN and infinite activations quantize the same way in every quantizer (0 codes, Inf scale);
 * - several weights in one call (ptq_qgemm_a8_multi, a decode step's q, k and v) equal one call each.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "kernels/cpu.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qgemv_a8.h"
#include "kernels/qweight.h"
#include "qlayer.h"
#include "testutil.h"

static uint64_t rng_state = 0x5eed5eed12345678ULL;

static uint64_t rnd(void) { return tu_next(&rng_state); }

static float urand(float lo, float hi) { return tu_urand(&rng_state, lo, hi); }

typedef tu_layer layer;

static int sym_pass; /* 1: the layers stored without zero points (a symmetric grid), as quantize --sym makes them */

static layer make_layer(int bits, int in, int out, int group, int with_perm) {
    layer L = tu_make_layer(&rng_state, bits, in, out, group, with_perm);
    if (sym_pass) tu_drop_zeros(&L);
    return L;
}

#define free_layer tu_free_layer

/* Column j of chunk c in the SIMD order for `bits`, from the table in qgemv_a8.h. */
static size_t spec_pos(int bits, int c, int j) {
    if (bits >= 4 && bits <= 7) return (size_t)(c / 4) * 128 + (j < 16 ? (size_t)(16 * (c % 4) + j) : (size_t)(64 + 16 * (c % 4) + j - 16));
    if (bits == 2 || bits == 3) return (size_t)(c / 8) * 256 + (size_t)(64 * (j / 8) + 8 * (c % 8) + j % 8);
    return (size_t)(32 * c + j);
}

static void *scratch_for(int in, int rows) { return aligned_alloc(64, ptq_a8_scratch_bytes(in, rows)); }

/* The SIMD kernels this CPU runs, with the ISA whose activation order they read. */
typedef struct {
    const char *name;
    ptq_isa isa;
    void (*fn)(const ptq_qweight *, const ptq_a8 *, float *, int, int);
} simd_kernel;

/* The AVX-512 kernel without its GFNI unpacking of 2-bit codes (ptq_qgemv_a8_avx512 uses it where the CPU has
 * GFNI), so that both are checked on such a CPU. */
static void avx512_vnni(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1) {
    ptq_qgemv_a8_avx512_vnni_tiled(w, a, y, o0, o1, 0);
}

static int simd_kernels(simd_kernel *k) {
    int n = 0;
    if (ptq_a8_supported(PTQ_ISA_AVX512)) k[n++] = (simd_kernel){"avx512", PTQ_ISA_AVX512, ptq_qgemv_a8_avx512};
    if (ptq_a8_gfni_supported()) k[n++] = (simd_kernel){"avx512-vnni", PTQ_ISA_AVX512, avx512_vnni};
    if (ptq_a8_supported(PTQ_ISA_AVX2)) {
        k[n++] = (simd_kernel){"avx2", PTQ_ISA_AVX2, ptq_qgemv_a8_avx2};
        if (ptq_cpu_has(PTQ_CPU_AVXVNNI)) k[n++] = (simd_kernel){"avxvnni", PTQ_ISA_AVX2, ptq_qgemv_a8_avxvnni};
    }
    return n;
}

/* Checks the natural-order activations against their definition; returns 1 if all hold. */
static int check_quant(const layer *L, const float *x, int rows, const ptq_a8 *a) {
    const ptq_qweight *w = &L->w;
    const int nch = (w->in + 31) / 32;
    const size_t nc = (size_t)a->nsuper * PTQ_A8_SUPER;
    int ok = a->nchunks == nch && a->nsuper == (nch + 15) / 16 && a->ld == nc * 32;
    for (int r = 0; r < rows && ok; r++)
        for (size_t c = 0; c < nc && ok; c++) {
            const float d = a->d[(size_t)r * nc + c];
            float amax = 0.0f;
            int32_t s = 0;
            for (int k = 0; k < 32; k++) {
                const size_t j = c * 32 + (size_t)k;
                const float xv = j < (size_t)w->in ? x[(size_t)r * w->in + (size_t)(w->perm ? w->perm[j] : (int)j)] : 0.0f;
                const int8_t q = a->q[(size_t)r * a->ld + j];
                amax = fmaxf(amax, fabsf(xv));
                s += q;
                ok &= q >= -127; /* int8: <= 127 by type */
                /* x * (1 / d) in float, rounded: within a few ulps of |x / d| <= 127 of d / 2 (a value just past a
                   half, x / d = 18.5000003, rounds down to 18) */
                ok &= fabs((double)xv - (double)d * q) <= (0.5 + 127 * 4 * (double)FLT_EPSILON) * d;
            }
            ok &= d == amax / 127.0f && s == a->qsum[(size_t)r * nc + c];
        }
    return ok;
}

/* y_ref[r][o] in double from the codes, the activation codes (natural order) and scales; sumabs[r][o]
 * the sum of |terms|. */
static void reference_a8(const layer *L, const ptq_a8 *a, double *yref, double *sumabs) {
    const ptq_qweight *w = &L->w;
    const int nch = a->nchunks;
    const size_t nc = (size_t)a->nsuper * PTQ_A8_SUPER;
    for (int r = 0; r < a->rows; r++)
        for (int o = 0; o < w->out; o++) {
            double y = 0.0, sa = 0.0;
            for (int c = 0; c < nch; c++) {
                const int g = (c * 32) / w->group;
                const size_t gi = (size_t)o * (size_t)w->n_groups + (size_t)g;
                int64_t dot = 0, zq = (int64_t)ptq_qweight_zeros_of(w, o)[g] * a->qsum[(size_t)r * nc + (size_t)c];
                for (int k = 0; k < 32 && c * 32 + k < w->in; k++)
                    dot += (int64_t)L->q[(size_t)o * w->in + (size_t)(c * 32 + k)] * a->q[(size_t)r * a->ld + (size_t)(c * 32 + k)];
                const double sc = (double)ptq_f16_to_f32(w->scales[gi]) * a->d[(size_t)r * nc + (size_t)c];
                y += sc * (double)(dot - zq);
                sa += fabs(sc) * (fabs((double)dot) + fabs((double)zq));
            }
            yref[(size_t)r * w->out + (size_t)o] = y;
            sumabs[(size_t)r * w->out + (size_t)o] = sa;
        }
}

static int within(const float *y, const double *ref, const double *sumabs, size_t n, double rel, double *worst) {
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)y[i] - ref[i]), tol = rel * sumabs[i] + 1e-30;
        if (!(e <= tol)) ok = 0;
        if (sumabs[i] > 0 && e / sumabs[i] > *worst) *worst = e / sumabs[i];
    }
    return ok;
}

/* The float product W x in double, the int8-activation error bound and the sum of |w x|. */
static void reference_float(const layer *L, const float *x, int rows, const ptq_a8 *a, double *yf, double *bound) {
    const ptq_qweight *w = &L->w;
    const size_t nc = (size_t)a->nsuper * PTQ_A8_SUPER;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < w->out; o++) {
            double y = 0.0, sa = 0.0, b = 0.0;
            for (int j = 0; j < w->in; j++) {
                const size_t gi = (size_t)o * (size_t)w->n_groups + (size_t)(j / w->group);
                const double s = ptq_f16_to_f32(w->scales[gi]);
                const double qz = (double)L->q[(size_t)o * w->in + (size_t)j] - ptq_qweight_zeros_of(w, o)[j / w->group];
                const double xv = x[(size_t)r * w->in + (size_t)(w->perm ? w->perm[j] : j)];
                y += s * qz * xv;
                sa += fabs(s * qz * xv);
                b += fabs(s * qz) * a->d[(size_t)r * nc + (size_t)(j / 32)] * 0.5;
            }
            yf[(size_t)r * w->out + (size_t)o] = y;
            bound[(size_t)r * w->out + (size_t)o] = b + 1e-5 * sa;
        }
}

static void test_shapes(void) {
    const int bits_list[] = {2, 3, 4, 5, 6, 7, 8};
    const int ins[] = {32, 33, 100, 160, 544 + 7, 1000};
    const int outs[] = {1, 17, 35};
    const int rows_list[] = {1, 2, 3, 5};
    simd_kernel ks[4];
    const int nk = simd_kernels(ks);
    if (nk == 0) fprintf(stderr, "test_qgemv_a8: no AVX2 here; scalar kernel only\n");
    double worst_scalar = 0, worst_simd = 0;
    int cases = 0;
    struct {
        int bits, in, group, out, rows, perm;
    } cs[7 * 6 * 5 + 7 * 8 * 2];
    int ncs = 0;
    for (int bi = 0; bi < 7; bi++)
        for (int ii = 0; ii < 6; ii++)
            for (int gi = 0; gi < 5; gi++) {
                const int in = ins[ii];
                const int groups[5] = {32, 128, in, 64, 96}; /* 96: groups straddle the 16-chunk superblocks */
                if (groups[gi] > in && groups[gi] != in) continue;
                cs[ncs].bits = bits_list[bi], cs[ncs].in = in, cs[ncs].group = groups[gi];
                cs[ncs].out = outs[(ii + gi) % 3], cs[ncs].rows = rows_list[(bi + ii + gi) % 4];
                cs[ncs++].perm = (ii + bi) % 2;
            }
    /* wide decode rows, read in every tile order below (7 rows: pairs leave one row alone); a partial chunk and a
       partial superblock end each row; groups 32-256, per channel and multiples of 512 take the kernels'
       whole-superblock loops */
    for (int bi = 0; bi < 7; bi++)
        for (int gi = 0; gi < 8; gi++)
            for (int perm = 0; perm < 2; perm++) {
                const int in = 12288 + 9 * 32 + 5, groups[8] = {32, 96, in, 64, 128, 256, 512, 1536};
                cs[ncs].bits = bits_list[bi], cs[ncs].in = in, cs[ncs].group = groups[gi];
                cs[ncs].out = 7, cs[ncs].rows = 1, cs[ncs++].perm = perm;
            }
    for (int ci = 0; ci < ncs; ci++) {
        const int bits = cs[ci].bits, in = cs[ci].in, group = cs[ci].group, out = cs[ci].out;
        const int rows = cs[ci].rows, perm = cs[ci].perm;
        layer L = make_layer(bits, in, out, group, perm);
        float *x = malloc((size_t)rows * in * sizeof(float));
        for (int i = 0; i < rows * in; i++) x[i] = urand(-1.0f, 1.0f) * ((rnd() & 15) == 0 ? 8.0f : 1.0f);
        if (in >= 64) x[5] = 0.0f; /* exact zeros and an all-zero chunk */
        if (rows > 1 && in >= 64)
            for (int j = 0; j < 32; j++) x[(size_t)in + (size_t)j] = 0.0f;
        void *buf = scratch_for(in, rows), *buf2 = scratch_for(in, rows);
        ptq_a8 a, a2;
        ptq_a8_quantize(PTQ_ISA_SCALAR, &L.w, x, rows, buf, &a);
        CHECK_MSG(check_quant(&L, x, rows, &a), "quantize bits %d in %d rows %d perm %d", bits, in, rows, perm);
        const size_t n = (size_t)rows * (size_t)out;
        double *yref = malloc(n * sizeof(double)), *sa = malloc(n * sizeof(double));
        double *yf = malloc(n * sizeof(double)), *bound = malloc(n * sizeof(double));
        float *ys = malloc(n * sizeof(float)), *yv = malloc(n * sizeof(float)), *yd = malloc(n * sizeof(float));
        reference_a8(&L, &a, yref, sa);
        ptq_qgemv_a8_scalar(&L.w, &a, ys, 0, out);
        CHECK_MSG(within(ys, yref, sa, n, 1e-5, &worst_scalar), "scalar bits %d in %d out %d group %d rows %d",
                  bits, in, out, group, rows);
        reference_float(&L, x, rows, &a, yf, bound);
        ptq_qgemm_a8_isa(PTQ_ISA_SCALAR, &L.w, x, rows, yd);
        int okb = 1;
        for (size_t i = 0; i < n; i++) okb &= fabs((double)yd[i] - yf[i]) <= bound[i];
        CHECK_MSG(okb, "scalar call vs float bound bits %d in %d", bits, in);
        for (int ki = 0; ki < nk; ki++) {
            ptq_a8_quantize(ks[ki].isa, &L.w, x, rows, buf2, &a2);
            int same = 1;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < a.nsuper * 16; c++)
                    for (int j = 0; j < 32; j++)
                        same &= a2.q[(size_t)r * a2.ld + spec_pos(bits, c, j)] ==
                                a.q[(size_t)r * a.ld + (size_t)(32 * c + j)];
            same &= memcmp(a.d, a2.d, (size_t)rows * a.nsuper * 16 * sizeof(float)) == 0;
            same &= memcmp(a.qsum, a2.qsum, (size_t)rows * a.nsuper * 16 * sizeof(int32_t)) == 0;
            CHECK_MSG(same, "%s activation order bits %d in %d", ks[ki].name, bits, in);
            for (size_t i = 0; i < n; i++) yv[i] = NAN;
            ks[ki].fn(&L.w, &a2, yv, 0, out);
            double *ysd = malloc(n * sizeof(double));
            for (size_t i = 0; i < n; i++) ysd[i] = ys[i];
            CHECK_MSG(within(yv, ysd, sa, n, 2e-5, &worst_simd), "%s bits %d in %d out %d group %d rows %d",
                      ks[ki].name, bits, in, out, group, rows);
            free(ysd);
            ptq_qgemm_a8_isa(ks[ki].isa, &L.w, x, rows, yd);
            okb = 1;
            for (size_t i = 0; i < n; i++) okb &= fabs((double)yd[i] - yf[i]) <= bound[i];
            CHECK_MSG(okb, "%s call vs float bound bits %d in %d", ks[ki].name, bits, in);
        }
        if (rows == 1 && ptq_a8_supported(PTQ_ISA_AVX512)) { /* decode tiles: the same outputs bit for bit */
            float *y1 = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
            ptq_a8_quantize(PTQ_ISA_AVX512, &L.w, x, rows, buf2, &a2);
            ptq_qgemv_a8_avx512_vnni_tiled(&L.w, &a2, y1, 0, out, 1);
            /* each tile of both kernels (with and without GFNI; the second only where the CPU has it) */
            const int kinds = bits == 2 && ptq_a8_gfni_supported() ? 2 : 1;
            for (int kind = 0; kind < kinds; kind++)
                for (int tile = kind ? 1 : 2; tile <= 3; tile++) { /* whole, and in two calls split at an odd row */
                    void (*fn)(const ptq_qweight *, const ptq_a8 *, float *, int, int, int) =
                        kind ? ptq_qgemv_a8_avx512_gfni_tiled : ptq_qgemv_a8_avx512_vnni_tiled;
                    for (size_t i = 0; i < n; i++) y2[i] = NAN;
                    fn(&L.w, &a2, y2, 0, out, tile);
                    CHECK_MSG(memcmp(y1, y2, n * sizeof(float)) == 0,
                              "tile %d (gfni %d) differs from 1 row: bits %d in %d out %d", tile, kind, bits, in, out);
                    const int k = out / 2 | 1;
                    for (size_t i = 0; i < n; i++) y2[i] = NAN;
                    fn(&L.w, &a2, y2, 0, k < out ? k : out, tile);
                    int untouched = 1; /* a call writes its own rows only */
                    for (int o = k; o < out; o++) untouched &= isnan(y2[o]);
                    if (k < out) fn(&L.w, &a2, y2, k, out, tile);
                    CHECK_MSG(untouched && memcmp(y1, y2, n * sizeof(float)) == 0,
                              "tile %d (gfni %d) in two calls differs: bits %d in %d out %d", tile, kind, bits, in, out);
                }
            free(y1), free(y2);
        }
        cases++;
        free(yref), free(sa), free(yf), free(bound), free(ys), free(yv), free(yd);
        free(buf), free(buf2), free(x);
        free_layer(&L);
    }
    fprintf(stderr, "test_qgemv_a8: %d cases x %d SIMD kernels, worst |scalar - ref| / sum|terms| %.2e, |simd - scalar| %.2e\n",
            cases, nk, worst_scalar, worst_simd);
}

/* Power-of-two scales, in <= 512: every SIMD kernel equals the scalar one bit for bit. */
static void test_exact(void) {
    simd_kernel ks[4];
    const int nk = simd_kernels(ks);
    const int bits_list[] = {2, 3, 4, 5, 6, 7, 8}, ins[] = {100, 512, 480 + 7}, groups[] = {32, 64, 0};
    int cases = 0;
    for (int bi = 0; bi < 7; bi++)
        for (int ii = 0; ii < 3; ii++)
            for (int gi = 0; gi < 3; gi++) {
                const int bits = bits_list[bi], in = ins[ii], group = groups[gi] ? groups[gi] : in;
                const int out = 13 + 4 * gi, rows = 1 + (bi + ii) % 3;
                layer L = make_layer(bits, in, out, group, (bi + gi) % 2);
                for (size_t i = 0; i < (size_t)out * (size_t)L.w.n_groups; i++)
                    L.w.scales[i] = ptq_f32_to_f16((rnd() & 1) ? 0x1p-6f : -0x1p-6f);
                /* activation codes c in [-127, 127] times 2^-7, with one 127 per chunk: d = 2^-7 exactly */
                float *x = malloc((size_t)rows * in * sizeof(float));
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < in; j++) {
                        int c = (int)(rnd() % 255) - 127;
                        if (j % 32 == 0) c = (rnd() & 1) ? 127 : -127;
                        x[(size_t)r * in + (size_t)(L.w.perm ? L.w.perm[j] : j)] = (float)c * 0x1p-7f;
                    }
                void *buf = scratch_for(in, rows);
                ptq_a8 a;
                const size_t n = (size_t)rows * (size_t)out;
                float *ys = malloc(n * sizeof(float)), *yv = malloc(n * sizeof(float));
                ptq_a8_quantize(PTQ_ISA_SCALAR, &L.w, x, rows, buf, &a);
                CHECK(a.d[0] == 0x1p-7f);
                ptq_qgemv_a8_scalar(&L.w, &a, ys, 0, out);
                for (int ki = 0; ki < nk; ki++) {
                    ptq_a8_quantize(ks[ki].isa, &L.w, x, rows, buf, &a);
                    ks[ki].fn(&L.w, &a, yv, 0, out);
                    CHECK_MSG(memcmp(ys, yv, n * sizeof(float)) == 0, "exact %s bits %d in %d group %d rows %d",
                              ks[ki].name, bits, in, group, rows);
                }
                cases++;
                free(ys), free(yv), free(buf), free(x);
                free_layer(&L);
            }
    fprintf(stderr, "test_qgemv_a8: %d exact cases x %d SIMD kernels\n", cases, nk);
}

/* The largest products: every code at its maximum against activation codes all 127 (or all -127), where
 * an int16 sum of two vpmaddubsw pairs would overflow for 7 bits (2 * 2 * 127 * 127 > 32767). Exact. */
static void test_extreme(void) {
    simd_kernel ks[4];
    const int nk = simd_kernels(ks);
    for (int bits = 4; bits <= 8; bits++)
        for (int sign = -1; sign <= 1; sign += 2) {
            const int in = 320, out = 5, rows = 2;
            layer L = make_layer(bits, in, out, 64, 0);
            memset(L.q, (1 << bits) - 1, (size_t)out * in);
            for (int o = 0; o < out; o++) ptq_pack_row(bits, L.q + (size_t)o * in, in, L.w.codes + (size_t)o * L.w.row_bytes);
            for (size_t i = 0; i < (size_t)out * (size_t)L.w.n_groups; i++) {
                L.w.scales[i] = ptq_f32_to_f16(0x1p-6f);
                L.w.zeros[i] = 0;
            }
            float *x = malloc((size_t)rows * in * sizeof(float));
            for (int i = 0; i < rows * in; i++) x[i] = (float)sign;
            void *buf = scratch_for(in, rows);
            ptq_a8 a;
            const size_t n = (size_t)rows * (size_t)out;
            float *ys = malloc(n * sizeof(float)), *yv = malloc(n * sizeof(float));
            ptq_a8_quantize(PTQ_ISA_SCALAR, &L.w, x, rows, buf, &a);
            ptq_qgemv_a8_scalar(&L.w, &a, ys, 0, out);
            /* all codes 127 * sign, d = 1/127: y = 2^-6 * qmax * in * sign, exactly as far as float goes */
            CHECK_MSG(fabs(ys[0] - 0x1p-6 * ((1 << bits) - 1) * in * sign) <= 1e-3 * fabs(ys[0]), "extreme scalar bits %d",
                      bits);
            for (int ki = 0; ki < nk; ki++) {
                ptq_a8_quantize(ks[ki].isa, &L.w, x, rows, buf, &a);
                ks[ki].fn(&L.w, &a, yv, 0, out);
                CHECK_MSG(memcmp(ys, yv, n * sizeof(float)) == 0, "extreme %s bits %d sign %d", ks[ki].name, bits, sign);
            }
            free(ys), free(yv), free(buf), free(x);
            free_layer(&L);
        }
}

/* Beyond the stack scratch (heap path) and enough rows and outputs for the threaded loop. */
static void test_large(void) {
    const int in = 20000 + 13, out = 70, rows = 4, bits = 4;
    layer L = make_layer(bits, in, out, 128, 0);
    float *x = malloc((size_t)rows * in * sizeof(float));
    for (int i = 0; i < rows * in; i++) x[i] = urand(-1.0f, 1.0f);
    CHECK(ptq_a8_scratch_bytes(in, rows) > PTQ_A8_STACK);
    void *buf = scratch_for(in, rows);
    ptq_a8 a;
    ptq_a8_quantize(PTQ_ISA_SCALAR, &L.w, x, rows, buf, &a);
    const size_t n = (size_t)rows * out;
    double *yf = malloc(n * sizeof(double)), *bound = malloc(n * sizeof(double));
    float *y = malloc(n * sizeof(float));
    reference_float(&L, x, rows, &a, yf, bound);
    ptq_qgemm_a8_isa(ptq_a8_isa_best(), &L.w, x, rows, y);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= fabs((double)y[i] - yf[i]) <= bound[i];
    CHECK(ok);
    free(yf), free(bound), free(y), free(buf), free(x);
    free_layer(&L);
}

/* ptq_qgemm_a8_multi (q, k and v of a decode step in one call) gives exactly (memcmp) what one
 * ptq_qgemm_a8_isa call per weight gives, for every ISA, whether the weights share the activation codes
 * (same input width, permutation content and activation order, 4 and 6 bits here: one quantization, one
 * parallel region) or not (one call each); and ptq_a8_can_share says which is which. */
static void test_multi(void) {
    const int in = 2048 + 96 + 5; /* enough work for the threaded loop */
    const ptq_isa isas[3] = {PTQ_ISA_SCALAR, PTQ_ISA_AVX2, PTQ_ISA_AVX512};
    layer L[4] = {make_layer(4, in, 300, 32, 1), make_layer(4, in, 37, 32, 1), make_layer(6, in, 70, 128, 1),
                  make_layer(8, in, 50, 32, 0)};
    memcpy(L[1].w.perm, L[0].w.perm, (size_t)in * sizeof(int32_t)); /* same permutation, another pointer */
    memcpy(L[2].w.perm, L[0].w.perm, (size_t)in * sizeof(int32_t));
    CHECK(ptq_a8_can_share(PTQ_ISA_AVX512, &L[0].w, &L[1].w) && ptq_a8_can_share(PTQ_ISA_AVX512, &L[0].w, &L[2].w));
    CHECK(!ptq_a8_can_share(PTQ_ISA_AVX512, &L[0].w, &L[3].w)); /* 4- vs 8-bit order, and no permutation */
    CHECK(!ptq_a8_can_share(PTQ_ISA_SCALAR, &L[0].w, &L[3].w));  /* permuted vs natural columns */
    int cases = 0;
    for (int rows = 1; rows <= 3; rows += 2) {
        float *x = malloc((size_t)rows * in * sizeof(float));
        for (int i = 0; i < rows * in; i++) x[i] = urand(-2.0f, 2.0f);
        float *ys[4], *yr[4];
        for (int i = 0; i < 4; i++) {
            ys[i] = malloc((size_t)rows * (size_t)L[i].w.out * sizeof(float));
            yr[i] = malloc((size_t)rows * (size_t)L[i].w.out * sizeof(float));
        }
        for (int k = 0; k < 3; k++) {
            if (!ptq_a8_supported(isas[k])) continue;
            for (int n = 3; n <= 4; n++) { /* sharing (q, k, v), then with a weight that cannot share */
                const ptq_qweight *ws[4] = {&L[0].w, &L[1].w, &L[2].w, &L[3].w};
                for (int i = 0; i < n; i++) memset(ys[i], 0xff, (size_t)rows * (size_t)L[i].w.out * sizeof(float));
                ptq_qgemm_a8_multi(isas[k], ws, n, x, rows, ys);
                for (int i = 0; i < n; i++) {
                    ptq_qgemm_a8_isa(isas[k], ws[i], x, rows, yr[i]);
                    CHECK(memcmp(ys[i], yr[i], (size_t)rows * (size_t)L[i].w.out * sizeof(float)) == 0);
                }
                cases++;
            }
        }
        for (int i = 0; i < 4; i++) free(ys[i]), free(yr[i]);
        free(x);
    }
    CHECK(cases >= 4);
    for (int i = 0; i < 4; i++) free_layer(&L[i]);
}

/* Non-finite activations: NaN counts as 0; an infinite value makes its chunk d = Inf with every code 0
 * (qsum 0), in the scalar quantizer and, byte for byte, in each SIMD one (8-bit storage: the natural order
 * for all of them); the other chunks are unaffected. */
static void test_nonfinite(void) {
    const int in = 4 * 32 + 7;
    layer L = make_layer(8, in, 3, 32, 0);
    float x[4 * 32 + 7];
    for (int j = 0; j < in; j++) x[j] = urand(-1.0f, 1.0f);
    x[3] = NAN;       /* chunk 0: NaN only */
    x[40] = INFINITY; /* chunk 1: +Inf and a NaN */
    x[41] = NAN;
    x[70] = -INFINITY; /* chunk 2: -Inf */
    const ptq_isa isas[3] = {PTQ_ISA_SCALAR, PTQ_ISA_AVX2, PTQ_ISA_AVX512};
    void *buf[3];
    ptq_a8 a[3];
    for (int k = 0; k < 3; k++) {
        buf[k] = scratch_for(in, 1);
        if (ptq_a8_supported(isas[k])) ptq_a8_quantize(isas[k], &L.w, x, 1, buf[k], &a[k]);
    }
    const ptq_a8 *r = &a[0];
    CHECK(isinf(r->d[1]) && isinf(r->d[2]) && r->qsum[1] == 0 && r->qsum[2] == 0);
    int zero = 1;
    for (int j = 32; j < 96; j++) zero &= r->q[j] == 0;
    CHECK(zero);
    CHECK(r->q[3] == 0 && isfinite(r->d[0]) && r->d[0] > 0.0f && isfinite(r->d[3]) && isfinite(r->d[4]));
    for (int k = 1; k < 3; k++) {
        if (!ptq_a8_supported(isas[k])) continue;
        const size_t nc = (size_t)r->nsuper * PTQ_A8_SUPER;
        CHECK(memcmp(a[k].q, r->q, r->ld) == 0);
        CHECK(memcmp(a[k].d, r->d, nc * sizeof(float)) == 0);
        CHECK(memcmp(a[k].qsum, r->qsum, nc * sizeof(int32_t)) == 0);
    }
    for (int k = 0; k < 3; k++) free(buf[k]);
    free_layer(&L);
}

int main(void) {
    test_nonfinite();
    test_exact();
    test_extreme();
    for (sym_pass = 0; sym_pass < 2; sym_pass++) { /* with stored zero points, then without */
        test_shapes();
        test_large();
        test_multi();
    }
    return tu_done("test_qgemv_a8");
}
