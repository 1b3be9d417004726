/* Hostile tokenizer files and the shared size/quoting helpers (issue 11, defects 2, 9 and 10). Every
 * broken file is written by the test into a temporary folder. Model-file cases live beside their
 * loaders' tests (test_hf_models.c, test_images.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "ptq.h"
#include "testutil.h"

static char *tmp_path(const char *name) {
    static char buf[16][4096];
    static int k;
    char *p = buf[k++ % 16];
    snprintf(p, 4096, "%s/%s", tu_tmpdir(), name);
    return p;
}

static int make_dir(const char *path) { return mkdir(path, 0755); }

static int copy_file(const char *from, const char *to) {
    char *data = NULL;
    size_t n = 0;
    ptq_error err;
    if (ptq_read_file(from, &data, &n, &err) != PTQ_OK) return -1;
    int rc = tu_write_file(to, data, n);
    free(data);
    return rc;
}

static int has_control_bytes(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f) return 1;
    return 0;
}

/* Expect ptq_tokenizer_load(path) to fail with `status` and a message holding both needles. */
static void tokenizer_fails(const char *path, ptq_status status, const char *n1, const char *n2) {
    ptq_tokenizer *t = NULL;
    ptq_error err = {0};
    ptq_status st = ptq_tokenizer_load(path, 0, &t, &err);
    CHECK_MSG(st == status && t == NULL, "%s: status %s, expected %s (%s)", path, ptq_status_name(st),
              ptq_status_name(status), err.msg);
    if (n1) CHECK_MSG(strstr(err.msg, n1) != NULL, "message lacks \"%s\": %s", n1, err.msg);
    if (n2) CHECK_MSG(strstr(err.msg, n2) != NULL, "message lacks \"%s\": %s", n2, err.msg);
    CHECK_MSG(!has_control_bytes(err.msg), "control bytes in the message: %s", err.msg);
    ptq_tokenizer_free(t);
}

/* A vocab.json that is JSON but not an object was sniffed as a llama2.c tokenizer.bin ("token 0 has
 * length 264960987 past the end of the file"): it must say that vocab.json should be a JSON object. */
static void test_vocab_json_not_object(void) {
    static const char *const bodies[] = {"[1, 2, 3]\n", "\"vocab\"", "12345678901234567890", "null"};
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tmp_path("gpt2tok"));
    CHECK(make_dir(dir) == 0);
    char vocab[4200], merges[4200];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    CHECK(tu_write_file(merges, "#version: 0.2\n", 14) == 0);
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        CHECK(tu_write_file(vocab, bodies[i], strlen(bodies[i])) == 0);
        tokenizer_fails(vocab, PTQ_ERR_FORMAT, "vocab.json", "JSON object");
        tokenizer_fails(dir, PTQ_ERR_FORMAT, "vocab.json", "JSON object"); /* by folder too */
    }
}

/* A bad merges.txt line was echoed raw, terminal escapes included: quoted, with its line number. */
static void test_merges_line_quoted(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tmp_path("gpt2tok_merges"));
    CHECK(make_dir(dir) == 0);
    char vocab[4200], merges[4200];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    CHECK(copy_file(PTQ_SOURCE_DIR "/tests/data/gpt2tok/vocab.json", vocab) == 0);
    static const char bad[] = "#version: 0.2\nh e\n\x1b[2J\x1b[31mred \x07 bell\n";
    CHECK(tu_write_file(merges, bad, sizeof bad - 1) == 0);
    tokenizer_fails(dir, PTQ_ERR_FORMAT, "merges.txt line 3", "?[2J?[31mred ? bell");
    /* a very long line is cut */
    char longline[4096];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "#version: 0.2\n", 14);
    CHECK(tu_write_file(merges, longline, sizeof longline) == 0);
    ptq_tokenizer *t = NULL;
    ptq_error err = {0};
    CHECK(ptq_tokenizer_load(dir, 0, &t, &err) == PTQ_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "line 2") && strlen(err.msg) < 4096 && strstr(err.msg, "..."), "%s", err.msg);
    ptq_tokenizer_free(t);
}

/* A llama2.c tokenizer.bin whose 300 pieces are all empty was accepted. */
static void test_all_empty_pieces(void) {
    enum { N = 300 };
    size_t size = 4 + (size_t)N * 8;
    unsigned char *b = calloc(1, size);
    int32_t max_len = 16;
    memcpy(b, &max_len, 4);
    for (int i = 0; i < N; i++) {
        float score = (float)-i;
        memcpy(b + 4 + 8 * i, &score, 4); /* length 0 follows */
    }
    char *path = tmp_path("empty-pieces.bin");
    CHECK(tu_write_file(path, b, size) == 0);
    tokenizer_fails(path, PTQ_ERR_FORMAT, "empty-pieces.bin", "empty");
    /* the same with one real piece loads */
    int32_t one = 1;
    memcpy(b + 4 + 8 * (N - 1) + 4, &one, 4);
    unsigned char *b2 = malloc(size + 1);
    memcpy(b2, b, size);
    b2[size] = 'a';
    CHECK(tu_write_file(path, b2, size + 1) == 0);
    ptq_tokenizer *t = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_tokenizer_load(path, 0, &t, &err) == PTQ_OK, "%s", err.msg);
    ptq_tokenizer_free(t);
    free(b);
    free(b2);
}

static void test_checked_product(void) {
    int64_t out = -1;
    CHECK(ptq_checked_product((const int64_t[]){3, 46341, 46341}, 3, INT32_MAX, &out) == 0 && out == -1);
    CHECK(ptq_checked_product((const int64_t[]){1, 46340, 46340}, 3, INT32_MAX, &out) == 1 && out == 2147395600);
    CHECK(ptq_checked_product((const int64_t[]){INT64_MAX, 2}, 2, INT64_MAX, &out) == 0);
    CHECK(ptq_checked_product((const int64_t[]){INT64_MAX, 0}, 2, 10, &out) == 1 && out == 0);
    CHECK(ptq_checked_product((const int64_t[]){5, -1}, 2, 100, &out) == 0);
    CHECK(ptq_checked_product((const int64_t[]){10, 10}, 2, 100, &out) == 1 && out == 100);
    CHECK(ptq_checked_product((const int64_t[]){10, 10, 2}, 3, 199, &out) == 0);
    CHECK(ptq_checked_product(NULL, 0, 1, &out) == 1 && out == 1);
}

static void test_snippet(void) {
    char b[16];
    ptq_snippet(b, sizeof b, "a\x1b[1mb\n", 7);
    CHECK(!strcmp(b, "a?[1mb?"));
    ptq_snippet(b, sizeof b, "\xC4\xA0the \xE6\x97\xA5", 9); /* printable UTF-8 kept */
    CHECK(!strcmp(b, "\xC4\xA0the \xE6\x97\xA5"));
    ptq_snippet(b, sizeof b, "\xC2\x9B" "x\xC4" "y\xE6\x97", 7); /* C1 control (CSI), broken sequences */
    CHECK_MSG(!strcmp(b, "??x?y??"), "%s", b);
    ptq_snippet(b, 4, "abcdef", 6);
    CHECK(!strcmp(b, "abc"));
    ptq_snippet(b, 3, "a\xE6\x97\xA5", 4); /* a character that does not fit is not cut in half */
    CHECK(!strcmp(b, "a?"));
}

int main(void) {
    test_vocab_json_not_object();
    test_merges_line_quoted();
    test_all_empty_pieces();
    test_checked_product();
    test_snippet();
    return tu_done("test_hostile_loaders");
}
