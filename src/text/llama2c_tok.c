#include "text/llama2c_tok.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

struct ptq_l2c_tok {
    int vocab_size;
    char **pieces;     /* NUL-terminated, may contain no NULs inside (checked) */
    int *lens;
    float *scores;
    int *sorted;       /* ids sorted by piece bytes, for lookup */
    unsigned char byte_piece[256][2];
};

static int cmp_bytes(const char *a, int la, const char *b, int lb) {
    int n = la < lb ? la : lb;
    int c = memcmp(a, b, (size_t)n);
    return c ? c : (la > lb) - (la < lb);
}

/* qsort has no context argument in C11; a stable merge sort keeps equal pieces in id order. */
static void sort_ids(const ptq_l2c_tok *t, int *ids, int *tmp, int n) {
    if (n < 2) return;
    int h = n / 2;
    sort_ids(t, ids, tmp, h);
    sort_ids(t, ids + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int a = ids[i], b = ids[j];
        if (cmp_bytes(t->pieces[a], t->lens[a], t->pieces[b], t->lens[b]) <= 0) tmp[k++] = ids[i++];
        else tmp[k++] = ids[j++];
    }
    while (i < h) tmp[k++] = ids[i++];
    while (j < n) tmp[k++] = ids[j++];
    memcpy(ids, tmp, (size_t)n * sizeof *ids);
}

/* The highest id whose piece equals s (as a dict built in id order would keep), or -1. */
static int lookup(const ptq_l2c_tok *t, const char *s, int len) {
    int lo = 0, hi = t->vocab_size - 1, found = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, id = t->sorted[mid];
        int c = cmp_bytes(t->pieces[id], t->lens[id], s, len);
        if (c == 0) found = id;
        if (c <= 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return found;
}

void ptq_l2c_tok_free(ptq_l2c_tok *t) {
    if (!t) return;
    if (t->pieces)
        for (int i = 0; i < t->vocab_size; i++) free(t->pieces[i]);
    free(t->pieces);
    free(t->lens);
    free(t->scores);
    free(t->sorted);
    free(t);
}

ptq_status ptq_l2c_tok_load(const char *path, int vocab_size, ptq_l2c_tok **out, ptq_error *err) {
    *out = NULL;
    char *data;
    size_t size;
    PTQ_TRY(ptq_read_file(path, &data, &size, err));
    ptq_status st = PTQ_OK;
    ptq_l2c_tok *t = calloc(1, sizeof *t);
    if (!t) {
        free(data);
        return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate tokenizer");
    }
    if (size < 4) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: too short for a llama2.c tokenizer", path);
        goto done;
    }
    /* Count entries: the file does not store the vocabulary size. */
    size_t off = 4;
    int count = 0, nonempty = 0;
    while (off < size) {
        int32_t len;
        if (size - off < 8) {
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: truncated at token %d (offset %zu)", path, count, off);
            goto done;
        }
        memcpy(&len, data + off + 4, 4);
        if (len < 0 || (size_t)len > size - off - 8) {
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: token %d has length %d past the end of the file", path, count,
                          len);
            goto done;
        }
        off += 8 + (size_t)len;
        nonempty += len > 0;
        count++;
    }
    if (vocab_size > 0 && count != vocab_size) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: tokenizer has %d tokens, the model expects %d", path, count,
                      vocab_size);
        goto done;
    }
    if (count < 259) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: %d tokens is too few for a llama2.c tokenizer (needs the 256 byte tokens)",
                      path, count);
        goto done;
    }
    if (nonempty == 0) { /* nothing could ever be encoded or decoded */
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: all %d token pieces are empty; not a usable llama2.c tokenizer", path,
                      count);
        goto done;
    }
    t->vocab_size = count;
    t->pieces = calloc((size_t)count, sizeof *t->pieces);
    t->lens = calloc((size_t)count, sizeof *t->lens);
    t->scores = calloc((size_t)count, sizeof *t->scores);
    t->sorted = calloc((size_t)count, sizeof *t->sorted);
    int *tmp = calloc((size_t)count, sizeof *tmp);
    if (!t->pieces || !t->lens || !t->scores || !t->sorted || !tmp) {
        free(tmp);
        st = ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate tokenizer");
        goto done;
    }
    off = 4;
    for (int i = 0; i < count; i++) {
        int32_t len;
        memcpy(&t->scores[i], data + off, 4);
        memcpy(&len, data + off + 4, 4);
        t->pieces[i] = malloc((size_t)len + 1);
        if (!t->pieces[i]) {
            free(tmp);
            st = ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate tokenizer");
            goto done;
        }
        memcpy(t->pieces[i], data + off + 8, (size_t)len);
        t->pieces[i][len] = 0;
        t->lens[i] = len;
        t->sorted[i] = i;
        off += 8 + (size_t)len;
    }
    sort_ids(t, t->sorted, tmp, count);
    free(tmp);
    for (int b = 0; b < 256; b++) {
        t->byte_piece[b][0] = (unsigned char)b;
        t->byte_piece[b][1] = 0;
    }
done:
    free(data);
    if (st != PTQ_OK) {
        ptq_l2c_tok_free(t);
        return st;
    }
    *out = t;
    return PTQ_OK;
}

int ptq_l2c_tok_vocab_size(const ptq_l2c_tok *t) { return t->vocab_size; }

/* A min-heap of candidate merges ordered by (score desc, left position asc). Entries go stale
 * when a neighbour merges; they are checked against the current list on pop. */
typedef struct {
    float score;
    int left, right; /* positions in the linked list */
    int id;          /* merged token */
} cand;

static int cand_before(const cand *a, const cand *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static void heap_push(cand *h, int *n, cand c) {
    int i = (*n)++;
    h[i] = c;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!cand_before(&h[i], &h[p])) break;
        cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static cand heap_pop(cand *h, int *n) {
    cand top = h[0];
    h[0] = h[--(*n)];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, b = i;
        if (l < *n && cand_before(&h[l], &h[b])) b = l;
        if (r < *n && cand_before(&h[r], &h[b])) b = r;
        if (b == i) break;
        cand t = h[i];
        h[i] = h[b];
        h[b] = t;
        i = b;
    }
    return top;
}

typedef struct {
    int *tok, *prev, *next, *ver;
    cand *heap;
    int nheap;
    char *buf;
} merge_state;

static void try_pair(const ptq_l2c_tok *t, merge_state *s, int a, int b) {
    if (a < 0 || b < 0) return;
    int la = t->lens[s->tok[a]], lb = t->lens[s->tok[b]];
    memcpy(s->buf, t->pieces[s->tok[a]], (size_t)la);
    memcpy(s->buf + la, t->pieces[s->tok[b]], (size_t)lb);
    int id = lookup(t, s->buf, la + lb);
    if (id < 0) return;
    cand c = {t->scores[id], a, b, id};
    heap_push(s->heap, &s->nheap, c);
}

ptq_status ptq_l2c_tok_encode(const ptq_l2c_tok *t, const char *text, size_t len, int bos, int **ids, int *n,
                              ptq_error *err) {
    *ids = NULL;
    *n = 0;
    size_t cap = len + 3;
    int maxlen = 0;
    for (int i = 0; i < t->vocab_size; i++)
        if (t->lens[i] > maxlen) maxlen = t->lens[i];
    merge_state s = {0};
    s.tok = malloc(cap * sizeof(int));
    s.prev = malloc(cap * sizeof(int));
    s.next = malloc(cap * sizeof(int));
    s.heap = malloc((cap * 3 + 8) * sizeof(cand)); /* m-1 initial pairs + 2 per merge */
    s.buf = malloc((size_t)2 * maxlen + 8);
    int *out = malloc(cap * sizeof(int));
    if (!s.tok || !s.prev || !s.next || !s.heap || !s.buf || !out) {
        free(s.tok), free(s.prev), free(s.next), free(s.heap), free(s.buf), free(out);
        return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: cannot allocate for %zu bytes of text", len);
    }
    int m = 0;
    if (len > 0) {
        int sp = lookup(t, " ", 1);
        if (sp >= 0) s.tok[m++] = sp;
    }
    size_t i = 0;
    while (i < len) {
        /* one UTF-8 code point: a lead byte plus up to 3 continuation bytes */
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int id = lookup(t, text + i, (int)(j - i));
        if (id >= 0) {
            s.tok[m++] = id;
        } else {
            for (size_t k = i; k < j; k++) s.tok[m++] = (unsigned char)text[k] + 3;
        }
        i = j;
    }
    for (int k = 0; k < m; k++) {
        s.prev[k] = k - 1;
        s.next[k] = k + 1 < m ? k + 1 : -1;
    }
    for (int k = 0; k + 1 < m; k++) try_pair(t, &s, k, k + 1);
    while (s.nheap > 0) {
        cand c = heap_pop(s.heap, &s.nheap);
        /* stale if either side was merged away or changed since */
        if (s.tok[c.left] < 0 || s.tok[c.right] < 0 || s.next[c.left] != c.right) continue;
        int la = t->lens[s.tok[c.left]], lb = t->lens[s.tok[c.right]];
        if (la + lb != t->lens[c.id] || memcmp(t->pieces[c.id], t->pieces[s.tok[c.left]], (size_t)la) != 0 ||
            memcmp(t->pieces[c.id] + la, t->pieces[s.tok[c.right]], (size_t)lb) != 0)
            continue;
        s.tok[c.left] = c.id;
        s.tok[c.right] = -1;
        int nx = s.next[c.right];
        s.next[c.left] = nx;
        if (nx >= 0) s.prev[nx] = c.left;
        try_pair(t, &s, s.prev[c.left], c.left);
        try_pair(t, &s, c.left, nx);
    }
    int k = 0;
    if (bos) out[k++] = 1;
    for (int p = m > 0 ? 0 : -1; p >= 0; p = s.next[p]) out[k++] = s.tok[p];
    free(s.tok), free(s.prev), free(s.next), free(s.heap), free(s.buf);
    *ids = out;
    *n = k;
    return PTQ_OK;
}

const char *ptq_l2c_tok_piece(const ptq_l2c_tok *t, int prev, int id, size_t *len) {
    if (id < 0 || id >= t->vocab_size) {
        *len = 0;
        return "";
    }
    const char *p = t->pieces[id];
    size_t n = (size_t)t->lens[id];
    if (prev == 1 && n > 0 && p[0] == ' ') {
        p++;
        n--;
    }
    unsigned int byte;
    if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>') {
        char hex[3] = {p[3], p[4], 0};
        char *end;
        byte = (unsigned int)strtoul(hex, &end, 16);
        if (*end == 0) {
            *len = 1;
            return (const char *)t->byte_piece[byte & 255];
        }
    }
    *len = n;
    return p;
}

/* As a ptq_tok_spec (GGUF "llama" semantics): pieces with their spaces as "▁", <0xXX> pieces typed BYTE, <unk> /
 * <s> / </s> (stored by llama2.c's exporter as "\n<s>\n" and "\n</s>\n") as UNKNOWN / CONTROL, scores kept. */
ptq_status ptq_l2c_tok_spec(const ptq_l2c_tok *t, ptq_tok_spec *out, ptq_error *err) {
    memset(out, 0, sizeof *out);
    int n = t->vocab_size;
    out->model = PTQ_TOK_SPM;
    out->n_tokens = n;
    out->tokens = calloc((size_t)n, sizeof *out->tokens);
    out->scores = malloc((size_t)n * sizeof *out->scores);
    out->types = malloc((size_t)n * sizeof *out->types);
    if (!out->tokens || !out->scores || !out->types) goto nomem;
    for (int i = 0; i < n; i++) {
        const char *p = t->pieces[i];
        int type = PTQ_TOKTYPE_NORMAL;
        if (i == 0) {
            p = "<unk>";
            type = PTQ_TOKTYPE_UNKNOWN;
        } else if (i == 1 || i == 2) {
            p = i == 1 ? "<s>" : "</s>";
            type = PTQ_TOKTYPE_CONTROL;
        } else if (strlen(p) == 6 && !strncmp(p, "<0x", 3) && p[5] == '>') {
            type = PTQ_TOKTYPE_BYTE;
        }
        size_t spaces = 0, len = strlen(p);
        for (size_t j = 0; j < len; j++) spaces += p[j] == ' ';
        char *s = malloc(len + 2 * spaces + 1);
        if (!s) goto nomem;
        size_t k = 0;
        for (size_t j = 0; j < len; j++) {
            if (p[j] == ' ') {
                memcpy(s + k, "\xE2\x96\x81", 3);
                k += 3;
            } else {
                s[k++] = p[j];
            }
        }
        s[k] = 0;
        out->tokens[i] = s;
        out->scores[i] = t->scores[i];
        out->types[i] = type;
    }
    out->bos = 1;
    out->eos = 2;
    out->unk = 0;
    out->pad = -1;
    out->add_bos = 1;
    out->add_space_prefix = 1;
    return PTQ_OK;
nomem:
    ptq_tok_spec_free(out);
    return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: out of memory");
}
