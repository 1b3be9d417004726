/* stories260K (llama2.c format) against the numpy reference's goldens (tests/ref/make_llama2c_goldens.py):
 * tokenization, perplexity, greedy decoding with the KV cache, and broken files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "models/forward.h"
#include "testutil.h"

static int *read_ids(const char *path, int *n) {
    char *txt;
    size_t len;
    ptq_error e;
    if (ptq_read_file(path, &txt, &len, &e) != PTQ_OK) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    int cap = 1024, k = 0;
    int *ids = malloc((size_t)cap * sizeof *ids);
    char *p = txt, *end;
    for (long v = strtol(p, &end, 10); end != p; v = strtol(p, &end, 10)) {
        if (k == cap) ids = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
        ids[k++] = (int)v;
        p = end;
    }
    free(txt);
    *n = k;
    return ids;
}

int main(void) {
    char *model_path = tu_data_path("stories260K/stories260K.bin");
    char *tok_path = tu_data_path("stories260K/tok512.bin");
    char *text_path = tu_data_path("tinystories/tinystories-valid-100.txt");
    ptq_error e;
    ptq_model *m;
    ptq_tokenizer *t;
    if (ptq_model_load(model_path, &m, &e) != PTQ_OK || ptq_tokenizer_load(tok_path, 512, &t, &e) != PTQ_OK) {
        fprintf(stderr, "load: %s\n", e.msg);
        return 1;
    }
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    CHECK(info.dim == 64 && info.n_layers == 5 && info.n_heads == 8 && info.n_kv_heads == 4 && info.vocab_size == 512);
    CHECK(info.n_params > 250000 && info.n_params < 270000);

    /* tokenization of the document protocol equals the reference, id for id */
    char *text;
    size_t len;
    CHECK(ptq_read_file(text_path, &text, &len, &e) == PTQ_OK);
    int *toks;
    int64_t n;
    CHECK(ptq_encode_documents(t, text, len, "<|endoftext|>", 0, -1, &toks, &n, &e) == PTQ_OK);
    int n_ref;
    int *ref = read_ids(PTQ_SOURCE_DIR "/tests/data/llama2c/tokens.txt", &n_ref);
    CHECK_MSG(n == n_ref, "%lld tokens, reference %d", (long long)n, n_ref);
    int first_diff = -1;
    for (int i = 0; i < n_ref && i < n; i++)
        if (toks[i] != ref[i]) {
            first_diff = i;
            break;
        }
    CHECK_MSG(first_diff < 0, "first differing token at %d", first_diff);

    /* perplexity equals the reference (mean CE 1.2527, ppl 3.4998) to 1e-3 */
    FILE *f = fopen(PTQ_SOURCE_DIR "/tests/data/llama2c/ppl.txt", "r");
    long ref_tokens = 0, ref_scored = 0;
    double ref_ce = 0, ref_ppl = 0;
    CHECK(f && fscanf(f, "%ld %ld %lf %lf", &ref_tokens, &ref_scored, &ref_ce, &ref_ppl) == 4);
    if (f) fclose(f);
    ptq_ppl_params pp = ptq_ppl_default_params();
    ptq_ppl_result r;
    CHECK(ptq_eval_perplexity(m, toks, n, &pp, &r, &e) == PTQ_OK);
    CHECK_MSG(r.scored == ref_scored, "scored %lld vs %ld", (long long)r.scored, ref_scored);
    CHECK_MSG(fabs(r.mean_ce - ref_ce) < 1e-4, "mean CE %.6f vs %.6f", r.mean_ce, ref_ce);
    CHECK_MSG(fabs(r.ppl - ref_ppl) < 1e-3, "ppl %.6f vs %.6f", r.ppl, ref_ppl);
    CHECK_MSG(fabs(r.ppl - 3.4998) < 1e-3, "ppl %.6f vs the published 3.4998", r.ppl);
    CHECK(r.ppl_stderr > 0 && r.ppl_stderr < 0.1);

    /* greedy decoding from BOS through the KV cache equals the reference for 200 steps */
    int n_greedy;
    int *greedy = read_ids(PTQ_SOURCE_DIR "/tests/data/llama2c/greedy.txt", &n_greedy);
    CHECK(n_greedy == 200);
    ptq_session *s;
    CHECK(ptq_session_new(m, 0, &s, &e) == PTQ_OK);
    int tok = 1, seq[201];
    seq[0] = 1;
    const float *logits;
    ptq_sampler_params sp = ptq_sampler_default_params();
    sp.temperature = 0;
    uint64_t rng = 1;
    int mismatch = -1;
    for (int i = 0; i < n_greedy; i++) {
        CHECK(ptq_session_feed(s, &tok, 1, &logits, &e) == PTQ_OK);
        tok = ptq_sample(logits, 512, &sp, &rng);
        seq[i + 1] = tok;
        if (tok != greedy[i] && mismatch < 0) mismatch = i;
    }
    CHECK_MSG(mismatch < 0, "greedy token %d differs from the reference", mismatch);

    /* the cached path and the whole-sequence path give the same logits */
    float *all = malloc((size_t)200 * 512 * sizeof(float));
    CHECK(ptq_forward_tokens(m, seq, 200, all, &e) == PTQ_OK);
    float maxd = 0;
    for (int v = 0; v < 512; v++) maxd = fmaxf(maxd, fabsf(all[(size_t)199 * 512 + v] - logits[v]));
    CHECK_MSG(maxd < 1e-3f, "cache vs full forward differ by %g", (double)maxd);
    ptq_session_free(s);

    /* the 200 tokens as one prompt: it runs in chunks of 128 and 72 through the cache, and predicts the
       reference's next greedy token; a bad id in the second chunk fails the feed and leaves the position at 0 */
    CHECK(ptq_session_new(m, 0, &s, &e) == PTQ_OK);
    int bad_seq[200];
    memcpy(bad_seq, seq, sizeof bad_seq);
    bad_seq[150] = 512;
    CHECK(ptq_session_feed(s, bad_seq, 200, &logits, &e) == PTQ_ERR_ARG && strstr(e.msg, "position 150") != NULL);
    CHECK(ptq_session_pos(s) == 0);
    CHECK(ptq_session_feed(s, seq, 200, &logits, &e) == PTQ_OK && ptq_session_pos(s) == 200);
    maxd = 0;
    for (int v = 0; v < 512; v++) maxd = fmaxf(maxd, fabsf(all[(size_t)199 * 512 + v] - logits[v]));
    CHECK_MSG(maxd < 1e-3f, "chunked prompt vs full forward differ by %g", (double)maxd);
    CHECK(ptq_sample(logits, 512, &sp, &rng) == greedy[199]);
    /* other chunk sizes (ptq_session_set_chunk): one token per forward, 37 (a ragged last chunk), the whole prompt
       in one; lowering it on a session that ran larger chunks drops their activations; out of range: an error */
    CHECK(ptq_session_chunk(s) == 128);
    CHECK(ptq_session_set_chunk(s, 0, &e) == PTQ_ERR_ARG && strstr(e.msg, "expected 1 to 65536") != NULL);
    CHECK(ptq_session_set_chunk(s, 65537, &e) == PTQ_ERR_ARG && ptq_session_chunk(s) == 128);
    ptq_session_free(s);
    const int chunks[4] = {1, 37, 200, 5};
    CHECK(ptq_session_new(m, 0, &s, &e) == PTQ_OK);
    for (int ci = 0; ci < 4; ci++) {
        if (ci == 3) { /* 150 tokens in one chunk of 200, then the last 50 in chunks of 5 (lowering drops the
                          activations sized for 200) */
            ptq_session_free(s);
            CHECK(ptq_session_new(m, 0, &s, &e) == PTQ_OK && ptq_session_set_chunk(s, 200, &e) == PTQ_OK);
            CHECK(ptq_session_feed(s, seq, 150, &logits, &e) == PTQ_OK);
        } else {
            ptq_session_free(s);
            CHECK(ptq_session_new(m, 0, &s, &e) == PTQ_OK);
        }
        CHECK(ptq_session_set_chunk(s, chunks[ci], &e) == PTQ_OK && ptq_session_chunk(s) == chunks[ci]);
        if (ci == 3) CHECK(ptq_session_feed(s, seq + 150, 50, &logits, &e) == PTQ_OK);
        else CHECK(ptq_session_feed(s, seq, 200, &logits, &e) == PTQ_OK);
        CHECK(ptq_session_pos(s) == 200);
        maxd = 0;
        for (int v = 0; v < 512; v++) maxd = fmaxf(maxd, fabsf(all[(size_t)199 * 512 + v] - logits[v]));
        CHECK_MSG(maxd < 1e-3f, "prompt in chunks of %d vs full forward differ by %g", chunks[ci], (double)maxd);
        CHECK_MSG(ptq_sample(logits, 512, &sp, &rng) == greedy[199], "chunks of %d: not the reference's token",
                  chunks[ci]);
    }
    free(all);
    ptq_session_free(s);

    /* broken inputs: clear errors naming the file, no crash */
    ptq_mmap map;
    CHECK(ptq_mmap_open(model_path, &map, &e) == PTQ_OK);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/truncated.bin", tu_tmpdir());
    CHECK(tu_write_file(bad, map.data, map.size - 100) == 0);
    ptq_model *m2 = NULL;
    CHECK(ptq_model_load(bad, &m2, &e) == PTQ_ERR_FORMAT && m2 == NULL);
    CHECK(strstr(e.msg, "truncated.bin") != NULL);
    /* NaN in a weight */
    unsigned char *copy = malloc(map.size);
    memcpy(copy, map.data, map.size);
    float nan = NAN;
    memcpy(copy + 28 + 4 * 1000, &nan, 4);
    snprintf(bad, sizeof bad, "%s/nan.bin", tu_tmpdir());
    CHECK(tu_write_file(bad, copy, map.size) == 0);
    CHECK(ptq_model_load(bad, &m2, &e) == PTQ_ERR_NUMERIC);
    CHECK(strstr(e.msg, "tok_embeddings") != NULL);
    /* a header that makes no sense */
    int32_t hdr[7] = {64, 172, 5, 8, 3, 512, 512}; /* 8 heads over 3 kv heads */
    memcpy(copy, hdr, sizeof hdr);
    snprintf(bad, sizeof bad, "%s/header.bin", tu_tmpdir());
    CHECK(tu_write_file(bad, copy, map.size) == 0);
    CHECK(ptq_model_load(bad, &m2, &e) == PTQ_ERR_FORMAT);
    /* vocab_size -2^31 (unshared classifier of 2^31 tokens): negating it overflowed (UBSan; fuzz_llama2c) */
    hdr[4] = 8;
    hdr[5] = INT32_MIN;
    memcpy(copy, hdr, sizeof hdr);
    CHECK(tu_write_file(bad, copy, 28) == 0);
    CHECK(ptq_model_load(bad, &m2, &e) == PTQ_ERR_FORMAT && strstr(e.msg, "vocab -2147483648") != NULL);
    free(copy);
    ptq_mmap_close(&map);
    /* a tokenizer for a different vocabulary */
    ptq_tokenizer *t2 = NULL;
    CHECK(ptq_tokenizer_load(tok_path, 32000, &t2, &e) == PTQ_ERR_FORMAT && t2 == NULL);

    free(greedy);
    free(ref);
    free(toks);
    free(text);
    ptq_tokenizer_free(t);
    ptq_model_free(m);
    free(model_path);
    free(tok_path);
    free(text_path);
    return tu_done("test_llama2c");
}
