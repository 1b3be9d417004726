/* ptq generate: text from a language model with a KV cache, greedy or sampled. */
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/file.h"

const char help_generate[] =
    "usage: ptq generate MODEL [--tokenizer TOK] [--prompt S] [--steps N] [--temperature T] [--top-p P] [--seed S]\n"
    "                    [--prompt-chunk N] [--act8] [--json]\n"
    "Text from a language model (greedy with --temperature 0).\n"
    "\n"
    "  --tokenizer TOK     tokenizer file (default: found beside MODEL)\n"
    "  --prompt S          the text to continue (default: empty, BOS only)\n"
    "  --steps N           tokens to generate (default 128)\n"
    "  --temperature T     sampling temperature, 0 = greedy (default 1)\n"
    "  --top-p P           nucleus sampling threshold (default 0.9)\n"
    "  --seed S            sampling seed (default 42)\n"
    "  --prompt-chunk N    prompt tokens per forward, 1 to 65536 (default 128): larger prefills a long prompt\n"
    "                      faster in more memory, the same text\n"
    "  --act8              run packed low-bit layers (and a GGUF's k-quant matrices)\n"
    "                      with int8 activations (faster, not exact; needs AVX2)\n"
    "  --json              one JSON line on stdout\n"
    "  -h, --help          this help\n";

int cmd_generate(args *a) {
    int json = opt_flag(a, "--json");
    const char *tok_path = opt_str(a, "--tokenizer", NULL), *prompt = opt_str(a, "--prompt", "");
    int steps = (int)opt_int(a, "--steps", 128, 1, 1 << 20);
    ptq_sampler_params sp = ptq_sampler_default_params();
    sp.temperature = (float)opt_num(a, "--temperature", 1.0, 0, 100);
    sp.top_p = (float)opt_num(a, "--top-p", 0.9, 0, 1);
    sp.seed = (uint64_t)opt_int(a, "--seed", 42, 0, LLONG_MAX);
    const int chunk = (int)opt_int(a, "--prompt-chunk", 0, 1, 65536), act8 = opt_flag(a, "--act8");
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    ptq_model *m;
    if (load_model(path, &m)) return 1;
    if (act8 && apply_act8(m, path)) {
        ptq_model_free(m);
        return 1;
    }
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    if (!info.is_language_model) {
        ptq_model_free(m);
        return die("%s is an image model: generate needs a language model", path);
    }
    ptq_tokenizer *t;
    if (load_tokenizer(m, tok_path, &t)) {
        ptq_model_free(m);
        return 1;
    }
    ptq_error e;
    int *toks = NULL, n = 0, rc = 0;
    ptq_session *s = NULL;
    if (ptq_tokenizer_encode(t, prompt, strlen(prompt), 1, &toks, &n, &e) != PTQ_OK ||
        ptq_session_new(m, 0, &s, &e) != PTQ_OK || (chunk > 0 && ptq_session_set_chunk(s, chunk, &e) != PTQ_OK)) {
        rc = fail(&e);
        goto out;
    }
    if (n == 0) {
        rc = die("empty prompt and the tokenizer has no BOS token");
        goto out;
    }
    if (n + steps > info.max_seq) steps = info.max_seq - n;
    uint64_t rng = sp.seed ? sp.seed : 1;
    const float *logits;
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    text[0] = 0;
    double t0 = now_s(), t_first = 0;
    if (ptq_session_feed(s, toks, n, &logits, &e) != PTQ_OK) {
        rc = fail(&e);
        free(text);
        goto out;
    }
    t_first = now_s() - t0;
    int prev = toks[n - 1], generated = 0;
    for (int i = 1; i < n; i++) { /* echo the prompt */
        size_t pl;
        const char *piece = ptq_tokenizer_decode(t, toks[i - 1], toks[i], &pl);
        if (!json) fwrite(piece, 1, pl, stdout);
    }
    double t1 = now_s();
    for (int i = 0; i < steps; i++) {
        int next = ptq_sample(logits, info.vocab_size, &sp, &rng);
        if (next == ptq_tokenizer_bos(t) || next == ptq_tokenizer_eos(t)) break;
        size_t pl;
        const char *piece = ptq_tokenizer_decode(t, prev, next, &pl);
        if (json) {
            while (len + pl + 1 > cap) text = realloc(text, cap *= 2);
            memcpy(text + len, piece, pl);
            text[len += pl] = 0;
        } else {
            fwrite(piece, 1, pl, stdout);
            fflush(stdout);
        }
        generated++;
        prev = next;
        if (i + 1 < steps && ptq_session_feed(s, &next, 1, &logits, &e) != PTQ_OK) {
            rc = fail(&e);
            break;
        }
    }
    double dt = now_s() - t1;
    if (!rc) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "prompt", prompt);
            cJSON_AddStringToObject(o, "text", text);
            cJSON_AddNumberToObject(o, "prompt_tokens", n);
            cJSON_AddNumberToObject(o, "generated_tokens", generated);
            cJSON_AddNumberToObject(o, "prefill_s", t_first);
            cJSON_AddNumberToObject(o, "decode_tok_per_s", dt > 0 ? generated / dt : 0);
            char *out = cJSON_PrintUnformatted(o);
            printf("%s\n", out);
            free(out);
            cJSON_Delete(o);
        } else {
            printf("\n");
            fprintf(stderr, "%d tokens, %.1f tokens/s\n", generated, dt > 0 ? generated / dt : 0.0);
        }
    }
    free(text);
out:
    free(toks);
    ptq_session_free(s);
    ptq_tokenizer_free(t);
    ptq_model_free(m);
    return rc;
}
