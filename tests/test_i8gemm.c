/* Int8 GEMM kernels (src/kernels/i8gemm.h).
 *
 * - ptq_i8weight_init: the packed bytes follow the documented layout (read back with an index
 *   formula written here from the spec), padding is zero, row sums and max |code| are right; it
 *   rejects code -128, non-finite scales, bad shapes, and leaves a freeable struct;
 * - the scalar kernel equals a naive int64 dot product, and every ISA the CPU has (forced through
 *   ptq_i8gemm_isa; others reported as skipped) equals the scalar kernel EXACTLY, on in = 1, 3, 63,
 *   64, 65, 172, 4096 x out = 1, 15, 16, 17, 100 x rows = 1, 2, 7, 64 with random codes, extreme
 *   codes (+-127 weights, -128/127 activations) and the worst-case constant inputs, plus shapes that
 *   split input rows over threads and in = PTQ_I8_MAX_IN at the int32 limit;
 * - activation quantization, with each ISA's kernels, equals an independent round-half-even reference
 *   (rint in double; itself checked on ties, clamping, NaN and Inf spelled out) at 4, 6 and 8 bits
 *   on every row length 1..40 and longer (SIMD bodies and tails) without writing past the row;
 *   per-token scales equal max|x| / (2^(b-1)-1), NaN ignored (1 for a zero row);
 * - ptq_i8_linear equals a double fake-quant simulation (dequantized W times dequantized x, plus
 *   bias) within 1e-6 relative, per tensor / per token (given and dynamic), at 8, 6 and 4 bits,
 *   for every ISA; its argument errors are reported.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/i8gemm.h"
#include "testutil.h"

static uint64_t rng_state = 0x243F6A8885A308D3ULL;

static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int irand(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); }
static float urand(float lo, float hi) { return lo + (hi - lo) * (float)((double)(rnd() >> 11) / 9007199254740992.0); }

static int g_supported[PTQ_I8_ISA_COUNT];

/* ---------------------------------------------------------------- helpers */

static void naive_i64(const int8_t *x, const int8_t *w, int rows, int in, int out, int64_t *ref) {
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            int64_t s = 0;
            for (int j = 0; j < in; j++) s += (int64_t)x[(size_t)r * in + j] * (int64_t)w[(size_t)o * in + j];
            ref[(size_t)r * out + o] = s;
        }
}

enum { PAT_RANDOM, PAT_EXTREME, PAT_MAXNEG, PAT_MAXPOS, PAT_COUNT };
static const char *pat_name[] = {"random", "extreme", "all(-128 x 127)", "all(-128 x -127)"};

static void fill(int pat, int8_t *x, size_t nx, int8_t *w, size_t nw) {
    for (size_t i = 0; i < nx; i++)
        x[i] = pat == PAT_RANDOM    ? (int8_t)irand(-128, 127)
               : pat == PAT_EXTREME ? (int8_t)((rnd() & 1) ? 127 : -128)
                                    : (int8_t)-128;
    for (size_t i = 0; i < nw; i++)
        w[i] = pat == PAT_RANDOM    ? (int8_t)irand(-127, 127)
               : pat == PAT_EXTREME ? (int8_t)((rnd() & 1) ? 127 : -127)
               : pat == PAT_MAXNEG  ? (int8_t)127
                                    : (int8_t)-127;
}

/* Runs scalar and every supported ISA on one problem; checks scalar == int64 reference and ISA == scalar.
 * Returns the number of mismatching cases. */
static int check_gemm(int rows, int in, int out, int pat, int verbose) {
    const size_t nx = (size_t)rows * in, nw = (size_t)out * in, ny = (size_t)rows * out;
    int8_t *x = malloc(nx), *wc = malloc(nw);
    float *sw = malloc((size_t)out * sizeof(float));
    int64_t *ref = malloc(ny * sizeof(int64_t));
    int32_t *acc0 = malloc(ny * sizeof(int32_t)), *acc = malloc(ny * sizeof(int32_t));
    fill(pat, x, nx, wc, nw);
    for (int o = 0; o < out; o++) sw[o] = 0.01f;
    ptq_i8weight w;
    ptq_error err = {0};
    int bad = 0;
    if (ptq_i8weight_init(&w, wc, sw, out, in, &err) != PTQ_OK) {
        fprintf(stderr, "init failed: %s\n", err.msg);
        tu_failures++;
        bad = 1;
        goto done;
    }
    naive_i64(x, wc, rows, in, out, ref);
    memset(acc0, 0x5a, ny * sizeof(int32_t));
    ptq_i8gemm_isa(PTQ_I8_SCALAR, &w, x, rows, acc0);
    for (size_t i = 0; i < ny; i++)
        if ((int64_t)acc0[i] != ref[i]) {
            fprintf(stderr, "scalar != int64 reference: rows %d in %d out %d %s at %zu: %d vs %lld\n", rows, in, out,
                    pat_name[pat], i, acc0[i], (long long)ref[i]);
            tu_failures++;
            bad++;
            break;
        }
    for (int isa = 1; isa < PTQ_I8_ISA_COUNT; isa++) {
        if (!g_supported[isa]) continue;
        memset(acc, 0xa5, ny * sizeof(int32_t));
        ptq_i8gemm_isa((ptq_i8_isa)isa, &w, x, rows, acc);
        if (memcmp(acc, acc0, ny * sizeof(int32_t)) != 0) {
            size_t i = 0;
            while (acc[i] == acc0[i]) i++;
            fprintf(stderr, "%s != scalar: rows %d in %d out %d %s at [%zu][%zu]: %d vs %d\n",
                    ptq_i8_isa_name((ptq_i8_isa)isa), rows, in, out, pat_name[pat], i / (size_t)out, i % (size_t)out,
                    acc[i], acc0[i]);
            tu_failures++;
            bad++;
        }
    }
    /* the best-ISA entry point */
    memset(acc, 0x11, ny * sizeof(int32_t));
    ptq_i8gemm(&w, x, rows, acc);
    if (memcmp(acc, acc0, ny * sizeof(int32_t)) != 0) {
        fprintf(stderr, "ptq_i8gemm != scalar: rows %d in %d out %d %s\n", rows, in, out, pat_name[pat]);
        tu_failures++;
        bad++;
    }
    if (verbose) printf("  rows %d in %d out %d %s: %s\n", rows, in, out, pat_name[pat], bad ? "MISMATCH" : "exact");
    ptq_i8weight_free(&w);
done:
    free(x);
    free(wc);
    free(sw);
    free(ref);
    free(acc0);
    free(acc);
    return bad;
}

/* ---------------------------------------------------------------- tests */

static void test_isa(void) {
    printf("CPU kernels:");
    for (int isa = 0; isa < PTQ_I8_ISA_COUNT; isa++) {
        g_supported[isa] = ptq_i8_isa_supported((ptq_i8_isa)isa);
        printf(" %s=%s", ptq_i8_isa_name((ptq_i8_isa)isa), g_supported[isa] ? "tested" : "SKIPPED (CPU lacks it)");
    }
    printf("\nbest: %s\n", ptq_i8_isa_name(ptq_i8_isa_best()));
    CHECK(g_supported[PTQ_I8_SCALAR]);
    CHECK(ptq_i8_isa_supported(ptq_i8_isa_best()));
    CHECK(strcmp(ptq_i8_isa_name(PTQ_I8_AVX512VNNI), "avx512vnni") == 0);
    /* the order of preference */
    if (g_supported[PTQ_I8_AVX512VNNI]) CHECK(ptq_i8_isa_best() == PTQ_I8_AVX512VNNI);
    else if (g_supported[PTQ_I8_AVXVNNI]) CHECK(ptq_i8_isa_best() == PTQ_I8_AVXVNNI);
}

static void test_weight_init(void) {
    const int out = 17, in = 7;
    int8_t wc[17 * 7];
    float sw[17];
    for (int i = 0; i < out * in; i++) wc[i] = (int8_t)irand(-127, 127);
    wc[3] = 127;
    wc[40] = -127;
    for (int o = 0; o < out; o++) sw[o] = 0.5f + (float)o;
    ptq_i8weight w;
    ptq_error err = {0};
    CHECK(ptq_i8weight_init(&w, wc, sw, out, in, &err) == PTQ_OK);
    CHECK(w.out == out && w.in == in && w.in_quads == 2 && w.panels == 2);
    CHECK(w.max_abs == 127);
    CHECK(memcmp(w.codes, wc, sizeof wc) == 0);
    CHECK(memcmp(w.scales, sw, sizeof sw) == 0);
    CHECK(((uintptr_t)w.packed & 63) == 0);
    int bad_pack = 0, bad_sum = 0;
    for (int p = 0; p < w.panels; p++)
        for (int k = 0; k < w.in_quads; k++)
            for (int i = 0; i < 16; i++)
                for (int t = 0; t < 4; t++) {
                    const int o = 16 * p + i, j = 4 * k + t;
                    const int8_t expect = (o < out && j < in) ? wc[o * in + j] : 0;
                    bad_pack += w.packed[(size_t)(p * w.in_quads + k) * 64 + 4 * i + t] != expect;
                }
    for (int o = 0; o < 32; o++) {
        int32_t s = 0;
        for (int j = 0; o < out && j < in; j++) s += wc[o * in + j];
        bad_sum += w.rowsum[o] != s;
    }
    CHECK_MSG(bad_pack == 0, "%d packed bytes differ from the documented layout", bad_pack);
    CHECK_MSG(bad_sum == 0, "%d row sums wrong", bad_sum);
    ptq_i8weight_free(&w);
    CHECK(w.codes == NULL && w.packed == NULL);
    ptq_i8weight_free(&w); /* twice is harmless */

    /* lower bit widths: narrower codes, same path */
    for (int i = 0; i < out * in; i++) wc[i] = (int8_t)irand(-7, 7);
    wc[0] = -7;
    CHECK(ptq_i8weight_init(&w, wc, sw, out, in, &err) == PTQ_OK);
    CHECK(w.max_abs == 7);
    ptq_i8weight_free(&w);

    /* errors */
    wc[5 * in + 2] = -128;
    CHECK(ptq_i8weight_init(&w, wc, sw, out, in, &err) == PTQ_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "-128") && strstr(err.msg, "row 5 column 2"), "message: %s", err.msg);
    CHECK(w.codes == NULL && w.packed == NULL);
    ptq_i8weight_free(&w);
    wc[5 * in + 2] = 0;
    sw[3] = NAN;
    CHECK(ptq_i8weight_init(&w, wc, sw, out, in, &err) == PTQ_ERR_NUMERIC);
    CHECK_MSG(strstr(err.msg, "row 3") != NULL, "message: %s", err.msg);
    sw[3] = INFINITY;
    CHECK(ptq_i8weight_init(&w, wc, sw, out, in, &err) == PTQ_ERR_NUMERIC);
    sw[3] = 1.0f;
    CHECK(ptq_i8weight_init(&w, wc, sw, 0, in, &err) == PTQ_ERR_ARG);
    CHECK(ptq_i8weight_init(&w, wc, sw, out, 0, &err) == PTQ_ERR_ARG);
    CHECK(ptq_i8weight_init(&w, wc, sw, 1, PTQ_I8_MAX_IN + 1, &err) == PTQ_ERR_ARG);
    CHECK(ptq_i8weight_init(&w, NULL, sw, out, in, &err) == PTQ_ERR_ARG);
    CHECK(ptq_i8weight_init(NULL, wc, sw, out, in, &err) == PTQ_ERR_ARG);
}

static void test_gemm_shapes(void) {
    const int ins[] = {1, 3, 63, 64, 65, 172, 4096};
    const int outs[] = {1, 15, 16, 17, 100};
    const int rowss[] = {1, 2, 7, 64};
    int cases = 0, bad = 0;
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 5; b++)
            for (int c = 0; c < 4; c++) {
                /* random codes everywhere; the extreme patterns on every other case (all of them on small in) */
                bad += check_gemm(rowss[c], ins[a], outs[b], PAT_RANDOM, 0);
                cases++;
                if (ins[a] < 4096 || (b + c) % 2 == 0) {
                    bad += check_gemm(rowss[c], ins[a], outs[b], PAT_EXTREME, 0);
                    bad += check_gemm(rowss[c], ins[a], outs[b], (b + c) % 2 ? PAT_MAXNEG : PAT_MAXPOS, 0);
                    cases += 2;
                }
            }
    printf("GEMM shape grid: %d cases, %d mismatching\n", cases, bad);
    /* shapes that split input rows over threads, odd row tiles, many output blocks */
    check_gemm(130, 200, 40, PAT_RANDOM, 1);
    check_gemm(29, 4096, 33, PAT_EXTREME, 1);
    check_gemm(64, 1000, 700, PAT_RANDOM, 1);
    check_gemm(200, 64, 5, PAT_RANDOM, 1);
    /* the int32 limit: |acc| = 128 * 127 * PTQ_I8_MAX_IN = 2130706432 */
    check_gemm(2, PTQ_I8_MAX_IN, 17, PAT_MAXNEG, 1);
    check_gemm(2, PTQ_I8_MAX_IN, 17, PAT_MAXPOS, 1);
    check_gemm(3, PTQ_I8_MAX_IN, 3, PAT_EXTREME, 1);
}

/* round half to even, independently: rint in double in the default rounding mode */
static int8_t ref_quant(float x, float s, int bits) {
    const double lo = -(double)(1 << (bits - 1)), hi = (double)((1 << (bits - 1)) - 1);
    const float v = x / s;
    if (isnan(v)) return 0;
    double r = rint((double)v);
    if (r < lo) r = lo;
    if (r > hi) r = hi;
    return (int8_t)r;
}

static void test_quantize(void) {
    /* ties, clamping, specials at 8 bits, scale 1: the reference itself against hand-written codes */
    const float xs[] = {2.5f, 3.5f, -2.5f, -3.5f, 0.5f, -0.5f, 1.5f, 126.5f, 127.5f, 128.0f, -127.5f, -128.5f,
                        -129.0f, 1000.0f, -1000.0f, NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 0.49999997f};
    const int8_t e8[] = {2, 4, -2, -4, 0, 0, 2, 126, 127, 127, -128, -128, -128, 127, -128, 0, 127, -128, 0, 0, 0};
    const int n = (int)(sizeof xs / sizeof xs[0]);
    for (int i = 0; i < n; i++)
        CHECK_MSG(ref_quant(xs[i], 1.0f, 8) == e8[i], "reference: x = %g: %d, expected %d", (double)xs[i],
                  ref_quant(xs[i], 1.0f, 8), e8[i]);
    /* 4 bits: [-8, 7]; scale 0.5 doubles */
    const float x4[] = {3.25f, 3.75f, -4.25f, -4.0f, 100.0f, 1.25f};
    const int8_t e4[] = {6, 7, -8, -8, 7, 2};
    for (int i = 0; i < 6; i++) CHECK(ref_quant(x4[i], 0.5f, 4) == e4[i]);

    /* every ISA's kernels on the specials spread over a long row (SIMD bodies and tails), at 8 and 4 bits */
    enum { NS = 203 };
    float sp[NS];
    int8_t qs[NS];
    for (int i = 0; i < NS; i++) sp[i] = i % 3 == 2 ? urand(-200.0f, 200.0f) : xs[(i * 7) % n];
    const float one = 1.0f, half = 0.5f;
    for (int isa = 0; isa < PTQ_I8_ISA_COUNT; isa++) {
        if (!g_supported[isa]) continue;
        for (int len = 1; len <= NS; len += len < 40 ? 1 : 27)
            for (int bits = 4; bits <= 8; bits += 4) {
                const float *s = bits == 8 ? &one : &half;
                memset(qs, 0x7f, sizeof qs);
                ptq_quantize_act_i8_isa((ptq_i8_isa)isa, sp, 1, len, s, 0, bits, qs);
                int bad = 0;
                for (int i = 0; i < len; i++) bad += qs[i] != ref_quant(sp[i], *s, bits);
                for (int i = len; i < NS; i++) bad += qs[i] != 0x7f; /* nothing written past the row */
                CHECK_MSG(bad == 0, "%s specials: length %d bits %d: %d codes wrong", ptq_i8_isa_name((ptq_i8_isa)isa), len,
                          bits, bad);
            }
    }

    /* random, per tensor and per token, 4/6/8 bits, every ISA, against the reference */
    const int rows = 9, in = 333;
    float *x = malloc(sizeof(float) * rows * in), sc[9], sref[9];
    int8_t *qq = malloc((size_t)rows * in);
    for (int i = 0; i < rows * in; i++) x[i] = urand(-3.0f, 3.0f) * (float)(1 + i % 7);
    for (int j = 0; j < in; j++) x[4 * in + j] = 0.0f; /* an all-zero row */
    x[2 * in + 5] = NAN;                             /* ignored by the max */
    x[3 * in + 330] = -40.0f;                        /* the max in the scalar tail of a SIMD row */
    const int bitss[] = {4, 6, 8};
    for (int isa = 0; isa < PTQ_I8_ISA_COUNT; isa++) {
        if (!g_supported[isa]) continue;
        for (int bi = 0; bi < 3; bi++) {
            const int bits = bitss[bi];
            const double nmax = (double)((1 << (bits - 1)) - 1);
            ptq_act_scales_per_token_isa((ptq_i8_isa)isa, x, rows, in, bits, sc);
            for (int r = 0; r < rows; r++) {
                double m = 0;
                for (int j = 0; j < in; j++)
                    if (!isnan(x[r * in + j])) m = fmax(m, fabs((double)x[r * in + j]));
                sref[r] = m > 0 ? (float)((float)m / (float)nmax) : 1.0f;
                CHECK_MSG(sc[r] == sref[r], "%s bits %d row %d: scale %g, expected %g", ptq_i8_isa_name((ptq_i8_isa)isa),
                          bits, r, (double)sc[r], (double)sref[r]);
            }
            for (int per_token = 0; per_token < 2; per_token++) {
                const float st = 0.013f * (float)(9 - bits); /* static: clamps some values */
                const float *s = per_token ? sc : &st;
                ptq_quantize_act_i8_isa((ptq_i8_isa)isa, x, rows, in, s, per_token, bits, qq);
                int bad = 0, hit_lo = 0, hit_hi = 0;
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < in; j++) {
                        const int8_t e = ref_quant(x[r * in + j], per_token ? s[r] : s[0], bits);
                        bad += qq[r * in + j] != e;
                        hit_lo += e == -(1 << (bits - 1));
                        hit_hi += e == (1 << (bits - 1)) - 1;
                    }
                CHECK_MSG(bad == 0, "%s bits %d per_token %d: %d codes differ from round-half-even",
                          ptq_i8_isa_name((ptq_i8_isa)isa), bits, per_token, bad);
                CHECK(hit_hi > 0);
                if (!per_token) CHECK(hit_lo > 0); /* per token the range is symmetric: -2^(b-1) is not reached */
            }
        }
    }
    /* the best-ISA entry points */
    ptq_act_scales_per_token(x, rows, in, 8, sc);
    ptq_quantize_act_i8(x, rows, in, sc, 1, 8, qq);
    int bad = 0;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < in; j++) bad += qq[r * in + j] != ref_quant(x[r * in + j], sc[r], 8);
    CHECK(bad == 0);
    free(x);
    free(qq);
}

static void test_linear(void) {
    const int shapes[][3] = {{5, 172, 100}, {64, 4096, 17}, {1, 63, 16}, {33, 333, 70}}; /* rows, in, out */
    const int bitss[] = {8, 6, 4};
    double worst = 0;
    int runs = 0;
    for (int si = 0; si < 4; si++) {
        const int rows = shapes[si][0], in = shapes[si][1], out = shapes[si][2];
        float *x = malloc(sizeof(float) * rows * in), *y = malloc(sizeof(float) * rows * out);
        float *sw = malloc(sizeof(float) * out), *bias = malloc(sizeof(float) * out), *sx = malloc(sizeof(float) * rows);
        int8_t *wc = malloc((size_t)out * in), *xq = malloc((size_t)rows * in);
        for (int i = 0; i < rows * in; i++) x[i] = urand(-1.0f, 1.0f) * (1.0f + (float)(i % 5));
        for (int o = 0; o < out; o++) {
            sw[o] = urand(0.001f, 0.02f);
            bias[o] = urand(-2.0f, 2.0f);
        }
        for (int bi = 0; bi < 3; bi++) {
            const int bits = bitss[bi], wmax = (1 << (bits - 1)) - 1; /* W and A at the same width */
            for (int i = 0; i < out * in; i++) wc[i] = (int8_t)irand(-wmax, wmax);
            ptq_i8weight w;
            ptq_error err = {0};
            CHECK(ptq_i8weight_init(&w, wc, sw, out, in, &err) == PTQ_OK);
            for (int mode = 0; mode < 3; mode++) { /* 0 per tensor, 1 per token given, 2 per token dynamic */
                const int per_token = mode > 0;
                if (mode == 0) sx[0] = 4.0f / (float)(1 << (bits - 1)); /* clamps the largest |x| */
                else ptq_act_scales_per_token(x, rows, in, bits, sx);
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < in; j++) xq[r * in + j] = ref_quant(x[r * in + j], sx[per_token ? r : 0], bits);
                for (int isa = 0; isa < PTQ_I8_ISA_COUNT; isa++) {
                    if (!g_supported[isa]) continue;
                    const float *b = (isa + mode) % 2 ? bias : NULL;
                    CHECK(ptq_i8_linear((ptq_i8_isa)isa, &w, x, rows, mode == 2 ? NULL : sx, per_token, bits, b, y, &err) ==
                          PTQ_OK);
                    runs++;
                    int bad = 0;
                    for (int r = 0; r < rows; r++)
                        for (int o = 0; o < out; o++) {
                            const double s_x = sx[per_token ? r : 0];
                            double dot = 0, abs_sum = 0;
                            for (int j = 0; j < in; j++) {
                                const double t = (s_x * xq[r * in + j]) * ((double)sw[o] * wc[o * in + j]);
                                dot += t;
                                abs_sum += fabs(t);
                            }
                            /* relative to |W x| + |bias|; the double sum itself may be off by ~1e-16 of sum |t|
                             * (so a true 0 is not a tiny nonzero); one unit of acc is s_x * s_w, far above both */
                            const double mag = fabs(dot) + (b ? fabs((double)b[o]) : 0.0) + 1e-9 * abs_sum;
                            const double ref = dot + (b ? (double)b[o] : 0.0);
                            const double rel = fabs((double)y[r * out + o] - ref) / (mag > 1e-30 ? mag : 1e-30);
                            if (rel > worst) worst = rel;
                            if (rel > 1e-6) bad++;
                        }
                    CHECK_MSG(bad == 0, "%s rows %d in %d out %d bits %d mode %d: %d outputs off the fake-quant simulation",
                              ptq_i8_isa_name((ptq_i8_isa)isa), rows, in, out, bits, mode, bad);
                }
            }
            ptq_i8weight_free(&w);
        }
        free(x);
        free(y);
        free(sw);
        free(bias);
        free(sx);
        free(wc);
        free(xq);
    }
    printf("ptq_i8_linear vs double fake-quant: %d runs, worst relative difference %.3g\n", runs, worst);
    CHECK(worst < 1e-6);

    /* argument errors */
    int8_t wc[4] = {1, 2, 3, 4};
    float sw[2] = {1, 1}, x[2] = {1, 2}, y[2], s = 1.0f, sbad = NAN, sneg = -1.0f;
    ptq_i8weight w;
    ptq_error err = {0};
    CHECK(ptq_i8weight_init(&w, wc, sw, 2, 2, &err) == PTQ_OK);
    CHECK(ptq_i8_linear(PTQ_I8_SCALAR, &w, x, 1, NULL, 0, 8, NULL, y, &err) == PTQ_ERR_ARG);
    CHECK(ptq_i8_linear(PTQ_I8_SCALAR, &w, x, 1, &s, 0, 9, NULL, y, &err) == PTQ_ERR_ARG);
    CHECK(ptq_i8_linear(PTQ_I8_SCALAR, &w, x, 1, &s, 0, 1, NULL, y, &err) == PTQ_ERR_ARG);
    CHECK(ptq_i8_linear(PTQ_I8_SCALAR, &w, x, 1, &sbad, 0, 8, NULL, y, &err) == PTQ_ERR_ARG);
    CHECK(ptq_i8_linear(PTQ_I8_SCALAR, &w, x, 1, &sneg, 1, 8, NULL, y, &err) == PTQ_ERR_ARG);
    CHECK(ptq_i8_linear(PTQ_I8_SCALAR, &w, x, 0, &s, 0, 8, NULL, y, &err) == PTQ_OK);
    CHECK(ptq_i8_linear(PTQ_I8_SCALAR, &w, x, 1, &s, 0, 8, NULL, y, &err) == PTQ_OK);
    CHECK(y[0] == 5.0f && y[1] == 11.0f);
    ptq_i8weight_free(&w);
}

int main(void) {
    test_isa();
    test_weight_init();
    test_quantize();
    test_gemm_shapes();
    test_linear();
    return tu_done("test_i8gemm");
}
