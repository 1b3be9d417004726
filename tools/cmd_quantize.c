/* ptq quantize: weight quantization (RTN, GPTQ) with Bias Compensation, and its reports. */
#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/file.h"
#include "kernels/qweight.h"
#include "models/gguf_export.h"
#include "ptq_mpi.h"
#include "quant/calib_stream.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif

typedef struct {
    int json;
    cJSON *layers;
    cJSON *bc; /* BC reports, in order */
} report_state;

/* Adds o to the array, replacing an entry with the same key (a NoisyQuant run can quantize a layer
   again, and its last report is the one that describes the written file). */
static void put_replacing(cJSON *arr, const char *key, cJSON *o) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    int i = 0;
    for (cJSON *e = arr ? arr->child : NULL; e; e = e->next, i++) {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, key));
        if (name && n && !strcmp(name, n)) {
            cJSON_ReplaceItemInArray(arr, i, o);
            return;
        }
    }
    cJSON_AddItemToArray(arr, o);
}

static void on_bc(void *user, const ptq_bc_report *r) {
    report_state *rs = user;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "module", r->name);
    cJSON_AddNumberToObject(o, "mse_before", r->mse_before);
    cJSON_AddNumberToObject(o, "mse_after", r->mse_after);
    cJSON_AddNumberToObject(o, "sqnr_before", r->sqnr_before);
    cJSON_AddNumberToObject(o, "sqnr_after", r->sqnr_after);
    if (r->has_holdout) {
        cJSON_AddNumberToObject(o, "holdout_mse_before", r->hold_mse_before);
        cJSON_AddNumberToObject(o, "holdout_mse_after", r->hold_mse_after);
        cJSON_AddNumberToObject(o, "holdout_sqnr_before", r->hold_sqnr_before);
        cJSON_AddNumberToObject(o, "holdout_sqnr_after", r->hold_sqnr_after);
    }
    put_replacing(rs->bc, "module", o);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The BC report into its opened temporary file: JSON when FILE ends in .json, else a markdown table.
   Flushed to disk but not renamed into place yet (see the end of cmd_quantize). */
static int write_bc_report(ptq_atomic_file *report, const char *path, const cJSON *bc, const char *title) {
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) {
        char *txt = cJSON_Print(bc);
        fprintf(report->f, "%s\n", txt);
        free(txt);
    } else {
        fprintf(report->f, "%s\n\n| module | MSE before | MSE after | SQNR before (dB) | SQNR after (dB) | held-apart MSE before "
                      "| after | held-apart SQNR before | after |\n|---|---|---|---|---|---|---|---|---|\n",
                title);
        const cJSON *o;
        cJSON_ArrayForEach(o, bc) {
            fprintf(report->f, "| %s | %.4g | %.4g | %.2f | %.2f |", cJSON_GetObjectItemCaseSensitive(o, "module")->valuestring,
                    num(o, "mse_before"), num(o, "mse_after"), num(o, "sqnr_before"), num(o, "sqnr_after"));
            if (isnan(num(o, "holdout_mse_before"))) fprintf(report->f, " | | | |\n");
            else
                fprintf(report->f, " %.4g | %.4g | %.2f | %.2f |\n", num(o, "holdout_mse_before"), num(o, "holdout_mse_after"),
                        num(o, "holdout_sqnr_before"), num(o, "holdout_sqnr_after"));
        }
    }
    ptq_error e;
    return ptq_atomic_finish(report, &e) == PTQ_OK ? 0 : fail(&e);
}

static int parse_bc_scope(const char *s, int *scope) {
    *scope = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (strcmp(tok, "linear") == 0) *scope |= PTQ_BC_LINEAR;
        else if (strcmp(tok, "block") == 0) *scope |= PTQ_BC_BLOCK;
        else if (strcmp(tok, "logits") == 0) *scope |= PTQ_BC_LOGITS;
        else return die("--bc-scope takes a list of linear, block, logits; got '%s'", tok);
    }
    return *scope ? 0 : die("--bc-scope is empty");
}

static void on_layer(void *user, const ptq_layer_report *r) {
    report_state *rs = user;
    if (rs->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddNumberToObject(o, "layer", r->layer);
        cJSON_AddNumberToObject(o, "in", r->in);
        cJSON_AddNumberToObject(o, "out", r->out);
        cJSON_AddNumberToObject(o, "seconds", r->seconds);
        cJSON_AddNumberToObject(o, "rel_error", r->rel_error);
        put_replacing(rs->layers, "name", o);
    } else {
        if (isnan(r->rel_error)) /* --no-layer-error */
            fprintf(stderr, "\r  %-44s %6d x %-6d %7.2fs\n", r->name, r->out, r->in, r->seconds);
        else
            fprintf(stderr, "\r  %-44s %6d x %-6d %7.2fs   rel. output error %.3e\n", r->name, r->out, r->in,
                    r->seconds, r->rel_error);
    }
}

static long long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long long n = ftell(f);
    fclose(f);
    return n;
}

/* --group (and --head-group, --embed-group: `opt`): a multiple of 32, "channel" or 0 (one grid per output
   channel), "tensor" (one grid per matrix). */
static int parse_group_opt(const char *opt, const char *s, int *group) {
    char *end;
    long g = strtol(s, &end, 10);
    if (!strcmp(s, "channel")) *group = 0;
    else if (!strcmp(s, "tensor")) *group = PTQ_GROUP_TENSOR;
    else if (*s >= '0' && *s <= '9' && !*end && g >= 0 && g <= (1 << 20) && g % PTQ_QCHUNK == 0) *group = (int)g;
    else
        return die("%s expects a group size that is a multiple of 32 (32, 64, 128, ...), 'channel' (or 0: one "
                   "grid per output channel) or 'tensor' (one grid per matrix), got '%s'", opt, s);
    return 0;
}

static int parse_group(const char *s, int *group) { return parse_group_opt("--group", s, group); }

/* --head-bits / --embed-bits N [--head-group / --embed-group G] (quant/head_embed.h): N 2 to 8 or 16; the group
   defaults to 32. Checked before any work. */
static int parse_head_embed(const char *bits_opt, const char *b, const char *group_opt, const char *g, int *bits,
                            int *group) {
    *bits = 0;
    *group = 32;
    if (!b) return g ? die("%s needs %s", group_opt, bits_opt) : 0;
    if ((strlen(b) == 1 && b[0] >= '2' && b[0] <= '8') || !strcmp(b, "16")) *bits = atoi(b);
    else
        return die("%s expects 2 to 8 (packed like the blocks' weights) or 16 (stored as f16/bf16), got '%s'; "
                   "leave it out to keep float32", bits_opt, b);
    if (g && *bits == 16) return die("%s does not apply to %s 16 (no grid)", group_opt, bits_opt);
    return g ? parse_group_opt(group_opt, g, group) : 0;
}

static ptq_status stream_block(void *user, ptq_model *m, int layer, ptq_error *err) {
    return ptq_model_stream_block(user, m, layer, err);
}

/* A streamed model's blocks are freed as they are written: the stream kept their summary. */
static void summary(const ptq_model *m, const ptq_model_stream *ms, ptq_quant_summary *qs) {
    if (ms) ptq_model_stream_summary(ms, qs);
    else ptq_model_quant_summary(m, qs);
}

/* The calibration activations the pipeline keeps between blocks (the residual stream of every window, float32;
   twice with Bias Compensation, which follows the float model too; plus the held-apart windows). */
static void print_calib_size(const ptq_model *m, const ptq_calib_data *d, const ptq_quant_params *qp) {
    ptq_model_info mi;
    ptq_model_get_info(m, &mi);
    double rows = d->images ? (double)d->images->count * mi.max_seq : (double)d->n_seqs * d->seq_len;
    if (qp->holdout && qp->bc_scope)
        rows += qp->holdout->images ? (double)qp->holdout->images->count * mi.max_seq
                                    : (double)qp->holdout->n_seqs * qp->holdout->seq_len;
    double bytes = rows * mi.dim * (double)ptq_calib_dtype_size(qp->calib_dtype) * (qp->bc_scope ? 2 : 1);
    const char *dt[] = {"float32", "bfloat16", "float16"};
    fprintf(stderr, "calibration activations between blocks: %.1f MB (%s)\n", bytes / 1e6, dt[qp->calib_dtype]);
}

const char help_quantize[] =
    "usage: ptq quantize MODEL --calib DATA -o OUT.ptq --wbits B [options]\n"
    "       ptq quantize MODEL [--calib DATA] -o OUT.gguf --type T [--method rtn|gptq] [--bc] [options]\n"
    "Weight quantization (RTN, GPTQ), optional activation quantization and Bias Compensation, into a .ptq file.\n"
    "OUT (and --report) are checked before any work, written atomically, and never replace an input.\n"
    "\n"
    "  --calib DATA              calibration text (language models), or images (image models): an IDX file\n"
    "                            (gzip'ed or not) or a folder of JPEG/PNG/BMP files; no labels needed\n"
    "  -o OUT                    the .ptq file to write\n"
    "  --wbits B                 weight bits, 2 to 8 (.ptq output)\n"
    "  --format F                ptq (default) or gguf (the default when OUT ends in .gguf): a llama.cpp GGUF\n"
    "                            (LLaMA models as its llama architecture, GPT-2 models as gpt2)\n"
    "  --type T                  with --format gguf: llama.cpp's type, one of F32, F16, Q8_0, Q6_K, Q5_K_M (= Q5_K),\n"
    "                            Q5_K_S, Q5_1, Q5_0, Q4_K_M (= Q4_K), Q4_K_S, Q4_1, Q4_0, Q3_K_L, Q3_K_M (= Q3_K),\n"
    "                            Q3_K_S, Q2_K; each matrix gets llama.cpp's per-tensor choice for it (docs/GUIDE.md)\n"
    "  --pure                    with --format gguf: every matrix in T itself (llama-quantize --pure)\n"
    "  --group G                 G a multiple of 32, 'channel' or 0 (one grid per output channel, the default),\n"
    "                            or 'tensor' (one grid per matrix)\n"
    "  --sym                     symmetric grids, also of --head-bits/--embed-bits (no zero points stored)\n"
    "  --method M                gptq (default) or rtn\n"
    "  --act-order               GPTQ in order of decreasing Hessian diagonal\n"
    "  --damp D                  GPTQ dampening, a fraction of the mean Hessian diagonal (default 0.01)\n"
    "  --gptq-updated-groups     take a group's grid from the GPTQ-updated weights\n"
    "  --head-bits N             the LM head (or classifier) packed at N = 2 to 8 bits (RTN, or GPTQ on the\n"
    "                            final-norm activations with --method gptq), or N = 16: stored as f16/bf16;\n"
    "                            default: float32\n"
    "  --head-group G            the head's group, as --group (default 32)\n"
    "  --embed-bits N            the token embeddings packed at N = 2 to 8 bits (RTN, before calibration), or\n"
    "                            16: f16/bf16 (kept so in memory); default float32. A model whose head is its\n"
    "                            embedding table keeps one table: give one of the two options, or equal ones\n"
    "  --embed-group G           the embeddings' group, as --group (default 32)\n"
    "  --tokenizer TOK           tokenizer file (default: found beside MODEL)\n"
    "  --docs-sep S              split the calibration text into documents at S\n"
    "  --docs I:J                calibrate on documents I to J-1; needs --docs-sep\n"
    "  --calib-n N               number of calibration windows (default 32)\n"
    "  --calib-ctx T             tokens per window (default: the model's context, at most 2048)\n"
    "  --calib-dtype D           f32 (default), bf16 or f16: how the calibration activations are kept between\n"
    "                            blocks; bf16/f16 halve their memory (weight-only quantization without --bc)\n"
    "  --seed S                  seed of the window positions (default 1)\n"
    "  --calib-labels L          labels of the calibration images (optional; a folder is then read as the\n"
    "                            lines 'file label' of L)\n"
    "  --first I                 first calibration image (default 0)\n"
    "  --count N                 number of calibration images (default 0: all)\n"
    "  --abits A                 activation bits, 2 to 8 (default: float activations)\n"
    "  --act-calib C             minmax (default), percentile, mse, entropy, easyquant or twin\n"
    "  --act-asym                asymmetric activation grids\n"
    "  --act-per-token           dynamic per-token activation scales\n"
    "  --act-percentile P        percentile of --act-calib percentile (default 99.99)\n"
    "  --quant-attn              quantize the attention products too\n"
    "  --noisyquant              NoisyQuant, kept where it lowers the held-out error\n"
    "  --noisyquant-ref          NoisyQuant as the reference code does it\n"
    "  --noisyquant-unchecked    NoisyQuant kept on every linear\n"
    "  --bc                      Bias Compensation\n"
    "  --bc-shape S              channel (default) or position\n"
    "  --bc-mode M               sequential (default) or parallel\n"
    "  --bc-scope LIST           comma list of linear, block, logits (default linear,block)\n"
    "  --report FILE             BC error before and after, per module (.json: JSON, else markdown); needs --bc\n"
    "  --no-layer-error          skip the per-layer relative output error (reported as nan): it costs\n"
    "                            O(out * in^2) per layer, more than GPTQ itself on large layers\n"
    "  --in-memory               load the whole model as float32 and write OUT at the end; the default streams:\n"
    "                            a block's weights are converted from the source when its turn comes, released\n"
    "                            once quantized, and written out (the same file; NoisyQuant's checked mode and\n"
    "                            --format gguf always run in memory)\n"
    "  --json                    one JSON line on stdout, no progress\n"
    "  -h, --help                this help\n";

static int quantize(args *a, const ptq_dist *dist);

/* Under mpirun every process runs the calibration on its share of the data; rank 0 alone reports and
   writes the outputs. */
int cmd_quantize(args *a) {
    const ptq_dist *dist = NULL;
    if (cli_mpi_start(&dist)) return 1;
    int rc = quantize(a, dist);
    cli_mpi_end(rc);
    return rc;
}

static int quantize(args *a, const ptq_dist *dist) {
#ifdef __GLIBC__
    /* Buffers of 1 MB and more straight from mmap, back to the system when freed. glibc's default raises its mmap
       threshold to the size of each large buffer freed, after which the block-sized buffers of every block (up to
       32 MB) come from its heap, which fragments and keeps growing: a streamed GPTQ of a 12-layer dim-1024 model
       peaked at 761 MB instead of 356 MB, and the 7B shape's peak grew by 44 MB per block (docs/RESULTS.md). */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
    int writer = !dist || dist->rank == 0;
    int json = opt_flag(a, "--json") || !writer; /* other ranks: no progress */
    const char *calib = opt_str(a, "--calib", NULL), *out_path = opt_str(a, "-o", NULL);
    text_opts to;
    if (parse_text_opts(a, &to)) return 2;
    int calib_n = (int)opt_int(a, "--calib-n", 32, 1, 1000000);
    int calib_ctx = (int)opt_int(a, "--calib-ctx", 0, 1, 1 << 20);
    uint64_t seed = (uint64_t)opt_int(a, "--seed", 1, 0, LLONG_MAX);
    const char *labels = opt_str(a, "--calib-labels", NULL);
    int first = (int)opt_int(a, "--first", 0, 0, INT_MAX), count = (int)opt_int(a, "--count", 0, 0, INT_MAX);
    ptq_quant_params qp = ptq_quant_default_params();
    qp.wbits = (int)opt_int(a, "--wbits", 0, 2, 8);
    const char *group_s = opt_str(a, "--group", NULL);
    if (parse_group(group_s ? group_s : "channel", &qp.group)) return 2;
    qp.sym = opt_flag(a, "--sym");
    qp.act_order = opt_flag(a, "--act-order");
    qp.percdamp = opt_num(a, "--damp", 0.01, 1e-6, 10);
    qp.gptq_updated_groups = opt_flag(a, "--gptq-updated-groups");
    const char *method = opt_str(a, "--method", "gptq");
    qp.abits = (int)opt_int(a, "--abits", 0, 2, 8);
    const char *act_calib = opt_str(a, "--act-calib", "minmax");
    qp.act_asym = opt_flag(a, "--act-asym");
    qp.act_per_token = opt_flag(a, "--act-per-token");
    qp.act_percentile = opt_num(a, "--act-percentile", 99.99, 50, 100);
    qp.quant_attention = opt_flag(a, "--quant-attn");
    qp.noisyquant = opt_flag(a, "--noisyquant");
    qp.noisyquant_reference = opt_flag(a, "--noisyquant-ref");
    qp.noisyquant_unchecked = opt_flag(a, "--noisyquant-unchecked");
    if (qp.noisyquant_reference || qp.noisyquant_unchecked) qp.noisyquant = 1;
    int bc = opt_flag(a, "--bc");
    const char *bc_shape = opt_str(a, "--bc-shape", NULL), *bc_mode = opt_str(a, "--bc-mode", NULL);
    const char *bc_scope = opt_str(a, "--bc-scope", NULL), *report_path = opt_str(a, "--report", NULL);
    const char *format = opt_str(a, "--format", NULL), *type_name = opt_str(a, "--type", NULL);
    int pure = opt_flag(a, "--pure");
    int in_memory = opt_flag(a, "--in-memory");
    qp.skip_layer_error = opt_flag(a, "--no-layer-error");
    if (parse_head_embed("--head-bits", opt_str(a, "--head-bits", NULL), "--head-group", opt_str(a, "--head-group", NULL),
                         &qp.head_bits, &qp.head_group) ||
        parse_head_embed("--embed-bits", opt_str(a, "--embed-bits", NULL), "--embed-group",
                         opt_str(a, "--embed-group", NULL), &qp.embed_bits, &qp.embed_group))
        return 2;
    const char *calib_dtype = opt_str(a, "--calib-dtype", "f32");
    if (ptq_calib_dtype_parse(calib_dtype, &qp.calib_dtype))
        return die("--calib-dtype must be f32, bf16 or f16, got '%s'", calib_dtype);
    const char *path = positional(a);
    if (check_unused(a)) return 2;
    size_t olen = out_path ? strlen(out_path) : 0;
    if (!format) format = olen >= 5 && strcmp(out_path + olen - 5, ".gguf") == 0 ? "gguf" : "ptq";
    int gguf = strcmp(format, "gguf") == 0;
    ptq_gguf_export_opts go = {0};
    if (!gguf && strcmp(format, "ptq") != 0) return die("--format must be ptq or gguf, got '%s'", format);
    if (!gguf && (type_name || pure)) return die("--type and --pure apply to --format gguf");
    if (gguf) {
        if (!type_name) return die("--format gguf needs --type T, T one of %s", ptq_gguf_ftype_list());
        if (ptq_gguf_ftype_parse(type_name, &go.ftype))
            return die("--type must be one of %s; got '%s'", ptq_gguf_ftype_list(), type_name);
        go.pure = pure;
        if (qp.wbits || group_s)
            return die("--wbits and --group do not apply to --format gguf: --type %s sets each matrix's ggml type",
                       type_name);
        if (qp.abits) return die("--format gguf holds weights only: activation quantization (--abits) has no GGUF form");
        if (qp.head_bits || qp.embed_bits)
            return die("--head-bits and --embed-bits apply to .ptq output: in a GGUF, --type %s gives output.weight and "
                       "token_embd.weight llama.cpp's types", type_name);
        qp.wbits = 8; /* unused: the type decides */
        qp.ggml = 1;
        qp.ggml_ftype = (int)go.ftype;
        qp.ggml_pure = pure;
    }
    if ((bc_shape || bc_mode || bc_scope) && !bc) return die("--bc-shape, --bc-mode and --bc-scope need --bc");
    const char *calibs[] = {"minmax", "percentile", "mse", "entropy", "easyquant", "twin"};
    int ci = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(act_calib, calibs[i]) == 0) ci = i;
    if (ci < 0) return die("--act-calib must be minmax, percentile, mse, entropy, easyquant or twin, got '%s'", act_calib);
    qp.act_calib = (ptq_act_calib)ci;
    if (!qp.abits && (qp.act_asym || qp.act_per_token || qp.noisyquant || qp.quant_attention ||
                      strcmp(act_calib, "minmax") != 0))
        return die("activation options (--act-*, --noisyquant) need --abits A");
    qp.seed = seed;
    if (report_path && !bc) return die("--report needs --bc (it reports the error before and after BC)");
    if (bc) {
        qp.bc_scope = PTQ_BC_LINEAR | PTQ_BC_BLOCK;
        if (bc_scope && parse_bc_scope(bc_scope, &qp.bc_scope)) return 2;
        if (!bc_shape || strcmp(bc_shape, "channel") == 0) qp.bc_shape = PTQ_BC_CHANNEL;
        else if (strcmp(bc_shape, "position") == 0) qp.bc_shape = PTQ_BC_POSITION;
        else return die("--bc-shape must be channel or position, got '%s'", bc_shape);
        if (!bc_mode || strcmp(bc_mode, "sequential") == 0) qp.bc_mode = PTQ_BC_SEQUENTIAL;
        else if (strcmp(bc_mode, "parallel") == 0) qp.bc_mode = PTQ_BC_PARALLEL;
        else return die("--bc-mode must be sequential or parallel, got '%s'", bc_mode);
    }
    /* RTN into a GGUF type needs no calibration (the exporter rounds each matrix itself) */
    int gguf_rtn = gguf && strcmp(method, "rtn") == 0 && !bc;
    if ((!calib && !gguf_rtn) || !out_path || !qp.wbits)
        return die(gguf ? "quantize --format gguf needs -o OUT, and --calib DATA except with --method rtn"
                        : "quantize needs --calib DATA, -o OUT and --wbits B");
    if (strcmp(method, "gptq") == 0) qp.method = PTQ_WQ_GPTQ;
    else if (strcmp(method, "rtn") == 0) qp.method = PTQ_WQ_RTN;
    else return die("--method must be rtn or gptq, got '%s'", method);
    if (qp.act_order && qp.method != PTQ_WQ_GPTQ) return die("--act-order applies to --method gptq only");
    if (!path) return die("missing MODEL argument");

    /* the outputs, before any work: neither may replace an input, a folder or a device */
    path_list inputs = {0};
    paths_add_model(&inputs, path);
    paths_add(&inputs, calib);
    paths_add(&inputs, labels);
    paths_add(&inputs, to.tok_path);
    const char *what[] = {"-o", "--report"}, *outs[] = {out_path, report_path};
    int bad = check_outputs(what, outs, 2, &inputs);
    paths_free(&inputs);
    if (bad) return bad;
    cleanup_on_signal(out_path);
    /* the report's temporary file is created now, so that a report that cannot be written stops the run here */
    ptq_atomic_file report;
    ptq_error e;
    /* only rank 0 writes; the report's statistics are gathered all the same */
    const char *report_out = writer ? report_path : NULL;
    if (report_out) {
        cleanup_on_signal(report_path);
        if (ptq_atomic_open(&report, report_path, &e) != PTQ_OK) return fail(&e);
    }

    progress_state ps;
    ptq_callbacks cb = make_callbacks(&ps, json);
    ptq_model *m;
    /* streaming: one block of float weights in memory at a time, each block written out once quantized (by the
       writing process; the others only stream their reads) */
    int stream = !in_memory && !gguf && !(qp.noisyquant && !qp.noisyquant_unchecked);
    ptq_model_stream *ms = NULL;
    if (load_model_streamed(path, stream, &m)) {
        if (report_out) ptq_atomic_abort(&report);
        return 1;
    }
    ptq_model_info info;
    ptq_model_get_info(m, &info);
    int rc = 0;
    ptq_calib_data data;
    memset(&data, 0, sizeof data);
    int *toks = NULL, *windows = NULL;
    int64_t n = 0;
    ptq_tokenizer *t = NULL;
    ptq_image_set set, hold_set;
    memset(&set, 0, sizeof set);
    memset(&hold_set, 0, sizeof hold_set);
    ptq_calib_data hold;
    memset(&hold, 0, sizeof hold);
    int *hold_windows = NULL;
    char desc[512];
    uint64_t hash = 0;
    /* with --report, the last fifth of the calibration data is held apart to measure BC on unseen data */
    if (gguf && !info.is_language_model) {
        rc = fail_msg("%s: --format gguf writes LLaMA and GPT-2 language models for llama.cpp; this is an image model",
                      path);
    } else if (gguf_rtn) {
        if (load_tokenizer(m, to.tok_path, &t)) rc = 1;
    } else if (info.is_language_model) {
        int T = calib_ctx > 0 ? calib_ctx : (info.max_seq < 2048 ? info.max_seq : 2048);
        rc = encode_text_file(m, &to, calib, &t, &toks, &n);
        if (!rc && T > info.max_seq) rc = die("--calib-ctx %d exceeds the model's context of %d", T, info.max_seq);
        int64_t n_cal = report_path ? n - n / 5 : n;
        if (!rc && ptq_calib_windows(toks, n_cal, calib_n, T, seed, &windows, &e) != PTQ_OK) rc = fail(&e);
        int hn = calib_n / 4 > 2 ? calib_n / 4 : 2;
        if (!rc && report_path &&
            ptq_calib_windows(toks + n_cal, n - n_cal, hn, T, seed + 1, &hold_windows, &e) != PTQ_OK)
            rc = fail(&e);
        data.tokens = windows;
        data.n_seqs = calib_n;
        data.seq_len = T;
        hold.tokens = hold_windows;
        hold.n_seqs = hn;
        hold.seq_len = T;
        snprintf(desc, sizeof desc, "%s, %d windows of %d tokens, seed %llu%s", calib, calib_n, T,
                 (unsigned long long)seed, report_path ? " (first 80% of the tokens)" : "");
        if (!rc) hash = ptq_hash_bytes(windows, (size_t)calib_n * T * sizeof(int), 0);
    } else {
        if (load_images(m, calib, labels, first, count, &set)) rc = 1; /* labels are optional */
        if (!rc && report_path) {
            int hn = set.count / 5;
            if (hn < 1) rc = die("--report needs at least 5 calibration images");
            else if (load_images(m, calib, labels, first + set.count - hn, hn, &hold_set)) rc = 1;
            set.count -= hn; /* the held-apart images are the last ones of the selection */
            hold.images = &hold_set;
        }
        data.images = &set;
        snprintf(desc, sizeof desc, "%s, %d images from %d", calib, set.count, first);
        if (!rc) hash = ptq_hash_bytes(set.pixels, (size_t)set.count * set.channels * set.height * set.width * 4, 0);
    }
    if (report_path) qp.holdout = &hold;
    report_state rs = {json, cJSON_CreateArray(), cJSON_CreateArray()};
    qp.cb = cb;
    qp.report = on_layer;
    qp.bc_report = on_bc;
    qp.report_user = &rs;
    qp.dist = dist;
    double t0 = now_s();
    if (!rc && !json && gguf)
        fprintf(stderr, "quantizing %s: %s into GGUF %s%s%s%s\n", path, method, ptq_gguf_ftype_name(go.ftype),
                pure ? " (pure)" : "", gguf_rtn ? "" : ", calibration: ", gguf_rtn ? "" : desc);
    else if (!rc && !json)
        fprintf(stderr, "quantizing %s: %s W%d%s%s", path, method, qp.wbits,
                qp.group > 0 ? " grouped" : qp.group ? " per-tensor" : " per-channel",
                qp.act_order ? " act-order" : "");
    if (!rc && !json && !gguf && qp.abits)
        fprintf(stderr, " A%d %s%s%s", qp.abits, act_calib, qp.act_per_token ? " per-token" : "",
                qp.noisyquant ? " +NoisyQuant" : "");
    if (!rc && !json && !gguf && qp.head_bits) fprintf(stderr, ", head %d-bit", qp.head_bits);
    if (!rc && !json && !gguf && qp.embed_bits) fprintf(stderr, ", embeddings %d-bit", qp.embed_bits);
    if (!rc && !json && !gguf) fprintf(stderr, "%s, calibration: %s\n", bc ? " +BC" : "", desc);
    if (!rc && !json && (data.tokens || data.images)) print_calib_size(m, &data, &qp);
    if (!rc && stream && writer) {
        if (ptq_model_stream_open(out_path, &ms, &e) != PTQ_OK) rc = fail(&e);
        qp.block_done = stream_block;
        qp.block_user = ms;
    }
    if (!rc && !gguf_rtn && ptq_quantize_model(m, &data, &qp, &e) != PTQ_OK) rc = fail(&e);
    double secs = now_s() - t0;
    /* a failed run writes nothing: the report is written (not yet in place) before the model is saved, and
       renamed into place after it, so no failure leaves one without the other */
    if (!rc && report_out) {
        char title[700];
        char grp[32];
        if (qp.group > 0) snprintf(grp, sizeof grp, "g%d", qp.group);
        else snprintf(grp, sizeof grp, qp.group ? "per-tensor" : "per-channel");
        snprintf(title, sizeof title, "Bias Compensation report: %s, %s W%d %s, calibration %s", path, method,
                 qp.wbits, grp, desc);
        rc = write_bc_report(&report, report_path, rs.bc, title);
    }
    ptq_save_info si = {path, desc, hash, t}; /* a language model's file carries its tokenizer */
    ptq_gguf_export_stats gs = {0};
    go.tokenizer = t;
    if (!rc && writer && gguf && ptq_gguf_export(m, out_path, &go, &gs, &e) != PTQ_OK) rc = fail(&e);
    if (!rc && writer && !gguf && !ms && ptq_model_save(m, out_path, &si, &e) != PTQ_OK) rc = fail(&e);
    if (!rc && ms && ptq_model_stream_finish(ms, m, &si, &e) != PTQ_OK) rc = fail(&e);
    if (report_out && !rc && ptq_atomic_commit(&report, &e) != PTQ_OK) rc = fail(&e);
    if (report_out && rc) ptq_atomic_abort(&report);
    if (!rc && writer) {
        long long bytes = file_size(out_path);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "output", out_path);
            cJSON_AddStringToObject(o, "method", method);
            cJSON_AddNumberToObject(o, "wbits", qp.wbits);
            cJSON_AddNumberToObject(o, "group", qp.group);
            cJSON_AddNumberToObject(o, "seconds", secs);
            cJSON_AddNumberToObject(o, "bytes", (double)bytes);
            ptq_quant_summary qs;
            summary(m, ms, &qs);
            if (gguf) cJSON_AddStringToObject(o, "type", ptq_gguf_ftype_name(go.ftype));
            cJSON_AddNumberToObject(o, "bits_per_weight", gguf ? gs.bits_per_weight : qs.bits_per_weight);
            if (qp.noisyquant) cJSON_AddNumberToObject(o, "noisy_linears", qs.noisy_linears);
            cJSON_AddItemToObject(o, "layers", rs.layers);
            rs.layers = NULL;
            char *txt = cJSON_PrintUnformatted(o);
            printf("%s\n", txt);
            free(txt);
            cJSON_Delete(o);
        } else {
            ptq_quant_summary qs;
            summary(m, ms, &qs);
            if (gguf)
                printf("wrote %s (%.2f MB) in %.1fs: GGUF %s, %.3f bits per weight over the matrices\n", out_path,
                       bytes / 1e6, secs, ptq_gguf_ftype_name(go.ftype), gs.bits_per_weight);
            else
                printf("wrote %s (%.2f MB) in %.1fs: %d layers quantized\n", out_path, bytes / 1e6, secs, qs.linears);
            if (qp.noisyquant) {
                printf("NoisyQuant: noise kept on %d of %d linears%s\n", qs.noisy_linears, qs.linears,
                       qs.noisy_linears ? "" : " (it did not clearly lower the held-out error: plain quantization)");
            }
        }
    }
    cJSON_Delete(rs.layers);
    cJSON_Delete(rs.bc);
    ptq_model_stream_free(ms);
    free(toks);
    free(windows);
    free(hold_windows);
    ptq_image_set_free(&hold_set);
    ptq_tokenizer_free(t);
    ptq_image_set_free(&set);
    ptq_model_free(m);
    return rc;
}
