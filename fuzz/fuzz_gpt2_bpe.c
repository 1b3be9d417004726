/* A GPT-2 byte-level BPE tokenizer: vocab.json, then after FZ_SEP merges.txt, loaded with
 * ptq_tokenizer_load on the folder, then used to encode and decode. */
#include "fuzz_tok_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    const int n = fz_split(data, size, part, len, 2);
    if (!fz_write("bpe/vocab.json", part[0], len[0]) || !fz_write("bpe/merges.txt", n > 1 ? part[1] : data, n > 1 ? len[1] : 0))
        return 0;
    fz_exercise_tokenizer(fz_path("bpe"));
    return 0;
}
