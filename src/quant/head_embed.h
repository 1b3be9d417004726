/* The LM head and the token embeddings quantized (packed, as the block linears) or stored in 16 bits
 * (issue 15: a third of what a decode step reads was the float32 head; issue 14: float tensors kept in their
 * stored precision). docs/GUIDE.md "Quantized head and embeddings" says what users see, FORMAT.md how it is
 * stored.
 *
 * Tied models (the head is the embedding table: GPT-2, llama2.c's shared classifier, tie_word_embeddings)
 * keep one table: quantized once, RTN, before calibration, and read by both the lookup and the head. */
#ifndef PTQ_QUANT_HEAD_EMBED_H
#define PTQ_QUANT_HEAD_EMBED_H

#include <stddef.h>

#include "io/safetensors.h"
#include "models/model.h"

/* 1 when the head reads the token embedding table itself (float or packed). */
int ptq_head_tied(const ptq_model *m);

/* The quant params' head/embedding settings against the model: widths 0, 2 to 8 or 16, groups as --group,
 * no embeddings on a ViT, agreeing settings for a tied table, none with ggml types. Errors name the options. */
ptq_status ptq_head_embed_check(const ptq_model *m, const ptq_quant_params *p, ptq_error *err);

/* Before calibration: the embedding table (and so a tied head) packed by RTN or rounded to 16 bits, so that the
 * blocks are calibrated on the embeddings the quantized model will look up. */
ptq_status ptq_embed_quantize(ptq_model *m, const ptq_quant_params *p, ptq_error *err);

/* After the blocks: an untied head packed (RTN; GPTQ with p->method == PTQ_WQ_GPTQ, its Hessian from the head
 * inputs of x: the quantized model's last residual stream, n_seq windows of T rows) or rounded to 16 bits.
 * Replaces a head packed by an earlier pass. */
ptq_status ptq_head_quantize(ptq_model *m, const ptq_quant_params *p, const float *x, int n_seq, int T,
                             ptq_error *err);

/* Embedding row `token` (checked by the caller) into dst [embed_dim], from whichever form the model holds:
 * packed (ptq_qweight_dequant_row), 16-bit, or float32. */
void ptq_embed_row(const ptq_model *m, int token, float *dst);

/* The 16-bit type a float tensor is stored in: bf16 when every value is exactly a bf16 (a bf16 source: no loss),
 * else f16 when every value is within f16's range, else bf16. ptq_round16 rounds values onto that type. */
ptq_dtype ptq_pick16(const float *w, size_t n);
void ptq_round16(float *w, size_t n, ptq_dtype dt);

#endif
