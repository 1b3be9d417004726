/* Hugging Face tokenizer.json (with tokenizer_config.json beside it when present) as a ptq_tok_spec.
 *
 * Supported: model BPE (vocab, merges as "a b" strings or [a, b] pairs, byte_fallback, ignore_merges, unk_token) in
 * two families:
 *   SPM-style   normalizer Sequence[Prepend("▁"), Replace(" " -> "▁")] (or a Replace alone), or pre-tokenizer
 *               Metaspace (split false); no other pre-tokenizer (Llama 2, Mistral, TinyLlama)
 *   byte-level  pre-tokenizer ByteLevel (GPT-2's regex), or Sequence[Split(regex, Isolated), ByteLevel(use_regex
 *               false)] with the regex exactly GPT-2's, Llama 3's, Qwen2's or Qwen3.5's; normalizer none or NFC
 *               (NFC is not applied, as in llama.cpp)
 * added_tokens become CONTROL (special; UNKNOWN for the unk token) or USER_DEFINED tokens with their lstrip/rstrip.
 * BOS/EOS: tokenizer_config.json's bos_token / eos_token and add_bos_token / add_eos_token when given, else the
 * post-processor (a TemplateProcessing whose single template starts with a special token adds it as BOS, ends with
 * one adds EOS; RobertaProcessing / BertProcessing add cls as BOS and sep as EOS). Anything else (another model type,
 * normalizer, pre-tokenizer or post-processor) is an error naming it. */
#ifndef PTQ_TEXT_HF_TOKENIZER_H
#define PTQ_TEXT_HF_TOKENIZER_H

#include "ptq.h"
#include "text/tok_spec.h"

ptq_status ptq_hf_tokenizer_spec(const char *tokenizer_json_path, ptq_tok_spec *out, ptq_error *err);

#endif
