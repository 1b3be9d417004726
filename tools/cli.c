/* Shared pieces of the CLI (see cli.h). */
#include <cJSON.h>
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

const char *opt_str(args *a, const char *name, const char *def) {
    for (int i = 0; i < a->argc; i++)
        if (strcmp(a->argv[i], name) == 0) {
            a->used[i] = 1;
            if (i + 1 < a->argc) {
                a->used[i + 1] = 1;
                return a->argv[i + 1];
            }
            fprintf(stderr, "ptq: %s needs a value\n", name);
            exit(2);
        }
    return def;
}

int opt_flag(args *a, const char *name) {
    for (int i = 0; i < a->argc; i++)
        if (strcmp(a->argv[i], name) == 0) {
            a->used[i] = 1;
            return 1;
        }
    return 0;
}

double opt_num(args *a, const char *name, double def, double lo, double hi) {
    const char *s = opt_str(a, name, NULL);
    if (!s) return def;
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "ptq: %s expects a number in [%g, %g], got '%s'\n", name, lo, hi, s);
        exit(2);
    }
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
        if (!a->used[i]) return die("unknown argument '%s' (see ptq --help)", a->argv[i]);
    return 0;
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

int load_model(const char *path, ptq_model **m) {
    ptq_error e;
    if (!path) return die("missing MODEL argument");
    if (ptq_model_load(path, m, &e) != PTQ_OK) return fail(&e);
    return 0;
}

/* --tokenizer, or a tokenizer found beside the model (tokenizer.bin, tok<vocab>.bin, vocab.json). */
int load_tokenizer(const char *model_path, const char *tok_path, int vocab, ptq_tokenizer **t) {
    char buf[4200];
    if (!tok_path) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", model_path);
        if (!ptq_is_dir(dir)) {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0;
            else snprintf(dir, sizeof dir, ".");
        }
        const char *cands[3] = {"tokenizer.bin", NULL, "vocab.json"};
        char tokn[32];
        snprintf(tokn, sizeof tokn, "tok%d.bin", vocab);
        cands[1] = tokn;
        for (int i = 0; i < 3 && !tok_path; i++) {
            snprintf(buf, sizeof buf, "%s/%s", dir, cands[i]);
            if (ptq_file_exists(buf)) tok_path = buf;
        }
        if (!tok_path) return die("no tokenizer found beside %s: pass --tokenizer FILE", model_path);
    }
    ptq_error e;
    if (ptq_tokenizer_load(tok_path, vocab, t, &e) != PTQ_OK) return fail(&e);
    return 0;
}


int parse_text_opts(args *a, text_opts *o) {
    o->tok_path = opt_str(a, "--tokenizer", NULL);
    o->sep = opt_str(a, "--docs-sep", NULL);
    o->first_doc = 0;
    o->last_doc = -1;
    const char *docs = opt_str(a, "--docs", NULL);
    if (docs) {
        char *end;
        long i = strtol(docs, &end, 10), j = -1;
        if (*end == ':' && end[1]) j = strtol(end + 1, &end, 10);
        else if (*end == ':') end++;
        if (*end || i < 0 || (j >= 0 && j <= i)) return die("--docs expects I:J (documents I to J-1) or I:, got '%s'", docs);
        if (!o->sep) return die("--docs needs --docs-sep to split the text into documents");
        o->first_doc = (int)i;
        o->last_doc = (int)j;
    }
    return 0;
}

/* Tokenizer (from --tokenizer or beside the model) and the tokens of a text file. */
int encode_text_file(const char *model_path, const text_opts *o, int vocab, const char *file,
                            ptq_tokenizer **t, int **toks, int64_t *n) {
    *t = NULL;
    *toks = NULL;
    if (load_tokenizer(model_path, o->tok_path, vocab, t)) return 1;
    char *buf;
    size_t len;
    ptq_error e;
    if (ptq_read_file(file, &buf, &len, &e) != PTQ_OK) return fail(&e);
    int rc = 0;
    if (ptq_encode_documents(*t, buf, len, o->sep, o->first_doc, o->last_doc, toks, n, &e) != PTQ_OK)
        rc = fail(&e);
    free(buf);
    return rc;
}

int load_images(ptq_model *m, const char *images, const char *labels, int first, int count,
                       ptq_image_set *set) {
    ptq_error e;
    ptq_status s = ptq_is_dir(images) ? ptq_images_load_folder(m, images, labels, first, count, set, &e)
                                      : ptq_images_load_idx(m, images, labels, first, count, set, &e);
    return s == PTQ_OK ? 0 : fail(&e);
}
