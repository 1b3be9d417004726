/* ptq bench: speed of a model (float or quantized) on synthetic input, next to a baseline model
 * measured in the same run: prefill and decode tokens/s for language models, images/s for ViTs. */
#include <cJSON.h>
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "kernels/i8gemm.h"
#include "kernels/membw.h"
#include "kernels/qweight.h"
#include "models/model.h"
#include "quant/ggml_quants.h"

/* Bytes of weights one decoded token reads: every block linear and the head, as stored (packed codes
 * with their scales and any stored zero points, int8 codes, a GGUF's ggml blocks, or floats), plus one embedding
 * row. */
static double linear_bytes(const ptq_linear *l) {
    if (l->q)
        return (double)l->q->out * ((double)l->q->row_bytes + (l->q->zeros ? 3.0 : 2.0) * l->q->n_groups) +
               (l->q->perm ? 4.0 * l->q->in : 0.0);
    if (l->i8) return (double)l->out * l->in + 4.0 * l->out;
    if (ptq_linear_is_ggml(l)) return (double)l->out * (double)ptq_ggml_row_bytes(l->ggml_type, l->in);
    if (l->w || l->wq) return 4.0 * l->out * l->in;
    return 0.0;
}

static double decode_bytes(const ptq_model *m) {
    double b = linear_bytes(&m->head) + linear_bytes(&m->proj_in) + linear_bytes(&m->proj_out);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int r = 0; r < PTQ_LIN_COUNT; r++) b += linear_bytes(&m->blocks[l].lin[r]);
    return b + 4.0 * m->cfg.embed_dim;
}

/* Peak resident memory of this process so far, in bytes. */
static double peak_rss(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? 1024.0 * (double)ru.ru_maxrss : 0.0;
}

typedef struct {
    double prefill_tps, decode_tps, images_ps;
} speed;

/* Best of `reps` runs of each measurement. */
static int measure(ptq_model *m, int tokens, int steps, int chunk, int images, int reps, speed *out) {
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
            if (ptq_session_new(m, tokens + steps, &s, &e) != PTQ_OK ||
                (chunk > 0 && ptq_session_set_chunk(s, chunk, &e) != PTQ_OK)) {
                ptq_session_free(s);
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
    "usage: ptq bench MODEL [--baseline MODEL] [--tokens N] [--steps N] [--prompt-chunk N] [--images N] [--reps N]\n"
    "                 [--act8] [--no-bandwidth] [--json]\n"
    "Speed on synthetic input: prefill and decode tokens/s, or images/s; best of --reps runs. For a language\n"
    "model also the peak resident memory after loading and running MODEL, the weight bytes one decoded token\n"
    "reads, and the fraction of the machine's read bandwidth (measured in the same run, 1 GiB, after the\n"
    "model's runs) that decoding achieves. It names the OpenBLAS kernels that float products ran on (OpenBLAS\n"
    "picks them for the CPU unless the environment variable OPENBLAS_CORETYPE names others).\n"
    "\n"
    "  --baseline MODEL    a second model measured in the same run, with the ratio\n"
    "  --tokens N          prompt tokens (default 128)\n"
    "  --steps N           decoded tokens (default 64)\n"
    "  --prompt-chunk N    prompt tokens per forward, 1 to 65536 (default 128; ptq_session_set_chunk)\n"
    "  --images N          images per run (default 1000)\n"
    "  --reps N            runs of each measurement (default 3)\n"
    "  --act8              decode packed low-bit layers with int8 activations (ptq_model_set_act8; both models)\n"
    "  --no-bandwidth      skip the read-bandwidth probe (it allocates 1 GiB)\n"
    "  --json              one JSON line on stdout\n"
    "  -h, --help          this help\n";

int cmd_bench(args *a) {
    int json = opt_flag(a, "--json");
    const char *baseline = opt_str(a, "--baseline", NULL);
    int tokens = (int)opt_int(a, "--tokens", 128, 1, 1 << 20), steps = (int)opt_int(a, "--steps", 64, 1, 1 << 20);
    const int chunk = (int)opt_int(a, "--prompt-chunk", 0, 1, 65536);
    int images = (int)opt_int(a, "--images", 1000, 1, 1 << 24), reps = (int)opt_int(a, "--reps", 3, 1, 100);
    const int act8 = opt_flag(a, "--act8"), no_bw = opt_flag(a, "--no-bandwidth");
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    ptq_model *m, *b = NULL;
    if (load_model(path, &m)) return 1;
    if (act8) ptq_model_set_act8(m, 1);
    speed sm, sb;
    memset(&sb, 0, sizeof sb);
    /* both measured in this run, best of --reps each; the peak RSS before anything else is loaded */
    int rc = measure(m, tokens, steps, chunk, images, reps, &sm);
    const double rss = peak_rss(), step_bytes = decode_bytes(m);
    double bw = 0.0;
    ptq_error e;
    if (!rc && !no_bw && ptq_read_bandwidth((size_t)1 << 30, 5, &bw, &e) != PTQ_OK) rc = fail(&e);
    if (!rc && baseline) {
        if (load_model(baseline, &b)) rc = 1;
        else if (act8) ptq_model_set_act8(b, 1);
    }
    if (!rc && b) rc = measure(b, tokens, steps, chunk, images, reps, &sb);
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
                cJSON_AddNumberToObject(o, "peak_rss_bytes", rss);
                cJSON_AddNumberToObject(o, "decode_bytes_per_token", step_bytes);
                if (bw > 0) {
                    cJSON_AddNumberToObject(o, "read_bandwidth_gbs", bw);
                    cJSON_AddNumberToObject(o, "decode_fraction_of_bandwidth", sm.decode_tps * step_bytes / 1e9 / bw);
                }
                cJSON_AddBoolToObject(o, "act8", act8);
            } else {
                cJSON_AddNumberToObject(o, "images_per_s", sm.images_ps);
            }
            cJSON_AddNumberToObject(o, "bits_per_weight", qs.bits_per_weight);
            cJSON_AddStringToObject(o, "openblas_kernels", openblas_get_corename());
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
            printf("%-40s peak RSS %.2f GiB   %.1f MB read per decoded token", "", rss / 1073741824.0,
                   step_bytes / 1e6);
            if (bw > 0)
                printf("   %.1f GB/s = %.0f%% of %.1f GB/s read bandwidth", sm.decode_tps * step_bytes / 1e9,
                       100.0 * sm.decode_tps * step_bytes / 1e9 / bw, bw);
            printf("\n");
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
        if (!json) /* float prefill runs on them: name them, and say when the environment chose them */
            printf("%-40s OpenBLAS kernels: %s%s\n", "", openblas_get_corename(),
                   getenv("OPENBLAS_CORETYPE") ? " (set by OPENBLAS_CORETYPE)" : "");
    }
    ptq_model_free(m);
    ptq_model_free(b);
    return rc;
}
