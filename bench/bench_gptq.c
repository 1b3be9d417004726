/* GPTQ time for one 4096 x 4096 layer (the LLaMA-7B attention shape), next to RTN and to the Hessian
 * accumulation from 2048 calibration tokens, measured in one run. Usage: bench_gptq [--json] [--dim N] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "quant/quantizer.h"

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
    int json = 0, n = 4096, tokens = 2048;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) n = atoi(argv[++i]);
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
    t0 = now_s();
    ptq_status st = ptq_gptq_quantize(W, n, n, H, &gp, &q, NULL, &e);
    double t_gptq = now_s() - t0;
    if (st != PTQ_OK) {
        fprintf(stderr, "gptq: %s\n", e.msg);
        return 1;
    }
    double gptq_err = ptq_layer_rel_error(W, &q, n, n, H);
    ptq_qweight_free(&q);
    if (json) {
        printf("{\"dim\": %d, \"tokens\": %d, \"hessian_s\": %.3f, \"rtn_s\": %.3f, \"gptq_s\": %.3f, "
               "\"rtn_rel_error\": %.4g, \"gptq_rel_error\": %.4g}\n",
               n, tokens, t_h, t_rtn, t_gptq, rtn_err, gptq_err);
    } else {
        printf("one %dx%d layer, W4 g128, Hessian from %d tokens\n", n, n, tokens);
        printf("  Hessian accumulation (double)  %8.2f s\n", t_h);
        printf("  RTN                            %8.2f s   rel. output error %.4g\n", t_rtn, rtn_err);
        printf("  GPTQ (block 128, damp 0.01)    %8.2f s   rel. output error %.4g (%.2fx lower)\n", t_gptq, gptq_err,
               rtn_err / gptq_err);
    }
    ptq_free(W), ptq_free(X), ptq_free(Xd), ptq_free(H);
    return 0;
}
