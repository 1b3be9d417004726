/* Safetensors writer: collect tensors and string metadata, then write one file atomically
 * (a temporary file renamed into place, so a failed save leaves nothing behind).
 *
 * Data ownership: ptq_st_writer_add and ptq_st_writer_add_f32 COPY the bytes into the writer;
 * ptq_st_writer_add_ref only REFERENCES them, and the caller must keep them valid and unchanged
 * until ptq_st_writer_save has returned (use it for large weights to avoid a second copy).
 *
 * File layout: header JSON ("__metadata__" first, then tensors), padded with spaces so the data
 * section starts at a multiple of 8; tensors are stored without gaps, 8-byte dtypes first, then
 * 4-, 2- and 1-byte ones (each group in section order, then the order added), so every tensor is aligned to its element
 * size. Any safetensors reader can open the result. */
#ifndef PTQ_IO_SAFETENSORS_WRITE_H
#define PTQ_IO_SAFETENSORS_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "ptq.h"

typedef struct ptq_st_writer ptq_st_writer;

ptq_status ptq_st_writer_new(ptq_st_writer **out, ptq_error *err);
void ptq_st_writer_free(ptq_st_writer *w); /* NULL is fine */

/* Add a tensor. nbytes must equal numel(shape) * ptq_dtype_size(dtype); 0 <= ndim <= PTQ_ST_MAX_DIMS;
 * names must be non-empty, not "__metadata__", and unique (checked by ptq_st_writer_save). */
ptq_status ptq_st_writer_add(ptq_st_writer *w, const char *name, ptq_dtype dtype, int ndim, const int64_t *shape,
                             const void *data, size_t nbytes, ptq_error *err);
ptq_status ptq_st_writer_add_ref(ptq_st_writer *w, const char *name, ptq_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data, size_t nbytes, ptq_error *err);
/* Add float32 data stored as F32, F16 or BF16 (converted with round-to-nearest-even; copied). */
ptq_status ptq_st_writer_add_f32(ptq_st_writer *w, const char *name, ptq_dtype dtype, int ndim,
                                 const int64_t *shape, const float *data, ptq_error *err);

/* Set a "__metadata__" string (a second call with the same key replaces the value). */
ptq_status ptq_st_writer_set_metadata(ptq_st_writer *w, const char *key, const char *value, ptq_error *err);

int ptq_st_writer_count(const ptq_st_writer *w);
/* Tensor i (0 <= i < count, in section order, then the order added; data is NULL once spilled): its name and bytes as they will be written. */
void ptq_st_writer_entry(const ptq_st_writer *w, int i, const char **name, const void **data, size_t *nbytes);
/* Metadata entry i (0 <= i < ptq_st_writer_meta_count, in the order set). */
int ptq_st_writer_meta_count(const ptq_st_writer *w);
void ptq_st_writer_meta(const ptq_st_writer *w, int i, const char **key, const char **value);

/* Streaming (a model written block by block, docs/FORMAT.md is unchanged):
 * Sections order the tensors: every tensor of section a comes before those of section b > a in the list and in
 * the file layout (within a dtype size), whatever the order of the calls; the default section is 0.
 * ptq_st_writer_spill_open creates an unlinked scratch file beside path; ptq_st_writer_spill then moves the data
 * of every tensor of the current section not yet moved into it (computing its CRC-32C, see
 * ptq_st_writer_entry_crc), so the caller may free it; ptq_st_writer_save copies it back into place. The file
 * written is byte for byte the one the same calls without spilling give. */
void ptq_st_writer_set_section(ptq_st_writer *w, int section);
ptq_status ptq_st_writer_spill_open(ptq_st_writer *w, const char *path, ptq_error *err);
ptq_status ptq_st_writer_spill(ptq_st_writer *w, ptq_error *err);
/* 1 when entry i's data was spilled (its data pointer is then NULL), with its CRC-32C in *crc; else 0. */
int ptq_st_writer_entry_crc(const ptq_st_writer *w, int i, uint32_t *crc);

/* Write everything to path (atomically). The writer stays usable and must still be freed. */
ptq_status ptq_st_writer_save(const ptq_st_writer *w, const char *path, ptq_error *err);

#endif
