/* Uniform weight quantizers (METHODS.md section 0) and the two weight-quantization algorithms, RTN and
 * GPTQ (section 4). Both produce a ptq_qweight (src/kernels/qweight.h): integer codes, fp16 scales and
 * integer zero points per row and group. Scales are rounded to fp16 *before* the codes are computed, so
 * the stored scale is exactly the one the codes were chosen for. */
#ifndef PTQ_QUANT_QUANTIZER_H
#define PTQ_QUANT_QUANTIZER_H

#include "kernels/qweight.h"
#include "ptq.h"

typedef struct ptq_wq_params {
    int bits;        /* 2..8 */
    int group;       /* 0 = per output channel (one group per row), PTQ_GROUP_TENSOR = one grid for the whole
                        matrix (stored as equal per-row scales), else a multiple of 32 */
    int sym;         /* symmetric: zero = 2^(bits-1) */
    int restricted;  /* symmetric with step max|w| / (2^(bits-1) - 1) and codes 1..2^bits-1, i.e. signed
                        codes in [-(2^(bits-1)-1), 2^(bits-1)-1]: what the int8 kernels take */
} ptq_wq_params;

/* Grid of one row segment: min-max with 0 inside the range (asymmetric), or symmetric. */
void ptq_wq_find_params(const ptq_wq_params *p, const double *w, int n, int stride, float *scale, int *zero);
/* The per-tensor grid of W [out][in] (the grid depends only on the range). */
void ptq_wq_tensor_params(const ptq_wq_params *p, const float *W, size_t n, float *scale, int *zero);
/* q = clamp(round_half_even(w / scale) + zero, qmin, maxq) */
int ptq_wq_code(double w, float scale, int zero, int qmin, int maxq);
static inline int ptq_wq_qmin(const ptq_wq_params *p) { return p->restricted ? 1 : 0; }

/* Fill q's sizes (bits, group, n_groups, row_bytes) for an out x in matrix, allocating nothing: a reader
 * compares them with the file before memory is spent (group <= 0 or >= in: one group per row). */
ptq_status ptq_qweight_shape(ptq_qweight *q, int bits, int group, int in, int out, ptq_error *err);
/* ptq_qweight_shape, then allocate codes, scales, zeros (and perm when with_perm). */
ptq_status ptq_qweight_alloc(ptq_qweight *q, int bits, int group, int in, int out, int with_perm, ptq_error *err);
void ptq_qweight_free(ptq_qweight *q);
/* When every zero point is 2^(bits-1) (a symmetric grid), free them and let the kernels read one shared row
 * (qweight.h): the same weights, 0.25 bits per weight fewer at group 32. Otherwise nothing changes. */
ptq_status ptq_qweight_drop_sym_zeros(ptq_qweight *q, ptq_error *err);
/* Set row r's codes (unpacked, in values) into the packed storage. */
void ptq_qweight_set_row(ptq_qweight *q, int r, const uint8_t *codes);

/* Round to nearest: quantize W [out][in] row by row, group by group. */
ptq_status ptq_rtn_quantize(const float *W, int out, int in, const ptq_wq_params *p, ptq_qweight *q, ptq_error *err);

typedef struct ptq_gptq_params {
    ptq_wq_params wq;
    int act_order;        /* quantize columns in order of decreasing Hessian diagonal */
    int block;            /* lazy-update block size (128) */
    double percdamp;      /* damping as a fraction of the mean diagonal (0.01) */
    int reference_groups; /* 1: group grids from the globally updated W, as the reference code does (its quirk);
                             0: from the fully updated weights */
    int double_factor;    /* 1: the inverse Hessian's Cholesky factorization in double (in^2 doubles of memory
                             for the call); 0: in float32, redone in double only where float fails */
} ptq_gptq_params;
ptq_gptq_params ptq_gptq_default_params(void);

/* GPTQ on W [out][in] given the Hessian H = 2 X^T X / n [in][in] (row-major, full symmetric, float32).
 * H is not modified. On Cholesky failure the damping is raised tenfold (up to 4 times) with a warning. */
ptq_status ptq_gptq_quantize(const float *W, int out, int in, const float *H, const ptq_gptq_params *p,
                             ptq_qweight *q, const ptq_callbacks *cb, ptq_error *err);

/* GPTQ's preparation (shared with GPTQ into ggml types): U = upper Cholesky factor of (Hp + damp I)^-1 [in][in],
 * Hp = H with rows and columns in `order` (NULL: as they are), dead inputs (zero diagonal) given unit
 * curvature, damp = percdamp * mean diagonal, raised tenfold up to 4 times with a warning when the
 * factorization fails (then PTQ_ERR_NUMERIC). */
ptq_status ptq_gptq_inverse_hessian(const double *H, int in, const int *order, double percdamp, double *U,
                                    const ptq_callbacks *cb, ptq_error *err);

/* Relative output error of a quantized layer on the data behind H: tr(D H D^T) / tr(W H W^T), D = W - What
 * (only H's upper triangle is read). Exact when out * in^2 is at most 2^28 multiply-adds, else estimated
 * on ptq_rel_error_rows evenly spaced output rows (layer_error.c); NAN when out of memory. */
double ptq_layer_rel_error(const float *W, const ptq_qweight *q, int out, int in, const double *H);
/* The same for dense dequantized weights Wq [out][in]. */
double ptq_dense_rel_error(const float *W, const float *Wq, int out, int in, const double *H);
/* Rows the error of an out x in layer is computed on (out: exact). */
int ptq_rel_error_rows(int out, int in);

#endif
