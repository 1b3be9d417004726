/* GGUF writing (version 3, little-endian), the counterpart of io/gguf.h.
 *
 * A writer collects metadata (every GGUF value type, arrays included) and tensors in memory, then writes the
 * file in one go: header, key-values in the order set, tensor infos in the order added, padding to the
 * alignment, the data section (each tensor at a multiple of the alignment). The alignment is 32 and is stated
 * in the file as general.alignment (u32), set first. Tensor bytes are copied into the writer, already in the
 * ggml type's storage (a Q4_K tensor is given as its blocks).
 *
 * ptq_gguf_writer_save writes atomically (core/file.h): a temporary file renamed into place on success, removed on
 * failure, so a file at `path` is never half-written; like every ptq writer it refuses to replace a folder, a
 * device or one of `inputs` (ptq_check_output). */
#ifndef PTQ_IO_GGUF_WRITE_H
#define PTQ_IO_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "io/gguf.h"
#include "ptq.h"

typedef struct ptq_gguf_writer ptq_gguf_writer;

ptq_status ptq_gguf_writer_new(ptq_gguf_writer **out, ptq_error *err);
void ptq_gguf_writer_free(ptq_gguf_writer *w); /* NULL is fine */

/* Metadata. Keys must be non-empty and unique (a second set of a key fails with PTQ_ERR_ARG).
 * ptq_gguf_set_scalar: type one of the numeric or bool types, *value of that C type (bool: one uint8_t 0/1).
 * ptq_gguf_set_array: elem_type numeric/bool (data: count packed values) or PTQ_GGUF_STRING (data: count
 * `const char *`, NUL-terminated). Nested arrays are not written (llama.cpp does not read them either). */
ptq_status ptq_gguf_set_scalar(ptq_gguf_writer *w, const char *key, uint32_t type, const void *value, ptq_error *err);
ptq_status ptq_gguf_set_array(ptq_gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                              uint64_t count, ptq_error *err);
ptq_status ptq_gguf_set_string(ptq_gguf_writer *w, const char *key, const char *value, ptq_error *err);
ptq_status ptq_gguf_set_u32(ptq_gguf_writer *w, const char *key, uint32_t v, ptq_error *err);
ptq_status ptq_gguf_set_i32(ptq_gguf_writer *w, const char *key, int32_t v, ptq_error *err);
ptq_status ptq_gguf_set_f32(ptq_gguf_writer *w, const char *key, float v, ptq_error *err);
ptq_status ptq_gguf_set_bool(ptq_gguf_writer *w, const char *key, int v, ptq_error *err);

/* A tensor of ggml `type` with ggml dims ne[0..ndim) (ne[0] the row, fastest; a weight [out][in] is {in, out}).
 * nbytes must be ptq_ggml_nbytes of the shape (so ne[0] a multiple of the type's block); names are 1 to 63 bytes
 * and unique. The bytes are copied. */
ptq_status ptq_gguf_add_tensor(ptq_gguf_writer *w, const char *name, uint32_t type, int ndim, const int64_t *ne,
                               const void *data, size_t nbytes, ptq_error *err);

/* Writes the file atomically; `inputs` (n of them, may be NULL/0) are files it must not replace. */
ptq_status ptq_gguf_writer_save(const ptq_gguf_writer *w, const char *path, const char *const *inputs, int n,
                                ptq_error *err);

#endif
