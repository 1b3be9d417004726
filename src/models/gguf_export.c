/* A ptq LLaMA or GPT-2 model -> a "llama" or "gpt2" GGUF file (gguf_export.h).
 *
 * Tensors: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up,
 * ffn_down}, output_norm, output (absent when the head is tied to the embedding); norms and biases in F32,
 * matrices in the type ptq_gguf_tensor_type picks. gpt2: token_embd, position_embd (F32, as llama.cpp's quantizer
 * leaves it), blk.N.{attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up, ffn_down} with biases, output_norm with
 * its bias, output. ggml's ne = [in, out] is ptq's row-major [out][in] as it is.
 *
 * RoPE: llama.cpp rotates pairs (2i, 2i+1) of each head (LLAMA_ROPE_TYPE_NORM). A Hugging Face model (ptq's
 * PTQ_ROPE_HALF) rotates (i, i + d/2), so its Q and K rows are reordered within each head as llama.cpp's
 * converter does: row j*d/2 + i becomes row 2i + j (the inverse of gguf_llama.c's unpermute_rows). Quantized
 * rows move whole, their blocks lying along the row. A llama2.c model (PTQ_ROPE_INTERLEAVED) is already in
 * ggml's order. */
#include "models/gguf_export.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_write.h"
#include "quant/ggml_quants.h"
#include "text/tokenizer_internal.h"

/* ---------------------------------------------------------------- file types and llama.cpp's rules */

static const struct {
    const char *name;
    ptq_gguf_ftype ft;
    uint32_t type;
} k_ftypes[] = {
    {"F32", PTQ_FT_F32, PTQ_GGML_F32},        {"F16", PTQ_FT_F16, PTQ_GGML_F16},
    {"Q8_0", PTQ_FT_Q8_0, PTQ_GGML_Q8_0},     {"Q6_K", PTQ_FT_Q6_K, PTQ_GGML_Q6_K},
    {"Q5_K_M", PTQ_FT_Q5_K_M, PTQ_GGML_Q5_K}, {"Q5_K_S", PTQ_FT_Q5_K_S, PTQ_GGML_Q5_K},
    {"Q5_1", PTQ_FT_Q5_1, PTQ_GGML_Q5_1},     {"Q5_0", PTQ_FT_Q5_0, PTQ_GGML_Q5_0},
    {"Q4_K_M", PTQ_FT_Q4_K_M, PTQ_GGML_Q4_K}, {"Q4_K_S", PTQ_FT_Q4_K_S, PTQ_GGML_Q4_K},
    {"Q4_1", PTQ_FT_Q4_1, PTQ_GGML_Q4_1},     {"Q4_0", PTQ_FT_Q4_0, PTQ_GGML_Q4_0},
    {"Q3_K_L", PTQ_FT_Q3_K_L, PTQ_GGML_Q3_K}, {"Q3_K_M", PTQ_FT_Q3_K_M, PTQ_GGML_Q3_K},
    {"Q3_K_S", PTQ_FT_Q3_K_S, PTQ_GGML_Q3_K}, {"Q2_K", PTQ_FT_Q2_K, PTQ_GGML_Q2_K},
};
#define N_FTYPES (sizeof k_ftypes / sizeof *k_ftypes)

int ptq_gguf_ftype_parse(const char *name, ptq_gguf_ftype *out) {
    char up[16];
    size_t n = strlen(name);
    if (n >= sizeof up) return -1;
    for (size_t i = 0; i <= n; i++) up[i] = (char)toupper((unsigned char)name[i]);
    /* llama-quantize's aliases */
    if (!strcmp(up, "Q3_K")) strcpy(up, "Q3_K_M");
    if (!strcmp(up, "Q4_K")) strcpy(up, "Q4_K_M");
    if (!strcmp(up, "Q5_K")) strcpy(up, "Q5_K_M");
    for (size_t i = 0; i < N_FTYPES; i++)
        if (!strcmp(up, k_ftypes[i].name)) {
            *out = k_ftypes[i].ft;
            return 0;
        }
    return -1;
}

const char *ptq_gguf_ftype_name(ptq_gguf_ftype ft) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (k_ftypes[i].ft == ft) return k_ftypes[i].name;
    return "?";
}

const char *ptq_gguf_ftype_list(void) {
    return "F32, F16, Q8_0, Q6_K, Q5_K_M (= Q5_K), Q5_K_S, Q5_1, Q5_0, Q4_K_M (= Q4_K), Q4_K_S, Q4_1, Q4_0, "
           "Q3_K_L, Q3_K_M (= Q3_K), Q3_K_S, Q2_K";
}

uint32_t ptq_gguf_ftype_default(ptq_gguf_ftype ft) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (k_ftypes[i].ft == ft) return k_ftypes[i].type;
    return PTQ_GGML_F32;
}

static int block_of(uint32_t type) {
    const ptq_ggml_type_info *ti = ptq_ggml_type_info_get(type);
    return ti ? ti->block : 1;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers, and every third in between */
static int more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* llama_tensor_get_type_impl for the file types above and a dense (no experts) llama model */
static uint32_t mix_rule(const ptq_gguf_type_ctx *c, ptq_gguf_tensor_kind kind, int i, int64_t ncols, uint32_t t) {
    const ptq_gguf_ftype ft = c->ftype;
    const int n = c->n_layers;
    if (kind == PTQ_GT_OUTPUT || (c->tied && kind == PTQ_GT_TOKEN_EMBD)) {
        if (ncols % block_of(t) != 0) return PTQ_GGML_Q8_0;
        return t != PTQ_GGML_Q8_0 ? PTQ_GGML_Q6_K : t;
    }
    switch (kind) {
    case PTQ_GT_ATTN_QKV: /* category_is_attn_v: llama.cpp's attn_qkv rules never run */
    case PTQ_GT_ATTN_V:
        if (ft == PTQ_FT_Q2_K) return c->n_gqa >= 4 ? PTQ_GGML_Q4_K : PTQ_GGML_Q3_K;
        if (ft == PTQ_FT_Q3_K_M) return i < 2 ? PTQ_GGML_Q5_K : PTQ_GGML_Q4_K;
        if (ft == PTQ_FT_Q3_K_L) return PTQ_GGML_Q5_K;
        if ((ft == PTQ_FT_Q4_K_M || ft == PTQ_FT_Q5_K_M) && more_bits(i, n)) return PTQ_GGML_Q6_K;
        if (ft == PTQ_FT_Q4_K_S && i < 4) return PTQ_GGML_Q5_K;
        return t;
    case PTQ_GT_FFN_DOWN:
        if (ft == PTQ_FT_Q2_K) return PTQ_GGML_Q3_K;
        if (ft == PTQ_FT_Q3_K_M) return i < n / 16 ? PTQ_GGML_Q5_K : PTQ_GGML_Q4_K;
        if (ft == PTQ_FT_Q3_K_L) return PTQ_GGML_Q5_K;
        if ((ft == PTQ_FT_Q4_K_M || ft == PTQ_FT_Q5_K_M) && more_bits(i, n)) return PTQ_GGML_Q6_K;
        if (ft == PTQ_FT_Q4_K_S && i < n / 8) return PTQ_GGML_Q5_K;
        return t;
    case PTQ_GT_ATTN_OUTPUT:
        if (ft == PTQ_FT_Q2_K) return PTQ_GGML_Q3_K;
        if (ft == PTQ_FT_Q3_K_M) return PTQ_GGML_Q4_K;
        if (ft == PTQ_FT_Q3_K_L) return PTQ_GGML_Q5_K;
        return t;
    default: return t;
    }
}

/* tensor_type_fallback: a type whose block divides the row */
static uint32_t fallback(uint32_t t, int64_t ncols) {
    if (ncols % block_of(t) == 0) return t;
    switch (t) {
    case PTQ_GGML_Q2_K:
    case PTQ_GGML_Q3_K: t = PTQ_GGML_Q4_0; break;
    case PTQ_GGML_Q4_K: t = PTQ_GGML_Q5_0; break;
    case PTQ_GGML_Q5_K: t = PTQ_GGML_Q5_1; break;
    case PTQ_GGML_Q6_K: t = PTQ_GGML_Q8_0; break;
    default: break;
    }
    return ncols % block_of(t) == 0 ? t : PTQ_GGML_F16;
}

uint32_t ptq_gguf_tensor_type(const ptq_gguf_type_ctx *c, ptq_gguf_tensor_kind kind, int layer, int64_t ncols) {
    uint32_t t = ptq_gguf_ftype_default(c->ftype);
    if (t == PTQ_GGML_F32 || t == PTQ_GGML_F16) return t; /* not quantized: no rules, no fallback */
    if (!c->pure) t = mix_rule(c, kind, layer, ncols, t);
    return fallback(t, ncols);
}

/* ---------------------------------------------------------------- the writer side */

typedef struct {
    const ptq_model *m;
    const ptq_gguf_export_opts *o;
    ptq_gguf_writer *w;
    ptq_gguf_type_ctx tc;
    const char *path;
    ptq_gguf_export_stats st;
} ex;

/* Row r of a permuted Q/K matrix comes from source row src_row(r): within each head of d rows, row 2i + j
 * holds HF row j*d/2 + i. */
static int src_row(int r, int head_dim) {
    int h = r / head_dim, k = r % head_dim, i = k / 2, j = k % 2;
    return h * head_dim + j * (head_dim / 2) + i;
}

static int needs_perm(const ptq_model *m, ptq_lin_role role) {
    return m->cfg.rope == PTQ_ROPE_HALF && (role == PTQ_LIN_Q || role == PTQ_LIN_K);
}

/* rows of `row_bytes` bytes reordered by src_row (perm) or copied */
static void *reorder(const void *src, int rows, size_t row_bytes, int perm, int head_dim, const char *what,
                     ptq_error *err) {
    unsigned char *dst = ptq_alloc((size_t)rows, row_bytes, what, err);
    if (!dst) return NULL;
    for (int r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * row_bytes, (const unsigned char *)src + (size_t)(perm ? src_row(r, head_dim) : r) * row_bytes,
               row_bytes);
    return dst;
}

/* A matrix [rows][cols] in `type`: from `pre` (already quantized bytes) or RTN from floats. */
static ptq_status add_matrix(ex *x, const char *name, const float *w, const void *pre, int rows, int cols,
                             uint32_t type, int perm, ptq_error *err) {
    size_t rb = ptq_ggml_row_bytes(type, cols);
    if (!rb) {
        char tn[24];
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: tensor \"%s\": rows of %d values cannot be stored as %s",
                        x->path, name, cols, ptq_ggml_type_name(type, tn, sizeof tn));
    }
    void *q = NULL;
    if (!pre) {
        q = ptq_alloc((size_t)rows, rb, name, err);
        if (!q) return PTQ_ERR_NOMEM;
        ptq_status s = ptq_ggml_quantize_rows(type, w, q, rows, cols, err);
        if (s != PTQ_OK) {
            ptq_free(q);
            return ptq_fail_context(err, "%s: tensor \"%s\"", x->path, name);
        }
        pre = q;
    }
    void *ordered = reorder(pre, rows, rb, perm, x->m->cfg.head_dim, name, err);
    ptq_free(q);
    if (!ordered) return PTQ_ERR_NOMEM;
    const int64_t ne[2] = {cols, rows};
    x->st.weights += (int64_t)rows * cols;
    x->st.weight_bytes += (int64_t)rows * (int64_t)rb;
    ptq_status s = ptq_gguf_add_tensor(x->w, name, type, 2, ne, ordered, (size_t)rows * rb, err);
    ptq_free(ordered);
    return s;
}

static ptq_status add_f32(ex *x, const char *name, const float *v, int n, ptq_error *err) {
    const int64_t ne[1] = {n};
    return ptq_gguf_add_tensor(x->w, name, PTQ_GGML_F32, 1, ne, v, (size_t)n * sizeof(float), err);
}

typedef struct {
    ptq_lin_role role;
    const char *name;
    ptq_gguf_tensor_kind kind;
} lin_entry;

static int is_gpt2(const ptq_model *m) { return m->cfg.arch == PTQ_ARCH_GPT2; }

/* llama's block matrices */
static const lin_entry k_lin[] = {
    {PTQ_LIN_Q, "attn_q", PTQ_GT_ATTN_Q},         {PTQ_LIN_K, "attn_k", PTQ_GT_ATTN_K},
    {PTQ_LIN_V, "attn_v", PTQ_GT_ATTN_V},         {PTQ_LIN_O, "attn_output", PTQ_GT_ATTN_OUTPUT},
    {PTQ_LIN_GATE, "ffn_gate", PTQ_GT_FFN_GATE},  {PTQ_LIN_UP, "ffn_up", PTQ_GT_FFN_UP},
    {PTQ_LIN_DOWN, "ffn_down", PTQ_GT_FFN_DOWN},
};

/* gpt2's block matrices, in llama.cpp's order */
static const lin_entry k_lin_gpt2[] = {
    {PTQ_LIN_QKV, "attn_qkv", PTQ_GT_ATTN_QKV}, {PTQ_LIN_O, "attn_output", PTQ_GT_ATTN_OUTPUT},
    {PTQ_LIN_UP, "ffn_up", PTQ_GT_FFN_UP},      {PTQ_LIN_DOWN, "ffn_down", PTQ_GT_FFN_DOWN},
};
static const lin_entry *lin_table(const ptq_model *m) { return is_gpt2(m) ? k_lin_gpt2 : k_lin; }
static size_t n_lin(const ptq_model *m) {
    return is_gpt2(m) ? sizeof k_lin_gpt2 / sizeof *k_lin_gpt2 : sizeof k_lin / sizeof *k_lin;
}

/* The bias llama.cpp adds after the matrix: the layer's bias + its channel BC (+ the block-output BC for
 * ffn_down); NULL into *out when there is none. */
static ptq_status bias_of(const ptq_block *b, const ptq_linear *lin, int is_down, float **out, ptq_error *err) {
    *out = NULL;
    const float *parts[3] = {lin->b, lin->bc, is_down ? b->bc : NULL};
    if (!parts[0] && !parts[1] && !parts[2]) return PTQ_OK;
    float *v = ptq_alloc((size_t)lin->out, sizeof(float), lin->name, err);
    if (!v) return PTQ_ERR_NOMEM;
    for (int o = 0; o < lin->out; o++) {
        double s = 0;
        for (int k = 0; k < 3; k++) s += parts[k] ? parts[k][o] : 0;
        v[o] = (float)s;
    }
    *out = v;
    return PTQ_OK;
}

static ptq_status check_exportable(const ptq_model *m, const char *path, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    if (is_gpt2(m)) {
        /* llama.cpp's gpt2 graph: LayerNorm, pre-norm, ggml_gelu (tanh approximation), learned positions */
        if (!c->causal || c->norm != PTQ_NORM_LAYER || !c->pre_norm || c->gated_mlp || c->rope != PTQ_ROPE_NONE ||
            !m->pos_emb || c->pos_offset || m->n_pos < c->max_seq || m->proj_in.w || m->proj_out.w)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                            "%s: GGUF export writes GPT-2 models as llama.cpp's gpt2 architecture (LayerNorm, learned "
                            "positions, GELU MLP); this model differs",
                            m->path);
        if (c->act != PTQ_ACT_GELU_TANH)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                            "%s: llama.cpp's gpt2 runs the tanh-approximated GELU (gelu_new); this model's activation "
                            "differs",
                            m->path);
    } else if (c->arch != PTQ_ARCH_LLAMA || !c->causal || c->norm != PTQ_NORM_RMS || !c->pre_norm || !c->gated_mlp ||
               c->act != PTQ_ACT_SILU || c->rope == PTQ_ROPE_NONE || m->pos_emb || m->proj_in.w || m->proj_out.w) {
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: GGUF export writes LLaMA-architecture (RMSNorm, SwiGLU, RoPE) and GPT-2 language models; "
                        "this model is neither",
                        m->path);
    }
    if (c->head_dim * c->n_heads != c->dim)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: heads of %d x %d do not make the width %d (llama.cpp needs it)",
                        m->path, c->n_heads, c->head_dim, c->dim);
    if (m->head.bc || m->head.b)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: Bias Compensation on the logits (--bc-scope logits) cannot be carried into a GGUF: "
                        "llama.cpp's %s architecture has no output bias. Export without it",
                        path, is_gpt2(m) ? "gpt2" : "llama");
    for (int l = 0; l < c->n_layers; l++) {
        const ptq_block *b = &m->blocks[l];
        if (b->attn_bits)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: attention quantization (--quant-attn) has no GGUF form", path);
        if (b->bc_pos)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                            "%s: block %d has position-shaped Bias Compensation, which a bias cannot carry (use "
                            "--bc-shape channel)",
                            path, l);
        if (ptq_linear_present(&b->lin[PTQ_LIN_QKV]) != is_gpt2(m))
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: block %d: %s", path, l,
                            is_gpt2(m) ? "a GPT-2 block needs its fused QKV layer"
                                       : "fused QKV layers are exported only for GPT-2");
        for (size_t k = 0; k < n_lin(m); k++) {
            const ptq_linear *lin = &b->lin[lin_table(m)[k].role];
            if (!lin->w)
                return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                                "%s: %s has no float weights (it is quantized: to ptq's own grids, or as a GGUF's "
                                "Q4_0/Q5_0/Q8_0 blocks); GGUF export quantizes into ggml's types from a float model",
                                path, lin->name);
            if (lin->q || lin->aq || lin->i8)
                return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                                "%s: %s is quantized to ptq's own grids or has an activation quantizer; GGUF export "
                                "quantizes into ggml's types from the float model (ptq quantize --format gguf)",
                                path, lin->name);
            if (lin->bc_pos)
                return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                                "%s: %s has position-shaped Bias Compensation, which a bias cannot carry", path,
                                lin->name);
        }
    }
    /* after the blocks: a quantized model is told so by its first matrix, rather than by its table */
    if (m->tok_emb_q || m->tok_emb_h || !m->tok_emb)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: the token embeddings are packed or 16-bit (--embed-bits, or a GGUF "
                        "input's Q4_0/Q5_0/Q8_0 token_embd); GGUF export takes them float32 and gives them llama.cpp's "
                        "type", m->path);
    if (m->head.q || m->head.aq || m->head.bc_pos)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: the output layer is quantized or compensated; cannot export",
                        m->path);
    return PTQ_OK;
}

static ptq_status put_tokenizer(ex *x, ptq_error *err) {
    ptq_tok_spec s;
    PTQ_TRY(ptq_tokenizer_get_spec(x->o->tokenizer, &s, err));
    ptq_gguf_writer *w = x->w;
    ptq_status st = PTQ_OK;
    if (s.n_tokens != x->m->cfg.vocab_size)
        st = ptq_fail(err, PTQ_ERR_CONFIG, "%s: the tokenizer has %d tokens but the model's vocabulary is %d", x->path,
                      s.n_tokens, x->m->cfg.vocab_size);
#define T(call) \
    if (st == PTQ_OK) st = (call)
    T(ptq_gguf_set_string(w, "tokenizer.ggml.model", s.model == PTQ_TOK_SPM ? "llama" : "gpt2", err));
    /* an unnamed pre-tokenizer is the model's default: GPT-2's regex for byte-level BPE (text/gpt2_bpe.c) */
    T(ptq_gguf_set_string(w, "tokenizer.ggml.pre", s.pre[0] ? s.pre : s.model == PTQ_TOK_BYTE_BPE ? "gpt-2" : "default",
                          err));
    T(ptq_gguf_set_array(w, "tokenizer.ggml.tokens", PTQ_GGUF_STRING, s.tokens, (uint64_t)s.n_tokens, err));
    if (s.scores) T(ptq_gguf_set_array(w, "tokenizer.ggml.scores", PTQ_GGUF_F32, s.scores, (uint64_t)s.n_tokens, err));
    if (s.types) T(ptq_gguf_set_array(w, "tokenizer.ggml.token_type", PTQ_GGUF_I32, s.types, (uint64_t)s.n_tokens, err));
    if (s.n_merges || s.model == PTQ_TOK_BYTE_BPE) /* llama.cpp refuses a byte-level BPE without the key */
        T(ptq_gguf_set_array(w, "tokenizer.ggml.merges", PTQ_GGUF_STRING, s.merges, (uint64_t)s.n_merges, err));
    if (s.bos >= 0) T(ptq_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s.bos, err));
    if (s.eos >= 0) T(ptq_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)s.eos, err));
    if (s.unk >= 0) T(ptq_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)s.unk, err));
    if (s.pad >= 0) T(ptq_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)s.pad, err));
    T(ptq_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", s.add_bos, err));
    T(ptq_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", s.add_eos, err));
    if (s.model == PTQ_TOK_SPM) T(ptq_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", s.add_space_prefix, err));
#undef T
    ptq_tok_spec_free(&s);
    return st;
}

static ptq_status put_metadata(ex *x, ptq_error *err) {
    const ptq_config *c = &x->m->cfg;
    ptq_gguf_writer *w = x->w;
    const char *name = x->o->name;
    if (!name) {
        const char *slash = strrchr(x->m->path, '/');
        name = slash && slash[1] ? slash + 1 : x->m->path;
    }
    const char *arch = is_gpt2(x->m) ? "gpt2" : "llama";
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof k, "%s." suffix, arch), k)
    PTQ_TRY(ptq_gguf_set_string(w, "general.architecture", arch, err));
    PTQ_TRY(ptq_gguf_set_string(w, "general.name", name, err));
    PTQ_TRY(ptq_gguf_set_u32(w, "general.file_type", (uint32_t)x->o->ftype, err));
    PTQ_TRY(ptq_gguf_set_u32(w, "general.quantization_version", 2, err)); /* GGML_QNT_VERSION */
    PTQ_TRY(ptq_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->max_seq, err));
    PTQ_TRY(ptq_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->dim, err));
    PTQ_TRY(ptq_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layers, err));
    PTQ_TRY(ptq_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->hidden_dim, err));
    PTQ_TRY(ptq_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_heads, err));
    if (is_gpt2(x->m)) {
        PTQ_TRY(ptq_gguf_set_f32(w, KEY("attention.layer_norm_epsilon"), c->norm_eps, err));
    } else {
        PTQ_TRY(ptq_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim, err));
        PTQ_TRY(ptq_gguf_set_f32(w, KEY("rope.freq_base"), c->rope_theta, err));
        PTQ_TRY(ptq_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_heads, err));
        PTQ_TRY(ptq_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps, err));
    }
    PTQ_TRY(ptq_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size, err));
#undef KEY
    return put_tokenizer(x, err);
}

/* A norm's weight, and for gpt2 its bias (zeros when the model has none: llama.cpp requires it) */
static ptq_status add_norm(ex *x, const char *prefix, const ptq_norm *n, ptq_error *err) {
    const int dim = x->m->cfg.dim;
    char nm[64];
    snprintf(nm, sizeof nm, "%s.weight", prefix);
    PTQ_TRY(add_f32(x, nm, n->w, dim, err));
    if (!is_gpt2(x->m)) return PTQ_OK;
    float *zeros = n->b ? NULL : ptq_alloc((size_t)dim, sizeof(float), prefix, err);
    if (!n->b && !zeros) return PTQ_ERR_NOMEM;
    snprintf(nm, sizeof nm, "%s.bias", prefix);
    ptq_status s = add_f32(x, nm, n->b ? n->b : zeros, dim, err);
    ptq_free(zeros);
    return s;
}

static ptq_status put_linear(ex *x, int l, const lin_entry *e, ptq_error *err) {
    const ptq_model *m = x->m;
    const ptq_block *b = &m->blocks[l];
    const ptq_linear *lin = &b->lin[e->role];
    char nm[64];
    int perm = needs_perm(m, e->role);
    uint32_t t = ptq_gguf_tensor_type(&x->tc, e->kind, l, lin->in);
    if (lin->ggml && lin->ggml_type != t) {
        char a[24], c[24];
        return ptq_fail(err, PTQ_ERR_ARG, "%s: %s was quantized into %s, but file type %s puts it in %s", x->path,
                        lin->name, ptq_ggml_type_name(lin->ggml_type, a, sizeof a), ptq_gguf_ftype_name(x->o->ftype),
                        ptq_ggml_type_name(t, c, sizeof c));
    }
    snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, e->name);
    /* lin->ggml: GPTQ (or RTN) into the type by the quantization pipeline */
    PTQ_TRY(add_matrix(x, nm, lin->w, lin->ggml, lin->out, lin->in, t, perm, err));
    float *bias = NULL;
    PTQ_TRY(bias_of(b, lin, e->role == PTQ_LIN_DOWN, &bias, err));
    if (!bias && is_gpt2(m)) { /* llama.cpp's gpt2 requires every bias */
        bias = ptq_alloc((size_t)lin->out, sizeof(float), nm, err);
        if (!bias) return PTQ_ERR_NOMEM;
    }
    if (!bias) return PTQ_OK;
    float *ordered = reorder(bias, lin->out, sizeof(float), perm, m->cfg.head_dim, nm, err);
    ptq_free(bias);
    if (!ordered) return PTQ_ERR_NOMEM;
    snprintf(nm, sizeof nm, "blk.%d.%s.bias", l, e->name);
    ptq_status s = add_f32(x, nm, ordered, lin->out, err);
    ptq_free(ordered);
    return s;
}

static ptq_status put_tensors(ex *x, ptq_error *err) {
    const ptq_model *m = x->m;
    const ptq_config *c = &m->cfg;
    char nm[64];
    uint32_t t = ptq_gguf_tensor_type(&x->tc, PTQ_GT_TOKEN_EMBD, 0, c->dim);
    PTQ_TRY(add_matrix(x, "token_embd.weight", m->tok_emb, NULL, c->vocab_size, c->dim, t, 0, err));
    if (is_gpt2(m)) { /* llama.cpp's quantizer leaves position embeddings in float32 */
        const int64_t ne[2] = {c->dim, c->max_seq};
        PTQ_TRY(ptq_gguf_add_tensor(x->w, "position_embd.weight", PTQ_GGML_F32, 2, ne, m->pos_emb,
                                    (size_t)c->max_seq * (size_t)c->dim * sizeof(float), err));
    }
    const lin_entry *tab = lin_table(m);
    for (int l = 0; l < c->n_layers; l++) {
        const ptq_block *b = &m->blocks[l];
        snprintf(nm, sizeof nm, "blk.%d.attn_norm", l);
        PTQ_TRY(add_norm(x, nm, &b->norm1, err));
        for (size_t k = 0; k < n_lin(m); k++) {
            if (tab[k].role == (is_gpt2(m) ? PTQ_LIN_UP : PTQ_LIN_GATE)) { /* llama.cpp's order: ffn_norm first */
                snprintf(nm, sizeof nm, "blk.%d.ffn_norm", l);
                PTQ_TRY(add_norm(x, nm, &b->norm2, err));
            }
            PTQ_TRY(put_linear(x, l, &tab[k], err));
        }
    }
    PTQ_TRY(add_norm(x, "output_norm", &m->final_norm, err));
    if (!x->tc.tied) {
        t = ptq_gguf_tensor_type(&x->tc, PTQ_GT_OUTPUT, 0, c->dim);
        PTQ_TRY(add_matrix(x, "output.weight", m->head.w, NULL, c->vocab_size, c->dim, t, 0, err));
    }
    return PTQ_OK;
}

ptq_status ptq_gguf_export(const ptq_model *m, const char *path, const ptq_gguf_export_opts *o,
                           ptq_gguf_export_stats *stats, ptq_error *err) {
    if (!m || !path || !o) return ptq_fail(err, PTQ_ERR_ARG, "ptq_gguf_export: NULL argument");
    if (!o->tokenizer)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: a GGUF file for llama.cpp needs the model's tokenizer", path);
    if (!strcmp(ptq_gguf_ftype_name(o->ftype), "?"))
        return ptq_fail(err, PTQ_ERR_ARG, "%s: unknown GGUF file type %d (expected one of %s)", path, (int)o->ftype,
                        ptq_gguf_ftype_list());
    PTQ_TRY(check_exportable(m, path, err));
    ex x = {m, o, NULL, {o->ftype, o->pure, m->cfg.n_layers, m->cfg.n_heads / m->cfg.n_kv_heads,
                         m->head.w == m->tok_emb || !m->head.w},
            path, {0, 0, 0}};
    PTQ_TRY(ptq_gguf_writer_new(&x.w, err));
    ptq_status s = put_metadata(&x, err);
    if (s == PTQ_OK) s = put_tensors(&x, err);
    const char *inputs[1] = {m->path};
    if (s == PTQ_OK) s = ptq_gguf_writer_save(x.w, path, inputs, 1, err);
    ptq_gguf_writer_free(x.w);
    x.st.bits_per_weight = x.st.weights ? 8.0 * (double)x.st.weight_bytes / (double)x.st.weights : 0;
    if (stats && s == PTQ_OK) *stats = x.st;
    return s;
}
