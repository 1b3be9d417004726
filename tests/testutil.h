/* Tiny test harness shared by the C tests: checks that count failures, and sample-data lookup
 * that skips (exit 77) when a file is missing, except under CI=true where it fails. */
#ifndef PTQ_TESTUTIL_H
#define PTQ_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern int tu_failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            tu_failures++;                                                           \
        }                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                       \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                          \
            fprintf(stderr, "\n");                                                 \
            tu_failures++;                                                         \
        }                                                                          \
    } while (0)

/* |a-b| <= tol * max(1, |b|) */
int tu_close(double a, double b, double rel_tol);

/* Path of a sample data file: $PTQ_DATA (or ../shared/data beside the source tree) + "/" + rel.
 * If missing: exit 77 (skip) with a message, or exit 1 under CI=true. Returned string is static
 * storage per call site is not needed: it returns a malloc'ed string. */
char *tu_data_path(const char *rel);
/* Path of a test-only reference installed by scripts/refs.sh: $PTQ_REFS (or build-ref/ in the source tree)
 * + "/" + rel, e.g. "llama.cpp/models/ggml-vocab-llama-spm.gguf". Skips or fails like tu_data_path. */
char *tu_ref_path(const char *rel);
/* A fresh temporary directory for this test (removed by the OS's tmp cleanup). */
const char *tu_tmpdir(void);
/* Write bytes to a file; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t n);
/* The counter-based generator the numpy references in tests/ref use too: splitmix64 of x. */
uint64_t tu_splitmix64(uint64_t x);
/* dst[i] = offset + scale * u_i, u_i in [-1, 1) from the top `bits` bits of tu_splitmix64((seed << 32) + i),
 * exactly as the references' uniform fill. */
void tu_prng_fill(float *dst, size_t n, uint64_t seed, double scale, double offset, int bits);
/* Finish: prints a summary and returns the exit code. */
int tu_done(const char *name);

#endif
