/* Shared pieces of the CLI (see cli.h). */
#include <cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/file.h"
#include "io/gguf.h"
#include "kernels/qgemv_a8.h"
#include "models/model.h"

/* ---------------------------------------------------------------- arguments */


int die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ptq: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

int fail_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ptq: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

/* Index of option `name`, or -1; exits 2 when it is given twice. A value is skipped, so that
   "--docs-sep --docs-sep" is one option and its value. */
static int find_opt(args *a, const char *name, int has_value) {
    int at = -1;
    for (int i = 0; i < a->argc; i++) {
        if (strcmp(a->argv[i], name) != 0) continue;
        if (at >= 0) exit(die("option %s given twice", name));
        at = i;
        i += has_value;
    }
    return at;
}

const char *opt_str(args *a, const char *name, const char *def) {
    int i = find_opt(a, name, 1);
    if (i < 0) return def;
    a->used[i] = 1;
    if (i + 1 >= a->argc) exit(die("%s needs a value", name));
    a->used[i + 1] = 1;
    return a->argv[i + 1];
}

int opt_flag(args *a, const char *name) {
    int i = find_opt(a, name, 0);
    if (i >= 0) a->used[i] = 1;
    return i >= 0;
}

double opt_num(args *a, const char *name, double def, double lo, double hi) {
    const char *s = opt_str(a, name, NULL);
    if (!s) return def;
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || !(v >= lo && v <= hi))
        exit(die("%s expects a number in [%g, %g], got '%s'", name, lo, hi, s));
    return v;
}

/* A decimal integer at the start of s (an optional '-', then digits; no space, no '+'): the end of it, or NULL
   when there is none or it does not fit in a long long. */
static const char *scan_int(const char *s, long long *v) {
    const char *d = s + (*s == '-');
    if (*d < '0' || *d > '9') return NULL;
    errno = 0;
    char *end;
    *v = strtoll(s, &end, 10);
    return errno == ERANGE ? NULL : end;
}

long long opt_int(args *a, const char *name, long long def, long long lo, long long hi) {
    const char *s = opt_str(a, name, NULL);
    if (!s) return def;
    long long v;
    const char *end = scan_int(s, &v);
    if (!end || *end || v < lo || v > hi) exit(die("%s expects an integer in [%lld, %lld], got '%s'", name, lo, hi, s));
    return v;
}

/* The first positional argument (the model) and a check that nothing was left unrecognised. */
const char *positional(args *a) {
    for (int i = 0; i < a->argc; i++)
        if (!a->used[i] && a->argv[i][0] != '-') {
            a->used[i] = 1;
            return a->argv[i];
        }
    return NULL;
}

int check_unused(args *a) {
    for (int i = 0; i < a->argc; i++)
        if (!a->used[i]) return die("unknown argument '%s' (see ptq help)", a->argv[i]);
    return 0;
}

/* ---------------------------------------------------------------- outputs */

static void add_one(path_list *l, const char *path) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->p = realloc(l->p, (size_t)l->cap * sizeof *l->p);
        if (!l->p) exit(fail_msg("out of memory"));
    }
    l->p[l->n] = strdup(path);
    if (!l->p[l->n]) exit(fail_msg("out of memory"));
    l->n++;
}

/* The files of folder dir (one level) that keep(name) accepts, or all when keep is NULL. */
static void add_folder(path_list *l, const char *dir, int (*keep)(const char *name)) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (!keep || keep(e->d_name))) {
            char p[8400];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            add_one(l, p);
        }
    closedir(d);
}

void paths_add(path_list *l, const char *path) {
    if (!path) return;
    add_one(l, path);
    if (ptq_is_dir(path)) add_folder(l, path, NULL); /* a folder of images, a model folder */
}

void paths_free(path_list *l) {
    for (int i = 0; i < l->n; i++) free(l->p[i]);
    free(l->p);
    memset(l, 0, sizeof *l);
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* What the loaders read beside a model file: config.json, (sharded) safetensors and their index, tokenizers. */
static int model_side_file(const char *n) {
    return has_suffix(n, ".safetensors") || has_suffix(n, ".json") || !strcmp(n, "merges.txt") ||
           !strcmp(n, "tokenizer.model") || (!strncmp(n, "tok", 3) && has_suffix(n, ".bin"));
}

void paths_add_model(path_list *l, const char *model_path) {
    if (!model_path) return;
    paths_add(l, model_path);
    if (ptq_is_dir(model_path)) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", model_path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0; /* "/model.bin" */
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    add_folder(l, dir, model_side_file);
}

int check_outputs(const char *const *what, const char *const *outs, int n, const path_list *inputs) {
    ptq_error e;
    for (int i = 0; i < n; i++) {
        if (!outs[i]) continue;
        if (ptq_check_output(what[i], outs[i], (const char *const *)inputs->p, inputs->n, &e) != PTQ_OK)
            return die("%s", e.msg);
        for (int j = 0; j < i; j++)
            if (outs[j] && ptq_same_path(outs[i], outs[j]))
                return die("%s %s and %s %s name the same file", what[j], outs[j], what[i], outs[i]);
    }
    return 0;
}

/* Temporary names to remove on a signal. Written before the handler can need them and only read there;
   the handler uses only async-signal-safe calls (unlink, signal, raise). */
#define MAX_TEMPS 16
static char temps[MAX_TEMPS][4300];
static volatile sig_atomic_t n_temps;

void cleanup_on_signal(const char *path) {
    if (n_temps < MAX_TEMPS && ptq_atomic_tmp_name(path, temps[n_temps], sizeof temps[0])) n_temps++;
}

static void on_signal(int sig) {
    for (int i = 0; i < n_temps; i++) unlink(temps[i]);
    signal(sig, SIG_DFL);
    raise(sig); /* ends the process as the signal would have, with its exit status */
}

void install_signal_cleanup(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) sigaddset(&sa.sa_mask, sigs[i]); /* one handler at a time */
    for (int i = 0; i < 3; i++) {
        struct sigaction old;
        /* a signal ignored from the start (nohup, a background job of a script) stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(sigs[i], &sa, NULL);
    }
}

/* ---------------------------------------------------------------- progress */


double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void on_progress(void *user, const char *what, int64_t done, int64_t total) {
    progress_state *p = user;
    if (!p->enabled) return;
    if (strcmp(p->what, what) != 0 || done <= 1) {
        snprintf(p->what, sizeof p->what, "%s", what);
        p->start = now_s();
    }
    double el = now_s() - p->start;
    double eta = done > 0 ? el * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\r%-10s %lld/%lld (%3.0f%%)  %.1fs elapsed, %.1fs left   ", what, (long long)done,
            (long long)total, total ? 100.0 * (double)done / (double)total : 100.0, el, eta);
    if (done >= total) fprintf(stderr, "\n");
    fflush(stderr);
}

void on_log(void *user, ptq_log_level level, const char *msg) {
    (void)user;
    if (level >= PTQ_LOG_INFO) fprintf(stderr, "%s%s\n", level == PTQ_LOG_WARN ? "warning: " : "", msg);
}

ptq_callbacks make_callbacks(progress_state *ps, int json) {
    memset(ps, 0, sizeof *ps);
    ps->enabled = !json && isatty(2);
    ptq_callbacks cb = {on_log, on_progress, ps};
    if (json) cb.log = NULL;
    return cb;
}

int fail(const ptq_error *e) {
    fprintf(stderr, "ptq: error: %s\n", e->msg);
    return 1;
}

/* ---------------------------------------------------------------- shared loading */

int load_model(const char *path, ptq_model **m) { return load_model_streamed(path, 0, m); }

int load_model_streamed(const char *path, int stream, ptq_model **m) {
    ptq_error e;
    if (!path) return die("missing MODEL argument");
    /* PTQ_SKIP_CHECKSUMS=1: the user trusts the file (docs/FORMAT.md); only the tool reads the environment */
    ptq_load_options o = ptq_load_default_options();
    o.stream_weights = stream;
    const char *skip = getenv("PTQ_SKIP_CHECKSUMS");
    if (skip && strcmp(skip, "1") == 0) o.verify_checksums = 0;
    if (ptq_model_load_ex(path, &o, m, &e) != PTQ_OK) return fail(&e);
    return 0;
}

/* A GGUF's k-quant matrices kept in their blocks: --act8 applies to them too (kernels/ggml_gemm.h) */
static int kquant_linear(const ptq_linear *l) {
    return ptq_linear_is_ggml(l) && l->ggml_type >= PTQ_GGML_Q2_K && l->ggml_type <= PTQ_GGML_Q6_K;
}

int apply_act8(ptq_model *m, const char *path) {
    ptq_quant_summary qs;
    ptq_model_quant_summary(m, &qs);
    int kq = kquant_linear(&m->head);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++) kq += kquant_linear(&m->blocks[l].lin[r]);
    if (qs.linears == 0 && kq == 0)
        return die("--act8: %s has no packed low-bit layers (int8 activations apply to weights quantized "
                   "with --wbits 2, 3, 4 or 8, and to a GGUF's k-quant matrices)", path);
    if (ptq_a8_isa_best() == PTQ_ISA_SCALAR)
        fprintf(stderr, "note: --act8 has no effect on this CPU (it needs AVX2); float activations are used\n");
    ptq_model_set_act8(m, 1);
    return 0;
}

/* --tokenizer, else the tokenizer the model file carries (.ptq, GGUF), else one in the model's folder; BOS/EOS from
   the model's config where the tokenizer files do not say (ptq_tokenizer_load_for_model). */
int load_tokenizer(const ptq_model *m, const char *tok_path, ptq_tokenizer **t) {
    ptq_error e;
    if (ptq_tokenizer_load_for_model(m, tok_path, t, &e) != PTQ_OK) return fail(&e);
    return 0;
}

int parse_text_opts(args *a, text_opts *o) {
    o->tok_path = opt_str(a, "--tokenizer", NULL);
    o->sep = opt_str(a, "--docs-sep", NULL);
    o->first_doc = 0;
    o->last_doc = -1;
    if (o->sep && !*o->sep) return die("--docs-sep needs a non-empty separator");
    const char *docs = opt_str(a, "--docs", NULL);
    if (docs) {
        long long i, j = -1;
        const char *p = scan_int(docs, &i);
        int open_end = p && !strcmp(p, ":");
        if (p && *p == ':' && !open_end) p = scan_int(p + 1, &j);
        else if (!open_end) p = NULL;
        if (!p || (!open_end && *p) || i < 0 || i >= INT_MAX || (!open_end && (j <= i || j > INT_MAX)))
            return die("--docs expects I:J (documents I to J-1, 0 <= I < J <= %d) or I:, got '%s'", INT_MAX, docs);
        if (!o->sep) return die("--docs needs --docs-sep to split the text into documents");
        o->first_doc = (int)i;
        o->last_doc = (int)j;
    }
    return 0;
}

/* Tokenizer (from --tokenizer or beside the model) and the tokens of a text file. */
int encode_text_file(const ptq_model *m, const text_opts *o, const char *file, ptq_tokenizer **t, int **toks,
                     int64_t *n) {
    *t = NULL;
    *toks = NULL;
    if (load_tokenizer(m, o->tok_path, t)) return 1;
    char *buf;
    size_t len;
    ptq_error e;
    if (ptq_read_file(file, &buf, &len, &e) != PTQ_OK) return fail(&e);
    size_t k = 0;
    while (k < len && isspace((unsigned char)buf[k])) k++;
    int rc = 0;
    if (k == len) rc = fail_msg("%s: the text file is empty (%s): there is nothing to tokenize", file,
                                len ? "only white space" : "0 bytes");
    else if (ptq_encode_documents(*t, buf, len, o->sep, o->first_doc, o->last_doc, toks, n, &e) != PTQ_OK)
        rc = fail(&e);
    else if (*n == 0) rc = fail_msg("%s: the text has no tokens", file);
    free(buf);
    return rc;
}

/* Once per run: say when preprocessor_config.json's normalisation replaces a different one in config.json. */
static void image_prep_note(const ptq_model *m) {
    static int said;
    ptq_image_prep_info pi;
    ptq_error e;
    if (said || ptq_model_image_prep(m, &pi, &e) != PTQ_OK || !pi.overridden) return;
    said = 1;
    char hf[160] = "", cfg[160] = "";
    for (int c = 0; c < pi.channels; c++) {
        snprintf(hf + strlen(hf), sizeof hf - strlen(hf), "%s%g/%g", c ? ", " : "", (double)pi.mean[c],
                 (double)pi.std[c]);
        snprintf(cfg + strlen(cfg), sizeof cfg - strlen(cfg), "%s%g/%g", c ? ", " : "", (double)pi.config_mean[c],
                 (double)pi.config_std[c]);
    }
    fprintf(stderr, "note: images are normalised with preprocessor_config.json's mean/std (%s), not config.json's (%s)\n",
            hf, cfg);
}

int load_images(ptq_model *m, const char *images, const char *labels, int first, int count,
                       ptq_image_set *set) {
    ptq_error e;
    image_prep_note(m);
    int dir = ptq_is_dir(images), n = 0, skipped = 0;
    if (dir && !labels && ptq_images_count_folder(images, &n, &skipped, &e) == PTQ_OK && skipped)
        fprintf(stderr, "note: %s: %d image file%s, %d other entr%s skipped (only *.jpg, *.jpeg, *.png, *.bmp are read)\n",
                images, n, n == 1 ? "" : "s", skipped, skipped == 1 ? "y" : "ies");
    ptq_status s = dir ? ptq_images_load_folder(m, images, labels, first, count, set, &e)
                       : ptq_images_load_idx(m, images, labels, first, count, set, &e);
    return s == PTQ_OK ? 0 : fail(&e);
}
