/* ptq_tokenizer: one handle over the llama2.c and GPT-2 BPE tokenizers, chosen from the files. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "text/bpe.h"
#include "text/gguf_vocab.h"
#include "text/gpt2_bpe.h"
#include "text/llama2c_tok.h"

struct ptq_tokenizer {
    ptq_l2c_tok *l2c;
    ptq_gpt2_bpe *bpe;
    ptq_bpe *eng; /* built from a ptq_tok_spec (GGUF tokenizer.ggml.*) */
    int bos, eos;
};

/* The tokenizer stored in a GGUF file's metadata. */
static ptq_status load_gguf(const char *path, ptq_tokenizer *t, ptq_error *err) {
    ptq_gguf g;
    PTQ_TRY(ptq_gguf_open(path, &g, err));
    ptq_tok_spec spec;
    ptq_status s = ptq_gguf_tok_spec(&g, &spec, err);
    ptq_gguf_close(&g);
    if (s != PTQ_OK) return s;
    s = ptq_bpe_create(&spec, &t->eng, err);
    ptq_tok_spec_free(&spec);
    if (s != PTQ_OK) return ptq_fail_context(err, "%s", path);
    t->bos = ptq_bpe_bos(t->eng);
    t->eos = ptq_bpe_eos(t->eng);
    return PTQ_OK;
}

static ptq_status load_gpt2(const char *vocab, ptq_tokenizer *t, ptq_error *err) {
    char merges[4200];
    snprintf(merges, sizeof merges, "%s", vocab);
    char *slash = strrchr(merges, '/');
    snprintf(slash ? slash + 1 : merges, sizeof merges - (size_t)(slash ? slash + 1 - merges : 0), "merges.txt");
    PTQ_TRY(ptq_gpt2_bpe_load(vocab, merges, &t->bpe, err));
    t->eos = ptq_gpt2_bpe_special(t->bpe, "<|endoftext|>");
    t->bos = t->eos; /* GPT-2 style models use <|endoftext|> as the document separator */
    return PTQ_OK;
}

ptq_status ptq_tokenizer_load(const char *path, int vocab_size, ptq_tokenizer **out, ptq_error *err) {
    *out = NULL;
    ptq_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate tokenizer");
    ptq_status s;
    char vocab[4200];
    if (ptq_is_dir(path)) {
        snprintf(vocab, sizeof vocab, "%s/vocab.json", path);
        if (!ptq_file_exists(vocab)) {
            free(t);
            return ptq_fail(err, PTQ_ERR_IO, "%s: folder has no vocab.json (GPT-2 BPE tokenizer expected)", path);
        }
        s = load_gpt2(vocab, t, err);
    } else {
        /* A .json name or JSON-looking content means a GPT-2 vocab.json (whose loader says what is wrong
         * with it); anything else must be a llama2.c tokenizer.bin */
        FILE *f = fopen(path, "rb");
        unsigned char head[4] = {0};
        int gguf = f && fread(head, 1, 4, f) == 4 && ptq_gguf_sniff(head, 4);
        if (f) rewind(f);
        int c = f ? fgetc(f) : EOF;
        while (c == ' ' || c == '\n' || c == '\r' || c == '\t') c = fgetc(f);
        if (f) fclose(f);
        if (!f) {
            free(t);
            return ptq_fail(err, PTQ_ERR_IO, "%s: cannot open tokenizer", path);
        }
        size_t len = strlen(path);
        if (gguf) {
            s = load_gguf(path, t, err);
        } else if (c == '{' || c == '[' || c == '"' || (len >= 5 && !strcmp(path + len - 5, ".json"))) {
            snprintf(vocab, sizeof vocab, "%s", path);
            s = load_gpt2(vocab, t, err);
        } else {
            s = ptq_l2c_tok_load(path, vocab_size, &t->l2c, err);
            t->bos = 1;
            t->eos = 2;
        }
    }
    if (s == PTQ_OK && vocab_size > 0 && ptq_tokenizer_vocab_size(t) > vocab_size)
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: tokenizer has %d tokens, more than the model's vocabulary of %d", path,
                     ptq_tokenizer_vocab_size(t), vocab_size);
    if (s != PTQ_OK) {
        ptq_tokenizer_free(t);
        return s;
    }
    *out = t;
    return PTQ_OK;
}

void ptq_tokenizer_free(ptq_tokenizer *t) {
    if (!t) return;
    ptq_l2c_tok_free(t->l2c);
    ptq_gpt2_bpe_free(t->bpe);
    ptq_bpe_free(t->eng);
    free(t);
}

ptq_status ptq_tokenizer_encode(const ptq_tokenizer *t, const char *text, size_t len, int bos, int **tokens, int *n,
                                ptq_error *err) {
    if (t->l2c) return ptq_l2c_tok_encode(t->l2c, text, len, bos, tokens, n, err);
    int *ids;
    int m;
    /* the engine adds no BOS itself: the caller's protocol decides (below); special tokens in text not parsed */
    if (t->eng) PTQ_TRY(ptq_bpe_encode(t->eng, text, len, 0, 0, &ids, &m, err));
    else PTQ_TRY(ptq_gpt2_bpe_encode(t->bpe, text, len, &ids, &m, err));
    if (!bos || t->bos < 0) {
        *tokens = ids;
        *n = m;
        return PTQ_OK;
    }
    int *all = malloc(((size_t)m + 1) * sizeof *all);
    if (!all) {
        free(ids);
        return ptq_fail(err, PTQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    all[0] = t->bos;
    memcpy(all + 1, ids, (size_t)m * sizeof *ids);
    free(ids);
    *tokens = all;
    *n = m + 1;
    return PTQ_OK;
}

const char *ptq_tokenizer_decode(const ptq_tokenizer *t, int prev, int token, size_t *len) {
    if (t->l2c) return ptq_l2c_tok_piece(t->l2c, prev, token, len);
    if (t->eng) return ptq_bpe_decode(t->eng, prev, token, len);
    const char *p = ptq_gpt2_bpe_token_bytes(t->bpe, token, len);
    if (!p) {
        *len = 0;
        return "";
    }
    return p;
}

int ptq_tokenizer_bos(const ptq_tokenizer *t) { return t->bos; }
int ptq_tokenizer_eos(const ptq_tokenizer *t) { return t->eos; }
int ptq_tokenizer_vocab_size(const ptq_tokenizer *t) {
    if (t->eng) return ptq_bpe_n_tokens(t->eng);
    return t->l2c ? ptq_l2c_tok_vocab_size(t->l2c) : ptq_gpt2_bpe_vocab_size(t->bpe);
}
