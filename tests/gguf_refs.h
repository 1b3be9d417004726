/* llama.cpp as the reference of the GGUF export tests (test_gguf_export.c, test_gguf_gpt2.c): the prebuilt libllama
 * of node-llama-cpp (build-ref/), driven by tests/ref/llama_cpp_logits.c and tests/ref/llama_cpp_check.c, which
 * setup() compiles at test time, and gguf-py's reader (tests/ref/gguf_tensors_equal.py). */
#ifndef PTQ_TESTS_GGUF_REFS_H
#define PTQ_TESTS_GGUF_REFS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/gguf_export.h"
#include "ptq.h"
#include "testutil.h"

static char g_bins[1200], g_check[700], g_logits[700], g_gp[1200];

static inline int build(const char *refs, const char *src, const char *exe) {
    char cmd[6000];
    snprintf(cmd, sizeof cmd,
             "cc -O1 -I'%s/llama.cpp/include' -I'%s/llama.cpp/ggml/include' '%s/tests/ref/%s' -L'%s' "
             "-l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,'%s' -lm -o '%s'",
             refs, refs, PTQ_SOURCE_DIR, src, g_bins, g_bins, exe);
    if (system(cmd) == 0) return 0;
    const char *ci = getenv("CI");
    fprintf(stderr, "%s: cannot build the llama.cpp reference: %s\n", ci && !strcmp(ci, "true") ? "FAIL" : "SKIP",
            cmd);
    exit(ci && !strcmp(ci, "true") ? 1 : 77);
}

static inline void setup(void) {
    char *rp = tu_ref_path("npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");
    snprintf(g_bins, sizeof g_bins, "%s", rp);
    *strstr(rp, "/npm/node_modules") = 0;
    char *gp = tu_ref_path("llama.cpp/gguf-py/gguf/gguf_reader.py");
    *strstr(gp, "/gguf/gguf_reader.py") = 0;
    snprintf(g_gp, sizeof g_gp, "%s", gp);
    snprintf(g_check, sizeof g_check, "%s/llama_cpp_check", tu_tmpdir());
    snprintf(g_logits, sizeof g_logits, "%s/llama_cpp_logits", tu_tmpdir());
    build(rp, "llama_cpp_check.c", g_check);
    build(rp, "llama_cpp_logits.c", g_logits);
    free(rp);
    free(gp);
}

static inline double max_diff(const float *a, const float *b, size_t n, double *scale) {
    double d = 0, sc = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        d = e > d ? e : d;
        sc = fabs((double)b[i]) > sc ? fabs((double)b[i]) : sc;
    }
    *scale = sc;
    return d;
}

static inline float *ptq_logits(ptq_model *m, const int *toks, int n, int vocab) {
    ptq_session *s = NULL;
    ptq_error err = {0};
    float *out = malloc((size_t)n * (size_t)vocab * sizeof *out);
    CHECK_MSG(ptq_session_new(m, n, &s, &err) == PTQ_OK, "session: %s", err.msg);
    for (int i = 0; s && i < n; i++) {
        const float *lg;
        CHECK_MSG(ptq_session_feed(s, &toks[i], 1, &lg, &err) == PTQ_OK, "feed: %s", err.msg);
        memcpy(out + (size_t)i * vocab, lg, (size_t)vocab * sizeof *lg);
    }
    ptq_session_free(s);
    return out;
}

static inline float *llama_logits(const char *gguf, const int *toks, int n, int vocab) {
    char out[700], cmd[8000];
    snprintf(out, sizeof out, "%s/llama_logits.f32", tu_tmpdir());
    int k = snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", g_logits, g_bins, gguf, out);
    for (int i = 0; i < n; i++) k += snprintf(cmd + k, sizeof cmd - (size_t)k, " %d", toks[i]);
    if (system(cmd) != 0) {
        CHECK_MSG(0, "llama.cpp cannot run %s", gguf);
        return NULL;
    }
    float *lg = malloc((size_t)n * (size_t)vocab * sizeof *lg);
    FILE *f = fopen(out, "rb");
    size_t got = f ? fread(lg, sizeof *lg, (size_t)n * (size_t)vocab, f) : 0;
    if (f) fclose(f);
    CHECK_MSG(got == (size_t)n * (size_t)vocab, "%s: llama.cpp wrote %zu logits", gguf, got);
    return lg;
}

/* The tensors of `ours` equal, name, type and bytes, those llama_model_quantize (no importance matrix) writes from
 * the F32 export f32 for file type ft. */
static inline void gr_same_as_llama_quantize(const char *name, const char *f32, ptq_gguf_ftype ft, const char *ours) {
    char theirs[800], cmd[6000];
    snprintf(theirs, sizeof theirs, "%s/%s-llama-%s.gguf", tu_tmpdir(), name, ptq_gguf_ftype_name(ft));
    snprintf(cmd, sizeof cmd, "'%s' '%s' quantize '%s' '%s' %d", g_check, g_bins, f32, theirs, (int)ft);
    CHECK_MSG(system(cmd) == 0, "llama_model_quantize failed: %s", cmd);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/ref/gguf_tensors_equal.py' '%s' '%s' '%s' >&2", PTQ_SOURCE_DIR,
             g_gp, ours, theirs);
    CHECK_MSG(system(cmd) == 0, "%s %s: tensors differ from llama.cpp's quantizer", name, ptq_gguf_ftype_name(ft));
    remove(theirs);
}

/* llama.cpp's mean cross-entropy on toks by ptq eval's window protocol (llama_cpp_check ppl); NAN on failure */
static inline double gr_llama_ce(const char *gguf, const int *toks, int64_t n, int ctx, long *scored) {
    char tokf[700], cmd[6000], outf[700];
    snprintf(tokf, sizeof tokf, "%s/gr-eval.i32", tu_tmpdir());
    snprintf(outf, sizeof outf, "%s/gr-ppl.txt", tu_tmpdir());
    int32_t *t32 = malloc((size_t)n * sizeof *t32);
    for (int64_t i = 0; i < n; i++) t32[i] = toks[i];
    tu_write_file(tokf, t32, (size_t)n * sizeof *t32);
    free(t32);
    snprintf(cmd, sizeof cmd, "'%s' '%s' ppl '%s' '%s' %d > '%s'", g_check, g_bins, gguf, tokf, ctx, outf);
    double ce = NAN, ppl = NAN;
    FILE *f = system(cmd) == 0 ? fopen(outf, "r") : NULL;
    CHECK_MSG(f && fscanf(f, "%ld %lf %lf", scored, &ce, &ppl) == 3, "llama.cpp perplexity failed: %s", cmd);
    if (f) fclose(f);
    return ce;
}

#endif
