/* IDX files (the MNIST format), plain or gzip'ed, read as a stream.
 *
 * Layout: a big-endian magic 0x0000TTDD (TT = element type, DD = number of dimensions), DD big-endian
 * uint32 sizes, then the elements in row-major order. Only unsigned bytes (TT = 0x08) are supported.
 * Whether the file is gzip'ed is decided from its content (zlib reads non-gzip files transparently).
 *
 * Usage: ptq_idx_open reads and checks the header; ptq_idx_read_items copies the items [first, first+count)
 * (an item is one element of the first dimension, e.g. one image) and reads the rest of the file, failing
 * unless its length is exactly the one the header promises; ptq_idx_close releases the file.
 * A gzip'ed file must end with its last gzip member: bytes after it are an error (not ignored).
 */
#ifndef PTQ_IO_IDX_H
#define PTQ_IO_IDX_H

#include <stdint.h>

#include "ptq.h"

struct ptq_idx_stream; /* the (possibly inflating) byte reader, idx.c */

typedef struct ptq_idx_file {
    struct ptq_idx_stream *s;
    char path[4096];
    int ndims;
    int64_t dims[4];
    int64_t n_items;     /* dims[0] */
    int64_t item_bytes;  /* product of dims[1..] */
    int64_t total_bytes; /* header + n_items * item_bytes: the exact (uncompressed) file length */
} ptq_idx_file;

/* Open `path` and read its header. `ndims` is the number of dimensions expected (3 for images, 1 for
 * labels); `what` names the content for messages ("images", "labels"). */
ptq_status ptq_idx_open(const char *path, int ndims, const char *what, ptq_idx_file *f, ptq_error *err);
/* Read items [first, first+count) into *out (count * item_bytes bytes, malloc'ed: free() it; NULL when
 * count is 0). The buffer grows as data arrives, so a header promising more than the file holds fails as
 * "truncated" without allocating the promised size. Reads to the end of the file and checks its length.
 * Call at most once per open file. */
ptq_status ptq_idx_read_items(ptq_idx_file *f, int64_t first, int64_t count, uint8_t **out, ptq_error *err);
void ptq_idx_close(ptq_idx_file *f);

#endif
