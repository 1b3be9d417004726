/* GPT-2-architecture GGUF files (general.architecture = "gpt2", llama.cpp's src/models/gpt2.cpp) -> the generic
 * model.
 *
 * Tensors: token_embd, position_embd (one row per position of gpt2.context_length), blk.N.{attn_norm, attn_qkv
 * (Q, K and V fused, in that order, as Hugging Face's c_attn), attn_output, ffn_norm, ffn_up, ffn_down} each with
 * its bias, output_norm with its bias, output (absent = tied to token_embd, and without a bias). LayerNorm,
 * pre-norm, a GELU MLP (ggml_gelu: the tanh approximation, Hugging Face's gelu_new), learned positions. Weights
 * in any type gguf_llama.c reads, converted to float32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/gguf_load.h"

static ptq_status key(const ptq_gguf *g, const char *k, int required, uint32_t def, uint32_t lo, uint32_t hi,
                      int *out, ptq_error *err) {
    return ptq_gguf_src_u32(g, k, required, def, lo, hi, "a GPT-2 model", out, err);
}

ptq_status ptq_gguf_build_gpt2(ptq_gguf_src *s, ptq_error *err) {
    const ptq_gguf *g = s->g;
    ptq_model *m = s->m;
    ptq_config *c = &m->cfg;
    int dim = 0, n_layers = 0, hidden = 0, n_heads = 1, n_kv = 1, n_ctx = 0;
    PTQ_TRY(key(g, "gpt2.embedding_length", 1, 0, 1, 1 << 20, &dim, err));
    PTQ_TRY(key(g, "gpt2.block_count", 1, 0, 1, 4096, &n_layers, err));
    PTQ_TRY(key(g, "gpt2.feed_forward_length", 1, 0, 1, 1 << 22, &hidden, err));
    PTQ_TRY(key(g, "gpt2.attention.head_count", 1, 0, 1, 4096, &n_heads, err));
    PTQ_TRY(key(g, "gpt2.attention.head_count_kv", 0, (uint32_t)n_heads, 1, 4096, &n_kv, err));
    PTQ_TRY(key(g, "gpt2.context_length", 1, 0, 1, 1 << 24, &n_ctx, err));
    if (dim % n_heads)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: gpt2.embedding_length %d is not a multiple of gpt2.attention.head_count %d",
                        g->path, dim, n_heads);
    if (n_kv != n_heads)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: gpt2.attention.head_count_kv %d differs from head_count %d (GPT-2 has no grouped-query "
                        "attention)",
                        g->path, n_kv, n_heads);
    if (!ptq_gguf_find_kv(g, "gpt2.attention.layer_norm_epsilon"))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"gpt2.attention.layer_norm_epsilon\" is missing", g->path);
    float eps = 1e-5f;
    PTQ_TRY(ptq_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &eps, err));
    if (!(eps >= 0 && eps <= 1))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: gpt2.attention.layer_norm_epsilon %g out of range", g->path, eps);
    int vocab = 0;
    PTQ_TRY(ptq_gguf_src_vocab(g, "gpt2", dim, &vocab, err));

    memset(c, 0, sizeof *c);
    c->arch = PTQ_ARCH_GPT2;
    c->causal = 1;
    c->dim = c->embed_dim = dim;
    c->n_layers = n_layers;
    c->n_heads = c->n_kv_heads = n_heads;
    c->head_dim = dim / n_heads;
    c->hidden_dim = hidden;
    c->vocab_size = vocab;
    c->max_seq = n_ctx;
    c->norm = PTQ_NORM_LAYER;
    c->norm_eps = eps;
    c->pre_norm = 1;
    c->act = PTQ_ACT_GELU_TANH;
    c->rope = PTQ_ROPE_NONE;
    ptq_gguf_src_bos_eos(g, c);
    snprintf(m->format, sizeof m->format, "gguf");

    const int64_t emb_ne[2] = {dim, vocab}, pos_ne[2] = {dim, n_ctx};
    PTQ_TRY(ptq_gguf_src_take(s, "token_embd.weight", 2, emb_ne, &m->tok_emb, err));
    PTQ_TRY(ptq_gguf_src_take(s, "position_embd.weight", 2, pos_ne, &m->pos_emb, err));
    m->n_pos = n_ctx;
    m->blocks = calloc((size_t)n_layers, sizeof *m->blocks);
    if (!m->blocks) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate %d blocks", n_layers);
    char nm[64];
    for (int l = 0; l < n_layers; l++) {
        ptq_block *b = &m->blocks[l];
#define NAME(suffix) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), nm)
        PTQ_TRY(ptq_gguf_src_norm(s, &b->norm1, NAME("attn_norm"), dim, 1, err));
        PTQ_TRY(ptq_gguf_src_linear(s, &b->lin[PTQ_LIN_QKV], NAME("attn_qkv"), dim, 3 * dim, 1, 0, err));
        PTQ_TRY(ptq_gguf_src_linear(s, &b->lin[PTQ_LIN_O], NAME("attn_output"), dim, dim, 1, 0, err));
        PTQ_TRY(ptq_gguf_src_norm(s, &b->norm2, NAME("ffn_norm"), dim, 1, err));
        PTQ_TRY(ptq_gguf_src_linear(s, &b->lin[PTQ_LIN_UP], NAME("ffn_up"), dim, hidden, 1, 0, err));
        PTQ_TRY(ptq_gguf_src_linear(s, &b->lin[PTQ_LIN_DOWN], NAME("ffn_down"), hidden, dim, 1, 0, err));
#undef NAME
    }
    PTQ_TRY(ptq_gguf_src_norm(s, &m->final_norm, "output_norm", dim, 1, err));
    snprintf(m->head.name, sizeof m->head.name, "output");
    m->head.in = dim;
    m->head.out = vocab;
    if (ptq_gguf_find(g, "output.weight")) {
        const int64_t ne[2] = {dim, vocab};
        PTQ_TRY(ptq_gguf_src_take(s, "output.weight", 2, ne, &m->head.w, err));
    } else { /* tied, as llama.cpp does when the file has no output tensor */
        m->head.w = m->tok_emb;
    }
    PTQ_TRY(ptq_gguf_src_all_used(s, "a GPT-2 model", n_layers, err));
    return ptq_model_validate(m, err);
}
