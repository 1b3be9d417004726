/* GPT-2 byte-level BPE files (vocab.json + merges.txt), as used by GPT-2 and OPT: loaded and validated here, encoded
 * by the BPE engine from ptq_gpt2_bpe_spec (text/bpe.c, GPT-2's pre-tokenizer in text/pretok.c). */
#ifndef PTQ_TEXT_GPT2_BPE_H
#define PTQ_TEXT_GPT2_BPE_H
#include <stddef.h>
#include <stdint.h>
#include "ptq.h"
#include "text/tok_spec.h"

typedef struct ptq_gpt2_bpe ptq_gpt2_bpe;

/* Load vocab.json ({"token": id}) and merges.txt ("#version" line, then "a b" lines, in rank order). */
ptq_status ptq_gpt2_bpe_load(const char *vocab_json, const char *merges_txt, ptq_gpt2_bpe **out, ptq_error *err);
void ptq_gpt2_bpe_free(ptq_gpt2_bpe *t);

/* Raw bytes of a token (the vocabulary string mapped back through the byte table; tokens that are not in
 * byte form, such as added special tokens, are returned as their UTF-8 text). NULL (*len 0) when out of
 * range; "" for ids that the vocabulary does not use. */
const char *ptq_gpt2_bpe_token_bytes(const ptq_gpt2_bpe *t, int id, size_t *len);
/* One more than the largest id in vocab.json. */
int ptq_gpt2_bpe_vocab_size(const ptq_gpt2_bpe *t);
/* Id of a vocabulary string given verbatim (e.g. "<|endoftext|>"), or -1. */
int ptq_gpt2_bpe_special(const ptq_gpt2_bpe *t, const char *token);

/* The tokenizer as a spec (byte-level BPE, pre-tokenizer "gpt-2", merges in rank order). "<|...|>", "<s>", "</s>",
 * "<unk>", "<pad>" and "<mask>" entries are typed CONTROL, so that they are recognised in text; BOS and EOS are
 * "<|endoftext|>" when the vocabulary has it (add_bos off). Ids that vocab.json does not use become UNUSED
 * placeholders. */
ptq_status ptq_gpt2_bpe_spec(const ptq_gpt2_bpe *t, ptq_tok_spec *out, ptq_error *err);

#endif
