/* Backward passes of the ops in ops.h (plus the losses and embeddings), for in-C fine-tuning (QuantTune).
 *
 * Conventions (every function below follows them unless its comment says otherwise):
 *  - Forward and backward come in pairs. A backward takes the forward's inputs and, where the forward
 *    can cheaply keep them, cached statistics (norm mean/rstd per row, attention probabilities). Where
 *    the existing forward op in ops.h does not keep them, a `*_forward_cache` variant here computes the
 *    same output with the same float arithmetic and fills the cache.
 *  - Backward functions ACCUMULATE: dx += ..., dW += ..., db += ... . Zero the gradient buffers once
 *    per step. Any gradient pointer may be NULL to skip that gradient.
 *    Exceptions: ptq_rope_backward transforms its gradient in place (like ptq_rope), and the loss
 *    functions return the loss value (their gradient outputs accumulate as usual).
 *  - Gradient outputs must not alias the incoming gradient dy or any forward input.
 *  - Reductions over rows (parameter gradients, loss sums) are accumulated in double over column blocks
 *    or fixed chunks, so results do not depend on the number of OpenMP threads. dW of a linear layer is
 *    accumulated by BLAS (sgemm, beta = 1) in float.
 *  - Activations are row-major [rows][dim] as in forward.h.
 */
#ifndef PTQ_OPS_BACKWARD_H
#define PTQ_OPS_BACKWARD_H

#include <stddef.h>

#include "models/model.h"

/* ---------------------------------------------------------------- helpers */

/* dst[d] += sum_{r < rows} x[r * ld + d] for d < dim (double accumulation). */
void ptq_colsum_acc(const float *x, int rows, size_t ld, int dim, float *dst);
/* dst[i] += src[i]: the backward of a residual add y = x + f(x) for the x branch (dx += dy). */
void ptq_add_acc(float *dst, const float *src, size_t n);

/* ---------------------------------------------------------------- linear: y = x W^T + b */

/* x [rows][in], w [out][in], dy [rows][out].
 * dx [rows][in] += dy W;  dw [out][in] += dy^T x;  db [out] += sum_r dy[r]. */
void ptq_linear_backward(const float *x, const float *w, const float *dy, int rows, int in, int out, float *dx,
                         float *dw, float *db);

/* ---------------------------------------------------------------- norms */

/* Per-row statistics of a norm forward: mean and 1/sqrt(var + eps) (layer norm), or 1/sqrt(mean(x^2) + eps)
 * (RMS norm; mean unused and may be NULL). Each [rows]. */
typedef struct ptq_norm_cache {
    float *mean;
    float *rstd;
} ptq_norm_cache;

/* As ptq_layernorm / ptq_rmsnorm (same float results), also storing mean[r] / rstd[r]. out may alias x,
 * but the backward needs the original x. */
void ptq_layernorm_forward_cache(const float *x, int rows, int dim, const float *w, const float *b, float eps,
                                 float *out, float *mean, float *rstd);
void ptq_rmsnorm_forward_cache(const float *x, int rows, int dim, const float *w, float eps, float *out, float *rstd);

/* x: the forward input [rows][dim]; dy: gradient of out; mean/rstd: the forward's cache (required).
 * With xhat = (x - mean) * rstd:  dx += ...;  dw [dim] += sum_r dy * xhat;  db [dim] += sum_r dy. */
void ptq_layernorm_backward(const float *x, const float *dy, const float *w, const float *mean, const float *rstd,
                            int rows, int dim, float *dx, float *dw, float *db);
void ptq_rmsnorm_backward(const float *x, const float *dy, const float *w, const float *rstd, int rows, int dim,
                          float *dx, float *dw);

/* The model's norm (cfg->norm, cfg->dim, cfg->norm_eps). cache->mean/rstd hold `rows` floats (mean unused for
 * RMS). grad->w / grad->b receive the weight and bias gradients (either may be NULL). */
void ptq_norm_forward_cache(const ptq_config *c, const ptq_norm *n, const float *x, int rows, float *out,
                            const ptq_norm_cache *cache);
void ptq_norm_backward(const ptq_config *c, const ptq_norm *n, const float *x, const float *dy,
                       const ptq_norm_cache *cache, int rows, float *dx, ptq_norm *grad);

/* ---------------------------------------------------------------- activations */

/* d act(x) / dx, matching ptq_act_scalar (ReLU: 0 at x = 0). */
float ptq_act_grad_scalar(ptq_act_kind kind, float x);
/* x: the pre-activation input. dx[i] += act'(x[i]) * dy[i]. */
void ptq_act_backward(ptq_act_kind kind, const float *x, const float *dy, float *dx, size_t n);
/* Gated MLP product y = act(g) * u (forward.c: gate = act(gate); up *= gate). */
void ptq_gated_forward(ptq_act_kind kind, const float *g, const float *u, float *y, size_t n);
/* dg += dy * u * act'(g);  du += dy * act(g). */
void ptq_gated_backward(ptq_act_kind kind, const float *g, const float *u, const float *dy, float *dg, float *du,
                        size_t n);

/* ---------------------------------------------------------------- RoPE */

/* Same arguments as ptq_rope. RoPE is a rotation of each pair, so its backward is the inverse rotation of
 * the gradient: on entry dx holds the gradient of the rotated x, on return the gradient of the unrotated x
 * (in place, NOT accumulated). Uses the same float angles as ptq_rope. */
void ptq_rope_backward(ptq_rope_kind kind, float *dx, int rows, int seq_len, int stride, int n_heads, int head_dim,
                       int pos0, float theta);

/* ---------------------------------------------------------------- attention */

/* Floats of the probability cache for one ptq_attention call. */
static inline size_t ptq_attention_probs_size(int n_heads, int n_q, int n_kv) {
    return (size_t)n_heads * (size_t)n_q * (size_t)n_kv;
}

/* As ptq_attention (same arguments, same float results), also storing the softmax probabilities
 * probs[(h * n_q + i) * n_kv + j] (0 for masked keys). q and k are the tensors attention sees (after RoPE). */
void ptq_attention_forward_cache(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out,
                                 int os, int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim,
                                 int causal, float *probs);

/* Gradients of ptq_attention with respect to q, k, v given dout (gradient of out, row stride os).
 * dq, dk, dv use the same row strides as q, k, v (so a fused [rows][q|k|v] gradient buffer works) and
 * accumulate; elements outside the heads (stride padding) are not touched. With GQA, dk/dv of a kv head
 * sum over its query heads. Returns PTQ_ERR_NOMEM if its small workspace cannot be allocated. */
ptq_status ptq_attention_backward(const float *q, int qs, const float *k, int ks, const float *v, int vs,
                                  const float *probs, const float *dout, int os, float *dq, float *dk, float *dv,
                                  int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                                  ptq_error *err);

/* ---------------------------------------------------------------- losses */

/* Softmax cross-entropy, mean over the rows whose target is not -1 (ignored rows). logits [rows][vocab].
 * *loss = mean_r (logsumexp(logits[r]) - logits[r][t_r]) (0 when every row is ignored).
 * dlogits (nullable) += scale * (softmax(logits[r]) - onehot(t_r)) / n_valid for the counted rows.
 * n_valid (nullable) receives the number of counted rows. PTQ_ERR_ARG for a target outside [-1, vocab). */
ptq_status ptq_cross_entropy(const float *logits, const int *targets, int rows, int vocab, double *loss,
                             float *dlogits, float scale, int *n_valid, ptq_error *err);

/* Outlier loss (OUR placeholder for QuantTune's unpublished loss, METHODS.md 3.2) over one monitored
 * activation tensor A of n elements (e.g. a linear layer's input [rows][in]):
 *     mu = mean(A), sigma = sqrt(mean((A - mu)^2) + 1e-12),
 *     L = mean_k relu(|A_k - mu| - tau * sigma)^2.
 * Returns L. dA (nullable) += scale * dL/dA, the exact gradient including the dependence of mu and sigma
 * on A (derivation in loss.c). */
double ptq_outlier_loss(const float *A, size_t n, float tau, float *dA, float scale);
#define PTQ_OUTLIER_EPS 1e-12

/* ---------------------------------------------------------------- embeddings */

/* Token embedding gather: x[i] = emb[tokens[i]] (emb [vocab][dim]). Tokens must be in [0, vocab). */
void ptq_embedding_forward(const float *emb, const int *tokens, int n, int dim, float *x);
/* Scatter-add: demb[tokens[i]] += dx[i] (summed in double per token; deterministic). PTQ_ERR_ARG for a token
 * outside [0, vocab), PTQ_ERR_NOMEM if the sort buffer cannot be allocated. */
ptq_status ptq_embedding_backward(const int *tokens, int n, const float *dx, int dim, int vocab, float *demb,
                                  ptq_error *err);

/* Learned positions: x[r] += pos[pos_row0 + r % seq_len] for r < rows (pos [n_pos][dim]; the caller passes
 * pos_row0 = pos0 + cfg.pos_offset). The backward of x is the identity (dx_in += dx: ptq_add_acc); this
 * accumulates dpos[pos_row0 + p] += sum_{r % seq_len == p} dx[r]. */
void ptq_pos_add(float *x, int rows, int seq_len, int dim, int pos_row0, const float *pos);
void ptq_pos_add_backward(const float *dx, int rows, int seq_len, int dim, int pos_row0, float *dpos);

/* ViT patch extraction, as ptq_embed_images: pixels [n_img][C][img][img] ->
 * patches [n_img * (img/P)^2][C * P * P], patch (py, px) in row-major order, each flattened (c, y, x).
 * The patch embedding is then a linear layer (ptq_linear_forward_float / ptq_linear_backward). */
void ptq_patchify(const float *pixels, int n_img, int C, int img, int P, float *patches);

/* cls-token concat: x[b] = [cls; emb[b]] ([n_img][npatch + 1][dim]); with cls NULL, x[b] = emb[b] (no cls row).
 * Backward: dcls += sum_b dx[b][0] (double), demb[b] += dx[b][1..]. With dcls NULL and has_cls 0, demb += dx. */
void ptq_cls_concat(const float *cls, const float *emb, int n_img, int npatch, int dim, float *x);
void ptq_cls_concat_backward(const float *dx, int n_img, int npatch, int dim, int has_cls, float *dcls, float *demb);

#endif
