/* The calibration activations between blocks (DESIGN.md "the one data flow": the residual stream of every
 * calibration window), stored as float32 or compactly as bfloat16 / float16 (--calib-dtype). A compact stream
 * rounds each value to nearest even when it is stored and reads it back exactly; the blocks always run on
 * float32 copies of one batch at a time. */
#ifndef PTQ_QUANT_CALIB_STREAM_H
#define PTQ_QUANT_CALIB_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "ptq.h"

typedef struct {
    ptq_calib_dtype dtype;
    size_t n;    /* values */
    float *f;    /* float32 storage, or NULL */
    uint16_t *h; /* bfloat16 / float16 storage, or NULL */
} ptq_calib_stream;

size_t ptq_calib_dtype_size(ptq_calib_dtype d);       /* bytes per value */
const char *ptq_calib_dtype_name(ptq_calib_dtype d);  /* "f32", "bf16", "f16" */
int ptq_calib_dtype_parse(const char *name, ptq_calib_dtype *out); /* 0 on success */

ptq_status ptq_calib_stream_alloc(ptq_calib_stream *s, ptq_calib_dtype dtype, size_t n, ptq_error *err);
void ptq_calib_stream_free(ptq_calib_stream *s);
/* Values [i0, i0 + k) as float32 into dst. */
void ptq_calib_stream_get(const ptq_calib_stream *s, size_t i0, size_t k, float *dst);
/* Store k values from src at i0, rounded to the stream's type; float16 fails (PTQ_ERR_NUMERIC) on a value beyond
 * its range rather than storing an infinity. */
ptq_status ptq_calib_stream_put(ptq_calib_stream *s, size_t i0, size_t k, const float *src, ptq_error *err);

#endif
