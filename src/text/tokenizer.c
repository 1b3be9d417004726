/* ptq_tokenizer: one handle over the llama2.c and GPT-2 BPE tokenizers, chosen from the files. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "text/gpt2_bpe.h"
#include "text/llama2c_tok.h"

struct ptq_tokenizer {
    ptq_l2c_tok *l2c;
    ptq_gpt2_bpe *bpe;
    int bos, eos;
};

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
        int c = f ? fgetc(f) : EOF;
        while (c == ' ' || c == '\n' || c == '\r' || c == '\t') c = fgetc(f);
        if (f) fclose(f);
        if (!f) {
            free(t);
            return ptq_fail(err, PTQ_ERR_IO, "%s: cannot open tokenizer", path);
        }
        size_t len = strlen(path);
        if (c == '{' || c == '[' || c == '"' || (len >= 5 && !strcmp(path + len - 5, ".json"))) {
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
    free(t);
}

ptq_status ptq_tokenizer_encode(const ptq_tokenizer *t, const char *text, size_t len, int bos, int **tokens, int *n,
                                ptq_error *err) {
    if (t->l2c) return ptq_l2c_tok_encode(t->l2c, text, len, bos, tokens, n, err);
    int *ids;
    int m;
    PTQ_TRY(ptq_gpt2_bpe_encode(t->bpe, text, len, &ids, &m, err));
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
    return t->l2c ? ptq_l2c_tok_vocab_size(t->l2c) : ptq_gpt2_bpe_vocab_size(t->bpe);
}
