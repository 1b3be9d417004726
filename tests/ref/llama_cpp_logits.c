/* Independent reference: llama.cpp itself (the prebuilt libllama of node-llama-cpp, scripts/refs.sh) runs a GGUF
 * file and writes the logits of every position, so that ptq's reading of GGUF weights (the Q/K row order above
 * all) is checked against the program GGUF files are made for.
 *
 *   llama_cpp_logits BINS_DIR MODEL.gguf OUT.f32 TOKEN...
 *
 * BINS_DIR holds libllama and the ggml CPU backends; OUT gets n_tokens * n_vocab float32 (native order). Built by
 * tests/test_gguf.c at test time against build-ref/llama.cpp/include (the headers of the same release):
 *   cc -I$REFS/llama.cpp/include -I$REFS/llama.cpp/ggml/include llama_cpp_logits.c -L$BINS -l:libllama.v0.5.0.so
 *      -l:libggml.v0.5.0.so -Wl,-rpath,$BINS */
#include <stdio.h>
#include <stdlib.h>

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

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s BINS_DIR MODEL.gguf OUT.f32 TOKEN...\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    ggml_backend_load_all_from_path(argv[1]);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.progress_callback = no_progress; /* the default prints dots */
    struct llama_model *model = llama_model_load_from_file(argv[2], mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[2]);
        return 1;
    }
    int n = argc - 4;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n < 16 ? 16 : n);
    cp.n_batch = cp.n_ctx;
    cp.n_threads = cp.n_threads_batch = 1;
    cp.type_k = GGML_TYPE_F32; /* the default f16 cache would round k and v */
    cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "cannot create a context\n");
        return 1;
    }
    int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    FILE *out = fopen(argv[3], "wb");
    if (!out) return 1;
    for (int i = 0; i < n; i++) {
        llama_token t = atoi(argv[4 + i]);
        if (llama_decode(ctx, llama_batch_get_one(&t, 1)) != 0) {
            fprintf(stderr, "llama_decode failed at position %d\n", i);
            return 1;
        }
        fwrite(llama_get_logits_ith(ctx, -1), sizeof(float), (size_t)vocab, out);
    }
    fclose(out);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
