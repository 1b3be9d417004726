/* A ptq quantized model (.ptq: safetensors with the quantized weights and a ptq.config), through the whole
 * ptq_model_load path. Input: one flags byte, then the file. Bit 0 of the flags turns the checksum
 * verification on; with it off (the trusted-file option), mutations reach the checks behind the CRCs. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    ptq_load_options opt = ptq_load_default_options();
    opt.verify_checksums = data[0] & 1;
    const char *path = fz_write("model.ptq", data + 1, size - 1);
    ptq_model *m = NULL;
    ptq_error err;
    if (path && ptq_model_load_ex(path, &opt, &m, &err) == PTQ_OK) {
        ptq_model_info info;
        ptq_model_get_info(m, &info);
        ptq_model_free(m);
    }
    return 0;
}
