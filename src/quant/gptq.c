/* GPTQ (METHODS.md section 4.1): quantize columns one at a time, spreading each column's error over the
 * columns not yet quantized through the upper Cholesky factor of the inverse Hessian, with lazy
 * batched updates in blocks of 128 columns: float32 throughout (Hessian, inverse-Hessian factor, BLAS-3
 * updates), a double Cholesky only where float fails. The earlier all-double version is kept as a reference
 * in tests/gptq_double_ref.h. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "quant/quantizer.h"

ptq_gptq_params ptq_gptq_default_params(void) {
    ptq_gptq_params p;
    memset(&p, 0, sizeof p);
    p.wq.bits = 4;
    p.wq.group = 0;
    p.block = 128;
    p.percdamp = 0.01;
    p.reference_groups = 1;
    return p;
}

typedef struct {
    double d;
    int j;
} diag_idx;

static int cmp_diag_desc(const void *a, const void *b) {
    const diag_idx *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? 1 : -1;
    return x->j - y->j; /* stable: ties keep column order */
}

/* A Hessian in double (ptq_gptq_inverse_hessian, GPTQ into ggml types) or in float (ptq_gptq_quantize). */
typedef struct {
    const double *d;
    const float *f;
} hess;

static inline double hat(hess H, size_t i) { return H.d ? H.d[i] : (double)H.f[i]; }

/* The Cholesky factorization J A J = L L^T, A = Hp + damp I, J the reversal of the columns, into U (row-major
 * L; the upper triangle is left as it was). Returns LAPACK info. Why the reversal: with R = J L J, upper
 * triangular, A = R R^T, so A^-1 = R^-T R^-1 and U = R^-1 is the upper factor GPTQ needs, in one
 * factorization and one triangular inverse (2n^3/3 flops), where factor, invert and factor again (dpotrf,
 * dpotri, dpotrf) cost twice that. */
#define DEFINE_FACTOR(name, T, potrf)                                                                            \
    static int name(hess H, const int *order, int in, double damp, T *U) {                                     \
        size_t n = (size_t)in;                                                                                 \
        for (size_t a = 0; a < n; a++) {                                                                       \
            size_t oa = (size_t)(order ? order[n - 1 - a] : (int)(n - 1 - a));                                 \
            for (size_t b = 0; b <= a; b++) {                                                                  \
                size_t ob = (size_t)(order ? order[n - 1 - b] : (int)(n - 1 - b));                             \
                U[a * n + b] = (T)hat(H, oa * n + ob);                                                         \
            }                                                                                                  \
            double d = hat(H, oa * n + oa); /* dead inputs: unit curvature */                                  \
            U[a * n + a] = (T)((d == 0 ? 1.0 : d) + damp);                                                     \
        }                                                                                                      \
        return potrf(LAPACK_COL_MAJOR, 'U', in, U, in); /* column-major upper = row-major lower */             \
    }
DEFINE_FACTOR(factor_d, double, LAPACKE_dpotrf_work)
DEFINE_FACTOR(factor_f, float, LAPACKE_spotrf_work)

/* R = J L J into the upper triangle, R[a][b] = L[n-1-a][n-1-b]: off the diagonal an upper element reads a
 * strictly lower one, so nothing read is overwritten; then the diagonal is reversed. */
#define DEFINE_REVERSE(name, T)                                                                                \
    static void name(T *U, size_t n) {                                                                         \
        for (size_t a = 0; a < n; a++)                                                                         \
            for (size_t b = a + 1; b < n; b++) U[a * n + b] = U[(n - 1 - a) * n + (n - 1 - b)];                \
        for (size_t a = 0; a < n / 2; a++) {                                                                   \
            T t = U[a * n + a];                                                                                \
            U[a * n + a] = U[(n - 1 - a) * n + (n - 1 - a)];                                                   \
            U[(n - 1 - a) * n + (n - 1 - a)] = t;                                                              \
        }                                                                                                      \
        for (size_t a = 1; a < n; a++) memset(U + a * n, 0, a * sizeof *U);                                    \
    }
DEFINE_REVERSE(reverse_d, double)
DEFINE_REVERSE(reverse_f, float)

/* U = upper Cholesky factor of A^-1 in double. Returns LAPACK info. */
static int inverse_cholesky_d(hess H, const int *order, int in, double damp, double *U) {
    int info = factor_d(H, order, in, damp, U);
    if (info != 0) return info;
    reverse_d(U, (size_t)in);
    return LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'L', 'N', in, U, in); /* row-major upper: R^-1 */
}

/* The same in float, all GPTQ's float32 updates need. The factorization is done in float (as the reference
 * GPTQ does, in PyTorch's float32) unless `double_factor`; when float finds A not positive definite it is
 * redone in double (n^2 doubles, for this matrix only), since a Hessian that is merely badly conditioned is
 * where precision matters. The triangular inverse is float: its relative error is about cond(R) * 6e-8, R's
 * condition being the square root of the damped Hessian's. */
static int inverse_cholesky_f(hess H, const int *order, int in, double damp, int double_factor, float *Uf,
                              int *oom, const ptq_callbacks *cb) {
    size_t n = (size_t)in;
    int info = double_factor ? 1 : factor_f(H, order, in, damp, Uf);
    if (info != 0) {
        if (!double_factor)
            ptq_log(cb, PTQ_LOG_DEBUG, "GPTQ: float32 Cholesky failed (LAPACK info %d) for a %dx%d Hessian; redone in double",
                    info, in, in);
        double *U = ptq_alloc(n * n, sizeof(double), "GPTQ inverse Hessian (double)", NULL);
        if (!U) {
            *oom = 1;
            return -1;
        }
        info = factor_d(H, order, in, damp, U);
        for (size_t a = 0; info == 0 && a < n; a++)
            for (size_t b = 0; b <= a; b++) Uf[a * n + b] = (float)U[a * n + b];
        ptq_free(U);
        if (info != 0) return info;
    }
    reverse_f(Uf, n);
    return LAPACKE_strtri_work(LAPACK_COL_MAJOR, 'L', 'N', in, Uf, in);
}

/* Either factor of (Hp + damp I)^-1, in U (double) or Uf (float), with the damping raised tenfold up to 4
 * times while the factorization fails. */
static ptq_status inverse_factor(hess H, int in, const int *order, double percdamp, int double_factor, double *U,
                                 float *Uf, const ptq_callbacks *cb, ptq_error *err) {
    double mean_diag = 0;
    for (int j = 0; j < in; j++) {
        double d = hat(H, (size_t)j * in + j);
        mean_diag += d == 0 ? 1.0 : d;
    }
    mean_diag /= in;
    double damp = percdamp * mean_diag;
    int info = 0, oom = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        info = Uf ? inverse_cholesky_f(H, order, in, damp, double_factor, Uf, &oom, cb) : inverse_cholesky_d(H, order, in, damp, U);
        if (oom) return ptq_fail(err, PTQ_ERR_NOMEM, "GPTQ: out of memory for the %dx%d double Cholesky factor", in, in);
        if (info == 0) break;
        ptq_log(cb, PTQ_LOG_WARN, "GPTQ: Hessian not positive definite with damping %.3g (LAPACK info %d); retrying with %.3g",
                damp, info, damp * 10);
        damp *= 10;
    }
    if (info != 0)
        return ptq_fail(err, PTQ_ERR_NUMERIC, "GPTQ: Cholesky failed even with damping %.3g (LAPACK info %d)", damp, info);
    return PTQ_OK;
}

ptq_status ptq_gptq_inverse_hessian(const double *H, int in, const int *order, double percdamp, double *U,
                                    const ptq_callbacks *cb, ptq_error *err) {
    hess h = {H, NULL};
    return inverse_factor(h, in, order, percdamp, 1, U, NULL, cb, err);
}

/* Quantize the columns [i1, i1 + cnt) of one row: wr is the row (float, updated lazily up to i1), W1 the
 * block's columns updated column by column, err the row's scaled errors for the block (its slot of Err). */
static void quantize_row_block(const ptq_gptq_params *p, ptq_qweight *q, int r, int i1, int cnt, float *wr, float *W1,
                               const float *Uf, int in, int G, double *grp, float *rs, int *rz, uint8_t *codes,
                               float *err) {
    int maxq = (1 << p->wq.bits) - 1, qmin = ptq_wq_qmin(&p->wq), i2 = i1 + cnt;
    memcpy(W1, wr + i1, (size_t)cnt * sizeof *W1);
    for (int i = 0; i < cnt; i++) {
        int j = i1 + i;
        if (G < in && j % G == 0) {
            int n = in - j < G ? in - j : G;
            /* the reference takes the grid from W, whose columns inside this block have not received this
               block's updates yet; the alternative uses the updated ones */
            for (int c = 0; c < n; c++) grp[c] = (!p->reference_groups && j + c < i2) ? W1[j + c - i1] : wr[j + c];
            ptq_wq_find_params(&p->wq, grp, n, 1, &rs[r], &rz[r]);
            q->scales[(size_t)r * q->n_groups + j / G] = ptq_f32_to_f16(rs[r]);
            q->zeros[(size_t)r * q->n_groups + j / G] = (uint8_t)rz[r];
        }
        float w = W1[i];
        int code = ptq_wq_code(w, rs[r], rz[r], qmin, maxq);
        codes[j] = (uint8_t)code;
        float e = (w - rs[r] * (float)(code - rz[r])) / Uf[(size_t)j * in + j];
        err[i] = e;
        const float *Uj = Uf + (size_t)j * in + i1;
        for (int k = i + 1; k < cnt; k++) W1[k] -= e * Uj[k];
    }
}

/* Float32 with BLAS-3 lazy updates: inside a block of B columns each row is updated column by column
 * (rows in parallel: they are independent); after the block, all later columns receive the block's
 * errors at once, W[:, i2:] -= Err U[i1:i2, i2:] (sgemm). Codes agree with the double version except
 * where a weight lies within float rounding of a rounding boundary (tests/test_gptq.c counts them). */
ptq_status ptq_gptq_quantize(const float *W, int out, int in, const float *H, const ptq_gptq_params *p,
                             ptq_qweight *q, const ptq_callbacks *cb, ptq_error *err) {
    PTQ_TRY(ptq_qweight_alloc(q, p->wq.bits, p->wq.group, in, out, p->act_order, err));
    int G = q->group, B = p->block > 0 ? p->block : 128;
    if (B > in) B = in;
    ptq_status st = PTQ_OK;
    float *Wf = ptq_alloc((size_t)out * in, sizeof(float), "GPTQ weights", err);
    float *Uf = Wf ? ptq_alloc((size_t)in * in, sizeof(float), "GPTQ inverse Hessian", err) : NULL;
    float *Err = Uf ? ptq_alloc((size_t)out * B, sizeof(float), "GPTQ errors", err) : NULL;
    uint8_t *codes = Err ? ptq_alloc((size_t)out * in, 1, "GPTQ codes", err) : NULL;
    float *rs = codes ? ptq_alloc((size_t)out, sizeof(float), "GPTQ scales", err) : NULL;
    int *rz = rs ? ptq_alloc((size_t)out, sizeof(int), "GPTQ zeros", err) : NULL;
    int *order = malloc((size_t)in * sizeof *order);
    diag_idx *di = malloc((size_t)in * sizeof *di);
    if (!rz || !order || !di) {
        st = err && err->status == PTQ_ERR_NOMEM ? PTQ_ERR_NOMEM : ptq_fail(err, PTQ_ERR_NOMEM, "GPTQ: out of memory");
        goto done;
    }

    /* dead inputs (never active in calibration): weight 0, unit curvature */
    for (int j = 0; j < in; j++) {
        di[j].d = H[(size_t)j * in + j] == 0 ? 1.0 : H[(size_t)j * in + j];
        di[j].j = j;
    }
    if (p->act_order) qsort(di, (size_t)in, sizeof *di, cmp_diag_desc);
    for (int j = 0; j < in; j++) order[j] = di[j].j;
    for (int r = 0; r < out; r++)
        for (int j = 0; j < in; j++) {
            int oj = order[j];
            Wf[(size_t)r * in + j] = H[(size_t)oj * in + oj] == 0 ? 0.0f : W[(size_t)r * in + oj];
        }
    if (q->perm)
        for (int j = 0; j < in; j++) q->perm[j] = order[j];

    hess h = {NULL, H};
    st = inverse_factor(h, in, order, p->percdamp, p->double_factor, NULL, Uf, cb, err);
    if (st != PTQ_OK) goto done;

    /* per-channel grids come from the whole (dead-zeroed) row before any update, a per-tensor grid
       from the whole matrix */
    double range[2] = {0, 0};
    if (p->wq.group == PTQ_GROUP_TENSOR)
        for (size_t i = 0; i < (size_t)out * in; i++) range[0] = fmin(range[0], Wf[i]), range[1] = fmax(range[1], Wf[i]);
    if (G == in) {
        double *row = malloc((size_t)in * sizeof *row);
        if (!row) {
            st = ptq_fail(err, PTQ_ERR_NOMEM, "GPTQ: out of memory");
            goto done;
        }
        for (int r = 0; r < out; r++) {
            if (p->wq.group == PTQ_GROUP_TENSOR) ptq_wq_find_params(&p->wq, range, 2, 1, &rs[r], &rz[r]);
            else {
                for (int j = 0; j < in; j++) row[j] = Wf[(size_t)r * in + j];
                ptq_wq_find_params(&p->wq, row, in, 1, &rs[r], &rz[r]);
            }
            q->scales[(size_t)r * q->n_groups] = ptq_f32_to_f16(rs[r]);
            q->zeros[(size_t)r * q->n_groups] = (uint8_t)rz[r];
        }
        free(row);
    }

    int oom = 0;
    for (int i1 = 0; i1 < in; i1 += B) {
        int i2 = i1 + B < in ? i1 + B : in, cnt = i2 - i1;
#pragma omp parallel
        {
            float *W1 = malloc((size_t)cnt * sizeof *W1);
            double *grp = malloc((size_t)(G < in ? G : 1) * sizeof *grp);
#pragma omp for schedule(static)
            for (int r = 0; r < out; r++)
                if (W1 && grp)
                    quantize_row_block(p, q, r, i1, cnt, Wf + (size_t)r * in, W1, Uf, in, G, grp, rs, rz,
                                       codes + (size_t)r * in, Err + (size_t)r * B);
            if (!W1 || !grp) {
#pragma omp atomic write
                oom = 1;
            }
            free(W1);
            free(grp);
        }
        if (oom) {
            st = ptq_fail(err, PTQ_ERR_NOMEM, "GPTQ: out of memory");
            goto done;
        }
        if (i2 < in)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in - i2, cnt, -1.0f, Err, B,
                        Uf + (size_t)i1 * in + i2, in, 1.0f, Wf + i2, in);
    }
    for (int r = 0; r < out; r++) ptq_qweight_set_row(q, r, codes + (size_t)r * in);
    st = ptq_qweight_drop_sym_zeros(q, err);

done:
    ptq_free(Wf);
    ptq_free(Uf);
    ptq_free(Err);
    ptq_free(codes);
    ptq_free(rs);
    ptq_free(rz);
    free(order);
    free(di);
    if (st != PTQ_OK) ptq_qweight_free(q);
    return st;
}
