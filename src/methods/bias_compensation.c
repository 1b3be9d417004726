/* Bias Compensation: accumulators and the fitting passes over one block (see bias_compensation.h).
 *
 * Parallel mode (the reference code): every module sees the float model's input; the bias corrects the
 * module's own error. Sequential mode: the quantized module sees the quantized model's input (earlier
 * modules already compensated), so its bias also absorbs the error arriving from before. The target is
 * always the float model's output on float inputs. */
#include "methods/bias_compensation.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "quant/dist.h"

ptq_status ptq_bc_acc_init(ptq_bc_acc *a, int width, int len, ptq_error *err) {
    memset(a, 0, sizeof *a);
    a->width = width;
    a->len = len;
    size_t rows = len > 0 ? (size_t)len : 1;
    a->sum = ptq_alloc(rows * width, sizeof(double), "BC sums", err);
    a->sum_lo = a->sum ? ptq_alloc(rows * width, sizeof(double), "BC sums", err) : NULL;
    a->sumsq = a->sum_lo ? ptq_alloc(rows * width, sizeof(double), "BC sums", err) : NULL;
    a->count = a->sumsq ? ptq_alloc(rows, sizeof(int64_t), "BC counts", err) : NULL;
    if (!a->count) {
        ptq_bc_acc_free(a);
        return PTQ_ERR_NOMEM;
    }
    return PTQ_OK;
}

void ptq_bc_acc_free(ptq_bc_acc *a) {
    ptq_free(a->sum);
    ptq_free(a->sum_lo);
    ptq_free(a->sumsq);
    ptq_free(a->count);
    memset(a, 0, sizeof *a);
}

/* *s + *lo += e (Neumaier's compensated summation: *lo collects what rounding *s drops). */
static inline void two_sum(double *s, double *lo, double e) {
    double t = *s + e;
    *lo += fabs(*s) >= fabs(e) ? (*s - t) + e : (e - t) + *s;
    *s = t;
}

ptq_status ptq_bc_acc_add(ptq_bc_acc *a, const float *O, const float *Ohat, int rows, int seq_len, ptq_error *err) {
    if (a->len > 0 && seq_len > a->len)
        return ptq_fail(err, PTQ_ERR_ARG, "position-specific BC spans %d positions, data has %d", a->len, seq_len);
    for (int r = 0; r < rows; r++) {
        size_t slot = a->len > 0 ? (size_t)(r % seq_len) : 0;
        double *s = a->sum + slot * a->width, *lo = a->sum_lo + slot * a->width, *s2 = a->sumsq + slot * a->width;
        const float *o = O + (size_t)r * a->width, *q = Ohat + (size_t)r * a->width;
        double sig = 0;
        for (int c = 0; c < a->width; c++) {
            double e = (double)o[c] - (double)q[c];
            two_sum(&s[c], &lo[c], e);
            s2[c] += e * e;
            sig += (double)o[c] * o[c];
        }
        a->signal += sig;
        a->count[slot]++;
    }
    return PTQ_OK;
}

ptq_status ptq_bc_acc_reduce(ptq_bc_acc *a, const ptq_dist *dist, ptq_error *err) {
    if (!ptq_dist_on(dist) || !a->sum) return PTQ_OK;
    size_t slots = a->len > 0 ? (size_t)a->len : 1, n = slots * a->width;
    /* the compensated sums: every process's (sum, sum_lo) gathered and added in rank order, compensated */
    double *mine = ptq_alloc(2 * n, sizeof(double), "BC sums", err);
    double *all = mine ? ptq_alloc(2 * n * (size_t)dist->size, sizeof(double), "BC sums", err) : NULL;
    /* squares, counts (exact in double below 2^53 rows) and the signal: only the report reads them */
    double *buf = all ? ptq_alloc(n + slots + 1, sizeof(double), "BC sums", err) : NULL;
    ptq_status st = buf ? PTQ_OK : PTQ_ERR_NOMEM;
    if (st == PTQ_OK) {
        memcpy(mine, a->sum, n * sizeof *mine);
        memcpy(mine + n, a->sum_lo, n * sizeof *mine);
        st = ptq_dist_gather_doubles(dist, mine, (int)(2 * n), all, (int)(2 * n * dist->size), "BC sums", err);
    }
    if (st == PTQ_OK) {
        for (size_t i = 0; i < n; i++) {
            double s = 0, lo = 0;
            for (int r = 0; r < dist->size; r++) {
                two_sum(&s, &lo, all[2 * n * r + i]);
                two_sum(&s, &lo, all[2 * n * r + n + i]);
            }
            a->sum[i] = s, a->sum_lo[i] = lo;
        }
        memcpy(buf, a->sumsq, n * sizeof *buf);
        for (size_t i = 0; i < slots; i++) buf[n + i] = (double)a->count[i];
        buf[n + slots] = a->signal;
        st = ptq_dist_sum(dist, buf, n + slots + 1, "BC sums", err);
    }
    if (st == PTQ_OK) {
        memcpy(a->sumsq, buf, n * sizeof *buf);
        for (size_t i = 0; i < slots; i++) a->count[i] = (int64_t)buf[n + i];
        a->signal = buf[n + slots];
    }
    ptq_free(mine);
    ptq_free(all);
    ptq_free(buf);
    return st;
}

void ptq_bc_acc_bias(const ptq_bc_acc *a, float *b) {
    int slots = a->len > 0 ? a->len : 1;
    for (int p = 0; p < slots; p++)
        for (int c = 0; c < a->width; c++)
            b[(size_t)p * a->width + c] =
                a->count[p] ? (float)((a->sum[(size_t)p * a->width + c] + a->sum_lo[(size_t)p * a->width + c]) /
                                      (double)a->count[p])
                            : 0.0f;
}

void ptq_bc_acc_stats(const ptq_bc_acc *a, const float *b, double *mse, double *sqnr_db) {
    /* sum (e - b)^2 = sum e^2 - 2 b sum e + n b^2, per slot and channel */
    int slots = a->len > 0 ? a->len : 1;
    double err = 0;
    int64_t n = 0;
    for (int p = 0; p < slots; p++) {
        n += a->count[p];
        for (int c = 0; c < a->width; c++) {
            size_t i = (size_t)p * a->width + c;
            double bb = b ? b[i] : 0.0;
            err += a->sumsq[i] - 2 * bb * (a->sum[i] + a->sum_lo[i]) + (double)a->count[p] * bb * bb;
        }
    }
    if (err < 0) err = 0;
    double elems = (double)n * a->width;
    *mse = elems > 0 ? err / elems : 0;
    *sqnr_db = err > 0 ? 10.0 * log10(a->signal / err) : INFINITY;
}

/* ------------------------------------------------------------------ passes over one block */

typedef struct {
    ptq_lin_role role; /* the linear whose output is compared (sequential); -1: all (parallel) */
    float *capture;    /* sequential: the captured output [rows][out] */
    ptq_bc_acc *accs;  /* parallel: one accumulator per role */
    int seq_len;
    ptq_status status;
    ptq_error *err;
    int captured; /* sequential: the output was copied; the hook then stops the block there */
} pass_ctx;

/* Parallel: called inside the float block; compare each linear with its quantized self on the same input. */
static int parallel_hook(void *user, int layer, ptq_lin_role role, const ptq_linear *lin, const float *X,
                         const float *Y, int rows) {
    (void)layer;
    pass_ctx *p = user;
    if (!p->accs[role].sum) return 0;
    float *q = malloc((size_t)rows * lin->out * sizeof *q);
    if (!q) {
        p->status = ptq_fail(p->err, PTQ_ERR_NOMEM, "BC: out of memory");
        return 1;
    }
    ptq_linear_forward(lin, X, rows, q);
    p->status = ptq_bc_acc_add(&p->accs[role], Y, q, rows, p->seq_len, p->err);
    free(q);
    return p->status != PTQ_OK;
}

/* Sequential: copy out the output of one linear. */
static int capture_hook(void *user, int layer, ptq_lin_role role, const ptq_linear *lin, const float *X,
                        const float *Y, int rows) {
    (void)layer;
    (void)X;
    pass_ctx *p = user;
    if (role != p->role) return 0;
    memcpy(p->capture, Y, (size_t)rows * lin->out * sizeof(float));
    p->captured = 1;
    return 1; /* nothing after this linear matters to its bias: stop the block here */
}

/* A block run that capture_hook stopped after its linear succeeded. */
static ptq_status captured_ok(ptq_status st, const pass_ctx *p, ptq_error *err) {
    if (st != PTQ_ERR_CALLBACK || !p->captured) return st;
    if (err) err->status = PTQ_OK, err->msg[0] = 0;
    return PTQ_OK;
}

/* the batches of the other calibration passes, which a process split keeps whole (quant/dist.h) */
static int chunk_seqs(int T) { return ptq_calib_chunk(T); }

/* Run block l over chunk [i, i+k) of stream x into out (a copy), float or runtime path. */
static ptq_status run_chunk(const ptq_model *m, int l, const float *x, int i, int k, int T, int float_weights,
                            ptq_linear_hook hook, void *user, float *out, ptq_error *err) {
    size_t per = (size_t)T * m->cfg.dim;
    memcpy(out, x + (size_t)i * per, (size_t)k * per * sizeof(float));
    ptq_block_opts o = {hook, user, float_weights, NULL, NULL};
    return ptq_block_forward_ex(m, l, out, k, T, 0, NULL, &o, err);
}

/* Accumulate the error of every linear in `accs` (parallel mode) over a stream pair. */
static ptq_status parallel_pass(const ptq_model *m, int l, const ptq_bc_streams *s, ptq_bc_acc *accs,
                                ptq_error *err) {
    int T = s->seq_len, chunk = chunk_seqs(T);
    float *buf = ptq_alloc((size_t)chunk * T * m->cfg.dim, sizeof(float), "BC chunk", err);
    if (!buf) return PTQ_ERR_NOMEM;
    pass_ctx p = {(ptq_lin_role)-1, NULL, accs, T, PTQ_OK, err, 0};
    ptq_status st = PTQ_OK;
    for (int i = 0; st == PTQ_OK && i < s->n_seq; i += chunk) {
        int k = s->n_seq - i < chunk ? s->n_seq - i : chunk;
        st = run_chunk(m, l, s->xf, i, k, T, 1, parallel_hook, &p, buf, err);
        if (p.status != PTQ_OK) st = p.status;
    }
    ptq_free(buf);
    return st;
}

/* Sequential mode: the error of one linear, float model on xf against the quantized model on xq. */
static ptq_status sequential_pass(const ptq_model *m, int l, ptq_lin_role role, const ptq_bc_streams *s,
                                  ptq_bc_acc *acc, ptq_error *err) {
    int T = s->seq_len, chunk = chunk_seqs(T), out = m->blocks[l].lin[role].out;
    size_t rows = (size_t)chunk * T;
    float *buf = ptq_alloc(rows * m->cfg.dim, sizeof(float), "BC chunk", err);
    float *of = buf ? ptq_alloc(rows * out, sizeof(float), "BC outputs", err) : NULL;
    float *oq = of ? ptq_alloc(rows * out, sizeof(float), "BC outputs", err) : NULL;
    ptq_status st = oq ? PTQ_OK : PTQ_ERR_NOMEM;
    for (int i = 0; st == PTQ_OK && i < s->n_seq; i += chunk) {
        int k = s->n_seq - i < chunk ? s->n_seq - i : chunk;
        pass_ctx pf = {role, of, NULL, T, PTQ_OK, err, 0}, pq = {role, oq, NULL, T, PTQ_OK, err, 0};
        st = captured_ok(run_chunk(m, l, s->xf, i, k, T, 1, capture_hook, &pf, buf, err), &pf, err);
        if (st == PTQ_OK) st = captured_ok(run_chunk(m, l, s->xq, i, k, T, 0, capture_hook, &pq, buf, err), &pq, err);
        if (st == PTQ_OK) st = ptq_bc_acc_add(acc, of, oq, k * T, T, err);
    }
    ptq_free(buf);
    ptq_free(of);
    ptq_free(oq);
    return st;
}

/* The block output: float block on xf against the quantized block on xin. */
static ptq_status block_pass(const ptq_model *m, int l, const ptq_bc_streams *s, const float *xin, ptq_bc_acc *acc,
                             ptq_error *err) {
    int T = s->seq_len, chunk = chunk_seqs(T);
    size_t n = (size_t)chunk * T * m->cfg.dim;
    float *of = ptq_alloc(n, sizeof(float), "BC chunk", err);
    float *oq = of ? ptq_alloc(n, sizeof(float), "BC chunk", err) : NULL;
    ptq_status st = oq ? PTQ_OK : PTQ_ERR_NOMEM;
    for (int i = 0; st == PTQ_OK && i < s->n_seq; i += chunk) {
        int k = s->n_seq - i < chunk ? s->n_seq - i : chunk;
        st = run_chunk(m, l, s->xf, i, k, T, 1, NULL, NULL, of, err);
        if (st == PTQ_OK) st = run_chunk(m, l, xin, i, k, T, 0, NULL, NULL, oq, err);
        if (st == PTQ_OK) st = ptq_bc_acc_add(acc, of, oq, k * T, T, err);
    }
    ptq_free(of);
    ptq_free(oq);
    return st;
}

/* ------------------------------------------------------------------ fitting and reporting */

static void report_one(ptq_bc_report_fn fn, void *user, const char *name, int layer, const ptq_bc_acc *cal,
                       const ptq_bc_acc *hold, const float *b) {
    if (!fn) return;
    ptq_bc_report r;
    memset(&r, 0, sizeof r);
    r.name = name;
    r.layer = layer;
    ptq_bc_acc_stats(cal, NULL, &r.mse_before, &r.sqnr_before);
    ptq_bc_acc_stats(cal, b, &r.mse_after, &r.sqnr_after);
    if (hold && hold->sum) {
        r.has_holdout = 1;
        ptq_bc_acc_stats(hold, NULL, &r.hold_mse_before, &r.hold_sqnr_before);
        ptq_bc_acc_stats(hold, b, &r.hold_mse_after, &r.hold_sqnr_after);
    }
    fn(user, &r);
}

static int bc_len(const ptq_bc_opts *o, const ptq_bc_streams *cal) {
    return o->shape == PTQ_BC_POSITION ? cal->seq_len : 0;
}

static ptq_status install(ptq_model *m, const ptq_bc_acc *acc, float **bc, float **bc_pos, int *len,
                          const char *what, ptq_error *err) {
    size_t n = (size_t)(acc->len > 0 ? acc->len : 1) * acc->width;
    float *b = ptq_model_floats(m, n, what, err);
    if (!b) return PTQ_ERR_NOMEM;
    ptq_bc_acc_bias(acc, b);
    if (acc->len > 0) {
        *bc_pos = b;
        *len = acc->len;
    } else {
        *bc = b;
    }
    return PTQ_OK;
}

static ptq_status fit_linears(ptq_model *m, int l, const ptq_bc_opts *o, const ptq_bc_streams *cal,
                              const ptq_bc_streams *hold, ptq_bc_report_fn report, void *user, ptq_error *err) {
    ptq_block *blk = &m->blocks[l];
    int len = bc_len(o, cal);
    ptq_bc_acc acc[PTQ_LIN_COUNT], hacc[PTQ_LIN_COUNT];
    memset(acc, 0, sizeof acc);
    memset(hacc, 0, sizeof hacc);
    ptq_status st = PTQ_OK;
    for (int r = 0; st == PTQ_OK && r < PTQ_LIN_COUNT; r++) {
        if (!blk->lin[r].q) continue;
        st = ptq_bc_acc_init(&acc[r], blk->lin[r].out, len, err);
        if (st == PTQ_OK && hold) st = ptq_bc_acc_init(&hacc[r], blk->lin[r].out, len, err);
    }
    if (st == PTQ_OK && o->mode == PTQ_BC_PARALLEL) {
        st = parallel_pass(m, l, cal, acc, err);
        if (st == PTQ_OK && hold) st = parallel_pass(m, l, hold, hacc, err);
        for (int r = 0; st == PTQ_OK && r < PTQ_LIN_COUNT; r++) {
            st = ptq_bc_acc_reduce(&acc[r], o->dist, err);
            if (st == PTQ_OK) st = ptq_bc_acc_reduce(&hacc[r], o->dist, err);
        }
        for (int r = 0; st == PTQ_OK && r < PTQ_LIN_COUNT; r++) {
            ptq_linear *lin = &blk->lin[r];
            if (!acc[r].sum) continue;
            st = install(m, &acc[r], &lin->bc, &lin->bc_pos, &lin->bc_len, lin->name, err);
            if (st == PTQ_OK)
                report_one(report, user, lin->name, l, &acc[r], hold ? &hacc[r] : NULL, lin->bc ? lin->bc : lin->bc_pos);
        }
    } else {
        /* in forward order, each linear sees the earlier ones already compensated */
        for (int r = 0; st == PTQ_OK && r < PTQ_LIN_COUNT; r++) {
            ptq_linear *lin = &blk->lin[r];
            if (!acc[r].sum) continue;
            st = sequential_pass(m, l, (ptq_lin_role)r, cal, &acc[r], err);
            if (st == PTQ_OK && hold) st = sequential_pass(m, l, (ptq_lin_role)r, hold, &hacc[r], err);
            if (st == PTQ_OK) st = ptq_bc_acc_reduce(&acc[r], o->dist, err);
            if (st == PTQ_OK) st = ptq_bc_acc_reduce(&hacc[r], o->dist, err);
            if (st == PTQ_OK) st = install(m, &acc[r], &lin->bc, &lin->bc_pos, &lin->bc_len, lin->name, err);
            if (st == PTQ_OK)
                report_one(report, user, lin->name, l, &acc[r], hold ? &hacc[r] : NULL, lin->bc ? lin->bc : lin->bc_pos);
        }
    }
    for (int r = 0; r < PTQ_LIN_COUNT; r++) {
        ptq_bc_acc_free(&acc[r]);
        ptq_bc_acc_free(&hacc[r]);
    }
    return st;
}

ptq_status ptq_bc_fit_block(ptq_model *m, int layer, const ptq_bc_opts *o, const ptq_bc_streams *cal,
                            const ptq_bc_streams *hold, ptq_bc_report_fn report, void *user, ptq_error *err) {
    if (o->scope & PTQ_BC_LINEAR) PTQ_TRY(fit_linears(m, layer, o, cal, hold, report, user, err));
    if (!(o->scope & PTQ_BC_BLOCK)) return PTQ_OK;
    ptq_block *blk = &m->blocks[layer];
    int len = bc_len(o, cal);
    ptq_bc_acc acc, hacc;
    memset(&hacc, 0, sizeof hacc);
    PTQ_TRY(ptq_bc_acc_init(&acc, m->cfg.dim, len, err));
    ptq_status st = hold ? ptq_bc_acc_init(&hacc, m->cfg.dim, len, err) : PTQ_OK;
    int par = o->mode == PTQ_BC_PARALLEL;
    if (st == PTQ_OK) st = block_pass(m, layer, cal, par ? cal->xf : cal->xq, &acc, err);
    if (st == PTQ_OK && hold) st = block_pass(m, layer, hold, par ? hold->xf : hold->xq, &hacc, err);
    if (st == PTQ_OK) st = ptq_bc_acc_reduce(&acc, o->dist, err);
    if (st == PTQ_OK) st = ptq_bc_acc_reduce(&hacc, o->dist, err);
    if (st == PTQ_OK) st = install(m, &acc, &blk->bc, &blk->bc_pos, &blk->bc_len, "block BC", err);
    if (st == PTQ_OK) {
        char name[32];
        snprintf(name, sizeof name, "block %d", layer);
        report_one(report, user, name, layer, &acc, hold ? &hacc : NULL, blk->bc ? blk->bc : blk->bc_pos);
    }
    ptq_bc_acc_free(&acc);
    ptq_bc_acc_free(&hacc);
    return st;
}

/* Logits of a whole stream (float or runtime head) accumulated against each other. */
static ptq_status logits_pass(const ptq_model *m, const ptq_bc_streams *s, ptq_bc_acc *acc, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    int vit = c->arch == PTQ_ARCH_VIT;
    int per_seq_rows = vit ? 1 : s->seq_len;          /* head rows per sequence */
    size_t stride = (size_t)s->seq_len * c->dim;       /* stream floats per sequence */
    int V = c->vocab_size;
    float *lf = ptq_alloc((size_t)per_seq_rows * V, sizeof(float), "BC logits", err);
    float *lq = lf ? ptq_alloc((size_t)per_seq_rows * V, sizeof(float), "BC logits", err) : NULL;
    ptq_status st = lq ? PTQ_OK : PTQ_ERR_NOMEM;
    for (int i = 0; st == PTQ_OK && i < s->n_seq; i++) {
        st = ptq_head_forward_ex(m, s->xf + i * stride, per_seq_rows, lf, 1, err);
        if (st == PTQ_OK) st = ptq_head_forward_ex(m, s->xq + i * stride, per_seq_rows, lq, 0, err);
        if (st == PTQ_OK) st = ptq_bc_acc_add(acc, lf, lq, per_seq_rows, per_seq_rows, err);
    }
    ptq_free(lf);
    ptq_free(lq);
    return st;
}

ptq_status ptq_bc_fit_logits(ptq_model *m, const ptq_bc_streams *cal, const ptq_bc_streams *hold,
                             const ptq_dist *dist, ptq_bc_report_fn report, void *user, ptq_error *err) {
    if (m->head.bc) return ptq_fail(err, PTQ_ERR_ARG, "the logits already have a BC bias");
    ptq_bc_acc acc, hacc;
    memset(&hacc, 0, sizeof hacc);
    PTQ_TRY(ptq_bc_acc_init(&acc, m->cfg.vocab_size, 0, err));
    ptq_status st = hold ? ptq_bc_acc_init(&hacc, m->cfg.vocab_size, 0, err) : PTQ_OK;
    if (st == PTQ_OK) st = logits_pass(m, cal, &acc, err);
    if (st == PTQ_OK && hold) st = logits_pass(m, hold, &hacc, err);
    if (st == PTQ_OK) st = ptq_bc_acc_reduce(&acc, dist, err);
    if (st == PTQ_OK) st = ptq_bc_acc_reduce(&hacc, dist, err);
    if (st == PTQ_OK) st = install(m, &acc, &m->head.bc, &m->head.bc_pos, &m->head.bc_len, "logits BC", err);
    if (st == PTQ_OK) report_one(report, user, "logits", -1, &acc, hold ? &hacc : NULL, m->head.bc);
    ptq_bc_acc_free(&acc);
    ptq_bc_acc_free(&hacc);
    return st;
}
