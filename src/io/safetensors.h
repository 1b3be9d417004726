/* Safetensors reading (memory-mapped, validated before use) for single files and sharded
 * model.safetensors.index.json sets. Nothing in a file is trusted: header length, JSON,
 * dtypes, shapes and every data offset are checked against the file before any tensor is read. */
#ifndef PTQ_IO_SAFETENSORS_H
#define PTQ_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/file.h"
#include "ptq.h"

typedef enum {
    PTQ_DT_F32 = 0, PTQ_DT_F16, PTQ_DT_BF16, PTQ_DT_F64,
    PTQ_DT_I8, PTQ_DT_U8, PTQ_DT_I16, PTQ_DT_I32, PTQ_DT_I64, PTQ_DT_BOOL,
    PTQ_DT_COUNT
} ptq_dtype;

const char *ptq_dtype_name(ptq_dtype d); /* "F32", ... as in safetensors headers; "?" when out of range */
size_t ptq_dtype_size(ptq_dtype d);      /* bytes per element; 0 when out of range */
/* Parse a header dtype name ("F32", ...); returns 0 and sets *out on success, -1 when unknown. */
int ptq_dtype_from_name(const char *name, ptq_dtype *out);

#define PTQ_ST_MAX_DIMS 8

typedef struct ptq_st_tensor {
    char *name;
    ptq_dtype dtype;
    int ndim;
    int64_t shape[PTQ_ST_MAX_DIMS];
    int64_t numel;
    size_t nbytes;
    const unsigned char *data; /* inside the mapping */
    int file;                  /* index into files[] */
} ptq_st_tensor;

typedef struct ptq_safetensors {
    int n_files;
    char **file_paths;
    ptq_mmap *maps;
    ptq_st_tensor *tensors; /* sorted by name */
    int n_tensors;
    char *metadata_json;    /* the "__metadata__" object re-serialised, or NULL (sharded: the first shard's) */
    char *path;             /* the path given to ptq_st_open (the index for a sharded set) */
    int n_meta;             /* __metadata__ entries, sorted by key */
    char **meta_keys;
    char **meta_values;
} ptq_safetensors;

/* Open a .safetensors file or a model.safetensors.index.json (shards resolved relative to it).
 * The kind is recognised from the content: a file whose first 8 bytes hold no NUL and whose first
 * non-blank byte is '{' is an index. Failures: PTQ_ERR_IO (cannot open/map), PTQ_ERR_FORMAT
 * (anything malformed, truncated or inconsistent), PTQ_ERR_NOMEM. On failure *st is left empty. */
ptq_status ptq_st_open(const char *path, ptq_safetensors *st, ptq_error *err);
void ptq_st_close(ptq_safetensors *st);

/* NULL when absent. */
const ptq_st_tensor *ptq_st_find(const ptq_safetensors *st, const char *name);

/* A metadata string value from __metadata__ (NULL when absent). Pointer valid while st is open. */
const char *ptq_st_metadata(const ptq_safetensors *st, const char *key);

/* PTQ_OK when tensor t of st has exactly shape[0..ndim); else PTQ_ERR_CONFIG naming the file, the tensor,
 * its shape and the expected one. Check this before allocating a buffer sized from the expected shape. */
ptq_status ptq_st_check_shape(const ptq_safetensors *st, const ptq_st_tensor *t, int ndim, const int64_t *shape,
                              ptq_error *err);

/* Read a tensor converted to float32 into dst (numel floats). The stored shape must equal
 * `shape[0..ndim)` (pass ndim = -1 to skip the check). Fails with a message naming the file and
 * tensor on a missing tensor (PTQ_ERR_FORMAT), a shape mismatch (PTQ_ERR_CONFIG), an integer
 * dtype (PTQ_ERR_UNSUPPORTED), or a NaN/Inf value or an F64 value beyond float range (PTQ_ERR_NUMERIC). */
ptq_status ptq_st_read_f32(const ptq_safetensors *st, const char *name, int ndim, const int64_t *shape,
                           float *dst, ptq_error *err);
/* Rows [row0, row0 + n_rows) of the 2-D float tensor t of st as float32, with ptq_st_read_f32's checks (e.g. one
 * token's embedding from a mapped model). */
ptq_status ptq_st_read_f32_rows(const ptq_safetensors *st, const ptq_st_tensor *t, int64_t row0, int64_t n_rows,
                                float *dst, ptq_error *err);

/* Conversions used by the reader (exposed for tests). f32 -> f16/bf16 round to nearest, ties to
 * even; overflow gives Inf; NaN stays NaN (quiet) with its sign. f16 subnormals are exact. */
float ptq_f16_to_f32(uint16_t h);
float ptq_bf16_to_f32(uint16_t h);
uint16_t ptq_f32_to_f16(float f);
uint16_t ptq_f32_to_bf16(float f);

#endif
