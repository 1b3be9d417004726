/* ptq_images_load_folder: a folder of image files (PNG, JPEG, BMP) with a labels file, or without one (every
 * image file of the folder, by name), turned into the normalised tensors a ViT eats.
 *
 * Labels file: one "filename label" per line; the label is the last whitespace-separated field, so file
 * names may contain spaces. Blank lines and lines starting with '#' are ignored; CRLF line ends are fine.
 * File names are relative to `folder` (NULL or "" = the labels file's folder) unless absolute.
 * Without a labels file: regular files named *.png, *.jpg, *.jpeg, *.bmp (any case), sorted with strcmp;
 * every other entry is skipped (ptq_images_count_folder counts them); labels are -1.
 *
 * A model with a Hugging Face preprocessor_config.json (cfg.prep.hf) gets that pipeline (io/preprocess.c:
 * PIL resize, crop, rescale, normalise) on the image of steps 1-2 below, in 8 bits. Otherwise, timm's eval
 * transform (Resize(floor(img/crop_pct)), CenterCrop(img), ToTensor, Normalize), with these precise choices:
 *   1. decode to 8-bit RGB (stb_image; alpha is dropped, grey is replicated);
 *   2. model with 1 channel: luma as Pillow's convert("L"), ITU-R BT.601 weights in 16-bit fixed point,
 *      rounded: L = (R*19595 + G*38470 + B*7471 + 32768) >> 16 (0.299, 0.587, 0.114);
 *   3. resize so the shorter side is S = floor(img_size / crop_pct) and the longer one
 *      floor(S * long / short) (torchvision's Resize(int)), bilinear with half-pixel centres and edge
 *      clamping, exactly torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
 *      antialias=False). No antialiasing: when shrinking by more than 2x this differs from Pillow's
 *      resize (which widens the filter); the values are kept in float, not rounded back to 8 bits;
 *   4. centre crop img_size x img_size at offset round_half_even((side - img_size) / 2) (torchvision's
 *      CenterCrop; when a side is shorter than img_size it is zero-padded by (img_size - side) / 2 first);
 *      only the cropped window is ever computed;
 *   5. x/255, then (x - mean[c]) / std[c].
 */
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "io/images.h"
#include "models/model.h"

/* stb_image is a system header-only dependency: its implementation lives in this file only, and its
 * warnings are not ours. Only decoding from memory is needed. (Not STB_IMAGE_STATIC: Debian's stb declares
 * a function it never defines, which gcc reports at the end of the file, outside the pragmas.) */
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
/* Only the formats ptq documents: Debian's stb_image overflows a heap buffer on 16-bit PNM files. */
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_HDR
#define STBI_NO_LINEAR
/* A classifier input has no business being larger; a 100-byte PNG cannot then claim gigabytes. */
#define STBI_MAX_DIMENSIONS (1 << 14)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#ifndef __clang__ /* a gcc-only warning: clang -Werror rejects the unknown name */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <stb_image.h>
#pragma GCC diagnostic pop

typedef struct label_entry {
    char *file; /* points into the labels file buffer */
    int label;
    int line;
} label_entry;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Parse the labels file text in place. */
static ptq_status parse_labels(const char *path, char *text, int classes, label_entry **out, int *n_out,
                               ptq_error *err) {
    *out = NULL;
    *n_out = 0;
    int cap = 0, n = 0;
    label_entry *e = NULL;
    char *p = text;
    if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF) p += 3;
    for (int line = 1; *p; line++) {
        char *end = strchr(p, '\n');
        char *next = end ? end + 1 : p + strlen(p);
        if (end) *end = 0;
        else end = p + strlen(p);
        /* trim */
        while (is_space(*p)) p++;
        while (end > p && is_space(end[-1])) *--end = 0;
        if (*p == 0 || *p == '#') {
            p = next;
            continue;
        }
        char *sep = end;
        while (sep > p && !is_space(sep[-1])) sep--;
        if (sep == p) {
            free(e);
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s:%d: expected \"filename label\", found \"%.80s\"", path, line, p);
        }
        char *lab = sep, *stop;
        while (sep > p && is_space(sep[-1])) *--sep = 0;
        long v = strtol(lab, &stop, 10);
        if (*stop || stop == lab) {
            free(e);
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s:%d: label \"%.40s\" is not an integer", path, line, lab);
        }
        if (v < 0 || v >= classes) {
            free(e);
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s:%d: label %ld is outside the model's %d classes [0, %d)", path,
                            line, v, classes, classes);
        }
        if (n == INT_MAX) {
            free(e);
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: too many lines", path);
        }
        if (n == cap) {
            int nc = cap ? (cap < INT_MAX / 2 ? cap * 2 : INT_MAX) : 64;
            label_entry *ne = realloc(e, (size_t)nc * sizeof *ne);
            if (!ne) {
                free(e);
                return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %d label entries", path, nc);
            }
            e = ne;
            cap = nc;
        }
        e[n].file = p;
        e[n].label = (int)v;
        e[n].line = line;
        n++;
        p = next;
    }
    if (n == 0) {
        free(e);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: no \"filename label\" lines", path);
    }
    *out = e;
    *n_out = n;
    return PTQ_OK;
}

/* One axis of the resize + crop: for each of the `size` output positions, the two source indices and
 * weights, or i0 = -1 for a padded position. */
typedef struct axis_tap {
    int i0, i1;
    double w0, w1;
} axis_tap;

/* round(x / 2) with ties to even, as Python's round() in torchvision's CenterCrop */
static int half_round_even(int d) {
    int k = d / 2;
    if ((d & 1) && (k & 1)) k++;
    return k;
}

static void axis_taps(int in, int resized, int size, axis_tap *t) {
    int offset = resized >= size ? half_round_even(resized - size) : -((size - resized) / 2);
    double scale = (double)in / (double)resized;
    for (int o = 0; o < size; o++) {
        int r = o + offset;
        if (r < 0 || r >= resized) {
            t[o].i0 = -1;
            t[o].i1 = -1;
            t[o].w0 = t[o].w1 = 0;
            continue;
        }
        double src = ((double)r + 0.5) * scale - 0.5;
        if (src < 0) src = 0;
        int i0 = (int)src;
        if (i0 > in - 1) i0 = in - 1;
        int i1 = i0 < in - 1 ? i0 + 1 : i0;
        double l1 = src - i0;
        if (l1 > 1) l1 = 1;
        t[o].i0 = i0;
        t[o].i1 = i1;
        t[o].w0 = 1.0 - l1;
        t[o].w1 = l1;
    }
}

/* Pillow's convert("L"): ITU-R BT.601 weights in 16-bit fixed point, rounded */
static uint8_t luma(const unsigned char *px) {
    return (uint8_t)(((uint32_t)px[0] * 19595u + (uint32_t)px[1] * 38470u + (uint32_t)px[2] * 7471u + 32768u) >> 16);
}

/* The Hugging Face pipeline (preprocessor_config.json) on one decoded RGB image: 8-bit planes of the model's
 * channel count (grey: Pillow's convert("L"); a grey file decodes to R = G = B, so its value is kept), then
 * ptq_preprocess_apply. */
static ptq_status hf_transform(const unsigned char *rgb, int w, int h, const ptq_image_geom *g, float *dst,
                               const char *path, ptq_error *err) {
    const size_t plane = (size_t)w * (size_t)h;
    uint8_t *planes = malloc((size_t)g->channels * plane);
    if (!planes) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %dx%d image", path, w, h);
    for (size_t i = 0; i < plane; i++) {
        if (g->channels == 1) planes[i] = luma(rgb + 3 * i);
        else
            for (int c = 0; c < 3; c++) planes[(size_t)c * plane + i] = rgb[3 * i + (size_t)c];
    }
    ptq_status st = ptq_preprocess_apply(g->prep, planes, g->channels, w, h, g->size, dst, path, err);
    free(planes);
    return st;
}

/* Resize-crop one decoded RGB image into dst [channels][size][size], normalised. */
static ptq_status transform_image(const unsigned char *rgb, int w, int h, const ptq_image_geom *g,
                                  double crop_pct, float *dst, const char *path, ptq_error *err) {
    int size = g->size;
    /* floor(img / crop_pct), with a little slack so that e.g. 224 / 0.8f gives 280, not 279 */
    double target = floor((double)size / crop_pct + 1e-4);
    if (!(target >= 1) || target > 1 << 20)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: img_size %d / crop_pct %g gives a resize to %g", path, size,
                        crop_pct, target);
    int S = (int)target;
    int64_t nw, nh;
    if (w <= h) {
        nw = S;
        nh = (int64_t)S * h / w;
    } else {
        nh = S;
        nw = (int64_t)S * w / h;
    }
    if (nh > INT_MAX / 2 || nw > INT_MAX / 2 || nh < 1 || nw < 1)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: %dx%d image resizes to %lldx%lld", path, w, h, (long long)nw,
                        (long long)nh);
    axis_tap *ty = malloc(2 * (size_t)size * sizeof *ty);
    if (!ty) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate resize tables", path);
    axis_tap *tx = ty + size;
    axis_taps(h, (int)nh, size, ty);
    axis_taps(w, (int)nw, size, tx);

    /* source planes as doubles: luma (1 channel) or R, G, B */
    size_t plane = (size_t)w * (size_t)h;
    double *src = malloc((size_t)g->channels * plane * sizeof *src);
    if (!src) {
        free(ty);
        return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %dx%d image", path, w, h);
    }
    for (size_t i = 0; i < plane; i++) {
        const unsigned char *px = rgb + 3 * i;
        if (g->channels == 1) src[i] = luma(px);
        else
            for (int c = 0; c < 3; c++) src[(size_t)c * plane + i] = px[c];
    }
    for (int c = 0; c < g->channels; c++) {
        const double *s = src + (size_t)c * plane;
        float *d = dst + (size_t)c * size * size;
        for (int y = 0; y < size; y++) {
            const axis_tap *ay = &ty[y];
            for (int x = 0; x < size; x++) {
                const axis_tap *ax = &tx[x];
                double v = 0;
                if (ay->i0 >= 0 && ax->i0 >= 0) {
                    const double *r0 = s + (size_t)ay->i0 * w, *r1 = s + (size_t)ay->i1 * w;
                    v = ay->w0 * (ax->w0 * r0[ax->i0] + ax->w1 * r0[ax->i1]) +
                        ay->w1 * (ax->w0 * r1[ax->i0] + ax->w1 * r1[ax->i1]);
                }
                d[(size_t)y * size + x] = ptq_image_norm(v, g->mean[c], g->std[c]);
            }
        }
    }
    free(src);
    free(ty);
    return PTQ_OK;
}

/* Debian's stb_image trusts the code counts of a JPEG Huffman table (DHT segment): 16 counts whose sum it
 * writes into 256-entry arrays, so a hostile file with more than 256 codes writes past them (a fuzz
 * finding; newer stb checks this). The reader below walks a JPEG the way stb_image 2.x does, up to every
 * place where stb would read a DHT, and checks each table first. Where stb would give up, the walk stops
 * (stb reads nothing more); in entropy-coded data it stops at the first byte pair stb could take as a
 * marker, so any DHT stb reaches is one this walk checked. Bytes past the end read as 0, as in stb. */
#define JPEG_NONE 0xFF /* stb's "no marker" */
typedef struct jpeg_walk {
    const unsigned char *p;
    size_t n, i;
    int cached; /* a marker found at the end of entropy-coded data */
    long bad_at;
    int bad_codes;
} jpeg_walk;

static int jw_get8(jpeg_walk *w) { return w->i < w->n ? w->p[w->i++] : 0; }
static int jw_get16(jpeg_walk *w) {
    const int hi = jw_get8(w);
    return hi << 8 | jw_get8(w);
}
static void jw_skip(jpeg_walk *w, long k) { w->i = k < 0 || (size_t)k > w->n - w->i ? w->n : w->i + (size_t)k; }
/* stbi__get_marker: FF, any FF fill bytes, then the marker; JPEG_NONE when the next byte is not FF */
static int jw_marker(jpeg_walk *w) {
    if (w->cached != JPEG_NONE) {
        const int m = w->cached;
        w->cached = JPEG_NONE;
        return m;
    }
    int x = jw_get8(w);
    if (x != 0xFF) return JPEG_NONE;
    while (x == 0xFF) x = jw_get8(w);
    return x;
}
/* stbi__process_marker for marker m: 1 when stb goes on, 0 when it stops (an error, or a bad table) */
static int jw_segment(jpeg_walk *w, int m) {
    const size_t at = w->i >= 2 ? w->i - 2 : 0;
    long len;
    switch (m) {
    case 0xDD: /* DRI */
        if (jw_get16(w) != 4) return 0;
        jw_skip(w, 2);
        return 1;
    case 0xDB: /* DQT: stb consumes exactly the segment when it accepts it */
        jw_skip(w, jw_get16(w) - 2);
        return 1;
    case 0xC4: /* DHT */
        len = jw_get16(w) - 2;
        while (len > 0) {
            const int q = jw_get8(w);
            if (q >> 4 > 1 || (q & 15) > 3) return 0; /* stb refuses the table */
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += jw_get8(w);
            if (sum > 256) {
                w->bad_at = (long)at;
                w->bad_codes = sum;
                return 0;
            }
            jw_skip(w, sum);
            len -= 17 + sum;
        }
        return len == 0;
    default:
        if ((m >= 0xE0 && m <= 0xEF) || m == 0xFE) { /* APPn, COM: skipped whole */
            len = jw_get16(w);
            if (len < 2) return 0;
            jw_skip(w, len - 2);
            return 1;
        }
        return 0; /* stb: unknown marker */
    }
}

/* The offset of a Huffman table with more than 256 codes that stb_image would read, or -1. */
static long jpeg_bad_huffman_table(const unsigned char *p, size_t n, int *codes) {
    jpeg_walk w = {p, n, 0, JPEG_NONE, -1, 0};
    if (jw_marker(&w) != 0xD8) return -1; /* no SOI: stb's JPEG reader does not take the file */
    int m = jw_marker(&w);
    while (m != 0xC0 && m != 0xC1 && m != 0xC2) { /* the header, up to the frame (SOF) */
        if (!jw_segment(&w, m)) goto done;
        m = jw_marker(&w);
        while (m == JPEG_NONE) { /* stb skips stray bytes here, and only here */
            if (w.i >= n) goto done;
            m = jw_marker(&w);
        }
    }
    jw_skip(&w, jw_get16(&w) - 2); /* the frame header */
    for (m = jw_marker(&w); m != 0xD9; m = jw_marker(&w)) {
        if (m == 0xDA) {
            jw_skip(&w, jw_get16(&w) - 2); /* the scan header, then its entropy-coded data: */
            for (;;) {                       /* up to FF followed by a byte other than 00, FF or RSTn */
                if (w.i >= n) goto done;
                if (jw_get8(&w) != 0xFF) continue;
                int y = jw_get8(&w);
                while (y == 0xFF && w.i < n) y = jw_get8(&w);
                if (y != 0 && y != 0xFF && !(y >= 0xD0 && y <= 0xD7)) {
                    w.cached = y;
                    break;
                }
            }
        } else if (m == 0xDC) { /* DNL */
            jw_skip(&w, 4);
        } else if (!jw_segment(&w, m)) {
            goto done;
        }
    }
done:
    *codes = w.bad_codes;
    return w.bad_at;
}

static ptq_status load_one(const char *path, const ptq_image_geom *g, double crop_pct, float *dst, ptq_error *err) {
    char *data = NULL;
    size_t len = 0;
    PTQ_TRY(ptq_read_file(path, &data, &len, err));
    if (len > INT_MAX) {
        free(data);
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: image file of %zu bytes is too large", path, len);
    }
    int codes = 0;
    const long bad = jpeg_bad_huffman_table((const unsigned char *)data, len, &codes);
    if (bad >= 0) {
        free(data);
        return ptq_fail(err, PTQ_ERR_FORMAT,
                        "%s: corrupt JPEG: the Huffman table at byte %ld has %d codes (at most 256)", path, bad, codes);
    }
    int w = 0, h = 0, comp = 0;
    unsigned char *rgb = stbi_load_from_memory((const unsigned char *)data, (int)len, &w, &h, &comp, 3);
    free(data);
    if (!rgb) {
        const char *why = stbi_failure_reason();
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: not an image, or an unsupported one (stb_image: %s)", path,
                        why ? why : "unknown failure");
    }
    ptq_status st = PTQ_OK;
    if (w < 1 || h < 1) st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: image is %dx%d", path, w, h);
    else if (g->prep) st = hf_transform(rgb, w, h, g, dst, path, err);
    else st = transform_image(rgb, w, h, g, crop_pct, dst, path, err);
    stbi_image_free(rgb);
    return st;
}

/* ---- folders without labels ---- */

static int image_name(const char *name) {
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".bmp"};
    const size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        const size_t k = strlen(ext[i]);
        if (n > k && !strncasecmp(name + n - k, ext[i], k)) return 1;
    }
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The image files of `dir`: regular files (after links) named *.png, *.jpg, *.jpeg or *.bmp in any case,
 * sorted by name byte-wise (strcmp); *skipped counts every other entry but "." and "..". */
static ptq_status list_images(const char *dir, char ***out, int *n_out, int *skipped, ptq_error *err) {
    *out = NULL;
    *n_out = *skipped = 0;
    DIR *d = opendir(dir);
    if (!d) return ptq_fail(err, PTQ_ERR_IO, "%s: cannot open the image folder", dir);
    char **names = NULL, *path = NULL;
    int n = 0, cap = 0;
    size_t path_cap = 0;
    ptq_status st = PTQ_OK;
    for (struct dirent *e; st == PTQ_OK && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        const size_t need = strlen(dir) + strlen(e->d_name) + 2;
        if (need > path_cap) {
            char *np = realloc(path, need);
            if (!np) {
                st = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate a path", dir);
                break;
            }
            path = np;
            path_cap = need;
        }
        snprintf(path, path_cap, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (!image_name(e->d_name) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            ++*skipped;
            continue;
        }
        if (n == INT_MAX - 1) st = ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: too many files", dir);
        else if (n == cap) {
            int nc = cap ? (cap < INT_MAX / 4 ? cap * 2 : INT_MAX - 1) : 256;
            char **nn = realloc(names, (size_t)nc * sizeof *nn);
            if (!nn) st = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %d file names", dir, nc);
            else names = nn, cap = nc;
        }
        if (st == PTQ_OK && !(names[n] = strdup(e->d_name))) st = ptq_fail(err, PTQ_ERR_NOMEM, "%s: out of memory", dir);
        if (st == PTQ_OK) n++;
    }
    closedir(d);
    free(path);
    if (st != PTQ_OK) {
        free_names(names, n);
        return st;
    }
    if (n) qsort(names, (size_t)n, sizeof *names, by_name);
    *out = names;
    *n_out = n;
    return PTQ_OK;
}

ptq_status ptq_images_count_folder(const char *folder, int *images, int *skipped, ptq_error *err) {
    *images = *skipped = 0;
    if (!folder || !ptq_is_dir(folder))
        return ptq_fail(err, PTQ_ERR_IO, "%s: image folder not found (or not a folder)", folder ? folder : "(null)");
    char **names;
    PTQ_TRY(list_images(folder, &names, images, skipped, err));
    free_names(names, *images);
    return PTQ_OK;
}

/* ---- ptq_images_load_folder ---- */

/* Load entries [first, first + n) of e (file names relative to dir unless absolute) into out, allocated
 * here. `where` (the labels file, or NULL for an unlabeled folder) prefixes the messages with its line. */
static ptq_status load_entries(const ptq_model *m, const ptq_image_geom *g, const char *dir, const label_entry *e,
                               int first, int n, const char *where, ptq_image_set *out, ptq_error *err) {
    double crop_pct = m->cfg.crop_pct;
    if (crop_pct == 0) crop_pct = 1.0; /* not given: no resize margin */
    if (!g->prep && (!(crop_pct > 0) || !isfinite(crop_pct)))
        return ptq_fail(err, PTQ_ERR_CONFIG, "model %s: crop_pct %g must be > 0", m->path, crop_pct);
    PTQ_TRY(ptq_image_set_alloc(out, n, g, err));
    size_t path_cap = strlen(dir) + 2 + 4096;
    char *path = malloc(path_cap);
    ptq_status st = path ? PTQ_OK : ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate a path buffer");
    const size_t img = (size_t)g->channels * g->size * g->size;
    for (int i = 0; st == PTQ_OK && i < n; i++) {
        const label_entry *le = &e[first + i];
        size_t need = strlen(dir) + strlen(le->file) + 2;
        if (need > path_cap) {
            st = ptq_fail(err, PTQ_ERR_ARG, "%s:%d: file name too long", where ? where : dir, le->line);
            break;
        }
        size_t o = 0;
        if (le->file[0] != '/') {
            o = strlen(dir);
            memcpy(path, dir, o);
            if (path[o - 1] != '/') path[o++] = '/';
        }
        memcpy(path + o, le->file, strlen(le->file) + 1);
        st = load_one(path, g, crop_pct, out->pixels + (size_t)i * img, err);
        if (st != PTQ_OK && where) ptq_fail_context(err, "%s:%d", where, le->line);
        out->labels[i] = le->label;
    }
    free(path);
    if (st != PTQ_OK) ptq_image_set_free(out);
    return st;
}

static ptq_status load_unlabeled_folder(const ptq_model *m, const char *folder, int first, int count,
                                        ptq_image_set *out, ptq_error *err) {
    if (!folder || !*folder) return ptq_fail(err, PTQ_ERR_ARG, "no image folder given");
    ptq_image_geom g;
    PTQ_TRY(ptq_image_geom_from_model(m, folder, &g, err));
    if (!ptq_is_dir(folder)) return ptq_fail(err, PTQ_ERR_IO, "%s: image folder not found (or not a folder)", folder);
    char **names;
    int n_names, skipped, n = 0;
    PTQ_TRY(list_images(folder, &names, &n_names, &skipped, err));
    ptq_status st = PTQ_OK;
    label_entry *e = NULL;
    if (n_names == 0)
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: no JPEG, PNG or BMP files (*.jpg, *.jpeg, *.png, *.bmp) in the folder%s",
                      folder, skipped ? " (only other files)" : "");
    if (st == PTQ_OK) st = ptq_image_selection(folder, n_names, first, count, &n, err);
    if (st == PTQ_OK && !(e = malloc((size_t)n_names * sizeof *e)))
        st = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %d entries", folder, n_names);
    for (int i = 0; st == PTQ_OK && i < n_names; i++) e[i] = (label_entry){names[i], -1, 0};
    if (st == PTQ_OK) st = load_entries(m, &g, folder, e, first, n, NULL, out, err);
    free(e);
    free_names(names, n_names);
    return st;
}

ptq_status ptq_images_load_folder(const ptq_model *m, const char *folder, const char *labels, int first, int count,
                                  ptq_image_set *out, ptq_error *err) {
    memset(out, 0, sizeof *out);
    if (!labels || !*labels) return load_unlabeled_folder(m, folder, first, count, out, err);
    ptq_image_geom g;
    PTQ_TRY(ptq_image_geom_from_model(m, labels, &g, err));

    /* the folder: given, or the labels file's own */
    char dir[4096];
    if (folder && *folder) {
        if (strlen(folder) >= sizeof dir) return ptq_fail(err, PTQ_ERR_ARG, "image folder path too long");
        strcpy(dir, folder);
    } else {
        const char *slash = strrchr(labels, '/');
        size_t n = slash ? (size_t)(slash - labels) : 1;
        if (n >= sizeof dir) return ptq_fail(err, PTQ_ERR_ARG, "labels path too long");
        if (slash) memcpy(dir, labels, n);
        else dir[0] = '.';
        if (slash && n == 0) dir[n++] = '/';
        dir[n] = 0;
    }
    if (!ptq_is_dir(dir)) return ptq_fail(err, PTQ_ERR_IO, "%s: image folder not found (or not a folder)", dir);

    char *text = NULL;
    PTQ_TRY(ptq_read_file(labels, &text, NULL, err));
    label_entry *e = NULL;
    int n_entries = 0, n = 0;
    ptq_status st = parse_labels(labels, text, g.classes, &e, &n_entries, err);
    if (st == PTQ_OK) st = ptq_image_selection(labels, n_entries, first, count, &n, err);
    if (st == PTQ_OK) st = load_entries(m, &g, dir, e, first, n, labels, out, err);
    free(e);
    free(text);
    return st;
}
