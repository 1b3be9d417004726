/* UTF-8 decoding, Unicode character classes and GPT-2's byte table: what the pre-tokenizers and the BPE engine
 * share. */
#ifndef PTQ_TEXT_UTF8_H
#define PTQ_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define PTQ_UTF8_INVALID 0xFFFFFFFFu

/* Decode the code point at s[i] (i < len). Well-formed UTF-8 only (no overlongs, surrogates or values above
 * U+10FFFF); any other byte is returned alone as PTQ_UTF8_INVALID. Returns the number of bytes used (>= 1). */
size_t ptq_utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp);
/* PTQ_UCLASS_OTHER / LETTER / NUMBER / SPACE (text/unicode_tables.h); PTQ_UTF8_INVALID is OTHER. */
int ptq_uclass(uint32_t cp);
/* Whether cp is a mark (\p{M}). */
int ptq_is_mark(uint32_t cp);
/* Encode cp as UTF-8 into out[4]; returns the length. */
size_t ptq_utf8_put(uint32_t cp, char *out);

/* GPT-2's bytes_to_unicode: the printable Latin-1 bytes stand for themselves, the other 68 map to U+0100.. */
uint32_t ptq_byte_to_cp(unsigned b);
/* Inverse of ptq_byte_to_cp; -1 for code points that stand for no byte. */
int ptq_cp_to_byte(uint32_t cp);

#endif
