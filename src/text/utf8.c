/* UTF-8, character classes and GPT-2's byte table (see utf8.h). */
#include "text/utf8.h"

#include "text/unicode_tables.h"

size_t ptq_utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp) {
    unsigned c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* > U+10FFFF */
    } else {
        *cp = PTQ_UTF8_INVALID;
        return 1;
    }
    if (len - i < n) {
        *cp = PTQ_UTF8_INVALID;
        return 1;
    }
    for (size_t k = 1; k < n; k++) {
        unsigned b = s[i + k];
        if (b < (k == 1 ? lo : 0x80u) || b > (k == 1 ? hi : 0xBFu)) {
            *cp = PTQ_UTF8_INVALID;
            return 1;
        }
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    return n;
}

int ptq_uclass(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return PTQ_UCLASS_LETTER;
        if (cp >= '0' && cp <= '9') return PTQ_UCLASS_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return PTQ_UCLASS_SPACE;
        return PTQ_UCLASS_OTHER;
    }
    size_t lo = 0, hi = ptq_uclass_nranges; /* first range with hi >= cp */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ptq_uclass_ranges[mid].hi < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ptq_uclass_nranges && ptq_uclass_ranges[lo].lo <= cp) return ptq_uclass_ranges[lo].cls;
    return PTQ_UCLASS_OTHER;
}

int ptq_is_mark(uint32_t cp) {
    if (cp < 0x300) return 0;
    size_t lo = 0, hi = ptq_mark_nranges; /* first range with hi >= cp */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ptq_mark_ranges[mid].hi < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ptq_mark_nranges && ptq_mark_ranges[lo].lo <= cp;
}

size_t ptq_utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

uint32_t ptq_byte_to_cp(unsigned b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    if (b <= 0x20) return 0x100 + b;
    if (b <= 0xA0) return 0x100 + 33 + (b - 0x7F);
    return 0x100 + 67; /* 0xAD */
}

int ptq_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) {
        if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || cp >= 0xAE) return (int)cp;
        return -1;
    }
    if (cp < 0x100 + 33) return (int)(cp - 0x100);
    if (cp < 0x100 + 67) return (int)(0x7F + cp - (0x100 + 33));
    if (cp == 0x100 + 67) return 0xAD;
    return -1;
}
