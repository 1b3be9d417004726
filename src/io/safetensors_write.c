/* Safetensors writer (see safetensors_write.h for the layout and data ownership). */
#include "io/safetensors_write.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/file.h"

/* cJSON prints integers of 16+ digits in exponent form ("1e+15"), which strict readers reject. */
#define ST_MAX_OFFSET 999999999999999.0

typedef struct {
    char *name;
    ptq_dtype dtype;
    int ndim;
    int64_t shape[PTQ_ST_MAX_DIMS];
    const void *data; /* == owned when copied */
    void *owned;
    size_t nbytes;
    int section;
    int spilled; /* data lives in the spill file at spill_off (data == NULL), with CRC-32C crc */
    uint64_t spill_off;
    uint32_t crc;
} wentry;

typedef struct {
    char *key, *value;
} wmeta;

struct ptq_st_writer {
    wentry *e; /* ordered by section, then insertion */
    int n, cap;
    int section;     /* of the next entries */
    int spill_fd;    /* >= 0 once ptq_st_writer_spill_open succeeded */
    uint64_t spill_size;
    char spill_what[4096];
    wmeta *m;
    int n_meta, cap_meta;
};

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

ptq_status ptq_st_writer_new(ptq_st_writer **out, ptq_error *err) {
    if (!out) return ptq_fail(err, PTQ_ERR_ARG, "ptq_st_writer_new: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate a safetensors writer");
    (*out)->spill_fd = -1;
    return PTQ_OK;
}

void ptq_st_writer_free(ptq_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].owned);
    }
    free(w->e);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->m[i].key);
        free(w->m[i].value);
    }
    free(w->m);
    if (w->spill_fd >= 0) close(w->spill_fd);
    free(w);
}

int ptq_st_writer_count(const ptq_st_writer *w) { return w ? w->n : 0; }

void ptq_st_writer_entry(const ptq_st_writer *w, int i, const char **name, const void **data, size_t *nbytes) {
    *name = w->e[i].name;
    *data = w->e[i].data;
    *nbytes = w->e[i].nbytes;
}

int ptq_st_writer_meta_count(const ptq_st_writer *w) { return w ? w->n_meta : 0; }

void ptq_st_writer_meta(const ptq_st_writer *w, int i, const char **key, const char **value) {
    *key = w->m[i].key;
    *value = w->m[i].value;
}

/* Validate and append an entry; data is copied when copy != 0, else referenced.
 * from_f32: data holds float32 values to convert into dtype (copy is implied, nbytes ignored). */
static ptq_status add_entry(ptq_st_writer *w, const char *name, ptq_dtype dtype, int ndim, const int64_t *shape,
                            const void *data, size_t nbytes, int copy, int from_f32, ptq_error *err) {
    if (!w || !name) return ptq_fail(err, PTQ_ERR_ARG, "ptq_st_writer_add: NULL writer or name");
    if (!name[0] || strcmp(name, "__metadata__") == 0)
        return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: invalid tensor name \"%s\"", name);
    size_t esz = ptq_dtype_size(dtype);
    if (!esz) return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: tensor \"%s\" has an invalid dtype %d", name,
                              (int)dtype);
    if (ndim < 0 || ndim > PTQ_ST_MAX_DIMS || (ndim > 0 && !shape))
        return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: tensor \"%s\" has ndim %d (0..%d allowed)", name,
                        ndim, PTQ_ST_MAX_DIMS);
    uint64_t numel = 1;
    int overflow = 0, zero = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (double)shape[i] > ST_MAX_OFFSET)
            return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: tensor \"%s\" shape[%d] = %lld is out of range",
                            name, i, (long long)shape[i]);
        if (shape[i] == 0) zero = 1;
    }
    if (zero) {
        numel = 0;
    } else {
        for (int i = 0; i < ndim; i++) {
            if (numel > (uint64_t)INT64_MAX / (uint64_t)shape[i]) overflow = 1;
            else numel *= (uint64_t)shape[i];
        }
    }
    if (overflow || numel > (uint64_t)SIZE_MAX / esz)
        return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: tensor \"%s\" shape is too large", name);
    size_t need = (size_t)numel * esz;
    if (from_f32) nbytes = need;
    if (nbytes != need)
        return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: tensor \"%s\" has %zu bytes, but its shape and dtype %s need %zu",
                        name, nbytes, ptq_dtype_name(dtype), need);
    if (need && !data)
        return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: tensor \"%s\" has no data", name);

    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 32;
        wentry *e = realloc(w->e, (size_t)cap * sizeof *e);
        if (!e) return ptq_fail(err, PTQ_ERR_NOMEM, "safetensors writer: cannot grow the tensor list");
        w->e = e;
        w->cap = cap;
    }
    int at = w->n; /* after the last entry of this section or an earlier one */
    while (at > 0 && w->e[at - 1].section > w->section) at--;
    char *nm = dup_str(name);
    if (!nm) return ptq_fail(err, PTQ_ERR_NOMEM, "safetensors writer: out of memory");
    memmove(&w->e[at + 1], &w->e[at], (size_t)(w->n - at) * sizeof *w->e);
    wentry *e = &w->e[at];
    memset(e, 0, sizeof *e);
    e->name = nm;
    e->section = w->section;
    if (copy || from_f32) {
        e->owned = malloc(need ? need : 1);
        if (!e->owned) {
            free(e->name);
            memmove(&w->e[at], &w->e[at + 1], (size_t)(w->n - at) * sizeof *w->e);
            return ptq_fail(err, PTQ_ERR_NOMEM, "safetensors writer: cannot copy %zu bytes of tensor \"%s\"", need,
                            name);
        }
        if (from_f32 && need) {
            const float *src_f32 = data;
            unsigned char *dst = e->owned;
            for (size_t i = 0; i < (size_t)numel; i++) {
                if (dtype == PTQ_DT_F32) {
                    memcpy(dst + 4 * i, &src_f32[i], 4);
                } else {
                    uint16_t h = dtype == PTQ_DT_F16 ? ptq_f32_to_f16(src_f32[i]) : ptq_f32_to_bf16(src_f32[i]);
                    memcpy(dst + 2 * i, &h, 2);
                }
            }
        } else if (need) {
            memcpy(e->owned, data, need);
        }
        e->data = e->owned;
    } else {
        e->data = data;
    }
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->nbytes = need;
    w->n++;
    return PTQ_OK;
}

ptq_status ptq_st_writer_add(ptq_st_writer *w, const char *name, ptq_dtype dtype, int ndim, const int64_t *shape,
                             const void *data, size_t nbytes, ptq_error *err) {
    return add_entry(w, name, dtype, ndim, shape, data, nbytes, 1, 0, err);
}

ptq_status ptq_st_writer_add_ref(ptq_st_writer *w, const char *name, ptq_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data, size_t nbytes, ptq_error *err) {
    return add_entry(w, name, dtype, ndim, shape, data, nbytes, 0, 0, err);
}

ptq_status ptq_st_writer_add_f32(ptq_st_writer *w, const char *name, ptq_dtype dtype, int ndim,
                                 const int64_t *shape, const float *data, ptq_error *err) {
    if (dtype != PTQ_DT_F32 && dtype != PTQ_DT_F16 && dtype != PTQ_DT_BF16)
        return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: tensor \"%s\": float data can be stored as F32, F16 "
                        "or BF16, not %s", name ? name : "?", ptq_dtype_name(dtype));
    return add_entry(w, name, dtype, ndim, shape, data, 0, 1, 1, err);
}

ptq_status ptq_st_writer_set_metadata(ptq_st_writer *w, const char *key, const char *value, ptq_error *err) {
    if (!w || !key || !value) return ptq_fail(err, PTQ_ERR_ARG, "ptq_st_writer_set_metadata: NULL argument");
    if (!key[0]) return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: empty metadata key");
    char *v = dup_str(value);
    if (!v) return ptq_fail(err, PTQ_ERR_NOMEM, "safetensors writer: out of memory");
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->m[i].key, key) == 0) {
            free(w->m[i].value);
            w->m[i].value = v;
            return PTQ_OK;
        }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? w->cap_meta * 2 : 8;
        wmeta *m = realloc(w->m, (size_t)cap * sizeof *m);
        if (!m) {
            free(v);
            return ptq_fail(err, PTQ_ERR_NOMEM, "safetensors writer: out of memory");
        }
        w->m = m;
        w->cap_meta = cap;
    }
    char *k = dup_str(key);
    if (!k) {
        free(v);
        return ptq_fail(err, PTQ_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->m[w->n_meta].key = k;
    w->m[w->n_meta].value = v;
    w->n_meta++;
    return PTQ_OK;
}

/* Layout order: larger elements first, then list order. */
static int cmp_layout(const void *a, const void *b) {
    const wentry *x = *(const wentry *const *)a, *y = *(const wentry *const *)b;
    size_t sx = ptq_dtype_size(x->dtype), sy = ptq_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return (x > y) - (x < y); /* the list is in section, then insertion order */
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const wentry *const *)a)->name, (*(const wentry *const *)b)->name);
}

/* A spilled tensor from the spill file into the output, a few MiB at a time. */
static ptq_status copy_spilled(const ptq_st_writer *w, ptq_atomic_file *af, const wentry *e, ptq_error *err) {
    size_t chunk = (size_t)8 << 20, done = 0;
    unsigned char *buf = malloc(e->nbytes < chunk ? (e->nbytes ? e->nbytes : 1) : chunk);
    if (!buf) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory copying tensor \"%s\"", af->path, e->name);
    ptq_status s = PTQ_OK;
    while (s == PTQ_OK && done < e->nbytes) {
        size_t k = e->nbytes - done < chunk ? e->nbytes - done : chunk;
        s = ptq_spill_read(w->spill_fd, w->spill_what, e->spill_off + done, buf, k, err);
        if (s == PTQ_OK) s = ptq_atomic_write(af, buf, k, err);
        done += k;
    }
    free(buf);
    return s;
}

ptq_status ptq_st_writer_save(const ptq_st_writer *w, const char *path, ptq_error *err) {
    if (!w || !path) return ptq_fail(err, PTQ_ERR_ARG, "ptq_st_writer_save: NULL argument");
    ptq_status s = PTQ_OK;
    const wentry **ord = malloc((size_t)(w->n ? w->n : 1) * sizeof *ord);
    cJSON *root = cJSON_CreateObject();
    char *hdr = NULL;
    ptq_atomic_file af;
    int opened = 0;
    if (!ord || !root) {
        s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory building the header", path);
        goto out;
    }
    for (int i = 0; i < w->n; i++) ord[i] = &w->e[i];

    qsort(ord, (size_t)w->n, sizeof *ord, cmp_name);
    for (int i = 1; i < w->n; i++)
        if (strcmp(ord[i - 1]->name, ord[i]->name) == 0) {
            s = ptq_fail(err, PTQ_ERR_ARG, "%s: tensor \"%s\" was added twice", path, ord[i]->name);
            goto out;
        }
    qsort(ord, (size_t)w->n, sizeof *ord, cmp_layout);

    if (w->n_meta) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        if (!meta) {
            s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory building the header", path);
            goto out;
        }
        for (int i = 0; i < w->n_meta; i++)
            if (!cJSON_AddStringToObject(meta, w->m[i].key, w->m[i].value)) {
                s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory building the header", path);
                goto out;
            }
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wentry *e = ord[i];
        if ((double)(off + e->nbytes) > ST_MAX_OFFSET) {
            s = ptq_fail(err, PTQ_ERR_ARG, "%s: data section exceeds 10^15 bytes", path);
            goto out;
        }
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        cJSON *shape = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
        cJSON *offs = NULL;
        int ok = t && cJSON_AddStringToObject(t, "dtype", ptq_dtype_name(e->dtype)) && shape;
        for (int d = 0; ok && d < e->ndim; d++) {
            cJSON *num = cJSON_CreateNumber((double)e->shape[d]);
            ok = num && cJSON_AddItemToArray(shape, num);
        }
        if (ok) ok = (offs = cJSON_AddArrayToObject(t, "data_offsets")) != NULL;
        cJSON *b = ok ? cJSON_CreateNumber((double)off) : NULL;
        if (b) ok = cJSON_AddItemToArray(offs, b);
        cJSON *en = ok && b ? cJSON_CreateNumber((double)(off + e->nbytes)) : NULL;
        if (en) ok = cJSON_AddItemToArray(offs, en);
        if (!ok || !b || !en) {
            s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory building the header", path);
            goto out;
        }
        off += e->nbytes;
    }
    hdr = cJSON_PrintUnformatted(root);
    if (!hdr) {
        s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory printing the header", path);
        goto out;
    }
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

    if ((s = ptq_atomic_open(&af, path, err)) != PTQ_OK) goto out;
    opened = 1;
    if ((s = ptq_atomic_write(&af, len8, 8, err)) != PTQ_OK || (s = ptq_atomic_write(&af, hdr, hlen, err)) != PTQ_OK ||
        (s = ptq_atomic_write(&af, spaces, padded - hlen, err)) != PTQ_OK)
        goto out;
    for (int i = 0; i < w->n; i++)
        if ((s = ord[i]->spilled ? copy_spilled(w, &af, ord[i], err) : ptq_atomic_write(&af, ord[i]->data, ord[i]->nbytes, err)) != PTQ_OK)
            goto out;
    opened = 0; /* commit closes (and on failure removes) the temporary file */
    s = ptq_atomic_commit(&af, err);
out:
    if (opened) ptq_atomic_abort(&af);
    if (hdr) cJSON_free(hdr);
    cJSON_Delete(root);
    free(ord);
    return s;
}

void ptq_st_writer_set_section(ptq_st_writer *w, int section) { w->section = section; }

ptq_status ptq_st_writer_spill_open(ptq_st_writer *w, const char *path, ptq_error *err) {
    if (w->spill_fd >= 0) return PTQ_OK;
    snprintf(w->spill_what, sizeof w->spill_what, "%s", path);
    return ptq_spill_open(path, &w->spill_fd, err);
}

ptq_status ptq_st_writer_spill(ptq_st_writer *w, ptq_error *err) {
    if (w->spill_fd < 0) return ptq_fail(err, PTQ_ERR_ARG, "safetensors writer: spill without a spill file");
    for (int i = 0; i < w->n; i++) {
        wentry *e = &w->e[i];
        if (e->spilled || e->section != w->section) continue;
        PTQ_TRY(ptq_spill_write(w->spill_fd, w->spill_what, e->data, e->nbytes, err));
        e->crc = ptq_crc32c(0, e->data, e->nbytes);
        e->spilled = 1;
        e->spill_off = w->spill_size;
        w->spill_size += e->nbytes;
        free(e->owned);
        e->owned = NULL;
        e->data = NULL;
    }
    return PTQ_OK;
}

int ptq_st_writer_entry_crc(const ptq_st_writer *w, int i, uint32_t *crc) {
    *crc = w->e[i].crc;
    return w->e[i].spilled;
}
