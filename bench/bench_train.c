/* Training throughput of ptq's C trainer (src/train): full steps (forward with caches, backward, AdamW with
 * clipping) of the QuantTune loss (cross-entropy + 0.01 x the scale-invariant outlier loss on every linear
 * input) on the sample models, with synthetic inputs of the real shapes (throughput does not depend on them).
 *
 *   bench_train [--vit DIR] [--lm MODEL.bin] [--steps N] [--vit-batch B] [--lm-batch B] [--ctx T] [--json]
 *
 * Defaults: $PTQ_DATA (or ../shared/data)/vit-mnist, .../stories260K/stories260K.bin, 20 timed steps after
 * 3 warm-up steps, ViT batch 64, LM batch 8 x 256 tokens. Prints images/s and tokens/s, and the split of a step
 * into forward, backward and optimizer. bench/train_vs_torch.sh runs this and the same training in PyTorch
 * (bench/train_torch.py) in one go and prints the ratios.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "models/model.h"
#include "ptq.h"
#include "train/train.h"

#ifndef PTQ_DATA_DEFAULT
#define PTQ_DATA_DEFAULT "data"
#endif

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    double per_s, step_ms, fwd_ms, bwd_ms, opt_ms, loss0, loss1;
} result;

/* steps over one fixed batch: the timed numbers are the mean over `steps` after `warm` untimed steps */
static int run(ptq_model *m, const ptq_batch *b, int warm, int steps, double samples, result *r) {
    ptq_trainable t;
    ptq_error err;
    if (ptq_trainable_init(m, &t, &err) != PTQ_OK) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    ptq_train_ws *ws = ptq_train_ws_new();
    ptq_outlier_cfg oc = {0.01f, 3.0f, PTQ_MON_ALL, 1};
    ptq_adamw_params ap = ptq_adamw_default_params();
    ap.lr = 1e-4;
    ap.total_steps = warm + steps;
    double tf = 0, tb = 0, to = 0, t0 = 0;
    memset(r, 0, sizeof *r);
    for (int s = 0; s < warm + steps; s++) {
        if (s == warm) t0 = now_s();
        ptq_loss_parts lp;
        double a = now_s();
        ptq_trainable_zero_grad(&t);
        /* forward alone (timed separately), then the full forward + backward of the step */
        if (s >= warm && ptq_train_forward_backward(&t, ws, b, &oc, 0, &lp, &err) != PTQ_OK) break;
        double f = now_s();
        if (ptq_train_forward_backward(&t, ws, b, &oc, 1, &lp, &err) != PTQ_OK) break;
        double g = now_s();
        ptq_adamw_step(&t, &ap, s, NULL);
        double h = now_s();
        if (s == 0) r->loss0 = lp.loss;
        r->loss1 = lp.loss;
        if (s >= warm) {
            tf += f - a;
            tb += g - f;
            to += h - g;
            t0 += f - a; /* the extra forward is not part of a training step */
        }
    }
    double total = now_s() - t0;
    r->step_ms = 1e3 * total / steps;
    r->per_s = samples * steps / total;
    r->fwd_ms = 1e3 * tf / steps;
    r->bwd_ms = 1e3 * (tb - tf) / steps; /* full pass minus its forward */
    r->opt_ms = 1e3 * to / steps;
    ptq_train_ws_free(ws);
    ptq_trainable_free(&t);
    return 0;
}

int main(int argc, char **argv) {
    const char *data = getenv("PTQ_DATA") ? getenv("PTQ_DATA") : PTQ_DATA_DEFAULT;
    char vit[4096], lm[4096];
    snprintf(vit, sizeof vit, "%s/vit-mnist", data);
    snprintf(lm, sizeof lm, "%s/stories260K/stories260K.bin", data);
    int steps = 20, vb = 64, lb = 8, ctx = 256, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (i + 1 < argc && !strcmp(argv[i], "--vit")) snprintf(vit, sizeof vit, "%s", argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--lm")) snprintf(lm, sizeof lm, "%s", argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--vit-batch")) vb = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--lm-batch")) lb = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--ctx")) ctx = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_train [--vit DIR] [--lm MODEL.bin] [--steps N] [--vit-batch B] [--lm-batch B] "
                            "[--ctx T] [--json]\n");
            return 2;
        }
    }
    if (steps < 1 || vb < 1 || lb < 1 || ctx < 1) return 2;
    int threads = omp_get_max_threads();
    ptq_error err;
    ptq_model *mv = NULL, *ml = NULL;
    result rv, rl;
    int have_v = 0, have_l = 0;
    uint64_t rng = 12345;
    if (ptq_model_load(vit, &mv, &err) == PTQ_OK) {
        const ptq_config *c = &mv->cfg;
        size_t n = (size_t)vb * c->in_chans * c->img_size * c->img_size;
        float *pix = malloc(n * sizeof(float));
        int *lab = malloc((size_t)vb * sizeof(int));
        for (size_t i = 0; i < n; i++) pix[i] = (float)((double)(ptq_splitmix64(&rng) >> 11) / 9007199254740992.0 * 3 - 0.5);
        for (int i = 0; i < vb; i++) lab[i] = (int)(ptq_splitmix64(&rng) % (uint64_t)c->vocab_size);
        ptq_batch b = {vb, c->max_seq, NULL, lab, pix};
        fprintf(stderr, "bench_train: %s, batch %d, %d steps ...\n", vit, vb, steps);
        have_v = run(mv, &b, 3, steps, vb, &rv) == 0;
        free(pix);
        free(lab);
    } else {
        fprintf(stderr, "bench_train: skipping the ViT: %s\n", err.msg);
    }
    if (ptq_model_load(lm, &ml, &err) == PTQ_OK) {
        const ptq_config *c = &ml->cfg;
        if (ctx > c->max_seq) ctx = c->max_seq;
        size_t n = (size_t)lb * ctx;
        int *tok = malloc(n * sizeof(int)), *tgt = malloc(n * sizeof(int));
        for (size_t i = 0; i < n; i++) tok[i] = (int)(ptq_splitmix64(&rng) % (uint64_t)c->vocab_size);
        for (size_t i = 0; i < n; i++) tgt[i] = (int)(ptq_splitmix64(&rng) % (uint64_t)c->vocab_size);
        ptq_batch b = {lb, ctx, tok, tgt, NULL};
        fprintf(stderr, "bench_train: %s, batch %d x %d tokens, %d steps ...\n", lm, lb, ctx, steps);
        have_l = run(ml, &b, 3, steps, (double)n, &rl) == 0;
        free(tok);
        free(tgt);
    } else {
        fprintf(stderr, "bench_train: skipping the language model: %s\n", err.msg);
    }
    if (json) {
        printf("{\"threads\": %d", threads);
        if (have_v)
            printf(", \"vit\": {\"model\": \"%s\", \"batch\": %d, \"images_per_s\": %.2f, \"step_ms\": %.3f, \"forward_ms\": "
                   "%.3f, \"backward_ms\": %.3f, \"optimizer_ms\": %.3f}",
                   vit, vb, rv.per_s, rv.step_ms, rv.fwd_ms, rv.bwd_ms, rv.opt_ms);
        if (have_l)
            printf(", \"lm\": {\"model\": \"%s\", \"batch\": %d, \"ctx\": %d, \"tokens_per_s\": %.2f, \"step_ms\": %.3f, "
                   "\"forward_ms\": %.3f, \"backward_ms\": %.3f, \"optimizer_ms\": %.3f}",
                   lm, lb, ctx, rl.per_s, rl.step_ms, rl.fwd_ms, rl.bwd_ms, rl.opt_ms);
        printf("}\n");
    } else {
        printf("threads %d\n", threads);
        if (have_v)
            printf("vit-mnist   batch %3d            %9.1f images/s  step %7.2f ms (forward %.2f, backward %.2f, AdamW %.2f)\n",
                   vb, rv.per_s, rv.step_ms, rv.fwd_ms, rv.bwd_ms, rv.opt_ms);
        if (have_l)
            printf("stories260K batch %3d x %4d tokens %9.1f tokens/s  step %7.2f ms (forward %.2f, backward %.2f, AdamW %.2f)\n",
                   lb, ctx, rl.per_s, rl.step_ms, rl.fwd_ms, rl.bwd_ms, rl.opt_ms);
    }
    ptq_model_free(mv);
    ptq_model_free(ml);
    return have_v || have_l ? 0 : 1;
}
