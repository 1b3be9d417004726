/* Symmetric grids store no zero points (kernels/qweight.h, docs/FORMAT.md version 5), on the stories260K model:
 * - `--sym` RTN at 4 and 8 bits (blocks, head and embeddings) leaves every packed matrix without stored zero
 *   points, the shared row holding 2^(bits-1); the quantization summary (bits per weight) counts 8 bits per group
 *   less than with stored zero points (at W4 g32: 4.5 bits, as llama.cpp's Q4_0, against 4.75);
 * - the same codes with the zero points stored (every one 2^(bits-1)) give bit-identical logits and perplexity:
 *   the kernels read the same integers (an exact statement; the stored path is tested against references);
 * - the saved file is version 5, has no .zeros tensors and is smaller than the stored-zero file of the same
 *   codes by the zero points' bytes (plus their header entries); both load, the stored one into the zero-less
 *   form, with the same logits;
 * - an asymmetric model keeps its zero points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/safetensors.h"
#include "kernels/qweight.h"
#include "models/forward.h"
#include "models/model.h"
#include "quant/quantizer.h"
#include "stories_quant.h"
#include "testutil.h"

#define T TU_STORIES_T
#define VOCAB TU_STORIES_VOCAB

/* Whether q stores no zero points and its shared row is all 2^(bits-1). */
static int zero_less(const ptq_qweight *q) {
    if (q->zeros || !q->zero_row) return 0;
    for (int g = 0; g < q->n_groups; g++)
        if (q->zero_row[g] != 1 << (q->bits - 1)) return 0;
    return 1;
}

/* The same weights with every zero point stored, as files before version 5 held them. */
static void store_zeros(ptq_qweight *q) {
    const size_t n = (size_t)q->out * (size_t)q->n_groups;
    q->zeros = ptq_alloc(n, 1, "zeros", NULL);
    memset(q->zeros, 1 << (q->bits - 1), n);
    ptq_free(q->zero_row);
    q->zero_row = NULL;
}

/* The file's format version is `want`, and it has a tensor named *.zeros exactly when `zeros`. */
static int file_is(const char *path, const char *want, int zeros) {
    ptq_safetensors st;
    ptq_error e;
    if (ptq_st_open(path, &st, &e) != PTQ_OK) return 0;
    const char *v = ptq_st_metadata(&st, "ptq.format_version");
    int has_zeros = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const char *n = st.tensors[i].name;
        const size_t len = strlen(n);
        has_zeros |= len > 6 && strcmp(n + len - 6, ".zeros") == 0;
    }
    const int ok = v && strcmp(v, want) == 0 && has_zeros == zeros;
    ptq_st_close(&st);
    return ok;
}

static void check_loaded(const char *path, const int *seq, const float *want, const char *what, int bits) {
    ptq_model *l = NULL;
    ptq_error e;
    CHECK_MSG(ptq_model_load(path, &l, &e) == PTQ_OK, "W%d: loading %s: %s", bits, what, e.msg);
    if (!l) return;
    ptq_qweight *qs[64];
    const int n = tu_packed(l, qs);
    int all = n > 0;
    for (int i = 0; i < n; i++) all &= zero_less(qs[i]);
    CHECK_MSG(all, "W%d: %s: a loaded matrix holds zero points", bits, what);
    tu_logits_equal(l, seq, want, what, bits);
    ptq_model_free(l);
}

int main(void) {
    char *src = tu_data_path("stories260K/stories260K.bin");
    const char *tmp = tu_tmpdir();
    int seq[T], toks[TU_STORIES_PPL_N];
    tu_stories_tokens(seq, toks);
    float *a = malloc(sizeof(float) * T * VOCAB);
    ptq_error e;
    for (int bits = 4; bits <= 8; bits += 4) {
        ptq_model *m = tu_quantize_stories(src, bits, bits, 1);
        CHECK(m != NULL);
        if (!m) continue;
        ptq_qweight *qs[64];
        const int nq = tu_packed(m, qs);
        long zero_bytes = 0;
        int all = nq > 1;
        for (int i = 0; i < nq; i++) {
            all &= zero_less(qs[i]);
            zero_bytes += (long)qs[i]->out * qs[i]->n_groups;
        }
        CHECK_MSG(all, "W%d --sym: a packed matrix stores zero points", bits);
        ptq_quant_summary qsum;
        ptq_model_quant_summary(m, &qsum);
        CHECK(ptq_forward_tokens(m, seq, T, a, &e) == PTQ_OK);
        const double ppl_sym = tu_ppl31(m, toks, TU_STORIES_PPL_N);
        CHECK(ppl_sym > 1.0);

        char sym[512], stored[512];
        snprintf(sym, sizeof sym, "%s/w%d_sym.ptq", tmp, bits);
        snprintf(stored, sizeof stored, "%s/w%d_stored.ptq", tmp, bits);
        CHECK(ptq_model_save(m, sym, NULL, &e) == PTQ_OK);
        CHECK_MSG(file_is(sym, "5", 0), "W%d: the zero-less file is not version 5 without .zeros tensors", bits);

        /* the same codes with their zero points stored: identical logits and perplexity; saved as before */
        for (int i = 0; i < nq; i++) store_zeros(qs[i]);
        tu_logits_equal(m, seq, a, "stored zero points", bits);
        ptq_quant_summary qstored;
        ptq_model_quant_summary(m, &qstored);
        CHECK_MSG(qstored.weights == qsum.weights && qstored.bits - qsum.bits == 8.0 * (double)zero_bytes,
                  "W%d: the summary counts %.0f bits more with stored zero points, expected %ld", bits,
                  qstored.bits - qsum.bits, 8 * zero_bytes);
        const double ppl_stored = tu_ppl31(m, toks, TU_STORIES_PPL_N);
        CHECK_MSG(ppl_stored == ppl_sym, "W%d: perplexity %.9g with stored zero points, %.9g without", bits, ppl_stored,
                  ppl_sym);
        CHECK(ptq_model_save(m, stored, NULL, &e) == PTQ_OK);
        CHECK_MSG(file_is(stored, "3", 1), "W%d: the stored-zero file is not version 3 with .zeros tensors", bits);
        const long s5 = tu_file_size(sym), s3 = tu_file_size(stored);
        CHECK_MSG(s3 - s5 >= zero_bytes && s3 - s5 <= zero_bytes + 256L * nq,
                  "W%d: files %ld (no zero points) and %ld (stored) bytes: %ld apart, expected %ld (zero points) plus "
                  "at most %d (their headers)", bits, s5, s3, s3 - s5, zero_bytes, 256 * nq);
        printf("W%d g32 --sym: %.3f bits per weight, file %ld bytes against %ld with stored zero points, "
               "perplexity %.6f both\n", bits, qsum.bits_per_weight, s5, s3, ppl_sym);
        ptq_model_free(m);
        check_loaded(sym, seq, a, "the version 5 file", bits);
        check_loaded(stored, seq, a, "the stored-zero file (dropped on load)", bits);
        remove(sym);
        remove(stored);
    }
    /* an asymmetric grid keeps its zero points */
    ptq_model *m = tu_quantize_stories(src, 4, 4, 0);
    CHECK(m != NULL);
    if (m) {
        ptq_qweight *qs[64];
        const int nq = tu_packed(m, qs);
        int stored = 0;
        for (int i = 0; i < nq; i++) stored += qs[i]->zeros != NULL;
        CHECK_MSG(stored == nq, "W4 asymmetric: %d of %d matrices keep their zero points", stored, nq);
        ptq_model_free(m);
    }
    free(a);
    free(src);
    return tu_done("test_sym_zeros");
}
