/* Int8-activation GEMV (see qgemv_a8.h): activation quantization, the scalar reference kernel and the
 * threaded dispatcher. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "kernels/cpu.h"
#include "kernels/qgemm_a8.h"
#include "kernels/qgemm_impl.h"
#include "kernels/qgemv_a8.h"

#define GEMV_ALIGN 16          /* thread shares of a weight's rows start at multiples of this */
#define PAR_MIN_WORK (1 << 18) /* below this many multiply-adds, stay on one thread */

int ptq_a8_supported(ptq_isa isa) {
    if (isa == PTQ_ISA_AVX512)
        return ptq_cpu_has(PTQ_CPU_AVX512F | PTQ_CPU_AVX512BW | PTQ_CPU_AVX512VL | PTQ_CPU_AVX512VNNI |
                           PTQ_CPU_F16C | PTQ_CPU_FMA | PTQ_CPU_AVX2);
    if (isa == PTQ_ISA_AVX2) return ptq_cpu_has(PTQ_CPU_AVX2 | PTQ_CPU_FMA | PTQ_CPU_F16C);
    return isa == PTQ_ISA_SCALAR;
}

/* Here, not in the AVX-512 files: callers ask on any CPU, and code compiled for AVX-512 must not run there. */
int ptq_a8_gfni_supported(void) {
    return ptq_a8_supported(PTQ_ISA_AVX512) && ptq_cpu_has(PTQ_CPU_GFNI);
}

ptq_isa ptq_a8_isa_best(void) {
    if (ptq_a8_supported(PTQ_ISA_AVX512)) return PTQ_ISA_AVX512;
    return ptq_a8_supported(PTQ_ISA_AVX2) ? PTQ_ISA_AVX2 : PTQ_ISA_SCALAR;
}

static int nsuper_of(int in) { return ((in + PTQ_QCHUNK - 1) / PTQ_QCHUNK + PTQ_A8_SUPER - 1) / PTQ_A8_SUPER; }

static size_t round64(size_t n) { return (n + 63) / 64 * 64; }

size_t ptq_a8_scratch_bytes(int in, int rows) {
    const size_t ns = (size_t)nsuper_of(in) * PTQ_A8_SUPER;
    return round64((size_t)rows * ns * PTQ_QCHUNK) + 2 * round64((size_t)rows * ns * 4);
}

/* The activation order the kernel for (isa, bits) reads (qgemv_a8.h): the natural one (named 8) for the
 * scalar kernel and 8-bit codes, the 2-bit one for 2 and 3 bits, the 4-bit one for 4 to 7 bits (their
 * low nibbles are laid out as 4-bit codes). */
static int order_of(ptq_isa isa, int bits) {
    if (isa == PTQ_ISA_SCALAR || bits == 8) return 8;
    return bits <= 3 ? 2 : 4;
}

/* Position of column j of chunk c (within its block) in an activation order. */
static size_t pos_of(int order, int c, int j) {
    switch (order) {
    case 4: return (size_t)(c / 4) * 128 + (size_t)(j / 16) * 64 + (size_t)(c % 4) * 16 + (size_t)(j % 16);
    case 2: return (size_t)(c / 8) * 256 + (size_t)(j / 8) * 64 + (size_t)(c % 8) * 8 + (size_t)(j % 8);
    default: return (size_t)c * 32 + (size_t)j;
    }
}

void ptq_a8_quantize(ptq_isa isa, const ptq_qweight *w, const float *x, int rows, void *scratch, ptq_a8 *a) {
    const int nch = (w->in + PTQ_QCHUNK - 1) / PTQ_QCHUNK;
    const int ns = nsuper_of(w->in);
    const size_t nc = (size_t)ns * PTQ_A8_SUPER;
    uint8_t *p = scratch;
    a->rows = rows;
    a->nchunks = nch;
    a->nsuper = ns;
    a->ld = nc * PTQ_QCHUNK;
    a->q = (int8_t *)p;
    a->d = (float *)(p + round64((size_t)rows * a->ld));
    a->qsum = (int32_t *)(p + round64((size_t)rows * a->ld) + round64((size_t)rows * nc * 4));
    if (isa == PTQ_ISA_AVX512 && ptq_a8_supported(isa)) {
        ptq_a8_quant_rows_avx512(w, x, rows, a);
        return;
    }
    if (isa == PTQ_ISA_AVX2 && ptq_a8_supported(isa)) {
        ptq_a8_quant_rows_avx2(w, x, rows, a);
        return;
    }
    const int order = order_of(isa, w->bits);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)w->in;
        int8_t *qr = a->q + (size_t)r * a->ld;
        float *dr = a->d + (size_t)r * nc;
        int32_t *sr = a->qsum + (size_t)r * nc;
        memset(qr, 0, a->ld);
        for (size_t c = (size_t)nch; c < nc; c++) {
            dr[c] = 0.0f;
            sr[c] = 0;
        }
        for (int c = 0; c < nch; c++) {
            float v[PTQ_QCHUNK];
            float amax = 0.0f;
            for (int k = 0; k < PTQ_QCHUNK; k++) {
                const int j = c * PTQ_QCHUNK + k;
                float t = 0.0f;
                if (j < w->in) t = xr[w->perm ? w->perm[j] : j];
                if (isnan(t)) t = 0.0f;
                v[k] = t;
                amax = fmaxf(amax, fabsf(t));
            }
            const float d = amax / 127.0f;
            const float id = d > 0.0f ? 1.0f / d : 0.0f; /* Inf amax: id = 0, codes 0 */
            int32_t s = 0;
            for (int k = 0; k < PTQ_QCHUNK; k++) {
                float t = v[k] * id; /* Inf * 0 (an infinite x): code 0, as the SIMD quantizers */
                t = isnan(t) ? 0.0f : nearbyintf(t); /* current rounding mode: to nearest even */
                t = t > 127.0f ? 127.0f : (t < -127.0f ? -127.0f : t);
                const int8_t q = (int8_t)t;
                qr[pos_of(order, c, k)] = q;
                s += q;
            }
            dr[c] = d;
            sr[c] = s;
        }
    }
}

/* The reference: natural order, exact int32 dot per chunk, one float term per chunk. */
void ptq_qgemv_a8_scalar(const ptq_qweight *w, const ptq_a8 *a, float *y, int o0, int o1) {
    const int nch = a->nchunks;
    const int cpg = w->group % PTQ_QCHUNK == 0 ? w->group / PTQ_QCHUNK : nch;
    const size_t cb = 4u * (size_t)w->bits, nc = (size_t)a->nsuper * PTQ_A8_SUPER;
    for (int o = o0; o < o1; o++) {
        const uint8_t *codes = w->codes + (size_t)o * w->row_bytes;
        const uint16_t *sr = w->scales + (size_t)o * (size_t)w->n_groups;
        const uint8_t *zr = ptq_qweight_zeros_of(w, o);
        for (int r = 0; r < a->rows; r++) {
            const int8_t *ar = a->q + (size_t)r * a->ld;
            float acc = 0.0f;
            for (int c = 0; c < nch; c++) {
                uint8_t q[PTQ_QCHUNK];
                ptq_unpack_chunk(w->bits, codes + (size_t)c * cb, q);
                int32_t dot = 0;
                for (int j = 0; j < PTQ_QCHUNK; j++) dot += (int32_t)q[j] * ar[(size_t)c * PTQ_QCHUNK + (size_t)j];
                const int g = c / cpg;
                const float sc = ptq_f16_to_f32(sr[g]) * a->d[(size_t)r * nc + (size_t)c];
                acc += sc * (float)(dot - (int32_t)zr[g] * a->qsum[(size_t)r * nc + (size_t)c]);
            }
            y[(size_t)r * (size_t)w->out + (size_t)o] = acc;
        }
    }
}

typedef void (*a8_fn)(const ptq_qweight *, const ptq_a8 *, float *, int, int);

static a8_fn kernel_of(ptq_isa isa) {
    if (isa == PTQ_ISA_AVX512) return ptq_qgemv_a8_avx512;
    if (isa == PTQ_ISA_AVX2) return ptq_cpu_has(PTQ_CPU_AVXVNNI) ? ptq_qgemv_a8_avxvnni : ptq_qgemv_a8_avx2;
    return ptq_qgemv_a8_scalar;
}

int ptq_a8_can_share(ptq_isa isa, const ptq_qweight *a, const ptq_qweight *b) {
    if (a->in != b->in || order_of(isa, a->bits) != order_of(isa, b->bits)) return 0;
    if (a->perm == b->perm) return 1;
    return a->perm && b->perm && memcmp(a->perm, b->perm, (size_t)a->in * sizeof *a->perm) == 0;
}

/* Row r of the split of out rows into T contiguous ranges (r = 0 .. T), at multiples of GEMV_ALIGN rows so that no
 * two threads write the same cache line of y. */
static int split_row(int out, int r, int T) {
    if (r >= T) return out;
    const long b = (long)out * r / T / GEMV_ALIGN * GEMV_ALIGN;
    return (int)b;
}

/* All the rows of all n weights in one parallel region: each thread takes its contiguous share of every weight
 * in turn, in one kernel call per weight (the decode kernels read a call's rows as two far-apart streams:
 * qgemv_a8_avx512_tile.h). No barrier between the weights. */
static void gemv_many(ptq_isa isa, const ptq_qweight *const *ws, int n, const ptq_a8 *a, float *const *ys) {
    const a8_fn fn = kernel_of(isa);
    double work = 0.0;
    int rows = 0;
    for (int i = 0; i < n; i++) {
        work += (double)ws[i]->out * (double)ws[i]->in * (double)a->rows;
        rows += ws[i]->out;
    }
    const int par = work >= PAR_MIN_WORK && rows > GEMV_ALIGN;
#pragma omp parallel if (par)
    {
        const int T = omp_get_num_threads(), t = omp_get_thread_num();
        for (int i = 0; i < n; i++) {
            const int o0 = split_row(ws[i]->out, t, T), o1 = split_row(ws[i]->out, t + 1, T);
            if (o0 < o1) fn(ws[i], a, ys[i], o0, o1);
        }
    }
}

/* ws all share x's codes (ptq_a8_can_share): quantize x once, then every row of every weight. */
static void gemv_shared(ptq_isa isa, const ptq_qweight *const *ws, int n, const float *x, int rows, float *const *ys) {
    const size_t need = ptq_a8_scratch_bytes(ws[0]->in, rows);
    _Alignas(64) uint8_t stack[PTQ_A8_STACK]; /* decode: no allocation per call */
    void *heap = NULL, *buf = stack;
    if (need > sizeof stack) {
        buf = heap = aligned_alloc(64, need);
        if (!heap) {
            for (int i = 0; i < n; i++) ptq_qgemm_path_isa(PTQ_QGEMM_DIRECT, PTQ_ISA_SCALAR, ws[i], x, rows, ys[i]);
            return;
        }
    }
    ptq_a8 a;
    ptq_a8_quantize(isa, ws[0], x, rows, buf, &a);
    gemv_many(isa, ws, n, &a, ys);
    free(heap);
}

void ptq_qgemm_a8_isa(ptq_isa isa, const ptq_qweight *w, const float *x, int rows, float *y) {
    if (rows <= 0 || w->out <= 0 || w->in <= 0) return;
    if (!ptq_a8_supported(isa)) isa = ptq_a8_isa_best();
    if (isa == PTQ_ISA_AVX512 && rows >= PTQ_QGEMM_A8_MIN_ROWS && ptq_qgemm_a8_tiled(w, x, rows, y)) return; /* prefill */
    gemv_shared(isa, &w, 1, x, rows, &y);
}

void ptq_qgemm_a8_multi(ptq_isa isa, const ptq_qweight *const *ws, int n, const float *x, int rows, float *const *ys) {
    if (n <= 0 || rows <= 0) return;
    if (!ptq_a8_supported(isa)) isa = ptq_a8_isa_best();
    int shared = n <= PTQ_A8_MULTI && (isa != PTQ_ISA_AVX512 || rows < PTQ_QGEMM_A8_MIN_ROWS);
    for (int i = 0; shared && i < n; i++) shared = ws[i]->out > 0 && ptq_a8_can_share(isa, ws[0], ws[i]);
    if (shared) gemv_shared(isa, ws, n, x, rows, ys);
    else /* one call each: prefill's tiled GEMM, or weights that read differently ordered codes */
        for (int i = 0; i < n; i++) ptq_qgemm_a8_isa(isa, ws[i], x, rows, ys[i]);
}
