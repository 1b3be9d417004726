/* Scaled dot-product attention: forward keeping the softmax probabilities, and backward.
 *
 * Per query head h, query i (kv head kh = h / group), over the visible keys j:
 *     s_ij = scale * q_i . k_j,   P_ij = softmax_j(s_ij),   out_i = sum_j P_ij v_j.
 * Backward, with dP_ij = dout_i . v_j and D_i = sum_j P_ij dP_ij (= dout_i . out_i):
 *     dS_ij = P_ij (dP_ij - D_i)           (softmax backward)
 *     dq_i += scale * sum_j dS_ij k_j,   dk_j += scale * sum_{h in group, i} dS_ij q_i,
 *     dv_j += sum_{h in group, i} P_ij dout_i.
 * Pass 1 runs over (h, i) and writes dq and D; pass 2 runs over (kv head, j) and owns dk_j and dv_j, so no
 * two threads write the same gradient and every sum runs in a fixed order (double accumulators).
 */
#include <math.h>
#include <omp.h>

#include "core/alloc.h"
#include "core/error.h"
#include "ops/backward.h"
#include "ops/ops.h"

static inline int last_key(int i, int n_kv, int q_pos0, int causal) {
    int last = causal ? q_pos0 + i : n_kv - 1;
    return last > n_kv - 1 ? n_kv - 1 : last;
}

void ptq_attention_forward_cache(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out,
                                 int os, int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim,
                                 int causal, float *probs) {
    (void)ptq_attention_impl(q, qs, k, ks, v, vs, out, os, n_q, n_kv, q_pos0, n_heads, n_kv_heads, head_dim, causal,
                             0, probs); /* with probs it allocates nothing: cannot fail */
}

static inline double dot_fd(const float *a, const float *b, int n) {
    double s = 0;
    for (int d = 0; d < n; d++) s += (double)a[d] * b[d];
    return s;
}

ptq_status ptq_attention_backward(const float *q, int qs, const float *k, int ks, const float *v, int vs,
                                  const float *probs, const float *dout, int os, float *dq, float *dk, float *dv,
                                  int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                                  ptq_error *err) {
    if (n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || head_dim <= 0)
        return ptq_fail(err, PTQ_ERR_ARG, "attention backward: %d query heads cannot share %d kv heads (head_dim %d)",
                        n_heads, n_kv_heads, head_dim);
    if (n_q <= 0 || n_kv <= 0) return PTQ_OK;
    int group = n_heads / n_kv_heads;
    double scale = 1.0f / sqrtf((float)head_dim);
    int nthr = omp_get_max_threads();
    size_t per_thr = (size_t)n_kv + 2 * (size_t)head_dim;
    double *ws = ptq_alloc((size_t)n_heads * n_q + (size_t)nthr * per_thr, sizeof(double),
                           "attention backward workspace", err);
    if (!ws) return PTQ_ERR_NOMEM;
    double *Dall = ws, *thr_ws = ws + (size_t)n_heads * n_q;

    /* pass 1: dP, D and dq, one (head, query) per iteration */
#pragma omp parallel
    {
        double *dP = thr_ws + (size_t)omp_get_thread_num() * per_thr;
        double *acc = dP + n_kv;
#pragma omp for collapse(2) schedule(dynamic, 4)
        for (int h = 0; h < n_heads; h++) {
            for (int i = 0; i < n_q; i++) {
                int kh = h / group, last = last_key(i, n_kv, q_pos0, causal);
                const float *p = probs + ((size_t)h * n_q + i) * n_kv;
                const float *doi = dout + (size_t)i * os + (size_t)h * head_dim;
                double D = 0;
                for (int j = 0; j <= last; j++) {
                    dP[j] = dot_fd(doi, v + (size_t)j * vs + (size_t)kh * head_dim, head_dim);
                    D += p[j] * dP[j];
                }
                Dall[(size_t)h * n_q + i] = D;
                if (!dq) continue;
                for (int d = 0; d < head_dim; d++) acc[d] = 0;
                for (int j = 0; j <= last; j++) {
                    double ds = p[j] * (dP[j] - D);
                    const float *kj = k + (size_t)j * ks + (size_t)kh * head_dim;
                    for (int d = 0; d < head_dim; d++) acc[d] += ds * kj[d];
                }
                float *dqi = dq + (size_t)i * qs + (size_t)h * head_dim;
                for (int d = 0; d < head_dim; d++) dqi[d] += (float)(scale * acc[d]);
            }
        }
        /* pass 2: dk and dv, one (kv head, key) per iteration, summing over the group's heads and the queries */
        double *ak = dP, *av = dP + head_dim;
#pragma omp for collapse(2) schedule(dynamic, 4)
        for (int kh = 0; kh < n_kv_heads; kh++) {
            for (int j = 0; j < n_kv; j++) {
                const float *vj = v + (size_t)j * vs + (size_t)kh * head_dim;
                for (int d = 0; d < head_dim; d++) ak[d] = av[d] = 0;
                int i0 = causal ? j - q_pos0 : 0;
                if (i0 < 0) i0 = 0;
                for (int h = kh * group; h < (kh + 1) * group; h++) {
                    for (int i = i0; i < n_q; i++) {
                        double pij = probs[((size_t)h * n_q + i) * n_kv + j];
                        if (pij == 0.0) continue; /* underflowed or masked: contributes exactly 0 */
                        const float *doi = dout + (size_t)i * os + (size_t)h * head_dim;
                        const float *qi = q + (size_t)i * qs + (size_t)h * head_dim;
                        double ds = pij * (dot_fd(doi, vj, head_dim) - Dall[(size_t)h * n_q + i]);
                        for (int d = 0; d < head_dim; d++) {
                            ak[d] += ds * qi[d];
                            av[d] += pij * doi[d];
                        }
                    }
                }
                if (dk) {
                    float *dkj = dk + (size_t)j * ks + (size_t)kh * head_dim;
                    for (int d = 0; d < head_dim; d++) dkj[d] += (float)(scale * ak[d]);
                }
                if (dv) {
                    float *dvj = dv + (size_t)j * vs + (size_t)kh * head_dim;
                    for (int d = 0; d < head_dim; d++) dvj[d] += (float)av[d];
                }
            }
        }
    }
    ptq_free(ws);
    return PTQ_OK;
}
