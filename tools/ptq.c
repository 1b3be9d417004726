/* ptq: the command-line tool. Thin: each command is a cmd_*.c file over libptq (see cli.h). */
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

static const char *usage =
    "usage: ptq COMMAND MODEL [options]\n"
    "\n"
    "  ptq eval MODEL --text FILE [--tokenizer TOK] [--docs-sep STR] [--ctx N] [--json]\n"
    "  ptq eval MODEL --images IMAGES --labels LABELS [--first I] [--count N] [--json]\n"
    "  ptq generate MODEL [--tokenizer TOK] [--prompt S] --steps N [--temperature T] [--top-p P] [--seed S] [--json]\n"
    "  ptq inspect MODEL [--act DATA [--labels L] [--act-n N] [--ctx N] [--docs-sep S]] [--json]\n"
    "  ptq quantize MODEL --calib DATA -o OUT --wbits B [--group G|channel|tensor] [--sym] [--method rtn|gptq] [--act-order]\n"
    "               [--tokenizer TOK] [--docs-sep S] [--docs I:J] [--calib-n N] [--calib-ctx T] [--seed S]\n"
    "               [--calib-labels L --first I --count N] [--damp D] [--json]\n"
    "               [--abits A [--act-calib minmax|percentile|mse|entropy|easyquant|twin] [--act-asym]\n"
    "                [--act-per-token] [--act-percentile P] [--quant-attn]\n"
    "                [--noisyquant | --noisyquant-ref] [--noisyquant-unchecked]]\n"
    "               [--bc [--bc-shape channel|position] [--bc-mode sequential|parallel]\n"
    "                     [--bc-scope linear,block,logits] [--report FILE]]\n"
    "  ptq tune MODEL --train DATA -o OUT [--outlier-lambda L] [--outlier-tau T] [--outlier-loss rel|abs]\n"
    "           [--monitor all|qkv,proj,fc1,fc2] [--steps N | --epochs E] [--lr LR] [--batch B] [--seed S]\n"
    "           [--log FILE] [--json]   (text: --tokenizer --docs-sep --docs --ctx; images: --train-labels\n"
    "           --first --count; from scratch: --init random --config CONFIG.json; see docs/QUANTTUNE.md)\n"
    "  ptq bench MODEL [--baseline MODEL] [--tokens N] [--steps N] [--images N] [--reps N] [--json]\n"
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
    else if (strcmp(argv[1], "tune") == 0) rc = cmd_tune(&a);
    else if (strcmp(argv[1], "bench") == 0) rc = cmd_bench(&a);
    else rc = die("unknown command '%s'\n%s", argv[1], usage);
    free(a.used);
    return rc;
}
