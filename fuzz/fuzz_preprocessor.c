/* A Hugging Face preprocessor_config.json, and optionally an image it is applied to: the config parser
 * (ptq_preprocess_load), its .ptq form read back (ptq_preprocess_to_json), and the pipeline (PIL resize with
 * any filter, centre crop / padding, rescale, normalise) through ptq_images_load_folder. Input: one flags
 * byte (bit 0 grey or RGB, bits 1-2 img_size 1, 7, 28 or 64), the JSON, then after FZ_SEP the image file. */
#include <cjson/cJSON.h> /* the build gives harnesses no cJSON include path */
#include <string.h>

#include "fuzz_util.h"
#include "io/preprocess.h"
#include "models/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ptq_model *vit[8];
    static const int sizes[4] = {1, 7, 28, 64};
    static const char labels_text[] = "image.bin 3\n";
    if (size < 1) return 0;
    const int flags = data[0] & 7, channels = flags & 1 ? 3 : 1;
    if (!vit[flags]) vit[flags] = fz_vit(sizes[flags >> 1], channels, 10);
    const uint8_t *part[2];
    size_t len[2];
    const int n = fz_split(data + 1, size - 1, part, len, 2);
    const char *json = fz_write("pp/preprocessor_config.json", part[0], len[0]);
    if (!json || !vit[flags]) return 0;
    ptq_preprocess p, back;
    ptq_error err;
    if (ptq_preprocess_load(json, channels, sizes[flags >> 1], &p, &err) != PTQ_OK) return 0;
    cJSON *o = ptq_preprocess_to_json(&p, channels);
    if (o && (ptq_preprocess_parse(o, "round trip", channels, sizes[flags >> 1], &back, &err) != PTQ_OK ||
              memcmp(&p, &back, sizeof p) != 0))
        __builtin_trap(); /* the .ptq form must read back to the same pipeline */
    cJSON_Delete(o);
    /* a valid config may ask for huge intermediate images; keep each run quick */
    if (n < 2 || (int64_t)p.height * p.width > (1 << 18) || p.shortest_edge > 512) return 0;
    vit[flags]->cfg.prep = p;
    const char *labels = fz_write("pp/labels.txt", labels_text, sizeof labels_text - 1);
    if (!labels || !fz_write("pp/image.bin", part[1], len[1])) return 0;
    ptq_image_set set;
    if (ptq_images_load_folder(vit[flags], NULL, labels, 0, 0, &set, &err) == PTQ_OK) ptq_image_set_free(&set);
    return 0;
}
