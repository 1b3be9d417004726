/* GGUF reading (llama.cpp's model format, versions 2 and 3), memory-mapped and validated before use.
 *
 * Layout of a file (all little-endian):
 *   "GGUF"  u32 version  u64 n_tensors  u64 n_kv
 *   n_kv    x { string key, u32 value_type, value }         value: scalar, string, or
 *                                                          { u32 elem_type, u64 count, elements }
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   padding to `general.alignment` (default 32), then the data section; tensor offsets are relative to it.
 *   string = u64 length + bytes (no NUL).
 *
 * GGUF files are handed around the internet, so nothing in one is trusted: every count and length is
 * checked against the bytes left, keys and tensor names must be unique, value and tensor types known,
 * dimensions positive with a product that fits, offsets aligned, inside the data section and not
 * overlapping. Values and tensor data stay in the mapping (nothing is copied until asked for).
 *
 * The type table and the layout helpers (ptq_ggml_type_info, ptq_ggml_nbytes, ptq_gguf_pad) are meant for
 * a GGUF writer too. */
#ifndef PTQ_IO_GGUF_H
#define PTQ_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/file.h"
#include "ptq.h"

#define PTQ_GGUF_MAGIC "GGUF"
#define PTQ_GGUF_DEFAULT_ALIGNMENT 32
#define PTQ_GGUF_MAX_DIMS 4  /* GGML_MAX_DIMS */
#define PTQ_GGUF_MAX_NAME 63 /* tensor names: GGML_MAX_NAME (64) with its NUL */

/* GGUF metadata value types (gguf_type) */
typedef enum {
    PTQ_GGUF_U8 = 0, PTQ_GGUF_I8 = 1, PTQ_GGUF_U16 = 2, PTQ_GGUF_I16 = 3, PTQ_GGUF_U32 = 4, PTQ_GGUF_I32 = 5,
    PTQ_GGUF_F32 = 6, PTQ_GGUF_BOOL = 7, PTQ_GGUF_STRING = 8, PTQ_GGUF_ARRAY = 9, PTQ_GGUF_U64 = 10,
    PTQ_GGUF_I64 = 11, PTQ_GGUF_F64 = 12,
    PTQ_GGUF_VTYPE_COUNT
} ptq_gguf_vtype;
const char *ptq_gguf_vtype_name(uint32_t t); /* "u32", "string", ...; "?" when unknown */

/* ggml tensor types (ggml_type); the numbering is the file's. */
enum {
    PTQ_GGML_F32 = 0, PTQ_GGML_F16 = 1, PTQ_GGML_Q4_0 = 2, PTQ_GGML_Q4_1 = 3, PTQ_GGML_Q5_0 = 6,
    PTQ_GGML_Q5_1 = 7, PTQ_GGML_Q8_0 = 8, PTQ_GGML_Q8_1 = 9, PTQ_GGML_Q2_K = 10, PTQ_GGML_Q3_K = 11,
    PTQ_GGML_Q4_K = 12, PTQ_GGML_Q5_K = 13, PTQ_GGML_Q6_K = 14, PTQ_GGML_Q8_K = 15, PTQ_GGML_I8 = 24,
    PTQ_GGML_I16 = 25, PTQ_GGML_I32 = 26, PTQ_GGML_I64 = 27, PTQ_GGML_F64 = 28, PTQ_GGML_BF16 = 30,
    PTQ_GGML_TYPE_COUNT = 43 /* one past the largest number in the table */
};
#define PTQ_GGML_QK8_0 32 /* Q8_0 block: an f16 scale d and 32 int8 q, value = d * q */

typedef struct ptq_ggml_type_info {
    const char *name;   /* "F32", "Q8_0", "Q4_K", ... */
    int block;          /* elements per block */
    int block_bytes;    /* bytes per block */
} ptq_ggml_type_info;
/* NULL for a number that is not (or no longer) a ggml type. */
const ptq_ggml_type_info *ptq_ggml_type_info_get(uint32_t type);
/* "Q4_K", or "type 31" (into buf) when unknown. */
const char *ptq_ggml_type_name(uint32_t type, char *buf, size_t cap);
/* Bytes of a tensor of `type` with dims ne[0..ndim) (ne[0] the row, fastest). Returns 0 and sets *out when the
 * type is known, every dim >= 1, ne[0] is a multiple of the block size and the size fits in int64; else -1. */
int ptq_ggml_nbytes(uint32_t type, const int64_t *ne, int ndim, int64_t *out);
/* offset rounded up to a multiple of alignment (a power of two). */
static inline uint64_t ptq_gguf_pad(uint64_t offset, uint64_t alignment) {
    return (offset + alignment - 1) & ~(alignment - 1);
}

typedef struct ptq_gguf_kv {
    char *key;                  /* NUL-terminated copy */
    uint32_t type;              /* ptq_gguf_vtype */
    uint32_t elem_type;         /* arrays: the element type; else = type */
    uint64_t count;             /* arrays: element count; scalars and strings: 1 */
    const unsigned char *value; /* inside the mapping: the scalar, the string's u64 length, or the first element */
} ptq_gguf_kv;

typedef struct ptq_gguf_tensor {
    char *name;   /* NUL-terminated copy */
    uint32_t type; /* ggml type */
    int ndim;
    int64_t ne[PTQ_GGUF_MAX_DIMS]; /* ggml order: ne[0] is the row length (a weight's input dimension) */
    int64_t numel;
    uint64_t offset; /* relative to the data section */
    size_t nbytes;
    const unsigned char *data; /* inside the mapping */
} ptq_gguf_tensor;

typedef struct ptq_gguf {
    char *path;
    ptq_mmap map;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset; /* where the data section starts in the file */
    int n_kv;
    ptq_gguf_kv *kv;           /* sorted by key */
    int n_tensors;
    ptq_gguf_tensor *tensors;  /* sorted by name */
} ptq_gguf;

/* 1 when the first bytes are the GGUF magic. */
int ptq_gguf_sniff(const unsigned char *data, size_t size);

/* Open and validate. PTQ_ERR_IO (cannot open/map), PTQ_ERR_FORMAT (malformed, truncated, inconsistent),
 * PTQ_ERR_UNSUPPORTED (GGUF v1, big-endian files), PTQ_ERR_NOMEM. On failure *g is left empty. */
ptq_status ptq_gguf_open(const char *path, ptq_gguf *g, ptq_error *err);
void ptq_gguf_close(ptq_gguf *g);

/* Metadata. ptq_gguf_find_kv: NULL when absent. The typed getters fail with PTQ_ERR_CONFIG when the key is
 * absent and PTQ_ERR_FORMAT when it has another type or a value out of the target's range; the integer
 * getters take any integer type whose value fits, ptq_gguf_get_f32 takes f32 or f64 (within float range). */
const ptq_gguf_kv *ptq_gguf_find_kv(const ptq_gguf *g, const char *key);
ptq_status ptq_gguf_get_u32(const ptq_gguf *g, const char *key, uint32_t *out, ptq_error *err);
ptq_status ptq_gguf_get_i32(const ptq_gguf *g, const char *key, int32_t *out, ptq_error *err);
ptq_status ptq_gguf_get_f32(const ptq_gguf *g, const char *key, float *out, ptq_error *err);
ptq_status ptq_gguf_get_bool(const ptq_gguf *g, const char *key, int *out, ptq_error *err);
/* A malloc'ed NUL-terminated copy (a value holding a NUL byte is refused). */
ptq_status ptq_gguf_get_string(const ptq_gguf *g, const char *key, char **out, ptq_error *err);
/* Arrays, copied into malloc'ed storage (free with free(); strings: each, then the array). *n gets the
 * count (at most INT_MAX). f32: an f32 array; i32: an i32 array (or another integer type whose values fit). */
ptq_status ptq_gguf_get_strings(const ptq_gguf *g, const char *key, char ***out, int *n, ptq_error *err);
ptq_status ptq_gguf_get_f32s(const ptq_gguf *g, const char *key, float **out, int *n, ptq_error *err);
ptq_status ptq_gguf_get_i32s(const ptq_gguf *g, const char *key, int32_t **out, int *n, ptq_error *err);

/* Tensors: NULL when absent. */
const ptq_gguf_tensor *ptq_gguf_find(const ptq_gguf *g, const char *name);
/* Convert a tensor to float32 (numel floats into dst, in the file's order: row-major with ne[0] fastest).
 * F32, F16, BF16 and ggml's block types of quant/ggml_quants.h (Q4_0..Q8_0, Q2_K..Q6_K) are read; other
 * types fail with PTQ_ERR_UNSUPPORTED naming the type and what is supported; a NaN/Inf value fails with PTQ_ERR_NUMERIC naming the tensor and index. */
ptq_status ptq_gguf_read_f32(const ptq_gguf *g, const ptq_gguf_tensor *t, float *dst, ptq_error *err);

#endif
