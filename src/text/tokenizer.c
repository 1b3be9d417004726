/* ptq_tokenizer: one handle over every tokenizer source. Each loader produces a ptq_tok_spec (tokenizer.json,
 * llama2.c tokenizer.bin, vocab.json + merges.txt) and the BPE engine is built from it, so that any tokenizer can be
 * stored in a quantized file and rebuilt from it. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "io/qmodel.h"
#include "io/qmodel_tokenizer.h"
#include "text/bpe.h"
#include "text/gguf_vocab.h"
#include "text/gpt2_bpe.h"
#include "text/hf_tokenizer.h"
#include "text/llama2c_tok.h"
#include "text/tokenizer_internal.h"

struct ptq_tokenizer {
    ptq_tok_spec spec;
    ptq_bpe *bpe;
};

ptq_status ptq_tokenizer_from_spec(const ptq_tok_spec *spec, ptq_tokenizer **out, ptq_error *err) {
    *out = NULL;
    ptq_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate tokenizer");
    if (ptq_tok_spec_copy(&t->spec, spec) != 0) {
        free(t);
        return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate tokenizer");
    }
    ptq_status s = ptq_bpe_create(&t->spec, &t->bpe, err);
    if (s != PTQ_OK) {
        ptq_tokenizer_free(t);
        return s;
    }
    *out = t;
    return PTQ_OK;
}

/* Takes ownership of *spec (zeroed on return). */
static ptq_status from_owned_spec(ptq_tok_spec *spec, ptq_tokenizer **out, ptq_error *err) {
    *out = NULL;
    ptq_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        ptq_tok_spec_free(spec);
        return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate tokenizer");
    }
    t->spec = *spec;
    memset(spec, 0, sizeof *spec);
    ptq_status s = ptq_bpe_create(&t->spec, &t->bpe, err);
    if (s != PTQ_OK) {
        ptq_tokenizer_free(t);
        return s;
    }
    *out = t;
    return PTQ_OK;
}

static ptq_status gpt2_spec(const char *vocab, ptq_tok_spec *spec, ptq_error *err) {
    char merges[4200];
    snprintf(merges, sizeof merges, "%s", vocab);
    char *slash = strrchr(merges, '/');
    snprintf(slash ? slash + 1 : merges, sizeof merges - (size_t)(slash ? slash + 1 - merges : 0), "merges.txt");
    ptq_gpt2_bpe *bpe;
    PTQ_TRY(ptq_gpt2_bpe_load(vocab, merges, &bpe, err));
    ptq_status s = ptq_gpt2_bpe_spec(bpe, spec, err);
    ptq_gpt2_bpe_free(bpe);
    return s;
}

static ptq_status l2c_spec(const char *path, int vocab_size, ptq_tok_spec *spec, ptq_error *err) {
    ptq_l2c_tok *l2c;
    PTQ_TRY(ptq_l2c_tok_load(path, vocab_size, &l2c, err));
    ptq_status s = ptq_l2c_tok_spec(l2c, spec, err);
    ptq_l2c_tok_free(l2c);
    return s;
}

static ptq_status gguf_spec(const char *path, ptq_tok_spec *spec, ptq_error *err) {
    ptq_gguf g;
    PTQ_TRY(ptq_gguf_open(path, &g, err));
    ptq_status s = ptq_gguf_tok_spec(&g, spec, err);
    ptq_gguf_close(&g);
    return s;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static ptq_status ptq_spec(const char *path, ptq_tok_spec *spec, ptq_error *err) {
    ptq_safetensors st;
    PTQ_TRY(ptq_st_open(path, &st, err));
    ptq_status s = ptq_qmodel_is_ptq(&st)
                       ? ptq_qmodel_get_tokenizer(&st, path, spec, err)
                       : ptq_fail(err, PTQ_ERR_FORMAT, "%s: a safetensors file that is not a ptq file holds no tokenizer",
                                  path);
    ptq_st_close(&st);
    return s;
}

/* The spec of the tokenizer at `path`:
 *   a folder               its tokenizer.json, tokenizer.bin, tok<vocab_size>.bin or vocab.json (+ merges.txt),
 *                          the first found
 *   *vocab*.json           GPT-2 vocab.json with merges.txt beside it
 *   other JSON             a Hugging Face tokenizer.json
 *   a GGUF file            its tokenizer.ggml.* metadata
 *   a safetensors file     the tokenizer a .ptq file carries (io/qmodel_tokenizer.h)
 *   anything else          a llama2.c tokenizer.bin */
static ptq_status load_spec(const char *path, int vocab_size, ptq_tok_spec *spec, ptq_error *err) {
    char file[4200];
    if (ptq_is_dir(path)) {
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
        if (ptq_file_exists(file)) return ptq_hf_tokenizer_spec(file, spec, err);
        snprintf(file, sizeof file, "%s/tokenizer.bin", path);
        if (ptq_file_exists(file)) return l2c_spec(file, vocab_size, spec, err);
        snprintf(file, sizeof file, "%s/tok%d.bin", path, vocab_size);
        if (vocab_size > 0 && ptq_file_exists(file)) return l2c_spec(file, vocab_size, spec, err);
        snprintf(file, sizeof file, "%s/vocab.json", path);
        if (ptq_file_exists(file)) return gpt2_spec(file, spec, err);
        return ptq_fail(err, PTQ_ERR_IO, "%s: folder has no tokenizer.json, tokenizer.bin, tok<vocab>.bin or vocab.json",
                        path);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return ptq_fail(err, PTQ_ERR_IO, "%s: cannot open tokenizer", path);
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    if (got == 4 && !memcmp(magic, "GGUF", 4)) {
        fclose(f);
        return gguf_spec(path, spec, err);
    }
    unsigned char more[5] = {0};
    int ptq = got == 4 && fread(more, 1, 5, f) == 5 && more[4] == '{'; /* safetensors: u64 header size, '{' */
    if (ptq) {
        fclose(f);
        return ptq_spec(path, spec, err);
    }
    rewind(f);
    int c = fgetc(f);
    while (c == ' ' || c == '\n' || c == '\r' || c == '\t') c = fgetc(f);
    fclose(f);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int json = c == '{' || c == '[' || c == '"' || ends_with(path, ".json");
    if (json && strstr(base, "vocab")) return gpt2_spec(path, spec, err);
    if (json) return ptq_hf_tokenizer_spec(path, spec, err);
    return l2c_spec(path, vocab_size, spec, err);
}

ptq_status ptq_tokenizer_load(const char *path, int vocab_size, ptq_tokenizer **out, ptq_error *err) {
    *out = NULL;
    ptq_tok_spec spec;
    memset(&spec, 0, sizeof spec);
    PTQ_TRY(load_spec(path, vocab_size, &spec, err));
    ptq_tokenizer *t = NULL;
    ptq_status s = from_owned_spec(&spec, &t, err);
    if (s != PTQ_OK) return s;
    if (vocab_size > 0 && ptq_tokenizer_vocab_size(t) > vocab_size) {
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: tokenizer has %d tokens, more than the model's vocabulary of %d", path,
                     ptq_tokenizer_vocab_size(t), vocab_size);
        ptq_tokenizer_free(t);
        return s;
    }
    *out = t;
    return PTQ_OK;
}

void ptq_tokenizer_free(ptq_tokenizer *t) {
    if (!t) return;
    ptq_bpe_free(t->bpe);
    ptq_tok_spec_free(&t->spec);
    free(t);
}

ptq_status ptq_tokenizer_encode_ex(const ptq_tokenizer *t, const char *text, size_t len, int add_special,
                                   int parse_special, int **tokens, int *n, ptq_error *err) {
    return ptq_bpe_encode(t->bpe, text, len, add_special, parse_special, tokens, n, err);
}

/* Special tokens written in the text are recognised (a text file that contains "</s>" or "<|endoftext|>" means the
 * token); `bos` prepends BOS whenever the tokenizer has one, whatever its files say, and EOS is never added. */
ptq_status ptq_tokenizer_encode(const ptq_tokenizer *t, const char *text, size_t len, int bos, int **tokens, int *n,
                                ptq_error *err) {
    int *ids, m;
    PTQ_TRY(ptq_bpe_encode(t->bpe, text, len, 0, 1, &ids, &m, err));
    int b = ptq_bpe_bos(t->bpe);
    if (!bos || b < 0) {
        *tokens = ids;
        *n = m;
        return PTQ_OK;
    }
    int *all = realloc(ids, ((size_t)m + 1) * sizeof *all);
    if (!all) {
        free(ids);
        return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    memmove(all + 1, all, (size_t)m * sizeof *all);
    all[0] = b;
    *tokens = all;
    *n = m + 1;
    return PTQ_OK;
}

const char *ptq_tokenizer_decode(const ptq_tokenizer *t, int prev, int token, size_t *len) {
    return ptq_bpe_decode(t->bpe, prev, token, len);
}

int ptq_tokenizer_bos(const ptq_tokenizer *t) { return ptq_bpe_bos(t->bpe); }
int ptq_tokenizer_eos(const ptq_tokenizer *t) { return ptq_bpe_eos(t->bpe); }
int ptq_tokenizer_vocab_size(const ptq_tokenizer *t) { return ptq_bpe_n_tokens(t->bpe); }
int ptq_tokenizer_adds_bos(const ptq_tokenizer *t) { return t->spec.add_bos; }
int ptq_tokenizer_adds_eos(const ptq_tokenizer *t) { return t->spec.add_eos; }

ptq_status ptq_tokenizer_get_spec(const ptq_tokenizer *t, ptq_tok_spec *out, ptq_error *err) {
    if (ptq_tok_spec_copy(out, &t->spec) != 0) return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: out of memory");
    return PTQ_OK;
}

ptq_status ptq_tokenizer_set_bos_eos(ptq_tokenizer *t, int bos, int eos, ptq_error *err) {
    PTQ_TRY(ptq_bpe_set_bos_eos(t->bpe, bos, eos, err));
    t->spec.bos = bos;
    t->spec.eos = eos;
    return PTQ_OK;
}
