/* NoisyQuant (METHODS.md section 2): a fixed noise vector N (one value per input channel) is added to
 * a linear layer's input before activation quantization, and its effect is removed after the product
 * through the folded bias -(What . N):  y = What . q(x + N) + (b - What . N).
 *
 * Default (the paper): N_c = K (u_c - 1/2), u ~ U(0, 1) drawn once per layer with a seed, and the
 * range K searched over {0, 0.05, ..., 2} x step by the layer's output MSE on calibration rows (K = 0,
 * plain quantization, is a candidate, so the search never loses on its own data).
 * Reference variant (the released code): base vector (randn * 2 - 1) * step, a shared shift
 * c in step * {-200..199}/200 searched first, then N = c + s * base with s in {0, 0.001, ..., 1.999}.
 *
 * Held-out check (both variants): the search sees the first half of the sample rows only (the rows
 * are in calibration order, so the second half comes from other images or sequences); the noise it
 * picks is kept only if it also lowers the output error on the second half, by more than twice the
 * standard error of the mean per-row difference (a paired test), else the layer gets N = 0. The gains are small (on
 * vit-mnist W6A6, 0-4% lower output MSE) and a noise vector fitted to a sample often helps only that
 * sample; a noise that does not clearly generalise only perturbs the model. Two more checks follow outside
 * this file: on the block's output (quant/act_calib.c) and on the model's predictions (quant/pipeline.c).
 * PTQ_NQ_UNCHECKED skips this one: the search sees all rows and its best noise is kept. */
#include "methods/noisyquant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "models/forward.h"

static double uniform01(uint64_t *s) { return (double)(ptq_splitmix64(s) >> 11) / 9007199254740992.0; }

static double gaussian(uint64_t *s) {
    double u1 = uniform01(s), u2 = uniform01(s);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct {
    const ptq_linear *lin;
    const ptq_actq *aq; /* calibrated quantizer, without noise */
    const float *X;     /* sample rows [n][in] */
    int n;
    float *d, *y;       /* [n][in], [n][out] */
} objective;

/* Output MSE of What . (q(X + N) - N) against What . X, i.e. || (q(X+N) - N - X) What^T ||^2; with
   per_row, also each row's squared error. */
static double output_mse(objective *o, const float *noise, double *per_row) {
    const ptq_linear *lin = o->lin;
    int in = lin->in;
    ptq_actq q = *o->aq;
    q.noise = (float *)noise;
    q.noise_bias = NULL;
    ptq_actq_apply(&q, o->X, o->n, in, o->d);
    for (int r = 0; r < o->n; r++)
        for (int j = 0; j < in; j++) {
            size_t i = (size_t)r * in + j;
            o->d[i] -= o->X[i] + (noise ? noise[j] : 0.0f);
        }
    ptq_linear bare = *lin; /* the weights only: no bias, no activation quantizer */
    bare.b = bare.bc = NULL;
    bare.aq = NULL;
    bare.i8 = NULL;
    ptq_linear_forward(&bare, o->d, o->n, o->y);
    double e = 0;
    for (int r = 0; r < o->n; r++) {
        double er = 0;
        for (int c = 0; c < lin->out; c++) er += (double)o->y[(size_t)r * lin->out + c] * o->y[(size_t)r * lin->out + c];
        if (per_row) per_row[r] = er;
        e += er;
    }
    return e / ((double)o->n * lin->out);
}

int ptq_nq_has_noise(const ptq_linear *lin) {
    if (!lin->aq || !lin->aq->noise) return 0;
    for (int j = 0; j < lin->in; j++)
        if (lin->aq->noise[j] != 0) return 1;
    return 0;
}

int ptq_nq_clear_gain(const double *with, const double *without, int n) {
    if (n < 1) return 0;
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += with[i] - without[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (with[i] - without[i] - mean) * (with[i] - without[i] - mean);
    double se = n > 1 ? sqrt(var / (n - 1) / n) : 0;
    return mean + 2 * se < 0;
}

ptq_status ptq_noisyquant_search(ptq_model *m, ptq_linear *lin, const float *X, int n, unsigned flags,
                                 uint64_t seed, double *mse_before, double *mse_after, ptq_error *err) {
    int reference = (flags & PTQ_NQ_REFERENCE) != 0, checked = !(flags & PTQ_NQ_UNCHECKED);
    ptq_actq *aq = lin->aq;
    if (!aq || aq->per_token || aq->twin)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: NoisyQuant needs a static activation quantizer", lin->name);
    if (n < 1) return ptq_fail(err, PTQ_ERR_ARG, "%s: NoisyQuant needs calibration rows", lin->name);
    int in = lin->in;
    if (reference && n > 256) n = 256; /* the reference grid is 2400 candidates: keep it affordable */
    /* the first half searches, the second half checks (a single row does both); unchecked: all rows do both */
    int n_fit = checked ? (n + 1) / 2 : n, n_check = !checked ? n : n > 1 ? n / 2 : 1;
    objective fit = {lin, aq, X, n_fit, NULL, NULL}, check = {lin, aq, X + (size_t)(n - n_check) * in, n_check, NULL, NULL};
    /* the two objectives share scratch: fit has the most rows */
    fit.d = ptq_alloc((size_t)n_fit * in, sizeof(float), "NoisyQuant", err);
    fit.y = fit.d ? ptq_alloc((size_t)n_fit * lin->out, sizeof(float), "NoisyQuant", err) : NULL;
    check.d = fit.d, check.y = fit.y;
    float *base = fit.y ? ptq_alloc((size_t)in, sizeof(float), "NoisyQuant", err) : NULL;
    float *cand = base ? ptq_alloc((size_t)in, sizeof(float), "NoisyQuant", err) : NULL;
    float *best = cand ? ptq_model_floats(m, (size_t)in, "NoisyQuant noise", err) : NULL;
    float *nb = best ? ptq_model_floats(m, (size_t)lin->out, "NoisyQuant bias", err) : NULL;
    double *e_plain = nb ? ptq_alloc((size_t)2 * n_check, sizeof(double), "NoisyQuant", err) : NULL;
    double *e_noisy = e_plain ? e_plain + n_check : NULL;
    ptq_status st = e_plain ? PTQ_OK : PTQ_ERR_NOMEM;
    if (st == PTQ_OK) {
        uint64_t s = seed ^ (0xA24BAED4963EE407ULL * (uint64_t)(lin->in * 131 + lin->out));
        for (const char *c = lin->name; *c; c++) s = s * 1099511628211ULL + (unsigned char)*c;
        double step = aq->scale;
        double eb = output_mse(&fit, NULL, NULL);
        memset(best, 0, (size_t)in * sizeof *best);
        if (!reference) {
            for (int j = 0; j < in; j++) base[j] = (float)(uniform01(&s) - 0.5);
            for (int i = 1; i <= 40; i++) {
                double K = step * 0.05 * i;
                for (int j = 0; j < in; j++) cand[j] = (float)(K * base[j]);
                double e = output_mse(&fit, cand, NULL);
                if (e < eb) {
                    eb = e;
                    memcpy(best, cand, (size_t)in * sizeof *cand);
                }
            }
        } else {
            for (int j = 0; j < in; j++) base[j] = (float)((gaussian(&s) * 2.0 - 1.0) * step);
            double shift = 0;
            for (int i = -200; i < 200; i++) {
                double c = step * i / 200.0;
                for (int j = 0; j < in; j++) cand[j] = (float)c;
                double e = output_mse(&fit, cand, NULL);
                if (e < eb) {
                    eb = e;
                    shift = c;
                    memcpy(best, cand, (size_t)in * sizeof *cand);
                }
            }
            for (int i = 1; i < 2000; i++) {
                double sc = i / 1000.0;
                for (int j = 0; j < in; j++) cand[j] = (float)(shift + sc * base[j]);
                double e = output_mse(&fit, cand, NULL);
                if (e < eb) {
                    eb = e;
                    memcpy(best, cand, (size_t)in * sizeof *cand);
                }
            }
        }
        double c0 = output_mse(&check, NULL, e_plain), c1 = output_mse(&check, best, e_noisy);
        if (checked && !ptq_nq_clear_gain(e_noisy, e_plain, n_check)) { /* no clear gain on rows it was not fitted to: plain quantization */
            memset(best, 0, (size_t)in * sizeof *best);
            c1 = c0;
        }
        /* fold: b' = b - What . N, computed with the layer's own (quantized) weights */
        ptq_linear bare = *lin;
        bare.b = bare.bc = NULL;
        bare.aq = NULL;
        bare.i8 = NULL;
        ptq_linear_forward(&bare, best, 1, nb);
        for (int i = 0; i < lin->out; i++) nb[i] = -nb[i];
        aq->noise = best;
        aq->noise_bias = nb;
        if (mse_before) *mse_before = c0;
        if (mse_after) *mse_after = c1;
    }
    ptq_free(e_plain);
    ptq_free(fit.d);
    ptq_free(fit.y);
    ptq_free(base);
    ptq_free(cand);
    return st;
}
