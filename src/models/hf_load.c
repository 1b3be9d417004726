/* Loading Hugging Face / timm models: safetensors weights + config.json beside them.
 *
 * The family comes from config.json ("architectures", else "model_type" / "architecture", and
 * "naming": "timm" for timm ViTs); the builders in llama_hf.c, gpt2.c, opt.c and vit.c do the rest.
 */
#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "models/families.h"

/* ---- helpers shared by the family builders ---- */

ptq_status ptq_hf_name(char *dst, size_t size, ptq_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) return ptq_fail(err, PTQ_ERR_FORMAT, "tensor name '%s...' is too long", dst);
    return PTQ_OK;
}

int ptq_hf_has(const ptq_hf_src *src, const char *name) { return ptq_st_find(src->st, name) != NULL; }

ptq_status ptq_hf_read(ptq_model *m, const ptq_hf_src *src, const char *name, int ndim, const int64_t *shape,
                       float **out, ptq_error *err) {
    const ptq_st_tensor *t = ptq_st_find(src->st, name);
    if (!t)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor '%s' is missing (required by %s)", src->weights_path, name,
                        src->config_path);
    /* the shape first: config.json may imply a huge tensor, and only the file's (validated) one is allocated */
    PTQ_TRY(ptq_st_check_shape(src->st, t, ndim, shape, err));
    if (src->stream && out == &m->tok_emb) { /* streamed: stays in the mapping (materialize.c) */
        if (t->dtype != PTQ_DT_F32 && t->dtype != PTQ_DT_F16 && t->dtype != PTQ_DT_BF16 && t->dtype != PTQ_DT_F64)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; expected a float type",
                            src->weights_path, name, ptq_dtype_name(t->dtype));
        ptq_model_note_tensor(m, name, ptq_dtype_name(t->dtype), 2, t->shape);
        m->tok_emb_src = t;
        *out = NULL;
        return PTQ_OK;
    }
    size_t n = (size_t)t->numel;
    float *buf = ptq_model_floats(m, n, name, err);
    if (!buf) return err->status ? err->status : PTQ_ERR_NOMEM;
    ptq_status s = ptq_st_read_f32(src->st, name, ndim, shape, buf, err);
    ptq_mmap_drop(t->data, t->nbytes); /* converted: the file's pages need not stay resident beside the floats */
    if (s != PTQ_OK) return s;
    ptq_model_note_tensor(m, name, ptq_dtype_name(t->dtype), t->ndim < 4 ? t->ndim : 4, t->shape);
    *out = buf;
    return PTQ_OK;
}

static ptq_status read_transposed(ptq_model *m, const ptq_hf_src *src, const char *name, int in, int out,
                                  float **dst, ptq_error *err) {
    const int64_t shape[2] = {in, out};
    const ptq_st_tensor *t = ptq_st_find(src->st, name);
    if (!t)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor '%s' is missing (required by %s)", src->weights_path, name,
                        src->config_path);
    PTQ_TRY(ptq_st_check_shape(src->st, t, 2, shape, err)); /* before allocating in * out floats */
    float *tmp = ptq_alloc((size_t)in * (size_t)out, sizeof(float), name, err);
    if (!tmp) return err->status;
    ptq_status s = ptq_st_read_f32(src->st, name, 2, shape, tmp, err);
    ptq_mmap_drop(t->data, t->nbytes);
    float *w = s == PTQ_OK ? ptq_model_floats(m, (size_t)in * (size_t)out, name, err) : NULL;
    if (s == PTQ_OK && !w) s = err->status ? err->status : PTQ_ERR_NOMEM;
    if (s == PTQ_OK) {
        for (int i = 0; i < in; i++)
            for (int o = 0; o < out; o++) w[(size_t)o * in + i] = tmp[(size_t)i * out + o];
        ptq_model_note_tensor(m, name, ptq_dtype_name(t->dtype), 2, t->shape);
        *dst = w;
    }
    ptq_free(tmp);
    return s;
}

/* Streamed: the linears of the blocks (quantized one block at a time) and the head (read at the end). */
static int streamable(const ptq_model *m, const ptq_linear *lin) {
    const char *p = (const char *)lin, *b = (const char *)m->blocks;
    return lin == &m->head || (b && p >= b && p < (const char *)(m->blocks + m->cfg.n_layers));
}

ptq_status ptq_hf_linear(ptq_model *m, const ptq_hf_src *src, ptq_linear *lin, const char *prefix, int in, int out,
                         int has_bias, int conv1d, ptq_error *err) {
    char name[256];
    if (strlen(prefix) >= sizeof lin->name)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: layer name '%s' is too long", src->weights_path, prefix);
    memcpy(lin->name, prefix, strlen(prefix) + 1);
    lin->in = in;
    lin->out = out;
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%s.weight", prefix));
    if (conv1d) {
        PTQ_TRY(read_transposed(m, src, name, in, out, &lin->w, err));
    } else if (src->stream && streamable(m, lin)) {
        const int64_t shape[2] = {out, in};
        const ptq_st_tensor *t = ptq_st_find(src->st, name);
        if (!t)
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor '%s' is missing (required by %s)", src->weights_path,
                            name, src->config_path);
        PTQ_TRY(ptq_st_check_shape(src->st, t, 2, shape, err));
        if (t->dtype != PTQ_DT_F32 && t->dtype != PTQ_DT_F16 && t->dtype != PTQ_DT_BF16 && t->dtype != PTQ_DT_F64)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; expected a float type",
                            src->weights_path, name, ptq_dtype_name(t->dtype));
        ptq_model_note_tensor(m, name, ptq_dtype_name(t->dtype), 2, t->shape);
        lin->src = t; /* converted when the quantization reaches it (materialize.c) */
    } else {
        const int64_t shape[2] = {out, in};
        PTQ_TRY(ptq_hf_read(m, src, name, 2, shape, &lin->w, err));
    }
    lin->b = NULL;
    if (has_bias) {
        const int64_t bshape[1] = {out};
        PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%s.bias", prefix));
        PTQ_TRY(ptq_hf_read(m, src, name, 1, bshape, &lin->b, err));
    }
    return PTQ_OK;
}

ptq_status ptq_hf_norm(ptq_model *m, const ptq_hf_src *src, ptq_norm *n, const char *prefix, int dim, int has_bias,
                       ptq_error *err) {
    char name[256];
    const int64_t shape[1] = {dim};
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%s.weight", prefix));
    PTQ_TRY(ptq_hf_read(m, src, name, 1, shape, &n->w, err));
    n->b = NULL;
    if (has_bias) {
        PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%s.bias", prefix));
        PTQ_TRY(ptq_hf_read(m, src, name, 1, shape, &n->b, err));
    }
    return PTQ_OK;
}

ptq_status ptq_hf_blocks(ptq_model *m, int n, ptq_error *err) {
    /* ptq_model_free frees m->blocks itself */
    ptq_block *b = calloc((size_t)n, sizeof(ptq_block));
    if (!b) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate %d blocks", n);
    m->blocks = b;
    return PTQ_OK;
}

ptq_status ptq_hf_check_layer_count(const ptq_hf_src *src, const char *layer_prefix, int n_layers, const char *field,
                                    ptq_error *err) {
    char pre[160];
    PTQ_TRY(ptq_hf_name(pre, sizeof pre, err, "%s%d.", layer_prefix, n_layers));
    size_t len = strlen(pre);
    for (int i = 0; i < src->st->n_tensors; i++)
        if (strncmp(src->st->tensors[i].name, pre, len) == 0)
            return ptq_fail(err, PTQ_ERR_CONFIG,
                            "%s: tensor '%s' belongs to layer %d but %s says %s = %d", src->weights_path,
                            src->st->tensors[i].name, n_layers, src->config_path, field, n_layers);
    return PTQ_OK;
}

ptq_status ptq_hf_act(const ptq_hf_src *src, const char *field, const char *v, ptq_act_kind *out, ptq_error *err) {
    if (!strcmp(v, "gelu")) *out = PTQ_ACT_GELU;
    else if (!strcmp(v, "gelu_new") || !strcmp(v, "gelu_pytorch_tanh") || !strcmp(v, "gelu_fast") ||
             !strcmp(v, "gelu_tanh"))
        *out = PTQ_ACT_GELU_TANH;
    else if (!strcmp(v, "relu")) *out = PTQ_ACT_RELU;
    else if (!strcmp(v, "silu") || !strcmp(v, "swish")) *out = PTQ_ACT_SILU;
    else
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: %s = \"%s\" is not supported (expected gelu, gelu_new, gelu_pytorch_tanh, relu or silu)",
                        src->config_path, field, v);
    return PTQ_OK;
}

ptq_status ptq_hf_int_opt(const ptq_hf_src *src, const char *key, int def, int lo, int hi, int *out, ptq_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(src->config, key);
    if (!it || cJSON_IsNull(it)) {
        *out = def;
        return PTQ_OK;
    }
    return ptq_json_int(src->config, src->config_path, key, 1, def, lo, hi, out, err);
}

ptq_status ptq_hf_token_id(const ptq_hf_src *src, const char *key, int *out, ptq_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(src->config, key);
    *out = -1;
    if (!it || cJSON_IsNull(it)) return PTQ_OK;
    if (cJSON_IsArray(it)) {
        it = cJSON_GetArrayItem(it, 0);
        if (!it) return PTQ_OK;
    }
    if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 2147483647.0 ||
        it->valuedouble != (double)(int)it->valuedouble)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s must be a token id (a non-negative integer, a list of them, or null)",
                        src->config_path, key);
    *out = (int)it->valuedouble;
    return PTQ_OK;
}

ptq_status ptq_hf_require_bool(const ptq_hf_src *src, const char *key, int supported, const char *why,
                               ptq_error *err) {
    int v;
    PTQ_TRY(ptq_json_bool(src->config, src->config_path, key, 0, supported, &v, err));
    if (!v != !supported)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: %s = %s is not supported (%s)", src->config_path, key,
                        v ? "true" : "false", why);
    return PTQ_OK;
}

ptq_status ptq_hf_require_null(const ptq_hf_src *src, const char *key, const char *why, ptq_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(src->config, key);
    if (it && !cJSON_IsNull(it))
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: %s is set but not supported (%s); it must be null or absent",
                        src->config_path, key, why);
    return PTQ_OK;
}

/* ---- family detection ---- */

typedef enum { FAM_NONE = 0, FAM_LLAMA, FAM_GPT2, FAM_OPT, FAM_VIT } family;

static family family_of_arch(const char *a) {
    if (!strcmp(a, "LlamaForCausalLM")) return FAM_LLAMA;
    if (!strcmp(a, "GPT2LMHeadModel")) return FAM_GPT2;
    if (!strcmp(a, "OPTForCausalLM")) return FAM_OPT;
    if (!strcmp(a, "ViTForImageClassification")) return FAM_VIT;
    return FAM_NONE;
}

static family family_of_type(const char *t) {
    if (!strcmp(t, "llama")) return FAM_LLAMA;
    if (!strcmp(t, "gpt2")) return FAM_GPT2;
    if (!strcmp(t, "opt")) return FAM_OPT;
    if (!strcmp(t, "vit")) return FAM_VIT;
    return FAM_NONE;
}

static const char *family_name(family f) {
    switch (f) {
    case FAM_LLAMA: return "llama";
    case FAM_GPT2: return "gpt2";
    case FAM_OPT: return "opt";
    case FAM_VIT: return "vit";
    default: return "unknown";
    }
}

#define SUPPORTED_LIST "LlamaForCausalLM, GPT2LMHeadModel, OPTForCausalLM, ViTForImageClassification or a timm ViT"

static ptq_status detect_family(const ptq_hf_src *src, family *fam, int *timm, ptq_error *err) {
    const cJSON *cfg = src->config;
    const char *file = src->config_path;
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    const char *arch = NULL, *type = NULL, *naming = NULL;
    if (archs && !cJSON_IsNull(archs)) {
        if (!cJSON_IsArray(archs) || cJSON_GetArraySize(archs) < 1 || !cJSON_IsString(cJSON_GetArrayItem(archs, 0)))
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: \"architectures\" must be a non-empty list of strings", file);
        if (cJSON_GetArraySize(archs) > 1)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: \"architectures\" lists %d architectures; expected one",
                            file, cJSON_GetArraySize(archs));
        arch = cJSON_GetArrayItem(archs, 0)->valuestring;
    }
    if (!arch) PTQ_TRY(ptq_json_string(cfg, file, "architecture", 0, NULL, &arch, err));
    PTQ_TRY(ptq_json_string(cfg, file, "model_type", 0, NULL, &type, err));
    PTQ_TRY(ptq_json_string(cfg, file, "naming", 0, NULL, &naming, err));

    family fa = FAM_NONE, ft = type ? family_of_type(type) : FAM_NONE;
    if (arch) {
        fa = family_of_arch(arch);
        if (fa == FAM_NONE) fa = family_of_type(arch); /* timm-style "architecture": "vit" */
        if (fa == FAM_NONE)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported (expected %s)", file,
                            arch, SUPPORTED_LIST);
    }
    if (!arch && !type)
        return ptq_fail(err, PTQ_ERR_CONFIG,
                        "%s: neither \"architectures\" nor \"model_type\" is set; cannot tell the model family", file);
    if (!arch && ft == FAM_NONE)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not supported (expected %s)", file, type,
                        SUPPORTED_LIST);
    if (fa != FAM_NONE && type && ft != fa)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: architecture \"%s\" contradicts model_type \"%s\"", file, arch, type);
    *fam = fa != FAM_NONE ? fa : ft;

    *timm = 0;
    if (naming) {
        if (!strcmp(naming, "timm")) *timm = 1;
        else if (strcmp(naming, "hf") && strcmp(naming, "huggingface") && strcmp(naming, "transformers"))
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: naming \"%s\" is not supported (expected \"timm\" or absent)",
                            file, naming);
    } else if (*fam == FAM_VIT && ptq_hf_has(src, "patch_embed.proj.weight")) {
        *timm = 1;
    }
    if (*timm && *fam != FAM_VIT)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: naming \"timm\" is only supported for ViT, not %s", file,
                        family_name(*fam));
    return PTQ_OK;
}

/* ---- entry point ---- */

static ptq_status dir_of(const char *path, char *dir, size_t size, ptq_error *err) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        if (size < 2) return ptq_fail(err, PTQ_ERR_ARG, "path buffer too small");
        strcpy(dir, ".");
        return PTQ_OK;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/model.safetensors" */
    if (n >= size) return ptq_fail(err, PTQ_ERR_ARG, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return PTQ_OK;
}

static ptq_status join(char *dst, size_t size, const char *dir, const char *file, ptq_error *err) {
    int n = snprintf(dst, size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= size) return ptq_fail(err, PTQ_ERR_ARG, "%s/%s: path too long", dir, file);
    return PTQ_OK;
}

static ptq_status find_weights(const char *dir, char *weights, size_t size, ptq_error *err) {
    PTQ_TRY(join(weights, size, dir, "model.safetensors", err));
    if (ptq_file_exists(weights)) return PTQ_OK;
    PTQ_TRY(join(weights, size, dir, "model.safetensors.index.json", err));
    if (ptq_file_exists(weights)) return PTQ_OK;
    return ptq_fail(err, PTQ_ERR_IO, "%s: folder holds neither model.safetensors nor model.safetensors.index.json",
                    dir);
}

/* 1 when path is a JSON object without "weight_map" (a config.json rather than a safetensors index). */
static int is_config_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int c;
    do c = fgetc(f);
    while (c == ' ' || c == '\n' || c == '\r' || c == '\t');
    fclose(f);
    if (c != '{') return 0;
    cJSON *root = NULL;
    ptq_error e;
    if (ptq_json_load(path, &root, &e) != PTQ_OK) return 0;
    int config = cJSON_IsObject(root) && !cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    cJSON_Delete(root);
    return config;
}

static ptq_status load(const char *path, int stream, ptq_model **out, ptq_error *err) {
    char weights[4096], dir[4096], config[4200];
    if (ptq_is_dir(path)) {
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/') n--;
        if (n >= sizeof dir) return ptq_fail(err, PTQ_ERR_ARG, "%s: path too long", path);
        memcpy(dir, path, n);
        dir[n] = '\0';
        PTQ_TRY(find_weights(dir, weights, sizeof weights, err));
    } else {
        if (strlen(path) >= sizeof weights) return ptq_fail(err, PTQ_ERR_ARG, "%s: path too long", path);
        strcpy(weights, path);
        PTQ_TRY(dir_of(path, dir, sizeof dir, err));
        if (is_config_json(path)) PTQ_TRY(find_weights(dir, weights, sizeof weights, err)); /* config.json given */
    }
    PTQ_TRY(join(config, sizeof config, dir, "config.json", err));
    if (!ptq_file_exists(config)) {
        struct stat sb;
        if (stat(config, &sb) == 0) /* there, but a folder or a device */
            return ptq_fail(err, PTQ_ERR_IO, "%s: is not a regular file (expected the model's config.json, a JSON file)",
                            config);
        return ptq_fail(err, PTQ_ERR_IO, "%s: no config.json beside the weights (looked for %s)", weights, config);
    }

    cJSON *root = NULL;
    PTQ_TRY(ptq_json_load(config, &root, err));
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: expected a JSON object", config);
    }
    ptq_safetensors st;
    memset(&st, 0, sizeof st);
    ptq_status s = ptq_st_open(weights, &st, err);
    if (s != PTQ_OK) {
        cJSON_Delete(root);
        return s;
    }
    ptq_hf_src src = {&st, weights, config, root, stream};
    family fam = FAM_NONE;
    int timm = 0;
    ptq_model *m = NULL;
    s = detect_family(&src, &fam, &timm, err);
    if (s == PTQ_OK) {
        m = ptq_model_new(path, err);
        if (!m) s = err->status ? err->status : PTQ_ERR_NOMEM;
    }
    if (s == PTQ_OK) {
        snprintf(m->format, sizeof m->format, "safetensors");
        switch (fam) {
        case FAM_LLAMA: s = ptq_build_llama_hf(m, &src, err); break;
        case FAM_GPT2: s = ptq_build_gpt2(m, &src, err); break;
        case FAM_OPT: s = ptq_build_opt(m, &src, err); break;
        case FAM_VIT: s = ptq_build_vit(m, &src, timm, err); break;
        default: s = ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: unknown model family", config);
        }
    }
    if (s == PTQ_OK) s = ptq_model_validate(m, err);
    if (s == PTQ_OK && stream) { /* the streamed linears point into the mapping: the model keeps it */
        m->src_st = malloc(sizeof st);
        if (!m->src_st) s = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
        else *m->src_st = st;
    }
    if (!(s == PTQ_OK && stream)) ptq_st_close(&st);
    cJSON_Delete(root);
    if (s != PTQ_OK) {
        if (m) ptq_model_free(m);
        return s;
    }
    *out = m;
    return PTQ_OK;
}

ptq_status ptq_load_safetensors_model(const char *path, ptq_model **out, ptq_error *err) {
    return ptq_load_safetensors_model_ex(path, 0, out, err);
}

ptq_status ptq_load_safetensors_model_ex(const char *path, int stream, ptq_model **out, ptq_error *err) {
    ptq_error local;
    if (!err) err = &local;
    memset(err, 0, sizeof *err);
    if (!path || !out) return ptq_fail(err, PTQ_ERR_ARG, "ptq_load_safetensors_model: NULL argument");
    *out = NULL;
    return load(path, stream, out, err);
}

ptq_status ptq_hf_lm_head(ptq_model *m, const ptq_hf_src *src, int tie, int in, int vocab, ptq_error *err) {
    if (!tie) return ptq_hf_linear(m, src, &m->head, "lm_head", in, vocab, 0, 0, err);
    PTQ_TRY(ptq_embedding_materialize(m, src->st, err)); /* a tied head is the float32 embedding */
    snprintf(m->head.name, sizeof m->head.name, "lm_head");
    m->head.in = in;
    m->head.out = vocab;
    m->head.w = m->tok_emb;
    m->head.b = NULL;
    return PTQ_OK;
}
