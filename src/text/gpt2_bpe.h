/* GPT-2 byte-level BPE tokenizer (vocab.json + merges.txt), as used by GPT-2 and OPT.
 *
 * Encoding follows GPT-2's encoder exactly: the text is split with GPT-2's pre-tokenizer pattern
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (matched by hand over UTF-8 code points), each piece's bytes are mapped to vocabulary symbols, and merges
 * are applied by rank (the lowest-ranked adjacent pair first, all of its occurrences left to right, repeat).
 * Bytes that are not part of well-formed UTF-8 are code points of their own in no class (like Python's
 * 'surrogateescape'). "<|endoftext|>" in the text is not special. */
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

/* Encode `len` bytes of text (may contain NULs or invalid UTF-8). *ids is malloc'ed (never NULL on success,
 * even for an empty result); the caller frees it. The tokenizer is not modified (thread safe). */
ptq_status ptq_gpt2_bpe_encode(const ptq_gpt2_bpe *t, const char *text, size_t len, int **ids, int *n,
                               ptq_error *err);

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

/* ---- internals exposed for tests ---- */
/* Class of a code point: PTQ_UCLASS_OTHER / LETTER / NUMBER / SPACE (text/unicode_tables.h). */
int ptq_gpt2_char_class(uint32_t cp);
/* Length in bytes (>= 1) of the pre-token starting at byte `pos` (< len) of `text`. */
size_t ptq_gpt2_pretoken_len(const unsigned char *text, size_t len, size_t pos);

#endif
