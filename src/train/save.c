/* Saving a tuned model in its input's own format, so it loads wherever the original did:
 * Hugging Face / timm safetensors with the source's tensor names, layouts and config.json, or a llama2.c .bin. */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "train/train.h"

/* ---------------------------------------------------------------- source paths */

static ptq_status dir_of(const char *path, char *dir, size_t size, ptq_error *err) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (!slash) {
        snprintf(dir, size, ".");
        return PTQ_OK;
    }
    if (n == 0) n = 1;
    if (n >= size) return ptq_fail(err, PTQ_ERR_ARG, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = 0;
    return PTQ_OK;
}

static ptq_status joinp(char *dst, size_t size, const char *dir, const char *file, ptq_error *err) {
    int n = snprintf(dst, size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= size) return ptq_fail(err, PTQ_ERR_ARG, "%s/%s: path too long", dir, file);
    return PTQ_OK;
}

/* 1 when path is a JSON object without "weight_map" (a config.json, not a safetensors index). */
static int is_config_json(const char *path) {
    cJSON *root = NULL;
    ptq_error e;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int c;
    do c = fgetc(f);
    while (c == ' ' || c == '\n' || c == '\r' || c == '\t');
    fclose(f);
    if (c != '{' || ptq_json_load(path, &root, &e) != PTQ_OK) return 0;
    int r = cJSON_IsObject(root) && !cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    cJSON_Delete(root);
    return r;
}

static ptq_status find_weights(const char *dir, char *weights, size_t size, ptq_error *err) {
    PTQ_TRY(joinp(weights, size, dir, "model.safetensors", err));
    if (ptq_file_exists(weights)) return PTQ_OK;
    PTQ_TRY(joinp(weights, size, dir, "model.safetensors.index.json", err));
    if (ptq_file_exists(weights)) return PTQ_OK;
    return ptq_fail(err, PTQ_ERR_IO, "%s: folder holds neither model.safetensors nor model.safetensors.index.json", dir);
}

ptq_status ptq_train_source_paths(const char *model_path, char *weights, size_t wsize, char *config, size_t csize,
                                  ptq_error *err) {
    char dir[4096];
    if (ptq_is_dir(model_path)) {
        size_t n = strlen(model_path);
        while (n > 1 && model_path[n - 1] == '/') n--;
        if (n >= sizeof dir) return ptq_fail(err, PTQ_ERR_ARG, "%s: path too long", model_path);
        memcpy(dir, model_path, n);
        dir[n] = 0;
        PTQ_TRY(find_weights(dir, weights, wsize, err));
    } else {
        PTQ_TRY(dir_of(model_path, dir, sizeof dir, err));
        if (is_config_json(model_path)) {
            PTQ_TRY(find_weights(dir, weights, wsize, err));
        } else {
            if (strlen(model_path) >= wsize) return ptq_fail(err, PTQ_ERR_ARG, "%s: path too long", model_path);
            strcpy(weights, model_path);
        }
    }
    return joinp(config, csize, dir, "config.json", err);
}

/* ---------------------------------------------------------------- safetensors */

static ptq_status make_dir(const char *path, ptq_error *err) {
    if (mkdir(path, 0755) == 0 || (errno == EEXIST && ptq_is_dir(path))) return PTQ_OK;
    return ptq_fail(err, PTQ_ERR_IO, "%s: cannot create the output folder (%s)", path, strerror(errno));
}

static ptq_status add_param(ptq_st_writer *w, const ptq_param *p, const char *name, int ndim, const int64_t *shape,
                            ptq_error *err) {
    if (!p->transposed) return ptq_st_writer_add_f32(w, name, PTQ_DT_F32, ndim, shape, p->w, err);
    /* GPT-2 Conv1D: w is [out][in], stored [in][out] */
    int64_t in = p->shape[0], out = p->shape[1];
    float *tmp = ptq_alloc(p->n, sizeof(float), name, err);
    if (!tmp) return PTQ_ERR_NOMEM;
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) tmp[i * out + o] = p->w[o * in + i];
    ptq_status s = ptq_st_writer_add_f32(w, name, PTQ_DT_F32, ndim, shape, tmp, err);
    ptq_free(tmp);
    return s;
}

static ptq_status write_config(const char *src_config, const char *out_dir, ptq_error *err) {
    cJSON *root = NULL;
    PTQ_TRY(ptq_json_load(src_config, &root, err));
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: expected a JSON object", src_config);
    }
    /* the weights are float32 now */
    if (cJSON_GetObjectItemCaseSensitive(root, "torch_dtype"))
        cJSON_ReplaceItemInObjectCaseSensitive(root, "torch_dtype", cJSON_CreateString("float32"));
    if (cJSON_GetObjectItemCaseSensitive(root, "dtype"))
        cJSON_ReplaceItemInObjectCaseSensitive(root, "dtype", cJSON_CreateString("float32"));
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot serialise config.json");
    char path[4200];
    ptq_status s = joinp(path, sizeof path, out_dir, "config.json", err);
    ptq_atomic_file af;
    if (s == PTQ_OK) s = ptq_atomic_open(&af, path, err);
    if (s == PTQ_OK) {
        s = ptq_atomic_write(&af, txt, strlen(txt), err);
        if (s == PTQ_OK) s = ptq_atomic_write(&af, "\n", 1, err);
        if (s == PTQ_OK) s = ptq_atomic_commit(&af, err);
        else ptq_atomic_abort(&af);
    }
    free(txt);
    return s;
}

static ptq_status copy_file(const char *src, const char *dst, ptq_error *err) {
    char *buf;
    size_t n;
    PTQ_TRY(ptq_read_file(src, &buf, &n, err));
    ptq_atomic_file af;
    ptq_status s = ptq_atomic_open(&af, dst, err);
    if (s == PTQ_OK) {
        s = ptq_atomic_write(&af, buf, n, err);
        if (s == PTQ_OK) s = ptq_atomic_commit(&af, err);
        else ptq_atomic_abort(&af);
    }
    free(buf);
    return s;
}

/* Tokenizer and processor files beside the source go along, so `ptq eval OUT` finds them. */
static ptq_status copy_side_files(const char *src_config, const char *out_dir, int vocab, ptq_error *err) {
    char sdir[4096], tokn[32];
    PTQ_TRY(dir_of(src_config, sdir, sizeof sdir, err));
    snprintf(tokn, sizeof tokn, "tok%d.bin", vocab);
    const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                           "merges.txt", "tokenizer.model", "tokenizer.bin", tokn, "generation_config.json",
                           "preprocessor_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char s[4200], d[4200];
        PTQ_TRY(joinp(s, sizeof s, sdir, files[i], err));
        PTQ_TRY(joinp(d, sizeof d, out_dir, files[i], err));
        if (!ptq_file_exists(s)) continue;
        struct stat a, b;
        if (stat(s, &a) == 0 && stat(d, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
        PTQ_TRY(copy_file(s, d, err));
    }
    return PTQ_OK;
}

static ptq_status save_safetensors(const ptq_model *m, const char *src_weights, const char *src_config,
                                   const char *out_dir, const char *note, ptq_error *err) {
    if (!src_config) return ptq_fail(err, PTQ_ERR_ARG, "saving %s: no config.json to copy", m->path);
    PTQ_TRY(make_dir(out_dir, err));
    ptq_trainable t;
    PTQ_TRY(ptq_trainable_names(m, &t, err));
    ptq_st_writer *w = NULL;
    ptq_safetensors st;
    memset(&st, 0, sizeof st);
    int have_src = 0;
    char *written = calloc((size_t)t.n, 1);
    ptq_status s = written ? ptq_st_writer_new(&w, err) : ptq_fail(err, PTQ_ERR_NOMEM, "out of memory");
    if (s == PTQ_OK && src_weights) {
        s = ptq_st_open(src_weights, &st, err);
        have_src = s == PTQ_OK;
    }
    const int tied = m->head.w && m->head.w == m->tok_emb;
    char head_name[160];
    snprintf(head_name, sizeof head_name, "%s.weight", m->head.name);
    if (s == PTQ_OK && have_src) {
        for (int i = 0; s == PTQ_OK && i < st.n_tensors; i++) {
            const ptq_st_tensor *x = &st.tensors[i];
            int k = ptq_trainable_find(&t, x->name);
            if (k < 0 && tied && !strcmp(x->name, head_name)) {
                /* a stored copy of a tied head: keep it equal to the tuned embedding */
                for (int j = 0; j < t.n; j++)
                    if (t.p[j].w == m->tok_emb) k = j;
            }
            if (k >= 0) {
                if ((size_t)x->numel != t.p[k].n) {
                    s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor '%s' has %lld elements; the model's has %zu", src_weights,
                                 x->name, (long long)x->numel, t.p[k].n);
                    break;
                }
                s = add_param(w, &t.p[k], x->name, x->ndim, x->shape, err);
                written[k] = 1;
            } else {
                s = ptq_st_writer_add_ref(w, x->name, x->dtype, x->ndim, x->shape, x->data, x->nbytes, err);
            }
        }
        for (int k = 0; s == PTQ_OK && k < t.n; k++)
            if (!written[k])
                s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: the trained tensor '%s' is not in the source file", src_weights,
                             t.p[k].name);
        for (int i = 0; s == PTQ_OK && i < st.n_meta; i++)
            s = ptq_st_writer_set_metadata(w, st.meta_keys[i], st.meta_values[i], err);
    } else if (s == PTQ_OK) {
        for (int k = 0; s == PTQ_OK && k < t.n; k++) s = add_param(w, &t.p[k], t.p[k].name, t.p[k].ndim, t.p[k].shape, err);
    }
    if (s == PTQ_OK && !(have_src && ptq_st_metadata(&st, "format")))
        s = ptq_st_writer_set_metadata(w, "format", "pt", err);
    if (s == PTQ_OK && note) s = ptq_st_writer_set_metadata(w, "ptq_tune", note, err);
    char path[4200];
    if (s == PTQ_OK) s = joinp(path, sizeof path, out_dir, "model.safetensors", err);
    if (s == PTQ_OK) s = ptq_st_writer_save(w, path, err);
    ptq_st_writer_free(w);
    if (have_src) ptq_st_close(&st);
    free(written);
    ptq_trainable_free(&t);
    if (s == PTQ_OK) s = write_config(src_config, out_dir, err);
    if (s == PTQ_OK) s = copy_side_files(src_config, out_dir, m->cfg.vocab_size, err);
    return s;
}

/* ---------------------------------------------------------------- llama2.c */

static ptq_status save_llama2c(const ptq_model *m, const char *src, const char *out, ptq_error *err) {
    const ptq_config *c = &m->cfg;
    ptq_mmap map;
    PTQ_TRY(ptq_mmap_open(src, &map, err));
    int32_t h[7];
    ptq_status s = PTQ_OK;
    if (map.size < 28) s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: not a llama2.c checkpoint", src);
    else memcpy(h, map.data, sizeof h);
    int L = c->n_layers, D = c->dim, F = c->hidden_dim, kvd = c->n_kv_heads * c->head_dim, V = c->vocab_size;
    if (s == PTQ_OK && (h[0] != D || h[1] != F || h[2] != L || h[3] != c->n_heads || h[4] != c->n_kv_heads ||
                        (h[5] < 0 ? -h[5] : h[5]) != V || h[6] != c->max_seq))
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: its header does not describe the model being saved", src);
    int shared = h[5] > 0;
    size_t rope_off = 28 + 4 * ((size_t)V * D + (size_t)L * (2 * (size_t)D + 2 * (size_t)D * D + 2 * (size_t)kvd * D +
                                                             3 * (size_t)F * D) +
                                (size_t)D);
    size_t rope_n = (size_t)c->max_seq * c->head_dim * sizeof(float);
    if (s == PTQ_OK && rope_off + rope_n > map.size) s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: truncated", src);
    if (s == PTQ_OK && shared != (m->head.w == m->tok_emb))
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: classifier sharing differs from the model", src);
    ptq_atomic_file af;
    if (s == PTQ_OK) s = ptq_atomic_open(&af, out, err);
    if (s != PTQ_OK) {
        ptq_mmap_close(&map);
        return s;
    }
#define W(ptr, nfl)                                                                            \
    do {                                                                                       \
        if (s == PTQ_OK) s = ptq_atomic_write(&af, (ptr), (size_t)(nfl) * sizeof(float), err); \
    } while (0)
    if (s == PTQ_OK) s = ptq_atomic_write(&af, map.data, 28, err);
    W(m->tok_emb, (size_t)V * D);
    for (int l = 0; l < L; l++) W(m->blocks[l].norm1.w, D);
    static const int order[] = {PTQ_LIN_Q, PTQ_LIN_K, PTQ_LIN_V, PTQ_LIN_O};
    for (int r = 0; r < 4; r++)
        for (int l = 0; l < L; l++) {
            const ptq_linear *lin = &m->blocks[l].lin[order[r]];
            W(lin->w, (size_t)lin->in * lin->out);
        }
    for (int l = 0; l < L; l++) W(m->blocks[l].norm2.w, D);
    static const int mlp[] = {PTQ_LIN_GATE, PTQ_LIN_DOWN, PTQ_LIN_UP}; /* w1, w2, w3 */
    for (int r = 0; r < 3; r++)
        for (int l = 0; l < L; l++) {
            const ptq_linear *lin = &m->blocks[l].lin[mlp[r]];
            W(lin->w, (size_t)lin->in * lin->out);
        }
    W(m->final_norm.w, D);
    if (s == PTQ_OK) s = ptq_atomic_write(&af, map.data + rope_off, rope_n, err);
    if (!shared) W(m->head.w, (size_t)V * D);
#undef W
    ptq_mmap_close(&map);
    if (s == PTQ_OK) return ptq_atomic_commit(&af, err);
    ptq_atomic_abort(&af);
    return s;
}

ptq_status ptq_train_save(const ptq_model *m, const char *src_weights, const char *src_config, const char *out_path,
                          const char *note, ptq_error *err) {
    if (!out_path || !*out_path) return ptq_fail(err, PTQ_ERR_ARG, "no output path");
    if (!strcmp(m->format, "llama2c")) {
        for (int l = 0; l < m->cfg.n_layers; l++)
            for (int r = 0; r < PTQ_LIN_COUNT; r++)
                if (m->blocks[l].lin[r].q)
                    return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: a quantized model cannot be saved as llama2.c", m->path);
        return save_llama2c(m, src_weights ? src_weights : m->path, out_path, err);
    }
    return save_safetensors(m, src_weights, src_config, out_path, note, err);
}
