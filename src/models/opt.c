/* OPT with Hugging Face names (OPTForCausalLM): model.decoder.{embed_tokens, embed_positions, project_in,
 * project_out, final_layer_norm, layers.N.{self_attn.{q,k,v,out}_proj, self_attn_layer_norm, fc1, fc2,
 * final_layer_norm}}, lm_head tied to embed_tokens.
 *
 * Semantics (as transformers' OPTDecoder): x = project_in(embed_tokens[t]) + embed_positions[pos + 2];
 * do_layer_norm_before = true: pre-norm blocks and a final layer norm (unless _remove_final_layer_norm);
 * false (OPT-350M): post-norm blocks and no final layer norm; then project_out and the tied head.
 * LayerNorm eps is PyTorch's default 1e-5. */
#include <cJSON.h>
#include <string.h>

#include "core/error.h"
#include "io/json.h"
#include "models/families.h"

static ptq_status norm_or_identity(ptq_model *m, const ptq_hf_src *src, ptq_norm *n, const char *prefix, int dim,
                                   int affine, ptq_error *err) {
    if (affine) return ptq_hf_norm(m, src, n, prefix, dim, 1, err);
    /* elementwise_affine = false: weight 1, bias 0 */
    n->w = ptq_model_floats(m, (size_t)dim, prefix, err);
    n->b = n->w ? ptq_model_floats(m, (size_t)dim, prefix, err) : NULL;
    if (!n->w || !n->b) return err->status ? err->status : PTQ_ERR_NOMEM;
    for (int i = 0; i < dim; i++) n->w[i] = 1.0f;
    return PTQ_OK;
}

ptq_status ptq_build_opt(ptq_model *m, const ptq_hf_src *src, ptq_error *err) {
    const cJSON *j = src->config;
    const char *f = src->config_path;
    ptq_config *c = &m->cfg;
    int dim, n_layers, n_heads, hidden, vocab, max_pos, embed_dim, ln_before, remove_final, bias, affine, tie;
    const char *act = "relu";

    PTQ_TRY(ptq_json_int(j, f, "hidden_size", 1, 0, 1, 1 << 20, &dim, err));
    PTQ_TRY(ptq_json_int(j, f, "num_hidden_layers", 1, 0, 1, 4096, &n_layers, err));
    PTQ_TRY(ptq_json_int(j, f, "num_attention_heads", 1, 0, 1, 4096, &n_heads, err));
    PTQ_TRY(ptq_json_int(j, f, "ffn_dim", 1, 0, 1, 1 << 22, &hidden, err));
    PTQ_TRY(ptq_json_int(j, f, "vocab_size", 1, 0, 1, 1 << 24, &vocab, err));
    PTQ_TRY(ptq_json_int(j, f, "max_position_embeddings", 1, 0, 1, 1 << 24, &max_pos, err));
    PTQ_TRY(ptq_hf_int_opt(src, "word_embed_proj_dim", dim, 1, 1 << 20, &embed_dim, err));
    PTQ_TRY(ptq_json_bool(j, f, "do_layer_norm_before", 0, 1, &ln_before, err));
    PTQ_TRY(ptq_json_bool(j, f, "_remove_final_layer_norm", 0, 0, &remove_final, err));
    PTQ_TRY(ptq_json_bool(j, f, "enable_bias", 0, 1, &bias, err));
    PTQ_TRY(ptq_json_bool(j, f, "layer_norm_elementwise_affine", 0, 1, &affine, err));
    PTQ_TRY(ptq_json_bool(j, f, "tie_word_embeddings", 0, 1, &tie, err));
    PTQ_TRY(ptq_json_string(j, f, "activation_function", 0, "relu", &act, err));
    if (dim % n_heads != 0)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: hidden_size %d is not a multiple of num_attention_heads %d", f, dim,
                        n_heads);

    memset(c, 0, sizeof *c);
    c->arch = PTQ_ARCH_OPT;
    c->causal = 1;
    c->dim = dim;
    c->n_layers = n_layers;
    c->n_heads = n_heads;
    c->n_kv_heads = n_heads;
    c->head_dim = dim / n_heads;
    c->hidden_dim = hidden;
    c->vocab_size = vocab;
    c->max_seq = max_pos;
    c->norm = PTQ_NORM_LAYER;
    c->norm_eps = 1e-5f;
    c->pre_norm = ln_before;
    PTQ_TRY(ptq_hf_act(src, "activation_function", act, &c->act, err));
    c->gated_mlp = 0;
    c->rope = PTQ_ROPE_NONE;
    c->pos_offset = 2;
    c->embed_dim = embed_dim;
    PTQ_TRY(ptq_hf_token_id(src, "bos_token_id", &c->bos_id, err));
    PTQ_TRY(ptq_hf_token_id(src, "eos_token_id", &c->eos_id, err));

    const char *pre = ptq_hf_has(src, "model.decoder.embed_tokens.weight") || !ptq_hf_has(src, "decoder.embed_tokens.weight")
                          ? "model.decoder."
                          : "decoder.";
    char name[256], lp[192];
    const int64_t emb_shape[2] = {vocab, embed_dim}, pos_shape[2] = {max_pos + 2, dim};
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%sembed_tokens.weight", pre));
    PTQ_TRY(ptq_hf_read(m, src, name, 2, emb_shape, &m->tok_emb, err));
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%sembed_positions.weight", pre));
    PTQ_TRY(ptq_hf_read(m, src, name, 2, pos_shape, &m->pos_emb, err));
    m->n_pos = max_pos + 2;
    if (embed_dim != dim) {
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sproject_in", pre));
        PTQ_TRY(ptq_hf_linear(m, src, &m->proj_in, lp, embed_dim, dim, 0, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sproject_out", pre));
        PTQ_TRY(ptq_hf_linear(m, src, &m->proj_out, lp, dim, embed_dim, 0, 0, err));
    }

    PTQ_TRY(ptq_hf_blocks(m, n_layers, err));
    for (int l = 0; l < n_layers; l++) {
        ptq_block *b = &m->blocks[l];
        static const char *const attn[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        static const ptq_lin_role roles[4] = {PTQ_LIN_Q, PTQ_LIN_K, PTQ_LIN_V, PTQ_LIN_O};
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.self_attn_layer_norm", pre, l));
        PTQ_TRY(norm_or_identity(m, src, &b->norm1, lp, dim, affine, err));
        for (int r = 0; r < 4; r++) {
            PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.self_attn.%s", pre, l, attn[r]));
            PTQ_TRY(ptq_hf_linear(m, src, &b->lin[roles[r]], lp, dim, dim, bias, 0, err));
        }
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.final_layer_norm", pre, l));
        PTQ_TRY(norm_or_identity(m, src, &b->norm2, lp, dim, affine, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.fc1", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_UP], lp, dim, hidden, bias, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.fc2", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_DOWN], lp, hidden, dim, bias, 0, err));
    }
    PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.", pre));
    PTQ_TRY(ptq_hf_check_layer_count(src, lp, n_layers, "num_hidden_layers", err));

    if (ln_before && !remove_final) {
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sfinal_layer_norm", pre));
        PTQ_TRY(norm_or_identity(m, src, &m->final_norm, lp, dim, affine, err));
    } else {
        m->final_norm.w = NULL;
        m->final_norm.b = NULL;
    }

    return ptq_hf_lm_head(m, src, tie, embed_dim, vocab, err);
}
