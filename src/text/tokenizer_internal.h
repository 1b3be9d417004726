/* ptq_tokenizer internals for the library (the .ptq writer/reader, the CLI's BOS/EOS plumbing, GGUF input).
 * Every tokenizer is held as a ptq_tok_spec plus the BPE engine built from it (text/bpe.h). */
#ifndef PTQ_TEXT_TOKENIZER_INTERNAL_H
#define PTQ_TEXT_TOKENIZER_INTERNAL_H

#include <stddef.h>

#include "ptq.h"
#include "text/tok_spec.h"

/* A deep copy of the tokenizer's spec (BOS/EOS as overridden by ptq_tokenizer_set_bos_eos); free with
 * ptq_tok_spec_free. */
ptq_status ptq_tokenizer_get_spec(const ptq_tokenizer *t, ptq_tok_spec *out, ptq_error *err);
/* A tokenizer from a spec (copied), e.g. the one a .ptq or GGUF file carries. */
ptq_status ptq_tokenizer_from_spec(const ptq_tok_spec *spec, ptq_tokenizer **out, ptq_error *err);
/* Override BOS / EOS (-1 = none), e.g. from the model's config.json bos_token_id / eos_token_id. PTQ_ERR_ARG when an
 * id is outside the vocabulary. Not safe while another thread encodes with `t`. */
ptq_status ptq_tokenizer_set_bos_eos(ptq_tokenizer *t, int bos, int eos, ptq_error *err);
/* Whether the tokenizer's own files ask for BOS / EOS around every text (tokenizer_config.json add_bos_token, a
 * TemplateProcessing post-processor, GGUF add_bos_token; llama2.c: BOS yes). */
int ptq_tokenizer_adds_bos(const ptq_tokenizer *t);
int ptq_tokenizer_adds_eos(const ptq_tokenizer *t);
/* ptq_bpe_encode on the tokenizer: add_special adds BOS/EOS as the files ask, parse_special matches special tokens
 * written in the text. */
ptq_status ptq_tokenizer_encode_ex(const ptq_tokenizer *t, const char *text, size_t len, int add_special,
                                   int parse_special, int **tokens, int *n, ptq_error *err);

#endif
