/* GGUF reader (format in gguf.h). The header is walked once with a bounded cursor; every length is checked
 * against the bytes left before it is used, so a hostile count can neither over-read nor over-allocate. */
#include "io/gguf.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/safetensors.h" /* ptq_f16_to_f32, ptq_bf16_to_f32 */
#include "quant/ggml_quants.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ptq reads GGUF data in place and needs a little-endian host"
#endif

#define GGUF_MAX_KEY 65535 /* the GGUF spec's limit on key length */

/* ---------------------------------------------------------------- type tables */

static const char *const k_vtype_names[PTQ_GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
/* bytes of a scalar; string and array: the smallest possible encoding (an empty string / array) */
static const int k_vtype_min_size[PTQ_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};

const char *ptq_gguf_vtype_name(uint32_t t) { return t < PTQ_GGUF_VTYPE_COUNT ? k_vtype_names[t] : "?"; }

#define QK_K 256
/* ggml's block sizes (ggml.c type_traits, gguf-py GGML_QUANT_SIZES); gaps are numbers ggml removed. */
static const ptq_ggml_type_info k_types[PTQ_GGML_TYPE_COUNT] = {
    [0] = {"F32", 1, 4},
    [1] = {"F16", 1, 2},
    [2] = {"Q4_0", 32, 2 + 16},
    [3] = {"Q4_1", 32, 2 + 2 + 16},
    [6] = {"Q5_0", 32, 2 + 4 + 16},
    [7] = {"Q5_1", 32, 2 + 2 + 4 + 16},
    [8] = {"Q8_0", 32, 2 + 32},
    [9] = {"Q8_1", 32, 2 + 2 + 32},
    [10] = {"Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4},
    [11] = {"Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12},
    [12] = {"Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12},
    [13] = {"Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12},
    [14] = {"Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16},
    [15] = {"Q8_K", QK_K, 4 + QK_K + QK_K / 8},
    [16] = {"IQ2_XXS", QK_K, 2 + QK_K / 4},
    [17] = {"IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32},
    [18] = {"IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8},
    [19] = {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16},
    [20] = {"IQ4_NL", 32, 2 + 16},
    [21] = {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4},
    [22] = {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16},
    [23] = {"IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64},
    [24] = {"I8", 1, 1},
    [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},
    [27] = {"I64", 1, 8},
    [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32},
    [30] = {"BF16", 1, 2},
    [34] = {"TQ1_0", QK_K, 2 + 4 * 13},
    [35] = {"TQ2_0", QK_K, 2 + 64},
    [39] = {"MXFP4", 32, 1 + 16},
    [40] = {"NVFP4", 64, 4 + 32},
    [41] = {"Q1_0", 128, 2 + 16},
    [42] = {"Q2_0", 64, 2 + 16},
};

const ptq_ggml_type_info *ptq_ggml_type_info_get(uint32_t type) {
    return type < PTQ_GGML_TYPE_COUNT && k_types[type].name ? &k_types[type] : NULL;
}

const char *ptq_ggml_type_name(uint32_t type, char *buf, size_t cap) {
    const ptq_ggml_type_info *ti = ptq_ggml_type_info_get(type);
    if (ti) return ti->name;
    snprintf(buf, cap, "type %u", type);
    return buf;
}

int ptq_ggml_nbytes(uint32_t type, const int64_t *ne, int ndim, int64_t *out) {
    const ptq_ggml_type_info *ti = ptq_ggml_type_info_get(type);
    if (!ti || ndim < 1 || ndim > PTQ_GGUF_MAX_DIMS) return -1;
    for (int i = 0; i < ndim; i++)
        if (ne[i] < 1) return -1;
    if (ne[0] % ti->block) return -1;
    int64_t f[PTQ_GGUF_MAX_DIMS + 1];
    f[0] = ne[0] / ti->block;
    for (int i = 1; i < ndim; i++) f[i] = ne[i];
    f[ndim] = ti->block_bytes;
    return ptq_checked_product(f, ndim + 1, INT64_MAX, out) ? 0 : -1;
}

/* ---------------------------------------------------------------- bounded cursor */

typedef struct {
    const unsigned char *p, *base;
    size_t left;
    const char *path;
    ptq_error *err;
} cursor;

static size_t cur_pos(const cursor *c) { return (size_t)(c->p - c->base); }

/* Fails naming `what` when fewer than n bytes are left. */
static ptq_status need(cursor *c, uint64_t n, const char *what) {
    if (n > c->left)
        return ptq_fail(c->err, PTQ_ERR_FORMAT,
                        "%s: truncated: %s needs %llu bytes at offset %zu, but the file has %zu left", c->path, what,
                        (unsigned long long)n, cur_pos(c), c->left);
    return PTQ_OK;
}

static ptq_status rd(cursor *c, void *dst, size_t n, const char *what) {
    PTQ_TRY(need(c, n, what));
    memcpy(dst, c->p, n);
    c->p += n;
    c->left -= n;
    return PTQ_OK;
}

/* A GGUF string: u64 length + bytes, returned as a pointer into the file. */
static ptq_status rd_str(cursor *c, const char **s, uint64_t *len, const char *what) {
    PTQ_TRY(rd(c, len, 8, what));
    if (*len > c->left)
        return ptq_fail(c->err, PTQ_ERR_FORMAT,
                        "%s: %s at offset %zu claims %llu bytes, but the file has %zu left", c->path, what,
                        cur_pos(c) - 8, (unsigned long long)*len, c->left);
    *s = (const char *)c->p;
    c->p += *len;
    c->left -= (size_t)*len;
    return PTQ_OK;
}

/* A name or key from the file, quoted safely for a message. */
static const char *q(char *buf, size_t cap, const char *s) {
    ptq_snippet(buf, cap, s, strlen(s));
    return buf;
}

static char *dup_mem(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* ---------------------------------------------------------------- metadata */

/* Skip over one value of scalar/string type t (already known), validating it. */
static ptq_status skip_value(cursor *c, uint32_t t, const char *key) {
    char what[160];
    snprintf(what, sizeof what, "the value of key \"%s\"", key);
    if (t == PTQ_GGUF_STRING) {
        const char *s;
        uint64_t n;
        return rd_str(c, &s, &n, what);
    }
    size_t n = (size_t)k_vtype_min_size[t];
    PTQ_TRY(need(c, n, what));
    if (t == PTQ_GGUF_BOOL && c->p[0] > 1)
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: key \"%s\": bool value %u at offset %zu (expected 0 or 1)",
                        c->path, key, c->p[0], cur_pos(c));
    c->p += n;
    c->left -= n;
    return PTQ_OK;
}

static ptq_status parse_kv(cursor *c, uint64_t i, ptq_gguf_kv *kv) {
    const char *k = NULL;
    uint64_t klen;
    char what[64];
    snprintf(what, sizeof what, "key %llu", (unsigned long long)i);
    PTQ_TRY(rd_str(c, &k, &klen, what));
    if (klen == 0 || klen > GGUF_MAX_KEY || memchr(k, 0, (size_t)klen))
        return ptq_fail(c->err, PTQ_ERR_FORMAT,
                        "%s: key %llu at offset %zu is %s (expected 1 to %d bytes without NUL)", c->path,
                        (unsigned long long)i, cur_pos(c) - (size_t)klen - 8, klen ? "invalid" : "empty",
                        GGUF_MAX_KEY);
    if (!(kv->key = dup_mem(k, (size_t)klen)))
        return ptq_fail(c->err, PTQ_ERR_NOMEM, "%s: out of memory reading key %llu", c->path, (unsigned long long)i);
    char key[96];
    ptq_snippet(key, sizeof key, kv->key, (size_t)klen);

    uint32_t t;
    snprintf(what, sizeof what, "the type of key \"%.40s\"", key);
    PTQ_TRY(rd(c, &t, 4, what));
    if (t >= PTQ_GGUF_VTYPE_COUNT)
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: key \"%s\" has unknown value type %u (expected 0..%d)", c->path,
                        key, t, PTQ_GGUF_VTYPE_COUNT - 1);
    kv->type = kv->elem_type = t;
    kv->count = 1;
    if (t != PTQ_GGUF_ARRAY) {
        kv->value = c->p;
        return skip_value(c, t, key);
    }
    uint32_t et;
    uint64_t n;
    PTQ_TRY(rd(c, &et, 4, what));
    PTQ_TRY(rd(c, &n, 8, what));
    if (et >= PTQ_GGUF_VTYPE_COUNT || et == PTQ_GGUF_ARRAY)
        return ptq_fail(c->err, PTQ_ERR_FORMAT,
                        "%s: key \"%s\" is an array of %s %u (nested or unknown element types are not valid)",
                        c->path, key, et == PTQ_GGUF_ARRAY ? "arrays, type" : "unknown type", et);
    /* each element takes at least its minimal size: a hostile count is refused before any loop */
    if (n > c->left / (uint64_t)k_vtype_min_size[et])
        return ptq_fail(c->err, PTQ_ERR_FORMAT,
                        "%s: key \"%s\" claims %llu %s elements at offset %zu, more than the %zu bytes left can hold",
                        c->path, key, (unsigned long long)n, k_vtype_names[et], cur_pos(c), c->left);
    kv->elem_type = et;
    kv->count = n;
    kv->value = c->p;
    if (et == PTQ_GGUF_STRING || et == PTQ_GGUF_BOOL) {
        for (uint64_t j = 0; j < n; j++) PTQ_TRY(skip_value(c, et, key));
    } else {
        size_t bytes = (size_t)n * (size_t)k_vtype_min_size[et];
        c->p += bytes;
        c->left -= bytes;
    }
    return PTQ_OK;
}

static int cmp_kv(const void *a, const void *b) { return strcmp(((const ptq_gguf_kv *)a)->key, ((const ptq_gguf_kv *)b)->key); }
static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const ptq_gguf_tensor *)a)->name, ((const ptq_gguf_tensor *)b)->name);
}
static int cmp_tensor_ptr_off(const void *a, const void *b) {
    const ptq_gguf_tensor *x = *(const ptq_gguf_tensor *const *)a, *y = *(const ptq_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* ---------------------------------------------------------------- tensor infos */

static ptq_status parse_tensor(cursor *c, uint64_t i, ptq_gguf_tensor *t) {
    const char *nm = NULL;
    uint64_t nlen;
    char what[160];
    snprintf(what, sizeof what, "the name of tensor %llu", (unsigned long long)i);
    PTQ_TRY(rd_str(c, &nm, &nlen, what));
    if (nlen == 0 || nlen > PTQ_GGUF_MAX_NAME || memchr(nm, 0, (size_t)nlen)) {
        char s[96];
        ptq_snippet(s, sizeof s, nm, nlen < 64 ? (size_t)nlen : 64);
        return ptq_fail(c->err, PTQ_ERR_FORMAT,
                        "%s: tensor %llu has an invalid name \"%s\" (%llu bytes; expected 1 to %d bytes without NUL)",
                        c->path, (unsigned long long)i, s, (unsigned long long)nlen, PTQ_GGUF_MAX_NAME);
    }
    if (!(t->name = dup_mem(nm, (size_t)nlen)))
        return ptq_fail(c->err, PTQ_ERR_NOMEM, "%s: out of memory reading tensor %llu", c->path, (unsigned long long)i);
    char name[96];
    ptq_snippet(name, sizeof name, t->name, (size_t)nlen);
    snprintf(what, sizeof what, "the shape of tensor \"%s\"", name);

    uint32_t nd;
    PTQ_TRY(rd(c, &nd, 4, what));
    if (nd < 1 || nd > PTQ_GGUF_MAX_DIMS)
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" has %u dimensions (expected 1 to %d)", c->path,
                        name, nd, PTQ_GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t v;
        PTQ_TRY(rd(c, &v, 8, what));
        if (v < 1 || v > (uint64_t)INT64_MAX)
            return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" has dimension ne[%d] = %llu (expected >= 1)",
                            c->path, name, d, (unsigned long long)v);
        t->ne[d] = (int64_t)v;
    }
    if (!ptq_checked_product(t->ne, t->ndim, INT64_MAX, &t->numel))
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: tensor \"%s\": the product of its dimensions overflows",
                        c->path, name);
    snprintf(what, sizeof what, "the type of tensor \"%s\"", name);
    PTQ_TRY(rd(c, &t->type, 4, what));
    const ptq_ggml_type_info *ti = ptq_ggml_type_info_get(t->type);
    if (!ti)
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" has unknown ggml type %u", c->path, name,
                        t->type);
    if (t->ne[0] % ti->block)
        return ptq_fail(c->err, PTQ_ERR_FORMAT,
                        "%s: tensor \"%s\" of type %s has rows of %lld elements, not a multiple of its block size %d",
                        c->path, name, ti->name, (long long)t->ne[0], ti->block);
    int64_t nb;
    if (ptq_ggml_nbytes(t->type, t->ne, t->ndim, &nb) != 0 || (uint64_t)nb > SIZE_MAX)
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: tensor \"%s\": its size in bytes overflows", c->path, name);
    t->nbytes = (size_t)nb;
    snprintf(what, sizeof what, "the offset of tensor \"%s\"", name);
    return rd(c, &t->offset, 8, what);
}

/* Offsets aligned, inside the data section, no two tensors sharing a byte; then data pointers set. */
static ptq_status place_tensors(ptq_gguf *g, ptq_error *err) {
    uint64_t data_size = g->data_offset <= g->map.size ? g->map.size - g->data_offset : 0;
    char nb[96], nb2[96];
    for (int i = 0; i < g->n_tensors; i++) {
        ptq_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" has offset %llu, not a multiple of the alignment %u",
                            g->path, q(nb, sizeof nb, t->name), (unsigned long long)t->offset, g->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return ptq_fail(err, PTQ_ERR_FORMAT,
                            "%s: tensor \"%s\" (bytes %llu..%llu of the data section) lies beyond the end of the file "
                            "(the data section has %llu bytes)",
                            g->path, q(nb, sizeof nb, t->name), (unsigned long long)t->offset,
                            (unsigned long long)t->offset + (unsigned long long)t->nbytes,
                            (unsigned long long)data_size);
        t->data = g->map.data + g->data_offset + t->offset;
    }
    if (g->n_tensors < 2) return PTQ_OK;
    ptq_gguf_tensor **order = malloc((size_t)g->n_tensors * sizeof *order);
    if (!order) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot check tensor offsets", g->path);
    for (int i = 0; i < g->n_tensors; i++) order[i] = &g->tensors[i];
    qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_tensor_ptr_off);
    ptq_status s = PTQ_OK;
    for (int i = 1; i < g->n_tensors; i++) {
        const ptq_gguf_tensor *a = order[i - 1], *b = order[i];
        if (b->offset < a->offset + a->nbytes) {
            s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensors \"%s\" (bytes %llu..%llu) and \"%s\" (bytes %llu..%llu) overlap",
                         g->path, q(nb, sizeof nb, a->name), (unsigned long long)a->offset,
                         (unsigned long long)(a->offset + a->nbytes), q(nb2, sizeof nb2, b->name), (unsigned long long)b->offset,
                         (unsigned long long)(b->offset + b->nbytes));
            break;
        }
    }
    free(order);
    return s;
}

/* ---------------------------------------------------------------- open / close */

int ptq_gguf_sniff(const unsigned char *data, size_t size) { return size >= 4 && memcmp(data, PTQ_GGUF_MAGIC, 4) == 0; }

static ptq_status parse(ptq_gguf *g, ptq_error *err) {
    cursor c = {g->map.data, g->map.data, g->map.size, g->path, err};
    if (!ptq_gguf_sniff(c.p, c.left)) {
        char m[16];
        ptq_snippet(m, sizeof m, (const char *)c.p, c.left < 4 ? c.left : 4);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: not a GGUF file (starts with \"%s\", expected \"GGUF\")", g->path, m);
    }
    c.p += 4;
    c.left -= 4;
    PTQ_TRY(rd(&c, &g->version, 4, "the version"));
    if (g->version == 1)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (versions 2 and 3 are)", g->path);
    if ((g->version & 0xffff) == 0 && g->version)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: version field 0x%08x: a big-endian GGUF file, which ptq does not read", g->path, g->version);
    if (g->version != 2 && g->version != 3)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (versions 2 and 3 are)",
                        g->path, g->version);
    uint64_t nt, nkv;
    PTQ_TRY(rd(&c, &nt, 8, "the tensor count"));
    PTQ_TRY(rd(&c, &nkv, 8, "the key-value count"));
    /* a kv takes at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes; a tensor info 8 + 1 + 4 + 8 + 4 + 8 */
    if (nkv > c.left / 14 || nkv > INT_MAX)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: header claims %llu key-value pairs, more than the file's %zu bytes can hold",
                        g->path, (unsigned long long)nkv, g->map.size);
    if (nt > c.left / 33 || nt > INT_MAX)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: header claims %llu tensors, more than the file's %zu bytes can hold",
                        g->path, (unsigned long long)nt, g->map.size);

    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < nkv; i++) {
        g->n_kv = (int)i + 1;
        PTQ_TRY(parse_kv(&c, i, &g->kv[i]));
    }
    qsort(g->kv, (size_t)g->n_kv, sizeof *g->kv, cmp_kv);
    for (int i = 1; i < g->n_kv; i++)
        if (strcmp(g->kv[i - 1].key, g->kv[i].key) == 0) {
            char k[96];
            ptq_snippet(k, sizeof k, g->kv[i].key, strlen(g->kv[i].key));
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\" appears twice", g->path, k);
        }

    g->alignment = PTQ_GGUF_DEFAULT_ALIGNMENT;
    const ptq_gguf_kv *al = ptq_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != PTQ_GGUF_U32)
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"general.alignment\" is %s, expected u32", g->path,
                            k_vtype_names[al->type]);
        memcpy(&g->alignment, al->value, 4);
        if (g->alignment == 0 || (g->alignment & (g->alignment - 1)))
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: general.alignment is %u, expected a power of two", g->path,
                            g->alignment);
    }

    for (uint64_t i = 0; i < nt; i++) {
        g->n_tensors = (int)i + 1;
        PTQ_TRY(parse_tensor(&c, i, &g->tensors[i]));
    }
    qsort(g->tensors, (size_t)g->n_tensors, sizeof *g->tensors, cmp_tensor);
    for (int i = 1; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i - 1].name, g->tensors[i].name) == 0)
        {
            char nb[96];
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" appears twice", g->path,
                            q(nb, sizeof nb, g->tensors[i].name));
        }
    /* files without tensors (vocabulary-only files) may end before the padding */
    g->data_offset = ptq_gguf_pad(cur_pos(&c), g->alignment);
    if (g->n_tensors && g->data_offset > g->map.size)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: truncated: the data section should start at offset %llu, past the end (%zu bytes)",
                        g->path, (unsigned long long)g->data_offset, g->map.size);
    return place_tensors(g, err);
}

ptq_status ptq_gguf_open(const char *path, ptq_gguf *g, ptq_error *err) {
    if (!g) return ptq_fail(err, PTQ_ERR_ARG, "ptq_gguf_open: g is NULL");
    memset(g, 0, sizeof *g);
    if (!path) return ptq_fail(err, PTQ_ERR_ARG, "ptq_gguf_open: path is NULL");
    if (!(g->path = dup_mem(path, strlen(path)))) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory", path);
    ptq_status s = ptq_mmap_open(path, &g->map, err);
    if (s == PTQ_OK) s = parse(g, err);
    if (s != PTQ_OK) ptq_gguf_close(g);
    return s;
}

void ptq_gguf_close(ptq_gguf *g) {
    if (!g) return;
    for (int i = 0; g->kv && i < g->n_kv; i++) free(g->kv[i].key);
    for (int i = 0; g->tensors && i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    ptq_mmap_close(&g->map);
    free(g->path);
    memset(g, 0, sizeof *g);
}

/* ---------------------------------------------------------------- lookups and getters */

const ptq_gguf_kv *ptq_gguf_find_kv(const ptq_gguf *g, const char *key) {
    if (!g || !key || !g->n_kv) return NULL;
    ptq_gguf_kv probe = {.key = (char *)key};
    return bsearch(&probe, g->kv, (size_t)g->n_kv, sizeof *g->kv, cmp_kv);
}

const ptq_gguf_tensor *ptq_gguf_find(const ptq_gguf *g, const char *name) {
    if (!g || !name || !g->n_tensors) return NULL;
    ptq_gguf_tensor probe = {.name = (char *)name};
    return bsearch(&probe, g->tensors, (size_t)g->n_tensors, sizeof *g->tensors, cmp_tensor);
}

static int is_int_type(uint32_t t) { return t <= PTQ_GGUF_I32 || t == PTQ_GGUF_U64 || t == PTQ_GGUF_I64; }

/* Element j of an integer array (or a scalar, j = 0) widened; *neg_out set when the value is negative. */
static void int_at(uint32_t t, const unsigned char *p, uint64_t j, int64_t *sv, uint64_t *uv, int *neg) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; } v;
    size_t w = (size_t)k_vtype_min_size[t];
    memcpy(&v, p + j * w, w);
    int64_t s = 0;
    uint64_t u = 0;
    int is_signed = 1;
    switch (t) {
    case PTQ_GGUF_U8: u = v.u8; is_signed = 0; break;
    case PTQ_GGUF_U16: u = v.u16; is_signed = 0; break;
    case PTQ_GGUF_U32: u = v.u32; is_signed = 0; break;
    case PTQ_GGUF_U64: u = v.u64; is_signed = 0; break;
    case PTQ_GGUF_I8: s = v.i8; break;
    case PTQ_GGUF_I16: s = v.i16; break;
    case PTQ_GGUF_I32: s = v.i32; break;
    default: s = v.i64; break;
    }
    if (is_signed) {
        *neg = s < 0;
        *uv = s < 0 ? 0 : (uint64_t)s;
        *sv = s;
    } else {
        *neg = 0;
        *uv = u;
        *sv = u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    }
}

static ptq_status find_typed(const ptq_gguf *g, const char *key, const ptq_gguf_kv **out, ptq_error *err) {
    if (!g || !key || !out) return ptq_fail(err, PTQ_ERR_ARG, "gguf getter: NULL argument");
    if (!(*out = ptq_gguf_find_kv(g, key))) return ptq_fail(err, PTQ_ERR_CONFIG, "%s: no key \"%s\"", g->path, key);
    return PTQ_OK;
}

static ptq_status wrong_type(const ptq_gguf *g, const ptq_gguf_kv *kv, const char *expected, ptq_error *err) {
    char kb[96];
    const char *key = q(kb, sizeof kb, kv->key);
    if (kv->type == PTQ_GGUF_ARRAY)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\" is an array of %s, expected %s", g->path, key,
                        k_vtype_names[kv->elem_type], expected);
    return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\" is %s, expected %s", g->path, key,
                    k_vtype_names[kv->type], expected);
}

ptq_status ptq_gguf_get_u32(const ptq_gguf *g, const char *key, uint32_t *out, ptq_error *err) {
    const ptq_gguf_kv *kv;
    PTQ_TRY(find_typed(g, key, &kv, err));
    if (!is_int_type(kv->type)) return wrong_type(g, kv, "an unsigned integer", err);
    int64_t sv;
    uint64_t uv;
    int neg;
    int_at(kv->type, kv->value, 0, &sv, &uv, &neg);
    if (neg || uv > UINT32_MAX)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\" is %lld, expected 0..%u", g->path, key, (long long)sv,
                        UINT32_MAX);
    *out = (uint32_t)uv;
    return PTQ_OK;
}

ptq_status ptq_gguf_get_i32(const ptq_gguf *g, const char *key, int32_t *out, ptq_error *err) {
    const ptq_gguf_kv *kv;
    PTQ_TRY(find_typed(g, key, &kv, err));
    if (!is_int_type(kv->type)) return wrong_type(g, kv, "an integer", err);
    int64_t sv;
    uint64_t uv;
    int neg;
    int_at(kv->type, kv->value, 0, &sv, &uv, &neg);
    if (sv < INT32_MIN || sv > INT32_MAX)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\" is %lld, outside the 32-bit integer range", g->path, key,
                        (long long)sv);
    *out = (int32_t)sv;
    return PTQ_OK;
}

ptq_status ptq_gguf_get_f32(const ptq_gguf *g, const char *key, float *out, ptq_error *err) {
    const ptq_gguf_kv *kv;
    PTQ_TRY(find_typed(g, key, &kv, err));
    double d;
    if (kv->type == PTQ_GGUF_F32) {
        float f;
        memcpy(&f, kv->value, 4);
        d = f;
    } else if (kv->type == PTQ_GGUF_F64) {
        memcpy(&d, kv->value, 8);
    } else {
        return wrong_type(g, kv, "f32", err);
    }
    if (!isfinite(d) || fabs(d) > FLT_MAX)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\" is %g, expected a finite float", g->path, key, d);
    *out = (float)d;
    return PTQ_OK;
}

ptq_status ptq_gguf_get_bool(const ptq_gguf *g, const char *key, int *out, ptq_error *err) {
    const ptq_gguf_kv *kv;
    PTQ_TRY(find_typed(g, key, &kv, err));
    if (kv->type != PTQ_GGUF_BOOL) return wrong_type(g, kv, "bool", err);
    *out = kv->value[0] != 0;
    return PTQ_OK;
}

/* The string at p (u64 length + bytes, already validated) as a malloc'ed C string. */
static ptq_status copy_str(const ptq_gguf *g, const char *key, uint64_t idx, const unsigned char **p, char **out,
                           ptq_error *err) {
    uint64_t n;
    memcpy(&n, *p, 8);
    const char *s = (const char *)*p + 8;
    *p += 8 + n;
    if (memchr(s, 0, (size_t)n))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\": string %llu holds a NUL byte", g->path, key,
                        (unsigned long long)idx);
    if (!(*out = dup_mem(s, (size_t)n)))
        return ptq_fail(err, PTQ_ERR_NOMEM, "%s: key \"%s\": out of memory", g->path, key);
    return PTQ_OK;
}

ptq_status ptq_gguf_get_string(const ptq_gguf *g, const char *key, char **out, ptq_error *err) {
    const ptq_gguf_kv *kv;
    PTQ_TRY(find_typed(g, key, &kv, err));
    if (kv->type != PTQ_GGUF_STRING) return wrong_type(g, kv, "string", err);
    const unsigned char *p = kv->value;
    return copy_str(g, key, 0, &p, out, err);
}

static ptq_status find_array(const ptq_gguf *g, const char *key, const ptq_gguf_kv **kv, const char *expected,
                             ptq_error *err) {
    PTQ_TRY(find_typed(g, key, kv, err));
    if ((*kv)->type != PTQ_GGUF_ARRAY) return wrong_type(g, *kv, expected, err);
    if ((*kv)->count > INT_MAX)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\" has %llu elements, more than ptq handles (%d)", g->path,
                        key, (unsigned long long)(*kv)->count, INT_MAX);
    return PTQ_OK;
}

ptq_status ptq_gguf_get_strings(const ptq_gguf *g, const char *key, char ***out, int *n, ptq_error *err) {
    const ptq_gguf_kv *kv;
    PTQ_TRY(find_array(g, key, &kv, "an array of strings", err));
    if (kv->elem_type != PTQ_GGUF_STRING) return wrong_type(g, kv, "an array of strings", err);
    char **v = calloc(kv->count ? (size_t)kv->count : 1, sizeof *v);
    if (!v) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: key \"%s\": out of memory", g->path, key);
    const unsigned char *p = kv->value;
    for (uint64_t i = 0; i < kv->count; i++) {
        ptq_status s = copy_str(g, key, i, &p, &v[i], err);
        if (s != PTQ_OK) {
            for (uint64_t j = 0; j < i; j++) free(v[j]);
            free(v);
            return s;
        }
    }
    *out = v;
    *n = (int)kv->count;
    return PTQ_OK;
}

ptq_status ptq_gguf_get_f32s(const ptq_gguf *g, const char *key, float **out, int *n, ptq_error *err) {
    const ptq_gguf_kv *kv;
    PTQ_TRY(find_array(g, key, &kv, "an array of f32", err));
    if (kv->elem_type != PTQ_GGUF_F32) return wrong_type(g, kv, "an array of f32", err);
    float *v = malloc(kv->count ? (size_t)kv->count * sizeof *v : 1);
    if (!v) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: key \"%s\": out of memory", g->path, key);
    if (kv->count) memcpy(v, kv->value, (size_t)kv->count * sizeof *v);
    *out = v;
    *n = (int)kv->count;
    return PTQ_OK;
}

ptq_status ptq_gguf_get_i32s(const ptq_gguf *g, const char *key, int32_t **out, int *n, ptq_error *err) {
    const ptq_gguf_kv *kv;
    PTQ_TRY(find_array(g, key, &kv, "an array of i32", err));
    if (!is_int_type(kv->elem_type)) return wrong_type(g, kv, "an array of i32", err);
    int32_t *v = malloc(kv->count ? (size_t)kv->count * sizeof *v : 1);
    if (!v) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: key \"%s\": out of memory", g->path, key);
    for (uint64_t i = 0; i < kv->count; i++) {
        int64_t sv;
        uint64_t uv;
        int neg;
        int_at(kv->elem_type, kv->value, i, &sv, &uv, &neg);
        if (sv < INT32_MIN || sv > INT32_MAX) {
            free(v);
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: key \"%s\": element %llu is %lld, outside the 32-bit range",
                            g->path, key, (unsigned long long)i, (long long)sv);
        }
        v[i] = (int32_t)sv;
    }
    *out = v;
    *n = (int)kv->count;
    return PTQ_OK;
}

/* ---------------------------------------------------------------- tensor data */

ptq_status ptq_gguf_read_f32(const ptq_gguf *g, const ptq_gguf_tensor *t, float *dst, ptq_error *err) {
    if (!g || !t || !dst) return ptq_fail(err, PTQ_ERR_ARG, "ptq_gguf_read_f32: NULL argument");
    size_t n = (size_t)t->numel;
    const unsigned char *p = t->data;
    uint16_t h;
    char nb[96];
    switch (t->type) {
    case PTQ_GGML_F32:
        memcpy(dst, p, n * 4);
        break;
    case PTQ_GGML_F16:
        for (size_t i = 0; i < n; i++) {
            memcpy(&h, p + 2 * i, 2);
            dst[i] = ptq_f16_to_f32(h);
        }
        break;
    case PTQ_GGML_BF16:
        for (size_t i = 0; i < n; i++) {
            memcpy(&h, p + 2 * i, 2);
            dst[i] = ptq_bf16_to_f32(h);
        }
        break;
    default: {
        /* ggml's block types (quant/ggml_quants.h): ne[0], a multiple of the block, is checked at open */
        char buf[32];
        if (!ptq_ggml_quant_supported(t->type))
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                            "%s: tensor \"%s\" is %s, which is not supported for reading yet; supported: F32, F16, BF16, %s",
                            g->path, q(nb, sizeof nb, t->name), ptq_ggml_type_name(t->type, buf, sizeof buf),
                            ptq_ggml_quant_list());
        PTQ_TRY(ptq_ggml_dequantize_rows(t->type, p, dst, t->numel / t->ne[0], t->ne[0], err));
    }
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return ptq_fail(err, PTQ_ERR_NUMERIC, "%s: tensor \"%s\" has %s at flat index %zu", g->path,
                            q(nb, sizeof nb, t->name),
                            isnan(dst[i]) ? "NaN" : (dst[i] > 0 ? "+Inf" : "-Inf"), i);
    return PTQ_OK;
}
