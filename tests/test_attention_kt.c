/* Attention over keys stored by dimension (ptq_attention_kt, the KV cache's layout) gives bit for bit what
 * ptq_attention_q gives over the same keys in rows (itself checked against PyTorch in test_backward), for
 * single-query decode steps and multi-query prefills, GQA, causal or not, with quantized probabilities, head
 * sizes with and without the AVX-512 path (a multiple of 16 or not); and the AVX-512 score and value loops equal
 * their scalar twins bit for bit on every length (tails of 1-15 keys). */
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu.h"
#include "ops/ops.h"
#include "testutil.h"

static void fill(float *x, size_t n, uint64_t seed) { tu_prng_fill(x, n, seed, 1.0, 0.0, 24); }

static void check_case(int n_q, int n_kv, int q_pos0, int n_heads, int n_kv_heads, int hd, int causal, int pbits) {
    const int qd = n_heads * hd, kvd = n_kv_heads * hd;
    const size_t ld = (size_t)n_kv + 5; /* room past the keys, as in a cache with free positions */
    float *q = malloc(sizeof(float) * (size_t)n_q * qd), *k = malloc(sizeof(float) * (size_t)n_kv * kvd);
    float *v = malloc(sizeof(float) * (size_t)n_kv * kvd), *kt = malloc(sizeof(float) * kvd * ld);
    float *a = malloc(sizeof(float) * (size_t)n_q * qd), *b = malloc(sizeof(float) * (size_t)n_q * qd);
    fill(q, (size_t)n_q * qd, 1 + (uint64_t)n_q);
    fill(k, (size_t)n_kv * kvd, 2 + (uint64_t)n_kv);
    fill(v, (size_t)n_kv * kvd, 3 + (uint64_t)hd);
    for (size_t i = 0; i < (size_t)kvd * ld; i++) kt[i] = 1e30f; /* never read past n_kv */
    for (int j = 0; j < n_kv; j++)
        for (int r = 0; r < kvd; r++) kt[(size_t)r * ld + (size_t)j] = k[(size_t)j * kvd + (size_t)r];
    ptq_attention_q(q, qd, k, kvd, v, kvd, a, qd, n_q, n_kv, q_pos0, n_heads, n_kv_heads, hd, causal, pbits);
    ptq_attention_kt(q, qd, kt, ld, v, kvd, b, qd, n_q, n_kv, q_pos0, n_heads, n_kv_heads, hd, causal, pbits);
    CHECK_MSG(!memcmp(a, b, sizeof(float) * (size_t)n_q * qd),
              "n_q %d n_kv %d heads %d/%d head_dim %d causal %d prob_bits %d: keys by dimension differ", n_q, n_kv,
              n_heads, n_kv_heads, hd, causal, pbits);
    free(q), free(k), free(v), free(kt), free(a), free(b);
}

static void check_pieces(void) {
    if (!ptq_cpu_has(PTQ_CPU_AVX512F)) {
        fprintf(stderr, "test_attention_kt: no AVX-512F here; the scalar loops only\n");
        return;
    }
    enum { HD = 80, N = 70, LD = 75 };
    float qi[HD], kt[HD * LD], v[N * HD], p[N], p2[N], o[HD], o2[HD];
    fill(qi, HD, 11);
    fill(kt, HD * LD, 12);
    fill(v, N * HD, 13);
    for (int n = 1; n <= N; n++)
        for (int hd = 16; hd <= HD; hd += 16) {
            ptq_attn_scores_cols_scalar(qi, kt, LD, n, hd, 0.125f, p);
            ptq_attn_scores_cols_avx512(qi, kt, LD, n, hd, 0.125f, p2);
            CHECK_MSG(!memcmp(p, p2, sizeof(float) * (size_t)n), "scores: %d keys, head_dim %d", n, hd);
            ptq_attn_pv_scalar(p, v, HD, n, hd, o);
            ptq_attn_pv_avx512(p, v, HD, n, hd, o2);
            CHECK_MSG(!memcmp(o, o2, sizeof(float) * (size_t)hd), "values: %d keys, head_dim %d", n, hd);
        }
}

int main(void) {
    check_pieces();
    const int hds[3] = {64, 16, 25};
    for (int h = 0; h < 3; h++)
        for (int causal = 0; causal < 2; causal++)
            for (int pbits = 0; pbits <= 4; pbits += 4) {
                check_case(1, 1, 0, 4, 2, hds[h], causal, pbits);       /* the first decode step */
                check_case(1, 37, 36, 4, 2, hds[h], causal, pbits);     /* a decode step: 37 keys */
                check_case(1, 100, 99, 8, 8, hds[h], causal, pbits);    /* no GQA */
                check_case(7, 40, 33, 4, 1, hds[h], causal, pbits);     /* a prefill after 33 cached keys */
                check_case(20, 20, 0, 6, 3, hds[h], causal, pbits);     /* a prefill from empty */
            }
    return tu_done("test_attention_kt");
}
