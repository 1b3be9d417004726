/* config.json helpers: loading (bad JSON reported with file and position) and the typed getters
 * (missing, wrong type, out of range; every message names the file and the key). */
#include <cjson/cJSON.h> /* the build gives tests no cJSON include path */
#include <stdio.h>
#include <string.h>

#include "io/json.h"
#include "testutil.h"

static void expect(int line, ptq_status got, ptq_status want, const ptq_error *err, const char *s1, const char *s2) {
    if (got != want) {
        fprintf(stderr, "line %d: status %d, expected %d (%s)\n", line, (int)got, (int)want, err->msg);
        tu_failures++;
    }
    if (want != PTQ_OK) {
        if (s1 && !strstr(err->msg, s1)) {
            fprintf(stderr, "line %d: message \"%s\" lacks \"%s\"\n", line, err->msg, s1);
            tu_failures++;
        }
        if (s2 && !strstr(err->msg, s2)) {
            fprintf(stderr, "line %d: message \"%s\" lacks \"%s\"\n", line, err->msg, s2);
            tu_failures++;
        }
    }
}
#define EXPECT(call, want, s1, s2)                          \
    do {                                                   \
        ptq_error e_ = {0};                                \
        ptq_status st_ = (call);                           \
        expect(__LINE__, st_, want, &e_, s1, s2);          \
    } while (0)
/* `call` refers to `&e_` for its error argument. */

static char *tmp(const char *name) {
    static char buf[8][512];
    static int k = 0;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tu_tmpdir(), name);
    return p;
}

static void test_load(void) {
    const char *good = tmp("config.json");
    const char *text =
        "{\n  \"hidden_size\": 64,\n  \"n_layer\": 2.0,\n  \"eps\": 1e-5,\n  \"tie\": true,\n  \"untie\": false,\n"
        "  \"act\": \"gelu\",\n  \"rope_scaling\": null,\n  \"big\": 3000000000,\n  \"half\": 2.5,\n"
        "  \"neg\": -3,\n  \"flag_int\": 1,\n  \"list\": [1, 2],\n  \"obj\": {\"a\": 1}\n}\n";
    CHECK(tu_write_file(good, text, strlen(text)) == 0);
    cJSON *root = NULL;
    ptq_error err = {0};
    CHECK_MSG(ptq_json_load(good, &root, &err) == PTQ_OK, "%s", err.msg);
    CHECK(root != NULL);
    const char *f = "config.json";

    int i = -1;
    double d = -1;
    const char *s = NULL;
    /* good values */
    EXPECT(ptq_json_int(root, f, "hidden_size", 1, 0, 1, 1 << 20, &i, &e_), PTQ_OK, NULL, NULL);
    CHECK(i == 64);
    EXPECT(ptq_json_int(root, f, "n_layer", 1, 0, 1, 100, &i, &e_), PTQ_OK, NULL, NULL); /* 2.0 is integral */
    CHECK(i == 2);
    EXPECT(ptq_json_int(root, f, "neg", 1, 0, -10, 10, &i, &e_), PTQ_OK, NULL, NULL);
    CHECK(i == -3);
    EXPECT(ptq_json_float(root, f, "eps", 1, 0, 0, 1, &d, &e_), PTQ_OK, NULL, NULL);
    CHECK(d == 1e-5);
    EXPECT(ptq_json_float(root, f, "hidden_size", 1, 0, 0, 1e9, &d, &e_), PTQ_OK, NULL, NULL); /* int as float */
    CHECK(d == 64.0);
    EXPECT(ptq_json_bool(root, f, "tie", 1, 0, &i, &e_), PTQ_OK, NULL, NULL);
    CHECK(i == 1);
    EXPECT(ptq_json_bool(root, f, "untie", 1, 1, &i, &e_), PTQ_OK, NULL, NULL);
    CHECK(i == 0);
    EXPECT(ptq_json_string(root, f, "act", 1, NULL, &s, &e_), PTQ_OK, NULL, NULL);
    CHECK(s && strcmp(s, "gelu") == 0);

    /* optional + missing (or null) -> default */
    EXPECT(ptq_json_int(root, f, "absent", 0, 7, 0, 10, &i, &e_), PTQ_OK, NULL, NULL);
    CHECK(i == 7);
    EXPECT(ptq_json_float(root, f, "absent", 0, 0.25, 0, 1, &d, &e_), PTQ_OK, NULL, NULL);
    CHECK(d == 0.25);
    EXPECT(ptq_json_bool(root, f, "absent", 0, 1, &i, &e_), PTQ_OK, NULL, NULL);
    CHECK(i == 1);
    EXPECT(ptq_json_string(root, f, "rope_scaling", 0, "none", &s, &e_), PTQ_OK, NULL, NULL);
    CHECK(s && strcmp(s, "none") == 0);
    s = "x";
    EXPECT(ptq_json_string(root, f, "absent", 0, NULL, &s, &e_), PTQ_OK, NULL, NULL);
    CHECK(s == NULL);

    /* required + missing */
    EXPECT(ptq_json_int(root, f, "vocab_size", 1, 0, 1, 100, &i, &e_), PTQ_ERR_CONFIG, "config.json", "\"vocab_size\"");
    EXPECT(ptq_json_float(root, f, "norm_eps", 1, 0, 0, 1, &d, &e_), PTQ_ERR_CONFIG, "config.json", "\"norm_eps\"");
    EXPECT(ptq_json_bool(root, f, "qkv_bias", 1, 0, &i, &e_), PTQ_ERR_CONFIG, "config.json", "\"qkv_bias\"");
    EXPECT(ptq_json_string(root, f, "model_type", 1, NULL, &s, &e_), PTQ_ERR_CONFIG, "config.json", "\"model_type\"");
    EXPECT(ptq_json_string(root, f, "rope_scaling", 1, NULL, &s, &e_), PTQ_ERR_CONFIG, "config.json",
           "\"rope_scaling\""); /* null is not a value */

    /* wrong type */
    EXPECT(ptq_json_int(root, f, "act", 1, 0, 0, 10, &i, &e_), PTQ_ERR_CONFIG, "\"act\"", "a string");
    EXPECT(ptq_json_int(root, f, "tie", 1, 0, 0, 10, &i, &e_), PTQ_ERR_CONFIG, "\"tie\"", "config.json");
    EXPECT(ptq_json_int(root, f, "list", 1, 0, 0, 10, &i, &e_), PTQ_ERR_CONFIG, "\"list\"", "an array");
    EXPECT(ptq_json_int(root, f, "half", 1, 0, 0, 10, &i, &e_), PTQ_ERR_CONFIG, "\"half\"", "2.5");
    EXPECT(ptq_json_float(root, f, "act", 1, 0, 0, 10, &d, &e_), PTQ_ERR_CONFIG, "\"act\"", "config.json");
    EXPECT(ptq_json_bool(root, f, "flag_int", 1, 0, &i, &e_), PTQ_ERR_CONFIG, "\"flag_int\"", "true or false");
    EXPECT(ptq_json_bool(root, f, "act", 1, 0, &i, &e_), PTQ_ERR_CONFIG, "\"act\"", "config.json");
    EXPECT(ptq_json_string(root, f, "hidden_size", 1, NULL, &s, &e_), PTQ_ERR_CONFIG, "\"hidden_size\"", "a number");
    EXPECT(ptq_json_string(root, f, "obj", 1, NULL, &s, &e_), PTQ_ERR_CONFIG, "\"obj\"", "an object");
    /* wrong type is an error even when the field is optional */
    EXPECT(ptq_json_int(root, f, "act", 0, 5, 0, 10, &i, &e_), PTQ_ERR_CONFIG, "\"act\"", "config.json");

    /* out of range */
    EXPECT(ptq_json_int(root, f, "hidden_size", 1, 0, 1, 32, &i, &e_), PTQ_ERR_CONFIG, "\"hidden_size\"", "[1, 32]");
    EXPECT(ptq_json_int(root, f, "neg", 1, 0, 0, 10, &i, &e_), PTQ_ERR_CONFIG, "\"neg\"", "-3");
    EXPECT(ptq_json_int(root, f, "big", 1, 0, 0, 2147483647, &i, &e_), PTQ_ERR_CONFIG, "\"big\"", "3000000000");
    EXPECT(ptq_json_float(root, f, "eps", 1, 0, 1e-3, 1, &d, &e_), PTQ_ERR_CONFIG, "\"eps\"", "config.json");
    EXPECT(ptq_json_float(root, f, "neg", 1, 0, 0, 1, &d, &e_), PTQ_ERR_CONFIG, "\"neg\"", "-3");

    /* not an object */
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "list");
    EXPECT(ptq_json_int(list, f, "x", 1, 0, 0, 1, &i, &e_), PTQ_ERR_CONFIG, "config.json", "\"x\"");
    EXPECT(ptq_json_int(NULL, f, "x", 0, 0, 0, 1, &i, &e_), PTQ_ERR_CONFIG, "config.json", "\"x\"");
    /* nested object */
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "obj");
    EXPECT(ptq_json_int(obj, f, "a", 1, 0, 0, 1, &i, &e_), PTQ_OK, NULL, NULL);
    CHECK(i == 1);
    cJSON_Delete(root);

    /* a value that overflows a double parses to inf, which no range accepts */
    const char *hugef = tmp("huge.json");
    CHECK(tu_write_file(hugef, "{\"x\": 1e999}", 12) == 0);
    CHECK(ptq_json_load(hugef, &root, &err) == PTQ_OK);
    EXPECT(ptq_json_float(root, "huge.json", "x", 1, 0, -1e308, 1e308, &d, &e_), PTQ_ERR_CONFIG, "huge.json", "\"x\"");
    EXPECT(ptq_json_int(root, "huge.json", "x", 1, 0, -5, 5, &i, &e_), PTQ_ERR_CONFIG, "huge.json", "\"x\"");
    cJSON_Delete(root);
}

static void test_bad_files(void) {
    cJSON *root = (cJSON *)1;
    const char *bad = tmp("bad_config.json");
    const char *text = "{\n  \"a\": 1,\n  \"b\": [1, 2,,]\n}\n";
    CHECK(tu_write_file(bad, text, strlen(text)) == 0);
    EXPECT(ptq_json_load(bad, &root, &e_), PTQ_ERR_FORMAT, "bad_config.json", "line 3");
    CHECK(root == NULL);

    const char *trunc = tmp("trunc_config.json");
    CHECK(tu_write_file(trunc, "{\"a\": 1, \"b\": \"unterminated", 27) == 0);
    EXPECT(ptq_json_load(trunc, &root, &e_), PTQ_ERR_FORMAT, "trunc_config.json", "not valid JSON");

    const char *trailing = tmp("trailing_config.json");
    CHECK(tu_write_file(trailing, "{\"a\": 1} {\"b\": 2}", 17) == 0);
    EXPECT(ptq_json_load(trailing, &root, &e_), PTQ_ERR_FORMAT, "trailing_config.json", "byte 9");

    const char *empty = tmp("empty_config.json");
    CHECK(tu_write_file(empty, "", 0) == 0);
    EXPECT(ptq_json_load(empty, &root, &e_), PTQ_ERR_FORMAT, "empty_config.json", NULL);

    const char *binary = tmp("binary_config.json");
    CHECK(tu_write_file(binary, "\x00\x01\xff{", 4) == 0);
    EXPECT(ptq_json_load(binary, &root, &e_), PTQ_ERR_FORMAT, "binary_config.json", NULL);

    EXPECT(ptq_json_load(tmp("does_not_exist.json"), &root, &e_), PTQ_ERR_IO, "does_not_exist.json", NULL);
    EXPECT(ptq_json_load(tu_tmpdir(), &root, &e_), PTQ_ERR_IO, tu_tmpdir(), NULL); /* a directory */
}

int main(void) {
    test_load();
    test_bad_files();
    return tu_done("test_json");
}
