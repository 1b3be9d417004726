/* The GGUF writer (io/gguf_write.h): a file with every value type, arrays of each, and tensors of several types
 * and sizes is read back by ptq's reader (io/gguf.h) and by llama.cpp's own (gguf-py, build-ref/, through
 * tests/ref/gguf_check_expected.py), which must both find exactly what was written, 32-byte aligned. Misuse is
 * refused with a message, and a save that cannot happen leaves nothing behind and replaces nothing. */
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/gguf.h"
#include "io/gguf_write.h"
#include "io/safetensors.h"
#include "ptq.h"
#include "testutil.h"

#define OK(call)                                                  \
    do {                                                          \
        ptq_status s_ = (call);                                   \
        CHECK_MSG(s_ == PTQ_OK, "%s failed: %s", #call, err.msg); \
    } while (0)

static ptq_error err;

static char *hex(const void *p, size_t n) {
    char *s = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) sprintf(s + 2 * i, "%02x", ((const unsigned char *)p)[i]);
    s[2 * n] = 0;
    return s;
}

static void expect_kv(cJSON *kv, const char *key, const char *type, cJSON *value) {
    cJSON *e = cJSON_CreateArray();
    cJSON_AddItemToArray(e, cJSON_CreateString(key));
    cJSON_AddItemToArray(e, cJSON_CreateString(type));
    cJSON_AddItemToArray(e, value);
    cJSON_AddItemToArray(kv, e);
}

static void expect_tensor(cJSON *ts, const char *name, const char *type, int ndim, const int64_t *ne, const void *d,
                          size_t n) {
    cJSON *e = cJSON_CreateArray(), *shape = cJSON_CreateArray();
    cJSON_AddItemToArray(e, cJSON_CreateString(name));
    cJSON_AddItemToArray(e, cJSON_CreateString(type));
    for (int i = 0; i < ndim; i++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)ne[i]));
    cJSON_AddItemToArray(e, shape);
    char *h = hex(d, n);
    cJSON_AddItemToArray(e, cJSON_CreateString(h));
    free(h);
    cJSON_AddItemToArray(ts, e);
}

static cJSON *nums(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* tensors: an odd-sized F32 vector (padding), an F16 matrix, a Q8_0 matrix, a 3-D F32 tensor */
static float g_v[3] = {1.5f, -2.25f, 1e-3f};
static uint16_t g_h[4 * 2];
static unsigned char g_q8[2 * 34];
static float g_t3[2 * 3 * 2];

static void test_round_trip(void) {
    ptq_gguf_writer *w = NULL;
    OK(ptq_gguf_writer_new(&w, &err));
    if (!w) return;
    cJSON *exp = cJSON_CreateObject(), *kv = cJSON_AddArrayToObject(exp, "kv"), *ts = cJSON_AddArrayToObject(exp, "tensors");
    expect_kv(kv, "general.alignment", "uint32", cJSON_CreateNumber(32));
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint32_t u32 = 4000000000u;
    int32_t i32 = -2000000000;
    float f32 = 0.1f;
    uint64_t u64 = 18000000000000000000ull;
    int64_t i64 = -9000000000000000000ll;
    double f64 = 1.0 / 3.0;
    OK(ptq_gguf_set_scalar(w, "t.u8", PTQ_GGUF_U8, &u8, &err));
    expect_kv(kv, "t.u8", "uint8", cJSON_CreateNumber(u8));
    OK(ptq_gguf_set_scalar(w, "t.i8", PTQ_GGUF_I8, &i8, &err));
    expect_kv(kv, "t.i8", "int8", cJSON_CreateNumber(i8));
    OK(ptq_gguf_set_scalar(w, "t.u16", PTQ_GGUF_U16, &u16, &err));
    expect_kv(kv, "t.u16", "uint16", cJSON_CreateNumber(u16));
    OK(ptq_gguf_set_scalar(w, "t.i16", PTQ_GGUF_I16, &i16, &err));
    expect_kv(kv, "t.i16", "int16", cJSON_CreateNumber(i16));
    OK(ptq_gguf_set_u32(w, "t.u32", u32, &err));
    expect_kv(kv, "t.u32", "uint32", cJSON_CreateNumber(u32));
    OK(ptq_gguf_set_i32(w, "t.i32", i32, &err));
    expect_kv(kv, "t.i32", "int32", cJSON_CreateNumber(i32));
    OK(ptq_gguf_set_f32(w, "t.f32", f32, &err));
    expect_kv(kv, "t.f32", "float32", cJSON_CreateNumber((double)f32));
    OK(ptq_gguf_set_bool(w, "t.bool", 1, &err));
    expect_kv(kv, "t.bool", "bool", cJSON_CreateTrue());
    OK(ptq_gguf_set_string(w, "t.str", "h\xc3\xa9llo \xe2\x96\x81world", &err));
    expect_kv(kv, "t.str", "string", cJSON_CreateString("h\xc3\xa9llo \xe2\x96\x81world"));
    OK(ptq_gguf_set_scalar(w, "t.u64", PTQ_GGUF_U64, &u64, &err));
    expect_kv(kv, "t.u64", "uint64", cJSON_CreateNumber((double)u64)); /* exact in a double: a multiple of 2^11 */
    OK(ptq_gguf_set_scalar(w, "t.i64", PTQ_GGUF_I64, &i64, &err));
    expect_kv(kv, "t.i64", "int64", cJSON_CreateNumber((double)i64));
    OK(ptq_gguf_set_scalar(w, "t.f64", PTQ_GGUF_F64, &f64, &err));
    expect_kv(kv, "t.f64", "float64", cJSON_CreateNumber(f64));
    /* arrays */
    const float af[3] = {1.0f, -0.5f, 3.25f};
    const int32_t ai[4] = {-1, 0, 1, 2147483647};
    const uint8_t ab[3] = {1, 0, 1};
    const uint16_t au16[2] = {1, 65535};
    const int64_t ai64[2] = {-5, 1ll << 40};
    const char *as[4] = {"<s>", "", "\xe2\x96\x81the", "a b"};
    OK(ptq_gguf_set_array(w, "a.f32", PTQ_GGUF_F32, af, 3, &err));
    expect_kv(kv, "a.f32", "array:float32", nums((const double[]){1.0, -0.5, 3.25}, 3));
    OK(ptq_gguf_set_array(w, "a.i32", PTQ_GGUF_I32, ai, 4, &err));
    expect_kv(kv, "a.i32", "array:int32", nums((const double[]){-1, 0, 1, 2147483647}, 4));
    OK(ptq_gguf_set_array(w, "a.bool", PTQ_GGUF_BOOL, ab, 3, &err));
    cJSON *bools = cJSON_CreateArray();
    for (int i = 0; i < 3; i++) cJSON_AddItemToArray(bools, cJSON_CreateBool(ab[i]));
    expect_kv(kv, "a.bool", "array:bool", bools);
    OK(ptq_gguf_set_array(w, "a.u16", PTQ_GGUF_U16, au16, 2, &err));
    expect_kv(kv, "a.u16", "array:uint16", nums((const double[]){1, 65535}, 2));
    OK(ptq_gguf_set_array(w, "a.i64", PTQ_GGUF_I64, ai64, 2, &err));
    expect_kv(kv, "a.i64", "array:int64", nums((const double[]){-5, (double)(1ll << 40)}, 2));
    OK(ptq_gguf_set_array(w, "a.str", PTQ_GGUF_STRING, as, 4, &err));
    expect_kv(kv, "a.str", "array:string", cJSON_CreateStringArray(as, 4));
    OK(ptq_gguf_set_array(w, "a.empty", PTQ_GGUF_U32, NULL, 0, &err));
    expect_kv(kv, "a.empty", "array:uint32", cJSON_CreateArray());

    const int64_t ne_v[1] = {3}, ne_h[2] = {4, 2}, ne_q[2] = {32, 2}, ne_3[3] = {2, 3, 2};
    for (int i = 0; i < 8; i++) g_h[i] = ptq_f32_to_f16((float)i * 0.5f - 1.0f);
    for (int b = 0; b < 2; b++) {
        uint16_t d = ptq_f32_to_f16(0.125f * (float)(b + 1));
        memcpy(g_q8 + 34 * b, &d, 2);
        for (int j = 0; j < 32; j++) g_q8[34 * b + 2 + j] = (unsigned char)(int8_t)(j * 7 - 100 + b);
    }
    for (int i = 0; i < 12; i++) g_t3[i] = (float)i - 5.5f;
    OK(ptq_gguf_add_tensor(w, "v", PTQ_GGML_F32, 1, ne_v, g_v, sizeof g_v, &err));
    expect_tensor(ts, "v", "F32", 1, ne_v, g_v, sizeof g_v);
    OK(ptq_gguf_add_tensor(w, "blk.0.h.weight", PTQ_GGML_F16, 2, ne_h, g_h, sizeof g_h, &err));
    expect_tensor(ts, "blk.0.h.weight", "F16", 2, ne_h, g_h, sizeof g_h);
    OK(ptq_gguf_add_tensor(w, "q", PTQ_GGML_Q8_0, 2, ne_q, g_q8, sizeof g_q8, &err));
    expect_tensor(ts, "q", "Q8_0", 2, ne_q, g_q8, sizeof g_q8);
    OK(ptq_gguf_add_tensor(w, "t3", PTQ_GGML_F32, 3, ne_3, g_t3, sizeof g_t3, &err));
    expect_tensor(ts, "t3", "F32", 3, ne_3, g_t3, sizeof g_t3);

    char path[600], jpath[600];
    snprintf(path, sizeof path, "%s/rt.gguf", tu_tmpdir());
    snprintf(jpath, sizeof jpath, "%s/rt.json", tu_tmpdir());
    OK(ptq_gguf_writer_save(w, path, NULL, 0, &err));
    ptq_gguf_writer_free(w);

    /* ptq's reader */
    ptq_gguf g;
    ptq_status st = ptq_gguf_open(path, &g, &err);
    CHECK_MSG(st == PTQ_OK, "ptq cannot read the written file: %s", err.msg);
    if (st == PTQ_OK) {
        CHECK(g.version == 3 && g.alignment == 32 && g.n_kv == 20 && g.n_tensors == 4);
        uint32_t v32;
        int32_t vi;
        float vf;
        int vb;
        char *s = NULL;
        CHECK(ptq_gguf_get_u32(&g, "t.u32", &v32, &err) == PTQ_OK && v32 == u32);
        CHECK(ptq_gguf_get_i32(&g, "t.i32", &vi, &err) == PTQ_OK && vi == i32);
        CHECK(ptq_gguf_get_f32(&g, "t.f32", &vf, &err) == PTQ_OK && vf == f32);
        CHECK(ptq_gguf_get_f32(&g, "t.f64", &vf, &err) == PTQ_OK && vf == (float)f64);
        CHECK(ptq_gguf_get_bool(&g, "t.bool", &vb, &err) == PTQ_OK && vb == 1);
        CHECK(ptq_gguf_get_string(&g, "t.str", &s, &err) == PTQ_OK && s && !strcmp(s, "h\xc3\xa9llo \xe2\x96\x81world"));
        free(s);
        const ptq_gguf_kv *k = ptq_gguf_find_kv(&g, "t.u64");
        uint64_t r64 = 0;
        CHECK(k && k->type == PTQ_GGUF_U64);
        if (k) memcpy(&r64, k->value, 8);
        CHECK(r64 == u64);
        k = ptq_gguf_find_kv(&g, "t.i16");
        CHECK(k && k->type == PTQ_GGUF_I16);
        char **strs = NULL;
        int n = 0;
        CHECK(ptq_gguf_get_strings(&g, "a.str", &strs, &n, &err) == PTQ_OK && n == 4);
        for (int i = 0; i < n; i++) {
            CHECK(!strcmp(strs[i], as[i]));
            free(strs[i]);
        }
        free(strs);
        float *fs = NULL;
        CHECK(ptq_gguf_get_f32s(&g, "a.f32", &fs, &n, &err) == PTQ_OK && n == 3 && !memcmp(fs, af, sizeof af));
        free(fs);
        int32_t *is = NULL;
        CHECK(ptq_gguf_get_i32s(&g, "a.i32", &is, &n, &err) == PTQ_OK && n == 4 && !memcmp(is, ai, sizeof ai));
        free(is);
        k = ptq_gguf_find_kv(&g, "a.empty");
        CHECK(k && k->type == PTQ_GGUF_ARRAY && k->elem_type == PTQ_GGUF_U32 && k->count == 0);
        const struct { const char *name; const void *d; size_t n; } want[] = {
            {"v", g_v, sizeof g_v}, {"blk.0.h.weight", g_h, sizeof g_h}, {"q", g_q8, sizeof g_q8}, {"t3", g_t3, sizeof g_t3}};
        for (int i = 0; i < 4; i++) {
            const ptq_gguf_tensor *t = ptq_gguf_find(&g, want[i].name);
            CHECK_MSG(t && t->nbytes == want[i].n && !memcmp(t->data, want[i].d, want[i].n) && t->offset % 32 == 0,
                      "tensor %s differs after the round trip", want[i].name);
        }
        const ptq_gguf_tensor *t3 = ptq_gguf_find(&g, "t3");
        CHECK(t3 && t3->ndim == 3 && t3->ne[0] == 2 && t3->ne[1] == 3 && t3->ne[2] == 2);
        ptq_gguf_close(&g);
    }

    /* llama.cpp's reader */
    char *js = cJSON_Print(exp);
    tu_write_file(jpath, js, strlen(js));
    free(js);
    cJSON_Delete(exp);
    char *gp = tu_ref_path("llama.cpp/gguf-py/gguf/gguf_reader.py");
    *strstr(gp, "/gguf/gguf_reader.py") = 0;
    char cmd[4000];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/gguf_check_expected.py' '%s' '%s' '%s'", PTQ_SOURCE_DIR, gp,
             path, jpath);
    CHECK_MSG(system(cmd) == 0, "gguf-py disagrees with what was written: %s", cmd);
    free(gp);
    /* no temporary file left beside it */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s/rt.gguf.ptq-tmp.%d", tu_tmpdir(), (int)getpid());
    CHECK(access(tmp, F_OK) != 0);
    remove(path);
    remove(jpath);
}

static void test_refusals(void) {
    ptq_gguf_writer *w = NULL;
    OK(ptq_gguf_writer_new(&w, &err));
    if (!w) return;
    OK(ptq_gguf_set_u32(w, "k", 1, &err));
    CHECK(ptq_gguf_set_u32(w, "k", 2, &err) == PTQ_ERR_ARG && strstr(err.msg, "\"k\" set twice"));
    CHECK(ptq_gguf_set_string(w, "general.alignment", "x", &err) == PTQ_ERR_ARG);
    CHECK(ptq_gguf_set_u32(w, "", 2, &err) == PTQ_ERR_ARG);
    uint8_t two = 2;
    CHECK(ptq_gguf_set_scalar(w, "b", PTQ_GGUF_BOOL, &two, &err) == PTQ_ERR_ARG);
    CHECK(ptq_gguf_set_scalar(w, "s", PTQ_GGUF_STRING, "x", &err) == PTQ_ERR_ARG);
    CHECK(ptq_gguf_set_array(w, "nested", PTQ_GGUF_ARRAY, &two, 1, &err) == PTQ_ERR_ARG);
    const char *bad[2] = {"a", NULL};
    CHECK(ptq_gguf_set_array(w, "strs", PTQ_GGUF_STRING, bad, 2, &err) == PTQ_ERR_ARG);
    /* a refused array left nothing behind: the key is free and the file valid */
    OK(ptq_gguf_set_array(w, "strs", PTQ_GGUF_STRING, bad, 1, &err));
    float f[33] = {0};
    const int64_t ne1[1] = {33}, ne2[2] = {33, 1}, ne0[2] = {32, 0};
    OK(ptq_gguf_add_tensor(w, "x", PTQ_GGML_F32, 1, ne1, f, sizeof f, &err));
    CHECK(ptq_gguf_add_tensor(w, "x", PTQ_GGML_F32, 1, ne1, f, sizeof f, &err) == PTQ_ERR_ARG && strstr(err.msg, "twice"));
    CHECK(ptq_gguf_add_tensor(w, "y", PTQ_GGML_F32, 1, ne1, f, 4, &err) == PTQ_ERR_ARG && strstr(err.msg, "132"));
    CHECK(ptq_gguf_add_tensor(w, "q", PTQ_GGML_Q8_0, 2, ne2, f, 34, &err) == PTQ_ERR_ARG && strstr(err.msg, "block"));
    CHECK(ptq_gguf_add_tensor(w, "z", PTQ_GGML_F32, 2, ne0, f, 0, &err) == PTQ_ERR_ARG);
    CHECK(ptq_gguf_add_tensor(w, "u", 99, 1, ne1, f, sizeof f, &err) == PTQ_ERR_ARG);
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = 0;
    CHECK(ptq_gguf_add_tensor(w, longname, PTQ_GGML_F32, 1, ne1, f, sizeof f, &err) == PTQ_ERR_ARG);
    longname[63] = 0;
    OK(ptq_gguf_add_tensor(w, longname, PTQ_GGML_F32, 1, ne1, f, sizeof f, &err));

    /* outputs: not a folder, not an input; a failed save replaces nothing and leaves no file */
    char dir[600], path[600], input[600];
    snprintf(dir, sizeof dir, "%s/outdir", tu_tmpdir());
    mkdir(dir, 0755);
    CHECK(ptq_gguf_writer_save(w, dir, NULL, 0, &err) != PTQ_OK);
    snprintf(input, sizeof input, "%s/input.bin", tu_tmpdir());
    tu_write_file(input, "keep", 4);
    const char *inputs[1] = {input};
    CHECK(ptq_gguf_writer_save(w, input, inputs, 1, &err) != PTQ_OK);
    char *back = NULL;
    size_t n = 0;
    CHECK(ptq_read_file(input, &back, &n, &err) == PTQ_OK && n == 4 && !memcmp(back, "keep", 4));
    free(back);
    snprintf(path, sizeof path, "%s/missing/x.gguf", tu_tmpdir());
    CHECK(ptq_gguf_writer_save(w, path, NULL, 0, &err) != PTQ_OK);
    /* a successful save replaces an older file whole */
    snprintf(path, sizeof path, "%s/ok.gguf", tu_tmpdir());
    tu_write_file(path, "old", 3);
    OK(ptq_gguf_writer_save(w, path, NULL, 0, &err));
    ptq_gguf g;
    CHECK_MSG(ptq_gguf_open(path, &g, &err) == PTQ_OK, "%s", err.msg);
    if (g.n_tensors == 2) {
        CHECK(ptq_gguf_find(&g, longname) != NULL);
        ptq_gguf_close(&g);
    }
    ptq_gguf_writer_free(w);
    remove(path);
    remove(input);
    rmdir(dir);
}

int main(void) {
    test_refusals();
    test_round_trip();
    return tu_done("test_gguf_write");
}
