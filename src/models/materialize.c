/* Streamed weights: a linear loaded with ptq_load_options.stream_weights keeps only a pointer to its source tensor
 * in the memory-mapped file (stored dtype); the quantization converts a block's weights to float32 when it reaches
 * the block and frees them once the block is quantized, so it holds one block of float weights at a time.
 * The token embedding (vocab x dim: 0.5 GB in float32 on a 7B model) stays in the mapping too while the blocks
 * are quantized: the calibration tokens' rows are converted as they are looked up, the whole of it only when the
 * writer needs it, after the blocks. */
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "quant/ggml_quants.h"
#include "quant/head_embed.h"

ptq_status ptq_linear_materialize(ptq_model *m, ptq_linear *lin, ptq_error *err) {
    if (!lin->src || lin->w) return PTQ_OK;
    if (!m->src_st) return ptq_fail(err, PTQ_ERR_ARG, "%s: %s is streamed but the model has no source", m->path, lin->name);
    const int64_t shape[2] = {lin->out, lin->in};
    float *w = ptq_alloc((size_t)lin->out * (size_t)lin->in, sizeof(float), lin->name, err);
    if (!w) return err->status ? err->status : PTQ_ERR_NOMEM;
    ptq_status s = ptq_st_read_f32(m->src_st, lin->src->name, 2, shape, w, err); /* checks values too */
    /* the source pages were only read once: out of this process's resident memory with them */
    ptq_mmap_drop(lin->src->data, lin->src->nbytes);
    if (s != PTQ_OK) {
        ptq_free(w);
        return s;
    }
    lin->w = w;
    return PTQ_OK;
}

void ptq_linear_release(ptq_linear *lin) {
    if (!lin->src || !lin->w) return;
    ptq_free(lin->w);
    lin->w = NULL;
}

ptq_status ptq_block_materialize(ptq_model *m, int l, ptq_error *err) {
    for (int r = 0; r < PTQ_LIN_COUNT; r++) PTQ_TRY(ptq_linear_materialize(m, &m->blocks[l].lin[r], err));
    return PTQ_OK;
}

void ptq_block_release(ptq_model *m, int l) {
    for (int r = 0; r < PTQ_LIN_COUNT; r++) ptq_linear_release(&m->blocks[l].lin[r]);
}

ptq_status ptq_embedding_rows(const ptq_model *m, const int *tokens, int n, float *dst, ptq_error *err) {
    size_t ed = (size_t)m->cfg.embed_dim;
    /* float32, packed, 16-bit (head_embed.c) or ggml blocks */
    const int in_memory = m->tok_emb || m->tok_emb_q || m->tok_emb_h || m->tok_emb_ggml;
    if (!in_memory && !(m->tok_emb_src && m->src_st))
        return ptq_fail(err, PTQ_ERR_ARG, "%s: the model has no token embedding", m->path);
    for (int i = 0; i < n; i++) {
        if (in_memory) ptq_embed_row(m, tokens[i], dst + i * ed);
        else PTQ_TRY(ptq_st_read_f32_rows(m->src_st, m->tok_emb_src, tokens[i], 1, dst + i * ed, err));
    }
    /* the few rows read stay in the page cache, not in this process's resident memory */
    if (!in_memory) ptq_mmap_drop(m->tok_emb_src->data, m->tok_emb_src->nbytes);
    return PTQ_OK;
}

ptq_status ptq_embedding_materialize(ptq_model *m, const struct ptq_safetensors *st, ptq_error *err) {
    const ptq_st_tensor *t = m->tok_emb_src;
    if (m->tok_emb || !t) return PTQ_OK;
    float *w = ptq_model_floats(m, (size_t)t->numel, t->name, err);
    if (!w) return err->status ? err->status : PTQ_ERR_NOMEM;
    PTQ_TRY(ptq_st_read_f32_rows(st, t, 0, t->shape[0], w, err));
    ptq_mmap_drop(t->data, t->nbytes);
    m->tok_emb = w;
    m->tok_emb_src = NULL;
    return PTQ_OK;
}

static ptq_status widen_linear(ptq_model *m, ptq_linear *lin, ptq_error *err) {
    if (!ptq_linear_is_ggml(lin)) return PTQ_OK;
    float *w = ptq_model_floats(m, (size_t)lin->out * (size_t)lin->in, lin->name, err);
    if (!w) return err->status ? err->status : PTQ_ERR_NOMEM;
    PTQ_TRY(ptq_ggml_dequantize_rows(lin->ggml_type, lin->ggml, w, lin->out, lin->in, err));
    lin->w = w;
    lin->ggml = NULL; /* model-owned: freed with the model */
    lin->ggml_type = 0;
    return PTQ_OK;
}

ptq_status ptq_model_widen_ggml(ptq_model *m, ptq_error *err) {
    for (int l = 0; m->blocks && l < m->cfg.n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++) PTQ_TRY(widen_linear(m, &m->blocks[l].lin[r], err));
    const int tied = ptq_linear_is_ggml(&m->head) && m->head.ggml == m->tok_emb_ggml;
    if (!tied) PTQ_TRY(widen_linear(m, &m->head, err));
    if (m->tok_emb_ggml) {
        const size_t n = (size_t)m->cfg.vocab_size * (size_t)m->cfg.embed_dim;
        float *e = ptq_model_floats(m, n, "token embedding", err);
        if (!e) return err->status ? err->status : PTQ_ERR_NOMEM;
        PTQ_TRY(ptq_ggml_dequantize_rows(m->tok_emb_ggml_type, m->tok_emb_ggml, e, m->cfg.vocab_size, m->cfg.embed_dim,
                                         err));
        m->tok_emb = e;
        m->tok_emb_ggml = NULL;
        if (tied) m->head.w = e, m->head.ggml = NULL, m->head.ggml_type = 0; /* still one table */
    }
    return PTQ_OK;
}
