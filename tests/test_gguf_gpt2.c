/* GPT-2 GGUF export against llama.cpp itself (its gpt2 architecture, the prebuilt libllama of node-llama-cpp in
 * build-ref/), on two GPT-2 models written here as Hugging Face folders:
 *   - tests/data/hf/gpt2 (its config.json, weights from its manifest's PRNG seeds): widths 48, so no block type
 *     fits its rows and llama.cpp's quantizer falls back to F16 (ffn_down's rows of 192 take the 32-blocks);
 *     a 150-token byte-level vocabulary (printable bytes + <|endoftext|>, no merges);
 *   - a synthetic GPT-2 with widths 256 and 512 and an untied head, so every type fits, with the byte-level BPE of
 *     tests/data/gpt2tok (256 bytes + 2000 merges + <|endoftext|>).
 * For each type:
 *   1. the file's tensors equal, byte for byte, those llama_model_quantize writes from ptq's F32 export (the type
 *      rules for gpt2: attn_qkv takes llama.cpp's attn_v rules, position_embd stays F32, the fallbacks);
 *   2. llama.cpp loads it and its logits on fixed tokens equal ptq's logits on the same file within the tolerances
 *      below (llama.cpp rounds activations to 8 bits, or f16, before its dot products, and its GELU to f16);
 *   3. llama.cpp's cross-entropy on a token stream equals ptq eval's on the same file;
 * and: ptq reads its F32 export back into exactly the source model's logits; llama.cpp tokenizes text with the
 * exported gpt2 vocabulary (tokenizer.ggml.pre "gpt-2", merges) into ptq's ids; Bias Compensation is carried in
 * the existing biases and applied by llama.cpp; a GPTQ + BC file from the quantization pipeline runs in llama.cpp
 * as ptq runs it. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "core/file.h"
#include "io/gguf.h"
#include "io/safetensors_write.h"
#include "models/gguf_export.h"
#include "models/model.h"
#include "ptq.h"
#include "testutil.h"
#include "gguf_refs.h"
#include "text/tokenizer_internal.h"

static cJSON *read_json(const char *path) {
    char *text = NULL;
    size_t size = 0;
    ptq_error err;
    if (ptq_read_file(path, &text, &size, &err) != PTQ_OK) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static void put_config(const char *dir, const char *text) {
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(tu_write_file(path, text, strlen(text)) == 0);
}

static void add(ptq_st_writer *w, const char *name, int ndim, const int64_t *shape, uint64_t seed, double scale,
                double offset) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *v = malloc(n * sizeof *v);
    tu_prng_fill(v, n, seed, scale, offset, 16);
    ptq_error err = {0};
    CHECK_MSG(ptq_st_writer_add_f32(w, name, PTQ_DT_F32, ndim, shape, v, &err) == PTQ_OK, "%s", err.msg);
    free(v);
}

static void save(ptq_st_writer *w, const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ptq_error err = {0};
    CHECK_MSG(ptq_st_writer_save(w, path, &err) == PTQ_OK, "%s", err.msg);
    ptq_st_writer_free(w);
}

/* tests/data/hf/gpt2, weights from its manifest */
static void write_small(const char *dir) {
    char path[800];
    snprintf(path, sizeof path, "%s/tests/data/hf/gpt2/manifest.json", PTQ_SOURCE_DIR);
    cJSON *man = read_json(path);
    snprintf(path, sizeof path, "%s/tests/data/hf/gpt2/config.json", PTQ_SOURCE_DIR);
    char *cfg = NULL;
    size_t n = 0;
    ptq_error err = {0};
    CHECK(man && ptq_read_file(path, &cfg, &n, &err) == PTQ_OK);
    if (!man || !cfg) return;
    put_config(dir, cfg);
    free(cfg);
    ptq_st_writer *w = NULL;
    CHECK(ptq_st_writer_new(&w, &err) == PTQ_OK);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(man, "tensors")) {
        const cJSON *sh = cJSON_GetObjectItem(e, "shape");
        int64_t shape[4];
        int nd = cJSON_GetArraySize(sh);
        for (int d = 0; d < nd && d < 4; d++) shape[d] = (int64_t)cJSON_GetArrayItem(sh, d)->valuedouble;
        size_t cnt = 1;
        for (int d = 0; d < nd; d++) cnt *= (size_t)shape[d];
        float *v = malloc(cnt * sizeof *v);
        tu_prng_fill(v, cnt, (uint64_t)cJSON_GetObjectItem(e, "seed")->valuedouble,
                     cJSON_GetObjectItem(e, "scale")->valuedouble, cJSON_GetObjectItem(e, "offset")->valuedouble,
                     (int)cJSON_GetObjectItem(e, "bits")->valuedouble);
        CHECK(ptq_st_writer_add_f32(w, cJSON_GetObjectItem(e, "name")->valuestring, PTQ_DT_F32, nd, shape, v, &err) ==
              PTQ_OK);
        free(v);
    }
    cJSON_Delete(man);
    save(w, dir);
}

/* dim 256, 2 layers of 4 heads, MLP 512, 64 positions, gpt2tok's 2257 tokens, untied head; Conv1D weights are
 * [in][out] as in Hugging Face's files */
enum { BD = 256, BL = 2, BH = 4, BF = 512, BP = 64, BV = 2257 };
static void write_big(const char *dir) {
    char cfg[1024], path[1200];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\": [\"GPT2LMHeadModel\"], \"model_type\": \"gpt2\", \"n_embd\": %d, \"n_layer\": %d, "
             "\"n_head\": %d, \"n_positions\": %d, \"n_ctx\": %d, \"vocab_size\": %d, \"n_inner\": %d, "
             "\"activation_function\": \"gelu_new\", \"layer_norm_epsilon\": 1e-05, \"bos_token_id\": %d, "
             "\"eos_token_id\": %d, \"tie_word_embeddings\": false}",
             BD, BL, BH, BP, BP, BV, BF, BV - 1, BV - 1);
    put_config(dir, cfg);
    static const char *const files[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        char *buf = NULL;
        size_t n = 0;
        ptq_error err = {0};
        snprintf(path, sizeof path, "%s/tests/data/gpt2tok/%s", PTQ_SOURCE_DIR, files[i]);
        CHECK_MSG(ptq_read_file(path, &buf, &n, &err) == PTQ_OK, "%s", err.msg);
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        CHECK(buf && tu_write_file(path, buf, n) == 0);
        free(buf);
    }
    ptq_st_writer *w = NULL;
    ptq_error err = {0};
    CHECK(ptq_st_writer_new(&w, &err) == PTQ_OK);
    const int64_t wte[2] = {BV, BD}, wpe[2] = {BP, BD}, vec[1] = {BD}, qkv[2] = {BD, 3 * BD}, qkvb[1] = {3 * BD},
                  o[2] = {BD, BD}, fc[2] = {BD, BF}, fcb[1] = {BF}, proj[2] = {BF, BD};
    add(w, "transformer.wte.weight", 2, wte, 1, 0.5, 0);
    add(w, "transformer.wpe.weight", 2, wpe, 2, 0.2, 0);
    add(w, "lm_head.weight", 2, wte, 3, 0.3, 0);
    char nm[128];
    for (int l = 0; l < BL; l++) {
        uint64_t s = 100 + 20 * (uint64_t)l;
#define N(x) (snprintf(nm, sizeof nm, "transformer.h.%d.%s", l, x), nm)
        add(w, N("ln_1.weight"), 1, vec, s + 0, 0.2, 1);
        add(w, N("ln_1.bias"), 1, vec, s + 1, 0.1, 0);
        add(w, N("attn.c_attn.weight"), 2, qkv, s + 2, 0.12, 0);
        add(w, N("attn.c_attn.bias"), 1, qkvb, s + 3, 0.05, 0);
        add(w, N("attn.c_proj.weight"), 2, o, s + 4, 0.1, 0);
        add(w, N("attn.c_proj.bias"), 1, vec, s + 5, 0.05, 0);
        add(w, N("ln_2.weight"), 1, vec, s + 6, 0.2, 1);
        add(w, N("ln_2.bias"), 1, vec, s + 7, 0.1, 0);
        add(w, N("mlp.c_fc.weight"), 2, fc, s + 8, 0.1, 0);
        add(w, N("mlp.c_fc.bias"), 1, fcb, s + 9, 0.05, 0);
        add(w, N("mlp.c_proj.weight"), 2, proj, s + 10, 0.05, 0);
        add(w, N("mlp.c_proj.bias"), 1, vec, s + 11, 0.05, 0);
#undef N
    }
    add(w, "transformer.ln_f.weight", 1, vec, 90, 0.2, 1);
    add(w, "transformer.ln_f.bias", 1, vec, 91, 0.1, 0);
    save(w, dir);
}

/* GPT-2's byte -> character map (bytes_to_unicode): printable bytes stand for themselves, the others take the
 * characters from U+0100 on, in byte order; written as UTF-8 */
static void byte_token(int byte, char out[4]) {
    int printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174, n = 0;
    for (int b = 0; b < byte; b++) n += !((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174);
    unsigned cp = printable ? (unsigned)byte : 256u + (unsigned)n;
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    }
}

/* 150 tokens for the small model: the 128 ASCII bytes, 21 merges of tests/data/gpt2tok/merges.txt whose parts are
 * tokens already, and <|endoftext|> (149, BOS = EOS as its config says) */
static ptq_tokenizer *small_tokenizer(void) {
    char path[800];
    snprintf(path, sizeof path, "%s/tests/data/gpt2tok/merges.txt", PTQ_SOURCE_DIR);
    char *text = NULL;
    size_t len = 0;
    ptq_error err = {0};
    CHECK_MSG(ptq_read_file(path, &text, &len, &err) == PTQ_OK, "%s", err.msg);
    ptq_tok_spec s;
    memset(&s, 0, sizeof s);
    s.model = PTQ_TOK_BYTE_BPE;
    snprintf(s.pre, sizeof s.pre, "gpt-2");
    s.n_tokens = 150;
    s.tokens = calloc(150, sizeof *s.tokens);
    s.merges = calloc(150, sizeof *s.merges);
    int n = 0;
    for (; n < 128; n++) {
        char tk[4];
        byte_token(n, tk);
        s.tokens[n] = strdup(tk);
    }
    for (char *line = text ? strtok(text, "\n") : NULL; line && n < 149; line = strtok(NULL, "\n")) {
        char *sp = strchr(line, ' ');
        if (line[0] == '#' || !sp) continue;
        *sp = 0;
        int have = 0;
        for (int i = 0; i < n; i++) have += !strcmp(s.tokens[i], line) + !strcmp(s.tokens[i], sp + 1);
        if (have < 2) continue;
        char joined[64];
        snprintf(joined, sizeof joined, "%s%s", line, sp + 1);
        *sp = ' ';
        s.merges[s.n_merges++] = strdup(line);
        s.tokens[n++] = strdup(joined);
    }
    free(text);
    CHECK(n == 149);
    s.tokens[149] = strdup("<|endoftext|>");
    s.types = calloc(150, sizeof *s.types);
    for (int i = 0; i < 150; i++) s.types[i] = i == 149 ? PTQ_TOKTYPE_CONTROL : PTQ_TOKTYPE_NORMAL;
    s.bos = s.eos = 149;
    s.unk = s.pad = -1;
    ptq_tokenizer *t = NULL;
    CHECK_MSG(ptq_tokenizer_from_spec(&s, &t, &err) == PTQ_OK, "%s", err.msg);
    ptq_tok_spec_free(&s);
    return t;
}

typedef struct {
    const char *name;
    ptq_model *m;
    ptq_tokenizer *t;
    int toks[24];
    int *stream; /* tokens for the cross-entropy check */
    int64_t n_stream;
    int ctx;
    char f32[700];
} gcase;

static void export_to(gcase *g, ptq_gguf_ftype ft, const char *path, ptq_gguf_export_stats *st) {
    ptq_gguf_export_opts o = {0};
    o.ftype = ft;
    o.tokenizer = g->t;
    ptq_error err = {0};
    CHECK_MSG(ptq_gguf_export(g->m, path, &o, st, &err) == PTQ_OK, "export %s %s: %s", g->name,
              ptq_gguf_ftype_name(ft), err.msg);
}

/* ptq and llama.cpp on the same file: logits within logit_tol of the logit range, mean CE within ce_tol */
static void agree(gcase *g, const char *path, const char *what, double logit_tol, double ce_tol) {
    ptq_model *back = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_model_load(path, &back, &err) == PTQ_OK, "ptq cannot read %s: %s", path, err.msg);
    if (!back) return;
    int V = g->m->cfg.vocab_size;
    float *a = ptq_logits(back, g->toks, 24, V), *b = llama_logits(path, g->toks, 24, V);
    double sc = 0, d = b ? max_diff(a, b, (size_t)24 * V, &sc) : NAN;
    long scored = 0;
    double ce = gr_llama_ce(path, g->stream, g->n_stream, g->ctx, &scored);
    ptq_ppl_params pp = ptq_ppl_default_params();
    pp.ctx = g->ctx;
    ptq_ppl_result r = {0};
    CHECK_MSG(ptq_eval_perplexity(back, g->stream, g->n_stream, &pp, &r, &err) == PTQ_OK, "ptq eval: %s", err.msg);
    printf("%-6s %-8s max |ptq - llama.cpp logit| %.3g (%.2e of %.3g); CE llama.cpp %.6f ptq %.6f |d| %.1e\n", g->name,
           what, d, d / sc, sc, ce, r.mean_ce, fabs(ce - r.mean_ce));
    CHECK_MSG(b && d <= logit_tol * sc, "%s %s: logits differ by %g (tolerance %g)", g->name, what, d, logit_tol * sc);
    CHECK_MSG(scored == r.scored && fabs(ce - r.mean_ce) <= ce_tol, "%s %s: CE %.6f (llama.cpp, %ld) vs %.6f (ptq, %lld)",
              g->name, what, ce, scored, r.mean_ce, (long long)r.scored);
    free(a);
    free(b);
    ptq_model_free(back);
}

/* Tolerances: as test_gguf_export.c's, except that F32 and F16 are wider: llama.cpp's GELU rounds its input and
 * output to f16 (a table over f16, GGML_GELU_FP16 in ggml-cpu/vec.h), ~5e-4 relative per MLP activation (seen:
 * 2.2e-4 of max |logit| and 1e-4 nats for F32, 4.9e-4 and 2e-4 nats for F16; quantized types as for llama: up to
 * 1.7e-2 and 6.2e-3 nats).
 * The first 7 by default (PTQ_GGUF_ALL_TYPES=1: all): F32, F16, a 32-block type of each kind, and the k-quant mixes
 * whose attn_qkv rules differ (Q4_K_M: Q6_K in the more_bits layers, Q3_K_M: Q5_K in the first two, Q2_K: Q3_K) */
#define QT 5e-2, 1e-2
static const struct {
    ptq_gguf_ftype ft;
    double logit_tol, ce_tol;
} k_types[] = {
    {PTQ_FT_F32, 1e-3, 5e-4}, {PTQ_FT_F16, 3e-3, 1e-3}, {PTQ_FT_Q8_0, QT},   {PTQ_FT_Q4_0, QT},
    {PTQ_FT_Q4_K_M, QT},      {PTQ_FT_Q3_K_M, QT},      {PTQ_FT_Q2_K, QT},   {PTQ_FT_Q6_K, QT},
    {PTQ_FT_Q5_K_M, QT},      {PTQ_FT_Q5_0, QT},        {PTQ_FT_Q4_1, QT},   {PTQ_FT_Q5_1, QT},
    {PTQ_FT_Q5_K_S, QT},      {PTQ_FT_Q4_K_S, QT},      {PTQ_FT_Q3_K_L, QT}, {PTQ_FT_Q3_K_S, QT},
};
#define N_TYPES ((int)(sizeof k_types / sizeof *k_types))

static void check_types(gcase *g, int n_types) {
    for (int i = 0; i < n_types; i++) {
        const char *tn = ptq_gguf_ftype_name(k_types[i].ft);
        char path[800];
        snprintf(path, sizeof path, "%s/%s-%s.gguf", tu_tmpdir(), g->name, tn);
        ptq_gguf_export_stats st = {0};
        export_to(g, k_types[i].ft, path, &st);
        if (k_types[i].ft != PTQ_FT_F32) gr_same_as_llama_quantize(g->name, g->f32, k_types[i].ft, path);
        agree(g, path, tn, k_types[i].logit_tol, k_types[i].ce_tol);
        remove(path);
    }
}

/* the F32 export read back by ptq gives the source model's logits exactly (weights copied, biases included) */
static void f32_roundtrip(gcase *g) {
    ptq_model *back = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_model_load(g->f32, &back, &err) == PTQ_OK, "%s", err.msg);
    if (!back) return;
    int V = g->m->cfg.vocab_size;
    float *a = ptq_logits(g->m, g->toks, 24, V), *b = ptq_logits(back, g->toks, 24, V);
    double sc, d = max_diff(a, b, (size_t)24 * V, &sc);
    printf("%-6s F32 export read back: max |logit diff| %g\n", g->name, d);
    CHECK_MSG(d == 0, "%s: the F32 GGUF gives other logits than the source model (%g)", g->name, d);
    CHECK(back->cfg.arch == PTQ_ARCH_GPT2 && back->cfg.max_seq == g->m->cfg.max_seq);
    free(a);
    free(b);
    ptq_model_free(back);
}

/* synthetic channel and block BC, written into the existing biases: llama.cpp's logits follow */
static void bc_carried(gcase *g) {
    ptq_model *m = g->m;
    static const ptq_lin_role roles[] = {PTQ_LIN_QKV, PTQ_LIN_O, PTQ_LIN_UP, PTQ_LIN_DOWN};
    float *keep[16] = {0};
    int k = 0;
    for (int l = 0; l < m->cfg.n_layers && l < 3; l++) {
        for (int r = 0; r < 4; r++) {
            ptq_linear *lin = &m->blocks[l].lin[roles[r]];
            keep[k] = malloc((size_t)lin->out * sizeof(float));
            tu_prng_fill(keep[k], (size_t)lin->out, (uint64_t)(l * 8 + r + 500), 0.1, 0, 24);
            lin->bc = keep[k++];
        }
        keep[k] = malloc((size_t)m->cfg.dim * sizeof(float));
        tu_prng_fill(keep[k], (size_t)m->cfg.dim, (uint64_t)(l * 8 + 600), 0.1, 0, 24);
        m->blocks[l].bc = keep[k++];
    }
    char with[800], without[800];
    snprintf(with, sizeof with, "%s/%s-bc.gguf", tu_tmpdir(), g->name);
    snprintf(without, sizeof without, "%s/%s-nobc.gguf", tu_tmpdir(), g->name);
    export_to(g, PTQ_FT_Q8_0, with, NULL);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        for (int r = 0; r < 4; r++) m->blocks[l].lin[roles[r]].bc = NULL;
        m->blocks[l].bc = NULL;
    }
    for (int i = 0; i < k; i++) free(keep[i]);
    export_to(g, PTQ_FT_Q8_0, without, NULL);
    int V = m->cfg.vocab_size;
    float *lc = llama_logits(with, g->toks, 24, V), *plain = llama_logits(without, g->toks, 24, V);
    ptq_model *back = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_model_load(with, &back, &err) == PTQ_OK, "%s", err.msg);
    float *ours = back ? ptq_logits(back, g->toks, 24, V) : NULL;
    if (lc && plain && ours) {
        double sc, d = max_diff(ours, lc, (size_t)24 * V, &sc), sc2, moved = max_diff(plain, lc, (size_t)24 * V, &sc2);
        printf("%-6s BC in the biases (Q8_0): max |ptq - llama.cpp logit| %.3g; the BC moves llama.cpp's logits by %.3g\n",
               g->name, d, moved);
        CHECK_MSG(d <= 5e-2 * sc, "%s: with BC, logits differ by %g", g->name, d);
        CHECK_MSG(moved > 4 * d, "%s: the BC did not reach llama.cpp's logits (%g)", g->name, moved);
    }
    free(lc);
    free(plain);
    free(ours);
    ptq_model_free(back);
    remove(with);
    remove(without);
}

/* GPTQ + BC into Q4_K_M by the pipeline (calibrated on the stream's tail), exported and run by llama.cpp */
static void gptq_bc(gcase *g, const char *model_dir, const int *calib, int64_t n_calib) {
    ptq_model *m = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_model_load(model_dir, &m, &err) == PTQ_OK, "%s", err.msg);
    if (!m) return;
    int *win = NULL, T = m->cfg.max_seq < 64 ? m->cfg.max_seq : 64, nw = 8;
    CHECK(ptq_calib_windows(calib, n_calib, nw, T, 1, &win, &err) == PTQ_OK);
    ptq_calib_data cd = {win, nw, T, NULL};
    ptq_quant_params qp = ptq_quant_default_params();
    qp.method = PTQ_WQ_GPTQ;
    qp.ggml = 1;
    qp.ggml_ftype = PTQ_FT_Q4_K_M;
    qp.bc_scope = PTQ_BC_LINEAR | PTQ_BC_BLOCK;
    CHECK_MSG(ptq_quantize_model(m, &cd, &qp, &err) == PTQ_OK, "GPTQ into Q4_K_M: %s", err.msg);
    char path[800];
    snprintf(path, sizeof path, "%s/%s-gptq-bc.gguf", tu_tmpdir(), g->name);
    ptq_model *keep = g->m;
    g->m = m;
    export_to(g, PTQ_FT_Q4_K_M, path, NULL);
    agree(g, path, "GPTQ+BC", QT);
    g->m = keep;
    ptq_model_free(m);
    free(win);
    remove(path);
}

/* llama.cpp tokenizes text with the exported vocabulary into ptq's ids */
static void same_tokens(gcase *g, const char *text_path) {
    char out[700], cmd[6000];
    snprintf(out, sizeof out, "%s/%s-llama-tokens.i32", tu_tmpdir(), g->name);
    snprintf(cmd, sizeof cmd, "'%s' '%s' tokenize '%s' '%s' '\n\n' '%s'", g_check, g_bins, g->f32, text_path, out);
    CHECK_MSG(system(cmd) == 0, "llama.cpp tokenize failed: %s", cmd);
    char *buf = NULL, *text = NULL;
    size_t len = 0, tlen = 0;
    ptq_error err = {0};
    CHECK_MSG(ptq_read_file(out, &buf, &len, &err) == PTQ_OK, "%s", err.msg);
    CHECK(ptq_read_file(text_path, &text, &tlen, &err) == PTQ_OK);
    int *ids = NULL;
    int64_t n = 0;
    CHECK_MSG(ptq_encode_documents(g->t, text, tlen, "\n\n", 0, -1, &ids, &n, &err) == PTQ_OK, "%s", err.msg);
    int64_t k = 0; /* ptq eval's protocol puts BOS before every document; GPT-2's tokenizer adds none */
    for (int64_t i = 0; i < n; i++)
        if (ids[i] != g->m->cfg.bos_id) ids[k++] = ids[i];
    n = k;
    int64_t nl = (int64_t)(len / 4), first = -1;
    for (int64_t i = 0; buf && i < n && i < nl && first < 0; i++) {
        int32_t v;
        memcpy(&v, buf + 4 * i, 4);
        if (v != ids[i]) first = i;
    }
    printf("%-6s text through the exported tokenizer: ptq %lld ids, llama.cpp %lld%s\n", g->name, (long long)n,
           (long long)nl, n == nl && first < 0 ? ", the same" : "");
    CHECK_MSG(n == nl && first < 0 && n > 1000, "%s: tokenizations differ (first at %lld)", g->name, (long long)first);
    free(ids);
    free(text);
    free(buf);
}

static void mkdir_p(const char *dir) { CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST); }

static void run(gcase *g, const char *dir, ptq_tokenizer *tok, int n_types, const char *text_path) {
    ptq_error err = {0};
    CHECK_MSG(ptq_model_load(dir, &g->m, &err) == PTQ_OK, "%s: %s", dir, err.msg);
    if (!g->m) return;
    g->t = tok;
    if (!g->t) CHECK_MSG(ptq_tokenizer_load_for_model(g->m, dir, &g->t, &err) == PTQ_OK, "%s", err.msg);
    if (!g->t) return;
    int V = g->m->cfg.vocab_size;
    int64_t n_all = 0;
    int *all = NULL;
    if (text_path) { /* real text through the model's tokenizer */
        char *text = NULL;
        size_t tlen = 0;
        CHECK(ptq_read_file(text_path, &text, &tlen, &err) == PTQ_OK);
        CHECK(ptq_encode_documents(g->t, text, tlen, "\n\n", 0, -1, &all, &n_all, &err) == PTQ_OK);
        free(text);
    } else { /* fixed pseudo-random ids */
        n_all = 1024;
        all = malloc((size_t)n_all * sizeof *all);
        uint64_t x = 12345;
        for (int64_t i = 0; i < n_all; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            all[i] = (int)((x >> 33) % (uint64_t)V);
        }
    }
    g->ctx = g->m->cfg.max_seq;
    g->stream = all;
    g->n_stream = n_all < 4 * (g->ctx + 1) ? n_all / 2 : 2 * (g->ctx + 1);
    for (int i = 0; i < 24; i++) g->toks[i] = all[i];
    snprintf(g->f32, sizeof g->f32, "%s/%s-F32-src.gguf", tu_tmpdir(), g->name);
    export_to(g, PTQ_FT_F32, g->f32, NULL);
    f32_roundtrip(g);
    if (text_path) same_tokens(g, text_path);
    check_types(g, n_types);
    bc_carried(g);
    gptq_bc(g, dir, all + g->n_stream, n_all - g->n_stream);
    remove(g->f32);
    free(all);
    ptq_tokenizer_free(g->t);
    ptq_model_free(g->m);
}

int main(int argc, char **argv) {
    (void)argc;
    /* tiny matrices: OpenMP's spinning workers would burn more CPU than the work (as test_qkernels does) */
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0) execv("/proc/self/exe", argv);
    setup();
    char dir[800], text[800];
    /* the small model: F32, F16, Q8_0, Q4_K_M (all F16 but ffn_down, whose rows of 192 take 32-block types) */
    snprintf(dir, sizeof dir, "%s/gpt2-48", tu_tmpdir());
    mkdir_p(dir);
    write_small(dir);
    gcase a = {"gpt2", NULL, NULL, {0}, NULL, 0, 0, ""};
    const char *env = getenv("PTQ_GGUF_ALL_TYPES");
    int all_types = env && !strcmp(env, "1");
    run(&a, dir, small_tokenizer(), all_types ? N_TYPES : 4, NULL);
    /* the 256-wide model: 7 types (all 16 with PTQ_GGUF_ALL_TYPES=1), on wikitext through gpt2tok */
    snprintf(dir, sizeof dir, "%s/gpt2-256", tu_tmpdir());
    mkdir_p(dir);
    write_big(dir);
    char *wt = tu_data_path("wikitext-2/wikitext2-raw-test.txt");
    char *buf = NULL;
    size_t n = 0;
    ptq_error err = {0};
    CHECK(ptq_read_file(wt, &buf, &n, &err) == PTQ_OK);
    snprintf(text, sizeof text, "%s/wikitext-head.txt", tu_tmpdir());
    CHECK(buf && tu_write_file(text, buf, n < 40000 ? n : 40000) == 0);
    free(buf);
    free(wt);
    gcase b = {"gpt256", NULL, NULL, {0}, NULL, 0, 0, ""};
    run(&b, dir, NULL, all_types ? N_TYPES : 7, text);
    return tu_done("test_gguf_gpt2");
}
