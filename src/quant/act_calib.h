/* Activation calibration of one block inside the quantization pipeline (see act_calib.c). */
#ifndef PTQ_QUANT_ACT_CALIB_H
#define PTQ_QUANT_ACT_CALIB_H

#include "models/forward.h"
#include "quant/actq.h"

/* Calibrate the input quantizer of every linear of block l on the stream xq [n_seq * T][dim], in
 * forward order; run NoisyQuant when p->noisyquant; prepare int8 weights where possible. */
ptq_status ptq_calibrate_block_acts(ptq_model *m, int l, const ptq_quant_params *p, const float *xq, int n_seq,
                                    int T, ptq_error *err);
/* Give a linear with symmetric per-channel packed weights and an activation quantizer its int8 form. */
ptq_status ptq_linear_prepare_i8(ptq_linear *lin, ptq_error *err);

#endif
