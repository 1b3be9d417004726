/* Pre-tokenizer patterns of byte-level BPE, matched by hand (see pretok.h). Each alternative of the regex is
 * tried in order at the current position, as a backtracking regex engine does; the comments give the
 * alternative. */
#include "text/pretok.h"

#include <stdint.h>
#include <string.h>

#include "text/unicode_tables.h"
#include "text/utf8.h"

int ptq_pretok_kind(const char *name) {
    if (!name || !*name || !strcmp(name, "default") || !strcmp(name, "gpt-2") || !strcmp(name, "gpt2") ||
        !strcmp(name, "mpt") || !strcmp(name, "olmo"))
        return PTQ_PRE_GPT2;
    if (!strcmp(name, "llama-bpe") || !strcmp(name, "llama3") || !strcmp(name, "llama-v3")) return PTQ_PRE_LLAMA3;
    if (!strcmp(name, "qwen2")) return PTQ_PRE_QWEN2;
    if (!strcmp(name, "qwen35")) return PTQ_PRE_QWEN35;
    if (!strcmp(name, "starcoder") || !strcmp(name, "refact") || !strcmp(name, "command-r")) return PTQ_PRE_STARCODER;
    return 0;
}

const char *ptq_pretok_names(void) {
    return "gpt-2, default, mpt, olmo, llama-bpe (llama3, llama-v3), qwen2, qwen35, starcoder, refact, command-r";
}

static int class_at(const unsigned char *s, size_t len, size_t pos, uint32_t *cp, size_t *n) {
    uint32_t c;
    size_t k = ptq_utf8_next(s, len, pos, &c);
    if (cp) *cp = c;
    if (n) *n = k;
    return ptq_uclass(c);
}

static size_t run_end(const unsigned char *s, size_t len, size_t pos, int cls) {
    while (pos < len) {
        size_t n;
        if (class_at(s, len, pos, NULL, &n) != cls) break;
        pos += n;
    }
    return pos;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t gpt2_len(const unsigned char *s, size_t len, size_t pos) {
    if (s[pos] == '\'' && pos + 1 < len) {
        unsigned c1 = s[pos + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
        if (pos + 2 < len) {
            unsigned c2 = s[pos + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
        }
    }
    size_t n0;
    uint32_t cp;
    int cls = class_at(s, len, pos, &cp, &n0);
    if (cp == ' ' && pos + 1 < len) { /* " ?X+" with the optional space taken */
        int cls1 = class_at(s, len, pos + 1, NULL, NULL);
        if (cls1 != PTQ_UCLASS_SPACE) return run_end(s, len, pos + 1, cls1) - pos;
    }
    if (cls != PTQ_UCLASS_SPACE) return run_end(s, len, pos, cls) - pos;
    /* whitespace: \s+(?!\S) keeps the last space of a run for the next piece when a non-space follows, unless the
     * run is a single space (then \s+ takes it) */
    size_t last = pos, end = pos + n0;
    while (end < len) {
        size_t n;
        if (class_at(s, len, end, NULL, &n) != PTQ_UCLASS_SPACE) break;
        last = end;
        end += n;
    }
    if (end < len && last > pos) return last - pos;
    return end - pos;
}

static int lower(unsigned c) { return c >= 'A' && c <= 'Z' ? (int)(c | 0x20) : (int)c; }

/* Letter, or (marks: Qwen3.5) a mark */
static int letter_like(uint32_t cp, int cls, int marks) {
    return cls == PTQ_UCLASS_LETTER || (marks && cls == PTQ_UCLASS_OTHER && ptq_is_mark(cp));
}

static size_t letters_end(const unsigned char *s, size_t len, size_t pos, int marks) {
    while (pos < len) {
        uint32_t cp;
        size_t n;
        int cls = class_at(s, len, pos, &cp, &n);
        if (!letter_like(cp, cls, marks)) break;
        pos += n;
    }
    return pos;
}

/* [^\s\p{L}\p{N}]+ (marks: and not \p{M}) */
static size_t others_end(const unsigned char *s, size_t len, size_t pos, int marks) {
    while (pos < len) {
        uint32_t cp;
        size_t n;
        if (class_at(s, len, pos, &cp, &n) != PTQ_UCLASS_OTHER || (marks && ptq_is_mark(cp))) break;
        pos += n;
    }
    return pos;
}

static size_t llama3_len(const unsigned char *s, size_t len, size_t pos, int max_digits, int marks) {
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
    if (s[pos] == '\'' && pos + 1 < len) {
        int c1 = lower(s[pos + 1]);
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
        if (pos + 2 < len) {
            int c2 = lower(s[pos + 2]);
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
        }
    }
    uint32_t cp0, cp1;
    size_t n0;
    int cls0 = class_at(s, len, pos, &cp0, &n0);
    /* [^\r\n\p{L}\p{N}]?\p{L}+  (Qwen3.5: [\p{L}\p{M}]+) */
    if (letter_like(cp0, cls0, marks)) return letters_end(s, len, pos, marks) - pos;
    if (cp0 != '\r' && cp0 != '\n' && cls0 != PTQ_UCLASS_NUMBER && pos + n0 < len) {
        int cls1 = class_at(s, len, pos + n0, &cp1, NULL);
        if (letter_like(cp1, cls1, marks)) return letters_end(s, len, pos + n0, marks) - pos;
    }
    /* \p{N}{1,3} (Qwen2: \p{N}) */
    if (cls0 == PTQ_UCLASS_NUMBER) {
        size_t end = pos;
        for (int k = 0; k < max_digits && end < len; k++) {
            size_t n;
            if (class_at(s, len, end, NULL, &n) != PTQ_UCLASS_NUMBER) break;
            end += n;
        }
        return end - pos;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t start = pos + (cp0 == ' ' ? 1 : 0);
    size_t end = start < len ? others_end(s, len, start, marks) : start;
    if (end > start) {
        while (end < len && (s[end] == '\r' || s[end] == '\n')) end++;
        return end - pos;
    }
    /* only whitespace is left: \s*[\r\n]+ ends after the run's last CR/LF (CR and LF are single bytes, never
     * inside a multi-byte character) */
    size_t last_nl = 0, last = pos;
    end = run_end(s, len, pos, PTQ_UCLASS_SPACE);
    for (size_t i = pos; i < end; i++)
        if (s[i] == '\r' || s[i] == '\n') last_nl = i + 1;
    if (last_nl) return last_nl - pos;
    /* \s+(?!\S) leaves the run's last character to the next piece when a non-space follows; else \s+ */
    for (size_t i = pos; i < end; i += ptq_utf8_next(s, len, i, &cp0)) last = i;
    if (end < len && last > pos) return last - pos;
    return end - pos;
}

size_t ptq_pretok_len(int kind, const unsigned char *s, size_t len, size_t pos) {
    if (pos >= len) return 0;
    switch (kind) {
    case PTQ_PRE_LLAMA3: return llama3_len(s, len, pos, 3, 0);
    case PTQ_PRE_QWEN2: return llama3_len(s, len, pos, 1, 0);
    case PTQ_PRE_QWEN35: return llama3_len(s, len, pos, 1, 1);
    default: return gpt2_len(s, len, pos);
    }
}
