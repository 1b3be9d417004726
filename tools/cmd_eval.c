/* ptq eval: perplexity of a language model, or accuracy of an image classifier. */
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/file.h"

const char help_eval[] =
    "usage: ptq eval MODEL --text FILE [--tokenizer TOK] [--docs-sep S [--docs I:J]] [--ctx N] [--act8] [--json]\n"
    "       ptq eval MODEL --images IMAGES --labels LABELS [--first I] [--count N] [--act8] [--json]\n"
    "Perplexity of a language model on a text, or top-1/top-5 accuracy of an image classifier.\n"
    "\n"
    "  --text FILE         the text to score (language models)\n"
    "  --tokenizer TOK     tokenizer file (default: tokenizer.bin, tok<vocab>.bin or vocab.json beside MODEL)\n"
    "  --docs-sep S        split the text into documents at S, each encoded with BOS\n"
    "  --docs I:J          keep documents I to J-1 (I: to the end); needs --docs-sep\n"
    "  --ctx N             window of predicted tokens (default: the model's context)\n"
    "  --images IMAGES     IDX file (gzip'ed or not) or folder of JPEG/PNG/BMP files (image models)\n"
    "  --labels LABELS     IDX labels, or lines 'file label' for a folder (accuracy needs labels)\n"
    "  --first I           first image (default 0)\n"
    "  --count N           number of images (default 0: all)\n"
    "  --act8              run packed low-bit layers (and a GGUF's k-quant matrices)\n"
    "                      with int8 activations (faster, not exact: perplexity moves by <= 0.5% on the\n"
    "                      sample models; needs AVX2; see docs/GUIDE.md)\n"
    "  --json              one JSON line on stdout, no progress\n"
    "  -h, --help          this help\n";

int cmd_eval(args *a) {
    int json = opt_flag(a, "--json");
    const char *text = opt_str(a, "--text", NULL);
    text_opts to;
    if (parse_text_opts(a, &to)) return 2;
    int ctx = (int)opt_int(a, "--ctx", 0, 1, 1 << 20);
    const char *images = opt_str(a, "--images", NULL), *labels = opt_str(a, "--labels", NULL);
    int first = (int)opt_int(a, "--first", 0, 0, INT_MAX), count = (int)opt_int(a, "--count", 0, 0, INT_MAX);
    const int act8 = opt_flag(a, "--act8");
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    if (!text == !images) return die("eval needs exactly one of --text FILE or --images IMAGES --labels LABELS");
    progress_state ps;
    ptq_callbacks cb = make_callbacks(&ps, json);
    ptq_model *m;
    if (load_model(path, &m)) return 1;
    if (act8 && apply_act8(m, path)) {
        ptq_model_free(m);
        return 1;
    }
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
        rc = encode_text_file(m, &to, text, &t, &toks, &n);
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
