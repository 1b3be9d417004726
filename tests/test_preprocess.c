/* Hugging Face image preprocessing (preprocessor_config.json, src/io/preprocess.c) against goldens written by
 * tests/ref/make_preprocess_goldens.py with Pillow + numpy (the steps of transformers' ViTImageProcessor:
 * PIL resize of the 8-bit image, centre crop, rescale, normalise). Every case goes through the real loaders
 * (ptq_images_load_folder / ptq_images_load_idx) with a model whose cfg.prep is the case's config; lossless
 * images must match bit for bit, JPEG within the case's max_levels 8-bit levels (stb_image vs libjpeg
 * decoding; the same JPEG decoded by Pillow and saved as PNG is matched exactly).
 * Also: unlabeled folders and IDX files, the .ptq form of the config, and hostile preprocessor configs. */
#include <cjson/cJSON.h> /* the build gives tests no cJSON include path */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/preprocess.h"
#include "models/model.h"
#include "ptq.h"
#include "testutil.h"

#define DATA PTQ_SOURCE_DIR "/tests/data/preprocess"

/* The IDX input of the goldens (3 grey 28x28 images; pixel i is the top byte of splitmix64((20 << 32) + i), as
 * make_preprocess_goldens.py makes it), written here rather than stored. */
static int write_three_idx(const char *path) {
    unsigned char buf[16 + 3 * 28 * 28] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28};
    for (size_t i = 0; i < 3 * 28 * 28; i++) buf[16 + i] = (unsigned char)(tu_splitmix64((20ull << 32) + i) >> 56);
    return tu_write_file(path, buf, sizeof buf);
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[len] = 0;
    if (n) *n = (size_t)len;
    return buf;
}

static ptq_model *stub_model(int channels, int img, const cJSON *config) {
    ptq_model *m = calloc(1, sizeof *m);
    m->cfg.arch = PTQ_ARCH_VIT;
    m->cfg.img_size = img;
    m->cfg.in_chans = channels;
    m->cfg.vocab_size = 10;
    m->cfg.crop_pct = 1.0f;
    for (int c = 0; c < channels; c++) m->cfg.mean[c] = 0.25f, m->cfg.std[c] = 0.5f; /* must not be used */
    m->cfg.config_norm = 1;
    snprintf(m->path, sizeof m->path, "stub-vit-%dx%d", channels, img);
    ptq_error err;
    ptq_status st = ptq_preprocess_parse(config, "cases.json", channels, img, &m->cfg.prep, &err);
    CHECK_MSG(st == PTQ_OK, "parse: %s", err.msg);
    return m;
}

/* one golden case: load, compare */
static void run_case(const cJSON *c) {
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring, *image = cJSON_GetObjectItem(c, "image")->valuestring;
    int channels = cJSON_GetObjectItem(c, "channels")->valueint, img = cJSON_GetObjectItem(c, "img")->valueint;
    int levels = cJSON_GetObjectItem(c, "max_levels")->valueint;
    ptq_model *m = stub_model(channels, img, cJSON_GetObjectItem(c, "config"));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", DATA, cJSON_GetObjectItem(c, "golden")->valuestring);
    size_t gbytes = 0;
    float *golden = (float *)read_all(path, &gbytes);
    CHECK_MSG(golden != NULL, "%s: cannot read %s", name, path);
    ptq_image_set s;
    ptq_error err;
    ptq_status st;
    if (strstr(image, ".idx")) {
        snprintf(path, sizeof path, "%s/%s", tu_tmpdir(), image);
        CHECK_MSG(write_three_idx(path) == 0, "%s: cannot write %s", name, path);
        st = ptq_images_load_idx(m, path, NULL, 0, 0, &s, &err);
    } else {
        char labels[4096];
        snprintf(labels, sizeof labels, "%s/%s.labels", tu_tmpdir(), name);
        char line[512];
        int n = snprintf(line, sizeof line, "%s 3\n", image);
        CHECK(tu_write_file(labels, line, (size_t)n) == 0);
        st = ptq_images_load_folder(m, DATA, labels, 0, 0, &s, &err);
    }
    CHECK_MSG(st == PTQ_OK, "%s: %s", name, err.msg);
    if (st == PTQ_OK && golden) {
        size_t n = (size_t)s.count * s.channels * s.height * s.width;
        CHECK_MSG(n * 4 == gbytes, "%s: %zu values, golden has %zu", name, n, gbytes / 4);
        const ptq_preprocess *p = &m->cfg.prep;
        double min_std = 1e30;
        for (int ch = 0; ch < channels; ch++) min_std = fmin(min_std, p->do_normalize ? p->std[ch] : 1.0);
        const double tol = levels * (p->do_rescale ? p->rescale_factor : 1.0) / min_std * (1 + 1e-6);
        double worst = 0;
        size_t differ = 0;
        for (size_t i = 0; i < n && i * 4 < gbytes; i++) {
            double d = fabs((double)s.pixels[i] - golden[i]);
            if (s.pixels[i] != golden[i]) differ++;
            if (d > worst) worst = d;
        }
        CHECK_MSG(worst <= tol, "%s: max |ptq - PIL| = %g > %g (%d levels); %zu of %zu values differ", name, worst,
                  tol, levels, differ, n);
        if (strstr(image, ".idx")) {
            CHECK_MSG(s.count == 3 && s.labels[0] == -1 && s.labels[2] == -1, "%s: unlabeled IDX", name);
        } else {
            CHECK(s.count == 1 && s.labels[0] == 3);
        }
        printf("  %-24s %-18s %dx%dx%d  max diff %.3g, %zu of %zu values differ (allowed: %d levels)\n", name,
               image, channels, img, img, worst, differ, n, levels);
        ptq_image_set_free(&s);
    }
    free(golden);
    free(m);
}

static void test_goldens(void) {
    char *text = read_all(DATA "/cases.json", NULL);
    CHECK_MSG(text != NULL, "cannot read %s/cases.json", DATA);
    if (!text) return;
    cJSON *root = cJSON_Parse(text);
    CHECK(cJSON_IsArray(root) && cJSON_GetArraySize(root) >= 20);
    const cJSON *c;
    cJSON_ArrayForEach(c, root) run_case(c);
    cJSON_Delete(root);
    free(text);
}

/* the .ptq form of a config reads back to the same pipeline */
static void test_json_round_trip(void) {
    const char *cfgs[] = {
        "{\"size\": {\"shortest_edge\": 20}, \"resample\": 4, \"do_center_crop\": true, \"crop_size\": 16,"
        " \"image_mean\": [0.1, 0.2, 0.3], \"image_std\": [0.4, 0.5, 0.6], \"do_convert_rgb\": true}",
        "{\"size\": 16, \"do_rescale\": false, \"do_normalize\": false, \"resample\": 0}",
    };
    for (int i = 0; i < 2; i++) {
        cJSON *o = cJSON_Parse(cfgs[i]);
        ptq_preprocess a, b;
        ptq_error err;
        CHECK(ptq_preprocess_parse(o, "a", 3, 16, &a, &err) == PTQ_OK);
        cJSON *back = ptq_preprocess_to_json(&a, 3);
        CHECK(back != NULL);
        CHECK_MSG(ptq_preprocess_parse(back, "b", 3, 16, &b, &err) == PTQ_OK, "%s", err.msg);
        CHECK_MSG(memcmp(&a, &b, sizeof a) == 0, "round trip %d differs", i);
        cJSON_Delete(back);
        cJSON_Delete(o);
    }
}

/* Hostile or unsupported configs: a clear error naming the field. */
static void test_bad_configs(void) {
    struct {
        const char *json;
        int channels, img;
        ptq_status want;
        const char *needle;
    } bad[] = {
        {"[1, 2]", 1, 28, PTQ_ERR_CONFIG, "expected a JSON object"},
        {"{\"image_mean\": \"0.5\", \"size\": 28}", 1, 28, PTQ_ERR_CONFIG, "image_mean must be a number or a list"},
        {"{\"image_mean\": [0.5, 0.5, 0.5], \"size\": 28}", 1, 28, PTQ_ERR_CONFIG, "image_mean has 3 entries"},
        {"{\"image_std\": [0.0], \"size\": 28}", 1, 28, PTQ_ERR_CONFIG, "image_std[0] = 0 must be positive"},
        {"{\"image_std\": -0.5, \"size\": 28}", 1, 28, PTQ_ERR_CONFIG, "image_std[0] = -0.5 must be positive"},
        {"{\"image_std\": [0.5, 0.5, null], \"size\": 28}", 3, 28, PTQ_ERR_CONFIG, "image_std[2]"},
        {"{\"image_mean\": [1e300, 0, 0], \"size\": 28}", 3, 28, PTQ_ERR_CONFIG, "image_mean[0]"},
        {"{\"do_resize\": \"yes\", \"size\": 28}", 1, 28, PTQ_ERR_CONFIG, "do_resize must be true or false"},
        {"{\"do_normalize\": 1, \"size\": 28}", 1, 28, PTQ_ERR_CONFIG, "do_normalize must be true or false"},
        {"{\"size\": 0}", 1, 28, PTQ_ERR_CONFIG, "size"},
        {"{\"size\": 1000000000}", 1, 28, PTQ_ERR_CONFIG, "size"},
        {"{\"size\": 28.5}", 1, 28, PTQ_ERR_CONFIG, "size"},
        {"{\"size\": {\"height\": 28}}", 1, 28, PTQ_ERR_CONFIG, "size needs both \"height\" and \"width\""},
        {"{\"size\": {\"height\": 28, \"width\": -28}}", 1, 28, PTQ_ERR_CONFIG, "size.width"},
        {"{\"size\": {\"height\": 99999, \"width\": 28}}", 1, 28, PTQ_ERR_CONFIG, "size.height"},
        {"{\"size\": {\"longest_edge\": 28}}", 1, 28, PTQ_ERR_UNSUPPORTED, "size.longest_edge is not supported"},
        {"{\"size\": {\"shortest_edge\": 28, \"height\": 28, \"width\": 28}}", 1, 28, PTQ_ERR_CONFIG, "both"},
        {"{\"size\": [28]}", 1, 28, PTQ_ERR_CONFIG, "size as a list"},
        {"{\"size\": \"28\"}", 1, 28, PTQ_ERR_CONFIG, "size must be an object"},
        {"{}", 1, 28, PTQ_ERR_CONFIG, "size 224x224 (height x width) does not give the 28x28 images"},
        {"{\"size\": {\"height\": 28, \"width\": 32}}", 1, 28, PTQ_ERR_CONFIG, "size 28x32"},
        {"{\"size\": 28, \"resample\": 6}", 1, 28, PTQ_ERR_UNSUPPORTED, "resample = 6 is not a PIL filter"},
        {"{\"size\": 28, \"resample\": \"bilinear\"}", 1, 28, PTQ_ERR_UNSUPPORTED, "resample = \"bilinear\""},
        {"{\"size\": 28, \"resample\": 2.5}", 1, 28, PTQ_ERR_UNSUPPORTED, "resample = 2.5"},
        {"{\"size\": 28, \"resample\": -1}", 1, 28, PTQ_ERR_UNSUPPORTED, "resample = -1"},
        {"{\"size\": 28, \"rescale_factor\": 0}", 1, 28, PTQ_ERR_CONFIG, "rescale_factor = 0 must be positive"},
        {"{\"size\": 28, \"rescale_factor\": \"1/255\"}", 1, 28, PTQ_ERR_CONFIG, "rescale_factor"},
        {"{\"size\": 32, \"do_center_crop\": true}", 1, 28, PTQ_ERR_CONFIG, "crop_size is missing"},
        {"{\"size\": 32, \"do_center_crop\": true, \"crop_size\": 24}", 1, 28, PTQ_ERR_CONFIG, "crop_size 24x24"},
        {"{\"size\": 32, \"do_center_crop\": true, \"crop_size\": {\"shortest_edge\": 28}}", 1, 28,
         PTQ_ERR_UNSUPPORTED, "crop_size.shortest_edge is not supported"},
        {"{\"size\": 28, \"crop_pct\": 0.875}", 1, 28, PTQ_ERR_UNSUPPORTED, "crop_pct is not supported"},
        {"{\"size\": 28, \"do_pad\": true}", 1, 28, PTQ_ERR_UNSUPPORTED, "do_pad is not supported"},
        {"{\"size\": 28, \"do_convert_rgb\": \"no\"}", 1, 28, PTQ_ERR_CONFIG, "do_convert_rgb must be true or false"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *o = cJSON_Parse(bad[i].json);
        CHECK_MSG(o != NULL, "test JSON %zu does not parse", i);
        ptq_preprocess p;
        ptq_error err = {0};
        ptq_status st = ptq_preprocess_parse(o, "preprocessor_config.json", bad[i].channels, bad[i].img, &p, &err);
        CHECK_MSG(st == bad[i].want && strstr(err.msg, bad[i].needle) && strstr(err.msg, "preprocessor_config.json"),
                  "%s: status %d, message \"%s\", want %d with \"%s\"", bad[i].json, st, err.msg, bad[i].want,
                  bad[i].needle);
        cJSON_Delete(o);
    }
    /* the defaults of ViTImageProcessor, and a null do_* read as false (transformers passes None through) */
    cJSON *o = cJSON_Parse("{\"size\": {\"height\": 28, \"width\": 28}, \"do_rescale\": null}");
    ptq_preprocess p;
    ptq_error err;
    CHECK(ptq_preprocess_parse(o, "x", 1, 28, &p, &err) == PTQ_OK);
    CHECK(p.hf && p.do_resize && p.resample == PTQ_RS_BILINEAR && !p.do_rescale && p.do_normalize &&
          p.mean[0] == 0.5f && p.std[0] == 0.5f && fabs(p.rescale_factor - 1.0 / 255) < 1e-18 && !p.do_center_crop);
    cJSON_Delete(o);
    /* a size that only some images can meet is an error per image, naming the image */
    o = cJSON_Parse("{\"size\": {\"shortest_edge\": 16}}");
    ptq_model *m = stub_model(3, 16, o);
    char labels[4096];
    snprintf(labels, sizeof labels, "%s/wide.labels", tu_tmpdir());
    CHECK(tu_write_file(labels, "rgb50x30.png 1\n", 15) == 0);
    ptq_image_set s;
    ptq_status st = ptq_images_load_folder(m, DATA, labels, 0, 0, &s, &err);
    CHECK_MSG(st == PTQ_ERR_CONFIG && strstr(err.msg, "rgb50x30.png") && strstr(err.msg, "gives a 26x16 image"),
              "shortest edge on a wide image: %s", err.msg);
    free(m);
    cJSON_Delete(o);
    /* a valid config asking for a 16384 x 16384 intermediate image: refused before any allocation */
    o = cJSON_Parse("{\"size\": 16384, \"do_center_crop\": true, \"crop_size\": 16}");
    m = stub_model(3, 16, o);
    st = ptq_images_load_folder(m, DATA, labels, 0, 0, &s, &err);
    CHECK_MSG(st == PTQ_ERR_UNSUPPORTED && strstr(err.msg, "would be resized to 16384x16384"), "huge resize: %s",
              err.msg);
    free(m);
    cJSON_Delete(o);
}

/* PIL's resize, a few properties any correct version has: a constant image stays constant under every
 * filter (coefficients sum to 1 in fixed point), and equal sizes copy. */
static void test_resize_basics(void) {
    uint8_t src[37 * 23], dst[64 * 64];
    memset(src, 77, sizeof src);
    ptq_error err;
    for (int f = 0; f <= 5; f++)
        for (int k = 0; k < 3; k++) {
            const int ow = k == 0 ? 5 : k == 1 ? 64 : 37, oh = k == 0 ? 64 : k == 1 ? 3 : 23;
            CHECK(ptq_pil_resize_u8(src, 37, 23, dst, ow, oh, f, &err) == PTQ_OK);
            int ok = 1;
            for (int i = 0; i < ow * oh; i++) ok &= dst[i] == 77;
            CHECK_MSG(ok, "filter %d to %dx%d: a constant image changed", f, ow, oh);
        }
    CHECK(ptq_pil_resize_u8(src, 37, 23, dst, 0, 5, 2, &err) == PTQ_ERR_ARG);
    CHECK(ptq_pil_resize_u8(src, 37, 23, dst, 5, 5, 7, &err) == PTQ_ERR_ARG);
}

static void copy_file(const char *from, const char *to) {
    size_t n;
    char *b = read_all(from, &n);
    CHECK(b && tu_write_file(to, b, n) == 0);
    free(b);
}

/* A folder without labels: image files by name (sorted byte-wise), others skipped; the same tensors as with a
 * labels file; an unlabeled set refuses accuracy. */
static void test_unlabeled(void) {
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s/unlabeled", tu_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    const char *files[] = {"b.PNG", "a.bmp", "c.jpg", "B.jpeg"}, *srcs[] = {"grey40.png", "rgb33x21.bmp",
                                                                           "grey31x29.jpg", "rgb64x48.jpg"};
    for (int i = 0; i < 4; i++) {
        char from[4200];
        snprintf(from, sizeof from, "%s/%s", DATA, srcs[i]);
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        copy_file(from, p);
    }
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    CHECK(tu_write_file(p, "hi\n", 3) == 0);
    snprintf(p, sizeof p, "%s/sub.png", dir); /* a folder named like an image */
    CHECK(mkdir(p, 0755) == 0);
    ptq_error err;
    int n = -1, skipped = -1;
    CHECK(ptq_images_count_folder(dir, &n, &skipped, &err) == PTQ_OK);
    CHECK_MSG(n == 4 && skipped == 2, "count: %d images, %d skipped", n, skipped);

    cJSON *o = cJSON_Parse("{\"size\": 24, \"resample\": 3, \"image_mean\": [0.5, 0.4, 0.3], \"image_std\": 0.25}");
    ptq_model *m = stub_model(3, 24, o);
    ptq_image_set u, l;
    CHECK_MSG(ptq_images_load_folder(m, dir, NULL, 0, 0, &u, &err) == PTQ_OK, "%s", err.msg);
    /* strcmp order: "B.jpeg" < "a.bmp" < "b.PNG" < "c.jpg" */
    char labels[4096];
    snprintf(labels, sizeof labels, "%s/order.labels", tu_tmpdir());
    const char *order = "B.jpeg 0\na.bmp 1\nb.PNG 2\nc.jpg 3\n";
    CHECK(tu_write_file(labels, order, strlen(order)) == 0);
    CHECK_MSG(ptq_images_load_folder(m, dir, labels, 0, 0, &l, &err) == PTQ_OK, "%s", err.msg);
    CHECK(u.count == 4 && l.count == 4);
    if (u.count == 4 && l.count == 4) {
        CHECK(memcmp(u.pixels, l.pixels, sizeof(float) * 4 * 3 * 24 * 24) == 0);
        for (int i = 0; i < 4; i++) CHECK(u.labels[i] == -1 && l.labels[i] == i);
        ptq_acc_result r;
        m->cfg.max_seq = 0; /* never reached: the labels are checked first */
        CHECK(ptq_eval_accuracy(m, &u, NULL, &r, &err) == PTQ_ERR_ARG && strstr(err.msg, "no label"));
    }
    ptq_image_set_free(&l);
    ptq_image_set_free(&u);
    CHECK(ptq_images_load_folder(m, dir, NULL, 1, 2, &u, &err) == PTQ_OK && u.count == 2);
    ptq_image_set_free(&u);
    CHECK(ptq_images_load_folder(m, dir, NULL, 3, 2, &u, &err) == PTQ_ERR_ARG && strstr(err.msg, "only 4"));
    /* a folder with no image file at all */
    snprintf(p, sizeof p, "%s/empty", tu_tmpdir());
    CHECK(mkdir(p, 0755) == 0);
    char q[4300];
    snprintf(q, sizeof q, "%s/readme.txt", p);
    CHECK(tu_write_file(q, "x", 1) == 0);
    ptq_status st = ptq_images_load_folder(m, p, NULL, 0, 0, &u, &err);
    CHECK_MSG(st == PTQ_ERR_FORMAT && strstr(err.msg, "no JPEG, PNG or BMP files"), "empty folder: %s", err.msg);
    snprintf(q, sizeof q, "%s/missing", tu_tmpdir());
    CHECK(ptq_images_load_folder(m, q, NULL, 0, 0, &u, &err) == PTQ_ERR_IO);
    /* a broken image in an unlabeled folder names the file */
    snprintf(q, sizeof q, "%s/zz.png", dir);
    CHECK(tu_write_file(q, "not a png", 9) == 0);
    st = ptq_images_load_folder(m, dir, NULL, 0, 0, &u, &err);
    CHECK_MSG(st == PTQ_ERR_FORMAT && strstr(err.msg, "zz.png"), "broken file: %s", err.msg);
    free(m);
    cJSON_Delete(o);
}

int main(void) {
    test_resize_basics();
    test_goldens();
    test_json_round_trip();
    test_bad_configs();
    test_unlabeled();
    return tu_done("test_preprocess");
}
