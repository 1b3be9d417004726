/* Pieces shared by the files of src/train only. */
#ifndef PTQ_TRAIN_INTERNAL_H
#define PTQ_TRAIN_INTERNAL_H

/* Attention of one sequence and one query head (attention.c). q/k/v/out point at the head's first column;
 * qs/ks/vs/os are row strides. P: [T][T] probabilities (written by the forward, read by the backward).
 * The backward accumulates into dq, dk, dv (same strides as q, k, v); W is T*T floats of scratch. */
void ptq_train_attn_head_fwd(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out,
                             int os, int T, int hd, int causal, float *P);
void ptq_train_attn_head_bwd(const float *q, int qs, const float *k, int ks, const float *v, int vs, const float *P,
                             const float *dout, int os, float *dq, float *dk, float *dv, int T, int hd, float *W);

/* The scale-invariant outlier loss of one tensor (outlier.c): returns L; dA (nullable) += scale * dL/dA. */
#include <stddef.h>
double ptq_train_outlier_rel(const float *A, size_t n, float tau, float *dA, float scale);

#endif
