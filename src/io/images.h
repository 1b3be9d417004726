/* Internal helpers shared by the image loaders (idx.c: IDX files; images.c: folders of PNG/JPEG/BMP). */
#ifndef PTQ_IO_IMAGES_H
#define PTQ_IO_IMAGES_H

#include "ptq.h"

#include "io/preprocess.h"

/* The image geometry a model expects, checked: a ViT with img_size > 0, in_chans 1 or 3, classes > 0 and
 * every std[c] > 0 (finite mean/std). `what` names the caller for messages. prep: the Hugging Face pipeline
 * (preprocessor_config.json) when the model has one, else NULL and config.json's mean/std (timm). */
typedef struct ptq_image_geom {
    int channels, size, classes;
    double mean[4], std[4];
    const ptq_preprocess *prep;
} ptq_image_geom;
ptq_status ptq_image_geom_from_model(const ptq_model *m, const char *what, ptq_image_geom *g, ptq_error *err);

/* Allocate pixels and labels of an image set for `count` images of geometry g (pixels zeroed, labels -1). */
ptq_status ptq_image_set_alloc(ptq_image_set *s, int count, const ptq_image_geom *g, ptq_error *err);

/* Resolve a selection [first, first+count) (count 0 = to the end) against n available items. */
ptq_status ptq_image_selection(const char *what, int64_t n, int first, int count, int *out_count, ptq_error *err);

/* 8-bit value -> normalised float: (v/255 - mean)/std. */
static inline float ptq_image_norm(double v, double mean, double std) { return (float)((v / 255.0 - mean) / std); }

#endif
