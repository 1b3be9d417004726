/* NoisyQuant: search and fold a per-layer noise vector (see noisyquant.c). */
#ifndef PTQ_METHODS_NOISYQUANT_H
#define PTQ_METHODS_NOISYQUANT_H

#include <stdint.h>

#include "models/model.h"
#include "quant/actq.h"

enum {
    PTQ_NQ_REFERENCE = 1, /* the released code's variant (first 256 rows) */
    PTQ_NQ_UNCHECKED = 2  /* search on all rows and keep the best noise, without the held-out check */
};

/* Search the noise for lin (which has a calibrated static lin->aq and its quantized weights) on the
 * first half of the sample rows X [n][in], keep it only if it clearly lowers the output MSE on the
 * second half (else N = 0); installs lin->aq->noise and the folded bias lin->aq->noise_bias (both
 * model-owned). Reports the output MSE on the second (held-out) half without and with the kept noise
 * (with PTQ_NQ_UNCHECKED: on all rows). flags: PTQ_NQ_* bits. */
ptq_status ptq_noisyquant_search(ptq_model *m, ptq_linear *lin, const float *X, int n, unsigned flags,
                                 uint64_t seed, double *mse_before, double *mse_after, ptq_error *err);

/* Whether lin's input carries a NoisyQuant noise vector that is not all zero. */
int ptq_nq_has_noise(const ptq_linear *lin);

/* The paired test behind every NoisyQuant check: with[i] and without[i] are the errors of the same
 * held-out item (row, sequence) with and without the noise; 1 if the mean difference is below zero by
 * more than twice its standard error (with one item: if it is below zero). */
int ptq_nq_clear_gain(const double *with, const double *without, int n);

#endif
