/* ptq tune: QuantTune fine-tuning (task loss + outlier loss), or training from scratch with --init random.
 * The result is saved in the input's own format (safetensors folder with its tensor names and config.json, or a
 * llama2.c .bin), so it loads wherever the original did. */
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/file.h"
#include "models/model.h"
#include "train/train.h"

typedef struct {
    int json, tty;
    double last_print;
    ptq_tune_step *steps;
    int n, cap;
    int vit;
} tune_state;

static int on_step(void *user, const ptq_tune_step *s) {
    tune_state *ts = user;
    if (ts->n == ts->cap) {
        int cap = ts->cap ? 2 * ts->cap : 1024;
        ptq_tune_step *p = realloc(ts->steps, (size_t)cap * sizeof *p);
        if (!p) return 1;
        ts->steps = p;
        ts->cap = cap;
    }
    ts->steps[ts->n++] = *s;
    if (ts->tty) {
        double t = now_s();
        if (t - ts->last_print >= 0.2 || s->step == s->total_steps) {
            ts->last_print = t;
            fprintf(stderr, "\rtune  step %d/%d  epoch %d  loss %.4f (ce %.4f, outlier %.4g)  lr %.3g  %.1fs, %.1fs left   ",
                    s->step, s->total_steps, s->epoch + 1, s->loss, s->ce, s->outlier, s->lr, s->seconds, s->eta);
            if (s->step == s->total_steps) fprintf(stderr, "\n");
            fflush(stderr);
        }
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static cJSON *step_json(const ptq_tune_step *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", s->step);
    cJSON_AddNumberToObject(o, "epoch", s->epoch);
    cJSON_AddNumberToObject(o, "lr", s->lr);
    cJSON_AddNumberToObject(o, "loss", s->loss);
    cJSON_AddNumberToObject(o, "ce", s->ce);
    cJSON_AddNumberToObject(o, "outlier", s->outlier);
    cJSON_AddNumberToObject(o, "grad_norm", s->grad_norm);
    if (s->batch_acc >= 0) cJSON_AddNumberToObject(o, "batch_top1", s->batch_acc);
    cJSON_AddNumberToObject(o, "seconds", s->seconds);
    return o;
}

static cJSON *ranges_json(const ptq_tune_result *r) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < r->n_stats; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->before[i].name);
        cJSON_AddNumberToObject(o, "layer", r->before[i].layer);
        cJSON_AddNumberToObject(o, "max_abs_over_std_before", r->before[i].max_abs_over_std);
        cJSON_AddNumberToObject(o, "max_abs_over_std_after", r->after[i].max_abs_over_std);
        cJSON_AddNumberToObject(o, "kurtosis_before", r->before[i].kurtosis);
        cJSON_AddNumberToObject(o, "kurtosis_after", r->after[i].kurtosis);
        cJSON_AddNumberToObject(o, "absmax_before", fmax(fabs(r->before[i].min), fabs(r->before[i].max)));
        cJSON_AddNumberToObject(o, "absmax_after", fmax(fabs(r->after[i].min), fabs(r->after[i].max)));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* The loss log into its opened temporary file: CSV (one row per step) or JSON (steps + summary + dynamic
   ranges). Flushed to disk, renamed into place after the model is saved. */
static int write_log(ptq_atomic_file *log, const char *path, const tune_state *ts, const ptq_tune_result *r,
                     cJSON *summary) {
    if (ends_with(path, ".json")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "summary", cJSON_Duplicate(summary, 1));
        cJSON *st = cJSON_AddArrayToObject(o, "steps");
        for (int i = 0; i < ts->n; i++) cJSON_AddItemToArray(st, step_json(&ts->steps[i]));
        if (r->n_stats) cJSON_AddItemToObject(o, "ranges", ranges_json(r));
        char *txt = cJSON_Print(o);
        fprintf(log->f, "%s\n", txt);
        free(txt);
        cJSON_Delete(o);
    } else {
        fprintf(log->f, "step,epoch,lr,loss,ce,outlier,grad_norm,batch_top1,seconds\n");
        for (int i = 0; i < ts->n; i++) {
            const ptq_tune_step *s = &ts->steps[i];
            fprintf(log->f, "%d,%d,%.6g,%.7g,%.7g,%.7g,%.6g,", s->step, s->epoch, s->lr, s->loss, s->ce, s->outlier,
                    s->grad_norm);
            if (s->batch_acc >= 0) fprintf(log->f, "%.4g", s->batch_acc);
            fprintf(log->f, ",%.4f\n", s->seconds);
        }
    }
    ptq_error e;
    return ptq_atomic_finish(log, &e) == PTQ_OK ? 0 : fail(&e);
}

static void print_ranges(const ptq_tune_result *r) {
    printf("\ndynamic range of the linear-layer inputs (first samples of the training data):\n");
    printf("  %-44s %14s %14s %12s %12s\n", "layer", "max|A|/sd", "after", "kurtosis", "after");
    double sb = 0, sa = 0;
    for (int i = 0; i < r->n_stats; i++) {
        printf("  %-44s %14.2f %14.2f %12.2f %12.2f\n", r->before[i].name, r->before[i].max_abs_over_std,
               r->after[i].max_abs_over_std, r->before[i].kurtosis, r->after[i].kurtosis);
        sb += r->before[i].max_abs_over_std;
        sa += r->after[i].max_abs_over_std;
    }
    if (r->n_stats) printf("  %-44s %14.2f %14.2f\n", "mean", sb / r->n_stats, sa / r->n_stats);
}

/* 1 when path is a llama2.c checkpoint rather than safetensors or a config.json: a safetensors file has its
   JSON header at byte 8, a config.json starts with '{'. Decides where tune writes before the model loads. */
static int looks_llama2c(const char *path) {
    if (!path || ptq_is_dir(path)) return 0;
    unsigned char b[9] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    return n == sizeof b && b[0] != '{' && b[8] != '{';
}

/* The files tune writes, checked before any work and removed on a signal: a llama2.c model goes to OUT (or
   OUT/its name when OUT is a folder), a safetensors model to the folder OUT (model.safetensors, config.json). */
static int tune_outputs(int llama2c, const char *model, const char *out, const char *log, const path_list *inputs,
                        char *out_file, size_t size) {
    snprintf(out_file, size, "%s", out);
    if (llama2c && ptq_is_dir(out)) {
        const char *base = strrchr(model, '/');
        snprintf(out_file, size, "%s/%s", out, base ? base + 1 : model);
    }
    char st[4300] = "", cfg[4300] = "";
    const char *what[] = {"-o", "-o", "--log"}, *outs[] = {out_file, NULL, log};
    if (!llama2c) {
        struct stat sb;
        if (stat(out, &sb) == 0 && !S_ISDIR(sb.st_mode))
            return die("-o %s: is a file; a safetensors model is saved as a folder (OUT/model.safetensors, "
                       "OUT/config.json)", out);
        if (ptq_is_dir(out)) { /* the files inside it, which may be the inputs */
            snprintf(st, sizeof st, "%s/model.safetensors", out);
            snprintf(cfg, sizeof cfg, "%s/config.json", out);
            outs[0] = st;
            outs[1] = cfg;
        }
    }
    int bad = check_outputs(what, outs, 3, inputs);
    if (!bad) {
        for (int i = 0; i < 3; i++)
            if (outs[i]) cleanup_on_signal(outs[i]);
        if (!llama2c && !outs[1]) { /* the folder is created at the end */
            snprintf(st, sizeof st, "%s/model.safetensors", out);
            snprintf(cfg, sizeof cfg, "%s/config.json", out);
            cleanup_on_signal(st);
            cleanup_on_signal(cfg);
        }
    }
    return bad;
}

const char help_tune[] =
    "usage: ptq tune MODEL --train DATA -o OUT [options]\n"
    "       ptq tune --init random --config CONFIG.json --train DATA -o OUT [options]\n"
    "QuantTune fine-tuning (task loss + outlier loss), saved in the input's format (see docs/QUANTTUNE.md).\n"
    "OUT is a folder for a safetensors model, a .bin file (or a folder to put it in) for a llama2.c one.\n"
    "\n"
    "  --train DATA              training text (language models) or images (image models)\n"
    "  -o OUT                    where the tuned model goes\n"
    "  --train-labels L          labels of the training images\n"
    "  --first I                 first training image (default 0)\n"
    "  --count N                 number of training images (default 0: all)\n"
    "  --tokenizer TOK           tokenizer file (default: found beside MODEL)\n"
    "  --docs-sep S              split the training text into documents at S\n"
    "  --docs I:J                train on documents I to J-1; needs --docs-sep\n"
    "  --ctx N                   tokens per training window (default: the model's context, at most 256)\n"
    "  --init random             start from random weights (needs --config, no MODEL)\n"
    "  --config CONFIG.json      the architecture for --init random\n"
    "  --outlier-lambda L        weight of the outlier loss (default 0: plain fine-tuning)\n"
    "  --outlier-tau T           outlier threshold (default 3)\n"
    "  --outlier-loss K          rel (in units of sigma, the default) or abs\n"
    "  --monitor LIST            all, or a comma list of qkv, proj, fc1, fc2\n"
    "  --steps N                 optimizer steps (or --epochs)\n"
    "  --epochs E                passes over the data (default 1)\n"
    "  --lr LR                   peak learning rate (default 1e-4)\n"
    "  --batch B                 batch size (default 8 windows or 32 images)\n"
    "  --warmup N                warm-up steps (default: 5% of the steps)\n"
    "  --weight-decay W          AdamW weight decay (default 0.01)\n"
    "  --clip C                  gradient norm clip (default 1)\n"
    "  --min-lr-frac F           final learning rate as a fraction of --lr (default 0)\n"
    "  --seed S                  seed (default 1)\n"
    "  --report-n N              samples for the dynamic-range report (default 256)\n"
    "  --log FILE                loss per step: CSV, or JSON when FILE ends in .json\n"
    "  --json                    one JSON line on stdout\n"
    "  -h, --help                this help\n";

int cmd_tune(args *a) {
    int json = opt_flag(a, "--json");
    const char *train = opt_str(a, "--train", NULL), *out = opt_str(a, "-o", NULL);
    const char *labels = opt_str(a, "--train-labels", NULL), *log_path = opt_str(a, "--log", NULL);
    const char *init = opt_str(a, "--init", NULL), *config = opt_str(a, "--config", NULL);
    const char *monitor = opt_str(a, "--monitor", "all"), *okind = opt_str(a, "--outlier-loss", "rel");
    text_opts to;
    if (parse_text_opts(a, &to)) return 2;
    int ctx = (int)opt_int(a, "--ctx", 0, 1, 1 << 20);
    int first = (int)opt_int(a, "--first", 0, 0, INT_MAX), count = (int)opt_int(a, "--count", 0, 0, INT_MAX);
    ptq_tune_params p = ptq_tune_default_params();
    p.outlier.lambda = (float)opt_num(a, "--outlier-lambda", 0.0, 0, 1e9);
    p.outlier.tau = (float)opt_num(a, "--outlier-tau", 3.0, 0, 1e6);
    int steps_given = opt_str(a, "--steps", NULL) != NULL, epochs_given = opt_str(a, "--epochs", NULL) != NULL;
    p.steps = (int)opt_int(a, "--steps", 0, 1, 1000000000);
    p.epochs = opt_num(a, "--epochs", 1.0, 1e-6, 1e6);
    p.opt.lr = opt_num(a, "--lr", 1e-4, 1e-12, 10);
    p.batch = (int)opt_int(a, "--batch", 0, 1, 1 << 20);
    p.opt.warmup = (int)opt_int(a, "--warmup", -1, 0, 1000000000);
    p.opt.weight_decay = opt_num(a, "--weight-decay", 0.01, 0, 10);
    p.opt.clip = opt_num(a, "--clip", 1.0, 0, 1e9);
    p.opt.min_lr_frac = opt_num(a, "--min-lr-frac", 0.0, 0, 1);
    p.seed = (uint64_t)opt_int(a, "--seed", 1, 0, LLONG_MAX);
    p.report_n = (int)opt_int(a, "--report-n", 256, 0, 1 << 20);
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    if (steps_given && epochs_given) return die("give --steps N or --epochs E, not both");
    if (!train || !out) return die("tune needs --train DATA and -o OUT");
    if (init) {
        if (strcmp(init, "random")) return die("--init takes 'random', got '%s'", init);
        if (!config) return die("--init random needs --config CONFIG.json");
        if (path) return die("--init random builds the model from --config; do not also give MODEL (%s)", path);
    } else if (config) {
        return die("--config is only used with --init random");
    } else if (!path) {
        return die("missing MODEL argument");
    }
    ptq_error e;
    if (ptq_monitor_parse(monitor, &p.outlier.monitor, &e) != PTQ_OK) return die("--monitor: %s", e.msg);
    if (!strcmp(okind, "rel")) p.outlier.relative = 1;
    else if (!strcmp(okind, "abs")) p.outlier.relative = 0;
    else return die("--outlier-loss must be rel (in units of sigma, the default) or abs (METHODS.md 3.2), got '%s'", okind);

    /* the outputs, before any work; checked again after loading if the format was not what it looked like */
    path_list inputs = {0};
    paths_add_model(&inputs, path);
    paths_add(&inputs, config);
    paths_add(&inputs, train);
    paths_add(&inputs, labels);
    paths_add(&inputs, to.tok_path);
    char out_file[4300];
    int guess = looks_llama2c(path);
    if (tune_outputs(guess, path, out, log_path, &inputs, out_file, sizeof out_file)) {
        paths_free(&inputs);
        return 2;
    }
    ptq_atomic_file log;
    if (log_path && ptq_atomic_open(&log, log_path, &e) != PTQ_OK) {
        paths_free(&inputs);
        return fail(&e);
    }

    tune_state ts;
    memset(&ts, 0, sizeof ts);
    ts.json = json;
    ts.tty = !json && isatty(2);
    p.on_step = on_step;
    p.user = &ts;

    ptq_model *m = NULL;
    int rc = 0;
    if (init) {
        if (ptq_train_init_random(config, p.seed, NULL, &m, &e) != PTQ_OK) rc = fail(&e);
    } else if (load_model(path, &m)) {
        rc = 1;
    }
    int llama2c = m && !strcmp(m->format, "llama2c");
    if (!rc && llama2c != guess) rc = tune_outputs(llama2c, path, out, log_path, &inputs, out_file, sizeof out_file);
    paths_free(&inputs);
    if (rc) {
        if (log_path) ptq_atomic_abort(&log);
        ptq_model_free(m);
        return rc;
    }
    const char *src_path = init ? config : path;
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    char weights[4200] = "", cfg_path[4200] = "", desc[1024];
    if (!init && !llama2c && ptq_train_source_paths(path, weights, sizeof weights, cfg_path, sizeof cfg_path, &e) != PTQ_OK)
        rc = fail(&e);
    if (llama2c) snprintf(weights, sizeof weights, "%s", path);

    ptq_tune_data d;
    memset(&d, 0, sizeof d);
    ptq_image_set set;
    memset(&set, 0, sizeof set);
    ptq_tokenizer *t = NULL;
    int *toks = NULL;
    int64_t n = 0;
    ptq_text_data td;
    if (!rc && info.is_language_model) {
        if (labels || first || count) rc = die("--train-labels, --first and --count apply to image models");
        int T = ctx > 0 ? ctx : (info.max_seq < 256 ? info.max_seq : 256);
        if (!rc && T > info.max_seq) rc = die("--ctx %d exceeds the model's context of %d", T, info.max_seq);
        /* a model made from a config (--init) looks for its tokenizer beside the config */
        char cfg_dir[4096];
        if (init && !to.tok_path) {
            snprintf(cfg_dir, sizeof cfg_dir, "%s", src_path);
            char *slash = strrchr(cfg_dir, '/');
            if (slash) *slash = 0;
            else snprintf(cfg_dir, sizeof cfg_dir, ".");
            to.tok_path = cfg_dir;
        }
        if (!rc) rc = encode_text_file(m, &to, train, &t, &toks, &n);
        td = (ptq_text_data){toks, n, T};
        d.text = &td;
        if (p.batch == 0) p.batch = 8;
        snprintf(desc, sizeof desc, "%s (%lld tokens, windows of %d)", train, (long long)n, T);
    } else if (!rc) {
        if (to.sep || to.tok_path || ctx) rc = die("--tokenizer, --docs-sep, --docs and --ctx apply to language models");
        else if (!labels) rc = die("image training needs --train-labels LABELS");
        else if (load_images(m, train, labels, first, count, &set)) rc = 1;
        d.images = &set;
        if (p.batch == 0) p.batch = 32;
        snprintf(desc, sizeof desc, "%s (images %d..%d)", train, first, first + set.count - 1);
    }
    if (!rc && !json)
        fprintf(stderr, "tuning %s on %s: lr %g, batch %d, %s %g, outlier loss %s lambda %g tau %g (%s)\n",
                init ? "a random model" : path, desc, p.opt.lr, p.batch, p.steps ? "steps" : "epochs",
                p.steps ? (double)p.steps : p.epochs, okind, (double)p.outlier.lambda, (double)p.outlier.tau, monitor);
    ptq_tune_result r;
    memset(&r, 0, sizeof r);
    if (!rc && ptq_tune(m, &d, &p, &r, &e) != PTQ_OK) rc = fail(&e);

    /* save in the input's format */
    char note[2048];
    snprintf(note, sizeof note,
             "ptq tune of %s on %s: %d steps, lr %g, batch %d, warmup %d, weight decay %g, clip %g, seed %llu, "
             "outlier loss %s lambda %g tau %g monitor %s",
             init ? config : path, desc, r.steps, p.opt.lr, p.batch, p.opt.warmup, p.opt.weight_decay, p.opt.clip,
             (unsigned long long)p.seed, okind, (double)p.outlier.lambda, (double)p.outlier.tau, monitor);
    cJSON *sum = rc ? NULL : cJSON_CreateObject();
    if (sum) {
        cJSON_AddStringToObject(sum, "output", out_file);
        cJSON_AddNumberToObject(sum, "steps", r.steps);
        cJSON_AddNumberToObject(sum, "seconds", r.seconds);
        cJSON_AddNumberToObject(sum, info.is_language_model ? "tokens_per_s" : "images_per_s", r.samples_per_s);
        cJSON_AddNumberToObject(sum, "first_loss", r.first_loss);
        cJSON_AddNumberToObject(sum, "last_loss", r.last_loss);
        cJSON_AddNumberToObject(sum, "lr", p.opt.lr);
        cJSON_AddNumberToObject(sum, "batch", p.batch);
        cJSON_AddNumberToObject(sum, "outlier_lambda", p.outlier.lambda);
        cJSON_AddNumberToObject(sum, "outlier_tau", p.outlier.tau);
        cJSON_AddStringToObject(sum, "monitor", monitor);
        cJSON_AddStringToObject(sum, "outlier_loss", okind);
        if (r.n_stats) {
            double sb = 0, sa = 0;
            for (int i = 0; i < r.n_stats; i++) {
                sb += r.before[i].max_abs_over_std;
                sa += r.after[i].max_abs_over_std;
            }
            cJSON_AddNumberToObject(sum, "mean_max_abs_over_std_before", sb / r.n_stats);
            cJSON_AddNumberToObject(sum, "mean_max_abs_over_std_after", sa / r.n_stats);
        }
    }
    /* a failed run writes nothing: the log is written (not yet in place) before the model, renamed after it */
    if (!rc && log_path) rc = write_log(&log, log_path, &ts, &r, sum);
    if (!rc && ptq_train_save(m, init ? NULL : weights, init ? config : cfg_path, out_file, note, &e) != PTQ_OK)
        rc = fail(&e);
    if (log_path && !rc && ptq_atomic_commit(&log, &e) != PTQ_OK) rc = fail(&e);
    if (log_path && rc) ptq_atomic_abort(&log);
    if (!rc) {
        if (json) {
            if (r.n_stats) cJSON_AddItemToObject(sum, "ranges", ranges_json(&r));
            char *txt = cJSON_PrintUnformatted(sum);
            printf("%s\n", txt);
            free(txt);
        } else {
            printf("wrote %s: %d steps in %.1fs (%.0f %s/s), loss %.4f -> %.4f\n", out_file, r.steps, r.seconds,
                   r.samples_per_s, info.is_language_model ? "tokens" : "images", r.first_loss, r.last_loss);
            if (r.n_stats) print_ranges(&r);
        }
    }
    cJSON_Delete(sum);
    ptq_tune_result_free(&r);
    free(ts.steps);
    free(toks);
    ptq_tokenizer_free(t);
    ptq_image_set_free(&set);
    ptq_model_free(m);
    return rc;
}
