/* Bias Compensation against the independent numpy reference (tests/ref/make_bc_goldens.py): on random
 * layers, 2-8 bit quantizers and random data, the bias equals the reference mean error (per channel and
 * per position x channel), and the calibration MSE with BC never exceeds the MSE without it. Then the
 * whole pipeline on stories260K: every compensated module's calibration error goes down, in both modes
 * and both shapes. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "methods/bias_compensation.h"
#include "quant/quantizer.h"
#include "testutil.h"

/* the references' 16-bit uniform fill */
static void prng(float *dst, size_t n, uint64_t seed, double scale, double offset) {
    tu_prng_fill(dst, n, seed, scale, offset, 16);
}

static double jnum(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble; }

static void golden_cases(void) {
    char *txt;
    size_t len;
    ptq_error e;
    CHECK(ptq_read_file(PTQ_SOURCE_DIR "/tests/data/bc/goldens.json", &txt, &len, &e) == PTQ_OK);
    cJSON *root = cJSON_Parse(txt);
    const cJSON *c;
    int n_cases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
        int out = (int)jnum(c, "out"), in = (int)jnum(c, "in"), S = (int)jnum(c, "n_seq"), T = (int)jnum(c, "T");
        int bits = (int)jnum(c, "bits"), seed = (int)jnum(c, "seed");
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        size_t rows = (size_t)S * T;
        float *W = malloc((size_t)out * in * 4), *b = malloc((size_t)out * 4), *X = malloc(rows * in * 4);
        float *Wq = malloc((size_t)out * in * 4), *O = malloc(rows * out * 4), *Oh = malloc(rows * out * 4);
        prng(W, (size_t)out * in, seed, 0.5, 0);
        prng(b, out, seed + 100, 0.1, 0);
        prng(X, rows * in, seed + 200, 1.0, jnum(c, "offset"));
        /* quantize with the library's grid primitives (any width 2..8) */
        ptq_wq_params wp = {bits, 0, 0, 0};
        double *row = malloc((size_t)in * sizeof *row);
        for (int r = 0; r < out; r++) {
            float s;
            int z;
            for (int j = 0; j < in; j++) row[j] = W[(size_t)r * in + j];
            ptq_wq_find_params(&wp, row, in, 1, &s, &z);
            for (int j = 0; j < in; j++) Wq[(size_t)r * in + j] = s * (float)(ptq_wq_code(row[j], s, z, 0, (1 << bits) - 1) - z);
        }
        free(row);
        for (size_t t = 0; t < rows; t++)
            for (int o = 0; o < out; o++) {
                double a = b[o], q = b[o];
                for (int j = 0; j < in; j++) {
                    a += (double)X[t * in + j] * W[(size_t)o * in + j];
                    q += (double)X[t * in + j] * Wq[(size_t)o * in + j];
                }
                O[t * out + o] = (float)a;
                Oh[t * out + o] = (float)q;
            }
        ptq_bc_acc ch, pos;
        CHECK(ptq_bc_acc_init(&ch, out, 0, &e) == PTQ_OK && ptq_bc_acc_init(&pos, out, T, &e) == PTQ_OK);
        /* feed in two uneven pieces: the statistic must not depend on the batching */
        int first = (S / 2) * T;
        CHECK(ptq_bc_acc_add(&ch, O, Oh, first, T, &e) == PTQ_OK);
        CHECK(ptq_bc_acc_add(&ch, O + (size_t)first * out, Oh + (size_t)first * out, (int)rows - first, T, &e) == PTQ_OK);
        CHECK(ptq_bc_acc_add(&pos, O, Oh, (int)rows, T, &e) == PTQ_OK);
        float *bc = malloc((size_t)out * 4), *bp = malloc((size_t)T * out * 4);
        ptq_bc_acc_bias(&ch, bc);
        ptq_bc_acc_bias(&pos, bp);
        const cJSON *gc = cJSON_GetObjectItemCaseSensitive(c, "bias_channel");
        const cJSON *gp = cJSON_GetObjectItemCaseSensitive(c, "bias_position");
        double scale = 1e-3, worst = 0;
        for (int o = 0; o < out; o++) worst = fmax(worst, fabs(bc[o] - cJSON_GetArrayItem(gc, o)->valuedouble));
        for (int i = 0; i < T * out; i++) worst = fmax(worst, fabs(bp[i] - cJSON_GetArrayItem(gp, i)->valuedouble));
        CHECK_MSG(worst < 1e-5 * (1 + scale), "%s: bias differs from the reference by %g", name, worst);
        double m0, m1, m2, s0, s1, s2;
        ptq_bc_acc_stats(&ch, NULL, &m0, &s0);
        ptq_bc_acc_stats(&ch, bc, &m1, &s1);
        ptq_bc_acc_stats(&pos, bp, &m2, &s2);
        CHECK_MSG(tu_close(m0, jnum(c, "mse_none"), 1e-4) && tu_close(m1, jnum(c, "mse_channel"), 1e-4) &&
                      tu_close(m2, jnum(c, "mse_position"), 1e-4),
                  "%s: MSE %g/%g/%g vs reference %g/%g/%g", name, m0, m1, m2, jnum(c, "mse_none"),
                  jnum(c, "mse_channel"), jnum(c, "mse_position"));
        CHECK_MSG(m1 < m0 && m2 <= m1 && s1 > s0, "%s: BC did not lower the error (%g -> %g, position %g)", name, m0, m1,
                  m2);
        printf("%-10s W%d: MSE %.4g -> %.4g (channel) -> %.4g (position)\n", name, bits, m0, m1, m2);
        ptq_bc_acc_free(&ch);
        ptq_bc_acc_free(&pos);
        free(W), free(b), free(X), free(Wq), free(O), free(Oh), free(bc), free(bp);
        n_cases++;
    }
    CHECK(n_cases == 6);
    cJSON_Delete(root);
    free(txt);
}

/* Equality exactly when the mean error is zero: errors +d and -d in equal numbers. */
static void zero_mean_case(void) {
    ptq_error e;
    float O[8 * 3], Oh[8 * 3], b[3];
    for (int i = 0; i < 24; i++) {
        O[i] = (float)i;
        Oh[i] = (float)i + ((i / 3) % 2 ? 0.25f : -0.25f);
    }
    ptq_bc_acc a;
    CHECK(ptq_bc_acc_init(&a, 3, 0, &e) == PTQ_OK);
    CHECK(ptq_bc_acc_add(&a, O, Oh, 8, 8, &e) == PTQ_OK);
    ptq_bc_acc_bias(&a, b);
    double m0, m1, s;
    ptq_bc_acc_stats(&a, NULL, &m0, &s);
    ptq_bc_acc_stats(&a, b, &m1, &s);
    CHECK(b[0] == 0 && b[1] == 0 && b[2] == 0 && m0 == m1 && fabs(m0 - 0.0625) < 1e-12);
    /* a per-position accumulator refuses sequences longer than its span */
    ptq_bc_acc p;
    CHECK(ptq_bc_acc_init(&p, 3, 4, &e) == PTQ_OK);
    CHECK(ptq_bc_acc_add(&p, O, Oh, 8, 8, &e) == PTQ_ERR_ARG);
    ptq_bc_acc_free(&a);
    ptq_bc_acc_free(&p);
}

typedef struct {
    int modules, worse;
} pipe_ctx;

static void on_bc(void *user, const ptq_bc_report *r) {
    pipe_ctx *p = user;
    p->modules++;
    if (r->mse_after > r->mse_before * (1 + 1e-9)) {
        fprintf(stderr, "%s: calibration MSE rose %g -> %g\n", r->name, r->mse_before, r->mse_after);
        p->worse++;
    }
}

static void pipeline_case(void) {
    char *src = tu_data_path("stories260K/stories260K.bin");
    int toks[8 * 64], hold_toks[2 * 64];
    for (int i = 0; i < 8 * 64; i++) toks[i] = i % 64 == 0 ? 1 : 3 + (int)(tu_splitmix64(i) % 500);
    for (int i = 0; i < 2 * 64; i++) hold_toks[i] = i % 64 == 0 ? 1 : 3 + (int)(tu_splitmix64(i + 9999) % 500);
    ptq_calib_data d = {toks, 8, 64, NULL}, h = {hold_toks, 2, 64, NULL};
    for (int mode = 0; mode < 2; mode++)
        for (int shape = 0; shape < 2; shape++) {
            ptq_error e;
            ptq_model *m;
            CHECK(ptq_model_load(src, &m, &e) == PTQ_OK);
            ptq_quant_params p = ptq_quant_default_params();
            p.wbits = 3;
            p.group = 32;
            p.method = PTQ_WQ_RTN;
            p.bc_scope = PTQ_BC_LINEAR | PTQ_BC_BLOCK | PTQ_BC_LOGITS;
            p.bc_mode = (ptq_bc_mode)mode;
            p.bc_shape = (ptq_bc_shape)shape;
            p.holdout = &h;
            pipe_ctx pc = {0, 0};
            p.bc_report = on_bc;
            p.report_user = &pc;
            CHECK(ptq_quantize_model(m, &d, &p, &e) == PTQ_OK);
            CHECK_MSG(pc.modules == 5 * 7 + 5 + 1, "mode %d shape %d: %d modules reported", mode, shape, pc.modules);
            CHECK(pc.worse == 0);
            /* position-specific biases refuse positions they were not fitted for */
            if (shape == PTQ_BC_POSITION) {
                int seq[80];
                for (int i = 0; i < 80; i++) seq[i] = 3 + i;
                float *lg = malloc(80 * 512 * sizeof(float));
                CHECK(ptq_forward_tokens(m, seq, 80, lg, &e) == PTQ_ERR_ARG);
                CHECK(strstr(e.msg, "64 positions") != NULL);
                CHECK(ptq_forward_tokens(m, seq, 64, lg, &e) == PTQ_OK);
                free(lg);
            }
            ptq_model_free(m);
        }
    free(src);
}

int main(void) {
    golden_cases();
    zero_mean_case();
    pipeline_case();
    return tu_done("test_bc");
}
