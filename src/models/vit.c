/* Vision Transformers, with timm names (config as in vit-mnist: img_size, patch_size, in_chans, embed_dim,
 * depth, num_heads, mlp_hidden_dim, act_layer, ..., pretrained_cfg) or with Hugging Face
 * ViTForImageClassification names (vit.embeddings.*, vit.encoder.layer.N.*, vit.layernorm, classifier).
 * Pre-norm blocks, a class token, learned positions (row 0 = class token), head on the normed class row.
 * The patch embedding conv weight [E][C][p][p] is used as a linear [E][C*p*p] over (c, py, px) patches. */
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "io/json.h"
#include "models/families.h"

/* A list of per-channel floats (mean/std) of length in_chans, or of length 1 (broadcast). */
static ptq_status channel_floats(const ptq_hf_src *src, const cJSON *obj, const char *key, int in_chans, float def,
                                 float *out, ptq_error *err) {
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    for (int i = 0; i < in_chans; i++) out[i] = def;
    if (!it || cJSON_IsNull(it)) return PTQ_OK;
    if (cJSON_IsNumber(it)) {
        for (int i = 0; i < in_chans; i++) out[i] = (float)it->valuedouble;
        return PTQ_OK;
    }
    int n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : -1;
    if (n != in_chans && n != 1)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s must be a list of %d numbers (one per channel)", src->config_path,
                        key, in_chans);
    for (int i = 0; i < in_chans; i++) {
        const cJSON *v = cJSON_GetArrayItem(it, n == 1 ? 0 : i);
        if (!cJSON_IsNumber(v))
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s[%d] is not a number", src->config_path, key, i);
        out[i] = (float)v->valuedouble;
    }
    if (!strcmp(key, "std") || !strcmp(key, "image_std"))
        for (int i = 0; i < in_chans; i++)
            if (!(out[i] > 0.0f))
                return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s[%d] = %g must be positive", src->config_path, key, i,
                                (double)out[i]);
    return PTQ_OK;
}

/* An image size given as an int or as [h, w] with h == w. */
static ptq_status square_size(const ptq_hf_src *src, const char *key, int *out, ptq_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(src->config, key);
    if (it && cJSON_IsArray(it)) {
        if (cJSON_GetArraySize(it) != 2)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s must be an integer or [height, width]", src->config_path, key);
        int hw[2];
        for (int i = 0; i < 2; i++) {
            char what[64];
            snprintf(what, sizeof what, "%s[%d]", key, i);
            PTQ_TRY(ptq_json_int_item(cJSON_GetArrayItem(it, i), src->config_path, what, 1, 65536, &hw[i], err));
        }
        if (hw[0] != hw[1])
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: %s = [%d, %d]: only square sizes are supported",
                            src->config_path, key, hw[0], hw[1]);
        *out = hw[0];
        return PTQ_OK;
    }
    return ptq_json_int(src->config, src->config_path, key, 1, 0, 1, 65536, out, err);
}

typedef struct vit_names {
    const char *cls, *pos, *patch;            /* full tensor names / prefixes */
    const char *block;                        /* layer prefix, followed by the layer index and "." */
    const char *norm1, *norm2, *q, *k, *v, *qkv, *o, *up, *down; /* suffixes after the block prefix */
    const char *final_norm, *head;
} vit_names;

static ptq_status read_timm_config(const ptq_hf_src *src, ptq_config *c, int *qkv_bias, ptq_error *err) {
    const cJSON *j = src->config;
    const char *f = src->config_path;
    double eps, ratio;
    const char *act = "gelu", *norm = "layernorm", *pool = "token";
    int cls;
    PTQ_TRY(square_size(src, "img_size", &c->img_size, err));
    PTQ_TRY(ptq_json_int(j, f, "patch_size", 1, 0, 1, 65536, &c->patch_size, err));
    PTQ_TRY(ptq_json_int(j, f, "in_chans", 0, 3, 1, 4, &c->in_chans, err));
    PTQ_TRY(ptq_json_int(j, f, "embed_dim", 1, 0, 1, 1 << 20, &c->dim, err));
    PTQ_TRY(ptq_json_int(j, f, "depth", 1, 0, 1, 4096, &c->n_layers, err));
    PTQ_TRY(ptq_json_int(j, f, "num_heads", 1, 0, 1, 4096, &c->n_heads, err));
    if (cJSON_GetObjectItemCaseSensitive(j, "mlp_hidden_dim")) {
        PTQ_TRY(ptq_json_int(j, f, "mlp_hidden_dim", 1, 0, 1, 1 << 22, &c->hidden_dim, err));
    } else {
        PTQ_TRY(ptq_json_float(j, f, "mlp_ratio", 0, 4.0, 0.0, 1024.0, &ratio, err));
        c->hidden_dim = (int)(c->dim * ratio);
        if (c->hidden_dim < 1)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: mlp_ratio %g gives an empty MLP", f, ratio);
    }
    PTQ_TRY(ptq_json_int(j, f, "num_classes", 1, 0, 1, 1 << 24, &c->vocab_size, err));
    PTQ_TRY(ptq_json_string(j, f, "act_layer", 0, "gelu", &act, err));
    PTQ_TRY(ptq_hf_act(src, "act_layer", act, &c->act, err));
    PTQ_TRY(ptq_json_bool(j, f, "qkv_bias", 0, 1, qkv_bias, err));
    PTQ_TRY(ptq_json_string(j, f, "norm_layer", 0, "layernorm", &norm, err));
    if (strcmp(norm, "layernorm") && strcmp(norm, "LayerNorm"))
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: norm_layer = \"%s\" is not supported (only layernorm)", f, norm);
    PTQ_TRY(ptq_json_float(j, f, "norm_eps", 0, 1e-6, 0.0, 1.0, &eps, err));
    c->norm_eps = (float)eps;
    PTQ_TRY(ptq_hf_require_bool(src, "pre_norm", 0, "a norm before the first block is not implemented", err));
    PTQ_TRY(ptq_hf_require_bool(src, "no_embed_class", 0, "positions must include the class token", err));
    PTQ_TRY(ptq_json_bool(j, f, "class_token", 0, 1, &cls, err));
    if (!cls)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: class_token = false is not supported (the head reads the class token)",
                        f);
    PTQ_TRY(ptq_json_string(j, f, "global_pool", 0, "token", &pool, err));
    if (strcmp(pool, "token"))
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: global_pool = \"%s\" is not supported (only \"token\")", f, pool);
    int reg = 0;
    PTQ_TRY(ptq_hf_int_opt(src, "reg_tokens", 0, 0, 1 << 16, &reg, err));
    if (reg)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: reg_tokens = %d is not supported", f, reg);

    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(j, "pretrained_cfg");
    if (pc && !cJSON_IsNull(pc) && !cJSON_IsObject(pc))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: pretrained_cfg must be an object", f);
    if (pc && !cJSON_IsObject(pc)) pc = NULL;
    /* timm's defaults: ImageNet mean/std only make sense for 3 channels; use 0.5 otherwise */
    static const float in_mean[3] = {0.485f, 0.456f, 0.406f}, in_std[3] = {0.229f, 0.224f, 0.225f};
    PTQ_TRY(channel_floats(src, pc, "mean", c->in_chans, 0.5f, c->mean, err));
    PTQ_TRY(channel_floats(src, pc, "std", c->in_chans, 0.5f, c->std, err));
    if (c->in_chans == 3 && !(pc && cJSON_GetObjectItemCaseSensitive(pc, "mean"))) memcpy(c->mean, in_mean, sizeof in_mean);
    if (c->in_chans == 3 && !(pc && cJSON_GetObjectItemCaseSensitive(pc, "std"))) memcpy(c->std, in_std, sizeof in_std);
    c->config_norm = pc && (cJSON_GetObjectItemCaseSensitive(pc, "mean") || cJSON_GetObjectItemCaseSensitive(pc, "std"));
    double crop = 0.875;
    if (pc) PTQ_TRY(ptq_json_float(pc, f, "crop_pct", 0, 0.875, 0.01, 1.0, &crop, err));
    c->crop_pct = (float)crop;
    return PTQ_OK;
}

static ptq_status read_hf_config(const ptq_hf_src *src, ptq_config *c, int *qkv_bias, ptq_error *err) {
    const cJSON *j = src->config;
    const char *f = src->config_path;
    double eps;
    const char *act = "gelu";
    PTQ_TRY(square_size(src, "image_size", &c->img_size, err));
    PTQ_TRY(ptq_json_int(j, f, "patch_size", 1, 0, 1, 65536, &c->patch_size, err));
    PTQ_TRY(ptq_json_int(j, f, "num_channels", 0, 3, 1, 4, &c->in_chans, err));
    PTQ_TRY(ptq_json_int(j, f, "hidden_size", 1, 0, 1, 1 << 20, &c->dim, err));
    PTQ_TRY(ptq_json_int(j, f, "num_hidden_layers", 1, 0, 1, 4096, &c->n_layers, err));
    PTQ_TRY(ptq_json_int(j, f, "num_attention_heads", 1, 0, 1, 4096, &c->n_heads, err));
    PTQ_TRY(ptq_json_int(j, f, "intermediate_size", 1, 0, 1, 1 << 22, &c->hidden_dim, err));
    PTQ_TRY(ptq_json_string(j, f, "hidden_act", 0, "gelu", &act, err));
    PTQ_TRY(ptq_hf_act(src, "hidden_act", act, &c->act, err));
    PTQ_TRY(ptq_json_float(j, f, "layer_norm_eps", 0, 1e-12, 0.0, 1.0, &eps, err));
    c->norm_eps = (float)eps;
    PTQ_TRY(ptq_json_bool(j, f, "qkv_bias", 0, 1, qkv_bias, err));

    /* classes: num_labels, else the size of id2label, else the classifier's rows (checked later) */
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(j, "id2label");
    c->vocab_size = 0;
    if (cJSON_GetObjectItemCaseSensitive(j, "num_labels")) {
        PTQ_TRY(ptq_json_int(j, f, "num_labels", 1, 0, 1, 1 << 24, &c->vocab_size, err));
        if (cJSON_IsObject(id2label) && cJSON_GetArraySize(id2label) != c->vocab_size)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: num_labels = %d contradicts id2label with %d entries", f,
                            c->vocab_size, cJSON_GetArraySize(id2label));
    } else if (cJSON_IsObject(id2label) && cJSON_GetArraySize(id2label) > 0) {
        c->vocab_size = cJSON_GetArraySize(id2label);
    }

    /* normalisation: image_mean/image_std in config.json if present, else the ViTImageProcessor default 0.5 */
    PTQ_TRY(channel_floats(src, j, "image_mean", c->in_chans, 0.5f, c->mean, err));
    PTQ_TRY(channel_floats(src, j, "image_std", c->in_chans, 0.5f, c->std, err));
    c->config_norm = cJSON_GetObjectItemCaseSensitive(j, "image_mean") || cJSON_GetObjectItemCaseSensitive(j, "image_std");
    c->crop_pct = 1.0f; /* ViTImageProcessor resizes straight to image_size */
    return PTQ_OK;
}

/* preprocessor_config.json beside config.json: when present, Hugging Face's image pipeline (io/preprocess.h)
 * replaces config.json's normalisation, as transformers' image processor is what feeds the model there. */
static ptq_status read_preprocessor_config(const ptq_hf_src *src, ptq_config *c, ptq_error *err) {
    const char *slash = strrchr(src->config_path, '/');
    const size_t dir = slash ? (size_t)(slash - src->config_path) + 1 : 0;
    char path[4096];
    if (dir + sizeof "preprocessor_config.json" > sizeof path)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: path too long", src->config_path);
    memcpy(path, src->config_path, dir);
    strcpy(path + dir, "preprocessor_config.json");
    if (!ptq_file_exists(path)) return PTQ_OK;
    return ptq_preprocess_load(path, c->in_chans, c->img_size, &c->prep, err);
}

ptq_status ptq_build_vit(ptq_model *m, const ptq_hf_src *src, int timm, ptq_error *err) {
    const char *f = src->config_path;
    ptq_config *c = &m->cfg;
    int qkv_bias = 1;
    memset(c, 0, sizeof *c);
    if (timm) PTQ_TRY(read_timm_config(src, c, &qkv_bias, err));
    else PTQ_TRY(read_hf_config(src, c, &qkv_bias, err));

    if (c->img_size % c->patch_size != 0)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: image size %d is not a multiple of patch_size %d", f, c->img_size,
                        c->patch_size);
    if (c->dim % c->n_heads != 0)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: width %d is not a multiple of the head count %d", f, c->dim,
                        c->n_heads);
    /* sizes from config.json are multiplied in 64 bits against explicit limits before any int product */
    const int grid = c->img_size / c->patch_size;
    int64_t tokens, patch_in;
    if (!ptq_checked_product((const int64_t[]){grid, grid}, 2, PTQ_VIT_MAX_TOKENS - 1, &tokens))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %d x %d patches is too many (at most %d tokens)", f, grid, grid,
                        PTQ_VIT_MAX_TOKENS);
    if (!ptq_checked_product((const int64_t[]){c->in_chans, c->patch_size, c->patch_size}, 3, PTQ_VIT_MAX_PATCH_IN,
                             &patch_in))
        return ptq_fail(err, PTQ_ERR_CONFIG,
                        "%s: patch_size %d with %d channels gives %lld inputs per patch; at most %d are supported", f,
                        c->patch_size, c->in_chans, (long long)c->in_chans * c->patch_size * c->patch_size,
                        PTQ_VIT_MAX_PATCH_IN);
    PTQ_TRY(read_preprocessor_config(src, c, err));
    c->arch = PTQ_ARCH_VIT;
    c->causal = 0;
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->dim / c->n_heads;
    c->max_seq = (int)tokens + 1;
    c->norm = PTQ_NORM_LAYER;
    c->pre_norm = 1;
    c->gated_mlp = 0;
    c->rope = PTQ_ROPE_NONE;
    c->pos_offset = 0;
    c->embed_dim = c->dim;
    c->bos_id = c->eos_id = -1;
    c->cls_token = 1;

    vit_names nm;
    const char *hp = "";
    if (timm) {
        nm = (vit_names){"cls_token", "pos_embed", "patch_embed.proj", "blocks.", "norm1", "norm2", NULL, NULL,
                         NULL, "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "norm", "head"};
    } else {
        hp = ptq_hf_has(src, "vit.embeddings.cls_token") || !ptq_hf_has(src, "embeddings.cls_token") ? "vit." : "";
        nm = (vit_names){"embeddings.cls_token", "embeddings.position_embeddings",
                         "embeddings.patch_embeddings.projection", "encoder.layer.", "layernorm_before",
                         "layernorm_after", "attention.attention.query", "attention.attention.key",
                         "attention.attention.value", NULL, "attention.output.dense", "intermediate.dense",
                         "output.dense", "layernorm", "classifier"};
        if (c->vocab_size == 0) { /* neither num_labels nor id2label: take the classifier's rows */
            const ptq_st_tensor *t = ptq_st_find(src->st, "classifier.weight");
            if (!t || t->ndim != 2 || t->shape[0] < 1 || t->shape[0] > (1 << 24))
                return ptq_fail(err, PTQ_ERR_CONFIG,
                                "%s: neither num_labels nor id2label is set, and %s has no 2-D classifier.weight", f,
                                src->weights_path);
            c->vocab_size = (int)t->shape[0];
        }
    }

    const int E = c->dim, C = c->in_chans, p = c->patch_size, N = c->max_seq;
    char name[256], lp[192];
    const int64_t cls_shape[3] = {1, 1, E}, pos_shape[3] = {1, N, E}, pw_shape[4] = {E, C, p, p}, pb_shape[1] = {E};
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%s%s", hp, nm.cls));
    PTQ_TRY(ptq_hf_read(m, src, name, 3, cls_shape, &m->cls_token, err));
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%s%s", hp, nm.pos));
    PTQ_TRY(ptq_hf_read(m, src, name, 3, pos_shape, &m->pos_emb, err));
    m->n_pos = N;
    PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%s%s", hp, nm.patch));
    PTQ_TRY(ptq_hf_name(m->patch.name, sizeof m->patch.name, err, "%s", lp));
    m->patch.in = (int)patch_in;
    m->patch.out = E;
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%s.weight", lp));
    PTQ_TRY(ptq_hf_read(m, src, name, 4, pw_shape, &m->patch.w, err));
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%s.bias", lp));
    PTQ_TRY(ptq_hf_read(m, src, name, 1, pb_shape, &m->patch.b, err));

    PTQ_TRY(ptq_hf_blocks(m, c->n_layers, err));
    for (int l = 0; l < c->n_layers; l++) {
        ptq_block *b = &m->blocks[l];
#define LAYER_NAME(suffix) ptq_hf_name(lp, sizeof lp, err, "%s%s%d.%s", hp, nm.block, l, suffix)
        PTQ_TRY(LAYER_NAME(nm.norm1));
        PTQ_TRY(ptq_hf_norm(m, src, &b->norm1, lp, E, 1, err));
        if (timm) {
            PTQ_TRY(LAYER_NAME(nm.qkv));
            PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_QKV], lp, E, 3 * E, qkv_bias, 0, err));
        } else {
            PTQ_TRY(LAYER_NAME(nm.q));
            PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_Q], lp, E, E, qkv_bias, 0, err));
            PTQ_TRY(LAYER_NAME(nm.k));
            PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_K], lp, E, E, qkv_bias, 0, err));
            PTQ_TRY(LAYER_NAME(nm.v));
            PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_V], lp, E, E, qkv_bias, 0, err));
        }
        PTQ_TRY(LAYER_NAME(nm.o));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_O], lp, E, E, 1, 0, err));
        PTQ_TRY(LAYER_NAME(nm.norm2));
        PTQ_TRY(ptq_hf_norm(m, src, &b->norm2, lp, E, 1, err));
        PTQ_TRY(LAYER_NAME(nm.up));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_UP], lp, E, c->hidden_dim, 1, 0, err));
        PTQ_TRY(LAYER_NAME(nm.down));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_DOWN], lp, c->hidden_dim, E, 1, 0, err));
#undef LAYER_NAME
    }
    PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%s%s", hp, nm.block));
    PTQ_TRY(ptq_hf_check_layer_count(src, lp, c->n_layers, timm ? "depth" : "num_hidden_layers", err));
    PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%s%s", hp, nm.final_norm));
    PTQ_TRY(ptq_hf_norm(m, src, &m->final_norm, lp, E, 1, err));
    /* the classifier sits outside the "vit." prefix */
    PTQ_TRY(ptq_hf_linear(m, src, &m->head, nm.head, E, c->vocab_size, 1, 0, err));
    return PTQ_OK;
}
