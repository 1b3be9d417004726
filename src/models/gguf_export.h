/* A ptq model -> a LLaMA-architecture GGUF file that llama.cpp runs (docs/GUIDE.md "Exporting to GGUF").
 *
 * Quantization types follow llama.cpp's quantizer (src/llama-quant.cpp): a file type (ftype) names a default
 * ggml type, and llama.cpp's rules pick each tensor's own type from it (the output matrix in Q6_K, attn_v and
 * ffn_down with more bits in the _M mixes, ...), then fall back to a type whose block divides the row when the
 * chosen one does not (Q4_K -> Q5_0, ..., F16 as the last resort). ptq_gguf_tensor_type is that table, so that a
 * quantizer (RTN here, GPTQ in the pipeline) knows each matrix's target before quantizing it. */
#ifndef PTQ_MODELS_GGUF_EXPORT_H
#define PTQ_MODELS_GGUF_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "models/model.h"
#include "ptq.h"

/* llama.cpp's file types (llama_ftype; the values are the file's general.file_type) */
typedef enum {
    PTQ_FT_F32 = 0, PTQ_FT_F16 = 1, PTQ_FT_Q4_0 = 2, PTQ_FT_Q4_1 = 3, PTQ_FT_Q8_0 = 7, PTQ_FT_Q5_0 = 8,
    PTQ_FT_Q5_1 = 9, PTQ_FT_Q2_K = 10, PTQ_FT_Q3_K_S = 11, PTQ_FT_Q3_K_M = 12, PTQ_FT_Q3_K_L = 13,
    PTQ_FT_Q4_K_S = 14, PTQ_FT_Q4_K_M = 15, PTQ_FT_Q5_K_S = 16, PTQ_FT_Q5_K_M = 17, PTQ_FT_Q6_K = 18
} ptq_gguf_ftype;

/* "Q4_K_M" -> PTQ_FT_Q4_K_M, with llama-quantize's aliases Q3_K = Q3_K_M, Q4_K = Q4_K_M, Q5_K = Q5_K_M (case
 * insensitive). Returns 0, or -1 for an unknown name. */
int ptq_gguf_ftype_parse(const char *name, ptq_gguf_ftype *out);
const char *ptq_gguf_ftype_name(ptq_gguf_ftype ft);
/* "F32, F16, Q8_0, ...": for messages */
const char *ptq_gguf_ftype_list(void);
/* The ggml type the file type is named after (Q4_K_M -> Q4_K). */
uint32_t ptq_gguf_ftype_default(ptq_gguf_ftype ft);

/* The matrices llama.cpp's rules tell apart */
typedef enum {
    PTQ_GT_TOKEN_EMBD = 0, PTQ_GT_OUTPUT, PTQ_GT_ATTN_Q, PTQ_GT_ATTN_K, PTQ_GT_ATTN_V, PTQ_GT_ATTN_OUTPUT,
    PTQ_GT_FFN_GATE, PTQ_GT_FFN_UP, PTQ_GT_FFN_DOWN,
    PTQ_GT_ATTN_QKV /* gpt2's fused Q/K/V: llama.cpp's rules treat it as attn_v */
} ptq_gguf_tensor_kind;

typedef struct ptq_gguf_type_ctx {
    ptq_gguf_ftype ftype;
    int pure;     /* llama-quantize --pure: every matrix in the default type (fallbacks still apply) */
    int n_layers;
    int n_gqa;    /* n_heads / n_kv_heads */
    int tied;     /* no output matrix: token_embd is quantized as the output */
} ptq_gguf_type_ctx;

/* The ggml type of a matrix of `kind` in block `layer` (ignored for token_embd/output) whose rows have ncols
 * values, as llama.cpp's quantizer picks it for the same file type. */
uint32_t ptq_gguf_tensor_type(const ptq_gguf_type_ctx *c, ptq_gguf_tensor_kind kind, int layer, int64_t ncols);

typedef struct ptq_gguf_export_opts {
    ptq_gguf_ftype ftype;
    int pure;
    const ptq_tokenizer *tokenizer; /* required: written as tokenizer.ggml.* */
    const char *name;               /* general.name (optional; default: the model's file name) */
} ptq_gguf_export_opts;

/* Writes m as a "llama" GGUF (LLaMA-architecture models) or a "gpt2" GGUF (GPT-2: LayerNorm with biases, learned
 * positions, fused QKV, tanh-GELU MLP) at path (atomically; path must not be the model's own file). The model must be a
 * LLaMA-architecture language model with float weights. A block linear that the quantization pipeline put into a
 * ggml type (ptq_quant_params.ggml: GPTQ or RTN, ptq_linear.ggml) is written as those bytes; every other matrix
 * is rounded (RTN) into its type here. A linear's bias and its channel Bias Compensation are
 * written as the bias tensor llama.cpp applies (blk.N.attn_q.bias, ...), a block-output BC folded into
 * ffn_down.bias. Refused (PTQ_ERR_UNSUPPORTED, saying why): weights already packed to ptq's own grids,
 * activation or attention quantization, position-shaped BC, BC on the logits (neither llama nor gpt2 has an output bias),
 * other architectures. For gpt2 every bias llama.cpp requires is written (zeros where the model has none) and the
 * channel and block BC are added into the existing biases. */
typedef struct ptq_gguf_export_stats {
    int64_t weights;      /* elements of the matrices (token_embd, block linears, output) */
    int64_t weight_bytes; /* their bytes in the file */
    double bits_per_weight;
} ptq_gguf_export_stats;
ptq_status ptq_gguf_export(const ptq_model *m, const char *path, const ptq_gguf_export_opts *o,
                           ptq_gguf_export_stats *stats, ptq_error *err);

#endif
