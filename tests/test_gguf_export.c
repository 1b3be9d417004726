/* GGUF export against llama.cpp itself (the prebuilt libllama of node-llama-cpp, build-ref/): for every exported
 * type, on llama-shakespeare-256 (every type) and stories260K (llama2.c, rows of 64 and 172: llama.cpp's fallback
 * types),
 *   1. the file's tensors equal, byte for byte, what llama.cpp's own quantizer (llama_model_quantize, no importance
 *      matrix) writes from ptq's F32 export for the same file type: the grids, the RTN rounding and the per-tensor
 *      type rules (mixes, fallbacks) are llama.cpp's;
 *   2. llama.cpp loads it, and its logits on fixed tokens equal ptq's logits on the same file within a tolerance
 *      per type (llama.cpp rounds activations to 8 bits, or to f16 for F16 weights, before its dot products);
 *   3. llama.cpp's perplexity on the file (computed from its logits by tests/ref/llama_cpp_check.c with ptq eval's
 *      window protocol) equals ptq's on the same file and tokens;
 * and once per model: llama.cpp tokenizes the held-out text with the exported tokenizer into the ids ptq gives.
 * Also: a Bias Compensation carried as bias tensors is applied by llama.cpp (logits with biases agree too, and
 * differ from the file without them), and so is a GPTQ + BC file from the quantization pipeline.
 *
 * PTQ_GGUF_EVAL_TOKENS (default 513) sets how many held-out tokens the perplexity check uses ("all": the whole
 * text, as docs/RESULTS.md reports). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "io/gguf.h"
#include "models/gguf_export.h"
#include "models/model.h"
#include "ptq.h"
#include "testutil.h"
#include "gguf_refs.h"

typedef struct {
    const char *name;
    const char *path;
    ptq_model *m;
    ptq_tokenizer *t;
    int *eval;   /* held-out tokens (ptq's tokenization) */
    int64_t n_eval;
    const char *sep; /* the document separator of the held-out text */
    int ctx;
    char f32[700]; /* the F32 export */
} model_case;

static void export_to(model_case *mc, ptq_gguf_ftype ft, const char *path, ptq_gguf_export_stats *st) {
    ptq_gguf_export_opts o = {0};
    o.ftype = ft;
    o.tokenizer = mc->t;
    ptq_error err = {0};
    CHECK_MSG(ptq_gguf_export(mc->m, path, &o, st, &err) == PTQ_OK, "export %s %s: %s", mc->name,
              ptq_gguf_ftype_name(ft), err.msg);
}

/* 1: tensors equal llama_model_quantize's from the F32 export */
static void same_as_llama_quantize(model_case *mc, ptq_gguf_ftype ft, const char *ours) {
    gr_same_as_llama_quantize(mc->name, mc->f32, ft, ours);
}

/* 3: perplexity of llama.cpp and ptq on the same file and tokens; returns llama.cpp's mean CE */
static double ppl_agree(model_case *mc, ptq_model *g, const char *gguf, double tol, const char *what) {
    char tokf[700], cmd[6000], outf[700];
    snprintf(tokf, sizeof tokf, "%s/%s-eval.i32", tu_tmpdir(), mc->name);
    snprintf(outf, sizeof outf, "%s/ppl.txt", tu_tmpdir());
    int32_t *t32 = malloc((size_t)mc->n_eval * sizeof *t32);
    for (int64_t i = 0; i < mc->n_eval; i++) t32[i] = mc->eval[i];
    tu_write_file(tokf, t32, (size_t)mc->n_eval * sizeof *t32);
    free(t32);
    snprintf(cmd, sizeof cmd, "'%s' '%s' ppl '%s' '%s' %d > '%s'", g_check, g_bins, gguf, tokf, mc->ctx, outf);
    long scored = 0;
    double ce = NAN, ppl = NAN;
    FILE *f = system(cmd) == 0 ? fopen(outf, "r") : NULL;
    CHECK_MSG(f && fscanf(f, "%ld %lf %lf", &scored, &ce, &ppl) == 3, "llama.cpp perplexity failed: %s", cmd);
    if (f) fclose(f);
    ptq_ppl_params pp = ptq_ppl_default_params();
    pp.ctx = mc->ctx;
    ptq_ppl_result r;
    ptq_error err = {0};
    CHECK_MSG(ptq_eval_perplexity(g, mc->eval, mc->n_eval, &pp, &r, &err) == PTQ_OK, "ptq eval: %s", err.msg);
    printf("  %-8s %s ppl: llama.cpp %.6f (CE %.6f over %ld), ptq %.6f (CE %.6f): |dCE| %.2e\n", what, mc->name, ppl, ce,
           scored, r.ppl, r.mean_ce, fabs(ce - r.mean_ce));
    CHECK(scored == r.scored);
    CHECK_MSG(fabs(ce - r.mean_ce) <= tol, "%s %s: mean CE %.6f (llama.cpp) vs %.6f (ptq), tolerance %g", mc->name,
              what, ce, r.mean_ce, tol);
    return ce;
}

typedef struct {
    ptq_gguf_ftype ft;
    double logit_tol; /* max |ptq - llama.cpp| / max |logit| */
    double ce_tol;    /* |mean CE difference|, nats */
} type_case;

/* Tolerances, from llama.cpp's arithmetic and measured on these two models (docs/RESULTS.md lists every value):
 * F32 runs f32 dot products, so only the summation order differs (seen: 4e-7 of max |logit|, 2e-8 nats of mean
 * CE); F16 weights take activations rounded to f16, 2^-11 relative per value (seen: 4e-4, 1e-5 nats); quantized
 * weights take activations rounded to 8 bits per block of 32 (Q8_0, for Q4_0..Q8_0) or 256 (Q8_K, for the
 * k-quants), up to 1/254 of the block's largest value per input (seen: at most 2.3e-2 of max |logit|). That
 * rounding is noise llama.cpp adds, so its cross-entropy is a little higher than ptq's on the very same
 * weights (seen: up to 5.1e-3 nats on stories260K, whose 64-wide rows average least of it, 1.1e-3 on
 * llama-shakespeare-256); the bounds are about twice the largest seen. */
#define QT 5e-2, 1e-2
static const type_case k_types[] = {
    {PTQ_FT_F32, 1e-5, 1e-6}, {PTQ_FT_F16, 2e-3, 1e-4}, {PTQ_FT_Q8_0, QT},   {PTQ_FT_Q6_K, QT},   {PTQ_FT_Q5_K_M, QT},
    {PTQ_FT_Q5_K_S, QT},      {PTQ_FT_Q5_1, QT},        {PTQ_FT_Q5_0, QT},   {PTQ_FT_Q4_K_M, QT}, {PTQ_FT_Q4_K_S, QT},
    {PTQ_FT_Q4_1, QT},        {PTQ_FT_Q4_0, QT},        {PTQ_FT_Q3_K_L, QT}, {PTQ_FT_Q3_K_M, QT}, {PTQ_FT_Q3_K_S, QT},
    {PTQ_FT_Q2_K, QT},
};

static void check_type(model_case *mc, const type_case *tc, const int *toks, int n) {
    const char *tn = ptq_gguf_ftype_name(tc->ft);
    char path[800];
    snprintf(path, sizeof path, "%s/%s-%s.gguf", tu_tmpdir(), mc->name, tn);
    ptq_gguf_export_stats st = {0};
    export_to(mc, tc->ft, path, &st);
    if (tc->ft != PTQ_FT_F32) same_as_llama_quantize(mc, tc->ft, path);
    ptq_model *g = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_model_load(path, &g, &err) == PTQ_OK, "ptq cannot read its own %s: %s", path, err.msg);
    if (!g) return;
    int V = mc->m->cfg.vocab_size;
    float *a = ptq_logits(g, toks, n, V), *b = llama_logits(path, toks, n, V);
    if (b) {
        double sc, d = max_diff(a, b, (size_t)n * V, &sc);
        ptq_mmap mm;
        long long bytes = ptq_mmap_open(path, &mm, &err) == PTQ_OK ? (long long)mm.size : -1;
        if (bytes >= 0) ptq_mmap_close(&mm);
        printf("%-11s %-7s %9lld bytes %6.3f bpw  max |ptq - llama.cpp logit| %.3g (%.2e of max |logit| %.3g)\n",
               mc->name, tn, bytes, st.bits_per_weight, d, d / sc, sc);
        CHECK_MSG(d <= tc->logit_tol * sc, "%s %s: logits differ by %g (tolerance %g)", mc->name, tn, d,
                  tc->logit_tol * sc);
    }
    ppl_agree(mc, g, path, tc->ce_tol, tn);
    free(a);
    free(b);
    ptq_model_free(g);
    remove(path);
}

/* The held-out text through llama.cpp's tokenizer (from the exported file) and ptq's: the same ids. */
static void same_tokens(model_case *mc, const char *text_path) {
    char out[700], cmd[6000];
    snprintf(out, sizeof out, "%s/%s-llama-tokens.i32", tu_tmpdir(), mc->name);
    snprintf(cmd, sizeof cmd, "'%s' '%s' tokenize '%s' '%s' '%s' '%s'", g_check, g_bins, mc->f32, text_path, mc->sep,
             out);
    CHECK_MSG(system(cmd) == 0, "llama.cpp tokenize failed: %s", cmd);
    char *buf = NULL;
    size_t len = 0;
    ptq_error err = {0};
    CHECK_MSG(ptq_read_file(out, &buf, &len, &err) == PTQ_OK, "%s", err.msg);
    char *text = NULL;
    size_t tlen = 0;
    CHECK(ptq_read_file(text_path, &text, &tlen, &err) == PTQ_OK);
    int *ids = NULL;
    int64_t n = 0;
    CHECK_MSG(ptq_encode_documents(mc->t, text, tlen, mc->sep, 0, -1, &ids, &n, &err) == PTQ_OK, "%s", err.msg);
    int64_t nl = (int64_t)(len / 4), first = -1;
    for (int64_t i = 0; i < n && i < nl && first < 0; i++) {
        int32_t v;
        memcpy(&v, buf + 4 * i, 4);
        if (v != ids[i]) first = i;
    }
    printf("%s: held-out text: ptq %lld tokens, llama.cpp %lld%s\n", mc->name, (long long)n, (long long)nl,
           first < 0 && n == nl ? ", the same ids" : "");
    CHECK_MSG(n == nl && first < 0, "%s: tokenizations differ (first at %lld)", mc->name, (long long)first);
    free(ids);
    free(text);
    free(buf);
}

/* BC carried as biases: the export writes blk.N.*.bias (a block BC folded into ffn_down.bias), ptq reads them back
 * and llama.cpp applies them: its logits on the file agree with ptq's on the same file, and move away from
 * those of the file without biases by much more than that. */
static void biases_applied(model_case *mc, const int *toks, int n) {
    ptq_model *m = mc->m;
    int V = m->cfg.vocab_size, nv = m->cfg.n_layers * (PTQ_LIN_COUNT + 1);
    float **keep = calloc((size_t)nv, sizeof *keep); /* synthetic compensation, large enough to move the logits */
    for (int l = 0; l < m->cfg.n_layers; l++) {
        ptq_block *b = &m->blocks[l];
        for (int r = PTQ_LIN_Q; r <= PTQ_LIN_DOWN + 1; r++) {
            int len = r <= PTQ_LIN_DOWN ? b->lin[r].out : m->cfg.dim;
            float *v = keep[l * (PTQ_LIN_COUNT + 1) + r] = malloc((size_t)len * sizeof *v);
            tu_prng_fill(v, (size_t)len, (uint64_t)(l * 16 + r), 0.05, 0, 24);
            if (r <= PTQ_LIN_DOWN) b->lin[r].bc = v;
            else b->bc = v;
        }
    }
    char with[800], without[800];
    snprintf(with, sizeof with, "%s/%s-bc.gguf", tu_tmpdir(), mc->name);
    snprintf(without, sizeof without, "%s/%s-nobc.gguf", tu_tmpdir(), mc->name);
    export_to(mc, PTQ_FT_Q8_0, with, NULL);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        for (int r = PTQ_LIN_Q; r <= PTQ_LIN_DOWN; r++) m->blocks[l].lin[r].bc = NULL;
        m->blocks[l].bc = NULL;
    }
    for (int i = 0; i < nv; i++) free(keep[i]);
    free(keep);
    export_to(mc, PTQ_FT_Q8_0, without, NULL);
    ptq_model *g = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_model_load(with, &g, &err) == PTQ_OK, "ptq cannot read %s: %s", with, err.msg);
    float *ours = g ? ptq_logits(g, toks, n, V) : NULL, *lc = llama_logits(with, toks, n, V),
          *plain = llama_logits(without, toks, n, V);
    if (ours && lc && plain) {
        double sc, d = max_diff(ours, lc, (size_t)n * V, &sc), sc2, moved = max_diff(plain, lc, (size_t)n * V, &sc2);
        printf("%s with BC biases (Q8_0): max |ptq - llama.cpp logit| %.3g; the biases move llama.cpp's logits by %.3g\n",
               mc->name, d, moved);
        CHECK_MSG(d <= 5e-2 * sc, "%s: llama.cpp's logits with the BC biases differ from ptq's by %g", mc->name, d);
        CHECK_MSG(moved > 4 * d, "%s: the biases did not change llama.cpp's logits (%g)", mc->name, moved);
    }
    ptq_model_free(g);
    free(ours);
    free(lc);
    free(plain);
    remove(with);
    remove(without);
}

/* GPTQ + BC into Q4_0 by the quantization pipeline (calibrated on the held-out tokens after those scored): the
 * file carries the GPTQ blocks and the BC biases, and llama.cpp agrees with ptq on it as on an RTN file. */
static void gptq_bc(model_case *mc, int64_t n_all, const int *toks, int n) {
    ptq_model *m = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_model_load(mc->path, &m, &err) == PTQ_OK, "%s", err.msg);
    if (!m) return;
    int *win = NULL, T = 64, nw = 16;
    CHECK(ptq_calib_windows(mc->eval + mc->n_eval, n_all - mc->n_eval, nw, T, 1, &win, &err) == PTQ_OK);
    ptq_calib_data cd = {win, nw, T, NULL};
    ptq_quant_params qp = ptq_quant_default_params();
    qp.method = PTQ_WQ_GPTQ;
    qp.wbits = 8; /* unused with ggml types */
    qp.ggml = 1;
    qp.ggml_ftype = PTQ_FT_Q4_0;
    qp.bc_scope = PTQ_BC_LINEAR | PTQ_BC_BLOCK;
    CHECK_MSG(ptq_quantize_model(m, &cd, &qp, &err) == PTQ_OK, "GPTQ into Q4_0: %s", err.msg);
    char path[800];
    snprintf(path, sizeof path, "%s/%s-gptq-bc.gguf", tu_tmpdir(), mc->name);
    ptq_gguf_export_opts o = {0};
    o.ftype = PTQ_FT_Q4_0;
    o.tokenizer = mc->t;
    CHECK_MSG(ptq_gguf_export(m, path, &o, NULL, &err) == PTQ_OK, "export: %s", err.msg);
    ptq_model_free(m);
    free(win);
    ptq_gguf g;
    int biases = 0;
    if (ptq_gguf_open(path, &g, &err) == PTQ_OK) {
        for (int i = 0; i < g.n_tensors; i++) biases += strstr(g.tensors[i].name, ".bias") != NULL;
        ptq_gguf_close(&g);
    }
    CHECK_MSG(biases > 0, "%s: the GPTQ+BC file has no bias tensors", mc->name);
    ptq_model *back = NULL;
    CHECK_MSG(ptq_model_load(path, &back, &err) == PTQ_OK, "%s", err.msg);
    if (!back) return;
    int V = mc->m->cfg.vocab_size;
    float *a = ptq_logits(back, toks, n, V), *b = llama_logits(path, toks, n, V);
    if (b) {
        double sc, d = max_diff(a, b, (size_t)n * V, &sc);
        printf("%-11s GPTQ+BC Q4_0 (%d bias tensors): max |ptq - llama.cpp logit| %.3g (%.2e of max |logit|)\n",
               mc->name, biases, d, d / sc);
        CHECK_MSG(d <= 5e-2 * sc, "%s GPTQ+BC: logits differ by %g", mc->name, d);
    }
    ppl_agree(mc, back, path, 1e-2, "GPTQ+BC");
    free(a);
    free(b);
    ptq_model_free(back);
    remove(path);
}

static void run_model(model_case *mc, const char *model_path, const char *tok_path, const char *text_path,
                      const ptq_gguf_ftype *only, int n_only, int with_gptq) {
    ptq_error err = {0};
    if (ptq_model_load(model_path, &mc->m, &err) != PTQ_OK ||
        ptq_tokenizer_load_for_model(mc->m, tok_path, &mc->t, &err) != PTQ_OK) {
        CHECK_MSG(0, "%s: %s", model_path, err.msg);
        return;
    }
    char *text = NULL;
    size_t tlen = 0;
    CHECK(ptq_read_file(text_path, &text, &tlen, &err) == PTQ_OK);
    CHECK(ptq_encode_documents(mc->t, text, tlen, mc->sep, 0, -1, &mc->eval, &mc->n_eval, &err) == PTQ_OK);
    free(text);
    const char *env = getenv("PTQ_GGUF_EVAL_TOKENS");
    int64_t want = env && !strcmp(env, "all") ? mc->n_eval : env ? atoll(env) : 513, n_all = mc->n_eval;
    if (want >= 2 && want < mc->n_eval) mc->n_eval = want;
    snprintf(mc->f32, sizeof mc->f32, "%s/%s-F32-src.gguf", tu_tmpdir(), mc->name);
    export_to(mc, PTQ_FT_F32, mc->f32, NULL);
    same_tokens(mc, text_path);
    int toks[24];
    for (int i = 0; i < 24; i++) toks[i] = mc->eval[i];
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++) {
        int run = n_only == 0;
        for (int j = 0; j < n_only; j++) run |= only[j] == k_types[i].ft;
        if (run) check_type(mc, &k_types[i], toks, 24);
    }
    biases_applied(mc, toks, 24);
    if (with_gptq && n_all - mc->n_eval >= 1024) gptq_bc(mc, n_all, toks, 24);
    remove(mc->f32);
    free(mc->eval);
    ptq_tokenizer_free(mc->t);
    ptq_model_free(mc->m);
}

int main(void) {
    setup();
    char *shk = tu_data_path("llama-shakespeare-256");
    char *shk_text = tu_data_path("llama-shakespeare-256/shakespeare-eval.txt");
    char *st = tu_data_path("stories260K/stories260K.bin"), *st_tok = tu_data_path("stories260K/tok512.bin");
    char *st_text = tu_data_path("tinystories/tinystories-valid-100.txt");
    model_case a = {"shakespeare", shk, NULL, NULL, NULL, 0, "\n\n", 256, ""};
    run_model(&a, shk, NULL, shk_text, NULL, 0, 0);
    /* stories260K: every type; k-quants fall back to 32-block types (rows of 64) and to F16 (ffn_down's 172) */
    model_case b = {"stories260K", st, NULL, NULL, NULL, 0, "<|endoftext|>", 512, ""};
    run_model(&b, st, st_tok, st_text, NULL, 0, 1);
    free(shk);
    free(shk_text);
    free(st);
    free(st_tok);
    free(st_text);
    return tu_done("test_gguf_export");
}
