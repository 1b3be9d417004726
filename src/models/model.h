/* The in-memory model: one generic pre-/post-norm transformer that all four families map onto.
 *
 * A family (llama.c, gpt2.c, opt.c, vit.c) only fills this struct from its file format and
 * tensor names; the forward pass (forward.c), the capture API and every quantization method
 * work on it without knowing which family it came from.
 */
#ifndef PTQ_MODELS_MODEL_H
#define PTQ_MODELS_MODEL_H

#include <stdint.h>

#include "io/preprocess.h"

#include "ptq.h"

/* Limits on ViT geometry read from files, so that its sizes fit in int everywhere. */
#define PTQ_VIT_MAX_TOKENS (1 << 24)   /* patches + class token */
#define PTQ_VIT_MAX_PATCH_IN (1 << 24) /* in_chans * patch_size^2: the patch embedding's inputs */

typedef enum { PTQ_NORM_LAYER = 0, PTQ_NORM_RMS } ptq_norm_kind;
typedef enum { PTQ_ACT_GELU = 0, PTQ_ACT_GELU_TANH, PTQ_ACT_RELU, PTQ_ACT_SILU } ptq_act_kind;
/* RoPE pairing: llama2.c / Meta rotate (2i, 2i+1); Hugging Face / GPT-NeoX rotate (i, i+d/2). */
typedef enum { PTQ_ROPE_NONE = 0, PTQ_ROPE_INTERLEAVED, PTQ_ROPE_HALF } ptq_rope_kind;

typedef struct ptq_norm {
    float *w; /* [dim] */
    float *b; /* [dim] or NULL (RMS norm) */
} ptq_norm;

struct ptq_qweight;  /* kernels/qweight.h */
struct ptq_i8weight; /* kernels/i8gemm.h */
struct ptq_actq;     /* quant/actq.h */

/* A linear layer y = x W^T + b, W row-major [out][in], held as float weights (w) and/or packed
 * low-bit weights (q, owned by the layer). When q is set the runtime uses it. */
typedef struct ptq_linear {
    char name[96]; /* source tensor prefix, e.g. "model.layers.0.self_attn.q_proj" */
    int in, out;
    float *w;      /* float weights, or NULL */
    float *b;      /* [out] or NULL */
    struct ptq_qweight *q;
    struct ptq_actq *aq;       /* activation quantizer on the input (owned), or NULL */
    struct ptq_i8weight *i8;   /* the same weights as int8 codes for integer execution (owned), or NULL */
    /* Bias Compensation (runtime path only; ptq_model_save folds bc into b) */
    float *bc;     /* per output channel [out], or NULL */
    float *bc_pos; /* per position x channel [bc_len][out], or NULL: applied by absolute position */
    int bc_len;
    /* Quantized into a ggml type (ptq quantize --format gguf): the matrix's bytes in ggml_type (out rows of in
       values) and their dequantized values wq [out][in], which the runtime path uses in place of w. Both
       model-owned; written into the GGUF by ptq_gguf_export.
       Loaded from a GGUF in a type ptq's packed format cannot hold (Q4_1, Q5_1, the k-quants): ggml set, w and
       wq NULL, and the runtime multiplies with the blocks themselves (kernels/ggml_gemm.h; ptq_linear_is_ggml). */
    void *ggml;
    uint32_t ggml_type;
    float *wq;
    int ggml_act8; /* ggml blocks only: int8 activations (ptq_model_set_act8; kernels/ggml_gemm.h) */
    /* Streamed weights (ptq_load_options.stream_weights): the source tensor in the model's mapping, converted
       into w by ptq_linear_materialize and freed again by ptq_linear_release (materialize.c). */
    const struct ptq_st_tensor *src;
} ptq_linear;

/* Run on its ggml blocks (a GGUF's k-quant matrix as loaded): no float weights until ptq_model_widen_ggml. */
static inline int ptq_linear_is_ggml(const ptq_linear *l) { return l->ggml && !l->wq && !l->w; }

static inline int ptq_linear_present(const ptq_linear *l) {
    return l->w != NULL || l->q != NULL || l->src != NULL || ptq_linear_is_ggml(l);
}

/* Roles of the linear layers in a block, in forward order. A block uses either QKV (fused)
 * or Q, K, V; GATE only with a gated MLP (out = DOWN(act(GATE x) * UP x)), else
 * out = DOWN(act(UP x)). */
typedef enum {
    PTQ_LIN_QKV = 0,
    PTQ_LIN_Q,
    PTQ_LIN_K,
    PTQ_LIN_V,
    PTQ_LIN_O,
    PTQ_LIN_GATE,
    PTQ_LIN_UP,
    PTQ_LIN_DOWN,
    PTQ_LIN_COUNT
} ptq_lin_role;

typedef struct ptq_block {
    ptq_norm norm1; /* before attention (pre-norm) or after the attention residual (post-norm) */
    ptq_norm norm2; /* before the MLP (pre-norm) or after the MLP residual (post-norm) */
    ptq_linear lin[PTQ_LIN_COUNT];
    /* Quantization of both attention matrix products (runtime path only; 0 bits = off): q, k (after RoPE)
       and v symmetric per tensor with steps attn_scale[0..2], the softmax probabilities on 2^bits - 1
       uniform steps of [0, 1]. */
    int attn_bits;
    float attn_scale[3];
    /* Bias Compensation on the block output (runtime path only) */
    float *bc;     /* [dim] or NULL; saved folded into DOWN's bias (pre-norm) or norm2's bias (post-norm) */
    float *bc_pos; /* [bc_len][dim] or NULL */
    int bc_len;
} ptq_block;

typedef struct ptq_config {
    ptq_arch arch;
    int causal;        /* language models: 1; ViT: 0 */
    int dim;           /* residual width */
    int n_layers, n_heads, n_kv_heads, head_dim;
    int hidden_dim;    /* MLP width */
    int vocab_size;    /* LM vocabulary, or ViT classes */
    int max_seq;       /* LM context; ViT tokens per image (patches + cls) */
    ptq_norm_kind norm;
    float norm_eps;
    int pre_norm;      /* 1: x + f(norm(x)); 0: norm(x + f(x)) (OPT-350M style) */
    ptq_act_kind act;
    int gated_mlp;
    ptq_rope_kind rope;
    float rope_theta;
    int pos_offset;    /* learned positions: row index = position + offset (OPT: 2) */
    int embed_dim;     /* token embedding width (OPT project_in/out), = dim otherwise */
    int bos_id, eos_id;
    /* ViT (at most PTQ_VIT_MAX_TOKENS tokens, in_chans * patch_size^2 <= PTQ_VIT_MAX_PATCH_IN) */
    int img_size, patch_size, in_chans;
    int cls_token;
    float mean[4], std[4];  /* config.json's normalisation (timm pretrained_cfg, or image_mean/image_std) */
    float crop_pct;
    int config_norm;        /* 1: config.json names mean/std itself (not a default) */
    ptq_preprocess prep;    /* prep.hf: preprocessor_config.json's pipeline, which then replaces mean/std/crop_pct */
} ptq_config;

/* One tensor of the source file, for `ptq inspect`. */
typedef struct ptq_tensor_entry {
    char name[128];
    char dtype[8];
    int ndim;
    int64_t shape[4];
} ptq_tensor_entry;

struct ptq_model {
    ptq_config cfg;
    char path[4096];
    char format[32];          /* "llama2c", "safetensors" */

    float *tok_emb;           /* LM: [vocab][embed_dim] */
    const struct ptq_st_tensor *tok_emb_src; /* streamed: tok_emb still in the mapping (stored dtype; tok_emb NULL):
                                                rows converted on lookup (materialize.c) */
    float *pos_emb;           /* learned positions [n_pos][dim] (+cls for ViT), or NULL */
    int n_pos;                /* rows of pos_emb */
    ptq_linear proj_in;       /* OPT: embed_dim -> dim (optional) */
    ptq_linear proj_out;      /* OPT: dim -> embed_dim (optional) */
    ptq_linear patch;         /* ViT patch embedding as a linear over flattened (c, py, px) patches */
    float *cls_token;         /* ViT: [dim] */
    ptq_block *blocks;        /* [n_layers] */
    ptq_norm final_norm;      /* w NULL when absent (OPT post-norm) */
    ptq_linear head;          /* LM head (may share tok_emb) or classifier */
    /* Token embeddings held other than as float32 (quant/head_embed.c): packed codes (shared with head.q when
       the head is tied to them), or f16/bf16 values; a lookup (ptq_embed_row) expands one row. tok_emb is then
       NULL in a loaded model (a model being quantized keeps it as the float source). */
    struct ptq_qweight *tok_emb_q;
    uint16_t *tok_emb_h;      /* [vocab][embed_dim], model-owned */
    const void *tok_emb_ggml; /* a GGUF's untied table in a k-quant (or Q4_1 / Q5_1) type: vocab rows of ggml blocks,
                                 model-owned; a lookup dequantizes one row */
    uint32_t tok_emb_ggml_type;
    int tok_emb_dt, head_dt;  /* ptq_dtype of tok_emb / head.weight in a .ptq file: PTQ_DT_F32 (0), F16 or BF16 */

    struct ptq_safetensors *src_st; /* the mapped source of streamed weights (owned), or NULL */
    /* A read-only mapping of the .ptq file that tok_emb_q's arrays point into (owned, unmapped by ptq_model_free;
       models/embed_map.h), or NULL: those pages are PROT_READ, so anything that changes tok_emb_q in place calls
       ptq_embed_unmap first. */
    struct ptq_mmap *map;

    /* every buffer this model owns, freed by ptq_model_free */
    void **owned;
    int n_owned, cap_owned;

    ptq_tensor_entry *tensors;
    int n_tensors;

    /* how the block linears were quantized (method "" = float) */
    struct {
        char method[16];
        int wbits, group, sym, act_order;
        int bc_scope, bc_shape, bc_mode;
        int abits, act_calib, noisyquant;
        char calib_desc[256];
        uint64_t calib_hash;
    } quant;
};

/* Take ownership of a buffer allocated with ptq_alloc. */
ptq_status ptq_model_own(ptq_model *m, void *p, ptq_error *err);
/* Allocate n floats owned by the model. */
/* Frees a linear's quantized weights, int8 form and activation quantizer (back to its float weights). */
void ptq_linear_drop_quant(ptq_linear *l);
float *ptq_model_floats(ptq_model *m, size_t n, const char *what, ptq_error *err);
ptq_model *ptq_model_new(const char *path, ptq_error *err);
/* Record a source tensor for inspect. */
void ptq_model_note_tensor(ptq_model *m, const char *name, const char *dtype, int ndim, const int64_t *shape);
/* After loading: every weight finite, every shape consistent with cfg. */
ptq_status ptq_model_validate(const ptq_model *m, ptq_error *err);

/* Streamed weights (materialize.c): the float32 weights of a linear whose src is set, converted from the mapped
 * source (shape, dtype and finiteness checked, errors naming the file and tensor); release frees them again.
 * No-ops for linears without src. The block forms do every linear of block l. */
ptq_status ptq_linear_materialize(ptq_model *m, ptq_linear *lin, ptq_error *err);
void ptq_linear_release(ptq_linear *lin);
ptq_status ptq_block_materialize(ptq_model *m, int l, ptq_error *err);
void ptq_block_release(ptq_model *m, int l);
/* Token embedding rows into dst [n][embed_dim] (ids checked by the caller), from tok_emb or, streamed, converted
 * from the mapping; the whole float32 tok_emb (a model-owned buffer) once something needs it (the writer). */
ptq_status ptq_embedding_rows(const ptq_model *m, const int *tokens, int n, float *dst, ptq_error *err);
ptq_status ptq_embedding_materialize(ptq_model *m, const struct ptq_safetensors *st, ptq_error *err);
/* Matrices kept in ggml blocks at load (a GGUF's k-quants: ptq_linear_is_ggml, tok_emb_ggml) -> float32 w /
 * tok_emb, exactly llama.cpp's values, for what needs float weights (quantization, tuning). A no-op for every
 * other model. The blocks stay model-owned until the model is freed. */
ptq_status ptq_model_widen_ggml(ptq_model *m, ptq_error *err);

/* Loaders (one per source format / family). */
ptq_status ptq_load_llama2c(const char *path, ptq_model **out, ptq_error *err);
/* `dir_or_file` is the safetensors file or index; config.json lies beside it. */
ptq_status ptq_load_safetensors_model(const char *path, ptq_model **out, ptq_error *err);
/* stream: ptq_load_options.stream_weights */
ptq_status ptq_load_safetensors_model_ex(const char *path, int stream, ptq_model **out, ptq_error *err);
/* A LLaMA-architecture GGUF file (gguf_llama.c). */
ptq_status ptq_load_gguf(const char *path, ptq_model **out, ptq_error *err);

#endif
