/* A ptq quantized model (.ptq: safetensors with the quantized weights and a ptq.config), through the whole
 * ptq_model_load path. Input: one flags byte, then the file. Bit 0 of the flags is reserved for the
 * checksum verification of .ptq files: once the loader can skip it for trusted files, half the inputs load
 * without it so that mutations reach the checks behind it. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int verify = data[0] & 1;
    (void)verify;
    const char *path = fz_write("model.ptq", data + 1, size - 1);
    ptq_model *m = NULL;
    ptq_error err;
    /* The one line to change when checksums land: load with verification on (verify 1) or off (0). */
    if (path && ptq_model_load(path, &m, &err) == PTQ_OK) {
        ptq_model_info info;
        ptq_model_get_info(m, &info);
        ptq_model_free(m);
    }
    return 0;
}
