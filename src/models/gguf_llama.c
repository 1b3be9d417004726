/* LLaMA-architecture GGUF files (general.architecture = "llama") -> the generic model; "gpt2" files go to
 * gguf_gpt2.c.
 *
 * Hyperparameters come from llama.* metadata, weights from llama.cpp's tensor names (token_embd, blk.N.attn_norm,
 * attn_q/k/v/output, ffn_norm, ffn_gate/up/down, output_norm, output; output absent = tied to token_embd), in F32,
 * F16, BF16 or one of ggml's block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K: quant/ggml_quants.h): the
 * block matrices stay in their blocks (Q4_0 / Q5_0 / Q8_0 converted into ptq's packed form, the others as the
 * file's bytes: models/gguf_load.c), the rest is converted to float32. ggml stores a weight with ne = [in, out]:
 * row-major [out][in], which is ptq's layout as it is.
 *
 * RoPE: llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) reorders the rows of Q and K within each
 * head from Hugging Face's rotate-half order (pairs (i, i + d/2)) to the interleaved order ggml rotates (pairs
 * (2i, 2i+1)): HF row j*d/2 + i becomes row 2i + j. The rows are put back here and the model runs with
 * PTQ_ROPE_HALF, so a GGUF and the safetensors it was converted from give the same weights, bit for bit, and the
 * same logits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/gguf.h"
#include "kernels/ggml_gemm.h"
#include "models/gguf_load.h"
#include "models/model.h"
#include "quant/ggml_to_qweight.h"

typedef ptq_gguf_src src;

static ptq_status u32_key(const ptq_gguf *g, const char *key, int required, uint32_t def, uint32_t lo, uint32_t hi,
                          int *out, ptq_error *err) {
    return ptq_gguf_src_u32(g, key, required, def, lo, hi, "a LLaMA model", out, err);
}

/* an optional bias, which llama.cpp's llama architecture adds after every block matrix (ptq's GGUF export
   writes Bias Compensation there) */
static ptq_status linear(src *s, ptq_linear *lin, const char *name, int in, int out, ptq_error *err) {
    return ptq_gguf_src_linear(s, lin, name, in, out, 0, 0, err);
}

static ptq_status norm(src *s, ptq_norm *n, const char *name, int dim, ptq_error *err) {
    return ptq_gguf_src_norm(s, n, name, dim, 0, err);
}

/* Metadata that would change the model in ways ptq does not implement. */
static ptq_status refuse_unsupported(const ptq_gguf *g, ptq_error *err) {
    if (ptq_gguf_find_kv(g, "llama.rope.scaling.type")) {
        char *t = NULL;
        PTQ_TRY(ptq_gguf_get_string(g, "llama.rope.scaling.type", &t, err));
        int none = strcmp(t, "none") == 0;
        char q[48];
        ptq_snippet(q, sizeof q, t, strlen(t));
        free(t);
        if (!none)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                            "%s: llama.rope.scaling.type is \"%s\"; only plain RoPE is implemented", g->path, q);
    }
    int experts = 0;
    PTQ_TRY(u32_key(g, "llama.expert_count", 0, 0, 0, INT32_MAX, &experts, err));
    if (experts > 0)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: llama.expert_count is %d: mixture-of-experts LLaMA models are not supported", g->path,
                        experts);
    if (ptq_gguf_find(g, "rope_freqs.weight"))
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: tensor \"rope_freqs.weight\" (Llama 3.1-style RoPE frequency scaling) is not supported",
                        g->path);
    return PTQ_OK;
}

static ptq_status build(src *s, ptq_error *err) {
    ptq_gguf *g = s->g;
    ptq_model *m = s->m;
    ptq_config *c = &m->cfg;

    char arch[48];
    PTQ_TRY(ptq_gguf_src_arch(g, arch, sizeof arch, err));
    if (!strcmp(arch, "gpt2")) return ptq_gguf_build_gpt2(s, err);
    if (strcmp(arch, "llama") != 0)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: general.architecture is \"%s\"; ptq reads LLaMA- and GPT-2-architecture GGUF files "
                        "(\"llama\", \"gpt2\")",
                        g->path, arch);
    PTQ_TRY(refuse_unsupported(g, err));

    int dim = 0, n_layers = 0, hidden = 0, n_heads = 1, n_kv = 1, max_seq = 0, rope_dim = 0, head_dim, key_len = 0,
        val_len = 0;
    PTQ_TRY(u32_key(g, "llama.embedding_length", 1, 0, 1, 1 << 20, &dim, err));
    PTQ_TRY(u32_key(g, "llama.block_count", 1, 0, 1, 4096, &n_layers, err));
    PTQ_TRY(u32_key(g, "llama.feed_forward_length", 1, 0, 1, 1 << 22, &hidden, err));
    PTQ_TRY(u32_key(g, "llama.attention.head_count", 1, 0, 1, 4096, &n_heads, err));
    PTQ_TRY(u32_key(g, "llama.attention.head_count_kv", 0, (uint32_t)n_heads, 1, 4096, &n_kv, err));
    PTQ_TRY(u32_key(g, "llama.context_length", 1, 0, 1, 1 << 24, &max_seq, err));
    if (dim % n_heads)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: llama.embedding_length %d is not a multiple of llama.attention.head_count %d",
                        g->path, dim, n_heads);
    head_dim = dim / n_heads;
    PTQ_TRY(u32_key(g, "llama.attention.key_length", 0, (uint32_t)head_dim, 1, 1 << 16, &key_len, err));
    PTQ_TRY(u32_key(g, "llama.attention.value_length", 0, (uint32_t)head_dim, 1, 1 << 16, &val_len, err));
    PTQ_TRY(u32_key(g, "llama.rope.dimension_count", 0, (uint32_t)head_dim, 1, 1 << 16, &rope_dim, err));
    if (key_len != head_dim || val_len != head_dim)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: attention key/value length %d/%d differs from embedding_length / head_count = %d", g->path,
                        key_len, val_len, head_dim);
    if (rope_dim != head_dim)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: llama.rope.dimension_count is %d but heads have %d dimensions (partial RoPE is not supported)",
                        g->path, rope_dim, head_dim);
    if (head_dim % 2)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: head dimension %d must be even for RoPE", g->path, head_dim);
    if (n_heads % n_kv)
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: llama.attention.head_count %d is not a multiple of llama.attention.head_count_kv %d",
                        g->path, n_heads, n_kv);
    float eps = 1e-5f, theta = 10000.0f;
    if (!ptq_gguf_find_kv(g, "llama.attention.layer_norm_rms_epsilon"))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"llama.attention.layer_norm_rms_epsilon\" is missing", g->path);
    PTQ_TRY(ptq_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, err));
    if (ptq_gguf_find_kv(g, "llama.rope.freq_base")) PTQ_TRY(ptq_gguf_get_f32(g, "llama.rope.freq_base", &theta, err));
    if (!(eps >= 0 && eps <= 1) || !(theta >= 1 && theta <= 1e12f))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: rms epsilon %g or rope.freq_base %g out of range", g->path, eps,
                        theta);

    int vocab = 0;
    PTQ_TRY(ptq_gguf_src_vocab(g, "llama", dim, &vocab, err));

    memset(c, 0, sizeof *c);
    c->arch = PTQ_ARCH_LLAMA;
    c->causal = 1;
    c->dim = c->embed_dim = dim;
    c->n_layers = n_layers;
    c->n_heads = n_heads;
    c->n_kv_heads = n_kv;
    c->head_dim = head_dim;
    c->hidden_dim = hidden;
    c->vocab_size = vocab;
    c->max_seq = max_seq;
    c->norm = PTQ_NORM_RMS;
    c->norm_eps = eps;
    c->pre_norm = 1;
    c->act = PTQ_ACT_SILU;
    c->gated_mlp = 1;
    c->rope = PTQ_ROPE_HALF;
    c->rope_theta = theta;
    ptq_gguf_src_bos_eos(g, c);
    snprintf(m->format, sizeof m->format, "gguf");

    const int64_t emb_ne[2] = {dim, vocab};
    const ptq_gguf_tensor *te = ptq_gguf_find(g, "token_embd.weight");
    const int tied = !ptq_gguf_find(g, "output.weight");
    if (!tied || (te && ptq_ggml_gemm_supported(te->type))) {
        /* a lookup reads one row, so a block table stays packed (Q4_0/Q5_0/Q8_0: tok_emb_q) or in its blocks
           (k-quants, Q4_1, Q5_1: tok_emb_ggml), the very values, instead of becoming float32, tied or not (a tied
           head then multiplies with the same table, below); a tied F32/F16/BF16 table serves the head as float32 */
        ptq_linear emb;
        memset(&emb, 0, sizeof emb);
        ptq_status st = ptq_gguf_src_linear(s, &emb, "token_embd", dim, vocab, 0, 0, err);
        m->tok_emb = emb.w; /* model-owned */
        m->tok_emb_q = emb.q; /* freed by ptq_model_free */
        m->tok_emb_ggml = emb.ggml; /* k-quant blocks, model-owned */
        m->tok_emb_ggml_type = emb.ggml_type;
        PTQ_TRY(st);
        if (emb.b) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: unexpected tensor token_embd.bias", g->path);
    } else {
        PTQ_TRY(ptq_gguf_src_take(s, "token_embd.weight", 2, emb_ne, &m->tok_emb, err));
    }
    m->blocks = calloc((size_t)n_layers, sizeof *m->blocks);
    if (!m->blocks) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate %d blocks", n_layers);
    const int q_out = n_heads * head_dim, kv_out = n_kv * head_dim;
    char nm[64];
    for (int l = 0; l < n_layers; l++) {
        ptq_block *b = &m->blocks[l];
#define NAME(suffix) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), nm)
        PTQ_TRY(norm(s, &b->norm1, NAME("attn_norm"), dim, err));
        PTQ_TRY(ptq_gguf_src_linear(s, &b->lin[PTQ_LIN_Q], NAME("attn_q"), dim, q_out, 0, n_heads, err));
        PTQ_TRY(ptq_gguf_src_linear(s, &b->lin[PTQ_LIN_K], NAME("attn_k"), dim, kv_out, 0, n_kv, err));
        PTQ_TRY(linear(s, &b->lin[PTQ_LIN_V], NAME("attn_v"), dim, kv_out, err));
        PTQ_TRY(linear(s, &b->lin[PTQ_LIN_O], NAME("attn_output"), q_out, dim, err));
        PTQ_TRY(norm(s, &b->norm2, NAME("ffn_norm"), dim, err));
        PTQ_TRY(linear(s, &b->lin[PTQ_LIN_GATE], NAME("ffn_gate"), dim, hidden, err));
        PTQ_TRY(linear(s, &b->lin[PTQ_LIN_UP], NAME("ffn_up"), dim, hidden, err));
        PTQ_TRY(linear(s, &b->lin[PTQ_LIN_DOWN], NAME("ffn_down"), hidden, dim, err));
#undef NAME
    }
    PTQ_TRY(norm(s, &m->final_norm, "output_norm", dim, err));
    if (ptq_gguf_find(g, "output.weight")) {
        PTQ_TRY(linear(s, &m->head, "output", dim, vocab, err));
    } else { /* tied, as llama.cpp does when the file has no output tensor */
        snprintf(m->head.name, sizeof m->head.name, "output");
        m->head.in = dim;
        m->head.out = vocab;
        m->head.w = m->tok_emb;
        m->head.q = m->tok_emb_q; /* or the packed table (freed once, as the head's: ptq_model_free) */
        m->head.ggml = (void *)m->tok_emb_ggml; /* or the table's blocks (ptq_head_tied) */
        m->head.ggml_type = m->tok_emb_ggml_type;
    }
    PTQ_TRY(ptq_gguf_src_all_used(s, "a LLaMA model", n_layers, err));
    return ptq_model_validate(m, err);
}

ptq_status ptq_load_gguf(const char *path, ptq_model **out, ptq_error *err) {
    *out = NULL;
    ptq_gguf g;
    PTQ_TRY(ptq_gguf_open(path, &g, err));
    src s = {&g, ptq_model_new(path, err), calloc((size_t)(g.n_tensors ? g.n_tensors : 1), 1)};
    ptq_status st = PTQ_OK;
    if (!s.m || !s.used) st = ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory", path);
    if (st == PTQ_OK) st = build(&s, err);
    free(s.used);
    ptq_gguf_close(&g);
    if (st != PTQ_OK) {
        ptq_model_free(s.m);
        return st;
    }
    *out = s.m;
    return PTQ_OK;
}
