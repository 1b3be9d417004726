/* ptq inspect: architecture, tensors, storage, and per-layer activation statistics. */
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

const char help_inspect[] =
    "usage: ptq inspect MODEL [--act DATA [--labels LABELS] [--act-n N] [--ctx N] [--first I] [--count N]\n"
    "                   [--tokenizer TOK] [--docs-sep S [--docs I:J]]] [--json]\n"
    "Architecture, tensors and storage of a model; with --act, per-layer input activation statistics.\n"
    "\n"
    "  --act DATA          text (language models) or images (image models) to run through the model\n"
    "  --labels LABELS     labels of the --act images (optional)\n"
    "  --act-n N           number of text windows (default 8)\n"
    "  --ctx N             tokens per text window (default: the model's context)\n"
    "  --first I           first image (default 0)\n"
    "  --count N           number of images (default 256)\n"
    "  --tokenizer TOK     tokenizer file (default: found beside MODEL)\n"
    "  --docs-sep S        split the text into documents at S\n"
    "  --docs I:J          keep documents I to J-1; needs --docs-sep\n"
    "  --json              JSON on stdout\n"
    "  -h, --help          this help\n";

int cmd_inspect(args *a) {
    int json = opt_flag(a, "--json");
    const char *act = opt_str(a, "--act", NULL), *labels = opt_str(a, "--labels", NULL);
    text_opts to;
    if (parse_text_opts(a, &to)) return 2;
    int nseq = (int)opt_int(a, "--act-n", 8, 1, 1000000);
    int first = (int)opt_int(a, "--first", 0, 0, INT_MAX), count = (int)opt_int(a, "--count", 256, 0, INT_MAX);
    int ctx = (int)opt_int(a, "--ctx", 0, 1, 1 << 20);
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
    }
    ptq_image_prep_info pi;
    ptq_error pe;
    if (!info.is_language_model && ptq_model_image_prep(m, &pi, &pe) == PTQ_OK) {
        char norm[160] = "";
        for (int c = 0; c < pi.channels; c++)
            snprintf(norm + strlen(norm), sizeof norm - strlen(norm), "%s%g/%g", c ? ", " : "", (double)pi.mean[c],
                     (double)pi.std[c]);
        cJSON_AddStringToObject(root, "image_preprocessing", pi.hf ? "preprocessor_config.json" : "config.json");
        if (!json)
            printf("  images %dx%dx%d, preprocessing from %s, mean/std %s\n", pi.channels, pi.size, pi.size,
                   pi.hf ? "preprocessor_config.json (Hugging Face)" : "config.json", norm);
    }
    if (!json) printf("\n  %-48s %-5s %s\n", "tensor", "dtype", "shape");
    ptq_quant_summary qs;
    ptq_model_quant_summary(m, &qs);
    if (qs.linears) {
        cJSON_AddNumberToObject(root, "quantized_linears", qs.linears);
        cJSON_AddNumberToObject(root, "quantized_weights", (double)qs.weights);
        cJSON_AddNumberToObject(root, "bits_per_weight", qs.bits_per_weight);
        if (!json)
            printf("  %d packed linear layers, %lld weights, %.3f bits per weight (codes + scales + any stored zero points)\n",
                   qs.linears, (long long)qs.weights, qs.bits_per_weight);
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
            rc = encode_text_file(m, &to, act, &t, &toks, &n);
            int T = ctx > 0 && ctx < info.max_seq ? ctx : info.max_seq;
            if (!rc && n < T) T = (int)n;
            data.tokens = toks;
            data.seq_len = T;
            data.n_seqs = rc ? 0 : (int)(n / T < nseq ? n / T : nseq);
        } else {
            if (load_images(m, act, labels, first, count, &set)) rc = 1; /* labels are optional */
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
