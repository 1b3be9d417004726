/* Hugging Face image preprocessing (see preprocess.h): parsing preprocessor_config.json, PIL's resize,
 * and the pipeline resize -> centre crop -> rescale -> normalise. */
#include "io/preprocess.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/json.h"

/* ------------------------------------------------------------------ parsing */

/* A do_* flag. transformers passes a JSON null through as None, which its `if do_x:` reads as false. */
static ptq_status flag(const cJSON *o, const char *file, const char *key, int def, int *out, ptq_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = def;
    if (!it) return PTQ_OK;
    if (cJSON_IsNull(it)) *out = 0;
    else if (cJSON_IsBool(it)) *out = cJSON_IsTrue(it);
    else return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s must be true or false", file, key);
    return PTQ_OK;
}

/* image_mean / image_std: a number (every channel) or a list of exactly one number per channel, as
 * transformers' normalize requires. Missing or null: def. */
static ptq_status channel_list(const cJSON *o, const char *file, const char *key, int channels, float def, int positive,
                               float *out, ptq_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    for (int c = 0; c < 4; c++) out[c] = c < channels ? def : 0.0f;
    if (!it || cJSON_IsNull(it)) return PTQ_OK;
    int n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : -1;
    if (!cJSON_IsNumber(it) && n != channels) {
        if (n < 0)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s must be a number or a list of %d numbers", file, key, channels);
        return ptq_fail(err, PTQ_ERR_CONFIG,
                        "%s: %s has %d entries, but the model takes %d channel%s (one number per channel is needed)",
                        file, key, n, channels, channels == 1 ? "" : "s");
    }
    for (int c = 0; c < channels; c++) {
        const cJSON *v = cJSON_IsNumber(it) ? it : cJSON_GetArrayItem(it, c);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e6)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s[%d] must be a finite number within +-1e6", file, key, c);
        out[c] = (float)v->valuedouble;
        if (positive && !(out[c] > 0.0f))
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s[%d] = %g must be positive", file, key, c, v->valuedouble);
    }
    return PTQ_OK;
}

static ptq_status side(const cJSON *it, const char *file, const char *what, int *out, ptq_error *err) {
    return ptq_json_int_item(it, file, what, 1, PTQ_PREP_MAX_SIDE, out, err);
}

/* size / crop_size: {"height": H, "width": W}, {"shortest_edge": S} (size only), an int (a square, as
 * ViTImageProcessor's get_size_dict reads it) or the legacy [H, W]. Missing or null: def x def. */
static ptq_status size_field(const cJSON *o, const char *file, const char *key, int allow_shortest, int def, int *h,
                             int *w, int *shortest, ptq_error *err) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    char what[64];
    *h = *w = def;
    *shortest = 0;
    if (!it || cJSON_IsNull(it)) return PTQ_OK;
    if (cJSON_IsNumber(it)) {
        PTQ_TRY(side(it, file, key, h, err));
        *w = *h;
        return PTQ_OK;
    }
    if (cJSON_IsArray(it)) {
        if (cJSON_GetArraySize(it) != 2)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s as a list must be [height, width]", file, key);
        snprintf(what, sizeof what, "%s[0]", key);
        PTQ_TRY(side(cJSON_GetArrayItem(it, 0), file, what, h, err));
        snprintf(what, sizeof what, "%s[1]", key);
        return side(cJSON_GetArrayItem(it, 1), file, what, w, err);
    }
    if (!cJSON_IsObject(it))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s must be an object {\"height\", \"width\"}%s or an integer", file,
                        key, allow_shortest ? ", {\"shortest_edge\"}" : "");
    const cJSON *e;
    cJSON_ArrayForEach(e, it) {
        const char *k = e->string ? e->string : "";
        if (strcmp(k, "height") && strcmp(k, "width") && (strcmp(k, "shortest_edge") || !allow_shortest))
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: %s.%s is not supported (only {\"height\", \"width\"}%s)",
                            file, key, k, allow_shortest ? " or {\"shortest_edge\"}" : "");
    }
    const cJSON *hi = cJSON_GetObjectItemCaseSensitive(it, "height"), *wi = cJSON_GetObjectItemCaseSensitive(it, "width");
    const cJSON *si = cJSON_GetObjectItemCaseSensitive(it, "shortest_edge");
    if (si && (hi || wi))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s has both shortest_edge and height/width", file, key);
    if (si) {
        snprintf(what, sizeof what, "%s.shortest_edge", key);
        return side(si, file, what, shortest, err);
    }
    if (!hi || !wi)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: %s needs both \"height\" and \"width\"", file, key);
    snprintf(what, sizeof what, "%s.height", key);
    PTQ_TRY(side(hi, file, what, h, err));
    snprintf(what, sizeof what, "%s.width", key);
    return side(wi, file, what, w, err);
}

ptq_status ptq_preprocess_parse(const cJSON *o, const char *file, int channels, int img, ptq_preprocess *p,
                                ptq_error *err) {
    memset(p, 0, sizeof *p);
    if (!file) file = "preprocessor_config.json";
    if (!cJSON_IsObject(o)) return ptq_fail(err, PTQ_ERR_CONFIG, "%s: expected a JSON object", file);
    if (channels < 1 || channels > 4)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: a model with %d channels", file, channels);
    /* fields of other processors that change the pixels in ways ptq does not implement */
    static const char *const unsupported[] = {"crop_pct", "do_pad", "do_flip_channel_order"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, unsupported[i]);
        if (it && !cJSON_IsNull(it) && !cJSON_IsFalse(it))
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: %s is not supported (ViTImageProcessor has no such step)",
                            file, unsupported[i]);
    }
    int shortest = 0;
    PTQ_TRY(flag(o, file, "do_resize", 1, &p->do_resize, err));
    PTQ_TRY(size_field(o, file, "size", 1, 224, &p->height, &p->width, &shortest, err));
    p->shortest_edge = shortest;
    p->resample = PTQ_RS_BILINEAR;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "resample");
    if (rs && !cJSON_IsNull(rs)) {
        double v = cJSON_IsNumber(rs) ? rs->valuedouble : -1;
        if (!(v >= 0 && v <= 5 && v == floor(v))) {
            char shown[48];
            char *txt = cJSON_PrintUnformatted(rs);
            ptq_snippet(shown, sizeof shown, txt ? txt : "?", txt ? strlen(txt) : 1);
            free(txt);
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                            "%s: resample = %s is not a PIL filter ptq knows (0 nearest, 1 lanczos, 2 bilinear, "
                            "3 bicubic, 4 box, 5 hamming)",
                            file, shown);
        }
        p->resample = (int)v;
    }
    PTQ_TRY(flag(o, file, "do_center_crop", 0, &p->do_center_crop, err));
    if (p->do_center_crop) {
        if (!cJSON_GetObjectItemCaseSensitive(o, "crop_size") || cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "crop_size")))
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: do_center_crop is true but crop_size is missing", file);
        PTQ_TRY(size_field(o, file, "crop_size", 0, 0, &p->crop_height, &p->crop_width, &shortest, err));
    }
    PTQ_TRY(flag(o, file, "do_rescale", 1, &p->do_rescale, err));
    PTQ_TRY(ptq_json_float(o, file, "rescale_factor", 0, 1.0 / 255.0, -1e6, 1e6, &p->rescale_factor, err));
    if (p->do_rescale && !(p->rescale_factor > 0))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: rescale_factor = %g must be positive", file, p->rescale_factor);
    PTQ_TRY(flag(o, file, "do_normalize", 1, &p->do_normalize, err));
    PTQ_TRY(channel_list(o, file, "image_mean", channels, 0.5f, 0, p->mean, err)); /* IMAGENET_STANDARD_MEAN */
    PTQ_TRY(channel_list(o, file, "image_std", channels, 0.5f, 1, p->std, err));
    p->do_convert_rgb = -1;
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(o, "do_convert_rgb");
    if (cr && !cJSON_IsNull(cr)) PTQ_TRY(flag(o, file, "do_convert_rgb", 0, &p->do_convert_rgb, err));

    /* the geometry, where the config alone decides it */
    if (img > 0) {
        if (p->do_center_crop && (p->crop_height != img || p->crop_width != img))
            return ptq_fail(err, PTQ_ERR_CONFIG,
                            "%s: crop_size %dx%d (height x width) does not give the %dx%d images the model takes", file,
                            p->crop_height, p->crop_width, img, img);
        if (!p->do_center_crop && p->do_resize && !p->shortest_edge && (p->height != img || p->width != img))
            return ptq_fail(err, PTQ_ERR_CONFIG,
                            "%s: size %dx%d (height x width) does not give the %dx%d images the model takes", file,
                            p->height, p->width, img, img);
    }
    p->hf = 1;
    return PTQ_OK;
}

ptq_status ptq_preprocess_load(const char *path, int channels, int img, ptq_preprocess *p, ptq_error *err) {
    cJSON *root = NULL;
    memset(p, 0, sizeof *p);
    PTQ_TRY(ptq_json_load(path, &root, err));
    ptq_status st = ptq_preprocess_parse(root, path, channels, img, p, err);
    cJSON_Delete(root);
    return st;
}

static cJSON *hw_object(int h, int w) {
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "height", h);
        cJSON_AddNumberToObject(o, "width", w);
    }
    return o;
}

cJSON *ptq_preprocess_to_json(const ptq_preprocess *p, int channels) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddBoolToObject(o, "do_resize", p->do_resize);
    if (p->shortest_edge) {
        cJSON *s = cJSON_AddObjectToObject(o, "size");
        if (s) cJSON_AddNumberToObject(s, "shortest_edge", p->shortest_edge);
    } else {
        cJSON_AddItemToObject(o, "size", hw_object(p->height, p->width));
    }
    cJSON_AddNumberToObject(o, "resample", p->resample);
    cJSON_AddBoolToObject(o, "do_center_crop", p->do_center_crop);
    if (p->do_center_crop) cJSON_AddItemToObject(o, "crop_size", hw_object(p->crop_height, p->crop_width));
    cJSON_AddBoolToObject(o, "do_rescale", p->do_rescale);
    cJSON_AddNumberToObject(o, "rescale_factor", p->rescale_factor);
    cJSON_AddBoolToObject(o, "do_normalize", p->do_normalize);
    cJSON *mean = cJSON_AddArrayToObject(o, "image_mean"), *std = cJSON_AddArrayToObject(o, "image_std");
    for (int c = 0; c < channels && c < 4; c++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(p->mean[c]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(p->std[c]));
    }
    if (p->do_convert_rgb >= 0) cJSON_AddBoolToObject(o, "do_convert_rgb", p->do_convert_rgb);
    if (cJSON_GetArraySize(o) < 9 || cJSON_GetArraySize(mean) != channels || cJSON_GetArraySize(std) != channels) {
        cJSON_Delete(o); /* an allocation failed on the way */
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------ PIL's resize */

#define PTQ_PI 3.14159265358979323846
#define PREC 22 /* PIL's PRECISION_BITS for 8-bit images: 32 - 8 - 2 */

static double sinc(double x) { return x == 0.0 ? 1.0 : sin(x * PTQ_PI) / (x * PTQ_PI); }

/* The filter kernels, written from PIL's definitions (Resample.c) with the same evaluation order, so the
 * double coefficients and hence their fixed-point roundings are PIL's. */
static double kernel(int f, double x) {
    switch (f) {
    case PTQ_RS_BOX:
        return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
    case PTQ_RS_BILINEAR:
        x = fabs(x);
        return x < 1.0 ? 1.0 - x : 0.0;
    case PTQ_RS_HAMMING:
        x = fabs(x);
        if (x == 0.0) return 1.0;
        if (x >= 1.0) return 0.0;
        x *= PTQ_PI;
        return sin(x) / x * ((double)0.54f + (double)0.46f * cos(x));
    case PTQ_RS_BICUBIC: { /* Keys' cubic convolution, a = -0.5 */
        const double a = -0.5;
        x = fabs(x);
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }
    default: /* PTQ_RS_LANCZOS: sinc windowed by sinc over [-3, 3) */
        return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
    }
}

static double support_of(int f) {
    return f == PTQ_RS_BOX ? 0.5 : f == PTQ_RS_BICUBIC ? 2.0 : f == PTQ_RS_LANCZOS ? 3.0 : 1.0;
}

/* One axis: for each output index, the first input index, the number of taps and ksize fixed-point
 * coefficients. The filter is stretched by the shrink factor (antialiasing) and normalised to sum 1. */
typedef struct axis_coeffs {
    int ksize;
    int *first, *count;
    int32_t *k; /* [out][ksize] */
} axis_coeffs;

static void axis_free(axis_coeffs *a) {
    free(a->first);
    free(a->k);
    memset(a, 0, sizeof *a);
}

static ptq_status axis_build(int in, int out, int f, axis_coeffs *a, ptq_error *err) {
    memset(a, 0, sizeof *a);
    const double scale = (double)in / out, fscale = scale < 1.0 ? 1.0 : scale;
    const double support = support_of(f) * fscale;
    a->ksize = (int)ceil(support) * 2 + 1;
    a->first = malloc(2 * (size_t)out * sizeof(int));
    a->k = malloc((size_t)out * (size_t)a->ksize * sizeof(int32_t));
    double *w = malloc((size_t)a->ksize * sizeof(double));
    if (!a->first || !a->k || !w) {
        free(w);
        axis_free(a);
        return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate resize coefficients (%d -> %d)", in, out);
    }
    a->count = a->first + out;
    for (int o = 0; o < out; o++) {
        const double center = (o + 0.5) * scale, inv = 1.0 / fscale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5); /* truncation, as PIL */
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        const int n = hi - lo < a->ksize ? hi - lo : a->ksize; /* never more: the bound is ksize's definition */
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            w[i] = kernel(f, (i + lo - center + 0.5) * inv);
            sum += w[i];
        }
        int32_t *k = a->k + (size_t)o * a->ksize;
        for (int i = 0; i < a->ksize; i++) {
            const double v = i < n && sum != 0.0 ? w[i] / sum : i < n ? w[i] : 0.0;
            const double s = v * (1 << PREC);
            k[i] = (int32_t)(v < 0 ? -0.5 + s : 0.5 + s); /* round half away from zero */
        }
        a->first[o] = lo;
        a->count[o] = n;
    }
    free(w);
    return PTQ_OK;
}

/* PIL's clip8: the accumulator (with its 0.5 bias) shifted down, floored, clamped to 0..255 */
static uint8_t clip8(int32_t acc) {
    const int32_t v = acc >= 0 ? acc >> PREC : -(int32_t)((-(int64_t)acc + (1 << PREC) - 1) >> PREC);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* out[i*ostride] = sum_t in[(first+t)*istride] k[t], for each output i (a row or a column) */
static void convolve(const uint8_t *in, size_t istride, uint8_t *out, size_t ostride, int n_out,
                     const axis_coeffs *a) {
    for (int o = 0; o < n_out; o++) {
        const int32_t *k = a->k + (size_t)o * a->ksize;
        const uint8_t *p = in + (size_t)a->first[o] * istride;
        int32_t acc = 1 << (PREC - 1);
        for (int t = 0; t < a->count[o]; t++) acc += (int32_t)p[(size_t)t * istride] * k[t];
        out[(size_t)o * ostride] = clip8(acc);
    }
}

/* PIL's nearest-neighbour scaler: source positions accumulated from scale/2 in steps of `scale` */
static void nearest_table(int in, int out, int *tab) {
    const double step = (double)in / out;
    double pos = step * 0.5;
    for (int o = 0; o < out; o++, pos += step) {
        const int i = pos < 0.0 ? -1 : (int)pos;
        tab[o] = i < in ? i : -1; /* -1: PIL leaves the pixel 0 */
    }
}

ptq_status ptq_pil_resize_u8(const uint8_t *src, int w, int h, uint8_t *dst, int ow, int oh, int resample,
                             ptq_error *err) {
    if (w < 1 || h < 1 || ow < 1 || oh < 1)
        return ptq_fail(err, PTQ_ERR_ARG, "resize from %dx%d to %dx%d", w, h, ow, oh);
    if (resample < 0 || resample > 5) return ptq_fail(err, PTQ_ERR_ARG, "resize: unknown filter %d", resample);
    if (w == ow && h == oh) { /* PIL returns a copy */
        memcpy(dst, src, (size_t)w * h);
        return PTQ_OK;
    }
    if (resample == PTQ_RS_NEAREST) {
        int *tx = malloc(((size_t)ow + oh) * sizeof(int));
        if (!tx) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate a resize table");
        int *ty = tx + ow;
        nearest_table(w, ow, tx);
        nearest_table(h, oh, ty);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                dst[(size_t)y * ow + x] = ty[y] < 0 || tx[x] < 0 ? 0 : src[(size_t)ty[y] * w + tx[x]];
        free(tx);
        return PTQ_OK;
    }
    /* two passes, each only when that side changes: horizontal into tmp [h][ow], then vertical */
    uint8_t *tmp = NULL;
    const uint8_t *cur = src;
    int cw = w;
    axis_coeffs a;
    if (ow != w) {
        PTQ_TRY(axis_build(w, ow, resample, &a, err));
        tmp = malloc((size_t)ow * h);
        if (!tmp) {
            axis_free(&a);
            return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate a %dx%d resize buffer", ow, h);
        }
        uint8_t *target = oh == h ? dst : tmp;
        for (int y = 0; y < h; y++) convolve(src + (size_t)y * w, 1, target + (size_t)y * ow, 1, ow, &a);
        axis_free(&a);
        cur = target;
        cw = ow;
    }
    if (oh != h) {
        ptq_status st = axis_build(h, oh, resample, &a, err);
        if (st != PTQ_OK) {
            free(tmp);
            return st;
        }
        for (int x = 0; x < cw; x++) convolve(cur + x, (size_t)cw, dst + x, (size_t)ow, oh, &a);
        axis_free(&a);
    }
    free(tmp);
    return PTQ_OK;
}

/* ------------------------------------------------------------------ the pipeline */

/* centre crop / pad of one axis (transformers' center_crop): output o reads input o + offset */
static int crop_offset(int side, int crop) { return side >= crop ? (side - crop) / 2 : -((crop - side + 1) / 2); }

ptq_status ptq_preprocess_apply(const ptq_preprocess *p, const uint8_t *planes, int channels, int w, int h, int img,
                                float *dst, const char *what, ptq_error *err) {
    if (!what) what = "image";
    const uint8_t *cur = planes;
    uint8_t *resized = NULL;
    int cw = w, ch = h;
    if (p->do_resize) {
        int64_t oh = p->height, ow = p->width;
        if (p->shortest_edge) { /* the shorter side to S, the longer int(S * long / short) */
            const int64_t s = w <= h ? w : h, l = w <= h ? h : w;
            const int64_t nl = (int64_t)((double)(p->shortest_edge * l) / (double)s);
            oh = w <= h ? nl : p->shortest_edge;
            ow = w <= h ? p->shortest_edge : nl;
        }
        if (oh > PTQ_PREP_MAX_SIDE || ow > PTQ_PREP_MAX_SIDE || oh * ow > PTQ_PREP_MAX_AREA)
            return ptq_fail(err, PTQ_ERR_UNSUPPORTED,
                            "%s: %dx%d would be resized to %lldx%lld (at most %d a side, %d pixels)", what, w, h,
                            (long long)ow, (long long)oh, PTQ_PREP_MAX_SIDE, PTQ_PREP_MAX_AREA);
        if (oh != h || ow != w) {
            resized = malloc((size_t)channels * (size_t)ow * (size_t)oh);
            if (!resized) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate a %lldx%lld image", what,
                                          (long long)ow, (long long)oh);
            for (int c = 0; c < channels; c++) {
                ptq_status st = ptq_pil_resize_u8(planes + (size_t)c * w * h, w, h,
                                                  resized + (size_t)c * (size_t)(ow * oh), (int)ow, (int)oh, p->resample,
                                                  err);
                if (st != PTQ_OK) {
                    free(resized);
                    return st;
                }
            }
            cur = resized;
            cw = (int)ow;
            ch = (int)oh;
        }
    }
    int out_w = cw, out_h = ch, ox = 0, oy = 0;
    if (p->do_center_crop) {
        out_w = p->crop_width;
        out_h = p->crop_height;
        ox = crop_offset(cw, out_w);
        oy = crop_offset(ch, out_h);
    }
    if (out_w != img || out_h != img) {
        free(resized);
        return ptq_fail(err, PTQ_ERR_CONFIG,
                        "%s: the preprocessing (preprocessor_config.json%s) gives a %dx%d image from this %dx%d one, "
                        "but the model takes %dx%d",
                        what, p->do_resize ? "" : ": do_resize is false", out_w, out_h, w, h, img, img);
    }
    for (int c = 0; c < channels; c++) {
        const uint8_t *src = cur + (size_t)c * cw * ch;
        float *d = dst + (size_t)c * img * img;
        const float mean = p->mean[c], sd = p->std[c];
        for (int y = 0; y < img; y++) {
            const int sy = y + oy;
            for (int x = 0; x < img; x++) {
                const int sx = x + ox;
                const uint8_t v = sy >= 0 && sy < ch && sx >= 0 && sx < cw ? src[(size_t)sy * cw + sx] : 0;
                /* float32 as transformers: the rescale product in float64, then float32 arithmetic */
                float f = p->do_rescale ? (float)((double)v * p->rescale_factor) : (float)v;
                if (p->do_normalize) f = (f - mean) / sd;
                d[(size_t)y * img + x] = f;
            }
        }
    }
    free(resized);
    return PTQ_OK;
}
