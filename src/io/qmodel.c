/* The ptq model file (docs/FORMAT.md): safetensors with family-independent tensor names, packed
 * low-bit weights, and the generic model config in __metadata__. Writing is atomic; reading checks
 * every tensor against the config before anything runs. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/file.h"
#include "io/json.h"
#include "io/qmodel.h"
#include "io/qmodel_tokenizer.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "models/embed_map.h"
#include "quant/act_calib.h"
#include "quant/actq.h"
#include "quant/head_embed.h"
#include "quant/quantizer.h"
#include "text/tokenizer_internal.h"

/* Version 2 added ptq.checksums and ptq.metadata_crc32c; version 1 files are refused. Version 3 adds a packed or
 * 16-bit head and token embeddings (quant/head_embed.h); a file without them is still written as version 2, so
 * that older readers keep reading what they can. */
#define PTQ_FORMAT_VERSION "3"
#define PTQ_FORMAT_VERSION_BASE "2"
/* Version 4 stores 5-, 6- and 7-bit codes at their own width (kernels/qweight.h); versions 2 and 3 stored them
 * in 8 bits (read here and repacked). Written only by files that hold such a matrix, so that older readers
 * refuse exactly the files they would misread. */
#define PTQ_FORMAT_VERSION_TIGHT "4"
/* Version 5 leaves out the zero points of a symmetric packed matrix (every one 2^(bits-1): "sym": 1 in its
 * ptq.linears entry, no .zeros tensor); written only by files that hold such a matrix. Older files with stored
 * zero points that happen to be all 2^(bits-1) load into the same zero-less form. */
#define PTQ_FORMAT_VERSION_SYM "5"
#define CHECKSUMS_KEY "ptq.checksums"
#define META_CRC_KEY "ptq.metadata_crc32c"

static const char *role_names[PTQ_LIN_COUNT] = {"qkv", "q", "k", "v", "o", "gate", "up", "down"};
static const char *norm_names[] = {"layer", "rms"};
static const char *act_names[] = {"gelu", "gelu_tanh", "relu", "silu"};
static const char *rope_names[] = {"none", "interleaved", "half"};
/* ptq.act's calibrator, indexed by ptq_act_calib */
static const char *calib_names[] = {"minmax", "percentile", "mse", "entropy", "easyquant", "twin"};
#define N_CALIBS 6

/* ------------------------------------------------------------------ config <-> JSON */

static char *config_json(const ptq_config *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arch", ptq_arch_name(c->arch));
    cJSON_AddNumberToObject(o, "causal", c->causal);
    cJSON_AddNumberToObject(o, "dim", c->dim);
    cJSON_AddNumberToObject(o, "n_layers", c->n_layers);
    cJSON_AddNumberToObject(o, "n_heads", c->n_heads);
    cJSON_AddNumberToObject(o, "n_kv_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "hidden_dim", c->hidden_dim);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "max_seq", c->max_seq);
    cJSON_AddStringToObject(o, "norm", norm_names[c->norm]);
    cJSON_AddNumberToObject(o, "norm_eps", c->norm_eps);
    cJSON_AddNumberToObject(o, "pre_norm", c->pre_norm);
    cJSON_AddStringToObject(o, "act", act_names[c->act]);
    cJSON_AddNumberToObject(o, "gated_mlp", c->gated_mlp);
    cJSON_AddStringToObject(o, "rope", rope_names[c->rope]);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddNumberToObject(o, "pos_offset", c->pos_offset);
    cJSON_AddNumberToObject(o, "embed_dim", c->embed_dim);
    cJSON_AddNumberToObject(o, "bos_id", c->bos_id);
    cJSON_AddNumberToObject(o, "eos_id", c->eos_id);
    cJSON_AddNumberToObject(o, "img_size", c->img_size);
    cJSON_AddNumberToObject(o, "patch_size", c->patch_size);
    cJSON_AddNumberToObject(o, "in_chans", c->in_chans);
    cJSON_AddNumberToObject(o, "cls_token", c->cls_token);
    cJSON *mean = cJSON_AddArrayToObject(o, "mean"), *std = cJSON_AddArrayToObject(o, "std");
    for (int i = 0; i < 4; i++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(c->mean[i]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(c->std[i]));
    }
    cJSON_AddNumberToObject(o, "crop_pct", c->crop_pct);
    if (c->prep.hf) cJSON_AddItemToObject(o, "preprocessor", ptq_preprocess_to_json(&c->prep, c->in_chans));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static ptq_status pick(const cJSON *o, const char *file, const char *key, const char **names, int n, int *out,
                       ptq_error *err) {
    const char *v;
    PTQ_TRY(ptq_json_string(o, file, key, 1, NULL, &v, err));
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return PTQ_OK;
        }
    return ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config field %s has unknown value '%s'", file, key, v);
}

static ptq_status parse_config(const char *json, const char *file, ptq_config *c, ptq_error *err) {
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ ptq.config is not a JSON object", file);
    }
    memset(c, 0, sizeof *c);
    const char *arch_names[] = {"llama", "gpt2", "opt", "vit"};
    int v[32], k = 0;
    double d[4];
    ptq_status s = PTQ_OK;
    const int big = 1 << 24;
#define INT(key, lo, hi) \
    if (s == PTQ_OK) s = ptq_json_int(o, file, key, 1, 0, lo, hi, &v[k++], err)
    if (s == PTQ_OK) s = pick(o, file, "arch", arch_names, 4, &v[k++], err);
    INT("causal", 0, 1);
    INT("dim", 1, big);
    INT("n_layers", 1, 4096);
    INT("n_heads", 1, 4096);
    INT("n_kv_heads", 1, 4096);
    INT("head_dim", 1, 65536);
    INT("hidden_dim", 1, big);
    INT("vocab_size", 1, big);
    INT("max_seq", 1, big);
    if (s == PTQ_OK) s = pick(o, file, "norm", norm_names, 2, &v[k++], err);
    INT("pre_norm", 0, 1);
    if (s == PTQ_OK) s = pick(o, file, "act", act_names, 4, &v[k++], err);
    INT("gated_mlp", 0, 1);
    if (s == PTQ_OK) s = pick(o, file, "rope", rope_names, 3, &v[k++], err);
    INT("pos_offset", 0, 1024);
    INT("embed_dim", 1, big);
    INT("bos_id", -1, big);
    INT("eos_id", -1, big);
    INT("img_size", 0, 65536);
    INT("patch_size", 0, 65536);
    INT("in_chans", 0, 4);
    INT("cls_token", 0, 1);
#undef INT
    if (s == PTQ_OK) s = ptq_json_float(o, file, "norm_eps", 1, 0, 0, 1, &d[0], err);
    if (s == PTQ_OK) s = ptq_json_float(o, file, "rope_theta", 1, 0, 0, 1e12, &d[1], err);
    if (s == PTQ_OK) s = ptq_json_float(o, file, "crop_pct", 1, 1, 0, 10, &d[2], err);
    if (s == PTQ_OK) {
        const cJSON *mean = cJSON_GetObjectItemCaseSensitive(o, "mean"), *std = cJSON_GetObjectItemCaseSensitive(o, "std");
        if (cJSON_GetArraySize(mean) != 4 || cJSON_GetArraySize(std) != 4)
            s = ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config mean/std must have 4 entries", file);
        for (int i = 0; s == PTQ_OK && i < 4; i++) {
            const cJSON *mi = cJSON_GetArrayItem(mean, i), *si = cJSON_GetArrayItem(std, i);
            if (!cJSON_IsNumber(mi) || !cJSON_IsNumber(si) || fabs(mi->valuedouble) > 1e6 || fabs(si->valuedouble) > 1e6)
                s = ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config mean[%d] / std[%d] must be numbers within +-1e6", file,
                             i, i);
            else c->mean[i] = (float)mi->valuedouble, c->std[i] = (float)si->valuedouble;
        }
    }
    /* a Hugging Face image pipeline (preprocessor_config.json) carried from the source model */
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(o, "preprocessor");
    if (s == PTQ_OK && pp) {
        int ch = 0, img = 0;
        char what[4200];
        snprintf(what, sizeof what, "%s (ptq.config preprocessor)", file);
        s = ptq_json_int(o, file, "in_chans", 1, 0, 1, 4, &ch, err);
        if (s == PTQ_OK) s = ptq_json_int(o, file, "img_size", 1, 0, 1, 65536, &img, err);
        if (s == PTQ_OK) s = ptq_preprocess_parse(pp, what, ch, img, &c->prep, err);
    }
    cJSON_Delete(o);
    if (s != PTQ_OK) return s;
    c->config_norm = c->prep.hf; /* the mean/std saved are config.json's, compared with the pipeline's */
    k = 0;
    c->arch = (ptq_arch)v[k++];
    c->causal = v[k++];
    c->dim = v[k++];
    c->n_layers = v[k++];
    c->n_heads = v[k++];
    c->n_kv_heads = v[k++];
    c->head_dim = v[k++];
    c->hidden_dim = v[k++];
    c->vocab_size = v[k++];
    c->max_seq = v[k++];
    c->norm = (ptq_norm_kind)v[k++];
    c->pre_norm = v[k++];
    c->act = (ptq_act_kind)v[k++];
    c->gated_mlp = v[k++];
    c->rope = (ptq_rope_kind)v[k++];
    c->pos_offset = v[k++];
    c->embed_dim = v[k++];
    c->bos_id = v[k++];
    c->eos_id = v[k++];
    c->img_size = v[k++];
    c->patch_size = v[k++];
    c->in_chans = v[k++];
    c->cls_token = v[k++];
    c->norm_eps = (float)d[0];
    c->rope_theta = (float)d[1];
    c->crop_pct = (float)d[2];
    /* products of these numbers size tensors and buffers: each is bounded in 64 bits before use */
    int64_t qkv = ((int64_t)c->n_heads + 2 * (int64_t)c->n_kv_heads) * c->head_dim;
    if (qkv > big)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config (n_heads + 2 n_kv_heads) * head_dim = %lld, above %d", file,
                        (long long)qkv, big);
    if (c->bos_id >= c->vocab_size || c->eos_id >= c->vocab_size)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config bos_id %d / eos_id %d must be below vocab_size %d", file,
                        c->bos_id, c->eos_id, c->vocab_size);
    if (c->rope != PTQ_ROPE_NONE && !(c->rope_theta >= 1))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config rope_theta is %g, expected 1 to 1e12 with RoPE", file,
                        (double)c->rope_theta);
    if (c->arch == PTQ_ARCH_VIT) {
        if (c->patch_size < 1 || c->img_size < c->patch_size || c->img_size % c->patch_size != 0 || c->in_chans < 1)
            return ptq_fail(err, PTQ_ERR_CONFIG,
                            "%s: ptq.config has an invalid image geometry (img_size %d, patch_size %d, in_chans %d): "
                            "expected 1 <= patch_size <= img_size, img_size a multiple of patch_size, in_chans 1..4",
                            file, c->img_size, c->patch_size, c->in_chans);
        int64_t patch_in = (int64_t)c->in_chans * c->patch_size * c->patch_size, g = c->img_size / c->patch_size;
        if (patch_in > big)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config in_chans * patch_size^2 = %lld, above %d", file,
                            (long long)patch_in, big);
        if (g * g + c->cls_token != c->max_seq)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config: %lld patches + %d cls token do not make max_seq %d",
                            file, (long long)(g * g), c->cls_token, c->max_seq);
        if (!(c->crop_pct >= 0.01))
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config crop_pct is %g, expected 0.01 to 10", file,
                            (double)c->crop_pct);
        for (int i = 0; i < c->in_chans; i++)
            if (!(c->std[i] >= 1e-6))
                return ptq_fail(err, PTQ_ERR_CONFIG, "%s: ptq.config std[%d] is %g, expected 1e-6 to 1e6", file, i,
                                (double)c->std[i]);
    }
    return PTQ_OK;
}

/* ------------------------------------------------------------------ saving */

typedef struct {
    ptq_st_writer *w;
    ptq_error *err;
    ptq_status s;
    int tight; /* a packed matrix of 5-7-bit codes went in: format version 4 */
    int sym;   /* a packed matrix without stored zero points went in: format version 5 */
} saver;

static void put_f32(saver *sv, const char *name, const float *data, int ndim, int64_t d0, int64_t d1) {
    if (sv->s != PTQ_OK || !data) return;
    int64_t shape[2] = {d0, d1};
    size_t n = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    sv->s = ptq_st_writer_add_ref(sv->w, name, PTQ_DT_F32, ndim, shape, data, n * sizeof(float), sv->err);
}

static void put_raw(saver *sv, const char *name, ptq_dtype dt, const void *data, int ndim, int64_t d0, int64_t d1) {
    if (sv->s != PTQ_OK || !data) return;
    int64_t shape[2] = {d0, d1};
    size_t n = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    sv->s = ptq_st_writer_add_ref(sv->w, name, dt, ndim, shape, data, n * ptq_dtype_size(dt), sv->err);
}

/* bias + bc (+ extra): Bias Compensation is folded into the stored bias (copied). */
static void put_bias(saver *sv, const char *name, const float *b, const float *bc, const float *extra,
                     const float *extra2, int n) {
    if (sv->s != PTQ_OK || (!b && !bc && !extra && !extra2)) return;
    float *sum = malloc((size_t)n * sizeof *sum);
    if (!sum) {
        sv->s = ptq_fail(sv->err, PTQ_ERR_NOMEM, "out of memory saving %s", name);
        return;
    }
    for (int i = 0; i < n; i++)
        sum[i] = (b ? b[i] : 0.0f) + (bc ? bc[i] : 0.0f) + (extra ? extra[i] : 0.0f) + (extra2 ? extra2[i] : 0.0f);
    int64_t shape[1] = {n};
    sv->s = ptq_st_writer_add_f32(sv->w, name, PTQ_DT_F32, 1, shape, sum, sv->err);
    free(sum);
}

/* A packed matrix's tensors; returns its ptq.linears entry. */
static cJSON *put_packed(saver *sv, const char *prefix, const ptq_qweight *q) {
    char n[300];
    snprintf(n, sizeof n, "%s.qweight", prefix);
    put_raw(sv, n, PTQ_DT_U8, q->codes, 2, q->out, (int64_t)q->row_bytes);
    snprintf(n, sizeof n, "%s.scales", prefix);
    put_raw(sv, n, PTQ_DT_F16, q->scales, 2, q->out, q->n_groups);
    if (q->zeros) {
        snprintf(n, sizeof n, "%s.zeros", prefix);
        put_raw(sv, n, PTQ_DT_U8, q->zeros, 2, q->out, q->n_groups);
    } else {
        sv->sym = 1;
    }
    if (q->perm) {
        snprintf(n, sizeof n, "%s.perm", prefix);
        put_raw(sv, n, PTQ_DT_I32, q->perm, 1, q->in, 0);
    }
    if (q->bits >= 5 && q->bits <= 7) sv->tight = 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "bits", q->grid_bits);
    cJSON_AddNumberToObject(o, "group", q->group);
    cJSON_AddNumberToObject(o, "in", q->in);
    cJSON_AddNumberToObject(o, "out", q->out);
    if (!q->zeros) cJSON_AddNumberToObject(o, "sym", 1);
    return o;
}

/* A float matrix stored as dt (F32, or F16/BF16: values already on that grid, quant/head_embed.c). */
static void put_matrix(saver *sv, const char *name, ptq_dtype dt, const float *w, int64_t d0, int64_t d1) {
    if (dt == PTQ_DT_F32) {
        put_f32(sv, name, w, 2, d0, d1);
    } else if (sv->s == PTQ_OK && w) {
        int64_t shape[2] = {d0, d1};
        sv->s = ptq_st_writer_add_f32(sv->w, name, dt, 2, shape, w, sv->err);
    }
}

/* wdt: the storage type of float weights (the head's may be 16-bit). */
static void put_linear(saver *sv, const char *prefix, const ptq_linear *lin, const float *extra_bias, cJSON *linears,
                       cJSON *names, ptq_dtype wdt) {
    if (!ptq_linear_present(lin)) return;
    char n[300];
    if (!lin->q && !lin->w && sv->s == PTQ_OK) { /* streamed (ptq_load_options.stream_weights), never converted */
        sv->s = ptq_linear_is_ggml(lin)
                    ? ptq_fail(sv->err, PTQ_ERR_UNSUPPORTED, "%s: %s holds a GGUF's ggml blocks, which a .ptq file does "
                               "not store (ptq_model_widen_ggml converts them to float32 first)", prefix, lin->name)
                    : ptq_fail(sv->err, PTQ_ERR_ARG, "%s: the weights of %s were streamed and are not in memory", prefix,
                               lin->name);
        return;
    }
    if (lin->q) {
        cJSON *o = put_packed(sv, prefix, lin->q);
        if (lin->aq) {
            const ptq_actq *aq = lin->aq;
            cJSON *a = cJSON_AddObjectToObject(o, "act");
            cJSON_AddNumberToObject(a, "bits", aq->bits);
            cJSON_AddNumberToObject(a, "sym", aq->sym);
            cJSON_AddNumberToObject(a, "per_token", aq->per_token);
            cJSON_AddNumberToObject(a, "scale", aq->scale);
            cJSON_AddNumberToObject(a, "zero", aq->zero);
            cJSON_AddNumberToObject(a, "twin", aq->twin);
            cJSON_AddNumberToObject(a, "scale_neg", aq->scale_neg);
            snprintf(n, sizeof n, "%s.noise", prefix);
            put_f32(sv, n, aq->noise, 1, lin->in, 0);
        }
        cJSON_AddItemToObject(linears, prefix, o);
    } else {
        snprintf(n, sizeof n, "%s.weight", prefix);
        put_matrix(sv, n, wdt, lin->w, lin->out, lin->in);
    }
    snprintf(n, sizeof n, "%s.bias", prefix);
    put_bias(sv, n, lin->b, lin->bc, extra_bias, lin->aq ? lin->aq->noise_bias : NULL, lin->out);
    snprintf(n, sizeof n, "%s.bc_pos", prefix);
    put_f32(sv, n, lin->bc_pos, 2, lin->bc_len, lin->out);
    if (lin->name[0]) cJSON_AddStringToObject(names, prefix, lin->name);
}

static void put_norm(saver *sv, const char *prefix, const ptq_norm *nm, const float *extra_bias, int dim) {
    char n[300];
    snprintf(n, sizeof n, "%s.weight", prefix);
    put_f32(sv, n, nm->w, 1, dim, 0);
    snprintf(n, sizeof n, "%s.bias", prefix);
    put_bias(sv, n, nm->b, extra_bias, NULL, NULL, dim);
}

static void meta(saver *sv, const char *key, const char *value) {
    if (sv->s == PTQ_OK) sv->s = ptq_st_writer_set_metadata(sv->w, key, value, sv->err);
}

/* The token embeddings: packed (ptq.linears entry "tok_emb"), 16-bit, or float32. */
static void put_embeddings(saver *sv, const ptq_model *m, cJSON *linears) {
    const ptq_config *c = &m->cfg;
    if (m->tok_emb_ggml && sv->s == PTQ_OK)
        sv->s = ptq_fail(sv->err, PTQ_ERR_UNSUPPORTED, "the token embedding holds a GGUF's ggml blocks, which a .ptq "
                         "file does not store (ptq_model_widen_ggml converts them to float32 first)");
    else if (m->tok_emb_q) cJSON_AddItemToObject(linears, "tok_emb", put_packed(sv, "tok_emb", m->tok_emb_q));
    else if (m->tok_emb_h) put_raw(sv, "tok_emb", (ptq_dtype)m->tok_emb_dt, m->tok_emb_h, 2, c->vocab_size, c->embed_dim);
    else put_matrix(sv, "tok_emb", (ptq_dtype)m->tok_emb_dt, m->tok_emb, c->vocab_size, c->embed_dim);
}

/* The file is written in three parts, so that a quantization can stream its blocks out (ptq_model_stream):
 * the tensors before the blocks (writer section 0), each block (section 1), then the metadata and the tokenizer
 * (section 2). The linears' descriptions (ptq.linears, ptq.names) keep the same order: those before the blocks,
 * then the blocks' (kept apart in blin/bnames until the end). */
static void put_front(saver *sv, const ptq_model *m, cJSON *linears, cJSON *names) {
    const ptq_config *c = &m->cfg;
    ptq_st_writer_set_section(sv->w, 0);
    if (c->arch != PTQ_ARCH_VIT) put_embeddings(sv, m, linears);
    put_f32(sv, "pos_emb", m->pos_emb, 2, m->n_pos, c->dim);
    put_f32(sv, "cls_token", m->cls_token, 1, c->dim, 0);
    put_linear(sv, "patch", &m->patch, NULL, linears, names, PTQ_DT_F32);
    put_linear(sv, "proj_in", &m->proj_in, NULL, linears, names, PTQ_DT_F32);
    put_linear(sv, "proj_out", &m->proj_out, NULL, linears, names, PTQ_DT_F32);
    put_norm(sv, "final_norm", &m->final_norm, NULL, c->dim);
    if (ptq_head_tied(m)) {
        put_bias(sv, "head.bias", m->head.b, m->head.bc, NULL, NULL, m->head.out);
    } else {
        put_linear(sv, "head", &m->head, NULL, linears, names, (ptq_dtype)m->head_dt);
    }
}

static void put_block(saver *sv, const ptq_model *m, int l, cJSON *blin, cJSON *bnames) {
    const ptq_config *c = &m->cfg;
    const ptq_block *b = &m->blocks[l];
    char buf[64];
    ptq_st_writer_set_section(sv->w, 1);
    /* the block's per-channel BC lands on the last add of the block: DOWN's bias (pre-norm) or
       norm2's bias (post-norm, whose output is the block output) */
    snprintf(buf, sizeof buf, "blocks.%d.norm1", l);
    put_norm(sv, buf, &b->norm1, NULL, c->dim);
    snprintf(buf, sizeof buf, "blocks.%d.norm2", l);
    put_norm(sv, buf, &b->norm2, c->pre_norm ? NULL : b->bc, c->dim);
    for (int r = 0; r < PTQ_LIN_COUNT; r++) {
        snprintf(buf, sizeof buf, "blocks.%d.%s", l, role_names[r]);
        put_linear(sv, buf, &b->lin[r], r == PTQ_LIN_DOWN && c->pre_norm ? b->bc : NULL, blin, bnames, PTQ_DT_F32);
    }
    snprintf(buf, sizeof buf, "blocks.%d.bc_pos", l);
    put_f32(sv, buf, b->bc_pos, 2, b->bc_len, c->dim);
}

/* Appends the members of `from` (emptied) to `to`, in order. */
static void move_members(cJSON *to, cJSON *from) {
    while (from && from->child) cJSON_AddItemToArray(to, cJSON_DetachItemViaPointer(from, from->child));
}

/* The metadata and tokenizer, then the checksums, and the file. Takes linears/names/blin/bnames. */
static ptq_status put_back_and_save(saver *sv, const ptq_model *m, const char *path, const ptq_save_info *info,
                                    cJSON *linears, cJSON *names, cJSON *blin, cJSON *bnames) {
    const ptq_config *c = &m->cfg;
    ptq_error *err = sv->err;
    char buf[256];
    ptq_st_writer_set_section(sv->w, 2);
    move_members(linears, blin);
    move_members(names, bnames);
    cJSON_Delete(blin);
    cJSON_Delete(bnames);
    int tied = ptq_head_tied(m);
    /* version 3 only where the file needs it */
    int v3 = m->tok_emb_q || m->tok_emb_h || m->tok_emb_dt || m->head_dt || m->head.q;
    if (c->norm == PTQ_NORM_RMS && !c->pre_norm)
        for (int l = 0; l < c->n_layers; l++)
            if (m->blocks[l].bc && sv->s == PTQ_OK)
                sv->s = ptq_fail(err, PTQ_ERR_UNSUPPORTED, "block BC cannot be folded into a post-norm RMS block");
    char *cfg = config_json(c), *lj = cJSON_PrintUnformatted(linears), *nj = cJSON_PrintUnformatted(names);
    meta(sv, "format", "ptq");
    meta(sv, "ptq.format_version", sv->sym     ? PTQ_FORMAT_VERSION_SYM
                                   : sv->tight ? PTQ_FORMAT_VERSION_TIGHT
                                   : v3        ? PTQ_FORMAT_VERSION
                                               : PTQ_FORMAT_VERSION_BASE);
    meta(sv, "ptq.version", ptq_version());
    meta(sv, "ptq.config", cfg);
    meta(sv, "ptq.linears", lj);
    meta(sv, "ptq.names", nj);
    meta(sv, "ptq.head_tied", tied ? "1" : "0");
    meta(sv, "ptq.method", m->quant.method[0] ? m->quant.method : "float");
    snprintf(buf, sizeof buf, "%d", m->quant.wbits);
    meta(sv, "ptq.wbits", buf);
    snprintf(buf, sizeof buf, "%d", m->quant.group);
    meta(sv, "ptq.group", buf);
    meta(sv, "ptq.sym", m->quant.sym ? "1" : "0");
    meta(sv, "ptq.act_order", m->quant.act_order ? "1" : "0");
    snprintf(buf, sizeof buf, "scope=%s%s%s shape=%s mode=%s", m->quant.bc_scope & PTQ_BC_LINEAR ? "linear," : "",
             m->quant.bc_scope & PTQ_BC_BLOCK ? "block," : "", m->quant.bc_scope & PTQ_BC_LOGITS ? "logits," : "",
             m->quant.bc_shape == PTQ_BC_POSITION ? "position" : "channel",
             m->quant.bc_mode == PTQ_BC_PARALLEL ? "parallel" : "sequential");
    meta(sv, "ptq.bc", m->quant.bc_scope ? buf : "none");
    snprintf(buf, sizeof buf, "A%d %s%s", m->quant.abits, calib_names[m->quant.act_calib % N_CALIBS],
             m->quant.noisyquant ? " noisyquant" : "");
    meta(sv, "ptq.act", m->quant.abits ? buf : "none");
    cJSON *attn = cJSON_CreateObject();
    for (int l = 0; l < c->n_layers; l++)
        if (m->blocks[l].attn_bits) {
            char key[16];
            snprintf(key, sizeof key, "%d", l);
            double v[4] = {m->blocks[l].attn_bits, m->blocks[l].attn_scale[0], m->blocks[l].attn_scale[1],
                           m->blocks[l].attn_scale[2]};
            cJSON_AddItemToObject(attn, key, cJSON_CreateDoubleArray(v, 4));
        }
    char *aj = cJSON_PrintUnformatted(attn);
    meta(sv, "ptq.attn", aj);
    free(aj);
    cJSON_Delete(attn);
    const char *src = info && info->source ? info->source : m->path;
    meta(sv, "ptq.source", src);
    const char *cd = info && info->calib_desc ? info->calib_desc : m->quant.calib_desc;
    meta(sv, "ptq.calib", cd);
    snprintf(buf, sizeof buf, "%016llx", (unsigned long long)(info ? info->calib_hash : m->quant.calib_hash));
    meta(sv, "ptq.calib_hash", buf);
    free(cfg);
    free(lj);
    free(nj);
    cJSON_Delete(linears);
    cJSON_Delete(names);
    if (sv->s == PTQ_OK && info && info->tokenizer) {
        ptq_tok_spec spec = {0};
        sv->s = ptq_tokenizer_get_spec(info->tokenizer, &spec, err);
        if (sv->s == PTQ_OK) sv->s = ptq_qmodel_put_tokenizer(sv->w, &spec, err);
        ptq_tok_spec_free(&spec);
    }
    if (sv->s == PTQ_OK) sv->s = ptq_qmodel_seal(sv->w, err);
    if (sv->s == PTQ_OK) sv->s = ptq_st_writer_save(sv->w, path, err);
    return sv->s;
}

ptq_status ptq_model_save(const ptq_model *m, const char *path, const ptq_save_info *info, ptq_error *err) {
    saver sv = {NULL, err, PTQ_OK, 0, 0};
    PTQ_TRY(ptq_st_writer_new(&sv.w, err));
    cJSON *linears = cJSON_CreateObject(), *names = cJSON_CreateObject();
    cJSON *blin = cJSON_CreateObject(), *bnames = cJSON_CreateObject();
    put_front(&sv, m, linears, names);
    for (int l = 0; l < m->cfg.n_layers; l++) put_block(&sv, m, l, blin, bnames);
    ptq_status s = put_back_and_save(&sv, m, path, info, linears, names, blin, bnames);
    ptq_st_writer_free(sv.w);
    return s;
}

/* ------------------------------------------------------------------ streaming */

struct ptq_model_stream {
    saver sv;
    ptq_error stream_err; /* sv.err between calls; copied out to the caller's */
    cJSON *blin, *bnames;
    char path[4096];
    int next_layer;
    ptq_quant_summary sum;
};

ptq_status ptq_model_stream_open(const char *path, ptq_model_stream **out, ptq_error *err) {
    *out = NULL;
    if (!path || strlen(path) >= sizeof((ptq_model_stream *)0)->path)
        return ptq_fail(err, PTQ_ERR_ARG, "ptq_model_stream_open: no output path, or one too long");
    ptq_model_stream *s = calloc(1, sizeof *s);
    if (!s) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory", path);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->blin = cJSON_CreateObject();
    s->bnames = cJSON_CreateObject();
    ptq_status st = s->blin && s->bnames ? ptq_st_writer_new(&s->sv.w, err) : ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
    if (st == PTQ_OK) st = ptq_st_writer_spill_open(s->sv.w, path, err);
    if (st != PTQ_OK) {
        ptq_model_stream_free(s);
        return st;
    }
    *out = s;
    return PTQ_OK;
}

static void add_sum(ptq_quant_summary *to, const ptq_quant_summary *x) {
    to->linears += x->linears;
    to->weights += x->weights;
    to->bits += x->bits;
    to->noisy_linears += x->noisy_linears;
    to->bits_per_weight = to->weights ? to->bits / (double)to->weights : 0;
}

ptq_status ptq_model_stream_block(ptq_model_stream *s, ptq_model *m, int layer, ptq_error *err) {
    if (layer != s->next_layer)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: block %d streamed out of order (expected %d)", s->path, layer,
                        s->next_layer);
    s->sv.err = err;
    put_block(&s->sv, m, layer, s->blin, s->bnames);
    if (s->sv.s == PTQ_OK) s->sv.s = ptq_st_writer_spill(s->sv.w, err);
    if (s->sv.s != PTQ_OK) return s->sv.s;
    /* the summary counts the packed linears present, which are now this block's only: the earlier ones are freed */
    ptq_quant_summary q;
    struct ptq_qweight *hq = m->head.q; /* a head packed before the blocks (tied to the embeddings) counts once, at the end */
    m->head.q = NULL;
    ptq_model_quant_summary(m, &q);
    m->head.q = hq;
    add_sum(&s->sum, &q);
    for (int r = 0; r < PTQ_LIN_COUNT; r++) ptq_linear_drop_quant(&m->blocks[layer].lin[r]);
    s->next_layer++;
    return PTQ_OK;
}

ptq_status ptq_model_stream_finish(ptq_model_stream *s, ptq_model *m, const ptq_save_info *info, ptq_error *err) {
    if (s->next_layer != m->cfg.n_layers)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: %d of %d blocks were streamed; nothing is written", s->path,
                        s->next_layer, m->cfg.n_layers);
    if (s->sv.s != PTQ_OK) return s->sv.s;
    s->sv.err = err;
    if (!m->head.q) /* a streamed float head is written as float32, as when whole */
        PTQ_TRY(ptq_linear_materialize(m, &m->head, err));
    ptq_quant_summary q; /* the head's, if packed */
    ptq_model_quant_summary(m, &q);
    add_sum(&s->sum, &q);
    cJSON *linears = cJSON_CreateObject(), *names = cJSON_CreateObject();
    put_front(&s->sv, m, linears, names);
    ptq_status st = put_back_and_save(&s->sv, m, s->path, info, linears, names, s->blin, s->bnames);
    s->blin = s->bnames = NULL; /* taken */
    return st;
}

void ptq_model_stream_summary(const ptq_model_stream *s, ptq_quant_summary *out) { *out = s->sum; }

void ptq_model_stream_free(ptq_model_stream *s) {
    if (!s) return;
    ptq_st_writer_free(s->sv.w);
    cJSON_Delete(s->blin);
    cJSON_Delete(s->bnames);
    free(s);
}

/* ------------------------------------------------------------------ checksums */

/* Sort metadata entries by key (bytes), for the metadata checksum. */
typedef struct {
    const char *key, *value;
} kv;

static int cmp_kv(const void *a, const void *b) { return strcmp(((const kv *)a)->key, ((const kv *)b)->key); }

/* CRC-32C of every metadata entry but META_CRC_KEY, in byte order of the keys: key, NUL, value, NUL. */
static uint32_t metadata_crc(kv *e, int n) {
    qsort(e, (size_t)n, sizeof *e, cmp_kv);
    uint32_t c = 0;
    static const char nul = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(e[i].key, META_CRC_KEY) == 0) continue;
        c = ptq_crc32c(c, e[i].key, strlen(e[i].key));
        c = ptq_crc32c(c, &nul, 1);
        c = ptq_crc32c(c, e[i].value, strlen(e[i].value));
        c = ptq_crc32c(c, &nul, 1);
    }
    return c;
}

/* CRC-32C of n tensors' bytes, in parallel (the tensors are independent); tensors with data NULL keep crc[i].
 * mapped: the data lies in a file mapping, whose pages leave the resident set once checked (a loaded model then
 * holds its file once, in the model's buffers, not twice). */
static void tensor_crcs(int n, const void *const *data, const size_t *nbytes, uint32_t *crc, int mapped) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++)
        if (data[i]) {
            crc[i] = ptq_crc32c(0, data[i], nbytes[i]);
            if (mapped) ptq_mmap_drop(data[i], nbytes[i]);
        }
}

ptq_status ptq_qmodel_seal(ptq_st_writer *w, ptq_error *err) {
    int n = ptq_st_writer_count(w);
    const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    const void **data = malloc((size_t)(n ? n : 1) * sizeof *data);
    size_t *nbytes = malloc((size_t)(n ? n : 1) * sizeof *nbytes);
    uint32_t *crc = malloc((size_t)(n ? n : 1) * sizeof *crc);
    cJSON *sums = cJSON_CreateObject();
    ptq_status s = names && data && nbytes && crc && sums ? PTQ_OK : ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
    char *sj = NULL;
    if (s == PTQ_OK) {
        for (int i = 0; i < n; i++) {
            ptq_st_writer_entry(w, i, &names[i], &data[i], &nbytes[i]);
            if (ptq_st_writer_entry_crc(w, i, &crc[i])) data[i] = NULL; /* streamed out: its CRC is known */
        }
        tensor_crcs(n, data, nbytes, crc, 0);
        for (int i = 0; i < n; i++) {
            char hex[9];
            snprintf(hex, sizeof hex, "%08x", (unsigned)crc[i]);
            cJSON_AddStringToObject(sums, names[i], hex);
        }
        sj = cJSON_PrintUnformatted(sums);
        s = sj ? ptq_st_writer_set_metadata(w, CHECKSUMS_KEY, sj, err) : ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
    }
    int nm = ptq_st_writer_meta_count(w);
    kv *e = s == PTQ_OK ? malloc((size_t)(nm ? nm : 1) * sizeof *e) : NULL;
    if (s == PTQ_OK && !e) s = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
    if (s == PTQ_OK) {
        for (int i = 0; i < nm; i++) ptq_st_writer_meta(w, i, &e[i].key, &e[i].value);
        char hex[9];
        snprintf(hex, sizeof hex, "%08x", (unsigned)metadata_crc(e, nm));
        s = ptq_st_writer_set_metadata(w, META_CRC_KEY, hex, err);
    }
    free(e);
    if (sj) cJSON_free(sj);
    cJSON_Delete(sums);
    free(names);
    free(data);
    free(nbytes);
    free(crc);
    return s;
}

/* 8 lowercase hex digits. */
static int parse_hex32(const char *s, uint32_t *out) {
    if (!s || strlen(s) != 8) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        int c = s[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 1;
}

/* The file's tensors are exactly those ptq.checksums lists (always checked: it is cheap), and, when
 * verify is set, the metadata and every tensor's bytes have the CRC-32C the file records. */
static ptq_status check_integrity(const char *path, const ptq_safetensors *st, int verify, ptq_error *err) {
    if (verify) {
        uint32_t want, got;
        if (!parse_hex32(ptq_st_metadata(st, META_CRC_KEY), &want))
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ %s is missing or not 8 hex digits: the file is corrupted",
                            path, META_CRC_KEY);
        kv *e = malloc((size_t)(st->n_meta ? st->n_meta : 1) * sizeof *e);
        if (!e) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
        for (int i = 0; i < st->n_meta; i++) e[i] = (kv){st->meta_keys[i], st->meta_values[i]};
        got = metadata_crc(e, st->n_meta);
        free(e);
        if (got != want)
            return ptq_fail(err, PTQ_ERR_FORMAT,
                            "%s: the metadata (__metadata__) is corrupted: its CRC-32C is %08x, the file records %08x",
                            path, (unsigned)got, (unsigned)want);
    }
    const char *sj = ptq_st_metadata(st, CHECKSUMS_KEY);
    if (!sj) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ has no %s (the list of tensors and their checksums)",
                             path, CHECKSUMS_KEY);
    cJSON *sums = cJSON_Parse(sj);
    ptq_status s = cJSON_IsObject(sums) ? PTQ_OK
                                        : ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ %s is not a JSON object", path,
                                                   CHECKSUMS_KEY);
    int n = st->n_tensors;
    uint32_t *want = s == PTQ_OK ? malloc((size_t)(n ? n : 1) * sizeof *want) : NULL;
    if (s == PTQ_OK && !want) s = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
    const cJSON *x;
    for (int i = 0; s == PTQ_OK && i < n; i++) {
        const char *name = st->tensors[i].name;
        x = cJSON_GetObjectItemCaseSensitive(sums, name);
        if (!x) s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: unexpected tensor %s (%s does not list it)", path, name, CHECKSUMS_KEY);
        else if (!parse_hex32(cJSON_IsString(x) ? x->valuestring : NULL, &want[i]))
            s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: %s entry of tensor %s is not 8 hex digits", path, CHECKSUMS_KEY, name);
    }
    if (s == PTQ_OK) cJSON_ArrayForEach(x, sums) {
        if (!ptq_st_find(st, x->string)) {
            s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor %s is missing (%s lists it)", path, x->string, CHECKSUMS_KEY);
            break;
        }
    }
    if (s == PTQ_OK && cJSON_GetArraySize(sums) != n)
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: %s has %d entries for %d tensors (a name is repeated)", path, CHECKSUMS_KEY,
                     cJSON_GetArraySize(sums), n);
    cJSON_Delete(sums);
    if (s != PTQ_OK || !verify) {
        free(want);
        return s;
    }
    const void **data = malloc((size_t)(n ? n : 1) * sizeof *data);
    size_t *nbytes = malloc((size_t)(n ? n : 1) * sizeof *nbytes);
    uint32_t *got = malloc((size_t)(n ? n : 1) * sizeof *got);
    if (!data || !nbytes || !got) s = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
    if (s == PTQ_OK) {
        for (int i = 0; i < n; i++) data[i] = st->tensors[i].data, nbytes[i] = st->tensors[i].nbytes;
        tensor_crcs(n, data, nbytes, got, 1);
        for (int i = 0; i < n; i++)
            if (got[i] != want[i]) {
                s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor %s is corrupted: its data has CRC-32C %08x, the file records %08x",
                             path, st->tensors[i].name, (unsigned)got[i], (unsigned)want[i]);
                break;
            }
    }
    free(data);
    free(nbytes);
    free(got);
    free(want);
    return s;
}

/* ------------------------------------------------------------------ loading */

typedef struct {
    ptq_model *m;
    const ptq_safetensors *st;
    const char *file;
    ptq_error *err;
    unsigned char *used; /* [st->n_tensors]: read into the model */
    int act_order;       /* every packed linear carries a permutation */
    int noisy;           /* every static, non-twin activation quantizer carries NoisyQuant noise */
    int head_tied;       /* the head is tok_emb: no head.weight */
    int wide;            /* format version 2 or 3: 5-7-bit codes are stored in 8 bits (repacked on load) */
    int sym_ok;          /* format version 5: a packed matrix may leave out its zero points ("sym": 1) */
} loader;

/* The stored tensor `name`, checked to have dtype dt and exactly the shape [d0] or [d0, d1] before any
 * memory is spent on it, and marked as used. Absent: an error when required (`why`, if given, says
 * what calls for it), else *out = NULL. */
static ptq_status find_tensor(loader *ld, const char *name, int required, const char *why, ptq_dtype dt, int ndim,
                              int64_t d0, int64_t d1, const ptq_st_tensor **out) {
    const ptq_st_tensor *t = *out = ptq_st_find(ld->st, name);
    if (!t) {
        if (!required) return PTQ_OK;
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: tensor %s is missing%s%s%s", ld->file, name, why ? " (" : "",
                        why ? why : "", why ? ")" : "");
    }
    int ok = t->dtype == dt && t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1);
    if (!ok)
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: tensor %s is %s %s[%lld%s%lld], expected %s [%lld, %lld]",
                        ld->file, name, ptq_dtype_name(t->dtype), t->ndim == 2 ? "" : "(1-d) ",
                        (long long)t->shape[0], t->ndim == 2 ? ", " : " ", t->ndim == 2 ? (long long)t->shape[1] : 0LL,
                        ptq_dtype_name(dt), (long long)d0, (long long)(ndim == 2 ? d1 : 1));
    ld->used[t - ld->st->tensors] = 1;
    int64_t sh[2] = {d0, d1};
    ptq_model_note_tensor(ld->m, name, ptq_dtype_name(dt), ndim, sh);
    return PTQ_OK;
}

/* A float tensor of the given shape, copied into model memory. Optional ones may be absent. */
static ptq_status get_f32(loader *ld, const char *name, int required, int ndim, int64_t d0, int64_t d1, float **out) {
    *out = NULL;
    const ptq_st_tensor *t;
    PTQ_TRY(find_tensor(ld, name, required, NULL, PTQ_DT_F32, ndim, d0, d1, &t));
    if (!t) return PTQ_OK;
    int64_t shape[2] = {d0, d1};
    float *p = ptq_model_floats(ld->m, (size_t)t->numel, name, ld->err);
    if (!p) return PTQ_ERR_NOMEM;
    PTQ_TRY(ptq_st_read_f32(ld->st, name, ndim, shape, p, ld->err)); /* also rejects NaN and Inf */
    ptq_mmap_drop(t->data, t->nbytes); /* copied: the file's pages need not stay resident too */
    *out = p;
    return PTQ_OK;
}

/* A float matrix stored as F32, F16 or BF16 (*dt says which), widened to float32 in model memory. */
static ptq_status get_float16(loader *ld, const char *name, int required, int64_t d0, int64_t d1, int *dt, float **out) {
    const ptq_st_tensor *t = ptq_st_find(ld->st, name);
    *dt = t && (t->dtype == PTQ_DT_F16 || t->dtype == PTQ_DT_BF16) ? (int)t->dtype : PTQ_DT_F32;
    if (*dt == PTQ_DT_F32) return get_f32(ld, name, required, 2, d0, d1, out);
    *out = NULL;
    PTQ_TRY(find_tensor(ld, name, 1, NULL, (ptq_dtype)*dt, 2, d0, d1, &t));
    int64_t shape[2] = {d0, d1};
    float *p = ptq_model_floats(ld->m, (size_t)t->numel, name, ld->err);
    if (!p) return PTQ_ERR_NOMEM;
    PTQ_TRY(ptq_st_read_f32(ld->st, name, 2, shape, p, ld->err)); /* converts; rejects NaN and Inf */
    ptq_mmap_drop(t->data, t->nbytes);
    *out = p;
    return PTQ_OK;
}

static ptq_status get_packed(loader *ld, const char *prefix, ptq_linear *lin, const cJSON *qinfo, int head_like);

/* After get_packed: the file pages of the scales, zero points and permutation it copied leave the resident set too
 * (it drops the codes'), else they stay until the file is closed and add ~3/32 byte per weight to the load's peak. */
static void drop_packed_rest(loader *ld, const char *prefix) {
    static const char *rest[] = {"scales", "zeros", "perm"};
    for (int i = 0; i < 3; i++) {
        char n[300];
        snprintf(n, sizeof n, "%s.%s", prefix, rest[i]);
        const ptq_st_tensor *t = ptq_st_find(ld->st, n);
        if (t) ptq_mmap_drop(t->data, t->nbytes);
    }
}

/* The token embeddings: packed (a ptq.linears entry "tok_emb"), F16/BF16 (kept so in memory, unless a tied head
 * needs them as float32 weights), or F32. */
static ptq_status get_embeddings(loader *ld, cJSON *linears) {
    ptq_model *m = ld->m;
    const ptq_config *c = &m->cfg;
    cJSON *qinfo = cJSON_DetachItemFromObjectCaseSensitive(linears, "tok_emb");
    if (qinfo) {
        ptq_linear tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.in = c->embed_dim;
        tmp.out = c->vocab_size;
        ptq_status s = cJSON_GetObjectItemCaseSensitive(qinfo, "act")
                           ? ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears tok_emb has an activation quantizer, "
                                      "but a table lookup has no input", ld->file)
                           : get_packed(ld, "tok_emb", &tmp, qinfo, 1);
        cJSON_Delete(qinfo);
        drop_packed_rest(ld, "tok_emb");
        m->tok_emb_q = tmp.q;
        if (s == PTQ_OK && !ld->head_tied) ptq_embed_map(m, ld->st, "tok_emb"); /* a lookup reads one row */
        return s;
    }
    const ptq_st_tensor *t = ptq_st_find(ld->st, "tok_emb");
    int dt = t && (t->dtype == PTQ_DT_F16 || t->dtype == PTQ_DT_BF16) ? (int)t->dtype : PTQ_DT_F32;
    if (dt == PTQ_DT_F32 || ld->head_tied) return get_float16(ld, "tok_emb", 1, c->vocab_size, c->embed_dim,
                                                              &m->tok_emb_dt, &m->tok_emb);
    PTQ_TRY(find_tensor(ld, "tok_emb", 1, NULL, (ptq_dtype)dt, 2, c->vocab_size, c->embed_dim, &t));
    uint16_t *h = ptq_alloc((size_t)t->numel, sizeof *h, "token embeddings", ld->err);
    if (!h) return PTQ_ERR_NOMEM;
    PTQ_TRY(ptq_model_own(m, h, ld->err));
    memcpy(h, t->data, t->nbytes);
    ptq_mmap_drop(t->data, t->nbytes);
    for (size_t i = 0; i < (size_t)t->numel; i++) {
        float v = dt == PTQ_DT_BF16 ? ptq_bf16_to_f32(h[i]) : ptq_f16_to_f32(h[i]);
        if (!isfinite(v))
            return ptq_fail(ld->err, PTQ_ERR_NUMERIC, "%s: tensor tok_emb has a non-finite value at index %zu",
                            ld->file, i);
    }
    m->tok_emb_h = h;
    m->tok_emb_dt = dt;
    return PTQ_OK;
}

/* Accepted activation steps (ptq.linears act.scale and act.scale_neg, ptq.attn steps): a calibrated step is
 * max|x| / (2^(bits-1) - 1) of real activations; one outside this range is damage, not calibration. */
#define ACT_STEP_MIN 1e-20
#define ACT_STEP_MAX 1e20

static int step_ok(double s) { return s >= ACT_STEP_MIN && s <= ACT_STEP_MAX; }

/* The activation quantizer of a packed linear: parameters from ptq.linears, noise from <prefix>.noise. */
static ptq_status get_act(loader *ld, const char *prefix, ptq_linear *lin, const cJSON *act) {
    const char *keys[] = {"bits", "sym", "per_token", "scale", "zero", "twin", "scale_neg"};
    double v[7];
    for (int i = 0; i < 7; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(act, keys[i]);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
            return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears %s.act.%s must be a finite number", ld->file, prefix,
                            keys[i]);
        v[i] = x->valuedouble;
        if ((i <= 2 || i == 5) && (v[i] != floor(v[i]) || v[i] < (i == 0 ? 2 : 0) || v[i] > (i == 0 ? 8 : 1)))
            return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears %s.act.%s is %g, expected %s", ld->file, prefix,
                            keys[i], v[i], i == 0 ? "an integer 2..8" : "0 or 1");
    }
    int bits = (int)v[0], sym = v[1] != 0, per_token = v[2] != 0, twin = v[5] != 0;
    /* the step is computed per token at run time when per_token; scale_neg exists only for twin */
    if (!per_token && !step_ok(v[3]))
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears %s.act.scale is %g, expected a step in [%g, %g]",
                        ld->file, prefix, v[3], ACT_STEP_MIN, ACT_STEP_MAX);
    if (twin && !step_ok(v[6]))
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears %s.act.scale_neg is %g, expected a step in [%g, %g]",
                        ld->file, prefix, v[6], ACT_STEP_MIN, ACT_STEP_MAX);
    if (!sym && (v[4] != floor(v[4]) || v[4] < 0 || v[4] > (1 << bits) - 1))
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears %s.act.zero is %g, expected an integer 0..%d",
                        ld->file, prefix, v[4], (1 << bits) - 1);
    if (twin && (!sym || per_token))
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears %s.act: a twin quantizer is symmetric and static",
                        ld->file, prefix);
    ptq_actq *aq = calloc(1, sizeof *aq);
    if (!aq) return ptq_fail(ld->err, PTQ_ERR_NOMEM, "out of memory");
    aq->bits = bits;
    aq->sym = sym;
    aq->per_token = per_token;
    aq->scale = (float)v[3];
    aq->zero = sym ? 0.0f : (float)v[4];
    aq->twin = twin;
    aq->scale_neg = (float)v[6];
    lin->aq = aq;
    /* NoisyQuant searches noise for every static, non-twin quantizer (and only those) */
    int noisy = ld->noisy && !per_token && !twin;
    char n[300];
    snprintf(n, sizeof n, "%s.noise", prefix);
    if (noisy) PTQ_TRY(get_f32(ld, n, 1, 1, lin->in, 0, &aq->noise));
    return ptq_linear_prepare_i8(lin, ld->err);
}

/* An optional position-specific BC bias [P][width]. */
static ptq_status get_pos_bias(loader *ld, const char *name, int width, float **out, int *len) {
    const ptq_st_tensor *t = ptq_st_find(ld->st, name);
    if (!t) return PTQ_OK;
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[0] > (1 << 24) || t->shape[1] != width)
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: tensor %s must be [positions, %d]", ld->file, name, width);
    *len = (int)t->shape[0];
    return get_f32(ld, name, 1, 2, t->shape[0], width, out);
}

/* An integer field of a ptq.linears entry, within [lo, hi]. */
static ptq_status linear_int(loader *ld, const cJSON *qinfo, const char *prefix, const char *key, int lo, int hi,
                             int *out) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(qinfo, key);
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < lo || x->valuedouble > hi)
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears %s.%s must be an integer %d..%d", ld->file, prefix, key,
                        lo, hi);
    *out = (int)x->valuedouble;
    return PTQ_OK;
}

/* A version 2/3 file's 8-bit codes of a 5-7-bit grid into q's tight storage; a code above the grid is damage. */
static ptq_status repack_wide(loader *ld, const char *prefix, const uint8_t *src, ptq_qweight *q) {
    const size_t rb8 = ptq_qweight_row_bytes(8, q->in);
    uint8_t *row = ptq_alloc((size_t)q->in, 1, prefix, ld->err);
    if (!row) return PTQ_ERR_NOMEM;
    const unsigned maxq = (1u << q->bits) - 1u;
    for (int o = 0; o < q->out; o++) {
        const uint8_t *r8 = src + (size_t)o * rb8;
        for (int j = 0; j < q->in; j++)
            if (r8[j] > maxq) {
                ptq_free(row);
                return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: tensor %s.qweight has code %u at row %d column %d, above "
                                "%u for %d bits", ld->file, prefix, r8[j], o, j, maxq, q->bits);
            }
        memcpy(row, r8, (size_t)q->in);
        ptq_pack_row(q->bits, row, q->in, q->codes + (size_t)o * q->row_bytes);
    }
    ptq_free(row);
    return PTQ_OK;
}

/* A packed linear: every tensor's shape is checked against ptq.linears before its buffers are allocated. */
/* head_like: the head or the embeddings, which carry a perm only when GPTQ with act-order made the head (never
 * required: ptq.act_order describes the blocks). */
static ptq_status get_packed(loader *ld, const char *prefix, ptq_linear *lin, const cJSON *qinfo, int head_like) {
    int in = lin->in, out = lin->out, bits = 0, group = 0, jin = 0, jout = 0, sym = 0;
    PTQ_TRY(linear_int(ld, qinfo, prefix, "in", 1, INT32_MAX, &jin));
    PTQ_TRY(linear_int(ld, qinfo, prefix, "out", 1, INT32_MAX, &jout));
    if (jin != in || jout != out)
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears says %s is %dx%d, the config implies %dx%d", ld->file,
                        prefix, jout, jin, out, in);
    PTQ_TRY(linear_int(ld, qinfo, prefix, "bits", 2, 8, &bits));
    PTQ_TRY(linear_int(ld, qinfo, prefix, "group", 1, in, &group));
    if (cJSON_GetObjectItemCaseSensitive(qinfo, "sym")) PTQ_TRY(linear_int(ld, qinfo, prefix, "sym", 0, 1, &sym));
    if (sym && !ld->sym_ok)
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears %s.sym is set in a file of format version < %s",
                        ld->file, prefix, PTQ_FORMAT_VERSION_SYM);
    ptq_qweight shape;
    if (ptq_qweight_shape(&shape, bits, group, in, out, ld->err) != PTQ_OK)
        return ptq_fail_context(ld->err, "%s: %s", ld->file, prefix);
    const ptq_st_tensor *tq, *ts, *tz = NULL, *tp = NULL;
    char n[300];
    snprintf(n, sizeof n, "%s.qweight", prefix);
    const int wide = ld->wide && bits >= 5 && bits <= 7;
    const size_t stored_rb = wide ? ptq_qweight_row_bytes(8, in) : shape.row_bytes;
    PTQ_TRY(find_tensor(ld, n, 1, NULL, PTQ_DT_U8, 2, out, (int64_t)stored_rb, &tq));
    snprintf(n, sizeof n, "%s.scales", prefix);
    PTQ_TRY(find_tensor(ld, n, 1, NULL, PTQ_DT_F16, 2, out, shape.n_groups, &ts));
    snprintf(n, sizeof n, "%s.zeros", prefix);
    if (!sym) PTQ_TRY(find_tensor(ld, n, 1, NULL, PTQ_DT_U8, 2, out, shape.n_groups, &tz));
    snprintf(n, sizeof n, "%s.perm", prefix);
    if (ld->act_order || head_like)
        PTQ_TRY(find_tensor(ld, n, !head_like, "ptq.act_order is 1", PTQ_DT_I32, 1, in, 0, &tp));
    ptq_qweight *q = calloc(1, sizeof *q);
    if (!q) return ptq_fail(ld->err, PTQ_ERR_NOMEM, "out of memory");
    if (ptq_qweight_alloc(q, bits, group, in, out, tp != NULL, ld->err) != PTQ_OK) {
        free(q);
        return ptq_fail_context(ld->err, "%s: %s", ld->file, prefix);
    }
    lin->q = q; /* owned by the model from here on */
    if (wide) PTQ_TRY(repack_wide(ld, prefix, tq->data, q));
    else memcpy(q->codes, tq->data, tq->nbytes);
    memcpy(q->scales, ts->data, ts->nbytes);
    if (tz) memcpy(q->zeros, tz->data, tz->nbytes);
    else memset(q->zeros, 1 << (q->grid_bits - 1), (size_t)out * (size_t)q->n_groups);
    if (tp) memcpy(q->perm, tp->data, tp->nbytes);
    ptq_mmap_drop(tq->data, tq->nbytes); /* copied: the file's pages need not stay resident too */
    int maxq = (1 << q->grid_bits) - 1;
    for (size_t i = 0; i < (size_t)out * q->n_groups; i++) {
        float sc = ptq_f16_to_f32(q->scales[i]);
        if (!isfinite(sc) || sc <= 0)
            return ptq_fail(ld->err, PTQ_ERR_NUMERIC, "%s: tensor %s.scales has an invalid scale %g at index %zu",
                            ld->file, prefix, (double)sc, i);
        if (q->zeros[i] > maxq)
            return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: tensor %s.zeros has %d at index %zu, above %d for %d bits",
                            ld->file, prefix, q->zeros[i], i, maxq, q->grid_bits);
    }
    PTQ_TRY(ptq_qweight_drop_sym_zeros(q, ld->err)); /* stored or not, a symmetric grid keeps none in memory */
    if (q->perm) {
        char *seen = calloc((size_t)in, 1);
        if (!seen) return ptq_fail(ld->err, PTQ_ERR_NOMEM, "out of memory");
        for (int j = 0; j < in; j++) {
            int v = q->perm[j];
            if (v < 0 || v >= in || seen[v]) {
                free(seen);
                return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: tensor %s.perm is not a permutation of 0..%d (entry %d = %d)",
                                ld->file, prefix, in - 1, j, v);
            }
            seen[v] = 1;
        }
        free(seen);
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(qinfo, "act");
    if (act) PTQ_TRY(get_act(ld, prefix, lin, act));
    return PTQ_OK;
}

/* A linear layer: packed when ptq.linears has an entry for it (the entry is consumed: one left over at
 * the end names no layer of the model), else float. */
static ptq_status get_linear(loader *ld, const char *prefix, ptq_linear *lin, int required, int in, int out,
                             cJSON *linears, const cJSON *names, int head_like) {
    char n[160];
    lin->in = in;
    lin->out = out;
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(names, prefix);
    snprintf(lin->name, sizeof lin->name, "%s", cJSON_IsString(nm) ? nm->valuestring : prefix);
    snprintf(n, sizeof n, "%s.bias", prefix);
    PTQ_TRY(get_f32(ld, n, 0, 1, out, 0, &lin->b));
    snprintf(n, sizeof n, "%s.bc_pos", prefix);
    PTQ_TRY(get_pos_bias(ld, n, out, &lin->bc_pos, &lin->bc_len));
    cJSON *qinfo = cJSON_DetachItemFromObjectCaseSensitive(linears, prefix);
    if (!qinfo) {
        snprintf(n, sizeof n, "%s.weight", prefix);
        if (head_like) return get_float16(ld, n, required, out, in, &ld->m->head_dt, &lin->w);
        return get_f32(ld, n, required, 2, out, in, &lin->w);
    }
    ptq_status s = get_packed(ld, prefix, lin, qinfo, head_like);
    cJSON_Delete(qinfo);
    drop_packed_rest(ld, prefix);
    return s;
}

static ptq_status load_body(loader *ld, cJSON *linears, const cJSON *names) {
    ptq_model *m = ld->m;
    ptq_config *c = &m->cfg;
    char n[160];
    /* parse_config bounds each product below 2^24 */
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    m->blocks = calloc((size_t)c->n_layers, sizeof *m->blocks);
    if (!m->blocks) return ptq_fail(ld->err, PTQ_ERR_NOMEM, "out of memory");
    if (c->arch == PTQ_ARCH_VIT) {
        PTQ_TRY(get_f32(ld, "cls_token", c->cls_token, 1, c->dim, 0, &m->cls_token));
        m->n_pos = c->max_seq;
        PTQ_TRY(get_f32(ld, "pos_emb", 0, 2, m->n_pos, c->dim, &m->pos_emb));
        PTQ_TRY(get_linear(ld, "patch", &m->patch, 1, c->in_chans * c->patch_size * c->patch_size, c->dim, linears,
                           names, 0));
    } else {
        PTQ_TRY(get_embeddings(ld, linears));
        const ptq_st_tensor *pe = ptq_st_find(ld->st, "pos_emb");
        if (pe) {
            if (pe->ndim != 2 || pe->shape[0] < (int64_t)c->max_seq + c->pos_offset || pe->shape[0] > (1 << 24))
                return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: tensor pos_emb has too few rows for %d positions",
                                ld->file, c->max_seq);
            m->n_pos = (int)pe->shape[0];
            PTQ_TRY(get_f32(ld, "pos_emb", 1, 2, m->n_pos, c->dim, &m->pos_emb));
        }
        if (c->embed_dim != c->dim) {
            PTQ_TRY(get_linear(ld, "proj_in", &m->proj_in, 1, c->embed_dim, c->dim, linears, names, 0));
            PTQ_TRY(get_linear(ld, "proj_out", &m->proj_out, 1, c->dim, c->embed_dim, linears, names, 0));
        }
    }
    PTQ_TRY(get_f32(ld, "final_norm.weight", 0, 1, c->dim, 0, &m->final_norm.w));
    PTQ_TRY(get_f32(ld, "final_norm.bias", 0, 1, c->dim, 0, &m->final_norm.b));
    int head_in = c->arch == PTQ_ARCH_VIT ? c->dim : c->embed_dim;
    if (ld->head_tied) {
        if (!m->tok_emb && !m->tok_emb_q)
            return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: tied head without a token embedding", ld->file);
        m->head.w = m->tok_emb; /* one table serves both: float32, or packed */
        m->head.q = m->tok_emb_q;
        m->head.in = head_in;
        m->head.out = c->vocab_size;
        snprintf(m->head.name, sizeof m->head.name, "head");
        PTQ_TRY(get_f32(ld, "head.bias", 0, 1, c->vocab_size, 0, &m->head.b));
    } else {
        PTQ_TRY(get_linear(ld, "head", &m->head, 1, head_in, c->vocab_size, linears, names, 1));
    }
    int ins[PTQ_LIN_COUNT] = {c->dim, c->dim, c->dim, c->dim, qd, c->dim, c->dim, c->hidden_dim};
    int outs[PTQ_LIN_COUNT] = {qd + 2 * kvd, qd, kvd, kvd, c->dim, c->hidden_dim, c->hidden_dim, c->dim};
    for (int l = 0; l < c->n_layers; l++) {
        ptq_block *b = &m->blocks[l];
        snprintf(n, sizeof n, "blocks.%d.norm1.weight", l);
        PTQ_TRY(get_f32(ld, n, 1, 1, c->dim, 0, &b->norm1.w));
        snprintf(n, sizeof n, "blocks.%d.norm1.bias", l);
        PTQ_TRY(get_f32(ld, n, 0, 1, c->dim, 0, &b->norm1.b));
        snprintf(n, sizeof n, "blocks.%d.norm2.weight", l);
        PTQ_TRY(get_f32(ld, n, 1, 1, c->dim, 0, &b->norm2.w));
        snprintf(n, sizeof n, "blocks.%d.norm2.bias", l);
        PTQ_TRY(get_f32(ld, n, 0, 1, c->dim, 0, &b->norm2.b));
        snprintf(n, sizeof n, "blocks.%d.bc_pos", l);
        PTQ_TRY(get_pos_bias(ld, n, c->dim, &b->bc_pos, &b->bc_len));
        for (int r = 0; r < PTQ_LIN_COUNT; r++) {
            char prefix[96];
            snprintf(prefix, sizeof prefix, "blocks.%d.%s", l, role_names[r]);
            snprintf(n, sizeof n, "%s.weight", prefix);
            char nq[160];
            snprintf(nq, sizeof nq, "%s.qweight", prefix);
            if (!ptq_st_find(ld->st, n) && !ptq_st_find(ld->st, nq)) continue; /* role not used by this family */
            PTQ_TRY(get_linear(ld, prefix, &b->lin[r], 1, ins[r], outs[r], linears, names, 0));
        }
    }
    /* everything in the file and in ptq.linears must have been read: anything left is damage */
    if (linears->child)
        return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: ptq.linears has an entry for %s, which is not a linear layer of this "
                        "model (or its tensors are missing)", ld->file, linears->child->string);
    /* the tokenizer's tensors are read by ptq_tokenizer_load (io/qmodel_tokenizer.c) */
    int has_tok = ptq_qmodel_has_tokenizer(ld->st);
    for (int i = 0; i < ld->st->n_tensors; i++)
        if (!ld->used[i] && !(has_tok && ptq_qmodel_is_tokenizer_tensor(ld->st->tensors[i].name)))
            return ptq_fail(ld->err, PTQ_ERR_FORMAT, "%s: unexpected tensor %s: nothing in the metadata (ptq.config, "
                            "ptq.linears, ptq.act_order, ptq.act, ptq.head_tied) calls for it", ld->file,
                            ld->st->tensors[i].name);
    return ptq_model_validate(m, ld->err);
}

int ptq_qmodel_is_ptq(const ptq_safetensors *st) {
    const char *f = ptq_st_metadata(st, "format");
    return f && strcmp(f, "ptq") == 0;
}

/* A metadata value that must be a decimal integer in [lo, hi]; absent: an error when required, else *out
 * stays. */
static ptq_status meta_int(const ptq_safetensors *st, const char *path, const char *key, int required, int lo, int hi,
                           int *out, ptq_error *err) {
    const char *v = ptq_st_metadata(st, key);
    if (!v) return required ? ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ has no %s", path, key) : PTQ_OK;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ %s is '%s', expected an integer %d..%d", path, key, v, lo,
                        hi);
    *out = (int)x;
    return PTQ_OK;
}

/* How the file was quantized: parsed strictly, since ptq.act_order, ptq.act and ptq.head_tied decide which
 * tensors the file must hold. */
static ptq_status read_quant_meta(ptq_model *m, const ptq_safetensors *st, const char *path, int *head_tied,
                                  ptq_error *err) {
    const char *v;
    if ((v = ptq_st_metadata(st, "ptq.method")) && strcmp(v, "float") != 0)
        snprintf(m->quant.method, sizeof m->quant.method, "%s", v);
    PTQ_TRY(meta_int(st, path, "ptq.wbits", 0, 0, 8, &m->quant.wbits, err));
    PTQ_TRY(meta_int(st, path, "ptq.group", 0, PTQ_GROUP_TENSOR, 1 << 24, &m->quant.group, err));
    PTQ_TRY(meta_int(st, path, "ptq.sym", 0, 0, 1, &m->quant.sym, err));
    PTQ_TRY(meta_int(st, path, "ptq.act_order", 1, 0, 1, &m->quant.act_order, err));
    PTQ_TRY(meta_int(st, path, "ptq.head_tied", 1, 0, 1, head_tied, err));
    if ((v = ptq_st_metadata(st, "ptq.calib"))) snprintf(m->quant.calib_desc, sizeof m->quant.calib_desc, "%s", v);
    if ((v = ptq_st_metadata(st, "ptq.calib_hash"))) {
        char *end;
        errno = 0;
        m->quant.calib_hash = strtoull(v, &end, 16);
        if (strlen(v) != 16 || *end || errno)
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ ptq.calib_hash is '%s', expected 16 hex digits", path, v);
    }
    /* ptq.act: "none" or "A<bits> <calibrator>[ noisyquant]" */
    v = ptq_st_metadata(st, "ptq.act");
    if (!v) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ has no ptq.act", path);
    if (strcmp(v, "none") == 0) return PTQ_OK;
    int bits = 0, len = 0, k = 0;
    char calib[32] = "";
    int ok = v[0] == 'A' && v[1] >= '0' && v[1] <= '9' && sscanf(v, "A%d %31[a-z]%n", &bits, calib, &len) == 2 &&
             bits >= 2 && bits <= 8;
    int noisy = ok && strcmp(v + len, " noisyquant") == 0;
    while (ok && k < N_CALIBS && strcmp(calib, calib_names[k]) != 0) k++;
    if (!ok || k == N_CALIBS || (v[len] && !noisy))
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: __metadata__ ptq.act is '%s', expected 'none' or 'A<bits 2..8> <calibrator>[ noisyquant]'",
                        path, v);
    m->quant.abits = bits;
    m->quant.act_calib = k;
    m->quant.noisyquant = noisy;
    return PTQ_OK;
}

/* ptq.attn: {"layer": [bits, step q, step k, step v]} for blocks with quantized attention products. */
static ptq_status read_attention(ptq_model *m, const ptq_safetensors *st, const char *path, ptq_error *err) {
    const char *txt = ptq_st_metadata(st, "ptq.attn");
    if (!txt) return PTQ_OK;
    cJSON *o = cJSON_Parse(txt);
    ptq_status s = cJSON_IsObject(o) ? PTQ_OK : ptq_fail(err, PTQ_ERR_FORMAT, "%s: ptq.attn is not a JSON object", path);
    const cJSON *e;
    if (s == PTQ_OK) cJSON_ArrayForEach(e, o) {
        char *end;
        long l = strtol(e->string, &end, 10);
        int ok = e->string[0] && !*end && l >= 0 && l < m->cfg.n_layers && cJSON_GetArraySize(e) == 4;
        double v[4] = {0};
        for (int i = 0; ok && i < 4; i++) {
            const cJSON *x = cJSON_GetArrayItem(e, i);
            ok = cJSON_IsNumber(x);
            v[i] = ok ? x->valuedouble : 0;
            ok = ok && (i == 0 ? v[0] >= 2 && v[0] <= 8 && v[0] == floor(v[0]) : step_ok(v[i]));
        }
        if (!ok) {
            s = ptq_fail(err, PTQ_ERR_FORMAT,
                         "%s: ptq.attn entry '%s' must be [bits 2..8, three steps in [%g, %g]] for a layer 0..%d", path,
                         e->string, ACT_STEP_MIN, ACT_STEP_MAX, m->cfg.n_layers - 1);
            break;
        }
        m->blocks[l].attn_bits = (int)v[0];
        for (int i = 0; i < 3; i++) m->blocks[l].attn_scale[i] = (float)v[i + 1];
    }
    cJSON_Delete(o);
    return s;
}

ptq_status ptq_qmodel_load(const char *path, const ptq_safetensors *st, const ptq_load_options *opt, ptq_model **out,
                           ptq_error *err) {
    *out = NULL;
    const char *ver = ptq_st_metadata(st, "ptq.format_version");
    if (ver && strcmp(ver, "1") == 0)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: ptq file format version 1 predates the per-tensor checksums of "
                        "version %s; quantize the model again with this ptq", path, PTQ_FORMAT_VERSION);
    if (!ver || (strcmp(ver, PTQ_FORMAT_VERSION) != 0 && strcmp(ver, PTQ_FORMAT_VERSION_BASE) != 0 &&
                 strcmp(ver, PTQ_FORMAT_VERSION_TIGHT) != 0 && strcmp(ver, PTQ_FORMAT_VERSION_SYM) != 0))
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: ptq file format version %s, this ptq reads versions %s to %s",
                        path, ver ? ver : "(missing)", PTQ_FORMAT_VERSION_BASE, PTQ_FORMAT_VERSION_SYM);
    PTQ_TRY(check_integrity(path, st, !opt || opt->verify_checksums, err));
    const char *cfg = ptq_st_metadata(st, "ptq.config");
    if (!cfg) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ has no ptq.config", path);
    ptq_model *m = ptq_model_new(path, err);
    if (!m) return PTQ_ERR_NOMEM;
    snprintf(m->format, sizeof m->format, "ptq");
    ptq_status s = parse_config(cfg, path, &m->cfg, err);
    int head_tied = 0;
    if (s == PTQ_OK) s = read_quant_meta(m, st, path, &head_tied, err);
    cJSON *linears = NULL, *names = NULL;
    if (s == PTQ_OK) {
        const char *lj = ptq_st_metadata(st, "ptq.linears"), *nj = ptq_st_metadata(st, "ptq.names");
        linears = cJSON_Parse(lj ? lj : "{}");
        names = cJSON_Parse(nj ? nj : "{}");
        if (!cJSON_IsObject(linears) || !cJSON_IsObject(names))
            s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ ptq.linears / ptq.names is not a JSON object", path);
    }
    unsigned char *used = calloc((size_t)(st->n_tensors ? st->n_tensors : 1), 1);
    if (s == PTQ_OK && !used) s = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
    if (s == PTQ_OK) {
        loader ld = {m, st, path, err, used, m->quant.act_order, m->quant.noisyquant, head_tied,
                     strcmp(ver, PTQ_FORMAT_VERSION_TIGHT) != 0 && strcmp(ver, PTQ_FORMAT_VERSION_SYM) != 0,
                     strcmp(ver, PTQ_FORMAT_VERSION_SYM) == 0};
        s = load_body(&ld, linears, names);
    }
    free(used);
    cJSON_Delete(linears);
    cJSON_Delete(names);
    if (s == PTQ_OK) s = read_attention(m, st, path, err);
    if (s == PTQ_OK && ptq_qmodel_has_tokenizer(st)) { /* a damaged tokenizer is a damaged file */
        ptq_tok_spec tok;
        s = ptq_qmodel_get_tokenizer(st, path, &tok, err);
        ptq_tok_spec_free(&tok);
    }
    if (s != PTQ_OK) {
        ptq_model_free(m);
        return s;
    }
    *out = m;
    return PTQ_OK;
}
