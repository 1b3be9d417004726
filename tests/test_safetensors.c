/* Safetensors reader/writer: exact conversions against independent references, round trips, and
 * hostile files (every one must fail with the right status and a message naming the file and the
 * tensor or field at fault, and none may crash under ASan). */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "testutil.h"

/* ------------------------------------------------------------------ helpers */

static char *tmp_path(const char *name) {
    static char buf[16][512];
    static int k = 0;
    char *p = buf[k++ % 16];
    snprintf(p, 512, "%s/%s", tu_tmpdir(), name);
    return p;
}

static float f32_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Write an 8-byte little-endian length, the header text as given (no padding) and the data. */
static void write_raw(const char *path, const char *header, const void *data, size_t ndata) {
    size_t hn = strlen(header);
    unsigned char *buf = malloc(8 + hn + ndata + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hn >> (8 * i));
    memcpy(buf + 8, header, hn);
    if (ndata) memcpy(buf + 8 + hn, data, ndata);
    if (tu_write_file(path, buf, 8 + hn + ndata) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    free(buf);
}

/* ptq_st_open must fail with `status`, leave st empty, and its message must contain every string
 * in the NULL-terminated list. */
static void expect_open_fail(int line, const char *path, ptq_status status, ...) {
    ptq_safetensors st;
    ptq_error err = {0};
    ptq_status s = ptq_st_open(path, &st, &err);
    if (s != status) {
        fprintf(stderr, "line %d: %s: expected status %d, got %d (%s)\n", line, path, (int)status, (int)s, err.msg);
        tu_failures++;
    }
    if (s == PTQ_OK) {
        ptq_st_close(&st);
        return;
    }
    CHECK_MSG(st.n_tensors == 0 && st.tensors == NULL && st.maps == NULL, "line %d: st not left empty", line);
    va_list ap;
    va_start(ap, status);
    for (const char *want = va_arg(ap, const char *); want; want = va_arg(ap, const char *)) {
        if (!strstr(err.msg, want)) {
            fprintf(stderr, "line %d: message \"%s\" lacks \"%s\"\n", line, err.msg, want);
            tu_failures++;
        }
    }
    va_end(ap);
}
#define EXPECT_FAIL(path, status, ...) expect_open_fail(__LINE__, path, status, __VA_ARGS__, (const char *)NULL)

static void expect_msg(int line, const ptq_error *err, const char *want) {
    if (!strstr(err->msg, want)) {
        fprintf(stderr, "line %d: message \"%s\" lacks \"%s\"\n", line, err->msg, want);
        tu_failures++;
    }
}
#define EXPECT_MSG(err, want) expect_msg(__LINE__, err, want)

/* ------------------------------------------------------------------ conversions */

/* Independent f16 decoding: sign * (exp == 0 ? man * 2^-24 : (1024 + man) * 2^(exp - 25)). */
static double f16_ref(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

/* Nearest finite-or-inf f16 to x by search over the ordered positive codes, ties to even. */
static uint16_t f16_nearest_ref(float x) {
    double a = fabs((double)x);
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    if (a >= 65520.0) return sign | 0x7c00; /* halfway between 65504 and the next step (65536) and above */
    int lo = 0, hi = 0x7bff;                /* largest code with value <= a */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (f16_ref((uint16_t)mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    int c = lo;
    if (c < 0x7bff) {
        double d0 = a - f16_ref((uint16_t)c), d1 = f16_ref((uint16_t)(c + 1)) - a;
        if (d1 < d0 || (d1 == d0 && (c & 1))) c++;
    }
    return sign | (uint16_t)c;
}

static uint16_t bf16_nearest_ref(float x) {
    uint32_t u = bits_of(x);
    uint16_t t = (uint16_t)(u >> 16);
    double lo = (double)f32_of((uint32_t)t << 16), hi = (double)f32_of((uint32_t)(t + 1) << 16);
    if (isinf(hi) || isnan(hi)) { /* next code is inf: compare with the value 2^128 the rounding step implies */
        hi = ldexp(signbit(x) ? -1.0 : 1.0, 128);
    }
    double d0 = fabs((double)x - lo), d1 = fabs(hi - (double)x);
    if (d1 < d0 || (d1 == d0 && (t & 1))) t++;
    return t;
}

static uint32_t rng_state = 12345;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void test_conversions(void) {
    /* known f16 bit patterns */
    CHECK(ptq_f16_to_f32(0x3c00) == 1.0f);
    CHECK(ptq_f16_to_f32(0xc100) == -2.5f);
    CHECK(ptq_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(ptq_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(ptq_f16_to_f32(0x03ff) == 1023.0f * ldexpf(1.0f, -24));
    CHECK(ptq_f16_to_f32(0x0400) == ldexpf(1.0f, -14));
    CHECK(ptq_f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(bits_of(ptq_f16_to_f32(0x8000)) == 0x80000000u);
    CHECK(isinf(ptq_f16_to_f32(0x7c00)) && ptq_f16_to_f32(0x7c00) > 0);
    CHECK(isinf(ptq_f16_to_f32(0xfc00)) && ptq_f16_to_f32(0xfc00) < 0);
    CHECK(isnan(ptq_f16_to_f32(0x7e00)) && isnan(ptq_f16_to_f32(0x7c01)) && isnan(ptq_f16_to_f32(0xfd00)));

    CHECK(ptq_f32_to_f16(1.0f) == 0x3c00);
    CHECK(ptq_f32_to_f16(-2.5f) == 0xc100);
    CHECK(ptq_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(ptq_f32_to_f16(65519.996f) == 0x7bff);
    CHECK(ptq_f32_to_f16(65520.0f) == 0x7c00); /* tie with an odd mantissa rounds up, into inf */
    CHECK(ptq_f32_to_f16(1e6f) == 0x7c00);
    CHECK(ptq_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(ptq_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001);
    CHECK(ptq_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000);                             /* tie -> even (0) */
    CHECK(ptq_f32_to_f16(nextafterf(ldexpf(1.0f, -25), 1.0f)) == 0x0001);          /* just above the tie */
    CHECK(ptq_f32_to_f16(3.0f * ldexpf(1.0f, -25)) == 0x0002);                      /* 1.5 units -> 2 */
    CHECK(ptq_f32_to_f16(ldexpf(1.0f, -14) - ldexpf(1.0f, -25)) == 0x0400);        /* 1023.5 units -> 1024 */
    CHECK(ptq_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00);                      /* tie -> even */
    CHECK(ptq_f32_to_f16(1.0f + 3.0f * ldexpf(1.0f, -11)) == 0x3c02);               /* tie -> even */
    CHECK(ptq_f32_to_f16(-0.0f) == 0x8000);
    CHECK(ptq_f32_to_f16(1e-10f) == 0x0000);
    uint16_t hn = ptq_f32_to_f16(NAN);
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0);

    /* bf16 */
    CHECK(ptq_bf16_to_f32(0x4049) == 3.140625f);
    CHECK(ptq_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(ptq_bf16_to_f32(0xc020) == -2.5f);
    CHECK(ptq_f32_to_bf16(3.140625f) == 0x4049);
    CHECK(ptq_f32_to_bf16(3.14159265f) == 0x4049);
    CHECK(ptq_f32_to_bf16(f32_of(0x3f808000u)) == 0x3f80); /* tie -> even */
    CHECK(ptq_f32_to_bf16(f32_of(0x3f818000u)) == 0x3f82); /* tie -> even */
    CHECK(ptq_f32_to_bf16(f32_of(0x3f808001u)) == 0x3f81);
    CHECK(ptq_f32_to_bf16(FLT_MAX) == 0x7f80);
    CHECK(ptq_f32_to_bf16(-INFINITY) == 0xff80);
    uint16_t bn = ptq_f32_to_bf16(f32_of(0xff800001u)); /* signalling NaN stays a (quiet) NaN with its sign */
    CHECK((bn & 0xff80) == 0xff80 && (bn & 0x7f) != 0);

    /* every f16 code decodes like the independent formula, and finite codes round-trip */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ptq_f16_to_f32((uint16_t)h);
        int e = (h >> 10) & 31;
        if (e == 31) {
            if ((h & 1023) ? !isnan(f) : !isinf(f)) bad++;
            continue;
        }
        if ((double)f != f16_ref((uint16_t)h) || (signbit(f) != 0) != (h >> 15 != 0)) bad++;
        if (ptq_f32_to_f16(f) != h) bad++;
    }
    CHECK_MSG(bad == 0, "%d f16 codes decode or round-trip wrongly", bad);

    /* random floats (all magnitudes, plus the f16 range densely) against nearest-even references */
    int bad16 = 0, bad_bf = 0;
    for (int i = 0; i < 300000; i++) {
        uint32_t u = rng();
        if (i & 1) u = (u & 0x80000000u) | (0x33000000u + u % (0x47800000u - 0x33000000u)); /* 2^-25..2^16 */
        float x = f32_of(u);
        if (isnan(x)) continue;
        if (ptq_f32_to_f16(x) != f16_nearest_ref(x)) {
            if (bad16++ < 5) fprintf(stderr, "f16 of %a: got %04x want %04x\n", x, ptq_f32_to_f16(x), f16_nearest_ref(x));
        }
        if (!isinf(x) && ptq_f32_to_bf16(x) != bf16_nearest_ref(x)) {
            if (bad_bf++ < 5) fprintf(stderr, "bf16 of %a: got %04x want %04x\n", x, ptq_f32_to_bf16(x), bf16_nearest_ref(x));
        }
    }
    CHECK(bad16 == 0);
    CHECK(bad_bf == 0);
    /* also every tie and near-tie around each f16 code of moderate size */
    int bad_tie = 0;
    for (uint32_t h = 1; h < 0x7bff; h += 7) {
        float a = ptq_f16_to_f32((uint16_t)h), b = ptq_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)a + (double)b) / 2); /* exact in f32 */
        float probes[3] = {mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 3; k++)
            if (ptq_f32_to_f16(probes[k]) != f16_nearest_ref(probes[k])) bad_tie++;
    }
    CHECK(bad_tie == 0);

    CHECK(strcmp(ptq_dtype_name(PTQ_DT_BF16), "BF16") == 0 && ptq_dtype_size(PTQ_DT_F64) == 8);
    ptq_dtype d;
    CHECK(ptq_dtype_from_name("BOOL", &d) == 0 && d == PTQ_DT_BOOL);
    CHECK(ptq_dtype_from_name("F8_E9", &d) != 0);
}

/* ------------------------------------------------------------------ round trip */

static const float k_vals[6] = {1.0f, -2.5f, 65504.0f, 0x1p-24f, 0.5f, -0.0f};
static const uint16_t k_vals_f16[6] = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x3800, 0x8000};
static const uint16_t k_vals_bf16[6] = {0x3f80, 0xc020, 0x4780, 0x3380, 0x3f00, 0x8000}; /* 65504 rounds to 65536 */

/* Writes the round-trip file; returns its size. */
static long write_valid(const char *path) {
    ptq_st_writer *w = NULL;
    ptq_error err = {0};
    CHECK(ptq_st_writer_new(&w, &err) == PTQ_OK);
    int64_t s23[2] = {2, 3}, s5[1] = {5}, s2[1] = {2}, s04[2] = {0, 4}, s1[1] = {1};
    uint8_t u8[5] = {1, 2, 3, 254, 255};
    int32_t i32[2] = {-7, 1 << 30};
    double f64[2] = {1.5, -1e-3};
    float bf_single = 3.140625f;
    CHECK(ptq_st_writer_add(w, "u8", PTQ_DT_U8, 1, s5, u8, sizeof u8, &err) == PTQ_OK); /* odd size first */
    CHECK(ptq_st_writer_add_f32(w, "w.f32", PTQ_DT_F32, 2, s23, k_vals, &err) == PTQ_OK);
    CHECK(ptq_st_writer_add_f32(w, "w.f16", PTQ_DT_F16, 2, s23, k_vals, &err) == PTQ_OK);
    CHECK(ptq_st_writer_add_f32(w, "w.bf16", PTQ_DT_BF16, 2, s23, k_vals, &err) == PTQ_OK);
    CHECK(ptq_st_writer_add_f32(w, "pi.bf16", PTQ_DT_BF16, 1, s1, &bf_single, &err) == PTQ_OK);
    CHECK(ptq_st_writer_add(w, "d", PTQ_DT_F64, 1, s2, f64, sizeof f64, &err) == PTQ_OK);
    CHECK(ptq_st_writer_add(w, "i", PTQ_DT_I32, 1, s2, i32, sizeof i32, &err) == PTQ_OK);
    CHECK(ptq_st_writer_add(w, "empty", PTQ_DT_F32, 2, s04, NULL, 0, &err) == PTQ_OK);
    float scalar = 42.0f;
    CHECK(ptq_st_writer_add(w, "scalar", PTQ_DT_F32, 0, NULL, &scalar, 4, &err) == PTQ_OK);
    CHECK(ptq_st_writer_set_metadata(w, "format", "pt", &err) == PTQ_OK);
    CHECK(ptq_st_writer_set_metadata(w, "method", "gptq", &err) == PTQ_OK);
    CHECK(ptq_st_writer_set_metadata(w, "method", "rtn \"quoted\"", &err) == PTQ_OK); /* replaces */
    CHECK(ptq_st_writer_count(w) == 9);
    CHECK_MSG(ptq_st_writer_save(w, path, &err) == PTQ_OK, "%s", err.msg);
    ptq_st_writer_free(w);
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void test_round_trip(void) {
    const char *path = tmp_path("valid.safetensors");
    long size = write_valid(path);
    CHECK(size > 0);

    /* raw layout checks: 8-byte aligned header padded with spaces, starting with '{' */
    char *raw = NULL;
    {
        FILE *f = fopen(path, "rb");
        raw = malloc((size_t)size);
        CHECK(f && fread(raw, 1, (size_t)size, f) == (size_t)size);
        if (f) fclose(f);
    }
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | (unsigned char)raw[i];
    CHECK(hn % 8 == 0 && raw[8] == '{' && 8 + hn <= (uint64_t)size);
    CHECK(raw[8 + hn - 1] == '}' || raw[8 + hn - 1] == ' ');

    ptq_safetensors st;
    ptq_error err = {0};
    CHECK_MSG(ptq_st_open(path, &st, &err) == PTQ_OK, "%s", err.msg);
    CHECK(st.n_tensors == 9 && st.n_files == 1);
    for (int i = 1; i < st.n_tensors; i++) CHECK(strcmp(st.tensors[i - 1].name, st.tensors[i].name) < 0);
    /* tensors aligned to their element size within the file, and inside the mapping */
    for (int i = 0; i < st.n_tensors; i++) {
        const ptq_st_tensor *t = &st.tensors[i];
        size_t off = (size_t)(t->data - st.maps[0].data);
        CHECK_MSG(off % ptq_dtype_size(t->dtype) == 0, "%s at offset %zu", t->name, off);
        CHECK(off + t->nbytes <= st.maps[0].size);
    }
    const ptq_st_tensor *t = ptq_st_find(&st, "w.f16");
    CHECK(t && t->dtype == PTQ_DT_F16 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6 &&
          t->nbytes == 12);
    if (t) CHECK(memcmp(t->data, k_vals_f16, 12) == 0); /* exact stored bits */
    t = ptq_st_find(&st, "w.bf16");
    if (t) CHECK(memcmp(t->data, k_vals_bf16, 12) == 0);
    t = ptq_st_find(&st, "pi.bf16");
    CHECK(t && t->data[0] == 0x49 && t->data[1] == 0x40);
    t = ptq_st_find(&st, "w.f32");
    if (t) CHECK(memcmp(t->data, k_vals, 24) == 0);
    t = ptq_st_find(&st, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1);
    t = ptq_st_find(&st, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0 && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 4);
    t = ptq_st_find(&st, "u8");
    CHECK(t && t->dtype == PTQ_DT_U8 && t->data[3] == 254);
    t = ptq_st_find(&st, "i");
    if (t) {
        int32_t v[2];
        memcpy(v, t->data, 8);
        CHECK(v[0] == -7 && v[1] == 1 << 30);
    }

    float out[6];
    int64_t s23[2] = {2, 3};
    CHECK(ptq_st_read_f32(&st, "w.f32", 2, s23, out, &err) == PTQ_OK);
    for (int i = 0; i < 6; i++) CHECK(bits_of(out[i]) == bits_of(k_vals[i]));
    CHECK(ptq_st_read_f32(&st, "w.f16", 2, s23, out, &err) == PTQ_OK);
    for (int i = 0; i < 6; i++) CHECK(bits_of(out[i]) == bits_of(k_vals[i])); /* all exactly representable */
    CHECK(ptq_st_read_f32(&st, "w.bf16", -1, NULL, out, &err) == PTQ_OK);
    const float bf_expect[6] = {1.0f, -2.5f, 65536.0f, 0x1p-24f, 0.5f, -0.0f};
    for (int i = 0; i < 6; i++) CHECK(bits_of(out[i]) == bits_of(bf_expect[i]));
    CHECK(ptq_st_read_f32(&st, "pi.bf16", 1, (int64_t[]){1}, out, &err) == PTQ_OK && out[0] == 3.140625f);
    CHECK(ptq_st_read_f32(&st, "d", 1, (int64_t[]){2}, out, &err) == PTQ_OK && out[0] == 1.5f && out[1] == -1e-3f);
    CHECK(ptq_st_read_f32(&st, "scalar", 0, NULL, out, &err) == PTQ_OK && out[0] == 42.0f);
    CHECK(ptq_st_read_f32(&st, "empty", 2, (int64_t[]){0, 4}, NULL, &err) == PTQ_OK);

    /* metadata */
    CHECK(st.metadata_json && strstr(st.metadata_json, "\"format\":\"pt\""));
    const char *m = ptq_st_metadata(&st, "method");
    CHECK(m && strcmp(m, "rtn \"quoted\"") == 0);
    CHECK(ptq_st_metadata(&st, "format") && strcmp(ptq_st_metadata(&st, "format"), "pt") == 0);
    CHECK(ptq_st_metadata(&st, "nope") == NULL);

    /* lookups that must fail */
    CHECK(ptq_st_find(&st, "missing.weight") == NULL);
    err = (ptq_error){0};
    CHECK(ptq_st_read_f32(&st, "missing.weight", -1, NULL, out, &err) == PTQ_ERR_FORMAT);
    EXPECT_MSG(&err, "missing.weight");
    EXPECT_MSG(&err, "valid.safetensors");
    err = (ptq_error){0};
    CHECK(ptq_st_read_f32(&st, "w.f32", 2, (int64_t[]){3, 2}, out, &err) == PTQ_ERR_CONFIG);
    char want[1024];
    snprintf(want, sizeof want, "%s: tensor w.f32 has shape [2, 3], expected [3, 2]", path);
    CHECK_MSG(strcmp(err.msg, want) == 0, "got \"%s\"", err.msg);
    err = (ptq_error){0};
    CHECK(ptq_st_read_f32(&st, "w.f32", 1, (int64_t[]){6}, out, &err) == PTQ_ERR_CONFIG);
    EXPECT_MSG(&err, "expected [6]");
    err = (ptq_error){0};
    CHECK(ptq_st_read_f32(&st, "i", -1, NULL, out, &err) == PTQ_ERR_UNSUPPORTED);
    EXPECT_MSG(&err, "I32");
    EXPECT_MSG(&err, "tensor i ");
    ptq_st_close(&st);
    ptq_st_close(&st); /* closing twice is harmless */

    /* every truncation of the valid file fails cleanly: the last tensor ends at the end of the file */
    const char *tp = tmp_path("trunc.safetensors");
    int trunc_ok = 0;
    for (long len = 0; len < size; len++) {
        CHECK(tu_write_file(tp, raw, (size_t)len) == 0);
        ptq_error e = {0};
        ptq_status s = ptq_st_open(tp, &st, &e);
        if (s == PTQ_OK) {
            trunc_ok++;
            fprintf(stderr, "truncated to %ld of %ld bytes, yet it opened\n", len, size);
            ptq_st_close(&st);
        } else if (!strstr(e.msg, tp)) {
            fprintf(stderr, "truncated to %ld: message lacks the path: %s\n", len, e.msg);
            tu_failures++;
        }
    }
    CHECK(trunc_ok == 0);

    /* random corruption of the header: must never crash; whatever opens lies inside the mapping */
    const char *fp = tmp_path("fuzz.safetensors");
    char *mut = malloc((size_t)size);
    int opened = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(mut, raw, (size_t)size);
        int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = rng() % (size_t)(8 + hn);
            static const char pool[] = "0123456789{}[],:\" -.eE\\aF";
            mut[pos] = (rng() & 1) ? (char)rng() : pool[rng() % (sizeof pool - 1)];
        }
        tu_write_file(fp, mut, (size_t)size);
        ptq_error e = {0};
        if (ptq_st_open(fp, &st, &e) == PTQ_OK) {
            opened++;
            for (int i = 0; i < st.n_tensors; i++) {
                const ptq_st_tensor *x = &st.tensors[i];
                CHECK(x->data >= st.maps[0].data && x->data + x->nbytes <= st.maps[0].data + st.maps[0].size);
                float *buf = malloc(x->numel ? (size_t)x->numel * sizeof(float) : 1);
                ptq_st_read_f32(&st, x->name, -1, NULL, buf, &e);
                free(buf);
            }
            ptq_st_close(&st);
        } else {
            CHECK(e.status != PTQ_OK && strstr(e.msg, "fuzz.safetensors"));
        }
    }
    printf("fuzz: %d of 3000 corrupted headers still opened (harmless edits)\n", opened);
    free(mut);
    free(raw);
}

/* A hand-built file (independent of the writer) with an unaligned F32 tensor. */
static void test_hand_built(void) {
    const char *path = tmp_path("hand.safetensors");
    /* header length 85: not a multiple of 8, so "b" starts at an odd file offset */
    const char *hdr =
        "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    unsigned char data[8] = {0x00, 0x3c, 0x00, 0xc1, 0, 0, 0, 0};
    float b = -0.15625f;
    memcpy(data + 4, &b, 4);
    write_raw(path, hdr, data, 8);
    ptq_safetensors st;
    ptq_error err = {0};
    CHECK_MSG(ptq_st_open(path, &st, &err) == PTQ_OK, "%s", err.msg);
    float out[2] = {0};
    CHECK(ptq_st_read_f32(&st, "a", 1, (int64_t[]){2}, out, &err) == PTQ_OK && out[0] == 1.0f && out[1] == -2.5f);
    const ptq_st_tensor *t = ptq_st_find(&st, "b");
    CHECK(t && ((uintptr_t)t->data & 3) != 0); /* really unaligned */
    CHECK(ptq_st_read_f32(&st, "b", 1, (int64_t[]){1}, out, &err) == PTQ_OK && out[0] == -0.15625f);
    CHECK(st.metadata_json == NULL && ptq_st_metadata(&st, "format") == NULL);
    ptq_st_close(&st);
}

/* ------------------------------------------------------------------ hostile single files */

static void test_hostile(void) {
    char p[64][512];
    int k = 0;
#define P(name) (snprintf(p[k], 512, "%s/%s", tu_tmpdir(), name), p[k++])
    unsigned char zeros[64] = {0};

    const char *x = P("empty.safetensors");
    tu_write_file(x, "", 0);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "empty.safetensors", "empty");

    x = P("tiny.safetensors");
    tu_write_file(x, "\x10\0\0", 3);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "tiny.safetensors", "too short");

    x = P("missing-file.safetensors");
    EXPECT_FAIL(x, PTQ_ERR_IO, "missing-file.safetensors");

    x = P("hlen0.safetensors");
    tu_write_file(x, zeros, 16);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "hlen0.safetensors", "header length is 0");

    x = P("hlen_past.safetensors");
    {
        unsigned char b[24] = {0xe8, 0x03}; /* 1000 */
        memcpy(b + 8, "{\"a\":1}        ", 16);
        tu_write_file(x, b, sizeof b);
    }
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "hlen_past.safetensors", "header length 1000", "past the end");

    x = P("hlen_huge.safetensors");
    {
        unsigned char b[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
        tu_write_file(x, b, sizeof b);
    }
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "hlen_huge.safetensors", "header length");

    /* header above the 100 MB limit, in a sparse file big enough to hold it */
    x = P("hlen_100mb.safetensors");
    {
        FILE *f = fopen(x, "wb");
        uint64_t n = 100000001;
        unsigned char b[9];
        for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
        b[8] = '{';
        fwrite(b, 1, 9, f);
        fclose(f);
        CHECK(truncate(x, 100000100) == 0);
    }
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "hlen_100mb.safetensors", "100000001", "limit");
    unlink(x);

    x = P("notjson.safetensors");
    write_raw(x, "{\"w\": {\"dtype\": \"F32\", \"shape\": [1, oops", zeros, 4);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "notjson.safetensors", "not valid JSON", "oops");

    x = P("notobject.safetensors");
    write_raw(x, "[1, 2, 3]", zeros, 0);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "notobject.safetensors", "'{'");

    x = P("trailing.safetensors");
    write_raw(x, "{} garbage", zeros, 0);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "trailing.safetensors", "garbage");

    x = P("entry_not_object.safetensors");
    write_raw(x, "{\"w\": [1, 2]}", zeros, 0);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "entry_not_object.safetensors", "\"w\"");

    x = P("offsets_range.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", zeros, 16);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "offsets_range.safetensors", "\"w\"", "data_offsets [0, 400]", "16 bytes");

    x = P("offsets_reversed.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", zeros, 16);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "offsets_reversed.safetensors", "\"w\"", "[8, 4]");

    x = P("offsets_neg.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", zeros, 16);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "offsets_neg.safetensors", "\"w\"", "data_offsets");

    x = P("offsets_three.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", zeros, 16);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "offsets_three.safetensors", "\"w\"", "data_offsets");

    x = P("offsets_missing.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", zeros, 16);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "offsets_missing.safetensors", "\"w\"", "data_offsets");

    x = P("offsets_huge.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1e300,1e300]}}", zeros, 16);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "offsets_huge.safetensors", "\"w\"", "data_offsets");

    x = P("overlap.safetensors");
    write_raw(x,
              "{\"first\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"second\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
              zeros, 12);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "overlap.safetensors", "\"first\"", "\"second\"", "overlap");

    x = P("same_range.safetensors"); /* identical ranges: also an overlap */
    write_raw(x,
              "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"a\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
              zeros, 8);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "same_range.safetensors", "\"a\"", "\"b\"", "overlap");

    x = P("empty_inside.safetensors"); /* a zero-size tensor occupies no bytes: fine */
    write_raw(x,
              "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"z\":{\"dtype\":\"F32\",\"shape\":[0, 3],\"data_offsets\":[4,4]}}",
              zeros, 8);
    {
        ptq_safetensors st;
        ptq_error err = {0};
        CHECK_MSG(ptq_st_open(x, &st, &err) == PTQ_OK, "%s", err.msg);
        ptq_st_close(&st);
    }

    x = P("size_mismatch.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "size_mismatch.safetensors", "\"w\"", "needs 12", "[3]");

    x = P("bad_dtype.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F8_E9\",\"shape\":[4],\"data_offsets\":[0,4]}}", zeros, 4);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "bad_dtype.safetensors", "\"w\"", "F8_E9");

    x = P("dtype_number.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "dtype_number.safetensors", "\"w\"", "dtype");

    x = P("neg_shape.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "neg_shape.safetensors", "\"w\"", "shape[0]", "-1");

    x = P("frac_shape.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,12]}}", zeros, 12);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "frac_shape.safetensors", "\"w\"", "shape[1]");

    x = P("str_shape.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "str_shape.safetensors", "\"w\"", "shape[0]");

    x = P("ninedims.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", zeros, 1);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "ninedims.safetensors", "\"w\"", "9 dimensions");

    x = P("overflow_shape.safetensors");
    write_raw(x,
              "{\"w\":{\"dtype\":\"F64\",\"shape\":[9007199254740992,9007199254740992,4],\"data_offsets\":[0,8]}}",
              zeros, 8);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "overflow_shape.safetensors", "\"w\"", "overflows");

    x = P("overflow_bytes.safetensors"); /* numel fits in int64, numel * 8 does not */
    write_raw(x, "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,8]}}", zeros, 8);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "overflow_bytes.safetensors", "\"w\"");

    x = P("shape_missing.safetensors");
    write_raw(x, "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", zeros, 4);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "shape_missing.safetensors", "\"w\"", "shape");

    x = P("dup.safetensors");
    write_raw(x,
              "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
              zeros, 8);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "dup.safetensors", "\"w\"", "twice");

    x = P("meta_not_string.safetensors");
    write_raw(x, "{\"__metadata__\":{\"format\":\"pt\",\"bits\":4}}", zeros, 0);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "meta_not_string.safetensors", "__metadata__", "\"bits\"");

    x = P("meta_not_object.safetensors");
    write_raw(x, "{\"__metadata__\":\"pt\"}", zeros, 0);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "meta_not_object.safetensors", "__metadata__");

    x = P("meta_twice.safetensors");
    write_raw(x, "{\"__metadata__\":{},\"__metadata__\":{}}", zeros, 0);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "meta_twice.safetensors", "__metadata__");

    x = P("meta_dup_key.safetensors");
    write_raw(x, "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", zeros, 0);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "meta_dup_key.safetensors", "\"k\"");

    x = P("deep.safetensors"); /* nesting far beyond any real header */
    {
        char *h = malloc(20000);
        strcpy(h, "{\"w\":");
        size_t n = strlen(h);
        for (int i = 0; i < 5000; i++) h[n++] = '[';
        for (int i = 0; i < 5000; i++) h[n++] = ']';
        h[n++] = '}';
        h[n] = 0;
        write_raw(x, h, zeros, 0);
        free(h);
    }
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "deep.safetensors");

    x = P("nul_in_header.safetensors");
    {
        unsigned char b[8 + 12] = {12};
        memcpy(b + 8, "{\"a\"\0:1}    ", 12);
        tu_write_file(x, b, sizeof b);
    }
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "nul_in_header.safetensors", "NUL byte at offset 4");

    /* a data section cut short in a one-tensor file names the tensor */
    x = P("cut.safetensors");
    write_raw(x, "{\"weights\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", zeros, 13);
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "cut.safetensors", "\"weights\"", "data_offsets [0, 16]");

    /* bad values on read */
    x = P("nan.safetensors");
    {
        float v[8] = {0, 1, 2, 3, 4, NAN, 6, INFINITY};
        write_raw(x, "{\"layer.w\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]}}", v, sizeof v);
        ptq_safetensors st;
        ptq_error err = {0};
        float out[8];
        CHECK(ptq_st_open(x, &st, &err) == PTQ_OK);
        CHECK(ptq_st_read_f32(&st, "layer.w", 2, (int64_t[]){2, 4}, out, &err) == PTQ_ERR_NUMERIC);
        EXPECT_MSG(&err, "nan.safetensors");
        EXPECT_MSG(&err, "layer.w");
        EXPECT_MSG(&err, "NaN at flat index 5");
        ptq_st_close(&st);
    }
    x = P("inf16.safetensors");
    {
        uint16_t v[4] = {0x3c00, 0x3c00, 0xfc00, 0x7e00};
        write_raw(x, "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", v, sizeof v);
        ptq_safetensors st;
        ptq_error err = {0};
        float out[4];
        CHECK(ptq_st_open(x, &st, &err) == PTQ_OK);
        CHECK(ptq_st_read_f32(&st, "h", -1, NULL, out, &err) == PTQ_ERR_NUMERIC);
        EXPECT_MSG(&err, "inf16.safetensors");
        EXPECT_MSG(&err, "tensor h ");
        EXPECT_MSG(&err, "-Inf at flat index 2");
        ptq_st_close(&st);
    }
    x = P("nanbf16.safetensors");
    {
        uint16_t v[3] = {0x3f80, 0x7fc0, 0};
        write_raw(x, "{\"g\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}", v, sizeof v);
        ptq_safetensors st;
        ptq_error err = {0};
        float out[3];
        CHECK(ptq_st_open(x, &st, &err) == PTQ_OK);
        CHECK(ptq_st_read_f32(&st, "g", -1, NULL, out, &err) == PTQ_ERR_NUMERIC);
        EXPECT_MSG(&err, "NaN at flat index 1");
        ptq_st_close(&st);
    }
    x = P("f64range.safetensors");
    {
        double v[3] = {1.0, -1e300, 2.0};
        write_raw(x, "{\"d\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,24]}}", v, sizeof v);
        ptq_safetensors st;
        ptq_error err = {0};
        float out[3];
        CHECK(ptq_st_open(x, &st, &err) == PTQ_OK);
        CHECK(ptq_st_read_f32(&st, "d", -1, NULL, out, &err) == PTQ_ERR_NUMERIC);
        EXPECT_MSG(&err, "f64range.safetensors");
        EXPECT_MSG(&err, "flat index 1");
        EXPECT_MSG(&err, "float32 range");
        ptq_st_close(&st);
    }
#undef P
}

/* ------------------------------------------------------------------ sharded */

static void write_shard(const char *path, const char *const *names, const float *base_val, int n, int with_meta) {
    ptq_st_writer *w = NULL;
    ptq_error err = {0};
    CHECK(ptq_st_writer_new(&w, &err) == PTQ_OK);
    for (int i = 0; i < n; i++) {
        float v[3] = {base_val[i], base_val[i] + 1, base_val[i] + 2};
        CHECK(ptq_st_writer_add_f32(w, names[i], PTQ_DT_F32, 1, (int64_t[]){3}, v, &err) == PTQ_OK);
    }
    if (with_meta) CHECK(ptq_st_writer_set_metadata(w, "format", "pt", &err) == PTQ_OK);
    CHECK_MSG(ptq_st_writer_save(w, path, &err) == PTQ_OK, "%s", err.msg);
    ptq_st_writer_free(w);
}

static void test_sharded(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sharded", tu_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    char s1[600], s2[600], idx[600];
    snprintf(s1, sizeof s1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(s2, sizeof s2, "%s/model-00002-of-00002.safetensors", dir);
    const char *n1[2] = {"layers.0.w", "embed"};
    const char *n2[2] = {"layers.1.w", "norm"};
    write_shard(s1, n1, (float[]){10, 20}, 2, 1);
    write_shard(s2, n2, (float[]){30, 40}, 2, 0);

    /* valid index, and leading whitespace before '{' */
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    const char *good =
        "  \n{\"metadata\": {\"total_size\": 48},\n \"weight_map\": {\n"
        "  \"embed\": \"model-00001-of-00002.safetensors\",\n"
        "  \"layers.0.w\": \"model-00001-of-00002.safetensors\",\n"
        "  \"layers.1.w\": \"model-00002-of-00002.safetensors\",\n"
        "  \"norm\": \"model-00002-of-00002.safetensors\"}}\n";
    tu_write_file(idx, good, strlen(good));
    ptq_safetensors st;
    ptq_error err = {0};
    CHECK_MSG(ptq_st_open(idx, &st, &err) == PTQ_OK, "%s", err.msg);
    CHECK(st.n_files == 2 && st.n_tensors == 4);
    const char *order[4] = {"embed", "layers.0.w", "layers.1.w", "norm"};
    const float first[4] = {20, 10, 30, 40};
    const int file[4] = {0, 0, 1, 1};
    for (int i = 0; i < st.n_tensors && i < 4; i++) {
        CHECK(strcmp(st.tensors[i].name, order[i]) == 0);
        float v[3];
        CHECK(ptq_st_read_f32(&st, order[i], 1, (int64_t[]){3}, v, &err) == PTQ_OK);
        CHECK(v[0] == first[i] && v[2] == first[i] + 2);
        const ptq_st_tensor *t = ptq_st_find(&st, order[i]);
        CHECK(t && t->file == file[i]);
        if (t) CHECK(strstr(st.file_paths[t->file], file[i] ? "00002-of" : "00001-of") != NULL);
    }
    CHECK(ptq_st_metadata(&st, "format") && strcmp(ptq_st_metadata(&st, "format"), "pt") == 0);
    err = (ptq_error){0};
    CHECK(ptq_st_read_f32(&st, "norm", 2, (int64_t[]){1, 3}, (float[3]){0}, &err) == PTQ_ERR_CONFIG);
    EXPECT_MSG(&err, "model-00002-of-00002.safetensors: tensor norm has shape [3], expected [1, 3]");
    ptq_st_close(&st);

    /* the kind is recognised from the content, not the name */
    char idx2[600];
    snprintf(idx2, sizeof idx2, "%s/index-without-extension", dir);
    tu_write_file(idx2, good, strlen(good));
    CHECK(ptq_st_open(idx2, &st, &err) == PTQ_OK && st.n_tensors == 4);
    ptq_st_close(&st);

    char bad[600];
#define INDEX(name, text) (snprintf(bad, sizeof bad, "%s/%s", dir, name), tu_write_file(bad, text, strlen(text)), bad)
    const char *x = INDEX("missing_shard.index.json",
                          "{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\","
                          " \"extra\": \"model-00003-of-00003.safetensors\"}}");
    EXPECT_FAIL(x, PTQ_ERR_IO, "missing_shard.index.json", "model-00003-of-00003.safetensors");

    x = INDEX("absent_tensor.index.json",
              "{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\","
              " \"lm_head\": \"model-00002-of-00002.safetensors\"}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "absent_tensor.index.json", "\"lm_head\"", "model-00002-of-00002.safetensors");

    x = INDEX("wrong_shard.index.json",
              "{\"weight_map\": {\"embed\": \"model-00002-of-00002.safetensors\","
              " \"layers.0.w\": \"model-00001-of-00002.safetensors\"}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "wrong_shard.index.json", "\"embed\"", "model-00002-of-00002.safetensors");

    /* the same tensor name in two shards */
    char s3[600];
    snprintf(s3, sizeof s3, "%s/other.safetensors", dir);
    write_shard(s3, (const char *const[]){"embed"}, (float[]){0}, 1, 0);
    x = INDEX("collision.index.json",
              "{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\","
              " \"x\": \"other.safetensors\"}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "collision.index.json", "\"embed\"", "two shards");

    x = INDEX("no_map.index.json", "{\"metadata\": {}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "no_map.index.json", "weight_map");

    x = INDEX("empty_map.index.json", "{\"weight_map\": {}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "empty_map.index.json", "weight_map");

    x = INDEX("escape.index.json", "{\"weight_map\": {\"embed\": \"../sharded/model-00001-of-00002.safetensors\"}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "escape.index.json", "\"embed\"");

    x = INDEX("absolute.index.json", "{\"weight_map\": {\"embed\": \"/etc/passwd\"}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "absolute.index.json", "\"embed\"");

    x = INDEX("non_string.index.json", "{\"weight_map\": {\"embed\": 3}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "non_string.index.json", "\"embed\"");

    x = INDEX("dup_entry.index.json",
              "{\"weight_map\": {\"embed\": \"model-00001-of-00002.safetensors\","
              " \"embed\": \"model-00001-of-00002.safetensors\"}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "dup_entry.index.json", "\"embed\"", "twice");

    x = INDEX("broken.index.json", "{\"weight_map\": {\"embed\":\n  oops }");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "broken.index.json", "not valid JSON", "line 2");

    /* a shard that is itself broken: both the index and the shard are named */
    char s4[600];
    snprintf(s4, sizeof s4, "%s/broken.safetensors", dir);
    write_raw(s4, "{\"q\":{\"dtype\":\"F32\",\"shape\":[9],\"data_offsets\":[0,36]}}", "abcd", 4);
    x = INDEX("broken_shard.index.json", "{\"weight_map\": {\"q\": \"broken.safetensors\"}}");
    EXPECT_FAIL(x, PTQ_ERR_FORMAT, "broken_shard.index.json", "broken.safetensors", "\"q\"");
#undef INDEX
}

/* ------------------------------------------------------------------ writer */

static int dir_has_tmp(const char *dir, const char *prefix) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '^%s.*tmp'", dir, prefix);
    return system(cmd) == 0;
}

static void test_writer(void) {
    ptq_st_writer *w = NULL;
    ptq_error err = {0};
    CHECK(ptq_st_writer_new(&w, &err) == PTQ_OK);
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    int64_t s4[1] = {4};
    CHECK(ptq_st_writer_add(w, "copied", PTQ_DT_F32, 1, s4, a, sizeof a, &err) == PTQ_OK);
    CHECK(ptq_st_writer_add_ref(w, "referenced", PTQ_DT_F32, 1, s4, b, sizeof b, &err) == PTQ_OK);
    a[0] = 100; /* not seen: copied */
    b[0] = 200; /* seen: referenced */

    /* bad additions */
    err = (ptq_error){0};
    CHECK(ptq_st_writer_add(w, "short", PTQ_DT_F32, 1, s4, a, 12, &err) == PTQ_ERR_ARG);
    EXPECT_MSG(&err, "\"short\"");
    CHECK(ptq_st_writer_add(w, "neg", PTQ_DT_F32, 1, (int64_t[]){-4}, a, 16, &err) == PTQ_ERR_ARG);
    EXPECT_MSG(&err, "\"neg\"");
    CHECK(ptq_st_writer_add(w, "__metadata__", PTQ_DT_F32, 1, s4, a, 16, &err) == PTQ_ERR_ARG);
    CHECK(ptq_st_writer_add(w, "", PTQ_DT_F32, 1, s4, a, 16, &err) == PTQ_ERR_ARG);
    CHECK(ptq_st_writer_add(w, "dims", PTQ_DT_F32, 9, (int64_t[9]){1, 1, 1, 1, 1, 1, 1, 1, 4}, a, 16, &err) ==
          PTQ_ERR_ARG);
    CHECK(ptq_st_writer_add_f32(w, "asint", PTQ_DT_I8, 1, s4, a, &err) == PTQ_ERR_ARG);
    CHECK(ptq_st_writer_count(w) == 2);

    const char *path = tmp_path("writer.safetensors");
    CHECK_MSG(ptq_st_writer_save(w, path, &err) == PTQ_OK, "%s", err.msg);
    ptq_safetensors st;
    float out[4];
    CHECK(ptq_st_open(path, &st, &err) == PTQ_OK);
    CHECK(ptq_st_read_f32(&st, "copied", 1, s4, out, &err) == PTQ_OK && out[0] == 1 && out[3] == 4);
    CHECK(ptq_st_read_f32(&st, "referenced", 1, s4, out, &err) == PTQ_OK && out[0] == 200 && out[3] == 8);
    ptq_st_close(&st);

    /* a duplicate name fails the save and leaves neither the file nor a temporary behind */
    CHECK(ptq_st_writer_add(w, "copied", PTQ_DT_F32, 1, s4, a, sizeof a, &err) == PTQ_OK);
    const char *dup = tmp_path("dup-out.safetensors");
    err = (ptq_error){0};
    CHECK(ptq_st_writer_save(w, dup, &err) == PTQ_ERR_ARG);
    EXPECT_MSG(&err, "\"copied\"");
    EXPECT_MSG(&err, "dup-out.safetensors");
    CHECK(access(dup, F_OK) != 0);
    CHECK(!dir_has_tmp(tu_tmpdir(), "dup-out"));
    ptq_st_writer_free(w);

    /* an unwritable destination: I/O error naming it, nothing left behind */
    CHECK(ptq_st_writer_new(&w, &err) == PTQ_OK);
    CHECK(ptq_st_writer_add(w, "x", PTQ_DT_F32, 1, s4, a, sizeof a, &err) == PTQ_OK);
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/out.safetensors", tu_tmpdir());
    err = (ptq_error){0};
    CHECK(ptq_st_writer_save(w, nodir, &err) == PTQ_ERR_IO);
    EXPECT_MSG(&err, "no/such/dir/out.safetensors");

    /* saving over an existing file replaces it atomically; the writer is reusable */
    CHECK(ptq_st_writer_save(w, path, &err) == PTQ_OK);
    CHECK(ptq_st_open(path, &st, &err) == PTQ_OK && st.n_tensors == 1 && ptq_st_find(&st, "x"));
    ptq_st_close(&st);
    CHECK(!dir_has_tmp(tu_tmpdir(), "writer"));
    ptq_st_writer_free(w);
    ptq_st_writer_free(NULL);

    /* an empty writer gives a valid empty file */
    CHECK(ptq_st_writer_new(&w, &err) == PTQ_OK);
    const char *ep = tmp_path("empty-out.safetensors");
    CHECK(ptq_st_writer_save(w, ep, &err) == PTQ_OK);
    CHECK(ptq_st_open(ep, &st, &err) == PTQ_OK && st.n_tensors == 0);
    ptq_st_close(&st);
    ptq_st_writer_free(w);
}

/* ------------------------------------------------------------------ a real file */

/* Values below were printed by numpy reading the file directly:
 *   h = json.loads(b[8:8+n]); np.frombuffer(b[base+begin:base+end], '<f4') */
static void test_real_file(void) {
    const char *base = getenv("PTQ_DATA");
    if (!base || !*base) base = PTQ_DATA_DEFAULT;
    char path[1024];
    snprintf(path, sizeof path, "%s/vit-mnist/model.safetensors", base);
    if (access(path, R_OK) != 0) {
        printf("note: %s not found, real-file check skipped\n", path);
        return;
    }
    ptq_safetensors st;
    ptq_error err = {0};
    CHECK_MSG(ptq_st_open(path, &st, &err) == PTQ_OK, "%s", err.msg);
    CHECK(st.n_tensors == 80);
    CHECK(ptq_st_metadata(&st, "format") && strcmp(ptq_st_metadata(&st, "format"), "pt") == 0);
    float *v = malloc(384 * 128 * sizeof(float));
    CHECK(ptq_st_read_f32(&st, "blocks.0.attn.qkv.weight", 2, (int64_t[]){384, 128}, v, &err) == PTQ_OK);
    CHECK(v[0] == 0.12601535022258759f && v[1] == -0.06492220610380173f && v[384 * 128 - 1] == 0.028430188074707985f);
    double sum = 0;
    for (int i = 0; i < 384 * 128; i++) sum += v[i];
    CHECK(fabs(sum - 8.114648613154031) < 1e-9);
    CHECK(ptq_st_read_f32(&st, "patch_embed.proj.weight", 4, (int64_t[]){128, 1, 7, 7}, v, &err) == PTQ_OK);
    CHECK(v[0] == -0.19312220811843872f && v[128 * 49 - 1] == 0.0732097253203392f);
    CHECK(ptq_st_read_f32(&st, "pos_embed", 3, (int64_t[]){1, 17, 128}, v, &err) == PTQ_OK && v[0] == 3.0306284427642822f);
    free(v);
    ptq_st_close(&st);
}

int main(void) {
    test_conversions();
    test_round_trip();
    test_hand_built();
    test_hostile();
    test_sharded();
    test_writer();
    test_real_file();
    return tu_done("test_safetensors");
}
