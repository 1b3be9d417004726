/* IDX images and labels (plain or gzip'ed) for a 28x28 grey 10-class model, through ptq_images_load_idx.
 * Input: one flags byte, the images file, FZ_SEP, the labels file. Flags: bit 0 / bit 1 gzip the images /
 * labels here (so mutations of the plain bytes reach the gzip path too; a file that is already gzip'ed
 * is read as it is), bits 2-3 select [first, first + count). */
#include <zlib.h>

#include "fuzz_util.h"

/* Write data to name, gzip'ed when gz; returns the path or NULL. */
static const char *write_maybe_gz(const char *name, const uint8_t *data, size_t n, int gz) {
    const char *path = gz ? fz_path(name) : fz_write(name, data, n);
    if (!gz || !path) return path;
    gzFile f = gzopen(path, "wb1");
    if (!f) return NULL;
    const int ok = n == 0 || gzwrite(f, data, (unsigned)n) == (int)n;
    return gzclose(f) == Z_OK && ok ? path : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ptq_model *vit;
    if (!vit) vit = fz_vit(28, 1, 10);
    if (size < 1 || size > (1u << 24)) return 0;
    const int flags = data[0];
    const uint8_t *part[2];
    size_t len[2];
    const int n = fz_split(data + 1, size - 1, part, len, 2);
    const char *images = write_maybe_gz("images.idx", part[0], len[0], flags & 1);
    const char *labels = n > 1 ? write_maybe_gz("labels.idx", part[1], len[1], flags & 2) : NULL;
    if (!images || !labels) return 0;
    static const int first[4] = {0, 0, 1, 3}, count[4] = {0, 1, 2, 0};
    ptq_image_set set;
    ptq_error err;
    if (ptq_images_load_idx(vit, images, labels, first[(flags >> 2) & 3], count[(flags >> 2) & 3], &set, &err) == PTQ_OK)
        ptq_image_set_free(&set);
    return 0;
}
