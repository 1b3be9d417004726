/* Reading the ptq model file (docs/FORMAT.md); writing is ptq_model_save in ptq.h. */
#ifndef PTQ_IO_QMODEL_H
#define PTQ_IO_QMODEL_H

#include "io/safetensors.h"
#include "models/model.h"

/* 1 when the safetensors file says __metadata__ format = "ptq". */
int ptq_qmodel_is_ptq(const ptq_safetensors *st);
ptq_status ptq_qmodel_load(const char *path, const ptq_safetensors *st, ptq_model **out, ptq_error *err);

#endif
