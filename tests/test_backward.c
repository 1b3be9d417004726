/* Backward passes (src/ops/backward.h) against central finite differences.
 *
 * For every op, an independent double-precision reference forward in this file evaluates the scalar
 * L = sum(w_out * forward(inputs)) with a random projection w_out (or the loss itself for the losses), and each
 * input / parameter element is perturbed by +-h in double. The float backward gets dy = w_out and must
 * match the finite differences: the error reported per op is max_i |analytic_i - fd_i| / max_i |fd_i| over
 * every tensor of the op. Gradient buffers start from a random "prior" that is subtracted afterwards, so a
 * backward that overwrites instead of accumulating fails. Large shapes (parallel paths) use directional
 * derivatives along a random direction instead of element-wise differences.
 * The float forwards (the *_forward_cache variants and the helpers) are also checked against ops.h /
 * forward.c and against the double references.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "models/forward.h"
#include "ops/backward.h"
#include "ops/ops.h"
#include "testutil.h"

/* ------------------------------------------------------------------ random numbers, tensors */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* [0, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)urand(); }

/* A tensor: float values f (what the op sees), their double mirror d (what the reference sees and FD perturbs),
 * a gradient buffer g that starts at the prior g0. */
typedef struct {
    const char *name;
    size_t n;
    float *f, *g, *g0;
    double *d;
} tens;

static tens tnew(const char *name, size_t n, float lo, float hi) {
    tens t = {name, n, malloc(n * sizeof(float)), malloc(n * sizeof(float)), malloc(n * sizeof(float)),
              malloc(n * sizeof(double))};
    for (size_t i = 0; i < n; i++) {
        t.f[i] = frand(lo, hi);
        t.d[i] = t.f[i];
        t.g0[i] = frand(-0.25f, 0.25f);
        t.g[i] = t.g0[i];
    }
    return t;
}
static void tsync(tens *t) { /* after changing f */
    for (size_t i = 0; i < t->n; i++) t->d[i] = t->f[i];
}
static void tfree(tens *t) {
    free(t->f);
    free(t->g);
    free(t->g0);
    free(t->d);
}

typedef double (*ref_fn)(void *ctx);

#define H 1e-5

/* element-wise central differences on every element of t; returns max|an - fd| / max|fd| */
static double fd_full(ref_fn f, void *ctx, tens *t) {
    double maxerr = 0, maxfd = 0;
    for (size_t i = 0; i < t->n; i++) {
        double x0 = t->d[i];
        t->d[i] = x0 + H;
        double lp = f(ctx);
        t->d[i] = x0 - H;
        double lm = f(ctx);
        t->d[i] = x0;
        double fd = (lp - lm) / (2 * H);
        double an = (double)t->g[i] - t->g0[i];
        if (fabs(an - fd) > maxerr) maxerr = fabs(an - fd);
        if (fabs(fd) > maxfd) maxfd = fabs(fd);
    }
    CHECK_MSG(maxfd > 0, "%s: all finite differences are zero", t->name);
    return maxerr / (maxfd > 0 ? maxfd : 1);
}

/* directional derivative along a random direction u; error relative to sum_i |g_i u_i| */
static double fd_dir(ref_fn f, void *ctx, tens *t) {
    double *x0 = malloc(t->n * sizeof(double)), *u = malloc(t->n * sizeof(double));
    double an = 0, mag = 0;
    for (size_t i = 0; i < t->n; i++) {
        x0[i] = t->d[i];
        u[i] = 2 * urand() - 1;
        double gi = (double)t->g[i] - t->g0[i];
        an += gi * u[i];
        mag += fabs(gi * u[i]);
    }
    double h = 1e-4;
    for (size_t i = 0; i < t->n; i++) t->d[i] = x0[i] + h * u[i];
    double lp = f(ctx);
    for (size_t i = 0; i < t->n; i++) t->d[i] = x0[i] - h * u[i];
    double lm = f(ctx);
    memcpy(t->d, x0, t->n * sizeof(double));
    double fd = (lp - lm) / (2 * h);
    free(x0);
    free(u);
    CHECK_MSG(mag > 0, "%s: zero gradient", t->name);
    return fabs(an - fd) / (mag > 0 ? mag : 1);
}

static double maxd(double a, double b) { return a > b ? a : b; }

static void report(const char *op, double err, double tol) {
    printf("  %-44s worst rel err %.2e  (tol %.0e)\n", op, err, tol);
    CHECK_MSG(err <= tol, "%s: gradient error %.3e exceeds %.1e", op, err, tol);
}

/* max |a - b| / max(1, |b|) over n */
static double max_rel_diff_fd(const float *a, const double *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) e = maxd(e, fabs(a[i] - b[i]) / maxd(1.0, fabs(b[i])));
    return e;
}

#define TOL 1e-5 /* float analytic gradients against double finite differences */

/* ------------------------------------------------------------------ linear */

typedef struct {
    int rows, in, out;
    tens *x, *w, *b, *wo;
} lin_ctx;

static void lin_ref_fwd(const lin_ctx *c, double *y) {
    for (int r = 0; r < c->rows; r++)
        for (int o = 0; o < c->out; o++) {
            double s = c->b ? c->b->d[o] : 0;
            for (int i = 0; i < c->in; i++) s += c->x->d[(size_t)r * c->in + i] * c->w->d[(size_t)o * c->in + i];
            y[(size_t)r * c->out + o] = s;
        }
}

static double lin_ref(void *p) {
    lin_ctx *c = p;
    double *y = malloc((size_t)c->rows * c->out * sizeof(double)), L = 0;
    lin_ref_fwd(c, y);
    for (size_t i = 0; i < (size_t)c->rows * c->out; i++) L += c->wo->d[i] * y[i];
    free(y);
    return L;
}

static void test_linear(int rows, int in, int out, int bias, int full) {
    tens x = tnew("x", (size_t)rows * in, -1, 1), w = tnew("W", (size_t)out * in, -1, 1), b = tnew("b", out, -1, 1);
    tens wo = tnew("w_out", (size_t)rows * out, -1, 1);
    lin_ctx c = {rows, in, out, &x, &w, bias ? &b : NULL, &wo};
    /* forward: the library's float path against the reference */
    ptq_linear lin = {.in = in, .out = out, .w = w.f, .b = bias ? b.f : NULL};
    float *y = malloc((size_t)rows * out * sizeof(float));
    double *yd = malloc((size_t)rows * out * sizeof(double));
    ptq_linear_forward_float(&lin, x.f, rows, y);
    lin_ref_fwd(&c, yd);
    CHECK(max_rel_diff_fd(y, yd, (size_t)rows * out) < 1e-5);
    ptq_linear_backward(x.f, w.f, wo.f, rows, in, out, x.g, w.g, bias ? b.g : NULL);
    double (*fd)(ref_fn, void *, tens *) = full ? fd_full : fd_dir;
    double e = maxd(fd(lin_ref, &c, &x), fd(lin_ref, &c, &w));
    if (bias) e = maxd(e, fd(lin_ref, &c, &b));
    char name[96];
    snprintf(name, sizeof name, "linear %dx%d->%d%s%s", rows, in, out, bias ? " +bias" : "", full ? "" : " (dir)");
    report(name, e, TOL);
    free(y);
    free(yd);
    tfree(&x), tfree(&w), tfree(&b), tfree(&wo);
}

/* ------------------------------------------------------------------ norms */

typedef struct {
    int rows, dim, rms;
    double eps;
    tens *x, *w, *b, *wo;
} norm_ctx;

static void norm_ref_fwd(const norm_ctx *c, double *y) {
    for (int r = 0; r < c->rows; r++) {
        const double *x = c->x->d + (size_t)r * c->dim;
        double mean = 0, var = 0;
        if (!c->rms) {
            for (int i = 0; i < c->dim; i++) mean += x[i];
            mean /= c->dim;
        }
        for (int i = 0; i < c->dim; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= c->dim;
        double inv = 1 / sqrt(var + c->eps);
        for (int i = 0; i < c->dim; i++)
            y[(size_t)r * c->dim + i] = (x[i] - mean) * inv * c->w->d[i] + (c->b ? c->b->d[i] : 0);
    }
}

static double norm_ref(void *p) {
    norm_ctx *c = p;
    size_t n = (size_t)c->rows * c->dim;
    double *y = malloc(n * sizeof(double)), L = 0;
    norm_ref_fwd(c, y);
    for (size_t i = 0; i < n; i++) L += c->wo->d[i] * y[i];
    free(y);
    return L;
}

/* via: 0 = raw functions, 1 = ptq_norm_forward_cache / ptq_norm_backward with a config */
static void test_norm(int rms, int bias, int rows, int dim, int via_cfg, int full) {
    size_t n = (size_t)rows * dim;
    tens x = tnew("x", n, -2, 3), w = tnew("w", dim, 0.5f, 1.5f), b = tnew("b", dim, -1, 1), wo = tnew("w_out", n, -1, 1);
    for (int r = 0; r < rows; r++) /* rows with different offsets and scales */
        for (int i = 0; i < dim; i++) x.f[(size_t)r * dim + i] = x.f[(size_t)r * dim + i] * (0.5f + r % 3) + (float)(r % 4);
    tsync(&x);
    float eps = 1e-5f;
    norm_ctx c = {rows, dim, rms, eps, &x, &w, bias ? &b : NULL, &wo};
    float *y = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
    float *mean = malloc(rows * sizeof(float)), *rstd = malloc(rows * sizeof(float));
    double *yd = malloc(n * sizeof(double));
    ptq_config cfg = {.dim = dim, .norm = rms ? PTQ_NORM_RMS : PTQ_NORM_LAYER, .norm_eps = eps};
    ptq_norm nw = {w.f, bias ? b.f : NULL}, ng = {w.g, bias ? b.g : NULL};
    ptq_norm_cache cache = {mean, rstd};
    if (via_cfg) {
        ptq_norm_forward_cache(&cfg, &nw, x.f, rows, y, &cache);
        ptq_norm_apply(&cfg, &nw, x.f, rows, y2);
    } else if (rms) {
        ptq_rmsnorm_forward_cache(x.f, rows, dim, w.f, eps, y, rstd);
        ptq_rmsnorm(x.f, rows, dim, w.f, eps, y2);
    } else {
        ptq_layernorm_forward_cache(x.f, rows, dim, w.f, bias ? b.f : NULL, eps, y, mean, rstd);
        ptq_layernorm(x.f, rows, dim, w.f, bias ? b.f : NULL, eps, y2);
    }
    CHECK_MSG(memcmp(y, y2, n * sizeof(float)) == 0, "norm forward_cache differs from ops.h");
    norm_ref_fwd(&c, yd);
    CHECK(max_rel_diff_fd(y, yd, n) < 1e-5);
    if (via_cfg) ptq_norm_backward(&cfg, &nw, x.f, wo.f, &cache, rows, x.g, &ng);
    else if (rms) ptq_rmsnorm_backward(x.f, wo.f, w.f, rstd, rows, dim, x.g, w.g);
    else ptq_layernorm_backward(x.f, wo.f, w.f, mean, rstd, rows, dim, x.g, w.g, bias ? b.g : NULL);
    double (*fd)(ref_fn, void *, tens *) = full ? fd_full : fd_dir;
    double e = maxd(fd(norm_ref, &c, &x), fd(norm_ref, &c, &w));
    if (bias) e = maxd(e, fd(norm_ref, &c, &b));
    char name[96];
    snprintf(name, sizeof name, "%s %dx%d%s%s%s", rms ? "rmsnorm" : "layernorm", rows, dim,
             rms ? "" : bias ? " +bias" : " no bias", via_cfg ? " (cfg)" : "", full ? "" : " (dir)");
    report(name, e, TOL);
    free(y), free(y2), free(mean), free(rstd), free(yd);
    tfree(&x), tfree(&w), tfree(&b), tfree(&wo);
}

/* ------------------------------------------------------------------ activations */

static double act_ref_scalar(ptq_act_kind k, double x) {
    switch (k) {
    case PTQ_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case PTQ_ACT_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
    case PTQ_ACT_RELU: return x > 0 ? x : 0;
    case PTQ_ACT_SILU: return x / (1 + exp(-x));
    }
    return x;
}

typedef struct {
    ptq_act_kind kind;
    size_t n;
    tens *x, *u, *wo; /* u NULL: plain activation; else gated act(x) * u */
} act_ctx;

static double act_ref(void *p) {
    act_ctx *c = p;
    double L = 0;
    for (size_t i = 0; i < c->n; i++)
        L += c->wo->d[i] * act_ref_scalar(c->kind, c->x->d[i]) * (c->u ? c->u->d[i] : 1.0);
    return L;
}

static const char *act_name(ptq_act_kind k) {
    return k == PTQ_ACT_GELU ? "gelu" : k == PTQ_ACT_GELU_TANH ? "gelu_tanh" : k == PTQ_ACT_RELU ? "relu" : "silu";
}

static void test_act(ptq_act_kind kind, int gated) {
    size_t n = 60;
    tens x = tnew("x", n, -4, 4), u = tnew("u", n, -2, 2), wo = tnew("w_out", n, -1, 1);
    for (size_t i = 0; i < n; i++) /* keep away from ReLU's kink, where finite differences are meaningless */
        if (fabsf(x.f[i]) < 0.05f) x.f[i] = 0.3f;
    tsync(&x);
    act_ctx c = {kind, n, &x, gated ? &u : NULL, &wo};
    float *y = malloc(n * sizeof(float));
    double worst_fwd = 0;
    if (gated) ptq_gated_forward(kind, x.f, u.f, y, n);
    else {
        memcpy(y, x.f, n * sizeof(float));
        ptq_act_inplace(kind, y, n);
    }
    for (size_t i = 0; i < n; i++)
        worst_fwd = maxd(worst_fwd, fabs(y[i] - act_ref_scalar(kind, x.d[i]) * (gated ? u.d[i] : 1.0)));
    CHECK_MSG(worst_fwd < 1e-5, "%s forward differs from the reference by %g", act_name(kind), worst_fwd);
    if (gated) ptq_gated_backward(kind, x.f, u.f, wo.f, x.g, u.g, n);
    else ptq_act_backward(kind, x.f, wo.f, x.g, n);
    double e = fd_full(act_ref, &c, &x);
    if (gated) e = maxd(e, fd_full(act_ref, &c, &u));
    char name[64];
    snprintf(name, sizeof name, "%s%s", gated ? "gated " : "", act_name(kind));
    report(name, e, TOL);
    free(y);
    tfree(&x), tfree(&u), tfree(&wo);
}

/* ------------------------------------------------------------------ RoPE */

typedef struct {
    ptq_rope_kind kind;
    int rows, seq_len, stride, n_heads, head_dim, pos0;
    double theta;
    tens *x, *wo;
} rope_ctx;

static void rope_ref_fwd(const rope_ctx *c, double *y) {
    memcpy(y, c->x->d, c->x->n * sizeof(double));
    int half = c->head_dim / 2;
    for (int r = 0; r < c->rows; r++)
        for (int h = 0; h < c->n_heads; h++)
            for (int i = 0; i < half; i++) {
                double a = (c->pos0 + r % c->seq_len) * pow(c->theta, -2.0 * i / c->head_dim);
                int i0 = c->kind == PTQ_ROPE_INTERLEAVED ? 2 * i : i;
                int i1 = c->kind == PTQ_ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
                double *v = y + (size_t)r * c->stride + (size_t)h * c->head_dim;
                double v0 = v[i0], v1 = v[i1];
                v[i0] = v0 * cos(a) - v1 * sin(a);
                v[i1] = v0 * sin(a) + v1 * cos(a);
            }
}

static double rope_ref(void *p) {
    rope_ctx *c = p;
    double *y = malloc(c->x->n * sizeof(double)), L = 0;
    rope_ref_fwd(c, y);
    for (size_t i = 0; i < c->x->n; i++) L += c->wo->d[i] * y[i];
    free(y);
    return L;
}

static void test_rope(ptq_rope_kind kind) {
    int n_seq = 2, T = 4, n_heads = 3, hd = 8, stride = n_heads * hd + 5, pos0 = 3;
    int rows = n_seq * T;
    size_t n = (size_t)rows * stride;
    tens x = tnew("x", n, -1, 1), wo = tnew("w_out", n, -1, 1);
    rope_ctx c = {kind, rows, T, stride, n_heads, hd, pos0, 10000.0, &x, &wo};
    float *y = malloc(n * sizeof(float));
    double *yd = malloc(n * sizeof(double));
    memcpy(y, x.f, n * sizeof(float));
    ptq_rope(kind, y, rows, T, stride, n_heads, hd, pos0, 10000.0f);
    rope_ref_fwd(&c, yd);
    CHECK(max_rel_diff_fd(y, yd, n) < 1e-5);
    /* in place: the gradient buffer starts as dy and ends as dx (no prior) */
    memcpy(x.g, wo.f, n * sizeof(float));
    memset(x.g0, 0, n * sizeof(float));
    ptq_rope_backward(kind, x.g, rows, T, stride, n_heads, hd, pos0, 10000.0f);
    /* round trip: the backward undoes the forward (a rotation's transpose is its inverse) */
    ptq_rope_backward(kind, y, rows, T, stride, n_heads, hd, pos0, 10000.0f);
    double rt = 0;
    for (size_t i = 0; i < n; i++) rt = maxd(rt, fabs(y[i] - x.f[i]));
    CHECK_MSG(rt < 1e-5, "rope backward does not invert the forward: %g", rt);
    report(kind == PTQ_ROPE_HALF ? "rope half (NeoX) pairing" : "rope interleaved pairing", fd_full(rope_ref, &c, &x),
           TOL);
    free(y), free(yd);
    tfree(&x), tfree(&wo);
}

/* ------------------------------------------------------------------ attention */

typedef struct {
    int n_q, n_kv, q_pos0, n_heads, n_kv_heads, hd, causal, qs, ks, vs, os;
    /* offsets of q, k, v inside their tensors (a fused buffer holds all three) */
    tens *tq, *tk, *tv, *wo;
    size_t oq, ok, ov;
} att_ctx;

static void att_ref_fwd(const att_ctx *c, double *out, double *probs) {
    const double *q = c->tq->d + c->oq, *k = c->tk->d + c->ok, *v = c->tv->d + c->ov;
    int group = c->n_heads / c->n_kv_heads;
    double *s = malloc((size_t)c->n_kv * sizeof(double));
    for (int h = 0; h < c->n_heads; h++)
        for (int i = 0; i < c->n_q; i++) {
            int kh = h / group;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < c->n_kv; j++) {
                if (c->causal && j > c->q_pos0 + i) {
                    s[j] = -INFINITY;
                    continue;
                }
                double d = 0;
                for (int e = 0; e < c->hd; e++)
                    d += q[(size_t)i * c->qs + h * c->hd + e] * k[(size_t)j * c->ks + kh * c->hd + e];
                s[j] = d / sqrt((double)c->hd);
                if (s[j] > mx) mx = s[j];
            }
            for (int j = 0; j < c->n_kv; j++) sum += (s[j] = exp(s[j] - mx));
            for (int e = 0; e < c->hd; e++) {
                double o = 0;
                for (int j = 0; j < c->n_kv; j++) o += s[j] / sum * v[(size_t)j * c->vs + kh * c->hd + e];
                out[(size_t)i * c->os + h * c->hd + e] = o;
            }
            if (probs)
                for (int j = 0; j < c->n_kv; j++) probs[((size_t)h * c->n_q + i) * c->n_kv + j] = s[j] / sum;
        }
    free(s);
}

static double att_ref(void *p) {
    att_ctx *c = p;
    size_t n = (size_t)c->n_q * c->os;
    double *out = calloc(n, sizeof(double)), L = 0;
    att_ref_fwd(c, out, NULL);
    for (int i = 0; i < c->n_q; i++)
        for (int e = 0; e < c->n_heads * c->hd; e++) L += c->wo->d[(size_t)i * c->os + e] * out[(size_t)i * c->os + e];
    free(out);
    return L;
}

static void test_attention(int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int hd, int causal, int fused) {
    int qd = n_heads * hd, kvd = n_kv_heads * hd, os = qd + 3;
    tens a = {0}, b = {0}, cc = {0}, wo = tnew("w_out", (size_t)n_q * os, -1, 1);
    att_ctx c = {n_q, n_kv, q_pos0, n_heads, n_kv_heads, hd, causal, 0, 0, 0, os, NULL, NULL, NULL, &wo, 0, 0, 0};
    if (fused) { /* one [rows][q | k | v | pad] buffer as forward.c's fused QKV; n_q == n_kv */
        int W = qd + 2 * kvd + 2;
        a = tnew("qkv", (size_t)n_kv * W, -1.5f, 1.5f);
        c.tq = c.tk = c.tv = &a;
        c.qs = c.ks = c.vs = W;
        c.oq = 0, c.ok = qd, c.ov = qd + kvd;
    } else {
        c.qs = qd + 1, c.ks = kvd + 2, c.vs = kvd;
        a = tnew("q", (size_t)n_q * c.qs, -1.5f, 1.5f);
        b = tnew("k", (size_t)n_kv * c.ks, -1.5f, 1.5f);
        cc = tnew("v", (size_t)n_kv * c.vs, -1.5f, 1.5f);
        c.tq = &a, c.tk = &b, c.tv = &cc;
    }
    size_t np = ptq_attention_probs_size(n_heads, n_q, n_kv), no = (size_t)n_q * os;
    float *probs = malloc(np * sizeof(float)), *out = calloc(no, sizeof(float)), *out2 = calloc(no, sizeof(float));
    double *outd = calloc(no, sizeof(double)), *probsd = malloc(np * sizeof(double));
    const float *q = c.tq->f + c.oq, *k = c.tk->f + c.ok, *v = c.tv->f + c.ov;
    ptq_attention_forward_cache(q, c.qs, k, c.ks, v, c.vs, out, os, n_q, n_kv, q_pos0, n_heads, n_kv_heads, hd, causal,
                                probs);
    ptq_attention(q, c.qs, k, c.ks, v, c.vs, out2, os, n_q, n_kv, q_pos0, n_heads, n_kv_heads, hd, causal);
    CHECK_MSG(memcmp(out, out2, no * sizeof(float)) == 0, "attention forward_cache differs from ptq_attention");
    att_ref_fwd(&c, outd, probsd);
    CHECK(max_rel_diff_fd(out, outd, no) < 1e-5);
    CHECK(max_rel_diff_fd(probs, probsd, np) < 1e-5); /* includes the zeros of masked keys */
    ptq_error err = {0};
    ptq_status st = ptq_attention_backward(q, c.qs, k, c.ks, v, c.vs, probs, wo.f, os, c.tq->g + c.oq, c.tk->g + c.ok,
                                           c.tv->g + c.ov, n_q, n_kv, q_pos0, n_heads, n_kv_heads, hd, causal, &err);
    CHECK(st == PTQ_OK);
    double e = fd_full(att_ref, &c, &a); /* fused: also checks that the padding columns get no gradient */
    if (!fused) e = maxd(e, maxd(fd_full(att_ref, &c, &b), fd_full(att_ref, &c, &cc)));
    char name[128];
    snprintf(name, sizeof name, "attention %s q%d kv%d pos0=%d h%d/%d%s", causal ? "causal" : "full", n_q, n_kv, q_pos0,
             n_heads, n_kv_heads, fused ? " fused" : "");
    report(name, e, TOL);
    free(probs), free(out), free(out2), free(outd), free(probsd);
    tfree(&a), tfree(&wo);
    if (!fused) tfree(&b), tfree(&cc);
}

/* ------------------------------------------------------------------ cross-entropy */

typedef struct {
    int rows, vocab;
    const int *targets;
    double scale;
    tens *x;
} ce_ctx;

static double ce_ref(void *p) {
    ce_ctx *c = p;
    double L = 0;
    int nv = 0;
    for (int r = 0; r < c->rows; r++) {
        if (c->targets[r] < 0) continue;
        const double *x = c->x->d + (size_t)r * c->vocab;
        double se = 0;
        for (int i = 0; i < c->vocab; i++) se += exp(x[i]);
        L += log(se) - x[c->targets[r]];
        nv++;
    }
    return nv ? c->scale * L / nv : 0;
}

static void test_cross_entropy(void) {
    int rows = 7, vocab = 11;
    int targets[7] = {3, 0, -1, 10, 5, 3, 7};
    tens x = tnew("logits", (size_t)rows * vocab, -3, 3);
    float scale = 2.5f;
    ce_ctx c = {rows, vocab, targets, scale, &x};
    double loss = -1;
    int nv = -1;
    ptq_error err = {0};
    CHECK(ptq_cross_entropy(x.f, targets, rows, vocab, &loss, x.g, scale, &nv, &err) == PTQ_OK);
    CHECK(nv == 6);
    CHECK_MSG(fabs(loss * scale - ce_ref(&c)) < 1e-9 * fabs(loss * scale), "loss %.9g vs %.9g", loss * scale,
              ce_ref(&c));
    for (int i = 0; i < vocab; i++) CHECK(x.g[2 * vocab + i] == x.g0[2 * vocab + i]); /* ignored row untouched */
    report("cross-entropy (one ignored row, scale 2.5)", fd_full(ce_ref, &c, &x), TOL);
    /* large logits: no overflow */
    float big[3] = {1000.0f, 0.0f, -1000.0f};
    int tb = 1;
    CHECK(ptq_cross_entropy(big, &tb, 1, 3, &loss, NULL, 1.0f, NULL, &err) == PTQ_OK);
    CHECK(fabs(loss - 1000.0) < 1e-6);
    /* every row ignored: loss 0, no gradient */
    int none[2] = {-1, -1};
    float g[6] = {0};
    CHECK(ptq_cross_entropy(big, none, 2, 3, &loss, g, 1.0f, &nv, &err) == PTQ_OK && loss == 0 && nv == 0 && g[0] == 0);
    /* targets out of range */
    int bad[2] = {1, 3};
    CHECK(ptq_cross_entropy(big, bad, 2, 3, &loss, NULL, 1.0f, NULL, &err) == PTQ_ERR_ARG);
    CHECK(strstr(err.msg, "target 3") != NULL);
    bad[1] = -2;
    CHECK(ptq_cross_entropy(big, bad, 2, 3, &loss, NULL, 1.0f, NULL, &err) == PTQ_ERR_ARG);
    tfree(&x);
}

/* ------------------------------------------------------------------ outlier loss */

typedef struct {
    double tau, scale;
    tens *a;
} out_ctx;

static double outlier_ref(void *p) {
    out_ctx *c = p;
    size_t n = c->a->n;
    const double *a = c->a->d;
    double mu = 0, var = 0, L = 0;
    for (size_t i = 0; i < n; i++) mu += a[i];
    mu /= n;
    for (size_t i = 0; i < n; i++) var += (a[i] - mu) * (a[i] - mu);
    double sigma = sqrt(var / n + 1e-12);
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - mu) - c->tau * sigma;
        if (e > 0) L += e * e;
    }
    return c->scale * L / n;
}

static void test_outlier(size_t n, float tau, int full) {
    tens a = tnew("A", n, -1, 1);
    for (size_t i = 0; i < n; i++) { /* a heavy-tailed, skewed tensor: roughly normal plus a few large outliers */
        double g = (urand() + urand() + urand() + urand() - 2) * 1.7;
        if (urand() < 0.04) g = 4 + 6 * urand();
        if (urand() < 0.01) g = -3 - 4 * urand();
        a.f[i] = (float)(0.3 + g);
    }
    tsync(&a);
    float scale = (float)n / 4; /* keeps the gradient O(1) */
    out_ctx c = {tau, scale, &a};
    double L = ptq_outlier_loss(a.f, n, tau, a.g, scale);
    double Lref = outlier_ref(&c) / scale;
    CHECK_MSG(fabs(L - Lref) <= 1e-9 * Lref, "outlier loss %.12g vs reference %.12g", L, Lref);
    /* the test is only meaningful when some but not all elements are outliers */
    double mu = 0, var = 0;
    for (size_t i = 0; i < n; i++) mu += a.d[i];
    mu /= n;
    for (size_t i = 0; i < n; i++) var += (a.d[i] - mu) * (a.d[i] - mu);
    double sig = sqrt(var / n);
    size_t active = 0;
    for (size_t i = 0; i < n; i++) active += fabs(a.d[i] - mu) > tau * sig;
    CHECK_MSG(active > 0 && active < n, "tau %g: %zu of %zu active", tau, active, n);
    char name[96];
    snprintf(name, sizeof name, "outlier loss n=%zu tau=%g (%zu active)%s", n, tau, active, full ? "" : " (dir)");
    report(name, full ? fd_full(outlier_ref, &c, &a) : fd_dir(outlier_ref, &c, &a), TOL);
    tfree(&a);
}

static void test_outlier_edges(void) {
    float a[5] = {1, 1, 1, 1, 1}, g[5] = {0};
    CHECK(ptq_outlier_loss(a, 5, 3.0f, g, 1.0f) == 0.0); /* constant tensor: sigma = 1e-6, no outliers */
    CHECK(g[0] == 0.0f);
    CHECK(ptq_outlier_loss(a, 0, 3.0f, g, 1.0f) == 0.0);
    float b[4] = {0, 0, 0, 10}; /* tau = 0: every deviation counts */
    double L = ptq_outlier_loss(b, 4, 0.0f, NULL, 1.0f);
    CHECK(fabs(L - (3 * 2.5 * 2.5 + 7.5 * 7.5) / 4) < 1e-9);
    /* far outliers all at tau: no element active -> zero loss and zero gradient */
    CHECK(ptq_outlier_loss(b, 4, 100.0f, g, 1.0f) == 0.0 && g[3] == 0.0f);
}

/* ------------------------------------------------------------------ token embedding + learned positions */

typedef struct {
    int n, dim;
    const int *tokens;
    int seq_len, pos_row0;
    tens *emb, *pos, *wo;
} emb_ctx;

static double emb_ref(void *p) {
    emb_ctx *c = p;
    double L = 0;
    for (int r = 0; r < c->n; r++)
        for (int d = 0; d < c->dim; d++)
            L += c->wo->d[(size_t)r * c->dim + d] * (c->emb->d[(size_t)c->tokens[r] * c->dim + d] +
                                                     c->pos->d[(size_t)(c->pos_row0 + r % c->seq_len) * c->dim + d]);
    return L;
}

static void test_token_embedding(void) {
    int vocab = 9, dim = 70, n_seq = 3, T = 4, n = n_seq * T, pos_offset = 2, pos0 = 1, n_pos = T + pos0 + pos_offset;
    int tokens[12] = {3, 1, 3, 0, 8, 3, 1, 1, 5, 3, 0, 3};
    tens emb = tnew("tok_emb", (size_t)vocab * dim, -1, 1), pos = tnew("pos_emb", (size_t)n_pos * dim, -1, 1);
    tens wo = tnew("w_out", (size_t)n * dim, -1, 1);
    /* forward against ptq_embed_tokens on a hand-built model, one sequence at a time */
    ptq_model m;
    memset(&m, 0, sizeof m);
    m.cfg.dim = m.cfg.embed_dim = dim;
    m.cfg.vocab_size = vocab;
    m.cfg.max_seq = pos0 + T;
    m.cfg.pos_offset = pos_offset;
    m.tok_emb = emb.f;
    m.pos_emb = pos.f;
    float *x = malloc((size_t)n * dim * sizeof(float)), *x2 = malloc((size_t)n * dim * sizeof(float));
    ptq_embedding_forward(emb.f, tokens, n, dim, x);
    ptq_pos_add(x, n, T, dim, pos0 + pos_offset, pos.f);
    ptq_error err = {0};
    for (int s = 0; s < n_seq; s++)
        CHECK(ptq_embed_tokens(&m, tokens + s * T, T, pos0, x2 + (size_t)s * T * dim, &err) == PTQ_OK);
    CHECK(memcmp(x, x2, (size_t)n * dim * sizeof(float)) == 0);
    CHECK(ptq_embedding_backward(tokens, n, wo.f, dim, vocab, emb.g, &err) == PTQ_OK);
    ptq_pos_add_backward(wo.f, n, T, dim, pos0 + pos_offset, pos.g);
    emb_ctx c = {n, dim, tokens, T, pos0 + pos_offset, &emb, &pos, &wo};
    report("token embedding + learned positions", maxd(fd_full(emb_ref, &c, &emb), fd_full(emb_ref, &c, &pos)), TOL);
    int bad[2] = {0, 9};
    CHECK(ptq_embedding_backward(bad, 2, wo.f, dim, vocab, emb.g, &err) == PTQ_ERR_ARG);
    free(x), free(x2);
    tfree(&emb), tfree(&pos), tfree(&wo);
}

/* ------------------------------------------------------------------ ViT: patches -> linear -> cls -> positions */

typedef struct {
    int n_img, C, img, P, D;
    tens *pix, *w, *b, *cls, *pos, *wo;
} vit_ctx;

static double vit_ref(void *p) {
    vit_ctx *c = p;
    int g = c->img / c->P, npatch = g * g, T = npatch + 1, pd = c->C * c->P * c->P;
    double L = 0;
    for (int b = 0; b < c->n_img; b++)
        for (int t = 0; t < T; t++)
            for (int o = 0; o < c->D; o++) {
                double v = c->pos->d[(size_t)t * c->D + o];
                if (t == 0) v += c->cls->d[o];
                else {
                    int py = (t - 1) / g, px = (t - 1) % g, k = 0;
                    v += c->b->d[o];
                    for (int ch = 0; ch < c->C; ch++)
                        for (int yy = 0; yy < c->P; yy++)
                            for (int xx = 0; xx < c->P; xx++, k++) {
                                size_t pi = (((size_t)b * c->C + ch) * c->img + py * c->P + yy) * c->img + px * c->P + xx;
                                v += c->w->d[(size_t)o * pd + k] * c->pix->d[pi];
                            }
                }
                L += c->wo->d[((size_t)b * T + t) * c->D + o] * v;
            }
    return L;
}

static void test_vit_embedding(void) {
    int n_img = 2, C = 3, img = 8, P = 4, D = 6, g = img / P, npatch = g * g, T = npatch + 1, pd = C * P * P;
    tens pix = tnew("pixels", (size_t)n_img * C * img * img, -1, 1), w = tnew("patch.W", (size_t)D * pd, -0.3f, 0.3f);
    tens b = tnew("patch.b", D, -1, 1), cls = tnew("cls", D, -1, 1), pos = tnew("pos", (size_t)T * D, -1, 1);
    tens wo = tnew("w_out", (size_t)n_img * T * D, -1, 1);
    ptq_model m;
    memset(&m, 0, sizeof m);
    m.cfg.arch = PTQ_ARCH_VIT;
    m.cfg.dim = D, m.cfg.img_size = img, m.cfg.patch_size = P, m.cfg.in_chans = C, m.cfg.max_seq = T;
    m.cfg.cls_token = 1;
    m.patch = (ptq_linear){.in = pd, .out = D, .w = w.f, .b = b.f};
    m.cls_token = cls.f;
    m.pos_emb = pos.f;
    size_t nx = (size_t)n_img * T * D;
    float *patches = malloc((size_t)n_img * npatch * pd * sizeof(float)), *emb = malloc((size_t)n_img * npatch * D * sizeof(float));
    float *x = malloc(nx * sizeof(float)), *x2 = malloc(nx * sizeof(float));
    ptq_patchify(pix.f, n_img, C, img, P, patches);
    ptq_linear_forward_float(&m.patch, patches, n_img * npatch, emb);
    ptq_cls_concat(cls.f, emb, n_img, npatch, D, x);
    ptq_pos_add(x, n_img * T, T, D, 0, pos.f);
    ptq_error err = {0};
    CHECK(ptq_embed_images(&m, pix.f, n_img, x2, &err) == PTQ_OK);
    CHECK(memcmp(x, x2, nx * sizeof(float)) == 0);
    /* backward: positions, cls concat, then the patch linear */
    float *demb = calloc((size_t)n_img * npatch * D, sizeof(float));
    ptq_pos_add_backward(wo.f, n_img * T, T, D, 0, pos.g);
    ptq_cls_concat_backward(wo.f, n_img, npatch, D, 1, cls.g, demb);
    ptq_linear_backward(patches, w.f, demb, n_img * npatch, pd, D, NULL, w.g, b.g);
    vit_ctx c = {n_img, C, img, P, D, &pix, &w, &b, &cls, &pos, &wo};
    double e = maxd(maxd(fd_full(vit_ref, &c, &w), fd_full(vit_ref, &c, &b)),
                    maxd(fd_full(vit_ref, &c, &cls), fd_full(vit_ref, &c, &pos)));
    report("vit patch embedding + cls + positions", e, TOL);
    /* without a cls token: a plain copy, and a plain pass-through backward */
    float *demb2 = calloc((size_t)n_img * npatch * D, sizeof(float));
    ptq_cls_concat(NULL, emb, n_img, npatch, D, x);
    CHECK(memcmp(x, emb, (size_t)n_img * npatch * D * sizeof(float)) == 0);
    ptq_cls_concat_backward(emb, n_img, npatch, D, 0, NULL, demb2);
    CHECK(memcmp(demb2, emb, (size_t)n_img * npatch * D * sizeof(float)) == 0);
    free(patches), free(emb), free(x), free(x2), free(demb), free(demb2);
    tfree(&pix), tfree(&w), tfree(&b), tfree(&cls), tfree(&pos), tfree(&wo);
}

/* ------------------------------------------------------------------ determinism across thread counts */

static void run_reductions(int nthreads, float *out, size_t n_out) {
    omp_set_num_threads(nthreads);
    int rows = 150, dim = 600, V = 1000, R = 80;
    size_t n = (size_t)rows * dim;
    rng = 12345;
    tens x = tnew("x", n, -2, 2), w = tnew("w", dim, 0.5f, 1.5f), lg = tnew("logits", (size_t)R * V, -4, 4);
    float *y = malloc(n * sizeof(float)), mean[150], rstd[150];
    int *t = malloc(R * sizeof(int));
    for (int r = 0; r < R; r++) t[r] = r % 7 == 3 ? -1 : (r * 37) % V;
    memset(out, 0, n_out * sizeof(float));
    float *dx = out, *dw = dx + n, *db = dw + dim, *dA = db + dim, *dl = dA + n, *dq = dl + (size_t)R * V;
    ptq_layernorm_forward_cache(x.f, rows, dim, w.f, w.f, 1e-5f, y, mean, rstd);
    ptq_layernorm_backward(x.f, y, w.f, mean, rstd, rows, dim, dx, dw, db);
    double L = ptq_outlier_loss(x.f, n, 2.0f, dA, 1.0f);
    double ce = 0;
    ptq_cross_entropy(lg.f, t, R, V, &ce, dl, 1.0f, NULL, NULL);
    /* attention over the first rows of x as q, k, v (dims 4 heads x 25, 2 kv heads) */
    float *probs = malloc(ptq_attention_probs_size(4, 40, 40) * sizeof(float)), *o = malloc(40 * 100 * sizeof(float));
    ptq_attention_forward_cache(x.f, 600, x.f + 100, 600, x.f + 150, 600, o, 100, 40, 40, 0, 4, 2, 25, 1, probs);
    ptq_attention_backward(x.f, 600, x.f + 100, 600, x.f + 150, 600, probs, o, 100, dq, dq + 100, dq + 150, 40, 40, 0,
                           4, 2, 25, 1, NULL);
    dq[40 * 600] = (float)L, dq[40 * 600 + 1] = (float)ce;
    free(y), free(t), free(probs), free(o);
    tfree(&x), tfree(&w), tfree(&lg);
}

static void test_determinism(void) {
    size_t n_out = 150 * 600 * 2 + 2 * 600 + 80 * 1000 + 40 * 600 + 2;
    float *a = malloc(n_out * sizeof(float)), *b = malloc(n_out * sizeof(float));
    int saved = omp_get_max_threads();
    run_reductions(1, a, n_out);
    run_reductions(3, b, n_out);
    omp_set_num_threads(saved);
    CHECK_MSG(memcmp(a, b, n_out * sizeof(float)) == 0, "gradients differ between 1 and 3 threads");
    free(a), free(b);
}

int main(void) {
    printf("linear\n");
    test_linear(7, 9, 5, 1, 1);
    test_linear(1, 6, 4, 0, 1);
    test_linear(300, 96, 80, 1, 0); /* BLAS paths, db over column blocks */
    printf("norms\n");
    test_norm(0, 1, 5, 70, 0, 1);
    test_norm(0, 0, 4, 13, 1, 1);
    test_norm(1, 0, 5, 70, 0, 1);
    test_norm(1, 0, 3, 11, 1, 1);
    test_norm(0, 1, 150, 600, 0, 0); /* OpenMP paths: rows > 64, rows*dim > 65536 */
    test_norm(1, 0, 150, 600, 1, 0);
    printf("activations\n");
    for (int k = PTQ_ACT_GELU; k <= PTQ_ACT_SILU; k++) {
        test_act((ptq_act_kind)k, 0);
        test_act((ptq_act_kind)k, 1);
    }
    printf("rope\n");
    test_rope(PTQ_ROPE_INTERLEAVED);
    test_rope(PTQ_ROPE_HALF);
    printf("attention\n");
    test_attention(6, 6, 0, 4, 2, 8, 1, 1);  /* causal, GQA, q_pos0 = 0, fused qkv layout */
    test_attention(4, 7, 3, 4, 2, 8, 1, 0);  /* causal, GQA, queries after 3 cached keys */
    test_attention(5, 5, 0, 3, 3, 6, 0, 0);  /* full (ViT), multi-head */
    test_attention(5, 5, 0, 4, 1, 4, 1, 1);  /* causal, multi-query */
    test_attention(3, 8, 0, 2, 2, 4, 0, 0);  /* full, more keys than queries */
    printf("losses\n");
    test_cross_entropy();
    test_outlier(200, 0.5f, 1);
    test_outlier(200, 2.0f, 1);
    test_outlier(300, 3.0f, 1);
    test_outlier(100000, 2.5f, 0); /* OpenMP path, directional */
    test_outlier_edges();
    printf("embeddings\n");
    test_token_embedding();
    test_vit_embedding();
    printf("determinism (layernorm, outlier loss, cross-entropy, attention with 1 vs 3 threads)\n");
    test_determinism();
    return tu_done("test_backward");
}
