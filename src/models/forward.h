/* Float32 forward pass of the generic transformer in model.h, one block at a time.
 *
 * Activations are row-major [rows][dim] with rows = n_seq * seq_len: n_seq independent sequences
 * (images for ViT) of seq_len tokens each. Attention never crosses sequences. Language models
 * with a KV cache run one sequence (n_seq = 1) whose rows sit at positions pos0 .. pos0+seq_len-1
 * and attend to everything cached before them.
 */
#ifndef PTQ_MODELS_FORWARD_H
#define PTQ_MODELS_FORWARD_H

#include "models/model.h"

/* Called after every linear layer inside a block with its input X [rows][in] and output
 * Y [rows][out] (bias included). Return nonzero to stop the forward (PTQ_ERR_CALLBACK). */
typedef int (*ptq_linear_hook)(void *user, int layer, ptq_lin_role role, const ptq_linear *lin, const float *X,
                               const float *Y, int rows);

typedef struct ptq_kv_cache {
    int n_layers, max_seq, kv_dim;
    float *k;     /* [n_layers][kv_dim][max_seq]: keys by dimension, for the decode's scores (ptq_attention_kt) */
    float *v;     /* [n_layers][max_seq][kv_dim] */
    /* block activations, kept between calls (sized for the most rows seen) so a decode step allocates
       nothing; owned, freed with the cache */
    float *scratch;
    size_t scratch_floats;
} ptq_kv_cache;

ptq_status ptq_kv_cache_init(ptq_kv_cache *c, const ptq_model *m, int max_seq, ptq_error *err);
/* Grow the cache to hold at least `need` positions (at most `limit`), keeping what it holds. */
ptq_status ptq_kv_cache_reserve(ptq_kv_cache *c, int need, int limit, ptq_error *err);
void ptq_kv_cache_free(ptq_kv_cache *c);
/* Release the block activations the cache keeps (sized for the largest chunk seen); the next block call
 * allocates what it needs. */
void ptq_kv_cache_drop_scratch(ptq_kv_cache *c);

/* The runtime path: y[rows][out] = x[rows][in] W^T + b (+ bc), with the packed weights when the layer
 * has them (else BLAS on the float weights). Position-dependent biases are applied by the block. */
void ptq_linear_forward(const ptq_linear *lin, const float *x, int rows, float *y);
/* ptq_linear_forward of n linears on the same input x (q, k, v; gate, up) into ys[i], in one call when
 * all are plain int8-activation layers (--act8, no activation quantizer): a decode step then shares
 * one activation quantization and one parallel region (ptq_qgemm_a8_multi). Returns 1 when done,
 * 0 (nothing done) for other layers, which the caller runs one by one. */
int ptq_linear_forward_many(const ptq_linear *const *lins, int n, const float *x, int rows, float *const *ys);
/* The runtime path with simulated (fake-quantized) activations even where int8 kernels exist. */
void ptq_linear_forward_simulated(const ptq_linear *lin, const float *x, int rows, float *y);
/* The float reference path: float weights and the original bias only. Requires lin->w. */
void ptq_linear_forward_float(const ptq_linear *lin, const float *x, int rows, float *y);

/* Sees q, k (after RoPE) and v of every attention call, before any quantization of them. */
typedef void (*ptq_attn_observer)(void *user, int layer, const float *q, int qs, const float *k, int ks,
                                  const float *v, int vs, int rows);

typedef struct ptq_block_opts {
    ptq_linear_hook hook;
    void *hook_user;
    int float_weights; /* run the original float model (targets for BC and activation calibration) */
    ptq_attn_observer attn_observer;
    void *attn_user;
} ptq_block_opts;

/* Token embedding (+ learned positions, + OPT project_in) for n tokens at positions pos0.. */
ptq_status ptq_embed_tokens(const ptq_model *m, const int *tokens, int n, int pos0, float *x, ptq_error *err);
/* ViT: n_img images [n_img][C][H][W] -> x [n_img * cfg.max_seq][dim] (cls token first). */
ptq_status ptq_embed_images(const ptq_model *m, const float *pixels, int n_img, float *x, ptq_error *err);

/* One block, in place on x. `cache` may be NULL (attention only within each sequence of x). */
ptq_status ptq_block_forward(const ptq_model *m, int layer, float *x, int n_seq, int seq_len, int pos0,
                             ptq_kv_cache *cache, ptq_linear_hook hook, void *hook_user, ptq_error *err);
ptq_status ptq_block_forward_ex(const ptq_model *m, int layer, float *x, int n_seq, int seq_len, int pos0,
                                ptq_kv_cache *cache, const ptq_block_opts *opts, ptq_error *err);

/* LM: final norm, project_out and head for `rows` rows of x -> logits [rows][vocab].
 * ViT: takes the cls row of each of `rows` images (x is [rows*max_seq][dim]) -> [rows][classes]. */
ptq_status ptq_head_forward(const ptq_model *m, const float *x, int rows, float *logits, ptq_error *err);
ptq_status ptq_head_forward_ex(const ptq_model *m, const float *x, int rows, float *logits, int float_weights,
                               ptq_error *err);

/* Whole model: LM tokens -> logits [n][vocab] for every position (no cache, positions 0..n-1). */
ptq_status ptq_forward_tokens(const ptq_model *m, const int *tokens, int n, float *logits, ptq_error *err);
/* Whole model: ViT images -> logits [n_img][classes]. */
ptq_status ptq_forward_images(const ptq_model *m, const float *pixels, int n_img, float *logits, ptq_error *err);

#endif
