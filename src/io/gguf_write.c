/* GGUF writer: metadata serialised as it is set, tensors copied, the file written atomically (gguf_write.h). */
#include "io/gguf_write.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

typedef struct {
    char name[PTQ_GGUF_MAX_NAME + 1];
    uint32_t type;
    int ndim;
    int64_t ne[PTQ_GGUF_MAX_DIMS];
    unsigned char *data;
    size_t nbytes;
} wtensor;

struct ptq_gguf_writer {
    unsigned char *kv; /* the serialised key-values, in the order set */
    size_t kv_len, kv_cap;
    char **keys;
    int n_kv, cap_keys;
    wtensor *t;
    int n_t, cap_t;
};

/* bytes of one scalar of a numeric/bool value type; 0 for string, array, unknown */
static size_t scalar_size(uint32_t type) {
    switch (type) {
    case PTQ_GGUF_U8: case PTQ_GGUF_I8: case PTQ_GGUF_BOOL: return 1;
    case PTQ_GGUF_U16: case PTQ_GGUF_I16: return 2;
    case PTQ_GGUF_U32: case PTQ_GGUF_I32: case PTQ_GGUF_F32: return 4;
    case PTQ_GGUF_U64: case PTQ_GGUF_I64: case PTQ_GGUF_F64: return 8;
    default: return 0;
    }
}

static int put(ptq_gguf_writer *w, const void *p, size_t n) {
    if (!n) return 0;
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n) cap *= 2;
        unsigned char *b = realloc(w->kv, cap);
        if (!b) return -1;
        w->kv = b;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return 0;
}

/* little-endian integers (the build targets are little-endian, but the bytes are spelled out anyway) */
static void le(unsigned char *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static int put_u32(ptq_gguf_writer *w, uint32_t v) {
    unsigned char b[4];
    le(b, v, 4);
    return put(w, b, 4);
}
static int put_u64(ptq_gguf_writer *w, uint64_t v) {
    unsigned char b[8];
    le(b, v, 8);
    return put(w, b, 8);
}
static int put_str(ptq_gguf_writer *w, const char *s) {
    size_t n = strlen(s);
    return put_u64(w, n) || put(w, s, n);
}

ptq_status ptq_gguf_writer_new(ptq_gguf_writer **out, ptq_error *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory creating a GGUF writer");
    return ptq_gguf_set_u32(*out, "general.alignment", PTQ_GGUF_DEFAULT_ALIGNMENT, err);
}

void ptq_gguf_writer_free(ptq_gguf_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (int i = 0; i < w->n_t; i++) free(w->t[i].data);
    free(w->keys);
    free(w->t);
    free(w->kv);
    free(w);
}

/* Checks key (non-empty, not set yet) and writes it with its value type; the value follows, then end_kv. */
static ptq_status begin_kv(ptq_gguf_writer *w, const char *key, uint32_t type, size_t *mark, ptq_error *err) {
    if (!key || !*key) return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: empty metadata key");
    for (int i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: key \"%s\" set twice", key);
    if (w->n_kv == w->cap_keys) {
        int cap = w->cap_keys ? 2 * w->cap_keys : 32;
        char **k = realloc(w->keys, (size_t)cap * sizeof *k);
        if (!k) return ptq_fail(err, PTQ_ERR_NOMEM, "GGUF writer: out of memory");
        w->keys = k;
        w->cap_keys = cap;
    }
    *mark = w->kv_len;
    if (put_str(w, key) || put_u32(w, type)) return ptq_fail(err, PTQ_ERR_NOMEM, "GGUF writer: out of memory");
    return PTQ_OK;
}

/* Registers the key once its value is written (value_failed: out of memory), or rolls the buffer back to mark. */
static ptq_status end_kv(ptq_gguf_writer *w, const char *key, size_t mark, int value_failed, ptq_error *err) {
    char *k = value_failed ? NULL : malloc(strlen(key) + 1);
    if (!k) {
        w->kv_len = mark;
        return ptq_fail(err, PTQ_ERR_NOMEM, "GGUF writer: out of memory setting \"%s\"", key);
    }
    strcpy(k, key);
    w->keys[w->n_kv++] = k;
    return PTQ_OK;
}

/* count values of a numeric/bool type, converted to little-endian */
static int put_values(ptq_gguf_writer *w, uint32_t type, const void *data, uint64_t count) {
    size_t sz = scalar_size(type);
    const unsigned char *p = data;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t v = 0;
        memcpy(&v, p + i * sz, sz); /* host order (little-endian) into the low bytes */
        unsigned char b[8];
        le(b, v, (int)sz);
        if (put(w, b, sz)) return -1;
    }
    return 0;
}

ptq_status ptq_gguf_set_scalar(ptq_gguf_writer *w, const char *key, uint32_t type, const void *value, ptq_error *err) {
    if (!scalar_size(type))
        return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: \"%s\": %s is not a scalar type", key ? key : "",
                        ptq_gguf_vtype_name(type));
    if (type == PTQ_GGUF_BOOL && *(const uint8_t *)value > 1)
        return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: \"%s\": a bool is 0 or 1", key ? key : "");
    size_t mark;
    PTQ_TRY(begin_kv(w, key, type, &mark, err));
    return end_kv(w, key, mark, put_values(w, type, value, 1) ? 1 : 0, err);
}

ptq_status ptq_gguf_set_array(ptq_gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                              uint64_t count, ptq_error *err) {
    if (elem_type != PTQ_GGUF_STRING && !scalar_size(elem_type))
        return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: \"%s\": arrays of %s are not written", key ? key : "",
                        ptq_gguf_vtype_name(elem_type));
    if (count && !data) return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: \"%s\": NULL array data", key ? key : "");
    if (elem_type == PTQ_GGUF_STRING)
        for (uint64_t i = 0; i < count; i++)
            if (!((const char *const *)data)[i])
                return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: \"%s\"[%llu] is NULL", key ? key : "",
                                (unsigned long long)i);
    if (elem_type == PTQ_GGUF_BOOL)
        for (uint64_t i = 0; i < count; i++)
            if (((const uint8_t *)data)[i] > 1)
                return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: \"%s\"[%llu]: a bool is 0 or 1", key,
                                (unsigned long long)i);
    size_t mark;
    PTQ_TRY(begin_kv(w, key, PTQ_GGUF_ARRAY, &mark, err));
    int bad = put_u32(w, elem_type) || put_u64(w, count);
    if (elem_type == PTQ_GGUF_STRING) {
        const char *const *s = data;
        for (uint64_t i = 0; !bad && i < count; i++) bad = put_str(w, s[i]);
    } else if (!bad) {
        bad = put_values(w, elem_type, data, count);
    }
    return end_kv(w, key, mark, bad, err);
}

ptq_status ptq_gguf_set_string(ptq_gguf_writer *w, const char *key, const char *value, ptq_error *err) {
    if (!value) return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: \"%s\": NULL string", key ? key : "");
    size_t mark;
    PTQ_TRY(begin_kv(w, key, PTQ_GGUF_STRING, &mark, err));
    return end_kv(w, key, mark, put_str(w, value), err);
}

ptq_status ptq_gguf_set_u32(ptq_gguf_writer *w, const char *key, uint32_t v, ptq_error *err) {
    return ptq_gguf_set_scalar(w, key, PTQ_GGUF_U32, &v, err);
}
ptq_status ptq_gguf_set_i32(ptq_gguf_writer *w, const char *key, int32_t v, ptq_error *err) {
    return ptq_gguf_set_scalar(w, key, PTQ_GGUF_I32, &v, err);
}
ptq_status ptq_gguf_set_f32(ptq_gguf_writer *w, const char *key, float v, ptq_error *err) {
    return ptq_gguf_set_scalar(w, key, PTQ_GGUF_F32, &v, err);
}
ptq_status ptq_gguf_set_bool(ptq_gguf_writer *w, const char *key, int v, ptq_error *err) {
    uint8_t b = v != 0;
    return ptq_gguf_set_scalar(w, key, PTQ_GGUF_BOOL, &b, err);
}

ptq_status ptq_gguf_add_tensor(ptq_gguf_writer *w, const char *name, uint32_t type, int ndim, const int64_t *ne,
                               const void *data, size_t nbytes, ptq_error *err) {
    size_t len = name ? strlen(name) : 0;
    if (len < 1 || len > PTQ_GGUF_MAX_NAME)
        return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: tensor name \"%s\" must have 1 to %d bytes", name ? name : "",
                        PTQ_GGUF_MAX_NAME);
    for (int i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: tensor \"%s\" added twice", name);
    int64_t want;
    if (ndim < 1 || ndim > PTQ_GGUF_MAX_DIMS || ptq_ggml_nbytes(type, ne, ndim, &want) != 0) {
        char tb[24];
        return ptq_fail(err, PTQ_ERR_ARG,
                        "GGUF writer: tensor \"%s\": %d dims of type %s do not make a valid ggml tensor (each dim >= 1, "
                        "the row a multiple of the type's block of %d)",
                        name, ndim, ptq_ggml_type_name(type, tb, sizeof tb),
                        ptq_ggml_type_info_get(type) ? ptq_ggml_type_info_get(type)->block : 0);
    }
    if ((uint64_t)want != (uint64_t)nbytes)
        return ptq_fail(err, PTQ_ERR_ARG, "GGUF writer: tensor \"%s\" has %zu bytes, its shape and type need %lld", name,
                        nbytes, (long long)want);
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return ptq_fail(err, PTQ_ERR_NOMEM, "GGUF writer: out of memory");
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, len + 1);
    t->type = type;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->ne[i] = ne[i];
    t->nbytes = nbytes;
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->data) return ptq_fail(err, PTQ_ERR_NOMEM, "GGUF writer: out of memory copying tensor \"%s\"", name);
    memcpy(t->data, data, nbytes);
    w->n_t++;
    return PTQ_OK;
}

/* header + key-values + tensor infos, into a malloc'ed buffer padded to the alignment */
static unsigned char *head(const ptq_gguf_writer *w, size_t *len) {
    ptq_gguf_writer h = {0};
    int bad = put(&h, PTQ_GGUF_MAGIC, 4) || put_u32(&h, 3) || put_u64(&h, (uint64_t)w->n_t) ||
              put_u64(&h, (uint64_t)w->n_kv) || put(&h, w->kv, w->kv_len);
    uint64_t off = 0;
    for (int i = 0; !bad && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        bad = put_str(&h, t->name) || put_u32(&h, (uint32_t)t->ndim);
        for (int d = 0; !bad && d < t->ndim; d++) bad = put_u64(&h, (uint64_t)t->ne[d]);
        bad = bad || put_u32(&h, t->type) || put_u64(&h, off);
        off = ptq_gguf_pad(off + t->nbytes, PTQ_GGUF_DEFAULT_ALIGNMENT);
    }
    static const unsigned char zeros[PTQ_GGUF_DEFAULT_ALIGNMENT];
    if (!bad) bad = put(&h, zeros, (size_t)(ptq_gguf_pad(h.kv_len, PTQ_GGUF_DEFAULT_ALIGNMENT) - h.kv_len));
    if (bad) {
        free(h.kv);
        return NULL;
    }
    *len = h.kv_len;
    return h.kv;
}

ptq_status ptq_gguf_writer_save(const ptq_gguf_writer *w, const char *path, const char *const *inputs, int n,
                                ptq_error *err) {
    if (!w || !path) return ptq_fail(err, PTQ_ERR_ARG, "ptq_gguf_writer_save: NULL argument");
    PTQ_TRY(ptq_check_output("output", path, inputs, n, err));
    size_t hlen = 0;
    unsigned char *h = head(w, &hlen);
    if (!h) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory building the GGUF header", path);
    ptq_atomic_file af;
    ptq_status s = ptq_atomic_open(&af, path, err);
    if (s != PTQ_OK) {
        free(h);
        return s;
    }
    s = ptq_atomic_write(&af, h, hlen, err);
    free(h);
    static const unsigned char zeros[PTQ_GGUF_DEFAULT_ALIGNMENT];
    for (int i = 0; s == PTQ_OK && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        s = ptq_atomic_write(&af, t->data, t->nbytes, err);
        size_t pad = (size_t)(ptq_gguf_pad(t->nbytes, PTQ_GGUF_DEFAULT_ALIGNMENT) - t->nbytes);
        if (s == PTQ_OK && pad) s = ptq_atomic_write(&af, zeros, pad, err);
    }
    if (s == PTQ_OK) s = ptq_atomic_finish(&af, err);
    if (s == PTQ_OK) s = ptq_atomic_commit(&af, err);
    if (s != PTQ_OK) ptq_atomic_abort(&af);
    return s;
}
