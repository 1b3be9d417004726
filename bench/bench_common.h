/* Helpers shared by the benchmarks: a monotonic clock, the load average (to flag a busy machine), and
 * the numbers a benchmark records as it goes, printed at the end as one JSON object (--json). */
#ifndef PTQ_BENCH_COMMON_H
#define PTQ_BENCH_COMMON_H

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static inline double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The 1-minute load average, NaN where /proc/loadavg cannot be read. */
static inline double loadavg(void) {
    double l = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = NAN;
        fclose(f);
    }
    return l;
}

/* The flags of a benchmark that takes only --json and --quick: 0, or 2 after printing the usage. */
static inline int bench_flags(int argc, char **argv, const char *name, int *json, int *quick) {
    *json = *quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) *json = 1;
        else if (strcmp(argv[i], "--quick") == 0) *quick = 1;
        else {
            fprintf(stderr, "usage: %s [--json] [--quick]\n", name);
            return 2;
        }
    }
    return 0;
}

enum { BENCH_MAX_RESULTS = 256 };
typedef struct {
    int n;
    struct {
        char key[96];
        double value;
    } r[BENCH_MAX_RESULTS];
} bench_results;

static inline void bench_rec(bench_results *b, const char *key, double v) {
    if (b->n < BENCH_MAX_RESULTS) {
        snprintf(b->r[b->n].key, sizeof b->r[b->n].key, "%s", key);
        b->r[b->n++].value = v;
    }
}

/* {"key": value, ...}; a value that is not finite is written as null. */
static inline void bench_print_json(const bench_results *b, FILE *f) {
    fprintf(f, "{");
    for (int i = 0; i < b->n; i++) {
        fprintf(f, "%s\n  \"%s\": ", i ? "," : "", b->r[i].key);
        if (isfinite(b->r[i].value)) fprintf(f, "%.6g", b->r[i].value);
        else fprintf(f, "null");
    }
    fprintf(f, "\n}\n");
}

#endif
