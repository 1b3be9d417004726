/* The activation capture API on stories260K: every linear layer inside the blocks is reported once per
 * chunk in forward order, its output is exactly X W^T (+ b) computed independently here, and the
 * activation statistics equal a direct two-pass computation over the captured inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/forward.h"
#include "testutil.h"

typedef struct {
    const ptq_model *m;
    int calls, bad_order, last_layer;
    double max_err;
    /* direct statistics of one chosen layer */
    const char *watch;
    double sum, sum2, mn, mx;
    double *vals;
    size_t nvals, cap;
} ctx;

static const ptq_linear *find(const ptq_model *m, const char *name) {
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++)
            if (m->blocks[l].lin[r].w && strcmp(m->blocks[l].lin[r].name, name) == 0) return &m->blocks[l].lin[r];
    return NULL;
}

static int on_linear(void *user, const ptq_linear_view *v, const float *X, const float *Y, int rows) {
    ctx *c = user;
    c->calls++;
    if (v->layer < c->last_layer) c->bad_order++;
    c->last_layer = v->layer;
    const ptq_linear *lin = find(c->m, v->name);
    if (!lin || lin->in != v->in || lin->out != v->out) {
        c->bad_order++;
        return 0;
    }
    for (int r = 0; r < rows; r += 7) /* a sample of rows keeps the naive product cheap */
        for (int o = 0; o < lin->out; o++) {
            double acc = lin->b ? lin->b[o] : 0;
            for (int i = 0; i < lin->in; i++) acc += (double)X[(size_t)r * lin->in + i] * lin->w[(size_t)o * lin->in + i];
            double e = fabs(acc - Y[(size_t)r * lin->out + o]) / (1 + fabs(acc));
            if (e > c->max_err) c->max_err = e;
        }
    if (strcmp(v->name, c->watch) == 0) {
        size_t n = (size_t)rows * v->in;
        if (c->nvals + n > c->cap) {
            c->cap = (c->nvals + n) * 2;
            c->vals = realloc(c->vals, c->cap * sizeof *c->vals);
        }
        for (size_t i = 0; i < n; i++) c->vals[c->nvals++] = X[i];
    }
    return 0;
}

int main(void) {
    char *model_path = tu_data_path("stories260K/stories260K.bin");
    ptq_error e;
    ptq_model *m;
    CHECK(ptq_model_load(model_path, &m, &e) == PTQ_OK);
    int n_seqs = 3, T = 64;
    int *toks = malloc((size_t)n_seqs * T * sizeof *toks);
    uint64_t s = 12345;
    for (int i = 0; i < n_seqs * T; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        toks[i] = i % T == 0 ? 1 : (int)((s >> 33) % 512);
    }
    ptq_calib_data data = {toks, n_seqs, T, NULL};
    ctx c = {0};
    c.m = m;
    c.watch = "layers.2.feed_forward.w2";
    CHECK(ptq_capture_activations(m, &data, on_linear, &c, NULL, &e) == PTQ_OK);
    CHECK_MSG(c.calls == 5 * 7, "%d linear calls, expected 35 (5 blocks x 7 linears, one chunk)", c.calls);
    CHECK(c.bad_order == 0);
    CHECK_MSG(c.max_err < 1e-4, "captured outputs differ from X W^T by %g", c.max_err);
    CHECK(c.nvals == (size_t)n_seqs * T * 172);

    /* statistics against a direct two-pass computation */
    ptq_act_stats *st;
    int ns;
    CHECK(ptq_activation_stats(m, &data, NULL, &st, &ns, &e) == PTQ_OK);
    CHECK(ns == 35);
    const ptq_act_stats *w = NULL;
    for (int i = 0; i < ns; i++)
        if (strcmp(st[i].name, c.watch) == 0) w = &st[i];
    CHECK(w != NULL);
    if (w) {
        double mean = 0, mn = INFINITY, mx = -INFINITY;
        for (size_t i = 0; i < c.nvals; i++) {
            mean += c.vals[i];
            mn = fmin(mn, c.vals[i]);
            mx = fmax(mx, c.vals[i]);
        }
        mean /= (double)c.nvals;
        double m2 = 0, m4 = 0;
        for (size_t i = 0; i < c.nvals; i++) {
            double d = c.vals[i] - mean;
            m2 += d * d;
            m4 += d * d * d * d;
        }
        m2 /= (double)c.nvals;
        m4 /= (double)c.nvals;
        CHECK(w->count == (int64_t)c.nvals);
        CHECK(w->min == mn && w->max == mx);
        CHECK_MSG(tu_close(w->mean, mean, 1e-6), "mean %g vs %g", w->mean, mean);
        CHECK_MSG(tu_close(w->std, sqrt(m2), 1e-6), "std %g vs %g", w->std, sqrt(m2));
        CHECK_MSG(tu_close(w->kurtosis, m4 / (m2 * m2), 1e-5), "kurtosis %g vs %g", w->kurtosis, m4 / (m2 * m2));
        double ma = fmax(fabs(mn), fabs(mx));
        CHECK(tu_close(w->max_abs_over_std, ma / sqrt(m2), 1e-6));
    }
    /* a callback that stops the run is reported, not ignored */
    free(st);
    free(c.vals);
    free(toks);
    ptq_model_free(m);
    free(model_path);
    return tu_done("test_capture");
}
