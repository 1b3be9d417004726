/* llama2.c legacy checkpoints: a 7-int header, then every weight as float32 in a fixed order.
 * A negative vocab_size means the classifier is stored separately (not shared with the embedding). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "models/model.h"

typedef struct {
    const ptq_mmap *map;
    size_t off; /* byte offset of the next tensor */
    ptq_model *m;
} reader;

/* Copy the next n floats into a new model-owned buffer. */
static ptq_status take(reader *r, size_t n, const char *name, int ndim, const int64_t *shape, float **out,
                       ptq_error *err) {
    if (n > (r->map->size - r->off) / sizeof(float))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: truncated: tensor %s needs %zu bytes at offset %zu, file has %zu",
                        r->m->path, name, n * sizeof(float), r->off, r->map->size);
    float *p = ptq_model_floats(r->m, n, name, err);
    if (!p) return err ? err->status : PTQ_ERR_NOMEM;
    memcpy(p, r->map->data + r->off, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return ptq_fail(err, PTQ_ERR_NUMERIC, "%s: tensor %s has a non-finite value (%g) at index %zu", r->m->path,
                            name, (double)p[i], i);
    r->off += n * sizeof(float);
    ptq_model_note_tensor(r->m, name, "F32", ndim, shape);
    *out = p;
    return PTQ_OK;
}

/* Split a stacked [L][rows][cols] tensor into per-layer linears. */
static ptq_status take_linears(reader *r, int role, const char *suffix, int rows, int cols, ptq_error *err) {
    ptq_model *m = r->m;
    int L = m->cfg.n_layers;
    float *all;
    char name[96];
    snprintf(name, sizeof name, "layers.*.%s", suffix);
    int64_t shape[3] = {L, rows, cols};
    PTQ_TRY(take(r, (size_t)L * rows * cols, name, 3, shape, &all, err));
    for (int l = 0; l < L; l++) {
        ptq_linear *lin = &m->blocks[l].lin[role];
        snprintf(lin->name, sizeof lin->name, "layers.%d.%s", l, suffix);
        lin->in = cols;
        lin->out = rows;
        lin->w = all + (size_t)l * rows * cols;
    }
    return PTQ_OK;
}

static ptq_status take_norms(reader *r, int which, const char *name, ptq_error *err) {
    ptq_model *m = r->m;
    float *all;
    int64_t shape[2] = {m->cfg.n_layers, m->cfg.dim};
    PTQ_TRY(take(r, (size_t)m->cfg.n_layers * m->cfg.dim, name, 2, shape, &all, err));
    for (int l = 0; l < m->cfg.n_layers; l++) {
        ptq_norm *n = which == 1 ? &m->blocks[l].norm1 : &m->blocks[l].norm2;
        n->w = all + (size_t)l * m->cfg.dim;
    }
    return PTQ_OK;
}

static ptq_status load(const char *path, const ptq_mmap *map, ptq_model *m, ptq_error *err) {
    if (map->size < 28) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: too short for a llama2.c header (28 bytes)", path);
    int32_t h[7];
    memcpy(h, map->data, sizeof h);
    int dim = h[0], hidden = h[1], L = h[2], nh = h[3], nkv = h[4], vocab = h[5], seq = h[6];
    int shared = vocab > 0;
    if (vocab < 0 && vocab > INT32_MIN) vocab = -vocab; /* INT32_MIN stays negative: rejected below */
    if (dim <= 0 || dim > 65536 || hidden <= 0 || hidden > 1 << 20 || L <= 0 || L > 1024 || nh <= 0 || nh > dim ||
        nkv <= 0 || nkv > nh || vocab <= 0 || vocab > 1 << 22 || seq <= 0 || seq > 1 << 20 || dim % nh != 0 ||
        nh % nkv != 0)
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: not a valid llama2.c header (dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab "
                        "%d, seq_len %d)",
                        path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    int hs = dim / nh, kvd = nkv * hs;
    /* The exact file size follows from the header; anything else is truncation or a different format. */
    uint64_t floats = (uint64_t)vocab * dim + (uint64_t)L * (2 * (uint64_t)dim * dim + 2 * (uint64_t)kvd * dim +
                                                             3 * (uint64_t)hidden * dim + 2 * (uint64_t)dim) +
                      dim + (uint64_t)seq * hs + (shared ? 0 : (uint64_t)vocab * dim);
    uint64_t expect = 28 + 4 * floats;
    if (expect != map->size)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: llama2.c checkpoint should be %llu bytes for its header, file has %zu",
                        path, (unsigned long long)expect, map->size);

    ptq_config *c = &m->cfg;
    c->arch = PTQ_ARCH_LLAMA;
    c->causal = 1;
    c->dim = c->embed_dim = dim;
    c->hidden_dim = hidden;
    c->n_layers = L;
    c->n_heads = nh;
    c->n_kv_heads = nkv;
    c->head_dim = hs;
    c->vocab_size = vocab;
    c->max_seq = seq;
    c->norm = PTQ_NORM_RMS;
    c->norm_eps = 1e-5f;
    c->pre_norm = 1;
    c->act = PTQ_ACT_SILU;
    c->gated_mlp = 1;
    c->rope = PTQ_ROPE_INTERLEAVED;
    c->rope_theta = 10000.0f;
    c->bos_id = 1;
    c->eos_id = 2;
    snprintf(m->format, sizeof m->format, "llama2c");

    m->blocks = calloc((size_t)L, sizeof *m->blocks);
    if (!m->blocks) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate %d blocks", L);
    reader r = {map, 28, m};
    int64_t emb_shape[2] = {vocab, dim};
    PTQ_TRY(take(&r, (size_t)vocab * dim, "tok_embeddings.weight", 2, emb_shape, &m->tok_emb, err));
    PTQ_TRY(take_norms(&r, 1, "layers.*.attention_norm.weight", err));
    PTQ_TRY(take_linears(&r, PTQ_LIN_Q, "attention.wq", dim, dim, err));
    PTQ_TRY(take_linears(&r, PTQ_LIN_K, "attention.wk", kvd, dim, err));
    PTQ_TRY(take_linears(&r, PTQ_LIN_V, "attention.wv", kvd, dim, err));
    PTQ_TRY(take_linears(&r, PTQ_LIN_O, "attention.wo", dim, dim, err));
    PTQ_TRY(take_norms(&r, 2, "layers.*.ffn_norm.weight", err));
    PTQ_TRY(take_linears(&r, PTQ_LIN_GATE, "feed_forward.w1", hidden, dim, err));
    PTQ_TRY(take_linears(&r, PTQ_LIN_DOWN, "feed_forward.w2", dim, hidden, err));
    PTQ_TRY(take_linears(&r, PTQ_LIN_UP, "feed_forward.w3", hidden, dim, err));
    int64_t dshape[1] = {dim};
    PTQ_TRY(take(&r, (size_t)dim, "norm.weight", 1, dshape, &m->final_norm.w, err));
    r.off += (size_t)seq * hs * sizeof(float); /* precomputed RoPE tables: recomputed at run time */
    m->head.in = dim;
    m->head.out = vocab;
    snprintf(m->head.name, sizeof m->head.name, "output");
    if (shared) {
        m->head.w = m->tok_emb;
    } else {
        PTQ_TRY(take(&r, (size_t)vocab * dim, "output.weight", 2, emb_shape, &m->head.w, err));
    }
    return ptq_model_validate(m, err);
}

ptq_status ptq_load_llama2c(const char *path, ptq_model **out, ptq_error *err) {
    *out = NULL;
    ptq_mmap map;
    PTQ_TRY(ptq_mmap_open(path, &map, err));
    ptq_model *m = ptq_model_new(path, err);
    if (!m) {
        ptq_mmap_close(&map);
        return PTQ_ERR_NOMEM;
    }
    ptq_status s = load(path, &map, m, err);
    ptq_mmap_close(&map);
    if (s != PTQ_OK) {
        ptq_model_free(m);
        return s;
    }
    *out = m;
    return PTQ_OK;
}
