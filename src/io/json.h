/* Reading config.json files with cJSON: typed field access with clear errors naming file and field. */
#ifndef PTQ_IO_JSON_H
#define PTQ_IO_JSON_H

#include "ptq.h"

typedef struct cJSON cJSON;

/* Parse a JSON file; *root must be freed with cJSON_Delete. Unreadable file -> PTQ_ERR_IO; bad JSON
 * -> PTQ_ERR_FORMAT with the file name and the line/column of the error. */
ptq_status ptq_json_load(const char *path, cJSON **root, ptq_error *err);

/* Field getters. `file` is only used in messages. Missing + required -> PTQ_ERR_CONFIG;
 * missing + optional -> *out = def. Wrong type or out of [lo, hi] -> PTQ_ERR_CONFIG.
 * A JSON null counts as missing. Ints must be integral numbers (2.0 is fine, 2.5 is not);
 * bools must be JSON true/false; obj must be an object. */
ptq_status ptq_json_int(const cJSON *obj, const char *file, const char *key, int required, int def, int lo, int hi,
                        int *out, ptq_error *err);
/* The same checks for an item already looked up (an array element...); `what` names it in messages
 * ("img_size[1]"). */
ptq_status ptq_json_int_item(const cJSON *it, const char *file, const char *what, int lo, int hi, int *out,
                             ptq_error *err);
ptq_status ptq_json_float(const cJSON *obj, const char *file, const char *key, int required, double def,
                          double lo, double hi, double *out, ptq_error *err);
ptq_status ptq_json_bool(const cJSON *obj, const char *file, const char *key, int required, int def, int *out,
                         ptq_error *err);
/* Returns the string (owned by the cJSON tree) or def. */
ptq_status ptq_json_string(const cJSON *obj, const char *file, const char *key, int required, const char *def,
                           const char **out, ptq_error *err);

#endif
