/* A single .safetensors file: header, dtypes, shapes, offsets, __metadata__, and every tensor read as
 * float32 (ptq_st_open, ptq_st_metadata, ptq_st_find, ptq_st_read_f32). */
#include <stdlib.h>

#include "fuzz_util.h"
#include "io/safetensors.h"

#define MAX_READ ((int64_t)1 << 22) /* floats: larger tensors are only opened */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("model.safetensors", data, size);
    ptq_safetensors st;
    ptq_error err;
    if (!path || ptq_st_open(path, &st, &err) != PTQ_OK) return 0;
    (void)ptq_st_metadata(&st, "format");
    for (int i = 0; i < st.n_tensors; i++) {
        const ptq_st_tensor *t = &st.tensors[i];
        if (ptq_st_find(&st, t->name) != t) abort(); /* names are unique and sorted */
        if (t->numel > MAX_READ) continue;
        float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        if (!dst) continue;
        (void)ptq_st_read_f32(&st, t->name, t->ndim, t->shape, dst, &err);
        free(dst);
    }
    ptq_st_close(&st);
    return 0;
}
