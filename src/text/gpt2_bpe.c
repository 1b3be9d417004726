/* GPT-2 byte-level BPE files: vocab.json + merges.txt loaded, validated and turned into a vocabulary spec that the
 * BPE engine (text/bpe.c) runs. */
#include "text/gpt2_bpe.h"

#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "text/utf8.h"

#define MAX_VOCAB_ID (1 << 24)

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

typedef struct vocab_slot {
    uint64_t hash;
    size_t off; /* key bytes in t->keys */
    uint32_t len;
    int id; /* -1: empty */
} vocab_slot;

typedef struct merge_slot {
    uint64_t key; /* (a << 32) | b */
    int rank;     /* -1: empty */
    int id;       /* id of a+b */
} merge_slot;

struct ptq_gpt2_bpe {
    int vocab_size; /* max id + 1 */
    int byte_id[256];
    char *keys; /* vocabulary strings as written in vocab.json (UTF-8), back to back */
    vocab_slot *vslots;
    size_t vcap;
    char *bytes;     /* token bytes, back to back */
    size_t *tb_off;  /* [vocab_size] */
    uint32_t *tb_len;
    merge_slot *mslots;
    size_t mcap;
    int nmerges;
};

static int vocab_find(const ptq_gpt2_bpe *t, const char *s, size_t n) {
    uint64_t h = hash_bytes(s, n);
    for (size_t i = (size_t)h & (t->vcap - 1);; i = (i + 1) & (t->vcap - 1)) {
        const vocab_slot *e = &t->vslots[i];
        if (e->id < 0) return -1;
        if (e->hash == h && e->len == n && memcmp(t->keys + e->off, s, n) == 0) return e->id;
    }
}

/* Insert or overwrite (a later duplicate key wins, as with a Python dict). */
static void vocab_put(ptq_gpt2_bpe *t, size_t off, uint32_t n, int id) {
    uint64_t h = hash_bytes(t->keys + off, n);
    for (size_t i = (size_t)h & (t->vcap - 1);; i = (i + 1) & (t->vcap - 1)) {
        vocab_slot *e = &t->vslots[i];
        if (e->id < 0 || (e->hash == h && e->len == n && memcmp(t->keys + e->off, t->keys + off, n) == 0)) {
            e->hash = h;
            e->off = off;
            e->len = n;
            e->id = id;
            return;
        }
    }
}

/* A repeated pair keeps its last rank (as dict(zip(merges, range(n))) in GPT-2's encoder). */
static void merge_put(ptq_gpt2_bpe *t, int a, int b, int rank, int id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (size_t i = (size_t)hash_u64(key) & (t->mcap - 1);; i = (i + 1) & (t->mcap - 1)) {
        merge_slot *e = &t->mslots[i];
        if (e->rank < 0 || e->key == key) {
            e->key = key;
            e->rank = rank;
            e->id = id;
            return;
        }
    }
}

/* ------------------------------------------------------------------------------------------ loading */
static void line_col(const char *buf, const char *at, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (const char *p = buf; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static ptq_status load_vocab(ptq_gpt2_bpe *t, const char *path, ptq_error *err) {
    char *buf = NULL;
    size_t size = 0;
    PTQ_TRY(ptq_read_file(path, &buf, &size, err));
    const char *start = buf;
    if (size >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) start += 3; /* UTF-8 byte order mark */
    const char *end = NULL;
    /* the length includes the terminating NUL that ptq_read_file adds, so that trailing garbage is an error */
    cJSON *root = cJSON_ParseWithLengthOpts(start, size + 1 - (size_t)(start - buf), &end, 1);
    if (!root) {
        int line, col;
        line_col(buf, end ? end : buf, &line, &col);
        free(buf);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: invalid JSON at line %d, column %d", path, line, col);
    }
    free(buf);
    ptq_status st = PTQ_OK;
    unsigned char *seen = NULL;
    if (!cJSON_IsObject(root)) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: expected a JSON object mapping token strings to ids", path);
        goto done;
    }
    size_t count = 0, key_bytes = 0;
    int max_id = -1;
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *key = it->string ? it->string : "";
        double v = it->valuedouble;
        if (!cJSON_IsNumber(it) || !(v >= 0) || v >= MAX_VOCAB_ID || v != floor(v)) {
            char quoted[72];
            ptq_snippet(quoted, sizeof quoted, key, strlen(key));
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: token \"%s\": expected an integer id in [0, %d)", path, quoted,
                          MAX_VOCAB_ID);
            goto done;
        }
        if ((int)v > max_id) max_id = (int)v;
        key_bytes += strlen(key);
        count++;
    }
    if (count == 0) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: the vocabulary is empty", path);
        goto done;
    }
    if (key_bytes >= UINT32_MAX) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: vocabulary strings too long", path);
        goto done;
    }
    t->vocab_size = max_id + 1;
    t->vcap = pow2_at_least(2 * count);
    t->keys = malloc(key_bytes + 1);
    t->bytes = malloc(key_bytes + 1); /* decoded tokens are never longer than their strings */
    t->vslots = malloc(t->vcap * sizeof *t->vslots);
    t->tb_off = calloc((size_t)t->vocab_size, sizeof *t->tb_off);
    t->tb_len = calloc((size_t)t->vocab_size, sizeof *t->tb_len);
    seen = calloc((size_t)t->vocab_size, 1);
    if (!t->keys || !t->bytes || !t->vslots || !t->tb_off || !t->tb_len || !seen) {
        st = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate the vocabulary (%zu tokens)", path, count);
        goto done;
    }
    for (size_t i = 0; i < t->vcap; i++) t->vslots[i].id = -1;
    size_t koff = 0, boff = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *key = it->string ? it->string : "";
        int id = (int)it->valuedouble;
        size_t n = strlen(key);
        if (seen[id]) {
            char quoted[72];
            ptq_snippet(quoted, sizeof quoted, key, n);
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: token \"%s\": id %d is used by another token too", path, quoted,
                          id);
            goto done;
        }
        seen[id] = 1;
        memcpy(t->keys + koff, key, n);
        vocab_put(t, koff, (uint32_t)n, id);
        /* bytes: map every character back through the byte table; strings that are not in byte form
         * (added tokens) are kept as UTF-8 */
        const unsigned char *u = (const unsigned char *)key;
        size_t j = 0, nb = 0;
        while (j < n) {
            uint32_t cp;
            j += ptq_utf8_next(u, n, j, &cp);
            int b = cp == PTQ_UTF8_INVALID ? -1 : ptq_cp_to_byte(cp);
            if (b < 0) break;
            t->bytes[boff + nb++] = (char)b;
        }
        if (j < n || n == 0) {
            memcpy(t->bytes + boff, key, n);
            nb = n;
        }
        t->tb_off[id] = boff;
        t->tb_len[id] = (uint32_t)nb;
        boff += nb;
        koff += n;
    }
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = ptq_byte_to_cp(b);
        char s[2];
        size_t n;
        if (cp < 0x80) {
            s[0] = (char)cp;
            n = 1;
        } else {
            s[0] = (char)(0xC0 | (cp >> 6));
            s[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        }
        t->byte_id[b] = vocab_find(t, s, n);
        if (t->byte_id[b] < 0) {
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: no token for byte 0x%02X (expected the string \"\\u%04X\")",
                          path, b, (unsigned)cp);
            goto done;
        }
    }
done:
    free(seen);
    cJSON_Delete(root);
    return st;
}

static ptq_status load_merges(ptq_gpt2_bpe *t, const char *path, ptq_error *err) {
    char *buf = NULL;
    size_t size = 0;
    PTQ_TRY(ptq_read_file(path, &buf, &size, err));
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += buf[i] == '\n';
    t->mcap = pow2_at_least(2 * lines);
    t->mslots = malloc(t->mcap * sizeof *t->mslots);
    char *tmp = malloc(size + 1);
    ptq_status st = PTQ_OK;
    if (!t->mslots || !tmp) {
        st = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %zu merges", path, lines);
        goto done;
    }
    for (size_t i = 0; i < t->mcap; i++) t->mslots[i].rank = -1;
    size_t pos = 0;
    int rank = 0;
    for (size_t lineno = 1; pos < size; lineno++) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - line) : size - pos;
        pos += n + 1;
        if (n > 0 && line[n - 1] == '\r') n--;
        if (lineno == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            n -= 3;
        }
        if (lineno == 1 && n >= 8 && memcmp(line, "#version", 8) == 0) continue;
        if (n == 0) continue;
        const char *sp = memchr(line, ' ', n);
        size_t na = sp ? (size_t)(sp - line) : 0;
        size_t nb = sp ? n - na - 1 : 0;
        char quoted[72]; /* the file's bytes are never echoed raw: control bytes could drive the terminal */
        if (!sp || na == 0 || nb == 0 || memchr(sp + 1, ' ', nb) || memchr(line, '\0', n)) {
            ptq_snippet(quoted, sizeof quoted, line, n);
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s line %zu: expected two tokens separated by one space, got \"%s\"%s",
                          path, lineno, quoted, n >= sizeof quoted ? "..." : "");
            goto done;
        }
        int a = vocab_find(t, line, na), b = vocab_find(t, sp + 1, nb);
        if (a < 0 || b < 0) {
            ptq_snippet(quoted, sizeof quoted, a < 0 ? line : sp + 1, a < 0 ? na : nb);
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s line %zu: token \"%s\" is not in the vocabulary", path, lineno,
                          quoted);
            goto done;
        }
        memcpy(tmp, line, na);
        memcpy(tmp + na, sp + 1, nb);
        int ab = vocab_find(t, tmp, na + nb);
        if (ab < 0) {
            ptq_snippet(quoted, sizeof quoted, tmp, na + nb);
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s line %zu: the merge result \"%s\" is not in the vocabulary", path,
                          lineno, quoted);
            goto done;
        }
        if (rank == INT_MAX) {
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: too many merges", path);
            goto done;
        }
        merge_put(t, a, b, rank++, ab);
    }
    t->nmerges = rank;
done:
    free(tmp);
    free(buf);
    return st;
}

ptq_status ptq_gpt2_bpe_load(const char *vocab_json, const char *merges_txt, ptq_gpt2_bpe **out, ptq_error *err) {
    if (!vocab_json || !merges_txt || !out) return ptq_fail(err, PTQ_ERR_ARG, "gpt2 tokenizer: NULL argument");
    *out = NULL;
    ptq_gpt2_bpe *t = calloc(1, sizeof *t);
    if (!t) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate the GPT-2 tokenizer");
    ptq_status st = load_vocab(t, vocab_json, err);
    if (st == PTQ_OK) st = load_merges(t, merges_txt, err);
    if (st != PTQ_OK) {
        ptq_gpt2_bpe_free(t);
        return st;
    }
    *out = t;
    return PTQ_OK;
}

void ptq_gpt2_bpe_free(ptq_gpt2_bpe *t) {
    if (!t) return;
    free(t->keys);
    free(t->vslots);
    free(t->bytes);
    free(t->tb_off);
    free(t->tb_len);
    free(t->mslots);
    free(t);
}

int ptq_gpt2_bpe_vocab_size(const ptq_gpt2_bpe *t) { return t ? t->vocab_size : 0; }

const char *ptq_gpt2_bpe_token_bytes(const ptq_gpt2_bpe *t, int id, size_t *len) {
    if (!t || id < 0 || id >= t->vocab_size) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->tb_len[id];
    return t->bytes + t->tb_off[id];
}

int ptq_gpt2_bpe_special(const ptq_gpt2_bpe *t, const char *token) {
    if (!t || !token) return -1;
    return vocab_find(t, token, strlen(token));
}

static int is_named_special(const char *s, size_t n) {
    static const char *const names[] = {"<s>", "</s>", "<unk>", "<pad>", "<mask>"};
    if (n >= 4 && !memcmp(s, "<|", 2) && !memcmp(s + n - 2, "|>", 2)) return 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && !memcmp(s, names[i], n)) return 1;
    return 0;
}

ptq_status ptq_gpt2_bpe_spec(const ptq_gpt2_bpe *t, ptq_tok_spec *out, ptq_error *err) {
    memset(out, 0, sizeof *out);
    int n = t->vocab_size, defined = 0;
    for (size_t i = 0; i < t->vcap; i++) defined += t->vslots[i].id >= 0;
    if ((long)n > 2L * defined + 1024) /* unused ids become placeholder tokens */
        return ptq_fail(err, PTQ_ERR_FORMAT, "vocab.json: token ids go up to %d but only %d tokens are defined", n - 1,
                        defined);
    out->model = PTQ_TOK_BYTE_BPE;
    snprintf(out->pre, sizeof out->pre, "gpt-2");
    out->n_tokens = n;
    out->tokens = calloc((size_t)n, sizeof *out->tokens);
    out->types = malloc((size_t)n * sizeof *out->types);
    size_t *koff = malloc((size_t)n * sizeof *koff);
    uint32_t *klen = calloc((size_t)n, sizeof *klen);
    int *by_rank = NULL;
    if (!out->tokens || !out->types || !koff || !klen) goto nomem;
    for (int i = 0; i < n; i++) out->types[i] = PTQ_TOKTYPE_UNUSED;
    for (size_t i = 0; i < t->vcap; i++) {
        const vocab_slot *e = &t->vslots[i];
        if (e->id < 0) continue;
        koff[e->id] = e->off;
        klen[e->id] = e->len;
        const char *s = t->keys + e->off;
        out->types[e->id] = is_named_special(s, e->len) ? PTQ_TOKTYPE_CONTROL : PTQ_TOKTYPE_NORMAL;
        if (!(out->tokens[e->id] = malloc(e->len + 1))) goto nomem;
        memcpy(out->tokens[e->id], s, e->len);
        out->tokens[e->id][e->len] = 0;
    }
    for (int i = 0; i < n; i++) {
        if (out->tokens[i]) continue;
        char name[40];
        snprintf(name, sizeof name, "<ptq_unused_%d>", i);
        if (!(out->tokens[i] = malloc(strlen(name) + 1))) goto nomem;
        memcpy(out->tokens[i], name, strlen(name) + 1);
    }
    /* merges in rank order (a pair given twice kept its last rank: the ranks left are increasing, with gaps) */
    int nr = t->nmerges;
    by_rank = malloc(((size_t)nr + 1) * sizeof *by_rank);
    if (!by_rank) goto nomem;
    for (int r = 0; r < nr; r++) by_rank[r] = -1;
    for (size_t i = 0; i < t->mcap; i++)
        if (t->mslots[i].rank >= 0) by_rank[t->mslots[i].rank] = (int)i;
    out->merges = calloc((size_t)nr + 1, sizeof *out->merges);
    if (!out->merges) goto nomem;
    for (int r = 0; r < nr; r++) {
        if (by_rank[r] < 0) continue;
        const merge_slot *m = &t->mslots[by_rank[r]];
        int a = (int)(m->key >> 32), b = (int)(uint32_t)m->key;
        char *s = malloc((size_t)klen[a] + klen[b] + 2);
        if (!s) goto nomem;
        memcpy(s, t->keys + koff[a], klen[a]);
        s[klen[a]] = ' ';
        memcpy(s + klen[a] + 1, t->keys + koff[b], klen[b]);
        s[klen[a] + 1 + klen[b]] = 0;
        out->merges[out->n_merges++] = s;
    }
    out->bos = out->eos = ptq_gpt2_bpe_special(t, "<|endoftext|>");
    out->unk = out->pad = -1;
    free(koff);
    free(klen);
    free(by_rank);
    return PTQ_OK;
nomem:
    free(koff);
    free(klen);
    free(by_rank);
    ptq_tok_spec_free(out);
    return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: out of memory");
}
