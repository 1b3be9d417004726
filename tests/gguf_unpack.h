/* For tests that compare a GGUF's weights with float weights through bit-exact logits: ptq runs a GGUF's Q4_0,
 * Q5_0 and Q8_0 matrices on its packed kernels (quant/ggml_to_qweight.h) and the other block types on their
 * blocks (kernels/ggml_gemm.h), whose summation orders differ from the float GEMM's. tu_unpack_model puts them
 * back as float weights (the very values: test_ggml_to_qweight.c proves the packed weights dequantize to ggml's
 * floats bit for bit, ptq_model_widen_ggml dequantizes as ggml does), so that the float path's logits can be
 * compared bit for bit; the block paths themselves are compared with llama.cpp within tolerances elsewhere. */
#ifndef PTQ_TESTS_GGUF_UNPACK_H
#define PTQ_TESTS_GGUF_UNPACK_H

#include "kernels/qweight.h"
#include "models/model.h"
#include "testutil.h"

static inline void tu_unpack_linear(ptq_model *m, ptq_linear *l) {
    if (!l->q || l->w) return;
    ptq_error err = {0};
    float *w = ptq_model_floats(m, (size_t)l->out * (size_t)l->in, l->name, &err);
    CHECK_MSG(w != NULL, "%s", err.msg);
    if (!w) return;
    for (int r = 0; r < l->out; r++) ptq_qweight_dequant_row(l->q, r, w + (size_t)r * l->in);
    ptq_linear_drop_quant(l);
    l->w = w;
}

static inline int tu_unpack_model(ptq_model *m) {
    int n = 0;
    for (int b = 0; m && b < m->cfg.n_layers; b++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++) {
            n += m->blocks[b].lin[r].q != NULL;
            tu_unpack_linear(m, &m->blocks[b].lin[r]);
        }
    if (m) {
        n += m->head.q != NULL;
        const int tied_packed = m->head.q && m->head.q == m->tok_emb_q;
        tu_unpack_linear(m, &m->head);
        if (tied_packed && m->head.w) { /* the packed table was the head's too: its floats serve the lookups */
            m->tok_emb_q = NULL;
            m->tok_emb = m->head.w;
        }
        for (int b = 0; b < m->cfg.n_layers; b++)
            for (int r = 0; r < PTQ_LIN_COUNT; r++) n += ptq_linear_is_ggml(&m->blocks[b].lin[r]);
        n += ptq_linear_is_ggml(&m->head);
        ptq_error err = {0};
        CHECK_MSG(ptq_model_widen_ggml(m, &err) == PTQ_OK, "%s", err.msg);
    }
    return n;
}

#endif
