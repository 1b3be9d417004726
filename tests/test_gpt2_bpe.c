/* GPT-2 byte-level BPE (vocab.json + merges.txt through ptq_gpt2_bpe_spec, encoded by the BPE engine with GPT-2's
 * pre-tokenizer): ids against goldens from an independent Python encoder (tests/ref/make_bpe_golden.py, vocabulary
 * trained on tinyshakespeare) on WikiText-2 and on hand-written tricky strings; byte round trips; pre-tokenizer and
 * character-class spot checks; load errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "testutil.h"
#include "text/gpt2_bpe.h"
#include "text/pretok.h"
#include "text/tokenizer_internal.h"
#include "text/unicode_tables.h"
#include "text/utf8.h"

#define GOLD PTQ_SOURCE_DIR "/tests/data/gpt2tok/"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The engine built from the files' spec, as ptq_tokenizer_load builds it for a vocab.json. */
static ptq_tokenizer *engine_of(const ptq_gpt2_bpe *t) {
    ptq_tok_spec spec;
    ptq_tokenizer *k = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_gpt2_bpe_spec(t, &spec, &err) == PTQ_OK, "%s", err.msg);
    if (err.msg[0]) return NULL;
    CHECK_MSG(ptq_tokenizer_from_spec(&spec, &k, &err) == PTQ_OK, "%s", err.msg);
    ptq_tok_spec_free(&spec);
    return k;
}

/* GPT-2's encoder: no BOS, "<|endoftext|>" in the text is plain text. */
static ptq_status enc(const ptq_tokenizer *k, const char *text, size_t len, int **ids, int *n, ptq_error *err) {
    return ptq_tokenizer_encode_ex(k, text, len, 0, 0, ids, n, err);
}

static size_t pretoken_len(const char *text, size_t len, size_t pos) {
    return ptq_pretok_len(PTQ_PRE_GPT2, (const unsigned char *)text, len, pos);
}

/* Parse a line of space-separated ints; returns the count (ids malloc'ed). */
static int parse_ids(const char *line, size_t n, int **ids) {
    int cap = 16, k = 0;
    *ids = malloc(sizeof(int) * (size_t)cap);
    size_t i = 0;
    while (i < n) {
        while (i < n && (line[i] < '0' || line[i] > '9')) i++; /* separators (and the newline) */
        if (i >= n) break;
        int v = 0;
        while (i < n && line[i] >= '0' && line[i] <= '9') v = v * 10 + (line[i++] - '0');
        if (k == cap) {
            cap *= 2;
            *ids = realloc(*ids, sizeof(int) * (size_t)cap);
        }
        (*ids)[k++] = v;
    }
    return k;
}

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

/* Concatenated token bytes == text? */
static int round_trip(const ptq_gpt2_bpe *t, const int *ids, int n, const char *text, size_t len) {
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *b = ptq_gpt2_bpe_token_bytes(t, ids[i], &l);
        if (!b || pos + l > len || memcmp(text + pos, b, l) != 0) return 0;
        pos += l;
    }
    return pos == len;
}

static int first_diff(const int *a, int na, const int *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

static uint64_t fnv_ids(const int *ids, int n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            h ^= ((uint32_t)ids[i] >> (8 * k)) & 0xFF;
            h *= 0x100000001B3ull;
        }
    return h;
}

static long meta_value(const char *meta, const char *key) {
    const char *p = strstr(meta, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* ------------------------------------------------------------------------------------------------------ */
static void test_basics(const ptq_gpt2_bpe *t, const ptq_tokenizer *k) {
    CHECK(ptq_gpt2_bpe_vocab_size(t) == 2257);
    CHECK(ptq_gpt2_bpe_special(t, "<|endoftext|>") == 2256);
    CHECK(ptq_gpt2_bpe_special(t, "<|nope|>") == -1);
    CHECK(ptq_gpt2_bpe_special(t, "\xC4\xA0t") >= 256); /* "Ġt" is the first merge */
    size_t l;
    const char *b = ptq_gpt2_bpe_token_bytes(t, 0, &l);
    CHECK(b && l == 1 && b[0] == '!');
    b = ptq_gpt2_bpe_token_bytes(t, 2256, &l);
    CHECK(b && l == 13 && memcmp(b, "<|endoftext|>", 13) == 0);
    b = ptq_gpt2_bpe_token_bytes(t, ptq_gpt2_bpe_special(t, "\xC4\xA0t"), &l);
    CHECK(b && l == 2 && memcmp(b, " t", 2) == 0);
    CHECK(ptq_gpt2_bpe_token_bytes(t, -1, &l) == NULL && l == 0);
    CHECK(ptq_gpt2_bpe_token_bytes(t, 2257, &l) == NULL);

    /* every single byte is one token, and all 256 are distinct */
    int seen[2257] = {0};
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        int *ids = NULL, n = 0;
        ptq_error err = {0};
        CHECK(enc(k, &ch, 1, &ids, &n, &err) == PTQ_OK);
        CHECK_MSG(n == 1 && ids[0] >= 0 && ids[0] < 256, "byte 0x%02x", c);
        if (n == 1 && ids[0] >= 0 && ids[0] < 256) {
            CHECK(!seen[ids[0]]);
            seen[ids[0]] = 1;
            b = ptq_gpt2_bpe_token_bytes(t, ids[0], &l);
            CHECK(l == 1 && (unsigned char)b[0] == c);
        }
        free(ids);
    }
    /* empty input */
    int *ids = NULL, n = -1;
    CHECK(enc(k, NULL, 0, &ids, &n, NULL) == PTQ_OK && n == 0 && ids != NULL);
    free(ids);
    CHECK(enc(k, NULL, 3, &ids, &n, NULL) == PTQ_ERR_ARG);
}

static void test_classes_and_pretokens(void) {
    CHECK(ptq_uclass('a') == PTQ_UCLASS_LETTER);
    CHECK(ptq_uclass('7') == PTQ_UCLASS_NUMBER);
    CHECK(ptq_uclass('\n') == PTQ_UCLASS_SPACE);
    CHECK(ptq_uclass('_') == PTQ_UCLASS_OTHER);
    CHECK(ptq_uclass(0x1C) == PTQ_UCLASS_OTHER);    /* str.isspace() but not regex \s */
    CHECK(ptq_uclass(0x85) == PTQ_UCLASS_SPACE);    /* NEL */
    CHECK(ptq_uclass(0xA0) == PTQ_UCLASS_SPACE);    /* NBSP */
    CHECK(ptq_uclass(0x3000) == PTQ_UCLASS_SPACE);  /* ideographic space */
    CHECK(ptq_uclass(0xE9) == PTQ_UCLASS_LETTER);   /* é */
    CHECK(ptq_uclass(0x301) == PTQ_UCLASS_OTHER);   /* combining acute (Mn) */
    CHECK(ptq_uclass(0x663) == PTQ_UCLASS_NUMBER);  /* Arabic-Indic 3 */
    CHECK(ptq_uclass(0xBD) == PTQ_UCLASS_NUMBER);   /* ½ (No) */
    CHECK(ptq_uclass(0x216B) == PTQ_UCLASS_NUMBER); /* Ⅻ (Nl) */
    CHECK(ptq_uclass(0x65E5) == PTQ_UCLASS_LETTER); /* 日 */
    CHECK(ptq_uclass(0x20000) == PTQ_UCLASS_LETTER); /* CJK ext. B */
    CHECK(ptq_uclass(0x1F600) == PTQ_UCLASS_OTHER); /* emoji */
    CHECK(ptq_uclass(0xD800) == PTQ_UCLASS_OTHER);
    CHECK(ptq_uclass(0x10FFFF) == PTQ_UCLASS_OTHER);
    CHECK(ptq_uclass(0xFFFFFFFFu) == PTQ_UCLASS_OTHER);
    /* the table is sorted and disjoint */
    for (size_t i = 0; i < ptq_uclass_nranges; i++) {
        CHECK(ptq_uclass_ranges[i].lo <= ptq_uclass_ranges[i].hi);
        if (i) CHECK(ptq_uclass_ranges[i - 1].hi < ptq_uclass_ranges[i].lo);
    }

    /* hand-derived splits of GPT-2's pattern; pieces separated by '|' */
    static const char *cases[] = {
        "Hello| world",
        "I|'m| you|'re| don|'t| CAN|'|T", /* contractions are lower case only */
        "  | a",           /* "   a": \s+(?!\S) leaves one space for " a" */
        "a|  \n| b",       /* "a  \n b" */
        "x|\n|y",          /* a single newline before a letter: \s+ */
        "end|   ",         /* trailing spaces stay together */
        " 12| abc|!!?",    /* a punctuation run is one piece */
        "'|hello",
        " '|s",
        "caf\xC3\xA9| na\xC3\xAFve",
        "x|\xFF\xFE| y",   /* invalid bytes are "other" */
        "3|.|14",
        NULL};
    for (int c = 0; cases[c]; c++) {
        char text[128];
        size_t cuts[16], nc = 0, len = 0;
        for (const char *p = cases[c]; *p; p++) {
            if (*p == '|')
                cuts[nc++] = len;
            else
                text[len++] = *p;
        }
        cuts[nc++] = len;
        size_t pos = 0;
        for (size_t k = 0; k < nc; k++) {
            size_t m = pretoken_len(text, len, pos);
            CHECK_MSG(pos + m == cuts[k], "case %d piece %zu: got end %zu, want %zu", c, k, pos + m, cuts[k]);
            pos = cuts[k];
        }
    }
}

/* Merges listed out of creation order (never so in a trained list): "ab a" ranks before "a b", which makes "ab". GPT-2's
 * Python encoder merges every occurrence of the best pair before it looks at the pairs those merges created
 * ("abab" -> ab ab); Hugging Face's tokenizers and llama.cpp keep one queue in which a new pair of better rank goes
 * first ("abab" -> aba b). ptq reads their files and follows them: the expected tokens are what @lenml/tokenizers
 * (transformers.js) gives, printed by tests/ref/bpe_rank_order.mjs. Trained lists give the same ids both ways. */
static void test_rank_order(const char *dir) {
    char vpath[512], mpath[512];
    snprintf(vpath, sizeof vpath, "%s/phase_vocab.json", dir);
    snprintf(mpath, sizeof mpath, "%s/phase_merges.txt", dir);
    char json[8192];
    size_t k = 0;
    k += (size_t)snprintf(json + k, sizeof json - k, "{");
    int id = 0, extra = 0;
    for (int b = 0; b < 256; b++) {
        unsigned cp;
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
            cp = (unsigned)b;
        else
            cp = 0x100 + (unsigned)extra++;
        k += (size_t)snprintf(json + k, sizeof json - k, "\"\\u%04x\": %d, ", cp, id++);
    }
    k += (size_t)snprintf(json + k, sizeof json - k,
                          "\"ab\": 256, \"aba\": 257, \"cab\": 258, \"caba\": 259}");
    CHECK(tu_write_file(vpath, json, k) == 0);
    const char *merges = "#version: 0.2\nab a\nc ab\ncab a\na b\n";
    CHECK(tu_write_file(mpath, merges, strlen(merges)) == 0);
    ptq_gpt2_bpe *t = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_gpt2_bpe_load(vpath, mpath, &t, &err) == PTQ_OK, "%s", err.msg);
    ptq_tokenizer *tk = t ? engine_of(t) : NULL;
    if (!tk) {
        ptq_gpt2_bpe_free(t);
        return;
    }
    int *ids = NULL, n = 0;
    CHECK(enc(tk, "abab", 4, &ids, &n, &err) == PTQ_OK); /* aba b */
    CHECK_MSG(n == 2 && ids[0] == 257 && ids[1] == 'b', "n=%d", n);
    free(ids);
    CHECK(enc(tk, "aba", 3, &ids, &n, &err) == PTQ_OK);
    CHECK(n == 1 && ids[0] == 257);
    free(ids);
    CHECK(enc(tk, "cabab", 5, &ids, &n, &err) == PTQ_OK); /* c aba b */
    CHECK_MSG(n == 3 && ids[0] == 'c' && ids[1] == 257 && ids[2] == 'b', "n=%d", n);
    free(ids);
    ptq_tokenizer_free(tk);
    ptq_gpt2_bpe_free(t);
}

/* Byte lengths of the pre-tokens of text (malloc'ed). */
static int pretokens(const char *text, size_t len, int **lens) {
    int k = 0;
    *lens = malloc(sizeof(int) * (len + 1));
    for (size_t pos = 0; pos < len;) {
        size_t m = pretoken_len(text, len, pos);
        if (m == 0 || pos + m > len) break; /* would be a bug: caught by the comparison */
        (*lens)[k++] = (int)m;
        pos += m;
    }
    return k;
}

static void test_tricky(const ptq_gpt2_bpe *t, const ptq_tokenizer *k) {
    char *hex = NULL, *gold = NULL, *pieces = NULL;
    size_t hn = 0, gn = 0, pn = 0;
    ptq_error err = {0};
    CHECK_MSG(ptq_read_file(GOLD "tricky_inputs.hex", &hex, &hn, &err) == PTQ_OK, "%s", err.msg);
    CHECK_MSG(ptq_read_file(GOLD "tricky.ids", &gold, &gn, &err) == PTQ_OK, "%s", err.msg);
    CHECK_MSG(ptq_read_file(GOLD "tricky.pieces", &pieces, &pn, &err) == PTQ_OK, "%s", err.msg);
    if (!hex || !gold || !pieces) goto out;
    const char *hp = hex, *gp = gold, *pp = pieces;
    int cases = 0;
    while (*hp && *gp && *pp) {
        const char *he = strchr(hp, '\n'), *ge = strchr(gp, '\n'), *pe = strchr(pp, '\n');
        if (!he || !ge || !pe) break;
        size_t len = (size_t)(he - hp) / 2;
        char *text = malloc(len + 1);
        for (size_t i = 0; i < len; i++) text[i] = (char)(hexval(hp[2 * i]) * 16 + hexval(hp[2 * i + 1]));
        int *want = NULL, nw = parse_ids(gp, (size_t)(ge - gp), &want);
        int *wlens = NULL, nwl = parse_ids(pp, (size_t)(pe - pp), &wlens);
        int *lens = NULL, nl = pretokens(text, len, &lens);
        int d = first_diff(lens, nl, wlens, nwl);
        CHECK_MSG(nl == nwl && d == nl, "tricky case %d (%zu bytes): %d pre-tokens, want %d; first difference at %d",
                  cases, len, nl, nwl, d);
        free(lens);
        free(wlens);
        int *ids = NULL, n = 0;
        CHECK(enc(k, text, len, &ids, &n, &err) == PTQ_OK);
        d = first_diff(ids, n, want, nw);
        CHECK_MSG(n == nw && d == n, "tricky case %d (%zu bytes): %d tokens, want %d; first difference at %d",
                  cases, len, n, nw, d);
        CHECK_MSG(round_trip(t, ids, n, text, len), "tricky case %d: round trip", cases);
        free(ids);
        free(want);
        free(text);
        cases++;
        hp = he + 1;
        gp = ge + 1;
        pp = pe + 1;
    }
    CHECK_MSG(cases >= 27, "only %d tricky cases read", cases);
out:
    free(hex);
    free(gold);
    free(pieces);
}

static void test_wikitext(const ptq_gpt2_bpe *t, const ptq_tokenizer *k) {
    char *meta = NULL, *gold = NULL, *wiki = NULL;
    size_t mn = 0, gn = 0, wn = 0;
    ptq_error err = {0};
    CHECK_MSG(ptq_read_file(GOLD "wikitext.meta", &meta, &mn, &err) == PTQ_OK, "%s", err.msg);
    CHECK_MSG(ptq_read_file(GOLD "wikitext_head.ids", &gold, &gn, &err) == PTQ_OK, "%s", err.msg);
    char *path = tu_data_path("wikitext-2/wikitext2-raw-test.txt");
    CHECK_MSG(ptq_read_file(path, &wiki, &wn, &err) == PTQ_OK, "%s", err.msg);
    free(path);
    if (!meta || !gold || !wiki) goto out;
    long head_bytes = meta_value(meta, "head_bytes "), full_bytes = meta_value(meta, "full_bytes ");
    long full_tokens = meta_value(meta, "full_tokens ");
    const char *hp = strstr(meta, "full_fnv1a64 ");
    uint64_t full_hash = hp ? strtoull(hp + 13, NULL, 16) : 0;
    CHECK_MSG(full_bytes == (long)wn, "wikitext2-raw-test.txt has %zu bytes, the goldens were made from %ld", wn,
              full_bytes);
    CHECK(head_bytes > 100000 && head_bytes <= (long)wn);
    if (full_bytes != (long)wn || head_bytes <= 0 || head_bytes > (long)wn) goto out;

    int *lens = NULL, nl = pretokens(wiki, wn, &lens);
    const char *pp = strstr(meta, "full_pieces_fnv1a64 ");
    CHECK_MSG(nl == meta_value(meta, "full_pieces ") && pp && fnv_ids(lens, nl) == strtoull(pp + 20, NULL, 16),
              "whole file: %d pre-tokens, want %ld, or their lengths differ", nl, meta_value(meta, "full_pieces "));
    free(lens);

    int *want = NULL, nw = parse_ids(gold, gn, &want);
    CHECK(nw == meta_value(meta, "head_tokens "));
    int *ids = NULL, n = 0;
    CHECK(enc(k, wiki, (size_t)head_bytes, &ids, &n, &err) == PTQ_OK);
    int d = first_diff(ids, n, want, nw);
    CHECK_MSG(n == nw && d == n, "wikitext head: %d tokens, want %d; first difference at token %d", n, nw, d);
    free(ids);
    free(want);

    double t0 = now_s();
    CHECK(enc(k, wiki, wn, &ids, &n, &err) == PTQ_OK);
    double dt = now_s() - t0;
    printf("wikitext-2 test: %zu bytes -> %d tokens in %.3f s (%.1f MB/s)\n", wn, n, dt, (double)wn / dt / 1e6);
    CHECK_MSG(n == full_tokens, "whole file: %d tokens, want %ld", n, full_tokens);
    CHECK_MSG(fnv_ids(ids, n) == full_hash, "whole file: token hash differs from the golden");
    CHECK(round_trip(t, ids, n, wiki, wn));
    CHECK_MSG(dt < 10.0, "encoding took %.2f s", dt);
    free(ids);
out:
    free(meta);
    free(gold);
    free(wiki);
}

/* Random bytes and random mixtures of multi-byte characters: no crash, exact byte round trip. */
static void test_fuzz(const ptq_gpt2_bpe *t, const ptq_tokenizer *k) {
    static const char *atoms[] = {"a", "Z", " ", "  ", "\n", "\t", "'", "'s", "'ll", "1", "\xC3\xA9", "\xE6\x97\xA5",
                                  "\xF0\x9F\x98\x80", "\xC2\xA0", "\xE3\x80\x80", "\xCC\x81", "\xFF", "\xC3",
                                  "\xE2\x82", "\xED\xA0\x80", ".", "!", "", "the", " the", "\x1C"};
    const size_t natoms = sizeof atoms / sizeof atoms[0];
    uint64_t rng = 12345;
    size_t cap = 1 << 16;
    char *text = malloc(cap);
    for (int round = 0; round < 40; round++) {
        size_t len = 0;
        size_t target = (size_t)(round * 1500 + 1);
        while (len < target) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t r = (uint32_t)(rng >> 33);
            if (round % 2) {
                text[len++] = (char)(r & 0xFF);
            } else {
                const char *a = atoms[r % natoms];
                size_t l = a[0] ? strlen(a) : 1; /* "" stands for a NUL byte */
                if (len + l > cap) break;
                memcpy(text + len, a, l);
                len += l;
            }
        }
        int *ids = NULL, n = 0;
        ptq_error err = {0};
        CHECK(enc(k, text, len, &ids, &n, &err) == PTQ_OK);
        CHECK_MSG(round_trip(t, ids, n, text, len), "fuzz round %d (%zu bytes)", round, len);
        free(ids);
    }
    free(text);
}

/* ------------------------------------------------------------------------------------------------------ */
static ptq_status load_pair(const char *dir, const char *vjson, const char *merges, ptq_error *err) {
    char vpath[512], mpath[512];
    snprintf(vpath, sizeof vpath, "%s/v.json", dir);
    snprintf(mpath, sizeof mpath, "%s/m.txt", dir);
    if (vjson) tu_write_file(vpath, vjson, strlen(vjson));
    if (merges) tu_write_file(mpath, merges, strlen(merges));
    ptq_gpt2_bpe *t = NULL;
    ptq_status st = ptq_gpt2_bpe_load(vpath, mpath, &t, err);
    CHECK(st == PTQ_OK ? t != NULL : t == NULL);
    ptq_gpt2_bpe_free(t);
    return st;
}

static void test_errors(void) {
    ptq_error err = {0};
    ptq_gpt2_bpe *t = NULL;
    CHECK(ptq_gpt2_bpe_load("/nonexistent/vocab.json", GOLD "merges.txt", &t, &err) == PTQ_ERR_IO);
    CHECK_MSG(strstr(err.msg, "/nonexistent/vocab.json") != NULL, "%s", err.msg);
    CHECK(t == NULL);
    CHECK(ptq_gpt2_bpe_load(GOLD "vocab.json", "/nonexistent/merges.txt", &t, &err) == PTQ_ERR_IO);
    CHECK_MSG(strstr(err.msg, "/nonexistent/merges.txt") != NULL, "%s", err.msg);

    /* a valid base vocabulary (the golden one) copied to the temp dir, with broken merges */
    const char *dir = tu_tmpdir();
    char *vocab = NULL;
    size_t vn = 0;
    CHECK(ptq_read_file(GOLD "vocab.json", &vocab, &vn, &err) == PTQ_OK);
    if (!vocab) return;
    CHECK(load_pair(dir, vocab, "#version: 0.2\n\xC4\xA0 t\nh e\n", &err) == PTQ_OK);
    CHECK(load_pair(dir, vocab, "\xC4\xA0 t\r\nh e", &err) == PTQ_OK); /* no header, CRLF, no final newline */
    CHECK(load_pair(dir, vocab, "#version: 0.2\nh e\nthree tokens here\n", &err) == PTQ_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "m.txt line 3") && strstr(err.msg, "three tokens"), "%s", err.msg);
    CHECK(load_pair(dir, vocab, "#version: 0.2\nhe\n", &err) == PTQ_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "line 2"), "%s", err.msg);
    CHECK(load_pair(dir, vocab, "#version: 0.2\nh  e\n", &err) == PTQ_ERR_FORMAT);
    CHECK(load_pair(dir, vocab, "#version: 0.2\nh e\nq z\n", &err) == PTQ_ERR_FORMAT); /* "qz" not in vocab */
    CHECK_MSG(strstr(err.msg, "line 3") && strstr(err.msg, "merge result \"qz\""), "%s", err.msg);
    CHECK(load_pair(dir, vocab, "#version: 0.2\n\xE6\x97\xA5 e\n", &err) == PTQ_ERR_FORMAT); /* 日 */
    CHECK_MSG(strstr(err.msg, "line 2") && strstr(err.msg, "not in the vocabulary"), "%s", err.msg);
    free(vocab);

    const char *ok_merges = "#version: 0.2\n";
    CHECK(load_pair(dir, "{\"a\": 0,\n \"b\": 1,\n \"c\" 2}", ok_merges, &err) == PTQ_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "v.json") && strstr(err.msg, "line 3"), "%s", err.msg);
    CHECK(load_pair(dir, "[1, 2, 3]", ok_merges, &err) == PTQ_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "v.json") && strstr(err.msg, "object"), "%s", err.msg);
    CHECK(load_pair(dir, "{\"a\": 0, \"b\": \"x\"}", ok_merges, &err) == PTQ_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "\"b\"") && strstr(err.msg, "integer"), "%s", err.msg);
    CHECK(load_pair(dir, "{\"a\": 0, \"b\": 1.5}", ok_merges, &err) == PTQ_ERR_FORMAT);
    CHECK(load_pair(dir, "{\"a\": 0, \"b\": -1}", ok_merges, &err) == PTQ_ERR_FORMAT);
    CHECK(load_pair(dir, "{\"a\": 0, \"b\": 0}", ok_merges, &err) == PTQ_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "id 0"), "%s", err.msg);
    CHECK(load_pair(dir, "{}", ok_merges, &err) == PTQ_ERR_FORMAT);
    CHECK(load_pair(dir, "{\"a\": 0} trailing", ok_merges, &err) == PTQ_ERR_FORMAT);
    /* well-formed, but the byte tokens are missing */
    CHECK(load_pair(dir, "{\"a\": 0, \"b\": 1}", ok_merges, &err) == PTQ_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "byte 0x"), "%s", err.msg);
}

int main(void) {
    test_classes_and_pretokens();
    test_errors();
    test_rank_order(tu_tmpdir());
    ptq_gpt2_bpe *t = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_gpt2_bpe_load(GOLD "vocab.json", GOLD "merges.txt", &t, &err) == PTQ_OK, "%s", err.msg);
    ptq_tokenizer *k = t ? engine_of(t) : NULL;
    if (k) {
        test_basics(t, k);
        test_tricky(t, k);
        test_fuzz(t, k);
        test_wikitext(t, k);
    }
    ptq_tokenizer_free(k);
    ptq_gpt2_bpe_free(t);
    return tu_done("test_gpt2_bpe");
}
