/* Hugging Face / timm model families read from safetensors + config.json.
 *
 * hf_load.c finds config.json and the weights, decides the family and calls one builder below.
 * A builder parses its config fields, fills m->cfg, reads every tensor against the shape the
 * config implies and fills the generic model (model.h). The helpers here are shared by them.
 */
#ifndef PTQ_MODELS_FAMILIES_H
#define PTQ_MODELS_FAMILIES_H

#include "io/safetensors.h"
#include "models/model.h"

typedef struct cJSON cJSON;

/* What a builder reads from. */
typedef struct ptq_hf_src {
    const ptq_safetensors *st;
    const char *weights_path; /* the .safetensors file or index, for messages */
    const char *config_path;  /* config.json, for messages */
    const cJSON *config;
    int stream;               /* ptq_load_options.stream_weights: block linears and the head keep their source */
} ptq_hf_src;

ptq_status ptq_build_llama_hf(ptq_model *m, const ptq_hf_src *src, ptq_error *err);
ptq_status ptq_build_gpt2(ptq_model *m, const ptq_hf_src *src, ptq_error *err);
ptq_status ptq_build_opt(ptq_model *m, const ptq_hf_src *src, ptq_error *err);
/* timm = 1: timm names (patch_embed, blocks.N.attn.qkv, ...); 0: ViTForImageClassification names. */
ptq_status ptq_build_vit(ptq_model *m, const ptq_hf_src *src, int timm, ptq_error *err);

/* ---- helpers (hf_load.c); err must not be NULL ---- */

/* Format a tensor name; fails (PTQ_ERR_FORMAT) when it does not fit in `size`. */
ptq_status ptq_hf_name(char *dst, size_t size, ptq_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int ptq_hf_has(const ptq_hf_src *src, const char *name);

/* Read tensor `name` of exactly `shape` into a new model-owned buffer and record it for inspect.
 * A missing tensor, another shape, an unsupported dtype or a NaN/Inf fails with a message naming
 * the tensor and the file. */
ptq_status ptq_hf_read(ptq_model *m, const ptq_hf_src *src, const char *name, int ndim, const int64_t *shape,
                       float **out, ptq_error *err);

/* A linear layer `prefix`.weight [out][in] (+ `prefix`.bias [out] when has_bias). conv1d = 1: the
 * weight is stored [in][out] (GPT-2 Conv1D) and is transposed to [out][in]. */
/* The LM head "lm_head": tied to the token embedding (any stored lm_head.weight is ignored, as Hugging
 * Face ties it) or read as a linear [vocab][in] without bias. */
ptq_status ptq_hf_lm_head(ptq_model *m, const ptq_hf_src *src, int tie, int in, int vocab, ptq_error *err);
ptq_status ptq_hf_linear(ptq_model *m, const ptq_hf_src *src, ptq_linear *lin, const char *prefix, int in, int out,
                         int has_bias, int conv1d, ptq_error *err);
/* A norm `prefix`.weight [dim] (+ `prefix`.bias when has_bias). */
ptq_status ptq_hf_norm(ptq_model *m, const ptq_hf_src *src, ptq_norm *n, const char *prefix, int dim, int has_bias,
                       ptq_error *err);
/* m->blocks = n zeroed blocks (freed by ptq_model_free). */
ptq_status ptq_hf_blocks(ptq_model *m, int n, ptq_error *err);
/* Fails (PTQ_ERR_CONFIG) when the file holds a tensor whose name starts with `layer_prefix` + n_layers + ".",
 * i.e. more layers than the config field `field` says. */
ptq_status ptq_hf_check_layer_count(const ptq_hf_src *src, const char *layer_prefix, int n_layers, const char *field,
                                    ptq_error *err);

/* Activation names of config.json (hidden_act, activation_function, act_layer). */
ptq_status ptq_hf_act(const ptq_hf_src *src, const char *field, const char *value, ptq_act_kind *out, ptq_error *err);
/* An int field that may be absent or null (-> def). */
ptq_status ptq_hf_int_opt(const ptq_hf_src *src, const char *key, int def, int lo, int hi, int *out, ptq_error *err);
/* A token id field: absent/null -> -1, an int, or a list of ints (the first is taken). */
ptq_status ptq_hf_token_id(const ptq_hf_src *src, const char *key, int *out, ptq_error *err);
/* PTQ_ERR_UNSUPPORTED when boolean field `key` is present and differs from `supported`. */
ptq_status ptq_hf_require_bool(const ptq_hf_src *src, const char *key, int supported, const char *why,
                               ptq_error *err);
/* PTQ_ERR_UNSUPPORTED when field `key` is present and not null. */
ptq_status ptq_hf_require_null(const ptq_hf_src *src, const char *key, const char *why, ptq_error *err);

#endif
