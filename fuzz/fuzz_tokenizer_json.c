/* A Hugging Face tokenizer.json, then after FZ_SEP (optional) the tokenizer_config.json beside it, loaded with
 * ptq_tokenizer_load on the folder; once it loads: encoded with and without special tokens, decoded, and rebuilt
 * from its spec (the path a quantized file takes). */
#include <stdio.h>

#include "fuzz_tok_common.h"
#include "text/tok_spec.h"
#include "text/tokenizer_internal.h"

static void exercise_specials(const char *dir) {
    static const char text[] = "<s>Hi</s> <|endoftext|>\xe2\x96\x81x <unk>  \n\n12345 <|begin_of_text|>";
    ptq_tokenizer *t = NULL, *t2 = NULL;
    ptq_error err;
    if (ptq_tokenizer_load(dir, 0, &t, &err) != PTQ_OK) return;
    int *ids = NULL, n = 0;
    for (int mode = 0; mode < 4; mode++)
        if (ptq_tokenizer_encode_ex(t, text, sizeof text - 1, mode & 1, mode >> 1, &ids, &n, &err) == PTQ_OK)
            free(ids);
    ptq_tok_spec spec;
    if (ptq_tokenizer_get_spec(t, &spec, &err) == PTQ_OK) {
        if (ptq_tokenizer_from_spec(&spec, &t2, &err) == PTQ_OK &&
            ptq_tokenizer_encode(t2, text, sizeof text - 1, 1, &ids, &n, &err) == PTQ_OK)
            free(ids);
        ptq_tok_spec_free(&spec);
    }
    ptq_tokenizer_free(t2);
    ptq_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    const int n = fz_split(data, size, part, len, 2);
    if (!fz_write("hf/tokenizer.json", part[0], len[0])) return 0;
    if (n > 1) {
        if (!fz_write("hf/tokenizer_config.json", part[1], len[1])) return 0;
    } else {
        remove(fz_path("hf/tokenizer_config.json"));
    }
    fz_exercise_tokenizer(fz_path("hf"));
    exercise_specials(fz_path("hf"));
    return 0;
}
