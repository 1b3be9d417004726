/* Image loaders: IDX (MNIST) files and folders of PNG/BMP files, against goldens written by
 * tests/ref/make_image_goldens.py (numpy; its resize cross-checked against torch, its luma against Pillow).
 * The image files are generated here at test time from the same integer pattern as the script. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "models/model.h"
#include "ptq.h"
#include "testutil.h"

/* ---------- helpers ---------- */

static ptq_model *stub_model(int in_chans, int img, float crop, int classes, const float *mean, const float *std) {
    ptq_model *m = calloc(1, sizeof *m);
    m->cfg.arch = PTQ_ARCH_VIT;
    m->cfg.img_size = img;
    m->cfg.in_chans = in_chans;
    m->cfg.crop_pct = crop;
    m->cfg.vocab_size = classes;
    for (int c = 0; c < in_chans; c++) {
        m->cfg.mean[c] = mean[c];
        m->cfg.std[c] = std[c];
    }
    snprintf(m->path, sizeof m->path, "stub-vit-%dx%dx%d", in_chans, img, img);
    return m;
}

static ptq_model *mnist_model(void) {
    const float mean = 0.1307f, sd = 0.3081f;
    return stub_model(1, 28, 1.0f, 10, &mean, &sd);
}

static char *tmp_path(const char *name) {
    static char buf[64][4096]; /* distinct names for the whole test */
    static int k;
    char *p = buf[k++ % 64];
    snprintf(p, 4096, "%s/%s", tu_tmpdir(), name);
    return p;
}

/* expect a failure with `status` whose message contains every given substring (NULL-terminated list) */
static void check_fail(ptq_status st, const ptq_error *err, ptq_status want, const char *what, ...) {
    CHECK_MSG(st == want, "%s: status %d (%s), want %d; message: %s", what, st, ptq_status_name(st), want,
              err->msg);
    va_list ap;
    va_start(ap, what);
    for (const char *s; (s = va_arg(ap, const char *));)
        CHECK_MSG(strstr(err->msg, s) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err->msg, s);
    va_end(ap);
    if (st != PTQ_OK) printf("  ok (%s): %s\n", what, err->msg);
}

/* whole decompressed content of a gz file */
static unsigned char *gunzip_file(const char *path, size_t *n) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) return NULL;
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    int r;
    while ((r = gzread(gz, buf + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)r;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    gzclose(gz);
    *n = len;
    return buf;
}

static int write_gz(const char *path, const void *data, size_t n) {
    gzFile gz = gzopen(path, "wb");
    if (!gz) return -1;
    int ok = gzwrite(gz, data, (unsigned)n) == (int)n;
    return gzclose(gz) == Z_OK && ok ? 0 : -1;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* ---------- goldens ---------- */

static FILE *open_golden(const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/tests/data/images/%s", PTQ_SOURCE_DIR, name);
    FILE *f = fopen(p, "r");
    if (!f) {
        fprintf(stderr, "cannot open golden %s (run tests/ref/make_image_goldens.py)\n", p);
        exit(1);
    }
    return f;
}

/* read the numbers after `key` on its line in mnist.txt */
static int golden_numbers(const char *key, double *v, int max) {
    FILE *f = open_golden("mnist.txt");
    char line[8192];
    int n = -1;
    while (fgets(line, sizeof line, f)) {
        size_t kl = strlen(key);
        if (strncmp(line, key, kl) != 0 || line[kl] != ' ') continue;
        char *p = line + kl, *end;
        n = 0;
        while (n < max) {
            double x = strtod(p, &end);
            if (end == p) break;
            v[n++] = x;
            p = end;
        }
        break;
    }
    fclose(f);
    if (n < 0) {
        fprintf(stderr, "golden key %s missing\n", key);
        exit(1);
    }
    return n;
}

/* ---------- IDX ---------- */

static void test_idx_mnist(const char *img_gz, const char *lab_gz) {
    ptq_model *m = mnist_model();
    ptq_error err = {0};
    ptq_image_set s;
    double lab20[20], sums[10], row14[28], last_lab[10], last_raw[10], lsum;

    CHECK(golden_numbers("labels_first20", lab20, 20) == 20);
    CHECK(golden_numbers("norm_sums_first10", sums, 10) == 10);
    CHECK(golden_numbers("img0_row14", row14, 28) == 28);
    CHECK(golden_numbers("labels_last10", last_lab, 10) == 10);
    CHECK(golden_numbers("raw_sums_last10", last_raw, 10) == 10);
    CHECK(golden_numbers("label_sum_all", &lsum, 1) == 1);

    /* images 0..9 */
    ptq_status st = ptq_images_load_idx(m, img_gz, lab_gz, 0, 10, &s, &err);
    CHECK_MSG(st == PTQ_OK, "%s", err.msg);
    if (st == PTQ_OK) {
        CHECK(s.count == 10 && s.channels == 1 && s.height == 28 && s.width == 28);
        for (int i = 0; i < 10; i++) {
            CHECK_MSG(s.labels[i] == (int)lab20[i], "label %d: %d vs %g", i, s.labels[i], lab20[i]);
            double sum = 0;
            for (int k = 0; k < 784; k++) sum += s.pixels[i * 784 + k];
            CHECK_MSG(fabs(sum - sums[i]) < 1e-3, "image %d sum %.6f vs %.6f", i, sum, sums[i]);
        }
        for (int x = 0; x < 28; x++)
            CHECK_MSG(fabs(s.pixels[14 * 28 + x] - row14[x]) < 1e-5, "img0 row14 x=%d: %.7f vs %.7f", x,
                      s.pixels[14 * 28 + x], row14[x]);
        ptq_image_set_free(&s);
        CHECK(s.pixels == NULL && s.labels == NULL && s.count == 0);
    }

    /* images 10..19: the selection offset */
    st = ptq_images_load_idx(m, img_gz, lab_gz, 10, 10, &s, &err);
    CHECK_MSG(st == PTQ_OK, "%s", err.msg);
    if (st == PTQ_OK) {
        CHECK(s.count == 10);
        for (int i = 0; i < 10; i++) CHECK(s.labels[i] == (int)lab20[10 + i]);
        ptq_image_set_free(&s);
    }

    /* the last 10 (count 0 = to the end); raw bytes recovered from the normalised values */
    st = ptq_images_load_idx(m, img_gz, lab_gz, 9990, 0, &s, &err);
    CHECK_MSG(st == PTQ_OK, "%s", err.msg);
    if (st == PTQ_OK) {
        CHECK(s.count == 10);
        for (int i = 0; i < 10 && s.count == 10; i++) {
            CHECK(s.labels[i] == (int)last_lab[i]);
            long raw = 0;
            int all_int = 1;
            for (int k = 0; k < 784; k++) {
                double v = ((double)s.pixels[i * 784 + k] * 0.3081 + 0.1307) * 255.0;
                long r = lround(v);
                if (fabs(v - (double)r) > 1e-3 || r < 0 || r > 255) all_int = 0;
                raw += r;
            }
            CHECK_MSG(all_int, "image %d: pixels are not k/255 normalised", 9990 + i);
            CHECK_MSG(raw == (long)last_raw[i], "image %d raw sum %ld vs %g", 9990 + i, raw, last_raw[i]);
        }
        ptq_image_set_free(&s);
    }

    /* everything */
    st = ptq_images_load_idx(m, img_gz, lab_gz, 0, 0, &s, &err);
    CHECK_MSG(st == PTQ_OK, "%s", err.msg);
    if (st == PTQ_OK) {
        CHECK(s.count == 10000);
        long ls = 0;
        for (int i = 0; i < s.count; i++) ls += s.labels[i];
        CHECK_MSG(ls == (long)lsum, "label sum %ld vs %g", ls, lsum);
        ptq_image_set_free(&s);
    }

    /* selections out of range */
    st = ptq_images_load_idx(m, img_gz, lab_gz, 9995, 10, &s, &err);
    check_fail(st, &err, PTQ_ERR_ARG, "first+count past the end", "9995", "10005", "10000", NULL);
    CHECK(s.pixels == NULL && s.count == 0);
    st = ptq_images_load_idx(m, img_gz, lab_gz, 10000, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_ARG, "first at the end", "10000", NULL);
    st = ptq_images_load_idx(m, img_gz, lab_gz, -1, 5, &s, &err);
    check_fail(st, &err, PTQ_ERR_ARG, "negative first", "-1", NULL);

    /* model mismatches */
    m->cfg.img_size = 32;
    st = ptq_images_load_idx(m, img_gz, lab_gz, 0, 10, &s, &err);
    check_fail(st, &err, PTQ_ERR_CONFIG, "img_size mismatch", "28x28", "32x32", "t10k-images", NULL);
    m->cfg.img_size = 28;
    m->cfg.in_chans = 3;
    m->cfg.mean[1] = m->cfg.mean[2] = 0.5f;
    m->cfg.std[1] = m->cfg.std[2] = 0.5f;
    st = ptq_images_load_idx(m, img_gz, lab_gz, 0, 10, &s, &err);
    check_fail(st, &err, PTQ_ERR_CONFIG, "in_chans 3", "in_chans 3", NULL);
    m->cfg.in_chans = 1;
    m->cfg.std[0] = 0;
    st = ptq_images_load_idx(m, img_gz, lab_gz, 0, 10, &s, &err);
    check_fail(st, &err, PTQ_ERR_CONFIG, "std 0", "std", NULL);
    m->cfg.std[0] = 0.3081f;
    m->cfg.arch = PTQ_ARCH_LLAMA;
    st = ptq_images_load_idx(m, img_gz, lab_gz, 0, 10, &s, &err);
    check_fail(st, &err, PTQ_ERR_ARG, "language model", "ViT", NULL);
    m->cfg.arch = PTQ_ARCH_VIT;

    /* wrong files */
    st = ptq_images_load_idx(m, lab_gz, lab_gz, 0, 10, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "labels given as images", "t10k-labels", "0x00000803", "0x00000801", NULL);
    st = ptq_images_load_idx(m, img_gz, img_gz, 0, 10, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "images given as labels", "0x00000801", NULL);
    st = ptq_images_load_idx(m, tmp_path("does-not-exist.gz"), lab_gz, 0, 10, &s, &err);
    check_fail(st, &err, PTQ_ERR_IO, "missing file", "does-not-exist.gz", NULL);
    free(m);
}

static void test_idx_synthetic(const char *img_gz, const char *lab_gz) {
    ptq_model *m = mnist_model();
    ptq_error err = {0};
    ptq_image_set s, ref;
    size_t ni = 0, nl = 0;
    unsigned char *img = gunzip_file(img_gz, &ni), *lab = gunzip_file(lab_gz, &nl);
    CHECK(img && lab && ni == 16 + 10000u * 784 && nl == 8 + 10000u);
    if (!img || !lab || ni != 16 + 10000u * 784 || nl != 8 + 10000u) return;
    CHECK(ptq_images_load_idx(m, img_gz, lab_gz, 0, 3, &ref, &err) == PTQ_OK);

    /* plain (not gzip'ed) files with the first 3 images: the same tensors */
    unsigned char *small = malloc(16 + 3 * 784 + 1), small_lab[8 + 3 + 1];
    memcpy(small, img, 16 + 3 * 784);
    put_be32(small + 4, 3);
    memcpy(small_lab, lab, 8 + 3);
    put_be32(small_lab + 4, 3);
    char *pi = tmp_path("img3.idx"), *pl = tmp_path("lab3.idx");
    CHECK(tu_write_file(pi, small, 16 + 3 * 784) == 0 && tu_write_file(pl, small_lab, 8 + 3) == 0);
    ptq_status st = ptq_images_load_idx(m, pi, pl, 0, 0, &s, &err);
    CHECK_MSG(st == PTQ_OK, "%s", err.msg);
    if (st == PTQ_OK) {
        CHECK(s.count == 3);
        CHECK(memcmp(s.pixels, ref.pixels, 3 * 784 * sizeof(float)) == 0);
        CHECK(memcmp(s.labels, ref.labels, 3 * sizeof(int)) == 0);
        ptq_image_set_free(&s);
    }
    /* and the same gzip'ed by us, with a name that does not say so */
    char *pig = tmp_path("img3-gz.idx");
    CHECK(write_gz(pig, small, 16 + 3 * 784) == 0);
    st = ptq_images_load_idx(m, pig, pl, 1, 2, &s, &err);
    CHECK_MSG(st == PTQ_OK, "%s", err.msg);
    if (st == PTQ_OK) {
        CHECK(s.count == 2);
        CHECK(memcmp(s.pixels, ref.pixels + 784, 2 * 784 * sizeof(float)) == 0);
        CHECK(s.labels[0] == ref.labels[1] && s.labels[1] == ref.labels[2]);
        ptq_image_set_free(&s);
    }

    /* truncated plain file: the message names the file, the expected and actual size */
    char *pt = tmp_path("trunc-images.idx");
    size_t cut = 16 + 5 * 784 + 100;
    CHECK(tu_write_file(pt, img, cut) == 0);
    st = ptq_images_load_idx(m, pt, lab_gz, 0, 2, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "truncated IDX", "trunc-images.idx", "truncated", "7840016", "4036", NULL);
    /* the selection lies past the cut */
    st = ptq_images_load_idx(m, pt, lab_gz, 9000, 10, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "truncated IDX, late selection", "trunc-images.idx", "truncated", NULL);

    /* truncated gzip stream (the compressed file cut in half) */
    char *pgz = tmp_path("full-images.idx.gz"), *pgzt = tmp_path("cut-images.idx.gz");
    CHECK(write_gz(pgz, img, ni) == 0);
    size_t gzlen = 0;
    char *gzdata = NULL;
    {
        FILE *f = fopen(pgz, "rb");
        fseek(f, 0, SEEK_END);
        gzlen = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        gzdata = malloc(gzlen);
        CHECK(fread(gzdata, 1, gzlen, f) == gzlen);
        fclose(f);
    }
    CHECK(tu_write_file(pgzt, gzdata, gzlen / 2) == 0);
    st = ptq_images_load_idx(m, pgz, lab_gz, 0, 1, &s, &err);
    CHECK_MSG(st == PTQ_OK, "re-gzipped full file: %s", err.msg);
    ptq_image_set_free(&s);
    st = ptq_images_load_idx(m, pgzt, lab_gz, 0, 1, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "truncated gzip", "cut-images.idx.gz", "truncated", "7840016", NULL);
    free(gzdata);

    /* the first 12 bytes of the shared .gz (a gzip header and 2 bytes of deflate data): the zlib message
     * must be in the error intact (it was read after the reader that owned it was freed) */
    st = ptq_images_load_idx(m, tmp_path("missing"), lab_gz, 0, 1, &s, &err); /* fill err.msg with other text */
    char *p12 = tmp_path("first12.gz");
    {
        FILE *f = fopen(img_gz, "rb");
        unsigned char head[12];
        CHECK(f && fread(head, 1, 12, f) == 12);
        if (f) fclose(f);
        CHECK(tu_write_file(p12, head, 12) == 0);
    }
    st = ptq_images_load_idx(m, p12, lab_gz, 0, 1, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "12 bytes of gzip", "first12.gz", "unexpected end", NULL);
    {
        const char *c = err.msg;
        while (*c && (unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f) c++;
        CHECK_MSG(*c == 0, "non-printable byte 0x%02X in: %s", (unsigned char)*c, err.msg);
    }

    /* a header claiming 2^31-1 images (and labels) in files holding 10000: "truncated", with the promised
     * and the actual size, not a failed allocation of the promised 1.7 TB; plain and gzip'ed */
    {
        put_be32(img + 4, 0x7fffffffu);
        put_be32(lab + 4, 0x7fffffffu);
        char *phi = tmp_path("huge-count.idx"), *phl = tmp_path("huge-count-labels.idx");
        char *phg = tmp_path("huge-count.idx.gz");
        CHECK(tu_write_file(phi, img, ni) == 0 && tu_write_file(phl, lab, nl) == 0 && write_gz(phg, img, ni) == 0);
        st = ptq_images_load_idx(m, phi, phl, 0, 0, &s, &err);
        check_fail(st, &err, PTQ_ERR_FORMAT, "huge count, plain", "huge-count.idx", "truncated",
                   "1683627179264", "7840016", NULL); /* 16 + (2^31-1) * 784 */
        st = ptq_images_load_idx(m, phg, phl, 0, 0, &s, &err);
        check_fail(st, &err, PTQ_ERR_FORMAT, "huge count, gzip", "huge-count.idx.gz", "truncated",
                   "1683627179264", "7840016", NULL);
        put_be32(img + 4, 10000);
        put_be32(lab + 4, 10000);
    }

    /* bytes after the gzip stream are an error; a second gzip member is not (gzip files may be concatenated) */
    {
        char *pg = tmp_path("img3.idx.gz"), *pgg = tmp_path("img3-garbage.idx.gz"), *pg2 = tmp_path("img3-2.idx.gz");
        CHECK(write_gz(pg, small, 16 + 3 * 784) == 0);
        size_t n1 = 0;
        unsigned char *z = NULL;
        FILE *f = fopen(pg, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            n1 = (size_t)ftell(f);
            fseek(f, 0, SEEK_SET);
            z = malloc(n1 + 64);
            CHECK(fread(z, 1, n1, f) == n1);
            fclose(f);
        }
        CHECK(z != NULL);
        if (z) {
            memcpy(z + n1, "garbage!", 8);
            CHECK(tu_write_file(pgg, z, n1 + 8) == 0);
            st = ptq_images_load_idx(m, pgg, pl, 0, 0, &s, &err);
            check_fail(st, &err, PTQ_ERR_FORMAT, "gzip trailing garbage", "img3-garbage.idx.gz", "trailing garbage",
                       NULL);
            CHECK(tu_write_file(pgg, z, n1 + 1) == 0); /* a single stray byte */
            st = ptq_images_load_idx(m, pgg, pl, 0, 0, &s, &err);
            check_fail(st, &err, PTQ_ERR_FORMAT, "gzip trailing byte", "img3-garbage.idx.gz", "trailing garbage",
                       NULL);
            /* the same data split over two gzip members */
            size_t cut = 16 + 784;
            CHECK(write_gz(pg2, small, cut) == 0);
            FILE *a = fopen(pg2, "ab");
            CHECK(a != NULL);
            if (a) {
                gzFile g = gzdopen(fileno(a), "ab");
                CHECK(g && gzwrite(g, small + cut, (unsigned)(16 + 3 * 784 - cut)) > 0);
                if (g) gzclose(g);
                else fclose(a);
            }
            st = ptq_images_load_idx(m, pg2, pl, 0, 0, &s, &err);
            CHECK_MSG(st == PTQ_OK, "two gzip members: %s", err.msg);
            if (st == PTQ_OK) {
                CHECK(s.count == 3 && memcmp(s.pixels, ref.pixels, 3 * 784 * sizeof(float)) == 0);
                ptq_image_set_free(&s);
            }
        }
        free(z);
    }

    /* trailing data */
    small[16 + 3 * 784] = 0;
    char *ptr = tmp_path("trailing.idx");
    CHECK(tu_write_file(ptr, small, 16 + 3 * 784 + 1) == 0);
    st = ptq_images_load_idx(m, ptr, pl, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "trailing data", "trailing.idx", "2368", NULL);

    /* truncated header */
    char *ph = tmp_path("header.idx");
    CHECK(tu_write_file(ph, small, 10) == 0);
    st = ptq_images_load_idx(m, ph, pl, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "truncated header", "header.idx", NULL);

    /* not IDX at all */
    char *pn = tmp_path("notidx.txt");
    CHECK(tu_write_file(pn, "hello world, not an IDX file\n", 29) == 0);
    st = ptq_images_load_idx(m, pn, pl, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "text as IDX", "notidx.txt", "magic", NULL);

    /* a non-u8 type with the right number of dimensions */
    unsigned char f32hdr[16];
    memcpy(f32hdr, small, 16);
    f32hdr[2] = 0x0D;
    char *pf = tmp_path("float.idx");
    CHECK(tu_write_file(pf, f32hdr, 16) == 0);
    st = ptq_images_load_idx(m, pf, pl, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_UNSUPPORTED, "f32 IDX", "float.idx", "f32", NULL);

    /* images/labels count mismatch */
    unsigned char lab2[8 + 2];
    memcpy(lab2, small_lab, 10);
    put_be32(lab2 + 4, 2);
    char *pl2 = tmp_path("lab2.idx");
    CHECK(tu_write_file(pl2, lab2, 10) == 0);
    st = ptq_images_load_idx(m, pi, pl2, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "count mismatch", "img3.idx", "lab2.idx", "3 images", "2 labels", NULL);

    /* a label outside the model's classes */
    small_lab[8 + 1] = 10;
    char *plb = tmp_path("badlab.idx");
    CHECK(tu_write_file(plb, small_lab, 8 + 3) == 0);
    st = ptq_images_load_idx(m, pi, plb, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "label out of range", "badlab.idx", "label 10", "image 1", NULL);
    st = ptq_images_load_idx(m, pi, plb, 2, 1, &s, &err); /* not selected: fine */
    CHECK_MSG(st == PTQ_OK, "%s", err.msg);
    ptq_image_set_free(&s);

    ptq_image_set_free(&ref);
    free(small);
    free(img);
    free(lab);
    free(m);
}

/* ---------- folders ---------- */

/* The integer pattern of make_image_goldens.py: channel 3 is alpha. */
static unsigned char pattern(int x, int y, int c, int seed) {
    return (unsigned char)(((long)x * (37 + 6 * c) + (long)y * (11 + 4 * c) + (long)x * y * (3 + c) + 17 * c +
                            29 * seed) %
                           256);
}

static int write_bmp(const char *path, int w, int h, int seed) {
    int row = (3 * w + 3) & ~3;
    size_t size = 54 + (size_t)row * h;
    unsigned char *b = calloc(1, size);
    b[0] = 'B';
    b[1] = 'M';
    uint32_t le[] = {(uint32_t)size, 0, 54, 40, (uint32_t)w, (uint32_t)h};
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 4; k++) b[2 + 4 * i + k] = (unsigned char)(le[i] >> (8 * k));
    b[26] = 1;  /* planes */
    b[28] = 24; /* bits per pixel; compression 0 = BI_RGB */
    uint32_t img_size = (uint32_t)row * (uint32_t)h;
    for (int k = 0; k < 4; k++) b[34 + k] = (unsigned char)(img_size >> (8 * k));
    for (int y = 0; y < h; y++) {
        unsigned char *r = b + 54 + (size_t)(h - 1 - y) * row; /* bottom-up */
        for (int x = 0; x < w; x++) {
            r[3 * x + 0] = pattern(x, y, 2, seed); /* BGR */
            r[3 * x + 1] = pattern(x, y, 1, seed);
            r[3 * x + 2] = pattern(x, y, 0, seed);
        }
    }
    int rc = tu_write_file(path, b, size);
    free(b);
    return rc;
}

static void png_chunk(FILE *f, const char *type, const unsigned char *data, uint32_t n) {
    unsigned char hdr[8];
    put_be32(hdr, n);
    memcpy(hdr + 4, type, 4);
    fwrite(hdr, 1, 8, f);
    if (n) fwrite(data, 1, n, f);
    uLong crc = crc32(0, hdr + 4, 4);
    if (n) crc = crc32(crc, data, n);
    unsigned char c[4];
    put_be32(c, (uint32_t)crc);
    fwrite(c, 1, 4, f);
}

/* 8-bit PNG, colour type 0 (grey), 2 (RGB) or 6 (RGBA); rows use filters None and Sub alternately */
static int write_png(const char *path, int w, int h, int color_type, int seed) {
    int ch = color_type == 0 ? 1 : color_type == 2 ? 3 : 4;
    size_t stride = (size_t)w * ch + 1;
    unsigned char *raw = malloc(stride * h);
    for (int y = 0; y < h; y++) {
        unsigned char *r = raw + stride * y;
        r[0] = (unsigned char)(y & 1); /* 0 = None, 1 = Sub */
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                unsigned char v = pattern(x, y, c, seed);
                unsigned char left = x > 0 ? pattern(x - 1, y, c, seed) : 0;
                r[1 + x * ch + c] = (unsigned char)(r[0] == 1 ? v - left : v);
            }
    }
    uLongf zn = compressBound(stride * h);
    unsigned char *z = malloc(zn);
    int ok = compress(z, &zn, raw, stride * h) == Z_OK;
    FILE *f = fopen(path, "wb");
    if (!f || !ok) {
        if (f) fclose(f);
        free(raw);
        free(z);
        return -1;
    }
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    fwrite(sig, 1, 8, f);
    unsigned char ihdr[13] = {0};
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;
    ihdr[9] = (unsigned char)color_type;
    png_chunk(f, "IHDR", ihdr, 13);
    png_chunk(f, "IDAT", z, (uint32_t)zn);
    png_chunk(f, "IEND", NULL, 0);
    int rc = fclose(f) == 0 ? 0 : -1;
    free(raw);
    free(z);
    return rc;
}

#define MAX_CASES 8
typedef struct {
    char name[8];
    int ch, size, classes;
    float crop, mean[3], std[3];
} gmodel;
typedef struct {
    int w, h, seed, label;
    char color[8], format[8], file[64];
} gimage;
typedef struct {
    gmodel models[MAX_CASES];
    gimage images[MAX_CASES];
    int n_models, n_images;
    float *expect[MAX_CASES][MAX_CASES]; /* [model][image] */
    int n_expect[MAX_CASES][MAX_CASES];
} golden;

static void read_folder_golden(golden *g) {
    memset(g, 0, sizeof *g);
    FILE *f = open_golden("folder.txt");
    static char line[1 << 16];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model ", 6)) {
            gmodel *m = &g->models[g->n_models++];
            CHECK(sscanf(line, "model %7s %d %d %f %d %f %f %f %f %f %f", m->name, &m->ch, &m->size, &m->crop,
                         &m->classes, &m->mean[0], &m->mean[1], &m->mean[2], &m->std[0], &m->std[1],
                         &m->std[2]) == 11);
        } else if (!strncmp(line, "image ", 6)) {
            gimage *im = &g->images[g->n_images++];
            int off = 0;
            CHECK(sscanf(line, "image %d %d %7s %7s %d %d %n", &im->w, &im->h, im->color, im->format, &im->seed,
                         &im->label, &off) == 6);
            line[strcspn(line, "\r\n")] = 0;
            snprintf(im->file, sizeof im->file, "%s", line + off);
        } else if (!strncmp(line, "expect ", 7)) {
            char name[8];
            int idx, n, off = 0;
            CHECK(sscanf(line, "expect %7s %d %d %n", name, &idx, &n, &off) == 3);
            int mi = -1;
            for (int i = 0; i < g->n_models; i++)
                if (!strcmp(g->models[i].name, name)) mi = i;
            CHECK(mi >= 0 && idx >= 0 && idx < g->n_images);
            if (mi < 0 || idx < 0 || idx >= g->n_images) continue;
            float *v = malloc((size_t)n * sizeof *v);
            char *p = line + off, *end;
            for (int i = 0; i < n; i++) {
                v[i] = strtof(p, &end);
                CHECK(end != p);
                p = end;
            }
            g->expect[mi][idx] = v;
            g->n_expect[mi][idx] = n;
        }
    }
    fclose(f);
    CHECK(g->n_models >= 3 && g->n_images >= 6);
}

static void compare_set(const golden *g, int mi, const ptq_image_set *s, int first, const char *what) {
    const gmodel *gm = &g->models[mi];
    CHECK_MSG(s->channels == gm->ch && s->height == gm->size && s->width == gm->size, "%s: shape %dx%dx%d", what,
              s->channels, s->height, s->width);
    size_t per = (size_t)gm->ch * gm->size * gm->size;
    for (int i = 0; i < s->count; i++) {
        int idx = first + i;
        CHECK_MSG(s->labels[i] == g->images[idx].label, "%s: label of image %d", what, idx);
        CHECK_MSG(g->n_expect[mi][idx] == (int)per, "%s: golden size %d vs %zu", what, g->n_expect[mi][idx], per);
        if (g->n_expect[mi][idx] != (int)per) continue;
        double worst = 0;
        size_t at = 0;
        for (size_t k = 0; k < per; k++) {
            double d = fabs((double)s->pixels[i * per + k] - g->expect[mi][idx][k]);
            if (d > worst) worst = d, at = k;
        }
        CHECK_MSG(worst <= 1e-5, "%s: model %s image %d (%s): max diff %.3g at %zu (%.7f vs %.7f)", what, gm->name,
                  idx, g->images[idx].file, worst, at, s->pixels[i * per + at], g->expect[mi][idx][at]);
    }
}

static void test_folder(void) {
    golden g;
    read_folder_golden(&g);
    ptq_error err = {0};
    ptq_image_set s;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/folder", tu_tmpdir());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(system(cmd) == 0);

    /* the images and a labels file with comments, blank lines, CRLF and trailing spaces */
    char labels[4096], path[4200];
    snprintf(labels, sizeof labels, "%s/labels.txt", dir);
    FILE *lf = fopen(labels, "w");
    fprintf(lf, "# generated by test_images.c\n\n");
    for (int i = 0; i < g.n_images; i++) {
        const gimage *im = &g.images[i];
        snprintf(path, sizeof path, "%s/%s", dir, im->file);
        int rc;
        if (!strcmp(im->format, "bmp")) rc = write_bmp(path, im->w, im->h, im->seed);
        else rc = write_png(path, im->w, im->h, !strcmp(im->color, "gray") ? 0 : !strcmp(im->color, "rgb") ? 2 : 6,
                            im->seed);
        CHECK_MSG(rc == 0, "writing %s", path);
        fprintf(lf, i == 1 ? "  %s\t%d  \r\n" : i == 2 ? "%s %d\n   # a comment\n" : "%s %d\n", im->file, im->label);
    }
    fclose(lf);

    for (int mi = 0; mi < g.n_models; mi++) {
        const gmodel *gm = &g.models[mi];
        ptq_model *m = stub_model(gm->ch, gm->size, gm->crop, gm->classes, gm->mean, gm->std);
        ptq_status st = ptq_images_load_folder(m, dir, labels, 0, 0, &s, &err);
        CHECK_MSG(st == PTQ_OK, "model %s: %s", gm->name, err.msg);
        if (st == PTQ_OK) {
            CHECK(s.count == g.n_images);
            compare_set(&g, mi, &s, 0, "all");
            ptq_image_set_free(&s);
        }
        /* a selection, and the folder taken from the labels path */
        st = ptq_images_load_folder(m, NULL, labels, 2, 2, &s, &err);
        CHECK_MSG(st == PTQ_OK, "model %s, selection: %s", gm->name, err.msg);
        if (st == PTQ_OK) {
            CHECK(s.count == 2);
            compare_set(&g, mi, &s, 2, "selection 2..3");
            ptq_image_set_free(&s);
        }
        free(m);
    }

    const gmodel *ga = &g.models[0]; /* 5 classes */
    ptq_model *m = stub_model(ga->ch, ga->size, ga->crop, ga->classes, ga->mean, ga->std);
    ptq_status st;

    st = ptq_images_load_folder(m, dir, labels, 3, 5, &s, &err);
    check_fail(st, &err, PTQ_ERR_ARG, "folder selection out of range", "labels.txt", NULL);

    /* a text file named like a PNG */
    snprintf(path, sizeof path, "%s/x.png", dir);
    CHECK(tu_write_file(path, "this is not a picture\n", 22) == 0);
    char bad[4096];
    snprintf(bad, sizeof bad, "%s/bad-image.txt", dir);
    CHECK(tu_write_file(bad, "a.bmp 1\nx.png 2\n", 16) == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "text file as PNG", "x.png", "not an image", "bad-image.txt:2", NULL);
    CHECK(s.pixels == NULL && s.count == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 1, &s, &err); /* not selected: fine */
    CHECK_MSG(st == PTQ_OK, "%s", err.msg);
    ptq_image_set_free(&s);

    /* formats other than JPEG, PNG and BMP are refused: stb_image's PNM reader overflowed its buffer on a
     * 16-bit PGM (fuzz/regressions/fuzz_images); a valid 8-bit PGM loaded before */
    static const unsigned char pgm[] = "P5\n2 2\n255\n\x10\x20\x30\x40";
    snprintf(path, sizeof path, "%s/grey.pgm", dir);
    CHECK(tu_write_file(path, pgm, sizeof pgm - 1) == 0);
    snprintf(bad, sizeof bad, "%s/pgm.txt", dir);
    CHECK(tu_write_file(bad, "grey.pgm 0\n", 11) == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "PGM image", "grey.pgm", "not an image", NULL);

    /* a JPEG Huffman table with more than 256 codes: Debian's stb_image wrote past its 256-entry tables
     * (a fuzz finding, fuzz/regressions/fuzz_images/jpeg-dht-overflow); before the guard stb went on and
     * failed later with "Corrupt JPEG" after the overflow had happened */
    {
        unsigned char jpg[2 + 4 + 17 + 300 + 2] = {0xFF, 0xD8, 0xFF, 0xC4, 0x01, 0x3F /* 2 + 17 + 300 */, 0x00, 255, 45};
        jpg[sizeof jpg - 2] = 0xFF;
        jpg[sizeof jpg - 1] = 0xD9;
        snprintf(path, sizeof path, "%s/dht.jpg", dir);
        CHECK(tu_write_file(path, jpg, sizeof jpg) == 0);
        snprintf(bad, sizeof bad, "%s/dht.txt", dir);
        CHECK(tu_write_file(bad, "dht.jpg 0\n", 10) == 0);
        st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
        check_fail(st, &err, PTQ_ERR_FORMAT, "JPEG with 300 Huffman codes", "dht.jpg", "Huffman table at byte 2",
                   "300 codes", NULL);

        /* stb takes FF fill bytes before SOI and before a marker (the second fuzz finding) */
        static const unsigned char fill[] = {0xFF, 0xFF, 0xFF, 0xD8, 0xFF, 0xFF, 0xC4, 0x0F, 0xFF, 0x00, 0x00, 0x00,
                                             0x08, 0xFF, 0xFF, 0xFF, 0xEF};
        CHECK(tu_write_file(path, fill, sizeof fill) == 0);
        st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
        check_fail(st, &err, PTQ_ERR_FORMAT, "fill bytes, then 1012 Huffman codes", "dht.jpg", "Huffman table at byte 5",
                   "1012 codes", NULL);
        /* the same bytes inside an APP1 segment are data, which stb skips: not a Huffman table */
        static const unsigned char app[] = {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x12, 0xFF, 0xC4, 0x0F, 0xFF, 0x00, 0x00,
                                            0x00, 0x08, 0xFF, 0xFF, 0xFF, 0xEF, 0, 0, 0, 0, 0, 0, 0xFF, 0xD9};
        CHECK(tu_write_file(path, app, sizeof app) == 0);
        st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
        check_fail(st, &err, PTQ_ERR_FORMAT, "FF C4 inside APP1", "dht.jpg", "stb_image", NULL);
        CHECK_MSG(!strstr(err.msg, "Huffman"), "APP1 data taken for a Huffman table: %s", err.msg);
    }

    /* a truncated PNG */
    snprintf(path, sizeof path, "%s/c.png", dir);
    {
        FILE *f = fopen(path, "rb");
        unsigned char buf[256];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        snprintf(path, sizeof path, "%s/cut.png", dir);
        CHECK(n > 60 && tu_write_file(path, buf, 60) == 0);
    }
    snprintf(bad, sizeof bad, "%s/cut.txt", dir);
    CHECK(tu_write_file(bad, "cut.png 0\n", 10) == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "truncated PNG", "cut.png", "stb_image", NULL);

    /* a label outside the classes */
    snprintf(bad, sizeof bad, "%s/bad-label.txt", dir);
    CHECK(tu_write_file(bad, "# header\na.bmp 4\nb.bmp 5\n", 25) == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "label out of range", "bad-label.txt:3", "5", "[0, 5)", NULL);
    CHECK(tu_write_file(bad, "a.bmp -1\n", 9) == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "negative label", "bad-label.txt:1", "-1", NULL);
    CHECK(tu_write_file(bad, "a.bmp 1\nb.bmp one\n", 18) == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "non-integer label", "bad-label.txt:2", "one", NULL);
    CHECK(tu_write_file(bad, "a.bmp 1\n\nb.bmp\n", 15) == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "line without label", "bad-label.txt:3", NULL);
    CHECK(tu_write_file(bad, "# nothing\n\n", 11) == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_FORMAT, "empty labels file", "bad-label.txt", NULL);

    /* a missing image, a missing labels file, a missing folder */
    CHECK(tu_write_file(bad, "a.bmp 1\nmissing.png 2\n", 22) == 0);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_IO, "missing image", "missing.png", "bad-label.txt:2", NULL);
    snprintf(bad, sizeof bad, "%s/no-labels.txt", dir);
    st = ptq_images_load_folder(m, dir, bad, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_IO, "missing labels file", "no-labels.txt", NULL);
    snprintf(bad, sizeof bad, "%s/no-such-folder", dir);
    st = ptq_images_load_folder(m, bad, labels, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_IO, "missing folder", "no-such-folder", NULL);

    /* a model with 2 channels is not something images can feed */
    m->cfg.in_chans = 2;
    st = ptq_images_load_folder(m, dir, labels, 0, 0, &s, &err);
    check_fail(st, &err, PTQ_ERR_UNSUPPORTED, "in_chans 2", "in_chans 2", NULL);
    free(m);

    for (int i = 0; i < MAX_CASES; i++)
        for (int k = 0; k < MAX_CASES; k++) free(g.expect[i][k]);
}

int main(void) {
    test_folder();
    char *img_gz = tu_data_path("mnist/t10k-images-idx3-ubyte.gz");
    char *lab_gz = tu_data_path("mnist/t10k-labels-idx1-ubyte.gz");
    test_idx_mnist(img_gz, lab_gz);
    test_idx_synthetic(img_gz, lab_gz);
    free(img_gz);
    free(lab_gz);
    return tu_done("test_images");
}
