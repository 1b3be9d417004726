/* GGUF reading (src/io/gguf.c) and its tokenizer metadata (src/text/gguf_vocab.c):
 *  - files built here byte by byte: every value read back exactly, and hostile variants (truncated at every
 *    byte, wrong kv types, huge counts and lengths, duplicate keys and tensors, misaligned, overlapping or
 *    out-of-file offsets, dims overflow, unknown types) each failing with a clear message, none crashing;
 *  - the tokenizer of llama.cpp's real vocabularies (build-ref/llama.cpp/models/ggml-vocab-llama-{spm,bpe}.gguf)
 *    against what llama.cpp's gguf-py reads from them (tests/data/gguf/NAME.golden, tests/ref/make_gguf_fixtures.py). */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "ptq.h"
#include "testutil.h"
#include "gguf_unpack.h"
#include "core/error.h"
#include "core/file.h"
#include "text/bpe.h"
#include "text/gguf_vocab.h"
#include "quant/head_embed.h"

/* ------------------------------------------------------------------ a GGUF writer for test files */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (!n) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) exit(1);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void str(buf *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void kv_u32(buf *b, const char *k, uint32_t v) {
    str(b, k);
    u32(b, PTQ_GGUF_U32);
    u32(b, v);
}
static void kv_f32(buf *b, const char *k, float v) {
    str(b, k);
    u32(b, PTQ_GGUF_F32);
    put(b, &v, 4);
}
static void kv_bool(buf *b, const char *k, int v) {
    str(b, k);
    u32(b, PTQ_GGUF_BOOL);
    u8(b, (uint8_t)v);
}
static void kv_str(buf *b, const char *k, const char *v) {
    str(b, k);
    u32(b, PTQ_GGUF_STRING);
    str(b, v);
}
static void kv_strs(buf *b, const char *k, const char *const *v, int n) {
    str(b, k);
    u32(b, PTQ_GGUF_ARRAY);
    u32(b, PTQ_GGUF_STRING);
    u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) str(b, v[i]);
}
static void kv_f32s(buf *b, const char *k, const float *v, int n) {
    str(b, k);
    u32(b, PTQ_GGUF_ARRAY);
    u32(b, PTQ_GGUF_F32);
    u64(b, (uint64_t)n);
    put(b, v, 4 * (size_t)n);
}
static void kv_i32s(buf *b, const char *k, const int32_t *v, int n) {
    str(b, k);
    u32(b, PTQ_GGUF_ARRAY);
    u32(b, PTQ_GGUF_I32);
    u64(b, (uint64_t)n);
    put(b, v, 4 * (size_t)n);
}

typedef struct {
    const char *name;
    uint32_t type;
    int ndim;
    int64_t ne[4];
    uint64_t offset;
} tinfo;

static void tensor_info(buf *b, const tinfo *t) {
    str(b, t->name);
    u32(b, (uint32_t)t->ndim);
    for (int d = 0; d < t->ndim; d++) u64(b, d < 4 ? (uint64_t)t->ne[d] : 1); /* ndim 5: a hostile file */
    u32(b, t->type);
    u64(b, t->offset);
}

/* header + kv blob + tensor infos + padding to `align` + data */
static buf gguf_file(uint32_t version, uint64_t n_kv, const buf *kvs, int nt, const tinfo *t, uint64_t align,
                     const buf *data) {
    buf b = {0};
    put(&b, "GGUF", 4);
    u32(&b, version);
    u64(&b, (uint64_t)nt);
    u64(&b, n_kv);
    put(&b, kvs->p, kvs->n);
    for (int i = 0; i < nt; i++) tensor_info(&b, &t[i]);
    while (b.n % align) u8(&b, 0);
    if (data) put(&b, data->p, data->n);
    return b;
}

static char *tmp_path(const char *name) {
    static char bufs[16][512];
    static int k = 0;
    char *p = bufs[k++ % 16];
    snprintf(p, 512, "%s/%s", tu_tmpdir(), name);
    return p;
}

static const char *write_tmp(const char *name, const buf *b) {
    const char *path = tmp_path(name);
    if (tu_write_file(path, b->p, b->n) != 0) exit(1);
    return path;
}

/* ptq_gguf_open must fail with `status` and a message holding the path and every given string. */
static void expect_fail(int line, const char *name, const buf *b, ptq_status status, ...) {
    const char *path = write_tmp(name, b);
    ptq_gguf g;
    ptq_error err = {0};
    ptq_status s = ptq_gguf_open(path, &g, &err);
    if (s == PTQ_OK) ptq_gguf_close(&g);
    CHECK_MSG(s == status, "line %d: %s: expected status %d, got %d (%s)", line, name, (int)status, (int)s, err.msg);
    CHECK_MSG(strstr(err.msg, path) != NULL, "line %d: message does not name the file: %s", line, err.msg);
    va_list ap;
    va_start(ap, status);
    for (const char *w; (w = va_arg(ap, const char *));)
        CHECK_MSG(strstr(err.msg, w) != NULL, "line %d: message lacks \"%s\": %s", line, w, err.msg);
    va_end(ap);
    CHECK(g.kv == NULL && g.tensors == NULL && g.path == NULL);
}
#define EXPECT_FAIL(name, b, status, ...) expect_fail(__LINE__, name, b, status, __VA_ARGS__, NULL)

/* ------------------------------------------------------------------ a valid file */

static const float k_a[8] = {1.5f, -2.25f, 0.0f, 3.0f, 1e-30f, -1e30f, 7.0f, 0.125f};
static const uint16_t k_b_f16[3] = {0x3c00, 0xc000, 0x0001}; /* 1, -2, 2^-24 */
static const uint16_t k_d_bf16[2] = {0x3f80, 0xc0a0};         /* 1, -5 */

static buf std_kvs(void) {
    buf k = {0};
    kv_str(&k, "general.architecture", "llama");
    kv_u32(&k, "llama.block_count", 2);
    kv_f32(&k, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_bool(&k, "tokenizer.ggml.add_bos_token", 1);
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81hi"};
    kv_strs(&k, "tokenizer.ggml.tokens", toks, 4);
    static const float sc[] = {0, 0, 0, -1.5f};
    kv_f32s(&k, "tokenizer.ggml.scores", sc, 4);
    static const int32_t ty[] = {2, 3, 3, 1};
    kv_i32s(&k, "tokenizer.ggml.token_type", ty, 4);
    kv_str(&k, "tokenizer.ggml.model", "llama");
    return k;
}
#define STD_NKV 8

/* tensors a: F32 [4,2], b: F16 [3], c: Q8_0 [32,2], d: BF16 [2], e: Q4_K [256] */
static buf std_data(tinfo *t) {
    buf d = {0};
    tinfo tt[5] = {{"a", PTQ_GGML_F32, 2, {4, 2}, 0},
                   {"b", PTQ_GGML_F16, 1, {3}, 0},
                   {"c", PTQ_GGML_Q8_0, 2, {32, 2}, 0},
                   {"d", PTQ_GGML_BF16, 1, {2}, 0},
                   {"e", PTQ_GGML_Q4_K, 1, {256}, 0}};
    memcpy(t, tt, sizeof tt);
    t[0].offset = d.n;
    put(&d, k_a, sizeof k_a);
    while (d.n % 32) u8(&d, 0);
    t[1].offset = d.n;
    put(&d, k_b_f16, sizeof k_b_f16);
    while (d.n % 32) u8(&d, 0);
    t[2].offset = d.n;
    for (int blk = 0; blk < 2; blk++) {
        uint16_t scale = blk ? 0x3800 : 0x3c00; /* 0.5, 1 */
        put(&d, &scale, 2);
        for (int j = 0; j < 32; j++) u8(&d, (uint8_t)(int8_t)(j - 16 + blk));
    }
    while (d.n % 32) u8(&d, 0);
    t[3].offset = d.n;
    put(&d, k_d_bf16, sizeof k_d_bf16);
    while (d.n % 32) u8(&d, 0);
    t[4].offset = d.n;
    for (int i = 0; i < 144; i++) u8(&d, (uint8_t)i);
    return d;
}

static buf std_file(void) {
    tinfo t[5];
    buf k = std_kvs(), d = std_data(t);
    buf f = gguf_file(3, STD_NKV, &k, 5, t, 32, &d);
    free(k.p);
    free(d.p);
    return f;
}

static void test_valid(void) {
    buf f = std_file();
    const char *path = write_tmp("valid.gguf", &f);
    ptq_gguf g;
    ptq_error err = {0};
    CHECK_MSG(ptq_gguf_open(path, &g, &err) == PTQ_OK, "%s", err.msg);
    if (err.status != PTQ_OK) return;
    CHECK(g.version == 3 && g.alignment == 32 && g.n_kv == STD_NKV && g.n_tensors == 5);
    CHECK(g.data_offset % 32 == 0 && g.data_offset + 32 * 5 < f.n);

    uint32_t u;
    int32_t i32;
    float fl;
    int bo;
    char *s = NULL;
    CHECK(ptq_gguf_get_u32(&g, "llama.block_count", &u, &err) == PTQ_OK && u == 2);
    CHECK(ptq_gguf_get_i32(&g, "llama.block_count", &i32, &err) == PTQ_OK && i32 == 2);
    CHECK(ptq_gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &fl, &err) == PTQ_OK && fl == 1e-5f);
    CHECK(ptq_gguf_get_bool(&g, "tokenizer.ggml.add_bos_token", &bo, &err) == PTQ_OK && bo == 1);
    CHECK(ptq_gguf_get_string(&g, "general.architecture", &s, &err) == PTQ_OK && s && strcmp(s, "llama") == 0);
    free(s);
    /* wrong types and absent keys */
    CHECK(ptq_gguf_get_u32(&g, "general.architecture", &u, &err) == PTQ_ERR_FORMAT &&
          strstr(err.msg, "general.architecture") && strstr(err.msg, "string"));
    CHECK(ptq_gguf_get_string(&g, "llama.block_count", &s, &err) == PTQ_ERR_FORMAT && strstr(err.msg, "u32"));
    CHECK(ptq_gguf_get_f32(&g, "tokenizer.ggml.scores", &fl, &err) == PTQ_ERR_FORMAT &&
          strstr(err.msg, "array of f32"));
    CHECK(ptq_gguf_get_u32(&g, "llama.nope", &u, &err) == PTQ_ERR_CONFIG && strstr(err.msg, "llama.nope"));
    char **toks = NULL;
    int n = 0;
    CHECK(ptq_gguf_get_strings(&g, "tokenizer.ggml.tokens", &toks, &n, &err) == PTQ_OK && n == 4);
    if (n == 4) CHECK(strcmp(toks[3], "\xe2\x96\x81hi") == 0 && strcmp(toks[0], "<unk>") == 0);
    for (int i = 0; i < n; i++) free(toks[i]);
    free(toks);
    float *sc = NULL;
    CHECK(ptq_gguf_get_f32s(&g, "tokenizer.ggml.scores", &sc, &n, &err) == PTQ_OK && n == 4 && sc[3] == -1.5f);
    free(sc);
    CHECK(ptq_gguf_get_f32s(&g, "tokenizer.ggml.token_type", &sc, &n, &err) == PTQ_ERR_FORMAT);

    const ptq_gguf_tensor *t = ptq_gguf_find(&g, "a");
    CHECK(t && t->type == PTQ_GGML_F32 && t->ndim == 2 && t->ne[0] == 4 && t->ne[1] == 2 && t->numel == 8 &&
          t->nbytes == 32);
    CHECK(ptq_gguf_find(&g, "zz") == NULL);
    float v[256];
    if (t) {
        CHECK(ptq_gguf_read_f32(&g, t, v, &err) == PTQ_OK);
        CHECK(memcmp(v, k_a, sizeof k_a) == 0);
    }
    t = ptq_gguf_find(&g, "b");
    CHECK(t && ptq_gguf_read_f32(&g, t, v, &err) == PTQ_OK && v[0] == 1.0f && v[1] == -2.0f &&
          v[2] == ldexpf(1.0f, -24));
    t = ptq_gguf_find(&g, "c");
    CHECK(t && t->nbytes == 68 && ptq_gguf_read_f32(&g, t, v, &err) == PTQ_OK);
    for (int j = 0; j < 64; j++) CHECK(v[j] == (j < 32 ? 1.0f * (float)(j - 16) : 0.5f * (float)(j - 32 - 15)));
    t = ptq_gguf_find(&g, "d");
    CHECK(t && ptq_gguf_read_f32(&g, t, v, &err) == PTQ_OK && v[0] == 1.0f && v[1] == -5.0f);
    t = ptq_gguf_find(&g, "e");
    /* Q4_K is read (its values are checked against ggml's in test_ggml_quants); the bytes 0..143 give finite ones */
    CHECK(t && t->nbytes == 144 && ptq_gguf_read_f32(&g, t, v, &err) == PTQ_OK);

    /* the tokenizer of the same file: SPM defaults where keys are absent */
    ptq_tok_spec sp;
    CHECK_MSG(ptq_gguf_tok_spec(&g, &sp, &err) == PTQ_OK, "%s", err.msg);
    CHECK(sp.model == PTQ_TOK_SPM && sp.n_tokens == 4 && sp.scores && sp.scores[3] == -1.5f && sp.types &&
          sp.types[0] == 2 && sp.n_merges == 0 && sp.bos == 1 && sp.eos == 2 && sp.unk == 0 && sp.pad == -1 &&
          sp.add_bos == 1 && sp.add_eos == 0 && sp.add_space_prefix == 1 && strcmp(sp.pre, "") == 0);
    ptq_tok_spec_free(&sp);
    ptq_gguf_close(&g);
    free(f.p);
}

/* ------------------------------------------------------------------ layout helpers */

static void test_type_table(void) {
    /* block sizes from ggml's type_traits (ggml.c) / gguf-py GGML_QUANT_SIZES */
    static const struct { uint32_t t; const char *name; int blk, bytes; } want[] = {
        {0, "F32", 1, 4},      {1, "F16", 1, 2},        {2, "Q4_0", 32, 18},   {3, "Q4_1", 32, 20},
        {6, "Q5_0", 32, 22},   {7, "Q5_1", 32, 24},     {8, "Q8_0", 32, 34},   {9, "Q8_1", 32, 36},
        {10, "Q2_K", 256, 84}, {11, "Q3_K", 256, 110},  {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
        {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {30, "BF16", 1, 2},    {28, "F64", 1, 8}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const ptq_ggml_type_info *ti = ptq_ggml_type_info_get(want[i].t);
        CHECK_MSG(ti && strcmp(ti->name, want[i].name) == 0 && ti->block == want[i].blk &&
                      ti->block_bytes == want[i].bytes,
                  "type %u", want[i].t);
    }
    CHECK(ptq_ggml_type_info_get(4) == NULL && ptq_ggml_type_info_get(31) == NULL &&
          ptq_ggml_type_info_get(1000) == NULL);
    char nb[32];
    CHECK(strcmp(ptq_ggml_type_name(31, nb, sizeof nb), "type 31") == 0);
    int64_t out, ne[2] = {64, 3};
    CHECK(ptq_ggml_nbytes(PTQ_GGML_Q8_0, ne, 2, &out) == 0 && out == 2 * 3 * 34);
    ne[0] = 33;
    CHECK(ptq_ggml_nbytes(PTQ_GGML_Q8_0, ne, 2, &out) == -1);
    int64_t big[2] = {INT64_MAX / 2, 3};
    CHECK(ptq_ggml_nbytes(PTQ_GGML_F32, big, 2, &out) == -1);
    CHECK(ptq_gguf_pad(33, 32) == 64 && ptq_gguf_pad(64, 32) == 64 && ptq_gguf_pad(0, 8) == 0);
}

/* ------------------------------------------------------------------ hostile files */

/* a file with one extra kv and no tensors */
static buf one_kv(void (*add)(buf *)) {
    buf k = {0};
    add(&k);
    buf f = gguf_file(3, 1, &k, 0, NULL, 1, NULL);
    free(k.p);
    return f;
}

static void bad_vtype(buf *k) {
    str(k, "x.y");
    u32(k, 13);
    u32(k, 0);
}
static void nested(buf *k) {
    str(k, "x.nested");
    u32(k, PTQ_GGUF_ARRAY);
    u32(k, PTQ_GGUF_ARRAY);
    u64(k, 1);
    u32(k, PTQ_GGUF_U8);
    u64(k, 0);
}
static void huge_str(buf *k) {
    str(k, "x.s");
    u32(k, PTQ_GGUF_STRING);
    u64(k, (uint64_t)1 << 62);
    put(k, "abc", 3);
}
static void huge_arr(buf *k) {
    str(k, "x.arr");
    u32(k, PTQ_GGUF_ARRAY);
    u32(k, PTQ_GGUF_STRING);
    u64(k, (uint64_t)1 << 61);
    str(k, "a");
}
static void huge_key(buf *k) {
    u64(k, UINT64_MAX);
    put(k, "k\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
}
static void empty_key(buf *k) {
    u64(k, 0);
    u32(k, PTQ_GGUF_U8);
    put(k, "\1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
}
static void bad_bool(buf *k) {
    str(k, "x.b");
    u32(k, PTQ_GGUF_BOOL);
    u8(k, 7);
}
static void align_str(buf *k) { kv_str(k, "general.alignment", "32"); }
static void align_3(buf *k) { kv_u32(k, "general.alignment", 48); }

static void test_hostile_header(void) {
    buf f = std_file();
    /* truncated at every byte: every prefix fails cleanly (the status and the message checked) */
    int bad = 0;
    for (size_t n = 0; n < f.n; n++) {
        buf t = {f.p, n, n};
        const char *path = write_tmp("trunc.gguf", &t);
        ptq_gguf g;
        ptq_error err = {0};
        ptq_status s = ptq_gguf_open(path, &g, &err);
        if (s == PTQ_OK) ptq_gguf_close(&g);
        int ok = n == 0 ? s == PTQ_ERR_FORMAT && strstr(err.msg, "empty")
                        : s == PTQ_ERR_FORMAT && (strstr(err.msg, "truncated") || strstr(err.msg, "beyond the end") ||
                                                  strstr(err.msg, "not a GGUF") || strstr(err.msg, "left") ||
                                                  strstr(err.msg, "can hold"));
        if (!ok && bad++ < 5) fprintf(stderr, "truncated at %zu: status %d: %s\n", n, (int)s, err.msg);
    }
    CHECK(bad == 0);

    buf m = {0};
    put(&m, f.p, f.n);
    memcpy(m.p, "GGML", 4);
    EXPECT_FAIL("magic.gguf", &m, PTQ_ERR_FORMAT, "not a GGUF file", "GGML");
    memcpy(m.p, "GGUF", 4);
    uint32_t v = 1;
    memcpy(m.p + 4, &v, 4);
    EXPECT_FAIL("v1.gguf", &m, PTQ_ERR_UNSUPPORTED, "version 1");
    v = 4;
    memcpy(m.p + 4, &v, 4);
    EXPECT_FAIL("v4.gguf", &m, PTQ_ERR_UNSUPPORTED, "version 4");
    v = 0x03000000; /* 3 written big-endian */
    memcpy(m.p + 4, &v, 4);
    EXPECT_FAIL("be.gguf", &m, PTQ_ERR_UNSUPPORTED, "big-endian");
    v = 3;
    memcpy(m.p + 4, &v, 4);
    uint64_t big = (uint64_t)1 << 60;
    memcpy(m.p + 16, &big, 8);
    EXPECT_FAIL("nkv.gguf", &m, PTQ_ERR_FORMAT, "key-value pairs", "1152921504606846976");
    memcpy(m.p + 16, &(uint64_t){STD_NKV}, 8);
    memcpy(m.p + 8, &big, 8);
    EXPECT_FAIL("nt.gguf", &m, PTQ_ERR_FORMAT, "tensors");
    memcpy(m.p + 8, &(uint64_t){5}, 8);
    memcpy(m.p + 16, &(uint64_t){STD_NKV + 1}, 8); /* one kv more than present: the tensor infos are read as a kv */
    {
        ptq_gguf g;
        ptq_error err = {0};
        ptq_status s = ptq_gguf_open(write_tmp("nkv1.gguf", &m), &g, &err);
        if (s == PTQ_OK) ptq_gguf_close(&g);
        CHECK_MSG(s == PTQ_ERR_FORMAT, "%s", err.msg);
    }
    free(m.p);
    free(f.p);

    buf b;
    b = one_kv(bad_vtype), EXPECT_FAIL("vtype.gguf", &b, PTQ_ERR_FORMAT, "x.y", "unknown value type 13"), free(b.p);
    b = one_kv(nested), EXPECT_FAIL("nested.gguf", &b, PTQ_ERR_FORMAT, "x.nested", "arrays"), free(b.p);
    b = one_kv(huge_str), EXPECT_FAIL("hstr.gguf", &b, PTQ_ERR_FORMAT, "x.s", "4611686018427387904"), free(b.p);
    b = one_kv(huge_arr), EXPECT_FAIL("harr.gguf", &b, PTQ_ERR_FORMAT, "x.arr", "2305843009213693952"), free(b.p);
    b = one_kv(huge_key), EXPECT_FAIL("hkey.gguf", &b, PTQ_ERR_FORMAT, "key 0"), free(b.p);
    b = one_kv(empty_key), EXPECT_FAIL("ekey.gguf", &b, PTQ_ERR_FORMAT, "key 0", "empty"), free(b.p);
    b = one_kv(bad_bool), EXPECT_FAIL("bool.gguf", &b, PTQ_ERR_FORMAT, "x.b", "bool value 7"), free(b.p);
    b = one_kv(align_str), EXPECT_FAIL("alstr.gguf", &b, PTQ_ERR_FORMAT, "general.alignment", "string"), free(b.p);
    b = one_kv(align_3), EXPECT_FAIL("al48.gguf", &b, PTQ_ERR_FORMAT, "general.alignment is 48"), free(b.p);

    /* duplicate keys */
    buf k = std_kvs();
    kv_u32(&k, "llama.block_count", 3);
    b = gguf_file(3, STD_NKV + 1, &k, 0, NULL, 1, NULL);
    EXPECT_FAIL("dupkey.gguf", &b, PTQ_ERR_FORMAT, "\"llama.block_count\" appears twice");
    free(b.p);
    free(k.p);

    /* a vocabulary-only file ending before its padding is valid (llama.cpp's ggml-vocab files are) */
    k = std_kvs();
    b = gguf_file(2, STD_NKV, &k, 0, NULL, 1, NULL);
    {
        ptq_gguf g;
        ptq_error err = {0};
        CHECK_MSG(ptq_gguf_open(write_tmp("v2.gguf", &b), &g, &err) == PTQ_OK, "%s", err.msg);
        if (err.status == PTQ_OK) {
            CHECK(g.version == 2 && g.n_tensors == 0);
            ptq_gguf_close(&g);
        }
    }
    free(b.p);
    free(k.p);
}

/* the standard file with tensor i's info replaced */
static buf with_tensor(int i, tinfo ti, int n_tensors) {
    tinfo t[6];
    buf k = std_kvs(), d = std_data(t);
    t[5] = t[4];
    if (i >= 0) t[i] = ti;
    buf f = gguf_file(3, STD_NKV, &k, n_tensors, t, 32, &d);
    free(k.p);
    free(d.p);
    return f;
}

static void test_hostile_tensors(void) {
    buf b;
    tinfo t[5];
    buf d = std_data(t);
    free(d.p);
    tinfo x = t[0];
    x.offset = 8;
    b = with_tensor(0, x, 5), EXPECT_FAIL("misal.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "offset 8", "alignment 32"), free(b.p);
    x = t[2];
    x.offset = t[1].offset; /* c starts where b is */
    b = with_tensor(2, x, 5), EXPECT_FAIL("overlap.gguf", &b, PTQ_ERR_FORMAT, "\"b\"", "\"c\"", "overlap"), free(b.p);
    x = t[0];
    x.ne[1] = 64; /* 1 KiB: past the end */
    b = with_tensor(0, x, 5), EXPECT_FAIL("beyond.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "beyond the end"), free(b.p);
    x = t[0];
    x.offset = UINT64_MAX - 31;
    b = with_tensor(0, x, 5), EXPECT_FAIL("offmax.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "beyond the end"), free(b.p);
    x = t[0];
    x.ne[0] = (int64_t)1 << 40;
    x.ne[1] = (int64_t)1 << 40;
    b = with_tensor(0, x, 5), EXPECT_FAIL("dims.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "overflows"), free(b.p);
    x = t[0];
    x.ne[0] = (int64_t)1 << 61; /* numel fits, bytes do not */
    x.ndim = 1;
    b = with_tensor(0, x, 5), EXPECT_FAIL("bytes.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "overflows"), free(b.p);
    x = t[0];
    x.ne[1] = 0;
    b = with_tensor(0, x, 5), EXPECT_FAIL("dim0.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "ne[1] = 0"), free(b.p);
    x = t[0];
    x.ne[1] = -1;
    b = with_tensor(0, x, 5), EXPECT_FAIL("dimneg.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "ne[1]"), free(b.p);
    x = t[0];
    x.ndim = 5;
    b = with_tensor(0, x, 5), EXPECT_FAIL("ndim.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "5 dimensions"), free(b.p);
    x = t[0];
    x.ndim = 0;
    b = with_tensor(0, x, 5), EXPECT_FAIL("ndim0.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "0 dimensions"), free(b.p);
    x = t[0];
    x.type = 31;
    b = with_tensor(0, x, 5), EXPECT_FAIL("ttype.gguf", &b, PTQ_ERR_FORMAT, "\"a\"", "unknown ggml type 31"), free(b.p);
    x = t[2];
    x.ne[0] = 48;
    b = with_tensor(2, x, 5), EXPECT_FAIL("block.gguf", &b, PTQ_ERR_FORMAT, "\"c\"", "Q8_0", "block size 32"), free(b.p);
    x = t[0];
    x.name = "";
    b = with_tensor(0, x, 5), EXPECT_FAIL("noname.gguf", &b, PTQ_ERR_FORMAT, "tensor 0", "invalid name"), free(b.p);
    x = t[0];
    x.name = "a234567890123456789012345678901234567890123456789012345678901234";
    b = with_tensor(0, x, 5), EXPECT_FAIL("longname.gguf", &b, PTQ_ERR_FORMAT, "tensor 0", "64 bytes"), free(b.p);
    x = t[1];
    x.name = "a";
    x.offset = t[1].offset;
    b = with_tensor(1, x, 5), EXPECT_FAIL("duptensor.gguf", &b, PTQ_ERR_FORMAT, "tensor \"a\" appears twice"), free(b.p);
    b = with_tensor(-1, x, 6), EXPECT_FAIL("extra.gguf", &b, PTQ_ERR_FORMAT, "\"e\" appears twice"), free(b.p);

    /* NaN and Inf in weights */
    tinfo one = {"w", PTQ_GGML_F32, 1, {4}, 0};
    buf k = {0}, dd = {0};
    float vals[4] = {1, 2, NAN, 4};
    put(&dd, vals, sizeof vals);
    b = gguf_file(3, 0, &k, 1, &one, 32, &dd);
    ptq_gguf g;
    ptq_error err = {0};
    CHECK(ptq_gguf_open(write_tmp("nan.gguf", &b), &g, &err) == PTQ_OK);
    if (err.status == PTQ_OK) {
        float out[4];
        CHECK(ptq_gguf_read_f32(&g, ptq_gguf_find(&g, "w"), out, &err) == PTQ_ERR_NUMERIC &&
              strstr(err.msg, "\"w\"") && strstr(err.msg, "NaN at flat index 2"));
        ptq_gguf_close(&g);
    }
    free(b.p);
    dd.n = 0;
    uint16_t h[4] = {0x3c00, 0x7c00, 0, 0}; /* F16 +Inf */
    put(&dd, h, sizeof h);
    one.type = PTQ_GGML_F16;
    b = gguf_file(3, 0, &k, 1, &one, 32, &dd);
    ptq_status os = ptq_gguf_open(write_tmp("inf.gguf", &b), &g, &err);
    CHECK(os == PTQ_OK);
    if (os == PTQ_OK) {
        float out[4];
        CHECK(ptq_gguf_read_f32(&g, ptq_gguf_find(&g, "w"), out, &err) == PTQ_ERR_NUMERIC &&
              strstr(err.msg, "+Inf at flat index 1"));
        ptq_gguf_close(&g);
    }
    free(b.p);
    free(dd.p);
}

/* ------------------------------------------------------------------ tokenizer metadata, hostile */

typedef struct {
    const char *model, *pre;
    int n_tok;
    int n_scores, n_types, dup, bad_type, bad_merge;
    int64_t bos; /* -1: absent */
} vocab_opts;

static ptq_status spec_of(const vocab_opts *o, ptq_tok_spec *sp, ptq_error *err) {
    buf k = {0};
    int nkv = 0;
    static const char *const toks[] = {"a", "b", "ab", "<s>", "</s>", "c", "bc", "abc", "x", "y", "z", "w"};
    const char *t2[12];
    memcpy(t2, toks, sizeof toks);
    if (o->dup) t2[5] = "ab";
    if (o->model) kv_str(&k, "tokenizer.ggml.model", o->model), nkv++;
    if (o->pre) kv_str(&k, "tokenizer.ggml.pre", o->pre), nkv++;
    kv_strs(&k, "tokenizer.ggml.tokens", t2, o->n_tok), nkv++;
    float sc[12] = {0};
    int32_t ty[12] = {1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    if (o->bad_type) ty[2] = 9;
    if (o->n_scores >= 0) kv_f32s(&k, "tokenizer.ggml.scores", sc, o->n_scores), nkv++;
    if (o->n_types >= 0) kv_i32s(&k, "tokenizer.ggml.token_type", ty, o->n_types), nkv++;
    static const char *const merges[] = {"a b", "b c", "ab c"};
    const char *m2[3] = {merges[0], merges[1], o->bad_merge ? "abc" : merges[2]};
    kv_strs(&k, "tokenizer.ggml.merges", m2, 3), nkv++;
    if (o->bos >= 0) kv_u32(&k, "tokenizer.ggml.bos_token_id", (uint32_t)o->bos), nkv++;
    buf f = gguf_file(3, (uint64_t)nkv, &k, 0, NULL, 1, NULL);
    ptq_gguf g;
    ptq_status s = ptq_gguf_open(write_tmp("vocab.gguf", &f), &g, err);
    if (s == PTQ_OK) {
        s = ptq_gguf_tok_spec(&g, sp, err);
        ptq_gguf_close(&g);
    }
    free(f.p);
    free(k.p);
    return s;
}

static void test_vocab_hostile(void) {
    ptq_tok_spec sp;
    ptq_error err = {0};
    vocab_opts base = {"gpt2", "llama-bpe", 12, -1, 12, 0, 0, 0, -1};
    CHECK_MSG(spec_of(&base, &sp, &err) == PTQ_OK, "%s", err.msg);
    /* llama.cpp's defaults for byte-level BPE with a Llama 3 pre-tokenizer: BOS/EOS 11, no UNK, BOS added */
    CHECK(sp.model == PTQ_TOK_BYTE_BPE && strcmp(sp.pre, "llama-bpe") == 0 && sp.n_merges == 3 &&
          strcmp(sp.merges[2], "ab c") == 0 && sp.scores == NULL && sp.bos == 11 && sp.eos == 11 && sp.unk == -1 &&
          sp.add_bos == 1 && sp.ignore_merges == 1 && sp.add_space_prefix == 0);
    ptq_tok_spec_free(&sp);
    vocab_opts o = base;
    o.pre = "gpt-2";
    o.n_tok = 5; /* the default BOS 11 is out of range: disabled, as llama.cpp does */
    o.n_types = 5;
    CHECK_MSG(spec_of(&o, &sp, &err) == PTQ_OK, "%s", err.msg);
    CHECK(sp.bos == -1 && sp.eos == -1 && sp.add_bos == 0 && sp.ignore_merges == 0);
    ptq_tok_spec_free(&sp);

    o = base, o.model = "bert";
    CHECK(spec_of(&o, &sp, &err) == PTQ_ERR_UNSUPPORTED && strstr(err.msg, "\"bert\"") && strstr(err.msg, "llama") &&
          sp.tokens == NULL);
    o = base, o.model = NULL;
    CHECK(spec_of(&o, &sp, &err) == PTQ_ERR_CONFIG && strstr(err.msg, "tokenizer.ggml.model"));
    o = base, o.n_scores = 11;
    CHECK(spec_of(&o, &sp, &err) == PTQ_ERR_FORMAT && strstr(err.msg, "scores has 11 entries for 12 tokens"));
    o = base, o.n_types = 13 - 2;
    CHECK(spec_of(&o, &sp, &err) == PTQ_ERR_FORMAT && strstr(err.msg, "token_type has 11 entries"));
    o = base, o.bad_type = 1;
    CHECK(spec_of(&o, &sp, &err) == PTQ_ERR_FORMAT && strstr(err.msg, "token_type[2] is 9"));
    o = base, o.dup = 1;
    CHECK(spec_of(&o, &sp, &err) == PTQ_ERR_FORMAT && strstr(err.msg, "\"ab\" twice (ids 2 and 5)"));
    o = base, o.bad_merge = 1;
    CHECK(spec_of(&o, &sp, &err) == PTQ_ERR_FORMAT && strstr(err.msg, "merges[2] is \"abc\""));
    o = base, o.bos = 12;
    CHECK(spec_of(&o, &sp, &err) == PTQ_ERR_FORMAT && strstr(err.msg, "bos_token_id is 12") &&
          strstr(err.msg, "12 tokens"));
    o = base, o.bos = 3;
    CHECK(spec_of(&o, &sp, &err) == PTQ_OK && sp.bos == 3);
    ptq_tok_spec_free(&sp);
}

/* ------------------------------------------------------------------ real vocabularies vs gguf-py */

static void unhex(const char *h, char *out, size_t cap) {
    size_t n = strlen(h) / 2;
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    out[n] = 0;
}

static void test_real_vocab(const char *name) {
    char rel[256], golden[512];
    snprintf(rel, sizeof rel, "llama.cpp/models/ggml-vocab-%s.gguf", name);
    snprintf(golden, sizeof golden, "%s/tests/data/gguf/%s.golden", PTQ_SOURCE_DIR, name);
    char *path = tu_ref_path(rel);
    ptq_gguf g;
    ptq_error err = {0};
    ptq_tok_spec sp;
    CHECK_MSG(ptq_gguf_open(path, &g, &err) == PTQ_OK, "%s", err.msg);
    if (err.status != PTQ_OK) return;
    CHECK_MSG(ptq_gguf_tok_spec(&g, &sp, &err) == PTQ_OK, "%s", err.msg);
    ptq_gguf_close(&g);
    if (err.status != PTQ_OK) return;
    FILE *f = fopen(golden, "r");
    CHECK_MSG(f != NULL, "cannot open %s", golden);
    if (!f) return;
    char line[4096], a[1024], b[2048], c[64], d[64];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        long n;
        if (sscanf(line, "model %63s", c) == 1) {
            CHECK(sp.model == (strcmp(c, "llama") == 0 ? PTQ_TOK_SPM : PTQ_TOK_BYTE_BPE));
        } else if (strncmp(line, "pre ", 4) == 0) {
            CHECK_MSG(strcmp(sp.pre, line + 4) == 0, "%s: pre %s vs %s", name, sp.pre, line + 4);
        } else if (sscanf(line, "n_tokens %ld", &n) == 1) {
            CHECK(sp.n_tokens == n);
        } else if (sscanf(line, "n_merges %ld", &n) == 1) {
            CHECK(sp.n_merges == n);
        } else if (sscanf(line, "scores %63s", c) == 1) {
            CHECK((sp.scores != NULL) == (strcmp(c, "yes") == 0));
        } else if (sscanf(line, "types %63s", c) == 1) {
            CHECK((sp.types != NULL) == (strcmp(c, "yes") == 0));
        } else if (sscanf(line, "key %1023s %63s", a, c) == 2) {
            int *field = strcmp(a, "bos_token_id") == 0       ? &sp.bos
                         : strcmp(a, "eos_token_id") == 0     ? &sp.eos
                         : strcmp(a, "unknown_token_id") == 0 ? &sp.unk
                         : strcmp(a, "padding_token_id") == 0 ? &sp.pad
                         : strcmp(a, "add_bos_token") == 0    ? &sp.add_bos
                         : strcmp(a, "add_eos_token") == 0    ? &sp.add_eos
                                                              : &sp.add_space_prefix;
            if (strcmp(c, "absent") != 0) CHECK_MSG(*field == atoi(c), "%s: %s = %d, gguf-py %s", name, a, *field, c);
            checked++;
        } else if (sscanf(line, "token %ld %1023s %63s %63s", &n, a, c, d) == 4) {
            unhex(a, b, sizeof b);
            CHECK_MSG(n < sp.n_tokens && strcmp(sp.tokens[n], b) == 0, "%s: token %ld", name, n);
            if (strcmp(c, "-") != 0) CHECK_MSG(sp.scores && sp.scores[n] == (float)atof(c), "%s: score %ld", name, n);
            if (strcmp(d, "-") != 0) CHECK_MSG(sp.types && sp.types[n] == atoi(d), "%s: type %ld", name, n);
            checked++;
        } else if (sscanf(line, "merge %ld %1023s", &n, a) == 2) {
            unhex(a, b, sizeof b);
            CHECK_MSG(n < sp.n_merges && strcmp(sp.merges[n], b) == 0, "%s: merge %ld", name, n);
            checked++;
        }
    }
    fclose(f);
    CHECK_MSG(checked > 30, "%s: only %d golden lines checked", name, checked);
    /* keys absent from these files take llama.cpp's defaults (llama-vocab.cpp) */
    if (strcmp(name, "llama-spm") == 0) CHECK(sp.add_space_prefix == 1 && sp.pad == -1);
    if (strcmp(name, "llama-bpe") == 0)
        CHECK(sp.add_bos == 1 && sp.add_eos == 0 && sp.unk == -1 && sp.ignore_merges == 1 && sp.add_space_prefix == 0);
    ptq_tok_spec_free(&sp);
    free(path);
}

/* ------------------------------------------------------------------ LLaMA GGUF models vs their safetensors */

static const char *g_fix; /* the folder make_gguf_fixtures.py wrote */

static char *fix(const char *name) {
    static char bufs[8][4096];
    static int k = 0;
    char *p = bufs[k++ % 8];
    snprintf(p, 4096, "%s/%s", g_fix, name);
    return p;
}

/* the fixtures take ~20 MB: removed when the test ends */
static void remove_fixtures(void) {
    if (!g_fix) return;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_fix);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_fix);
}

/* logits of every position of toks[0..n), fed one token at a time (n * vocab floats, malloc'ed) */
static float *logits_of(ptq_model *m, const int *toks, int n, int vocab) {
    ptq_session *s = NULL;
    ptq_error err = {0};
    float *out = malloc((size_t)n * (size_t)vocab * sizeof *out);
    if (ptq_session_new(m, n, &s, &err) != PTQ_OK) {
        fprintf(stderr, "session: %s\n", err.msg);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        const float *lg;
        if (ptq_session_feed(s, &toks[i], 1, &lg, &err) != PTQ_OK) {
            fprintf(stderr, "feed: %s\n", err.msg);
            exit(1);
        }
        memcpy(out + (size_t)i * vocab, lg, (size_t)vocab * sizeof *lg);
    }
    ptq_session_free(s);
    return out;
}

/* max |a - b| and max |b| over n floats */
static double max_diff(const float *a, const float *b, size_t n, double *scale) {
    double d = 0, sc = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (e > d) d = e;
        if (fabs((double)b[i]) > sc) sc = fabs((double)b[i]);
    }
    if (scale) *scale = sc;
    return d;
}

static ptq_model *load(const char *path) {
    ptq_model *m = NULL;
    ptq_error err = {0};
    if (ptq_model_load(path, &m, &err) != PTQ_OK) {
        CHECK_MSG(0, "loading %s: %s", path, err.msg);
        return NULL;
    }
    return m;
}

/* GGUF `g` and safetensors `st`: logits equal bit for bit; returns GGUF's logits for further checks */
static float *same_logits(const char *g, const char *st, const int *toks, int n, int *vocab) {
    ptq_model *mg = load(fix(g)), *ms = load(st);
    float *lg = NULL;
    tu_unpack_model(mg); /* Q8_0 runs packed: back to the float path for a bit-exact comparison */
    if (mg && ms) {
        ptq_model_info ig, is;
        ptq_model_get_info(mg, &ig);
        ptq_model_get_info(ms, &is);
        CHECK(ig.vocab_size == is.vocab_size && ig.n_layers == is.n_layers && ig.dim == is.dim);
        *vocab = ig.vocab_size;
        lg = logits_of(mg, toks, n, *vocab);
        float *ls = logits_of(ms, toks, n, *vocab);
        double sc, d = max_diff(lg, ls, (size_t)n * (size_t)*vocab, &sc);
        CHECK_MSG(memcmp(lg, ls, (size_t)n * (size_t)*vocab * sizeof *lg) == 0,
                  "%s vs %s: logits differ (max |diff| %g, max |logit| %g)", g, st, d, sc);
        free(ls);
    }
    ptq_model_free(mg);
    ptq_model_free(ms);
    return lg;
}

/* llama.cpp's own logits for a GGUF (tests/ref/llama_cpp_logits.c against the prebuilt libllama), compared with
 * ptq's within tol * max |logit|. Skipped (not failed) when the program cannot be built outside CI. */
static void vs_llama_cpp(const char *refs, const char *g, const int *toks, int n, double tol) {
    static int built = 0; /* 1 built, -1 cannot */
    static char exe[700];
    char bins[1200], cmd[6000];
    snprintf(bins, sizeof bins, "%s/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64", refs);
    if (!built) {
        snprintf(exe, sizeof exe, "%s/llama_cpp_logits", tu_tmpdir());
        snprintf(cmd, sizeof cmd,
                 "cc -O1 -I'%s/llama.cpp/include' -I'%s/llama.cpp/ggml/include' '%s/tests/ref/llama_cpp_logits.c' "
                 "-L'%s' -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,'%s' -o '%s'",
                 refs, refs, PTQ_SOURCE_DIR, bins, bins, exe);
        built = system(cmd) == 0 ? 1 : -1;
        if (built < 0) {
            const char *ci = getenv("CI");
            CHECK_MSG(!(ci && !strcmp(ci, "true")), "cannot build the llama.cpp reference: %s", cmd);
            fprintf(stderr, "SKIP: cannot build the llama.cpp reference (%s)\n", cmd);
        }
    }
    if (built < 0) return;
    char out[700];
    snprintf(out, sizeof out, "%s/llama_cpp.f32", tu_tmpdir());
    int k = snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", exe, bins, fix(g), out);
    for (int i = 0; i < n && k < (int)sizeof cmd - 16; i++) k += snprintf(cmd + k, sizeof cmd - (size_t)k, " %d", toks[i]);
    CHECK_MSG(system(cmd) == 0, "llama.cpp reference failed: %s", cmd);
    ptq_model *m = load(fix(g));
    if (!m) return;
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    size_t total = (size_t)n * (size_t)info.vocab_size;
    float *ref = malloc(total * sizeof *ref), *lg = logits_of(m, toks, n, info.vocab_size);
    FILE *f = fopen(out, "rb");
    size_t got = f ? fread(ref, sizeof *ref, total, f) : 0;
    if (f) fclose(f);
    CHECK_MSG(got == total, "%s: llama.cpp wrote %zu logits, expected %zu", g, got, total);
    if (got == total) {
        double sc, d = max_diff(lg, ref, total, &sc);
        printf("%s: max |ptq logit - llama.cpp logit| = %.3g (max |logit| %.3g)\n", g, d, sc);
        CHECK_MSG(d <= tol * sc, "%s: ptq's logits are %g from llama.cpp's (tolerance %g)", g, d, tol * sc);
    }
    free(ref);
    free(lg);
    ptq_model_free(m);
}

static void test_models(void) {
    char *gguf_py = tu_ref_path("llama.cpp/gguf-py/gguf/gguf_writer.py");
    free(gguf_py);
    char *refs = tu_ref_path("llama.cpp");
    *strrchr(refs, '/') = 0; /* the refs folder */
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/fixtures", tu_tmpdir());
    g_fix = dir;
    atexit(remove_fixtures); /* also on a skip's exit(77) */
    const char *data = getenv("PTQ_DATA");
    char shk[4200] = "";
    snprintf(shk, sizeof shk, "%s/llama-shakespeare-256", data && *data ? data : PTQ_DATA_DEFAULT);
    char cfg[4300];
    snprintf(cfg, sizeof cfg, "%s/model.safetensors", shk);
    FILE *probe = fopen(cfg, "rb");
    if (probe) fclose(probe);
    else shk[0] = 0;
    char cmd[10000];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/make_gguf_fixtures.py model '%s' '%s' %s%s%s",
             PTQ_SOURCE_DIR, refs, dir, shk[0] ? "'" : "", shk, shk[0] ? "'" : "");
    free(refs);
    if (system(cmd) != 0) {
        const char *ci = getenv("CI");
        fprintf(stderr, "%s: cannot write the GGUF fixtures (needs /usr/bin/python3 with numpy): %s\n",
                ci && !strcmp(ci, "true") ? "FAIL" : "SKIP", cmd);
        if (ci && !strcmp(ci, "true")) exit(1);
        exit(tu_failures ? 1 : 77);
    }

    int toks[24];
    for (int i = 0; i < 24; i++) toks[i] = (int)(tu_splitmix64((uint64_t)i) % 90) + 3;
    toks[0] = 1;
    int vocab = 0;
    /* F32: the very weights of the safetensors (Q/K rows un-permuted), so the very logits */
    float *l32 = same_logits("synth-f32.gguf", fix("synth"), toks, 24, &vocab);
    /* F16, BF16, Q8_0: the very logits of the weights gguf-py dequantizes; and near the float32 model's */
    static const struct { const char *type; double tol; } q[] = {{"f16", 2e-3}, {"bf16", 2e-2}, {"q8_0", 5e-2}};
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        char g[64], st[64];
        snprintf(g, sizeof g, "synth-%s.gguf", q[i].type);
        snprintf(st, sizeof st, "synth-%s-deq", q[i].type);
        float *lq = same_logits(g, fix(st), toks, 24, &vocab);
        if (lq && l32) {
            double sc, d = max_diff(lq, l32, (size_t)24 * (size_t)vocab, &sc);
            printf("synth %s: max |logit - f32 logit| = %.3g (max |logit| %.3g)\n", q[i].type, d, sc);
            CHECK_MSG(d <= q[i].tol * sc, "%s: logits %g from the float32 model's (tolerance %g)", q[i].type, d,
                      q[i].tol * sc);
        }
        free(lq);
    }
    /* the tied Q8_0 table stays packed, one copy for the lookups and the head (as a k-quant one stays in its blocks,
       below): its logits are those of the same model unpacked to float32 up to the order of the head's sums */
    ptq_model *m8 = load(fix("synth-q8_0.gguf"));
    if (m8 && l32) {
        CHECK_MSG(m8->tok_emb_q && m8->head.q == m8->tok_emb_q && !m8->tok_emb && !m8->head.w && ptq_head_tied(m8),
                  "the tied Q8_0 table is not shared packed");
        float *lp = logits_of(m8, toks, 24, vocab);
        tu_unpack_model(m8);
        CHECK(m8->tok_emb && m8->head.w == m8->tok_emb && !m8->tok_emb_q && !m8->head.q && ptq_head_tied(m8));
        float *lf = logits_of(m8, toks, 24, vocab);
        double sc, d = max_diff(lp, lf, (size_t)24 * (size_t)vocab, &sc);
        printf("synth-q8_0.gguf: max |logit with the packed table - logit unpacked| = %.3g (max |logit| %.3g)\n", d, sc);
        CHECK_MSG(d <= 1e-5 * sc, "tied Q8_0: the packed table's logits are %g from the unpacked one's", d);
        free(lp), free(lf);
    }
    ptq_model_free(m8);
    free(l32);
    /* llama.cpp itself on the same files */
    char *rp = tu_ref_path("npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
    *strstr(rp, "/npm/node_modules") = 0;
    vs_llama_cpp(rp, "synth-f32.gguf", toks, 24, 1e-4);
    vs_llama_cpp(rp, "synth-f16.gguf", toks, 24, 1e-2);
    vs_llama_cpp(rp, "synth-bf16.gguf", toks, 24, 1e-2);
    vs_llama_cpp(rp, "synth-q8_0.gguf", toks, 24, 3e-2);

    /* broken models: each refused with the tensor or key at fault named */
    static const struct { const char *file; ptq_status st; const char *what; } bad[] = {
        {"arch", PTQ_ERR_UNSUPPORTED, "general.architecture is \"qwen2\""},
        {"iq4nl", PTQ_ERR_UNSUPPORTED,
         "tensor \"blk.0.ffn_down.weight\" is IQ4_NL, which is not supported for reading yet; supported: F32, F16, "
         "BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"},
        {"missing", PTQ_ERR_FORMAT, "tensor \"blk.1.ffn_up.weight\" is missing"},
        {"extra", PTQ_ERR_FORMAT, "tensor \"blk.0.attn_q.scale\" is not part of a LLaMA model"},
        {"shape", PTQ_ERR_FORMAT, "tensor \"blk.0.attn_k.weight\" has ggml shape [64, 64], expected [64, 32]"},
        {"nan", PTQ_ERR_NUMERIC, "tensor \"blk.0.ffn_gate.weight\" has NaN at flat index 197"},
        {"layers", PTQ_ERR_FORMAT, "tensor \"blk.2.attn_norm.weight\" is missing"},
        {"moe", PTQ_ERR_UNSUPPORTED, "llama.expert_count is 8"},
        {"rope", PTQ_ERR_UNSUPPORTED, "llama.rope.scaling.type is \"linear\""},
        {"vocab", PTQ_ERR_FORMAT, "tokenizer.ggml.tokens has 95 tokens but token_embd.weight has 96 rows"},
        {"vocabsize", PTQ_ERR_FORMAT, "llama.vocab_size is 97 but token_embd.weight has 96 rows"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char name[64];
        snprintf(name, sizeof name, "synth-bad-%s.gguf", bad[i].file);
        ptq_model *m = NULL;
        ptq_error err = {0};
        ptq_status st = ptq_model_load(fix(name), &m, &err);
        CHECK_MSG(st == bad[i].st && strstr(err.msg, bad[i].what) && strstr(err.msg, name) && m == NULL,
                  "%s: status %d: %s", name, (int)st, err.msg);
        ptq_model_free(m);
    }

    if (!shk[0]) {
        fprintf(stderr, "SKIP: llama-shakespeare-256 is missing: its GGUF is not tested\n");
        free(rp);
        return;
    }
    /* llama-shakespeare-256 (untied head, GQA) */
    int stoks[40];
    for (int i = 0; i < 40; i++) stoks[i] = (int)(tu_splitmix64(1000 + (uint64_t)i) % 509) + 3;
    stoks[0] = 1;
    free(same_logits("shakespeare-f32.gguf", cfg, stoks, 40, &vocab));
    free(same_logits("shakespeare-q8_0.gguf", fix("shakespeare-q8_0-deq"), stoks, 40, &vocab));
    vs_llama_cpp(rp, "shakespeare-f32.gguf", stoks, 40, 1e-4);
    vs_llama_cpp(rp, "shakespeare-q8_0.gguf", stoks, 40, 3e-2);
    /* tied head, token_embd in Q4_K: one table in its blocks serves the lookups and the head (kernels/ggml_gemm.h):
       its logits equal those of the same table widened to float32 (ptq_model_widen_ggml, which keeps the one table)
       up to the order of the sums, and llama.cpp's on the same file within the tolerance of its 8-bit activations
       (as for Q8_0) */
    ptq_model *mt = load(fix("shakespeare-tied-q4_k.gguf"));
    if (mt) {
        CHECK_MSG(mt->tok_emb_ggml && !mt->tok_emb && ptq_linear_is_ggml(&mt->head) && mt->head.ggml == mt->tok_emb_ggml &&
                      ptq_head_tied(mt),
                  "the tied Q4_K table is not shared in its blocks");
        float *lb = logits_of(mt, stoks, 40, vocab);
        ptq_error werr = {0};
        CHECK_MSG(ptq_model_widen_ggml(mt, &werr) == PTQ_OK, "%s", werr.msg);
        CHECK(mt->tok_emb && mt->head.w == mt->tok_emb && !mt->tok_emb_ggml && ptq_head_tied(mt));
        float *lf = logits_of(mt, stoks, 40, vocab);
        double sc, d = max_diff(lb, lf, (size_t)40 * (size_t)vocab, &sc);
        printf("shakespeare-tied-q4_k.gguf: max |logit on the blocks - logit widened| = %.3g (max |logit| %.3g)\n", d, sc);
        CHECK_MSG(d <= 1e-4 * sc, "tied Q4_K: the blocks' logits are %g from the widened table's", d);
        free(lb), free(lf);
        ptq_model_free(mt);
    }
    vs_llama_cpp(rp, "shakespeare-tied-q4_k.gguf", stoks, 40, 3e-2);
    /* its tokenizer, from tokenizer.ggml.*, encodes as the llama2.c tokenizer.bin it was converted from */
    char tb[4300];
    snprintf(tb, sizeof tb, "%s/tokenizer.bin", shk);
    ptq_tokenizer *ta = NULL, *tg = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_tokenizer_load(tb, 512, &ta, &err) == PTQ_OK, "%s", err.msg);
    CHECK_MSG(ptq_tokenizer_load(fix("shakespeare-f32.gguf"), 512, &tg, &err) == PTQ_OK, "%s", err.msg);
    if (ta && tg) {
        CHECK(ptq_tokenizer_bos(tg) == 1 && ptq_tokenizer_eos(tg) == 2 && ptq_tokenizer_vocab_size(tg) == 512);
        static const char *const texts[] = {"First Citizen:\nBefore we proceed any further, hear me speak.",
                                            "  two  spaces, tabs\tand\nnewlines\n\n", "", "x", "caf\xc3\xa9 \xe2\x84\xa2 ~[]"};
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            int *a = NULL, *b = NULL, na = 0, nb = 0;
            CHECK(ptq_tokenizer_encode(ta, texts[i], strlen(texts[i]), 1, &a, &na, &err) == PTQ_OK);
            CHECK(ptq_tokenizer_encode(tg, texts[i], strlen(texts[i]), 1, &b, &nb, &err) == PTQ_OK);
            CHECK_MSG(na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0), "text %zu: %d vs %d ids", i,
                      na, nb);
            free(a);
            free(b);
        }
    }
    ptq_tokenizer_free(ta);
    ptq_tokenizer_free(tg);
    free(rp);
}


/* ------------------------------------------------------------------ llama.cpp's tokenizer test files */

/* Every ggml-vocab-*.gguf of llama.cpp with .inp/.out (inputs, and the ids the original Hugging Face tokenizer
 * gives them): through ptq_gguf_tok_spec and the BPE engine, without BOS/EOS and special-token parsing (as
 * llama.cpp's test-tokenizer-0 runs them), every output exactly. Vocabularies of a model or pre-tokenizer ptq does
 * not implement are reported and skipped; the llama (SentencePiece) and Llama 3 ones must be supported. */
static void test_vocab_files(void) {
    static const struct { const char *name; int required; } files[] = {
        {"llama-spm", 1}, {"llama-bpe", 1}, {"gpt-2", 0}, {"qwen2", 0}, {"phi-3", 0}, {"falcon", 0},
        {"starcoder", 0}, {"mpt", 0}, {"deepseek-llm", 0}, {"deepseek-coder", 0}, {"command-r", 0}, {"refact", 0},
        {"qwen35", 0}, {"gemma-4", 0}, {"bert-bge", 0}};
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        char rel[256];
        snprintf(rel, sizeof rel, "llama.cpp/models/ggml-vocab-%s.gguf", files[f].name);
        char *path = tu_ref_path(rel);
        char inp[1024], out[1024];
        snprintf(inp, sizeof inp, "%s.inp", path);
        snprintf(out, sizeof out, "%s.out", path);
        ptq_gguf g;
        ptq_error err = {0};
        ptq_tok_spec spec;
        ptq_bpe *bpe = NULL;
        ptq_status st = ptq_gguf_open(path, &g, &err);
        CHECK_MSG(st == PTQ_OK, "%s", err.msg);
        if (st == PTQ_OK) {
            st = ptq_gguf_tok_spec(&g, &spec, &err);
            ptq_gguf_close(&g);
            if (st == PTQ_OK) {
                st = ptq_bpe_create(&spec, &bpe, &err);
                ptq_tok_spec_free(&spec);
            }
        }
        char *ti = NULL, *to = NULL;
        size_t ni = 0, no = 0;
        ptq_error e2;
        if (st != PTQ_OK || ptq_read_file(inp, &ti, &ni, &e2) != PTQ_OK || ptq_read_file(out, &to, &no, &e2) != PTQ_OK) {
            if (st != PTQ_OK) {
                CHECK_MSG(!files[f].required, "%s: %s", files[f].name, err.msg);
                printf("vocab %s: not supported: %s\n", files[f].name, err.msg);
            }
            ptq_bpe_free(bpe);
            free(ti);
            free(to);
            free(path);
            continue;
        }
        static const char sep[] = "\n__ggml_vocab_test__\n";
        int cases = 0, ok = 0;
        char *p = ti, *q = to;
        while (p && p < ti + ni) {
            char *next = strstr(p, sep);
            size_t len = next ? (size_t)(next - p) : (size_t)(ti + ni - p);
            char *eol = strchr(q, '\n');
            if (!eol) break;
            *eol = 0;
            int want[4096], nw = 0;
            for (char *t = q; nw < 4096;) {
                char *end;
                long v = strtol(t, &end, 10);
                if (end == t) break;
                want[nw++] = (int)v;
                t = end;
            }
            int *ids = NULL, n = 0;
            cases++;
            if (ptq_bpe_encode(bpe, p, len, 0, 0, &ids, &n, &err) == PTQ_OK && n == nw &&
                (n == 0 || memcmp(ids, want, (size_t)n * sizeof *ids) == 0))
                ok++;
            else if (cases - ok <= 3) {
                char sn[64];
                ptq_snippet(sn, sizeof sn, p, len < 40 ? len : 40);
                fprintf(stderr, "vocab %s: case %d \"%s\": %d ids, expected %d\n", files[f].name, cases, sn, n, nw);
            }
            free(ids);
            q = eol + 1;
            p = next ? next + strlen(sep) : NULL;
        }
        printf("vocab %s: %d/%d llama.cpp test cases exact\n", files[f].name, ok, cases);
        CHECK_MSG(cases > 10 && ok == cases, "%s: %d of %d cases differ", files[f].name, cases - ok, cases);
        ptq_bpe_free(bpe);
        free(ti);
        free(to);
        free(path);
    }
}

int main(void) {
    test_type_table();
    test_valid();
    test_hostile_header();
    test_hostile_tensors();
    test_vocab_hostile();
    test_real_vocab("llama-spm"); /* skips (77) without build-ref: keep last */
    test_real_vocab("llama-bpe");
    test_vocab_files();
    test_models();
    return tu_done("test_gguf");
}
