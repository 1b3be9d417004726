/* A sharded set: model.safetensors.index.json, then (after FZ_SEP each) the shards
 * model-00001-of-00002.safetensors and model-00002-of-00002.safetensors, opened with ptq_st_open on the
 * index (weight_map, shard paths, tensors split over files, duplicate and missing names). */
#include <stdlib.h>

#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const shard[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    const uint8_t *part[3];
    size_t len[3];
    const int n = fz_split(data, size, part, len, 3);
    for (int i = 0; i < 2; i++)
        if (!fz_write(shard[i], i + 1 < n ? part[i + 1] : data, i + 1 < n ? len[i + 1] : 0)) return 0;
    const char *path = fz_write("model.safetensors.index.json", part[0], len[0]);
    ptq_safetensors st;
    ptq_error err;
    if (!path || ptq_st_open(path, &st, &err) != PTQ_OK) return 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const ptq_st_tensor *t = &st.tensors[i];
        if (ptq_st_find(&st, t->name) != t) abort();
        if (t->numel > 4096) continue;
        float dst[4096];
        (void)ptq_st_read_f32(&st, t->name, -1, NULL, dst, &err);
    }
    ptq_st_close(&st);
    return 0;
}
