/* The QuantTune loop: mini-batches in seeded random order, loss = task cross-entropy + lambda * outlier loss,
 * AdamW with warm-up + cosine schedule and clipping, a per-step callback, and the dynamic-range report
 * (max|A|/sigma and kurtosis of every linear layer's input) before and after. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/train.h"

ptq_status ptq_monitor_parse(const char *s, unsigned *mask, ptq_error *err) {
    *mask = 0;
    if (!s || !*s) return ptq_fail(err, PTQ_ERR_ARG, "empty list of monitored activations");
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
#define IS(w) (n == strlen(w) && strncmp(p, w, n) == 0)
        if (IS("all")) *mask |= PTQ_MON_ALL;
        else if (IS("none")) *mask |= 0;
        else if (IS("qkv")) *mask |= PTQ_MON_QKV;
        else if (IS("proj") || IS("o")) *mask |= PTQ_MON_PROJ;
        else if (IS("fc1") || IS("up")) *mask |= PTQ_MON_FC1;
        else if (IS("fc2") || IS("down")) *mask |= PTQ_MON_FC2;
        else
            return ptq_fail(err, PTQ_ERR_ARG,
                            "unknown monitored activation '%.*s' in '%s' (expected all, none, or a comma list of qkv, "
                            "proj, fc1, fc2)",
                            (int)n, p, s);
#undef IS
        p += n;
        if (*p == ',') p++;
    }
    return PTQ_OK;
}

const char *ptq_monitor_name(unsigned bit) {
    switch (bit) {
    case PTQ_MON_QKV: return "qkv";
    case PTQ_MON_PROJ: return "proj";
    case PTQ_MON_FC1: return "fc1";
    case PTQ_MON_FC2: return "fc2";
    }
    return "?";
}

ptq_tune_params ptq_tune_default_params(void) {
    ptq_tune_params p;
    memset(&p, 0, sizeof p);
    p.opt = ptq_adamw_default_params();
    p.opt.warmup = -1;
    p.outlier.lambda = 0.0f;
    p.outlier.tau = 3.0f;
    p.outlier.monitor = PTQ_MON_ALL;
    p.outlier.relative = 1;
    p.batch = 32;
    p.steps = 0;
    p.epochs = 1.0;
    p.seed = 1;
    p.report_n = 256;
    return p;
}

void ptq_tune_result_free(ptq_tune_result *r) {
    free(r->before);
    free(r->after);
    memset(r, 0, sizeof *r);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Per-layer input statistics on the first n samples of the training data. */
static ptq_status range_report(ptq_model *m, const ptq_tune_data *d, int n, ptq_act_stats **out, int *n_out,
                               ptq_error *err) {
    ptq_calib_data cd;
    memset(&cd, 0, sizeof cd);
    ptq_image_set view;
    int *toks = NULL;
    if (d->images) {
        view = *d->images;
        if (n < view.count) view.count = n;
        cd.images = &view;
    } else {
        const ptq_text_data *t = d->text;
        int64_t nw = ptq_text_windows(t);
        if (n > nw) n = (int)nw;
        toks = malloc((size_t)n * t->ctx * sizeof(int));
        if (!toks) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate report windows");
        for (int i = 0; i < n; i++) memcpy(toks + (size_t)i * t->ctx, t->tokens + (size_t)i * t->ctx, (size_t)t->ctx * sizeof(int));
        cd.tokens = toks;
        cd.n_seqs = n;
        cd.seq_len = t->ctx;
    }
    ptq_status s = ptq_activation_stats(m, &cd, NULL, out, n_out, err);
    free(toks);
    return s;
}

ptq_status ptq_tune(ptq_model *m, const ptq_tune_data *d, const ptq_tune_params *p, ptq_tune_result *r,
                    ptq_error *err) {
    memset(r, 0, sizeof *r);
    const ptq_config *c = &m->cfg;
    int vit = c->arch == PTQ_ARCH_VIT;
    int64_t n_items;
    int T;
    if (vit) {
        const ptq_image_set *s = d->images;
        if (!s || s->count < 1) return ptq_fail(err, PTQ_ERR_ARG, "%s: a ViT is tuned on images; none given", m->path);
        if (s->channels != c->in_chans || s->height != c->img_size || s->width != c->img_size)
            return ptq_fail(err, PTQ_ERR_ARG, "images are %dx%dx%d; the model takes %dx%dx%d", s->channels, s->height,
                            s->width, c->in_chans, c->img_size, c->img_size);
        for (int i = 0; i < s->count; i++) /* an unlabeled set (labels -1) cannot train a classifier */
            if (!s->labels || s->labels[i] < 0 || s->labels[i] >= c->vocab_size)
                return ptq_fail(err, PTQ_ERR_ARG, "%s: training image %d has no label in [0, %d)", m->path, i,
                                c->vocab_size);
        n_items = s->count;
        T = c->max_seq;
    } else {
        if (!d->text) return ptq_fail(err, PTQ_ERR_ARG, "%s: a language model is tuned on text; none given", m->path);
        T = d->text->ctx;
        if (T < 1 || T > c->max_seq)
            return ptq_fail(err, PTQ_ERR_ARG, "context %d must be in [1, %d] (the model's context)", T, c->max_seq);
        n_items = ptq_text_windows(d->text);
        if (n_items < 1)
            return ptq_fail(err, PTQ_ERR_ARG, "the text has %lld tokens; training needs at least ctx + 1 = %d (use a smaller --ctx)",
                            (long long)d->text->n, T + 1);
        if (n_items > (1 << 30)) n_items = 1 << 30;
    }
    if (p->batch < 1) return ptq_fail(err, PTQ_ERR_ARG, "batch size %d must be at least 1", p->batch);
    if (!(p->outlier.lambda >= 0) || !(p->outlier.tau >= 0))
        return ptq_fail(err, PTQ_ERR_ARG, "outlier lambda %g and tau %g must be non-negative", (double)p->outlier.lambda,
                        (double)p->outlier.tau);
    if (!(p->opt.lr > 0)) return ptq_fail(err, PTQ_ERR_ARG, "learning rate %g must be positive", p->opt.lr);
    int batch = p->batch < n_items ? p->batch : (int)n_items;
    int64_t per_epoch = (n_items + batch - 1) / batch;
    int64_t total = p->steps > 0 ? p->steps : (int64_t)ceil(p->epochs * (double)per_epoch - 1e-9);
    if (total < 1) return ptq_fail(err, PTQ_ERR_ARG, "nothing to do: %g epochs of %lld steps", p->epochs, (long long)per_epoch);
    if (total > (1 << 30)) return ptq_fail(err, PTQ_ERR_ARG, "%lld steps is too many", (long long)total);
    ptq_adamw_params opt = p->opt;
    opt.total_steps = (int)total;
    if (opt.warmup < 0) opt.warmup = (int)(total / 20); /* default: 5% of the steps */

    ptq_trainable t;
    PTQ_TRY(ptq_trainable_init(m, &t, err));
    ptq_train_ws *ws = ptq_train_ws_new();
    int *idx = malloc((size_t)n_items * sizeof(int));
    int *labels = NULL, *inp = NULL, *tgt = NULL;
    float *pix = NULL;
    size_t img_sz = vit ? (size_t)c->in_chans * c->img_size * c->img_size : 0;
    if (vit) {
        pix = ptq_alloc((size_t)batch * img_sz, sizeof(float), "training batch", err);
        labels = malloc((size_t)batch * sizeof(int));
    } else {
        inp = malloc((size_t)batch * T * sizeof(int));
        tgt = malloc((size_t)batch * T * sizeof(int));
    }
    ptq_status st = PTQ_OK;
    if (!ws || !idx || (vit ? (!pix || !labels) : (!inp || !tgt)))
        st = ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate the training batch");
    if (st == PTQ_OK && p->report_n > 0) st = range_report(m, d, p->report_n, &r->before, &r->n_stats, err);

    uint64_t rng = p->seed;
    double t0 = now_s(), samples = 0;
    for (int64_t s = 0; st == PTQ_OK && s < total; s++) {
        int64_t pos = s % per_epoch;
        if (pos == 0) ptq_shuffle(idx, (int)n_items, &rng);
        int count = (int)(n_items - pos * batch < batch ? n_items - pos * batch : batch);
        const int *bi = idx + pos * batch;
        ptq_batch b;
        memset(&b, 0, sizeof b);
        b.n_seq = count;
        if (vit) {
            ptq_image_batch(d->images, bi, count, pix, labels);
            b.pixels = pix;
            b.targets = labels;
            b.seq_len = T;
        } else {
            ptq_text_batch(d->text, bi, count, inp, tgt);
            b.tokens = inp;
            b.targets = tgt;
            b.seq_len = T;
        }
        ptq_trainable_zero_grad(&t);
        ptq_loss_parts lp;
        st = ptq_train_forward_backward(&t, ws, &b, &p->outlier, 1, &lp, err);
        if (st != PTQ_OK) break;
        if (!isfinite(lp.loss)) {
            st = ptq_fail(err, PTQ_ERR_NUMERIC, "the loss became %g at step %lld (try a smaller --lr or --clip)", lp.loss,
                          (long long)s + 1);
            break;
        }
        double gn;
        double lr = ptq_adamw_step(&t, &opt, (int)s, &gn);
        if (!isfinite(gn)) {
            st = ptq_fail(err, PTQ_ERR_NUMERIC, "the gradient norm became %g at step %lld", gn, (long long)s + 1);
            break;
        }
        samples += vit ? count : (double)count * T;
        double el = now_s() - t0;
        if (s == 0) r->first_loss = lp.loss;
        r->last_loss = lp.loss;
        r->steps = (int)s + 1;
        ptq_tune_step info = {(int)s + 1, (int)total, (int)(s / per_epoch), lr, lp.loss, lp.ce, lp.outlier, gn,
                              vit ? 100.0 * lp.correct / (count > 0 ? count : 1) : -1.0, vit ? count : count * T, el,
                              el / (double)(s + 1) * (double)(total - s - 1)};
        if (p->on_step && p->on_step(p->user, &info)) {
            st = ptq_fail(err, PTQ_ERR_CALLBACK, "training stopped by the callback at step %lld", (long long)s + 1);
            break;
        }
        ptq_progress(&p->cb, "tune", s + 1, total);
    }
    r->seconds = now_s() - t0;
    r->samples_per_s = r->seconds > 0 ? samples / r->seconds : 0;
    if (st == PTQ_OK && p->report_n > 0) {
        int n2 = 0;
        st = range_report(m, d, p->report_n, &r->after, &n2, err);
        if (st == PTQ_OK && n2 != r->n_stats) st = ptq_fail(err, PTQ_ERR_ARG, "report: layer count changed");
    }
    ptq_free(pix);
    free(labels);
    free(inp);
    free(tgt);
    free(idx);
    ptq_train_ws_free(ws);
    ptq_trainable_free(&t);
    if (st != PTQ_OK) ptq_tune_result_free(r);
    return st;
}
