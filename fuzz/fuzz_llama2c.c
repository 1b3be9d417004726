/* A llama2.c checkpoint (header of seven int32, then the float32 weights), loaded with the llama2.c reader
 * behind ptq_model_load (called directly, so that no input is sniffed as another format). */
#include "fuzz_util.h"
#include "models/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("model.bin", data, size);
    ptq_model *m = NULL;
    ptq_error err;
    if (path && ptq_load_llama2c(path, &m, &err) == PTQ_OK) ptq_model_free(m);
    return 0;
}
