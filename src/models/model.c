/* Model ownership, bookkeeping and validation shared by every family. */
#include "io/safetensors.h"
#include "models/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/i8gemm.h"
#include "models/embed_map.h"
#include "quant/actq.h"
#include "quant/head_embed.h"
#include "quant/quantizer.h"

const char *ptq_arch_name(ptq_arch a) {
    switch (a) {
    case PTQ_ARCH_LLAMA: return "llama";
    case PTQ_ARCH_GPT2: return "gpt2";
    case PTQ_ARCH_OPT: return "opt";
    case PTQ_ARCH_VIT: return "vit";
    }
    return "unknown";
}

ptq_model *ptq_model_new(const char *path, ptq_error *err) {
    ptq_model *m = calloc(1, sizeof *m);
    if (!m) {
        ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate model");
        return NULL;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    m->cfg.bos_id = -1;
    m->cfg.eos_id = -1;
    m->cfg.crop_pct = 1.0f;
    return m;
}

ptq_status ptq_model_own(ptq_model *m, void *p, ptq_error *err) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) {
            ptq_free(p);
            return ptq_fail(err, PTQ_ERR_NOMEM, "cannot grow model buffer list");
        }
        m->owned = o;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return PTQ_OK;
}

float *ptq_model_floats(ptq_model *m, size_t n, const char *what, ptq_error *err) {
    float *p = ptq_alloc(n, sizeof(float), what, err);
    if (!p || ptq_model_own(m, p, err) != PTQ_OK) return NULL;
    return p;
}

void ptq_model_note_tensor(ptq_model *m, const char *name, const char *dtype, int ndim, const int64_t *shape) {
    ptq_tensor_entry *t = realloc(m->tensors, (size_t)(m->n_tensors + 1) * sizeof *t);
    if (!t) return; /* inspect-only bookkeeping: losing it is harmless */
    m->tensors = t;
    ptq_tensor_entry *e = &t[m->n_tensors++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->dtype, sizeof e->dtype, "%s", dtype);
    e->ndim = ndim > 4 ? 4 : ndim;
    for (int i = 0; i < e->ndim; i++) e->shape[i] = shape[i];
}

void ptq_linear_drop_quant(ptq_linear *l) {
    if (l->q) ptq_qweight_free(l->q);
    free(l->q);
    l->q = NULL;
    if (l->i8) ptq_i8weight_free(l->i8);
    free(l->i8);
    l->i8 = NULL;
    free(l->aq); /* its noise vectors are model-owned buffers */
    l->aq = NULL;
    l->ggml = NULL; /* model-owned too */
    l->wq = NULL;
}

void ptq_model_free(ptq_model *m) {
    if (!m) return;
    for (int l = 0; m->blocks && l < m->cfg.n_layers; l++) {
        for (int r = 0; r < PTQ_LIN_COUNT; r++) ptq_linear_drop_quant(&m->blocks[l].lin[r]);
        ptq_block_release(m, l);
    }
    ptq_embed_map_close(m); /* first: tok_emb_q's arrays in the mapping are not freed */
    if (m->tok_emb_q && m->tok_emb_q != m->head.q) { /* a tied head's table is freed as the head's */
        ptq_qweight_free(m->tok_emb_q);
        free(m->tok_emb_q);
    }
    ptq_linear_drop_quant(&m->head);
    ptq_linear_release(&m->head);
    if (m->src_st) ptq_st_close(m->src_st);
    free(m->src_st);
    for (int i = 0; i < m->n_owned; i++) ptq_free(m->owned[i]);
    free(m->owned);
    free(m->tensors);
    free(m->blocks);
    free(m);
}

static ptq_status check_finite(const ptq_model *m, const float *p, size_t n, const char *what, ptq_error *err) {
    if (!p) return PTQ_OK;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return ptq_fail(err, PTQ_ERR_NUMERIC, "%s: tensor %s has a non-finite value (%g) at index %zu", m->path,
                            what, (double)p[i], i);
    return PTQ_OK;
}

static ptq_status check_linear(const ptq_model *m, const ptq_linear *l, ptq_error *err) {
    if (!ptq_linear_present(l)) return PTQ_OK;
    if (l->in <= 0 || l->out <= 0)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: linear %s has shape [%d, %d]", m->path, l->name, l->out, l->in);
    if (l->w) PTQ_TRY(check_finite(m, l->w, (size_t)l->in * l->out, l->name, err));
    return check_finite(m, l->b, (size_t)l->out, l->name, err);
}

ptq_status ptq_model_validate(const ptq_model *m, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->hidden_dim <= 0 || c->vocab_size <= 0 || c->max_seq <= 0)
        return ptq_fail(err, PTQ_ERR_CONFIG,
                        "%s: invalid dimensions (dim %d, layers %d, heads %d, kv heads %d, head dim %d, hidden %d, "
                        "vocab %d, seq %d)",
                        m->path, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->hidden_dim,
                        c->vocab_size, c->max_seq);
    if (c->n_heads % c->n_kv_heads != 0)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %d attention heads is not a multiple of %d key/value heads", m->path,
                        c->n_heads, c->n_kv_heads);
    if (c->rope != PTQ_ROPE_NONE && c->head_dim % 2 != 0)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: RoPE needs an even head dimension, got %d", m->path, c->head_dim);
    for (int l = 0; l < c->n_layers; l++) {
        const ptq_block *b = &m->blocks[l];
        const ptq_linear *L = b->lin;
        int fused = ptq_linear_present(&L[PTQ_LIN_QKV]);
        if (!fused && !(ptq_linear_present(&L[PTQ_LIN_Q]) && ptq_linear_present(&L[PTQ_LIN_K]) &&
                        ptq_linear_present(&L[PTQ_LIN_V])))
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: block %d has no query/key/value projections", m->path, l);
        if (!ptq_linear_present(&L[PTQ_LIN_O]) || !ptq_linear_present(&L[PTQ_LIN_UP]) ||
            !ptq_linear_present(&L[PTQ_LIN_DOWN]) || (c->gated_mlp && !ptq_linear_present(&L[PTQ_LIN_GATE])))
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: block %d is missing an output or MLP projection", m->path, l);
        for (int r = 0; r < PTQ_LIN_COUNT; r++) PTQ_TRY(check_linear(m, &b->lin[r], err));
        PTQ_TRY(check_finite(m, b->norm1.w, (size_t)c->dim, "norm1", err));
        PTQ_TRY(check_finite(m, b->norm2.w, (size_t)c->dim, "norm2", err));
        PTQ_TRY(check_finite(m, b->norm1.b, (size_t)c->dim, "norm1 bias", err));
        PTQ_TRY(check_finite(m, b->norm2.b, (size_t)c->dim, "norm2 bias", err));
    }
    if (c->arch == PTQ_ARCH_VIT) {
        int64_t grid = c->patch_size > 0 ? c->img_size / c->patch_size : 0, tokens = 0, patch_in = 0;
        if (c->patch_size <= 0 || c->img_size <= 0 || c->img_size % c->patch_size != 0 ||
            !ptq_checked_product((const int64_t[]){grid, grid}, 2, PTQ_VIT_MAX_TOKENS - 1, &tokens) ||
            tokens + c->cls_token != c->max_seq ||
            !ptq_checked_product((const int64_t[]){c->in_chans, c->patch_size, c->patch_size}, 3,
                                 PTQ_VIT_MAX_PATCH_IN, &patch_in) ||
            patch_in != m->patch.in)
            return ptq_fail(err, PTQ_ERR_CONFIG,
                            "%s: invalid ViT geometry (img_size %d, patch_size %d, in_chans %d, %d tokens, patch "
                            "embedding of %d inputs)",
                            m->path, c->img_size, c->patch_size, c->in_chans, c->max_seq, m->patch.in);
        PTQ_TRY(check_linear(m, &m->patch, err));
        PTQ_TRY(check_finite(m, m->cls_token, (size_t)c->dim, "cls_token", err));
    } else {
        PTQ_TRY(check_finite(m, m->tok_emb, (size_t)c->vocab_size * c->embed_dim, "token embedding", err));
        PTQ_TRY(check_linear(m, &m->proj_in, err));
        PTQ_TRY(check_linear(m, &m->proj_out, err));
    }
    PTQ_TRY(check_finite(m, m->pos_emb, (size_t)m->n_pos * c->dim, "position embedding", err));
    PTQ_TRY(check_finite(m, m->final_norm.w, (size_t)c->dim, "final norm", err));
    PTQ_TRY(check_finite(m, m->final_norm.b, (size_t)c->dim, "final norm bias", err));
    if (m->head.w != m->tok_emb) PTQ_TRY(check_linear(m, &m->head, err));
    return PTQ_OK;
}

static int64_t linear_params(const ptq_linear *l) {
    return ptq_linear_present(l) ? (int64_t)l->in * l->out + (l->b ? l->out : 0) : 0;
}

void ptq_model_get_info(const ptq_model *m, ptq_model_info *info) {
    const ptq_config *c = &m->cfg;
    memset(info, 0, sizeof *info);
    info->arch = c->arch;
    info->is_language_model = c->arch != PTQ_ARCH_VIT;
    info->dim = c->dim;
    info->n_layers = c->n_layers;
    info->n_heads = c->n_heads;
    info->n_kv_heads = c->n_kv_heads;
    info->hidden_dim = c->hidden_dim;
    info->vocab_size = c->vocab_size;
    info->max_seq = c->max_seq;
    info->img_size = c->img_size;
    info->in_chans = c->in_chans;
    info->bos_id = c->bos_id;
    info->eos_id = c->eos_id;
    int64_t n = 0;
    int norm_params = c->norm == PTQ_NORM_LAYER ? 2 * c->dim : c->dim;
    for (int l = 0; l < c->n_layers; l++) {
        for (int r = 0; r < PTQ_LIN_COUNT; r++) n += linear_params(&m->blocks[l].lin[r]);
        n += 2 * norm_params;
    }
    if (m->tok_emb || m->tok_emb_q || m->tok_emb_h || m->tok_emb_ggml || m->tok_emb_src) n += (int64_t)c->vocab_size * c->embed_dim;
    if (m->pos_emb) n += (int64_t)m->n_pos * c->dim;
    if (m->cls_token) n += c->dim;
    if (m->final_norm.w) n += norm_params;
    n += linear_params(&m->patch) + linear_params(&m->proj_in) + linear_params(&m->proj_out);
    if (ptq_linear_present(&m->head) && !ptq_head_tied(m)) n += linear_params(&m->head);
    else if (m->head.b) n += m->head.out;
    info->n_params = n;
}

int ptq_model_tensor_count(const ptq_model *m) { return m->n_tensors; }

void ptq_model_tensor(const ptq_model *m, int i, ptq_tensor_info *info) {
    memset(info, 0, sizeof *info);
    if (i < 0 || i >= m->n_tensors) return;
    const ptq_tensor_entry *e = &m->tensors[i];
    info->name = e->name;
    info->dtype = e->dtype;
    info->ndim = e->ndim;
    for (int d = 0; d < e->ndim; d++) info->shape[d] = e->shape[d];
}
