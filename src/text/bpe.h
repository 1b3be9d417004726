/* The BPE engine: one tokenizer built from a ptq_tok_spec (text/tok_spec.h), whatever file the spec came from
 * (tokenizer.json, GGUF tokenizer.ggml.*, llama2.c tokenizer.bin, vocab.json + merges.txt).
 *
 * Two models:
 *   PTQ_TOK_SPM       SentencePiece-style BPE (Llama 2, Mistral, TinyLlama): spaces become "▁", "▁" is prepended
 *                     to each run of text when add_space_prefix (after every special token too, as Hugging Face and
 *                     llama.cpp do), the text is split into UTF-8 characters and merged, by merge rank when the spec
 *                     has merges (tokenizer.json), else by the score of the merged token (GGUF "llama", llama2.c;
 *                     SentencePiece's order: highest score first, leftmost on ties). What is left that is not a token
 *                     becomes its <0xXX> byte tokens (byte fallback), or unk when the vocabulary has no byte tokens.
 *   PTQ_TOK_BYTE_BPE  byte-level BPE (GPT-2, OPT, Llama 3, Qwen2): the text is split by the pre-tokenizer named by
 *                     spec->pre ("gpt-2", "default" and "" = GPT-2's pattern; "llama-bpe" = Llama 3's; "qwen2" =
 *                     Llama 3's with single digits), each piece's bytes are mapped through GPT-2's byte table and
 *                     merged by rank (lowest first, leftmost on ties). ignore_merges: a piece that is itself a token
 *                     is emitted whole.
 * Special tokens (types CONTROL, UNKNOWN and USER_DEFINED): the text is first split on them, leftmost-longest match;
 * USER_DEFINED tokens are always matched, CONTROL/UNKNOWN ones only with parse_special (as llama.cpp and Hugging
 * Face do). lstrip/rstrip (spec->attrs) remove the whitespace beside a matched token.
 *
 * Bytes that are not well-formed UTF-8 are characters of their own: byte fallback tokens in SPM, their byte's token
 * in byte-level BPE (no reference tokenizer accepts such text; see docs/GUIDE.md).
 *
 * A built ptq_bpe is immutable: encoding from several threads at once is safe. */
#ifndef PTQ_TEXT_BPE_H
#define PTQ_TEXT_BPE_H

#include <stddef.h>

#include "ptq.h"
#include "text/tok_spec.h"

typedef struct ptq_bpe ptq_bpe;

/* Build the engine (copies what it needs from `spec`). Errors (PTQ_ERR_FORMAT, naming the token or merge): unknown
 * model or pre-tokenizer ("unsupported pre-tokenizer 'X' (supported: ...)"), duplicate tokens, merges naming tokens
 * that are not in the vocabulary, bos/eos/unk/pad ids out of range, a byte-level vocabulary without the 256 byte
 * tokens. */
ptq_status ptq_bpe_create(const ptq_tok_spec *spec, ptq_bpe **out, ptq_error *err);
void ptq_bpe_free(ptq_bpe *t);

/* Encode `len` bytes of text. add_special: BOS first / EOS last as the spec's add_bos / add_eos say.
 * parse_special: CONTROL tokens written in the text ("</s>", "<|endoftext|>") are matched as their ids.
 * *ids is malloc'ed (never NULL on success, even when *n is 0); the caller frees it. */
ptq_status ptq_bpe_encode(const ptq_bpe *t, const char *text, size_t len, int add_special, int parse_special,
                          int **ids, int *n, ptq_error *err);

/* The bytes a token stands for: "▁" as a space and <0xXX> as its byte (SPM), GPT-2's byte table undone (byte-level),
 * special tokens as their text. After BOS (prev == the BOS id), an SPM token's leading space is dropped, as
 * SentencePiece and Hugging Face's Strip decoder do. Returns a pointer into the engine; "" (len 0) for ids out of
 * range. */
const char *ptq_bpe_decode(const ptq_bpe *t, int prev, int id, size_t *len);

int ptq_bpe_n_tokens(const ptq_bpe *t);
int ptq_bpe_bos(const ptq_bpe *t); /* -1 when none */
int ptq_bpe_eos(const ptq_bpe *t);
/* Override BOS / EOS (the model's config.json knows better than some tokenizer files); -1 = none. Not thread safe
 * with concurrent encoding. Returns PTQ_ERR_ARG when an id is out of range. */
ptq_status ptq_bpe_set_bos_eos(ptq_bpe *t, int bos, int eos, ptq_error *err);
/* Id of a token given as its stored string ("<|endoftext|>", "▁Hello"), or -1. */
int ptq_bpe_token_id(const ptq_bpe *t, const char *token, size_t len);

#endif
