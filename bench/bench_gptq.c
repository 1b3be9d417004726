/* GPTQ time for one 4096 x 4096 layer (the LLaMA-7B attention shape), next to RTN and to the Hessian
 * accumulation from 2048 calibration tokens, measured in one run: the float32 BLAS-3 GPTQ of the library
 * and the earlier double version (tests/gptq_double_ref.h) alternately, --reps times each, with the
 * number of codes on which they differ. Usage: bench_gptq [--json] [--dim N] [--reps N] */
#include <cblas.h>
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

    ptq_qweight q;
    ptq_wq_params wq = {4, 128, 0, 0};
    t0 = now_s();
    ptq_rtn_quantize(W, n, n, &wq, &q, &e);
    double t_rtn = now_s() - t0;
    double rtn_err = ptq_layer_rel_error(W, &q, n, n, H);
    ptq_qweight_free(&q);

    ptq_gptq_params gp = ptq_gptq_default_params();
    gp.wq = wq;
    double *U = ptq_alloc((size_t)n * n, sizeof(double), "U", &e);
    t0 = now_s();
    if (!U || ptq_gptq_inverse_hessian(H, n, NULL, gp.percdamp, U, NULL, &e) != PTQ_OK) {
        fprintf(stderr, "inverse Hessian failed\n");
        return 1;
    }
    double t_inv = now_s() - t0;
    ptq_free(U);
    double t_gptq = 1e30, t_double = 1e30, gptq_err = 0, double_err = 0;
    long diff = 0;
    for (int rep = 0; rep < reps; rep++) {
        ptq_qweight qd;
        t0 = now_s();
        ptq_status st = ptq_gptq_quantize(W, n, n, H, &gp, &q, NULL, &e);
        double t = now_s() - t0;
        t_gptq = t < t_gptq ? t : t_gptq;
        if (st != PTQ_OK) {
            fprintf(stderr, "gptq: %s\n", e.msg);
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
            uint8_t *a = malloc((size_t)n), *b = malloc((size_t)n);
            for (int r = 0; a && b && r < n; r++) {
                ptq_unpack_row(q.bits, q.codes + (size_t)r * q.row_bytes, n, a);
                ptq_unpack_row(qd.bits, qd.codes + (size_t)r * qd.row_bytes, n, b);
                for (int j = 0; j < n; j++) diff += a[j] != b[j];
            }
            free(a), free(b);
            gptq_err = ptq_layer_rel_error(W, &q, n, n, H);
            double_err = ptq_layer_rel_error(W, &qd, n, n, H);
        }
        ptq_qweight_free(&q);
        ptq_qweight_free(&qd);
    }
    if (json) {
        printf("{\"dim\": %d, \"tokens\": %d, \"hessian_s\": %.3f, \"rtn_s\": %.3f, \"gptq_s\": %.3f, "
               "\"rtn_rel_error\": %.4g, \"gptq_rel_error\": %.4g, \"gptq_double_s\": %.3f, \"inverse_s\": %.3f, \"gptq_double_rel_error\": %.4g, "
               "\"codes_differing\": %ld}\n",
               n, tokens, t_h, t_rtn, t_gptq, rtn_err, gptq_err, t_double, t_inv, double_err, diff);
    } else {
        printf("one %dx%d layer (best of %d), W4 g128, Hessian from %d tokens\n", n, n, reps, tokens);
        printf("  Hessian accumulation (double)  %8.2f s\n", t_h);
        printf("  inverse Hessian factor (double) %7.2f s   (part of GPTQ)\n", t_inv);
        printf("  RTN                            %8.2f s   rel. output error %.4g\n", t_rtn, rtn_err);
        printf("  GPTQ (block 128, damp 0.01)    %8.2f s   rel. output error %.4g (%.2fx lower)\n", t_gptq, gptq_err,
               rtn_err / gptq_err);
        printf("  GPTQ, earlier double version   %8.2f s   rel. output error %.4g; float32 is %.2fx faster\n", t_double,
               double_err, t_double / t_gptq);
        printf("  codes differing float32/double %ld of %ld\n", diff, (long)n * n);
    }
    ptq_free(W), ptq_free(X), ptq_free(Xd), ptq_free(H);
    return 0;
}
