/* Float32 building blocks of the forward pass: norms, activations, RoPE, attention, linear. */
#ifndef PTQ_OPS_OPS_H
#define PTQ_OPS_OPS_H

#include "models/model.h"

/* out[r] = (x[r] - mean) / sqrt(var + eps) * w + b   (b may be NULL). out may alias x. */
void ptq_layernorm(const float *x, int rows, int dim, const float *w, const float *b, float eps, float *out);
/* out[r] = x[r] / sqrt(mean(x^2) + eps) * w. out may alias x. */
void ptq_rmsnorm(const float *x, int rows, int dim, const float *w, float eps, float *out);
void ptq_norm_apply(const ptq_config *c, const ptq_norm *n, const float *x, int rows, float *out);

float ptq_act_scalar(ptq_act_kind kind, float x);
void ptq_act_inplace(ptq_act_kind kind, float *x, size_t n);

/* Rotate `n_heads` heads of `head_dim` in each of `rows` rows (row stride `stride` floats);
 * row r has position pos0 + r % seq_len. */
void ptq_rope(ptq_rope_kind kind, float *x, int rows, int seq_len, int stride, int n_heads, int head_dim, int pos0,
              float theta);

/* Scaled dot-product attention for one sequence. Queries q[i] (i < n_q, row stride qs) sit at
 * positions q_pos0 + i; keys/values k[j], v[j] (j < n_kv, strides ks, vs) at positions j.
 * With `causal`, query i sees keys j <= q_pos0 + i. GQA: query head h uses kv head h / (n_heads / n_kv_heads).
 * out[i] (row stride os) gets n_heads * head_dim values. Allocates nothing up to 4096 keys; beyond, one probability
 * row per thread, and PTQ_ERR_NOMEM (out untouched) when that allocation fails. */
ptq_status ptq_attention(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out, int os,
                         int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal);

/* The one implementation behind both: probabilities fake-quantized to prob_bits (0 = off) before the
 * product with V, and kept in probs[(h * n_q + i) * n_kv + j] when probs is not NULL (masked keys 0; then it
 * allocates nothing and cannot fail). */
ptq_status ptq_attention_impl(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out,
                              int os, int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                              int prob_bits, float *probs);
/* Attention over keys stored by dimension: key j's dimension d of kv head kh at kt[(kh * head_dim + d) * ld + j]
 * (the KV cache's layout: a decode step's scores read sixteen consecutive keys at once). Otherwise as
 * ptq_attention_q, and the same bits: the scores sum over d in the same order. */
ptq_status ptq_attention_kt(const float *q, int qs, const float *kt, size_t ld, const float *v, int vs, float *out,
                            int os, int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                            int prob_bits);
/* The pieces, scalar and AVX-512 (head_dim a multiple of 16), equal bit for bit (tests/test_attention_kt.c):
 * p[j] = scale * sum_d qi[d] * kt[d * ld + j] for j < n, and o[d] = sum_j p[j] * v[j * vs + d]. */
void ptq_attn_scores_cols_scalar(const float *qi, const float *kt, size_t ld, int n, int head_dim, float scale,
                                 float *p);
void ptq_attn_scores_cols_avx512(const float *qi, const float *kt, size_t ld, int n, int head_dim, float scale,
                                 float *p);
void ptq_attn_pv_scalar(const float *p, const float *v, size_t vs, int n, int head_dim, float *o);
void ptq_attn_pv_avx512(const float *p, const float *v, size_t vs, int n, int head_dim, float *o);
/* The same with the softmax probabilities fake-quantized to prob_bits (0 = off) before the product with V. */
ptq_status ptq_attention_q(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out,
                           int os, int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                           int prob_bits);

#endif
