/* Tokenizer speed: load time of the real Llama 2 (SPM-style) and Llama 3 (byte-level) tokenizer.json files and
 * encoding throughput on WikiText-2 (the raw test split, repeated REPEAT times), encoded as one text (as perplexity
 * does) and line by line. bench/bench_tokenizer.sh runs this and the JavaScript reference (bench_tokenizer.mjs,
 * @lenml/tokenizers) in the same run and prints the table; both print the token count and an FNV-1a hash of the ids,
 * which must agree.
 *   ./build/bench/bench_tokenizer [REPEAT]      (PTQ_REFS, PTQ_DATA as for the tests) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "core/file.h"
#include "text/tokenizer_internal.h"

static uint32_t fnv_ids(uint32_t h, const int *ids, int n) {
    for (int i = 0; i < n; i++) h = (h ^ (uint32_t)ids[i]) * 16777619u;
    return h;
}

/* Encode the text as one string (whole = 1, as perplexity does) or line by line (each line with its newline, as
 * separate documents); returns the seconds, sets the token count and hash. */
static double encode(const ptq_tokenizer *t, const char *text, size_t len, int whole, long *tokens, uint32_t *hash) {
    ptq_error e;
    *tokens = 0;
    *hash = 2166136261u;
    double t0 = now_s();
    for (size_t pos = 0; pos < len;) {
        size_t end = len;
        if (!whole) {
            const char *nl = memchr(text + pos, '\n', len - pos);
            if (nl) end = (size_t)(nl - text) + 1;
        }
        int *ids, n;
        if (ptq_tokenizer_encode_ex(t, text + pos, end - pos, 0, 1, &ids, &n, &e) != PTQ_OK) {
            fprintf(stderr, "%s\n", e.msg);
            exit(1);
        }
        *tokens += n;
        *hash = fnv_ids(*hash, ids, n);
        free(ids);
        pos = end;
    }
    return now_s() - t0;
}

int main(int argc, char **argv) {
    int repeat = argc > 1 ? atoi(argv[1]) : 1;
    const char *refs = getenv("PTQ_REFS") ? getenv("PTQ_REFS") : "build-ref";
    const char *data = getenv("PTQ_DATA") ? getenv("PTQ_DATA") : PTQ_DATA_DEFAULT;
    char path[4096];
    snprintf(path, sizeof path, "%s/wikitext-2/wikitext2-raw-test.txt", data);
    char *one;
    size_t n1;
    ptq_error e;
    if (ptq_read_file(path, &one, &n1, &e) != PTQ_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    size_t len = n1 * (size_t)(repeat > 0 ? repeat : 1);
    char *text = malloc(len);
    for (size_t k = 0; k < len / n1; k++) memcpy(text + k * n1, one, n1);
    static const char *const names[] = {"llama2", "llama3"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/npm/node_modules/@lenml/tokenizer-%s/models/tokenizer.json", refs, names[k]);
        ptq_tokenizer *t;
        double t0 = now_s();
        if (ptq_tokenizer_load(path, 0, &t, &e) != PTQ_OK) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        double load = now_s() - t0;
        for (int whole = 1; whole >= 0; whole--) {
            double best = 1e30;
            long tokens = 0;
            uint32_t hash = 0;
            for (int rep = 0; rep < 3; rep++) { /* best of 3 */
                double dt = encode(t, text, len, whole, &tokens, &hash);
                if (dt < best) best = dt;
            }
            printf("{\"impl\": \"ptq\", \"tokenizer\": \"%s\", \"unit\": \"%s\", \"bytes\": %zu, \"tokens\": %ld, "
                   "\"hash\": %u, \"load_s\": %.4f, \"encode_s\": %.4f, \"mb_per_s\": %.2f}\n",
                   names[k], whole ? "text" : "lines", len, tokens, hash, load, best, (double)len / 1e6 / best);
        }
        ptq_tokenizer_free(t);
    }
    free(text);
    free(one);
    return 0;
}
