/* The trainable view of a model: every float tensor with its source-file name, a gradient and AdamW moments.
 *
 * Names follow the loaders (hf_load.c and the family builders, llama2c.c): linear layers carry their source
 * prefix in ptq_linear.name; norms, embeddings, positions and the class token are named here from the family
 * and the prefix the linear names reveal ("model.", "transformer.", "vit.", ...). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/train.h"

typedef struct {
    const char *emb, *pos, *cls;                 /* full names (NULL = none) */
    char norm1[96], norm2[96];                   /* printf formats with one %d (layer) */
    const char *final_norm;
    char buf[3][128];
} naming;

/* The part of `name` before `suffix` (which must end it), or -1. */
static int prefix_len(const char *name, const char *suffix) {
    size_t n = strlen(name), s = strlen(suffix);
    if (n < s || strcmp(name + n - s, suffix) != 0) return -1;
    return (int)(n - s);
}

typedef struct {
    ptq_trainable *t;
    int cap;
    int safetensors; /* names must exist in the source (m->tensors) to be trained */
    ptq_error *err;
} builder;

static int in_source(const ptq_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return 1;
    return 0;
}

/* Register w (n floats) under `name`; *gslot receives the gradient pointer after the arena is allocated
 * (recorded as an index for now). A buffer already registered (tied head) shares the earlier entry. */
typedef struct {
    float **slot;
    int param;
} slot_ref;

typedef struct {
    builder b;
    slot_ref *refs;
    int n_refs, cap_refs;
} collect;

static ptq_status add_ref(collect *c, float **slot, int param) {
    if (c->n_refs == c->cap_refs) {
        int cap = c->cap_refs ? 2 * c->cap_refs : 64;
        slot_ref *r = realloc(c->refs, (size_t)cap * sizeof *r);
        if (!r) return ptq_fail(c->b.err, PTQ_ERR_NOMEM, "cannot allocate the parameter list");
        c->refs = r;
        c->cap_refs = cap;
    }
    c->refs[c->n_refs++] = (slot_ref){slot, param};
    return PTQ_OK;
}

static ptq_status add(collect *c, const char *name, float *w, size_t n, int ndim, const int64_t *shape,
                      int transposed, int decay, float **slot) {
    ptq_trainable *t = c->b.t;
    *slot = NULL;
    if (!w) return PTQ_OK;
    for (int i = 0; i < t->n; i++)
        if (t->p[i].w == w) return add_ref(c, slot, i); /* tied */
    if (c->b.safetensors && !in_source(t->m, name)) return PTQ_OK; /* not in the file: frozen */
    if (t->n == c->b.cap) {
        int cap = c->b.cap ? 2 * c->b.cap : 64;
        ptq_param *p = realloc(t->p, (size_t)cap * sizeof *p);
        if (!p) return ptq_fail(c->b.err, PTQ_ERR_NOMEM, "cannot allocate the parameter list");
        t->p = p;
        c->b.cap = cap;
    }
    ptq_param *p = &t->p[t->n];
    memset(p, 0, sizeof *p);
    if (strlen(name) >= sizeof p->name)
        return ptq_fail(c->b.err, PTQ_ERR_FORMAT, "tensor name '%s' is too long", name);
    strcpy(p->name, name);
    p->w = w;
    p->n = n;
    p->ndim = ndim;
    for (int d = 0; d < ndim && d < 4; d++) p->shape[d] = shape[d];
    p->transposed = transposed;
    p->decay = decay;
    PTQ_TRY(add_ref(c, slot, t->n));
    t->n++;
    return PTQ_OK;
}

static ptq_status add_linear(collect *c, const ptq_linear *l, int transposed, ptq_wgrad *g) {
    char name[200];
    g->w = g->b = NULL;
    if (!l->w) return PTQ_OK;
    int64_t shape[2] = {transposed ? l->in : l->out, transposed ? l->out : l->in};
    snprintf(name, sizeof name, "%s.weight", l->name);
    PTQ_TRY(add(c, name, l->w, (size_t)l->in * l->out, 2, shape, transposed, 1, &g->w));
    if (l->b) {
        int64_t bs[1] = {l->out};
        snprintf(name, sizeof name, "%s.bias", l->name);
        PTQ_TRY(add(c, name, l->b, (size_t)l->out, 1, bs, 0, 0, &g->b));
    }
    return PTQ_OK;
}

static ptq_status add_norm(collect *c, const char *prefix, const ptq_norm *n, int dim, ptq_norm *g) {
    char name[200];
    int64_t shape[1] = {dim};
    g->w = g->b = NULL;
    if (!n->w) return PTQ_OK;
    snprintf(name, sizeof name, "%s.weight", prefix);
    PTQ_TRY(add(c, name, n->w, (size_t)dim, 1, shape, 0, 0, &g->w));
    if (n->b) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        PTQ_TRY(add(c, name, n->b, (size_t)dim, 1, shape, 0, 0, &g->b));
    }
    return PTQ_OK;
}

/* Family naming from the model's linear names. */
static ptq_status make_naming(const ptq_model *m, naming *nm, int *transposed, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    memset(nm, 0, sizeof *nm);
    *transposed = 0;
    const ptq_block *b0 = &m->blocks[0];
    int pl;
    if (!strcmp(m->format, "llama2c")) {
        nm->emb = "tok_embeddings.weight";
        snprintf(nm->norm1, sizeof nm->norm1, "layers.%%d.attention_norm");
        snprintf(nm->norm2, sizeof nm->norm2, "layers.%%d.ffn_norm");
        nm->final_norm = "norm";
        return PTQ_OK;
    }
    switch (c->arch) {
    case PTQ_ARCH_VIT:
        if (!strcmp(m->patch.name, "patch_embed.proj")) {
            nm->cls = "cls_token";
            nm->pos = "pos_embed";
            snprintf(nm->norm1, sizeof nm->norm1, "blocks.%%d.norm1");
            snprintf(nm->norm2, sizeof nm->norm2, "blocks.%%d.norm2");
            nm->final_norm = "norm";
            return PTQ_OK;
        }
        pl = prefix_len(m->patch.name, "embeddings.patch_embeddings.projection");
        if (pl < 0) break;
        snprintf(nm->buf[0], sizeof nm->buf[0], "%.*sembeddings.cls_token", pl, m->patch.name);
        snprintf(nm->buf[1], sizeof nm->buf[1], "%.*sembeddings.position_embeddings", pl, m->patch.name);
        snprintf(nm->buf[2], sizeof nm->buf[2], "%.*slayernorm", pl, m->patch.name);
        nm->cls = nm->buf[0];
        nm->pos = nm->buf[1];
        nm->final_norm = nm->buf[2];
        snprintf(nm->norm1, sizeof nm->norm1, "%.*sencoder.layer.%%d.layernorm_before", pl, m->patch.name);
        snprintf(nm->norm2, sizeof nm->norm2, "%.*sencoder.layer.%%d.layernorm_after", pl, m->patch.name);
        return PTQ_OK;
    case PTQ_ARCH_LLAMA:
        pl = prefix_len(b0->lin[PTQ_LIN_Q].name, "layers.0.self_attn.q_proj");
        if (pl < 0) break;
        snprintf(nm->buf[0], sizeof nm->buf[0], "%.*sembed_tokens.weight", pl, b0->lin[PTQ_LIN_Q].name);
        snprintf(nm->buf[2], sizeof nm->buf[2], "%.*snorm", pl, b0->lin[PTQ_LIN_Q].name);
        nm->emb = nm->buf[0];
        nm->final_norm = nm->buf[2];
        snprintf(nm->norm1, sizeof nm->norm1, "%.*slayers.%%d.input_layernorm", pl, b0->lin[PTQ_LIN_Q].name);
        snprintf(nm->norm2, sizeof nm->norm2, "%.*slayers.%%d.post_attention_layernorm", pl, b0->lin[PTQ_LIN_Q].name);
        return PTQ_OK;
    case PTQ_ARCH_GPT2:
        pl = prefix_len(b0->lin[PTQ_LIN_QKV].name, "h.0.attn.c_attn");
        if (pl < 0) break;
        *transposed = 1;
        snprintf(nm->buf[0], sizeof nm->buf[0], "%.*swte.weight", pl, b0->lin[PTQ_LIN_QKV].name);
        snprintf(nm->buf[1], sizeof nm->buf[1], "%.*swpe.weight", pl, b0->lin[PTQ_LIN_QKV].name);
        snprintf(nm->buf[2], sizeof nm->buf[2], "%.*sln_f", pl, b0->lin[PTQ_LIN_QKV].name);
        nm->emb = nm->buf[0];
        nm->pos = nm->buf[1];
        nm->final_norm = nm->buf[2];
        snprintf(nm->norm1, sizeof nm->norm1, "%.*sh.%%d.ln_1", pl, b0->lin[PTQ_LIN_QKV].name);
        snprintf(nm->norm2, sizeof nm->norm2, "%.*sh.%%d.ln_2", pl, b0->lin[PTQ_LIN_QKV].name);
        return PTQ_OK;
    case PTQ_ARCH_OPT:
        pl = prefix_len(b0->lin[PTQ_LIN_Q].name, "layers.0.self_attn.q_proj");
        if (pl < 0) break;
        snprintf(nm->buf[0], sizeof nm->buf[0], "%.*sembed_tokens.weight", pl, b0->lin[PTQ_LIN_Q].name);
        snprintf(nm->buf[1], sizeof nm->buf[1], "%.*sembed_positions.weight", pl, b0->lin[PTQ_LIN_Q].name);
        snprintf(nm->buf[2], sizeof nm->buf[2], "%.*sfinal_layer_norm", pl, b0->lin[PTQ_LIN_Q].name);
        nm->emb = nm->buf[0];
        nm->pos = nm->buf[1];
        nm->final_norm = nm->buf[2];
        snprintf(nm->norm1, sizeof nm->norm1, "%.*slayers.%%d.self_attn_layer_norm", pl, b0->lin[PTQ_LIN_Q].name);
        snprintf(nm->norm2, sizeof nm->norm2, "%.*slayers.%%d.final_layer_norm", pl, b0->lin[PTQ_LIN_Q].name);
        return PTQ_OK;
    }
    return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: cannot tell the tensor names of this %s model (unexpected layer names)",
                    m->path, ptq_arch_name(c->arch));
}

static ptq_status check_float(const ptq_model *m, const ptq_linear *l, ptq_error *err) {
    if (l->q || l->bc || l->bc_pos || !l->w)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: %s is quantized or bias-compensated; tuning needs the float model", m->path, l->name);
    return PTQ_OK;
}

static ptq_status build(collect *c) {
    ptq_trainable *t = c->b.t;
    ptq_model *m = t->m;
    const ptq_config *cf = &m->cfg;
    ptq_error *err = c->b.err;
    naming nm;
    int tr;
    if (cf->n_layers < 1 || !m->blocks) return ptq_fail(err, PTQ_ERR_ARG, "%s: the model has no blocks", m->path);
    PTQ_TRY(make_naming(m, &nm, &tr, err));
    for (int l = 0; l < cf->n_layers; l++) {
        const ptq_block *b = &m->blocks[l];
        if (b->bc || b->bc_pos)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: block %d is bias-compensated; tuning needs the float model",
                            m->path, l);
        for (int r = 0; r < PTQ_LIN_COUNT; r++)
            if (ptq_linear_present(&b->lin[r])) PTQ_TRY(check_float(m, &b->lin[r], err));
    }
    if (ptq_linear_present(&m->head)) PTQ_TRY(check_float(m, &m->head, err));

    int64_t s2[2], s3[3], s4[4];
    if (cf->arch == PTQ_ARCH_VIT) {
        s3[0] = 1, s3[1] = 1, s3[2] = cf->dim;
        PTQ_TRY(add(c, nm.cls, m->cls_token, (size_t)cf->dim, 3, s3, 0, 0, &t->g_cls));
        s3[1] = m->n_pos;
        PTQ_TRY(add(c, nm.pos, m->pos_emb, (size_t)m->n_pos * cf->dim, 3, s3, 0, 0, &t->g_pos_emb));
        char name[200];
        s4[0] = cf->dim, s4[1] = cf->in_chans, s4[2] = s4[3] = cf->patch_size;
        snprintf(name, sizeof name, "%s.weight", m->patch.name);
        PTQ_TRY(add(c, name, m->patch.w, (size_t)m->patch.in * m->patch.out, 4, s4, 0, 1, &t->g_patch.w));
        s2[0] = cf->dim;
        snprintf(name, sizeof name, "%s.bias", m->patch.name);
        PTQ_TRY(add(c, name, m->patch.b, (size_t)cf->dim, 1, s2, 0, 0, &t->g_patch.b));
    } else {
        if (!m->tok_emb) /* packed or 16-bit (--embed-bits) */
            return ptq_fail(err, PTQ_ERR_ARG, "%s: the token embeddings are not float32; tuning needs the float model",
                            m->path);
        s2[0] = cf->vocab_size, s2[1] = cf->embed_dim;
        PTQ_TRY(add(c, nm.emb, m->tok_emb, (size_t)cf->vocab_size * cf->embed_dim, 2, s2, 0, 1, &t->g_tok_emb));
        if (m->pos_emb) {
            s2[0] = m->n_pos, s2[1] = cf->dim;
            PTQ_TRY(add(c, nm.pos, m->pos_emb, (size_t)m->n_pos * cf->dim, 2, s2, 0, 0, &t->g_pos_emb));
        }
        if (ptq_linear_present(&m->proj_in)) PTQ_TRY(add_linear(c, &m->proj_in, tr, &t->g_proj_in));
    }
    for (int l = 0; l < cf->n_layers; l++) {
        ptq_block *b = &m->blocks[l];
        ptq_block_grad *g = &t->g_blocks[l];
        char pre[200];
        snprintf(pre, sizeof pre, nm.norm1, l);
        PTQ_TRY(add_norm(c, pre, &b->norm1, cf->dim, &g->norm1));
        for (int r = 0; r <= PTQ_LIN_O; r++)
            if (ptq_linear_present(&b->lin[r])) PTQ_TRY(add_linear(c, &b->lin[r], tr, &g->lin[r]));
        snprintf(pre, sizeof pre, nm.norm2, l);
        PTQ_TRY(add_norm(c, pre, &b->norm2, cf->dim, &g->norm2));
        for (int r = PTQ_LIN_GATE; r < PTQ_LIN_COUNT; r++)
            if (ptq_linear_present(&b->lin[r])) PTQ_TRY(add_linear(c, &b->lin[r], tr, &g->lin[r]));
    }
    PTQ_TRY(add_norm(c, nm.final_norm, &m->final_norm, cf->dim, &t->g_final_norm));
    if (ptq_linear_present(&m->proj_out)) PTQ_TRY(add_linear(c, &m->proj_out, tr, &t->g_proj_out));
    /* the LM head is never stored transposed (GPT-2 ties it; lm_head is an nn.Linear) */
    PTQ_TRY(add_linear(c, &m->head, 0, &t->g_head));
    return PTQ_OK;
}

static ptq_status init(ptq_model *m, ptq_trainable *t, int arena, ptq_error *err) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->g_blocks = calloc((size_t)(m->cfg.n_layers > 0 ? m->cfg.n_layers : 1), sizeof *t->g_blocks);
    if (!t->g_blocks) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate gradient views");
    collect c = {{t, 0, strcmp(m->format, "llama2c") != 0, err}, NULL, 0, 0};
    ptq_status s = build(&c);
    if (s == PTQ_OK && t->n == 0) s = ptq_fail(err, PTQ_ERR_ARG, "%s: nothing to train", m->path);
    if (s == PTQ_OK && arena) {
        for (int i = 0; i < t->n; i++) t->total += t->p[i].n;
        t->arena = ptq_alloc(t->total, 3 * sizeof(float), "gradients and AdamW moments", err);
        if (!t->arena) s = PTQ_ERR_NOMEM;
    }
    if (s == PTQ_OK && arena) {
        size_t off = 0;
        for (int i = 0; i < t->n; i++) {
            t->p[i].g = t->arena + off;
            t->p[i].m = t->arena + t->total + off;
            t->p[i].v = t->arena + 2 * t->total + off;
            off += t->p[i].n;
        }
        for (int i = 0; i < c.n_refs; i++) *c.refs[i].slot = t->p[c.refs[i].param].g;
    }
    free(c.refs);
    if (s != PTQ_OK) ptq_trainable_free(t);
    return s;
}

ptq_status ptq_trainable_init(ptq_model *m, ptq_trainable *t, ptq_error *err) {
    PTQ_TRY(ptq_model_widen_ggml(m, err)); /* a GGUF's k-quant matrices: tuning changes float weights */
    return init(m, t, 1, err);
}

ptq_status ptq_trainable_names(const ptq_model *m, ptq_trainable *t, ptq_error *err) {
    return init((ptq_model *)m, t, 0, err);
}

void ptq_trainable_free(ptq_trainable *t) {
    free(t->p);
    ptq_free(t->arena);
    free(t->g_blocks);
    memset(t, 0, sizeof *t);
}

void ptq_trainable_zero_grad(ptq_trainable *t) {
    if (t->arena) memset(t->arena, 0, t->total * sizeof(float));
}

int ptq_trainable_find(const ptq_trainable *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->p[i].name, name) == 0) return i;
    return -1;
}
