/* Pre-tokenizers of byte-level BPE: the regex that splits text into the pieces merged separately, matched by hand
 * over UTF-8 code points (classes from text/unicode_tables.h). Names follow GGUF's tokenizer.ggml.pre. */
#ifndef PTQ_TEXT_PRETOK_H
#define PTQ_TEXT_PRETOK_H

#include <stddef.h>

enum {
    PTQ_PRE_GPT2 = 1,   /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    PTQ_PRE_LLAMA3 = 2, /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
                           ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    PTQ_PRE_QWEN2 = 3,  /* as LLAMA3 with \p{N} instead of \p{N}{1,3} */
    PTQ_PRE_QWEN35 = 5, /* as QWEN2 with marks (\p{M}) counted with letters: [^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+ and
                           ?[^\s\p{L}\p{M}\p{N}]+[\r\n]* */
    PTQ_PRE_STARCODER = 4, /* every \p{N} split off first, then GPT-2's pattern on the text between (done by the
                              engine: ptq_pretok_len treats it as GPT-2's) */
};

/* The pre-tokenizer named `name` (GGUF tokenizer.ggml.pre), or 0 when unsupported. "", "default", "gpt-2", "mpt"
 * and "olmo" are GPT-2's pattern (llama.cpp's own "default" splits punctuation and digit runs further; ptq keeps
 * GPT-2's, which is what such old files were converted from); "llama-bpe", "llama3", "llama-v3" Llama 3's;
 * "qwen2" Qwen2's; "qwen35" Qwen3.5's; "starcoder", "refact", "command-r" StarCoder's. */
int ptq_pretok_kind(const char *name);
/* The supported names, for error messages. */
const char *ptq_pretok_names(void);
/* Length in bytes (>= 1) of the piece starting at byte `pos` (< len). */
size_t ptq_pretok_len(int kind, const unsigned char *s, size_t len, size_t pos);

#endif
