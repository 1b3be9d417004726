/* The BPE engine (see bpe.h): built from a ptq_tok_spec; special-token splitting, SPM normalisation, the
 * byte-level pre-tokenizers, and merging with a heap (O(n log n) per piece, so long words and long texts without
 * spaces stay fast). */
#include "text/bpe.h"

#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/pretok.h"
#include "text/unicode_tables.h"
#include "text/utf8.h"

#define SPM_SPACE "\xE2\x96\x81" /* U+2581 "▁" */

typedef struct tok_slot {
    uint64_t hash;
    int id; /* -1: empty */
} tok_slot;

typedef struct merge_slot {
    uint64_t key; /* (a << 32) | b */
    int rank;     /* -1: empty */
    int id;       /* the merged token */
} merge_slot;

struct ptq_bpe {
    int model, pre, n_tokens;
    int bos, eos, unk, add_bos, add_eos, add_space_prefix, ignore_merges;
    int by_score;  /* SPM without merges: merge by the score of the merged token */
    int spm_split; /* SPM: no token has a "▁" after another character, so the text can be merged word by word */
    char *text;   /* token strings back to back, NUL-terminated each */
    size_t *off;
    uint32_t *len;
    float *scores;
    int32_t *types;
    uint8_t *attrs;
    tok_slot *map; /* string -> id */
    size_t map_cap;
    merge_slot *merges; /* (a, b) -> rank, merged id */
    size_t merge_cap;
    int byte_tok[256]; /* byte-level: the token of each byte; SPM: its <0xXX> token (-1: none) */
    char *dec;         /* decoded bytes of each token */
    size_t *dec_off;
    uint32_t *dec_len;
    int *specials; /* ids matched in the text, by first byte, longest first */
    int special_start[257];
};

/* ------------------------------------------------------------------------------------------ hashing */
static uint64_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001B3ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    x ^= x >> 33;
    return x;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int ptq_bpe_token_id(const ptq_bpe *t, const char *s, size_t n) {
    if (!t || !s) return -1;
    uint64_t h = hash_bytes(s, n);
    for (size_t i = (size_t)h & (t->map_cap - 1);; i = (i + 1) & (t->map_cap - 1)) {
        const tok_slot *e = &t->map[i];
        if (e->id < 0) return -1;
        if (e->hash == h && t->len[e->id] == n && memcmp(t->text + t->off[e->id], s, n) == 0) return e->id;
    }
}

/* Insert token `id`; returns the id already holding the same string, or -1. */
static int map_put(ptq_bpe *t, int id) {
    const char *s = t->text + t->off[id];
    uint64_t h = hash_bytes(s, t->len[id]);
    for (size_t i = (size_t)h & (t->map_cap - 1);; i = (i + 1) & (t->map_cap - 1)) {
        tok_slot *e = &t->map[i];
        if (e->id < 0) {
            e->hash = h;
            e->id = id;
            return -1;
        }
        if (e->hash == h && t->len[e->id] == t->len[id] && memcmp(t->text + t->off[e->id], s, t->len[id]) == 0)
            return e->id;
    }
}

static const merge_slot *merge_find(const ptq_bpe *t, int a, int b) {
    if (!t->merge_cap) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t i = (size_t)hash_u64(key) & (t->merge_cap - 1);; i = (i + 1) & (t->merge_cap - 1)) {
        const merge_slot *e = &t->merges[i];
        if (e->rank < 0) return NULL;
        if (e->key == key) return e;
    }
}

/* A repeated pair keeps its first (lowest) rank, as Hugging Face's and llama.cpp's rank maps do. */
static void merge_put(ptq_bpe *t, int a, int b, int rank, int id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t i = (size_t)hash_u64(key) & (t->merge_cap - 1);; i = (i + 1) & (t->merge_cap - 1)) {
        merge_slot *e = &t->merges[i];
        if (e->rank < 0) {
            e->key = key;
            e->rank = rank;
            e->id = id;
            return;
        }
        if (e->key == key) return;
    }
}

/* ------------------------------------------------------------------------------------------ building */
static int is_special_type(int type) {
    return type == PTQ_TOKTYPE_CONTROL || type == PTQ_TOKTYPE_USER_DEFINED || type == PTQ_TOKTYPE_UNKNOWN;
}

static int type_of(const ptq_bpe *t, int id) { return t->types ? t->types[id] : PTQ_TOKTYPE_NORMAL; }

/* "<0xAB>" -> 0xAB, else -1 */
static int byte_token_value(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static void quote(char *out, size_t cap, const char *s) { ptq_snippet(out, cap, s, strlen(s)); }

static ptq_status build_merges(ptq_bpe *t, const ptq_tok_spec *spec, ptq_error *err) {
    if (spec->n_merges <= 0) return PTQ_OK;
    if (!spec->merges) return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: %d merges but no merge list", spec->n_merges);
    t->merge_cap = pow2_at_least(2 * (size_t)spec->n_merges);
    t->merges = malloc(t->merge_cap * sizeof *t->merges);
    size_t maxlen = 0;
    for (int i = 0; i < t->n_tokens; i++)
        if (t->len[i] > maxlen) maxlen = t->len[i];
    char *buf = malloc(2 * maxlen + 2);
    if (!t->merges || !buf) {
        free(buf);
        return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: cannot allocate %d merges", spec->n_merges);
    }
    for (size_t i = 0; i < t->merge_cap; i++) t->merges[i].rank = -1;
    ptq_status st = PTQ_OK;
    for (int r = 0; r < spec->n_merges && st == PTQ_OK; r++) {
        const char *m = spec->merges[r];
        char q[80];
        if (!m) {
            st = ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: merge %d is missing", r);
            break;
        }
        /* "left right": the separator is the first space after the first byte (as llama.cpp reads them), so a
         * left token may start with a space */
        size_t n = strlen(m);
        const char *sp = n > 1 ? memchr(m + 1, ' ', n - 1) : NULL;
        if (!sp || sp + 1 == m + n) {
            quote(q, sizeof q, m);
            st = ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: merge %d \"%s\" is not two tokens separated by a space", r,
                          q);
            break;
        }
        size_t na = (size_t)(sp - m), nb = n - na - 1;
        int a = ptq_bpe_token_id(t, m, na), b = ptq_bpe_token_id(t, sp + 1, nb);
        if (a < 0 || b < 0) {
            quote(q, sizeof q, m);
            st = ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: merge %d \"%s\": the %s token is not in the vocabulary", r,
                          q, a < 0 ? "left" : "right");
            break;
        }
        if (na + nb > 2 * maxlen) { /* cannot be a token */
            quote(q, sizeof q, m);
            st = ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: merge %d \"%s\": the merged token is not in the vocabulary",
                          r, q);
            break;
        }
        memcpy(buf, m, na);
        memcpy(buf + na, sp + 1, nb);
        int ab = ptq_bpe_token_id(t, buf, na + nb);
        if (ab < 0) {
            quote(q, sizeof q, m);
            st = ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: merge %d \"%s\": the merged token is not in the vocabulary",
                          r, q);
            break;
        }
        merge_put(t, a, b, r, ab);
    }
    free(buf);
    return st;
}

/* Decoded bytes of every token (bpe.h: ptq_bpe_decode). */
static ptq_status build_decoding(ptq_bpe *t, ptq_error *err) {
    size_t total = 0;
    for (int i = 0; i < t->n_tokens; i++) total += t->len[i];
    t->dec = malloc(total + 1);
    t->dec_off = malloc((size_t)t->n_tokens * sizeof *t->dec_off);
    t->dec_len = malloc((size_t)t->n_tokens * sizeof *t->dec_len);
    if (!t->dec || !t->dec_off || !t->dec_len) return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: out of memory");
    size_t pos = 0;
    for (int i = 0; i < t->n_tokens; i++) {
        const unsigned char *s = (const unsigned char *)t->text + t->off[i];
        size_t n = t->len[i], k = 0;
        char *d = t->dec + pos;
        int type = type_of(t, i), bv = byte_token_value((const char *)s, n);
        if (type == PTQ_TOKTYPE_UNUSED) {
            k = 0;
        } else if (is_special_type(type)) {
            memcpy(d, s, n);
            k = n;
        } else if (t->model == PTQ_TOK_SPM && bv >= 0) {
            d[k++] = (char)bv;
        } else if (t->model == PTQ_TOK_SPM) { /* "▁" is 3 bytes, a space 1: never longer */
            for (size_t j = 0; j < n;) {
                if (n - j >= 3 && memcmp(s + j, SPM_SPACE, 3) == 0) {
                    d[k++] = ' ';
                    j += 3;
                } else {
                    d[k++] = (char)s[j++];
                }
            }
        } else { /* byte-level: every character stands for a byte; a token that is not in that form is its text */
            size_t j = 0;
            while (j < n) {
                uint32_t cp;
                j += ptq_utf8_next(s, n, j, &cp);
                int b = cp == PTQ_UTF8_INVALID ? -1 : ptq_cp_to_byte(cp);
                if (b < 0) break;
                d[k++] = (char)b;
            }
            if (j < n) {
                memcpy(d, s, n);
                k = n;
            }
        }
        t->dec_off[i] = pos;
        t->dec_len[i] = (uint32_t)k;
        pos += k;
    }
    return PTQ_OK;
}

/* Tokens matched in the text before tokenizing (bpe.h), grouped by first byte (a counting sort), longest first. */
static ptq_status build_specials(ptq_bpe *t, ptq_error *err) {
    int count[257] = {0};
    for (int i = 0; i < t->n_tokens; i++)
        if (is_special_type(type_of(t, i)) && t->len[i] > 0) count[(unsigned char)t->text[t->off[i]] + 1]++;
    for (int b = 0; b < 256; b++) count[b + 1] += count[b];
    t->specials = malloc(((size_t)count[256] + 1) * sizeof *t->specials);
    if (!t->specials) return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(t->special_start, count, sizeof count);
    for (int i = 0; i < t->n_tokens; i++)
        if (is_special_type(type_of(t, i)) && t->len[i] > 0)
            t->specials[count[(unsigned char)t->text[t->off[i]]]++] = i;
    for (int b = 0; b < 256; b++) /* insertion sort within each group, longest first */
        for (int x = t->special_start[b] + 1; x < t->special_start[b + 1]; x++)
            for (int y = x; y > t->special_start[b] && t->len[t->specials[y]] > t->len[t->specials[y - 1]]; y--) {
                int tmp = t->specials[y];
                t->specials[y] = t->specials[y - 1];
                t->specials[y - 1] = tmp;
            }
    return PTQ_OK;
}

static ptq_status check_id(const char *what, int id, int n, ptq_error *err) {
    if (id < -1 || id >= n)
        return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: %s token id %d is out of range (vocabulary of %d tokens)",
                        what, id, n);
    return PTQ_OK;
}

static ptq_status build(ptq_bpe *t, const ptq_tok_spec *spec, ptq_error *err) {
    if (spec->model != PTQ_TOK_SPM && spec->model != PTQ_TOK_BYTE_BPE)
        return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: unknown model type %d (expected SPM or byte-level BPE)",
                        spec->model);
    t->model = spec->model;
    if (spec->model == PTQ_TOK_BYTE_BPE) {
        char pre[sizeof spec->pre + 1];
        memcpy(pre, spec->pre, sizeof spec->pre);
        pre[sizeof spec->pre] = 0;
        t->pre = ptq_pretok_kind(pre);
        if (!t->pre) {
            char q[80];
            quote(q, sizeof q, pre);
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "tokenizer: unsupported pre-tokenizer '%s' (supported: %s)", q,
                            ptq_pretok_names());
        }
    }
    if (spec->n_tokens <= 0 || spec->n_tokens > (1 << 24) || !spec->tokens)
        return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: %d tokens (expected 1 to %d)", spec->n_tokens, 1 << 24);
    int n = t->n_tokens = spec->n_tokens;
    PTQ_TRY(check_id("BOS", spec->bos, n, err));
    PTQ_TRY(check_id("EOS", spec->eos, n, err));
    PTQ_TRY(check_id("unknown", spec->unk, n, err));
    PTQ_TRY(check_id("padding", spec->pad, n, err));
    t->bos = spec->bos;
    t->eos = spec->eos;
    t->unk = spec->unk;
    t->add_bos = spec->add_bos != 0;
    t->add_eos = spec->add_eos != 0;
    t->add_space_prefix = spec->add_space_prefix != 0;
    t->ignore_merges = spec->ignore_merges != 0;
    if (spec->model == PTQ_TOK_SPM && spec->n_merges <= 0) {
        if (!spec->scores) return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: an SPM vocabulary needs scores or merges");
        t->by_score = 1;
    }
    if (spec->model == PTQ_TOK_BYTE_BPE && spec->n_merges < 0)
        return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: %d merges", spec->n_merges);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!spec->tokens[i]) return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: token %d is missing", i);
        size_t l = strlen(spec->tokens[i]);
        if (l > (1u << 20)) return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: token %d is %zu bytes long", i, l);
        total += l + 1;
    }
    t->text = malloc(total);
    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->map_cap = pow2_at_least(2 * (size_t)n);
    t->map = malloc(t->map_cap * sizeof *t->map);
    if (spec->scores) t->scores = malloc((size_t)n * sizeof *t->scores);
    if (spec->types) t->types = malloc((size_t)n * sizeof *t->types);
    if (spec->attrs) t->attrs = malloc((size_t)n);
    if (!t->text || !t->off || !t->len || !t->map || (spec->scores && !t->scores) || (spec->types && !t->types) ||
        (spec->attrs && !t->attrs))
        return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: cannot allocate %d tokens", n);
    if (spec->scores) memcpy(t->scores, spec->scores, (size_t)n * sizeof *t->scores);
    if (spec->types) memcpy(t->types, spec->types, (size_t)n * sizeof *t->types);
    if (spec->attrs) memcpy(t->attrs, spec->attrs, (size_t)n);
    for (size_t i = 0; i < t->map_cap; i++) t->map[i].id = -1;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(spec->tokens[i]);
        memcpy(t->text + pos, spec->tokens[i], l + 1);
        t->off[i] = pos;
        t->len[i] = (uint32_t)l;
        pos += l + 1;
        int type = type_of(t, i);
        if (type < PTQ_TOKTYPE_UNDEFINED || type > PTQ_TOKTYPE_BYTE)
            return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: token %d has type %d (expected 0 to 6)", i, type);
        if (t->scores && !(t->scores[i] >= -FLT_MAX && t->scores[i] <= FLT_MAX))
            return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: token %d has a score that is not a finite number", i);
        if (type == PTQ_TOKTYPE_UNUSED || l == 0) continue; /* never produced by encoding */
        int other = map_put(t, i);
        if (other >= 0) {
            char q[80];
            quote(q, sizeof q, spec->tokens[i]);
            return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: token \"%s\" appears twice (ids %d and %d)", q, other, i);
        }
    }
    for (int b = 0; b < 256; b++) {
        char s[8];
        size_t l;
        if (t->model == PTQ_TOK_BYTE_BPE) {
            l = ptq_utf8_put(ptq_byte_to_cp((unsigned)b), s);
        } else {
            static const char hex[] = "0123456789ABCDEF";
            memcpy(s, "<0x", 3);
            s[3] = hex[b >> 4];
            s[4] = hex[b & 15];
            s[5] = '>';
            l = 6;
        }
        t->byte_tok[b] = ptq_bpe_token_id(t, s, l);
        /* ASCII must be there; other bytes may lack a token (GPT-NeoX's and StarCoder's vocabularies): encoding
         * then drops them, as Hugging Face's BPE and llama.cpp do */
        if (t->byte_tok[b] < 0 && t->model == PTQ_TOK_BYTE_BPE && b < 0x80)
            return ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer: no token for byte 0x%02X (a byte-level vocabulary needs "
                            "the ASCII bytes)", b);
    }
    if (t->model == PTQ_TOK_SPM && !t->ignore_merges) {
        t->spm_split = 1;
        for (int i = 0; i < n && t->spm_split; i++) {
            const char *s = t->text + t->off[i];
            for (uint32_t k = 1; k + 3 <= t->len[i]; k++)
                if (memcmp(s + k, SPM_SPACE, 3) == 0 && (k < 3 || memcmp(s + k - 3, SPM_SPACE, 3) != 0)) {
                    t->spm_split = 0;
                    break;
                }
        }
    }
    PTQ_TRY(build_merges(t, spec, err));
    PTQ_TRY(build_decoding(t, err));
    return build_specials(t, err);
}

ptq_status ptq_bpe_create(const ptq_tok_spec *spec, ptq_bpe **out, ptq_error *err) {
    if (!spec || !out) return ptq_fail(err, PTQ_ERR_ARG, "ptq_bpe_create: NULL argument");
    *out = NULL;
    ptq_bpe *t = calloc(1, sizeof *t);
    if (!t) return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: out of memory");
    ptq_status st = build(t, spec, err);
    if (st != PTQ_OK) {
        ptq_bpe_free(t);
        return st;
    }
    *out = t;
    return PTQ_OK;
}

void ptq_bpe_free(ptq_bpe *t) {
    if (!t) return;
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->scores);
    free(t->types);
    free(t->attrs);
    free(t->map);
    free(t->merges);
    free(t->dec);
    free(t->dec_off);
    free(t->dec_len);
    free(t->specials);
    free(t);
}

int ptq_bpe_n_tokens(const ptq_bpe *t) { return t ? t->n_tokens : 0; }
int ptq_bpe_bos(const ptq_bpe *t) { return t ? t->bos : -1; }
int ptq_bpe_eos(const ptq_bpe *t) { return t ? t->eos : -1; }

ptq_status ptq_bpe_set_bos_eos(ptq_bpe *t, int bos, int eos, ptq_error *err) {
    if (bos < -1 || bos >= t->n_tokens || eos < -1 || eos >= t->n_tokens)
        return ptq_fail(err, PTQ_ERR_ARG, "tokenizer: BOS %d / EOS %d out of range (vocabulary of %d tokens)", bos,
                        eos, t->n_tokens);
    t->bos = bos;
    t->eos = eos;
    return PTQ_OK;
}

const char *ptq_bpe_decode(const ptq_bpe *t, int prev, int id, size_t *len) {
    if (!t || id < 0 || id >= t->n_tokens) {
        *len = 0;
        return "";
    }
    const char *p = t->dec + t->dec_off[id];
    size_t n = t->dec_len[id];
    if (t->model == PTQ_TOK_SPM && prev >= 0 && prev == t->bos && n > 0 && p[0] == ' ' &&
        type_of(t, id) != PTQ_TOKTYPE_BYTE) {
        p++;
        n--;
    }
    *len = n;
    return p;
}

/* ------------------------------------------------------------------------------------------ encoding */
typedef struct heap_entry {
    double key;     /* merge rank, or minus the merged token's score */
    int left, right; /* symbol positions */
    int a, b;       /* rank mode: the ids the pair had when queued; score mode: a = merged length in bytes */
    int id;         /* the merged token */
} heap_entry;

typedef struct cache_slot {
    uint64_t hash;
    size_t key_off, len;   /* the piece's bytes, in scratch.keys */
    size_t out_off, out_n; /* its ids in scratch.out; out_n 0: empty slot */
} cache_slot;

typedef struct scratch {
    int *sym, *next, *prev; /* symbols: ids (rank mode) or byte lengths (score mode, with start[]) */
    size_t *start;
    size_t sym_cap;
    heap_entry *heap;
    size_t heap_n, heap_cap;
    int *out;
    size_t out_n, out_cap;
    char *buf; /* normalised text / mapped piece */
    size_t buf_cap;
    cache_slot *cache;
    size_t cache_cap, cache_n;
    char *keys; /* the cached pieces' bytes */
    size_t keys_n, keys_cap;
    const unsigned char *text;
} scratch;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

static int push_out(scratch *s, int id) {
    if (!grow((void **)&s->out, &s->out_cap, s->out_n + 1, sizeof *s->out)) return 0;
    s->out[s->out_n++] = id;
    return 1;
}

static int heap_less(const heap_entry *x, const heap_entry *y) {
    return x->key < y->key || (x->key == y->key && x->left < y->left);
}

static int heap_push(scratch *s, heap_entry e) {
    if (!grow((void **)&s->heap, &s->heap_cap, s->heap_n + 1, sizeof *s->heap)) return 0;
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = e;
    return 1;
}

static heap_entry heap_pop(scratch *s) {
    heap_entry top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&s->heap[c + 1], &s->heap[c])) c++;
        if (!heap_less(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0) s->heap[i] = last;
    return top;
}

static int reserve_symbols(scratch *s, size_t n) {
    if (n <= s->sym_cap) return 1;
    size_t c = pow2_at_least(n);
    int *a = realloc(s->sym, c * sizeof(int));
    if (a) s->sym = a;
    int *b = realloc(s->next, c * sizeof(int));
    if (b) s->next = b;
    int *d = realloc(s->prev, c * sizeof(int));
    if (d) s->prev = d;
    size_t *e = realloc(s->start, c * sizeof(size_t));
    if (e) s->start = e;
    if (!a || !b || !d || !e) return 0;
    s->sym_cap = c;
    return 1;
}

static void link_symbols(scratch *s, int m) {
    for (int i = 0; i < m; i++) {
        s->next[i] = i + 1 < m ? i + 1 : -1;
        s->prev[i] = i - 1;
    }
}

/* Queue the pair (left, right) of id symbols if it has a merge. */
static int add_rank_pair(const ptq_bpe *t, scratch *s, int left, int right) {
    if (left < 0 || right < 0) return 1;
    const merge_slot *m = merge_find(t, s->sym[left], s->sym[right]);
    if (!m) return 1;
    heap_entry e = {(double)m->rank, left, right, s->sym[left], s->sym[right], m->id};
    return heap_push(s, e);
}

/* Merge the m id symbols in s->sym by rank (lowest first, leftmost on ties) and append the result to s->out. */
static int merge_by_rank(const ptq_bpe *t, scratch *s, int m) {
    link_symbols(s, m);
    s->heap_n = 0;
    for (int i = 0; i + 1 < m; i++)
        if (!add_rank_pair(t, s, i, i + 1)) return 0;
    while (s->heap_n > 0) {
        heap_entry e = heap_pop(s);
        if (s->sym[e.left] != e.a || s->next[e.left] != e.right || s->sym[e.right] != e.b) continue; /* stale */
        s->sym[e.left] = e.id;
        s->sym[e.right] = -1;
        int nx = s->next[e.right];
        s->next[e.left] = nx;
        if (nx >= 0) s->prev[nx] = e.left;
        if (!add_rank_pair(t, s, s->prev[e.left], e.left) || !add_rank_pair(t, s, e.left, nx)) return 0;
    }
    if (!grow((void **)&s->out, &s->out_cap, s->out_n + (size_t)m, sizeof *s->out)) return 0;
    for (int i = m > 0 ? 0 : -1; i >= 0; i = s->next[i]) s->out[s->out_n++] = s->sym[i];
    return 1;
}

/* Queue the pair (left, right) of text symbols if their concatenation is a token. */
static int add_score_pair(const ptq_bpe *t, scratch *s, const char *text, int left, int right) {
    if (left < 0 || right < 0) return 1;
    size_t n = (size_t)s->sym[left] + (size_t)s->sym[right];
    int id = ptq_bpe_token_id(t, text + s->start[left], n);
    if (id < 0) return 1;
    heap_entry e = {-(double)t->scores[id], left, right, (int)n, 0, id};
    return heap_push(s, e);
}

/* The byte-fallback tokens of text[0, n) (or unk) appended to s->out. */
static int emit_bytes(const ptq_bpe *t, scratch *s, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int id = t->byte_tok[p[i]] >= 0 ? t->byte_tok[p[i]] : t->unk;
        if (id < 0) return -1;
        if (!push_out(s, id)) return 0;
    }
    return 1;
}

/* SPM by score (SentencePiece / llama.cpp): characters as symbols, repeatedly merge the adjacent pair whose
 * concatenation is the token with the highest score (leftmost on ties); what is not a token at the end becomes
 * bytes. Returns 1, 0 (out of memory) or -1 (a byte with no token and no unk). */
static int spm_by_score(const ptq_bpe *t, scratch *s, const char *text, size_t len) {
    const unsigned char *u = (const unsigned char *)text;
    if (len > (size_t)INT_MAX || !reserve_symbols(s, len)) return 0;
    int m = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = ptq_utf8_next(u, len, i, &cp);
        s->start[m] = i;
        s->sym[m++] = (int)k;
        i += k;
    }
    link_symbols(s, m);
    s->heap_n = 0;
    for (int i = 0; i + 1 < m; i++)
        if (!add_score_pair(t, s, text, i, i + 1)) return 0;
    while (s->heap_n > 0) {
        heap_entry e = heap_pop(s);
        if (s->sym[e.left] == 0 || s->next[e.left] != e.right || s->sym[e.left] + s->sym[e.right] != e.a) continue;
        s->sym[e.left] = e.a;
        s->sym[e.right] = 0;
        int nx = s->next[e.right];
        s->next[e.left] = nx;
        if (nx >= 0) s->prev[nx] = e.left;
        if (!add_score_pair(t, s, text, s->prev[e.left], e.left) || !add_score_pair(t, s, text, e.left, nx)) return 0;
    }
    for (int i = m > 0 ? 0 : -1; i >= 0; i = s->next[i]) {
        int id = ptq_bpe_token_id(t, text + s->start[i], (size_t)s->sym[i]);
        int r = id >= 0 ? push_out(s, id) : emit_bytes(t, s, u + s->start[i], (size_t)s->sym[i]);
        if (r != 1) return r;
    }
    return 1;
}

/* SPM by merge rank (Hugging Face BPE with byte_fallback): each character is its token, or its byte tokens, or
 * unk (consecutive unknown characters fused into one unk, as fuse_unk does). */
static int spm_by_rank(const ptq_bpe *t, scratch *s, const char *text, size_t len) {
    const unsigned char *u = (const unsigned char *)text;
    if (t->ignore_merges) {
        int id = ptq_bpe_token_id(t, text, len);
        if (id >= 0) return push_out(s, id);
    }
    if (len > (size_t)INT_MAX || !reserve_symbols(s, len)) return 0;
    int m = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = ptq_utf8_next(u, len, i, &cp);
        int id = ptq_bpe_token_id(t, text + i, k);
        if (id >= 0) {
            s->sym[m++] = id;
        } else {
            int all = 1;
            for (size_t j = 0; j < k; j++) all &= t->byte_tok[u[i + j]] >= 0;
            if (all) {
                for (size_t j = 0; j < k; j++) s->sym[m++] = t->byte_tok[u[i + j]];
            } else if (t->unk < 0) {
                return -1;
            } else if (m == 0 || s->sym[m - 1] != t->unk) {
                s->sym[m++] = t->unk;
            }
        }
        i += k;
    }
    return merge_by_rank(t, s, m);
}

static int cache_grow(scratch *s) {
    size_t cap = s->cache_cap ? s->cache_cap * 2 : 64;
    cache_slot *c = calloc(cap, sizeof *c);
    if (!c) return 0;
    for (size_t i = 0; i < s->cache_cap; i++) {
        const cache_slot *e = &s->cache[i];
        if (!e->out_n) continue;
        size_t j = (size_t)e->hash & (cap - 1);
        while (c[j].out_n) j = (j + 1) & (cap - 1);
        c[j] = *e;
    }
    free(s->cache);
    s->cache = c;
    s->cache_cap = cap;
    return 1;
}

/* Pieces seen before in this call are copied from a cache (most words repeat). cache_find: on a hit, the piece's ids
 * are appended to s->out and 1 is returned; else 0, with *slot and *hash set for cache_add (-1: out of memory). */
static int cache_find(scratch *s, const void *p, size_t n, size_t *slot, uint64_t *hash) {
    if ((s->cache_n + 1) * 2 > s->cache_cap && !cache_grow(s)) return -1;
    uint64_t h = hash_bytes(p, n);
    size_t j = (size_t)h & (s->cache_cap - 1);
    for (; s->cache[j].out_n; j = (j + 1) & (s->cache_cap - 1)) {
        const cache_slot *e = &s->cache[j];
        if (e->hash == h && e->len == n && memcmp(s->keys + e->key_off, p, n) == 0) {
            if (!grow((void **)&s->out, &s->out_cap, s->out_n + e->out_n, sizeof *s->out)) return -1;
            memcpy(s->out + s->out_n, s->out + e->out_off, e->out_n * sizeof *s->out);
            s->out_n += e->out_n;
            return 1;
        }
    }
    *slot = j;
    *hash = h;
    return 0;
}

/* Remember that p[0,n) gave s->out[first, out_n). Pieces longer than 256 bytes are not worth keeping. */
static int cache_add(scratch *s, size_t slot, uint64_t h, const void *p, size_t n, size_t first) {
    if (n > 256 || s->out_n == first) return 1;
    if (!grow((void **)&s->keys, &s->keys_cap, s->keys_n + n, 1)) return 0;
    memcpy(s->keys + s->keys_n, p, n);
    cache_slot *e = &s->cache[slot];
    e->hash = h;
    e->key_off = s->keys_n;
    e->len = n;
    e->out_off = first;
    e->out_n = s->out_n - first;
    s->keys_n += n;
    s->cache_n++;
    return 1;
}

/* One byte-level piece p[0, n): its bytes' tokens merged by rank (a byte without a token is unk, or dropped when there
 * is no unk). Returns 1 or 0 (out of memory). */
static int byte_piece(const ptq_bpe *t, scratch *s, const unsigned char *p, size_t n) {
    size_t slot;
    uint64_t h;
    int hit = cache_find(s, p, n, &slot, &h);
    if (hit) return hit > 0;
    size_t first = s->out_n;
    int id = -1;
    if (t->ignore_merges) { /* the piece in vocabulary form, looked up whole */
        if (!grow((void **)&s->buf, &s->buf_cap, 2 * n + 1, 1)) return 0;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += ptq_utf8_put(ptq_byte_to_cp(p[i]), s->buf + k);
        id = ptq_bpe_token_id(t, s->buf, k);
    }
    if (id >= 0) {
        if (!push_out(s, id)) return 0;
    } else {
        if (n > (size_t)INT_MAX || !reserve_symbols(s, n)) return 0;
        int m = 0;
        for (size_t i = 0; i < n; i++) {
            int b = t->byte_tok[p[i]] >= 0 ? t->byte_tok[p[i]] : t->unk;
            if (b >= 0) s->sym[m++] = b;
        }
        if (!merge_by_rank(t, s, m)) return 0;
    }
    return cache_add(s, slot, h, p, n, first);
}

/* One SPM word (or the whole normalised text when the vocabulary does not allow splitting it). */
static int spm_word(const ptq_bpe *t, scratch *s, const char *w, size_t n) {
    size_t slot;
    uint64_t h;
    int hit = cache_find(s, w, n, &slot, &h);
    if (hit) return hit > 0 ? 1 : 0;
    size_t first = s->out_n;
    int r = t->by_score ? spm_by_score(t, s, w, n) : spm_by_rank(t, s, w, n);
    if (r != 1) return r;
    return cache_add(s, slot, h, w, n, first);
}

/* Text between special tokens. Returns 1, 0 (out of memory) or -1 (unencodable byte). */
/* The byte-level pieces of text[off, off+len) by pre-tokenizer `kind`. */
static int byte_pieces(const ptq_bpe *t, scratch *s, int kind, size_t off, size_t len) {
    for (size_t pos = off; pos < off + len;) {
        size_t m = ptq_pretok_len(kind, s->text + off, len, pos - off);
        int r = byte_piece(t, s, s->text + pos, m);
        if (r != 1) return r;
        pos += m;
    }
    return 1;
}

static int encode_run(const ptq_bpe *t, scratch *s, size_t off, size_t len) {
    if (len == 0) return 1;
    if (t->model == PTQ_TOK_BYTE_BPE && t->pre != PTQ_PRE_STARCODER) return byte_pieces(t, s, t->pre, off, len);
    if (t->model == PTQ_TOK_BYTE_BPE) { /* StarCoder: every digit is a piece; GPT-2's pattern between them */
        size_t a = off, end = off + len;
        while (a < end) {
            size_t b = a, n = 0;
            for (; b < end; b += n) {
                uint32_t cp;
                n = ptq_utf8_next(s->text, end, b, &cp);
                if (ptq_uclass(cp) == PTQ_UCLASS_NUMBER) break;
            }
            int r = byte_pieces(t, s, PTQ_PRE_GPT2, a, b - a);
            if (r == 1 && b < end) r = byte_piece(t, s, s->text + b, n);
            if (r != 1) return r;
            a = b < end ? b + n : end;
        }
        return 1;
    }
    /* SPM: "▁" first (add_space_prefix), spaces as "▁" */
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += s->text[off + i] == ' ';
    if (!grow((void **)&s->buf, &s->buf_cap, len + 2 * spaces + 4, 1)) return 0;
    size_t k = 0;
    if (t->add_space_prefix) {
        memcpy(s->buf, SPM_SPACE, 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        char c = (char)s->text[off + i];
        if (c == ' ') {
            memcpy(s->buf + k, SPM_SPACE, 3);
            k += 3;
        } else {
            s->buf[k++] = c;
        }
    }
    if (!t->spm_split) return t->by_score ? spm_by_score(t, s, s->buf, k) : spm_by_rank(t, s, s->buf, k);
    /* words start at each "▁" that follows another character (spm_split: no token crosses such a point) */
    size_t w = 0;
    for (size_t i = 1; i + 3 <= k; i++) {
        if (memcmp(s->buf + i, SPM_SPACE, 3) != 0 || (i >= 3 && memcmp(s->buf + i - 3, SPM_SPACE, 3) == 0)) continue;
        int r = spm_word(t, s, s->buf + w, i - w);
        if (r != 1) return r;
        w = i;
        i += 2;
    }
    return k > w ? spm_word(t, s, s->buf + w, k - w) : 1;
}

static int is_ws(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* The leftmost special token in text[pos, len) (longest at that position); returns its id and sets *at. */
static int find_special(const ptq_bpe *t, const unsigned char *text, size_t len, size_t pos, int parse_special,
                        size_t *at) {
    if (t->special_start[256] == 0) return -1;
    for (size_t i = pos; i < len; i++) {
        unsigned b = text[i];
        for (int k = t->special_start[b]; k < t->special_start[b + 1]; k++) {
            int id = t->specials[k];
            if (!parse_special && type_of(t, id) != PTQ_TOKTYPE_USER_DEFINED) continue;
            size_t n = t->len[id];
            if (n <= len - i && memcmp(text + i, t->text + t->off[id], n) == 0) {
                *at = i;
                return id;
            }
        }
    }
    return -1;
}

ptq_status ptq_bpe_encode(const ptq_bpe *t, const char *text, size_t len, int add_special, int parse_special,
                          int **ids, int *n, ptq_error *err) {
    if (!t || !ids || !n || (!text && len > 0)) return ptq_fail(err, PTQ_ERR_ARG, "tokenizer encode: NULL argument");
    *ids = NULL;
    *n = 0;
    scratch s;
    memset(&s, 0, sizeof s);
    s.text = (const unsigned char *)text;
    ptq_status st = PTQ_OK;
    int r = 1;
    if (!grow((void **)&s.out, &s.out_cap, len / 3 + 16, sizeof *s.out)) r = 0;
    if (r == 1 && add_special && t->add_bos && t->bos >= 0) r = push_out(&s, t->bos);
    size_t pos = 0;
    while (r == 1 && pos <= len) {
        size_t at = len;
        int sp = find_special(t, s.text, len, pos, parse_special, &at);
        size_t end = at;
        if (sp >= 0 && t->attrs && (t->attrs[sp] & PTQ_TOKATTR_LSTRIP))
            while (end > pos && is_ws(s.text[end - 1])) end--;
        r = encode_run(t, &s, pos, end - pos);
        if (r != 1 || sp < 0) break;
        r = push_out(&s, sp);
        pos = at + t->len[sp];
        if (t->attrs && (t->attrs[sp] & PTQ_TOKATTR_RSTRIP))
            while (pos < len && is_ws(s.text[pos])) pos++;
    }
    if (r == 1 && add_special && t->add_eos && t->eos >= 0) r = push_out(&s, t->eos);
    if (r == 1 && s.out_n > (size_t)INT_MAX) {
        st = ptq_fail(err, PTQ_ERR_ARG, "tokenizer encode: more than %d tokens", INT_MAX);
    } else if (r == 0) {
        st = ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer encode: out of memory (%zu bytes of text)", len);
    } else if (r < 0) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "tokenizer encode: a byte has no token (the vocabulary has neither "
                      "<0xXX> byte tokens nor an unknown token)");
    } else {
        *ids = s.out;
        *n = (int)s.out_n;
        s.out = NULL;
    }
    free(s.out);
    free(s.sym);
    free(s.next);
    free(s.prev);
    free(s.start);
    free(s.heap);
    free(s.buf);
    free(s.cache);
    free(s.keys);
    return st;
}
