/* Float-path benchmark: machine memory bandwidth and BLAS throughput, then the ptq float forward
 * pass measured against them in the same run (stories260K through the session API, and one
 * synthetic LLaMA-7B-shaped block through ptq_block_forward).
 *
 * The machine is shared and noisy, so the numbers that matter are the ratios printed next to the
 * ptq timings (fraction of the bandwidth bound, fraction of sgemm GFLOP/s), not absolute values.
 *
 *   bench_float [--json]
 *
 * The table goes to stdout; with --json the table goes to stderr and stdout gets one JSON object
 * holding every number. Progress lines go to stderr.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "kernels/cpu.h"
#include "kernels/membw.h"
#include "models/forward.h"
#include "models/model.h"
#include "ptq.h"

#ifndef PTQ_DATA_DEFAULT
#define PTQ_DATA_DEFAULT "data"
#endif

/* ---------------------------------------------------------------- timing and results */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define MAX_RESULTS 96

typedef struct {
    const char *section; /* JSON object it goes into */
    const char *key;
    double value;
    const char *text;    /* non-NULL: a string value instead of a number */
} result;

static result g_res[MAX_RESULTS];
static int g_nres;
static FILE *g_tab; /* where the table goes */

static void rec(const char *section, const char *key, double v) {
    if (g_nres < MAX_RESULTS) g_res[g_nres++] = (result){section, key, v, NULL};
}

static void rec_text(const char *section, const char *key, const char *text) {
    if (g_nres < MAX_RESULTS) g_res[g_nres++] = (result){section, key, 0.0, text};
}

/* One table row: label, value, unit, and an optional note. */
static void row(const char *label, double v, const char *unit, const char *note) {
    fprintf(g_tab, "  %-44s %12.2f  %-9s %s\n", label, v, unit, note ? note : "");
    fflush(g_tab);
}

static void heading(const char *title) {
    fprintf(g_tab, "\n%s\n", title);
    fflush(g_tab);
}

/* 1-minute load average from /proc/loadavg, or -1 when unavailable. */
static double load_avg(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double v = -1.0;
    if (f) {
        if (fscanf(f, "%lf", &v) != 1) v = -1.0;
        fclose(f);
    }
    return v;
}

/* CPU accounting, to report how much of the machine other processes took during the run. */
typedef struct {
    double busy, total; /* all CPUs, seconds (busy includes steal) */
    double self;        /* this process, user + system seconds */
} cpu_sample;

static cpu_sample cpu_now(void) {
    cpu_sample c = {0, 0, 0};
    double hz = (double)sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]) == 8) {
            double idle = (double)(v[3] + v[4]);
            double all = 0;
            for (int i = 0; i < 8; i++) all += (double)v[i];
            c.total = all / hz;
            c.busy = (all - idle) / hz;
        }
        fclose(f);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        c.self = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
                 1e-6 * (double)ru.ru_stime.tv_usec;
    return c;
}

/* Fraction of all CPU time between a and b used by other processes (and the hypervisor). */
static double others_fraction(cpu_sample a, cpu_sample b) {
    double total = b.total - a.total;
    if (total <= 0) return NAN;
    double f = ((b.busy - a.busy) - (b.self - a.self)) / total;
    return f < 0 ? 0 : f;
}

static void progress(const char *msg) {
    fprintf(stderr, "[bench] %s\n", msg);
    fflush(stderr);
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* One object per section, sections in order of first appearance. */
static void print_json(FILE *f) {
    fprintf(f, "{");
    int first_sec = 1;
    for (int i = 0; i < g_nres; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = strcmp(g_res[j].section, g_res[i].section) == 0;
        if (seen) continue;
        fprintf(f, "%s\n  ", first_sec ? "" : ",");
        json_string(f, g_res[i].section);
        fprintf(f, ": {");
        first_sec = 0;
        int first_key = 1;
        for (int j = i; j < g_nres; j++) {
            const result *r = &g_res[j];
            if (strcmp(r->section, g_res[i].section) != 0) continue;
            fprintf(f, "%s\n    ", first_key ? "" : ",");
            json_string(f, r->key);
            fprintf(f, ": ");
            if (r->text) json_string(f, r->text);
            else if (isfinite(r->value)) fprintf(f, "%.10g", r->value);
            else fprintf(f, "null");
            first_key = 0;
        }
        fprintf(f, "\n  }");
    }
    fprintf(f, "\n}\n");
}

/* ---------------------------------------------------------------- cheap parallel PRNG fill */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform values in [-scale, scale), deterministic for a given seed whatever the thread count. */
static void fill_uniform(float *p, size_t n, float scale, uint64_t seed) {
    const size_t chunk = 1 << 16;
    size_t nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        uint64_t s = seed * 0x100000001B3ULL + c;
        size_t end = (c + 1) * chunk < n ? (c + 1) * chunk : n;
        for (size_t i = c * chunk; i < end; i++) {
            uint64_t r = splitmix(&s);
            p[i] = scale * ((float)(r >> 40) * (2.0f / 16777216.0f) - 1.0f);
        }
    }
}

static float *big_alloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes);
}

/* ---------------------------------------------------------------- 1. memory bandwidth */

typedef struct {
    double read_gbs, copy_gbs, triad_gbs;
} mem_bw;

/* The read probe is the library's (src/kernels/membw.h), shared with bench_qgemv and `ptq bench`. */
static double sum_array(const float *a, size_t n) { return ptq_read_sum(a, n); }

static volatile double g_sink; /* keeps results alive */

/* `a` holds n floats (1 GiB); copy and triad use its first half and two more arrays of n/2. */
static mem_bw bench_memory(float *a, size_t n) {
    mem_bw r = {0, 0, 0};
    double best = 1e30;
    g_sink = sum_array(a, n); /* warm-up */
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        g_sink = sum_array(a, n);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    r.read_gbs = (double)n * sizeof(float) / best / 1e9;

    size_t h = n / 2;
    float *b = big_alloc(h), *c = big_alloc(h);
    if (!b || !c) {
        free(b);
        free(c);
        r.copy_gbs = r.triad_gbs = NAN;
        return r;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < h; i++) {
        b[i] = 1.0f;
        c[i] = 2.0f;
    }
    double best_copy = 1e30, best_triad = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = now_s();
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < h; i++) b[i] = a[i];
        double t1 = now_s();
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < h; i++) a[i] = b[i] + 3.0f * c[i];
        double t2 = now_s();
        if (rep == 0) continue; /* warm-up */
        if (t1 - t0 < best_copy) best_copy = t1 - t0;
        if (t2 - t1 < best_triad) best_triad = t2 - t1;
    }
    g_sink = a[h / 3] + b[h / 5];
    /* STREAM convention: bytes named in the source (copy: read + write; triad: 2 reads + write). */
    r.copy_gbs = 2.0 * (double)h * sizeof(float) / best_copy / 1e9;
    r.triad_gbs = 3.0 * (double)h * sizeof(float) / best_triad / 1e9;
    free(b);
    free(c);
    return r;
}

/* ---------------------------------------------------------------- 2. BLAS */

static double time_sgemm(int n, const float *A, const float *B, float *C) {
    double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
    return now_s() - t0;
}

/* Returns GFLOP/s; *n_used gets the size chosen so that one call takes about a second. */
static double bench_sgemm(int *n_used) {
    const int nmax = 4096;
    size_t nn = (size_t)nmax * nmax;
    float *A = big_alloc(nn), *B = big_alloc(nn), *C = big_alloc(nn);
    if (!A || !B || !C) {
        free(A);
        free(B);
        free(C);
        *n_used = 0;
        return NAN;
    }
    fill_uniform(A, nn, 1.0f, 11);
    fill_uniform(B, nn, 1.0f, 12);
    memset(C, 0, nn * sizeof(float));
    /* probe at 1024 (first call also starts OpenBLAS's threads) */
    time_sgemm(1024, A, B, C);
    double tp = time_sgemm(1024, A, B, C);
    double rate = 2.0 * 1024.0 * 1024.0 * 1024.0 / tp;
    int n = nmax;
    while (n > 1024 && 2.0 * (double)n * n * n / rate > 1.5) n -= 512;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t = time_sgemm(n, A, B, C);
        if (t < best) best = t;
    }
    g_sink = C[7];
    free(A);
    free(B);
    free(C);
    *n_used = n;
    return 2.0 * (double)n * n * n / best / 1e9;
}

typedef struct {
    double hot_gbs;    /* the same matrix again and again (may be served from a large L3) */
    double stream_gbs; /* cycling through copies filling `buf`: from DRAM */
} gemv_bw;

/* y = W x with W [rows][cols] row-major, as ptq_linear_forward does for one token. */
static gemv_bw bench_sgemv(int rows, int cols, float *buf, size_t buf_n) {
    gemv_bw r = {NAN, NAN};
    size_t wn = (size_t)rows * cols;
    int copies = (int)(buf_n / wn);
    float *x = big_alloc((size_t)cols), *y = big_alloc((size_t)rows);
    if (!x || !y || copies < 1) {
        free(x);
        free(y);
        return r;
    }
    fill_uniform(x, (size_t)cols, 1.0f, 5);
    double bytes = (double)wn * sizeof(float);
    /* hot: same matrix; repeat for about 0.3 s, best of 3 */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, buf, cols, x, 1, 0.0f, y, 1);
    double t0 = now_s();
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, buf, cols, x, 1, 0.0f, y, 1);
    double t1 = now_s() - t0;
    int reps = (int)(0.1 / (t1 > 1e-6 ? t1 : 1e-6)) + 1;
    double best = 1e30;
    for (int k = 0; k < 3; k++) {
        t0 = now_s();
        for (int i = 0; i < reps; i++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, buf, cols, x, 1, 0.0f, y, 1);
        double t = (now_s() - t0) / reps;
        if (t < best) best = t;
    }
    r.hot_gbs = bytes / best / 1e9;
    /* streamed: one pass through every copy in the buffer (> L3), best of 3 passes */
    best = 1e30;
    for (int k = 0; k < 4; k++) {
        t0 = now_s();
        for (int c = 0; c < copies; c++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, buf + (size_t)c * wn, cols, x, 1, 0.0f, y, 1);
        double t = (now_s() - t0) / copies;
        if (k > 0 && t < best) best = t;
    }
    r.stream_gbs = bytes / best / 1e9;
    g_sink = y[0];
    free(x);
    free(y);
    return r;
}

/* ---------------------------------------------------------------- 3. stories260K */

static void bench_stories(void) {
    const char *sec = "stories260k";
    heading("stories260K (public session API, 1 session per run)");
    const char *root = getenv("PTQ_DATA");
    if (!root || !*root) root = PTQ_DATA_DEFAULT;
    char path[4096];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", root);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(g_tab, "  SKIPPED: %s not found (set PTQ_DATA to the sample data folder)\n", path);
        rec_text(sec, "skipped", "stories260K.bin not found");
        return;
    }
    fclose(f);
    ptq_error err = {0};
    ptq_model *m = NULL;
    if (ptq_model_load(path, &m, &err) != PTQ_OK) {
        fprintf(g_tab, "  SKIPPED: cannot load %s: %s\n", path, err.msg);
        rec_text(sec, "skipped", err.msg);
        return;
    }
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    enum { NTOK = 256 };
    int toks[NTOK];
    uint64_t s = 99;
    for (int i = 0; i < NTOK; i++) toks[i] = (int)(splitmix(&s) % (uint64_t)info.vocab_size);
    if (info.max_seq < NTOK) {
        fprintf(g_tab, "  SKIPPED: model context %d < %d tokens\n", info.max_seq, NTOK);
        rec_text(sec, "skipped", "context too short");
        ptq_model_free(m);
        return;
    }
    const float *logits = NULL;
    double best_prefill = 1e30, best_decode = 1e30;
    ptq_status st = PTQ_OK;
    /* prefill: one feed of 256 tokens; warm-up + best of 7 */
    for (int rep = 0; rep < 8 && st == PTQ_OK; rep++) {
        ptq_session *ses = NULL;
        st = ptq_session_new(m, NTOK, &ses, &err);
        if (st != PTQ_OK) break;
        double t0 = now_s();
        st = ptq_session_feed(ses, toks, NTOK, &logits, &err);
        double t = now_s() - t0;
        if (rep > 0 && t < best_prefill) best_prefill = t;
        ptq_session_free(ses);
    }
    /* decode: 256 feeds of one token; warm-up + best of 3 */
    for (int rep = 0; rep < 4 && st == PTQ_OK; rep++) {
        ptq_session *ses = NULL;
        st = ptq_session_new(m, NTOK, &ses, &err);
        if (st != PTQ_OK) break;
        double t0 = now_s();
        for (int i = 0; i < NTOK && st == PTQ_OK; i++) st = ptq_session_feed(ses, &toks[i], 1, &logits, &err);
        double t = now_s() - t0;
        if (rep > 0 && t < best_decode) best_decode = t;
        ptq_session_free(ses);
    }
    if (st != PTQ_OK) {
        fprintf(g_tab, "  FAILED: %s\n", err.msg);
        rec_text(sec, "error", err.msg);
        ptq_model_free(m);
        return;
    }
    g_sink = logits[0];
    double pf = NTOK / best_prefill, dc = NTOK / best_decode;
    char note[128];
    snprintf(note, sizeof note, "%lld params, %d layers, dim %d", (long long)info.n_params, info.n_layers, info.dim);
    row("prefill, 256 tokens in one feed", pf, "tok/s", note);
    row("decode, 256 feeds of 1 token", dc, "tok/s", "incl. embedding, LM head, logits");
    row("decode time per token", 1e6 * best_decode / NTOK, "us", NULL);
    rec(sec, "params", (double)info.n_params);
    rec(sec, "prefill_tokens", NTOK);
    rec(sec, "prefill_tok_s", pf);
    rec(sec, "decode_tokens", NTOK);
    rec(sec, "decode_tok_s", dc);
    rec(sec, "decode_us_per_token", 1e6 * best_decode / NTOK);
    ptq_model_free(m);
}

/* ---------------------------------------------------------------- 4. synthetic 7B block */

enum { B_DIM = 4096, B_HIDDEN = 11008, B_HEADS = 32, B_HEAD_DIM = 128, B_VOCAB = 256, B_PREFILL = 128, B_DECODE = 64 };

static int set_linear(ptq_model *m, ptq_linear *l, const char *name, int in, int out, uint64_t seed, ptq_error *err) {
    snprintf(l->name, sizeof l->name, "%s", name);
    l->in = in;
    l->out = out;
    l->w = ptq_model_floats(m, (size_t)in * out, name, err);
    if (!l->w) return 0;
    fill_uniform(l->w, (size_t)in * out, 0.02f, seed);
    return 1;
}

static ptq_model *build_block_model(ptq_error *err) {
    ptq_model *m = ptq_model_new("synthetic-llama-7b-block", err);
    if (!m) return NULL;
    ptq_config *c = &m->cfg;
    c->arch = PTQ_ARCH_LLAMA;
    c->causal = 1;
    c->dim = B_DIM;
    c->n_layers = 1;
    c->n_heads = B_HEADS;
    c->n_kv_heads = B_HEADS;
    c->head_dim = B_HEAD_DIM;
    c->hidden_dim = B_HIDDEN;
    c->vocab_size = B_VOCAB; /* the LM head is not timed: keep the embedding small */
    c->max_seq = 2048;
    c->norm = PTQ_NORM_RMS;
    c->norm_eps = 1e-5f;
    c->pre_norm = 1;
    c->act = PTQ_ACT_SILU;
    c->gated_mlp = 1;
    c->rope = PTQ_ROPE_HALF;
    c->rope_theta = 10000.0f;
    c->embed_dim = B_DIM;
    snprintf(m->format, sizeof m->format, "synthetic");
    m->blocks = calloc(1, sizeof(ptq_block));
    if (!m->blocks) {
        ptq_model_free(m);
        return NULL;
    }
    ptq_block *b = &m->blocks[0];
    int ok = 1;
    ok = ok && set_linear(m, &b->lin[PTQ_LIN_Q], "model.layers.0.self_attn.q_proj", B_DIM, B_DIM, 1, err);
    ok = ok && set_linear(m, &b->lin[PTQ_LIN_K], "model.layers.0.self_attn.k_proj", B_DIM, B_DIM, 2, err);
    ok = ok && set_linear(m, &b->lin[PTQ_LIN_V], "model.layers.0.self_attn.v_proj", B_DIM, B_DIM, 3, err);
    ok = ok && set_linear(m, &b->lin[PTQ_LIN_O], "model.layers.0.self_attn.o_proj", B_DIM, B_DIM, 4, err);
    ok = ok && set_linear(m, &b->lin[PTQ_LIN_GATE], "model.layers.0.mlp.gate_proj", B_DIM, B_HIDDEN, 5, err);
    ok = ok && set_linear(m, &b->lin[PTQ_LIN_UP], "model.layers.0.mlp.up_proj", B_DIM, B_HIDDEN, 6, err);
    ok = ok && set_linear(m, &b->lin[PTQ_LIN_DOWN], "model.layers.0.mlp.down_proj", B_HIDDEN, B_DIM, 7, err);
    ok = ok && (b->norm1.w = ptq_model_floats(m, B_DIM, "input_layernorm", err)) != NULL;
    ok = ok && (b->norm2.w = ptq_model_floats(m, B_DIM, "post_attention_layernorm", err)) != NULL;
    ok = ok && (m->final_norm.w = ptq_model_floats(m, B_DIM, "model.norm", err)) != NULL;
    ok = ok && (m->tok_emb = ptq_model_floats(m, (size_t)B_VOCAB * B_DIM, "model.embed_tokens", err)) != NULL;
    ok = ok && set_linear(m, &m->head, "lm_head", B_DIM, B_VOCAB, 8, err);
    if (!ok) {
        ptq_model_free(m);
        return NULL;
    }
    for (int i = 0; i < B_DIM; i++) b->norm1.w[i] = b->norm2.w[i] = m->final_norm.w[i] = 1.0f;
    fill_uniform(m->tok_emb, (size_t)B_VOCAB * B_DIM, 1.0f, 9);
    if (ptq_model_validate(m, err) != PTQ_OK) {
        ptq_model_free(m);
        return NULL;
    }
    return m;
}

/* The 7 linear layers of the block called directly through BLAS, as ptq_linear_forward would
 * (sgemv for one row, sgemm otherwise): the reference for the block's own overhead. */
static double time_block_linears(const ptq_block *b, const float *x, float *y, int rows) {
    static const ptq_lin_role roles[] = {PTQ_LIN_Q, PTQ_LIN_K, PTQ_LIN_V, PTQ_LIN_O, PTQ_LIN_GATE, PTQ_LIN_UP, PTQ_LIN_DOWN};
    double t0 = now_s();
    for (int i = 0; i < 7; i++) {
        const ptq_linear *l = &b->lin[roles[i]];
        if (rows == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, l->out, l->in, 1.0f, l->w, l->in, x, 1, 0.0f, y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, l->out, l->in, 1.0f, x, l->in, l->w, l->in, 0.0f,
                        y, l->out);
    }
    return now_s() - t0;
}

/* Read bandwidth over the block's own weights (the bytes one decode step must stream). */
static double time_block_read(const ptq_block *b) {
    double t0 = now_s(), s = 0;
    for (int r = PTQ_LIN_Q; r <= PTQ_LIN_DOWN; r++) s += sum_array(b->lin[r].w, (size_t)b->lin[r].in * b->lin[r].out);
    g_sink = s;
    return now_s() - t0;
}

static void bench_block(double read_gbs, double sgemm_gflops) {
    const char *sec = "block7b";
    heading("synthetic LLaMA-7B block (dim 4096, MLP 11008, 32 heads, 1 layer; ptq_block_forward)");
    ptq_error err = {0};
    double t0 = now_s();
    ptq_model *m = build_block_model(&err);
    if (!m) {
        fprintf(g_tab, "  FAILED to build: %s\n", err.msg);
        rec_text(sec, "error", err.msg);
        return;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "block built in %.1f s", now_s() - t0);
    progress(msg);
    const ptq_block *blk = &m->blocks[0];
    const double params = 4.0 * B_DIM * B_DIM + 3.0 * B_DIM * B_HIDDEN;
    const double wbytes = 4.0 * params;
    size_t xn = (size_t)B_PREFILL * B_DIM;
    float *x0 = big_alloc(xn), *x = big_alloc(xn), *y = big_alloc((size_t)B_PREFILL * B_HIDDEN);
    ptq_kv_cache cache = {0};
    ptq_status st = (x0 && x && y) ? PTQ_OK : PTQ_ERR_NOMEM;
    if (st == PTQ_OK) st = ptq_kv_cache_init(&cache, m, B_PREFILL, &err);
    if (st != PTQ_OK) {
        fprintf(g_tab, "  FAILED: %s\n", st == PTQ_ERR_NOMEM ? "out of memory" : err.msg);
        rec_text(sec, "error", "cannot allocate activations or KV cache");
        goto done;
    }
    fill_uniform(x0, xn, 1.0f, 21);
    fill_uniform(x, xn, 1.0f, 22);

    /* Each round times ptq_block_forward and, right next to it, the same 7 GEMMs/GEMVs called
     * directly and a plain read of the weights, so a noisy neighbour hits all of them alike.
     * Round 0 is a warm-up; the best of the other rounds counts. */
    double best_pf = 1e30, best_pf_blas = 1e30, best_dc = 1e30, best_dc_blas = 1e30, best_rd = 1e30;
    for (int rep = 0; rep < 4 && st == PTQ_OK; rep++) {
        double tb = time_block_linears(blk, x, y, B_PREFILL);
        memcpy(x, x0, xn * sizeof(float));
        double ts = now_s();
        st = ptq_block_forward(m, 0, x, 1, B_PREFILL, 0, &cache, NULL, NULL, &err);
        double t = now_s() - ts;
        if (rep > 0 && t < best_pf) best_pf = t;
        if (rep > 0 && tb < best_pf_blas) best_pf_blas = tb;
    }
    progress("block prefill done");

    /* decode: 1 token at a time at positions 0..63 with a KV cache */
    for (int rep = 0; rep < 3 && st == PTQ_OK; rep++) {
        int steps = rep == 0 ? 4 : B_DECODE;
        double tr = time_block_read(blk);
        double tb = 0;
        for (int p = 0; p < steps; p++) tb += time_block_linears(blk, x0 + (size_t)p * B_DIM, y, 1);
        double ts = now_s();
        for (int p = 0; p < steps && st == PTQ_OK; p++) {
            memcpy(x, x0 + (size_t)p * B_DIM, B_DIM * sizeof(float));
            st = ptq_block_forward(m, 0, x, 1, 1, p, &cache, NULL, NULL, &err);
        }
        double t = (now_s() - ts) / steps;
        tb /= steps;
        if (rep > 0 && t < best_dc) best_dc = t;
        if (rep > 0 && tb < best_dc_blas) best_dc_blas = tb;
        if (tr < best_rd) best_rd = tr;
    }
    if (st != PTQ_OK) {
        fprintf(g_tab, "  FAILED: %s\n", err.msg);
        rec_text(sec, "error", err.msg);
        goto done;
    }
    g_sink = x[0];

    double pf_tok = B_PREFILL / best_pf;
    double pf_gflops = 2.0 * params * B_PREFILL / best_pf / 1e9;
    double dc_tok = 1.0 / best_dc;
    double dc_gbs = wbytes * dc_tok / 1e9;
    double rd_gbs = wbytes / best_rd / 1e9;
    double bound1 = read_gbs * 1e9 / wbytes; /* from section 1 */
    double bound2 = rd_gbs * 1e9 / wbytes;   /* re-measured next to the decode */
    char note[160];
    row("weights of the block", wbytes / 1e6, "MB", "4*(4*4096^2 + 3*4096*11008) bytes");
    snprintf(note, sizeof note, "%.1f GFLOP/s = %.0f%% of sgemm %.0f GFLOP/s", pf_gflops,
             100.0 * pf_gflops / sgemm_gflops, sgemm_gflops);
    row("prefill, 128 tokens", pf_tok, "tok/s", note);
    snprintf(note, sizeof note, "block at %.0f%% of its 7 GEMMs called directly", 100.0 * best_pf_blas / best_pf);
    row("  the 7 GEMMs alone (128 rows)", B_PREFILL / best_pf_blas, "tok/s", note);
    snprintf(note, sizeof note, "%.1f ms/token, weights streamed at %.1f GB/s", 1e3 * best_dc, dc_gbs);
    row("decode, 1 token at positions 0..63", dc_tok, "tok/s", note);
    snprintf(note, sizeof note, "block at %.0f%% of its 7 GEMVs called directly", 100.0 * best_dc_blas / best_dc);
    row("  the 7 GEMVs alone", 1.0 / best_dc_blas, "tok/s", note);
    snprintf(note, sizeof note, "%.1f GB/s (section 1); decode at %.0f%%", read_gbs, 100.0 * dc_tok / bound1);
    row("  bound: weights / read bandwidth", bound1, "tok/s", note);
    snprintf(note, sizeof note, "%.1f GB/s (read of the weights); decode at %.0f%%", rd_gbs, 100.0 * dc_tok / bound2);
    row("  bound: weights / read bw next to decode", bound2, "tok/s", note);
    rec(sec, "weight_bytes", wbytes);
    rec(sec, "params", params);
    rec(sec, "prefill_tokens", B_PREFILL);
    rec(sec, "prefill_tok_s", pf_tok);
    rec(sec, "prefill_gflops", pf_gflops);
    rec(sec, "prefill_fraction_of_sgemm", pf_gflops / sgemm_gflops);
    rec(sec, "prefill_gemms_only_tok_s", B_PREFILL / best_pf_blas);
    rec(sec, "prefill_fraction_of_gemms_only", best_pf_blas / best_pf);
    rec(sec, "decode_tokens", B_DECODE);
    rec(sec, "decode_tok_s", dc_tok);
    rec(sec, "decode_ms_per_token", 1e3 * best_dc);
    rec(sec, "decode_weight_gbs", dc_gbs);
    rec(sec, "decode_gemvs_only_tok_s", 1.0 / best_dc_blas);
    rec(sec, "decode_fraction_of_gemvs_only", best_dc_blas / best_dc);
    rec(sec, "decode_bound_tok_s", bound1);
    rec(sec, "decode_fraction_of_bound", dc_tok / bound1);
    rec(sec, "weights_read_gbs", rd_gbs);
    rec(sec, "decode_bound_adjacent_tok_s", bound2);
    rec(sec, "decode_fraction_of_bound_adjacent", dc_tok / bound2);
done:
    ptq_kv_cache_free(&cache);
    free(x0);
    free(x);
    free(y);
    ptq_model_free(m);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [--json]\n  Float-path benchmark (about a minute). See bench/README.md.\n", argv[0]);
            return 0;
        } else {
            fprintf(stderr, "%s: unknown argument '%s' (usage: %s [--json])\n", argv[0], argv[i], argv[0]);
            return 2;
        }
    }
    g_tab = json ? stderr : stdout;
    double t_start = now_s();

    int threads = omp_get_max_threads();
    fprintf(g_tab, "ptq %s float-path benchmark: %d OpenMP threads, OpenBLAS %s\n", ptq_version(), threads,
            openblas_get_config());
    cpu_sample cpu0 = cpu_now();
    double load0 = load_avg();
    fprintf(g_tab, "load average before: %.2f (%d CPUs online)\n", load0, omp_get_num_procs());
    rec("machine", "omp_threads", threads);
    rec("machine", "cpus", omp_get_num_procs());
    rec("machine", "load_avg_before", load0);
    rec("machine", "openblas_threads", openblas_get_num_threads());
    rec_text("machine", "openblas_config", openblas_get_config());

    /* 1. memory */
    progress("memory bandwidth (1 GiB array)...");
    size_t n = (size_t)1 << 28; /* 1 GiB of floats */
    float *a = big_alloc(n);
    if (!a) {
        fprintf(stderr, "cannot allocate 1 GiB for the bandwidth test\n");
        return 1;
    }
    fill_uniform(a, n, 1.0f, 1);
    mem_bw bw = bench_memory(a, n);
    heading("memory bandwidth (all threads, 1 GiB read array; copy/triad on 512 MiB arrays, STREAM byte counts)");
    row("read (sum), best of 5", bw.read_gbs, "GB/s", NULL);
    row("copy  b = a", bw.copy_gbs, "GB/s", NULL);
    row("triad a = b + s*c", bw.triad_gbs, "GB/s", NULL);
    rec("memory", "read_gbs", bw.read_gbs);
    rec("memory", "copy_gbs", bw.copy_gbs);
    rec("memory", "triad_gbs", bw.triad_gbs);

    /* 2. BLAS */
    progress("sgemv...");
    fill_uniform(a, n, 1.0f, 2);
    gemv_bw g1 = bench_sgemv(4096, 4096, a, n);
    gemv_bw g2 = bench_sgemv(11008, 4096, a, n);
    free(a);
    progress("sgemm...");
    int gn = 0;
    double gflops = bench_sgemm(&gn);
    heading("BLAS (OpenBLAS, all threads)");
    char label[96];
    snprintf(label, sizeof label, "sgemm %dx%dx%d, best of 3", gn, gn, gn);
    row(label, gflops, "GFLOP/s", NULL);
    row("sgemv 4096x4096, matrix from DRAM", g1.stream_gbs, "GB/s", "cycling through 16 copies (1 GiB)");
    row("sgemv 4096x4096, same matrix (hot)", g1.hot_gbs, "GB/s", "64 MiB: may sit in L3");
    row("sgemv 11008x4096, matrix from DRAM", g2.stream_gbs, "GB/s", "cycling through 5 copies (0.9 GB)");
    row("sgemv 11008x4096, same matrix (hot)", g2.hot_gbs, "GB/s", "180 MB: may sit in L3");
    rec("blas", "sgemm_n", gn);
    rec("blas", "sgemm_gflops", gflops);
    rec("blas", "sgemv_4096x4096_dram_gbs", g1.stream_gbs);
    rec("blas", "sgemv_4096x4096_hot_gbs", g1.hot_gbs);
    rec("blas", "sgemv_11008x4096_dram_gbs", g2.stream_gbs);
    rec("blas", "sgemv_11008x4096_hot_gbs", g2.hot_gbs);

    /* 3. stories260K */
    progress("stories260K...");
    bench_stories();

    /* 4. synthetic block */
    progress("synthetic 7B block...");
    bench_block(bw.read_gbs, gflops);

    double total = now_s() - t_start;
    double load1 = load_avg();
    double others = others_fraction(cpu0, cpu_now());
    fprintf(g_tab, "\ntotal benchmark time %.1f s; load average after: %.2f\n", total, load1);
    fprintf(g_tab, "CPU time taken by other processes during the run: %.0f%% of the machine\n", 100.0 * others);
    if (others > 0.10)
        fprintf(g_tab, "WARNING: other processes were competing for the CPUs; numbers (ratios too) are unreliable\n");
    rec("machine", "others_cpu_fraction", others);
    rec("machine", "benchmark_seconds", total);
    rec("machine", "load_avg_after", load1);
    if (json) print_json(stdout);
    return 0;
}
