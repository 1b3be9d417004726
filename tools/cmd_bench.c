/* ptq bench: speed of a model (float or quantized) on synthetic input, next to a baseline model
 * measured in the same run: prefill and decode tokens/s for language models, images/s for ViTs. */
#include <cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct {
    double prefill_tps, decode_tps, images_ps;
} speed;

/* Best of `reps` runs of each measurement. */
static int measure(ptq_model *m, int tokens, int steps, int images, int reps, speed *out) {
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    ptq_error e;
    memset(out, 0, sizeof *out);
    if (info.is_language_model) {
        if (tokens + steps > info.max_seq) tokens = info.max_seq - steps > 1 ? info.max_seq - steps : 1;
        int *prompt = malloc((size_t)tokens * sizeof *prompt);
        for (int i = 0; i < tokens; i++) prompt[i] = (int)((i * 7919u + 13u) % (unsigned)info.vocab_size);
        for (int r = 0; r < reps; r++) {
            ptq_session *s;
            const float *logits;
            if (ptq_session_new(m, tokens + steps, &s, &e) != PTQ_OK) {
                free(prompt);
                return fail(&e);
            }
            double t0 = now_s();
            int rc = ptq_session_feed(s, prompt, tokens, &logits, &e) != PTQ_OK;
            double t1 = now_s();
            for (int i = 0; !rc && i < steps; i++) {
                int t = (int)((i * 104729u + 7u) % (unsigned)info.vocab_size);
                rc = ptq_session_feed(s, &t, 1, &logits, &e) != PTQ_OK;
            }
            double t2 = now_s();
            ptq_session_free(s);
            if (rc) {
                free(prompt);
                return fail(&e);
            }
            if (tokens / (t1 - t0) > out->prefill_tps) out->prefill_tps = tokens / (t1 - t0);
            if (steps / (t2 - t1) > out->decode_tps) out->decode_tps = steps / (t2 - t1);
        }
        free(prompt);
    } else {
        ptq_image_set set = {images, info.in_chans, info.img_size, info.img_size, NULL, NULL};
        size_t n = (size_t)images * info.in_chans * info.img_size * info.img_size;
        set.pixels = malloc(n * sizeof(float));
        set.labels = calloc((size_t)images, sizeof(int));
        for (size_t i = 0; i < n; i++) set.pixels[i] = (float)((i * 2654435761u) % 1000u) / 500.0f - 1.0f;
        ptq_acc_result r;
        for (int k = 0; k < reps; k++) {
            double t0 = now_s();
            if (ptq_eval_accuracy(m, &set, NULL, &r, &e) != PTQ_OK) {
                free(set.pixels);
                free(set.labels);
                return fail(&e);
            }
            double ips = images / (now_s() - t0);
            if (ips > out->images_ps) out->images_ps = ips;
        }
        free(set.pixels);
        free(set.labels);
    }
    return 0;
}

const char help_bench[] =
    "usage: ptq bench MODEL [--baseline MODEL] [--tokens N] [--steps N] [--images N] [--reps N] [--json]\n"
    "Speed on synthetic input: prefill and decode tokens/s, or images/s; best of --reps runs.\n"
    "\n"
    "  --baseline MODEL    a second model measured in the same run, with the ratio\n"
    "  --tokens N          prompt tokens (default 128)\n"
    "  --steps N           decoded tokens (default 64)\n"
    "  --images N          images per run (default 1000)\n"
    "  --reps N            runs of each measurement (default 3)\n"
    "  --json              one JSON line on stdout\n"
    "  -h, --help          this help\n";

int cmd_bench(args *a) {
    int json = opt_flag(a, "--json");
    const char *baseline = opt_str(a, "--baseline", NULL);
    int tokens = (int)opt_int(a, "--tokens", 128, 1, 1 << 20), steps = (int)opt_int(a, "--steps", 64, 1, 1 << 20);
    int images = (int)opt_int(a, "--images", 1000, 1, 1 << 24), reps = (int)opt_int(a, "--reps", 3, 1, 100);
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    ptq_model *m, *b = NULL;
    if (load_model(path, &m)) return 1;
    if (baseline && load_model(baseline, &b)) {
        ptq_model_free(m);
        return 1;
    }
    speed sm, sb;
    memset(&sb, 0, sizeof sb);
    /* both measured in this run, best of --reps each */
    int rc = measure(m, tokens, steps, images, reps, &sm);
    if (!rc && b) rc = measure(b, tokens, steps, images, reps, &sb);
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    ptq_quant_summary qs;
    ptq_model_quant_summary(m, &qs);
    if (!rc) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "model", path);
            if (info.is_language_model) {
                cJSON_AddNumberToObject(o, "prefill_tok_per_s", sm.prefill_tps);
                cJSON_AddNumberToObject(o, "decode_tok_per_s", sm.decode_tps);
            } else {
                cJSON_AddNumberToObject(o, "images_per_s", sm.images_ps);
            }
            cJSON_AddNumberToObject(o, "bits_per_weight", qs.bits_per_weight);
            if (b) {
                cJSON_AddStringToObject(o, "baseline", baseline);
                if (info.is_language_model) {
                    cJSON_AddNumberToObject(o, "baseline_prefill_tok_per_s", sb.prefill_tps);
                    cJSON_AddNumberToObject(o, "baseline_decode_tok_per_s", sb.decode_tps);
                } else {
                    cJSON_AddNumberToObject(o, "baseline_images_per_s", sb.images_ps);
                }
            }
            char *t = cJSON_PrintUnformatted(o);
            printf("%s\n", t);
            free(t);
            cJSON_Delete(o);
        } else if (info.is_language_model) {
            printf("%-40s prefill %10.1f tok/s   decode %10.1f tok/s\n", path, sm.prefill_tps, sm.decode_tps);
            if (b) {
                printf("%-40s prefill %10.1f tok/s   decode %10.1f tok/s\n", baseline, sb.prefill_tps, sb.decode_tps);
                printf("%-40s prefill %9.2fx          decode %9.2fx\n", "ratio", sm.prefill_tps / sb.prefill_tps,
                       sm.decode_tps / sb.decode_tps);
            }
        } else {
            printf("%-40s %10.1f images/s\n", path, sm.images_ps);
            if (b) {
                printf("%-40s %10.1f images/s\n", baseline, sb.images_ps);
                printf("%-40s %9.2fx\n", "ratio", sm.images_ps / sb.images_ps);
            }
        }
    }
    ptq_model_free(m);
    ptq_model_free(b);
    return rc;
}
