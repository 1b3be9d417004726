/* Products with ggml block matrices at run time (kernels/ggml_gemm.h), measured in one run:
 *  1. decode: one input row times a 4096 x 14336 matrix (out x in) in Q4_K, Q5_K, Q6_K, Q3_K and Q2_K, with each
 *     ISA's fused GEMV kernel, as GB/s of block bytes and as a fraction of the read bandwidth measured in the same
 *     run (ptq_read_bandwidth, best of passes before and after), against the float32 sgemv of the same matrix
 *     widened (what ptq ran before it kept the blocks); and with int8 activations (ptq_ggml_gemm_a8_path: AVX2 with
 *     vpmaddubsw, AVX2 with AVX-VNNI where the CPU has it, AVX-512 VNNI);
 *  2. prefill: 1 to 256 input rows times a 4096 x 4096 Q4_K matrix, fused GEMV path vs dequantized tiles + sgemm vs
 *     the float32 sgemm (where the tiled path should start: ptq_ggml_gemm_min_rows), and with int8 activations the
 *     GEMV kernels vs the int8 GEMM of each of those three (where it should start: ptq_ggml_a8_gemm_min_rows).
 *   bench_ggml_gemm [--json] [--quick]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "io/gguf.h"
#include "kernels/cpu.h"
#include "kernels/ggml_gemm.h"
#include "kernels/membw.h"
#include "kernels/qgemv_a8.h"
#include "quant/ggml_quants.h"

static void fill(float *a, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        a[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* best seconds of reps calls */
#define BEST(reps, call)                                                  \
    ({                                                                    \
        double best_ = 1e30;                                              \
        for (int r_ = 0; r_ < (reps); r_++) {                             \
            double t0_ = now_s();                                         \
            call;                                                         \
            double t_ = now_s() - t0_;                                    \
            if (t_ < best_) best_ = t_;                                   \
        }                                                                 \
        best_;                                                            \
    })

/* the int8-activation kernels: AVX2 with vpmaddubsw, AVX2 with AVX-VNNI (where the CPU has it), AVX-512 VNNI */
static const struct {
    ptq_isa isa;
    int flags;
    const char *label, *key;
} g_a8[] = {{PTQ_ISA_AVX2, PTQ_GGML_A8_NO_AVXVNNI, "AVX2", "avx2"},
            {PTQ_ISA_AVX2, 0, "AVX-VNNI", "avxvnni"},
            {PTQ_ISA_AVX512, 0, "AVX-512 VNNI", "avx512"}};
#define N_A8 3
static int a8_variant_on(int v) {
    return ptq_a8_supported(g_a8[v].isa) && (v != 1 || ptq_cpu_has(PTQ_CPU_AVXVNNI));
}

int main(int argc, char **argv) {
    int json, quick;
    if (bench_flags(argc, argv, "bench_ggml_gemm", &json, &quick)) return 2;
    bench_results br = {0};
    const int reps = quick ? 3 : 10;
    ptq_error err = {0};
    double bw0 = 0, bw1 = 0;
    if (ptq_read_bandwidth((size_t)1 << 30, quick ? 2 : 4, &bw0, &err) != PTQ_OK) {
        fprintf(stderr, "bandwidth probe: %s\n", err.msg);
        return 1;
    }
    printf("load %.2f; ISA %s\n", loadavg(), ptq_isa_name(ptq_isa_best()));

    const int out = 4096, in = 14336;
    float *W = malloc((size_t)out * in * sizeof *W), *x = malloc((size_t)256 * in * sizeof *x);
    float *y = malloc((size_t)256 * out * sizeof *y);
    if (!W || !x || !y) return 1;
    fill(W, (size_t)out * in, 1);
    fill(x, (size_t)256 * in, 2);
    const uint32_t types[] = {PTQ_GGML_Q4_K, PTQ_GGML_Q5_K, PTQ_GGML_Q6_K, PTQ_GGML_Q3_K, PTQ_GGML_Q2_K};
    const size_t fbytes = (size_t)out * in * sizeof(float);
    const double tf = BEST(reps, cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, W, in, x, 1, 0.0f, y, 1));
    printf("\ndecode, %d x %d, 1 row: float32 sgemv %.2f ms (%.1f GB/s)\n", out, in, 1e3 * tf, fbytes / tf / 1e9);
    printf("| type | bytes | ISA | ms | GB/s | x float32 sgemv |\n|---|---|---|---|---|---|\n");
    double gbs[8][3] = {{0}};
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        const size_t nb = (size_t)out * ptq_ggml_row_bytes(types[t], in);
        uint8_t *w = malloc(nb);
        if (!w || ptq_ggml_quantize_rows(types[t], W, w, out, in, &err) != PTQ_OK) return 1;
        char tn[24];
        const char *name = ptq_ggml_type_name(types[t], tn, sizeof tn);
        for (int isa = PTQ_ISA_AVX2; isa <= (int)ptq_isa_best(); isa++) {
            const double s = BEST(reps, ptq_ggml_gemm_path_isa(0, (ptq_isa)isa, types[t], w, out, in, x, 1, y));
            gbs[t][isa] = nb / s / 1e9;
            printf("| %s | %.1f MB | %s | %.2f | %.1f | %.2f |\n", name, nb / 1e6, ptq_isa_name((ptq_isa)isa), 1e3 * s,
                   gbs[t][isa], tf / s);
            char key[96];
            snprintf(key, sizeof key, "decode_%s_%s_gbs", name, ptq_isa_name((ptq_isa)isa));
            bench_rec(&br, key, gbs[t][isa]);
        }
        for (int v = 0; v < N_A8; v++) { /* int8 activations */
            if (!ptq_ggml_a8_supported(types[t]) || !a8_variant_on(v)) continue;
            const double s =
                BEST(reps, ptq_ggml_gemm_a8_path(g_a8[v].flags, g_a8[v].isa, types[t], w, out, in, x, 1, y));
            const double g = nb / s / 1e9;
            if (g > gbs[t][0]) gbs[t][0] = g;
            printf("| %s | %.1f MB | int8 act, %s | %.2f | %.1f | %.2f |\n", name, nb / 1e6, g_a8[v].label, 1e3 * s, g,
                   tf / s);
            char key[96];
            snprintf(key, sizeof key, "decode_%s_a8_%s_gbs", name, g_a8[v].key);
            bench_rec(&br, key, g);
        }
        free(w);
    }
    if (ptq_read_bandwidth((size_t)1 << 30, quick ? 2 : 4, &bw1, &err) != PTQ_OK) return 1;
    const double bw = bw0 > bw1 ? bw0 : bw1;
    printf("\nread bandwidth (probe) %.1f / %.1f GB/s before / after; fractions of %.1f, float (int8) activations:", bw0,
           bw1, bw);
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        char tn[24];
        printf(" %s %.0f%%", ptq_ggml_type_name(types[t], tn, sizeof tn), 100 * gbs[t][ptq_isa_best()] / bw);
        if (gbs[t][0] > 0) printf(" (%.0f%%)", 100 * gbs[t][0] / bw);
    }
    printf("\n");
    bench_rec(&br, "read_bandwidth_gbs", bw);

    /* prefill on 4096 x 4096 Q4_K */
    const int pin = 4096;
    const size_t nb = (size_t)out * ptq_ggml_row_bytes(PTQ_GGML_Q4_K, pin);
    uint8_t *w = malloc(nb);
    if (!w || ptq_ggml_quantize_rows(PTQ_GGML_Q4_K, W, w, out, pin, &err) != PTQ_OK) return 1;
    printf("\nprefill, Q4_K %d x %d: ms per call (best of %d)\n", out, pin, reps);
    printf("| rows | fused GEMV | tiles + sgemm | float32 sgemm |");
    for (int v = 0; v < N_A8; v++) printf(" int8 GEMV, %s | int8 GEMM, %s |", g_a8[v].label, g_a8[v].label);
    printf(" path taken (float, int8) |\n|---|---|---|---|");
    for (int v = 0; v < N_A8; v++) printf("---|---|");
    printf("---|\n");
    const int rows_list[] = {1, 2, 3, 4, 8, 12, 16, 24, 32, 64, 256};
    for (size_t k = 0; k < sizeof rows_list / sizeof *rows_list; k++) {
        const int rows = rows_list[k];
        const double g = BEST(reps, ptq_ggml_gemm_path_isa(0, ptq_isa_best(), PTQ_GGML_Q4_K, w, out, pin, x, rows, y));
        const double ti = BEST(reps, ptq_ggml_gemm_path_isa(1, ptq_isa_best(), PTQ_GGML_Q4_K, w, out, pin, x, rows, y));
        const double f = BEST(reps, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, pin, 1.0f, x, pin, W,
                                                pin, 0.0f, y, out));
        printf("| %d | %.2f | %.2f | %.2f |", rows, 1e3 * g, 1e3 * ti, 1e3 * f);
        char key[96];
        for (int a = 0; a < N_A8; a++) { /* int8 activations: both paths */
            if (!ptq_ggml_a8_supported(PTQ_GGML_Q4_K) || !a8_variant_on(a)) {
                printf(" - | - |");
                continue;
            }
            const int fl = g_a8[a].flags;
            const ptq_isa isa = g_a8[a].isa;
            const double v = BEST(reps, ptq_ggml_gemm_a8_path(fl, isa, PTQ_GGML_Q4_K, w, out, pin, x, rows, y));
            const double m =
                BEST(reps, ptq_ggml_gemm_a8_path(fl | PTQ_GGML_A8_GEMM, isa, PTQ_GGML_Q4_K, w, out, pin, x, rows, y));
            printf(" %.2f | %.2f |", 1e3 * v, 1e3 * m);
            snprintf(key, sizeof key, "prefill_q4k_rows%d_a8_gemm_over_gemv_%s", rows, g_a8[a].key);
            bench_rec(&br, key, m / v);
        }
        printf(" %s, %s |\n", rows >= ptq_ggml_gemm_min_rows() ? "tiles" : "fused",
               rows >= ptq_ggml_a8_gemm_min_rows(ptq_a8_isa_best()) ? "GEMM" : "GEMV");
        snprintf(key, sizeof key, "prefill_q4k_rows%d_gemv_over_tiles", rows);
        bench_rec(&br, key, g / ti);
        snprintf(key, sizeof key, "prefill_q4k_rows%d_tiles_over_float", rows);
        bench_rec(&br, key, ti / f);
    }
    printf("load %.2f\n", loadavg());
    if (json) bench_print_json(&br, stdout);
    free(W), free(x), free(y), free(w);
    return 0;
}
