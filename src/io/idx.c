/* IDX reader (plain or gzip'ed) and ptq_images_load_idx. See idx.h for the format. */
#include "io/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/images.h"
#include "models/model.h"

#define IDX_TYPE_U8 0x08
#define IDX_CHUNK (1u << 20)

/* Read up to n bytes; returns the count read, short only at the end of the data or on a zlib error.
 * *zmsg is set when zlib reports a problem (a corrupt or truncated gzip stream), else NULL. */
static int64_t gz_read_some(gzFile gz, void *dst, int64_t n, const char **zmsg) {
    int64_t got = 0;
    *zmsg = NULL;
    while (got < n) {
        unsigned want = (unsigned)(n - got < IDX_CHUNK ? n - got : IDX_CHUNK);
        int r = gzread(gz, (unsigned char *)dst + got, want);
        if (r <= 0) {
            int code;
            const char *m = gzerror(gz, &code);
            if (code != Z_OK) { /* e.g. Z_BUF_ERROR: "unexpected end of file" */
                const char *fdname = strncmp(m, "<fd:", 4) == 0 ? strstr(m, ": ") : NULL;
                *zmsg = fdname ? fdname + 2 : m; /* zlib prefixes "<fd:N>: " */
            }
            break;
        }
        got += r;
    }
    return got;
}

static const char *type_name(int t) {
    switch (t) {
    case 0x08: return "u8";
    case 0x09: return "i8";
    case 0x0B: return "i16";
    case 0x0C: return "i32";
    case 0x0D: return "f32";
    case 0x0E: return "f64";
    default: return "unknown";
    }
}

ptq_status ptq_idx_open(const char *path, int ndims, const char *what, ptq_idx_file *f, ptq_error *err) {
    memset(f, 0, sizeof *f);
    if (!path || !*path) return ptq_fail(err, PTQ_ERR_ARG, "no %s file given", what);
    if (strlen(path) >= sizeof f->path) return ptq_fail(err, PTQ_ERR_ARG, "%s path too long", what);
    if (ndims < 1 || ndims > 4) return ptq_fail(err, PTQ_ERR_ARG, "%s: IDX with %d dimensions", path, ndims);
    strcpy(f->path, path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ptq_fail(err, PTQ_ERR_IO, "%s: cannot open %s file: %s", path, what, strerror(errno));
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot start zlib reader", path);
    }
    f->gz = gz;
    gzbuffer(gz, 256u * 1024u);

    unsigned char hdr[4 + 4 * 4];
    int64_t hlen = 4 + 4 * (int64_t)ndims;
    const char *zmsg;
    int64_t got = gz_read_some(gz, hdr, 4, &zmsg);
    if (got != 4) {
        ptq_idx_close(f);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: not an IDX %s file: %s", path, what,
                        zmsg ? zmsg : "shorter than the 4-byte magic");
    }
    uint32_t magic = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    uint32_t want_magic = (uint32_t)IDX_TYPE_U8 << 8 | (uint32_t)ndims;
    if (magic != want_magic) {
        ptq_idx_close(f);
        if (hdr[0] == 0 && hdr[1] == 0 && hdr[3] >= 1 && hdr[3] <= 4 && (hdr[3] != ndims || hdr[2] != IDX_TYPE_U8))
            return ptq_fail(err, hdr[3] == ndims ? PTQ_ERR_UNSUPPORTED : PTQ_ERR_FORMAT,
                            "%s: expected IDX %s (magic 0x%08X: u8, %d dimension%s), found magic 0x%08X (%s, %d "
                            "dimension%s)",
                            path, what, (unsigned)want_magic, ndims, ndims == 1 ? "" : "s", (unsigned)magic,
                            type_name(hdr[2]), hdr[3], hdr[3] == 1 ? "" : "s");
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: not an IDX %s file (magic 0x%08X, expected 0x%08X)", path, what,
                        (unsigned)magic, (unsigned)want_magic);
    }
    got = gz_read_some(gz, hdr + 4, hlen - 4, &zmsg);
    if (got != hlen - 4) {
        ptq_idx_close(f);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: truncated IDX header: expected %lld bytes, got %lld%s%s", path,
                        (long long)hlen, (long long)(4 + (got > 0 ? got : 0)), zmsg ? "; zlib: " : "",
                        zmsg ? zmsg : "");
    }
    f->ndims = ndims;
    int64_t item = 1;
    for (int d = 0; d < ndims; d++) {
        const unsigned char *p = hdr + 4 + 4 * d;
        f->dims[d] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
        if (d > 0) {
            if (f->dims[d] == 0 || f->dims[d] > INT_MAX || item > INT64_MAX / 4 / f->dims[d]) {
                ptq_idx_close(f);
                return ptq_fail(err, PTQ_ERR_FORMAT, "%s: bad IDX dimension %d of size %lld", path, d,
                                (long long)f->dims[d]);
            }
            item *= f->dims[d];
        }
    }
    f->n_items = f->dims[0];
    f->item_bytes = item;
    if (f->n_items > INT_MAX || f->n_items > (INT64_MAX / 4) / item) {
        ptq_idx_close(f);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: IDX header claims %lld items: too many", path,
                        (long long)f->n_items);
    }
    f->total_bytes = hlen + f->n_items * item;
    return PTQ_OK;
}

static void describe_dims(const ptq_idx_file *f, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "%lld", (long long)f->dims[0]);
    for (int d = 1; d < f->ndims && o < n; d++) o += (size_t)snprintf(buf + o, n - o, " x %lld", (long long)f->dims[d]);
}

ptq_status ptq_idx_read_items(ptq_idx_file *f, int64_t first, int64_t count, uint8_t *dst, ptq_error *err) {
    if (!f->gz) return ptq_fail(err, PTQ_ERR_ARG, "%s: IDX file is not open", f->path);
    if (first < 0 || count < 0 || first > f->n_items || count > f->n_items - first)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: items [%lld, %lld) out of range (file has %lld)", f->path,
                        (long long)first, (long long)(first + count), (long long)f->n_items);
    int64_t hlen = 4 + 4 * (int64_t)f->ndims;
    int64_t begin = first * f->item_bytes, len = count * f->item_bytes;
    int64_t data = f->total_bytes - hlen; /* bytes of data the header promises */
    int64_t pos = 0;                      /* data bytes read so far */
    unsigned char *buf = NULL;
    const char *zmsg = NULL;
    ptq_status st = PTQ_OK;

    /* skip to the selection, copy it, then read the rest (plus one byte) to check the length */
    buf = malloc(IDX_CHUNK);
    if (!buf) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate a read buffer", f->path);
    int short_read = 0;
    while (!short_read && pos < begin) {
        int64_t want = begin - pos < IDX_CHUNK ? begin - pos : IDX_CHUNK;
        int64_t got = gz_read_some(f->gz, buf, want, &zmsg);
        pos += got;
        short_read = got != want;
    }
    if (!short_read && len > 0) {
        int64_t got = gz_read_some(f->gz, dst, len, &zmsg);
        pos += got;
        short_read = got != len;
    }
    while (!short_read && pos <= data) {
        int64_t want = data + 1 - pos < IDX_CHUNK ? data + 1 - pos : IDX_CHUNK;
        int64_t got = gz_read_some(f->gz, buf, want, &zmsg);
        pos += got;
        if (got != want) break;
    }
    char dims[128];
    describe_dims(f, dims, sizeof dims);
    const char *unz = gzdirect(f->gz) ? "" : " after decompression";
    if (pos < data)
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: truncated IDX file: its header (%s) needs %lld bytes%s, got %lld%s%s",
                      f->path, dims, (long long)f->total_bytes, unz, (long long)(hlen + pos), zmsg ? "; zlib: " : "",
                      zmsg ? zmsg : "");
    else if (pos > data)
        st = ptq_fail(err, PTQ_ERR_FORMAT,
                      "%s: trailing data: its IDX header (%s) promises %lld bytes%s, but the file is longer", f->path,
                      dims, (long long)f->total_bytes, unz);
    else if (zmsg)
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: corrupt gzip stream: %s", f->path, zmsg);
    free(buf);
    return st;
}

void ptq_idx_close(ptq_idx_file *f) {
    if (f->gz) gzclose_r((gzFile)f->gz);
    f->gz = NULL;
}

/* ---- shared image helpers (declared in io/images.h) ---- */

ptq_status ptq_image_geom_from_model(const ptq_model *m, const char *what, ptq_image_geom *g, ptq_error *err) {
    memset(g, 0, sizeof *g);
    if (!m) return ptq_fail(err, PTQ_ERR_ARG, "%s: no model", what);
    const ptq_config *c = &m->cfg;
    if (c->arch != PTQ_ARCH_VIT)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: model %s is a %s language model; images need an image classifier (ViT)",
                        what, m->path, ptq_arch_name(c->arch));
    if (c->img_size <= 0 || c->img_size > 16384)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: model %s has img_size %d", what, m->path, c->img_size);
    if (c->in_chans != 1 && c->in_chans != 3)
        return ptq_fail(err, PTQ_ERR_UNSUPPORTED, "%s: model %s has in_chans %d; only 1 (grey) and 3 (RGB) are supported",
                        what, m->path, c->in_chans);
    if (c->vocab_size <= 0)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: model %s has %d classes", what, m->path, c->vocab_size);
    for (int ch = 0; ch < c->in_chans; ch++) {
        float mean = c->mean[ch], sd = c->std[ch];
        if (!isfinite(mean) || !isfinite(sd) || !(sd > 0))
            return ptq_fail(err, PTQ_ERR_CONFIG,
                            "%s: model %s: normalisation of channel %d is mean %g, std %g; expected a finite mean "
                            "and std > 0 (pretrained_cfg mean/std)",
                            what, m->path, ch, (double)mean, (double)sd);
        g->mean[ch] = mean;
        g->std[ch] = sd;
    }
    g->channels = c->in_chans;
    g->size = c->img_size;
    g->classes = c->vocab_size;
    return PTQ_OK;
}

ptq_status ptq_image_set_alloc(ptq_image_set *s, int count, const ptq_image_geom *g, ptq_error *err) {
    memset(s, 0, sizeof *s);
    int ok = 1;
    size_t n = ptq_mul3((size_t)count, (size_t)g->channels, (size_t)g->size * (size_t)g->size, &ok);
    if (!ok) return ptq_fail(err, PTQ_ERR_NOMEM, "image set of %d images overflows", count);
    s->pixels = ptq_alloc(n, sizeof(float), "image pixels", err);
    if (!s->pixels) return PTQ_ERR_NOMEM;
    s->labels = ptq_alloc((size_t)count, sizeof(int), "image labels", err);
    if (!s->labels) {
        ptq_image_set_free(s);
        return PTQ_ERR_NOMEM;
    }
    s->count = count;
    s->channels = g->channels;
    s->height = s->width = g->size;
    return PTQ_OK;
}

ptq_status ptq_image_selection(const char *what, int64_t n, int first, int count, int *out_count, ptq_error *err) {
    *out_count = 0;
    if (first < 0 || count < 0)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: bad selection first %d, count %d (both must be >= 0)", what, first,
                        count);
    if (first >= n)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: first image %d is past the end (%lld images)", what, first,
                        (long long)n);
    if (count == 0) count = (int)(n - first);
    if ((int64_t)first + count > n)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: images [%d, %lld) requested, but there are only %lld", what, first,
                        (long long)first + count, (long long)n);
    *out_count = count;
    return PTQ_OK;
}

void ptq_image_set_free(ptq_image_set *s) {
    if (!s) return;
    ptq_free(s->pixels);
    ptq_free(s->labels);
    memset(s, 0, sizeof *s);
}

/* ---- ptq_images_load_idx ---- */

ptq_status ptq_images_load_idx(const ptq_model *m, const char *images, const char *labels, int first, int count,
                               ptq_image_set *out, ptq_error *err) {
    memset(out, 0, sizeof *out);
    ptq_image_geom g;
    PTQ_TRY(ptq_image_geom_from_model(m, images ? images : "IDX images", &g, err));
    ptq_idx_file fi, fl;
    PTQ_TRY(ptq_idx_open(images, 3, "images", &fi, err));
    ptq_status st = ptq_idx_open(labels, 1, "labels", &fl, err);
    if (st != PTQ_OK) {
        ptq_idx_close(&fi);
        return st;
    }
    uint8_t *raw = NULL, *lab = NULL;
    int n = 0;
    if (g.channels != 1) {
        st = ptq_fail(err, PTQ_ERR_CONFIG, "%s: IDX images have 1 channel, but model %s expects in_chans %d", images,
                      m->path, g.channels);
        goto fail;
    }
    if (fi.dims[1] != g.size || fi.dims[2] != g.size) {
        st = ptq_fail(err, PTQ_ERR_CONFIG, "%s: images are %lldx%lld, but model %s expects %dx%d (img_size)", images,
                      (long long)fi.dims[1], (long long)fi.dims[2], m->path, g.size, g.size);
        goto fail;
    }
    if (fi.n_items != fl.n_items) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s has %lld images but %s has %lld labels", images,
                      (long long)fi.n_items, labels, (long long)fl.n_items);
        goto fail;
    }
    st = ptq_image_selection(images, fi.n_items, first, count, &n, err);
    if (st != PTQ_OK) goto fail;
    raw = malloc((size_t)n * (size_t)fi.item_bytes);
    lab = malloc((size_t)n);
    if (!raw || !lab) {
        st = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %d images", images, n);
        goto fail;
    }
    st = ptq_idx_read_items(&fi, first, n, raw, err);
    if (st == PTQ_OK) st = ptq_idx_read_items(&fl, first, n, lab, err);
    if (st != PTQ_OK) goto fail;
    for (int i = 0; i < n; i++)
        if (lab[i] >= g.classes) {
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: label %d of image %d is outside the model's %d classes [0, %d)",
                          labels, lab[i], first + i, g.classes, g.classes);
            goto fail;
        }
    st = ptq_image_set_alloc(out, n, &g, err);
    if (st != PTQ_OK) goto fail;
    size_t px = (size_t)n * (size_t)fi.item_bytes;
    for (size_t i = 0; i < px; i++) out->pixels[i] = ptq_image_norm(raw[i], g.mean[0], g.std[0]);
    for (int i = 0; i < n; i++) out->labels[i] = lab[i];
fail:
    free(raw);
    free(lab);
    ptq_idx_close(&fi);
    ptq_idx_close(&fl);
    if (st != PTQ_OK) ptq_image_set_free(out);
    return st;
}
