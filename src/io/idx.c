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

/* The byte stream of an IDX file: raw bytes, or gzip members inflated one after another. zlib's gzFile
 * is not used because it silently ignores bytes after the last gzip member. */
struct ptq_idx_stream {
    int fd;
    int gzip;              /* 1 when the file starts with the gzip magic */
    int in_eof;            /* read() returned 0 */
    int done;              /* gzip: the last member ended and nothing follows */
    int64_t in_pos;        /* compressed bytes consumed so far (for messages) */
    z_stream zs;
    unsigned char in[64 * 1024];
    char problem[160];     /* why the stream stopped early, "" when it just ended */
};

/* Top up the input buffer (keeping unread bytes); returns -1 on a read error. */
static int refill(struct ptq_idx_stream *s) {
    if (s->zs.avail_in > 0 && s->zs.next_in != s->in) memmove(s->in, s->zs.next_in, s->zs.avail_in);
    s->zs.next_in = s->in;
    while (!s->in_eof && s->zs.avail_in < sizeof s->in) {
        ssize_t r = read(s->fd, s->in + s->zs.avail_in, sizeof s->in - s->zs.avail_in);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(s->problem, sizeof s->problem, "read error: %s", strerror(errno));
            return -1;
        }
        if (r == 0) s->in_eof = 1;
        s->zs.avail_in += (uInt)r;
    }
    return 0;
}

/* Read up to n bytes; returns the count read, short only at the end of the data or on an error, which
 * is then described in s->problem (a corrupt, truncated or trailing-garbage gzip stream). */
static int64_t stream_read(struct ptq_idx_stream *s, void *dst, int64_t n) {
    unsigned char *out = dst;
    int64_t got = 0;
    while (got < n && !s->problem[0] && !s->done) {
        if (s->zs.avail_in == 0 && refill(s) != 0) break;
        int64_t want = n - got < IDX_CHUNK ? n - got : IDX_CHUNK;
        if (!s->gzip) { /* plain file: copy what is buffered */
            if (s->zs.avail_in == 0) break;
            int64_t k = want < (int64_t)s->zs.avail_in ? want : (int64_t)s->zs.avail_in;
            memcpy(out + got, s->zs.next_in, (size_t)k);
            s->zs.next_in += k;
            s->zs.avail_in -= (uInt)k;
            got += k;
            continue;
        }
        s->zs.next_out = out + got;
        s->zs.avail_out = (uInt)want;
        uInt before = s->zs.avail_in;
        int r = inflate(&s->zs, Z_NO_FLUSH);
        s->in_pos += before - s->zs.avail_in;
        got += want - s->zs.avail_out;
        if (r == Z_STREAM_END) {
            /* a member ended: another gzip member may follow, anything else is garbage */
            if (s->zs.avail_in < 2 && refill(s) != 0) break;
            if (s->zs.avail_in == 0) {
                s->done = 1;
            } else if (s->zs.avail_in >= 2 && s->zs.next_in[0] == 0x1f && s->zs.next_in[1] == 0x8b) {
                inflateReset(&s->zs);
            } else {
                snprintf(s->problem, sizeof s->problem, "trailing garbage after the gzip stream at byte %lld",
                         (long long)s->in_pos);
            }
        } else if (r == Z_BUF_ERROR && s->zs.avail_in == 0 && s->in_eof) {
            snprintf(s->problem, sizeof s->problem, "unexpected end of the gzip stream");
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            snprintf(s->problem, sizeof s->problem, "corrupt gzip stream: %s", s->zs.msg ? s->zs.msg : "inflate failed");
        }
    }
    return got;
}

static void stream_close(struct ptq_idx_stream *s) {
    if (!s) return;
    if (s->gzip) inflateEnd(&s->zs);
    if (s->fd >= 0) close(s->fd);
    free(s);
}

/* Open path as an IDX byte stream, gzip'ed or not (decided from the first two bytes). */
static ptq_status stream_open(const char *path, const char *what, struct ptq_idx_stream **out, ptq_error *err) {
    *out = NULL;
    struct ptq_idx_stream *s = calloc(1, sizeof *s);
    if (!s) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate a reader", path);
    s->fd = open(path, O_RDONLY);
    if (s->fd < 0) {
        int e = errno;
        free(s);
        return ptq_fail(err, PTQ_ERR_IO, "%s: cannot open %s file: %s", path, what, strerror(e));
    }
    if (refill(s) != 0) {
        ptq_status st = ptq_fail(err, PTQ_ERR_IO, "%s: %s", path, s->problem);
        stream_close(s);
        return st;
    }
    if (s->zs.avail_in >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b) {
        if (inflateInit2(&s->zs, 15 + 16) != Z_OK) { /* 16: expect a gzip wrapper */
            stream_close(s);
            return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot start zlib reader", path);
        }
        s->gzip = 1;
    }
    *out = s;
    return PTQ_OK;
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
    PTQ_TRY(stream_open(path, what, &f->s, err));
    struct ptq_idx_stream *s = f->s;

    unsigned char hdr[4 + 4 * 4] = {0};
    int64_t hlen = 4 + 4 * (int64_t)ndims;
    ptq_status st = PTQ_OK;
    int64_t got = stream_read(s, hdr, 4);
    uint32_t magic = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    uint32_t want_magic = (uint32_t)IDX_TYPE_U8 << 8 | (uint32_t)ndims;
    if (got != 4) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: not an IDX %s file: %s", path, what,
                      s->problem[0] ? s->problem : "shorter than the 4-byte magic");
    } else if (magic != want_magic) {
        if (hdr[0] == 0 && hdr[1] == 0 && hdr[3] >= 1 && hdr[3] <= 4 && (hdr[3] != ndims || hdr[2] != IDX_TYPE_U8))
            st = ptq_fail(err, hdr[3] == ndims ? PTQ_ERR_UNSUPPORTED : PTQ_ERR_FORMAT,
                          "%s: expected IDX %s (magic 0x%08X: u8, %d dimension%s), found magic 0x%08X (%s, %d "
                          "dimension%s)",
                          path, what, (unsigned)want_magic, ndims, ndims == 1 ? "" : "s", (unsigned)magic,
                          type_name(hdr[2]), hdr[3], hdr[3] == 1 ? "" : "s");
        else
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: not an IDX %s file (magic 0x%08X, expected 0x%08X)", path, what,
                          (unsigned)magic, (unsigned)want_magic);
    } else if ((got = stream_read(s, hdr + 4, hlen - 4)) != hlen - 4) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: truncated IDX header: expected %lld bytes, got %lld%s%s", path,
                      (long long)hlen, (long long)(4 + got), s->problem[0] ? "; " : "", s->problem);
    }
    if (st != PTQ_OK) { /* the message is formatted before the stream (and its problem text) is freed */
        ptq_idx_close(f);
        return st;
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

/* Read len bytes into a buffer that grows as the data arrives, so that a header promising more than the
 * file holds costs memory for what is there, not for what is promised. Returns the count read, or -1
 * when the buffer cannot grow. */
static int64_t read_growing(struct ptq_idx_stream *s, int64_t len, uint8_t **out) {
    uint8_t *buf = NULL;
    int64_t got = 0, cap = 0;
    while (got < len) {
        if (got == cap) {
            int64_t ncap = cap ? (cap < len / 2 ? 2 * cap : len) : (len < IDX_CHUNK ? len : IDX_CHUNK);
            uint8_t *nb = realloc(buf, (size_t)ncap);
            if (!nb) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        int64_t want = cap - got, k = stream_read(s, buf + got, want);
        got += k;
        if (k < want) break; /* the data ended */
    }
    *out = buf;
    return got;
}

ptq_status ptq_idx_read_items(ptq_idx_file *f, int64_t first, int64_t count, uint8_t **out, ptq_error *err) {
    struct ptq_idx_stream *s = f->s;
    if (!s) return ptq_fail(err, PTQ_ERR_ARG, "%s: IDX file is not open", f->path);
    if (first < 0 || count < 0 || first > f->n_items || count > f->n_items - first)
        return ptq_fail(err, PTQ_ERR_ARG, "%s: items [%lld, %lld) out of range (file has %lld)", f->path,
                        (long long)first, (long long)(first + count), (long long)f->n_items);
    int64_t hlen = 4 + 4 * (int64_t)f->ndims;
    int64_t begin = first * f->item_bytes, len = count * f->item_bytes;
    int64_t data = f->total_bytes - hlen; /* bytes of data the header promises */
    int64_t pos = 0;                      /* data bytes read so far */
    uint8_t *dst = NULL;
    ptq_status st = PTQ_OK;
    *out = NULL;

    /* skip to the selection, copy it, then read the rest (plus one byte) to check the length */
    unsigned char *buf = malloc(IDX_CHUNK);
    if (!buf) return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate a read buffer", f->path);
    int short_read = 0;
    while (!short_read && pos < begin) {
        int64_t want = begin - pos < IDX_CHUNK ? begin - pos : IDX_CHUNK;
        int64_t got = stream_read(s, buf, want);
        pos += got;
        short_read = got != want;
    }
    if (!short_read && len > 0) {
        int64_t got = read_growing(s, len, &dst);
        if (got < 0) {
            free(buf);
            return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %lld bytes for the selected items", f->path,
                            (long long)len);
        }
        pos += got;
        short_read = got != len;
    }
    while (!short_read && pos <= data) {
        int64_t want = data + 1 - pos < IDX_CHUNK ? data + 1 - pos : IDX_CHUNK;
        int64_t got = stream_read(s, buf, want);
        pos += got;
        if (got != want) break;
    }
    free(buf);
    char dims[128];
    describe_dims(f, dims, sizeof dims);
    const char *unz = s->gzip ? " after decompression" : "";
    if (pos < data)
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: truncated IDX file: its header (%s) needs %lld bytes%s, got %lld%s%s",
                      f->path, dims, (long long)f->total_bytes, unz, (long long)(hlen + pos),
                      s->problem[0] ? "; " : "", s->problem);
    else if (pos > data)
        st = ptq_fail(err, PTQ_ERR_FORMAT,
                      "%s: trailing data: its IDX header (%s) promises %lld bytes%s, but the file is longer", f->path,
                      dims, (long long)f->total_bytes, unz);
    else if (s->problem[0])
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: %s", f->path, s->problem);
    if (st != PTQ_OK) {
        free(dst);
        return st;
    }
    *out = dst;
    return PTQ_OK;
}

void ptq_idx_close(ptq_idx_file *f) {
    stream_close(f->s);
    f->s = NULL;
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
    g->prep = c->prep.hf ? &c->prep : NULL;
    return PTQ_OK;
}

ptq_status ptq_model_image_prep(const ptq_model *m, ptq_image_prep_info *info, ptq_error *err) {
    memset(info, 0, sizeof *info);
    ptq_image_geom g;
    PTQ_TRY(ptq_image_geom_from_model(m, "image preprocessing", &g, err));
    const ptq_config *c = &m->cfg;
    info->hf = g.prep != NULL;
    info->channels = g.channels;
    info->size = g.size;
    info->config_norm = c->config_norm;
    for (int ch = 0; ch < g.channels; ch++) {
        info->config_mean[ch] = c->mean[ch];
        info->config_std[ch] = c->std[ch];
        const int norm = !g.prep || g.prep->do_normalize;
        info->mean[ch] = g.prep ? (norm ? g.prep->mean[ch] : 0.0f) : c->mean[ch];
        info->std[ch] = g.prep ? (norm ? g.prep->std[ch] : 1.0f) : c->std[ch];
        if (g.prep && c->config_norm && (info->mean[ch] != c->mean[ch] || info->std[ch] != c->std[ch]))
            info->overridden = 1;
    }
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
    for (int i = 0; i < count; i++) s->labels[i] = -1; /* unlabeled until a loader sets them */
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
    const int labeled = labels && *labels;
    ptq_idx_file fi, fl;
    memset(&fl, 0, sizeof fl);
    PTQ_TRY(ptq_idx_open(images, 3, "images", &fi, err));
    ptq_status st = labeled ? ptq_idx_open(labels, 1, "labels", &fl, err) : PTQ_OK;
    if (st != PTQ_OK) {
        ptq_idx_close(&fi);
        return st;
    }
    uint8_t *raw = NULL, *lab = NULL, *planes = NULL;
    int n = 0;
    const int64_t ih = fi.dims[1], iw = fi.dims[2];
    if (!g.prep && g.channels != 1) {
        st = ptq_fail(err, PTQ_ERR_CONFIG, "%s: IDX images have 1 channel, but model %s expects in_chans %d", images,
                      m->path, g.channels);
        goto fail;
    }
    /* the timm transform takes IDX images as they are; the Hugging Face one resizes them */
    if ((!g.prep && (ih != g.size || iw != g.size)) || ih > PTQ_PREP_MAX_SIDE || iw > PTQ_PREP_MAX_SIDE || ih < 1 ||
        iw < 1) {
        st = ptq_fail(err, PTQ_ERR_CONFIG, "%s: images are %lldx%lld, but model %s expects %dx%d (img_size)", images,
                      (long long)ih, (long long)iw, m->path, g.size, g.size);
        goto fail;
    }
    if (labeled && fi.n_items != fl.n_items) {
        st = ptq_fail(err, PTQ_ERR_FORMAT, "%s has %lld images but %s has %lld labels", images,
                      (long long)fi.n_items, labels, (long long)fl.n_items);
        goto fail;
    }
    st = ptq_image_selection(images, fi.n_items, first, count, &n, err);
    if (st != PTQ_OK) goto fail;
    st = ptq_idx_read_items(&fi, first, n, &raw, err);
    if (st == PTQ_OK && labeled) st = ptq_idx_read_items(&fl, first, n, &lab, err);
    if (st != PTQ_OK) goto fail;
    for (int i = 0; labeled && i < n; i++)
        if (lab[i] >= g.classes) {
            st = ptq_fail(err, PTQ_ERR_FORMAT, "%s: label %d of image %d is outside the model's %d classes [0, %d)",
                          labels, lab[i], first + i, g.classes, g.classes);
            goto fail;
        }
    st = ptq_image_set_alloc(out, n, &g, err);
    if (st != PTQ_OK) goto fail;
    const size_t item = (size_t)fi.item_bytes, img = (size_t)g.channels * g.size * g.size;
    if (g.prep) { /* grey bytes, as many planes as the model has channels (PIL's convert("RGB") replicates) */
        planes = malloc((size_t)g.channels * item);
        if (!planes) st = ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate an image", images);
        for (int i = 0; st == PTQ_OK && i < n; i++) {
            for (int c = 0; c < g.channels; c++) memcpy(planes + c * item, raw + i * item, item);
            st = ptq_preprocess_apply(g.prep, planes, g.channels, (int)iw, (int)ih, g.size, out->pixels + i * img,
                                      images, err);
            if (st != PTQ_OK) ptq_fail_context(err, "image %d", first + i);
        }
    } else {
        for (size_t i = 0; i < (size_t)n * item; i++) out->pixels[i] = ptq_image_norm(raw[i], g.mean[0], g.std[0]);
    }
    for (int i = 0; labeled && i < n; i++) out->labels[i] = lab[i];
fail:
    free(raw);
    free(lab);
    free(planes);
    ptq_idx_close(&fi);
    if (labeled) ptq_idx_close(&fl);
    if (st != PTQ_OK) ptq_image_set_free(out);
    return st;
}
