/* Reading the ptq model file (docs/FORMAT.md); writing is ptq_model_save in ptq.h. */
#ifndef PTQ_IO_QMODEL_H
#define PTQ_IO_QMODEL_H

#include "io/safetensors.h"
#include "io/safetensors_write.h"
#include "models/model.h"

/* 1 when the safetensors file says __metadata__ format = "ptq". */
int ptq_qmodel_is_ptq(const ptq_safetensors *st);
/* opt NULL: verify the checksums. */
ptq_status ptq_qmodel_load(const char *path, const ptq_safetensors *st, const ptq_load_options *opt, ptq_model **out,
                           ptq_error *err);
/* Record every tensor's CRC-32C (ptq.checksums) and then the metadata's (ptq.metadata_crc32c) in the writer's
 * metadata; call it after the last tensor and metadata entry, before ptq_st_writer_save. */
ptq_status ptq_qmodel_seal(ptq_st_writer *w, ptq_error *err);

#endif
