/* Whole-file reads, read-only memory maps, and atomic writes (temporary file renamed into place). */
#ifndef PTQ_CORE_FILE_H
#define PTQ_CORE_FILE_H
#include <stddef.h>
#include <stdio.h>
#include "ptq.h"

typedef struct ptq_mmap {
    const unsigned char *data;
    size_t size;
} ptq_mmap;

ptq_status ptq_mmap_open(const char *path, ptq_mmap *out, ptq_error *err);
void ptq_mmap_close(ptq_mmap *m);

/* Read a whole file into a NUL-terminated malloc'ed buffer. */
ptq_status ptq_read_file(const char *path, char **data, size_t *size, ptq_error *err);
int ptq_is_dir(const char *path);
int ptq_file_exists(const char *path);

/* Atomic writer: writes go to "<path>.tmp.<pid>", ptq_atomic_commit renames it to path,
 * ptq_atomic_abort removes it. */
typedef struct ptq_atomic_file {
    FILE *f;
    char path[4096];
    char tmp[4200];
} ptq_atomic_file;
ptq_status ptq_atomic_open(ptq_atomic_file *af, const char *path, ptq_error *err);
ptq_status ptq_atomic_write(ptq_atomic_file *af, const void *data, size_t size, ptq_error *err);
ptq_status ptq_atomic_commit(ptq_atomic_file *af, ptq_error *err);
void ptq_atomic_abort(ptq_atomic_file *af);

#endif
