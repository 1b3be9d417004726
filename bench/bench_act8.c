/* What int8 activations (ptq_model_set_act8) change in decoding: the same model decodes the same text
 * token by token (one row per step, the path act8 affects) with float activations and with int8
 * activations, side by side; reported: the decode perplexity of each, the fraction of steps whose top-1
 * token agrees, and the largest |logit difference| relative to the logits' range.
 *
 *   bench_act8 MODEL TEXT [--tokens N] [--windows W] [--json]
 *
 * The text is cut into W windows of N tokens (from the start, back to back); each window starts a new
 * session (context N). Perplexity evaluation of many rows at once (ptq eval) never takes this path.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "ptq.h"

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0, *len = (size_t)n;
    return buf;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static double nll(const float *v, int n, int target) {
    float mx = v[0];
    for (int i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp((double)v[i] - mx);
    return log(s) + mx - v[target];
}

int main(int argc, char **argv) {
    const char *mpath = NULL, *tpath = NULL;
    int ntok = 128, windows = 4, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) ntok = atoi(argv[++i]);
        else if (strcmp(argv[i], "--windows") == 0 && i + 1 < argc) windows = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (!mpath) mpath = argv[i];
        else if (!tpath) tpath = argv[i];
        else mpath = NULL, i = argc;
    }
    if (!mpath || !tpath || ntok < 2 || windows < 1) {
        fprintf(stderr, "usage: bench_act8 MODEL TEXT [--tokens N] [--windows W] [--json]\n");
        return 2;
    }
    ptq_error err;
    ptq_model *m[2] = {NULL, NULL};
    ptq_tokenizer *tok = NULL;
    for (int k = 0; k < 2; k++)
        if (ptq_model_load(mpath, &m[k], &err) != PTQ_OK) {
            fprintf(stderr, "bench_act8: %s\n", err.msg);
            return 1;
        }
    ptq_model_set_act8(m[1], 1);
    if (ptq_tokenizer_load_for_model(m[0], NULL, &tok, &err) != PTQ_OK) {
        fprintf(stderr, "bench_act8: %s\n", err.msg);
        return 1;
    }
    size_t len = 0;
    char *text = read_text(tpath, &len);
    int *ids = NULL, n = 0;
    if (!text || ptq_tokenizer_encode(tok, text, len, 1, &ids, &n, &err) != PTQ_OK) {
        fprintf(stderr, "bench_act8: %s: %s\n", tpath, text ? err.msg : "cannot read");
        return 1;
    }
    ptq_model_info info;
    ptq_model_get_info(m[0], &info);
    if (ntok > info.max_seq) ntok = info.max_seq;
    if (windows > n / ntok) windows = n / ntok;
    double sum_nll[2] = {0, 0}, worst_rel = 0.0;
    long steps = 0, agree = 0;
    float *prev = malloc((size_t)info.vocab_size * sizeof(float));
    for (int wi = 0; wi < windows; wi++) {
        ptq_session *s[2];
        for (int k = 0; k < 2; k++)
            if (ptq_session_new(m[k], ntok, &s[k], &err) != PTQ_OK) {
                fprintf(stderr, "bench_act8: %s\n", err.msg);
                return 1;
            }
        const int *w = ids + (size_t)wi * ntok;
        for (int t = 0; t + 1 < ntok; t++) {
            const float *lg[2];
            for (int k = 0; k < 2; k++)
                if (ptq_session_feed(s[k], &w[t], 1, &lg[k], &err) != PTQ_OK) {
                    fprintf(stderr, "bench_act8: %s\n", err.msg);
                    return 1;
                }
            memcpy(prev, lg[0], (size_t)info.vocab_size * sizeof(float));
            float lo = prev[0], hi = prev[0];
            double dmax = 0.0;
            for (int i = 0; i < info.vocab_size; i++) {
                lo = prev[i] < lo ? prev[i] : lo;
                hi = prev[i] > hi ? prev[i] : hi;
                const double d = fabs((double)prev[i] - lg[1][i]);
                dmax = d > dmax ? d : dmax;
            }
            if (hi > lo && dmax / (hi - lo) > worst_rel) worst_rel = dmax / (hi - lo);
            agree += argmax(prev, info.vocab_size) == argmax(lg[1], info.vocab_size);
            sum_nll[0] += nll(prev, info.vocab_size, w[t + 1]);
            sum_nll[1] += nll(lg[1], info.vocab_size, w[t + 1]);
            steps++;
        }
        for (int k = 0; k < 2; k++) ptq_session_free(s[k]);
    }
    const double ppl0 = exp(sum_nll[0] / (double)steps), ppl1 = exp(sum_nll[1] / (double)steps);
    if (json)
        printf("{\"model\": \"%s\", \"steps\": %ld, \"ppl_float_act\": %.6f, \"ppl_act8\": %.6f, \"top1_agree\": %.6f, "
               "\"max_rel_logit_diff\": %.3g}\n",
               mpath, steps, ppl0, ppl1, (double)agree / (double)steps, worst_rel);
    else
        printf("%s: %ld decode steps: perplexity %.4f (float activations) vs %.4f (int8), top-1 agreement %.2f%%, "
               "max |logit diff| %.2g of the logit range\n",
               mpath, steps, ppl0, ppl1, 100.0 * (double)agree / (double)steps, worst_rel);
    free(prev);
    free(ids);
    free(text);
    ptq_tokenizer_free(tok);
    ptq_model_free(m[0]);
    ptq_model_free(m[1]);
    return 0;
}
