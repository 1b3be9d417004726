/* Reading a GGUF model (internal to src/models): the helpers every architecture's builder shares
 * (gguf_llama.c reads "llama", gguf_gpt2.c reads "gpt2"). */
#ifndef PTQ_MODELS_GGUF_LOAD_H
#define PTQ_MODELS_GGUF_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "io/gguf.h"
#include "models/model.h"

typedef struct ptq_gguf_src {
    ptq_gguf *g;
    ptq_model *m;
    unsigned char *used; /* per tensor of g: read by the builder */
} ptq_gguf_src;

/* u32 metadata `key` into *out, def when absent and not required; checked against [lo, hi]. `what` names the
 * model kind in the message about a missing key ("a LLaMA model"). */
ptq_status ptq_gguf_src_u32(const ptq_gguf *g, const char *key, int required, uint32_t def, uint32_t lo, uint32_t hi,
                            const char *what, int *out, ptq_error *err);
/* "[a, b]" for messages */
void ptq_gguf_fmt_ne(char *buf, size_t cap, int ndim, const int64_t *ne);
/* Tensor `name` with ggml dims ne[0..ndim) (ne[0] fastest) read as float32 into a model-owned buffer, marked used
 * and noted for inspect. */
ptq_status ptq_gguf_src_take(ptq_gguf_src *s, const char *name, int ndim, const int64_t *ne, float **out,
                             ptq_error *err);
/* The linear `name`.weight [out][in] (ggml [in, out]) and `name`.bias [out] (required when bias_required, else
 * read when present). heads > 0: the rows (of both) are in llama.cpp's RoPE order within each of `heads` heads and
 * are put back in Hugging Face's (see gguf_llama.c). A weight in Q4_0, Q5_0 or Q8_0 becomes ptq's packed weight
 * (lin->q, exactly the same values: quant/ggml_to_qweight.h) with no float copy; other types are read as float32. */
ptq_status ptq_gguf_src_linear(ptq_gguf_src *s, ptq_linear *lin, const char *name, int in, int out, int bias_required,
                               int heads, ptq_error *err);
/* `name`.weight [dim], and `name`.bias when with_bias */
ptq_status ptq_gguf_src_norm(ptq_gguf_src *s, ptq_norm *n, const char *name, int dim, int with_bias, ptq_error *err);
/* general.architecture into buf (quoted-safe snippet); PTQ_ERR_FORMAT when absent */
ptq_status ptq_gguf_src_arch(const ptq_gguf *g, char *buf, size_t cap, ptq_error *err);
/* BOS/EOS ids from the file's tokenizer into c (-1 when none) */
void ptq_gguf_src_bos_eos(const ptq_gguf *g, ptq_config *c);
/* token_embd.weight's vocabulary (its rows) after checking its width and the tokenizer's token count; `arch`
 * prefixes the optional ARCH.vocab_size key */
ptq_status ptq_gguf_src_vocab(const ptq_gguf *g, const char *arch, int dim, int *vocab, ptq_error *err);
/* every tensor must have been used: an extra one (a bias, another layer) would change the model */
ptq_status ptq_gguf_src_all_used(const ptq_gguf_src *s, const char *what, int n_layers, ptq_error *err);

/* The builders: fill s->m from s->g (general.architecture already checked) */
ptq_status ptq_gguf_build_gpt2(ptq_gguf_src *s, ptq_error *err);

#endif
