/* A llama2.c tokenizer.bin (max token length, then per token a float score, an int32 length and the
 * bytes), loaded with ptq_tokenizer_load, then used to encode and decode. */
#include "fuzz_tok_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("tokenizer.bin", data, size);
    if (path) fz_exercise_tokenizer(path);
    return 0;
}
