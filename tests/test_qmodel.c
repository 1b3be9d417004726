/* The quantized model file: a quantized stories260K saved and loaded gives the same logits as in memory,
 * the packed path agrees with the float path on the dequantized weights, and damaged files (truncated,
 * inconsistent packed tensors, bad metadata) fail with clear errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "models/forward.h"
#include "quant/quantizer.h"
#include "testutil.h"

static ptq_model *quantized(const char *path, int bits, int group, ptq_wq_method method, int act_order) {
    ptq_error e;
    ptq_model *m;
    if (ptq_model_load(path, &m, &e) != PTQ_OK) return NULL;
    int toks[4 * 64];
    for (int i = 0; i < 4 * 64; i++) toks[i] = i % 64 == 0 ? 1 : 3 + (i * 7919) % 500;
    ptq_calib_data d = {toks, 4, 64, NULL};
    ptq_quant_params p = ptq_quant_default_params();
    p.wbits = bits;
    p.group = group;
    p.method = method;
    p.act_order = act_order;
    if (ptq_quantize_model(m, &d, &p, &e) != PTQ_OK) {
        fprintf(stderr, "quantize: %s\n", e.msg);
        ptq_model_free(m);
        return NULL;
    }
    return m;
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double mx = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(a[i] - b[i]));
    return mx / (scale > 0 ? scale : 1);
}

/* Rewrite a ptq file tensor by tensor, letting `edit` change one tensor's bytes or shape. */
typedef void (*edit_fn)(const char *name, unsigned char *data, size_t n, int64_t *shape, int *ndim);

static int rewrite(const char *src, const char *dst, edit_fn edit, const char *meta_key, const char *meta_val) {
    ptq_error e;
    ptq_safetensors st;
    if (ptq_st_open(src, &st, &e) != PTQ_OK) return -1;
    ptq_st_writer *w;
    ptq_st_writer_new(&w, &e);
    for (int i = 0; i < st.n_meta; i++)
        ptq_st_writer_set_metadata(w, st.meta_keys[i], meta_key && strcmp(st.meta_keys[i], meta_key) == 0 ? meta_val
                                                                                                        : st.meta_values[i],
                                   &e);
    int rc = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const ptq_st_tensor *t = &st.tensors[i];
        unsigned char *buf = malloc(t->nbytes ? t->nbytes : 1);
        memcpy(buf, t->data, t->nbytes);
        int64_t shape[PTQ_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        int ndim = t->ndim;
        size_t n = t->nbytes;
        if (edit) edit(t->name, buf, n, shape, &ndim);
        size_t nb = ptq_dtype_size(t->dtype);
        for (int d = 0; d < ndim; d++) nb *= (size_t)shape[d];
        if (nb > n) nb = 0; /* shape edits that grow the tensor are not used */
        if (ptq_st_writer_add(w, t->name, t->dtype, ndim, shape, buf, nb ? nb : n, &e) != PTQ_OK) rc = -1;
        free(buf);
    }
    if (ptq_st_writer_save(w, dst, &e) != PTQ_OK) rc = -1;
    ptq_st_writer_free(w);
    ptq_st_close(&st);
    return rc;
}

static void zero_too_big(const char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)n, (void)s, (void)nd;
    if (strcmp(name, "blocks.1.q.zeros") == 0) d[3] = 200;
}
static void nan_scale(const char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)n, (void)s, (void)nd;
    if (strcmp(name, "blocks.0.down.scales") == 0) d[0] = 0x00, d[1] = 0x7e; /* fp16 NaN */
}
static void bad_perm(const char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)s, (void)nd;
    if (strcmp(name, "blocks.2.o.perm") == 0) memcpy(d + n - 4, d, 4); /* a duplicate entry */
}
static void short_rows(const char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)d, (void)n, (void)nd;
    if (strcmp(name, "blocks.3.up.qweight") == 0) s[1] -= 4;
}
static void drop_norm(const char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)d, (void)n;
    if (strcmp(name, "blocks.4.norm2.weight") == 0) s[0] = 32, *nd = 1;
}

static void expect_fail(const char *path, ptq_status want, const char *needle) {
    ptq_error e;
    ptq_model *m = NULL;
    ptq_status s = ptq_model_load(path, &m, &e);
    CHECK_MSG(s == want && m == NULL, "%s: status %d (%s), expected %d", path, s, s ? e.msg : "loaded", want);
    if (s != PTQ_OK) CHECK_MSG(strstr(e.msg, needle) != NULL, "message '%s' lacks '%s'", e.msg, needle);
    ptq_model_free(m);
}

int main(void) {
    char *src = tu_data_path("stories260K/stories260K.bin");
    const char *tmp = tu_tmpdir();
    char path[512], bad[512];
    ptq_error e;
    int seq[48];
    for (int i = 0; i < 48; i++) seq[i] = i == 0 ? 1 : 3 + (i * 104729) % 500;
    float *a = malloc(48 * 512 * sizeof(float)), *b = malloc(48 * 512 * sizeof(float));

    struct {
        int bits, group;
        ptq_wq_method method;
        int act_order;
    } cases[] = {{4, 32, PTQ_WQ_RTN, 0}, {3, 32, PTQ_WQ_GPTQ, 1}, {8, 0, PTQ_WQ_GPTQ, 0}, {2, 64, PTQ_WQ_GPTQ, 0}};
    for (int c = 0; c < 4; c++) {
        ptq_model *m = quantized(src, cases[c].bits, cases[c].group, cases[c].method, cases[c].act_order);
        CHECK(m != NULL);
        if (!m) continue;
        snprintf(path, sizeof path, "%s/q%d.ptq", tmp, c);
        CHECK(ptq_model_save(m, path, NULL, &e) == PTQ_OK);
        CHECK(ptq_forward_tokens(m, seq, 48, a, &e) == PTQ_OK);
        ptq_model *l = NULL;
        CHECK(ptq_model_load(path, &l, &e) == PTQ_OK);
        if (l) {
            CHECK(ptq_forward_tokens(l, seq, 48, b, &e) == PTQ_OK);
            CHECK_MSG(max_rel_diff(b, a, 48 * 512) < 1e-6, "case %d: saved model differs by %g", c,
                      max_rel_diff(b, a, 48 * 512));
            CHECK(l->blocks[0].lin[PTQ_LIN_Q].q && l->blocks[0].lin[PTQ_LIN_Q].q->bits == cases[c].bits);
            CHECK(strcmp(l->quant.method, cases[c].method == PTQ_WQ_GPTQ ? "gptq" : "rtn") == 0);
            CHECK(strcmp(l->blocks[2].lin[PTQ_LIN_O].name, "layers.2.attention.wo") == 0);
            /* the packed path equals the float path on the dequantized weights */
            for (int li = 0; li < l->cfg.n_layers; li++)
                for (int r = 0; r < PTQ_LIN_COUNT; r++) {
                    ptq_linear *lin = &l->blocks[li].lin[r];
                    if (!lin->q) continue;
                    lin->w = ptq_model_floats(l, (size_t)lin->in * lin->out, "dequantized", &e);
                    for (int o = 0; o < lin->out; o++) ptq_qweight_dequant_row(lin->q, o, lin->w + (size_t)o * lin->in);
                    ptq_qweight_free(lin->q);
                    free(lin->q);
                    lin->q = NULL;
                }
            CHECK(ptq_forward_tokens(l, seq, 48, b, &e) == PTQ_OK);
            CHECK_MSG(max_rel_diff(b, a, 48 * 512) < 1e-4, "case %d: dequantized float path differs by %g", c,
                      max_rel_diff(b, a, 48 * 512));
        }
        ptq_model_free(l);
        ptq_model_free(m);
    }

    /* damaged files: path q1.ptq is W3 g32 act-order GPTQ (has perm tensors) */
    snprintf(path, sizeof path, "%s/q1.ptq", tmp);
    ptq_mmap map;
    CHECK(ptq_mmap_open(path, &map, &e) == PTQ_OK);
    snprintf(bad, sizeof bad, "%s/truncated.ptq", tmp);
    CHECK(tu_write_file(bad, map.data, map.size - 1000) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "truncated.ptq");
    ptq_mmap_close(&map);
    snprintf(bad, sizeof bad, "%s/zeros.ptq", tmp);
    CHECK(rewrite(path, bad, zero_too_big, NULL, NULL) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "blocks.1.q.zeros");
    snprintf(bad, sizeof bad, "%s/nan.ptq", tmp);
    CHECK(rewrite(path, bad, nan_scale, NULL, NULL) == 0);
    expect_fail(bad, PTQ_ERR_NUMERIC, "blocks.0.down.scales");
    snprintf(bad, sizeof bad, "%s/perm.ptq", tmp);
    CHECK(rewrite(path, bad, bad_perm, NULL, NULL) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "blocks.2.o.perm");
    snprintf(bad, sizeof bad, "%s/rows.ptq", tmp);
    CHECK(rewrite(path, bad, short_rows, NULL, NULL) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "blocks.3.up.qweight");
    snprintf(bad, sizeof bad, "%s/norm.ptq", tmp);
    CHECK(rewrite(path, bad, drop_norm, NULL, NULL) == 0);
    expect_fail(bad, PTQ_ERR_CONFIG, "blocks.4.norm2.weight");
    snprintf(bad, sizeof bad, "%s/version.ptq", tmp);
    CHECK(rewrite(path, bad, NULL, "ptq.format_version", "99") == 0);
    expect_fail(bad, PTQ_ERR_UNSUPPORTED, "version 99");
    snprintf(bad, sizeof bad, "%s/config.ptq", tmp);
    CHECK(rewrite(path, bad, NULL, "ptq.config", "{\"arch\": \"llama\"}") == 0);
    expect_fail(bad, PTQ_ERR_CONFIG, "causal");
    snprintf(bad, sizeof bad, "%s/linears.ptq", tmp);
    CHECK(rewrite(path, bad, NULL, "ptq.linears", "{\"blocks.0.q\": {\"bits\": 9, \"group\": 32, \"in\": 64, \"out\": 64}}") == 0);
    expect_fail(bad, PTQ_ERR_UNSUPPORTED, "9-bit");

    /* an unwritable output path fails cleanly and leaves nothing behind */
    ptq_model *m = quantized(src, 4, 32, PTQ_WQ_RTN, 0);
    snprintf(bad, sizeof bad, "%s/no-such-dir/out.ptq", tmp);
    CHECK(m && ptq_model_save(m, bad, NULL, &e) == PTQ_ERR_IO);
    CHECK(strstr(e.msg, "no-such-dir") != NULL);
    /* quantizing twice is refused */
    int toks[64] = {1};
    ptq_calib_data d = {toks, 1, 64, NULL};
    ptq_quant_params p = ptq_quant_default_params();
    CHECK(m && ptq_quantize_model(m, &d, &p, &e) == PTQ_ERR_ARG);
    p.wbits = 9;
    ptq_model *f;
    CHECK(ptq_model_load(src, &f, &e) == PTQ_OK);
    CHECK(ptq_quantize_model(f, &d, &p, &e) == PTQ_ERR_UNSUPPORTED);
    ptq_model_free(f);
    ptq_model_free(m);
    free(a);
    free(b);
    free(src);
    return tu_done("test_qmodel");
}
