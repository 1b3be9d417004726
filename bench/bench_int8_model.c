/* Whole-model benchmark of integer W8A8 execution (issue 5): the same model in three forms, timed in
 * the same run, round-robin:
 *   float       the original float32 model (OpenBLAS sgemm in every linear layer);
 *   int8        W8A8: RTN symmetric per-channel 8-bit weights + static per-tensor 8-bit activations
 *               (min-max, calibrated on 256 images / 8 windows), every block linear on the int8 kernels
 *               (ptq_i8_isa_best(): AVX-512 VNNI, AVX-VNNI, AVX2 or scalar);
 *   simulated   the SAME W8A8 model with the int8 forms detached: fake-quantized activations times the
 *               packed 8-bit weights (ptq_qgemm, float arithmetic), i.e. what W8A8 costs without the
 *               integer kernels.
 * Attention matmuls, norms, softmax, embeddings and the head stay float in all three.
 *
 *   bench_int8_model [--json] [--quick]      OMP_NUM_THREADS sets the threads; PTQ_DATA the sample data
 *
 * vit-mnist: images/s of ptq_forward_images on batches of 256 and of 1 image (MNIST test images
 * 1000-1255), plus the top-1 of each form on those images (a check that all three compute the model).
 * stories260K: tokens/s of ptq_forward_tokens on one 256-token sequence (prefill), and of token-by-token
 * decoding through a KV-cache session (256 steps).
 * Then block 0's linear layers alone on the same numbers of rows (the part the int8 kernels replace:
 * the whole-model ratio is this one diluted by attention, norms, activations and the head, Amdahl).
 * Each round runs every variant for at least 0.2 s (mean per call); the best of the rounds is reported,
 * so a slow phase of a shared machine hits all variants alike. Ratios are what to compare: "x float" is
 * float time / time. The table goes to stdout (stderr with --json, stdout then gets one JSON object).
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "kernels/i8gemm.h"
#include "models/forward.h"
#include "models/model.h"
#include "ptq.h"

static bench_results g_res;
static FILE *g_tab; /* where the table goes */

static void rec(const char *key, double v) { bench_rec(&g_res, key, v); }

static int die(const ptq_error *e) {
    fprintf(stderr, "bench_int8_model: %s\n", e->msg);
    return 1;
}

/* ---------------------------------------------------------------- the three forms */

enum { V_FLOAT = 0, V_INT8, V_SIM, V_COUNT };
static const char *vname[V_COUNT] = {"float", "int8", "simulated"};

typedef struct {
    ptq_model *m[V_COUNT]; /* V_SIM points at the int8 model; its i8 forms are detached while it runs */
    struct ptq_i8weight **saved;
} forms;

static void detach(ptq_model *m, struct ptq_i8weight **saved, int off) {
    int k = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++, k++) {
            ptq_linear *lin = &m->blocks[l].lin[r];
            if (off) {
                saved[k] = lin->i8;
                lin->i8 = NULL;
            } else {
                lin->i8 = saved[k];
            }
        }
}

static int count_i8(const ptq_model *m) {
    int n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++) n += m->blocks[l].lin[r].i8 != NULL;
    return n;
}

/* One workload: fn(model, user) runs one call processing `units` items (images or tokens). */
typedef ptq_status (*work_fn)(ptq_model *m, void *user, ptq_error *e);

static double time_variant(forms *f, int v, work_fn fn, void *user, double min_s, ptq_error *e, ptq_status *st) {
    ptq_model *m = f->m[v];
    if (v == V_SIM) detach(m, f->saved, 1);
    int calls = 0;
    double t0 = now_s(), t;
    do {
        if ((*st = fn(m, user, e)) != PTQ_OK) break;
        calls++;
    } while ((t = now_s() - t0) < min_s);
    if (v == V_SIM) detach(m, f->saved, 0);
    return calls ? (now_s() - t0) / calls : INFINITY;
}

/* Round-robin: best seconds per call of each variant over `rounds` rounds. */
static ptq_status bench(forms *f, work_fn fn, void *user, int rounds, double min_s, double best[V_COUNT], ptq_error *e) {
    ptq_status st = PTQ_OK;
    for (int v = 0; v < V_COUNT; v++) best[v] = INFINITY;
    for (int r = 0; r < rounds && st == PTQ_OK; r++)
        for (int v = 0; v < V_COUNT && st == PTQ_OK; v++) {
            double s = time_variant(f, v, fn, user, min_s, e, &st);
            if (s < best[v]) best[v] = s;
        }
    return st;
}

static void report(const char *what, const char *unit, double units, const double best[V_COUNT], const char *key) {
    char k[64];
    for (int v = 0; v < V_COUNT; v++) {
        double rate = units / best[v];
        fprintf(g_tab, "  %-34s %-10s %12.1f %s/s   %7.3f ms/call   %5.2f x float\n", what, vname[v], rate, unit,
                best[v] * 1e3, best[V_FLOAT] / best[v]);
        snprintf(k, sizeof k, "%s_%s_per_s", key, vname[v]);
        rec(k, rate);
    }
    snprintf(k, sizeof k, "%s_int8_vs_float", key);
    rec(k, best[V_FLOAT] / best[V_INT8]);
    snprintf(k, sizeof k, "%s_int8_vs_simulated", key);
    rec(k, best[V_SIM] / best[V_INT8]);
}

/* ---------------------------------------------------------------- the linears alone */

/* Block 0's linear layers on `rows` rows of pseudo-random input (speed does not depend on the values):
 * the part of the model the integer kernels replace. */
typedef struct {
    int rows;
    float *x, *y;
} lin_work;

static ptq_status run_linears(ptq_model *m, void *user, ptq_error *e) {
    (void)e;
    lin_work *w = user;
    for (int r = 0; r < PTQ_LIN_COUNT; r++) {
        const ptq_linear *lin = &m->blocks[0].lin[r];
        if (ptq_linear_present(lin)) ptq_linear_forward(lin, w->x, w->rows, w->y);
    }
    return PTQ_OK;
}

static int bench_linears(forms *f, int rows, const char *what, const char *key, int rounds, double min_s) {
    const ptq_config *c = &f->m[V_FLOAT]->cfg;
    size_t width = (size_t)(c->hidden_dim > 3 * c->dim ? c->hidden_dim : 3 * c->dim);
    lin_work w = {rows, malloc((size_t)rows * width * sizeof(float)), malloc((size_t)rows * width * sizeof(float))};
    uint64_t r = 0x2545F4914F6CDD1DULL;
    for (size_t i = 0; i < (size_t)rows * width; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        w.x[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    double flops = 0;
    for (int k = 0; k < PTQ_LIN_COUNT; k++) {
        const ptq_linear *lin = &f->m[V_FLOAT]->blocks[0].lin[k];
        if (ptq_linear_present(lin)) flops += 2.0 * rows * lin->in * lin->out;
    }
    double best[V_COUNT];
    ptq_error e;
    if (bench(f, run_linears, &w, rounds, min_s, best, &e) != PTQ_OK) return die(&e);
    report(what, "row", rows, best, key);
    fprintf(g_tab, "  %-34s %.2f GFLOP/s float, %.2f GOP/s int8\n", "", flops / best[V_FLOAT] * 1e-9,
            flops / best[V_INT8] * 1e-9);
    free(w.x), free(w.y);
    return 0;
}

/* ---------------------------------------------------------------- vit-mnist */

typedef struct {
    const float *pixels;
    int n;
    size_t per;
    float *logits;
} img_work;

static ptq_status run_images(ptq_model *m, void *user, ptq_error *e) {
    img_work *w = user;
    return ptq_forward_images(m, w->pixels, w->n, w->logits, e);
}

static int top1_count(const float *lg, const int *labels, int n, int classes) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int a = 0;
        for (int c = 1; c < classes; c++)
            if (lg[(size_t)i * classes + c] > lg[(size_t)i * classes + a]) a = c;
        ok += a == labels[i];
    }
    return ok;
}

static int bench_vit(const char *data, int rounds, double min_s) {
    char dir[4096], img[4200], lab[4200];
    snprintf(dir, sizeof dir, "%s/vit-mnist", data);
    snprintf(img, sizeof img, "%s/mnist/t10k-images-idx3-ubyte.gz", data);
    snprintf(lab, sizeof lab, "%s/mnist/t10k-labels-idx1-ubyte.gz", data);
    ptq_error e;
    forms f;
    memset(&f, 0, sizeof f);
    if (ptq_model_load(dir, &f.m[V_FLOAT], &e) != PTQ_OK || ptq_model_load(dir, &f.m[V_INT8], &e) != PTQ_OK) return die(&e);
    f.m[V_SIM] = f.m[V_INT8];
    ptq_image_set cal, test;
    if (ptq_images_load_idx(f.m[V_FLOAT], img, lab, 0, 256, &cal, &e) != PTQ_OK ||
        ptq_images_load_idx(f.m[V_FLOAT], img, lab, 1000, 256, &test, &e) != PTQ_OK)
        return die(&e);
    ptq_quant_params p = ptq_quant_default_params();
    p.wbits = 8;
    p.abits = 8;
    p.method = PTQ_WQ_RTN;
    p.act_calib = PTQ_AQ_MINMAX;
    ptq_calib_data cd;
    memset(&cd, 0, sizeof cd);
    cd.images = &cal;
    if (ptq_quantize_model(f.m[V_INT8], &cd, &p, &e) != PTQ_OK) return die(&e);
    const ptq_config *c = &f.m[V_FLOAT]->cfg;
    int n_lin = c->n_layers * 4, n_i8 = count_i8(f.m[V_INT8]);
    f.saved = calloc((size_t)c->n_layers * PTQ_LIN_COUNT, sizeof *f.saved);
    fprintf(g_tab, "vit-mnist (dim %d, %d blocks, %d tokens/image): W8A8 RTN per-channel + min-max activations, "
                   "%d of %d block linears on int8 kernels (%s)\n",
            c->dim, c->n_layers, c->max_seq, n_i8, n_lin, ptq_i8_isa_name(ptq_i8_isa_best()));
    rec("vit_int8_linears", n_i8);
    /* correctness of the three forms on the 256 timing images */
    float *lg = malloc((size_t)256 * c->vocab_size * sizeof(float));
    img_work w = {test.pixels, 256, (size_t)c->in_chans * c->img_size * c->img_size, lg};
    for (int v = 0; v < V_COUNT; v++) {
        if (v == V_SIM) detach(f.m[V_SIM], f.saved, 1);
        if (run_images(f.m[v], &w, &e) != PTQ_OK) return die(&e);
        if (v == V_SIM) detach(f.m[V_SIM], f.saved, 0);
        int ok = top1_count(lg, test.labels, 256, c->vocab_size);
        fprintf(g_tab, "  top-1 on images 1000-1255: %-10s %.2f%%\n", vname[v], 100.0 * ok / 256);
        char k[64];
        snprintf(k, sizeof k, "vit_top1_%s", vname[v]);
        rec(k, 100.0 * ok / 256);
    }
    double best[V_COUNT];
    if (bench(&f, run_images, &w, rounds, min_s, best, &e) != PTQ_OK) return die(&e);
    report("vit-mnist, batch 256", "img", 256, best, "vit_b256");
    w.n = 1;
    if (bench(&f, run_images, &w, rounds, min_s, best, &e) != PTQ_OK) return die(&e);
    report("vit-mnist, batch 1", "img", 1, best, "vit_b1");
    if (bench_linears(&f, 256 * c->max_seq, "vit block-0 linears, 256 images", "vit_linears", rounds, min_s)) return 1;
    free(lg);
    free(f.saved);
    ptq_image_set_free(&cal);
    ptq_image_set_free(&test);
    ptq_model_free(f.m[V_FLOAT]);
    ptq_model_free(f.m[V_INT8]);
    return 0;
}

/* ---------------------------------------------------------------- stories260K */

typedef struct {
    const int *tokens;
    int n;
    float *logits;
} tok_work;

static ptq_status run_prefill(ptq_model *m, void *user, ptq_error *e) {
    tok_work *w = user;
    return ptq_forward_tokens(m, w->tokens, w->n, w->logits, e);
}

static ptq_status run_decode(ptq_model *m, void *user, ptq_error *e) {
    tok_work *w = user;
    ptq_session *s;
    ptq_status st = ptq_session_new(m, w->n, &s, e);
    if (st != PTQ_OK) return st;
    const float *lg;
    for (int i = 0; i < w->n && st == PTQ_OK; i++) st = ptq_session_feed(s, &w->tokens[i], 1, &lg, e);
    ptq_session_free(s);
    return st;
}

static int bench_lm(const char *data, int rounds, double min_s) {
    char path[4200];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", data);
    ptq_error e;
    forms f;
    memset(&f, 0, sizeof f);
    if (ptq_model_load(path, &f.m[V_FLOAT], &e) != PTQ_OK || ptq_model_load(path, &f.m[V_INT8], &e) != PTQ_OK) return die(&e);
    f.m[V_SIM] = f.m[V_INT8];
    const ptq_config *c = &f.m[V_FLOAT]->cfg;
    /* calibration and timing tokens: a fixed pseudo-random stream (speed does not depend on the text) */
    int T = 256, *cal = malloc(8 * 128 * sizeof(int)), *toks = malloc((size_t)T * sizeof(int));
    uint64_t r = 88172645463325252ULL;
    for (int i = 0; i < 8 * 128; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        cal[i] = i % 128 == 0 ? 1 : 3 + (int)(r % (uint64_t)(c->vocab_size - 3));
    }
    for (int i = 0; i < T; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        toks[i] = i == 0 ? 1 : 3 + (int)(r % (uint64_t)(c->vocab_size - 3));
    }
    ptq_quant_params p = ptq_quant_default_params();
    p.wbits = 8;
    p.abits = 8;
    p.method = PTQ_WQ_RTN;
    ptq_calib_data cd;
    memset(&cd, 0, sizeof cd);
    cd.tokens = cal;
    cd.n_seqs = 8;
    cd.seq_len = 128;
    if (ptq_quantize_model(f.m[V_INT8], &cd, &p, &e) != PTQ_OK) return die(&e);
    f.saved = calloc((size_t)c->n_layers * PTQ_LIN_COUNT, sizeof *f.saved);
    fprintf(g_tab, "stories260K (dim %d, %d blocks): W8A8, %d block linears on int8 kernels\n", c->dim, c->n_layers,
            count_i8(f.m[V_INT8]));
    float *lg = malloc((size_t)T * c->vocab_size * sizeof(float));
    tok_work w = {toks, T, lg};
    double best[V_COUNT];
    if (bench(&f, run_prefill, &w, rounds, min_s, best, &e) != PTQ_OK) return die(&e);
    report("stories260K, prefill 256 tokens", "tok", T, best, "lm_prefill");
    if (bench(&f, run_decode, &w, rounds, min_s, best, &e) != PTQ_OK) return die(&e);
    report("stories260K, decode 256 tokens", "tok", T, best, "lm_decode");
    if (bench_linears(&f, T, "stories260K block-0 linears, 256 rows", "lm_linears", rounds, min_s)) return 1;
    free(lg), free(cal), free(toks), free(f.saved);
    ptq_model_free(f.m[V_FLOAT]);
    ptq_model_free(f.m[V_INT8]);
    return 0;
}

int main(int argc, char **argv) {
    int json, quick;
    if (bench_flags(argc, argv, "bench_int8_model", &json, &quick)) return 2;
    g_tab = json ? stderr : stdout;
    const char *data = getenv("PTQ_DATA");
    if (!data || !*data) data = PTQ_DATA_DEFAULT;
    int rounds = quick ? 2 : 5;
    double min_s = quick ? 0.1 : 0.2, la0 = loadavg();
    fprintf(g_tab, "bench_int8_model: %d threads, int8 kernel %s, load average %.2f\n", omp_get_max_threads(),
            ptq_i8_isa_name(ptq_i8_isa_best()), la0);
    rec("threads", omp_get_max_threads());
    rec("load_avg_before", la0);
    int rc = bench_vit(data, rounds, min_s);
    if (!rc) rc = bench_lm(data, rounds, min_s);
    double la1 = loadavg();
    fprintf(g_tab, "load average after: %.2f%s\n", la1,
            la1 > omp_get_max_threads() ? "  (WARNING: busy machine; compare ratios, not absolute rates)" : "");
    rec("load_avg_after", la1);
    if (json && !rc) bench_print_json(&g_res, stdout);
    return rc;
}
