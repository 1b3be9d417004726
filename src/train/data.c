/* Mini-batches: token windows of a text stream, and images of an image set, in seeded random order. */
#include <string.h>

#include "train/train.h"

void ptq_shuffle(int *idx, int n, uint64_t *rng) {
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = n - 1; i > 0; i--) {
        /* multiply-shift maps 64 random bits to [0, i] without modulo bias worth mentioning (< 2^-32) */
        uint64_t r = ptq_splitmix64(rng) >> 32;
        int j = (int)((r * (uint64_t)(i + 1)) >> 32);
        int tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
}

int64_t ptq_text_windows(const ptq_text_data *d) {
    if (d->ctx < 1 || d->n < 2) return 0;
    return (d->n - 1) / d->ctx;
}

void ptq_text_batch(const ptq_text_data *d, const int *idx, int count, int *inp, int *tgt) {
    for (int b = 0; b < count; b++) {
        const int *w = d->tokens + (size_t)idx[b] * d->ctx;
        memcpy(inp + (size_t)b * d->ctx, w, (size_t)d->ctx * sizeof(int));
        memcpy(tgt + (size_t)b * d->ctx, w + 1, (size_t)d->ctx * sizeof(int));
    }
}

void ptq_image_batch(const ptq_image_set *s, const int *idx, int count, float *pixels, int *labels) {
    size_t sz = (size_t)s->channels * s->height * s->width;
    for (int b = 0; b < count; b++) {
        memcpy(pixels + (size_t)b * sz, s->pixels + (size_t)idx[b] * sz, sz * sizeof(float));
        labels[b] = s->labels[idx[b]];
    }
}
