/* Streaming (issue 14): the safetensors writer's sections and spill file give byte for byte the file of the same
 * tensors written from memory in list order; a model loaded with stream_weights keeps its block linears and head in
 * the mapped source and converts them to exactly the floats a whole load gives; the streamed .ptq writer refuses
 * misuse (blocks out of order, finishing early) and writes nothing then; a streamed quantization of a model equals
 * the in-memory one byte for byte (the e2e test covers the CLI, this one the library calls). */
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "models/forward.h"
#include "models/model.h"
#include "testutil.h"

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    ptq_error e;
    int ok = ptq_read_file(a, &x, &nx, &e) == PTQ_OK && ptq_read_file(b, &y, &ny, &e) == PTQ_OK && nx == ny &&
             memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return ok;
}

/* Section 1 spilled first, then sections 0 and 2, against all of them in list order from memory. */
static void writer_sections(const char *tmp) {
    float f0[6] = {1, 2, 3, 4, 5, 6}, f1[3] = {-1, 0.5f, 7};
    uint8_t u1[5] = {1, 2, 3, 4, 5}, u2[3] = {9, 8, 7};
    uint16_t h0[2] = {0x3c00, 0xc000};
    int64_t s6[1] = {6}, s3[1] = {3}, s5[1] = {5}, s2[1] = {2};
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/spilled.safetensors", tmp);
    snprintf(b, sizeof b, "%s/memory.safetensors", tmp);
    ptq_error e;
    ptq_st_writer *w = NULL, *v = NULL;
    CHECK(ptq_st_writer_new(&w, &e) == PTQ_OK && ptq_st_writer_new(&v, &e) == PTQ_OK);
    if (!w || !v) return;
    /* w: the block (section 1) first, spilled, its buffers then overwritten (the writer must not read them again) */
    float tmpf[3];
    uint8_t tmpu[5];
    memcpy(tmpf, f1, sizeof f1);
    memcpy(tmpu, u1, sizeof u1);
    CHECK(ptq_st_writer_spill_open(w, a, &e) == PTQ_OK);
    ptq_st_writer_set_section(w, 1);
    CHECK(ptq_st_writer_add_ref(w, "blk.f", PTQ_DT_F32, 1, s3, tmpf, sizeof tmpf, &e) == PTQ_OK);
    CHECK(ptq_st_writer_add_ref(w, "blk.u", PTQ_DT_U8, 1, s5, tmpu, sizeof tmpu, &e) == PTQ_OK);
    CHECK(ptq_st_writer_spill(w, &e) == PTQ_OK);
    memset(tmpf, 0xff, sizeof tmpf);
    memset(tmpu, 0xff, sizeof tmpu);
    ptq_st_writer_set_section(w, 0);
    CHECK(ptq_st_writer_add_ref(w, "front.f", PTQ_DT_F32, 1, s6, f0, sizeof f0, &e) == PTQ_OK);
    CHECK(ptq_st_writer_add_ref(w, "front.h", PTQ_DT_F16, 1, s2, h0, sizeof h0, &e) == PTQ_OK);
    ptq_st_writer_set_section(w, 2);
    CHECK(ptq_st_writer_add(w, "back.u", PTQ_DT_U8, 1, s3, u2, sizeof u2, &e) == PTQ_OK);
    CHECK(ptq_st_writer_set_metadata(w, "k", "v", &e) == PTQ_OK);
    /* v: the same in list order, from memory */
    CHECK(ptq_st_writer_add_ref(v, "front.f", PTQ_DT_F32, 1, s6, f0, sizeof f0, &e) == PTQ_OK);
    CHECK(ptq_st_writer_add_ref(v, "front.h", PTQ_DT_F16, 1, s2, h0, sizeof h0, &e) == PTQ_OK);
    CHECK(ptq_st_writer_add_ref(v, "blk.f", PTQ_DT_F32, 1, s3, f1, sizeof f1, &e) == PTQ_OK);
    CHECK(ptq_st_writer_add_ref(v, "blk.u", PTQ_DT_U8, 1, s5, u1, sizeof u1, &e) == PTQ_OK);
    CHECK(ptq_st_writer_add(v, "back.u", PTQ_DT_U8, 1, s3, u2, sizeof u2, &e) == PTQ_OK);
    CHECK(ptq_st_writer_set_metadata(v, "k", "v", &e) == PTQ_OK);
    /* the list order is by section: entries 2 and 3 are the spilled block, with the CRC of their bytes */
    const char *name;
    const void *data;
    size_t nb;
    uint32_t crc = 0;
    ptq_st_writer_entry(w, 2, &name, &data, &nb);
    CHECK_MSG(!strcmp(name, "blk.f") && data == NULL && nb == sizeof f1, "entry 2 is %s", name);
    CHECK(ptq_st_writer_entry_crc(w, 2, &crc) == 1 && crc == ptq_crc32c(0, f1, sizeof f1));
    CHECK(ptq_st_writer_entry_crc(w, 0, &crc) == 0);
    CHECK(ptq_st_writer_save(w, a, &e) == PTQ_OK);
    CHECK(ptq_st_writer_save(v, b, &e) == PTQ_OK);
    CHECK_MSG(same_file(a, b), "the spilled file differs from the in-memory one");
    ptq_st_writer_free(w);
    ptq_st_writer_free(v);
}

/* stream_weights: block linears and the head point into the source until materialized, then equal a whole load. */
static void streamed_load(const char *path) {
    ptq_error e;
    ptq_model *whole = NULL, *lazy = NULL;
    ptq_load_options o = ptq_load_default_options();
    CHECK(ptq_model_load_ex(path, &o, &whole, &e) == PTQ_OK);
    o.stream_weights = 1;
    CHECK_MSG(ptq_model_load_ex(path, &o, &lazy, &e) == PTQ_OK, "%s", e.msg);
    if (!whole || !lazy) return;
    CHECK(lazy->src_st != NULL && lazy->head.src != NULL && lazy->head.w == NULL);
    CHECK(lazy->final_norm.w != NULL); /* norms load whole */
    /* the token embedding stays in the mapping: rows looked up (any order, repeats) are the whole load's, and
       so is the embedding once materialized */
    CHECK(lazy->tok_emb == NULL && lazy->tok_emb_src != NULL);
    int ed = whole->cfg.embed_dim, toks[5] = {7, 0, whole->cfg.vocab_size - 1, 7, 100};
    float *rows = malloc(5 * (size_t)ed * sizeof *rows), *x = malloc(5 * (size_t)whole->cfg.dim * sizeof *x);
    float *xw = malloc(5 * (size_t)whole->cfg.dim * sizeof *xw);
    CHECK(rows && x && xw && ptq_embedding_rows(lazy, toks, 5, rows, &e) == PTQ_OK);
    for (int i = 0; rows && i < 5; i++)
        CHECK_MSG(!memcmp(rows + (size_t)i * ed, whole->tok_emb + (size_t)toks[i] * ed, (size_t)ed * sizeof(float)),
                  "embedding row %d", toks[i]);
    CHECK(x && xw && ptq_embed_tokens(lazy, toks, 5, 0, x, &e) == PTQ_OK && ptq_embed_tokens(whole, toks, 5, 0, xw, &e) == PTQ_OK);
    CHECK(x && xw && !memcmp(x, xw, 5 * (size_t)whole->cfg.dim * sizeof *x));
    toks[1] = whole->cfg.vocab_size; /* outside the vocabulary: an error naming the token */
    CHECK(ptq_embed_tokens(lazy, toks, 5, 0, x, &e) == PTQ_ERR_ARG && strstr(e.msg, "outside the vocabulary"));
    free(rows), free(x), free(xw);
    for (int l = 0; l < lazy->cfg.n_layers; l++) {
        for (int r = 0; r < PTQ_LIN_COUNT; r++) {
            ptq_linear *a = &lazy->blocks[l].lin[r], *b = &whole->blocks[l].lin[r];
            CHECK(ptq_linear_present(a) == ptq_linear_present(b));
            if (!ptq_linear_present(b)) continue;
            CHECK(a->src != NULL && a->w == NULL);
        }
        CHECK(ptq_block_materialize(lazy, l, &e) == PTQ_OK);
        for (int r = 0; r < PTQ_LIN_COUNT; r++) {
            ptq_linear *a = &lazy->blocks[l].lin[r], *b = &whole->blocks[l].lin[r];
            if (!b->w) continue;
            CHECK_MSG(a->w && !memcmp(a->w, b->w, (size_t)b->in * b->out * sizeof(float)), "block %d linear %d", l, r);
        }
        ptq_block_release(lazy, l);
        for (int r = 0; r < PTQ_LIN_COUNT; r++) CHECK(lazy->blocks[l].lin[r].w == NULL);
    }
    /* a streamed model cannot be saved with weights that were never converted */
    char out[512];
    snprintf(out, sizeof out, "%s/lazy.ptq", tu_tmpdir());
    CHECK(ptq_model_save(lazy, out, NULL, &e) != PTQ_OK);
    CHECK_MSG(strstr(e.msg, "streamed") != NULL, "%s", e.msg);
    CHECK(!ptq_file_exists(out));
    CHECK(ptq_embedding_materialize(lazy, lazy->src_st, &e) == PTQ_OK && lazy->tok_emb && !lazy->tok_emb_src);
    CHECK(lazy->tok_emb && !memcmp(lazy->tok_emb, whole->tok_emb, (size_t)whole->cfg.vocab_size * ed * sizeof(float)));
    CHECK(ptq_linear_materialize(lazy, &lazy->head, &e) == PTQ_OK);
    CHECK(lazy->head.w && !memcmp(lazy->head.w, whole->head.w, (size_t)whole->head.in * whole->head.out * 4));
    ptq_model_free(whole);
    ptq_model_free(lazy); /* frees the materialized head and closes the mapping */
}

static ptq_status block_done(void *user, ptq_model *m, int layer, ptq_error *err) {
    return ptq_model_stream_block(user, m, layer, err);
}

/* The library flow of ptq quantize: streamed file == ptq_model_save of the in-memory quantization. */
static void streamed_quantize(const char *path) {
    ptq_error e;
    int toks[4 * 32];
    for (int i = 0; i < 4 * 32; i++) toks[i] = i % 32 == 0 ? 1 : 3 + (i * 7919) % 500;
    ptq_calib_data d = {toks, 4, 32, NULL};
    ptq_quant_params p = ptq_quant_default_params();
    p.wbits = 4;
    p.group = 32;
    p.bc_scope = PTQ_BC_LINEAR | PTQ_BC_BLOCK;
    p.skip_layer_error = 1;
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/streamed.ptq", tu_tmpdir());
    snprintf(b, sizeof b, "%s/memory.ptq", tu_tmpdir());
    ptq_model *m = NULL;
    CHECK(ptq_model_load(path, &m, &e) == PTQ_OK);
    CHECK(m && ptq_quantize_model(m, &d, &p, &e) == PTQ_OK);
    CHECK(m && ptq_model_save(m, b, NULL, &e) == PTQ_OK);
    ptq_model_free(m);
    ptq_load_options o = ptq_load_default_options();
    o.stream_weights = 1;
    ptq_model_stream *s = NULL;
    CHECK(ptq_model_load_ex(path, &o, &m, &e) == PTQ_OK);
    CHECK(ptq_model_stream_open(a, &s, &e) == PTQ_OK);
    /* misuse first: a block out of order, and finishing before every block was written */
    CHECK(ptq_model_stream_block(s, m, 1, &e) != PTQ_OK && strstr(e.msg, "out of order"));
    CHECK(ptq_model_stream_finish(s, m, NULL, &e) != PTQ_OK && strstr(e.msg, "blocks were streamed"));
    CHECK(!ptq_file_exists(a));
    p.block_done = block_done;
    p.block_user = s;
    CHECK_MSG(ptq_quantize_model(m, &d, &p, &e) == PTQ_OK, "%s", e.msg);
    for (int r = 0; r < PTQ_LIN_COUNT; r++) CHECK(m->blocks[0].lin[r].q == NULL && m->blocks[0].lin[r].w == NULL);
    CHECK_MSG(ptq_model_stream_finish(s, m, NULL, &e) == PTQ_OK, "%s", e.msg);
    ptq_quant_summary qs;
    ptq_model_stream_summary(s, &qs);
    CHECK(qs.linears == 7 * m->cfg.n_layers);
    ptq_model_stream_free(s);
    ptq_model_free(m);
    CHECK_MSG(same_file(a, b), "the streamed quantized file differs from the in-memory one");
}

int main(void) {
    writer_sections(tu_tmpdir());
    char *path = tu_data_path("llama-shakespeare-256/model.safetensors");
    streamed_load(path);
    streamed_quantize(path);
    free(path);
    return tu_done("test_streaming");
}
