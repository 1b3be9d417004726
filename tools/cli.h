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
const char *opt_str(args *a, const char *name, const char *def);
int opt_flag(args *a, const char *name);
double opt_num(args *a, const char *name, double def, double lo, double hi);
const char *positional(args *a);
int check_unused(args *a);

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
int load_tokenizer(const char *model_path, const char *tok_path, int vocab, ptq_tokenizer **t);
/* --tokenizer, --docs-sep and --docs I:J: how a text file becomes tokens. */
typedef struct {
    const char *tok_path, *sep;
    int first_doc, last_doc;
} text_opts;
int parse_text_opts(args *a, text_opts *o);
int encode_text_file(const char *model_path, const text_opts *o, int vocab, const char *file, ptq_tokenizer **t,
                     int **toks, int64_t *n);
int load_images(ptq_model *m, const char *images, const char *labels, int first, int count, ptq_image_set *set);

int cmd_eval(args *a);
int cmd_generate(args *a);
int cmd_inspect(args *a);
int cmd_quantize(args *a);
int cmd_tune(args *a);
int cmd_bench(args *a);

#endif
