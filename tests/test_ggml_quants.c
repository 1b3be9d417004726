/* ggml's block types (src/quant/ggml_quants.h) against ggml itself: tests/ref/ggml_quantize_ref.c, built here
 * against the prebuilt libggml-base of node-llama-cpp (scripts/refs.sh), quantizes the same rows (random ones
 * with hostile blocks, and every weight of llama-shakespeare-256) with ggml_quantize_chunk and dequantizes with
 * ggml's to_float:
 *  - RTN: ptq's bytes equal ggml's for every block of every type;
 *  - dequantization: ptq's floats equal ggml's bit for bit, on ggml's blocks, on random blocks and on GPTQ's;
 *  - the grid: pack/unpack round trips, and a GPTQ result re-quantized with its own block parameters gives
 *    back its bytes (its values lie on the type's grid);
 *  - GPTQ into each type has a lower output error tr(D H D^T) than RTN into it, on random layers and on
 *    llama-shakespeare-256's layers with their real calibration activations;
 *  - ptq reads GGUF files holding these types (written by gguf-py with ptq's blocks, tests/ref/make_gguf_qtypes.py)
 *    and its logits equal those of the weights gguf-py dequantizes.
 * Skips without the references, fails under CI=true. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "ptq.h"
#include "quant/ggml_quants.h"
#include "testutil.h"
#include "gguf_unpack.h"

static const uint32_t k_types[] = {PTQ_GGML_Q4_0, PTQ_GGML_Q4_1, PTQ_GGML_Q5_0, PTQ_GGML_Q5_1, PTQ_GGML_Q8_0,
                                   PTQ_GGML_Q2_K, PTQ_GGML_Q3_K, PTQ_GGML_Q4_K, PTQ_GGML_Q5_K, PTQ_GGML_Q6_K};
#define N_TYPES (sizeof k_types / sizeof *k_types)

static const char *tname(uint32_t t) {
    static char buf[8][32];
    static int k;
    char *b = buf[k++ % 8];
    return ptq_ggml_type_name(t, b, 32);
}
static int block_of(uint32_t t) { return t >= PTQ_GGML_Q2_K ? 256 : 32; }

static int ci(void) {
    const char *c = getenv("CI");
    return c && !strcmp(c, "true");
}

/* ------------------------------------------------------------------ the ggml reference program */

static char g_exe[1200];

static int build_ref(void) {
    char *bins = tu_ref_path("npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
    char *inc = tu_ref_path("llama.cpp/ggml/include/ggml.h");
    *strrchr(inc, '/') = 0;
    snprintf(g_exe, sizeof g_exe, "%s/ggml_quantize_ref", tu_tmpdir());
    char cmd[6000];
    snprintf(cmd, sizeof cmd,
             "cc -O1 -I'%s' '%s/tests/ref/ggml_quantize_ref.c' -L'%s' -l:libggml-base.so -Wl,-rpath,'%s' -o '%s'", inc,
             PTQ_SOURCE_DIR, bins, bins, g_exe);
    int ok = system(cmd) == 0;
    if (!ok) {
        CHECK_MSG(!ci(), "cannot build the ggml reference: %s", cmd);
        fprintf(stderr, "SKIP: cannot build the ggml reference (%s)\n", cmd);
    }
    free(bins);
    free(inc);
    return ok;
}

/* run the reference on `in` (n bytes); returns its output (malloc'ed, *out_n bytes) or NULL */
static void *run_ref(const char *mode, uint32_t type, int64_t n_per_row, const void *in, size_t n, size_t *out_n) {
    char fin[1300], fout[1300], cmd[4000];
    snprintf(fin, sizeof fin, "%s/ref_in.bin", tu_tmpdir());
    snprintf(fout, sizeof fout, "%s/ref_out.bin", tu_tmpdir());
    if (tu_write_file(fin, in, n) != 0) return NULL;
    snprintf(cmd, sizeof cmd, "'%s' %s %u %lld '%s' '%s'", g_exe, mode, type, (long long)n_per_row, fin, fout);
    if (system(cmd) != 0) {
        CHECK_MSG(0, "the ggml reference failed: %s", cmd);
        return NULL;
    }
    FILE *f = fopen(fout, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(sz > 0 ? (size_t)sz : 1);
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    *out_n = got;
    return buf;
}

/* ------------------------------------------------------------------ rows to test */

typedef struct {
    float *x;
    int64_t nrows, n;
    const char *what;
} rowset;

/* 64 rows of 1024: smooth and heavy-tailed rows, and rows whose blocks are hostile (all zero, constant, tiny,
 * huge, one-signed, sparse, on a coarse lattice so that rounding ties happen, single outliers) */
static rowset random_rows(void) {
    rowset r = {NULL, 64, 1024, "random"};
    r.x = malloc((size_t)r.nrows * (size_t)r.n * sizeof *r.x);
    float *u = malloc((size_t)r.n * 4 * sizeof *u);
    for (int64_t i = 0; i < r.nrows; i++) {
        float *x = r.x + i * r.n;
        tu_prng_fill(u, (size_t)r.n * 4, 100 + (uint64_t)i, 1.0, 0, 24);
        for (int64_t j = 0; j < r.n; j++) { /* approximately normal: sum of four uniforms */
            float g = u[4 * j] + u[4 * j + 1] + u[4 * j + 2] + u[4 * j + 3];
            x[j] = 0.05f * g;
        }
        switch (i % 16) {
        case 1: for (int64_t j = 0; j < r.n; j++) x[j] = u[j] * u[j] * u[j]; break;            /* heavy tails */
        case 2: for (int64_t j = 0; j < 256; j++) x[j] = 0; break;                               /* zero blocks */
        case 3: for (int64_t j = 0; j < 256; j++) x[j] = 0.375f; break;                          /* constant */
        case 4: for (int64_t j = 0; j < r.n; j++) x[j] *= 1e-17f; break;                         /* below eps */
        case 5: for (int64_t j = 0; j < r.n; j++) x[j] *= 2e3f; break;                           /* large */
        case 6: for (int64_t j = 0; j < r.n; j++) x[j] = fabsf(x[j]) + 0.1f; break;              /* positive */
        case 7: for (int64_t j = 0; j < r.n; j++) x[j] = -fabsf(x[j]) - 0.01f; break;            /* negative */
        case 8: for (int64_t j = 0; j < r.n; j++) if (j % 7) x[j] = 0; break;                    /* sparse */
        case 9: for (int64_t j = 0; j < r.n; j++) x[j] = (float)((int)(u[j] * 16)) / 8; break; /* lattice: ties */
        case 10: for (int64_t j = 0; j < r.n; j += 37) x[j] *= 40; break;                        /* outliers */
        case 11: for (int64_t j = 0; j < r.n; j++) x[j] = (float)((int)(u[j] * 4)) * 0.5f; break;
        case 12: for (int64_t j = 0; j < r.n; j++) x[j] *= 1e-6f; break;                         /* fp16 subnormal scales */
        case 13: for (int64_t j = 0; j < r.n; j += 16) x[j] = 0, x[j + 1] = 1e-3f; break;
        default: break;
        }
    }
    free(u);
    return r;
}

static int shakespeare_path(char *buf, size_t cap, const char *file) {
    const char *data = getenv("PTQ_DATA");
    snprintf(buf, cap, "%s/llama-shakespeare-256/%s", data && *data ? data : PTQ_DATA_DEFAULT, file);
    FILE *f = fopen(buf, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* the path of a file of llama-shakespeare-256; when it is missing: a SKIP note for `what`, a failure under CI */
static int need_shakespeare(char *buf, size_t cap, const char *file, const char *what) {
    if (shakespeare_path(buf, cap, file)) return 1;
    CHECK_MSG(!ci(), "llama-shakespeare-256 is missing (%s)", buf);
    fprintf(stderr, "SKIP: llama-shakespeare-256 is missing (%s): %s not tested\n", buf, what);
    return 0;
}

/* every 2-D weight of llama-shakespeare-256, as rows of its input width: one set per width */
static int shakespeare_rows(rowset *sets, int cap) {
    char path[4096];
    if (!need_shakespeare(path, sizeof path, "model.safetensors", "RTN of real weights")) return 0;
    ptq_safetensors st;
    ptq_error err = {0};
    if (ptq_st_open(path, &st, &err) != PTQ_OK) {
        CHECK_MSG(0, "%s", err.msg);
        return 0;
    }
    int k = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const ptq_st_tensor *t = &st.tensors[i];
        if (t->ndim != 2 || t->shape[1] % 256) continue;
        int s = 0;
        while (s < k && sets[s].n != t->shape[1]) s++;
        if (s == k) {
            if (k == cap) continue;
            sets[k++] = (rowset){NULL, 0, t->shape[1], "llama-shakespeare-256"};
        }
        rowset *r = &sets[s];
        r->x = realloc(r->x, (size_t)(r->nrows + t->shape[0]) * (size_t)r->n * sizeof(float));
        CHECK_MSG(ptq_st_read_f32(&st, t->name, -1, NULL, r->x + (size_t)r->nrows * (size_t)r->n, &err) == PTQ_OK, "%s",
                  err.msg);
        r->nrows += t->shape[0];
    }
    ptq_st_close(&st);
    return k;
}

/* ------------------------------------------------------------------ RTN and dequantization vs ggml */

static void test_rtn_vs_ggml(uint32_t type, const rowset *rs, int nsets) {
    size_t rb_blocks = 0, differ = 0, deq_differ = 0;
    double err_ours = 0, err_ggml = 0;
    for (int s = 0; s < nsets; s++) {
        const rowset *r = &rs[s];
        size_t row = ptq_ggml_row_bytes(type, r->n), nbytes = row * (size_t)r->nrows, total = (size_t)r->nrows * (size_t)r->n;
        unsigned char *ours = malloc(nbytes);
        ptq_error err = {0};
        CHECK_MSG(ptq_ggml_quantize_rows(type, r->x, ours, r->nrows, r->n, &err) == PTQ_OK, "%s", err.msg);
        size_t got = 0;
        unsigned char *ref = run_ref("quant", type, r->n, r->x, total * sizeof(float), &got);
        CHECK_MSG(ref && got == nbytes, "%s %s: ggml wrote %zu bytes, expected %zu", tname(type), r->what, got, nbytes);
        if (!ref || got != nbytes) {
            free(ref), free(ours);
            continue;
        }
        int bb = (int)(row / (size_t)(r->n / block_of(type)));
        float *dq_ours = malloc(total * sizeof *dq_ours), *dq_ref_of_ours = NULL;
        CHECK(ptq_ggml_dequantize_rows(type, ref, dq_ours, r->nrows, r->n, &err) == PTQ_OK);
        size_t dn = 0;
        float *dq_ref = run_ref("deq", type, r->n, ref, nbytes, &dn);
        CHECK(dq_ref && dn == total * sizeof(float));
        if (dq_ref && dn == total * sizeof(float)) {
            if (memcmp(dq_ours, dq_ref, total * sizeof(float)) != 0)
                for (size_t i = 0; i < total; i++)
                    if (memcmp(&dq_ours[i], &dq_ref[i], 4)) deq_differ++;
        }
        for (size_t b = 0; b < nbytes / (size_t)bb; b++) {
            rb_blocks++;
            if (memcmp(ours + b * (size_t)bb, ref + b * (size_t)bb, (size_t)bb)) {
                differ++;
                if (differ <= 3) fprintf(stderr, "%s %s: block %zu differs from ggml's\n", tname(type), r->what, b);
            }
        }
        /* the error of both quantizations (equal when the bytes are) */
        if (differ) {
            dq_ref_of_ours = malloc(total * sizeof(float));
            ptq_ggml_dequantize_rows(type, ours, dq_ref_of_ours, r->nrows, r->n, &err);
            for (size_t i = 0; i < total; i++) {
                err_ours += pow((double)dq_ref_of_ours[i] - r->x[i], 2);
                err_ggml += pow((double)dq_ours[i] - r->x[i], 2);
            }
        }
        free(dq_ref_of_ours);
        free(dq_ours);
        free(dq_ref);
        free(ref);
        free(ours);
    }
    printf("%-5s RTN: %zu of %zu blocks differ from ggml's%s; dequantized floats differing: %zu\n", tname(type),
           differ, rb_blocks, differ ? "" : " (bit for bit)", deq_differ);
    if (differ) printf("      squared error ptq %.6g, ggml %.6g\n", err_ours, err_ggml);
    CHECK_MSG(differ == 0, "%s: %zu blocks differ from ggml's quantizer", tname(type), differ);
    CHECK_MSG(deq_differ == 0, "%s: %zu dequantized floats differ from ggml's", tname(type), deq_differ);
}

/* random bytes (fp16 fields kept finite): ggml's and ptq's dequantization agree exactly, and unpack/pack
 * round-trips every block */
static void test_random_blocks(uint32_t type) {
    const int64_t n = 1024, nrows = 32;
    size_t row = ptq_ggml_row_bytes(type, n), nbytes = row * (size_t)nrows, total = (size_t)(n * nrows);
    int blk = block_of(type);
    size_t bb = row / (size_t)(n / blk);
    unsigned char *b = malloc(nbytes), *b2 = malloc(bb);
    for (size_t i = 0; i < nbytes; i++) b[i] = (unsigned char)(tu_splitmix64(7000 + i + type * 1000003ull) >> 13);
    /* byte offsets of the fp16 fields of a block: keep their exponent below 31 (finite) and small */
    int off[2] = {-1, -1};
    switch (type) {
    case PTQ_GGML_Q4_0: case PTQ_GGML_Q5_0: case PTQ_GGML_Q8_0: off[0] = 0; break;
    case PTQ_GGML_Q4_1: case PTQ_GGML_Q5_1: case PTQ_GGML_Q4_K: case PTQ_GGML_Q5_K: off[0] = 0, off[1] = 2; break;
    case PTQ_GGML_Q2_K: off[0] = 80, off[1] = 82; break;
    case PTQ_GGML_Q3_K: off[0] = 108; break;
    default: off[0] = 208; break;
    }
    for (size_t k = 0; k < nbytes / bb; k++)
        for (int f = 0; f < 2; f++)
            if (off[f] >= 0) b[k * bb + (size_t)off[f] + 1] &= 0x3f; /* exponent <= 15: |value| < 2 */
    float *ours = malloc(total * sizeof *ours);
    ptq_error err = {0};
    CHECK(ptq_ggml_dequantize_rows(type, b, ours, nrows, n, &err) == PTQ_OK);
    size_t dn = 0;
    float *ref = run_ref("deq", type, n, b, nbytes, &dn);
    CHECK_MSG(ref && dn == total * sizeof(float) && memcmp(ours, ref, total * sizeof(float)) == 0,
              "%s: dequantized random blocks differ from ggml's", tname(type));
    int bad_rt = 0, bad_val = 0;
    for (size_t k = 0; k < nbytes / bb; k++) {
        ptq_ggml_block_params p;
        uint8_t c[256];
        ptq_ggml_unpack_block(type, b + k * bb, &p, c);
        ptq_ggml_pack_block(&p, c, b2);
        if (memcmp(b2, b + k * bb, bb)) bad_rt++;
        for (int j = 0; j < blk; j++) {
            float v = ptq_ggml_grid_value(&p, j, c[j]);
            if (memcmp(&v, &ours[k * (size_t)blk + (size_t)j], 4)) bad_val++;
        }
    }
    CHECK_MSG(bad_rt == 0, "%s: %d blocks do not survive unpack + pack", tname(type), bad_rt);
    CHECK_MSG(bad_val == 0, "%s: %d grid values differ from the dequantized ones", tname(type), bad_val);
    free(ref);
    free(ours);
    free(b);
    free(b2);
}

/* ------------------------------------------------------------------ GPTQ into the types */

/* sum over rows of d^T H d, d = W - deq(bytes) */
static double out_error(uint32_t type, const float *W, const void *bytes, int out, int in, const double *H) {
    float *q = malloc((size_t)out * in * sizeof *q);
    ptq_error err = {0};
    ptq_ggml_dequantize_rows(type, bytes, q, out, in, &err);
    double e = 0;
    double *d = malloc((size_t)in * sizeof *d);
    for (int r = 0; r < out; r++) {
        for (int j = 0; j < in; j++) d[j] = (double)W[(size_t)r * in + j] - q[(size_t)r * in + j];
        for (int a = 0; a < in; a++) {
            if (d[a] == 0) continue;
            double s = 0;
            for (int b = 0; b < in; b++) s += H[(size_t)a * in + b] * d[b];
            e += d[a] * s;
        }
    }
    free(d);
    free(q);
    return e;
}

/* every value of the GPTQ result lies on its block's grid: re-quantizing the dequantized row with the block's
 * own parameters gives back the very bytes; and ggml dequantizes them as ptq does */
static void check_on_grid(uint32_t type, const unsigned char *bytes, int out, int in, const char *what) {
    int blk = block_of(type), nb = in / blk;
    size_t bb = ptq_ggml_row_bytes(type, blk);
    float *deq = malloc((size_t)out * in * sizeof *deq);
    ptq_error err = {0};
    ptq_ggml_dequantize_rows(type, bytes, deq, out, in, &err);
    unsigned char *again = malloc(bb);
    int bad = 0;
    for (size_t k = 0; k < (size_t)out * (size_t)nb; k++) {
        ptq_ggml_block_params p;
        uint8_t c[256], c2[256];
        ptq_ggml_unpack_block(type, bytes + k * bb, &p, c);
        for (int j = 0; j < blk; j++) {
            float v;
            c2[j] = (uint8_t)ptq_ggml_grid_code(&p, j, deq[k * (size_t)blk + (size_t)j], &v);
            if (p.scale[j / p.sub] == 0) c2[j] = c[j]; /* any code stands for the value there */
        }
        ptq_ggml_pack_block(&p, c2, again);
        if (memcmp(again, bytes + k * bb, bb)) bad++;
    }
    CHECK_MSG(bad == 0, "%s %s: %d GPTQ blocks are not on the type's grid", tname(type), what, bad);
    size_t dn = 0, total = (size_t)out * (size_t)in;
    float *ref = run_ref("deq", type, in, bytes, bb * (size_t)out * (size_t)nb, &dn);
    CHECK_MSG(ref && dn == total * 4 && memcmp(ref, deq, total * 4) == 0, "%s %s: ggml dequantizes the GPTQ bytes differently",
              tname(type), what);
    free(ref);
    free(again);
    free(deq);
}

typedef struct {
    double rtn, gptq[3][2]; /* [mode][weighted] */
} gptq_result;

/* RTN vs GPTQ (every mode, weighted or not, or just the default) for one layer; asserts GPTQ wins */
static void gptq_layer(uint32_t type, const float *W, int out, int in, const double *H, const char *what, int all_modes,
                       gptq_result *res) {
    size_t nbytes = ptq_ggml_row_bytes(type, in) * (size_t)out;
    unsigned char *b = malloc(nbytes);
    ptq_error err = {0};
    CHECK(ptq_ggml_quantize_rows(type, W, b, out, in, &err) == PTQ_OK);
    double rtn = out_error(type, W, b, out, in, H);
    res->rtn += rtn;
    for (int mode = 0; mode < 3; mode++)
        for (int wt = 0; wt < 2; wt++) {
            ptq_gptq_ggml_params p = ptq_gptq_ggml_default_params(type);
            if (!all_modes && (mode != (int)p.mode || wt != p.weighted)) continue;
            p.mode = (ptq_ggml_params_mode)mode;
            p.weighted = wt;
            memset(b, 0, nbytes);
            ptq_status st = ptq_gptq_ggml_quantize(W, out, in, H, &p, b, nbytes, NULL, &err);
            CHECK_MSG(st == PTQ_OK, "%s", err.msg);
            if (st != PTQ_OK) continue;
            double g = out_error(type, W, b, out, in, H);
            res->gptq[mode][wt] += g;
            CHECK_MSG(g < rtn, "%s %s mode %d weighted %d: GPTQ's output error %.6g is not below RTN's %.6g", tname(type),
                      what, mode, wt, g, rtn);
            if (mode == (int)p.mode || mode == 0) check_on_grid(type, b, out, in, what);
        }
    free(b);
}

static void print_result(uint32_t type, const gptq_result *r, int all_modes) {
    if (all_modes)
        printf("%-5s GPTQ/RTN output error: static %.3f / %.3f (weighted), dynamic %.3f / %.3f, dynamic-sub %.3f / %.3f\n",
               tname(type), r->gptq[0][0] / r->rtn, r->gptq[0][1] / r->rtn, r->gptq[1][0] / r->rtn, r->gptq[1][1] / r->rtn,
               r->gptq[2][0] / r->rtn, r->gptq[2][1] / r->rtn);
    else {
        ptq_gptq_ggml_params p = ptq_gptq_ggml_default_params(type);
        printf("%-5s GPTQ/RTN output error (default: mode %d, weighted %d): %.3f\n", tname(type), (int)p.mode, p.weighted,
               r->gptq[p.mode][p.weighted] / r->rtn);
    }
}

/* a correlated random layer: X = Z M (so H is far from diagonal) with one dead input */
static void test_gptq_random(void) {
    enum { OUT = 48, IN = 512, N = 1024, K = 64 };
    float *W = malloc(sizeof(float) * OUT * IN), *Z = malloc(sizeof(float) * N * K), *M = malloc(sizeof(float) * K * IN);
    double *X = malloc(sizeof(double) * N * IN), *H = calloc((size_t)IN * IN, sizeof(double));
    tu_prng_fill(W, OUT * IN, 31, 0.1, 0, 24);
    tu_prng_fill(Z, N * K, 32, 1.0, 0, 24);
    tu_prng_fill(M, K * IN, 33, 1.0, 0, 24);
    for (int t = 0; t < N; t++)
        for (int j = 0; j < IN; j++) {
            double s = 0.3 * Z[t * K + j % K];
            for (int k = 0; k < K; k++) s += Z[t * K + k] * M[k * IN + j] * 0.2;
            X[(size_t)t * IN + j] = j == 77 ? 0 : s;
        }
    for (int a = 0; a < IN; a++)
        for (int b = a; b < IN; b++) {
            double s = 0;
            for (int t = 0; t < N; t++) s += X[(size_t)t * IN + a] * X[(size_t)t * IN + b];
            H[(size_t)a * IN + b] = H[(size_t)b * IN + a] = 2 * s / N;
        }
    for (size_t i = 0; i < N_TYPES; i++) {
        gptq_result r;
        memset(&r, 0, sizeof r);
        gptq_layer(k_types[i], W, OUT, IN, H, "random", 1, &r);
        print_result(k_types[i], &r, 1);
    }
    /* refusals */
    ptq_gptq_ggml_params p = ptq_gptq_ggml_default_params(PTQ_GGML_Q4_K);
    unsigned char small[16];
    ptq_error err = {0};
    p.act_order = 1;
    CHECK(ptq_gptq_ggml_quantize(W, OUT, IN, H, &p, small, 0, NULL, &err) == PTQ_ERR_UNSUPPORTED &&
          strstr(err.msg, "act-order"));
    p.act_order = 0;
    CHECK(ptq_gptq_ggml_quantize(W, OUT, IN - 32, H, &p, small, 0, NULL, &err) == PTQ_ERR_ARG && strstr(err.msg, "256"));
    CHECK(ptq_gptq_ggml_quantize(W, OUT, IN, H, &p, small, sizeof small, NULL, &err) == PTQ_ERR_ARG &&
          strstr(err.msg, "buffer"));
    p.type = PTQ_GGML_Q8_1;
    CHECK(ptq_gptq_ggml_quantize(W, OUT, IN, H, &p, small, 0, NULL, &err) == PTQ_ERR_UNSUPPORTED && strstr(err.msg, "Q8_1"));
    free(W), free(Z), free(M), free(X), free(H);
}

/* llama-shakespeare-256: Hessians of real activations (calibration windows of its held-out text) */
typedef struct {
    const char *names[4];
    double *H[4];
    int in[4];
    int64_t rows[4];
} hess_acc;

static int capture_fn(void *user, const ptq_linear_view *lin, const float *X, const float *Y, int rows) {
    (void)Y;
    hess_acc *h = user;
    for (int k = 0; k < 4; k++) {
        char want[128];
        snprintf(want, sizeof want, "%s", h->names[k]);
        if (strcmp(lin->name, want) != 0) continue;
        int in = lin->in;
        if (!h->H[k]) h->H[k] = calloc((size_t)in * in, sizeof(double)), h->in[k] = in;
        for (int t = 0; t < rows; t++)
            for (int a = 0; a < in; a++) {
                double xa = X[(size_t)t * in + a];
                if (xa == 0) continue;
                double *Ha = h->H[k] + (size_t)a * in;
                for (int b = 0; b < in; b++) Ha[b] += xa * X[(size_t)t * in + b];
            }
        h->rows[k] += rows;
    }
    return 0;
}

static void test_gptq_shakespeare(void) {
    char dir[4096], text[4096], tok[4096], st_path[4096];
    if (!need_shakespeare(st_path, sizeof st_path, "model.safetensors", "GPTQ on real layers")) return;
    shakespeare_path(text, sizeof text, "shakespeare-eval.txt");
    shakespeare_path(tok, sizeof tok, "tokenizer.bin");
    snprintf(dir, sizeof dir, "%s", st_path);
    *strrchr(dir, '/') = 0;
    ptq_model *m = NULL;
    ptq_tokenizer *tk = NULL;
    ptq_error err = {0};
    char *txt = NULL;
    size_t tlen = 0;
    int *ids = NULL, nids = 0, *win = NULL;
    if (ptq_model_load(dir, &m, &err) != PTQ_OK || ptq_tokenizer_load(tok, 512, &tk, &err) != PTQ_OK) {
        CHECK_MSG(0, "%s", err.msg);
        goto out;
    }
    FILE *f = fopen(text, "rb");
    if (!f) goto out;
    txt = malloc(1 << 16);
    tlen = fread(txt, 1, 1 << 16, f);
    fclose(f);
    CHECK(ptq_tokenizer_encode(tk, txt, tlen, 1, &ids, &nids, &err) == PTQ_OK);
    CHECK(ptq_calib_windows(ids, nids, 16, 64, 5, &win, &err) == PTQ_OK);
    hess_acc h;
    memset(&h, 0, sizeof h);
    h.names[0] = "model.layers.0.self_attn.q_proj", h.names[1] = "model.layers.1.mlp.down_proj";
    h.names[2] = "model.layers.2.mlp.gate_proj", h.names[3] = "model.layers.3.self_attn.o_proj";
    ptq_calib_data cd = {win, 16, 64, NULL};
    CHECK_MSG(ptq_capture_activations(m, &cd, capture_fn, &h, NULL, &err) == PTQ_OK, "%s", err.msg);
    ptq_safetensors st;
    if (ptq_st_open(st_path, &st, &err) != PTQ_OK) goto out;
    gptq_result res[N_TYPES];
    memset(res, 0, sizeof res);
    for (int k = 0; k < 4; k++) {
        CHECK_MSG(h.H[k] != NULL, "no activations captured for %s", h.names[k]);
        if (!h.H[k]) continue;
        int in = h.in[k];
        for (size_t i = 0; i < (size_t)in * in; i++) h.H[k][i] *= 2.0 / (double)h.rows[k];
        char wn[160];
        snprintf(wn, sizeof wn, "%s.weight", h.names[k]);
        const ptq_st_tensor *t = ptq_st_find(&st, wn);
        CHECK_MSG(t && t->ndim == 2 && t->shape[1] == in, "%s", wn);
        if (!t) continue;
        int out = (int)t->shape[0];
        float *W = malloc((size_t)t->numel * sizeof *W);
        CHECK(ptq_st_read_f32(&st, wn, -1, NULL, W, &err) == PTQ_OK);
        for (size_t i = 0; i < N_TYPES; i++) gptq_layer(k_types[i], W, out, in, h.H[k], wn, k == 0, &res[i]);
        free(W);
        free(h.H[k]);
    }
    printf("llama-shakespeare-256 (4 layers, 1024 calibration tokens; per type: GPTQ error / RTN error):\n");
    for (size_t i = 0; i < N_TYPES; i++) {
        ptq_gptq_ggml_params p = ptq_gptq_ggml_default_params(k_types[i]);
        printf("%-5s %.3f\n", tname(k_types[i]), res[i].gptq[p.mode][p.weighted] / res[i].rtn);
    }
    ptq_st_close(&st);
out:
    free(txt);
    free(ids);
    free(win);
    ptq_tokenizer_free(tk);
    ptq_model_free(m);
}

/* ------------------------------------------------------------------ GGUF files holding the types */

static int run_py(const char *args) {
    char cmd[12000];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/make_gguf_qtypes.py' %s", PTQ_SOURCE_DIR, args);
    int rc = system(cmd);
    if (rc != 0) {
        CHECK_MSG(!ci(), "cannot write the GGUF files (needs /usr/bin/python3 with numpy): %s", cmd);
        fprintf(stderr, "SKIP: cannot write the GGUF files: %s\n", cmd);
    }
    return rc == 0;
}

static float *logits(ptq_model *m, const int *toks, int n, int vocab) {
    ptq_session *s = NULL;
    ptq_error err = {0};
    float *out = malloc((size_t)n * (size_t)vocab * sizeof *out);
    const float *lg = NULL;
    CHECK_MSG(ptq_session_new(m, n, &s, &err) == PTQ_OK, "%s", err.msg);
    for (int i = 0; s && i < n; i++) {
        CHECK_MSG(ptq_session_feed(s, &toks[i], 1, &lg, &err) == PTQ_OK, "%s", err.msg);
        if (lg) memcpy(out + (size_t)i * vocab, lg, (size_t)vocab * sizeof *lg);
    }
    ptq_session_free(s);
    return out;
}

static char g_gguf_dir[1200];
static void remove_gguf_dir(void) {
    char cmd[1300];
    if (!g_gguf_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_gguf_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_gguf_dir);
}

/* every type: ptq's RTN blocks of llama-shakespeare-256 in a GGUF written by gguf-py; ptq reads the file, and
 * its weights (hence logits) are the ones gguf-py's dequantizer makes of the same bytes */
static void test_gguf_types(void) {
    char shk[4096], refs_py[4096];
    if (!need_shakespeare(shk, sizeof shk, "config.json", "GGUF files of the types")) return;
    *strrchr(shk, '/') = 0;
    char *gp = tu_ref_path("llama.cpp/gguf-py/gguf/gguf_writer.py");
    snprintf(refs_py, sizeof refs_py, "%s", gp);
    free(gp);
    *strstr(refs_py, "/llama.cpp/gguf-py") = 0;
    snprintf(g_gguf_dir, sizeof g_gguf_dir, "%s/gguf", tu_tmpdir());
    atexit(remove_gguf_dir);
    char args[10000];
    snprintf(args, sizeof args, "rows '%s' '%s' '%s'", refs_py, shk, g_gguf_dir);
    if (!run_py(args)) return;
    char path[2000], name[128];
    snprintf(path, sizeof path, "%s/rows/list.txt", g_gguf_dir);
    FILE *lst = fopen(path, "r");
    CHECK(lst != NULL);
    if (!lst) return;
    int n = snprintf(args, sizeof args, "gguf '%s' '%s' '%s'", refs_py, shk, g_gguf_dir);
    for (size_t i = 0; i < N_TYPES; i++) {
        snprintf(path, sizeof path, "%s/%s", g_gguf_dir, tname(k_types[i]));
        char mk[2100];
        snprintf(mk, sizeof mk, "mkdir -p '%s'", path);
        CHECK(system(mk) == 0);
        n += snprintf(args + n, sizeof args - (size_t)n, " %s", tname(k_types[i]));
    }
    long rows, cols;
    while (fscanf(lst, "%127s %ld %ld", name, &rows, &cols) == 3) {
        float *w = malloc((size_t)rows * (size_t)cols * sizeof *w);
        snprintf(path, sizeof path, "%s/rows/%s.f32", g_gguf_dir, name);
        FILE *f = fopen(path, "rb");
        CHECK(f && fread(w, sizeof *w, (size_t)(rows * cols), f) == (size_t)(rows * cols));
        if (f) fclose(f);
        for (size_t i = 0; i < N_TYPES; i++) {
            size_t nb = ptq_ggml_row_bytes(k_types[i], cols) * (size_t)rows;
            unsigned char *b = malloc(nb);
            ptq_error err = {0};
            CHECK_MSG(ptq_ggml_quantize_rows(k_types[i], w, b, rows, cols, &err) == PTQ_OK, "%s", err.msg);
            snprintf(path, sizeof path, "%s/%s/%s.bin", g_gguf_dir, tname(k_types[i]), name);
            CHECK(tu_write_file(path, b, nb) == 0);
            free(b);
        }
        free(w);
    }
    fclose(lst);
    if (!run_py(args)) return;

    int toks[32];
    for (int i = 0; i < 32; i++) toks[i] = (int)(tu_splitmix64(500 + (uint64_t)i) % 509) + 3;
    toks[0] = 1;
    for (size_t i = 0; i < N_TYPES; i++) {
        char g[1400], d[1400];
        snprintf(g, sizeof g, "%s/shakespeare-%s.gguf", g_gguf_dir, tname(k_types[i]));
        snprintf(d, sizeof d, "%s/shakespeare-%s-deq", g_gguf_dir, tname(k_types[i]));
        ptq_model *mg = NULL, *md = NULL;
        ptq_error err = {0};
        CHECK_MSG(ptq_model_load(g, &mg, &err) == PTQ_OK, "%s", err.msg);
        CHECK_MSG(ptq_model_load(d, &md, &err) == PTQ_OK, "%s", err.msg);
        if (mg && md) {
            ptq_model_info info;
            ptq_model_get_info(mg, &info);
            size_t total = 32 * (size_t)info.vocab_size;
            /* as loaded: every block matrix runs on its blocks (packed, or ggml_gemm.h), none as float32 */
            int floats = 0;
            for (int b = 0; b < mg->cfg.n_layers; b++)
                for (int r = 0; r < PTQ_LIN_COUNT; r++) floats += mg->blocks[b].lin[r].w != NULL;
            CHECK_MSG(floats == 0, "%s: %d block matrices were widened to float32 at load", tname(k_types[i]), floats);
            float *ln = logits(mg, toks, 32, info.vocab_size);
            tu_unpack_model(mg); /* back to the float path for a bit-exact comparison */
            float *lg = logits(mg, toks, 32, info.vocab_size), *ld = logits(md, toks, 32, info.vocab_size);
            double dmax = 0, smax = 0, nmax = 0;
            for (size_t k = 0; k < total; k++) {
                dmax = fmax(dmax, fabs((double)lg[k] - ld[k]));
                nmax = fmax(nmax, fabs((double)ln[k] - ld[k]));
                smax = fmax(smax, fabs((double)ld[k]));
            }
            /* the block kernels: the same weights, float sums in another order */
            printf("%-5s GGUF on its blocks: max |logit - float path's| = %.3g\n", tname(k_types[i]), nmax);
            CHECK_MSG(nmax <= 1e-4 * smax, "%s: the block kernels' logits differ from the float path's by %g (max %g)",
                      tname(k_types[i]), nmax, smax);
            free(ln);
            printf("%-5s GGUF: max |ptq logit - logit of gguf-py's dequantized weights| = %.3g (max |logit| %.3g)\n",
                   tname(k_types[i]), dmax, smax);
            CHECK_MSG(dmax == 0, "%s: ptq's logits on the GGUF differ from those of gguf-py's weights by %g",
                      tname(k_types[i]), dmax);
            free(lg);
            free(ld);
        }
        ptq_model_free(mg);
        ptq_model_free(md);
    }
}

/* ------------------------------------------------------------------ errors */

static void test_errors(void) {
    float x[256] = {0};
    unsigned char b[256];
    ptq_error err = {0};
    CHECK(ptq_ggml_row_bytes(PTQ_GGML_Q4_K, 128) == 0 && ptq_ggml_row_bytes(PTQ_GGML_Q4_0, 64) == 36);
    CHECK(ptq_ggml_row_bytes(PTQ_GGML_Q8_1, 32) == 0 && ptq_ggml_row_bytes(PTQ_GGML_F16, 3) == 6);
    CHECK(ptq_ggml_quantize_rows(PTQ_GGML_Q4_K, x, b, 1, 128, &err) == PTQ_ERR_ARG && strstr(err.msg, "256"));
    CHECK(ptq_ggml_quantize_rows(PTQ_GGML_Q8_1, x, b, 1, 32, &err) == PTQ_ERR_UNSUPPORTED && strstr(err.msg, "Q8_1") &&
          strstr(err.msg, "Q6_K"));
    x[40] = NAN;
    CHECK(ptq_ggml_quantize_rows(PTQ_GGML_Q4_0, x, b, 2, 32, &err) == PTQ_ERR_NUMERIC && strstr(err.msg, "row 1, column 8"));
    CHECK(ptq_ggml_dequantize_rows(PTQ_GGML_Q2_K, b, x, 1, 255, &err) == PTQ_ERR_ARG);
    CHECK(ptq_ggml_quant_affine(PTQ_GGML_Q4_K) && !ptq_ggml_quant_affine(PTQ_GGML_Q6_K) && ptq_ggml_quant_affine(PTQ_GGML_Q5_1));
}

/* an argument names one part to run alone: gguf, gptq */
int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    if (only && !strcmp(only, "gguf")) {
        test_gguf_types();
        return tu_done("test_ggml_quants");
    }
    if (only && !strcmp(only, "gptq") && build_ref()) {
        test_gptq_random();
        test_gptq_shakespeare();
        return tu_done("test_ggml_quants");
    }
    test_errors();
    if (build_ref()) {
        rowset sets[32];
        sets[0] = random_rows();
        int ns = 1 + shakespeare_rows(sets + 1, 31);
        for (size_t i = 0; i < N_TYPES; i++) {
            test_rtn_vs_ggml(k_types[i], sets, ns);
            test_random_blocks(k_types[i]);
        }
        for (int s = 0; s < ns; s++) free(sets[s].x);
        test_gptq_random();
        test_gptq_shakespeare();
    }
    test_gguf_types();
    return tu_done("test_ggml_quants");
}
