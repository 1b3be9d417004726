/* ggml's symmetric 32-blocks as ptq's packed weights (kernels/qweight.h), losslessly.
 *
 * Q4_0, Q5_0 and Q8_0 store, per block of 32 consecutive columns, an fp16 step d and codes q with the value
 * d * (q - zero) (zero 8, 16, and 128 for Q8_0's int8 read as q + 128): exactly ptq's w = s * (q - z) with
 * group 32, s = d and z = zero, in 4-, 5- and 8-bit codes (5 bits stored tightly: 20 bytes a block, as Q5_0's 22). Both
 * dequantize as float(d) * float(q - zero), so the converted weight holds the very same values, bit for bit,
 * and runs on ptq's packed GEMV/GEMM kernels without a float copy.
 *
 * Not converted: Q4_1 and Q5_1 (d*q + m needs m/d integer for an integer zero point, which ggml does not
 * guarantee) and the k-quants (two-level scales: a sub-block step d*sc is not an fp16 value in general); they
 * stay on the dequantized float path. */
#ifndef PTQ_QUANT_GGML_TO_QWEIGHT_H
#define PTQ_QUANT_GGML_TO_QWEIGHT_H

#include <stdint.h>

#include "kernels/qweight.h"
#include "ptq.h"

/* 1 for Q4_0, Q5_0 and Q8_0 */
int ptq_ggml_to_qweight_supported(uint32_t type);

/* rows x cols of `type` (row-major ggml bytes, cols a multiple of 32) -> *out (allocated here; free with
 * ptq_qweight_free). PTQ_ERR_UNSUPPORTED for another type, PTQ_ERR_ARG for a bad shape, PTQ_ERR_NUMERIC
 * (naming `name` and the row) for a step that is not finite. */
ptq_status ptq_ggml_to_qweight(uint32_t type, const void *src, int rows, int cols, const char *name, ptq_qweight *out,
                               ptq_error *err);

#endif
