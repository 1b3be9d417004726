/* What verifying the .ptq checksums costs at load time. Writes a synthetic LLaMA-shaped model (random
 * weights, ~330 MB as float .ptq; --quick: ~20 MB) and its 4-bit RTN form to a temporary folder, then
 * times ptq_model_load_ex with and without verification (best of 5, files in the page cache), and the
 * single-thread CRC-32C throughput of the table reference, the SSE4.2 path and zlib's crc32. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "bench_common.h"
#include "core/crc32c.h"
#include "core/file.h"
#include "ptq.h"

static bench_results g_res;

static int die(const char *what, const ptq_error *e) {
    fprintf(stderr, "bench_load: %s: %s\n", what, e ? e->msg : "failed");
    return 1;
}

/* A llama2.c checkpoint with uniform random weights of scale 0.02 (norm weights 1). */
static int write_checkpoint(const char *path, int dim, int hidden, int L, int heads, int vocab, int seq) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int32_t h[7] = {dim, hidden, L, heads, heads, vocab, seq};
    fwrite(h, sizeof h, 1, f);
    size_t chunk = 1 << 20;
    float *buf = malloc(chunk * sizeof *buf);
    uint64_t s = 1;
    /* tok_emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, RoPE tables */
    size_t hs = (size_t)dim / heads;
    size_t parts[][2] = {{(size_t)vocab * dim, 0}, {(size_t)L * dim, 1},         {(size_t)L * dim * dim * 4, 0},
                         {(size_t)L * dim, 1},     {(size_t)L * hidden * dim * 3, 0}, {(size_t)dim, 1},
                         {(size_t)seq * hs, 0}};
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
        for (size_t done = 0; done < parts[p][0];) {
            size_t n = parts[p][0] - done < chunk ? parts[p][0] - done : chunk;
            for (size_t i = 0; i < n; i++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                buf[i] = parts[p][1] ? 1.0f : 0.02f * ((float)(s >> 40) / (float)(1 << 24) - 0.5f);
            }
            fwrite(buf, sizeof *buf, n, f);
            done += n;
        }
    free(buf);
    return fclose(f) == 0 ? 0 : -1;
}

static double best_load_s(const char *path, int verify, int reps) {
    ptq_load_options o = ptq_load_default_options();
    o.verify_checksums = verify;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        ptq_model *m = NULL;
        ptq_error e;
        double t0 = now_s();
        if (ptq_model_load_ex(path, &o, &m, &e) != PTQ_OK) {
            die(path, &e);
            return NAN;
        }
        double t = now_s() - t0;
        ptq_model_free(m);
        if (t < best) best = t;
    }
    return best;
}

static double file_mb(const char *path) {
    ptq_mmap m;
    ptq_error e;
    if (ptq_mmap_open(path, &m, &e) != PTQ_OK) return NAN;
    double mb = (double)m.size / 1e6;
    ptq_mmap_close(&m);
    return mb;
}

static double crc_gbs(int which, const unsigned char *data, size_t n) {
    double best = 1e30;
    volatile uint32_t sink = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        uint32_t c = which == 0 ? ptq_crc32c_sw(0, data, n)
                     : which == 1 ? ptq_crc32c_hw(0, data, n, NULL)
                                  : (uint32_t)crc32(0, data, (uInt)n);
        double t = now_s() - t0;
        sink ^= c;
        if (t < best) best = t;
    }
    (void)sink;
    return (double)n / best / 1e9;
}

int main(int argc, char **argv) {
    int json, quick;
    if (bench_flags(argc, argv, "bench_load", &json, &quick)) return 2;
    FILE *out = json ? stderr : stdout;
    char dir[] = "/tmp/ptq-bench-load-XXXXXX";
    if (!mkdtemp(dir)) return die("mkdtemp", NULL);
    char ckpt[256], fptq[256], qptq[256];
    snprintf(ckpt, sizeof ckpt, "%s/model.bin", dir);
    snprintf(fptq, sizeof fptq, "%s/float.ptq", dir);
    snprintf(qptq, sizeof qptq, "%s/w4.ptq", dir);
    int dim = quick ? 256 : 768, hidden = quick ? 704 : 2048, L = quick ? 4 : 8, vocab = quick ? 4096 : 32000;
    fprintf(stderr, "writing a synthetic model (dim %d, hidden %d, %d layers, vocab %d) to %s\n", dim, hidden, L, vocab,
            dir);
    if (write_checkpoint(ckpt, dim, hidden, L, dim / 64, vocab, 256) != 0) return die(ckpt, NULL);
    ptq_error e;
    ptq_model *m;
    if (ptq_model_load(ckpt, &m, &e) != PTQ_OK) return die(ckpt, &e);
    if (ptq_model_save(m, fptq, NULL, &e) != PTQ_OK) return die(fptq, &e);
    int toks[64];
    for (int i = 0; i < 64; i++) toks[i] = (i * 7919) % vocab;
    ptq_calib_data d = {toks, 1, 64, NULL};
    ptq_quant_params p = ptq_quant_default_params();
    p.wbits = 4;
    p.group = 128;
    p.method = PTQ_WQ_RTN;
    if (ptq_quantize_model(m, &d, &p, &e) != PTQ_OK) return die("quantize", &e);
    if (ptq_model_save(m, qptq, NULL, &e) != PTQ_OK) return die(qptq, &e);
    ptq_model_free(m);
    remove(ckpt);

    fprintf(out, "%-10s %9s %14s %14s %9s\n", "file", "MB", "verify (ms)", "skip (ms)", "cost");
    const char *files[2] = {fptq, qptq}, *names[2] = {"float", "w4g128"};
    for (int i = 0; i < 2; i++) {
        best_load_s(files[i], 1, 1); /* into the page cache */
        double on = best_load_s(files[i], 1, 5), off = best_load_s(files[i], 0, 5), mb = file_mb(files[i]);
        fprintf(out, "%-10s %9.1f %14.1f %14.1f %8.1f%%\n", names[i], mb, 1e3 * on, 1e3 * off, 100 * (on - off) / off);
        char key[96];
        snprintf(key, sizeof key, "%s.mb", names[i]);
        bench_rec(&g_res, key, mb);
        snprintf(key, sizeof key, "%s.load_verify_ms", names[i]);
        bench_rec(&g_res, key, 1e3 * on);
        snprintf(key, sizeof key, "%s.load_skip_ms", names[i]);
        bench_rec(&g_res, key, 1e3 * off);
    }
    size_t n = (size_t)256 << 20;
    unsigned char *buf = malloc(n);
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    const char *cname[3] = {"crc32c_table", "crc32c_sse42", "zlib_crc32"};
    fprintf(out, "\nsingle-thread checksum throughput over 256 MiB:\n");
    for (int c = 0; c < 3; c++) {
        double g = crc_gbs(c, buf, n);
        fprintf(out, "  %-14s %6.2f GB/s\n", cname[c], g);
        char key[96];
        snprintf(key, sizeof key, "%s_gbs", cname[c]);
        bench_rec(&g_res, key, g);
    }
    free(buf);
    remove(fptq);
    remove(qptq);
    rmdir(dir);
    fprintf(out, "load average %.2f\n", loadavg());
    if (json) bench_print_json(&g_res, stdout);
    return 0;
}
