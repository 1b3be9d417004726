/* A tokenizer vocabulary as data: what every tokenizer source (tokenizer.json, GGUF tokenizer.ggml.*,
 * llama2.c tokenizer.bin, vocab.json + merges.txt) is converted into, what the BPE engine (text/bpe.h)
 * is built from, and what a quantized file stores so that it carries its tokenizer.
 *
 * The fields follow GGUF's tokenizer.ggml.* keys (llama.cpp's gguf docs), so that writing and reading
 * GGUF is a field-by-field copy:
 *   model            tokenizer.ggml.model: PTQ_TOK_SPM ("llama", SentencePiece-style BPE with byte fallback)
 *                    or PTQ_TOK_BYTE_BPE ("gpt2", byte-level BPE)
 *   pre              tokenizer.ggml.pre ("default", "gpt-2", "llama-bpe", "qwen2", ...): selects the
 *                    pre-tokenizer of a byte-level BPE
 *   tokens           tokenizer.ggml.tokens, in the stored form ("▁Hello" for SPM, "Ġhello" for byte-level)
 *   scores           tokenizer.ggml.scores (SPM merge priority; NULL when absent)
 *   types            tokenizer.ggml.token_type (PTQ_TOKTYPE_*; NULL = all normal)
 *   merges           tokenizer.ggml.merges ("left right", rank order; NULL/0 for SPM vocabularies that
 *                    merge by score)
 *   bos/eos/unk/pad  tokenizer.ggml.*_token_id, -1 when absent
 *   add_bos/add_eos  tokenizer.ggml.add_bos_token / add_eos_token
 *   add_space_prefix tokenizer.ggml.add_space_prefix (SPM: prepend "▁" to the text)
 *
 * Everything is owned by the spec (malloc'ed), freed by ptq_tok_spec_free. */
#ifndef PTQ_TEXT_TOK_SPEC_H
#define PTQ_TEXT_TOK_SPEC_H

#include <stdint.h>

enum { PTQ_TOK_SPM = 1, PTQ_TOK_BYTE_BPE = 2 };

/* GGUF token types (llama.cpp's llama_token_type) */
enum {
    PTQ_TOKTYPE_UNDEFINED = 0,
    PTQ_TOKTYPE_NORMAL = 1,
    PTQ_TOKTYPE_UNKNOWN = 2,
    PTQ_TOKTYPE_CONTROL = 3,      /* special tokens: <s>, </s>, <|begin_of_text|> ... */
    PTQ_TOKTYPE_USER_DEFINED = 4, /* added tokens that are not special */
    PTQ_TOKTYPE_UNUSED = 5,
    PTQ_TOKTYPE_BYTE = 6,         /* <0x00> .. <0xFF> byte-fallback tokens */
};

/* Token attributes that GGUF does not store (tokenizer.json added_tokens' lstrip / rstrip) */
enum { PTQ_TOKATTR_LSTRIP = 1, PTQ_TOKATTR_RSTRIP = 2 };

typedef struct ptq_tok_spec {
    int model;      /* PTQ_TOK_SPM or PTQ_TOK_BYTE_BPE */
    char pre[64];   /* pre-tokenizer name (GGUF tokenizer.ggml.pre); "" = the model's default */
    int n_tokens;
    char **tokens;  /* n_tokens NUL-terminated strings */
    float *scores;  /* n_tokens, or NULL */
    int32_t *types; /* n_tokens, or NULL */
    uint8_t *attrs; /* n_tokens PTQ_TOKATTR_* bits, or NULL (= none) */
    int n_merges;
    char **merges;  /* n_merges "left right" strings, or NULL */
    int bos, eos, unk, pad;
    int add_bos, add_eos, add_space_prefix;
    int ignore_merges; /* tokenizer.json model.ignore_merges (Llama 3): a pre-token that is itself a token
                        * is not split */
} ptq_tok_spec;

void ptq_tok_spec_free(ptq_tok_spec *s); /* frees the contents, not `s`; safe on a zeroed spec */
/* Deep copy of `src` into `dst` (overwritten, not freed first). Returns 0, or -1 when out of memory (dst zeroed). */
int ptq_tok_spec_copy(ptq_tok_spec *dst, const ptq_tok_spec *src);

#endif
