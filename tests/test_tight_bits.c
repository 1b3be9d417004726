/* 5-, 6- and 7-bit codes stored at their own width (kernels/qweight.h, docs/FORMAT.md version 4), on the
 * stories260K model:
 * - every packed matrix of a W5/W6/W7 model holds B-bit storage, ceil(in / 32) * 4 * B bytes a row;
 * - the same codes held in 8-bit storage (what versions 2 and 3 wrote) give bit-identical logits and the
 *   same perplexity: the kernels read the same integers, only the unpacking differs (an exact statement);
 * - the saved file is version 4, and smaller than the 8-bit-stored (version 2) file of the same codes by
 *   exactly sum out * ceil(in / 32) * 4 * (8 - B) bytes of codes (plus at most a few header bytes);
 * - a version 2 file with 8-bit codes of a 5-7-bit grid still loads (repacked to B bits) and gives the same
 *   logits; a code above the grid in such a file is refused with a message naming the tensor;
 * - a packed head/embedding table at 5-7 bits (--head-bits) round-trips through the file. */
#include <math.h>
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

/* The same codes in 8-bit storage, as format versions 2 and 3 held 5-7-bit grids. */
static void widen(ptq_qweight *q) {
    const size_t rb8 = ptq_qweight_row_bytes(8, q->in);
    uint8_t *c8 = calloc((size_t)q->out, rb8), *row = malloc((size_t)q->in);
    for (int o = 0; o < q->out; o++) {
        ptq_unpack_row(q->bits, q->codes + (size_t)o * q->row_bytes, q->in, row);
        ptq_pack_row(8, row, q->in, c8 + (size_t)o * rb8);
    }
    uint8_t *dst = ptq_alloc((size_t)q->out, rb8, "codes", NULL);
    memcpy(dst, c8, (size_t)q->out * rb8);
    ptq_free(q->codes);
    q->codes = dst;
    q->bits = 8;
    q->row_bytes = rb8;
    free(c8);
    free(row);
}

int main(void) {
    char *src = tu_data_path("stories260K/stories260K.bin");
    const char *tmp = tu_tmpdir();
    int seq[T], toks[TU_STORIES_PPL_N];
    tu_stories_tokens(seq, toks);
    float *a = malloc(sizeof(float) * T * VOCAB);
    ptq_error e;
    for (int bits = 5; bits <= 7; bits++) {
        const int head_bits = bits == 5 ? 6 : 0; /* a 6-bit table (tied head) in the W5 file */
        ptq_model *m = tu_quantize_stories(src, bits, head_bits, 0);
        CHECK(m != NULL);
        if (!m) continue;
        ptq_qweight *qs[64];
        const int nq = tu_packed(m, qs);
        long code_saving = 0;
        int shapes_ok = nq > 0;
        for (int i = 0; i < nq; i++) {
            const int want = qs[i] == m->tok_emb_q || qs[i] == m->head.q ? (head_bits ? head_bits : bits) : bits;
            shapes_ok &= qs[i]->bits == want && qs[i]->grid_bits == want &&
                         qs[i]->row_bytes == (size_t)((qs[i]->in + 31) / 32) * 4u * (size_t)want;
            code_saving += (long)qs[i]->out * ((qs[i]->in + 31) / 32) * 4 * (8 - qs[i]->bits);
        }
        CHECK_MSG(shapes_ok, "W%d: a packed matrix is not stored at its own width", bits);
        if (head_bits) CHECK(m->tok_emb_q && m->tok_emb_q->bits == head_bits);
        CHECK(ptq_forward_tokens(m, seq, T, a, &e) == PTQ_OK);
        const double ppl_tight = tu_ppl31(m, toks, TU_STORIES_PPL_N);
        CHECK(ppl_tight > 1.0);

        char tight[512], wide[512], bad[512];
        snprintf(tight, sizeof tight, "%s/w%d_tight.ptq", tmp, bits);
        snprintf(wide, sizeof wide, "%s/w%d_wide.ptq", tmp, bits);
        snprintf(bad, sizeof bad, "%s/w%d_bad.ptq", tmp, bits);
        CHECK(ptq_model_save(m, tight, NULL, &e) == PTQ_OK);
        CHECK_MSG(tu_version_is(tight, "4"), "W%d: the tight file is not format version 4", bits);

        /* the same codes in 8-bit storage: identical logits and perplexity; saved as version 2/3 */
        for (int i = 0; i < nq; i++) widen(qs[i]);
        tu_logits_equal(m, seq, a, "8-bit storage of the same codes", bits);
        CHECK_MSG(tu_ppl31(m, toks, TU_STORIES_PPL_N) == ppl_tight, "W%d: perplexity %.9g with 8-bit storage, %.9g tight", bits,
                  tu_ppl31(m, toks, TU_STORIES_PPL_N), ppl_tight);
        CHECK(ptq_model_save(m, wide, NULL, &e) == PTQ_OK);
        CHECK_MSG(tu_version_is(wide, head_bits ? "3" : "2"), "W%d: the 8-bit-stored file is not version 2/3", bits);
        const long st = tu_file_size(tight), sw = tu_file_size(wide);
        CHECK_MSG(labs(sw - st - code_saving) <= 256, "W%d: files %ld (tight) and %ld (8-bit) bytes: %ld apart, "
                  "expected %ld (codes) within 256 (header)", bits, st, sw, sw - st, code_saving);
        printf("W%d g32: tight file %ld bytes, 8-bit storage %ld bytes (%.3f), perplexity %.6f both\n", bits, st, sw,
               (double)st / (double)sw, ppl_tight);

        /* a code above the grid in an old file is damage */
        qs[0]->codes[3] = 255;
        CHECK(ptq_model_save(m, bad, NULL, &e) == PTQ_OK);
        ptq_model_free(m);

        ptq_model *l = NULL;
        CHECK(ptq_model_load(tight, &l, &e) == PTQ_OK);
        if (l) tu_logits_equal(l, seq, a, "the version 4 file", bits);
        ptq_model_free(l);
        l = NULL;
        CHECK(ptq_model_load(wide, &l, &e) == PTQ_OK);
        if (l) {
            ptq_qweight *lq[64];
            const int n = tu_packed(l, lq);
            int repacked = n == nq;
            for (int i = 0; i < n; i++) repacked &= lq[i]->bits == lq[i]->grid_bits && lq[i]->bits < 8;
            CHECK_MSG(repacked, "W%d: the version 2 file's codes were not repacked to their width", bits);
            tu_logits_equal(l, seq, a, "the version 2 file (8-bit codes, repacked on load)", bits);
        }
        ptq_model_free(l);
        l = NULL;
        CHECK(ptq_model_load(bad, &l, &e) == PTQ_ERR_FORMAT && strstr(e.msg, ".qweight has code 255") &&
              strstr(e.msg, bad));
        ptq_model_free(l);
        remove(tight);
        remove(wide);
        remove(bad);
    }
    free(a);
    free(src);
    return tu_done("test_tight_bits");
}
