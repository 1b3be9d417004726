/* ggml block types (src/quant/ggml_quants.h): throughput of RTN (ggml's reference quantizer, reproduced) and
 * of dequantization per type, in MB/s of float32, best of 3; and the time of GPTQ into each type for one
 * 1024 x 1024 layer (random weights, a random positive-definite Hessian).
 *
 *   bench_ggml_quants [--json] [--quick]
 *
 * Set OMP_NUM_THREADS=1 for the single-thread figures of docs/RESULTS.md (RTN of the k-quants is shared out
 * over OpenMP threads); on a busy machine run it with OMP_WAIT_POLICY=passive. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "io/gguf.h"
#include "quant/ggml_quants.h"

static const uint32_t k_types[] = {PTQ_GGML_Q4_0, PTQ_GGML_Q4_1, PTQ_GGML_Q5_0, PTQ_GGML_Q5_1, PTQ_GGML_Q8_0,
                                   PTQ_GGML_Q2_K, PTQ_GGML_Q3_K, PTQ_GGML_Q4_K, PTQ_GGML_Q5_K, PTQ_GGML_Q6_K};

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

int main(int argc, char **argv) {
    int json, quick;
    if (bench_flags(argc, argv, "bench_ggml_quants", &json, &quick)) return 2;
    FILE *out = json ? stderr : stdout;
    bench_results res = {0};
    const int64_t n = 4096, nrows = quick ? 16 : 64;
    float *x = malloc((size_t)(n * nrows) * sizeof *x), *y = malloc((size_t)(n * nrows) * sizeof *y);
    unsigned char *b = malloc(ptq_ggml_row_bytes(PTQ_GGML_Q8_0, n) * (size_t)nrows);
    uint64_t seed = 1;
    for (int64_t i = 0; i < n * nrows; i++) x[i] = 0.1f * frand(&seed);
    fprintf(out, "load average %.2f\n%-5s %12s %16s %14s\n", loadavg(), "type", "RTN MB/s", "dequant MB/s", "GPTQ 1024^2 s");

    /* GPTQ: H = A A^T / k + I / 10 from random A */
    const int L = 1024, K = 256;
    float *W = malloc((size_t)L * L * sizeof *W), *A = malloc((size_t)L * K * sizeof *A);
    double *H = malloc((size_t)L * L * sizeof *H);
    unsigned char *q = malloc(ptq_ggml_row_bytes(PTQ_GGML_Q8_0, L) * (size_t)L);
    for (int i = 0; i < L * L; i++) W[i] = 0.05f * frand(&seed);
    for (int i = 0; i < L * K; i++) A[i] = frand(&seed);
    for (int a = 0; a < L; a++)
        for (int c = 0; c < L; c++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)A[a * K + k] * A[c * K + k];
            H[(size_t)a * L + c] = s / K + (a == c ? 0.1 : 0);
        }

    ptq_error err = {0};
    for (size_t t = 0; t < sizeof k_types / sizeof *k_types; t++) {
        double tq = 1e30, td = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_s();
            if (ptq_ggml_quantize_rows(k_types[t], x, b, nrows, n, &err) != PTQ_OK) return fprintf(stderr, "%s\n", err.msg), 1;
            double t1 = now_s();
            if (ptq_ggml_dequantize_rows(k_types[t], b, y, nrows, n, &err) != PTQ_OK) return fprintf(stderr, "%s\n", err.msg), 1;
            double t2 = now_s();
            tq = fmin(tq, t1 - t0), td = fmin(td, t2 - t1);
        }
        double mb = (double)(n * nrows) * 4 / 1e6, tg = NAN;
        if (!quick) {
            ptq_gptq_ggml_params p = ptq_gptq_ggml_default_params(k_types[t]);
            double t0 = now_s();
            if (ptq_gptq_ggml_quantize(W, L, L, H, &p, q, ptq_ggml_row_bytes(PTQ_GGML_Q8_0, L) * (size_t)L, NULL, &err) != PTQ_OK)
                return fprintf(stderr, "%s\n", err.msg), 1;
            tg = now_s() - t0;
        }
        char buf[32], key[96];
        const char *name = ptq_ggml_type_name(k_types[t], buf, sizeof buf);
        fprintf(out, "%-5s %12.0f %16.0f %14.2f\n", name, mb / tq, mb / td, tg);
        snprintf(key, sizeof key, "%s_rtn_mb_s", name);
        bench_rec(&res, key, mb / tq);
        snprintf(key, sizeof key, "%s_dequant_mb_s", name);
        bench_rec(&res, key, mb / td);
        snprintf(key, sizeof key, "%s_gptq_1024_s", name);
        bench_rec(&res, key, tg);
    }
    if (json) bench_print_json(&res, stdout);
    free(x), free(y), free(b), free(W), free(A), free(H), free(q);
    return 0;
}
