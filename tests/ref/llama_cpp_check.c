/* Independent reference for GGUF export: llama.cpp itself (the prebuilt libllama of node-llama-cpp) on a GGUF file
 * that ptq wrote. Built at test time like llama_cpp_logits.c (tests/test_gguf_export.c shows the command).
 *
 *   llama_cpp_check BINS tokenize MODEL.gguf TEXT SEP OUT.i32
 *       TEXT split on SEP, each piece stripped of white space (isspace), empty pieces dropped, each tokenized by
 *       llama_tokenize with its special tokens (BOS) and the ids concatenated into OUT (int32): the document
 *       protocol of `ptq eval --docs-sep`.
 *   llama_cpp_check BINS ppl MODEL.gguf TOKENS.i32 CTX
 *       perplexity by ptq eval's protocol, computed here from llama.cpp's logits: windows of CTX+1 tokens starting
 *       every CTX tokens (the last one shorter), each decoded from an empty cache, every position's -log p(next)
 *       summed in double. Prints "scored MEAN_CE PPL" (MEAN_CE with 17 digits).
 *   llama_cpp_check BINS quantize IN.gguf OUT.gguf FTYPE [pure]
 *       llama_model_quantize (llama-quantize) into llama_ftype FTYPE, no importance matrix, one thread.
 *
 * The context keeps K and V in F32 and runs without flash attention, as llama_cpp_logits does. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-backend.h"
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static bool no_progress(float progress, void *user) {
    (void)progress;
    (void)user;
    return true;
}

static struct llama_model *load(const char *path) {
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.progress_callback = no_progress;
    struct llama_model *m = llama_model_load_from_file(path, mp);
    if (!m) fprintf(stderr, "llama.cpp cannot load %s\n", path);
    return m;
}

static char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*len + 1);
    if (b && fread(b, 1, (size_t)*len, f) != (size_t)*len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[*len] = 0;
    return b;
}

static int cmd_tokenize(const char *model_path, const char *text_path, const char *sep, const char *out_path) {
    struct llama_model *model = load(model_path);
    if (!model) return 1;
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    long len;
    char *text = slurp(text_path, &len);
    FILE *out = fopen(out_path, "wb");
    if (!text || !out) return 1;
    size_t seplen = strlen(sep);
    long pos = 0;
    llama_token *ids = malloc(sizeof *ids * (size_t)(len + 16));
    while (pos <= len) {
        char *hit = seplen ? strstr(text + pos, sep) : NULL;
        long end = hit ? (long)(hit - text) : len;
        long a = pos, b = end;
        while (a < b && isspace((unsigned char)text[a])) a++;
        while (b > a && isspace((unsigned char)text[b - 1])) b--;
        if (b > a) {
            int n = llama_tokenize(vocab, text + a, (int32_t)(b - a), ids, (int32_t)(len + 16), true, false);
            if (n < 0) {
                fprintf(stderr, "llama_tokenize failed\n");
                return 1;
            }
            fwrite(ids, sizeof *ids, (size_t)n, out);
        }
        if (!hit) break;
        pos = end + (long)seplen;
    }
    fclose(out);
    free(ids);
    free(text);
    llama_model_free(model);
    return 0;
}

static int cmd_ppl(const char *model_path, const char *tok_path, int ctx_len) {
    struct llama_model *model = load(model_path);
    if (!model) return 1;
    long bytes;
    int32_t *toks = (int32_t *)slurp(tok_path, &bytes);
    if (!toks) return 1;
    long n = bytes / 4;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)ctx_len;
    cp.n_batch = cp.n_ubatch = (uint32_t)ctx_len;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) return 1;
    int V = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_batch batch = llama_batch_init(ctx_len, 0, 1);
    double sum = 0;
    long scored = 0;
    for (long start = 0; start < n - 1; start += ctx_len) {
        int len = (int)(n - start < ctx_len + 1 ? n - start : ctx_len + 1);
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = len - 1;
        for (int i = 0; i < len - 1; i++) {
            batch.token[i] = toks[start + i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "llama_decode failed at window %ld\n", start / ctx_len);
            return 1;
        }
        for (int i = 0; i < len - 1; i++) {
            const float *lg = llama_get_logits_ith(ctx, i);
            double mx = lg[0], se = 0;
            for (int v = 1; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
            for (int v = 0; v < V; v++) se += exp(lg[v] - mx);
            sum += log(se) + mx - lg[toks[start + i + 1]];
            scored++;
        }
    }
    double mean = sum / (double)scored;
    printf("%ld %.17g %.17g\n", scored, mean, exp(mean));
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    free(toks);
    return 0;
}

static int cmd_quantize(const char *in, const char *out, int ftype, int pure) {
    llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.nthread = 1;
    qp.ftype = (enum llama_ftype)ftype;
    qp.pure = pure;
    uint32_t rc = llama_model_quantize(in, out, &qp);
    if (rc) fprintf(stderr, "llama_model_quantize failed (%u)\n", rc);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s BINS tokenize|ppl|quantize ...\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    ggml_backend_load_all_from_path(argv[1]);
    llama_backend_init();
    const char *cmd = argv[2];
    int rc = 2;
    if (!strcmp(cmd, "tokenize") && argc == 7) rc = cmd_tokenize(argv[3], argv[4], argv[5], argv[6]);
    else if (!strcmp(cmd, "ppl") && argc == 6) rc = cmd_ppl(argv[3], argv[4], atoi(argv[5]));
    else if (!strcmp(cmd, "quantize") && (argc == 6 || argc == 7))
        rc = cmd_quantize(argv[3], argv[4], atoi(argv[5]), argc == 7 && !strcmp(argv[6], "pure"));
    else fprintf(stderr, "%s: bad arguments\n", argv[0]);
    llama_backend_free();
    return rc;
}
