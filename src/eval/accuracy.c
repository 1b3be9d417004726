/* Top-1 / top-5 classification accuracy of a ViT over an image set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "models/forward.h"

ptq_status ptq_eval_accuracy(ptq_model *m, const ptq_image_set *s, const ptq_callbacks *cb, ptq_acc_result *res,
                             ptq_error *err) {
    memset(res, 0, sizeof *res);
    const ptq_config *c = &m->cfg;
    if (c->arch != PTQ_ARCH_VIT) return ptq_fail(err, PTQ_ERR_ARG, "%s: accuracy needs an image model", m->path);
    if (s->channels != c->in_chans || s->height != c->img_size || s->width != c->img_size)
        return ptq_fail(err, PTQ_ERR_ARG, "images are %dx%dx%d, the model expects %dx%dx%d", s->channels, s->height,
                        s->width, c->in_chans, c->img_size, c->img_size);
    int K = c->vocab_size, batch = 250;
    for (int i = 0; i < s->count; i++)
        if (!s->labels || s->labels[i] < 0 || s->labels[i] >= K)
            return ptq_fail(err, PTQ_ERR_ARG, "%s: image %d has %s; accuracy needs a label in [0, %d) on every image",
                            m->path, i, s->labels && s->labels[i] < 0 ? "no label (an unlabeled image set)" : "a bad label",
                            K);
    float *logits = ptq_alloc((size_t)batch * K, sizeof(float), "logits", err);
    if (!logits) return PTQ_ERR_NOMEM;
    size_t img = (size_t)s->channels * s->height * s->width;
    int64_t top1 = 0, top5 = 0;
    ptq_status st = PTQ_OK;
    for (int i = 0; st == PTQ_OK && i < s->count; i += batch) {
        int n = s->count - i < batch ? s->count - i : batch;
        st = ptq_forward_images(m, s->pixels + (size_t)i * img, n, logits, err);
        for (int b = 0; st == PTQ_OK && b < n; b++) {
            const float *lg = logits + (size_t)b * K;
            int label = s->labels[i + b], rank = 0;
            /* a NaN compares false with everything and would rank the label first */
            for (int k = 0; st == PTQ_OK && k < K; k++)
                if (!isfinite(lg[k]))
                    st = ptq_fail(err, PTQ_ERR_NUMERIC, "%s: image %d: logit of class %d is %g (non-finite)", m->path,
                                  i + b, k, (double)lg[k]);
            if (st != PTQ_OK) break;
            for (int k = 0; k < K; k++)
                if (lg[k] > lg[label] || (lg[k] == lg[label] && k < label)) rank++;
            top1 += rank == 0;
            top5 += rank < 5;
        }
        ptq_progress(cb, "eval", i + n, s->count);
    }
    ptq_free(logits);
    if (st != PTQ_OK) return st;
    res->images = s->count;
    res->top1 = s->count ? 100.0 * (double)top1 / s->count : 0;
    res->top5 = s->count ? 100.0 * (double)top5 / s->count : 0;
    return PTQ_OK;
}
