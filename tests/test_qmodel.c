/* The quantized model file: a quantized stories260K saved and loaded gives the same logits as in memory,
 * the packed path agrees with the float path on the dequantized weights, and damaged files (truncated,
 * inconsistent packed tensors, bad metadata) fail with clear errors. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core/file.h"
#include "io/qmodel.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "models/forward.h"
#include "quant/actq.h"
#include "quant/quantizer.h"
#include "testutil.h"

static ptq_model *quantized_sym(const char *path, int bits, int group, ptq_wq_method method, int act_order, int sym) {
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
    p.sym = sym;
    if (ptq_quantize_model(m, &d, &p, &e) != PTQ_OK) {
        fprintf(stderr, "quantize: %s\n", e.msg);
        ptq_model_free(m);
        return NULL;
    }
    return m;
}

static ptq_model *quantized(const char *path, int bits, int group, ptq_wq_method method, int act_order) {
    return quantized_sym(path, bits, group, method, act_order, 0);
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double mx = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(a[i] - b[i]));
    return mx / (scale > 0 ? scale : 1);
}

/* Rewrite a ptq file tensor by tensor: `edit` may change a tensor's bytes, shape or name (an empty name drops
 * it); one metadata entry may be set; an extra 1-float tensor may be added. seal: record fresh checksums, as
 * a consistent edit would (the structural checks then have to catch it); else the file keeps the old ones. */
typedef void (*edit_fn)(char *name, unsigned char *data, size_t n, int64_t *shape, int *ndim);

static int rewrite_ex(const char *src, const char *dst, edit_fn edit, const char *meta_key, const char *meta_val,
                      const char *extra, int seal) {
    ptq_error e;
    ptq_safetensors st;
    if (ptq_st_open(src, &st, &e) != PTQ_OK) return -1;
    ptq_st_writer *w;
    ptq_st_writer_new(&w, &e);
    for (int i = 0; i < st.n_meta; i++)
        ptq_st_writer_set_metadata(w, st.meta_keys[i], st.meta_values[i], &e);
    if (meta_key) ptq_st_writer_set_metadata(w, meta_key, meta_val, &e);
    int rc = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const ptq_st_tensor *t = &st.tensors[i];
        unsigned char *buf = malloc(t->nbytes ? t->nbytes : 1);
        memcpy(buf, t->data, t->nbytes);
        int64_t shape[PTQ_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        int ndim = t->ndim;
        size_t n = t->nbytes;
        char name[128];
        snprintf(name, sizeof name, "%s", t->name);
        if (edit) edit(name, buf, n, shape, &ndim);
        size_t nb = ptq_dtype_size(t->dtype);
        for (int d = 0; d < ndim; d++) nb *= (size_t)shape[d];
        if (nb > n) nb = 0; /* shape edits that grow the tensor are not used */
        if (name[0] && ptq_st_writer_add(w, name, t->dtype, ndim, shape, buf, nb ? nb : n, &e) != PTQ_OK) rc = -1;
        free(buf);
    }
    float one = 1;
    int64_t one_shape[1] = {1};
    if (extra && ptq_st_writer_add(w, extra, PTQ_DT_F32, 1, one_shape, &one, sizeof one, &e) != PTQ_OK) rc = -1;
    if (seal && ptq_qmodel_seal(w, &e) != PTQ_OK) rc = -1;
    if (ptq_st_writer_save(w, dst, &e) != PTQ_OK) rc = -1;
    ptq_st_writer_free(w);
    ptq_st_close(&st);
    return rc;
}

static int rewrite(const char *src, const char *dst, edit_fn edit, const char *meta_key, const char *meta_val) {
    return rewrite_ex(src, dst, edit, meta_key, meta_val, NULL, 1);
}

static void zero_too_big(char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)n, (void)s, (void)nd;
    if (strcmp(name, "blocks.1.q.zeros") == 0) d[3] = 200;
}
static void nan_scale(char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)n, (void)s, (void)nd;
    if (strcmp(name, "blocks.0.down.scales") == 0) d[0] = 0x00, d[1] = 0x7e; /* fp16 NaN */
}
static void bad_perm(char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)s, (void)nd;
    if (strcmp(name, "blocks.2.o.perm") == 0) memcpy(d + n - 4, d, 4); /* a duplicate entry */
}
static void short_rows(char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)d, (void)n, (void)nd;
    if (strcmp(name, "blocks.3.up.qweight") == 0) s[1] -= 4;
}
static void drop_norm(char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
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

static void rename_perm(char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)d, (void)n, (void)s, (void)nd;
    if (strcmp(name, "blocks.0.up.perm") == 0) name[strlen(name) - 1] = 'x'; /* blocks.0.up.perx */
}
static void drop_perm(char *name, unsigned char *d, size_t n, int64_t *s, int *nd) {
    (void)d, (void)n, (void)s, (void)nd;
    if (strcmp(name, "blocks.0.up.perm") == 0) name[0] = 0;
}

static ptq_status load_opt(const char *path, int verify, ptq_model **m, ptq_error *e) {
    ptq_load_options o = ptq_load_default_options();
    o.verify_checksums = verify;
    return ptq_model_load_ex(path, &o, m, e);
}

/* Logits of seq (48 tokens) from the model at path, or 0 when it does not load. */
static int logits_of(const char *path, int verify, const int *seq, float *out) {
    ptq_error e;
    ptq_model *m = NULL;
    int ok = load_opt(path, verify, &m, &e) == PTQ_OK && ptq_forward_tokens(m, seq, 48, out, &e) == PTQ_OK;
    if (!ok) fprintf(stderr, "%s: %s\n", path, e.msg);
    ptq_model_free(m);
    return ok;
}

/* A metadata value of the file at path, edited as JSON by fn and returned printed (caller frees). */
static char *edit_meta(const char *path, const char *key, void (*fn)(cJSON *, const void *), const void *arg) {
    ptq_error e;
    ptq_safetensors st;
    if (ptq_st_open(path, &st, &e) != PTQ_OK) return NULL;
    cJSON *o = cJSON_Parse(ptq_st_metadata(&st, key));
    fn(o, arg);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    ptq_st_close(&st);
    return s;
}

static void set_number(cJSON *o, const char *key, double v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddNumberToObject(o, key, v);
}

/* ptq.linears: an activation quantizer on blocks.0.q with step *arg */
static void add_act(cJSON *lin, const void *arg) {
    cJSON *a = cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(lin, "blocks.0.q"), "act");
    const char *keys[] = {"bits", "sym", "per_token", "scale", "zero", "twin", "scale_neg"};
    double v[] = {8, 1, 0, *(const double *)arg, 0, 0, 0};
    for (int i = 0; i < 7; i++) cJSON_AddNumberToObject(a, keys[i], v[i]);
}

/* ptq.linears: every layer of width hidden_dim claims *arg instead */
static void widen_hidden(cJSON *lin, const void *arg) {
    cJSON *x;
    cJSON_ArrayForEach(x, lin) {
        if (cJSON_GetObjectItemCaseSensitive(x, "out")->valuedouble == 172) set_number(x, "out", *(const int *)arg);
        if (cJSON_GetObjectItemCaseSensitive(x, "in")->valuedouble == 172) set_number(x, "in", *(const int *)arg);
    }
}

/* ptq.config with the numbers of arg: {key, value} pairs ending with NULL */
typedef struct {
    const char *key;
    double v;
} kvnum;
static void set_config(cJSON *cfg, const void *arg) {
    for (const kvnum *p = arg; p->key; p++) {
        if (strcmp(p->key, "arch=vit") == 0) {
            cJSON_DeleteItemFromObjectCaseSensitive(cfg, "arch");
            cJSON_AddStringToObject(cfg, "arch", "vit");
        } else {
            set_number(cfg, p->key, p->v);
        }
    }
}

static long peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Defect 4 (checksums): a single flipped bit in any tensor's data, or any change to the metadata, is refused
 * with a message naming the file and the tensor; skipping verification loads the damaged file. */
static void test_checksums(const char *path, const char *tmp, const int *seq) {
    ptq_error e;
    char bad[512];
    float *ref = malloc(48 * 512 * sizeof(float)), *got = malloc(48 * 512 * sizeof(float));
    /* untouched: the same logits with and without verification */
    CHECK(logits_of(path, 1, seq, ref) && logits_of(path, 0, seq, got));
    CHECK(memcmp(ref, got, 48 * 512 * sizeof(float)) == 0);

    ptq_safetensors st;
    ptq_mmap map;
    CHECK(ptq_st_open(path, &st, &e) == PTQ_OK && ptq_mmap_open(path, &map, &e) == PTQ_OK);
    unsigned char *copy = malloc(map.size);
    snprintf(bad, sizeof bad, "%s/flip.ptq", tmp);
    int flipped = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const ptq_st_tensor *t = &st.tensors[i];
        size_t off = (size_t)(t->data - st.maps[0].data) + (size_t)(tu_splitmix64((uint64_t)i) % t->nbytes);
        memcpy(copy, map.data, map.size);
        copy[off] ^= (unsigned char)(1u << (i % 8));
        CHECK(tu_write_file(bad, copy, map.size) == 0);
        ptq_model *m = NULL;
        ptq_status s = ptq_model_load(bad, &m, &e);
        char want[200];
        snprintf(want, sizeof want, "tensor %s is corrupted", t->name);
        CHECK_MSG(s == PTQ_ERR_FORMAT && strstr(e.msg, want) && strstr(e.msg, "flip.ptq"), "flip in %s: %s", t->name,
                  s ? e.msg : "loaded");
        ptq_model_free(m);
        flipped++;
    }
    CHECK(flipped > 40);
    /* a flipped code byte loads when verification is skipped (the option), and changes the logits; the
     * library ignores PTQ_SKIP_CHECKSUMS (only the tool reads it: e2e_quantize) */
    const ptq_st_tensor *q = ptq_st_find(&st, "blocks.0.q.qweight");
    memcpy(copy, map.data, map.size);
    copy[q->data - st.maps[0].data + 5] ^= 0x10;
    CHECK(tu_write_file(bad, copy, map.size) == 0);
    CHECK(logits_of(bad, 0, seq, got));
    CHECK(memcmp(ref, got, 48 * 512 * sizeof(float)) != 0);
    setenv("PTQ_SKIP_CHECKSUMS", "1", 1);
    expect_fail(bad, PTQ_ERR_FORMAT, "tensor blocks.0.q.qweight is corrupted");
    unsetenv("PTQ_SKIP_CHECKSUMS");
    free(copy);
    ptq_mmap_close(&map);
    ptq_st_close(&st);

    /* metadata that nothing else checks (the calibration description) */
    snprintf(bad, sizeof bad, "%s/meta.ptq", tmp);
    CHECK(rewrite_ex(path, bad, NULL, "ptq.calib", "something else", NULL, 0) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "metadata (__metadata__) is corrupted");
    ptq_model *m = NULL;
    CHECK(load_opt(bad, 0, &m, &e) == PTQ_OK);
    ptq_model_free(m);
    /* a renamed tensor, unsealed: not in the file's list */
    snprintf(bad, sizeof bad, "%s/renamed.ptq", tmp);
    CHECK(rewrite_ex(path, bad, rename_perm, NULL, NULL, NULL, 0) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "blocks.0.up.perx");
    /* a file from before checksums */
    snprintf(bad, sizeof bad, "%s/v1.ptq", tmp);
    CHECK(rewrite(path, bad, NULL, "ptq.format_version", "1") == 0);
    expect_fail(bad, PTQ_ERR_UNSUPPORTED, "predates the per-tensor checksums");
    free(ref);
    free(got);
}

/* Defect 4 (structure): tensors the metadata calls for are required and nothing else is accepted, even in
 * a file whose checksums were recomputed after the edit. */
static void test_structure(const char *path, const char *tmp) {
    char bad[512];
    snprintf(bad, sizeof bad, "%s/s.ptq", tmp);
    CHECK(rewrite(path, bad, rename_perm, NULL, NULL) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "tensor blocks.0.up.perm is missing (ptq.act_order is 1)");
    CHECK(rewrite(path, bad, drop_perm, NULL, NULL) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "tensor blocks.0.up.perm is missing");
    CHECK(rewrite_ex(path, bad, NULL, NULL, NULL, "blocks.1.q.extra", 1) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "unexpected tensor blocks.1.q.extra");
    CHECK(rewrite(path, bad, NULL, "ptq.act_order", "0") == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, ".perm: nothing in the metadata");
    CHECK(rewrite(path, bad, NULL, "ptq.act_order", "yes") == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "ptq.act_order");
    CHECK(rewrite(path, bad, NULL, "ptq.head_tied", "0") == 0); /* stories260K shares tok_emb */
    expect_fail(bad, PTQ_ERR_FORMAT, "tensor head.weight is missing");
    /* an entry in ptq.linears for a layer the model does not have */
    ptq_error e;
    ptq_safetensors st;
    CHECK(ptq_st_open(path, &st, &e) == PTQ_OK);
    const char *lj = ptq_st_metadata(&st, "ptq.linears");
    char *more = malloc(strlen(lj) + 100);
    sprintf(more, "{\"blocks.9.q\":{\"bits\":3,\"group\":32,\"in\":64,\"out\":64},%s", lj + 1);
    ptq_st_close(&st);
    CHECK(rewrite(path, bad, NULL, "ptq.linears", more) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "ptq.linears has an entry for blocks.9.q");
    free(more);
}

/* A version 5 file (symmetric grids, no zero points stored): a "sym" entry in an earlier version, and a .zeros
 * tensor beside "sym": 1, are refused naming the layer. */
static void test_sym(const char *src, const char *tmp) {
    ptq_model *m = quantized_sym(src, 4, 32, PTQ_WQ_RTN, 0, 1);
    CHECK(m != NULL);
    if (!m) return;
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/sym.ptq", tmp);
    snprintf(bad, sizeof bad, "%s/sym_bad.ptq", tmp);
    ptq_error e;
    CHECK(ptq_model_save(m, path, NULL, &e) == PTQ_OK);
    ptq_model_free(m);
    CHECK(rewrite(path, bad, NULL, "ptq.format_version", "4") == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "sym is set in a file of format version < 5");
    CHECK(rewrite_ex(path, bad, NULL, NULL, NULL, "blocks.1.q.zeros", 1) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "unexpected tensor blocks.1.q.zeros");
    remove(path);
    remove(bad);
}

/* Defect 10: activation steps and other numbers of the metadata outside their ranges are refused, naming
 * the field and the accepted range. */
static void test_act_ranges(const char *path, const char *tmp) {
    char bad[512], mid[512];
    snprintf(mid, sizeof mid, "%s/act-mid.ptq", tmp);
    snprintf(bad, sizeof bad, "%s/act.ptq", tmp);
    const double steps[] = {0.05, 1e-45, -0.5, 0, 1e30};
    for (int i = 0; i < 5; i++) {
        char *lin = edit_meta(path, "ptq.linears", add_act, &steps[i]);
        CHECK(rewrite(path, mid, NULL, "ptq.act", "A8 minmax") == 0);
        CHECK(rewrite(mid, bad, NULL, "ptq.linears", lin) == 0);
        free(lin);
        ptq_error e;
        ptq_model *m = NULL;
        ptq_status s = ptq_model_load(bad, &m, &e);
        if (i == 0) {
            CHECK_MSG(s == PTQ_OK && m->blocks[0].lin[PTQ_LIN_Q].aq && m->blocks[0].lin[PTQ_LIN_Q].aq->scale == 0.05f,
                      "a valid step: %s", s ? e.msg : "loaded");
        } else {
            CHECK_MSG(s == PTQ_ERR_FORMAT && strstr(e.msg, "blocks.0.q.act.scale") && strstr(e.msg, "[1e-20, 1e+20]"),
                      "step %g: %s", steps[i], s ? e.msg : "loaded");
        }
        ptq_model_free(m);
        if (i == 0) { /* and NoisyQuant's metadata then calls for the noise tensor */
            CHECK(rewrite(bad, bad, NULL, "ptq.act", "A8 minmax noisyquant") == 0);
            expect_fail(bad, PTQ_ERR_FORMAT, "tensor blocks.0.q.noise is missing");
        }
    }
    CHECK(rewrite(path, bad, NULL, "ptq.attn", "{\"0\": [3.5, 0.1, 0.1, 0.1]}") == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "ptq.attn entry '0'");
    CHECK(rewrite(path, bad, NULL, "ptq.attn", "{\"0\": [8, 1e-45, 0.1, 0.1]}") == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "ptq.attn entry '0'");
    CHECK(rewrite(path, bad, NULL, "ptq.act", "A9 minmax") == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "ptq.act is 'A9 minmax'");
    CHECK(rewrite(path, bad, NULL, "ptq.wbits", "3.5") == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "ptq.wbits");
}

/* Defects 2 and 5: config numbers whose products overflow are refused, and sizes from the metadata are
 * compared with the file's tensors before memory is allocated for them. */
static void test_sizes(const char *path, const char *tmp) {
    char bad[512];
    snprintf(bad, sizeof bad, "%s/cfg.ptq", tmp);
    const kvnum vit_overflow[] = {{"arch=vit", 0}, {"img_size", 0}, {"patch_size", 65536}, {"in_chans", 3}, {NULL, 0}};
    char *cfg = edit_meta(path, "ptq.config", set_config, vit_overflow);
    CHECK(rewrite(path, bad, NULL, "ptq.config", cfg) == 0);
    expect_fail(bad, PTQ_ERR_CONFIG, "patch_size 65536");
    free(cfg);
    const kvnum vit_wide[] = {{"arch=vit", 0}, {"img_size", 4096}, {"patch_size", 4096}, {"in_chans", 4},
                              {"cls_token", 1}, {"max_seq", 2}, {NULL, 0}};
    cfg = edit_meta(path, "ptq.config", set_config, vit_wide);
    CHECK(rewrite(path, bad, NULL, "ptq.config", cfg) == 0);
    expect_fail(bad, PTQ_ERR_CONFIG, "in_chans * patch_size^2 = 67108864");
    free(cfg);
    const kvnum heads[] = {{"n_heads", 4096}, {"n_kv_heads", 4096}, {"head_dim", 65536}, {NULL, 0}};
    cfg = edit_meta(path, "ptq.config", set_config, heads);
    CHECK(rewrite(path, bad, NULL, "ptq.config", cfg) == 0);
    expect_fail(bad, PTQ_ERR_CONFIG, "head_dim");
    free(cfg);

    /* a vocabulary of 4M x 64 floats (1 GB) claimed for a 512-row tok_emb */
    long rss0 = peak_rss_kb();
    const kvnum vocab[] = {{"vocab_size", 4194304}, {NULL, 0}};
    cfg = edit_meta(path, "ptq.config", set_config, vocab);
    CHECK(rewrite(path, bad, NULL, "ptq.config", cfg) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "tensor tok_emb is F32 [512, 64], expected F32 [4194304, 64]");
    free(cfg);
    /* an MLP of width 2^24 (0.5 GB of packed weights, scales and zeros) claimed for one of 172 */
    int wide = 1 << 24;
    const kvnum hidden[] = {{"hidden_dim", wide}, {NULL, 0}};
    char mid[512];
    snprintf(mid, sizeof mid, "%s/cfg-mid.ptq", tmp);
    cfg = edit_meta(path, "ptq.config", set_config, hidden);
    char *lin = edit_meta(path, "ptq.linears", widen_hidden, &wide);
    CHECK(rewrite(path, mid, NULL, "ptq.config", cfg) == 0);
    CHECK(rewrite(mid, bad, NULL, "ptq.linears", lin) == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "tensor blocks.0.gate.qweight is U8 [172, 24], expected U8 [16777216, 24]");
    free(cfg);
    free(lin);
    long grown = peak_rss_kb() - rss0;
    CHECK_MSG(grown < 64 * 1024, "loading the two files raised the peak RSS by %ld MB", grown / 1024);
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
    expect_fail(bad, PTQ_ERR_FORMAT, "blocks.4.norm2.weight");
    snprintf(bad, sizeof bad, "%s/version.ptq", tmp);
    CHECK(rewrite(path, bad, NULL, "ptq.format_version", "99") == 0);
    expect_fail(bad, PTQ_ERR_UNSUPPORTED, "version 99");
    snprintf(bad, sizeof bad, "%s/config.ptq", tmp);
    CHECK(rewrite(path, bad, NULL, "ptq.config", "{\"arch\": \"llama\"}") == 0);
    expect_fail(bad, PTQ_ERR_CONFIG, "causal");
    snprintf(bad, sizeof bad, "%s/linears.ptq", tmp);
    CHECK(rewrite(path, bad, NULL, "ptq.linears", "{\"blocks.0.q\": {\"bits\": 9, \"group\": 32, \"in\": 64, \"out\": 64}}") == 0);
    expect_fail(bad, PTQ_ERR_FORMAT, "ptq.linears blocks.0.q.bits must be an integer 2..8");

    test_checksums(path, tmp, seq);
    test_structure(path, tmp);
    test_sym(src, tmp);
    test_act_ranges(path, tmp);
    test_sizes(path, tmp);

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
