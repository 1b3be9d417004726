/* GPTQ and RTN against the independent numpy implementation in tests/ref/make_gptq_goldens.py:
 * integer codes, fp16 scales, zero points and the permutation agree (a handful of rounding-tie
 * differences at most), the output error is no worse, GPTQ beats RTN, and a bad Hessian fails cleanly.
 * The library takes the Hessian in float32 (rounded from the double one here), the double reference the
 * double one: the code differences counted against it include the float32 Hessian and Cholesky factor.
 * Grids per channel, per group and per tensor (one scale and zero point for the whole matrix). */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "io/safetensors.h"
#include "quant/quantizer.h"
#include "testutil.h"
#include "gptq_double_ref.h"

enum { OUT = 40, IN = 172, N = 300 };

/* the reference's 16-bit uniform fill */
static void prng(float *dst, size_t n, uint64_t seed, double scale) { tu_prng_fill(dst, n, seed, scale, 0, 16); }

static int num_array(const cJSON *o, const char *key, double *dst, int n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_GetArraySize(a) != n) return -1;
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, a) dst[i++] = v->valuedouble;
    return 0;
}

static int warnings, fallbacks;
static void count_warning(void *user, ptq_log_level level, const char *msg) {
    (void)user;
    warnings += level == PTQ_LOG_WARN;
    fallbacks += strstr(msg, "redone in double") != NULL;
}

static void to_float(const double *H, float *Hf, size_t n) {
    for (size_t i = 0; i < n; i++) Hf[i] = (float)H[i];
}

static int codes_differing(const ptq_qweight *a, const ptq_qweight *b) {
    int d = 0;
    uint8_t ra[IN], rb[IN];
    for (int r = 0; r < OUT; r++) {
        ptq_unpack_row(a->bits, a->codes + (size_t)r * a->row_bytes, IN, ra);
        ptq_unpack_row(b->bits, b->codes + (size_t)r * b->row_bytes, IN, rb);
        for (int j = 0; j < IN; j++) d += ra[j] != rb[j];
    }
    return d;
}

int main(void) {
    static float W[OUT * IN], X[N * IN], Hf[IN * IN];
    static double H[IN * IN];
    prng(W, OUT * IN, 11, 0.25);
    prng(X, N * IN, 12, 1.0);
    for (int t = 0; t < N; t++) {
        X[t * IN + 5] = 0;
        X[t * IN + 17] *= 8;
    }
    for (int a = 0; a < IN; a++)
        for (int b = 0; b < IN; b++) {
            double s = 0;
            for (int t = 0; t < N; t++) s += (double)X[t * IN + a] * X[t * IN + b];
            H[a * IN + b] = 2.0 * s / N;
        }
    to_float(H, Hf, IN * IN);
    char *txt;
    size_t len;
    ptq_error e;
    CHECK(ptq_read_file(PTQ_SOURCE_DIR "/tests/data/gptq/goldens.json", &txt, &len, &e) == PTQ_OK);
    cJSON *root = cJSON_Parse(txt);
    CHECK(root != NULL);
    const cJSON *cfg;
    static double codes[OUT * IN], scales[OUT * IN], zeros[OUT * IN], perm[IN];
    int n_cfg = 0, total_double_diff = 0, total_factor_diff = 0;
    cJSON_ArrayForEach(cfg, cJSON_GetObjectItemCaseSensitive(root, "configs")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(cfg, "name")->valuestring;
        ptq_gptq_params p = ptq_gptq_default_params();
        p.wq.bits = cJSON_GetObjectItemCaseSensitive(cfg, "bits")->valueint;
        p.wq.group = cJSON_GetObjectItemCaseSensitive(cfg, "group")->valueint;
        p.wq.sym = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "sym"));
        p.act_order = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "act_order"));
        p.reference_groups = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "reference_groups"));
        int G = p.wq.group > 0 ? p.wq.group : IN, ng = (IN + G - 1) / G;
        CHECK(num_array(cfg, "codes", codes, OUT * IN) == 0);
        CHECK(num_array(cfg, "scales", scales, OUT * ng) == 0);
        CHECK(num_array(cfg, "zeros", zeros, OUT * ng) == 0);
        CHECK(num_array(cfg, "perm", perm, IN) == 0);
        double ref_err = cJSON_GetObjectItemCaseSensitive(cfg, "rel_error")->valuedouble;
        double ref_rtn = cJSON_GetObjectItemCaseSensitive(cfg, "rtn_rel_error")->valuedouble;

        ptq_qweight q;
        CHECK(ptq_gptq_quantize(W, OUT, IN, Hf, &p, &q, NULL, &e) == PTQ_OK);
        CHECK(q.n_groups == ng);
        int code_diff = 0, scale_diff = 0, zero_diff = 0, perm_diff = 0;
        uint8_t row[IN];
        for (int r = 0; r < OUT; r++) {
            ptq_unpack_row(q.bits, q.codes + (size_t)r * q.row_bytes, IN, row);
            for (int j = 0; j < IN; j++) code_diff += row[j] != (int)codes[r * IN + j];
            for (int g = 0; g < ng; g++) {
                scale_diff += ptq_f16_to_f32(q.scales[r * ng + g]) != (float)scales[r * ng + g];
                zero_diff += ptq_qweight_zeros_of(&q, r)[g] != (int)zeros[r * ng + g];
            }
        }
        for (int j = 0; j < IN; j++) perm_diff += (q.perm ? q.perm[j] : j) != (int)perm[j];
        /* the double-precision version (the reference before the float32 one): codes may differ only
           where a weight sits within float rounding of a rounding boundary */
        ptq_qweight qd;
        CHECK(gptq_double_quantize(W, OUT, IN, H, &p, &qd, NULL, &e) == PTQ_OK);
        int double_diff = codes_differing(&q, &qd);
        ptq_qweight_free(&qd);
        total_double_diff += double_diff;
        /* the float32 Cholesky factorization against the double one (both from the float32 Hessian) */
        ptq_gptq_params pd = p;
        pd.double_factor = 1;
        CHECK(ptq_gptq_quantize(W, OUT, IN, Hf, &pd, &qd, NULL, &e) == PTQ_OK);
        total_factor_diff += codes_differing(&q, &qd);
        ptq_qweight_free(&qd);
        double err = ptq_layer_rel_error(W, &q, OUT, IN, H);
        printf("%-24s codes differing %d/%d (from the double version %d), scales %d, zeros %d; rel error %.6g "
               "(reference %.6g)\n", name, code_diff, OUT * IN, double_diff, scale_diff, zero_diff, err, ref_err);
        CHECK_MSG(double_diff <= OUT * IN / 500, "%s: %d codes differ from the double version", name, double_diff);
        CHECK_MSG(code_diff <= OUT * IN / 200, "%s: %d codes differ", name, code_diff);
        CHECK_MSG(scale_diff <= OUT * ng / 50 && zero_diff <= OUT * ng / 50, "%s: %d scales, %d zeros differ", name,
                  scale_diff, zero_diff);
        CHECK_MSG(perm_diff == 0, "%s: permutation differs", name);
        CHECK_MSG(err <= ref_err * 1.002 + 1e-12, "%s: error %g worse than the reference %g", name, err, ref_err);
        ptq_qweight_free(&q);

        /* RTN on the same grid: equal to the reference's RTN error, and worse than GPTQ */
        ptq_qweight qr;
        CHECK(ptq_rtn_quantize(W, OUT, IN, &p.wq, &qr, &e) == PTQ_OK);
        double rtn = ptq_layer_rel_error(W, &qr, OUT, IN, H);
        CHECK_MSG(tu_close(rtn, ref_rtn, 1e-6), "%s: RTN error %g vs reference %g", name, rtn, ref_rtn);
        CHECK_MSG(err < rtn, "%s: GPTQ %g does not beat RTN %g", name, err, rtn);
        ptq_qweight_free(&qr);
        n_cfg++;
    }
    CHECK(n_cfg == 9);
    printf("codes differing between the float32 and the double GPTQ: %d of %d; float32 and double Cholesky "
           "factorization: %d\n", total_double_diff, 9 * OUT * IN, total_factor_diff);
    CHECK_MSG(total_factor_diff <= 9 * OUT * IN / 500, "%d codes differ between the float and double factorization",
              total_factor_diff);
    cJSON_Delete(root);
    free(txt);

    /* a Hessian that no damping can fix fails with a clear error instead of crashing */
    static float Hbad[IN * IN];
    for (int j = 0; j < IN; j++) Hbad[j * IN + j] = -1.0f;
    ptq_gptq_params p = ptq_gptq_default_params();
    ptq_qweight q;
    CHECK(ptq_gptq_quantize(W, OUT, IN, Hbad, &p, &q, NULL, &e) == PTQ_ERR_NUMERIC);
    CHECK(strstr(e.msg, "Cholesky") != NULL);
    /* a rank-deficient Hessian (two calibration tokens) succeeds thanks to damping */
    for (int a = 0; a < IN; a++)
        for (int b = 0; b < IN; b++) Hbad[a * IN + b] = (float)((double)X[a] * X[b] + (double)X[IN + a] * X[IN + b]);
    CHECK(ptq_gptq_quantize(W, OUT, IN, Hbad, &p, &q, NULL, &e) == PTQ_OK);
    ptq_qweight_free(&q);
    /* a rank-2 Hessian of small integers (exact in float) damped far below float32's resolution: the float
       factorization fails, and the double one redone at the same damping succeeds (no warning): the result
       equals the double factorization's */
    for (int a = 0; a < IN; a++)
        for (int b = 0; b < IN; b++)
            Hbad[a * IN + b] = (float)((a % 5 - 2) * (b % 5 - 2) + (a * 7 % 11 - 5) * (b * 7 % 11 - 5));
    ptq_callbacks cb = {count_warning, NULL, NULL};
    p.percdamp = 1e-9;
    CHECK(ptq_gptq_quantize(W, OUT, IN, Hbad, &p, &q, &cb, &e) == PTQ_OK);
    CHECK_MSG(warnings == 0 && fallbacks == 1, "%d damping warnings, %d fallbacks to double", warnings, fallbacks);
    ptq_qweight qd;
    p.double_factor = 1;
    CHECK(ptq_gptq_quantize(W, OUT, IN, Hbad, &p, &qd, &cb, &e) == PTQ_OK);
    CHECK(codes_differing(&q, &qd) == 0);
    ptq_qweight_free(&q);
    ptq_qweight_free(&qd);
    p = ptq_gptq_default_params();
    /* bad parameters */
    p.wq.bits = 9;
    CHECK(ptq_gptq_quantize(W, OUT, IN, Hf, &p, &q, NULL, &e) == PTQ_ERR_UNSUPPORTED);
    p.wq.bits = 4;
    p.wq.group = 48;
    CHECK(ptq_gptq_quantize(W, OUT, IN, Hf, &p, &q, NULL, &e) == PTQ_ERR_ARG);
    return tu_done("test_gptq");
}
