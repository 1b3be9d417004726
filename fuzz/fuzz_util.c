/* Helpers of the fuzz harnesses (see fuzz_util.h). */
#define _GNU_SOURCE /* memmem */
#include "fuzz_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/model.h"

static char g_dir[512];

/* Remove the folder and everything in it (at most one level of subfolders). */
static void remove_tree(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0 && depth < 2) remove_tree(p, depth + 1);
    }
    closedir(d);
    rmdir(dir);
}

static void cleanup(void) { remove_tree(g_dir, 0); }

static const char *dir(void) {
    if (!g_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/ptq-fuzz-XXXXXX", tmp && strlen(tmp) < 400 ? tmp : "/tmp");
        if (!mkdtemp(g_dir)) abort();
        atexit(cleanup);
    }
    return g_dir;
}

const char *fz_path(const char *name) {
    static char slot[8][1024];
    static int k;
    char *p = slot[k++ % 8];
    snprintf(p, 1024, "%s/%s", dir(), name);
    const char *slash = strchr(name, '/');
    if (slash) {
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%.*s", dir(), (int)(slash - name), name);
        mkdir(sub, 0700);
    }
    return p;
}

const char *fz_write(const char *name, const void *data, size_t n) {
    const char *p = fz_path(name);
    FILE *f = fopen(p, "wb");
    if (!f) return NULL;
    const int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok ? p : NULL;
}

int fz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, int max) {
    const size_t sl = strlen(FZ_SEP);
    int n = 0;
    while (n < max - 1) {
        const uint8_t *s = memmem(data, size, FZ_SEP, sl);
        if (!s) break;
        part[n] = data;
        len[n++] = (size_t)(s - data);
        size -= (size_t)(s - data) + sl;
        data = s + sl;
    }
    part[n] = data;
    len[n++] = size;
    return n;
}

ptq_model *fz_vit(int img_size, int in_chans, int classes) {
    ptq_model *m = ptq_model_new("fuzz-vit", NULL);
    if (!m) abort();
    m->cfg.arch = PTQ_ARCH_VIT;
    m->cfg.img_size = img_size;
    m->cfg.in_chans = in_chans;
    m->cfg.vocab_size = classes;
    for (int c = 0; c < 3; c++) {
        m->cfg.mean[c] = 0.5f;
        m->cfg.std[c] = 0.25f;
    }
    m->cfg.crop_pct = 0.875f;
    return m;
}
