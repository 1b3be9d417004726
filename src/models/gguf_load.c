/* Helpers shared by the GGUF model builders (gguf_load.h). */
#include "models/gguf_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "kernels/ggml_gemm.h"
#include "quant/ggml_quants.h"
#include "quant/ggml_to_qweight.h"
#include "text/gguf_vocab.h"

ptq_status ptq_gguf_src_u32(const ptq_gguf *g, const char *key, int required, uint32_t def, uint32_t lo, uint32_t hi,
                            const char *what, int *out, ptq_error *err) {
    uint32_t v = def;
    if (ptq_gguf_find_kv(g, key)) {
        PTQ_TRY(ptq_gguf_get_u32(g, key, &v, err));
    } else if (required) {
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\" is missing (required for %s)", g->path, key, what);
    }
    if (v < lo || v > hi)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: %s is %u, expected %u..%u", g->path, key, v, lo, hi);
    *out = (int)v;
    return PTQ_OK;
}

void ptq_gguf_fmt_ne(char *buf, size_t cap, int ndim, const int64_t *ne) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)ne[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

ptq_status ptq_gguf_src_take(ptq_gguf_src *s, const char *name, int ndim, const int64_t *ne, float **out,
                             ptq_error *err) {
    const ptq_gguf_tensor *t = ptq_gguf_find(s->g, name);
    if (!t) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" is missing", s->g->path, name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->ne[i] == ne[i];
    if (!same) {
        char have[96], want[96];
        ptq_gguf_fmt_ne(have, sizeof have, t->ndim, t->ne);
        ptq_gguf_fmt_ne(want, sizeof want, ndim, ne);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" has ggml shape %s, expected %s from the metadata",
                        s->g->path, name, have, want);
    }
    float *buf = ptq_model_floats(s->m, (size_t)t->numel, name, err);
    if (!buf) return err->status ? err->status : PTQ_ERR_NOMEM;
    PTQ_TRY(ptq_gguf_read_f32(s->g, t, buf, err));
    ptq_mmap_drop(t->data, t->nbytes); /* converted: the file's pages need not stay resident too */
    s->used[t - s->g->tensors] = 1;
    /* inspect shows PyTorch order ([out, in]), as for safetensors models */
    int64_t shape[PTQ_GGUF_MAX_DIMS];
    for (int i = 0; i < ndim; i++) shape[i] = ne[ndim - 1 - i];
    char tn[32];
    ptq_model_note_tensor(s->m, name, ptq_ggml_type_name(t->type, tn, sizeof tn), ndim, shape);
    *out = buf;
    return PTQ_OK;
}

/* Reorder rows of row_bytes within each head of head_rows rows: llama.cpp's RoPE order -> Hugging Face's (row
 * 2i + j of a head becomes row j*d/2 + i). */
static ptq_status unpermute_rows(void *data, int rows, int head_rows, size_t row_bytes, const char *name,
                                 ptq_error *err) {
    unsigned char *tmp = ptq_alloc((size_t)head_rows, row_bytes, name, err), *w = data;
    if (!tmp) return err->status;
    const int half = head_rows / 2;
    for (int h = 0; h < rows / head_rows; h++) {
        unsigned char *hw = w + (size_t)h * head_rows * row_bytes;
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(tmp + (size_t)(j * half + i) * row_bytes, hw + (size_t)(2 * i + j) * row_bytes, row_bytes);
        memcpy(hw, tmp, (size_t)head_rows * row_bytes);
    }
    ptq_free(tmp);
    return PTQ_OK;
}

/* The end of packed / blocks: the file's pages were copied (out of resident memory with them), no float weights,
   the tensor used and noted for inspect */
static void kept_blocks(ptq_gguf_src *s, const ptq_gguf_tensor *t, ptq_linear *lin) {
    ptq_mmap_drop(t->data, t->nbytes);
    lin->w = NULL;
    s->used[t - s->g->tensors] = 1;
    const int64_t shape[2] = {lin->out, lin->in};
    char tn[32];
    ptq_model_note_tensor(s->m, t->name, ptq_ggml_type_name(t->type, tn, sizeof tn), 2, shape);
}

/* A Q4_0/Q5_0/Q8_0 weight of the right shape -> lin->q */
static ptq_status packed(ptq_gguf_src *s, const ptq_gguf_tensor *t, ptq_linear *lin, int heads, ptq_error *err) {
    const size_t rb = t->nbytes / (size_t)lin->out;
    void *bytes = NULL;
    const void *src = t->data;
    if (heads > 0) { /* reorder a copy of the bytes: quantized rows move whole */
        bytes = ptq_alloc(t->nbytes, 1, t->name, err);
        if (!bytes) return PTQ_ERR_NOMEM;
        memcpy(bytes, t->data, t->nbytes);
        ptq_status st = unpermute_rows(bytes, lin->out, lin->out / heads, rb, t->name, err);
        if (st != PTQ_OK) {
            ptq_free(bytes);
            return st;
        }
        src = bytes;
    }
    ptq_qweight *q = calloc(1, sizeof *q);
    ptq_status st = q ? ptq_ggml_to_qweight(t->type, src, lin->out, lin->in, t->name, q, err)
                      : ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory", t->name);
    ptq_free(bytes);
    if (st != PTQ_OK) {
        free(q);
        return ptq_fail_context(err, "%s", s->g->path);
    }
    lin->q = q;
    kept_blocks(s, t, lin);
    return PTQ_OK;
}

/* A weight in a type ptq's packed format cannot hold (Q4_1, Q5_1, the k-quants), of the right shape -> lin->ggml:
   the file's blocks, copied (rows put in Hugging Face order), run by kernels/ggml_gemm.h */
static ptq_status blocks(ptq_gguf_src *s, const ptq_gguf_tensor *t, ptq_linear *lin, int heads, ptq_error *err) {
    const size_t rb = t->nbytes / (size_t)lin->out;
    const int block = ptq_ggml_row_bytes(t->type, PTQ_GGML_QK) ? PTQ_GGML_QK : PTQ_GGML_QK_K;
    const int64_t per_row = lin->in / block, bad = ptq_ggml_first_nonfinite(t->type, t->data, per_row * lin->out);
    if (bad >= 0) {
        char tn[24];
        return ptq_fail(err, PTQ_ERR_NUMERIC, "%s: tensor \"%s\" (%s), row %lld, block %lld: the step or offset is not "
                        "finite", s->g->path, t->name, ptq_ggml_type_name(t->type, tn, sizeof tn),
                        (long long)(bad / per_row), (long long)(bad % per_row));
    }
    void *bytes = ptq_alloc(t->nbytes, 1, t->name, err);
    if (!bytes) return PTQ_ERR_NOMEM;
    PTQ_TRY(ptq_model_own(s->m, bytes, err)); /* frees bytes when it fails */
    memcpy(bytes, t->data, t->nbytes);
    if (heads > 0) PTQ_TRY(unpermute_rows(bytes, lin->out, lin->out / heads, rb, t->name, err));
    lin->ggml = bytes;
    lin->ggml_type = t->type;
    lin->wq = NULL;
    kept_blocks(s, t, lin);
    return PTQ_OK;
}

ptq_status ptq_gguf_src_linear(ptq_gguf_src *s, ptq_linear *lin, const char *name, int in, int out, int bias_required,
                               int heads, ptq_error *err) {
    char tn[128];
    snprintf(lin->name, sizeof lin->name, "%s", name);
    snprintf(tn, sizeof tn, "%s.weight", name);
    lin->in = in;
    lin->out = out;
    lin->b = NULL;
    const int64_t ne[2] = {in, out};
    const ptq_gguf_tensor *t = ptq_gguf_find(s->g, tn);
    const int shaped = t && t->ndim == 2 && t->ne[0] == in && t->ne[1] == out;
    if (shaped && ptq_ggml_to_qweight_supported(t->type)) {
        PTQ_TRY(packed(s, t, lin, heads, err));
    } else if (shaped && ptq_ggml_gemm_supported(t->type) && ptq_ggml_row_bytes(t->type, in)) {
        PTQ_TRY(blocks(s, t, lin, heads, err));
    } else {
        PTQ_TRY(ptq_gguf_src_take(s, tn, 2, ne, &lin->w, err));
        if (heads > 0) PTQ_TRY(unpermute_rows(lin->w, out, out / heads, (size_t)in * sizeof(float), tn, err));
    }
    snprintf(tn, sizeof tn, "%s.bias", name);
    const int64_t bne[1] = {out};
    if (!bias_required && !ptq_gguf_find(s->g, tn)) return PTQ_OK;
    PTQ_TRY(ptq_gguf_src_take(s, tn, 1, bne, &lin->b, err));
    return heads > 0 ? unpermute_rows(lin->b, out, out / heads, sizeof(float), tn, err) : PTQ_OK;
}

ptq_status ptq_gguf_src_norm(ptq_gguf_src *s, ptq_norm *n, const char *name, int dim, int with_bias, ptq_error *err) {
    char tn[128];
    snprintf(tn, sizeof tn, "%s.weight", name);
    const int64_t ne[1] = {dim};
    n->b = NULL;
    PTQ_TRY(ptq_gguf_src_take(s, tn, 1, ne, &n->w, err));
    if (!with_bias) return PTQ_OK;
    snprintf(tn, sizeof tn, "%s.bias", name);
    return ptq_gguf_src_take(s, tn, 1, ne, &n->b, err);
}

ptq_status ptq_gguf_src_arch(const ptq_gguf *g, char *buf, size_t cap, ptq_error *err) {
    if (!ptq_gguf_find_kv(g, "general.architecture"))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"general.architecture\" is missing", g->path);
    char *arch = NULL;
    PTQ_TRY(ptq_gguf_get_string(g, "general.architecture", &arch, err));
    ptq_snippet(buf, cap, arch, strlen(arch));
    free(arch);
    return PTQ_OK;
}

void ptq_gguf_src_bos_eos(const ptq_gguf *g, ptq_config *c) {
    /* an unusable tokenizer is reported when it is loaded, not here */
    ptq_tok_spec spec;
    ptq_error ignored;
    c->bos_id = c->eos_id = -1;
    if (ptq_gguf_find_kv(g, "tokenizer.ggml.model") && ptq_gguf_tok_spec(g, &spec, &ignored) == PTQ_OK) {
        c->bos_id = spec.bos;
        c->eos_id = spec.eos;
        ptq_tok_spec_free(&spec);
    }
}

ptq_status ptq_gguf_src_vocab(const ptq_gguf *g, const char *arch, int dim, int *vocab, ptq_error *err) {
    const ptq_gguf_tensor *emb = ptq_gguf_find(g, "token_embd.weight");
    if (!emb) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"token_embd.weight\" is missing", g->path);
    if (emb->ndim != 2 || emb->ne[0] != dim || emb->ne[1] > (1 << 24)) {
        char have[96];
        ptq_gguf_fmt_ne(have, sizeof have, emb->ndim, emb->ne);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"token_embd.weight\" has ggml shape %s, expected [%d, vocab]",
                        g->path, have, dim);
    }
    int v = (int)emb->ne[1], v_key = v;
    char key[64];
    snprintf(key, sizeof key, "%s.vocab_size", arch);
    PTQ_TRY(ptq_gguf_src_u32(g, key, 0, (uint32_t)v, 1, 1 << 24, "", &v_key, err));
    if (v_key != v)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: %s is %d but token_embd.weight has %d rows", g->path, key, v_key, v);
    const ptq_gguf_kv *tk = ptq_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (tk && tk->count != (uint64_t)v)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu tokens but token_embd.weight has %d rows",
                        g->path, (unsigned long long)tk->count, v);
    *vocab = v;
    return PTQ_OK;
}

ptq_status ptq_gguf_src_all_used(const ptq_gguf_src *s, const char *what, int n_layers, ptq_error *err) {
    for (int i = 0; i < s->g->n_tensors; i++)
        if (!s->used[i]) {
            char q[96];
            ptq_snippet(q, sizeof q, s->g->tensors[i].name, strlen(s->g->tensors[i].name));
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" is not part of %s with %d layers (block_count)",
                            s->g->path, q, what, n_layers);
        }
    return PTQ_OK;
}
