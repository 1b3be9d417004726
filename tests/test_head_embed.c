/* Quantized and 16-bit LM head and token embeddings (quant/head_embed.c, --head-bits/--embed-bits):
 * - a packed embedding lookup equals ptq_qweight_dequant_row, and every value lies on RTN's grid within half a step
 *   of the float table (2, 3, 4, 8 bits; groups of 32 and per channel);
 * - the packed head's logits equal the float path's logits on the dequantized weights within float rounding
 *   (RTN and GPTQ with act-order, one row through the GEMV, several through the GEMM);
 * - a saved file loads back into the same tables and the same logits bit for bit (untied llama-shakespeare-256
 *   with a GPTQ head and packed embeddings; tied stories260K with its one packed table; 16-bit tables), files
 *   without these options stay format version 2;
 * - contradictory or bad options fail naming the options. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "kernels/qweight.h"
#include "models/forward.h"
#include "ops/ops.h"
#include "quant/head_embed.h"
#include "quant/quantizer.h"
#include "testutil.h"

static ptq_model *load(const char *path) {
    ptq_model *m = NULL;
    ptq_error e;
    if (ptq_model_load(path, &m, &e) != PTQ_OK) fprintf(stderr, "%s: %s\n", path, e.msg);
    return m;
}

/* Calibration windows of pseudo-random tokens (the statements below hold for any data). */
static ptq_status quantize(ptq_model *m, ptq_quant_params *p, ptq_error *e) {
    static int toks[4 * 32];
    for (int i = 0; i < 4 * 32; i++) toks[i] = i % 32 == 0 ? 1 : 3 + (i * 7919) % 500;
    ptq_calib_data d = {toks, 4, 32, NULL};
    return ptq_quantize_model(m, &d, p, e);
}

static ptq_quant_params params(int wbits, ptq_wq_method method) {
    ptq_quant_params p = ptq_quant_default_params();
    p.wbits = wbits;
    p.group = 32;
    p.method = method;
    return p;
}

static void test_lookup(const char *path) {
    const int bits[] = {2, 3, 4, 8}, groups[] = {32, 0};
    for (int bi = 0; bi < 4; bi++)
        for (int gi = 0; gi < 2; gi++) {
            ptq_model *m = load(path);
            if (!m) {
                CHECK(0);
                return;
            }
            ptq_quant_params p = params(4, PTQ_WQ_RTN);
            p.embed_bits = bits[bi];
            p.embed_group = groups[gi];
            ptq_error e;
            CHECK(ptq_embed_quantize(m, &p, &e) == PTQ_OK);
            const ptq_qweight *q = m->tok_emb_q;
            int V = m->cfg.vocab_size, D = m->cfg.embed_dim;
            CHECK(q && q->in == D && q->out == V && q->bits == bits[bi]);
            if (!q) {
                ptq_model_free(m);
                continue;
            }
            int toks[4] = {0, 1, V / 2, V - 1};
            float *x = malloc(sizeof(float) * 4 * (size_t)D), *row = malloc(sizeof(float) * (size_t)D);
            CHECK(ptq_embed_tokens(m, toks, 4, 0, x, &e) == PTQ_OK);
            for (int i = 0; i < 4; i++) {
                ptq_qweight_dequant_row(q, toks[i], row);
                CHECK_MSG(!memcmp(row, x + (size_t)i * D, sizeof(float) * (size_t)D), "bits %d group %d token %d",
                          bits[bi], groups[gi], toks[i]);
            }
            /* every row: within half a step of the float table (plus the clamp an fp16-rounded scale may cause) */
            double worst = 0;
            int maxq = (1 << bits[bi]) - 1;
            for (int r = 0; r < V; r++) {
                ptq_qweight_dequant_row(q, r, row);
                for (int j = 0; j < D; j++) {
                    float s = ptq_f16_to_f32(q->scales[(size_t)r * q->n_groups + j / q->group]);
                    double err = fabs(row[j] - m->tok_emb[(size_t)r * D + j]) / (0.5 * s + maxq * s / 1024.0);
                    worst = err > worst ? err : worst;
                }
            }
            CHECK_MSG(worst <= 1.0, "bits %d group %d: an embedding value is %.3f half-steps off", bits[bi],
                      groups[gi], worst);
            free(x);
            free(row);
            ptq_model_free(m);
        }
}

/* The head's logits on x [rows][dim] through the packed path, against the float path (sgemv/sgemm) on the
 * dequantized weights: equal within float rounding, |diff| <= 2 n eps * sum_j |w_oj h_j|. */
static void check_head_exact(ptq_model *m, int rows, const char *what) {
    const ptq_config *c = &m->cfg;
    int V = m->head.out, D = m->head.in;
    float *x = malloc(sizeof(float) * (size_t)rows * c->dim), *h = malloc(sizeof(float) * (size_t)rows * c->dim);
    float *a = malloc(sizeof(float) * (size_t)rows * V), *b = malloc(sizeof(float) * (size_t)rows * V);
    float *wd = malloc(sizeof(float) * (size_t)V * D);
    tu_prng_fill(x, (size_t)rows * c->dim, 7, 2.0, 0.0, 24);
    for (int o = 0; o < V; o++) ptq_qweight_dequant_row(m->head.q, o, wd + (size_t)o * D);
    ptq_error e;
    CHECK(ptq_head_forward(m, x, rows, a, &e) == PTQ_OK);
    ptq_linear keep = m->head;
    m->head.q = NULL;
    m->head.w = wd;
    CHECK(ptq_head_forward(m, x, rows, b, &e) == PTQ_OK);
    m->head = keep;
    ptq_norm_apply(c, &m->final_norm, x, rows, h);
    double worst = 0;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < V; o++) {
            double l1 = 0;
            for (int j = 0; j < D; j++) l1 += fabs((double)wd[(size_t)o * D + j] * h[(size_t)r * D + j]);
            double bound = 2.0 * D * 5.96e-8 * l1 + 1e-30;
            double d = fabs((double)a[(size_t)r * V + o] - b[(size_t)r * V + o]) / bound;
            worst = d > worst ? d : worst;
        }
    CHECK_MSG(worst <= 1.0, "%s, %d rows: packed head logits differ from the dequantized float path by %.2f bounds",
              what, rows, worst);
    free(x);
    free(h);
    free(a);
    free(b);
    free(wd);
}

static void logits_of(const ptq_model *m, float *out) {
    int toks[12];
    for (int i = 0; i < 12; i++) toks[i] = (1 + i * 37) % m->cfg.vocab_size;
    ptq_error e;
    CHECK(ptq_forward_tokens(m, toks, 12, out, &e) == PTQ_OK);
}

static int has_tensor(const ptq_model *m, const char *name) {
    for (int i = 0; i < ptq_model_tensor_count(m); i++) {
        ptq_tensor_info t;
        ptq_model_tensor(m, i, &t);
        if (!strcmp(t.name, name)) return 1;
    }
    return 0;
}

static void check_version(const char *path, const char *want) {
    ptq_safetensors st;
    ptq_error e;
    if (ptq_st_open(path, &st, &e) != PTQ_OK) {
        CHECK(0);
        return;
    }
    const char *v = ptq_st_metadata(&st, "ptq.format_version");
    CHECK_MSG(v && !strcmp(v, want), "%s: format version %s, expected %s", path, v ? v : "(none)", want);
    ptq_st_close(&st);
}

/* Save m, load it back: the same logits bit for bit; returns the loaded model. */
static ptq_model *roundtrip(const ptq_model *m, const char *name, const char *version) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.ptq", tu_tmpdir(), name);
    ptq_error e;
    if (ptq_model_save(m, path, NULL, &e) != PTQ_OK) {
        fprintf(stderr, "save %s: %s\n", name, e.msg);
        CHECK(0);
        return NULL;
    }
    check_version(path, version);
    ptq_model *l = load(path);
    CHECK(l != NULL);
    if (!l) return NULL;
    size_t n = (size_t)12 * m->cfg.vocab_size;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    logits_of(m, a);
    logits_of(l, b);
    CHECK_MSG(!memcmp(a, b, n * sizeof *a), "%s: the loaded file's logits differ from the model in memory", name);
    free(a);
    free(b);
    return l;
}

static int same_qweight(const ptq_qweight *a, const ptq_qweight *b) {
    if (!a || !b || a->bits != b->bits || a->group != b->group || a->in != b->in || a->out != b->out) return 0;
    size_t ng = (size_t)a->out * a->n_groups;
    return !memcmp(a->codes, b->codes, (size_t)a->out * a->row_bytes) && !memcmp(a->scales, b->scales, 2 * ng) &&
           !a->zeros == !b->zeros && !memcmp(ptq_qweight_zeros_of(a, 0), ptq_qweight_zeros_of(b, 0), a->zeros ? ng : (size_t)a->n_groups) &&
           !a->perm == !b->perm &&
           (!a->perm || !memcmp(a->perm, b->perm, sizeof(int32_t) * (size_t)a->in));
}

static void test_untied(const char *path) {
    /* RTN head: logits against the dequantized float path */
    ptq_model *m = load(path);
    if (!m) {
        CHECK(0);
        return;
    }
    CHECK(!ptq_head_tied(m));
    ptq_quant_params p = params(8, PTQ_WQ_RTN);
    p.head_bits = 4;
    p.head_group = 32;
    ptq_error e;
    CHECK(ptq_head_quantize(m, &p, NULL, 0, 0, &e) == PTQ_OK);
    CHECK(m->head.q && m->head.q->bits == 4);
    if (m->head.q) {
        check_head_exact(m, 1, "RTN W4 g32 head");
        check_head_exact(m, 5, "RTN W4 g32 head");
    }
    ptq_model_free(m);

    /* the whole pipeline: GPTQ act-order head (a perm) and 8-bit embeddings, saved and loaded */
    m = load(path);
    if (!m) return;
    p = params(4, PTQ_WQ_GPTQ);
    p.act_order = 1;
    p.head_bits = 3;
    p.head_group = 64;
    p.embed_bits = 8;
    p.embed_group = 0;
    CHECK(quantize(m, &p, &e) == PTQ_OK);
    CHECK(m->head.q && m->head.q->perm && m->tok_emb_q && m->tok_emb_q->bits == 8);
    if (m->head.q) check_head_exact(m, 3, "GPTQ act-order W3 g64 head");
    ptq_model *l = m->head.q ? roundtrip(m, "untied", "3") : NULL;
    if (l) {
        CHECK(same_qweight(m->head.q, l->head.q));
        CHECK(same_qweight(m->tok_emb_q, l->tok_emb_q));
        CHECK(!l->tok_emb && !ptq_head_tied(l));
        CHECK(has_tensor(l, "tok_emb.qweight") && has_tensor(l, "head.perm") && !has_tensor(l, "tok_emb"));
        ptq_model_free(l);
    }
    ptq_model_free(m);

    /* 16-bit tables: the embeddings stay 16-bit in memory, the head is widened for the float kernels */
    m = load(path);
    if (!m) return;
    p = params(8, PTQ_WQ_RTN);
    p.head_bits = p.embed_bits = 16;
    CHECK(quantize(m, &p, &e) == PTQ_OK);
    CHECK(m->tok_emb_dt != PTQ_DT_F32 && m->head_dt != PTQ_DT_F32 && m->head.w && !m->head.q);
    l = roundtrip(m, "half", "3");
    if (l) {
        CHECK(l->tok_emb_h && !l->tok_emb && l->tok_emb_dt == m->tok_emb_dt && l->head_dt == m->head_dt);
        /* every stored value is the float table's, which was rounded onto the 16-bit grid before calibration */
        size_t n = (size_t)m->cfg.vocab_size * m->cfg.embed_dim, bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += (l->tok_emb_dt == PTQ_DT_BF16 ? ptq_bf16_to_f32(l->tok_emb_h[i]) : ptq_f16_to_f32(l->tok_emb_h[i])) !=
                   m->tok_emb[i];
        CHECK_MSG(bad == 0, "%zu of %zu 16-bit embedding values differ from the rounded table", bad, n);
        ptq_model_free(l);
    }
    ptq_model_free(m);

    /* without the options: format version 2, as before */
    m = load(path);
    if (!m) return;
    p = params(4, PTQ_WQ_RTN);
    CHECK(quantize(m, &p, &e) == PTQ_OK);
    l = roundtrip(m, "plain", "2");
    if (l) CHECK(l->tok_emb && !l->tok_emb_q && !l->tok_emb_h && !l->head.q);
    ptq_model_free(l);
    ptq_model_free(m);
}

static void test_tied(const char *path) {
    ptq_model *m = load(path);
    if (!m) {
        CHECK(0);
        return;
    }
    CHECK(ptq_head_tied(m));
    ptq_error e;
    ptq_quant_params p = params(4, PTQ_WQ_GPTQ);
    p.head_bits = 8;
    p.embed_bits = 4;
    CHECK(quantize(m, &p, &e) == PTQ_ERR_ARG);
    CHECK_MSG(strstr(e.msg, "--head-bits 8") && strstr(e.msg, "--embed-bits 4") && strstr(e.msg, "one table"), "%s",
              e.msg);
    p.embed_bits = 0; /* --head-bits alone: the one table, packed */
    CHECK(quantize(m, &p, &e) == PTQ_OK);
    CHECK(m->tok_emb_q && m->head.q == m->tok_emb_q && ptq_head_tied(m));
    if (m->head.q) check_head_exact(m, 2, "tied W8 g32 table");
    ptq_model *l = m->head.q ? roundtrip(m, "tied", "3") : NULL;
    if (l) {
        CHECK(l->head.q == l->tok_emb_q && same_qweight(m->tok_emb_q, l->tok_emb_q));
        CHECK(has_tensor(l, "tok_emb.qweight") && !has_tensor(l, "head.qweight"));
        ptq_model_free(l);
    }
    ptq_model_free(m);
}

static void test_options(const char *path) {
    ptq_model *m = load(path);
    if (!m) return;
    ptq_error e;
    ptq_quant_params p = params(4, PTQ_WQ_RTN);
    p.head_bits = 9;
    CHECK(ptq_head_embed_check(m, &p, &e) == PTQ_ERR_ARG && strstr(e.msg, "--head-bits 9"));
    p.head_bits = 4;
    p.head_group = 48;
    CHECK(ptq_head_embed_check(m, &p, &e) == PTQ_ERR_ARG && strstr(e.msg, "--head-group 48"));
    p.head_group = 32;
    p.ggml = 1;
    CHECK(ptq_head_embed_check(m, &p, &e) == PTQ_ERR_ARG && strstr(e.msg, "GGUF"));
    ptq_model_free(m);
    /* the 16-bit type: bf16 when lossless, else f16 within its range, else bf16 */
    float a[3] = {1.0f, -0.375f, 3.0e38f}, b[3] = {0.1f, 1.0f, 2.0f}, c[2] = {0.1f, 7.0e4f};
    CHECK(ptq_pick16(a, 3) == PTQ_DT_BF16);
    CHECK(ptq_pick16(b, 3) == PTQ_DT_F16);
    CHECK(ptq_pick16(c, 2) == PTQ_DT_BF16);
}

int main(void) {
    char *tied = tu_data_path("stories260K/stories260K.bin");
    char *untied = tu_data_path("llama-shakespeare-256/model.safetensors");
    test_lookup(tied);
    test_untied(untied);
    test_tied(tied);
    test_options(untied);
    free(tied);
    free(untied);
    return tu_done("test_head_embed");
}
