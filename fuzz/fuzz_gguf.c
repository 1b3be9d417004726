/* A GGUF file: header, metadata, tensor infos (ptq_gguf_open), every value through the typed getters, every
 * tensor read as float32, the tokenizer metadata (ptq_gguf_tok_spec) and the LLaMA model builder (ptq_load_gguf). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/gguf.h"
#include "models/model.h"
#include "text/gguf_vocab.h"

#define MAX_READ ((int64_t)1 << 22) /* floats: larger tensors are only opened */

static void free_strs(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void getters(const ptq_gguf *g, const ptq_gguf_kv *kv) {
    ptq_error err;
    uint32_t u;
    int32_t i;
    float f;
    int b, n;
    char *s = NULL, **ss = NULL;
    float *fs = NULL;
    int32_t *is = NULL;
    if (ptq_gguf_find_kv(g, kv->key) != kv) abort(); /* keys are unique and sorted */
    (void)ptq_gguf_get_u32(g, kv->key, &u, &err);
    (void)ptq_gguf_get_i32(g, kv->key, &i, &err);
    (void)ptq_gguf_get_f32(g, kv->key, &f, &err);
    (void)ptq_gguf_get_bool(g, kv->key, &b, &err);
    if (ptq_gguf_get_string(g, kv->key, &s, &err) == PTQ_OK) free(s);
    if (ptq_gguf_get_strings(g, kv->key, &ss, &n, &err) == PTQ_OK) free_strs(ss, n);
    if (ptq_gguf_get_f32s(g, kv->key, &fs, &n, &err) == PTQ_OK) free(fs);
    if (ptq_gguf_get_i32s(g, kv->key, &is, &n, &err) == PTQ_OK) free(is);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("model.gguf", data, size);
    ptq_gguf g;
    ptq_error err;
    if (!path || ptq_gguf_open(path, &g, &err) != PTQ_OK) return 0;
    for (int k = 0; k < g.n_kv; k++) getters(&g, &g.kv[k]);
    for (int k = 0; k < g.n_tensors; k++) {
        const ptq_gguf_tensor *t = &g.tensors[k];
        if (ptq_gguf_find(&g, t->name) != t) abort(); /* names are unique and sorted */
        if (t->data < g.map.data || t->data + t->nbytes > g.map.data + g.map.size) abort();
        if (t->numel > MAX_READ) continue;
        float *dst = malloc((size_t)t->numel * sizeof(float));
        if (!dst) continue;
        (void)ptq_gguf_read_f32(&g, t, dst, &err);
        free(dst);
    }
    ptq_tok_spec spec;
    if (ptq_gguf_tok_spec(&g, &spec, &err) == PTQ_OK) ptq_tok_spec_free(&spec);
    ptq_gguf_close(&g);
    /* the model builder reads the file again */
    ptq_model *m = NULL;
    if (ptq_load_gguf(path, &m, &err) == PTQ_OK) ptq_model_free(m);
    return 0;
}
