/* Bias Compensation (METHODS.md section 1): for a quantized module with float output O and quantized
 * output Ohat, the bias b minimising mean ||O - Ohat - b||^2 is the mean of O - Ohat over the axes b
 * does not span. The statistic is streamed and accumulated in double. */
#ifndef PTQ_METHODS_BIAS_COMPENSATION_H
#define PTQ_METHODS_BIAS_COMPENSATION_H

#include <stdint.h>

#include "models/forward.h"

/* Running sums of e = O - Ohat for one module: per channel (len 0) or per position x channel. */
typedef struct ptq_bc_acc {
    int width;      /* channels */
    int len;        /* positions spanned by the bias; 0 = one bias per channel */
    double *sum;    /* [max(len,1)][width] sum of e, compensated: the sum is sum + sum_lo */
    double *sum_lo; /* the rounding errors of sum's additions (Neumaier), so that the sum is as good as
                       correctly rounded whatever the order of the rows: split across processes, the
                       biases are the bytes one process computes */
    double *sumsq;  /* [max(len,1)][width] sum of e^2 */
    int64_t *count; /* [max(len,1)] rows seen at each position */
    double signal;  /* sum of O^2 */
} ptq_bc_acc;

ptq_status ptq_bc_acc_init(ptq_bc_acc *a, int width, int len, ptq_error *err);
void ptq_bc_acc_free(ptq_bc_acc *a);
/* Add rows of O and Ohat [rows][width]; row r sits at position r % seq_len. */
ptq_status ptq_bc_acc_add(ptq_bc_acc *a, const float *O, const float *Ohat, int rows, int seq_len, ptq_error *err);
/* The optimal bias: the mean error ([max(len,1)][width] floats). */
void ptq_bc_acc_bias(const ptq_bc_acc *a, float *b);
/* Mean squared error per element and SQNR (dB) of Ohat + b against O (b NULL: no bias). */
void ptq_bc_acc_stats(const ptq_bc_acc *a, const float *b, double *mse, double *sqnr_db);

/* Residual streams of calibration data at the input of the current block. */
typedef struct ptq_bc_streams {
    float *xf;   /* the float model's activations, or NULL when BC is off */
    float *xq;   /* the quantized model's activations */
    int n_seq, seq_len;
} ptq_bc_streams;

typedef struct ptq_bc_opts {
    int scope;          /* PTQ_BC_LINEAR | PTQ_BC_BLOCK | PTQ_BC_LOGITS */
    ptq_bc_shape shape;
    ptq_bc_mode mode;
    const ptq_dist *dist; /* NULL: one process; else the streams hold this process's share and the sums
                             are added over the processes before a bias is fitted */
} ptq_bc_opts;

/* Fit and install the linear-level and block-level biases of block `layer` from the calibration streams;
 * `hold` (may be NULL) only measures. Reports go to `report`. */
ptq_status ptq_bc_fit_block(ptq_model *m, int layer, const ptq_bc_opts *o, const ptq_bc_streams *cal,
                            const ptq_bc_streams *hold, ptq_bc_report_fn report, void *user, ptq_error *err);
/* Fit and install the logits bias (per class / vocabulary entry) from streams at the output of the last block. */
ptq_status ptq_bc_fit_logits(ptq_model *m, const ptq_bc_streams *cal, const ptq_bc_streams *hold,
                             const ptq_dist *dist, ptq_bc_report_fn report, void *user, ptq_error *err);
/* Add the sums of `a` over the processes (nothing without a split). */
ptq_status ptq_bc_acc_reduce(ptq_bc_acc *a, const ptq_dist *dist, ptq_error *err);

#endif
