/* Packed token embeddings left in the .ptq file (models/embed_map.c):
 * - an untied packed table loaded from a file points into the model's read-only mapping, and the logits equal
 *   bit for bit those of the model quantized in memory (never saved: its own heap copy of the table) and of the
 *   same file with the table copied back into model memory (ptq_embed_unmap), at 8 bits per channel, 4 bits in
 *   groups of 32 and 3 bits;
 * - after the load none of the mapping is resident (/proc/self/smaps: the checks' pages were dropped), after one
 *   lookup some of it (how much is the kernel's fault-around, 64 KB windows here: this model's tables are too small
 *   to tell that from the whole table; TinyLlama's 70 MB table, docs/RESULTS.md, is not);
 * - ptq_model_free unmaps it (gone from /proc/self/maps; ASan/LSan see the rest);
 * - a tied table (the head reads every row) stays a copy;
 * - a GGUF's untied Q4_0 / Q8_0 token_embd (ptq's export of llama-shakespeare-256, llama.cpp's RTN) loads packed
 *   (tok_emb_q, no float32 table): every row dequantizes to the floats ggml's dequantizer gives for the file's bytes
 *   (ptq_gguf_read_f32, proved equal to ggml's to_float by test_ggml_quants.c), and the logits equal bit for bit
 *   those of the same model with the table widened to float32. (test_gguf.c compares such a file's logits with
 *   llama.cpp's.) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "io/gguf.h"
#include "models/gguf_export.h"
#include "kernels/qweight.h"
#include "models/embed_map.h"
#include "models/forward.h"
#include "quant/head_embed.h"
#include "quant/quantizer.h"
#include "testutil.h"

#define NTOK 12

static ptq_model *load(const char *path) {
    ptq_model *m = NULL;
    ptq_error e;
    if (ptq_model_load(path, &m, &e) != PTQ_OK) fprintf(stderr, "%s: %s\n", path, e.msg);
    return m;
}

static ptq_status quantize(ptq_model *m, int embed_bits, int embed_group, int head_bits, int sym, ptq_error *e) {
    static int toks[4 * 32];
    for (int i = 0; i < 4 * 32; i++) toks[i] = i % 32 == 0 ? 1 : 3 + (i * 7919) % 500;
    ptq_calib_data d = {toks, 4, 32, NULL};
    ptq_quant_params p = ptq_quant_default_params();
    p.wbits = 4;
    p.group = 32;
    p.method = PTQ_WQ_RTN;
    p.embed_bits = embed_bits;
    p.embed_group = embed_group;
    p.head_bits = head_bits;
    p.sym = sym;
    return ptq_quantize_model(m, &d, &p, e);
}

static void logits_of(const ptq_model *m, float *out) {
    int toks[NTOK];
    for (int i = 0; i < NTOK; i++) toks[i] = (1 + i * 37) % m->cfg.vocab_size;
    ptq_error e;
    CHECK(ptq_forward_tokens(m, toks, NTOK, out, &e) == PTQ_OK);
}

/* Resident kB of the mapping that contains p (/proc/self/smaps), -1 when no mapping contains it, -2 when
 * smaps cannot be read. */
static long resident_kb(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -2;
    char line[512];
    int in = 0;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && sscanf(line, "Rss: %ld kB", &kb) == 1) break;
    }
    fclose(f);
    return kb;
}

static int inside(const ptq_model *m, const void *p) {
    const unsigned char *b = p;
    return m->map && b >= m->map->data && b < m->map->data + m->map->size;
}

static void test_untied(const char *src, int bits, int group, int sym) {
    char what[64], path[4096];
    snprintf(what, sizeof what, "%d-bit embeddings, group %d%s", bits, group, sym ? ", symmetric" : "");
    snprintf(path, sizeof path, "%s/untied-e%d-g%d-s%d.ptq", tu_tmpdir(), bits, group, sym);
    ptq_model *m = load(src);
    if (!m) {
        CHECK(0);
        return;
    }
    ptq_error e;
    CHECK_MSG(quantize(m, bits, group, 8, sym, &e) == PTQ_OK, "%s: %s", what, e.msg);
    CHECK_MSG(ptq_model_save(m, path, NULL, &e) == PTQ_OK, "%s: %s", what, e.msg);
    CHECK(!m->map && m->tok_emb_q && !ptq_head_tied(m)); /* quantized in memory: its own copy */
    ptq_model *a = load(path), *b = load(path);
    CHECK(a && b);
    if (!a || !b) {
        ptq_model_free(a);
        ptq_model_free(b);
        ptq_model_free(m);
        return;
    }
    const ptq_qweight *q = a->tok_emb_q;
    /* ptq's writer pads the header to 8 bytes and stores 2-byte dtypes before 1-byte ones: the scales are aligned */
    CHECK_MSG(ptq_embed_is_mapped(a) && inside(a, q->codes) && inside(a, q->scales) &&
              (!q->zeros || inside(a, q->zeros)), "%s: the table was copied", what);
    CHECK_MSG((q->zeros == NULL) == sym, "%s: zero points %s", what, q->zeros ? "stored" : "not stored");
    long r0 = resident_kb(a->tok_emb_q->codes);
    if (r0 != -2) {
        CHECK_MSG(r0 == 0, "%s: %ld kB of the mapping resident after the load, expected none", what, r0);
        int tok = a->cfg.vocab_size / 2;
        float *x = malloc(sizeof(float) * (size_t)a->cfg.embed_dim);
        CHECK(ptq_embed_tokens(a, &tok, 1, 0, x, &e) == PTQ_OK);
        free(x);
        long r1 = resident_kb(a->tok_emb_q->codes);
        CHECK_MSG(r1 > 0, "%s: nothing of the mapping resident after a lookup: the row was not read from it", what);
    }
    CHECK(ptq_embed_unmap(b, &e) == PTQ_OK);
    CHECK(!b->map && !ptq_embed_is_mapped(b) && b->tok_emb_q && b->tok_emb_q->codes);
    size_t n = (size_t)NTOK * m->cfg.vocab_size;
    float *lm = malloc(n * sizeof *lm), *la = malloc(n * sizeof *la), *lb = malloc(n * sizeof *lb);
    logits_of(m, lm);
    logits_of(a, la);
    logits_of(b, lb);
    CHECK_MSG(!memcmp(la, lm, n * sizeof *la), "%s: mapped logits differ from the model quantized in memory", what);
    CHECK_MSG(!memcmp(la, lb, n * sizeof *la), "%s: mapped logits differ from the copied table's", what);
    free(lm);
    free(la);
    free(lb);
    /* ptq_model_free unmaps: the address is in no mapping any more (nothing else is mapped meanwhile) */
    const void *at = a->map ? a->map->data : NULL;
    ptq_model_free(a);
    if (at && r0 != -2) CHECK_MSG(resident_kb(at) == -1, "%s: the mapping outlives ptq_model_free", what);
    ptq_model_free(b);
    ptq_model_free(m);
}

static void test_tied(const char *src) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tied.ptq", tu_tmpdir());
    ptq_model *m = load(src);
    if (!m) {
        CHECK(0);
        return;
    }
    ptq_error e;
    CHECK(quantize(m, 0, 0, 8, 0, &e) == PTQ_OK);
    CHECK(ptq_model_save(m, path, NULL, &e) == PTQ_OK);
    ptq_model *a = load(path);
    CHECK(a && ptq_head_tied(a) && a->tok_emb_q && !a->map && !ptq_embed_is_mapped(a));
    ptq_model_free(a);
    ptq_model_free(m);
}

static void test_gguf(const char *src, const char *tokfile, ptq_gguf_ftype ft) {
    const char *tn = ptq_gguf_ftype_name(ft);
    char path[4096];
    snprintf(path, sizeof path, "%s/shakespeare-%s.gguf", tu_tmpdir(), tn);
    ptq_model *m = load(src);
    ptq_tokenizer *tok = NULL;
    ptq_error e = {0};
    if (!m || ptq_tokenizer_load_for_model(m, tokfile, &tok, &e) != PTQ_OK) {
        CHECK_MSG(0, "%s", e.msg);
        ptq_model_free(m);
        return;
    }
    ptq_gguf_export_opts o = {0};
    o.ftype = ft;
    o.tokenizer = tok;
    CHECK_MSG(ptq_gguf_export(m, path, &o, NULL, &e) == PTQ_OK, "%s: %s", tn, e.msg);
    ptq_model *g = load(path), *w = load(path);
    ptq_gguf f;
    int opened = ptq_gguf_open(path, &f, &e) == PTQ_OK;
    CHECK_MSG(g && w && opened, "%s: %s", tn, e.msg);
    const ptq_gguf_tensor *t = opened ? ptq_gguf_find(&f, "token_embd.weight") : NULL;
    if (g && w && t) {
        CHECK_MSG(g->tok_emb_q && !g->tok_emb && !ptq_head_tied(g), "%s: token_embd was not kept packed", tn);
        const int V = g->cfg.vocab_size, D = g->cfg.embed_dim;
        float *file = ptq_model_floats(w, (size_t)V * D, "token_embd", &e), *row = malloc(sizeof(float) * (size_t)D);
        CHECK(file && ptq_gguf_read_f32(&f, t, file, &e) == PTQ_OK);
        int bad = 0;
        for (int r = 0; g->tok_emb_q && file && r < V; r++) {
            ptq_qweight_dequant_row(g->tok_emb_q, r, row);
            bad += memcmp(row, file + (size_t)r * D, sizeof(float) * (size_t)D) != 0;
        }
        CHECK_MSG(bad == 0, "%s: %d rows of the packed table differ from the file's floats", tn, bad);
        /* w: the same model with the table widened to float32, as before */
        if (w->tok_emb_q && file) {
            ptq_qweight_free(w->tok_emb_q);
            free(w->tok_emb_q);
            w->tok_emb_q = NULL;
            w->tok_emb = file;
            size_t n = (size_t)NTOK * V;
            float *lg = malloc(n * sizeof *lg), *lw = malloc(n * sizeof *lw);
            logits_of(g, lg);
            logits_of(w, lw);
            CHECK_MSG(!memcmp(lg, lw, n * sizeof *lg), "%s: packed token_embd changes the logits", tn);
            free(lg);
            free(lw);
        }
        free(row);
    }
    if (opened) ptq_gguf_close(&f);
    ptq_model_free(g);
    ptq_model_free(w);
    ptq_model_free(m);
    ptq_tokenizer_free(tok);
    remove(path);
}

int main(void) {
    char *untied = tu_data_path("llama-shakespeare-256/model.safetensors");
    char *tied = tu_data_path("stories260K/stories260K.bin");
    test_untied(untied, 8, 0, 0);
    test_untied(untied, 4, 32, 0);
    test_untied(untied, 3, 64, 0);
    test_untied(untied, 4, 32, 1); /* no zero points stored: codes and scales mapped */
    test_tied(tied);
    char *tok = tu_data_path("llama-shakespeare-256/tokenizer.bin");
    test_gguf(untied, tok, PTQ_FT_Q4_0);
    test_gguf(untied, tok, PTQ_FT_Q8_0);
    free(tok);
    free(untied);
    free(tied);
    return tu_done("test_embed_map");
}
