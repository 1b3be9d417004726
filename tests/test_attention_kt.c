/* Attention over keys stored by dimension (ptq_attention_kt, the KV cache's layout) gives bit for bit what
 * ptq_attention_q gives over the same keys in rows (itself checked against PyTorch in test_backward), for
 * single-query decode steps and multi-query prefills, GQA, causal or not, with quantized probabilities, head
 * sizes with and without the AVX-512 path (a multiple of 16 or not); and the AVX-512 score and value loops equal
 * their scalar twins bit for bit on every length (tails of 1-15 keys). Beyond 4096 keys each thread's probability
 * row comes from one allocation: checked against a double-precision softmax written here, and, in a child process
 * whose address space is capped, its failure must be PTQ_ERR_NOMEM with the output untouched (not a crash). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Long context: ptq_attention_q's rows against plain double-precision attention (non-causal, no GQA subtleties). */
static void check_long(void) {
    enum { NQ = 2, NKV = 5000, H = 2, HD = 16 };
    const int qd = H * HD;
    float *q = malloc(sizeof(float) * NQ * qd), *k = malloc(sizeof(float) * NKV * HD), *v = malloc(sizeof(float) * NKV * HD);
    float *o = malloc(sizeof(float) * NQ * qd);
    double *p = malloc(sizeof(double) * NKV);
    fill(q, (size_t)NQ * qd, 21), fill(k, (size_t)NKV * HD, 22), fill(v, (size_t)NKV * HD, 23);
    CHECK(ptq_attention_q(q, qd, k, HD, v, HD, o, qd, NQ, NKV, 0, H, 1, HD, 0, 0) == PTQ_OK);
    double worst = 0;
    for (int i = 0; i < NQ; i++)
        for (int h = 0; h < H; h++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < NKV; j++) {
                double d = 0;
                for (int t = 0; t < HD; t++) d += (double)q[i * qd + h * HD + t] * k[j * HD + t];
                p[j] = d / sqrt((double)HD);
                if (p[j] > mx) mx = p[j];
            }
            for (int j = 0; j < NKV; j++) sum += p[j] = exp(p[j] - mx);
            for (int t = 0; t < HD; t++) {
                double r = 0;
                for (int j = 0; j < NKV; j++) r += p[j] / sum * v[j * HD + t];
                const double e = fabs(r - o[i * qd + h * HD + t]);
                if (e > worst) worst = e;
            }
        }
    CHECK_MSG(worst < 1e-5, "5000 keys: |ptq - double| = %.3g", worst);
    free(q), free(k), free(v), free(o), free(p);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

/* 200M keys need 800 MB of probability rows per thread; the child's address space is capped 256 MB above what it
 * maps already, so the allocation fails and the call must say so. Causal with one query at position 0: only key 0
 * is ever read, so the inputs are one row each. */
static void check_nomem(void) {
#ifdef UNDER_SANITIZER
    fprintf(stderr, "test_attention_kt: the capped-memory case needs the plain allocator; not under a sanitizer\n");
#else
    const pid_t pid = fork();
    if (pid == 0) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || fscanf(f, "%ld", &pages) != 1) _exit(3);
        fclose(f);
        const rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
        const struct rlimit rl = {cap, cap};
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(4);
        float q[16], k[16], v[16], o[16];
        fill(q, 16, 31), fill(k, 16, 32), fill(v, 16, 33);
        for (int t = 0; t < 16; t++) o[t] = 42.0f;
        const ptq_status st = ptq_attention_q(q, 16, k, 16, v, 16, o, 16, 1, 200 * 1000 * 1000, 0, 1, 1, 16, 1, 0);
        int untouched = 1;
        for (int t = 0; t < 16; t++) untouched &= o[t] == 42.0f;
        _exit(st == PTQ_ERR_NOMEM && untouched ? 0 : st == PTQ_OK ? 1 : 2);
    }
    int ws = 0;
    CHECK(pid > 0 && waitpid(pid, &ws, 0) == pid);
    CHECK_MSG(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
              "attention whose probability rows cannot be allocated: child %s %d (0: PTQ_ERR_NOMEM, output untouched)",
              WIFEXITED(ws) ? "exit" : "signal", WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
#endif
}

int main(void) {
    check_pieces();
    check_long();
    check_nomem();
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
