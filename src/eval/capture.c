/* The activation capture API: run the model block by block over calibration data, handing every
 * linear layer's input and float output to a callback. Only the residual stream of the calibration
 * set and one chunk's block activations are alive at a time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "models/forward.h"

typedef struct {
    ptq_capture_fn fn;
    void *user;
} capture_ctx;

static int capture_hook(void *user, int layer, ptq_lin_role role, const ptq_linear *lin, const float *X,
                        const float *Y, int rows) {
    (void)role;
    capture_ctx *c = user;
    ptq_linear_view v = {lin->name, layer, lin->in, lin->out};
    return c->fn(c->user, &v, X, Y, rows);
}

ptq_status ptq_capture_activations(ptq_model *m, const ptq_calib_data *data, ptq_capture_fn fn, void *user,
                                   const ptq_callbacks *cb, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    int n_seq, T;
    if (c->arch == PTQ_ARCH_VIT) {
        if (!data->images) return ptq_fail(err, PTQ_ERR_ARG, "%s: a ViT needs image calibration data", m->path);
        n_seq = data->images->count;
        T = c->max_seq;
    } else {
        if (!data->tokens) return ptq_fail(err, PTQ_ERR_ARG, "%s: a language model needs token calibration data", m->path);
        n_seq = data->n_seqs;
        T = data->seq_len;
        if (T > c->max_seq)
            return ptq_fail(err, PTQ_ERR_ARG, "calibration sequences of %d tokens exceed the context of %d", T,
                            c->max_seq);
    }
    if (n_seq <= 0 || T <= 0) return ptq_fail(err, PTQ_ERR_ARG, "no calibration data");
    size_t per_seq = (size_t)T * c->dim;
    float *x = ptq_alloc((size_t)n_seq * per_seq, sizeof(float), "calibration activations", err);
    if (!x) return PTQ_ERR_NOMEM;
    ptq_status s = PTQ_OK;
    if (c->arch == PTQ_ARCH_VIT) {
        s = ptq_embed_images(m, data->images->pixels, n_seq, x, err);
    } else {
        for (int i = 0; s == PTQ_OK && i < n_seq; i++)
            s = ptq_embed_tokens(m, data->tokens + (size_t)i * T, T, 0, x + i * per_seq, err);
    }
    /* chunks of ~4096 rows keep block activations small */
    int chunk = 4096 / T > 0 ? 4096 / T : 1;
    capture_ctx cc = {fn, user};
    for (int l = 0; s == PTQ_OK && l < c->n_layers; l++) {
        for (int i = 0; s == PTQ_OK && i < n_seq; i += chunk) {
            int k = n_seq - i < chunk ? n_seq - i : chunk;
            s = ptq_block_forward(m, l, x + i * per_seq, k, T, 0, NULL, capture_hook, &cc, err);
        }
        ptq_progress(cb, "capture", l + 1, c->n_layers);
    }
    ptq_free(x);
    return s;
}

typedef struct {
    ptq_act_stats *stats;
    double (*mom)[4]; /* per layer: sums of (x-shift)^1..4 */
    double *shift;
    int n, cap;
} stats_ctx;

static int stats_hook(void *user, const ptq_linear_view *lin, const float *X, const float *Y, int rows) {
    (void)Y;
    stats_ctx *s = user;
    int idx = -1;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->stats[i].name, lin->name) == 0) idx = i;
    if (idx < 0) {
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 64;
            ptq_act_stats *st = realloc(s->stats, (size_t)cap * sizeof *st);
            if (!st) return 1;
            s->stats = st;
            double(*mo)[4] = realloc(s->mom, (size_t)cap * sizeof *mo);
            if (!mo) return 1;
            s->mom = mo;
            double *sh = realloc(s->shift, (size_t)cap * sizeof *sh);
            if (!sh) return 1;
            s->shift = sh;
            s->cap = cap;
        }
        idx = s->n++;
        ptq_act_stats *a = &s->stats[idx];
        memset(a, 0, sizeof *a);
        snprintf(a->name, sizeof a->name, "%s", lin->name);
        a->layer = lin->layer;
        a->in = lin->in;
        a->out = lin->out;
        a->min = INFINITY;
        a->max = -INFINITY;
        memset(s->mom[idx], 0, sizeof s->mom[idx]);
        s->shift[idx] = X[0]; /* shifting by a sample keeps the raw moment sums well conditioned */
    }
    ptq_act_stats *a = &s->stats[idx];
    double *mo = s->mom[idx], sh = s->shift[idx];
    size_t n = (size_t)rows * lin->in;
    for (size_t i = 0; i < n; i++) {
        double v = X[i];
        if (v < a->min) a->min = v;
        if (v > a->max) a->max = v;
        double d = v - sh, d2 = d * d;
        mo[0] += d;
        mo[1] += d2;
        mo[2] += d2 * d;
        mo[3] += d2 * d2;
    }
    a->count += (int64_t)n;
    return 0;
}

ptq_status ptq_activation_stats(ptq_model *m, const ptq_calib_data *data, const ptq_callbacks *cb,
                                ptq_act_stats **stats, int *n_stats, ptq_error *err) {
    *stats = NULL;
    *n_stats = 0;
    stats_ctx s = {0};
    ptq_status st = ptq_capture_activations(m, data, stats_hook, &s, cb, err);
    if (st == PTQ_ERR_CALLBACK) st = ptq_fail(err, PTQ_ERR_NOMEM, "activation statistics: out of memory");
    if (st != PTQ_OK) {
        free(s.stats);
        free(s.mom);
        free(s.shift);
        return st;
    }
    for (int i = 0; i < s.n; i++) {
        ptq_act_stats *a = &s.stats[i];
        double n = (double)a->count, *mo = s.mom[i];
        double m1 = mo[0] / n, m2 = mo[1] / n, m3 = mo[2] / n, m4 = mo[3] / n;
        double var = m2 - m1 * m1;
        double c4 = m4 - 4 * m1 * m3 + 6 * m1 * m1 * m2 - 3 * m1 * m1 * m1 * m1;
        a->mean = m1 + s.shift[i];
        a->std = var > 0 ? sqrt(var) : 0;
        double maxabs = fabs(a->min) > fabs(a->max) ? fabs(a->min) : fabs(a->max);
        a->max_abs_over_std = a->std > 0 ? maxabs / a->std : 0;
        a->kurtosis = var > 0 ? c4 / (var * var) : 0;
    }
    free(s.mom);
    free(s.shift);
    *stats = s.stats;
    *n_stats = s.n;
    return PTQ_OK;
}
