/* The tokenizer stored in a GGUF file's tokenizer.ggml.* metadata, as a ptq_tok_spec (text/tok_spec.h). */
#ifndef PTQ_TEXT_GGUF_VOCAB_H
#define PTQ_TEXT_GGUF_VOCAB_H

#include "io/gguf.h"
#include "text/tok_spec.h"

/* Fill *out from g's tokenizer.ggml.* keys: model ("llama" -> PTQ_TOK_SPM, "gpt2" -> PTQ_TOK_BYTE_BPE), pre,
 * tokens, scores, token_type, merges, bos/eos/unknown/padding_token_id, add_bos_token, add_eos_token,
 * add_space_prefix. A key that is absent takes llama.cpp's default for the model (and, for byte-level BPE, for
 * the pre-tokenizer: the Llama 3 family adds BOS and ignores merges). Validated: counts of scores and types
 * equal the token count, token types known, ids in range, tokens unique, merges "left right".
 * PTQ_ERR_UNSUPPORTED for another tokenizer model, PTQ_ERR_CONFIG when the tokenizer keys are absent,
 * PTQ_ERR_FORMAT for anything inconsistent. On failure *out is left empty. */
ptq_status ptq_gguf_tok_spec(const ptq_gguf *g, ptq_tok_spec *out, ptq_error *err);

#endif
