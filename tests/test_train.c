/* Training in C (src/train) against goldens from tests/ref/make_train_goldens.py, an independent PyTorch
 * (float64 autograd) implementation of each model, loss and optimizer:
 *  - the whole-model loss and EVERY parameter gradient of tiny ViT (timm names), LLaMA (Hugging Face names and
 *    llama2.c layout), GPT-2 (Conv1D, tied head, learned positions) and OPT (post-norm, project_in/out) models,
 *    with the outlier term (lambda > 0) in four of them, within 1e-4 of the largest gradient of each tensor;
 *  - a 10-step AdamW loss curve (warm-up + cosine, weight decay, clipping active at every step), its learning
 *    rates and gradient norms, and a few parameters after the last step;
 *  - saving: every tensor name, shape and dtype of the source file is kept, the saved model reloads through
 *    ptq_model_load and computes exactly what the tuned in-memory model computes (safetensors incl. GPT-2's
 *    transposed Conv1D weights, llama2.c .bin); random initialisation from a config uses the same loader;
 *  - ptq_tune end to end on tiny models: the loss falls, the outlier loss shrinks the measured dynamic range
 *    (max|A|/sigma) of the monitored activations, the step callback and the report are filled in.
 * Weights are regenerated from the manifests' PRNG seeds (no binary files are committed). */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "models/forward.h"
#include "models/model.h"
#include "train/train.h"
#include "testutil.h"

/* ---------------------------------------------------------------- PRNG of the golden script */

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static cJSON *read_json(const char *path) {
    char *text = NULL;
    size_t size = 0;
    ptq_error err;
    if (ptq_read_file(path, &text, &size, &err) != PTQ_OK) {
        fprintf(stderr, "cannot read %s: %s\n", path, err.msg);
        tu_failures++;
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) {
        fprintf(stderr, "%s: invalid JSON\n", path);
        tu_failures++;
    }
    return j;
}

/* ---------------------------------------------------------------- model sources */

typedef struct {
    char name[160];
    int ndim;
    int64_t shape[4];
    size_t n;
    float *data;
} tensor;

typedef struct {
    char name[32];
    tensor *t;
    int n;
    cJSON *config, *golden, *manifest;
} source;

static int src_load(source *s, const char *name) {
    char path[1024];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(path, sizeof path, "%s/tests/data/train/%s/manifest.json", PTQ_SOURCE_DIR, name);
    s->manifest = read_json(path);
    snprintf(path, sizeof path, "%s/tests/data/train/%s/golden.json", PTQ_SOURCE_DIR, name);
    s->golden = read_json(path);
    snprintf(path, sizeof path, "%s/tests/data/train/%s/config.json", PTQ_SOURCE_DIR, name);
    if (ptq_file_exists(path)) s->config = read_json(path);
    if (!s->manifest || !s->golden) return -1;
    const cJSON *list = cJSON_GetObjectItem(s->manifest, "tensors");
    s->n = cJSON_GetArraySize(list);
    s->t = calloc((size_t)s->n, sizeof(tensor));
    for (int i = 0; i < s->n; i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        tensor *t = &s->t[i];
        snprintf(t->name, sizeof t->name, "%s", cJSON_GetObjectItem(e, "name")->valuestring);
        const cJSON *shape = cJSON_GetObjectItem(e, "shape");
        t->ndim = cJSON_GetArraySize(shape);
        t->n = 1;
        for (int d = 0; d < t->ndim; d++) {
            t->shape[d] = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
            t->n *= (size_t)t->shape[d];
        }
        t->data = malloc(t->n * sizeof(float));
        tu_prng_fill(t->data, t->n, (uint64_t)num(e, "seed"), num(e, "scale"), num(e, "offset"), (int)num(e, "bits"));
    }
    return 0;
}

static void src_free(source *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].data);
    free(s->t);
    cJSON_Delete(s->config);
    cJSON_Delete(s->golden);
    cJSON_Delete(s->manifest);
}

/* Write the source as a model: a folder with model.safetensors + config.json, or a llama2.c .bin.
 * Returns the path to load (static buffer per call site is the caller's). */
static int src_write(const source *s, const char *path) {
    ptq_error err;
    const cJSON *l2c = cJSON_GetObjectItem(s->manifest, "llama2c");
    if (l2c) {
        int32_t h[7] = {(int32_t)num(l2c, "dim"), (int32_t)num(l2c, "hidden_dim"), (int32_t)num(l2c, "n_layers"),
                        (int32_t)num(l2c, "n_heads"), (int32_t)num(l2c, "n_kv_heads"), (int32_t)num(l2c, "vocab_size"),
                        (int32_t)num(l2c, "seq_len")};
        FILE *f = fopen(path, "wb");
        if (!f) return -1;
        fwrite(h, sizeof h, 1, f);
        for (int i = 0; i < s->n; i++) fwrite(s->t[i].data, sizeof(float), s->t[i].n, f);
        size_t rope = (size_t)h[6] * (h[0] / h[3]);
        for (size_t i = 0; i < rope; i++) {
            float v = (float)i * 0.25f; /* any bytes: the loader skips them, the saver must copy them */
            fwrite(&v, sizeof v, 1, f);
        }
        fclose(f);
        return 0;
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return -1;
    ptq_st_writer *w;
    if (ptq_st_writer_new(&w, &err) != PTQ_OK) return -1;
    int rc = 0;
    for (int i = 0; i < s->n && !rc; i++)
        if (ptq_st_writer_add_f32(w, s->t[i].name, PTQ_DT_F32, s->t[i].ndim, s->t[i].shape, s->t[i].data, &err) != PTQ_OK)
            rc = -1;
    char p[1200];
    snprintf(p, sizeof p, "%s/model.safetensors", path);
    if (!rc && ptq_st_writer_save(w, p, &err) != PTQ_OK) rc = -1;
    ptq_st_writer_free(w);
    snprintf(p, sizeof p, "%s/config.json", path);
    char *txt = cJSON_Print(s->config);
    if (!rc) rc = tu_write_file(p, txt, strlen(txt));
    free(txt);
    if (rc) fprintf(stderr, "cannot write %s: %s\n", path, err.msg);
    return rc;
}

static ptq_model *load(const char *path) {
    ptq_model *m = NULL;
    ptq_error err;
    if (ptq_model_load(path, &m, &err) != PTQ_OK) {
        fprintf(stderr, "load %s: %s\n", path, err.msg);
        tu_failures++;
        return NULL;
    }
    return m;
}

/* The golden's batch: tokens/targets, or PRNG images + labels. Buffers are malloc'ed into *bufs. */
typedef struct {
    ptq_batch b;
    int *tok, *tgt;
    float *pix;
} batch_buf;

static int *int_matrix(const cJSON *a, int *rows, int *cols) {
    *rows = cJSON_GetArraySize(a);
    *cols = cJSON_GetArraySize(cJSON_GetArrayItem(a, 0));
    int *v = malloc((size_t)*rows * *cols * sizeof(int));
    for (int r = 0; r < *rows; r++)
        for (int c = 0; c < *cols; c++) v[r * *cols + c] = cJSON_GetArrayItem(cJSON_GetArrayItem(a, r), c)->valueint;
    return v;
}

static void make_batch(const ptq_model *m, const cJSON *g, batch_buf *bb) {
    memset(bb, 0, sizeof *bb);
    if (m->cfg.arch == PTQ_ARCH_VIT) {
        const cJSON *im = cJSON_GetObjectItem(g, "images"), *lab = cJSON_GetObjectItem(g, "labels");
        int n = (int)num(im, "count");
        size_t sz = (size_t)m->cfg.in_chans * m->cfg.img_size * m->cfg.img_size;
        bb->pix = malloc((size_t)n * sz * sizeof(float));
        tu_prng_fill(bb->pix, (size_t)n * sz, (uint64_t)num(im, "seed"), num(im, "scale"), num(im, "offset"),
                  (int)num(im, "bits"));
        bb->tgt = malloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++) bb->tgt[i] = cJSON_GetArrayItem(lab, i)->valueint;
        bb->b = (ptq_batch){n, m->cfg.max_seq, NULL, bb->tgt, bb->pix};
    } else {
        int r, c, r2, c2;
        bb->tok = int_matrix(cJSON_GetObjectItem(g, "tokens"), &r, &c);
        bb->tgt = int_matrix(cJSON_GetObjectItem(g, "targets"), &r2, &c2);
        CHECK(r == r2 && c == c2);
        bb->b = (ptq_batch){r, c, bb->tok, bb->tgt, NULL};
    }
}

static void free_batch(batch_buf *bb) {
    free(bb->tok);
    free(bb->tgt);
    free(bb->pix);
}

static ptq_outlier_cfg outlier_of(const cJSON *g) {
    const cJSON *kind = cJSON_GetObjectItem(g, "outlier_loss");
    ptq_outlier_cfg oc = {(float)num(g, "lambda"), (float)num(g, "tau"), 0,
                          cJSON_IsString(kind) && !strcmp(kind->valuestring, "rel")};
    ptq_error err;
    if (ptq_monitor_parse(cJSON_GetObjectItem(g, "monitor")->valuestring, &oc.monitor, &err) != PTQ_OK) {
        fprintf(stderr, "monitor: %s\n", err.msg);
        tu_failures++;
    }
    return oc;
}

/* ---------------------------------------------------------------- loss + all gradients */

/* Largest |error| / max|ref| over the tensor's elements, comparing the C gradient (in [out][in] for transposed
 * tensors) with the golden (stored layout). */
static double grad_error(const ptq_param *p, const cJSON *ref, double floor) {
    size_t n = (size_t)cJSON_GetArraySize(ref);
    if (n != p->n) return INFINITY;
    double mx = floor, worst = 0;
    const cJSON *it = ref->child;
    for (size_t k = 0; k < n; k++, it = it->next) mx = fmax(mx, fabs(it->valuedouble));
    it = ref->child;
    for (size_t k = 0; k < n; k++, it = it->next) {
        size_t j = k;
        if (p->transposed) { /* k indexes [in][out]; the C buffer is [out][in] */
            size_t in = (size_t)p->shape[0], out = (size_t)p->shape[1];
            j = (k % out) * in + k / out;
        }
        double e = fabs((double)p->g[j] - it->valuedouble);
        if (e > worst) worst = e;
    }
    return worst / mx;
}

static void check_gradients(const char *name, const char *sub) {
    source s;
    if (src_load(&s, name)) return;
    const cJSON *gold = sub ? cJSON_GetObjectItem(s.golden, sub) : s.golden;
    char label[64];
    snprintf(label, sizeof label, "%s%s%s", name, sub ? "/" : "", sub ? sub : "");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s%s", tu_tmpdir(), name, cJSON_GetObjectItem(s.manifest, "llama2c") ? ".bin" : "");
    CHECK(src_write(&s, path) == 0);
    ptq_model *m = load(path);
    if (!m) {
        src_free(&s);
        return;
    }
    ptq_trainable t;
    ptq_error err;
    CHECK(ptq_trainable_init(m, &t, &err) == PTQ_OK);
    batch_buf bb;
    make_batch(m, s.golden, &bb);
    ptq_outlier_cfg oc = outlier_of(gold);
    ptq_train_ws *ws = ptq_train_ws_new();
    ptq_loss_parts lp;
    ptq_trainable_zero_grad(&t);
    ptq_status st = ptq_train_forward_backward(&t, ws, &bb.b, &oc, 1, &lp, &err);
    CHECK_MSG(st == PTQ_OK, "%s: %s", label, err.msg);
    CHECK_MSG(fabs(lp.loss - num(gold, "loss")) <= 1e-5 * fabs(num(gold, "loss")), "%s: loss %.8f vs %.8f", label,
              lp.loss, num(gold, "loss"));
    CHECK_MSG(fabs(lp.ce - num(gold, "ce")) <= 1e-5 * fabs(num(gold, "ce")), "%s: ce %.8f vs %.8f", label, lp.ce,
              num(gold, "ce"));
    CHECK_MSG(fabs(lp.outlier - num(gold, "outlier")) <= 1e-4 * fabs(num(gold, "outlier")) + 1e-9,
              "%s: outlier %.8f vs %.8f", label, lp.outlier, num(gold, "outlier"));
    /* forward-only gives the same loss */
    ptq_loss_parts lp2;
    CHECK(ptq_train_forward_backward(&t, ws, &bb.b, &oc, 0, &lp2, &err) == PTQ_OK);
    CHECK(lp2.loss == lp.loss);
    const cJSON *grads = cJSON_GetObjectItem(gold, "grads");
    int n_ref = cJSON_GetArraySize(grads), matched = 0;
    double worst = 0, gmax = 0;
    /* a tensor whose true gradient is ~0 (OPT's key bias: softmax ignores a per-query constant) is compared
     * against 1e-3 of the model's largest gradient instead of its own largest element */
    for (const cJSON *g = grads->child; g; g = g->next)
        for (const cJSON *v = g->child; v; v = v->next) gmax = fmax(gmax, fabs(v->valuedouble));
    const char *worst_name = "";
    for (const cJSON *g = grads->child; g; g = g->next) {
        int k = ptq_trainable_find(&t, g->string);
        CHECK_MSG(k >= 0, "%s: no trainable parameter named %s", label, g->string);
        if (k < 0) continue;
        matched++;
        double e = grad_error(&t.p[k], g, 1e-3 * gmax);
        if (e > worst) {
            worst = e;
            worst_name = g->string;
        }
        CHECK_MSG(e <= 1e-4, "%s: gradient of %s differs by %.3g of its largest element", label, g->string, e);
    }
    CHECK_MSG(matched == t.n && n_ref == t.n, "%s: %d golden gradients, %d trainable tensors, %d matched", label, n_ref,
              t.n, matched);
    printf("%-12s loss %.6f (ce %.6f + %.2g x %s outlier %.6f): %d gradients, worst %.2e (%s)\n", label, lp.loss, lp.ce,
           (double)oc.lambda, oc.relative ? "rel" : "abs", lp.outlier, t.n, worst, worst_name);
    ptq_train_ws_free(ws);
    free_batch(&bb);
    ptq_trainable_free(&t);
    ptq_model_free(m);
    src_free(&s);
}

/* ---------------------------------------------------------------- the 10-step AdamW curve */

static void check_curve(void) {
    source s;
    if (src_load(&s, "vit_timm")) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/vit_curve", tu_tmpdir());
    CHECK(src_write(&s, path) == 0);
    ptq_model *m = load(path);
    if (!m) {
        src_free(&s);
        return;
    }
    const cJSON *cv = cJSON_GetObjectItem(s.golden, "curve"), *o = cJSON_GetObjectItem(cv, "opt");
    ptq_adamw_params ap = ptq_adamw_default_params();
    ap.lr = num(o, "lr");
    ap.beta1 = num(o, "beta1");
    ap.beta2 = num(o, "beta2");
    ap.eps = num(o, "eps");
    ap.weight_decay = num(o, "weight_decay");
    ap.clip = num(o, "clip");
    ap.warmup = (int)num(o, "warmup");
    ap.total_steps = (int)num(o, "steps");
    ptq_outlier_cfg oc = outlier_of(cv);
    batch_buf bb[3];
    const cJSON *bl = cJSON_GetObjectItem(cv, "batches");
    for (int i = 0; i < 3; i++) make_batch(m, cJSON_GetArrayItem(bl, i), &bb[i]);
    ptq_trainable t;
    ptq_error err;
    CHECK(ptq_trainable_init(m, &t, &err) == PTQ_OK);
    ptq_train_ws *ws = ptq_train_ws_new();
    double worst = 0;
    printf("curve    ");
    for (int st = 0; st < ap.total_steps; st++) {
        ptq_loss_parts lp;
        ptq_trainable_zero_grad(&t);
        CHECK(ptq_train_forward_backward(&t, ws, &bb[st % 3].b, &oc, 1, &lp, &err) == PTQ_OK);
        double gn, lr = ptq_adamw_step(&t, &ap, st, &gn);
        double rl = cJSON_GetArrayItem(cJSON_GetObjectItem(cv, "loss"), st)->valuedouble;
        double rlr = cJSON_GetArrayItem(cJSON_GetObjectItem(cv, "lr"), st)->valuedouble;
        double rgn = cJSON_GetArrayItem(cJSON_GetObjectItem(cv, "grad_norm"), st)->valuedouble;
        worst = fmax(worst, fabs(lp.loss - rl) / fabs(rl));
        CHECK_MSG(fabs(lp.loss - rl) <= 1e-4 * fabs(rl), "step %d: loss %.7f vs %.7f", st + 1, lp.loss, rl);
        CHECK_MSG(fabs(lr - rlr) <= 1e-12 * rlr, "step %d: lr %.9g vs %.9g", st + 1, lr, rlr);
        CHECK_MSG(fabs(gn - rgn) <= 1e-4 * rgn, "step %d: grad norm %.7f vs %.7f", st + 1, gn, rgn);
        printf(" %.4f", lp.loss);
    }
    ptq_loss_parts lp;
    CHECK(ptq_train_forward_backward(&t, ws, &bb[0].b, &oc, 0, &lp, &err) == PTQ_OK);
    double fl = num(cv, "final_loss");
    worst = fmax(worst, fabs(lp.loss - fl) / fl);
    CHECK_MSG(fabs(lp.loss - fl) <= 1e-4 * fl, "loss after 10 steps %.7f vs %.7f", lp.loss, fl);
    /* parameters after the last step, within 1e-4 of the tensor's largest value */
    const cJSON *fp = cJSON_GetObjectItem(cv, "final_params");
    double pw = 0;
    for (const cJSON *g = fp->child; g; g = g->next) {
        int k = ptq_trainable_find(&t, g->string);
        CHECK(k >= 0);
        if (k < 0) continue;
        double mx = 0, e = 0;
        int i = 0;
        for (const cJSON *v = g->child; v; v = v->next, i++) {
            mx = fmax(mx, fabs(v->valuedouble));
            e = fmax(e, fabs(t.p[k].w[i] - v->valuedouble));
        }
        pw = fmax(pw, e / mx);
        CHECK_MSG(e <= 1e-4 * mx, "%s after 10 steps differs by %.3g of its largest value", g->string, e / mx);
    }
    printf("  (worst relative loss error %.2e, parameters %.2e)\n", worst, pw);
    for (int i = 0; i < 3; i++) free_batch(&bb[i]);
    ptq_train_ws_free(ws);
    ptq_trainable_free(&t);
    ptq_model_free(m);
    src_free(&s);
}

/* ---------------------------------------------------------------- saving, reloading, init */

/* Same outputs from two models on the source's golden batch. */
static void check_same_outputs(ptq_model *a, ptq_model *b, const cJSON *golden, const char *what) {
    batch_buf bb;
    make_batch(a, golden, &bb);
    int rows = a->cfg.arch == PTQ_ARCH_VIT ? bb.b.n_seq : bb.b.seq_len;
    size_t n = (size_t)rows * a->cfg.vocab_size;
    float *la = malloc(n * sizeof(float)), *lb = malloc(n * sizeof(float));
    ptq_error err;
    ptq_status s1, s2;
    if (a->cfg.arch == PTQ_ARCH_VIT) {
        s1 = ptq_forward_images(a, bb.pix, bb.b.n_seq, la, &err);
        s2 = ptq_forward_images(b, bb.pix, bb.b.n_seq, lb, &err);
    } else {
        s1 = ptq_forward_tokens(a, bb.tok, bb.b.seq_len, la, &err);
        s2 = ptq_forward_tokens(b, bb.tok, bb.b.seq_len, lb, &err);
    }
    CHECK_MSG(s1 == PTQ_OK && s2 == PTQ_OK, "%s: %s", what, err.msg);
    CHECK_MSG(memcmp(la, lb, n * sizeof(float)) == 0, "%s: the reloaded model computes different logits", what);
    free(la);
    free(lb);
    free_batch(&bb);
}

/* A few AdamW steps on the golden batch so the weights differ from the source. */
static void perturb(ptq_model *m, const cJSON *golden) {
    ptq_trainable t;
    ptq_error err;
    CHECK(ptq_trainable_init(m, &t, &err) == PTQ_OK);
    batch_buf bb;
    make_batch(m, golden, &bb);
    ptq_train_ws *ws = ptq_train_ws_new();
    ptq_adamw_params ap = ptq_adamw_default_params();
    ap.lr = 1e-2;
    ap.total_steps = 3;
    ptq_outlier_cfg oc = {0.1f, 2.0f, PTQ_MON_ALL, 1};
    for (int s = 0; s < 3; s++) {
        ptq_loss_parts lp;
        ptq_trainable_zero_grad(&t);
        CHECK(ptq_train_forward_backward(&t, ws, &bb.b, &oc, 1, &lp, &err) == PTQ_OK);
        ptq_adamw_step(&t, &ap, s, NULL);
    }
    ptq_train_ws_free(ws);
    free_batch(&bb);
    ptq_trainable_free(&t);
}

/* The saved file holds exactly the source's tensor names and shapes, all F32. */
static void check_same_names(const char *src_file, const char *out_file, const char *what) {
    ptq_safetensors a, b;
    ptq_error err;
    if (ptq_st_open(src_file, &a, &err) != PTQ_OK || ptq_st_open(out_file, &b, &err) != PTQ_OK) {
        fprintf(stderr, "%s: %s\n", what, err.msg);
        tu_failures++;
        return;
    }
    CHECK_MSG(a.n_tensors == b.n_tensors, "%s: %d tensors saved, source has %d", what, b.n_tensors, a.n_tensors);
    for (int i = 0; i < a.n_tensors && i < b.n_tensors; i++) {
        CHECK_MSG(!strcmp(a.tensors[i].name, b.tensors[i].name), "%s: %s vs %s", what, a.tensors[i].name,
                  b.tensors[i].name);
        CHECK(a.tensors[i].ndim == b.tensors[i].ndim);
        CHECK(memcmp(a.tensors[i].shape, b.tensors[i].shape, sizeof a.tensors[i].shape) == 0);
        CHECK(b.tensors[i].dtype == PTQ_DT_F32);
    }
    CHECK(ptq_st_metadata(&b, "ptq_tune") != NULL);
    ptq_st_close(&a);
    ptq_st_close(&b);
}

static void check_save(const char *name) {
    source s;
    if (src_load(&s, name)) return;
    int l2c = cJSON_GetObjectItem(s.manifest, "llama2c") != NULL;
    char src[1024], out[1024], w[1100], c[1100];
    snprintf(src, sizeof src, "%s/save_src_%s%s", tu_tmpdir(), name, l2c ? ".bin" : "");
    snprintf(out, sizeof out, "%s/save_out_%s%s", tu_tmpdir(), name, l2c ? ".bin" : "");
    CHECK(src_write(&s, src) == 0);
    ptq_model *m = load(src);
    if (!m) {
        src_free(&s);
        return;
    }
    perturb(m, s.golden);
    ptq_error err;
    CHECK(ptq_train_source_paths(src, w, sizeof w, c, sizeof c, &err) == PTQ_OK);
    ptq_status st = ptq_train_save(m, w, l2c ? NULL : c, out, "test", &err);
    CHECK_MSG(st == PTQ_OK, "save %s: %s", name, err.msg);
    ptq_model *r = st == PTQ_OK ? load(out) : NULL;
    if (r) {
        check_same_outputs(m, r, s.golden, name);
        if (l2c) {
            ptq_mmap a, b;
            CHECK(ptq_mmap_open(src, &a, &err) == PTQ_OK && ptq_mmap_open(out, &b, &err) == PTQ_OK);
            CHECK(a.size == b.size);
            size_t rope = (size_t)num(cJSON_GetObjectItem(s.manifest, "llama2c"), "seq_len") *
                          ((size_t)num(cJSON_GetObjectItem(s.manifest, "llama2c"), "dim") /
                           (size_t)num(cJSON_GetObjectItem(s.manifest, "llama2c"), "n_heads")) * 4;
            CHECK(memcmp(a.data, b.data, 28) == 0);                          /* header */
            CHECK(memcmp(a.data + a.size - rope, b.data + b.size - rope, rope) == 0); /* RoPE tables */
            CHECK(memcmp(a.data, b.data, a.size) != 0);                      /* tuned weights differ */
            ptq_mmap_close(&a);
            ptq_mmap_close(&b);
        } else {
            char f1[1200], f2[1200];
            snprintf(f1, sizeof f1, "%s/model.safetensors", src);
            snprintf(f2, sizeof f2, "%s/model.safetensors", out);
            check_same_names(f1, f2, name);
            snprintf(f2, sizeof f2, "%s/config.json", out);
            cJSON *cfg = read_json(f2);
            CHECK(cfg && cJSON_IsObject(cfg) && cJSON_GetArraySize(cfg) == cJSON_GetArraySize(s.config));
            cJSON_Delete(cfg);
        }
        ptq_model_free(r);
    }
    printf("save     %-9s reloads with identical outputs\n", name);
    ptq_model_free(m);
    src_free(&s);
}

static void check_init(void) {
    char cfgp[1024];
    snprintf(cfgp, sizeof cfgp, "%s/tests/data/train/vit_timm/config.json", PTQ_SOURCE_DIR);
    ptq_model *a = NULL, *b = NULL, *c = NULL;
    ptq_error err;
    CHECK_MSG(ptq_train_init_random(cfgp, 5, tu_tmpdir(), &a, &err) == PTQ_OK, "%s", err.msg);
    CHECK(ptq_train_init_random(cfgp, 5, tu_tmpdir(), &b, &err) == PTQ_OK);
    CHECK(ptq_train_init_random(cfgp, 6, tu_tmpdir(), &c, &err) == PTQ_OK);
    if (a && b && c) {
        CHECK(a->cfg.dim == 8 && a->cfg.n_layers == 2 && a->cfg.vocab_size == 4);
        size_t n = (size_t)a->blocks[0].lin[PTQ_LIN_QKV].in * a->blocks[0].lin[PTQ_LIN_QKV].out;
        CHECK(memcmp(a->blocks[0].lin[PTQ_LIN_QKV].w, b->blocks[0].lin[PTQ_LIN_QKV].w, n * 4) == 0);
        CHECK(memcmp(a->blocks[0].lin[PTQ_LIN_QKV].w, c->blocks[0].lin[PTQ_LIN_QKV].w, n * 4) != 0);
        /* N(0, 0.02) truncated at 2 sigma; biases 0, norm weights 1 */
        double ss = 0, mx = 0;
        for (size_t i = 0; i < n; i++) {
            ss += (double)a->blocks[0].lin[PTQ_LIN_QKV].w[i] * a->blocks[0].lin[PTQ_LIN_QKV].w[i];
            mx = fmax(mx, fabs(a->blocks[0].lin[PTQ_LIN_QKV].w[i]));
        }
        CHECK(mx <= 0.04 + 1e-7 && sqrt(ss / n) > 0.01 && sqrt(ss / n) < 0.025);
        CHECK(a->blocks[1].lin[PTQ_LIN_UP].b[3] == 0.0f && a->final_norm.w[2] == 1.0f);
        /* saving a random model writes every tensor under the loader's names and reloads */
        char out[1024];
        snprintf(out, sizeof out, "%s/init_out", tu_tmpdir());
        CHECK_MSG(ptq_train_save(a, NULL, cfgp, out, "init", &err) == PTQ_OK, "%s", err.msg);
        ptq_model *r = load(out);
        if (r) {
            source s;
            if (src_load(&s, "vit_timm") == 0) {
                check_same_outputs(a, r, s.golden, "init");
                src_free(&s);
            }
            ptq_model_free(r);
        }
    }
    ptq_model_free(a);
    ptq_model_free(b);
    ptq_model_free(c);
    /* every family initialises through its loader */
    const char *others[] = {"llama", "gpt2", "opt_post"};
    for (int i = 0; i < 3; i++) {
        snprintf(cfgp, sizeof cfgp, "%s/tests/data/train/%s/config.json", PTQ_SOURCE_DIR, others[i]);
        ptq_model *m = NULL;
        CHECK_MSG(ptq_train_init_random(cfgp, 1, tu_tmpdir(), &m, &err) == PTQ_OK, "init %s: %s", others[i], err.msg);
        ptq_model_free(m);
    }
    /* a Hugging Face ViT config */
    char hf[1024];
    snprintf(hf, sizeof hf, "%s/vit_hf_config.json", tu_tmpdir());
    const char *txt = "{\"architectures\": [\"ViTForImageClassification\"], \"model_type\": \"vit\", \"hidden_size\": 8,"
                      " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 16,"
                      " \"image_size\": 8, \"patch_size\": 4, \"num_channels\": 1, \"num_labels\": 3}";
    CHECK(tu_write_file(hf, txt, strlen(txt)) == 0);
    ptq_model *m = NULL;
    CHECK_MSG(ptq_train_init_random(hf, 1, tu_tmpdir(), &m, &err) == PTQ_OK, "init vit hf: %s", err.msg);
    if (m) {
        ptq_trainable t;
        CHECK(ptq_trainable_init(m, &t, &err) == PTQ_OK);
        CHECK(ptq_trainable_find(&t, "vit.encoder.layer.0.layernorm_before.weight") >= 0);
        CHECK(ptq_trainable_find(&t, "vit.embeddings.position_embeddings") >= 0);
        CHECK(ptq_trainable_find(&t, "classifier.bias") >= 0);
        ptq_trainable_free(&t);
        ptq_model_free(m);
    }
    /* errors name the file */
    snprintf(hf, sizeof hf, "%s/bad_config.json", tu_tmpdir());
    txt = "{\"architectures\": [\"BertModel\"]}";
    CHECK(tu_write_file(hf, txt, strlen(txt)) == 0);
    CHECK(ptq_train_init_random(hf, 1, tu_tmpdir(), &m, &err) == PTQ_ERR_UNSUPPORTED && strstr(err.msg, "BertModel"));
    printf("init     random models from configs load through the family loaders\n");
}

/* ---------------------------------------------------------------- ptq_tune end to end */

typedef struct {
    int calls;
    double first_outlier, last_outlier, first_ce, last_ce;
} step_log;

static int on_step(void *user, const ptq_tune_step *s) {
    step_log *l = user;
    if (l->calls == 0) {
        l->first_outlier = s->outlier;
        l->first_ce = s->ce;
    }
    l->last_outlier = s->outlier;
    l->last_ce = s->ce;
    l->calls++;
    CHECK(s->step == l->calls && s->lr > 0 && s->eta >= 0 && isfinite(s->loss));
    return 0;
}

static double mean_range(const ptq_act_stats *st, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += st[i].max_abs_over_std;
    return s / n;
}

static void check_tune(void) {
    /* ViT: images from the PRNG, labels from a fixed rule; the outlier loss must shrink max|A|/sigma */
    source s;
    if (src_load(&s, "vit_timm")) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/tune_vit", tu_tmpdir());
    CHECK(src_write(&s, path) == 0);
    ptq_model *m = load(path), *m0 = load(path);
    if (m && m0) {
        ptq_image_set set = {64, 2, 8, 8, malloc(64 * 2 * 64 * sizeof(float)), malloc(64 * sizeof(int))};
        tu_prng_fill(set.pixels, 64 * 128, 4242, 2.0, 0.0, 16);
        for (int i = 0; i < 64; i++) set.labels[i] = set.pixels[i * 128] > 0 ? (set.pixels[i * 128 + 1] > 0) : 2 + (i & 1);
        ptq_tune_data d = {NULL, &set};
        ptq_tune_params p = ptq_tune_default_params();
        p.opt.lr = 1e-2;
        p.opt.warmup = 2;
        p.batch = 16;
        p.epochs = 5; /* 20 steps */
        p.outlier = (ptq_outlier_cfg){5.0f, 1.5f, PTQ_MON_ALL, 1};
        p.report_n = 64;
        step_log lg = {0};
        p.on_step = on_step;
        p.user = &lg;
        ptq_tune_result r;
        ptq_error err;
        ptq_status st = ptq_tune(m, &d, &p, &r, &err);
        CHECK_MSG(st == PTQ_OK, "tune: %s", err.msg);
        if (st == PTQ_OK) {
            CHECK(r.steps == 20 && lg.calls == 20);
            CHECK(r.n_stats == 2 * 4 && r.before && r.after); /* qkv, proj, fc1, fc2 in 2 blocks */
            double rb = mean_range(r.before, r.n_stats), ra = mean_range(r.after, r.n_stats);
            CHECK_MSG(ra < rb, "max|A|/sigma did not shrink: %.3f -> %.3f", rb, ra);
            CHECK_MSG(lg.last_outlier < 0.5 * lg.first_outlier, "outlier loss %.4f -> %.4f", lg.first_outlier,
                      lg.last_outlier);
            printf("tune     ViT 20 steps: outlier loss %.4f -> %.4f, mean max|A|/sigma %.2f -> %.2f, %.0f images/s\n",
                   lg.first_outlier, lg.last_outlier, rb, ra, r.samples_per_s);
            ptq_tune_result_free(&r);
        }
        /* the same run without the outlier term leaves a larger range */
        ptq_tune_params p0 = p;
        p0.outlier.lambda = 0;
        step_log lg0 = {0};
        p0.user = &lg0;
        st = ptq_tune(m0, &d, &p0, &r, &err);
        CHECK_MSG(st == PTQ_OK, "tune: %s", err.msg);
        if (st == PTQ_OK) {
            CHECK_MSG(lg0.last_outlier > 2 * lg.last_outlier, "lambda 0: outlier %.4f, lambda 1: %.4f", lg0.last_outlier,
                      lg.last_outlier);
            ptq_tune_result_free(&r);
        }
        /* errors */
        ptq_image_set bad = set;
        bad.channels = 1;
        d.images = &bad;
        CHECK(ptq_tune(m, &d, &p, &r, &err) == PTQ_ERR_ARG && strstr(err.msg, "images are"));
        free(set.pixels);
        free(set.labels);
    }
    ptq_model_free(m);
    ptq_model_free(m0);
    src_free(&s);

    /* LLaMA on a repetitive token stream: the loss must fall a lot */
    if (src_load(&s, "llama")) return;
    snprintf(path, sizeof path, "%s/tune_llama", tu_tmpdir());
    CHECK(src_write(&s, path) == 0);
    m = load(path);
    if (m) {
        int toks[400];
        for (int i = 0; i < 400; i++) toks[i] = (i % 7) * 3 + 1;
        ptq_text_data td = {toks, 400, 8};
        CHECK(ptq_text_windows(&td) == 49);
        ptq_tune_data d = {&td, NULL};
        ptq_tune_params p = ptq_tune_default_params();
        p.opt.lr = 3e-2;
        p.batch = 8;
        p.steps = 40;
        p.report_n = 4;
        step_log lg = {0};
        p.on_step = on_step;
        p.user = &lg;
        ptq_tune_result r;
        ptq_error err;
        ptq_status st = ptq_tune(m, &d, &p, &r, &err);
        CHECK_MSG(st == PTQ_OK, "tune llama: %s", err.msg);
        if (st == PTQ_OK) {
            CHECK_MSG(lg.last_ce < 0.2 * lg.first_ce, "LLaMA loss %.4f -> %.4f", lg.first_ce, lg.last_ce);
            CHECK(r.n_stats == 2 * 7);
            printf("tune     LLaMA 40 steps: loss %.4f -> %.4f, %.0f tokens/s\n", lg.first_ce, lg.last_ce, r.samples_per_s);
            ptq_tune_result_free(&r);
        }
        td.ctx = 1000;
        CHECK(ptq_tune(m, &d, &p, &r, &err) == PTQ_ERR_ARG);
        ptq_model_free(m);
    }
    src_free(&s);
}

/* ---------------------------------------------------------------- small pieces */

static void check_small(void) {
    unsigned mask;
    ptq_error err;
    CHECK(ptq_monitor_parse("all", &mask, &err) == PTQ_OK && mask == PTQ_MON_ALL);
    CHECK(ptq_monitor_parse("qkv,fc2", &mask, &err) == PTQ_OK && mask == (PTQ_MON_QKV | PTQ_MON_FC2));
    CHECK(ptq_monitor_parse("o,up,down", &mask, &err) == PTQ_OK && mask == (PTQ_MON_PROJ | PTQ_MON_FC1 | PTQ_MON_FC2));
    CHECK(ptq_monitor_parse("qkv,bogus", &mask, &err) == PTQ_ERR_ARG && strstr(err.msg, "bogus"));
    /* shuffle is a permutation and depends on the seed */
    int a[100], b[100], seen[100] = {0};
    uint64_t r1 = 1, r2 = 1, r3 = 2;
    ptq_shuffle(a, 100, &r1);
    ptq_shuffle(b, 100, &r2);
    CHECK(memcmp(a, b, sizeof a) == 0);
    for (int i = 0; i < 100; i++) seen[a[i]]++;
    for (int i = 0; i < 100; i++) CHECK(seen[i] == 1);
    ptq_shuffle(b, 100, &r3);
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* text windows share one token: window w = tokens [w*ctx, w*ctx + ctx] */
    int toks[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, inp[6], tgt[6], idx[2] = {2, 0};
    ptq_text_data td = {toks, 10, 3};
    CHECK(ptq_text_windows(&td) == 3);
    ptq_text_batch(&td, idx, 2, inp, tgt);
    CHECK(inp[0] == 6 && inp[2] == 8 && tgt[0] == 7 && tgt[2] == 9 && inp[3] == 0 && tgt[5] == 3);
    /* the schedule: linear warm-up, then cosine to min_lr_frac */
    ptq_adamw_params ap = ptq_adamw_default_params();
    ap.lr = 1.0;
    ap.warmup = 4;
    ap.total_steps = 14;
    ap.min_lr_frac = 0.1;
    CHECK(fabs(ptq_lr_at(&ap, 0) - 0.25) < 1e-12 && fabs(ptq_lr_at(&ap, 3) - 1.0) < 1e-12);
    CHECK(fabs(ptq_lr_at(&ap, 4) - 1.0) < 1e-12 && fabs(ptq_lr_at(&ap, 9) - 0.55) < 1e-12);
}

int main(void) {
    check_small();
    check_gradients("vit_timm", NULL);
    check_gradients("vit_timm", "rel");
    check_gradients("llama", NULL);
    check_gradients("llama2c", NULL);
    check_gradients("gpt2", NULL);
    check_gradients("opt_post", NULL);
    check_curve();
    check_save("vit_timm");
    check_save("gpt2");
    check_save("llama2c");
    check_save("opt_post");
    check_init();
    check_tune();
    return tu_done("test_train");
}
