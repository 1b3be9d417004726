#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "kernels/cpu.h"
#include "ops/ops.h"

ptq_status ptq_attention(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out, int os,
                         int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal) {
    return ptq_attention_q(q, qs, k, ks, v, vs, out, os, n_q, n_kv, q_pos0, n_heads, n_kv_heads, head_dim, causal, 0);
}

ptq_status ptq_attention_q(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out,
                           int os, int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                           int prob_bits) {
    return ptq_attention_impl(q, qs, k, ks, v, vs, out, os, n_q, n_kv, q_pos0, n_heads, n_kv_heads, head_dim, causal,
                              prob_bits, NULL);
}

/* Scores of one query against keys 0..n-1 in rows (key j's dimension d at k[j * ks + d]). Eight keys at a time:
 * eight independent sums instead of one chain of dependent adds; each sum still runs over d in order, a
 * multiply then an add (this file is built without FMA contraction), so every score is bit for bit the
 * one-key loop's. */
static void scores_rows(const float *qi, const float *k, size_t ks, int n, int head_dim, float scale, float *p) {
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        float acc[8] = {0};
        for (int d = 0; d < head_dim; d++)
            for (int u = 0; u < 8; u++) acc[u] += qi[d] * k[(size_t)(j + u) * ks + d];
        for (int u = 0; u < 8; u++) p[j + u] = acc[u] * scale;
    }
    for (; j < n; j++) {
        const float *kj = k + (size_t)j * ks;
        float sc = 0.0f;
        for (int d = 0; d < head_dim; d++) sc += qi[d] * kj[d];
        p[j] = sc * scale;
    }
}

/* The same scores from keys stored by dimension (key j's dimension d at kt[d * ld + j]): sixteen keys at a
 * time, each sum over d in the same order as scores_rows, so the scores are the same bits. */
void ptq_attn_scores_cols_scalar(const float *qi, const float *kt, size_t ld, int n, int head_dim, float scale,
                                 float *p) {
    for (int j0 = 0; j0 < n; j0 += 16) {
        const int nb = n - j0 < 16 ? n - j0 : 16;
        float acc[16] = {0};
        for (int d = 0; d < head_dim; d++) {
            const float qd = qi[d], *kr = kt + (size_t)d * ld + j0;
            for (int u = 0; u < nb; u++) acc[u] += qd * kr[u];
        }
        for (int u = 0; u < nb; u++) p[j0 + u] = acc[u] * scale;
    }
}

/* o[d] = sum over j < n, in order, of p[j] * v[j * vs + d] (from 0: a multiply then an add per term). */
void ptq_attn_pv_scalar(const float *p, const float *v, size_t vs, int n, int head_dim, float *o) {
    for (int d = 0; d < head_dim; d++) o[d] = 0.0f;
    for (int j = 0; j < n; j++) {
        const float *vj = v + (size_t)j * vs;
        for (int d = 0; d < head_dim; d++) o[d] += p[j] * vj[d];
    }
}

/* Keys in rows (k, ks) or by dimension (kt, ld: ptq_attention_kt); the rest of the attention is shared. */
typedef struct {
    const float *k, *kt;
    size_t ks, ld;
} key_store;

#define ATT_STACK 4096 /* floats */

static ptq_status attention(const float *q, int qs, key_store keys, const float *v, int vs, float *out, int os,
                            int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                            int prob_bits, float *probs) {
    /* probabilities in [0, 1] on 2^b - 1 uniform steps: the min-max grid of a softmax output */
    float levels = prob_bits > 0 ? (float)((1 << prob_bits) - 1) : 0.0f;
    int group = n_heads / n_kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    /* AVX-512 twins of the column scores and the product with V: the same operations in the same order */
    const int wide = ptq_cpu_has(PTQ_CPU_AVX512F) && head_dim % 16 == 0;
    /* each thread's probability row: on its stack up to ATT_STACK keys (a decode step allocates nothing), else one
       row per thread from one allocation made here, before any work, so that a failure is an error, not a crash */
    const int nt = omp_get_max_threads();
    float *heap = NULL;
    if (!probs && n_kv > ATT_STACK && !(heap = malloc((size_t)nt * (size_t)n_kv * sizeof(float)))) return PTQ_ERR_NOMEM;
#pragma omp parallel num_threads(nt)
    {
        float stack_row[ATT_STACK];
        float *scratch = probs ? NULL : heap ? heap + (size_t)omp_get_thread_num() * (size_t)n_kv : stack_row;
#pragma omp for collapse(2) schedule(dynamic, 4)
        for (int h = 0; h < n_heads; h++) {
            for (int i = 0; i < n_q; i++) {
                /* the probability row: the caller's cache, or this thread's scratch */
                float *p = probs ? probs + ((size_t)h * n_q + i) * n_kv : scratch;
                const float *qi = q + (size_t)i * qs + (size_t)h * head_dim;
                int kh = h / group;
                int last = causal ? q_pos0 + i : n_kv - 1;
                if (last > n_kv - 1) last = n_kv - 1;
                if (keys.kt) {
                    const float *kt = keys.kt + (size_t)kh * head_dim * keys.ld;
                    if (wide) ptq_attn_scores_cols_avx512(qi, kt, keys.ld, last + 1, head_dim, scale, p);
                    else ptq_attn_scores_cols_scalar(qi, kt, keys.ld, last + 1, head_dim, scale, p);
                } else {
                    scores_rows(qi, keys.k + (size_t)kh * head_dim, keys.ks, last + 1, head_dim, scale, p);
                }
                float mx = -INFINITY;
                for (int j = 0; j <= last; j++)
                    if (p[j] > mx) mx = p[j];
                float sum = 0.0f;
                for (int j = 0; j <= last; j++) {
                    p[j] = expf(p[j] - mx);
                    sum += p[j];
                }
                float inv = 1.0f / sum;
                for (int j = 0; j <= last; j++) {
                    p[j] *= inv;
                    if (levels > 0) p[j] = rintf(p[j] * levels) / levels;
                }
                if (probs)
                    for (int j = last + 1; j < n_kv; j++) p[j] = 0.0f;
                float *o = out + (size_t)i * os + (size_t)h * head_dim;
                const float *vh = v + (size_t)kh * head_dim;
                if (wide) ptq_attn_pv_avx512(p, vh, (size_t)vs, last + 1, head_dim, o);
                else ptq_attn_pv_scalar(p, vh, (size_t)vs, last + 1, head_dim, o);
            }
        }
    }
    free(heap);
    return PTQ_OK;
}

ptq_status ptq_attention_impl(const float *q, int qs, const float *k, int ks, const float *v, int vs, float *out,
                              int os, int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                              int prob_bits, float *probs) {
    const key_store keys = {k, NULL, (size_t)ks, 0};
    return attention(q, qs, keys, v, vs, out, os, n_q, n_kv, q_pos0, n_heads, n_kv_heads, head_dim, causal, prob_bits,
                     probs);
}

ptq_status ptq_attention_kt(const float *q, int qs, const float *kt, size_t ld, const float *v, int vs, float *out,
                            int os, int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int head_dim, int causal,
                            int prob_bits) {
    const key_store keys = {NULL, kt, 0, ld};
    return attention(q, qs, keys, v, vs, out, os, n_q, n_kv, q_pos0, n_heads, n_kv_heads, head_dim, causal, prob_bits,
                     NULL);
}
