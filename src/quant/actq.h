/* Activation quantizers on the input of a linear layer: static per-tensor (symmetric or asymmetric),
 * dynamic per-token, PTQ4ViT twin uniform, with an optional NoisyQuant noise vector added before
 * quantization. The fake-quantized value is exactly s * q with q the integer code the int8 kernels use. */
#ifndef PTQ_QUANT_ACTQ_H
#define PTQ_QUANT_ACTQ_H

#include <stddef.h>
#include <stdint.h>

#include "ptq.h"

typedef struct ptq_actq {
    int bits;          /* 2..8 */
    int sym;           /* 1: signed codes in [-2^(b-1), 2^(b-1)-1]; 0: unsigned [0, 2^b-1] with a zero point */
    int per_token;     /* symmetric, scale = max|row| / (2^(b-1)-1) computed at run time */
    float scale;       /* static step */
    float zero;        /* asymmetric zero point (an integer value) */
    int twin;          /* twin uniform: x >= 0 on step `scale` with codes 0..2^(b-1)-1, x < 0 on `scale_neg` */
    float scale_neg;
    float *noise;      /* NoisyQuant noise [in] added before quantization, or NULL */
    float *noise_bias; /* -(What . noise) [out], added to the output, or NULL */
} ptq_actq;

/* out = fake-quant(x + noise), rows x in (out may alias x). */
void ptq_actq_apply(const ptq_actq *q, const float *x, int rows, int in, float *out);
/* One value, static scale (no noise, no per-token). */
float ptq_actq_value(const ptq_actq *q, float x);

/* A sample of a linear layer's input for calibration: the range over everything seen, a sample of
 * values, and whole rows for output-based objectives. Both samples are stratified: the stream is cut
 * into blocks of `stride` values (`row_stride` rows) and one position drawn at random (seeded, so
 * runs repeat) is kept from each block. A fixed every-k-th pick would alias with the data's period
 * (tokens per image, channels per row) and see only some tokens or channels. */
typedef struct ptq_act_sample {
    int in;
    double min, max;
    float *values;
    size_t n_values, cap_values;
    size_t stride, seen, next_value; /* next_value: the position kept from the current block */
    float *rows;                     /* [n_rows][in] */
    int n_rows, cap_rows, row_stride, rows_seen, next_row;
    uint64_t rng_values, rng_rows; /* two streams, so the sample does not depend on the batching */
} ptq_act_sample;

/* Rows kept for output-based objectives (EasyQuant, NoisyQuant) at most. */
#define PTQ_ACT_SAMPLE_ROWS 4096

ptq_status ptq_act_sample_init(ptq_act_sample *s, int in, size_t total_values, int total_rows, ptq_error *err);
void ptq_act_sample_add(ptq_act_sample *s, const float *x, int rows);
void ptq_act_sample_free(ptq_act_sample *s);
/* With the calibration split across processes: before adding anything, skip to this process's place in
 * the whole stream (`values` values and `rows` rows come before it), so that each process keeps exactly
 * the positions one process would keep there; after adding, ptq_act_sample_merge gathers the kept
 * values and rows in rank order and the range over all processes: the sample of one process's run. */
void ptq_act_sample_seek(ptq_act_sample *s, size_t values, int rows);
ptq_status ptq_act_sample_merge(ptq_act_sample *s, const ptq_dist *dist, ptq_error *err);

/* Calibrate a static quantizer from a sample with one of the distribution-only methods
 * (minmax, percentile, mse, entropy). */
void ptq_actq_calibrate(ptq_actq *q, const ptq_act_sample *s, ptq_act_calib method, double percentile);
/* Twin uniform (PTQ4ViT) for post-activation inputs: negative step fixed to 0.16997/2^(b-1) (|min GELU|),
 * positive step searched by MSE. */
void ptq_actq_calibrate_twin(ptq_actq *q, const ptq_act_sample *s);

#endif
