/* Shared by the libFuzzer harnesses (see docs/FUZZING.md). Most loaders take paths: each process writes
 * its inputs into a private temporary folder (created on first use, removed at exit) and calls the
 * loader on them. Nothing here prints. */
#ifndef PTQ_FUZZ_UTIL_H
#define PTQ_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "ptq.h"

/* The separator that splits one input into several files (vocab.json / merges.txt, index / shards). */
#define FZ_SEP "\n#ptq-fuzz-split#\n"

/* Path of `name` inside the process's folder (`name` may hold one subfolder, created on first use).
 * Valid until the next fz_path or fz_write call with the same slot (eight slots in rotation). */
const char *fz_path(const char *name);
/* Write n bytes to `name` in the folder; returns its path (as fz_path), or NULL on failure. */
const char *fz_write(const char *name, const void *data, size_t n);
/* Split data at each FZ_SEP into at most max parts; returns how many (at least 1). */
int fz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, int max);
/* A configuration-only ViT (no weights) for the image readers, which only look at its geometry. */
ptq_model *fz_vit(int img_size, int in_chans, int classes);

#endif
