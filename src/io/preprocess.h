/* Hugging Face image preprocessing: preprocessor_config.json (ViTImageProcessor and the common fields of its
 * relatives: DeiT, BEiT, CLIP-style shortest-edge resize + centre crop), applied as the (PIL-based) image
 * processor does it:
 *   1. the image as 8-bit planes of the model's channel count;
 *   2. do_resize: PIL's Image.resize with the `resample` filter (ptq_pil_resize_u8, below: 8-bit in, 8-bit
 *      out, antialiased when shrinking) to size {height, width}, or with the shorter side to
 *      size.shortest_edge (the longer one int(shortest_edge * long / short)); an image of that size already
 *      is left alone (PIL returns a copy);
 *   3. do_center_crop: crop_size at offset (side - crop) // 2, zero-padded when the image is smaller
 *      (transformers' center_crop);
 *   4. do_rescale: float32(pixel * rescale_factor), the product in double (transformers' rescale);
 *   5. do_normalize: (x - mean) / std in float32 arithmetic, mean and std rounded to float32 first.
 * The result must be the model's img_size square.
 */
#ifndef PTQ_IO_PREPROCESS_H
#define PTQ_IO_PREPROCESS_H

#include <stdint.h>

#include "ptq.h"

typedef struct cJSON cJSON;

/* PIL's resampling filters, with PIL's codes (the values of `resample`). */
enum { PTQ_RS_NEAREST = 0, PTQ_RS_LANCZOS = 1, PTQ_RS_BILINEAR = 2, PTQ_RS_BICUBIC = 3, PTQ_RS_BOX = 4, PTQ_RS_HAMMING = 5 };

/* The largest image side the preprocessing accepts or produces (sizes in preprocessor_config.json too). */
#define PTQ_PREP_MAX_SIDE (1 << 14)
/* The largest image a resize may produce, in pixels (a 16384 x 16384 intermediate is refused, 8192 x 8192 is not). */
#define PTQ_PREP_MAX_AREA (1 << 26)

typedef struct ptq_preprocess {
    int hf;             /* 1: this pipeline is in force (a preprocessor_config.json was found); 0: none */
    int do_resize;
    int shortest_edge;  /* > 0: resize the shorter side to this; 0: resize to height x width */
    int height, width;
    int resample;       /* PTQ_RS_* */
    int do_center_crop;
    int crop_height, crop_width;
    int do_rescale;
    double rescale_factor;
    int do_normalize;
    float mean[4], std[4];
    int do_convert_rgb; /* -1 unset; recorded only: ptq always converts to the model's channel count */
} ptq_preprocess;

/* Parse a preprocessor_config.json object for a model with `channels` channels and img_size `img` (0: do
 * not check the geometry). `file` names it in messages. Every field is optional (ViTImageProcessor's
 * defaults); a field of the wrong type, a std <= 0, an absurd size, an unsupported resample or size key, or
 * a geometry that cannot give img x img fails with PTQ_ERR_CONFIG / PTQ_ERR_UNSUPPORTED naming the field. */
ptq_status ptq_preprocess_parse(const cJSON *obj, const char *file, int channels, int img, ptq_preprocess *p,
                                ptq_error *err);
/* Read and parse the file at `path`. */
ptq_status ptq_preprocess_load(const char *path, int channels, int img, ptq_preprocess *p, ptq_error *err);
/* The pipeline as a preprocessor_config.json object that ptq_preprocess_parse reads back to the same values
 * (stored in .ptq files). NULL when out of memory. */
cJSON *ptq_preprocess_to_json(const ptq_preprocess *p, int channels);

/* PIL's Image.resize of one 8-bit plane (mode "L"; each band of an "RGB" image is resized alike) from w x h
 * to ow x oh with a PTQ_RS_* filter: NEAREST picks pixels as PIL's affine scaler does; the others are
 * PIL's separable convolution (support scaled by the shrink factor, coefficients in 22-bit fixed point,
 * horizontal pass then vertical, each rounded to 8 bits). */
ptq_status ptq_pil_resize_u8(const uint8_t *src, int w, int h, uint8_t *dst, int ow, int oh, int resample,
                             ptq_error *err);

/* Apply the pipeline to `channels` 8-bit planes [channels][h][w]; writes dst [channels][img][img]. `what`
 * names the image in messages. */
ptq_status ptq_preprocess_apply(const ptq_preprocess *p, const uint8_t *planes, int channels, int w, int h, int img,
                                float *dst, const char *what, ptq_error *err);

#endif
