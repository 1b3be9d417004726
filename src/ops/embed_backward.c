/* Embeddings for fine-tuning: token gather (scatter-add backward), learned positions, ViT patches and cls token. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "ops/backward.h"

void ptq_embedding_forward(const float *emb, const int *tokens, int n, int dim, float *x) {
    for (int i = 0; i < n; i++) memcpy(x + (size_t)i * dim, emb + (size_t)tokens[i] * dim, (size_t)dim * sizeof(float));
}

typedef struct {
    int tok, row;
} tok_row;

static int cmp_tok_row(const void *a, const void *b) {
    const tok_row *x = a, *y = b;
    if (x->tok != y->tok) return x->tok < y->tok ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

ptq_status ptq_embedding_backward(const int *tokens, int n, const float *dx, int dim, int vocab, float *demb,
                                  ptq_error *err) {
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return ptq_fail(err, PTQ_ERR_ARG, "embedding backward: token id %d at row %d is outside the vocabulary of %d",
                            tokens[i], i, vocab);
    if (n <= 0) return PTQ_OK;
    /* group the rows by token (rows in order within a token), then each token's rows are summed by one thread */
    tok_row *ord = ptq_alloc((size_t)n, sizeof *ord, "embedding backward order", err);
    int *start = ord ? ptq_alloc((size_t)n + 1, sizeof *start, "embedding backward groups", err) : NULL;
    if (!start) {
        ptq_free(ord);
        return PTQ_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) ord[i] = (tok_row){tokens[i], i};
    qsort(ord, (size_t)n, sizeof *ord, cmp_tok_row);
    int ng = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || ord[i].tok != ord[i - 1].tok) start[ng++] = i;
    start[ng] = n;
#pragma omp parallel for schedule(dynamic, 8) if ((size_t)n * dim > 65536)
    for (int g = 0; g < ng; g++) {
        float *dst = demb + (size_t)ord[start[g]].tok * dim;
        for (int c0 = 0; c0 < dim; c0 += 64) {
            int c1 = c0 + 64 < dim ? c0 + 64 : dim;
            double acc[64] = {0};
            for (int k = start[g]; k < start[g + 1]; k++) {
                const float *src = dx + (size_t)ord[k].row * dim;
                for (int d = c0; d < c1; d++) acc[d - c0] += src[d];
            }
            for (int d = c0; d < c1; d++) dst[d] = (float)(dst[d] + acc[d - c0]);
        }
    }
    ptq_free(start);
    ptq_free(ord);
    return PTQ_OK;
}

void ptq_pos_add(float *x, int rows, int seq_len, int dim, int pos_row0, const float *pos) {
#pragma omp parallel for schedule(static) if ((size_t)rows * dim > 262144)
    for (int r = 0; r < rows; r++) {
        const float *p = pos + (size_t)(pos_row0 + r % seq_len) * dim;
        float *xr = x + (size_t)r * dim;
        for (int d = 0; d < dim; d++) xr[d] += p[d];
    }
}

void ptq_pos_add_backward(const float *dx, int rows, int seq_len, int dim, int pos_row0, float *dpos) {
    int np = rows < seq_len ? rows : seq_len;
    /* position p collects rows p, p + seq_len, ...; one position per iteration, summed in double */
#pragma omp parallel for schedule(static) if ((size_t)rows * dim > 65536 && np > 1)
    for (int p = 0; p < np; p++) {
        int cnt = (rows - p + seq_len - 1) / seq_len;
        ptq_colsum_acc(dx + (size_t)p * dim, cnt, (size_t)seq_len * dim, dim, dpos + (size_t)(pos_row0 + p) * dim);
    }
}

void ptq_patchify(const float *pixels, int n_img, int C, int img, int P, float *patches) {
    int g = img / P, pd = C * P * P, npatch = g * g;
    size_t img_sz = (size_t)C * img * img;
#pragma omp parallel for schedule(static) if (n_img > 1)
    for (int b = 0; b < n_img; b++) {
        const float *im = pixels + (size_t)b * img_sz;
        for (int py = 0; py < g; py++)
            for (int px = 0; px < g; px++) {
                float *dst = patches + ((size_t)b * npatch + (size_t)py * g + px) * pd;
                for (int ch = 0; ch < C; ch++)
                    for (int yy = 0; yy < P; yy++)
                        for (int xx = 0; xx < P; xx++)
                            *dst++ = im[((size_t)ch * img + (size_t)py * P + yy) * img + (size_t)px * P + xx];
            }
    }
}

void ptq_cls_concat(const float *cls, const float *emb, int n_img, int npatch, int dim, float *x) {
    int first = cls ? 1 : 0;
    size_t T = (size_t)npatch + first;
    for (int b = 0; b < n_img; b++) {
        float *xb = x + (size_t)b * T * dim;
        if (cls) memcpy(xb, cls, (size_t)dim * sizeof(float));
        memcpy(xb + (size_t)first * dim, emb + (size_t)b * npatch * dim, (size_t)npatch * dim * sizeof(float));
    }
}

void ptq_cls_concat_backward(const float *dx, int n_img, int npatch, int dim, int has_cls, float *dcls, float *demb) {
    int first = has_cls ? 1 : 0;
    size_t T = (size_t)npatch + first;
    if (has_cls && dcls) ptq_colsum_acc(dx, n_img, T * dim, dim, dcls);
    if (demb)
        for (int b = 0; b < n_img; b++)
            ptq_add_acc(demb + (size_t)b * npatch * dim, dx + ((size_t)b * T + first) * dim, (size_t)npatch * dim);
}
