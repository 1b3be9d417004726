/* The tokenizer a .ptq file carries (docs/FORMAT.md, "The tokenizer"), so that a quantized model runs
 * without the tokenizer files of the model it was made from.
 *
 * Stored as the vocabulary data of text/tok_spec.h:
 *   metadata ptq.tokenizer   JSON: model ("llama" | "gpt2"), pre, n_tokens, n_merges, bos, eos, unk, pad,
 *                            add_bos, add_eos, add_space_prefix, ignore_merges, has_scores, has_types,
 *                            has_attrs
 *   tokenizer.tokens         U8 [bytes]: every token's bytes followed by one NUL, in id order
 *   tokenizer.scores         F32 [n_tokens]   (when has_scores)
 *   tokenizer.types          I32 [n_tokens]   (when has_types)
 *   tokenizer.attrs          U8 [n_tokens]    PTQ_TOKATTR_* bits (when has_attrs)
 *   tokenizer.merges         U8 [bytes]: every merge ("left right") followed by one NUL, in rank order
 *                            (when n_merges > 0)
 * The tensors are covered by the file's checksums like any other. */
#ifndef PTQ_IO_QMODEL_TOKENIZER_H
#define PTQ_IO_QMODEL_TOKENIZER_H

#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "text/tok_spec.h"

/* Add the tensors and the metadata entry of `spec` to the writer (copies them). */
ptq_status ptq_qmodel_put_tokenizer(ptq_st_writer *w, const ptq_tok_spec *spec, ptq_error *err);

/* 1 when the file carries a tokenizer (metadata ptq.tokenizer present). */
int ptq_qmodel_has_tokenizer(const ptq_safetensors *st);

/* Read the tokenizer of a .ptq file, checking every count, length and id against the metadata; an absent
 * tokenizer is PTQ_ERR_FORMAT ("carries no tokenizer"). On failure *out is left empty. */
ptq_status ptq_qmodel_get_tokenizer(const ptq_safetensors *st, const char *path, ptq_tok_spec *out, ptq_error *err);

/* 1 when `name` is one of the tensors above (the model loader accepts them when ptq.tokenizer is present). */
int ptq_qmodel_is_tokenizer_tensor(const char *name);

#endif
