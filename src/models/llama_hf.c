/* LLaMA with Hugging Face names (LlamaForCausalLM): model.embed_tokens, model.layers.N.{input_layernorm,
 * self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head.
 * RMSNorm, RoPE rotating (i, i + head_dim/2), GQA, gated MLP. */
#include <cJSON.h>
#include <string.h>

#include "core/error.h"
#include "io/json.h"
#include "models/families.h"

/* rope_theta, rejecting any RoPE scaling ("rope_scaling", or "rope_parameters" of another type). */
static ptq_status rope_config(const ptq_hf_src *src, double *theta, ptq_error *err) {
    const char *f = src->config_path;
    PTQ_TRY(ptq_hf_require_null(src, "rope_scaling", "only plain RoPE is implemented", err));
    PTQ_TRY(ptq_json_float(src->config, f, "rope_theta", 0, 10000.0, 1.0, 1e12, theta, err));
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(src->config, "rope_parameters");
    if (rp && !cJSON_IsNull(rp)) {
        const char *type = "default";
        if (!cJSON_IsObject(rp)) return ptq_fail(err, PTQ_ERR_CONFIG, "%s: rope_parameters must be an object", f);
        PTQ_TRY(ptq_json_string(rp, f, "rope_type", 0, "default", &type, err));
        if (strcmp(type, "default"))
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                            "%s: rope_parameters.rope_type = \"%s\" is not supported (only \"default\")", f, type);
        PTQ_TRY(ptq_json_float(rp, f, "rope_theta", 0, *theta, 1.0, 1e12, theta, err));
    }
    return PTQ_OK;
}

ptq_status ptq_build_llama_hf(ptq_model *m, const ptq_hf_src *src, ptq_error *err) {
    const cJSON *j = src->config;
    const char *f = src->config_path;
    ptq_config *c = &m->cfg;
    int dim, hidden, n_layers, n_heads, n_kv, head_dim, vocab, max_pos, attn_bias, mlp_bias, tie;
    double eps, theta;
    const char *act = "silu";

    PTQ_TRY(ptq_json_int(j, f, "hidden_size", 1, 0, 1, 1 << 20, &dim, err));
    PTQ_TRY(ptq_json_int(j, f, "intermediate_size", 1, 0, 1, 1 << 22, &hidden, err));
    PTQ_TRY(ptq_json_int(j, f, "num_hidden_layers", 1, 0, 1, 4096, &n_layers, err));
    PTQ_TRY(ptq_json_int(j, f, "num_attention_heads", 1, 0, 1, 4096, &n_heads, err));
    PTQ_TRY(ptq_json_int(j, f, "vocab_size", 1, 0, 1, 1 << 24, &vocab, err));
    PTQ_TRY(ptq_hf_int_opt(src, "num_key_value_heads", n_heads, 1, 4096, &n_kv, err));
    if (dim % n_heads != 0 && !cJSON_GetObjectItemCaseSensitive(j, "head_dim"))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: hidden_size %d is not a multiple of num_attention_heads %d", f, dim,
                        n_heads);
    PTQ_TRY(ptq_hf_int_opt(src, "head_dim", dim / n_heads, 2, 1 << 16, &head_dim, err));
    PTQ_TRY(ptq_json_int(j, f, "max_position_embeddings", 0, 2048, 1, 1 << 24, &max_pos, err));
    PTQ_TRY(ptq_json_float(j, f, "rms_norm_eps", 0, 1e-6, 0.0, 1.0, &eps, err));
    PTQ_TRY(rope_config(src, &theta, err));
    PTQ_TRY(ptq_json_string(j, f, "hidden_act", 0, "silu", &act, err));
    PTQ_TRY(ptq_json_bool(j, f, "attention_bias", 0, 0, &attn_bias, err));
    PTQ_TRY(ptq_json_bool(j, f, "mlp_bias", 0, 0, &mlp_bias, err));
    PTQ_TRY(ptq_json_bool(j, f, "tie_word_embeddings", 0, 0, &tie, err));
    if (n_heads % n_kv != 0)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                        f, n_heads, n_kv);
    if (head_dim % 2 != 0)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: head_dim %d must be even for RoPE", f, head_dim);

    memset(c, 0, sizeof *c);
    c->arch = PTQ_ARCH_LLAMA;
    c->causal = 1;
    c->dim = dim;
    c->n_layers = n_layers;
    c->n_heads = n_heads;
    c->n_kv_heads = n_kv;
    c->head_dim = head_dim;
    c->hidden_dim = hidden;
    c->vocab_size = vocab;
    c->max_seq = max_pos;
    c->norm = PTQ_NORM_RMS;
    c->norm_eps = (float)eps;
    c->pre_norm = 1;
    PTQ_TRY(ptq_hf_act(src, "hidden_act", act, &c->act, err));
    c->gated_mlp = 1;
    c->rope = PTQ_ROPE_HALF;
    c->rope_theta = (float)theta;
    c->pos_offset = 0;
    c->embed_dim = dim;
    PTQ_TRY(ptq_hf_token_id(src, "bos_token_id", &c->bos_id, err));
    PTQ_TRY(ptq_hf_token_id(src, "eos_token_id", &c->eos_id, err));

    /* LlamaForCausalLM stores "model.*"; a bare LlamaModel has no prefix. */
    const char *pre = ptq_hf_has(src, "model.embed_tokens.weight") || !ptq_hf_has(src, "embed_tokens.weight")
                          ? "model."
                          : "";
    char name[256], lp[192];
    const int64_t emb_shape[2] = {vocab, dim};
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%sembed_tokens.weight", pre));
    PTQ_TRY(ptq_hf_read(m, src, name, 2, emb_shape, &m->tok_emb, err));

    PTQ_TRY(ptq_hf_blocks(m, n_layers, err));
    const int q_out = n_heads * head_dim, kv_out = n_kv * head_dim;
    for (int l = 0; l < n_layers; l++) {
        ptq_block *b = &m->blocks[l];
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.input_layernorm", pre, l));
        PTQ_TRY(ptq_hf_norm(m, src, &b->norm1, lp, dim, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.self_attn.q_proj", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_Q], lp, dim, q_out, attn_bias, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.self_attn.k_proj", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_K], lp, dim, kv_out, attn_bias, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.self_attn.v_proj", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_V], lp, dim, kv_out, attn_bias, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.self_attn.o_proj", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_O], lp, q_out, dim, attn_bias, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.post_attention_layernorm", pre, l));
        PTQ_TRY(ptq_hf_norm(m, src, &b->norm2, lp, dim, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.mlp.gate_proj", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_GATE], lp, dim, hidden, mlp_bias, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.mlp.up_proj", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_UP], lp, dim, hidden, mlp_bias, 0, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.%d.mlp.down_proj", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_DOWN], lp, hidden, dim, mlp_bias, 0, err));
    }
    PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%slayers.", pre));
    PTQ_TRY(ptq_hf_check_layer_count(src, lp, n_layers, "num_hidden_layers", err));
    PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%snorm", pre));
    PTQ_TRY(ptq_hf_norm(m, src, &m->final_norm, lp, dim, 0, err));

    return ptq_hf_lm_head(m, src, tie, dim, vocab, err);
}
