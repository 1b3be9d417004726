/* The weight-quantization pipeline: block by block over calibration data (DESIGN.md "the one data flow").
 * For each block: one forward pass accumulates, for every distinct linear-layer input, the Hessian
 * H = 2 X^T X / n in double; every linear of the block is then quantized (RTN or GPTQ); a second pass
 * through the now-quantized block produces the next block's inputs. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "models/forward.h"
#include "quant/quantizer.h"

ptq_quant_params ptq_quant_default_params(void) {
    ptq_quant_params p;
    memset(&p, 0, sizeof p);
    p.wbits = 4;
    p.group = 0;
    p.method = PTQ_WQ_GPTQ;
    p.percdamp = 0.01;
    return p;
}

uint64_t ptq_hash_bytes(const void *data, size_t n, uint64_t seed) {
    const unsigned char *b = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Linears that read the same input share one Hessian. */
enum { H_ATTN_IN = 0, H_O_IN, H_MLP_IN, H_DOWN_IN, H_COUNT };

static int hessian_of(ptq_lin_role r) {
    switch (r) {
    case PTQ_LIN_QKV:
    case PTQ_LIN_Q:
    case PTQ_LIN_K:
    case PTQ_LIN_V: return H_ATTN_IN;
    case PTQ_LIN_O: return H_O_IN;
    case PTQ_LIN_GATE:
    case PTQ_LIN_UP: return H_MLP_IN;
    default: return H_DOWN_IN;
    }
}

typedef struct {
    const ptq_model *m;
    double *H[H_COUNT];
    int dim[H_COUNT];
    int64_t rows[H_COUNT];
    double *xd; /* conversion buffer */
    size_t xd_cap;
    int failed;
} hess_ctx;

static int accumulate(void *user, int layer, ptq_lin_role role, const ptq_linear *lin, const float *X,
                      const float *Y, int rows) {
    (void)layer;
    (void)Y;
    hess_ctx *c = user;
    int h = hessian_of(role);
    /* only the first linear reading a given input accumulates it */
    const ptq_linear *L = c->m->blocks[layer].lin;
    if ((role == PTQ_LIN_K || role == PTQ_LIN_V) || (role == PTQ_LIN_UP && ptq_linear_present(&L[PTQ_LIN_GATE])))
        return 0;
    int n = lin->in;
    size_t need = (size_t)rows * n;
    if (need > c->xd_cap) {
        ptq_free(c->xd);
        c->xd = ptq_alloc(need, sizeof(double), "Hessian input", NULL);
        c->xd_cap = c->xd ? need : 0;
        if (!c->xd) {
            c->failed = 1;
            return 1;
        }
    }
    for (size_t i = 0; i < need; i++) c->xd[i] = X[i];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, rows, 1.0, c->xd, n, 1.0, c->H[h], n);
    c->rows[h] += rows;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *method_name(ptq_wq_method m) { return m == PTQ_WQ_GPTQ ? "gptq" : "rtn"; }

static ptq_status quantize_block(ptq_model *m, int l, hess_ctx *hc, const ptq_quant_params *p, int *done,
                                 int total, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    /* finish the Hessians: mirror the upper triangle, scale by 2/n */
    for (int h = 0; h < H_COUNT; h++) {
        int n = hc->dim[h];
        double s = hc->rows[h] > 0 ? 2.0 / (double)hc->rows[h] : 0;
        for (int a = 0; a < n; a++)
            for (int b = a; b < n; b++) {
                double v = hc->H[h][(size_t)a * n + b] * s;
                hc->H[h][(size_t)a * n + b] = v;
                hc->H[h][(size_t)b * n + a] = v;
            }
    }
    for (int r = 0; r < PTQ_LIN_COUNT; r++) {
        ptq_linear *lin = &m->blocks[l].lin[r];
        if (!lin->w) continue;
        const double *H = hc->H[hessian_of((ptq_lin_role)r)];
        double t0 = now_s();
        ptq_qweight *q = calloc(1, sizeof *q);
        if (!q) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory quantizing %s", lin->name);
        ptq_wq_params wq = {p->wbits, p->group, p->sym};
        ptq_status s;
        if (p->method == PTQ_WQ_GPTQ) {
            ptq_gptq_params gp = ptq_gptq_default_params();
            gp.wq = wq;
            gp.act_order = p->act_order;
            gp.percdamp = p->percdamp > 0 ? p->percdamp : 0.01;
            gp.reference_groups = !p->gptq_updated_groups;
            s = ptq_gptq_quantize(lin->w, lin->out, lin->in, H, &gp, q, &p->cb, err);
        } else {
            s = ptq_rtn_quantize(lin->w, lin->out, lin->in, &wq, q, err);
        }
        if (s != PTQ_OK) {
            free(q);
            return ptq_fail_context(err, "quantizing %s", lin->name);
        }
        lin->q = q;
        ptq_layer_report rep = {lin->name, l, lin->in, lin->out, now_s() - t0,
                                ptq_layer_rel_error(lin->w, q, lin->out, lin->in, H)};
        if (p->report) p->report(p->report_user, &rep);
        ptq_progress(&p->cb, "quantize", ++*done, total);
    }
    (void)c;
    return PTQ_OK;
}

ptq_status ptq_quantize_model(ptq_model *m, const ptq_calib_data *data, const ptq_quant_params *p, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    if (p->wbits != 2 && p->wbits != 3 && p->wbits != 4 && p->wbits != 8)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "--wbits %d: supported widths are 2, 3, 4 and 8", p->wbits);
    if (p->group < 0 || (p->group > 0 && p->group % PTQ_QCHUNK != 0))
        return ptq_fail(err, PTQ_ERR_ARG, "--group %d: use 0 (per channel) or a multiple of %d", p->group, PTQ_QCHUNK);
    for (int l = 0; l < c->n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++)
            if (m->blocks[l].lin[r].q)
                return ptq_fail(err, PTQ_ERR_ARG, "%s: the model is already quantized", m->path);
    int n_seq, T;
    if (c->arch == PTQ_ARCH_VIT) {
        if (!data->images || data->images->count <= 0)
            return ptq_fail(err, PTQ_ERR_ARG, "%s: a ViT needs image calibration data", m->path);
        n_seq = data->images->count;
        T = c->max_seq;
    } else {
        if (!data->tokens || data->n_seqs <= 0 || data->seq_len <= 0)
            return ptq_fail(err, PTQ_ERR_ARG, "%s: a language model needs token calibration data", m->path);
        n_seq = data->n_seqs;
        T = data->seq_len;
        if (T > c->max_seq)
            return ptq_fail(err, PTQ_ERR_ARG, "calibration windows of %d tokens exceed the context of %d", T,
                            c->max_seq);
    }
    size_t per_seq = (size_t)T * c->dim;
    float *x = ptq_alloc((size_t)n_seq * per_seq, sizeof(float), "calibration activations", err);
    if (!x) return PTQ_ERR_NOMEM;
    hess_ctx hc;
    memset(&hc, 0, sizeof hc);
    hc.m = m;
    hc.dim[H_ATTN_IN] = c->dim;
    hc.dim[H_O_IN] = c->n_heads * c->head_dim;
    hc.dim[H_MLP_IN] = c->dim;
    hc.dim[H_DOWN_IN] = c->hidden_dim;
    ptq_status s = PTQ_OK;
    for (int h = 0; h < H_COUNT && s == PTQ_OK; h++) {
        hc.H[h] = ptq_alloc((size_t)hc.dim[h] * hc.dim[h], sizeof(double), "Hessian", err);
        if (!hc.H[h]) s = PTQ_ERR_NOMEM;
    }
    if (s == PTQ_OK) {
        if (c->arch == PTQ_ARCH_VIT) {
            s = ptq_embed_images(m, data->images->pixels, n_seq, x, err);
        } else {
            for (int i = 0; s == PTQ_OK && i < n_seq; i++)
                s = ptq_embed_tokens(m, data->tokens + (size_t)i * T, T, 0, x + i * per_seq, err);
        }
    }
    int chunk = 4096 / T > 0 ? 4096 / T : 1, done = 0, total = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++) total += m->blocks[l].lin[r].w != NULL;
    for (int l = 0; s == PTQ_OK && l < c->n_layers; l++) {
        for (int h = 0; h < H_COUNT; h++) {
            memset(hc.H[h], 0, (size_t)hc.dim[h] * hc.dim[h] * sizeof(double));
            hc.rows[h] = 0;
        }
        for (int i = 0; s == PTQ_OK && i < n_seq; i += chunk) {
            int k = n_seq - i < chunk ? n_seq - i : chunk;
            float *xs = ptq_alloc((size_t)k * per_seq, sizeof(float), "calibration chunk", err);
            if (!xs) {
                s = PTQ_ERR_NOMEM;
                break;
            }
            memcpy(xs, x + i * per_seq, (size_t)k * per_seq * sizeof(float));
            s = ptq_block_forward(m, l, xs, k, T, 0, NULL, accumulate, &hc, err);
            ptq_free(xs);
        }
        if (s == PTQ_OK && hc.failed) s = ptq_fail(err, PTQ_ERR_NOMEM, "out of memory accumulating Hessians");
        if (s == PTQ_OK) s = quantize_block(m, l, &hc, p, &done, total, err);
        /* the quantized block produces the next block's inputs */
        for (int i = 0; s == PTQ_OK && i < n_seq; i += chunk) {
            int k = n_seq - i < chunk ? n_seq - i : chunk;
            s = ptq_block_forward(m, l, x + i * per_seq, k, T, 0, NULL, NULL, NULL, err);
        }
    }
    for (int h = 0; h < H_COUNT; h++) ptq_free(hc.H[h]);
    ptq_free(hc.xd);
    ptq_free(x);
    if (s == PTQ_OK) {
        snprintf(m->quant.method, sizeof m->quant.method, "%s", method_name(p->method));
        m->quant.wbits = p->wbits;
        m->quant.group = p->group;
        m->quant.sym = p->sym;
        m->quant.act_order = p->method == PTQ_WQ_GPTQ && p->act_order;
    }
    return s;
}
