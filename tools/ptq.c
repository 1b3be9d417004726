/* ptq: the command-line tool. Thin: each command is a cmd_*.c file over libptq (see cli.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(args *a);
    const char *help;
} command;

static const command commands[] = {
    {"eval", cmd_eval, help_eval},       {"generate", cmd_generate, help_generate},
    {"inspect", cmd_inspect, help_inspect}, {"quantize", cmd_quantize, help_quantize},
    {"tune", cmd_tune, help_tune},       {"bench", cmd_bench, help_bench},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static const char *overview =
    "usage: ptq COMMAND MODEL [options]\n"
    "\n"
    "  eval       perplexity of a language model on a text, or accuracy of an image classifier\n"
    "  generate   text from a language model\n"
    "  inspect    architecture, tensors, and activation statistics of a model\n"
    "  quantize   weight (and activation) quantization into a .ptq file\n"
    "  tune       QuantTune fine-tuning, or training from scratch\n"
    "  bench      speed of a model, next to a baseline\n"
    "  help CMD   the options of CMD (also: ptq CMD --help)\n"
    "\n"
    "MODEL is a llama2.c .bin checkpoint, a model.safetensors (or its index), a folder with config.json,\n"
    "or a .ptq file. IMAGES is an IDX file (gzip'ed or not) or a folder of JPEG/PNG images.\n"
    "Outputs are checked before any work and written atomically; an input is never overwritten.\n";

static const command *find_command(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(overview, stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || (!strcmp(name, "help") && argc == 2)) {
        fputs(overview, stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        printf("ptq %s\n", ptq_version());
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        const command *c = find_command(argv[2]);
        if (argc > 3) return die("help takes one command name, got %d\n%s", argc - 2, overview);
        if (!c) return die("help: unknown command '%s'\n%s", argv[2], overview);
        fputs(c->help, stdout);
        return 0;
    }
    const command *c = find_command(name);
    if (!c) return die("unknown command '%s'\n%s", name, overview);
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(c->help, stdout);
            return 0;
        }
    install_signal_cleanup();
    args a = {argc - 2, argv + 2, calloc((size_t)argc, sizeof(int))};
    int rc = c->run(&a);
    free(a.used);
    return rc;
}
