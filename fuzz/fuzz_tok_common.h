/* Both tokenizer harnesses: once a tokenizer loads, encode a fixed text (ASCII, accents, emoji, a control
 * byte, invalid UTF-8) and decode every token of it and of the whole vocabulary. */
#ifndef PTQ_FUZZ_TOK_COMMON_H
#define PTQ_FUZZ_TOK_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

static void fz_exercise_tokenizer(const char *path) {
    static const char text[] = "Once upon a time, a l\xc3\xa9opard said \"hi!\" \xf0\x9f\x99\x82\n\t12345 \x01\xff\xc3 end";
    ptq_tokenizer *t = NULL;
    ptq_error err;
    if (ptq_tokenizer_load(path, 0, &t, &err) != PTQ_OK) return;
    int *tok = NULL, n = 0;
    if (ptq_tokenizer_encode(t, text, sizeof text - 1, 1, &tok, &n, &err) == PTQ_OK) {
        size_t len;
        for (int i = 0; i < n; i++) (void)ptq_tokenizer_decode(t, i ? tok[i - 1] : -1, tok[i], &len);
        free(tok);
    }
    const int v = ptq_tokenizer_vocab_size(t);
    size_t len;
    for (int i = 0; i < v; i++) (void)ptq_tokenizer_decode(t, ptq_tokenizer_bos(t), i, &len);
    ptq_tokenizer_free(t);
}

#endif
