/* Training in C: whole-model forward with activation caches and backward, AdamW, mini-batches, the QuantTune
 * loop (task loss + outlier loss), saving in the input's own format, and random initialisation.
 *
 * Everything works on the generic model of models/model.h, so ViT (timm or Hugging Face names), LLaMA
 * (Hugging Face or llama2.c), GPT-2 and OPT models train through the same code. Parameters are the model's
 * own float buffers, updated in place; gradients and AdamW moments live in one arena beside them.
 *
 * The outlier loss (OUR placeholder for QuantTune's unpublished loss, see docs/QUANTTUNE.md and
 * ../shared/docs/METHODS.md 3.2):
 *     L = L_task + lambda * sum_l mean_k relu(|A_l,k - mu_l| - tau * sigma_l)^2
 * over the monitored activations A_l: the inputs of the linear layers inside the blocks (per block: the QKV
 * input, the attention-output-projection input, the MLP input, the MLP down-projection input), with mu and
 * sigma the mean and standard deviation of the whole mini-batch tensor.
 */
#ifndef PTQ_TRAIN_TRAIN_H
#define PTQ_TRAIN_TRAIN_H

#include "core/rng.h"
#include <stddef.h>
#include <stdint.h>

#include "models/model.h"
#include "ptq.h"

/* ---------------------------------------------------------------- parameters and gradients */

/* One trainable tensor: the model's buffer plus its gradient and AdamW moments. */
typedef struct ptq_param {
    char name[160];    /* the tensor's name in the source file (llama2.c: the names `ptq inspect` shows) */
    float *w;          /* the model's buffer, [out][in] for linear weights */
    float *g, *m, *v;  /* gradient, first and second moment (arena) */
    size_t n;
    int ndim;
    int64_t shape[4];  /* the shape as stored in the source file */
    int transposed;    /* stored [in][out] (GPT-2 Conv1D) while w is [out][in] */
    int decay;         /* AdamW weight decay applies (matrices and embeddings; not biases, norms, positions, cls) */
} ptq_param;

typedef struct ptq_wgrad {
    float *w, *b;
} ptq_wgrad;

typedef struct ptq_block_grad {
    ptq_norm norm1, norm2; /* gradient buffers of the norm weight / bias (NULL = frozen or absent) */
    ptq_wgrad lin[PTQ_LIN_COUNT];
} ptq_block_grad;

/* The trainable view of a model. Gradient pointers mirror the model; NULL means frozen or absent
 * (a tied head shares the token embedding's gradient). */
typedef struct ptq_trainable {
    ptq_model *m;
    ptq_param *p;
    int n;
    float *arena;      /* 3 * total floats: gradients, then m, then v */
    size_t total;
    float *g_tok_emb, *g_pos_emb, *g_cls;
    ptq_wgrad g_patch, g_proj_in, g_proj_out, g_head;
    ptq_norm g_final_norm;
    ptq_block_grad *g_blocks;
} ptq_trainable;

/* Collect the trainable tensors of a float model (no packed weights, no bias compensation). A tensor the
 * source file does not hold (OPT norms without elementwise affine) stays frozen. */
ptq_status ptq_trainable_init(ptq_model *m, ptq_trainable *t, ptq_error *err);
/* The same list without gradients (arena NULL, gradient pointers NULL): names and buffers only. */
ptq_status ptq_trainable_names(const ptq_model *m, ptq_trainable *t, ptq_error *err);
void ptq_trainable_free(ptq_trainable *t);
void ptq_trainable_zero_grad(ptq_trainable *t);
/* Index of the parameter with this name, or -1. */
int ptq_trainable_find(const ptq_trainable *t, const char *name);

/* ---------------------------------------------------------------- forward + backward */

/* Monitored activations (bit mask). */
enum {
    PTQ_MON_QKV = 1,  /* input of the Q/K/V (or fused QKV) projection */
    PTQ_MON_PROJ = 2, /* input of the attention output projection */
    PTQ_MON_FC1 = 4,  /* input of the MLP up (and gate) projection */
    PTQ_MON_FC2 = 8,  /* input of the MLP down projection */
    PTQ_MON_ALL = 15
};
/* Parse "all", "none" or a comma list of qkv, proj (o), fc1 (up), fc2 (down). */
ptq_status ptq_monitor_parse(const char *s, unsigned *mask, ptq_error *err);
/* "qkv,proj,fc1,fc2" for a mask (static strings). */
const char *ptq_monitor_name(unsigned bit);

typedef struct ptq_outlier_cfg {
    float lambda;  /* 0 = task loss only */
    float tau;     /* threshold in standard deviations */
    unsigned monitor;
    int relative;  /* 1: mean(relu(|A - mu| / sigma - tau)^2), scale-invariant (outlier.c; the default of ptq_tune);
                    * 0: mean(relu(|A - mu| - tau sigma)^2), METHODS.md 3.2 as written (ops/loss.c) */
} ptq_outlier_cfg;

/* A mini-batch. Language models: n_seq sequences of seq_len input tokens and as many targets (the next tokens;
 * -1 = not scored). ViT: n_seq images [n_seq][C][H][W] and n_seq labels. */
typedef struct ptq_batch {
    int n_seq, seq_len;
    const int *tokens;
    const int *targets;
    const float *pixels;
} ptq_batch;

typedef struct ptq_loss_parts {
    double loss;    /* ce + lambda * outlier */
    double ce;      /* mean cross-entropy over the scored targets */
    double outlier; /* sum over monitored tensors of their outlier loss (before lambda) */
    int n_targets;
    int correct;    /* ViT: top-1 hits in the batch */
} ptq_loss_parts;

/* Activation caches and scratch, grown on demand and reused across steps. */
typedef struct ptq_train_ws ptq_train_ws;
ptq_train_ws *ptq_train_ws_new(void);
void ptq_train_ws_free(ptq_train_ws *ws);

/* Forward over the batch, and with want_grad the backward: gradients ACCUMULATE into t's arena (call
 * ptq_trainable_zero_grad first). */
ptq_status ptq_train_forward_backward(ptq_trainable *t, ptq_train_ws *ws, const ptq_batch *b,
                                      const ptq_outlier_cfg *oc, int want_grad, ptq_loss_parts *out, ptq_error *err);

/* ---------------------------------------------------------------- AdamW */

typedef struct ptq_adamw_params {
    double lr, beta1, beta2, eps, weight_decay;
    double clip;        /* global gradient-norm clip; 0 = off */
    int warmup;         /* linear warm-up steps (ptq_tune: -1 = 5% of the steps) */
    int total_steps;    /* cosine decay over the steps after warm-up */
    double min_lr_frac; /* the cosine ends at lr * min_lr_frac */
} ptq_adamw_params;
ptq_adamw_params ptq_adamw_default_params(void);

/* The learning rate of step s (0-based):  s < warmup: lr (s + 1) / warmup;  else, with
 * p = (s - warmup) / max(1, total - warmup):  lr (f + (1 - f) (1 + cos(pi p)) / 2),  f = min_lr_frac. */
double ptq_lr_at(const ptq_adamw_params *p, int step);
/* sqrt(sum of squared gradients), accumulated in double. */
double ptq_grad_norm(const ptq_trainable *t);
/* One AdamW step (step is 0-based) on every parameter with a gradient, as torch.optim.AdamW:
 * clip (coef = clip / (norm + 1e-6) when norm > clip), p *= 1 - lr wd (decay params), m, v updates,
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). Returns the lr used; *grad_norm gets the
 * norm before clipping. */
double ptq_adamw_step(ptq_trainable *t, const ptq_adamw_params *p, int step, double *grad_norm);

/* ---------------------------------------------------------------- data */

/* Text: the token stream cut into windows of ctx + 1 tokens starting every ctx tokens (consecutive windows
 * share one token, as in perplexity), ctx inputs and ctx targets each. */
typedef struct ptq_text_data {
    const int *tokens;
    int64_t n;
    int ctx;
} ptq_text_data;
int64_t ptq_text_windows(const ptq_text_data *d);
/* Inputs and targets of windows idx[0..count) into inp/tgt [count][ctx]. */
void ptq_text_batch(const ptq_text_data *d, const int *idx, int count, int *inp, int *tgt);
/* Images idx[0..count) of s into pixels [count][C][H][W] and labels [count]. */
void ptq_image_batch(const ptq_image_set *s, const int *idx, int count, float *pixels, int *labels);
/* A seeded permutation of 0..n-1 (Fisher-Yates with splitmix64); *rng is advanced. */
void ptq_shuffle(int *idx, int n, uint64_t *rng);

/* ---------------------------------------------------------------- the QuantTune loop */

typedef struct ptq_tune_step {
    int step, total_steps; /* step is 1-based */
    int epoch;             /* 0-based */
    double lr, loss, ce, outlier, grad_norm;
    double batch_acc;      /* ViT: top-1 on the batch (percent); -1 for language models */
    int samples;           /* images or tokens in this step */
    double seconds;        /* since the start of training */
    double eta;            /* estimated seconds left */
} ptq_tune_step;
typedef int (*ptq_tune_step_fn)(void *user, const ptq_tune_step *s); /* nonzero stops training */

typedef struct ptq_tune_params {
    ptq_adamw_params opt;  /* total_steps is filled in by ptq_tune */
    ptq_outlier_cfg outlier;
    int batch;             /* images or sequences per step */
    int steps;             /* > 0: exactly this many steps */
    double epochs;         /* used when steps == 0 */
    uint64_t seed;
    int report_n;          /* samples for the dynamic-range report (0 = no report) */
    ptq_tune_step_fn on_step;
    void *user;
    ptq_callbacks cb;
} ptq_tune_params;
ptq_tune_params ptq_tune_default_params(void);

typedef struct ptq_tune_data {
    const ptq_text_data *text;    /* language models */
    const ptq_image_set *images;  /* ViT */
} ptq_tune_data;

typedef struct ptq_tune_result {
    int steps;
    double seconds;              /* training time (excluding the reports) */
    double samples_per_s;        /* images/s, or tokens/s for language models */
    double first_loss, last_loss;
    ptq_act_stats *before, *after; /* per linear layer, on the first report_n samples (malloc'ed) */
    int n_stats;
} ptq_tune_result;
void ptq_tune_result_free(ptq_tune_result *r);

ptq_status ptq_tune(ptq_model *m, const ptq_tune_data *d, const ptq_tune_params *p, ptq_tune_result *r,
                    ptq_error *err);

/* ---------------------------------------------------------------- saving and initialisation */

/* Where a model's safetensors weights and config.json are, following the loader's rules (a folder, a
 * .safetensors file or index, or a config.json). */
ptq_status ptq_train_source_paths(const char *model_path, char *weights, size_t wsize, char *config, size_t csize,
                                  ptq_error *err);

/* Write the (tuned) model in its input's format:
 *  - llama2.c input: a llama2.c .bin at out_path (the header and RoPE tables copied from the source);
 *  - safetensors input: out_path is a folder (created) with model.safetensors holding every tensor of the
 *    source under its own name (trained ones as F32 in their stored layout; others copied byte for byte)
 *    and config.json copied from the source (torch_dtype set to float32), plus the tokenizer files found
 *    beside the source. `src_weights` may be NULL (a model made by ptq_train_init_random) and then
 *    src_config names the config to copy. `note` goes into the safetensors metadata ("ptq_tune"). */
ptq_status ptq_train_save(const ptq_model *m, const char *src_weights, const char *src_config, const char *out_path,
                          const char *note, ptq_error *err);

/* A model with random weights from a Hugging Face / timm config.json (LLaMA, GPT-2, OPT, ViT): the tensors
 * are written into a temporary safetensors folder and loaded through ptq_model_load, so the model is built
 * exactly as a real file would be. Linear weights and embeddings ~ N(0, 0.02) truncated at 2 sigma (residual
 * output projections / sqrt(2 layers)), biases 0, norm weights 1, positions N(0, 0.02), cls N(0, 1e-6).
 * `tmp_dir` is where the temporary folder goes (NULL: $TMPDIR or /tmp); it is removed before returning. */
ptq_status ptq_train_init_random(const char *config_path, uint64_t seed, const char *tmp_dir, ptq_model **out,
                                 ptq_error *err);

#endif
