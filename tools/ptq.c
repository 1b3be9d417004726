/* ptq: the command-line tool. Thin: argument parsing, progress display, and calls into libptq. */
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "ptq.h"

/* ---------------------------------------------------------------- arguments */

typedef struct {
    int argc;
    char **argv;
    int *used;
} args;

static int die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ptq: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

static const char *opt_str(args *a, const char *name, const char *def) {
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

static int opt_flag(args *a, const char *name) {
    for (int i = 0; i < a->argc; i++)
        if (strcmp(a->argv[i], name) == 0) {
            a->used[i] = 1;
            return 1;
        }
    return 0;
}

static double opt_num(args *a, const char *name, double def, double lo, double hi) {
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
static const char *positional(args *a) {
    for (int i = 0; i < a->argc; i++)
        if (!a->used[i] && a->argv[i][0] != '-') {
            a->used[i] = 1;
            return a->argv[i];
        }
    return NULL;
}

static int check_unused(args *a) {
    for (int i = 0; i < a->argc; i++)
        if (!a->used[i]) return die("unknown argument '%s' (see ptq --help)", a->argv[i]);
    return 0;
}

/* ---------------------------------------------------------------- progress */

typedef struct {
    int enabled;
    double start;
    char what[32];
} progress_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_progress(void *user, const char *what, int64_t done, int64_t total) {
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

static void on_log(void *user, ptq_log_level level, const char *msg) {
    (void)user;
    if (level >= PTQ_LOG_INFO) fprintf(stderr, "%s%s\n", level == PTQ_LOG_WARN ? "warning: " : "", msg);
}

static ptq_callbacks make_callbacks(progress_state *ps, int json) {
    memset(ps, 0, sizeof *ps);
    ps->enabled = !json && isatty(2);
    ptq_callbacks cb = {on_log, on_progress, ps};
    if (json) cb.log = NULL;
    return cb;
}

static int fail(const ptq_error *e) {
    fprintf(stderr, "ptq: error: %s\n", e->msg);
    return 1;
}

/* ---------------------------------------------------------------- shared loading */

static int load_model(const char *path, ptq_model **m) {
    ptq_error e;
    if (!path) return die("missing MODEL argument");
    if (ptq_model_load(path, m, &e) != PTQ_OK) return fail(&e);
    return 0;
}

/* --tokenizer, or a tokenizer found beside the model (tokenizer.bin, tok<vocab>.bin, vocab.json). */
static int load_tokenizer(const char *model_path, const char *tok_path, int vocab, ptq_tokenizer **t) {
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

/* --tokenizer, --docs-sep and --docs I:J: how a text file becomes tokens. */
typedef struct {
    const char *tok_path, *sep;
    int first_doc, last_doc;
} text_opts;

static int parse_text_opts(args *a, text_opts *o) {
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
static int encode_text_file(const char *model_path, const text_opts *o, int vocab, const char *file,
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

static int load_images(ptq_model *m, const char *images, const char *labels, int first, int count,
                       ptq_image_set *set) {
    ptq_error e;
    ptq_status s = ptq_is_dir(images) ? ptq_images_load_folder(m, images, labels, first, count, set, &e)
                                      : ptq_images_load_idx(m, images, labels, first, count, set, &e);
    return s == PTQ_OK ? 0 : fail(&e);
}

/* ---------------------------------------------------------------- eval */

static int cmd_eval(args *a) {
    int json = opt_flag(a, "--json");
    const char *text = opt_str(a, "--text", NULL);
    text_opts to;
    if (parse_text_opts(a, &to)) return 2;
    int ctx = (int)opt_num(a, "--ctx", 0, 1, 1 << 20);
    const char *images = opt_str(a, "--images", NULL), *labels = opt_str(a, "--labels", NULL);
    int first = (int)opt_num(a, "--first", 0, 0, 1e9), count = (int)opt_num(a, "--count", 0, 0, 1e9);
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    if (!text == !images) return die("eval needs exactly one of --text FILE or --images IMAGES --labels LABELS");
    progress_state ps;
    ptq_callbacks cb = make_callbacks(&ps, json);
    ptq_model *m;
    if (load_model(path, &m)) return 1;
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    ptq_error e;
    int rc = 0;
    if (text) {
        if (!info.is_language_model) {
            ptq_model_free(m);
            return die("%s is an image model: use --images", path);
        }
        ptq_tokenizer *t;
        int *toks = NULL;
        int64_t n = 0;
        ptq_ppl_params pp = ptq_ppl_default_params();
        pp.ctx = ctx;
        pp.cb = cb;
        ptq_ppl_result r;
        rc = encode_text_file(path, &to, info.vocab_size, text, &t, &toks, &n);
        if (!rc && ptq_eval_perplexity(m, toks, n, &pp, &r, &e) != PTQ_OK) rc = fail(&e);
        if (!rc) {
            if (json)
                printf("{\"tokens\": %lld, \"mean_ce\": %.6f, \"ppl\": %.6f, \"ppl_stderr\": %.6f}\n",
                       (long long)r.tokens, r.mean_ce, r.ppl, r.ppl_stderr);
            else
                printf("%s: %lld tokens, mean cross-entropy %.4f nats, perplexity %.4f +/- %.4f\n", text,
                       (long long)r.tokens, r.mean_ce, r.ppl, r.ppl_stderr);
        }
        free(toks);
        ptq_tokenizer_free(t);
    } else {
        if (info.is_language_model) {
            ptq_model_free(m);
            return die("%s is a language model: use --text", path);
        }
        if (!labels) {
            ptq_model_free(m);
            return die("--images needs --labels");
        }
        ptq_image_set set;
        if (load_images(m, images, labels, first, count, &set)) {
            rc = 1;
        } else {
            ptq_acc_result r;
            if (ptq_eval_accuracy(m, &set, &cb, &r, &e) != PTQ_OK) rc = fail(&e);
            else if (json) printf("{\"images\": %d, \"top1\": %.4f, \"top5\": %.4f}\n", r.images, r.top1, r.top5);
            else printf("%d images: top-1 %.2f%%, top-5 %.2f%%\n", r.images, r.top1, r.top5);
            ptq_image_set_free(&set);
        }
    }
    ptq_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- generate */

static int cmd_generate(args *a) {
    int json = opt_flag(a, "--json");
    const char *tok_path = opt_str(a, "--tokenizer", NULL), *prompt = opt_str(a, "--prompt", "");
    int steps = (int)opt_num(a, "--steps", 128, 1, 1 << 20);
    ptq_sampler_params sp = ptq_sampler_default_params();
    sp.temperature = (float)opt_num(a, "--temperature", 1.0, 0, 100);
    sp.top_p = (float)opt_num(a, "--top-p", 0.9, 0, 1);
    sp.seed = (uint64_t)opt_num(a, "--seed", 42, 0, 1.8e19);
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    ptq_model *m;
    if (load_model(path, &m)) return 1;
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    if (!info.is_language_model) {
        ptq_model_free(m);
        return die("%s is an image model: generate needs a language model", path);
    }
    ptq_tokenizer *t;
    if (load_tokenizer(path, tok_path, info.vocab_size, &t)) {
        ptq_model_free(m);
        return 1;
    }
    ptq_error e;
    int *toks = NULL, n = 0, rc = 0;
    ptq_session *s = NULL;
    if (ptq_tokenizer_encode(t, prompt, strlen(prompt), 1, &toks, &n, &e) != PTQ_OK ||
        ptq_session_new(m, 0, &s, &e) != PTQ_OK) {
        rc = fail(&e);
        goto out;
    }
    if (n == 0) return die("empty prompt and the tokenizer has no BOS token");
    if (n + steps > info.max_seq) steps = info.max_seq - n;
    uint64_t rng = sp.seed ? sp.seed : 1;
    const float *logits;
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    text[0] = 0;
    double t0 = now_s(), t_first = 0;
    if (ptq_session_feed(s, toks, n, &logits, &e) != PTQ_OK) {
        rc = fail(&e);
        free(text);
        goto out;
    }
    t_first = now_s() - t0;
    int prev = toks[n - 1], generated = 0;
    for (int i = 1; i < n; i++) { /* echo the prompt */
        size_t pl;
        const char *piece = ptq_tokenizer_decode(t, toks[i - 1], toks[i], &pl);
        if (!json) fwrite(piece, 1, pl, stdout);
    }
    double t1 = now_s();
    for (int i = 0; i < steps; i++) {
        int next = ptq_sample(logits, info.vocab_size, &sp, &rng);
        if (next == ptq_tokenizer_bos(t) || next == ptq_tokenizer_eos(t)) break;
        size_t pl;
        const char *piece = ptq_tokenizer_decode(t, prev, next, &pl);
        if (json) {
            while (len + pl + 1 > cap) text = realloc(text, cap *= 2);
            memcpy(text + len, piece, pl);
            text[len += pl] = 0;
        } else {
            fwrite(piece, 1, pl, stdout);
            fflush(stdout);
        }
        generated++;
        prev = next;
        if (i + 1 < steps && ptq_session_feed(s, &next, 1, &logits, &e) != PTQ_OK) {
            rc = fail(&e);
            break;
        }
    }
    double dt = now_s() - t1;
    if (!rc) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "prompt", prompt);
            cJSON_AddStringToObject(o, "text", text);
            cJSON_AddNumberToObject(o, "prompt_tokens", n);
            cJSON_AddNumberToObject(o, "generated_tokens", generated);
            cJSON_AddNumberToObject(o, "prefill_s", t_first);
            cJSON_AddNumberToObject(o, "decode_tok_per_s", dt > 0 ? generated / dt : 0);
            char *out = cJSON_PrintUnformatted(o);
            printf("%s\n", out);
            free(out);
            cJSON_Delete(o);
        } else {
            printf("\n");
            fprintf(stderr, "%d tokens, %.1f tokens/s\n", generated, dt > 0 ? generated / dt : 0.0);
        }
    }
    free(text);
out:
    free(toks);
    ptq_session_free(s);
    ptq_tokenizer_free(t);
    ptq_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- inspect */

static int cmd_inspect(args *a) {
    int json = opt_flag(a, "--json");
    const char *act = opt_str(a, "--act", NULL), *labels = opt_str(a, "--labels", NULL);
    text_opts to;
    if (parse_text_opts(a, &to)) return 2;
    int nseq = (int)opt_num(a, "--act-n", 8, 1, 1e6);
    int first = (int)opt_num(a, "--first", 0, 0, 1e9), count = (int)opt_num(a, "--count", 256, 0, 1e9);
    int ctx = (int)opt_num(a, "--ctx", 0, 1, 1 << 20);
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    progress_state ps;
    ptq_callbacks cb = make_callbacks(&ps, json);
    ptq_model *m;
    if (load_model(path, &m)) return 1;
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", path);
    cJSON_AddStringToObject(root, "arch", ptq_arch_name(info.arch));
    cJSON_AddNumberToObject(root, "params", (double)info.n_params);
    cJSON_AddNumberToObject(root, "dim", info.dim);
    cJSON_AddNumberToObject(root, "layers", info.n_layers);
    cJSON_AddNumberToObject(root, "heads", info.n_heads);
    cJSON_AddNumberToObject(root, "kv_heads", info.n_kv_heads);
    cJSON_AddNumberToObject(root, "hidden_dim", info.hidden_dim);
    cJSON_AddNumberToObject(root, info.is_language_model ? "vocab" : "classes", info.vocab_size);
    cJSON_AddNumberToObject(root, info.is_language_model ? "context" : "tokens", info.max_seq);
    if (!json) {
        printf("%s: %s, %lld parameters\n", path, ptq_arch_name(info.arch), (long long)info.n_params);
        printf("  dim %d, %d layers, %d heads (%d key/value), MLP %d, %s %d, %s %d\n", info.dim, info.n_layers,
               info.n_heads, info.n_kv_heads, info.hidden_dim, info.is_language_model ? "vocab" : "classes",
               info.vocab_size, info.is_language_model ? "context" : "tokens", info.max_seq);
        printf("\n  %-48s %-5s %s\n", "tensor", "dtype", "shape");
    }
    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    for (int i = 0; i < ptq_model_tensor_count(m); i++) {
        ptq_tensor_info ti;
        ptq_model_tensor(m, i, &ti);
        char shape[96] = "[";
        for (int d = 0; d < ti.ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "",
                     (long long)ti.shape[d]);
        strcat(shape, "]");
        if (!json) printf("  %-48s %-5s %s\n", ti.name, ti.dtype, shape);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ti.name);
        cJSON_AddStringToObject(o, "dtype", ti.dtype);
        cJSON_AddStringToObject(o, "shape", shape);
        cJSON_AddItemToArray(tensors, o);
    }
    int rc = 0;
    if (act) {
        ptq_error e;
        ptq_calib_data data;
        memset(&data, 0, sizeof data);
        int *toks = NULL;
        int64_t n = 0;
        ptq_image_set set;
        memset(&set, 0, sizeof set);
        ptq_tokenizer *t = NULL;
        if (info.is_language_model) {
            rc = encode_text_file(path, &to, info.vocab_size, act, &t, &toks, &n);
            int T = ctx > 0 && ctx < info.max_seq ? ctx : info.max_seq;
            if (!rc && n < T) T = (int)n;
            data.tokens = toks;
            data.seq_len = T;
            data.n_seqs = rc ? 0 : (int)(n / T < nseq ? n / T : nseq);
        } else {
            if (!labels) rc = die("--act IMAGES needs --labels LABELS for an image model");
            else if (load_images(m, act, labels, first, count, &set)) rc = 1;
            data.images = &set;
        }
        ptq_act_stats *st = NULL;
        int ns = 0;
        if (!rc && ptq_activation_stats(m, &data, &cb, &st, &ns, &e) != PTQ_OK) rc = fail(&e);
        if (!rc) {
            if (!json)
                printf("\n  linear-layer input activations over %s:\n  %-40s %10s %10s %9s %9s %9s %10s\n", act,
                       "layer", "min", "max", "mean", "std", "max/std", "kurtosis");
            cJSON *arr = cJSON_AddArrayToObject(root, "activations");
            for (int i = 0; i < ns; i++) {
                if (!json)
                    printf("  %-40s %10.4f %10.4f %9.4f %9.4f %9.2f %10.2f\n", st[i].name, st[i].min, st[i].max,
                           st[i].mean, st[i].std, st[i].max_abs_over_std, st[i].kurtosis);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "name", st[i].name);
                cJSON_AddNumberToObject(o, "min", st[i].min);
                cJSON_AddNumberToObject(o, "max", st[i].max);
                cJSON_AddNumberToObject(o, "mean", st[i].mean);
                cJSON_AddNumberToObject(o, "std", st[i].std);
                cJSON_AddNumberToObject(o, "max_abs_over_std", st[i].max_abs_over_std);
                cJSON_AddNumberToObject(o, "kurtosis", st[i].kurtosis);
                cJSON_AddItemToArray(arr, o);
            }
        }
        free(st);
        free(toks);
        ptq_image_set_free(&set);
        ptq_tokenizer_free(t);
    }
    if (json && !rc) {
        char *out = cJSON_Print(root);
        printf("%s\n", out);
        free(out);
    }
    cJSON_Delete(root);
    ptq_model_free(m);
    return rc;
}


/* ---------------------------------------------------------------- quantize */

typedef struct {
    int json;
    cJSON *layers;
    int count;
    cJSON *bc; /* BC reports, in order */
} report_state;

static void on_bc(void *user, const ptq_bc_report *r) {
    report_state *rs = user;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "module", r->name);
    cJSON_AddNumberToObject(o, "mse_before", r->mse_before);
    cJSON_AddNumberToObject(o, "mse_after", r->mse_after);
    cJSON_AddNumberToObject(o, "sqnr_before", r->sqnr_before);
    cJSON_AddNumberToObject(o, "sqnr_after", r->sqnr_after);
    if (r->has_holdout) {
        cJSON_AddNumberToObject(o, "holdout_mse_before", r->hold_mse_before);
        cJSON_AddNumberToObject(o, "holdout_mse_after", r->hold_mse_after);
        cJSON_AddNumberToObject(o, "holdout_sqnr_before", r->hold_sqnr_before);
        cJSON_AddNumberToObject(o, "holdout_sqnr_after", r->hold_sqnr_after);
    }
    cJSON_AddItemToArray(rs->bc, o);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The BC report: JSON when FILE ends in .json, else a markdown table. Written atomically. */
static int write_bc_report(const char *path, const cJSON *bc, const char *title) {
    ptq_error e;
    ptq_atomic_file af;
    if (ptq_atomic_open(&af, path, &e) != PTQ_OK) return fail(&e);
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) {
        char *txt = cJSON_Print(bc);
        fprintf(af.f, "%s\n", txt);
        free(txt);
    } else {
        fprintf(af.f, "%s\n\n| module | MSE before | MSE after | SQNR before (dB) | SQNR after (dB) | held-apart MSE before "
                      "| after | held-apart SQNR before | after |\n|---|---|---|---|---|---|---|---|---|\n",
                title);
        const cJSON *o;
        cJSON_ArrayForEach(o, bc) {
            fprintf(af.f, "| %s | %.4g | %.4g | %.2f | %.2f |", cJSON_GetObjectItemCaseSensitive(o, "module")->valuestring,
                    num(o, "mse_before"), num(o, "mse_after"), num(o, "sqnr_before"), num(o, "sqnr_after"));
            if (isnan(num(o, "holdout_mse_before"))) fprintf(af.f, " | | | |\n");
            else
                fprintf(af.f, " %.4g | %.4g | %.2f | %.2f |\n", num(o, "holdout_mse_before"), num(o, "holdout_mse_after"),
                        num(o, "holdout_sqnr_before"), num(o, "holdout_sqnr_after"));
        }
    }
    if (ferror(af.f)) {
        ptq_atomic_abort(&af);
        return die("%s: write failed", path);
    }
    if (ptq_atomic_commit(&af, &e) != PTQ_OK) return fail(&e);
    return 0;
}

static int parse_bc_scope(const char *s, int *scope) {
    *scope = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (strcmp(tok, "linear") == 0) *scope |= PTQ_BC_LINEAR;
        else if (strcmp(tok, "block") == 0) *scope |= PTQ_BC_BLOCK;
        else if (strcmp(tok, "logits") == 0) *scope |= PTQ_BC_LOGITS;
        else return die("--bc-scope takes a list of linear, block, logits; got '%s'", tok);
    }
    return *scope ? 0 : die("--bc-scope is empty");
}

static void on_layer(void *user, const ptq_layer_report *r) {
    report_state *rs = user;
    rs->count++;
    if (rs->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddNumberToObject(o, "layer", r->layer);
        cJSON_AddNumberToObject(o, "in", r->in);
        cJSON_AddNumberToObject(o, "out", r->out);
        cJSON_AddNumberToObject(o, "seconds", r->seconds);
        cJSON_AddNumberToObject(o, "rel_error", r->rel_error);
        cJSON_AddItemToArray(rs->layers, o);
    } else {
        fprintf(stderr, "\r  %-44s %6d x %-6d %7.2fs   rel. output error %.3e\n", r->name, r->out, r->in, r->seconds,
                r->rel_error);
    }
}

static long long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long long n = ftell(f);
    fclose(f);
    return n;
}

static int cmd_quantize(args *a) {
    int json = opt_flag(a, "--json");
    const char *calib = opt_str(a, "--calib", NULL), *out_path = opt_str(a, "-o", NULL);
    text_opts to;
    if (parse_text_opts(a, &to)) return 2;
    int calib_n = (int)opt_num(a, "--calib-n", 32, 1, 1e6), calib_ctx = (int)opt_num(a, "--calib-ctx", 0, 1, 1 << 20);
    uint64_t seed = (uint64_t)opt_num(a, "--seed", 1, 0, 1.8e19);
    const char *labels = opt_str(a, "--calib-labels", NULL);
    int first = (int)opt_num(a, "--first", 0, 0, 1e9), count = (int)opt_num(a, "--count", 0, 0, 1e9);
    ptq_quant_params qp = ptq_quant_default_params();
    qp.wbits = (int)opt_num(a, "--wbits", 0, 2, 8);
    qp.group = (int)opt_num(a, "--group", 0, 0, 1 << 20);
    qp.sym = opt_flag(a, "--sym");
    qp.act_order = opt_flag(a, "--act-order");
    qp.percdamp = opt_num(a, "--damp", 0.01, 1e-6, 10);
    qp.gptq_updated_groups = opt_flag(a, "--gptq-updated-groups");
    const char *method = opt_str(a, "--method", "gptq");
    int bc = opt_flag(a, "--bc");
    const char *bc_shape = opt_str(a, "--bc-shape", NULL), *bc_mode = opt_str(a, "--bc-mode", NULL);
    const char *bc_scope = opt_str(a, "--bc-scope", NULL), *report_path = opt_str(a, "--report", NULL);
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    if ((bc_shape || bc_mode || bc_scope) && !bc) return die("--bc-shape, --bc-mode and --bc-scope need --bc");
    if (report_path && !bc) return die("--report needs --bc (it reports the error before and after BC)");
    if (bc) {
        qp.bc_scope = PTQ_BC_LINEAR | PTQ_BC_BLOCK;
        if (bc_scope && parse_bc_scope(bc_scope, &qp.bc_scope)) return 2;
        if (!bc_shape || strcmp(bc_shape, "channel") == 0) qp.bc_shape = PTQ_BC_CHANNEL;
        else if (strcmp(bc_shape, "position") == 0) qp.bc_shape = PTQ_BC_POSITION;
        else return die("--bc-shape must be channel or position, got '%s'", bc_shape);
        if (!bc_mode || strcmp(bc_mode, "sequential") == 0) qp.bc_mode = PTQ_BC_SEQUENTIAL;
        else if (strcmp(bc_mode, "parallel") == 0) qp.bc_mode = PTQ_BC_PARALLEL;
        else return die("--bc-mode must be sequential or parallel, got '%s'", bc_mode);
    }
    if (!calib || !out_path || !qp.wbits) return die("quantize needs --calib DATA, -o OUT and --wbits B");
    if (strcmp(method, "gptq") == 0) qp.method = PTQ_WQ_GPTQ;
    else if (strcmp(method, "rtn") == 0) qp.method = PTQ_WQ_RTN;
    else return die("--method must be rtn or gptq, got '%s'", method);
    if (qp.act_order && qp.method != PTQ_WQ_GPTQ) return die("--act-order applies to --method gptq only");

    progress_state ps;
    ptq_callbacks cb = make_callbacks(&ps, json);
    ptq_model *m;
    if (load_model(path, &m)) return 1;
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    ptq_error e;
    int rc = 0;
    ptq_calib_data data;
    memset(&data, 0, sizeof data);
    int *toks = NULL, *windows = NULL;
    int64_t n = 0;
    ptq_tokenizer *t = NULL;
    ptq_image_set set, hold_set;
    memset(&set, 0, sizeof set);
    memset(&hold_set, 0, sizeof hold_set);
    ptq_calib_data hold;
    memset(&hold, 0, sizeof hold);
    int *hold_windows = NULL;
    char desc[512];
    uint64_t hash = 0;
    /* with --report, the last fifth of the calibration data is held apart to measure BC on unseen data */
    if (info.is_language_model) {
        int T = calib_ctx > 0 ? calib_ctx : (info.max_seq < 2048 ? info.max_seq : 2048);
        rc = encode_text_file(path, &to, info.vocab_size, calib, &t, &toks, &n);
        if (!rc && T > info.max_seq) rc = die("--calib-ctx %d exceeds the model's context of %d", T, info.max_seq);
        int64_t n_cal = report_path ? n - n / 5 : n;
        if (!rc && ptq_calib_windows(toks, n_cal, calib_n, T, seed, &windows, &e) != PTQ_OK) rc = fail(&e);
        int hn = calib_n / 4 > 2 ? calib_n / 4 : 2;
        if (!rc && report_path &&
            ptq_calib_windows(toks + n_cal, n - n_cal, hn, T, seed + 1, &hold_windows, &e) != PTQ_OK)
            rc = fail(&e);
        data.tokens = windows;
        data.n_seqs = calib_n;
        data.seq_len = T;
        hold.tokens = hold_windows;
        hold.n_seqs = hn;
        hold.seq_len = T;
        snprintf(desc, sizeof desc, "%s, %d windows of %d tokens, seed %llu%s", calib, calib_n, T,
                 (unsigned long long)seed, report_path ? " (first 80% of the tokens)" : "");
        if (!rc) hash = ptq_hash_bytes(windows, (size_t)calib_n * T * sizeof(int), 0);
    } else {
        if (!labels) rc = die("image calibration needs --calib-labels LABELS");
        else if (load_images(m, calib, labels, first, count, &set)) rc = 1;
        if (!rc && report_path) {
            int hn = set.count / 5;
            if (hn < 1) rc = die("--report needs at least 5 calibration images");
            else if (load_images(m, calib, labels, first + set.count - hn, hn, &hold_set)) rc = 1;
            set.count -= hn; /* the held-apart images are the last ones of the selection */
            hold.images = &hold_set;
        }
        data.images = &set;
        snprintf(desc, sizeof desc, "%s, %d images from %d", calib, set.count, first);
        if (!rc) hash = ptq_hash_bytes(set.pixels, (size_t)set.count * set.channels * set.height * set.width * 4, 0);
    }
    if (report_path) qp.holdout = &hold;
    report_state rs = {json, cJSON_CreateArray(), 0, cJSON_CreateArray()};
    qp.cb = cb;
    qp.report = on_layer;
    qp.bc_report = on_bc;
    qp.report_user = &rs;
    double t0 = now_s();
    if (!rc && !json)
        fprintf(stderr, "quantizing %s: %s W%d%s%s%s, calibration: %s\n", path, method, qp.wbits,
                qp.group ? " group " : " per-channel", "", qp.act_order ? " act-order" : "", desc);
    if (!rc && ptq_quantize_model(m, &data, &qp, &e) != PTQ_OK) rc = fail(&e);
    double secs = now_s() - t0;
    ptq_save_info si = {path, desc, hash};
    if (!rc && ptq_model_save(m, out_path, &si, &e) != PTQ_OK) rc = fail(&e);
    if (!rc && report_path) {
        char title[700];
        snprintf(title, sizeof title, "Bias Compensation report: %s, %s W%d g%d, calibration %s", path, method,
                 qp.wbits, qp.group, desc);
        rc = write_bc_report(report_path, rs.bc, title);
    }
    if (!rc) {
        long long bytes = file_size(out_path);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "output", out_path);
            cJSON_AddStringToObject(o, "method", method);
            cJSON_AddNumberToObject(o, "wbits", qp.wbits);
            cJSON_AddNumberToObject(o, "group", qp.group);
            cJSON_AddNumberToObject(o, "seconds", secs);
            cJSON_AddNumberToObject(o, "bytes", (double)bytes);
            cJSON_AddItemToObject(o, "layers", rs.layers);
            rs.layers = NULL;
            char *txt = cJSON_PrintUnformatted(o);
            printf("%s\n", txt);
            free(txt);
            cJSON_Delete(o);
        } else {
            printf("wrote %s (%.2f MB) in %.1fs: %d layers quantized\n", out_path, bytes / 1e6, secs, rs.count);
        }
    }
    cJSON_Delete(rs.layers);
    cJSON_Delete(rs.bc);
    free(toks);
    free(windows);
    free(hold_windows);
    ptq_image_set_free(&hold_set);
    ptq_tokenizer_free(t);
    ptq_image_set_free(&set);
    ptq_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- main */

static const char *usage =
    "usage: ptq COMMAND MODEL [options]\n"
    "\n"
    "  ptq eval MODEL --text FILE [--tokenizer TOK] [--docs-sep STR] [--ctx N] [--json]\n"
    "  ptq eval MODEL --images IMAGES --labels LABELS [--first I] [--count N] [--json]\n"
    "  ptq generate MODEL [--tokenizer TOK] [--prompt S] --steps N [--temperature T] [--top-p P] [--seed S] [--json]\n"
    "  ptq inspect MODEL [--act DATA [--labels L] [--act-n N] [--ctx N] [--docs-sep S]] [--json]\n"
    "  ptq quantize MODEL --calib DATA -o OUT --wbits B [--group G] [--sym] [--method rtn|gptq] [--act-order]\n"
    "               [--tokenizer TOK] [--docs-sep S] [--docs I:J] [--calib-n N] [--calib-ctx T] [--seed S]\n"
    "               [--calib-labels L --first I --count N] [--damp D] [--json]\n"
    "               [--bc [--bc-shape channel|position] [--bc-mode sequential|parallel]\n"
    "                     [--bc-scope linear,block,logits] [--report FILE]]\n"
    "\n"
    "Text options: --docs-sep S splits a text into documents, --docs I:J keeps documents I..J-1.\n"
    "\n"
    "MODEL is a llama2.c .bin checkpoint, a model.safetensors (or its index), or a folder with config.json.\n"
    "IMAGES is an IDX file (gzip'ed or not) or a folder of JPEG/PNG images (LABELS: lines 'file label').\n";

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ptq %s\n", ptq_version());
        return 0;
    }
    args a = {argc - 2, argv + 2, calloc((size_t)argc, sizeof(int))};
    int rc;
    if (strcmp(argv[1], "eval") == 0) rc = cmd_eval(&a);
    else if (strcmp(argv[1], "generate") == 0) rc = cmd_generate(&a);
    else if (strcmp(argv[1], "inspect") == 0) rc = cmd_inspect(&a);
    else if (strcmp(argv[1], "quantize") == 0) rc = cmd_quantize(&a);
    else rc = die("unknown command '%s'\n%s", argv[1], usage);
    free(a.used);
    return rc;
}
