/* A Hugging Face / timm model folder: config.json, then after FZ_SEP its model.safetensors, loaded with
 * ptq_model_load on the folder (every model family's config parsing, tensor names, shapes, dtypes). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    const int n = fz_split(data, size, part, len, 2);
    if (!fz_write("hf/config.json", part[0], len[0]) ||
        !fz_write("hf/model.safetensors", n > 1 ? part[1] : data, n > 1 ? len[1] : 0))
        return 0;
    ptq_model *m = NULL;
    ptq_error err;
    if (ptq_model_load(fz_path("hf"), &m, &err) == PTQ_OK) {
        ptq_model_info info;
        ptq_model_get_info(m, &info);
        ptq_model_free(m);
    }
    return 0;
}
