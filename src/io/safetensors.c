/* Safetensors reader. Layout of a file: u64 little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}),
 * then the data section; offsets are relative to the start of the data section.
 * Everything is validated before any tensor pointer is handed out. */
#include "io/safetensors.h"

#include <cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ptq reads safetensors data in place and needs a little-endian host"
#endif

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
#define ST_MAX_JSON_INT 9007199254740992.0 /* 2^53: larger integers are not exact in a double */

static const char *const k_dtype_names[PTQ_DT_COUNT] = {"F32", "F16", "BF16", "F64", "I8",
                                                       "U8",  "I16", "I32",  "I64", "BOOL"};
static const size_t k_dtype_sizes[PTQ_DT_COUNT] = {4, 2, 2, 8, 1, 1, 2, 4, 8, 1};

const char *ptq_dtype_name(ptq_dtype d) { return (unsigned)d < PTQ_DT_COUNT ? k_dtype_names[d] : "?"; }
size_t ptq_dtype_size(ptq_dtype d) { return (unsigned)d < PTQ_DT_COUNT ? k_dtype_sizes[d] : 0; }

int ptq_dtype_from_name(const char *name, ptq_dtype *out) {
    if (!name) return -1;
    for (int i = 0; i < PTQ_DT_COUNT; i++)
        if (strcmp(name, k_dtype_names[i]) == 0) {
            *out = (ptq_dtype)i;
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------- half-precision conversions */

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float ptq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return bits_to_f32(sign); /* +-0 */
        /* subnormal: man * 2^-24; normalise so the leading 1 lands on bit 10 */
        int e = -14;
        while (!(man & 0x400u)) {
            man <<= 1;
            e--;
        }
        man &= 0x3ffu;
        return bits_to_f32(sign | (uint32_t)(e + 127) << 23 | man << 13);
    }
    return bits_to_f32(sign | (exp + 112u) << 23 | man << 13); /* 112 = 127 - 15 */
}

float ptq_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

/* v >> s (1 <= s <= 31) rounded to nearest, ties to even. */
static uint32_t shift_rne(uint32_t v, int s) {
    uint32_t q = v >> s, r = v & ((1u << s) - 1), half = 1u << (s - 1);
    if (r > half || (r == half && (q & 1u))) q++;
    return q;
}

uint16_t ptq_f32_to_f16(float f) {
    uint32_t u = f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* nan stays nan */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf (and inf) */
    if (a < 0x38800000u) {                                   /* below 2^-14: f16 subnormal or zero */
        if (a <= 0x33000000u) return sign;                   /* <= 2^-25 rounds to zero (tie to even) */
        uint32_t e = a >> 23, man = (a & 0x7fffffu) | 0x800000u;
        return (uint16_t)(sign | shift_rne(man, (int)(126 - e))); /* in units of 2^-24; may carry into 0x400 */
    }
    /* normal: rebias the exponent, round the mantissa; a carry propagates into the exponent */
    uint32_t biased = a - (112u << 23);
    return (uint16_t)(sign | shift_rne(biased, 13));
}

uint16_t ptq_f32_to_bf16(float f) {
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet nan, keep sign */
    return (uint16_t)(shift_rne(u, 16) & 0xffffu); /* overflow rounds into inf naturally */
}

/* ---------------------------------------------------------------- small helpers */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static void fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t len = 0;
    len += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* A JSON number holding an integer in [0, 2^53]. */
static int json_uint(const cJSON *it, uint64_t *out) {
    if (!cJSON_IsNumber(it)) return 0;
    double d = it->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_JSON_INT || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int is_blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Parse JSON text; on failure, fill err with `what` and the line/column of the error. */
static cJSON *parse_json(const char *text, size_t n, const char *path, const char *what, ptq_error *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        size_t pos = (end && end >= text && end <= text + n) ? (size_t)(end - text) : 0;
        size_t line = 1, col = 1;
        for (size_t i = 0; i < pos; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        char near[48];
        ptq_snippet(near, sizeof near, text + pos, n - pos < 24 ? n - pos : 24);
        ptq_fail(err, PTQ_ERR_FORMAT, "%s: %s is not valid JSON (error near line %zu, column %zu: \"%s\")", path,
                 what, line, col, near);
        return NULL;
    }
    for (size_t i = (size_t)(end - text); i < n; i++) {
        if (!is_blank((unsigned char)text[i])) {
            char near[48];
            ptq_snippet(near, sizeof near, text + i, n - i < 24 ? n - i : 24);
            ptq_fail(err, PTQ_ERR_FORMAT, "%s: %s has unexpected text after the JSON at byte %zu: \"%s\"", path,
                     what, i, near);
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

/* ---------------------------------------------------------------- tensor list */

typedef struct {
    ptq_st_tensor *v;
    int n, cap;
} tvec;

static ptq_st_tensor *tvec_push(tvec *tv, ptq_error *err) {
    if (tv->n == tv->cap) {
        int cap = tv->cap ? tv->cap * 2 : 64;
        if (cap <= tv->cap) {
            ptq_fail(err, PTQ_ERR_NOMEM, "too many tensors");
            return NULL;
        }
        ptq_st_tensor *v = realloc(tv->v, (size_t)cap * sizeof *v);
        if (!v) {
            ptq_fail(err, PTQ_ERR_NOMEM, "cannot grow the tensor table to %d entries", cap);
            return NULL;
        }
        tv->v = v;
        tv->cap = cap;
    }
    ptq_st_tensor *t = &tv->v[tv->n++];
    memset(t, 0, sizeof *t);
    return t;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const ptq_st_tensor *)a)->name, ((const ptq_st_tensor *)b)->name);
}

static int cmp_tensor_ptr_pos(const void *a, const void *b) {
    const ptq_st_tensor *x = *(const ptq_st_tensor *const *)a, *y = *(const ptq_st_tensor *const *)b;
    if (x->data != y->data) return x->data < y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

typedef struct {
    char *key, *value;
} meta_kv;

static int cmp_meta(const void *a, const void *b) { return strcmp(((const meta_kv *)a)->key, ((const meta_kv *)b)->key); }

/* Store a validated __metadata__ object in st. */
static ptq_status store_metadata(const cJSON *meta, const char *path, ptq_safetensors *st, ptq_error *err) {
    int n = cJSON_GetArraySize(meta);
    meta_kv *kv = calloc(n ? (size_t)n : 1, sizeof *kv);
    char *json = cJSON_PrintUnformatted(meta);
    ptq_status s = PTQ_OK;
    if (!kv || !json) {
        s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot store __metadata__", path);
        goto out;
    }
    int i = 0;
    for (const cJSON *c = meta->child; c && i < n; c = c->next, i++) {
        kv[i].key = c->string;
        kv[i].value = c->valuestring;
    }
    qsort(kv, (size_t)n, sizeof *kv, cmp_meta);
    for (i = 1; i < n; i++)
        if (strcmp(kv[i - 1].key, kv[i].key) == 0) {
            s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ key \"%s\" appears twice", path, kv[i].key);
            goto out;
        }
    st->metadata_json = dup_str(json);
    st->meta_keys = calloc(n ? (size_t)n : 1, sizeof(char *));
    st->meta_values = calloc(n ? (size_t)n : 1, sizeof(char *));
    if (!st->metadata_json || !st->meta_keys || !st->meta_values) {
        s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot store __metadata__", path);
        goto out;
    }
    for (i = 0; i < n; i++) {
        st->meta_keys[i] = dup_str(kv[i].key);
        st->meta_values[i] = dup_str(kv[i].value);
        st->n_meta = i + 1;
        if (!st->meta_keys[i] || !st->meta_values[i]) {
            s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot store __metadata__", path);
            goto out;
        }
    }
out:
    free(kv);
    if (json) cJSON_free(json);
    return s;
}

/* Validate one tensor entry of a header and append it to tv. */
static ptq_status parse_entry(const cJSON *e, const char *path, const unsigned char *base, uint64_t data_size,
                              int file_idx, tvec *tv, ptq_error *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: header entry for tensor \"%s\" is not an object", path, name);

    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(jd))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" has no \"dtype\" string", path, name);
    ptq_dtype dt;
    if (ptq_dtype_from_name(jd->valuestring, &dt) != 0) {
        char d[48];
        ptq_snippet(d, sizeof d, jd->valuestring, strlen(jd->valuestring));
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: tensor \"%s\" has unknown dtype \"%s\" (expected one of F32 F16 BF16 F64 I8 U8 I16 "
                        "I32 I64 BOOL)",
                        path, name, d);
    }

    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(js))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" has no \"shape\" array", path, name);
    int ndim = cJSON_GetArraySize(js);
    if (ndim > PTQ_ST_MAX_DIMS)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" has %d dimensions (at most %d supported)", path,
                        name, ndim, PTQ_ST_MAX_DIMS);
    int64_t shape[PTQ_ST_MAX_DIMS];
    int d = 0, any_zero = 0;
    for (const cJSON *c = js->child; c && d < ndim; c = c->next, d++) {
        uint64_t v;
        if (!json_uint(c, &v)) {
            if (cJSON_IsNumber(c))
                return ptq_fail(err, PTQ_ERR_FORMAT,
                                "%s: tensor \"%s\" shape[%d] is %g; expected a non-negative integer", path, name,
                                d, c->valuedouble);
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" shape[%d] is not a number", path, name, d);
        }
        shape[d] = (int64_t)v;
        if (v == 0) any_zero = 1;
    }
    /* numel and byte size with overflow checks (a zero dimension makes everything zero) */
    uint64_t numel = 1;
    int overflow = 0;
    if (any_zero) {
        numel = 0;
    } else {
        for (d = 0; d < ndim; d++) {
            uint64_t v = (uint64_t)shape[d];
            if (numel > (uint64_t)INT64_MAX / v) {
                overflow = 1;
                break;
            }
            numel *= v;
        }
    }
    size_t esz = k_dtype_sizes[dt];
    if (!overflow && numel > (uint64_t)SIZE_MAX / esz) overflow = 1;
    char sh[256];
    fmt_shape(sh, sizeof sh, ndim, shape);
    if (overflow)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" shape %s is too large (element count overflows)",
                        path, name, sh);
    uint64_t need = numel * esz;

    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, &begin) ||
        !json_uint(jo->child->next, &end))
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: tensor \"%s\" \"data_offsets\" must be [begin, end] with non-negative integers", path,
                        name);
    if (begin > end)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" data_offsets [%llu, %llu] end before they begin",
                        path, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: tensor \"%s\" data_offsets [%llu, %llu] run past the end of the data section (%llu "
                        "bytes; file truncated?)",
                        path, name, (unsigned long long)begin, (unsigned long long)end,
                        (unsigned long long)data_size);
    if (end - begin != need)
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: tensor \"%s\" data_offsets [%llu, %llu] hold %llu bytes, but shape %s of %s needs %llu",
                        path, name, (unsigned long long)begin, (unsigned long long)end,
                        (unsigned long long)(end - begin), sh, k_dtype_names[dt], (unsigned long long)need);

    ptq_st_tensor *t = tvec_push(tv, err);
    if (!t) return err ? err->status : PTQ_ERR_NOMEM;
    t->name = dup_str(name);
    if (!t->name) {
        tv->n--;
        return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot copy tensor name", path);
    }
    t->dtype = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof shape[0]);
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)need;
    t->data = base + begin;
    t->file = file_idx;
    return PTQ_OK;
}

/* Validate one mapped safetensors file and append its tensors to tv. When st_meta is non-NULL,
 * its __metadata__ is stored there. */
static ptq_status parse_file(const char *path, const ptq_mmap *m, int file_idx, tvec *tv, ptq_safetensors *st_meta,
                             ptq_error *err) {
    if (m->size < 8)
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: file is %zu bytes, too short for a safetensors header (the length alone takes 8)", path,
                        m->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | m->data[i];
    uint64_t avail = (uint64_t)m->size - 8;
    if (n == 0) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: header length is 0", path);
    if (n > avail)
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: header length %llu runs past the end of the file (%zu bytes; truncated or not a "
                        "safetensors file?)",
                        path, (unsigned long long)n, m->size);
    if (n > ST_MAX_HEADER)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: header length %llu exceeds the %llu-byte limit", path,
                        (unsigned long long)n, (unsigned long long)ST_MAX_HEADER);
    if (m->data[8] != '{')
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: header does not start with '{' (not a safetensors file?)", path);

    const void *nul = memchr(m->data + 8, 0, (size_t)n);
    if (nul)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: header holds a NUL byte at offset %td", path,
                        (const unsigned char *)nul - (m->data + 8));
    /* parse from a private NUL-terminated copy, so the parser never reads the mapping directly */
    char *text = malloc((size_t)n + 1);
    if (!text) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %llu bytes for the header", path,
                               (unsigned long long)n);
    memcpy(text, m->data + 8, (size_t)n);
    text[n] = 0;
    cJSON *root = parse_json(text, (size_t)n, path, "header", err);
    free(text);
    if (!root) return err ? err->status : PTQ_ERR_FORMAT;

    ptq_status s = PTQ_OK;
    int first = tv->n, seen_meta = 0;
    const unsigned char *base = m->data + 8 + n;
    uint64_t data_size = avail - n;
    if (!cJSON_IsObject(root)) {
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto out;
    }
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_meta++) {
                s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: header has two __metadata__ entries", path);
                goto out;
            }
            if (!cJSON_IsObject(e)) {
                s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ is not an object", path);
                goto out;
            }
            for (const cJSON *c = e->child; c; c = c->next)
                if (!cJSON_IsString(c)) {
                    s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ value for \"%s\" is not a string", path,
                                 c->string);
                    goto out;
                }
            if (st_meta && (s = store_metadata(e, path, st_meta, err)) != PTQ_OK) goto out;
            continue;
        }
        if ((s = parse_entry(e, path, base, data_size, file_idx, tv, err)) != PTQ_OK) goto out;
    }

    /* no two tensors of this file may share a byte (empty tensors occupy none) */
    int cnt = tv->n - first;
    if (cnt > 1) {
        ptq_st_tensor **order = malloc((size_t)cnt * sizeof *order);
        if (!order) {
            s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot check tensor offsets", path);
            goto out;
        }
        int k = 0;
        for (int i = first; i < tv->n; i++)
            if (tv->v[i].nbytes) order[k++] = &tv->v[i];
        qsort(order, (size_t)k, sizeof *order, cmp_tensor_ptr_pos);
        for (int i = 1; i < k; i++) {
            const ptq_st_tensor *a = order[i - 1], *b = order[i];
            if (b->data < a->data + a->nbytes) {
                s = ptq_fail(err, PTQ_ERR_FORMAT,
                             "%s: tensors \"%s\" (bytes %td..%td) and \"%s\" (bytes %td..%td) overlap", path,
                             a->name, a->data - base, a->data - base + (ptrdiff_t)a->nbytes, b->name,
                             b->data - base, b->data - base + (ptrdiff_t)b->nbytes);
                break;
            }
        }
        free(order);
    }
out:
    cJSON_Delete(root);
    return s;
}

/* Sort by name and reject duplicates (within one file or across shards). */
static ptq_status sort_and_check(ptq_safetensors *st, ptq_error *err) {
    if (st->n_tensors > 1) qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor_name);
    for (int i = 1; i < st->n_tensors; i++) {
        const ptq_st_tensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
        if (strcmp(a->name, b->name) != 0) continue;
        if (a->file == b->file)
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" appears twice in the header",
                            st->file_paths[a->file], a->name);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor \"%s\" is in two shards: %s and %s", st->path, a->name,
                        st->file_paths[a->file], st->file_paths[b->file]);
    }
    return PTQ_OK;
}

/* ---------------------------------------------------------------- sharded index */

typedef struct {
    const char *tensor, *shard;
} wm_entry;

static int cmp_wm_tensor(const void *a, const void *b) {
    return strcmp(((const wm_entry *)a)->tensor, ((const wm_entry *)b)->tensor);
}
static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Shard names are relative paths inside the index's folder: no absolute paths, no "..". */
static int shard_name_ok(const char *s) {
    if (!s[0] || s[0] == '/') return 0;
    for (const char *p = s; *p;) {
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!q) break;
        p = q + 1;
    }
    return 1;
}

static int looks_like_index(const ptq_mmap *m) {
    size_t head = m->size < 8 ? m->size : 8;
    if (memchr(m->data, 0, head)) return 0; /* a safetensors length field below 2^56 has a zero top byte */
    size_t i = 0;
    if (m->size >= 3 && m->data[0] == 0xef && m->data[1] == 0xbb && m->data[2] == 0xbf) i = 3; /* UTF-8 BOM */
    while (i < m->size && is_blank(m->data[i])) i++;
    return i < m->size && m->data[i] == '{';
}

static ptq_status open_index(const char *path, const ptq_mmap *im, ptq_safetensors *st, tvec *tv, ptq_error *err) {
    size_t skip = (im->size >= 3 && im->data[0] == 0xef && im->data[1] == 0xbb && im->data[2] == 0xbf) ? 3 : 0;
    size_t n = im->size - skip;
    if (n > ST_MAX_HEADER)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: index is %zu bytes, over the %llu-byte limit", path, n,
                        (unsigned long long)ST_MAX_HEADER);
    char *text = malloc(n + 1);
    if (!text) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
    memcpy(text, im->data + skip, n);
    text[n] = 0;
    size_t len = strlen(text);
    if (len != n) {
        free(text);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: index holds a NUL byte at offset %zu", path, len + skip);
    }
    cJSON *root = parse_json(text, n, path, "index", err);
    free(text);
    if (!root) return err ? err->status : PTQ_ERR_FORMAT;

    ptq_status s = PTQ_OK;
    wm_entry *wm = NULL;
    const char **shards = NULL;
    char *full = NULL;
    int n_wm = 0, n_sh = 0;
    if (!cJSON_IsObject(root)) {
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: index is not a JSON object", path);
        goto out;
    }
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (meta && !cJSON_IsObject(meta) && !cJSON_IsNull(meta)) {
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: index \"metadata\" is not an object", path);
        goto out;
    }
    if (!cJSON_IsObject(map)) {
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: index has no \"weight_map\" object", path);
        goto out;
    }
    n_wm = cJSON_GetArraySize(map);
    if (n_wm == 0) {
        s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: index \"weight_map\" is empty", path);
        goto out;
    }
    wm = calloc((size_t)n_wm, sizeof *wm);
    shards = calloc((size_t)n_wm, sizeof *shards);
    if (!wm || !shards) {
        s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate the weight map", path);
        goto out;
    }
    int i = 0;
    for (const cJSON *c = map->child; c && i < n_wm; c = c->next, i++) {
        if (!cJSON_IsString(c) || !shard_name_ok(c->valuestring)) {
            s = ptq_fail(err, PTQ_ERR_FORMAT,
                         "%s: weight_map entry for tensor \"%s\" must be a relative shard file name (no \"..\")",
                         path, c->string);
            goto out;
        }
        wm[i].tensor = c->string;
        wm[i].shard = c->valuestring;
        shards[i] = c->valuestring;
    }
    qsort(wm, (size_t)n_wm, sizeof *wm, cmp_wm_tensor);
    for (i = 1; i < n_wm; i++)
        if (strcmp(wm[i - 1].tensor, wm[i].tensor) == 0) {
            s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: weight_map lists tensor \"%s\" twice", path, wm[i].tensor);
            goto out;
        }
    qsort(shards, (size_t)n_wm, sizeof *shards, cmp_str_ptr);
    for (i = 0; i < n_wm; i++)
        if (n_sh == 0 || strcmp(shards[n_sh - 1], shards[i]) != 0) shards[n_sh++] = shards[i];

    st->file_paths = calloc((size_t)n_sh, sizeof *st->file_paths);
    st->maps = calloc((size_t)n_sh, sizeof *st->maps);
    if (!st->file_paths || !st->maps) {
        s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate the shard table", path);
        goto out;
    }
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    for (i = 0; i < n_sh; i++) {
        size_t len = dirlen + strlen(shards[i]) + 1;
        full = malloc(len);
        if (!full) {
            s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate a shard path", path);
            goto out;
        }
        memcpy(full, path, dirlen);
        memcpy(full + dirlen, shards[i], len - dirlen);
        st->file_paths[i] = full;
        full = NULL;
        st->n_files = i + 1;
        if ((s = ptq_mmap_open(st->file_paths[i], &st->maps[i], err)) != PTQ_OK ||
            (s = parse_file(st->file_paths[i], &st->maps[i], i, tv, i == 0 ? st : NULL, err)) != PTQ_OK) {
            ptq_fail_context(err, "%s: shard \"%s\"", path, shards[i]);
            goto out;
        }
    }
    st->tensors = tv->v;
    st->n_tensors = tv->n;
    tv->v = NULL;
    tv->n = tv->cap = 0;
    if ((s = sort_and_check(st, err)) != PTQ_OK) goto out;

    /* every tensor the index promises must be in the shard it names */
    for (i = 0; i < n_wm; i++) {
        const ptq_st_tensor *t = ptq_st_find(st, wm[i].tensor);
        if (!t || strcmp(shards[t->file], wm[i].shard) != 0) {
            s = ptq_fail(err, PTQ_ERR_FORMAT, "%s: weight_map puts tensor \"%s\" in %s, but that shard has no such tensor%s%s",
                         path, wm[i].tensor, wm[i].shard, t ? "; it is in " : "", t ? shards[t->file] : "");
            goto out;
        }
    }
out:
    free(full);
    free(wm);
    free(shards);
    cJSON_Delete(root);
    return s;
}

/* ---------------------------------------------------------------- public API */

ptq_status ptq_st_open(const char *path, ptq_safetensors *st, ptq_error *err) {
    if (!st) return ptq_fail(err, PTQ_ERR_ARG, "ptq_st_open: st is NULL");
    memset(st, 0, sizeof *st);
    if (!path) return ptq_fail(err, PTQ_ERR_ARG, "ptq_st_open: path is NULL");
    st->path = dup_str(path);
    if (!st->path) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory", path);

    ptq_mmap m;
    ptq_status s = ptq_mmap_open(path, &m, err);
    if (s != PTQ_OK) {
        ptq_st_close(st);
        return s;
    }
    tvec tv = {0};
    if (looks_like_index(&m)) {
        s = open_index(path, &m, st, &tv, err);
        ptq_mmap_close(&m);
    } else {
        st->file_paths = calloc(1, sizeof *st->file_paths);
        st->maps = calloc(1, sizeof *st->maps);
        if (!st->file_paths || !st->maps || !(st->file_paths[0] = dup_str(path))) {
            ptq_mmap_close(&m);
            s = ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory", path);
        } else {
            st->maps[0] = m;
            st->n_files = 1;
            s = parse_file(path, &st->maps[0], 0, &tv, st, err);
            if (s == PTQ_OK) {
                st->tensors = tv.v;
                st->n_tensors = tv.n;
                tv.v = NULL;
                tv.n = 0;
                s = sort_and_check(st, err);
            }
        }
    }
    for (int i = 0; i < tv.n; i++) free(tv.v[i].name);
    free(tv.v);
    if (s != PTQ_OK) ptq_st_close(st);
    return s;
}

void ptq_st_close(ptq_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_files; i++) {
        if (st->maps) ptq_mmap_close(&st->maps[i]);
        if (st->file_paths) free(st->file_paths[i]);
    }
    free(st->maps);
    free(st->file_paths);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->metadata_json);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const ptq_st_tensor *ptq_st_find(const ptq_safetensors *st, const char *name) {
    if (!st || !name || !st->n_tensors) return NULL;
    int lo = 0, hi = st->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->tensors[mid].name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *ptq_st_metadata(const ptq_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    int lo = 0, hi = st->n_meta - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(key, st->meta_keys[mid]);
        if (c == 0) return st->meta_values[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

ptq_status ptq_st_check_shape(const ptq_safetensors *st, const ptq_st_tensor *t, int ndim, const int64_t *shape,
                              ptq_error *err) {
    const char *file = st->file_paths[t->file];
    if (ndim < 0 || ndim > PTQ_ST_MAX_DIMS || (ndim > 0 && !shape))
        return ptq_fail(err, PTQ_ERR_ARG, "%s: tensor \"%s\": bad expected shape (ndim %d)", file, t->name, ndim);
    int same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
    if (!same) {
        char have[256], want[256];
        fmt_shape(have, sizeof have, t->ndim, t->shape);
        fmt_shape(want, sizeof want, ndim, shape);
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: tensor %s has shape %s, expected %s", file, t->name, have, want);
    }
    return PTQ_OK;
}

/* Elements [i0, i0 + n) of t as float32, checked finite (flat indices in the messages). */
static ptq_status convert_f32(const ptq_safetensors *st, const ptq_st_tensor *t, size_t i0, size_t n, float *dst,
                              ptq_error *err) {
    const char *file = st->file_paths[t->file], *name = t->name;
    const unsigned char *p = t->data + i0 * ptq_dtype_size(t->dtype);
    switch (t->dtype) {
    case PTQ_DT_F32:
        if (n) memcpy(dst, p, n * 4);
        break;
    case PTQ_DT_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = ptq_f16_to_f32(h);
        }
        break;
    case PTQ_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = ptq_bf16_to_f32(h);
        }
        break;
    case PTQ_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            if (!isfinite(d))
                return ptq_fail(err, PTQ_ERR_NUMERIC, "%s: tensor %s has %s at flat index %zu", file, name,
                                isnan(d) ? "NaN" : (d > 0 ? "+Inf" : "-Inf"), i0 + i);
            if (fabs(d) > FLT_MAX)
                return ptq_fail(err, PTQ_ERR_NUMERIC,
                                "%s: tensor %s value %g at flat index %zu is outside the float32 range", file, name,
                                d, i0 + i);
            dst[i] = (float)d;
        }
        return PTQ_OK;
    default:
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                        "%s: tensor %s has integer dtype %s; only F32, F16, BF16 and F64 can be read as float", file,
                        name, k_dtype_names[t->dtype]);
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return ptq_fail(err, PTQ_ERR_NUMERIC, "%s: tensor %s has %s at flat index %zu", file, name,
                            isnan(dst[i]) ? "NaN" : (dst[i] > 0 ? "+Inf" : "-Inf"), i0 + i);
    return PTQ_OK;
}

ptq_status ptq_st_read_f32(const ptq_safetensors *st, const char *name, int ndim, const int64_t *shape,
                           float *dst, ptq_error *err) {
    if (!st || !name) return ptq_fail(err, PTQ_ERR_ARG, "ptq_st_read_f32: NULL argument");
    const ptq_st_tensor *t = ptq_st_find(st, name);
    if (!t)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: no tensor named \"%s\"", st->path ? st->path : "safetensors",
                        name);
    const char *file = st->file_paths[t->file];
    if (ndim >= 0) PTQ_TRY(ptq_st_check_shape(st, t, ndim, shape, err));
    size_t n = (size_t)t->numel;
    if (n && !dst) return ptq_fail(err, PTQ_ERR_ARG, "%s: tensor \"%s\": destination is NULL", file, name);
    return convert_f32(st, t, 0, n, dst, err);
}

ptq_status ptq_st_read_f32_rows(const ptq_safetensors *st, const ptq_st_tensor *t, int64_t row0, int64_t n_rows,
                                float *dst, ptq_error *err) {
    if (!st || !t || t->ndim != 2 || row0 < 0 || n_rows < 0 || row0 + n_rows > t->shape[0] || (n_rows && !dst))
        return ptq_fail(err, PTQ_ERR_ARG, "%s: rows %lld..%lld of tensor %s (%lld rows) cannot be read",
                        st ? st->file_paths[t ? t->file : 0] : "safetensors", (long long)row0,
                        (long long)(row0 + n_rows - 1), t ? t->name : "(none)", t ? (long long)t->shape[0] : 0LL);
    size_t cols = (size_t)t->shape[1];
    return convert_f32(st, t, (size_t)row0 * cols, (size_t)n_rows * cols, dst, err);
}
