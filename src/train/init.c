/* Random initialisation from a config.json (training from scratch). The tensors a family's loader expects are
 * listed here from the config, filled with seeded random values, written as a safetensors file into a
 * temporary folder beside a copy of the config, and loaded through ptq_model_load: the model is then built by
 * the same loader, with the same checks, as any real file, and saves under the same names. */
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "io/json.h"
#include "io/safetensors_write.h"
#include "train/train.h"

typedef enum { K_W, K_WO, K_B, K_NW, K_NB, K_EMB, K_POS, K_CLS } kind;

typedef struct {
    char name[160];
    int ndim;
    int64_t shape[4];
    kind k;
} tspec;

typedef struct {
    tspec *t;
    int n, cap;
    ptq_error *err;
    ptq_status st;
} tlist;

static void add(tlist *l, kind k, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static void add(tlist *l, kind k, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, const char *fmt, ...) {
    if (l->st != PTQ_OK) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        tspec *t = realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) {
            l->st = ptq_fail(l->err, PTQ_ERR_NOMEM, "out of memory");
            return;
        }
        l->t = t;
        l->cap = cap;
    }
    tspec *t = &l->t[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = ndim;
    int64_t s[4] = {a, b, c, d};
    memcpy(t->shape, s, sizeof s);
    t->k = k;
}

static void linear(tlist *l, kind k, int in, int out, int bias, int conv1d, const char *prefix) {
    if (conv1d) add(l, k, 2, in, out, 0, 0, "%s.weight", prefix);
    else add(l, k, 2, out, in, 0, 0, "%s.weight", prefix);
    if (bias) add(l, K_B, 1, out, 0, 0, 0, "%s.bias", prefix);
}

static void norm(tlist *l, int dim, int bias, const char *prefix) {
    add(l, K_NW, 1, dim, 0, 0, 0, "%s.weight", prefix);
    if (bias) add(l, K_NB, 1, dim, 0, 0, 0, "%s.bias", prefix);
}

/* Config fields (the loaders check them again, with their own messages). */
typedef struct {
    const cJSON *j;
    const char *f;
    ptq_error *err;
    ptq_status st;
} cfgr;

static int geti(cfgr *c, const char *key, int def, int required) {
    int v = def;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->j, key);
    if (it && cJSON_IsNull(it)) it = NULL;
    if (c->st == PTQ_OK && (it || required)) c->st = ptq_json_int(c->j, c->f, key, required, def, 1, 1 << 26, &v, c->err);
    return v;
}

static int getb(cfgr *c, const char *key, int def) {
    int v = def;
    if (c->st == PTQ_OK) c->st = ptq_json_bool(c->j, c->f, key, 0, def, &v, c->err);
    return v;
}

/* An int or [h, w] (ViT image size). */
static int get_size(cfgr *c, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->j, key);
    if (cJSON_IsArray(it) && cJSON_IsNumber(cJSON_GetArrayItem(it, 0))) return cJSON_GetArrayItem(it, 0)->valueint;
    return geti(c, key, 0, 1);
}

static void vit_timm(cfgr *c, tlist *l) {
    int I = get_size(c, "img_size"), P = geti(c, "patch_size", 0, 1), C = geti(c, "in_chans", 3, 0);
    int E = geti(c, "embed_dim", 0, 1), L = geti(c, "depth", 0, 1), K = geti(c, "num_classes", 0, 1);
    int H;
    if (cJSON_GetObjectItemCaseSensitive(c->j, "mlp_hidden_dim")) {
        H = geti(c, "mlp_hidden_dim", 0, 1);
    } else {
        double r = 4.0;
        if (c->st == PTQ_OK) c->st = ptq_json_float(c->j, c->f, "mlp_ratio", 0, 4.0, 0.0, 1024.0, &r, c->err);
        H = (int)(E * r);
    }
    int qb = getb(c, "qkv_bias", 1);
    if (c->st != PTQ_OK || P < 1) return;
    int N = (I / P) * (I / P) + 1;
    add(l, K_CLS, 3, 1, 1, E, 0, "cls_token");
    add(l, K_POS, 3, 1, N, E, 0, "pos_embed");
    add(l, K_W, 4, E, C, P, P, "patch_embed.proj.weight");
    add(l, K_B, 1, E, 0, 0, 0, "patch_embed.proj.bias");
    char p[128];
    for (int i = 0; i < L; i++) {
        snprintf(p, sizeof p, "blocks.%d.norm1", i), norm(l, E, 1, p);
        snprintf(p, sizeof p, "blocks.%d.attn.qkv", i), linear(l, K_W, E, 3 * E, qb, 0, p);
        snprintf(p, sizeof p, "blocks.%d.attn.proj", i), linear(l, K_WO, E, E, 1, 0, p);
        snprintf(p, sizeof p, "blocks.%d.norm2", i), norm(l, E, 1, p);
        snprintf(p, sizeof p, "blocks.%d.mlp.fc1", i), linear(l, K_W, E, H, 1, 0, p);
        snprintf(p, sizeof p, "blocks.%d.mlp.fc2", i), linear(l, K_WO, H, E, 1, 0, p);
    }
    norm(l, E, 1, "norm");
    linear(l, K_W, E, K, 1, 0, "head");
}

static void vit_hf(cfgr *c, tlist *l) {
    int I = get_size(c, "image_size"), P = geti(c, "patch_size", 0, 1), C = geti(c, "num_channels", 3, 0);
    int E = geti(c, "hidden_size", 0, 1), L = geti(c, "num_hidden_layers", 0, 1), H = geti(c, "intermediate_size", 0, 1);
    int qb = getb(c, "qkv_bias", 1), K = 0;
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(c->j, "id2label");
    if (cJSON_GetObjectItemCaseSensitive(c->j, "num_labels")) K = geti(c, "num_labels", 0, 1);
    else if (cJSON_IsObject(id2label)) K = cJSON_GetArraySize(id2label);
    if (c->st == PTQ_OK && K < 1)
        c->st = ptq_fail(c->err, PTQ_ERR_CONFIG, "%s: set num_labels (or id2label) to initialise a classifier", c->f);
    if (c->st != PTQ_OK || P < 1) return;
    int N = (I / P) * (I / P) + 1;
    add(l, K_CLS, 3, 1, 1, E, 0, "vit.embeddings.cls_token");
    add(l, K_POS, 3, 1, N, E, 0, "vit.embeddings.position_embeddings");
    add(l, K_W, 4, E, C, P, P, "vit.embeddings.patch_embeddings.projection.weight");
    add(l, K_B, 1, E, 0, 0, 0, "vit.embeddings.patch_embeddings.projection.bias");
    char p[160];
    for (int i = 0; i < L; i++) {
        const char *b = "vit.encoder.layer";
        snprintf(p, sizeof p, "%s.%d.layernorm_before", b, i), norm(l, E, 1, p);
        snprintf(p, sizeof p, "%s.%d.attention.attention.query", b, i), linear(l, K_W, E, E, qb, 0, p);
        snprintf(p, sizeof p, "%s.%d.attention.attention.key", b, i), linear(l, K_W, E, E, qb, 0, p);
        snprintf(p, sizeof p, "%s.%d.attention.attention.value", b, i), linear(l, K_W, E, E, qb, 0, p);
        snprintf(p, sizeof p, "%s.%d.attention.output.dense", b, i), linear(l, K_WO, E, E, 1, 0, p);
        snprintf(p, sizeof p, "%s.%d.layernorm_after", b, i), norm(l, E, 1, p);
        snprintf(p, sizeof p, "%s.%d.intermediate.dense", b, i), linear(l, K_W, E, H, 1, 0, p);
        snprintf(p, sizeof p, "%s.%d.output.dense", b, i), linear(l, K_WO, H, E, 1, 0, p);
    }
    norm(l, E, 1, "vit.layernorm");
    linear(l, K_W, E, K, 1, 0, "classifier");
}

static void llama(cfgr *c, tlist *l) {
    int D = geti(c, "hidden_size", 0, 1), F = geti(c, "intermediate_size", 0, 1), L = geti(c, "num_hidden_layers", 0, 1);
    int H = geti(c, "num_attention_heads", 0, 1), V = geti(c, "vocab_size", 0, 1);
    int KV = geti(c, "num_key_value_heads", H, 0), hd = geti(c, "head_dim", H > 0 ? D / H : 1, 0);
    int ab = getb(c, "attention_bias", 0), mb = getb(c, "mlp_bias", 0), tie = getb(c, "tie_word_embeddings", 0);
    if (c->st != PTQ_OK) return;
    add(l, K_EMB, 2, V, D, 0, 0, "model.embed_tokens.weight");
    char p[128];
    for (int i = 0; i < L; i++) {
        snprintf(p, sizeof p, "model.layers.%d.input_layernorm", i), norm(l, D, 0, p);
        snprintf(p, sizeof p, "model.layers.%d.self_attn.q_proj", i), linear(l, K_W, D, H * hd, ab, 0, p);
        snprintf(p, sizeof p, "model.layers.%d.self_attn.k_proj", i), linear(l, K_W, D, KV * hd, ab, 0, p);
        snprintf(p, sizeof p, "model.layers.%d.self_attn.v_proj", i), linear(l, K_W, D, KV * hd, ab, 0, p);
        snprintf(p, sizeof p, "model.layers.%d.self_attn.o_proj", i), linear(l, K_WO, H * hd, D, ab, 0, p);
        snprintf(p, sizeof p, "model.layers.%d.post_attention_layernorm", i), norm(l, D, 0, p);
        snprintf(p, sizeof p, "model.layers.%d.mlp.gate_proj", i), linear(l, K_W, D, F, mb, 0, p);
        snprintf(p, sizeof p, "model.layers.%d.mlp.up_proj", i), linear(l, K_W, D, F, mb, 0, p);
        snprintf(p, sizeof p, "model.layers.%d.mlp.down_proj", i), linear(l, K_WO, F, D, mb, 0, p);
    }
    norm(l, D, 0, "model.norm");
    if (!tie) linear(l, K_W, D, V, 0, 0, "lm_head");
}

static void gpt2(cfgr *c, tlist *l) {
    int D = geti(c, "n_embd", 0, 1), L = geti(c, "n_layer", 0, 1), V = geti(c, "vocab_size", 0, 1);
    int P = cJSON_GetObjectItemCaseSensitive(c->j, "n_positions") ? geti(c, "n_positions", 0, 1) : geti(c, "n_ctx", 0, 1);
    int F = geti(c, "n_inner", 4 * D, 0), tie = getb(c, "tie_word_embeddings", 1);
    if (c->st != PTQ_OK) return;
    add(l, K_EMB, 2, V, D, 0, 0, "transformer.wte.weight");
    add(l, K_POS, 2, P, D, 0, 0, "transformer.wpe.weight");
    char p[128];
    for (int i = 0; i < L; i++) {
        snprintf(p, sizeof p, "transformer.h.%d.ln_1", i), norm(l, D, 1, p);
        snprintf(p, sizeof p, "transformer.h.%d.attn.c_attn", i), linear(l, K_W, D, 3 * D, 1, 1, p);
        snprintf(p, sizeof p, "transformer.h.%d.attn.c_proj", i), linear(l, K_WO, D, D, 1, 1, p);
        snprintf(p, sizeof p, "transformer.h.%d.ln_2", i), norm(l, D, 1, p);
        snprintf(p, sizeof p, "transformer.h.%d.mlp.c_fc", i), linear(l, K_W, D, F, 1, 1, p);
        snprintf(p, sizeof p, "transformer.h.%d.mlp.c_proj", i), linear(l, K_WO, F, D, 1, 1, p);
    }
    norm(l, D, 1, "transformer.ln_f");
    if (!tie) linear(l, K_W, D, V, 0, 0, "lm_head");
}

static void opt(cfgr *c, tlist *l) {
    int D = geti(c, "hidden_size", 0, 1), L = geti(c, "num_hidden_layers", 0, 1), F = geti(c, "ffn_dim", 0, 1);
    int V = geti(c, "vocab_size", 0, 1), P = geti(c, "max_position_embeddings", 0, 1);
    int E = geti(c, "word_embed_proj_dim", D, 0), pre = getb(c, "do_layer_norm_before", 1);
    int rm = getb(c, "_remove_final_layer_norm", 0), bias = getb(c, "enable_bias", 1);
    int aff = getb(c, "layer_norm_elementwise_affine", 1), tie = getb(c, "tie_word_embeddings", 1);
    if (c->st != PTQ_OK) return;
    const char *d = "model.decoder";
    char p[128];
    add(l, K_EMB, 2, V, E, 0, 0, "%s.embed_tokens.weight", d);
    add(l, K_POS, 2, P + 2, D, 0, 0, "%s.embed_positions.weight", d);
    if (E != D) {
        snprintf(p, sizeof p, "%s.project_in", d), linear(l, K_W, E, D, 0, 0, p);
        snprintf(p, sizeof p, "%s.project_out", d), linear(l, K_W, D, E, 0, 0, p);
    }
    for (int i = 0; i < L; i++) {
        static const char *const r[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int k = 0; k < 4; k++) {
            snprintf(p, sizeof p, "%s.layers.%d.self_attn.%s", d, i, r[k]);
            linear(l, k == 3 ? K_WO : K_W, D, D, bias, 0, p);
        }
        if (aff) snprintf(p, sizeof p, "%s.layers.%d.self_attn_layer_norm", d, i), norm(l, D, 1, p);
        snprintf(p, sizeof p, "%s.layers.%d.fc1", d, i), linear(l, K_W, D, F, bias, 0, p);
        snprintf(p, sizeof p, "%s.layers.%d.fc2", d, i), linear(l, K_WO, F, D, bias, 0, p);
        if (aff) snprintf(p, sizeof p, "%s.layers.%d.final_layer_norm", d, i), norm(l, D, 1, p);
    }
    if (pre && !rm && aff) snprintf(p, sizeof p, "%s.final_layer_norm", d), norm(l, D, 1, p);
    if (!tie) linear(l, K_W, E, V, 0, 0, "lm_head");
}

/* Family of a config, as hf_load.c decides it. */
static ptq_status family_specs(const cJSON *j, const char *f, tlist *l, int *n_layers, ptq_error *err) {
    const char *arch = NULL, *type = NULL, *naming = NULL;
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    if (cJSON_IsArray(archs) && cJSON_IsString(cJSON_GetArrayItem(archs, 0))) arch = cJSON_GetArrayItem(archs, 0)->valuestring;
    if (!arch) PTQ_TRY(ptq_json_string(j, f, "architecture", 0, NULL, &arch, err));
    PTQ_TRY(ptq_json_string(j, f, "model_type", 0, NULL, &type, err));
    PTQ_TRY(ptq_json_string(j, f, "naming", 0, NULL, &naming, err));
    const char *a = arch ? arch : type ? type : "";
    cfgr c = {j, f, err, PTQ_OK};
    *n_layers = 1;
    if (!strcmp(a, "LlamaForCausalLM") || !strcmp(a, "llama")) {
        llama(&c, l);
        *n_layers = geti(&c, "num_hidden_layers", 1, 1);
    } else if (!strcmp(a, "GPT2LMHeadModel") || !strcmp(a, "gpt2")) {
        gpt2(&c, l);
        *n_layers = geti(&c, "n_layer", 1, 1);
    } else if (!strcmp(a, "OPTForCausalLM") || !strcmp(a, "opt")) {
        opt(&c, l);
        *n_layers = geti(&c, "num_hidden_layers", 1, 1);
    } else if (!strcmp(a, "ViTForImageClassification") || !strcmp(a, "vit")) {
        int timm = (naming && !strcmp(naming, "timm")) || cJSON_GetObjectItemCaseSensitive(j, "embed_dim");
        if (timm) {
            vit_timm(&c, l);
            *n_layers = geti(&c, "depth", 1, 1);
        } else {
            vit_hf(&c, l);
            *n_layers = geti(&c, "num_hidden_layers", 1, 1);
        }
    } else {
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: cannot initialise architecture \"%s\" (expected LlamaForCausalLM, GPT2LMHeadModel, "
                        "OPTForCausalLM, ViTForImageClassification or a timm ViT)",
                        f, a);
    }
    if (c.st != PTQ_OK) return c.st;
    return l->st;
}

/* N(0, 1) by Box-Muller on splitmix64 uniforms. */
static double gauss(uint64_t *rng) {
    double u1 = ((double)(ptq_splitmix64(rng) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(ptq_splitmix64(rng) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static double trunc_gauss(uint64_t *rng) {
    for (;;) {
        double z = gauss(rng);
        if (fabs(z) <= 2.0) return z;
    }
}

static void fill(float *x, size_t n, kind k, int n_layers, uint64_t *rng) {
    double sd = 0.02;
    switch (k) {
    case K_B:
    case K_NB: memset(x, 0, n * sizeof(float)); return;
    case K_NW:
        for (size_t i = 0; i < n; i++) x[i] = 1.0f;
        return;
    case K_CLS: sd = 1e-6; break;
    case K_WO: sd = 0.02 / sqrt(2.0 * n_layers); break;
    default: break;
    }
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * trunc_gauss(rng));
}

static void remove_dir(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
}

ptq_status ptq_train_init_random(const char *config_path, uint64_t seed, const char *tmp_dir, ptq_model **out,
                                 ptq_error *err) {
    *out = NULL;
    char *text;
    size_t len;
    PTQ_TRY(ptq_read_file(config_path, &text, &len, err));
    cJSON *j = cJSON_Parse(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        free(text);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: not a JSON object", config_path);
    }
    tlist l = {NULL, 0, 0, err, PTQ_OK};
    int n_layers = 1;
    ptq_status s = family_specs(j, config_path, &l, &n_layers, err);
    cJSON_Delete(j);
    char dir[4096];
    int have_dir = 0;
    if (s == PTQ_OK) {
        const char *base = tmp_dir ? tmp_dir : getenv("TMPDIR");
        if (!base || !*base) base = "/tmp";
        snprintf(dir, sizeof dir, "%s/ptq-init-XXXXXX", base);
        if (!mkdtemp(dir)) s = ptq_fail(err, PTQ_ERR_IO, "%s: cannot create a temporary folder", dir);
        else have_dir = 1;
    }
    ptq_st_writer *w = NULL;
    if (s == PTQ_OK) s = ptq_st_writer_new(&w, err);
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (int i = 0; s == PTQ_OK && i < l.n; i++) {
        size_t n = 1;
        for (int d = 0; d < l.t[i].ndim; d++) {
            if (l.t[i].shape[d] < 1 || (size_t)l.t[i].shape[d] > ((size_t)1 << 34) / n) {
                s = ptq_fail(err, PTQ_ERR_CONFIG, "%s: tensor %s would have an invalid shape", config_path, l.t[i].name);
                break;
            }
            n *= (size_t)l.t[i].shape[d];
        }
        if (s != PTQ_OK) break;
        float *x = ptq_alloc(n, sizeof(float), l.t[i].name, err);
        if (!x) {
            s = PTQ_ERR_NOMEM;
            break;
        }
        fill(x, n, l.t[i].k, n_layers, &rng);
        s = ptq_st_writer_add_f32(w, l.t[i].name, PTQ_DT_F32, l.t[i].ndim, l.t[i].shape, x, err);
        ptq_free(x);
    }
    char path[4200];
    if (s == PTQ_OK) s = ptq_st_writer_set_metadata(w, "format", "pt", err);
    if (s == PTQ_OK) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        s = ptq_st_writer_save(w, path, err);
    }
    ptq_st_writer_free(w);
    if (s == PTQ_OK) {
        ptq_atomic_file af;
        snprintf(path, sizeof path, "%s/config.json", dir);
        s = ptq_atomic_open(&af, path, err);
        if (s == PTQ_OK) {
            s = ptq_atomic_write(&af, text, len, err);
            if (s == PTQ_OK) s = ptq_atomic_commit(&af, err);
            else ptq_atomic_abort(&af);
        }
    }
    if (s == PTQ_OK) s = ptq_model_load(dir, out, err);
    if (s != PTQ_OK && *out) {
        ptq_model_free(*out);
        *out = NULL;
    }
    if (*out) snprintf((*out)->path, sizeof (*out)->path, "%s (random init, seed %llu)", config_path,
                       (unsigned long long)seed);
    if (have_dir) remove_dir(dir);
    free(l.t);
    free(text);
    return s;
}
