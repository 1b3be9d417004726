/* ptq: post-training quantization of transformer models, and a CPU runtime for them.
 *
 * The public API. Plain C11; every function that can fail returns a ptq_status and fills a
 * ptq_error whose message names the file, the tensor or field, and what was expected.
 * The library never prints and never exits: logs and progress go through callbacks.
 */
#ifndef PTQ_H
#define PTQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ptq_status {
    PTQ_OK = 0,
    PTQ_ERR_IO = 1,          /* cannot open, read, map or write a file */
    PTQ_ERR_FORMAT = 2,      /* a file is malformed, truncated or inconsistent */
    PTQ_ERR_CONFIG = 3,      /* a config field is missing or contradicts the weights */
    PTQ_ERR_UNSUPPORTED = 4, /* well-formed but not something ptq can run */
    PTQ_ERR_ARG = 5,         /* a bad argument from the caller */
    PTQ_ERR_NOMEM = 6,
    PTQ_ERR_NUMERIC = 7,     /* NaN/Inf in weights or data, or a failed factorization */
    PTQ_ERR_CALLBACK = 8     /* a user callback asked to stop */
} ptq_status;

typedef struct ptq_error {
    ptq_status status;
    char msg[1024];
} ptq_error;

const char *ptq_status_name(ptq_status s);
const char *ptq_version(void);

/* ---- logging and progress (both optional; NULL means silent) ---- */
typedef enum { PTQ_LOG_DEBUG = 0, PTQ_LOG_INFO = 1, PTQ_LOG_WARN = 2 } ptq_log_level;
typedef void (*ptq_log_fn)(void *user, ptq_log_level level, const char *msg);
/* `what` names the stage ("eval", "calibrate", ...); done/total count its units. */
typedef void (*ptq_progress_fn)(void *user, const char *what, int64_t done, int64_t total);

typedef struct ptq_callbacks {
    ptq_log_fn log;
    ptq_progress_fn progress;
    void *user;
} ptq_callbacks;

/* ---- models ---- */
typedef struct ptq_model ptq_model;

typedef enum { PTQ_ARCH_LLAMA = 0, PTQ_ARCH_GPT2, PTQ_ARCH_OPT, PTQ_ARCH_VIT } ptq_arch;
const char *ptq_arch_name(ptq_arch a);

/* Load a model. `path` is a llama2.c .bin checkpoint, a model.safetensors file, a
 * model.safetensors.index.json, or a folder holding one of those plus config.json.
 * The format is recognised from the content. */
ptq_status ptq_model_load(const char *path, ptq_model **out, ptq_error *err);

/* How ptq_model_load_ex reads a model. */
typedef struct ptq_load_options {
    /* 1: check the CRC-32C of every tensor and of the metadata of a .ptq file (docs/FORMAT.md) and refuse
       a corrupted file; 0: skip that pass, for a file you trust (the checks of shapes, ranges and values
       stay). Other formats carry no checksums. */
    int verify_checksums;
    /* 1: stream the weights of a Hugging Face safetensors model (single file or shards): the block linears' and
       the head's float weights stay in the memory-mapped source in their stored dtype (F32, F16, BF16) until
       ptq_quantize_model converts a block (and releases it once quantized), so a quantization holds one block of
       float weights at a time. Only for quantization: forward passes need every block quantized or converted.
       Other formats load whole. 0 (default): every weight converted to float32 at load. */
    int stream_weights;
} ptq_load_options;
/* verify_checksums = 1. ptq_model_load uses these. (The library never reads the environment: the ptq tool
   is what honours PTQ_SKIP_CHECKSUMS=1.) */
ptq_load_options ptq_load_default_options(void);
ptq_status ptq_model_load_ex(const char *path, const ptq_load_options *opt, ptq_model **out, ptq_error *err);
void ptq_model_free(ptq_model *m);
/* Arithmetic of the packed low-bit (W2/W3/W4/W8) layers: 0 (default) float activations, exact to the
 * dequantized weights; 1 activations quantized to int8 per 32 inputs (as llama.cpp's q8_0) and integer dot
 * products, for decoding and prefill alike: faster on CPUs with AVX-512 VNNI (ignored elsewhere), results
 * change slightly (docs/GUIDE.md, "Decoding kernels, int8 activations"). A GGUF's k-quant matrices
 * (Q2_K ... Q6_K, run on their blocks) take int8 activations too, with AVX-512 VNNI. */
void ptq_model_set_act8(ptq_model *m, int on);

typedef struct ptq_model_info {
    ptq_arch arch;
    int is_language_model;  /* 1: tokens in, next-token logits out; 0: images in, class logits out */
    int dim, n_layers, n_heads, n_kv_heads, hidden_dim;
    int vocab_size;         /* LM: vocabulary; ViT: number of classes */
    int max_seq;            /* LM: context length; ViT: tokens per image */
    int img_size, in_chans; /* ViT only */
    int bos_id, eos_id;     /* LM: from the model's own files (config.json bos_token_id...), -1 when not given */
    int64_t n_params;
} ptq_model_info;
void ptq_model_get_info(const ptq_model *m, ptq_model_info *info);

/* ---- tokenizers ---- */
typedef struct ptq_tokenizer ptq_tokenizer;

/* `path`: a Hugging Face tokenizer.json (tokenizer_config.json beside it is read too), a GGUF file (its
 * tokenizer.ggml.* metadata), a GPT-2 vocab.json with merges.txt beside it, a llama2.c tokenizer.bin, or a folder
 * holding tokenizer.json or vocab.json (tokenizer.json preferred). `vocab_size` (0 = do not check): the tokenizer
 * may not have more tokens than the model's vocabulary. docs/GUIDE.md lists the supported tokenizer families. */
ptq_status ptq_tokenizer_load(const char *path, int vocab_size, ptq_tokenizer **out, ptq_error *err);
/* The tokenizer of a loaded model: `path` when given (any file ptq_tokenizer_load reads), else the tokenizer
 * the model file itself carries (a .ptq written by ptq_model_save, a GGUF), else one found beside the model
 * (tokenizer.json, tokenizer.bin, tok<vocab>.bin, vocab.json + merges.txt). BOS/EOS are the ids the model's
 * config names (config.json bos_token_id / eos_token_id: OPT's </s>; GGUF and .ptq: the ones stored) when they
 * are in the tokenizer's vocabulary, else the tokenizer's own (tokenizer.json / tokenizer_config.json, GGUF). */
ptq_status ptq_tokenizer_load_for_model(const ptq_model *m, const char *path, ptq_tokenizer **out, ptq_error *err);
void ptq_tokenizer_free(ptq_tokenizer *t);
/* Encode UTF-8 text; `bos` prepends the BOS token when the tokenizer has one (EOS is never added). Special tokens
 * written in the text ("</s>", "<|endoftext|>", "<|begin_of_text|>") are encoded as those tokens when the tokenizer
 * defines them. On success *tokens is malloc'ed (caller frees) and *n set. */
ptq_status ptq_tokenizer_encode(const ptq_tokenizer *t, const char *text, size_t len, int bos,
                                int **tokens, int *n, ptq_error *err);
/* The bytes of one token, as they should be printed after `prev` (handles byte tokens and
 * llama2.c's leading space after BOS). Returns a pointer into the tokenizer; `*len` set. */
const char *ptq_tokenizer_decode(const ptq_tokenizer *t, int prev, int token, size_t *len);
int ptq_tokenizer_bos(const ptq_tokenizer *t); /* -1 when there is none */
int ptq_tokenizer_eos(const ptq_tokenizer *t);
int ptq_tokenizer_vocab_size(const ptq_tokenizer *t);

/* ---- evaluation ---- */
typedef struct ptq_ppl_params {
    int ctx;             /* window length in predicted tokens; 0 = the model's maximum */
    ptq_callbacks cb;
} ptq_ppl_params;
ptq_ppl_params ptq_ppl_default_params(void);

typedef struct ptq_ppl_result {
    int64_t tokens;  /* tokens in the stream */
    int64_t scored;  /* predictions scored */
    double mean_ce;  /* nats */
    double ppl;
    double ppl_stderr;
} ptq_ppl_result;

/* Perplexity of a token stream over non-overlapping windows of ctx+1 tokens (each window
 * predicts ctx tokens; consecutive windows share one token). */
ptq_status ptq_eval_perplexity(ptq_model *m, const int *tokens, int64_t n, const ptq_ppl_params *p,
                               ptq_ppl_result *res, ptq_error *err);

/* Split `text` into documents on `sep` (NULL or "" = one document), strip each, drop empty ones, keep
 * documents [first_doc, last_doc) (last_doc < 0 = to the end), encode each with BOS and concatenate.
 * *tokens is malloc'ed. */
ptq_status ptq_encode_documents(const ptq_tokenizer *t, const char *text, size_t len, const char *sep,
                                int first_doc, int last_doc, int **tokens, int64_t *n, ptq_error *err);

/* Images: float32 tensors [count][in_chans][img][img], already normalised. */
typedef struct ptq_image_set {
    int count, channels, height, width;
    float *pixels;   /* count*channels*height*width */
    int *labels;     /* count; -1 for an image without a label (an unlabeled set: calibration only) */
} ptq_image_set;
void ptq_image_set_free(ptq_image_set *s);

/* How a ViT's images become its input tensors. With a Hugging Face preprocessor_config.json beside the model
 * (or carried in the .ptq file made from it), its pipeline is applied as transformers' ViTImageProcessor does:
 * PIL's resize with its `resample` filter, centre crop (do_center_crop), x * rescale_factor, (x - image_mean) /
 * image_std; it wins over any mean/std in config.json. Without one, config.json's (timm's) transform: resize
 * to img/crop_pct, centre crop, x/255, (x - mean)/std. See docs/GUIDE.md. */
typedef struct ptq_image_prep_info {
    int hf;                  /* 1: preprocessor_config.json's pipeline; 0: config.json's */
    int channels, size;      /* the model's input, channels x size x size */
    float mean[4], std[4];   /* the normalisation applied (hf with do_normalize false: 0 and 1) */
    int config_norm;         /* 1: config.json names a mean/std itself */
    float config_mean[4], config_std[4];
    int overridden;          /* hf and config_norm and the two differ: config.json's mean/std are not used */
} ptq_image_prep_info;
/* Fails (PTQ_ERR_ARG) for a language model. */
ptq_status ptq_model_image_prep(const ptq_model *m, ptq_image_prep_info *info, ptq_error *err);

/* IDX (optionally gzip'ed) images, selecting [first, first+count) (count 0 = all), with an IDX labels file, or
 * labels NULL for an unlabeled set (labels -1). Normalised as ptq_image_prep_info says (timm: pixel/255, then
 * (x-mean)/std, images of exactly the model's size; Hugging Face: the same pipeline as image files, resize
 * included, grey replicated to 3 channels where the model takes RGB). */
ptq_status ptq_images_load_idx(const ptq_model *m, const char *images, const char *labels, int first,
                               int count, ptq_image_set *out, ptq_error *err);
/* A folder of JPEG/PNG/BMP files, transformed as ptq_image_prep_info says (timm: shorter side resized to
 * img/crop_pct, centre-cropped, normalised). With a labels file (lines "filename label"; folder NULL = the
 * labels file's folder): the files it names, in its order. With labels NULL: every *.jpg, *.jpeg, *.png and
 * *.bmp file of the folder (any case) sorted by name byte-wise, other entries skipped, labels -1. */
ptq_status ptq_images_load_folder(const ptq_model *m, const char *folder, const char *labels, int first,
                                  int count, ptq_image_set *out, ptq_error *err);
/* What ptq_images_load_folder(..., labels NULL, ...) would read: the number of image files of the folder, and
 * of the other entries it skips. */
ptq_status ptq_images_count_folder(const char *folder, int *images, int *skipped, ptq_error *err);

typedef struct ptq_acc_result {
    int images;
    double top1, top5; /* percent */
} ptq_acc_result;
/* Needs a label on every image (PTQ_ERR_ARG otherwise). */
ptq_status ptq_eval_accuracy(ptq_model *m, const ptq_image_set *s, const ptq_callbacks *cb,
                             ptq_acc_result *res, ptq_error *err);

/* ---- running a language model token by token (KV cache) ---- */
typedef struct ptq_session ptq_session;
/* max_tokens: the most positions the session may hold (<= 0 or above the model's context: the context).
 * Memory follows use: the KV cache grows with the tokens fed, not with max_tokens. */
ptq_status ptq_session_new(ptq_model *m, int max_tokens, ptq_session **out, ptq_error *err);
void ptq_session_free(ptq_session *s);
/* Feed n tokens at the current position; returns the logits of the last one (vocab floats,
 * owned by the session, valid until the next call). A prompt longer than the session's chunk (128 tokens unless
 * ptq_session_set_chunk says otherwise) runs in chunks of that many, so its activations take the memory of that
 * many rows; on failure the position is unchanged. */
ptq_status ptq_session_feed(ptq_session *s, const int *tokens, int n, const float **logits, ptq_error *err);
/* Prompt tokens per forward from now on, 1 to 65536 (default 128): larger chunks prefill long prompts in fewer,
 * bigger matrix products and take more activation memory (about chunk x (4 dim + 2 hidden) floats in a LLaMA
 * block); the logits are the same within float rounding. PTQ_ERR_ARG outside the range. */
ptq_status ptq_session_set_chunk(ptq_session *s, int tokens, ptq_error *err);
int ptq_session_chunk(const ptq_session *s);
int ptq_session_pos(const ptq_session *s);
/* Positions the KV cache has room for now (it grows as tokens are fed, up to max_tokens). */
int ptq_session_capacity(const ptq_session *s);

typedef struct ptq_sampler_params {
    float temperature; /* 0 = greedy */
    float top_p;       /* 1 = off */
    uint64_t seed;
} ptq_sampler_params;
ptq_sampler_params ptq_sampler_default_params(void);
/* Pick a token from logits; `rng` is the caller's state (initialise it with the seed). */
int ptq_sample(const float *logits, int n, const ptq_sampler_params *p, uint64_t *rng);

/* ---- activation capture: the hook every quantization method is built on ----
 * Runs the model block by block over calibration inputs. For every linear layer inside the
 * blocks, the callback receives the layer's name, its input X [rows][in] and float output
 * Y [rows][out]. Only one block's activations are alive at any time. */
typedef struct ptq_linear_view {
    const char *name; /* the tensor name prefix in the source file, e.g. "blocks.0.attn.qkv" */
    int layer;        /* block index */
    int in, out;
} ptq_linear_view;
typedef int (*ptq_capture_fn)(void *user, const ptq_linear_view *lin, const float *X, const float *Y, int rows);

typedef struct ptq_calib_data {
    /* exactly one of the two is used */
    const int *tokens; int n_seqs; int seq_len;   /* language models: n_seqs x seq_len tokens */
    const ptq_image_set *images;                  /* ViT */
} ptq_calib_data;

/* Calibration windows for a language model: n_seqs windows of seq_len tokens at random start positions
 * in the token stream (seeded; windows may overlap when the stream is short). *out is malloc'ed,
 * n_seqs * seq_len tokens. */
ptq_status ptq_calib_windows(const int *tokens, int64_t n, int n_seqs, int seq_len, uint64_t seed, int **out,
                             ptq_error *err);

ptq_status ptq_capture_activations(ptq_model *m, const ptq_calib_data *data, ptq_capture_fn fn, void *user,
                                   const ptq_callbacks *cb, ptq_error *err);

/* Per-linear-layer input statistics over calibration data (what `ptq inspect --act` prints). */
typedef struct ptq_act_stats {
    char name[128];
    int layer, in, out;
    int64_t count;
    double min, max, mean, std;
    double max_abs_over_std, kurtosis;
} ptq_act_stats;
ptq_status ptq_activation_stats(ptq_model *m, const ptq_calib_data *data, const ptq_callbacks *cb,
                                ptq_act_stats **stats, int *n_stats, ptq_error *err);

/* ---- weight quantization ---- */
typedef enum { PTQ_WQ_RTN = 0, PTQ_WQ_GPTQ = 1 } ptq_wq_method;
/* How the calibration activations between blocks are stored (--calib-dtype): float32, or bfloat16 / float16
   (half the memory; each value rounded to nearest even when a block writes it). */
typedef enum { PTQ_CALIB_F32 = 0, PTQ_CALIB_BF16, PTQ_CALIB_F16 } ptq_calib_dtype;

/* One line per quantized layer, reported as soon as the layer is done. */
typedef struct ptq_layer_report {
    const char *name; /* source name of the linear layer */
    int layer, in, out;
    double seconds;
    double rel_error;  /* ||X W^T - X What^T||^2 / ||X W^T||^2 over the calibration inputs */
} ptq_layer_report;
typedef void (*ptq_layer_report_fn)(void *user, const ptq_layer_report *r);

/* Bias Compensation (METHODS.md section 1): where, what shape, and on which inputs it is fitted. */
enum { PTQ_BC_LINEAR = 1, PTQ_BC_BLOCK = 2, PTQ_BC_LOGITS = 4 };
typedef enum { PTQ_BC_CHANNEL = 0, PTQ_BC_POSITION = 1 } ptq_bc_shape;
typedef enum { PTQ_BC_SEQUENTIAL = 0, PTQ_BC_PARALLEL = 1 } ptq_bc_mode;

/* Output error of one compensated module, before and after its bias (calibration data, and the
 * held-apart data when given). SQNR = 10 log10(sum O^2 / sum (O - Ohat)^2). */
typedef struct ptq_bc_report {
    const char *name; /* linear name, "block N" or "logits" */
    int layer;        /* -1 for logits */
    double mse_before, mse_after, sqnr_before, sqnr_after;
    int has_holdout;
    double hold_mse_before, hold_mse_after, hold_sqnr_before, hold_sqnr_after;
} ptq_bc_report;
typedef void (*ptq_bc_report_fn)(void *user, const ptq_bc_report *r);

/* ptq_quant_params.group: one weight grid (scale, zero point) for the whole matrix. */
#define PTQ_GROUP_TENSOR (-1)

/* Activation quantizer calibration (METHODS.md sections 0, 2.4, 5.2). */
typedef enum {
    PTQ_AQ_MINMAX = 0,  /* step = max|x| / (2^(b-1) - 1): no clipping */
    PTQ_AQ_PERCENTILE,  /* clip at the act_percentile-th percentile of |x| */
    PTQ_AQ_MSE,         /* clip minimising the mean squared quantization error of x */
    PTQ_AQ_ENTROPY,     /* clip minimising KL(P || Q) between the histograms of |x| and its quantization */
    PTQ_AQ_EASYQUANT,   /* alternate search of weight and activation steps maximising output cosine similarity */
    PTQ_AQ_TWIN         /* PTQ4ViT twin uniform on post-activation inputs (fc2), MSE search elsewhere */
} ptq_act_calib;

/* Calibration split across processes (MPI, tools/mpi.c; the library itself stays MPI-free). Process
 * `rank` of `size` runs the calibration sequences [n * rank / size, n * (rank + 1) / size); every
 * statistic calibration gathers from them is combined through these two collectives, which every
 * process calls in the same order. Both return 0 on success. */
typedef struct ptq_dist {
    int rank, size;
    void *user;
    /* element-wise sum of buf over the processes, in place, the same result on every process */
    int (*sum)(void *user, double *buf, size_t n);
    /* concatenation in rank order: every process contributes `n` bytes and receives all of them in `all`
       (room for `cap` bytes); *total is set to the bytes received */
    int (*gather)(void *user, const void *mine, size_t n, void *all, size_t cap, size_t *total);
} ptq_dist;

typedef struct ptq_quant_params {
    int wbits;               /* 2, 3, 4 or 8 */
    int group;               /* 0 = per output channel; PTQ_GROUP_TENSOR = one grid per matrix;
                                else a multiple of 32 (32, 64, 128, ...) */
    int sym;                 /* symmetric grid (zero point fixed at 2^(bits-1)) */
    ptq_wq_method method;
    int act_order;           /* GPTQ: columns in order of decreasing Hessian diagonal */
    double percdamp;         /* GPTQ damping, fraction of the mean Hessian diagonal (0.01) */
    int gptq_updated_groups; /* GPTQ: group grids from the updated weights instead of the reference's */
    int abits;               /* 0 = weight-only; 4..8: quantize every block linear's input */
    ptq_act_calib act_calib;
    int act_asym;            /* asymmetric per-tensor activations (zero point); simulated, not integer */
    int act_per_token;       /* dynamic symmetric scale per token (row) instead of a static one */
    double act_percentile;   /* for PTQ_AQ_PERCENTILE, e.g. 99.99 */
    int quant_attention;     /* also quantize both attention matrix products (q, k, v, probabilities) to abits */
    int noisyquant;          /* NoisyQuant on every block linear's input */
    int noisyquant_reference;/* the released code's variant: Gaussian base vector, shift + scale search */
    int noisyquant_unchecked;/* no held-out checks (layer, block, model): the noise that minimises each
                                layer's output MSE on all calibration rows is kept, as in the paper */
    uint64_t seed;           /* NoisyQuant noise */
    int bc_scope;            /* 0 = no Bias Compensation, else PTQ_BC_LINEAR | PTQ_BC_BLOCK | PTQ_BC_LOGITS */
    ptq_bc_shape bc_shape;
    ptq_bc_mode bc_mode;
    int ggml;                /* 1: each block linear into a ggml block type instead of ptq's grids (GGUF export,
                                ptq_linear.ggml): the type llama.cpp's quantizer picks for it under the llama
                                file type ggml_ftype (--pure: ggml_pure); wbits, group and sym are then unused */
    int ggml_ftype, ggml_pure;
    const struct ptq_calib_data *holdout; /* optional held-apart data for the BC report */
    ptq_bc_report_fn bc_report;
    ptq_callbacks cb;
    ptq_layer_report_fn report;
    void *report_user;
    const ptq_dist *dist;    /* NULL: one process */
    /* Called after block `layer` is quantized and has produced the next block's calibration inputs, in block
       order; the block is not used by the quantization again. ptq_model_stream_block fits it (it writes the block
       out and frees its packed weights). NULL: none. Not called by the NoisyQuant model check, which needs every
       block at the end (use --noisyquant-unchecked or no streaming). */
    ptq_status (*block_done)(void *user, ptq_model *m, int layer, ptq_error *err);
    int skip_layer_error;    /* 1: report NaN as each layer's relative output error instead of computing it (its
                                cost is O(out * in^2) per layer: hours on 7B shapes) */
    void *block_user;
    /* The LM head and the token embeddings (quant/head_embed.c, docs/GUIDE.md): 0 keeps them float32; 2, 3, 4 or
       8 packs them (the head RTN, or GPTQ on the final-norm activations with PTQ_WQ_GPTQ; the embeddings RTN,
       before calibration); 16 stores them as f16/bf16. Groups as `group` (0: per channel). A model whose head is
       its embedding table keeps one table: the two settings must then agree, or one of them be 0. */
    int head_bits, head_group, embed_bits, embed_group;
    ptq_calib_dtype calib_dtype; /* the activations between blocks; compact ones only for weight-only quantization
                                    without BC (those read float32 streams) */
} ptq_quant_params;
ptq_quant_params ptq_quant_default_params(void);

/* Quantize every linear layer inside the blocks, block by block: each block's calibration inputs come
 * from the already-quantized blocks before it. Norms stay float; the embeddings and the head too unless
 * embed_bits / head_bits say otherwise. */
ptq_status ptq_quantize_model(ptq_model *m, const ptq_calib_data *data, const ptq_quant_params *p, ptq_error *err);

/* Metadata recorded in a saved quantized model. */
typedef struct ptq_save_info {
    const char *source;     /* the model the file was made from */
    const char *calib_desc; /* e.g. "tinystories-valid-100.txt, 32 x 256 tokens, seed 1" */
    uint64_t calib_hash;    /* hash of the calibration tokens / pixels */
    const ptq_tokenizer *tokenizer; /* stored in the file, so that it runs without the model's tokenizer files
                                       (ptq_tokenizer_load reads it back from the .ptq); NULL: none */
} ptq_save_info;

/* Write the model (float or quantized) as a ptq safetensors file (docs/FORMAT.md), atomically. */
ptq_status ptq_model_save(const ptq_model *m, const char *path, const ptq_save_info *info, ptq_error *err);

/* Streaming save: the same file as ptq_model_save, byte for byte, written while the model is quantized.
 * ptq_model_stream_open checks nothing but creates a scratch file beside path (unlinked at once);
 * ptq_model_stream_block (a ptq_quant_params.block_done) moves block `layer`'s tensors out of memory into it and
 * frees the block's packed weights; ptq_model_stream_finish writes the rest and the file at path (atomically: a
 * temporary file renamed into place), after every block was streamed. Free with ptq_model_stream_free (after a
 * failure too: nothing is left behind). */
typedef struct ptq_model_stream ptq_model_stream;
ptq_status ptq_model_stream_open(const char *path, ptq_model_stream **out, ptq_error *err);
ptq_status ptq_model_stream_block(ptq_model_stream *s, ptq_model *m, int layer, ptq_error *err);
ptq_status ptq_model_stream_finish(ptq_model_stream *s, ptq_model *m, const ptq_save_info *info, ptq_error *err);
void ptq_model_stream_free(ptq_model_stream *s);

/* Storage of the packed linear layers: weights, and bits including scales and zero points. */
typedef struct ptq_quant_summary {
    int linears;          /* packed linear layers */
    int64_t weights;      /* weights in them */
    double bits;          /* total bits of codes + scales + zero points (+ permutations) */
    double bits_per_weight;
    int noisy_linears;    /* linears whose NoisyQuant noise is not zero */
} ptq_quant_summary;
void ptq_model_quant_summary(const ptq_model *m, ptq_quant_summary *s);
/* The summary of a streamed model (whose blocks' packed weights are freed): every block streamed plus the head. */
void ptq_model_stream_summary(const ptq_model_stream *s, ptq_quant_summary *out);

/* A 64-bit FNV-1a hash of bytes, to identify calibration data. */
uint64_t ptq_hash_bytes(const void *data, size_t n, uint64_t seed);

/* ---- tensors of the loaded model (for inspect) ---- */
typedef struct ptq_tensor_info {
    const char *name;
    const char *dtype; /* as stored in the source file */
    int ndim;
    int64_t shape[4];
} ptq_tensor_info;
int ptq_model_tensor_count(const ptq_model *m);
void ptq_model_tensor(const ptq_model *m, int i, ptq_tensor_info *info);

#ifdef __cplusplus
}
#endif
#endif
