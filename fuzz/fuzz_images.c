/* One image file (PNG, JPEG, BMP, GIF, ... as stb_image decodes them) through ptq_images_load_folder:
 * decode, resize, centre crop, normalise. Input: one flags byte, then the file. Flags choose the model's
 * geometry: bit 0 grey or RGB, bits 1-2 img_size 1, 7, 28 or 64. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ptq_model *vit[8];
    static const int sizes[4] = {1, 7, 28, 64};
    static const char labels_text[] = "# file label\nimage.bin 3\n";
    if (size < 1) return 0;
    const int flags = data[0] & 7;
    if (!vit[flags]) vit[flags] = fz_vit(sizes[flags >> 1], flags & 1 ? 3 : 1, 10);
    const char *labels = fz_write("img/labels.txt", labels_text, sizeof labels_text - 1);
    if (!labels || !fz_write("img/image.bin", data + 1, size - 1)) return 0;
    ptq_image_set set;
    ptq_error err;
    if (ptq_images_load_folder(vit[flags], NULL, labels, 0, 0, &set, &err) == PTQ_OK) ptq_image_set_free(&set);
    return 0;
}
