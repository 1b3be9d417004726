/* Int8 GEMM: weight preparation, run-time kernel selection, threading, and the float-in/float-out
 * linear layer on top (quantize activations -> exact int32 GEMM -> rescale + bias).
 *
 * Threading: work items are (block of input rows) x (block of 64 output rows), split statically and
 * contiguously over the OpenMP threads; input rows are only split (in multiples of 12, which the
 * row tiles of every kernel divide) when there are fewer than two output blocks per thread. Below
 * PAR_MIN_WORK multiply-adds everything runs on the calling thread.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/i8gemm.h"

#define OBLOCK 64              /* output rows per work item (4 panels) */
#define RBLOCK 12              /* input-row split granularity: a multiple of every kernel's MR */
#define PAR_MIN_WORK (1 << 20) /* below this many multiply-adds, stay on one thread */
/* The passes around the GEMM (copying x into the kernel's layout, rescaling the int32 outputs) take
 * ~0.1 ms per 512K values on one thread, less than a fork/join costs on a busy machine: they go
 * parallel only above this many values. */
#define SIDE_PAR_MIN (1 << 23)

/* ---------------------------------------------------------------- weights */

void ptq_i8weight_free(ptq_i8weight *w) {
    if (!w) return;
    ptq_free(w->codes);
    ptq_free(w->scales);
    ptq_free(w->rowsum);
    ptq_free(w->packed);
    memset(w, 0, sizeof *w);
}

ptq_status ptq_i8weight_init(ptq_i8weight *w, const int8_t *codes, const float *row_scales, int out, int in,
                             ptq_error *err) {
    if (!w) return ptq_fail(err, PTQ_ERR_ARG, "int8 weight: no ptq_i8weight to fill");
    memset(w, 0, sizeof *w);
    if (!codes || !row_scales) return ptq_fail(err, PTQ_ERR_ARG, "int8 weight: codes and row scales must be given");
    if (out < 1 || in < 1 || in > PTQ_I8_MAX_IN)
        return ptq_fail(err, PTQ_ERR_ARG, "int8 weight: shape [%d][%d]; expected out >= 1 and 1 <= in <= %d", out, in,
                        PTQ_I8_MAX_IN);
    for (int o = 0; o < out; o++)
        if (!isfinite(row_scales[o]))
            return ptq_fail(err, PTQ_ERR_NUMERIC, "int8 weight: scale of row %d is %g; expected a finite value", o,
                            (double)row_scales[o]);
    const size_t n = (size_t)out * (size_t)in;
    for (size_t i = 0; i < n; i++)
        if (codes[i] == -128)
            return ptq_fail(err, PTQ_ERR_FORMAT,
                            "int8 weight: code -128 at row %zu column %zu; expected symmetric codes in [-127, 127]",
                            i / (size_t)in, i % (size_t)in);
    w->out = out;
    w->in = in;
    w->in_quads = (in + 3) / 4;
    w->panels = (out + PTQ_I8_PANEL - 1) / PTQ_I8_PANEL;
    w->codes = ptq_alloc(n, 1, "int8 weight codes", err);
    w->scales = ptq_alloc((size_t)out, sizeof(float), "int8 weight scales", err);
    w->rowsum = ptq_alloc((size_t)w->panels * PTQ_I8_PANEL, sizeof(int32_t), "int8 weight row sums", err);
    w->packed = ptq_alloc((size_t)w->panels * (size_t)w->in_quads, 64, "int8 packed weights", err);
    if (!w->codes || !w->scales || !w->rowsum || !w->packed) {
        ptq_i8weight_free(w);
        return PTQ_ERR_NOMEM;
    }
    memcpy(w->codes, codes, n);
    memcpy(w->scales, row_scales, (size_t)out * sizeof(float));
    int max_abs = 0;
    for (int o = 0; o < out; o++) {
        const int8_t *q = codes + (size_t)o * (size_t)in;
        int8_t *dst = w->packed + (size_t)(o / PTQ_I8_PANEL) * (size_t)w->in_quads * 64 + (size_t)(o % PTQ_I8_PANEL) * 4;
        int32_t s = 0;
        for (int j = 0; j < in; j++) {
            s += q[j];
            max_abs = abs(q[j]) > max_abs ? abs(q[j]) : max_abs;
            dst[(size_t)(j / 4) * 64 + (size_t)(j % 4)] = q[j];
        }
        w->rowsum[o] = s;
    }
    w->max_abs = max_abs;
    return PTQ_OK;
}

/* ---------------------------------------------------------------- ISA selection */

int ptq_i8_isa_supported(ptq_i8_isa isa) {
    switch (isa) {
    case PTQ_I8_SCALAR: return 1;
    case PTQ_I8_AVX2: return ptq_cpu_has(PTQ_CPU_AVX2);
    case PTQ_I8_AVXVNNI: return ptq_cpu_has(PTQ_CPU_AVX2 | PTQ_CPU_AVXVNNI);
    case PTQ_I8_AVX512VNNI:
        return ptq_cpu_has(PTQ_CPU_AVX512F | PTQ_CPU_AVX512BW | PTQ_CPU_AVX512VL | PTQ_CPU_AVX512VNNI);
    default: return 0;
    }
}

ptq_i8_isa ptq_i8_isa_best(void) {
    static const ptq_i8_isa order[] = {PTQ_I8_AVX512VNNI, PTQ_I8_AVXVNNI, PTQ_I8_AVX2};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (ptq_i8_isa_supported(order[i])) return order[i];
    return PTQ_I8_SCALAR;
}

const char *ptq_i8_isa_name(ptq_i8_isa isa) {
    switch (isa) {
    case PTQ_I8_SCALAR: return "scalar";
    case PTQ_I8_AVX2: return "avx2";
    case PTQ_I8_AVXVNNI: return "avxvnni";
    case PTQ_I8_AVX512VNNI: return "avx512vnni";
    default: return "unknown";
    }
}

/* The requested ISA, or the next one down the chain avx512vnni -> avxvnni -> avx2 -> scalar that the CPU
 * has; an out-of-range value means the best. */
ptq_i8_isa ptq_i8_isa_resolve(ptq_i8_isa isa) {
    if ((int)isa < 0 || (int)isa >= (int)PTQ_I8_ISA_COUNT) return ptq_i8_isa_best();
    while (isa != PTQ_I8_SCALAR && !ptq_i8_isa_supported(isa)) isa = (ptq_i8_isa)((int)isa - 1);
    return isa;
}

/* ---------------------------------------------------------------- GEMM */

typedef void (*kernel_fn)(const ptq_i8gemm_args *, int, int, int, int);

static kernel_fn kernel_for(ptq_i8_isa isa) {
    switch (isa) {
    case PTQ_I8_AVX512VNNI: return ptq_i8gemm_avx512vnni;
    case PTQ_I8_AVXVNNI: return ptq_i8gemm_avxvnni;
    case PTQ_I8_AVX2: return ptq_i8gemm_avx2;
    default: return ptq_i8gemm_scalar;
    }
}

static void run_blocks(kernel_fn fn, const ptq_i8gemm_args *a, int rows) {
    const ptq_i8weight *w = a->w;
    const int nob = (w->out + OBLOCK - 1) / OBLOCK;
    const int nt = omp_get_max_threads();
    const int par = nt > 1 && (double)rows * (double)w->in * (double)w->out >= PAR_MIN_WORK;
    int rc = rows; /* rows per item */
    if (par && nob < 2 * nt) {
        int nrc = (2 * nt + nob - 1) / nob;
        const int max_nrc = (rows + RBLOCK - 1) / RBLOCK;
        if (nrc > max_nrc) nrc = max_nrc;
        if (nrc > 1) rc = ((rows + nrc - 1) / nrc + RBLOCK - 1) / RBLOCK * RBLOCK;
    }
    const int nrc = (rows + rc - 1) / rc;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (par)
    for (int i = 0; i < nrc; i++)
        for (int b = 0; b < nob; b++) {
            const int r0 = i * rc, r1 = r0 + rc < rows ? r0 + rc : rows;
            const int o0 = b * OBLOCK, o1 = o0 + OBLOCK < w->out ? o0 + OBLOCK : w->out;
            fn(a, r0, r1, o0, o1);
        }
}

void ptq_i8gemm_isa(ptq_i8_isa isa, const ptq_i8weight *w, const int8_t *xq, int rows, int32_t *acc) {
    if (!w || rows <= 0 || w->out <= 0 || w->in <= 0) return;
    isa = ptq_i8_isa_resolve(isa);
    ptq_i8gemm_args a = {w, (const uint8_t *)xq, (size_t)w->in, acc};
    uint8_t *buf = NULL;
    if (isa != PTQ_I8_SCALAR) {
        /* rows of x in the kernel's form, padded to whole quads (and 64 bytes) */
        const size_t ldx = ((size_t)w->in_quads * 4 + 63) / 64 * 64, in = (size_t)w->in;
        buf = aligned_alloc(64, (size_t)rows * ldx);
        if (buf) {
            const uint8_t flip = isa == PTQ_I8_AVX2 ? 0x00 : 0x80; /* VNNI: x + 128 as u8 */
            const int par = rows > 1 && (double)rows * (double)w->in >= SIDE_PAR_MIN;
#pragma omp parallel for schedule(static) if (par)
            for (int r = 0; r < rows; r++) {
                const uint8_t *src = (const uint8_t *)xq + (size_t)r * in;
                uint8_t *dst = buf + (size_t)r * ldx;
                for (size_t j = 0; j < in; j++) dst[j] = src[j] ^ flip;
                memset(dst + in, flip, ldx - in);
            }
            a.xp = buf;
            a.ldx = ldx;
        } else {
            isa = PTQ_I8_SCALAR;
        }
    }
    run_blocks(kernel_for(isa), &a, rows);
    free(buf);
}

void ptq_i8gemm(const ptq_i8weight *w, const int8_t *xq, int rows, int32_t *acc) {
    ptq_i8gemm_isa(ptq_i8_isa_best(), w, xq, rows, acc);
}

/* ---------------------------------------------------------------- linear layer */

ptq_status ptq_i8_linear(ptq_i8_isa isa, const ptq_i8weight *w, const float *x, int rows, const float *act_scales,
                         int per_token, int bits, const float *bias, float *y, ptq_error *err) {
    if (!w || !w->codes || !x || !y) return ptq_fail(err, PTQ_ERR_ARG, "int8 linear: weight, input and output must be given");
    if (rows < 0) return ptq_fail(err, PTQ_ERR_ARG, "int8 linear: %d input rows; expected >= 0", rows);
    if (bits < 2 || bits > 8)
        return ptq_fail(err, PTQ_ERR_ARG, "int8 linear: %d activation bits; expected 2..8", bits);
    if (!per_token && !act_scales)
        return ptq_fail(err, PTQ_ERR_ARG, "int8 linear: per-tensor activation quantization needs a scale");
    if (rows == 0) return PTQ_OK;
    if (act_scales) {
        const int ns = per_token ? rows : 1;
        for (int i = 0; i < ns; i++)
            if (!(act_scales[i] >= 0.0f) || isinf(act_scales[i]))
                return ptq_fail(err, PTQ_ERR_ARG, "int8 linear: activation scale %d is %g; expected finite and >= 0", i,
                                (double)act_scales[i]);
    }
    const size_t nx = (size_t)rows * (size_t)w->in, ny = (size_t)rows * (size_t)w->out;
    int8_t *xq = malloc(nx);
    int32_t *acc = malloc(ny * sizeof(int32_t));
    float *dyn = per_token && !act_scales ? malloc((size_t)rows * sizeof(float)) : NULL;
    if (!xq || !acc || (per_token && !act_scales && !dyn)) {
        free(xq);
        free(acc);
        free(dyn);
        return ptq_fail(err, PTQ_ERR_NOMEM, "int8 linear: no memory for %d rows of [%d -> %d]", rows, w->in, w->out);
    }
    const float *sx = act_scales;
    if (dyn) {
        ptq_act_scales_per_token_isa(isa, x, rows, w->in, bits, dyn);
        sx = dyn;
    }
    ptq_quantize_act_i8_isa(isa, x, rows, w->in, sx, per_token, bits, xq);
    ptq_i8gemm_isa(isa, w, xq, rows, acc);
    const int par = rows > 1 && (double)ny >= SIDE_PAR_MIN;
#pragma omp parallel for schedule(static) if (par)
    for (int r = 0; r < rows; r++) {
        const float s = per_token ? sx[r] : sx[0];
        const int32_t *c = acc + (size_t)r * (size_t)w->out;
        float *yr = y + (size_t)r * (size_t)w->out;
        if (bias)
            for (int o = 0; o < w->out; o++) yr[o] = (float)c[o] * (s * w->scales[o]) + bias[o];
        else
            for (int o = 0; o < w->out; o++) yr[o] = (float)c[o] * (s * w->scales[o]);
    }
    free(xq);
    free(acc);
    free(dyn);
    return PTQ_OK;
}
