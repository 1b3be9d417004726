/* Products with ggml block matrices at run time (kernels/ggml_gemm.h), against a double-precision product with
 * the dequantized floats (ptq_ggml_dequantize_rows, which test_ggml_quants.c proves equal to ggml's own
 * dequantizer): for all ten block types, every ISA this CPU has (scalar reference, AVX2, AVX-512), both paths
 * (fused GEMV, dequantized tiles + sgemm), 1 to 70 input rows, on RTN-quantized random matrices and on random
 * block bytes (every code, negative and tiny fp16 steps). The SIMD kernels are also compared with the scalar
 * reference directly.
 * Int8 activations (the k-quants): the activation codes against their definition, the scalar a8 kernel against
 * the double product within the rounding bound sum_j |w_j| d_x(j) / 2, the GEMV kernels and the prefill GEMM of
 * AVX2 (vpmaddubsw, and AVX-VNNI where the CPU has it: bit for bit the same) and of AVX-512 VNNI (each at every row
 * count; the GEMMs also over two K blocks and several tiles) against the scalar one;
 * the other types fall back to the float kernels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "kernels/cpu.h"
#include "kernels/ggml_gemm.h"
#include "kernels/qgemv_a8.h"
#include "quant/ggml_quants.h"
#include "testutil.h"

static const uint32_t k_types[] = {PTQ_GGML_Q4_0, PTQ_GGML_Q4_1, PTQ_GGML_Q5_0, PTQ_GGML_Q5_1, PTQ_GGML_Q8_0,
                                   PTQ_GGML_Q2_K, PTQ_GGML_Q3_K, PTQ_GGML_Q4_K, PTQ_GGML_Q5_K, PTQ_GGML_Q6_K};

/* random bytes with every fp16 step finite: each 2-byte field the type stores as fp16 gets a small random
   value (the unpacked parameters tell which: rewrite d / dmin and pack again) */
static void random_blocks(uint32_t type, uint8_t *dst, int rows, int in, uint64_t seed) {
    const size_t rb = ptq_ggml_row_bytes(type, in);
    for (size_t i = 0; i < rb * (size_t)rows; i++) dst[i] = (uint8_t)(tu_splitmix64(seed + i) >> 56);
    const int block = ptq_ggml_row_bytes(type, 32) ? 32 : 256;
    const size_t bytes = ptq_ggml_row_bytes(type, block);
    uint8_t c[256];
    for (size_t k = 0; k < rb * (size_t)rows / bytes; k++) {
        ptq_ggml_block_params p;
        ptq_ggml_unpack_block(type, dst + k * bytes, &p, c);
        uint64_t r = tu_splitmix64(seed ^ (0x9e37u + k));
        /* exponents 1..20 (subnormal-free, |d| in [2^-14, 2^5)), random sign and mantissa */
        p.d = (uint16_t)(((r & 1) << 15) | ((1 + (r >> 8) % 20) << 10) | ((r >> 16) & 0x3ff));
        p.dmin = (uint16_t)((((r >> 1) & 1) << 15) | ((1 + (r >> 28) % 20) << 10) | ((r >> 40) & 0x3ff));
        ptq_ggml_params_derive(&p);
        ptq_ggml_pack_block(&p, c, dst + k * bytes);
    }
}

static void check_product(uint32_t type, const uint8_t *w, int out, int in, int rows, uint64_t seed, const char *what) {
    char buf[24];
    const char *tn = ptq_ggml_type_name(type, buf, sizeof buf);
    float *deq = malloc((size_t)out * in * sizeof *deq), *x = malloc((size_t)rows * in * sizeof *x);
    float *y = malloc((size_t)rows * out * sizeof *y), *yref = malloc((size_t)rows * out * sizeof *yref);
    double *ref = malloc((size_t)rows * out * sizeof *ref), *mag = malloc((size_t)rows * out * sizeof *mag);
    ptq_error err = {0};
    CHECK(ptq_ggml_dequantize_rows(type, w, deq, out, in, &err) == PTQ_OK);
    tu_prng_fill(x, (size_t)rows * in, seed, 1.0, 0.0, 24);
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = 0, m = 0;
            for (int j = 0; j < in; j++) {
                s += (double)deq[(size_t)o * in + j] * x[(size_t)r * in + j];
                m += fabs((double)deq[(size_t)o * in + j] * x[(size_t)r * in + j]);
            }
            ref[(size_t)r * out + o] = s, mag[(size_t)r * out + o] = m;
        }
    /* the scalar kernel: the reference the SIMD kernels are held to */
    ptq_ggml_gemm_path_isa(0, PTQ_ISA_SCALAR, type, w, out, in, x, rows, yref);
    for (int isa = PTQ_ISA_SCALAR; isa <= (int)ptq_isa_best(); isa++)
        for (int tiles = 0; tiles < 2; tiles++) {
            memset(y, 0xff, (size_t)rows * out * sizeof *y); /* NaN: every output must be written */
            ptq_ggml_gemm_path_isa(tiles, (ptq_isa)isa, type, w, out, in, x, rows, y);
            double worst = 0, worst_sc = 0;
            for (size_t i = 0; i < (size_t)rows * out; i++) {
                const double tol = 2e-6 * mag[i] + 1e-30, e = fabs(y[i] - ref[i]) / tol;
                const double esc = fabs(y[i] - yref[i]) / (4e-6 * mag[i] + 1e-30);
                if (!(e <= worst)) worst = e; /* NaN counts */
                if (!(esc <= worst_sc)) worst_sc = esc;
            }
            CHECK_MSG(worst <= 1, "%s %s %s %s rows %d: error %.3g x the tolerance against the double product", tn,
                      what, ptq_isa_name((ptq_isa)isa), tiles ? "tiles" : "gemv", rows, worst);
            CHECK_MSG(worst_sc <= 1, "%s %s %s %s rows %d: differs from the scalar kernel (%.3g x tol)", tn, what,
                      ptq_isa_name((ptq_isa)isa), tiles ? "tiles" : "gemv", rows, worst_sc);
        }
    /* the public entry: whatever path it picks */
    ptq_ggml_gemm(type, w, out, in, x, rows, y);
    double worst = 0;
    for (size_t i = 0; i < (size_t)rows * out; i++) {
        const double e = fabs(y[i] - ref[i]) / (2e-6 * mag[i] + 1e-30);
        if (!(e <= worst)) worst = e;
    }
    CHECK_MSG(worst <= 1, "%s %s ptq_ggml_gemm rows %d: %.3g x tol", tn, what, rows, worst);
    free(deq), free(x), free(y), free(yref), free(ref), free(mag);
}

/* int8 activations: the codes, then the kernels on both paths */
static void check_a8(uint32_t type, const uint8_t *w, int out, int in, int rows, uint64_t seed, const char *what) {
    char buf[24];
    const char *tn = ptq_ggml_type_name(type, buf, sizeof buf);
    const int ns = in / 32;
    float *deq = malloc((size_t)out * in * sizeof *deq), *x = malloc((size_t)rows * in * sizeof *x);
    float *y = malloc((size_t)rows * out * sizeof *y), *ys = malloc((size_t)rows * out * sizeof *ys);
    float *dx = malloc((size_t)rows * ns * sizeof *dx);
    int8_t *xq = malloc((size_t)rows * in);
    int32_t *s16 = malloc((size_t)rows * 2 * ns * sizeof *s16);
    ptq_error err = {0};
    CHECK(ptq_ggml_dequantize_rows(type, w, deq, out, in, &err) == PTQ_OK);
    tu_prng_fill(x, (size_t)rows * in, seed, 1.0, 0.0, 24);
    for (int j = 0; j < 32; j++) x[32 + j] = 0; /* an all-zero chunk: d = 0 */
    x[70] = 40; /* one outlier: a coarse step for its chunk */
    ptq_ggml_a8_quantize(x, rows, in, xq, dx, s16);
    long bad = 0;
    for (int c = 0; c < rows * ns; c++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * c + j]));
        bad += dx[c] != amax / 127;
        for (int h = 0; h < 2; h++) {
            int32_t sum = 0;
            for (int j = 16 * h; j < 16 * h + 16; j++) {
                const double e = fabs((double)x[32 * c + j] - (double)dx[c] * xq[32 * c + j]);
                bad += e > 0.5000001 * dx[c] || abs(xq[32 * c + j]) > 127;
                sum += xq[32 * c + j];
            }
            bad += sum != s16[2 * c + h];
        }
    }
    CHECK_MSG(bad == 0, "activation codes: %ld values off their definition", bad);
    ptq_ggml_gemm_a8_isa(PTQ_ISA_SCALAR, type, w, out, in, x, rows, ys);
    double worst = 0;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = 0, mag = 0, bound = 0;
            for (int j = 0; j < in; j++) {
                const double wj = deq[(size_t)o * in + j], xj = x[(size_t)r * in + j];
                s += wj * xj, mag += fabs(wj * xj), bound += fabs(wj) * dx[r * ns + j / 32] / 2;
            }
            const double e = fabs(ys[(size_t)r * out + o] - s) / (bound + 4e-6 * mag + 1e-30);
            if (!(e <= worst)) worst = e;
        }
    CHECK_MSG(worst <= 1, "%s %s a8 scalar rows %d: %.3g x the rounding bound from the double product", tn, what, rows,
              worst);
    if (ptq_ggml_a8_supported(type)) {
        /* both paths of each ISA at this row count: the GEMV kernels and the GEMM; AVX2 with vpmaddubsw and (on a CPU
           with it) with AVX-VNNI, which must give the same bits */
        float *yt = malloc((size_t)rows * out * sizeof *yt);
        CHECK(yt != NULL);
        for (int path = 0; path < 6 && yt; path++) {
            const ptq_isa isa = path < 4 ? PTQ_ISA_AVX2 : PTQ_ISA_AVX512;
            const int vnni = path == 2 || path == 3;
            if (!ptq_a8_supported(isa) || (vnni && !ptq_cpu_has(PTQ_CPU_AVXVNNI))) continue;
            const int flags = (path % 2 ? PTQ_GGML_A8_GEMM : 0) | (path < 2 ? PTQ_GGML_A8_NO_AVXVNNI : 0);
            memset(y, 0xff, (size_t)rows * out * sizeof *y); /* NaN: every output must be written */
            ptq_ggml_gemm_a8_path(flags, isa, type, w, out, in, x, rows, y);
            worst = 0;
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < out; o++) {
                    double mag = 0;
                    for (int j = 0; j < in; j++) mag += fabs((double)deq[(size_t)o * in + j] * x[(size_t)r * in + j]);
                    const double e = fabs((double)y[(size_t)r * out + o] - ys[(size_t)r * out + o]) / (4e-6 * mag + 1e-30);
                    if (!(e <= worst)) worst = e;
                }
            const char *names[6] = {"AVX2 GEMV",        "AVX2 GEMM",         "AVX-VNNI GEMV",
                                    "AVX-VNNI GEMM",    "AVX-512 VNNI GEMV", "AVX-512 VNNI GEMM"};
            CHECK_MSG(worst <= 1, "%s %s a8 %s rows %d: %.3g x tol from the scalar a8 kernel", tn, what, names[path], rows,
                      worst);
            if (vnni) {
                ptq_ggml_gemm_a8_path(flags | PTQ_GGML_A8_NO_AVXVNNI, isa, type, w, out, in, x, rows, yt);
                CHECK_MSG(memcmp(y, yt, (size_t)rows * out * sizeof *y) == 0, "%s %s a8 %s rows %d: not bit for bit %s",
                          tn, what, names[path], rows, names[path - 2]);
            }
        }
        free(yt);
        /* the entry points take the GEMV kernels for decoding, the GEMM for a prompt */
        ptq_ggml_gemm_a8_path(rows >= ptq_ggml_a8_gemm_min_rows(ptq_a8_isa_best()) ? PTQ_GGML_A8_GEMM : 0, ptq_a8_isa_best(),
                              type, w, out, in, x, rows, y);
        ptq_ggml_gemm_a8(type, w, out, in, x, rows, ys);
        CHECK_MSG(memcmp(y, ys, (size_t)rows * out * sizeof *y) == 0, "%s ptq_ggml_gemm_a8 took another path", tn);
        ptq_ggml_gemm_a8_isa(ptq_a8_isa_best(), type, w, out, in, x, rows, ys);
        CHECK_MSG(memcmp(y, ys, (size_t)rows * out * sizeof *y) == 0, "%s ptq_ggml_gemm_a8_isa took another path", tn);
    }
    free(deq), free(x), free(y), free(ys), free(dx), free(xq), free(s16);
}

int main(void) {
    printf("ISA: %s\n", ptq_isa_name(ptq_isa_best()));
    const int out = 37, in = 768;
    const int rows_list[] = {1, 2, 3, 4, 9, 70};
    for (size_t t = 0; t < sizeof k_types / sizeof *k_types; t++) {
        const uint32_t type = k_types[t];
        CHECK(ptq_ggml_gemm_supported(type));
        const size_t rb = ptq_ggml_row_bytes(type, in);
        uint8_t *w = malloc(rb * out);
        float *W = malloc((size_t)out * in * sizeof *W);
        /* rows of different scales, one all zero */
        for (int o = 0; o < out; o++) tu_prng_fill(W + (size_t)o * in, in, 100 + o, o == 5 ? 0.0 : pow(2, o % 7 - 3), 0.01 * o, 24);
        ptq_error err = {0};
        CHECK(ptq_ggml_quantize_rows(type, W, w, out, in, &err) == PTQ_OK);
        for (size_t k = 0; k < sizeof rows_list / sizeof *rows_list; k++)
            check_product(type, w, out, in, rows_list[k], 7 + k, "rtn");
        const int kq = type >= PTQ_GGML_Q2_K && type <= PTQ_GGML_Q6_K;
        const int a8_rows[] = {1, 2, 3, 20, 70}; /* 70: more than the stack scratch holds */
        for (size_t k = 0; kq && k < sizeof a8_rows / sizeof *a8_rows; k++) check_a8(type, w, out, in, a8_rows[k], 300 + k, "rtn");
        if (kq) { /* the GEMM over two K blocks (PTQ_GGML_A8_KC columns each) and more than one tile of outputs */
            const int out2 = 2 * PTQ_GGML_A8_NB + 19, in2 = PTQ_GGML_A8_KC + 2 * 256;
            uint8_t *w2 = malloc(ptq_ggml_row_bytes(type, in2) * out2);
            float *W2 = malloc((size_t)out2 * in2 * sizeof *W2);
            for (int o = 0; o < out2; o++) tu_prng_fill(W2 + (size_t)o * in2, in2, 500 + o, pow(2, o % 5 - 2), 0.02 * (o % 9), 24);
            CHECK(ptq_ggml_quantize_rows(type, W2, w2, out2, in2, &err) == PTQ_OK);
            check_a8(type, w2, out2, in2, 37, 600, "rtn, 2 K blocks");
            free(w2), free(W2);
        }
        if (!kq) { /* no int8 kernel: the float path */
            float *x = malloc((size_t)2 * in * sizeof *x), *y0 = malloc(2 * out * sizeof *y0), *y1 = malloc(2 * out * sizeof *y1);
            tu_prng_fill(x, (size_t)2 * in, 9, 1.0, 0.0, 24);
            ptq_ggml_gemm(type, w, out, in, x, 2, y0);
            ptq_ggml_gemm_a8(type, w, out, in, x, 2, y1);
            CHECK(memcmp(y0, y1, 2 * out * sizeof *y0) == 0);
            free(x), free(y0), free(y1);
        }
        random_blocks(type, w, out, in, 1000 + t);
        for (size_t k = 0; k < 3; k++) check_product(type, w, out, in, rows_list[k * 2], 70 + k, "random bytes");
        for (int rows = 1; kq && rows <= 3; rows += 2) check_a8(type, w, out, in, rows, 400 + rows, "random bytes");
        free(w), free(W);
    }
    CHECK(!ptq_ggml_gemm_supported(PTQ_GGML_F32));
    return tu_done("test_ggml_gemm");
}
