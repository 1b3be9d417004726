/* config.json helpers over cJSON: load with a positioned error, typed getters with range checks. */
#include "io/json.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

ptq_status ptq_json_load(const char *path, cJSON **root, ptq_error *err) {
    if (!root || !path) return ptq_fail(err, PTQ_ERR_ARG, "ptq_json_load: NULL argument");
    *root = NULL;
    char *text = NULL;
    size_t n = 0;
    PTQ_TRY(ptq_read_file(path, &text, &n, err));
    const char *end = NULL;
    cJSON *r = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!r) {
        size_t pos = (end && end >= text && end <= text + n) ? (size_t)(end - text) : 0, line = 1, col = 1;
        for (size_t i = 0; i < pos; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        char near[32];
        size_t j = 0;
        for (size_t i = pos; i < n && j + 1 < sizeof near; i++) {
            unsigned char c = (unsigned char)text[i];
            if (c == '\n') break;
            near[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        near[j] = 0;
        free(text);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: not valid JSON (error near line %zu, column %zu: \"%s\")", path,
                        line, col, near);
    }
    for (size_t i = (size_t)(end - text); i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            free(text);
            cJSON_Delete(r);
            return ptq_fail(err, PTQ_ERR_FORMAT, "%s: unexpected text after the JSON value at byte %zu", path, i);
        }
    }
    free(text);
    *root = r;
    return PTQ_OK;
}

/* The item for key, or NULL when absent or JSON null. Fails when obj is not an object. */
static ptq_status lookup(const cJSON *obj, const char *file, const char *key, const cJSON **item, ptq_error *err) {
    *item = NULL;
    if (!key) return ptq_fail(err, PTQ_ERR_ARG, "%s: NULL key", file ? file : "config");
    if (!cJSON_IsObject(obj))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: expected a JSON object holding \"%s\"", file ? file : "config",
                        key);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (it && !cJSON_IsNull(it)) *item = it;
    return PTQ_OK;
}

static const char *type_name(const cJSON *it) {
    if (cJSON_IsString(it)) return "a string";
    if (cJSON_IsNumber(it)) return "a number";
    if (cJSON_IsBool(it)) return "a boolean";
    if (cJSON_IsArray(it)) return "an array";
    if (cJSON_IsObject(it)) return "an object";
    return "something else";
}

ptq_status ptq_json_int_item(const cJSON *it, const char *file, const char *what, int lo, int hi, int *out,
                             ptq_error *err) {
    if (!file) file = "config";
    if (!cJSON_IsNumber(it))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: field \"%s\" is %s; expected an integer in [%d, %d]", file, what,
                        it ? type_name(it) : "missing", lo, hi);
    double d = it->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: field \"%s\" is %g; expected an integer in [%d, %d]", file, what, d,
                        lo, hi);
    if (d < (double)lo || d > (double)hi)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: field \"%s\" is %.0f; expected an integer in [%d, %d]", file, what,
                        d, lo, hi);
    *out = (int)d;
    return PTQ_OK;
}

ptq_status ptq_json_int(const cJSON *obj, const char *file, const char *key, int required, int def, int lo, int hi,
                        int *out, ptq_error *err) {
    const cJSON *it;
    if (!file) file = "config";
    PTQ_TRY(lookup(obj, file, key, &it, err));
    if (!it) {
        if (required)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: required field \"%s\" (an integer in [%d, %d]) is missing", file,
                            key, lo, hi);
        *out = def;
        return PTQ_OK;
    }
    return ptq_json_int_item(it, file, key, lo, hi, out, err);
}

ptq_status ptq_json_float(const cJSON *obj, const char *file, const char *key, int required, double def,
                          double lo, double hi, double *out, ptq_error *err) {
    const cJSON *it;
    if (!file) file = "config";
    PTQ_TRY(lookup(obj, file, key, &it, err));
    if (!it) {
        if (required)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: required field \"%s\" (a number in [%g, %g]) is missing", file,
                            key, lo, hi);
        *out = def;
        return PTQ_OK;
    }
    if (!cJSON_IsNumber(it))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: field \"%s\" is %s; expected a number in [%g, %g]", file, key,
                        type_name(it), lo, hi);
    double d = it->valuedouble;
    if (!isfinite(d) || d < lo || d > hi)
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: field \"%s\" is %g; expected a number in [%g, %g]", file, key, d, lo,
                        hi);
    *out = d;
    return PTQ_OK;
}

ptq_status ptq_json_bool(const cJSON *obj, const char *file, const char *key, int required, int def, int *out,
                         ptq_error *err) {
    const cJSON *it;
    if (!file) file = "config";
    PTQ_TRY(lookup(obj, file, key, &it, err));
    if (!it) {
        if (required)
            return ptq_fail(err, PTQ_ERR_CONFIG, "%s: required field \"%s\" (true or false) is missing", file, key);
        *out = def;
        return PTQ_OK;
    }
    if (!cJSON_IsBool(it))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: field \"%s\" is %s; expected true or false", file, key,
                        type_name(it));
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return PTQ_OK;
}

ptq_status ptq_json_string(const cJSON *obj, const char *file, const char *key, int required, const char *def,
                           const char **out, ptq_error *err) {
    const cJSON *it;
    if (!file) file = "config";
    PTQ_TRY(lookup(obj, file, key, &it, err));
    if (!it) {
        if (required) return ptq_fail(err, PTQ_ERR_CONFIG, "%s: required field \"%s\" (a string) is missing", file, key);
        *out = def;
        return PTQ_OK;
    }
    if (!cJSON_IsString(it))
        return ptq_fail(err, PTQ_ERR_CONFIG, "%s: field \"%s\" is %s; expected a string", file, key, type_name(it));
    *out = it->valuestring;
    return PTQ_OK;
}
