/* NoisyQuant: search and fold a per-layer noise vector (see noisyquant.c). */
#ifndef PTQ_METHODS_NOISYQUANT_H
#define PTQ_METHODS_NOISYQUANT_H

#include <stdint.h>

#include "models/model.h"
#include "quant/actq.h"

/* Search the noise for lin (which has a calibrated static lin->aq and its quantized weights) on the
 * first half of the sample rows X [n][in], keep it only if it clearly lowers the output MSE on the
 * second half (else N = 0); installs lin->aq->noise and the folded bias lin->aq->noise_bias (both
 * model-owned). Reports the output MSE on the second (held-out) half without and with the kept noise.
 * The reference variant uses the first 256 rows. */
ptq_status ptq_noisyquant_search(ptq_model *m, ptq_linear *lin, const float *X, int n, int reference,
                                 uint64_t seed, double *mse_before, double *mse_after, ptq_error *err);

#endif
