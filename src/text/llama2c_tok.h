/* The llama2.c tokenizer.bin: BPE by merge scores, byte fallback (<0xXX> tokens 3..258), BOS = 1. */
#ifndef PTQ_TEXT_LLAMA2C_TOK_H
#define PTQ_TEXT_LLAMA2C_TOK_H

#include <stddef.h>

#include "ptq.h"
#include "text/tok_spec.h"

typedef struct ptq_l2c_tok ptq_l2c_tok;

ptq_status ptq_l2c_tok_load(const char *path, int vocab_size, ptq_l2c_tok **out, ptq_error *err);
void ptq_l2c_tok_free(ptq_l2c_tok *t);
/* As llama2.c's encode(): optional BOS, a leading-space token for non-empty text, one token per
 * UTF-8 code point (or its bytes), then repeatedly merge the adjacent pair with the highest score
 * (leftmost on ties). */
ptq_status ptq_l2c_tok_encode(const ptq_l2c_tok *t, const char *text, size_t len, int bos, int **ids, int *n,
                              ptq_error *err);
const char *ptq_l2c_tok_piece(const ptq_l2c_tok *t, int prev, int id, size_t *len);
int ptq_l2c_tok_vocab_size(const ptq_l2c_tok *t);
/* The tokenizer as a spec (SPM merged by score, byte tokens 3..258, <unk> 0, BOS 1, EOS 2, add_space_prefix); the
 * BPE engine built from it encodes as ptq_l2c_tok_encode does (tests/test_tokenizers_hf.c). */
ptq_status ptq_l2c_tok_spec(const ptq_l2c_tok *t, ptq_tok_spec *out, ptq_error *err);

#endif
