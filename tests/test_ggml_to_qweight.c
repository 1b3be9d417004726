/* ggml Q4_0 / Q5_0 / Q8_0 -> ptq's packed weights (quant/ggml_to_qweight.h), against exact statements:
 *   1. the packed weight dequantizes (ptq_qweight_dequant_row) to the very floats ggml's dequantizer gives for the
 *      same bytes (ptq_ggml_dequantize_rows, which test_ggml_quants.c proves equal to ggml's own to_float), bit
 *      for bit: on RTN blocks of random rows, on random bytes (every code, negative, tiny and subnormal fp16
 *      steps) and on hostile rows (all zero, huge);
 *   2. ptq's packed GEMM on it equals a double-precision product with those floats (summation order only);
 *   3. refusals: Q4_1 / Q5_1 / k-quants, rows not of 32-blocks, an Inf/NaN step;
 *   4. a GGUF loaded by ptq: its Q4_0 / Q8_0 block linears are packed (no float copy) and hold exactly the
 *      floats of the file's tensors (Q/K rows put back in Hugging Face order), F16 ones stay float. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "kernels/qweight.h"
#include "models/gguf_export.h"
#include "models/model.h"
#include "ptq.h"
#include "quant/ggml_quants.h"
#include "quant/ggml_to_qweight.h"
#include "quant/quantizer.h"
#include "testutil.h"

static const uint32_t k_types[] = {PTQ_GGML_Q4_0, PTQ_GGML_Q5_0, PTQ_GGML_Q8_0};

/* the packed weight's floats == ggml's dequantized floats, bit for bit */
static void same_floats(uint32_t type, const void *bytes, int rows, int cols, const char *what) {
    ptq_qweight q;
    ptq_error err = {0};
    char buf[24];
    const char *tn = ptq_ggml_type_name(type, buf, sizeof buf);
    if (ptq_ggml_to_qweight(type, bytes, rows, cols, what, &q, &err) != PTQ_OK) {
        CHECK_MSG(0, "%s %s: %s", tn, what, err.msg);
        return;
    }
    float *ref = malloc((size_t)rows * cols * sizeof *ref), *got = malloc((size_t)cols * sizeof *got);
    CHECK(ptq_ggml_dequantize_rows(type, bytes, ref, rows, cols, &err) == PTQ_OK);
    long bad = 0;
    for (int r = 0; r < rows; r++) {
        ptq_qweight_dequant_row(&q, r, got);
        for (int j = 0; j < cols; j++) {
            uint32_t a, b;
            memcpy(&a, &got[j], 4);
            memcpy(&b, &ref[(size_t)r * cols + j], 4);
            bad += a != b;
        }
    }
    printf("%-5s %-12s %d x %d: %ld of %ld floats differ from ggml's dequantization\n", tn, what, rows, cols, bad,
           (long)rows * cols);
    CHECK_MSG(bad == 0, "%s %s: %ld floats differ", tn, what, bad);
    CHECK(q.group == 32 && q.bits == (type == PTQ_GGML_Q4_0 ? 4 : type == PTQ_GGML_Q5_0 ? 5 : 8));

    /* 2: the packed GEMM against a double product with the same floats */
    enum { X = 3 };
    float *x = malloc((size_t)X * cols * sizeof *x), *y = malloc((size_t)X * rows * sizeof *y);
    tu_prng_fill(x, (size_t)X * cols, 77, 1.0, 0, 24);
    ptq_qgemm(&q, x, X, y);
    double worst = 0;
    for (int i = 0; i < X; i++)
        for (int r = 0; r < rows; r++) {
            double s = 0, mag = 0;
            for (int j = 0; j < cols; j++) {
                s += (double)x[(size_t)i * cols + j] * ref[(size_t)r * cols + j];
                mag += fabs((double)x[(size_t)i * cols + j] * ref[(size_t)r * cols + j]);
            }
            double e = fabs(y[(size_t)i * rows + r] - s) / (mag > 0 ? mag : 1);
            worst = e > worst ? e : worst;
        }
    CHECK_MSG(worst <= 1e-5, "%s %s: packed GEMM off by %g of the sum of |terms|", tn, what, worst);
    free(x);
    free(y);
    free(ref);
    free(got);
    ptq_qweight_free(&q);
}

static void conversions(void) {
    enum { R = 24, C = 256 };
    float *w = malloc((size_t)R * C * sizeof *w);
    tu_prng_fill(w, (size_t)R * C, 5, 1.0, 0, 24);
    for (int j = 0; j < C; j++) w[j] = 0;                 /* row 0 all zero: d = 0 */
    for (int j = 0; j < C; j++) w[C + j] *= 6e4f;         /* row 1 near fp16's largest */
    for (int j = 0; j < C; j++) w[2 * C + j] *= 1e-6f;    /* row 2: subnormal fp16 steps */
    for (size_t t = 0; t < sizeof k_types / sizeof *k_types; t++) {
        size_t rb = ptq_ggml_row_bytes(k_types[t], C);
        unsigned char *b = malloc((size_t)R * rb);
        ptq_error err = {0};
        CHECK(ptq_ggml_quantize_rows(k_types[t], w, b, R, C, &err) == PTQ_OK);
        same_floats(k_types[t], b, R, C, "RTN rows");
        /* random bytes: any code; the fp16 step random too, its exponent kept finite */
        uint64_t s = 99 + t;
        for (size_t i = 0; i < (size_t)R * rb; i++) b[i] = (unsigned char)((s = tu_splitmix64(s)) >> 56);
        size_t bb = rb / (C / 32);
        for (size_t k = 0; k < (size_t)R * (C / 32); k++) b[k * bb + 1] &= 0xBB; /* clear 0x44: never all-ones */
        same_floats(k_types[t], b, R, C, "random bytes");
        free(b);
    }
    free(w);
}

static void refusals(void) {
    ptq_qweight q;
    ptq_error err = {0};
    unsigned char b[34 * 4] = {0};
    static const uint32_t no[] = {PTQ_GGML_Q4_1, PTQ_GGML_Q5_1, PTQ_GGML_Q4_K, PTQ_GGML_Q6_K, PTQ_GGML_F16};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        CHECK(!ptq_ggml_to_qweight_supported(no[i]));
        CHECK(ptq_ggml_to_qweight(no[i], b, 1, 32, "w", &q, &err) == PTQ_ERR_UNSUPPORTED);
    }
    CHECK(ptq_ggml_to_qweight(PTQ_GGML_Q8_0, b, 1, 48, "w", &q, &err) == PTQ_ERR_ARG);
    b[34 + 1] = 0x7C; /* block 1's step: +Inf */
    CHECK(ptq_ggml_to_qweight(PTQ_GGML_Q8_0, b, 1, 128, "blk.0.x", &q, &err) == PTQ_ERR_NUMERIC);
    CHECK_MSG(strstr(err.msg, "blk.0.x") && strstr(err.msg, "block 1"), "%s", err.msg);
}

/* 4: the GGUF loader packs Q4_0 / Q8_0 linears and keeps exactly the file's floats */
static void loaded(const char *model, const char *tok, ptq_gguf_ftype ft) {
    ptq_model *m = NULL;
    ptq_tokenizer *t = NULL;
    ptq_error err = {0};
    if (ptq_model_load(model, &m, &err) != PTQ_OK || ptq_tokenizer_load_for_model(m, tok, &t, &err) != PTQ_OK) {
        CHECK_MSG(0, "%s: %s", model, err.msg);
        ptq_model_free(m);
        return;
    }
    char path[800];
    snprintf(path, sizeof path, "%s/packed-%s.gguf", tu_tmpdir(), ptq_gguf_ftype_name(ft));
    ptq_gguf_export_opts o = {0};
    o.ftype = ft;
    o.tokenizer = t;
    CHECK_MSG(ptq_gguf_export(m, path, &o, NULL, &err) == PTQ_OK, "%s", err.msg);
    ptq_model *g = NULL;
    ptq_gguf f;
    CHECK_MSG(ptq_model_load(path, &g, &err) == PTQ_OK, "%s", err.msg);
    CHECK_MSG(ptq_gguf_open(path, &f, &err) == PTQ_OK, "%s", err.msg);
    int n_packed = 0, n_float = 0;
    static const char *const names[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    static const ptq_lin_role roles[] = {PTQ_LIN_Q, PTQ_LIN_K, PTQ_LIN_V, PTQ_LIN_O, PTQ_LIN_GATE, PTQ_LIN_UP, PTQ_LIN_DOWN};
    for (int l = 0; g && l < g->cfg.n_layers; l++)
        for (int k = 0; k < 7; k++) {
            const ptq_linear *lin = &g->blocks[l].lin[roles[k]];
            char tn[64];
            snprintf(tn, sizeof tn, "blk.%d.%s.weight", l, names[k]);
            const ptq_gguf_tensor *gt = ptq_gguf_find(&f, tn);
            if (!gt) continue;
            CHECK_MSG(!!lin->q == ptq_ggml_to_qweight_supported(gt->type) && !!lin->w == !lin->q,
                      "%s: packed %d, float %d", tn, !!lin->q, !!lin->w);
            if (!lin->q) {
                n_float++;
                continue;
            }
            n_packed++;
            float *file = malloc((size_t)gt->numel * sizeof *file), *row = malloc((size_t)lin->in * sizeof *row);
            CHECK(ptq_gguf_read_f32(&f, gt, file, &err) == PTQ_OK);
            int hd = g->cfg.head_dim, perm = roles[k] == PTQ_LIN_Q || roles[k] == PTQ_LIN_K, bad = 0;
            for (int r = 0; r < lin->out; r++) {
                /* Hugging Face row r of a head is the file's row 2i + j for r = j*d/2 + i */
                int h = r / hd, kk = r % hd, i = kk % (hd / 2), j = kk / (hd / 2);
                int fr = perm ? h * hd + 2 * i + j : r;
                ptq_qweight_dequant_row(lin->q, r, row);
                bad += memcmp(row, file + (size_t)fr * lin->in, (size_t)lin->in * sizeof *row) != 0;
            }
            CHECK_MSG(bad == 0, "%s: %d rows differ from the file's floats", tn, bad);
            free(file);
            free(row);
        }
    printf("%s %s: %d block linears packed (no float copy), %d float\n", model, ptq_gguf_ftype_name(ft), n_packed,
           n_float);
    CHECK(n_packed > 0);
    ptq_gguf_close(&f);
    ptq_model_free(g);
    ptq_model_free(m);
    ptq_tokenizer_free(t);
    remove(path);
}

int main(void) {
    conversions();
    refusals();
    char *st = tu_data_path("stories260K/stories260K.bin"), *tok = tu_data_path("stories260K/tok512.bin");
    loaded(st, tok, PTQ_FT_Q4_0); /* rows of 64 packed, ffn_down's 172 in F16 */
    loaded(st, tok, PTQ_FT_Q8_0);
    free(st);
    free(tok);
    return tu_done("test_ggml_to_qweight");
}
