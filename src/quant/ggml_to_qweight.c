/* ggml Q4_0 / Q5_0 / Q8_0 -> ptq_qweight (ggml_to_qweight.h). */
#include "quant/ggml_to_qweight.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/gguf.h"
#include "quant/ggml_quants.h"
#include "quant/quantizer.h"

int ptq_ggml_to_qweight_supported(uint32_t type) {
    return type == PTQ_GGML_Q4_0 || type == PTQ_GGML_Q5_0 || type == PTQ_GGML_Q8_0;
}

ptq_status ptq_ggml_to_qweight(uint32_t type, const void *src, int rows, int cols, const char *name, ptq_qweight *out,
                               ptq_error *err) {
    memset(out, 0, sizeof *out);
    if (!name) name = "weight";
    if (!ptq_ggml_to_qweight_supported(type)) {
        char tn[24];
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: %s has no lossless packed form (only Q4_0, Q5_0, Q8_0)", name,
                        ptq_ggml_type_name(type, tn, sizeof tn));
    }
    const size_t rb = ptq_ggml_row_bytes(type, cols);
    if (rows < 1 || cols < 1 || !rb)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: %d x %d is not a matrix of 32-blocks", name, rows, cols);
    const int bits = type == PTQ_GGML_Q4_0 ? 4 : type == PTQ_GGML_Q5_0 ? 5 : 8;
    PTQ_TRY(ptq_qweight_alloc(out, bits, PTQ_GGML_QK, cols, rows, 0, err));
    const int nb = cols / PTQ_GGML_QK;
    const size_t bb = rb / (size_t)nb;
    uint8_t *codes = ptq_alloc((size_t)cols, 1, name, err);
    if (!codes) {
        ptq_qweight_free(out);
        return PTQ_ERR_NOMEM;
    }
    for (int r = 0; r < rows; r++) {
        const unsigned char *row = (const unsigned char *)src + (size_t)r * rb;
        for (int b = 0; b < nb; b++) {
            ptq_ggml_block_params p;
            ptq_ggml_unpack_block(type, row + (size_t)b * bb, &p, codes + (size_t)b * PTQ_GGML_QK);
            if ((p.d & 0x7C00) == 0x7C00) { /* fp16 Inf or NaN */
                ptq_free(codes);
                ptq_qweight_free(out);
                return ptq_fail(err, PTQ_ERR_NUMERIC, "%s: row %d, block %d: the scale is not finite", name, r, b);
            }
            out->scales[(size_t)r * nb + b] = p.d;
            out->zeros[(size_t)r * nb + b] = (uint8_t)p.zero;
        }
        ptq_qweight_set_row(out, r, codes);
    }
    ptq_free(codes);
    ptq_status st = ptq_qweight_drop_sym_zeros(out, err); /* Q4_0, Q5_0 and Q8_0 are symmetric: none stored */
    if (st != PTQ_OK) ptq_qweight_free(out);
    return st;
}
