/* AdamW with decoupled weight decay, linear warm-up + cosine learning-rate schedule, and global-norm gradient
 * clipping, following torch.optim.AdamW and torch.nn.utils.clip_grad_norm_ step for step. */
#include <math.h>

#include "train/train.h"

ptq_adamw_params ptq_adamw_default_params(void) {
    ptq_adamw_params p = {0};
    p.lr = 1e-4;
    p.beta1 = 0.9;
    p.beta2 = 0.999;
    p.eps = 1e-8;
    p.weight_decay = 0.01;
    p.clip = 1.0;
    p.warmup = 0;
    p.total_steps = 1;
    p.min_lr_frac = 0.0;
    return p;
}

double ptq_lr_at(const ptq_adamw_params *p, int step) {
    if (step < p->warmup) return p->lr * (double)(step + 1) / (double)p->warmup;
    int span = p->total_steps - p->warmup;
    if (span < 1) span = 1;
    double prog = (double)(step - p->warmup) / (double)span;
    if (prog > 1) prog = 1;
    double f = p->min_lr_frac;
    return p->lr * (f + (1.0 - f) * 0.5 * (1.0 + cos(3.14159265358979323846 * prog)));
}

double ptq_grad_norm(const ptq_trainable *t) {
    /* fixed chunks summed in order: the result does not depend on the thread count */
    enum { NCH = 64 };
    double part[NCH] = {0};
    size_t n = t->total;
    const float *g = t->arena;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < NCH; c++) {
        size_t lo = n / NCH * c + ((size_t)c < n % NCH ? (size_t)c : n % NCH);
        size_t hi = n / NCH * (c + 1) + ((size_t)(c + 1) < n % NCH ? (size_t)(c + 1) : n % NCH);
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double s = 0;
    for (int c = 0; c < NCH; c++) s += part[c];
    return sqrt(s);
}

double ptq_adamw_step(ptq_trainable *t, const ptq_adamw_params *p, int step, double *grad_norm) {
    double lr = ptq_lr_at(p, step);
    double norm = ptq_grad_norm(t);
    if (grad_norm) *grad_norm = norm;
    float coef = 1.0f;
    if (p->clip > 0 && norm > p->clip) coef = (float)(p->clip / (norm + 1e-6));
    int k = step + 1;
    double bc1 = 1.0 - pow(p->beta1, k), bc2 = 1.0 - pow(p->beta2, k);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float b1 = (float)p->beta1, b2 = (float)p->beta2, eps = (float)p->eps;
    float decay = (float)(1.0 - lr * p->weight_decay);
    for (int i = 0; i < t->n; i++) {
        ptq_param *q = &t->p[i];
        float *w = q->w, *g = q->g, *m = q->m, *v = q->v;
        int dec = q->decay && p->weight_decay != 0;
        size_t n = q->n;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t j = 0; j < n; j++) {
            float gj = g[j] * coef;
            if (dec) w[j] *= decay;
            m[j] = b1 * m[j] + (1.0f - b1) * gj;
            v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
            float denom = sqrtf(v[j]) / bc2_sqrt + eps;
            w[j] -= step_size * (m[j] / denom);
        }
    }
    return lr;
}
