/* Calibration activations between blocks, float32 or compact (calib_stream.h). */
#include "quant/calib_stream.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/safetensors.h" /* the f16 / bf16 conversions */

static const char *const k_names[] = {"f32", "bf16", "f16"};

size_t ptq_calib_dtype_size(ptq_calib_dtype d) { return d == PTQ_CALIB_F32 ? 4 : 2; }

const char *ptq_calib_dtype_name(ptq_calib_dtype d) { return (unsigned)d < 3 ? k_names[d] : "?"; }

int ptq_calib_dtype_parse(const char *name, ptq_calib_dtype *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, k_names[i]) == 0) {
            *out = (ptq_calib_dtype)i;
            return 0;
        }
    return -1;
}

ptq_status ptq_calib_stream_alloc(ptq_calib_stream *s, ptq_calib_dtype dtype, size_t n, ptq_error *err) {
    memset(s, 0, sizeof *s);
    if ((unsigned)dtype > PTQ_CALIB_F16) return ptq_fail(err, PTQ_ERR_ARG, "unknown calibration activation type %d", dtype);
    s->dtype = dtype;
    s->n = n;
    if (dtype == PTQ_CALIB_F32) s->f = ptq_alloc(n, sizeof(float), "calibration activations", err);
    else s->h = ptq_alloc(n, sizeof(uint16_t), "calibration activations", err);
    return s->f || s->h ? PTQ_OK : PTQ_ERR_NOMEM;
}

void ptq_calib_stream_free(ptq_calib_stream *s) {
    ptq_free(s->f);
    ptq_free(s->h);
    memset(s, 0, sizeof *s);
}

void ptq_calib_stream_get(const ptq_calib_stream *s, size_t i0, size_t k, float *dst) {
    if (s->f) {
        memcpy(dst, s->f + i0, k * sizeof *dst);
        return;
    }
    const uint16_t *h = s->h + i0;
    if (s->dtype == PTQ_CALIB_BF16)
        for (size_t i = 0; i < k; i++) dst[i] = ptq_bf16_to_f32(h[i]);
    else
        for (size_t i = 0; i < k; i++) dst[i] = ptq_f16_to_f32(h[i]);
}

ptq_status ptq_calib_stream_put(ptq_calib_stream *s, size_t i0, size_t k, const float *src, ptq_error *err) {
    if (s->f) {
        memcpy(s->f + i0, src, k * sizeof *src);
        return PTQ_OK;
    }
    uint16_t *h = s->h + i0;
    if (s->dtype == PTQ_CALIB_BF16) {
        for (size_t i = 0; i < k; i++) h[i] = ptq_f32_to_bf16(src[i]);
        return PTQ_OK;
    }
    for (size_t i = 0; i < k; i++) {
        h[i] = ptq_f32_to_f16(src[i]);
        if (isinf(ptq_f16_to_f32(h[i])) && !isinf(src[i]))
            return ptq_fail(err, PTQ_ERR_NUMERIC,
                            "a calibration activation (%g) is beyond float16's range (65504): use --calib-dtype bf16 "
                            "or f32", (double)src[i]);
    }
    return PTQ_OK;
}
