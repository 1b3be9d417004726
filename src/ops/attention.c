#include <math.h>
#include <stdlib.h>

#include "ops/ops.h"

void ptq_attention(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out, int os,
                   int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal) {
    ptq_attention_q(q, qs, k, ks, v, vs, out, os, n_q, n_kv, q_pos0, n_heads, n_kv_heads, head_dim, causal, 0);
}

void ptq_attention_q(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out, int os,
                     int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                     int prob_bits) {
    ptq_attention_impl(q, qs, k, ks, v, vs, out, os, n_q, n_kv, q_pos0, n_heads, n_kv_heads, head_dim, causal,
                       prob_bits, NULL);
}

void ptq_attention_impl(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out, int os,
                        int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                        int prob_bits, float *probs) {
    /* probabilities in [0, 1] on 2^b - 1 uniform steps: the min-max grid of a softmax output */
    float levels = prob_bits > 0 ? (float)((1 << prob_bits) - 1) : 0.0f;
    int group = n_heads / n_kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
#pragma omp parallel
    {
        float *scratch = probs ? NULL : malloc((size_t)n_kv * sizeof(float));
#pragma omp for collapse(2) schedule(dynamic, 4)
        for (int h = 0; h < n_heads; h++) {
            for (int i = 0; i < n_q; i++) {
                /* the probability row: the caller's cache, or this thread's scratch */
                float *p = probs ? probs + ((size_t)h * n_q + i) * n_kv : scratch;
                const float *qi = q + (size_t)i * qs + (size_t)h * head_dim;
                int kh = h / group;
                int last = causal ? q_pos0 + i : n_kv - 1;
                if (last > n_kv - 1) last = n_kv - 1;
                const float *kh0 = k + (size_t)kh * head_dim;
                int j = 0;
                /* Eight keys at a time: eight independent sums instead of one chain of dependent adds (each sum
                 * still runs over d in order, so every score is bit for bit the one-key loop's, below). */
                for (; j + 8 <= last + 1; j += 8) {
                    float acc[8] = {0};
                    for (int d = 0; d < head_dim; d++)
                        for (int u = 0; u < 8; u++) acc[u] += qi[d] * kh0[(size_t)(j + u) * ks + d];
                    for (int u = 0; u < 8; u++) p[j + u] = acc[u] * scale;
                }
                for (; j <= last; j++) {
                    const float *kj = kh0 + (size_t)j * ks;
                    float sc = 0.0f;
                    for (int d = 0; d < head_dim; d++) sc += qi[d] * kj[d];
                    p[j] = sc * scale;
                }
                float mx = -INFINITY;
                for (j = 0; j <= last; j++)
                    if (p[j] > mx) mx = p[j];
                float sum = 0.0f;
                for (j = 0; j <= last; j++) {
                    p[j] = expf(p[j] - mx);
                    sum += p[j];
                }
                float inv = 1.0f / sum;
                if (probs)
                    for (j = last + 1; j < n_kv; j++) p[j] = 0.0f;
                float *o = out + (size_t)i * os + (size_t)h * head_dim;
                for (int d = 0; d < head_dim; d++) o[d] = 0.0f;
                for (j = 0; j <= last; j++) {
                    const float *vj = v + (size_t)j * vs + (size_t)kh * head_dim;
                    p[j] *= inv;
                    if (levels > 0) p[j] = rintf(p[j] * levels) / levels;
                    for (int d = 0; d < head_dim; d++) o[d] += p[j] * vj[d];
                }
            }
        }
        free(scratch);
    }
}
