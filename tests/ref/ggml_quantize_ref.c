/* Independent reference: ggml itself (the prebuilt libggml-base of node-llama-cpp, scripts/refs.sh) quantizes
 * float rows into one of its block types and dequantizes blocks, so that ptq's quantizer and dequantizer
 * (src/quant/ggml_quants.c) are checked byte for byte and float for float against the code GGUF files are made
 * with and read by.
 *
 *   ggml_quantize_ref quant TYPE N_PER_ROW IN.f32 OUT.bin    ggml_quantize_chunk, no importance matrix
 *   ggml_quantize_ref deq   TYPE N_PER_ROW IN.bin OUT.f32    ggml_get_type_traits(TYPE)->to_float
 *
 * TYPE is the ggml_type number (the GGUF one); files hold native-order float32 / ggml row bytes, the number of
 * rows follows from the size. Built by tests/test_ggml_quants.c at test time against
 * build-ref/llama.cpp/ggml/include (the headers of the same release):
 *   cc -I$REFS/llama.cpp/ggml/include ggml_quantize_ref.c -L$BINS -l:libggml-base.so -Wl,-rpath,$BINS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"

static void *slurp(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(*size > 0 ? (size_t)*size : 1);
    if (buf && fread(buf, 1, (size_t)*size, f) != (size_t)*size) free(buf), buf = NULL;
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 6 || (strcmp(argv[1], "quant") && strcmp(argv[1], "deq"))) {
        fprintf(stderr, "usage: %s quant|deq TYPE N_PER_ROW IN OUT\n", argv[0]);
        return 2;
    }
    enum ggml_type type = (enum ggml_type)atoi(argv[2]);
    long n = atol(argv[3]), size = 0;
    size_t row = ggml_row_size(type, n);
    void *in = slurp(argv[4], &size);
    if (!in || n <= 0 || row == 0) {
        fprintf(stderr, "cannot read %s (or bad type/row length)\n", argv[4]);
        return 1;
    }
    int quant = !strcmp(argv[1], "quant");
    long nrows = quant ? size / (long)(sizeof(float) * (size_t)n) : size / (long)row;
    size_t out_size = quant ? (size_t)nrows * row : (size_t)nrows * (size_t)n * sizeof(float);
    void *out = calloc(out_size ? out_size : 1, 1);
    if (quant) {
        ggml_quantize_init(type);
        ggml_quantize_chunk(type, in, out, 0, nrows, n, NULL);
    } else {
        const struct ggml_type_traits *tr = ggml_get_type_traits(type);
        for (long r = 0; r < nrows; r++)
            tr->to_float((const char *)in + (size_t)r * row, (float *)out + (size_t)r * (size_t)n, n);
    }
    FILE *f = fopen(argv[5], "wb");
    if (!f || fwrite(out, 1, out_size, f) != out_size) {
        fprintf(stderr, "cannot write %s\n", argv[5]);
        return 1;
    }
    fclose(f);
    free(in);
    free(out);
    return 0;
}
