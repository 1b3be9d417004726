/* GPTQ time for one 4096 x 4096 layer (the LLaMA-7B attention shape), next to RTN and to the Hessian
 * accumulation from 2048 calibration tokens, measured in one run, alternately, --reps times each: the library's
 * float32 GPTQ (float32 Hessian and Cholesky factorization), the same with the factorization in double (the
 * version before, as the baseline), and the earlier all-double version (tests/gptq_double_ref.h, double
 * Hessian), with the number of codes on which they differ from the double version.
 * Usage: bench_gptq [--json] [--dim N] [--reps N] */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "quant/quantizer.h"
#include "../tests/gptq_double_ref.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 40) / 16777216.0 - 0.5);
}

int main(int argc, char **argv) {
    int json = 0, n = 4096, tokens = 2048, reps = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    }
    ptq_error e;
    float *W = ptq_alloc((size_t)n * n, sizeof(float), "W", &e), *X = ptq_alloc((size_t)tokens * n, sizeof(float), "X", &e);
    double *Xd = ptq_alloc((size_t)tokens * n, sizeof(double), "X", &e), *H = ptq_alloc((size_t)n * n, sizeof(double), "H", &e);
    if (!W || !X || !Xd || !H) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t s = 1;
    for (size_t i = 0; i < (size_t)n * n; i++) W[i] = 0.05f * frand(&s);
    for (size_t i = 0; i < (size_t)tokens * n; i++) X[i] = frand(&s) * (i % n == 7 ? 20.0f : 1.0f);
    double t0 = now_s();
    for (size_t i = 0; i < (size_t)tokens * n; i++) Xd[i] = X[i];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, tokens, 2.0 / tokens, Xd, n, 0.0, H, n);
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) H[(size_t)b * n + a] = H[(size_t)a * n + b];
    double t_h = now_s() - t0;
    /* the float32 Hessian as the pipeline accumulates it: per batch of 256 tokens into a float sum */
    float *Hf = ptq_alloc((size_t)n * n, sizeof(float), "H", &e);
    if (!Hf) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    t0 = now_s();
    memset(Hf, 0, (size_t)n * n * sizeof *Hf);
    for (int t = 0; t < tokens; t += 256)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, n, tokens - t < 256 ? tokens - t : 256, 1.0f,
                    X + (size_t)t * n, n, 1.0f, Hf, n);
    for (int a = 0; a < n; a++)
        for (int b = a; b < n; b++) Hf[(size_t)b * n + a] = Hf[(size_t)a * n + b] *= 2.0f / (float)tokens;
    double t_hf = now_s() - t0, h_rel = 0, h_max = 0;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        double d = fabs(Hf[i] - H[i]) / sqrt(H[(i / n) * n + i / n] * H[(i % n) * n + i % n]);
        h_max = d > h_max ? d : h_max;
        h_rel += d;
    }
    h_rel /= (double)n * n;

    ptq_qweight q;
    ptq_wq_params wq = {4, 128, 0, 0};
    t0 = now_s();
    ptq_rtn_quantize(W, n, n, &wq, &q, &e);
    double t_rtn = now_s() - t0;
    double rtn_err = ptq_layer_rel_error(W, &q, n, n, H);
    ptq_qweight_free(&q);

    ptq_gptq_params gp = ptq_gptq_default_params(), gpd;
    gp.wq = wq;
    gpd = gp;
    gpd.double_factor = 1;
    double t_gptq = 1e30, t_dfac = 1e30, t_double = 1e30, gptq_err = 0, dfac_err = 0, double_err = 0;
    long diff = 0, diff_dfac = 0;
    for (int rep = 0; rep < reps; rep++) {
        ptq_qweight qf, qd;
        t0 = now_s();
        ptq_status st = ptq_gptq_quantize(W, n, n, Hf, &gp, &q, NULL, &e);
        double t = now_s() - t0;
        t_gptq = t < t_gptq ? t : t_gptq;
        if (st != PTQ_OK) {
            fprintf(stderr, "gptq: %s\n", e.msg);
            return 1;
        }
        t0 = now_s();
        st = ptq_gptq_quantize(W, n, n, Hf, &gpd, &qf, NULL, &e);
        t = now_s() - t0;
        t_dfac = t < t_dfac ? t : t_dfac;
        if (st != PTQ_OK) {
            fprintf(stderr, "gptq, double factorization: %s\n", e.msg);
            return 1;
        }
        t0 = now_s();
        st = gptq_double_quantize(W, n, n, H, &gp, &qd, NULL, &e);
        t = now_s() - t0;
        t_double = t < t_double ? t : t_double;
        if (st != PTQ_OK) {
            fprintf(stderr, "double gptq: %s\n", e.msg);
            return 1;
        }
        if (rep == 0) {
            uint8_t *a = malloc((size_t)n), *b = malloc((size_t)n), *c = malloc((size_t)n);
            for (int r = 0; a && b && c && r < n; r++) {
                ptq_unpack_row(q.bits, q.codes + (size_t)r * q.row_bytes, n, a);
                ptq_unpack_row(qf.bits, qf.codes + (size_t)r * qf.row_bytes, n, c);
                ptq_unpack_row(qd.bits, qd.codes + (size_t)r * qd.row_bytes, n, b);
                for (int j = 0; j < n; j++) diff += a[j] != b[j], diff_dfac += c[j] != b[j];
            }
            free(a), free(b), free(c);
            gptq_err = ptq_layer_rel_error(W, &q, n, n, H);
            dfac_err = ptq_layer_rel_error(W, &qf, n, n, H);
            double_err = ptq_layer_rel_error(W, &qd, n, n, H);
        }
        ptq_qweight_free(&q);
        ptq_qweight_free(&qf);
        ptq_qweight_free(&qd);
    }
    if (json) {
        printf("{\"dim\": %d, \"tokens\": %d, \"hessian_s\": %.3f, \"hessian_f32_s\": %.3f, \"hessian_f32_mean_rel\": %.3g, "
               "\"hessian_f32_max_rel\": %.3g, \"rtn_s\": %.3f, \"gptq_s\": %.3f, \"gptq_double_factor_s\": %.3f, "
               "\"gptq_double_s\": %.3f, \"rtn_rel_error\": %.4g, \"gptq_rel_error\": %.4g, "
               "\"gptq_double_factor_rel_error\": %.4g, \"gptq_double_rel_error\": %.4g, \"codes_differing\": %ld, "
               "\"codes_differing_double_factor\": %ld}\n",
               n, tokens, t_h, t_hf, h_rel, h_max, t_rtn, t_gptq, t_dfac, t_double, rtn_err, gptq_err, dfac_err,
               double_err, diff, diff_dfac);
    } else {
        printf("one %dx%d layer (best of %d), W4 g128, Hessian from %d tokens\n", n, n, reps, tokens);
        printf("  Hessian accumulation, double    %7.2f s\n", t_h);
        printf("  Hessian accumulation, float32   %7.2f s   |Hf - H| / sqrt(Hii Hjj): mean %.2g, max %.2g\n", t_hf,
               h_rel, h_max);
        printf("  RTN                             %7.2f s   rel. output error %.4g\n", t_rtn, rtn_err);
        printf("  GPTQ (block 128, damp 0.01)     %7.2f s   rel. output error %.4g (%.2fx lower)\n", t_gptq, gptq_err,
               rtn_err / gptq_err);
        printf("  GPTQ, double factorization      %7.2f s   rel. output error %.4g; float32 is %.2fx faster\n", t_dfac,
               dfac_err, t_dfac / t_gptq);
        printf("  GPTQ, earlier double version    %7.2f s   rel. output error %.4g; float32 is %.2fx faster\n",
               t_double, double_err, t_double / t_gptq);
        printf("  codes differing from the double version: float32 %ld, double factorization %ld, of %ld\n", diff,
               diff_dfac, (long)n * n);
    }
    ptq_free(Hf);
    ptq_free(W), ptq_free(X), ptq_free(Xd), ptq_free(H);
    return 0;
}
