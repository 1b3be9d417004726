/* Shared by the storage tests (test_tight_bits, test_sym_zeros): stories260K quantized with RTN at group 32 on a
 * fixed calibration sequence, its packed matrices, file sizes and versions, and a short perplexity. */
#ifndef PTQ_TESTS_STORIES_QUANT_H
#define PTQ_TESTS_STORIES_QUANT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "kernels/qweight.h"
#include "models/model.h"
#include "models/forward.h"
#include "ptq.h"
#include "testutil.h"

#define TU_STORIES_T 40      /* tokens of the logits sequence */
#define TU_STORIES_VOCAB 512 /* stories260K's vocabulary */
#define TU_STORIES_PPL_N 96  /* tokens of the perplexity text */

/* The logits sequence seq[TU_STORIES_T] and the perplexity text toks[TU_STORIES_PPL_N], BOS-separated. */
static inline void tu_stories_tokens(int *seq, int *toks) {
    for (int i = 0; i < TU_STORIES_T; i++) seq[i] = i == 0 ? 1 : 3 + (i * 104729) % 500;
    for (int i = 0; i < TU_STORIES_PPL_N; i++) toks[i] = i % 50 == 0 ? 1 : 3 + (i * 31337) % 500;
}

/* m's logits on seq are bit for bit `want` (a failed check names `what` and the width). */
static inline int tu_logits_equal(ptq_model *m, const int *seq, const float *want, const char *what, int bits) {
    float *y = malloc(sizeof(float) * TU_STORIES_T * TU_STORIES_VOCAB);
    ptq_error e;
    const int ok = y && ptq_forward_tokens(m, seq, TU_STORIES_T, y, &e) == PTQ_OK &&
                   memcmp(y, want, sizeof(float) * TU_STORIES_T * TU_STORIES_VOCAB) == 0;
    CHECK_MSG(ok, "W%d: %s: logits differ from the model quantized in memory", bits, what);
    free(y);
    return ok;
}

/* RTN W`bits` g32 blocks, head and embeddings at `table_bits` (0: float), symmetric grids when `sym`. */
static inline ptq_model *tu_quantize_stories(const char *src, int bits, int table_bits, int sym) {
    ptq_error e;
    ptq_model *m;
    if (ptq_model_load(src, &m, &e) != PTQ_OK) return NULL;
    int toks[2 * 64];
    for (int i = 0; i < 2 * 64; i++) toks[i] = i % 64 == 0 ? 1 : 3 + (i * 7919) % 500;
    ptq_calib_data d = {toks, 2, 64, NULL};
    ptq_quant_params p = ptq_quant_default_params();
    p.wbits = bits;
    p.group = 32;
    p.sym = sym;
    p.method = PTQ_WQ_RTN;
    p.head_bits = table_bits;
    p.embed_bits = table_bits;
    if (ptq_quantize_model(m, &d, &p, &e) != PTQ_OK) {
        fprintf(stderr, "quantize: %s\n", e.msg);
        ptq_model_free(m);
        return NULL;
    }
    return m;
}

/* Every packed matrix of m (a tied table once), up to 64. */
static inline int tu_packed(ptq_model *m, ptq_qweight **qs) {
    int n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++)
            if (m->blocks[l].lin[r].q && n < 64) qs[n++] = m->blocks[l].lin[r].q;
    if (m->tok_emb_q && n < 64) qs[n++] = m->tok_emb_q;
    if (m->head.q && m->head.q != m->tok_emb_q && n < 64) qs[n++] = m->head.q;
    return n;
}

static inline long tu_file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* The file's ptq.format_version is `want`. */
static inline int tu_version_is(const char *path, const char *want) {
    ptq_safetensors st;
    ptq_error e;
    if (ptq_st_open(path, &st, &e) != PTQ_OK) return 0;
    const char *v = ptq_st_metadata(&st, "ptq.format_version");
    const int ok = v && strcmp(v, want) == 0;
    ptq_st_close(&st);
    return ok;
}

/* Perplexity over windows of 31 predicted tokens; -1 on failure. */
static inline double tu_ppl31(ptq_model *m, const int *toks, int n) {
    ptq_ppl_params pp = ptq_ppl_default_params();
    pp.ctx = 31;
    ptq_ppl_result r;
    ptq_error e;
    return ptq_eval_perplexity(m, toks, n, &pp, &r, &e) == PTQ_OK ? r.ppl : -1.0;
}

#endif
