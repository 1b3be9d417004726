/* Activation quantizers: fake quantization and calibration from a sample (see actq.h). */
#include "quant/actq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "quant/dist.h"

static float qlo(const ptq_actq *q) { return q->sym ? -(float)(1 << (q->bits - 1)) : 0.0f; }
static float qhi(const ptq_actq *q) { return q->sym ? (float)((1 << (q->bits - 1)) - 1) : (float)((1 << q->bits) - 1); }

/* s * clamp(round_half_even(x / s) + z, lo, hi) - s * z; division, not multiplication by 1/s, so the
 * codes equal the int8 kernels' codes bit for bit. */
static inline float fq(float x, float s, float z, float lo, float hi) {
    if (!(s > 0)) return 0.0f;
    float c = rintf(x / s) + z;
    c = c < lo ? lo : c > hi ? hi : c;
    return s * (c - z);
}

static inline float twin_value(const ptq_actq *q, float x) {
    float half = (float)(1 << (q->bits - 1));
    if (x >= 0) return fq(x, q->scale, 0, 0, half - 1);
    return fq(x, q->scale_neg, 0, -half, 0);
}

float ptq_actq_value(const ptq_actq *q, float x) {
    if (q->twin) return twin_value(q, x);
    return fq(x, q->scale, q->sym ? 0.0f : q->zero, qlo(q), qhi(q));
}

void ptq_actq_apply(const ptq_actq *q, const float *x, int rows, int in, float *out) {
    float lo = qlo(q), hi = qhi(q), z = q->sym ? 0.0f : q->zero;
    float tmax = (float)((1 << (q->bits - 1)) - 1);
#pragma omp parallel for schedule(static) if ((size_t)rows * in > 65536)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * in;
        float *o = out + (size_t)r * in;
        float s = q->scale;
        if (q->per_token) {
            float m = 0;
            for (int j = 0; j < in; j++) {
                float v = xr[j] + (q->noise ? q->noise[j] : 0.0f);
                m = fmaxf(m, fabsf(v));
            }
            s = m > 0 ? m / tmax : 1.0f;
        }
        for (int j = 0; j < in; j++) {
            float v = xr[j] + (q->noise ? q->noise[j] : 0.0f);
            o[j] = q->twin ? twin_value(q, v) : fq(v, s, z, lo, hi);
        }
    }
}

/* ------------------------------------------------------------------ samples */

ptq_status ptq_act_sample_init(ptq_act_sample *s, int in, size_t total_values, int total_rows, ptq_error *err) {
    memset(s, 0, sizeof *s);
    s->in = in;
    s->min = INFINITY;
    s->max = -INFINITY;
    s->rng_values = 0x5DEECE66DULL * (uint64_t)(in + 1) + total_values;
    s->rng_rows = ~s->rng_values;
    s->cap_values = total_values < ((size_t)1 << 20) ? total_values : ((size_t)1 << 20);
    s->stride = (total_values + s->cap_values - 1) / (s->cap_values ? s->cap_values : 1);
    if (s->stride == 0) s->stride = 1;
    s->next_value = ptq_splitmix64(&s->rng_values) % s->stride;
    s->cap_rows = total_rows < PTQ_ACT_SAMPLE_ROWS ? total_rows : PTQ_ACT_SAMPLE_ROWS;
    s->row_stride = (total_rows + s->cap_rows - 1) / (s->cap_rows ? s->cap_rows : 1);
    if (s->row_stride == 0) s->row_stride = 1;
    s->next_row = (int)(ptq_splitmix64(&s->rng_rows) % (uint64_t)s->row_stride);
    s->values = ptq_alloc(s->cap_values ? s->cap_values : 1, sizeof(float), "activation sample", err);
    s->rows = s->values ? ptq_alloc((size_t)(s->cap_rows ? s->cap_rows : 1) * in, sizeof(float), "activation rows", err)
                        : NULL;
    if (!s->rows) {
        ptq_act_sample_free(s);
        return PTQ_ERR_NOMEM;
    }
    return PTQ_OK;
}

void ptq_act_sample_add(ptq_act_sample *s, const float *x, int rows) {
    size_t n = (size_t)rows * s->in;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        if (v < s->min) s->min = v;
        if (v > s->max) s->max = v;
        if (s->seen++ == s->next_value) {
            if (s->n_values < s->cap_values) s->values[s->n_values++] = x[i];
            s->next_value = (s->next_value / s->stride + 1) * s->stride + ptq_splitmix64(&s->rng_values) % s->stride;
        }
    }
    for (int r = 0; r < rows; r++)
        if (s->rows_seen++ == s->next_row) {
            if (s->n_rows < s->cap_rows)
                memcpy(s->rows + (size_t)s->n_rows++ * s->in, x + (size_t)r * s->in, (size_t)s->in * sizeof(float));
            s->next_row = (s->next_row / s->row_stride + 1) * s->row_stride +
                          (int)(ptq_splitmix64(&s->rng_rows) % (uint64_t)s->row_stride);
        }
}

void ptq_act_sample_seek(ptq_act_sample *s, size_t values, int rows) {
    /* the draws ptq_act_sample_add would make over the skipped positions, keeping nothing */
    while (s->next_value < values)
        s->next_value = (s->next_value / s->stride + 1) * s->stride + ptq_splitmix64(&s->rng_values) % s->stride;
    s->seen = values;
    while (s->next_row < rows)
        s->next_row = (s->next_row / s->row_stride + 1) * s->row_stride +
                      (int)(ptq_splitmix64(&s->rng_rows) % (uint64_t)s->row_stride);
    s->rows_seen = rows;
}

ptq_status ptq_act_sample_merge(ptq_act_sample *s, const ptq_dist *dist, ptq_error *err) {
    if (!ptq_dist_on(dist)) return PTQ_OK;
    size_t vbytes = (s->cap_values ? s->cap_values : 1) * sizeof(float);
    size_t rbytes = (size_t)(s->cap_rows ? s->cap_rows : 1) * s->in * sizeof(float), got = 0;
    float *v = ptq_alloc(vbytes, 1, "activation sample", err);
    float *r = v ? ptq_alloc(rbytes, 1, "activation rows", err) : NULL;
    double *mm = r ? ptq_alloc((size_t)2 * dist->size, sizeof(double), "activation range", err) : NULL;
    ptq_status st = mm ? PTQ_OK : PTQ_ERR_NOMEM;
    if (st == PTQ_OK)
        st = ptq_dist_gather(dist, s->values, s->n_values * sizeof(float), v, vbytes, &got, "activation sample", err);
    if (st == PTQ_OK) {
        s->n_values = got / sizeof(float);
        st = ptq_dist_gather(dist, s->rows, (size_t)s->n_rows * s->in * sizeof(float), r, rbytes, &got,
                             "activation rows", err);
    }
    if (st == PTQ_OK) {
        s->n_rows = (int)(got / (s->in * sizeof(float)));
        double mine[2] = {s->min, s->max};
        st = ptq_dist_gather(dist, mine, sizeof mine, mm, (size_t)2 * dist->size * sizeof(double), &got,
                             "activation range", err);
    }
    if (st == PTQ_OK) {
        for (int i = 0; i < dist->size; i++) s->min = fmin(s->min, mm[2 * i]), s->max = fmax(s->max, mm[2 * i + 1]);
        ptq_free(s->values);
        ptq_free(s->rows);
        s->values = v, s->rows = r;
        v = r = NULL;
    }
    ptq_free(v);
    ptq_free(r);
    ptq_free(mm);
    return st;
}

void ptq_act_sample_free(ptq_act_sample *s) {
    ptq_free(s->values);
    ptq_free(s->rows);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ calibration */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double sample_mse(const ptq_actq *q, const ptq_act_sample *s) {
    double e = 0;
    for (size_t i = 0; i < s->n_values; i++) {
        double d = (double)s->values[i] - ptq_actq_value(q, s->values[i]);
        e += d * d;
    }
    return e;
}

/* Symmetric: step for a clip value c. Asymmetric: step and zero for [lo, hi]. */
static void set_range(ptq_actq *q, double lo, double hi) {
    if (q->sym) {
        double c = fmax(fabs(lo), fabs(hi));
        q->scale = c > 0 ? (float)(c / ((1 << (q->bits - 1)) - 1)) : 1.0f;
        q->zero = 0;
    } else {
        lo = fmin(lo, 0);
        hi = fmax(hi, 0);
        double r = hi - lo;
        q->scale = r > 0 ? (float)(r / ((1 << q->bits) - 1)) : 1.0f;
        q->zero = (float)nearbyint(-lo / q->scale);
    }
}

/* KL-divergence threshold search over a histogram of |x| (symmetric) with 2048 bins: for each candidate
 * clip bin i, P = the histogram up to i with the tail folded into bin i-1, Q = the histogram up to i
 * (without the tail) merged into 2^(b-1) levels and spread back uniformly over its non-empty bins; keep
 * the i with the smallest KL(P || Q). */
static double entropy_clip(const ptq_act_sample *s, int bits) {
    enum { BINS = 2048 };
    double amax = fmax(fabs(s->min), fabs(s->max));
    if (amax <= 0 || s->n_values == 0) return amax;
    double *h = calloc(BINS, sizeof *h), *p = malloc(BINS * sizeof *p), *qd = malloc(BINS * sizeof *qd);
    if (!h || !p || !qd) {
        free(h), free(p), free(qd);
        return amax;
    }
    double w = amax / BINS;
    for (size_t i = 0; i < s->n_values; i++) {
        int b = (int)(fabs(s->values[i]) / w);
        h[b >= BINS ? BINS - 1 : b] += 1;
    }
    int levels = 1 << (bits - 1);
    double best = INFINITY;
    int best_i = BINS;
    for (int i = levels; i <= BINS; i++) {
        double tail = 0;
        for (int b = i; b < BINS; b++) tail += h[b];
        for (int b = 0; b < i; b++) p[b] = h[b];
        p[i - 1] += tail;
        /* merge i bins into `levels` groups, then spread each group's mass over its non-empty bins */
        for (int g = 0; g < levels; g++) {
            int b0 = (int)((double)g * i / levels), b1 = (int)((double)(g + 1) * i / levels);
            if (b1 <= b0) b1 = b0 + 1;
            double mass = 0;
            int nz = 0;
            for (int b = b0; b < b1 && b < i; b++) {
                mass += h[b]; /* Q from the clipped histogram WITHOUT the tail (else Q = P at i = levels) */
                nz += h[b] > 0;
            }
            for (int b = b0; b < b1 && b < i; b++) qd[b] = h[b] > 0 && nz ? mass / nz : 0;
        }
        double ps = 0, qs = 0;
        for (int b = 0; b < i; b++) ps += p[b], qs += qd[b];
        double kl = 0;
        for (int b = 0; b < i; b++)
            if (p[b] > 0) {
                double pp = p[b] / ps, qq = qd[b] / qs;
                kl += pp * log(pp / (qq > 0 ? qq : 1e-12));
            }
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    free(h), free(p), free(qd);
    return (best_i + 0.5) * w;
}

void ptq_actq_calibrate(ptq_actq *q, const ptq_act_sample *s, ptq_act_calib method, double percentile) {
    if (q->per_token) return; /* dynamic: nothing to calibrate */
    double lo = s->min, hi = s->max;
    switch (method) {
    case PTQ_AQ_PERCENTILE: {
        size_t n = s->n_values;
        float *v = malloc((n ? n : 1) * sizeof *v);
        if (v && n) {
            double pc = percentile > 0 && percentile <= 100 ? percentile : 99.99;
            if (q->sym) {
                for (size_t i = 0; i < n; i++) v[i] = fabsf(s->values[i]);
                qsort(v, n, sizeof *v, cmp_float);
                double c = v[(size_t)fmin((double)n - 1, floor(pc / 100.0 * (double)(n - 1) + 0.5))];
                lo = -c;
                hi = c;
            } else {
                memcpy(v, s->values, n * sizeof *v);
                qsort(v, n, sizeof *v, cmp_float);
                lo = v[(size_t)floor((100.0 - pc) / 100.0 * (double)(n - 1) + 0.5)];
                hi = v[(size_t)floor(pc / 100.0 * (double)(n - 1) + 0.5)];
            }
        }
        free(v);
        set_range(q, lo, hi);
        break;
    }
    case PTQ_AQ_ENTROPY:
        if (q->sym) {
            double c = entropy_clip(s, q->bits);
            set_range(q, -c, c);
        } else {
            set_range(q, lo, hi);
        }
        break;
    case PTQ_AQ_MSE:
    case PTQ_AQ_EASYQUANT: /* EasyQuant starts from the MSE step; its output search runs in the pipeline */
    case PTQ_AQ_TWIN: {
        /* shrink the range by i/100 and keep the candidate with the smallest squared error */
        double best = INFINITY;
        ptq_actq c = *q, keep = *q;
        for (int i = 100; i >= 1; i--) {
            set_range(&c, lo * i / 100.0, hi * i / 100.0);
            double e = sample_mse(&c, s);
            if (e < best) {
                best = e;
                keep = c;
            }
        }
        *q = keep;
        break;
    }
    case PTQ_AQ_MINMAX:
    default: set_range(q, lo, hi); break;
    }
}

void ptq_actq_calibrate_twin(ptq_actq *q, const ptq_act_sample *s) {
    q->twin = 1;
    q->sym = 1;
    int half = 1 << (q->bits - 1);
    q->scale_neg = 0.16997124254703522f / (float)half;
    double hi = s->max > 0 ? s->max : 1.0;
    double d0 = hi / (half - 0.5), best = INFINITY;
    float keep = (float)d0;
    /* PTQ4ViT's grid: d0 * (alpha + i (beta - alpha) / n), alpha 0.01, beta 1.2, n 100 */
    for (int i = 0; i < 100; i++) {
        q->scale = (float)(d0 * (0.01 + i * (1.2 - 0.01) / 100.0));
        double e = sample_mse(q, s);
        if (e < best) {
            best = e;
            keep = q->scale;
        }
    }
    q->scale = keep;
}
