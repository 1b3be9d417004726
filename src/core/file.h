/* Whole-file reads, read-only memory maps, and atomic writes (temporary file renamed into place). */
#ifndef PTQ_CORE_FILE_H
#define PTQ_CORE_FILE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "ptq.h"

typedef struct ptq_mmap {
    const unsigned char *data;
    size_t size;
} ptq_mmap;

ptq_status ptq_mmap_open(const char *path, ptq_mmap *out, ptq_error *err);
void ptq_mmap_close(ptq_mmap *m);
/* Drops the pages of [p, p + n) inside a read-only file mapping from this process's resident set (they stay in
 * the page cache and read back on the next access): after a streamed tensor was converted. Best effort. */
void ptq_mmap_drop(const void *p, size_t n);

/* Read a whole file into a NUL-terminated malloc'ed buffer. */
ptq_status ptq_read_file(const char *path, char **data, size_t *size, ptq_error *err);
int ptq_is_dir(const char *path);
int ptq_file_exists(const char *path);

/* Checks, before any work, that `path` may be written as an output: its folder exists and is writable, and
 * `path` is not a folder, not a device, FIFO or socket, and not the same file (device and inode, so also through
 * a symlink, a hard link or another spelling) as any of the n `inputs` (inputs that do not exist are skipped).
 * `what` names the option in the message ("-o", "--report"). */
ptq_status ptq_check_output(const char *what, const char *path, const char *const *inputs, int n, ptq_error *err);
/* 1 when a and b name the same file: the same inode if both exist, else the same folder and name. */
int ptq_same_path(const char *a, const char *b);

/* Atomic writer: writes go to the temporary file "<path>.ptq-tmp.<pid>" (created exclusively, so a link planted
 * there is not followed), ptq_atomic_commit renames it to path, ptq_atomic_abort removes it. Neither replaces
 * anything but a regular file (a device, FIFO, socket or folder at path is refused). A process killed with
 * SIGKILL leaves the temporary file behind under that recognisable name. */
typedef struct ptq_atomic_file {
    FILE *f;
    char path[4096];
    char tmp[4200];
} ptq_atomic_file;
/* The temporary name ptq_atomic_open uses for path (for a caller that removes it on a signal);
 * returns 0 when it does not fit in size bytes. */
int ptq_atomic_tmp_name(const char *path, char *buf, size_t size);
ptq_status ptq_atomic_open(ptq_atomic_file *af, const char *path, ptq_error *err);
ptq_status ptq_atomic_write(ptq_atomic_file *af, const void *data, size_t size, ptq_error *err);
/* Flushes the data to disk and closes the temporary file without renaming it yet (then commit renames). */
ptq_status ptq_atomic_finish(ptq_atomic_file *af, ptq_error *err);
ptq_status ptq_atomic_commit(ptq_atomic_file *af, ptq_error *err);
void ptq_atomic_abort(ptq_atomic_file *af);

/* A scratch file for data that must wait on disk until an output is assembled (streaming writers): created
 * exclusively in the folder of `near` ("<near>.ptq-spill.<pid>") and unlinked at once, so it vanishes when
 * closed, even after a crash. Returns its descriptor (read-write) in *fd. */
ptq_status ptq_spill_open(const char *near, int *fd, ptq_error *err);
/* Append / read back size bytes at offset off; errors name `what` (the output the data is for). */
ptq_status ptq_spill_write(int fd, const char *what, const void *data, size_t size, ptq_error *err);
ptq_status ptq_spill_read(int fd, const char *what, uint64_t off, void *data, size_t size, ptq_error *err);

#endif
