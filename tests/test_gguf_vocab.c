/* The tokenizers of llama.cpp's vocabulary files (build-ref/llama.cpp/models/ggml-vocab-*.gguf, real vocabularies of
 * Llama 2, Llama 3, GPT-2, Qwen2, Phi-3 and others) through ptq's GGUF tokenizer loader and the BPE engine: every
 * vocabulary of a supported family reproduces its .out file exactly (the ids the original Hugging Face tokenizers
 * give for the .inp texts; llama.cpp's tests/test-tokenizer-0.cpp encodes them with add_special and parse_special
 * off, and so does this test). Every other vocabulary must be refused with a clear "unsupported" error. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "testutil.h"
#include "text/bpe.h"
#include "text/gguf_vocab.h"

#define SEP "\n__ggml_vocab_test__\n"

/* Vocabularies whose tokenizer family ptq implements: they must match exactly. */
static const char *const supported[] = {"llama-spm", "llama-bpe", "gpt-2",     "qwen2",
                                        "phi-3",     "mpt",       "starcoder", "refact", "command-r", "qwen35"};
/* All vocabularies in llama.cpp's models/ (those without .inp/.out only have to load or be refused clearly). */
static const char *const all[] = {"aquila",   "baichuan",      "bert-bge",  "command-r",  "deepseek-coder",
                                  "deepseek-llm", "falcon",    "gemma-4",   "gpt-2",      "gpt-neox",
                                  "llama-bpe", "llama-spm",    "mpt",       "nomic-bert-moe", "phi-3",
                                  "qwen2",    "qwen35",        "refact",    "starcoder"};

static int is_supported(const char *name) {
    for (size_t i = 0; i < sizeof supported / sizeof supported[0]; i++)
        if (!strcmp(name, supported[i])) return 1;
    return 0;
}

/* Compare every .inp text with its .out line; returns the number of cases. */
static int run_cases(const char *name, const ptq_bpe *b, const char *inp, size_t ninp, const char *out, size_t nout) {
    int cases = 0, failed = 0;
    size_t ip = 0, op = 0;
    while (ip <= ninp && op < nout) {
        const char *sep = NULL;
        for (size_t i = ip; i + strlen(SEP) <= ninp; i++)
            if (!memcmp(inp + i, SEP, strlen(SEP))) {
                sep = inp + i;
                break;
            }
        size_t tlen = sep ? (size_t)(sep - inp) - ip : ninp - ip;
        const char *nl = memchr(out + op, '\n', nout - op);
        size_t olen = nl ? (size_t)(nl - out) - op : nout - op;
        int want[4096], nw = 0;
        for (size_t i = op; i < op + olen && nw < 4096;) {
            while (i < op + olen && (out[i] < '0' || out[i] > '9')) i++;
            if (i >= op + olen) break;
            int v = 0;
            while (i < op + olen && out[i] >= '0' && out[i] <= '9') v = v * 10 + (out[i++] - '0');
            want[nw++] = v;
        }
        int *ids = NULL, n = 0;
        ptq_error e;
        CHECK(ptq_bpe_encode(b, inp + ip, tlen, 0, 0, &ids, &n, &e) == PTQ_OK);
        int same = n == nw;
        for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
        if (!same) {
            char q[64];
            ptq_snippet(q, sizeof q, inp + ip, tlen);
            fprintf(stderr, "%s case %d \"%s\": got", name, cases, q);
            for (int i = 0; i < n && i < 24; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n    expected");
            for (int i = 0; i < nw && i < 24; i++) fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n");
            failed++;
        }
        free(ids);
        cases++;
        op += olen + 1;
        if (!sep) break;
        ip = (size_t)(sep - inp) + strlen(SEP);
    }
    CHECK_MSG(failed == 0, "%s: %d of %d cases differ from the .out file", name, failed, cases);
    return cases;
}

int main(void) {
    int matched = 0;
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        const char *name = all[k];
        char rel[256];
        snprintf(rel, sizeof rel, "llama.cpp/models/ggml-vocab-%s.gguf", name);
        char *path = tu_ref_path(rel);
        ptq_gguf g;
        ptq_error e;
        memset(&e, 0, sizeof e);
        CHECK_MSG(ptq_gguf_open(path, &g, &e) == PTQ_OK, "%s", e.msg);
        ptq_tok_spec spec;
        ptq_status st = ptq_gguf_tok_spec(&g, &spec, &e);
        int have_spec = st == PTQ_OK;
        ptq_bpe *b = NULL;
        if (st == PTQ_OK) st = ptq_bpe_create(&spec, &b, &e);
        char probe[4200];
        snprintf(probe, sizeof probe, "%s.inp", path);
        if (!ptq_file_exists(probe)) { /* no cases to compare: loads, or is refused with a message */
            CHECK_MSG(st == PTQ_OK || (st == PTQ_ERR_UNSUPPORTED && e.msg[0]), "%s: %d: %s", name, (int)st, e.msg);
            printf("%-16s %s%s\n", name, st == PTQ_OK ? "loads (no .inp/.out to compare)" : "refused: ",
                   st == PTQ_OK ? "" : e.msg);
        } else if (!is_supported(name)) {
            /* a family ptq does not implement: refused, saying so */
            CHECK_MSG(st == PTQ_ERR_UNSUPPORTED && e.msg[0], "%s: expected PTQ_ERR_UNSUPPORTED, got %d: %s", name,
                      (int)st, st == PTQ_OK ? "" : e.msg);
            printf("%-16s refused: %s\n", name, e.msg);
        } else {
            CHECK_MSG(st == PTQ_OK, "%s: %s", name, e.msg);
            char inp_path[4200], out_path[4200];
            snprintf(inp_path, sizeof inp_path, "%s.inp", path);
            snprintf(out_path, sizeof out_path, "%s.out", path);
            char *inp = NULL, *out = NULL;
            size_t ninp = 0, nout = 0;
            CHECK(ptq_read_file(inp_path, &inp, &ninp, &e) == PTQ_OK);
            CHECK(ptq_read_file(out_path, &out, &nout, &e) == PTQ_OK);
            if (b && inp && out) {
                int n = run_cases(name, b, inp, ninp, out, nout);
                printf("%-16s %d cases\n", name, n);
                CHECK(n > 20);
                matched++;
            }
            free(inp);
            free(out);
        }
        ptq_bpe_free(b);
        if (have_spec) ptq_tok_spec_free(&spec);
        ptq_gguf_close(&g);
        free(path);
    }
    CHECK(matched == (int)(sizeof supported / sizeof supported[0]));
    /* the public loader takes a GGUF file as a tokenizer too */
    char *path = tu_ref_path("llama.cpp/models/ggml-vocab-llama-spm.gguf");
    ptq_tokenizer *t = NULL;
    ptq_error e;
    CHECK_MSG(ptq_tokenizer_load(path, 32000, &t, &e) == PTQ_OK, "%s", e.msg);
    int *ids = NULL, n = 0;
    CHECK(t && ptq_tokenizer_encode(t, "Hello world", 11, 1, &ids, &n, &e) == PTQ_OK);
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186); /* Llama 2: <s> ▁Hello ▁world */
    free(ids);
    ptq_tokenizer_free(t);
    free(path);
    return tu_done("test_gguf_vocab");
}
