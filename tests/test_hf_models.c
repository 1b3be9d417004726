/* Hugging Face / timm safetensors loaders (GPT-2, OPT pre/post-norm, LLaMA, ViT) against goldens from
 * tests/ref/make_hf_goldens.py, which implements each architecture independently in PyTorch.
 *
 * No weights are committed: tests/data/hf/<name>/manifest.json lists every tensor with the seed of a
 * counter-based PRNG (splitmix64), and this test regenerates the values, writes model.safetensors with
 * the library's writer into a temporary folder beside the committed config.json, loads it through
 * ptq_model_load and compares every logit with golden.json (1e-4 relative to the largest logit).
 * Also: sharded (index.json) models, tensor names without prefixes, loading by file / index / config path,
 * broken variants that must fail with clear messages, and the shared vit-mnist model against the numpy
 * reference (skipped when the shared data is absent). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "models/forward.h"
#include "models/model.h"
#include "testutil.h"

/* ---------------------------------------------------------------- the PRNG of make_hf_goldens.py */

/* ---------------------------------------------------------------- a model source: manifest + config + golden */

typedef struct {
    char name[128];
    ptq_dtype dtype;
    int ndim;
    int64_t shape[8];
    size_t n;
    float *data;
} tensor;

typedef struct {
    char name[64];
    tensor *t;
    int n;
    cJSON *config, *golden;
} model_src;

static cJSON *read_json(const char *path) {
    char *text = NULL;
    size_t size = 0;
    ptq_error err;
    if (ptq_read_file(path, &text, &size, &err) != PTQ_OK) {
        fprintf(stderr, "cannot read %s: %s\n", path, err.msg);
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) fprintf(stderr, "%s: invalid JSON\n", path);
    return j;
}

static int src_load(model_src *s, const char *name) {
    char path[1024];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(path, sizeof path, "%s/tests/data/hf/%s/manifest.json", PTQ_SOURCE_DIR, name);
    cJSON *man = read_json(path);
    snprintf(path, sizeof path, "%s/tests/data/hf/%s/config.json", PTQ_SOURCE_DIR, name);
    s->config = read_json(path);
    snprintf(path, sizeof path, "%s/tests/data/hf/%s/golden.json", PTQ_SOURCE_DIR, name);
    s->golden = read_json(path);
    if (!man || !s->config || !s->golden) {
        cJSON_Delete(man);
        return -1;
    }
    const cJSON *list = cJSON_GetObjectItem(man, "tensors");
    s->n = cJSON_GetArraySize(list);
    s->t = calloc((size_t)s->n, sizeof(tensor));
    for (int i = 0; i < s->n; i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        tensor *t = &s->t[i];
        snprintf(t->name, sizeof t->name, "%s", cJSON_GetObjectItem(e, "name")->valuestring);
        if (ptq_dtype_from_name(cJSON_GetObjectItem(e, "dtype")->valuestring, &t->dtype) != 0) {
            fprintf(stderr, "%s manifest: unknown dtype for %s\n", name, t->name);
            t->dtype = PTQ_DT_F32;
            tu_failures++;
        }
        const cJSON *shape = cJSON_GetObjectItem(e, "shape");
        t->ndim = cJSON_GetArraySize(shape);
        t->n = 1;
        for (int d = 0; d < t->ndim; d++) {
            t->shape[d] = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
            t->n *= (size_t)t->shape[d];
        }
        t->data = malloc(t->n * sizeof(float));
        tu_prng_fill(t->data, t->n, (uint64_t)cJSON_GetObjectItem(e, "seed")->valuedouble,
                  cJSON_GetObjectItem(e, "scale")->valuedouble, cJSON_GetObjectItem(e, "offset")->valuedouble,
                  (int)cJSON_GetObjectItem(e, "bits")->valuedouble);
    }
    cJSON_Delete(man);
    return 0;
}

static void src_free(model_src *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].data);
    free(s->t);
    cJSON_Delete(s->config);
    cJSON_Delete(s->golden);
}

/* ---------------------------------------------------------------- writing a model folder */

typedef struct {
    const char *skip;        /* leave this tensor out */
    const char *nan_tensor;  /* put a NaN into this tensor */
    const char *strip;       /* remove this prefix from every tensor name */
    int shards;              /* > 1: write a model.safetensors.index.json with this many shards */
    const cJSON *config;     /* replaces the committed config.json; NULL = committed */
    int no_config;
} write_opts;

static int write_config(const char *dir, const cJSON *cfg) {
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = cJSON_Print(cfg);
    int rc = tu_write_file(path, text, strlen(text));
    free(text);
    return rc;
}

/* Writes dir/ (created) and returns 0 on success. */
static int write_model(const model_src *s, const char *dir, const write_opts *o) {
    static const write_opts none;
    if (!o) o = &none;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -1;
    int shards = o->shards > 1 ? o->shards : 1;
    ptq_st_writer **w = calloc((size_t)shards, sizeof *w);
    ptq_error err;
    cJSON *weight_map = cJSON_CreateObject();
    int rc = 0;
    for (int k = 0; k < shards && rc == 0; k++)
        if (ptq_st_writer_new(&w[k], &err) != PTQ_OK) rc = -1;
    for (int i = 0; i < s->n && rc == 0; i++) {
        const tensor *t = &s->t[i];
        if (o->skip && !strcmp(t->name, o->skip)) continue;
        const char *name = t->name;
        if (o->strip && !strncmp(name, o->strip, strlen(o->strip))) name += strlen(o->strip);
        float *data = t->data, *copy = NULL;
        if (o->nan_tensor && !strcmp(t->name, o->nan_tensor)) {
            copy = malloc(t->n * sizeof(float));
            memcpy(copy, t->data, t->n * sizeof(float));
            copy[t->n / 2] = NAN;
            data = copy;
        }
        int k = i % shards;
        if (ptq_st_writer_add_f32(w[k], name, t->dtype, t->ndim, t->shape, data, &err) != PTQ_OK) {
            fprintf(stderr, "writer: %s\n", err.msg);
            rc = -1;
        }
        free(copy);
        char shard[128];
        snprintf(shard, sizeof shard, "model-%05d-of-%05d.safetensors", k + 1, shards);
        cJSON_AddStringToObject(weight_map, name, shard);
    }
    for (int k = 0; k < shards && rc == 0; k++) {
        char path[1024];
        if (shards == 1) snprintf(path, sizeof path, "%s/model.safetensors", dir);
        else snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, k + 1, shards);
        if (ptq_st_writer_save(w[k], path, &err) != PTQ_OK) {
            fprintf(stderr, "writer: %s\n", err.msg);
            rc = -1;
        }
    }
    for (int k = 0; k < shards; k++) ptq_st_writer_free(w[k]);
    free(w);
    if (rc == 0 && shards > 1) {
        cJSON *index = cJSON_CreateObject();
        cJSON *meta = cJSON_AddObjectToObject(index, "metadata");
        cJSON_AddNumberToObject(meta, "total_size", 0);
        cJSON_AddItemToObject(index, "weight_map", weight_map);
        weight_map = NULL;
        char path[1024];
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        char *text = cJSON_Print(index);
        rc = tu_write_file(path, text, strlen(text));
        free(text);
        cJSON_Delete(index);
    }
    cJSON_Delete(weight_map);
    if (rc == 0 && !o->no_config) rc = write_config(dir, o->config ? o->config : s->config);
    return rc;
}

static void tmp_path(char *dst, size_t n, const char *name) { snprintf(dst, n, "%s/%s", tu_tmpdir(), name); }

/* ---------------------------------------------------------------- golden comparison */

/* Worst |logit - golden| / max|golden| over golden["logits"] (rows x width); checked against 1e-4. */
static double compare_logits(const float *logits, const cJSON *rows, const char *what) {
    int n_rows = cJSON_GetArraySize(rows), width = cJSON_GetArraySize(cJSON_GetArrayItem(rows, 0));
    double max_abs = 0, worst = 0;
    int wr = 0, wc = 0;
    for (int r = 0; r < n_rows; r++)
        for (int c = 0; c < width; c++) {
            double g = cJSON_GetArrayItem(cJSON_GetArrayItem(rows, r), c)->valuedouble;
            if (fabs(g) > max_abs) max_abs = fabs(g);
        }
    for (int r = 0; r < n_rows; r++)
        for (int c = 0; c < width; c++) {
            double g = cJSON_GetArrayItem(cJSON_GetArrayItem(rows, r), c)->valuedouble;
            double d = fabs((double)logits[(size_t)r * width + c] - g);
            if (!(d <= worst)) {
                worst = d;
                wr = r;
                wc = c;
            }
        }
    double rel = worst / (max_abs > 0 ? max_abs : 1.0);
    CHECK_MSG(rel <= 1e-4, "%s: logit [%d][%d] = %.7g, golden %.7g (relative error %.3g)", what, wr, wc,
              (double)logits[(size_t)wr * width + wc],
              cJSON_GetArrayItem(cJSON_GetArrayItem(rows, wr), wc)->valuedouble, rel);
    return rel;
}

/* Runs the model on the golden's inputs; returns the worst |diff| / max|golden|, or -1 on failure. */
static double compare_golden(const ptq_model *m, const cJSON *golden, const char *what) {
    const cJSON *rows = cJSON_GetObjectItem(golden, "logits");
    int n_rows = cJSON_GetArraySize(rows), width = cJSON_GetArraySize(cJSON_GetArrayItem(rows, 0));
    float *logits = calloc((size_t)n_rows * width, sizeof(float));
    ptq_error err;
    ptq_status s;
    CHECK_MSG(width == m->cfg.vocab_size, "%s: golden has %d logits per row, model %d", what, width,
              m->cfg.vocab_size);
    if (width != m->cfg.vocab_size) {
        free(logits);
        return -1;
    }
    const cJSON *tokens = cJSON_GetObjectItem(golden, "tokens");
    if (tokens) {
        int n = cJSON_GetArraySize(tokens);
        int *ids = malloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++) ids[i] = cJSON_GetArrayItem(tokens, i)->valueint;
        CHECK(n == n_rows);
        s = ptq_forward_tokens(m, ids, n, logits, &err);
        free(ids);
    } else {
        const cJSON *im = cJSON_GetObjectItem(golden, "images");
        int count = cJSON_GetObjectItem(im, "count")->valueint, c = cJSON_GetObjectItem(im, "channels")->valueint,
            h = cJSON_GetObjectItem(im, "height")->valueint, w = cJSON_GetObjectItem(im, "width")->valueint;
        CHECK(count == n_rows && c == m->cfg.in_chans && h == m->cfg.img_size && w == m->cfg.img_size);
        size_t np = (size_t)count * c * h * w;
        float *pix = malloc(np * sizeof(float));
        tu_prng_fill(pix, np, (uint64_t)cJSON_GetObjectItem(im, "seed")->valuedouble,
                  cJSON_GetObjectItem(im, "scale")->valuedouble, cJSON_GetObjectItem(im, "offset")->valuedouble,
                  cJSON_GetObjectItem(im, "bits")->valueint);
        s = ptq_forward_images(m, pix, count, logits, &err);
        free(pix);
    }
    CHECK_MSG(s == PTQ_OK, "%s: forward failed: %s", what, err.msg);
    if (s != PTQ_OK) {
        free(logits);
        return -1;
    }
    double rel = compare_logits(logits, rows, what);
    free(logits);
    return rel;
}

static ptq_model *load_ok(const char *path, const char *what) {
    ptq_model *m = NULL;
    ptq_error err;
    memset(&err, 0, sizeof err);
    ptq_status s = ptq_model_load(path, &m, &err);
    CHECK_MSG(s == PTQ_OK && m, "%s: load of %s failed: %s", what, path, err.msg);
    return s == PTQ_OK ? m : NULL;
}

/* Load must fail with `status` (or any failure when status < 0) and a message containing each of needles. */
static void load_fails(const char *path, int status, const char *what, const char *needle1, const char *needle2) {
    ptq_model *m = NULL;
    ptq_error err;
    memset(&err, 0, sizeof err);
    ptq_status s = ptq_model_load(path, &m, &err);
    CHECK_MSG(s != PTQ_OK && m == NULL, "%s: load unexpectedly succeeded", what);
    if (s == PTQ_OK) {
        ptq_model_free(m);
        return;
    }
    if (status >= 0)
        CHECK_MSG((int)s == status, "%s: status %s, expected %s (%s)", what, ptq_status_name(s),
                  ptq_status_name((ptq_status)status), err.msg);
    CHECK_MSG(err.status == s, "%s: err.status %d != returned %d", what, err.status, s);
    if (needle1) CHECK_MSG(strstr(err.msg, needle1) != NULL, "%s: message lacks \"%s\": %s", what, needle1, err.msg);
    if (needle2) CHECK_MSG(strstr(err.msg, needle2) != NULL, "%s: message lacks \"%s\": %s", what, needle2, err.msg);
    printf("  %-28s -> %s: %s\n", what, ptq_status_name(s), err.msg);
}

/* ---------------------------------------------------------------- tests */

static const char *const k_models[] = {"gpt2", "opt_pre", "opt_post", "llama", "vit_hf", "vit_timm"};

static void test_goldens(void) {
    for (size_t i = 0; i < sizeof k_models / sizeof *k_models; i++) {
        model_src s;
        if (src_load(&s, k_models[i]) != 0) {
            CHECK_MSG(0, "cannot read the committed files of %s", k_models[i]);
            continue;
        }
        char dir[1024];
        tmp_path(dir, sizeof dir, s.name);
        CHECK(write_model(&s, dir, NULL) == 0);
        ptq_model *m = load_ok(dir, s.name);
        if (m) {
            CHECK_MSG(m->n_tensors == s.n, "%s: %d tensors recorded, manifest has %d", s.name, m->n_tensors, s.n);
            CHECK(!strcmp(m->format, "safetensors"));
            if (m->n_tensors > 0)
                CHECK_MSG(!strcmp(m->tensors[0].dtype, ptq_dtype_name(s.t[0].dtype)), "%s: dtype %s recorded",
                          s.name, m->tensors[0].dtype);
            double rel = compare_golden(m, s.golden, s.name);
            printf("  %-10s %2d layers dim %3d: max relative logit error %.2e\n", s.name, m->cfg.n_layers,
                   m->cfg.dim, rel);
            ptq_model_free(m);
        }
        src_free(&s);
    }
}

static void test_config_mapping(void) {
    model_src s;
    char dir[1024];
    ptq_model *m;
    /* the goldens were written above; check what the loaders put into cfg */
    tmp_path(dir, sizeof dir, "gpt2");
    if ((m = load_ok(dir, "gpt2 cfg"))) {
        const ptq_config *c = &m->cfg;
        CHECK(c->arch == PTQ_ARCH_GPT2 && c->causal && c->pre_norm && c->norm == PTQ_NORM_LAYER);
        CHECK(c->act == PTQ_ACT_GELU_TANH && c->hidden_dim == 4 * 48 && c->max_seq == 32 && m->n_pos == 32);
        CHECK(m->head.w == m->tok_emb && m->blocks[0].lin[PTQ_LIN_QKV].w && !m->blocks[0].lin[PTQ_LIN_Q].w);
        CHECK(!strcmp(m->blocks[1].lin[PTQ_LIN_QKV].name, "transformer.h.1.attn.c_attn"));
        CHECK(c->bos_id == 149 && c->eos_id == 149);
        ptq_model_free(m);
    }
    tmp_path(dir, sizeof dir, "opt_post");
    if ((m = load_ok(dir, "opt_post cfg"))) {
        const ptq_config *c = &m->cfg;
        CHECK(c->arch == PTQ_ARCH_OPT && !c->pre_norm && c->act == PTQ_ACT_RELU && c->pos_offset == 2);
        CHECK(c->embed_dim == 24 && c->dim == 48 && m->proj_in.w && m->proj_out.w && !m->final_norm.w);
        CHECK(m->n_pos == 22 && c->max_seq == 20 && m->head.w == m->tok_emb && m->head.in == 24);
        CHECK(!strcmp(m->blocks[0].lin[PTQ_LIN_UP].name, "decoder.layers.0.fc1"));
        ptq_model_free(m);
    }
    tmp_path(dir, sizeof dir, "llama");
    if ((m = load_ok(dir, "llama cfg"))) {
        const ptq_config *c = &m->cfg;
        CHECK(c->arch == PTQ_ARCH_LLAMA && c->norm == PTQ_NORM_RMS && c->rope == PTQ_ROPE_HALF && c->gated_mlp);
        CHECK(c->n_heads == 4 && c->n_kv_heads == 2 && c->head_dim == 16 && c->rope_theta == 500000.0f);
        CHECK(c->act == PTQ_ACT_SILU && c->bos_id == 1 && c->eos_id == 2 && m->head.w != m->tok_emb);
        CHECK(m->blocks[0].lin[PTQ_LIN_O].b != NULL && m->blocks[0].lin[PTQ_LIN_DOWN].b != NULL);
        CHECK(!strcmp(m->tensors[0].dtype, "BF16"));
        ptq_model_free(m);
    }
    tmp_path(dir, sizeof dir, "vit_hf");
    if ((m = load_ok(dir, "vit_hf cfg"))) {
        const ptq_config *c = &m->cfg;
        CHECK(c->arch == PTQ_ARCH_VIT && !c->causal && c->max_seq == 17 && c->vocab_size == 5 && c->in_chans == 3);
        CHECK(c->act == PTQ_ACT_GELU && fabsf(c->norm_eps - 1e-12f) < 1e-15f && c->mean[2] == 0.5f &&
              c->std[0] == 0.5f);
        CHECK(m->patch.in == 3 * 4 * 4 && m->patch.out == 32 && m->cls_token && m->n_pos == 17);
        ptq_model_free(m);
    }
    tmp_path(dir, sizeof dir, "vit_timm");
    if ((m = load_ok(dir, "vit_timm cfg"))) {
        const ptq_config *c = &m->cfg;
        CHECK(c->arch == PTQ_ARCH_VIT && c->max_seq == 10 && c->vocab_size == 4 && c->in_chans == 2);
        CHECK(c->act == PTQ_ACT_GELU && c->mean[1] == 0.5f && c->std[1] == 0.125f && c->crop_pct == 0.875f);
        CHECK(m->blocks[1].lin[PTQ_LIN_QKV].out == 96 && !strcmp(m->blocks[1].lin[PTQ_LIN_QKV].name, "blocks.1.attn.qkv"));
        CHECK(!strcmp(m->patch.name, "patch_embed.proj") && !strcmp(m->tensors[0].dtype, "F16"));
        ptq_model_free(m);
    }
    /* LLaMA with tied embeddings and no lm_head tensor */
    if (src_load(&s, "llama") == 0) {
        cJSON *cfg = cJSON_Duplicate(s.config, 1);
        cJSON_ReplaceItemInObject(cfg, "tie_word_embeddings", cJSON_CreateTrue());
        write_opts o = {.skip = "lm_head.weight", .config = cfg};
        tmp_path(dir, sizeof dir, "llama_tied");
        CHECK(write_model(&s, dir, &o) == 0);
        if ((m = load_ok(dir, "llama tied"))) {
            CHECK(m->head.w == m->tok_emb && m->head.in == 64 && m->head.out == 200);
            ptq_model_free(m);
        }
        cJSON_Delete(cfg);
        src_free(&s);
    }
}

static void test_layouts(void) {
    model_src s;
    char dir[1024], path[1200];
    ptq_model *m;
    /* GPT-2 names without "transformer." */
    if (src_load(&s, "gpt2") == 0) {
        write_opts o = {.strip = "transformer."};
        tmp_path(dir, sizeof dir, "gpt2_bare");
        CHECK(write_model(&s, dir, &o) == 0);
        if ((m = load_ok(dir, "gpt2 bare names"))) {
            compare_golden(m, s.golden, "gpt2 bare names");
            CHECK(!strcmp(m->blocks[0].lin[PTQ_LIN_QKV].name, "h.0.attn.c_attn"));
            ptq_model_free(m);
        }
        src_free(&s);
    }
    /* sharded LLaMA: by folder and by index path */
    if (src_load(&s, "llama") == 0) {
        write_opts o = {.shards = 3};
        tmp_path(dir, sizeof dir, "llama_sharded");
        CHECK(write_model(&s, dir, &o) == 0);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK(!ptq_file_exists(path));
        if ((m = load_ok(dir, "llama sharded (folder)"))) {
            compare_golden(m, s.golden, "llama sharded (folder)");
            CHECK(m->n_tensors == s.n);
            ptq_model_free(m);
        }
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        if ((m = load_ok(path, "llama sharded (index)"))) {
            compare_golden(m, s.golden, "llama sharded (index)");
            ptq_model_free(m);
        }
        /* a shard missing: clear error */
        snprintf(path, sizeof path, "%s/model-00002-of-00003.safetensors", dir);
        remove(path);
        load_fails(dir, -1, "missing shard", "model-00002-of-00003", NULL);
        src_free(&s);
    }
    /* OPT by the safetensors file and by config.json */
    if (src_load(&s, "opt_pre") == 0) {
        tmp_path(dir, sizeof dir, "opt_pre");
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if ((m = load_ok(path, "opt_pre by file"))) {
            compare_golden(m, s.golden, "opt_pre by file");
            ptq_model_free(m);
        }
        snprintf(path, sizeof path, "%s/config.json", dir);
        if ((m = load_ok(path, "opt_pre by config.json"))) {
            compare_golden(m, s.golden, "opt_pre by config.json");
            ptq_model_free(m);
        }
        src_free(&s);
    }
}

/* Write `name` with options under `sub` and expect the load to fail. */
static void broken(const char *name, const char *sub, write_opts *o, int status, const char *n1, const char *n2) {
    model_src s;
    char dir[1024];
    if (src_load(&s, name) != 0) {
        CHECK_MSG(0, "cannot read %s", name);
        return;
    }
    tmp_path(dir, sizeof dir, sub);
    CHECK(write_model(&s, dir, o) == 0);
    load_fails(dir, status, sub, n1, n2);
    src_free(&s);
}

/* A copy of name's config with field set to item (NULL: removed). */
static cJSON *config_with(const char *name, const char *field, cJSON *item) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/hf/%s/config.json", PTQ_SOURCE_DIR, name);
    cJSON *cfg = read_json(path);
    if (!cfg) return NULL;
    if (item) {
        if (cJSON_GetObjectItem(cfg, field)) cJSON_ReplaceItemInObject(cfg, field, item);
        else cJSON_AddItemToObject(cfg, field, item);
    } else {
        cJSON_DeleteItemFromObject(cfg, field);
    }
    return cfg;
}

static void test_broken(void) {
    write_opts o;
    cJSON *cfg;

    o = (write_opts){.skip = "model.layers.1.mlp.up_proj.weight"};
    broken("llama", "missing_tensor", &o, PTQ_ERR_FORMAT, "model.layers.1.mlp.up_proj.weight", "model.safetensors");

    cfg = config_with("llama", "intermediate_size", cJSON_CreateNumber(80));
    o = (write_opts){.config = cfg};
    broken("llama", "shape_vs_config", &o, -1, "model.layers.0.mlp.gate_proj.weight", "80");
    cJSON_Delete(cfg);

    cfg = config_with("opt_post", "word_embed_proj_dim", cJSON_CreateNumber(48));
    o = (write_opts){.config = cfg};
    broken("opt_post", "opt_embed_dim_vs_config", &o, -1, "decoder.embed_tokens.weight", NULL);
    cJSON_Delete(cfg);

    cfg = config_with("gpt2", "architectures", cJSON_CreateStringArray((const char *const[]){"BertForMaskedLM"}, 1));
    cJSON_ReplaceItemInObject(cfg, "model_type", cJSON_CreateString("bert"));
    o = (write_opts){.config = cfg};
    broken("gpt2", "unknown_arch", &o, PTQ_ERR_UNSUPPORTED, "BertForMaskedLM", "config.json");
    cJSON_Delete(cfg);

    cfg = config_with("gpt2", "architectures", NULL);
    cJSON_ReplaceItemInObject(cfg, "model_type", cJSON_CreateString("t5"));
    o = (write_opts){.config = cfg};
    broken("gpt2", "unknown_model_type", &o, PTQ_ERR_UNSUPPORTED, "t5", NULL);
    cJSON_Delete(cfg);

    cfg = config_with("gpt2", "model_type", cJSON_CreateString("opt"));
    o = (write_opts){.config = cfg};
    broken("gpt2", "arch_vs_model_type", &o, PTQ_ERR_CONFIG, "GPT2LMHeadModel", "opt");
    cJSON_Delete(cfg);

    o = (write_opts){.nan_tensor = "decoder.layers.0.fc1.weight"};
    broken("opt_post", "nan_weight", &o, PTQ_ERR_NUMERIC, "decoder.layers.0.fc1.weight", NULL);

    cfg = config_with("gpt2", "scale_attn_by_inverse_layer_idx", cJSON_CreateTrue());
    o = (write_opts){.config = cfg};
    broken("gpt2", "gpt2_inverse_layer_idx", &o, PTQ_ERR_UNSUPPORTED, "scale_attn_by_inverse_layer_idx", NULL);
    cJSON_Delete(cfg);

    cfg = config_with("llama", "rope_scaling", cJSON_Parse("{\"type\": \"linear\", \"factor\": 2.0}"));
    o = (write_opts){.config = cfg};
    broken("llama", "llama_rope_scaling", &o, PTQ_ERR_UNSUPPORTED, "rope_scaling", NULL);
    cJSON_Delete(cfg);

    cfg = config_with("llama", "hidden_act", cJSON_CreateString("gelu_10"));
    o = (write_opts){.config = cfg};
    broken("llama", "llama_hidden_act", &o, PTQ_ERR_UNSUPPORTED, "hidden_act", "gelu_10");
    cJSON_Delete(cfg);

    cfg = config_with("opt_pre", "ffn_dim", NULL);
    o = (write_opts){.config = cfg};
    broken("opt_pre", "opt_missing_field", &o, PTQ_ERR_CONFIG, "ffn_dim", NULL);
    cJSON_Delete(cfg);

    cfg = config_with("gpt2", "n_layer", cJSON_CreateNumber(1));
    o = (write_opts){.config = cfg};
    broken("gpt2", "gpt2_extra_layer", &o, PTQ_ERR_CONFIG, "n_layer", "transformer.h.1.");
    cJSON_Delete(cfg);

    cfg = config_with("llama", "num_key_value_heads", cJSON_CreateNumber(3));
    o = (write_opts){.config = cfg};
    broken("llama", "llama_bad_gqa", &o, PTQ_ERR_CONFIG, "num_key_value_heads", NULL);
    cJSON_Delete(cfg);

    cfg = config_with("vit_hf", "patch_size", cJSON_CreateNumber(5));
    o = (write_opts){.config = cfg};
    broken("vit_hf", "vit_patch_size", &o, PTQ_ERR_CONFIG, "patch_size", NULL);
    cJSON_Delete(cfg);

    o = (write_opts){.no_config = 1};
    broken("vit_hf", "no_config", &o, PTQ_ERR_IO, "config.json", NULL);
}

/* ---------------------------------------------------------------- hostile sizes in config.json */

static long peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024; /* KiB on Linux */
}

/* Numbers in config.json that imply huge tensors or overflow int: a clear error naming the field or the
 * tensor, before anything is allocated from them. Runs first, so that the peak RSS is still low. */
static void test_hostile_sizes(void) {
    write_opts o;
    cJSON *cfg;
    long rss0 = peak_rss_mb();

    /* OPT vocab_size 4194304 (the file holds 120 rows): the shape error, without 512 MB zeroed first */
    cfg = config_with("opt_pre", "vocab_size", cJSON_CreateNumber(4194304));
    o = (write_opts){.config = cfg};
    broken("opt_pre", "opt_huge_vocab", &o, PTQ_ERR_CONFIG, "embed_tokens.weight", "4194304");
    cJSON_Delete(cfg);
    /* GPT-2 Conv1D weights are read transposed through a temporary: n_inner 4194304 -> 768 MB before */
    cfg = config_with("gpt2", "n_inner", cJSON_CreateNumber(4194304));
    o = (write_opts){.config = cfg};
    broken("gpt2", "gpt2_huge_n_inner", &o, PTQ_ERR_CONFIG, "mlp.c_fc.weight", "4194304");
    cJSON_Delete(cfg);
    long grown = peak_rss_mb() - rss0;
    CHECK_MSG(grown < 128, "loading configs with huge sizes raised the peak RSS by %ld MB", grown);

    /* patch_size 46341: C*p*p overflows int (was formed before the checks) */
    cfg = config_with("vit_timm", "patch_size", cJSON_CreateNumber(46341));
    cJSON_ReplaceItemInObject(cfg, "img_size", cJSON_CreateNumber(46341));
    o = (write_opts){.config = cfg};
    broken("vit_timm", "vit_patch_46341", &o, PTQ_ERR_CONFIG, "patch_size 46341", "inputs per patch");
    cJSON_Delete(cfg);

    /* a non-integer image size inside [h, w] (was truncated to 12) */
    cfg = config_with("vit_timm", "img_size", cJSON_Parse("[12, 12.9]"));
    o = (write_opts){.config = cfg};
    broken("vit_timm", "vit_img_size_fraction", &o, PTQ_ERR_CONFIG, "img_size[1]", "12.9");
    cJSON_Delete(cfg);
    cfg = config_with("vit_timm", "img_size", cJSON_Parse("[12, \"12\"]"));
    o = (write_opts){.config = cfg};
    broken("vit_timm", "vit_img_size_string", &o, PTQ_ERR_CONFIG, "img_size[1]", "a string");
    cJSON_Delete(cfg);

    /* a folder named config.json: not "no config.json" */
    {
        model_src s;
        char dir[1024], sub[1100];
        if (src_load(&s, "vit_hf") == 0) {
            tmp_path(dir, sizeof dir, "config_is_a_dir");
            o = (write_opts){.no_config = 1};
            CHECK(write_model(&s, dir, &o) == 0);
            snprintf(sub, sizeof sub, "%s/config.json", dir);
            CHECK(mkdir(sub, 0755) == 0);
            load_fails(dir, PTQ_ERR_IO, "config.json folder", "config.json", "not a regular file");
            src_free(&s);
        } else {
            CHECK_MSG(0, "cannot read vit_hf");
        }
    }
}

/* ---------------------------------------------------------------- generation memory */

/* A session's KV cache follows the tokens fed, not the model's context: a LLaMA with 2^20 positions
 * generates with a few hundred positions allocated, and growing the cache keeps what it held (the
 * logits equal those of one prefill of the same tokens). */
static void test_session_memory(void) {
    model_src s;
    char dir[1024];
    if (src_load(&s, "llama") != 0) {
        CHECK_MSG(0, "cannot read llama");
        return;
    }
    long rss0 = peak_rss_mb();
    cJSON *cfg = config_with("llama", "max_position_embeddings", cJSON_CreateNumber(1 << 20));
    write_opts o = {.config = cfg};
    tmp_path(dir, sizeof dir, "llama_long_context");
    CHECK(write_model(&s, dir, &o) == 0);
    ptq_model *m = load_ok(dir, "llama with 2^20 positions");
    enum { N = 300 };
    if (m) {
        CHECK(m->cfg.max_seq == 1 << 20);
        int toks[N];
        for (int i = 0; i < N; i++) toks[i] = (i * 37 + 5) % m->cfg.vocab_size;
        ptq_session *a = NULL, *b = NULL;
        ptq_error err;
        const float *la = NULL, *lb = NULL;
        CHECK(ptq_session_new(m, 0, &a, &err) == PTQ_OK && ptq_session_new(m, 0, &b, &err) == PTQ_OK);
        if (a && b) {
            /* "generate 5 tokens" after a 3-token prompt */
            CHECK(ptq_session_feed(a, toks, 3, &la, &err) == PTQ_OK);
            for (int i = 3; i < 8; i++) CHECK(ptq_session_feed(a, &toks[i], 1, &la, &err) == PTQ_OK);
            CHECK_MSG(ptq_session_capacity(a) >= 8 && ptq_session_capacity(a) <= 256,
                      "8 tokens fed, %d positions allocated", ptq_session_capacity(a));
            long grown = peak_rss_mb() - rss0;
            CHECK_MSG(grown < 128, "a session on a 2^20-position model raised the peak RSS by %ld MB", grown);
            /* past the first capacity one token at a time, against one prefill of all N */
            for (int i = 8; i < N; i++) CHECK(ptq_session_feed(a, &toks[i], 1, &la, &err) == PTQ_OK);
            CHECK(ptq_session_pos(a) == N && ptq_session_capacity(a) >= N && ptq_session_capacity(a) <= 2 * N);
            CHECK(ptq_session_feed(b, toks, N, &lb, &err) == PTQ_OK);
            double worst = 0, top = 0;
            for (int v = 0; la && lb && v < m->cfg.vocab_size; v++) {
                double d = fabs((double)la[v] - lb[v]);
                if (d > worst) worst = d;
                if (fabs(lb[v]) > top) top = fabs(lb[v]);
            }
            CHECK_MSG(la && lb && worst <= 1e-4 * (top > 1 ? top : 1),
                      "step-by-step logits differ from the prefill's by %g", worst);
        }
        ptq_session_free(a);
        ptq_session_free(b);
        ptq_model_free(m);
    }
    cJSON_Delete(cfg);
    src_free(&s);
}

/* ---------------------------------------------------------------- accuracy with non-finite logits */

/* A ViT whose logits are all NaN must not score 100% (NaN compares false, so the label ranked first):
 * an error naming the image. */
static void test_accuracy_nonfinite(void) {
    model_src s;
    char dir[1024];
    if (src_load(&s, "vit_timm") != 0) {
        CHECK_MSG(0, "cannot read vit_timm");
        return;
    }
    tmp_path(dir, sizeof dir, "vit_nan_logits");
    CHECK(write_model(&s, dir, NULL) == 0);
    ptq_model *m = load_ok(dir, "vit_timm for accuracy");
    if (m) {
        const ptq_config *c = &m->cfg;
        ptq_image_set set = {3, c->in_chans, c->img_size, c->img_size, NULL, NULL};
        set.pixels = calloc((size_t)3 * c->in_chans * c->img_size * c->img_size, sizeof(float));
        set.labels = calloc(3, sizeof(int));
        ptq_acc_result r;
        ptq_error err;
        ptq_status st = ptq_eval_accuracy(m, &set, NULL, &r, &err);
        CHECK_MSG(st == PTQ_OK && r.images == 3, "finite model: %s", err.msg);
        for (int k = 0; k < m->head.out; k++) m->head.b[k] = NAN;
        st = ptq_eval_accuracy(m, &set, NULL, &r, &err);
        CHECK_MSG(st == PTQ_ERR_NUMERIC, "NaN logits: status %s, top1 %g", ptq_status_name(st), r.top1);
        CHECK_MSG(st == PTQ_OK || (strstr(err.msg, "image 0") && strstr(err.msg, "non-finite")), "message: %s",
                  err.msg);
        free(set.pixels);
        free(set.labels);
        ptq_model_free(m);
    }
    src_free(&s);
}

/* ---------------------------------------------------------------- shared vit-mnist against vit_ref.py */

static unsigned char *gunzip_all(const char *path, size_t *n) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    int r;
    while ((r = gzread(f, buf + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)r;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    gzclose(f);
    *n = len;
    return buf;
}

static int shared_path(char *dst, size_t n, const char *rel) {
    const char *base = getenv("PTQ_DATA");
    if (!base || !*base) base = PTQ_DATA_DEFAULT;
    snprintf(dst, n, "%s/%s", base, rel);
    struct stat st;
    return stat(dst, &st) == 0;
}

static void test_vit_mnist(void) {
    char mdir[1024], imgs[1024], gpath[1024];
    int have = shared_path(mdir, sizeof mdir, "vit-mnist") & shared_path(imgs, sizeof imgs, "mnist/t10k-images-idx3-ubyte.gz");
    if (!have) {
        const char *ci = getenv("CI");
        CHECK_MSG(!(ci && !strcmp(ci, "true")), "shared data missing under CI=true: %s", mdir);
        printf("  vit-mnist: SKIP (shared data missing)\n");
        return;
    }
    snprintf(gpath, sizeof gpath, "%s/tests/data/hf/vit_mnist_golden.json", PTQ_SOURCE_DIR);
    cJSON *golden = read_json(gpath);
    CHECK(golden != NULL);
    ptq_model *m = load_ok(mdir, "vit-mnist");
    if (!m || !golden) {
        cJSON_Delete(golden);
        if (m) ptq_model_free(m);
        return;
    }
    const ptq_config *c = &m->cfg;
    CHECK(c->arch == PTQ_ARCH_VIT && c->img_size == 28 && c->patch_size == 7 && c->in_chans == 1);
    CHECK(c->max_seq == 17 && c->dim == 128 && c->n_layers == 6 && c->n_heads == 8 && c->hidden_dim == 256);
    CHECK(c->act == PTQ_ACT_RELU && c->vocab_size == 10 && c->pre_norm && fabsf(c->norm_eps - 1e-5f) < 1e-9f);
    CHECK(fabsf(c->mean[0] - 0.1307f) < 1e-6f && fabsf(c->std[0] - 0.3081f) < 1e-6f && c->crop_pct == 1.0f);
    CHECK(!strcmp(m->blocks[5].lin[PTQ_LIN_QKV].name, "blocks.5.attn.qkv") && m->blocks[0].lin[PTQ_LIN_QKV].b);
    CHECK(m->n_tensors == 4 + 12 * 6 + 4);

    size_t nbytes = 0;
    unsigned char *raw = gunzip_all(imgs, &nbytes);
    const cJSON *index = cJSON_GetObjectItem(golden, "images");
    int count = cJSON_GetArraySize(index);
    float *pix = malloc((size_t)count * 784 * sizeof(float));
    for (int i = 0; i < count; i++) {
        size_t at = 16 + (size_t)cJSON_GetArrayItem(index, i)->valueint * 784;
        CHECK(raw && at + 784 <= nbytes);
        if (!raw || at + 784 > nbytes) break;
        for (int p = 0; p < 784; p++) pix[i * 784 + p] = ((float)raw[at + p] / 255.0f - c->mean[0]) / c->std[0];
    }
    float *logits = calloc((size_t)count * 10, sizeof(float));
    ptq_error err;
    ptq_status s = ptq_forward_images(m, pix, count, logits, &err);
    CHECK_MSG(s == PTQ_OK, "vit-mnist forward: %s", err.msg);
    if (s == PTQ_OK) {
        double rel = compare_logits(logits, cJSON_GetObjectItem(golden, "logits"), "vit-mnist");
        const cJSON *labels = cJSON_GetObjectItem(golden, "labels");
        int correct = 0;
        for (int i = 0; i < count; i++) {
            int best = 0;
            for (int k = 1; k < 10; k++)
                if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
            correct += best == cJSON_GetArrayItem(labels, i)->valueint;
        }
        CHECK_MSG(correct == count, "vit-mnist: %d of %d images classified correctly", correct, count);
        printf("  vit-mnist: %d MNIST images, max relative logit error %.2e, %d correct\n", count, rel, correct);
    }
    free(logits);
    free(pix);
    free(raw);
    cJSON_Delete(golden);
    ptq_model_free(m);
}

/* OPT's Hugging Face protocol: </s> (config.json bos_token_id 2) before every document, "</s>" written in the
 * text is that token, and the perplexity of the stream equals PyTorch's (tests/ref/make_opt_bos_golden.py). */
static void copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    char *data = NULL;
    size_t n = 0;
    ptq_error err;
    CHECK_MSG(ptq_read_file(a, &data, &n, &err) == PTQ_OK && tu_write_file(b, data, n) == 0, "copy %s", a);
    free(data);
}

static void test_opt_bos(void) {
    model_src s;
    if (src_load(&s, "opt_bos") != 0) {
        CHECK_MSG(0, "cannot read the committed files of opt_bos");
        return;
    }
    char dir[1024], src[1024];
    tmp_path(dir, sizeof dir, "opt_bos");
    snprintf(src, sizeof src, "%s/tests/data/hf/opt_bos", PTQ_SOURCE_DIR);
    CHECK(write_model(&s, dir, NULL) == 0);
    copy_file(src, dir, "vocab.json");
    copy_file(src, dir, "merges.txt");
    ptq_model *m = load_ok(dir, "opt_bos");
    ptq_tokenizer *t = NULL;
    ptq_error err;
    if (m && ptq_tokenizer_load_for_model(m, NULL, &t, &err) != PTQ_OK) CHECK_MSG(0, "opt_bos tokenizer: %s", err.msg);
    if (m && t) {
        CHECK_MSG(ptq_tokenizer_bos(t) == 2, "OPT's BOS is </s> = 2 (config.json), got %d", ptq_tokenizer_bos(t));
        const char *text = cJSON_GetObjectItem(s.golden, "text")->valuestring;
        const char *sep = cJSON_GetObjectItem(s.golden, "sep")->valuestring;
        const cJSON *want = cJSON_GetObjectItem(s.golden, "tokens");
        int *toks = NULL;
        int64_t n = 0;
        if (ptq_encode_documents(t, text, strlen(text), sep, 0, -1, &toks, &n, &err) != PTQ_OK) {
            CHECK_MSG(0, "opt_bos encode: %s", err.msg);
        } else {
            CHECK_MSG(n == cJSON_GetArraySize(want), "opt_bos: %lld tokens, the reference has %d", (long long)n,
                      cJSON_GetArraySize(want));
            int first_diff = -1;
            for (int64_t i = 0; i < n && i < cJSON_GetArraySize(want) && first_diff < 0; i++)
                if (toks[i] != cJSON_GetArrayItem(want, (int)i)->valueint) first_diff = (int)i;
            CHECK_MSG(first_diff < 0, "opt_bos: token %d is %d, the reference has %d", first_diff,
                      first_diff >= 0 ? toks[first_diff] : 0,
                      first_diff >= 0 ? cJSON_GetArrayItem(want, first_diff)->valueint : 0);
            ptq_ppl_params pp = ptq_ppl_default_params();
            ptq_ppl_result res;
            if (ptq_eval_perplexity(m, toks, n, &pp, &res, &err) != PTQ_OK) {
                CHECK_MSG(0, "opt_bos perplexity: %s", err.msg);
            } else {
                double ref = cJSON_GetObjectItem(s.golden, "mean_ce")->valuedouble;
                CHECK_MSG(tu_close(res.mean_ce, ref, 2e-6), "opt_bos: mean CE %.9f, PyTorch %.9f", res.mean_ce, ref);
                printf("  opt_bos: %lld tokens, </s> first, mean CE %.7f (PyTorch %.7f)\n", (long long)n, res.mean_ce,
                       ref);
            }
        }
        free(toks);
    }
    ptq_tokenizer_free(t);
    ptq_model_free(m);
    src_free(&s);
}

int main(void) {
    test_hostile_sizes();
    test_session_memory();
    test_goldens();
    test_config_mapping();
    test_layouts();
    test_broken();
    test_accuracy_nonfinite();
    test_vit_mnist();
    test_opt_bos();
    return tu_done("test_hf_models");
}
