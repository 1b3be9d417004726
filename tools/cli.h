/* Shared pieces of the ptq command-line tool: argument parsing, progress display, loading models,
 * tokenizers, text and images. Each command lives in its own cmd_*.c file. */
#ifndef PTQ_TOOLS_CLI_H
#define PTQ_TOOLS_CLI_H

#include <stdint.h>

#include "ptq.h"

typedef struct {
    int argc;
    char **argv;
    int *used;
} args;

/* Print "ptq: ..." to stderr and return 2 (usage error). */
int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the library error and return 1. */
int fail(const ptq_error *e);
/* Print "ptq: error: ..." and return 1 (bad input data). */
int fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Options: each may be given once ("option --x given twice" and exit 2 otherwise); a bad value exits 2. */
const char *opt_str(args *a, const char *name, const char *def);
int opt_flag(args *a, const char *name);
double opt_num(args *a, const char *name, double def, double lo, double hi);
/* A whole decimal integer in [lo, hi]: "3.5", "4294967296" for an int, "" and "12abc" are errors. */
long long opt_int(args *a, const char *name, long long def, long long lo, long long hi);
const char *positional(args *a);
int check_unused(args *a);

/* ---------------------------------------------------------------- outputs
 * Every command that writes files checks each output before any work (ptq_check_output: folder there and
 * writable, not a folder/device/FIFO, not one of the inputs) and registers its temporary name, which a
 * SIGINT, SIGTERM or SIGHUP removes before the process ends (install_signal_cleanup). */
typedef struct {
    char **p;
    int n, cap;
} path_list;
void paths_add(path_list *l, const char *path); /* NULL is ignored; a folder adds its files too */
void paths_free(path_list *l);
/* The files a model path reads: the path, and beside it (or in it, for a folder) config.json, weights, shards,
 * index and tokenizer files. */
void paths_add_model(path_list *l, const char *model_path);
/* ptq_check_output for each output (what[i] names its option), and no two outputs naming one file.
 * Returns 0, or prints the reason and returns 2. */
int check_outputs(const char *const *what, const char *const *outs, int n, const path_list *inputs);
void install_signal_cleanup(void);
/* Removes the temporary file of output path when a signal ends the process. */
void cleanup_on_signal(const char *path);

/* Help: each command's text lives beside it in cmd_*.c; ptq.c prints it for --help, -h and `ptq help CMD`. */
extern const char help_eval[], help_generate[], help_inspect[], help_quantize[], help_tune[], help_bench[];

typedef struct {
    int enabled;
    double start;
    char what[32];
} progress_state;
double now_s(void);
void on_progress(void *user, const char *what, int64_t done, int64_t total);
void on_log(void *user, ptq_log_level level, const char *msg);
/* Progress on a terminal only, never with --json. */
ptq_callbacks make_callbacks(progress_state *ps, int json);

int load_model(const char *path, ptq_model **m);
/* stream: ptq_load_options.stream_weights (ptq quantize) */
int load_model_streamed(const char *path, int stream, ptq_model **m);
int load_tokenizer(const ptq_model *m, const char *tok_path, ptq_tokenizer **t);
/* --act8 of eval and generate: int8 activations for the model's packed layers (ptq_model_set_act8); a
   clear error for a model without any (nonzero: the exit code), a note where the CPU lacks AVX2. */
int apply_act8(ptq_model *m, const char *path);
/* --tokenizer, --docs-sep and --docs I:J: how a text file becomes tokens. */
typedef struct {
    const char *tok_path, *sep;
    int first_doc, last_doc;
} text_opts;
int parse_text_opts(args *a, text_opts *o);
int encode_text_file(const ptq_model *m, const text_opts *o, const char *file, ptq_tokenizer **t, int **toks,
                     int64_t *n);
int load_images(ptq_model *m, const char *images, const char *labels, int first, int count, ptq_image_set *set);

int cmd_eval(args *a);
int cmd_generate(args *a);
int cmd_inspect(args *a);
int cmd_quantize(args *a);
int cmd_tune(args *a);
int cmd_bench(args *a);

#endif
