#include "testutil.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tu_failures = 0;

int tu_close(double a, double b, double rel_tol) {
    double scale = fabs(b) > 1.0 ? fabs(b) : 1.0;
    return fabs(a - b) <= rel_tol * scale;
}

/* base + "/" + rel (malloc'ed); when it does not exist, skip (77) or, under CI=true, fail, saying what it is and how
 * to get it */
static char *required_path(const char *base, const char *rel, const char *what, const char *ci_hint,
                           const char *skip_hint) {
    size_t n = strlen(base) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", base, rel);
    struct stat st;
    if (stat(p, &st) != 0) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            fprintf(stderr, "FAIL: %s %s is missing (CI=true requires it; %s)\n", what, p, ci_hint);
            exit(1);
        }
        fprintf(stderr, "SKIP: %s %s is missing (%s)\n", what, p, skip_hint);
        exit(77);
    }
    return p;
}

char *tu_data_path(const char *rel) {
    const char *base = getenv("PTQ_DATA");
    if (!base || !*base) base = PTQ_DATA_DEFAULT;
    return required_path(base, rel, "sample file", "set PTQ_DATA", "set PTQ_DATA to the shared data folder");
}

char *tu_ref_path(const char *rel) {
    const char *base = getenv("PTQ_REFS");
    char def[4096];
    if (!base || !*base) {
        snprintf(def, sizeof def, "%s/build-ref", PTQ_SOURCE_DIR);
        base = def;
    }
    return required_path(base, rel, "reference", "run ./scripts/refs.sh", "run ./scripts/refs.sh, or set PTQ_REFS");
}

const char *tu_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/ptq-test-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

int tu_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

int tu_done(const char *name) {
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, tu_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

uint64_t tu_splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void tu_prng_fill(float *dst, size_t n, uint64_t seed, double scale, double offset, int bits) {
    const double half = (double)(1ull << (bits - 1));
    for (size_t i = 0; i < n; i++) {
        uint64_t m = tu_splitmix64((seed << 32) + i) >> (64 - bits);
        dst[i] = (float)(offset + ((double)m - half) / half * scale);
    }
}
