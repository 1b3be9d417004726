/* GPT-2 with Hugging Face names (GPT2LMHeadModel), with or without the "transformer." prefix:
 * wte, wpe, h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_f; head tied to wte.
 * Conv1D weights are stored [in][out] and transposed here to [out][in]. */
#include <cJSON.h>
#include <string.h>

#include "core/error.h"
#include "io/json.h"
#include "models/families.h"

ptq_status ptq_build_gpt2(ptq_model *m, const ptq_hf_src *src, ptq_error *err) {
    const cJSON *j = src->config;
    const char *f = src->config_path;
    ptq_config *c = &m->cfg;
    int dim, n_layers, n_heads, vocab, n_pos, hidden, tie;
    double eps;
    const char *act = "gelu_new";

    PTQ_TRY(ptq_json_int(j, f, "n_embd", 1, 0, 1, 1 << 20, &dim, err));
    PTQ_TRY(ptq_json_int(j, f, "n_layer", 1, 0, 1, 4096, &n_layers, err));
    PTQ_TRY(ptq_json_int(j, f, "n_head", 1, 0, 1, 4096, &n_heads, err));
    PTQ_TRY(ptq_json_int(j, f, "vocab_size", 1, 0, 1, 1 << 24, &vocab, err));
    if (cJSON_GetObjectItemCaseSensitive(j, "n_positions"))
        PTQ_TRY(ptq_json_int(j, f, "n_positions", 1, 0, 1, 1 << 24, &n_pos, err));
    else
        PTQ_TRY(ptq_json_int(j, f, "n_ctx", 1, 0, 1, 1 << 24, &n_pos, err));
    if (dim % n_heads != 0)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: n_embd %d is not a multiple of n_head %d", f, dim, n_heads);
    PTQ_TRY(ptq_hf_int_opt(src, "n_inner", 4 * dim, 1, 1 << 22, &hidden, err));
    PTQ_TRY(ptq_json_float(j, f, "layer_norm_epsilon", 0, 1e-5, 0.0, 1.0, &eps, err));
    PTQ_TRY(ptq_json_string(j, f, "activation_function", 0, "gelu_new", &act, err));
    PTQ_TRY(ptq_json_bool(j, f, "tie_word_embeddings", 0, 1, &tie, err));
    PTQ_TRY(ptq_hf_require_bool(src, "scale_attn_weights", 1, "attention scores are always scaled by 1/sqrt(head_dim)",
                                err));
    PTQ_TRY(ptq_hf_require_bool(src, "scale_attn_by_inverse_layer_idx", 0,
                                "attention scores are not scaled by 1/(layer+1)", err));
    PTQ_TRY(ptq_hf_require_bool(src, "add_cross_attention", 0, "decoder-only models only", err));

    memset(c, 0, sizeof *c);
    c->arch = PTQ_ARCH_GPT2;
    c->causal = 1;
    c->dim = dim;
    c->n_layers = n_layers;
    c->n_heads = n_heads;
    c->n_kv_heads = n_heads;
    c->head_dim = dim / n_heads;
    c->hidden_dim = hidden;
    c->vocab_size = vocab;
    c->max_seq = n_pos;
    c->norm = PTQ_NORM_LAYER;
    c->norm_eps = (float)eps;
    c->pre_norm = 1;
    PTQ_TRY(ptq_hf_act(src, "activation_function", act, &c->act, err));
    c->gated_mlp = 0;
    c->rope = PTQ_ROPE_NONE;
    c->pos_offset = 0;
    c->embed_dim = dim;
    PTQ_TRY(ptq_hf_token_id(src, "bos_token_id", &c->bos_id, err));
    PTQ_TRY(ptq_hf_token_id(src, "eos_token_id", &c->eos_id, err));

    const char *pre = ptq_hf_has(src, "transformer.wte.weight") || !ptq_hf_has(src, "wte.weight") ? "transformer." : "";
    char name[256], lp[192];
    const int64_t wte_shape[2] = {vocab, dim}, wpe_shape[2] = {n_pos, dim};
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%swte.weight", pre));
    PTQ_TRY(ptq_hf_read(m, src, name, 2, wte_shape, &m->tok_emb, err));
    PTQ_TRY(ptq_hf_name(name, sizeof name, err, "%swpe.weight", pre));
    PTQ_TRY(ptq_hf_read(m, src, name, 2, wpe_shape, &m->pos_emb, err));
    m->n_pos = n_pos;

    PTQ_TRY(ptq_hf_blocks(m, n_layers, err));
    for (int l = 0; l < n_layers; l++) {
        ptq_block *b = &m->blocks[l];
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sh.%d.ln_1", pre, l));
        PTQ_TRY(ptq_hf_norm(m, src, &b->norm1, lp, dim, 1, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sh.%d.attn.c_attn", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_QKV], lp, dim, 3 * dim, 1, 1, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sh.%d.attn.c_proj", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_O], lp, dim, dim, 1, 1, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sh.%d.ln_2", pre, l));
        PTQ_TRY(ptq_hf_norm(m, src, &b->norm2, lp, dim, 1, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sh.%d.mlp.c_fc", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_UP], lp, dim, hidden, 1, 1, err));
        PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sh.%d.mlp.c_proj", pre, l));
        PTQ_TRY(ptq_hf_linear(m, src, &b->lin[PTQ_LIN_DOWN], lp, hidden, dim, 1, 1, err));
    }
    PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sh.", pre));
    PTQ_TRY(ptq_hf_check_layer_count(src, lp, n_layers, "n_layer", err));
    PTQ_TRY(ptq_hf_name(lp, sizeof lp, err, "%sln_f", pre));
    PTQ_TRY(ptq_hf_norm(m, src, &m->final_norm, lp, dim, 1, err));

    return ptq_hf_lm_head(m, src, tie, dim, vocab, err);
}
