/* ptq_model_load: recognise the format from the content, never from the file name alone. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "io/qmodel.h"
#include "models/model.h"

typedef enum { FMT_UNKNOWN, FMT_SAFETENSORS, FMT_JSON_INDEX, FMT_LLAMA2C, FMT_GGUF } model_format;

static model_format sniff(const unsigned char *b, size_t n) {
    if (ptq_gguf_sniff(b, n)) return FMT_GGUF;
    if (n >= 9) {
        uint64_t hl;
        memcpy(&hl, b, 8);
        if (b[8] == '{' && hl >= 2 && hl <= ((uint64_t)1 << 32)) return FMT_SAFETENSORS;
    }
    size_t i = 0;
    while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')) i++;
    if (i < n && b[i] == '{') return FMT_JSON_INDEX;
    if (n >= 28) {
        int32_t h[7];
        memcpy(h, b, sizeof h);
        if (h[0] > 0 && h[1] > 0 && h[2] > 0 && h[3] > 0 && h[4] > 0 && h[5] != 0 && h[6] > 0) return FMT_LLAMA2C;
    }
    return FMT_UNKNOWN;
}

ptq_load_options ptq_load_default_options(void) {
    ptq_load_options o = {1, 0};
    return o;
}

ptq_status ptq_model_load(const char *path, ptq_model **out, ptq_error *err) {
    ptq_load_options o = ptq_load_default_options();
    return ptq_model_load_ex(path, &o, out, err);
}

ptq_status ptq_model_load_ex(const char *path, const ptq_load_options *opt, ptq_model **out, ptq_error *err) {
    if (!path || !out || !opt) return ptq_fail(err, PTQ_ERR_ARG, "ptq_model_load: NULL argument");
    *out = NULL;
    if (ptq_is_dir(path)) return ptq_load_safetensors_model_ex(path, opt->stream_weights, out, err);
    FILE *f = fopen(path, "rb");
    if (!f) return ptq_fail(err, PTQ_ERR_IO, "%s: cannot open model file", path);
    unsigned char head[64];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    switch (sniff(head, n)) {
    case FMT_SAFETENSORS: {
        /* ptq's own files carry their config inside; anything else is a Hugging Face / timm model */
        ptq_safetensors st;
        PTQ_TRY(ptq_st_open(path, &st, err));
        ptq_status s = ptq_qmodel_is_ptq(&st) ? ptq_qmodel_load(path, &st, opt, out, err)
                                              : ptq_load_safetensors_model_ex(path, opt->stream_weights, out, err);
        ptq_st_close(&st);
        return s;
    }
    case FMT_JSON_INDEX: return ptq_load_safetensors_model_ex(path, opt->stream_weights, out, err);
    case FMT_LLAMA2C: return ptq_load_llama2c(path, out, err);
    case FMT_GGUF: return ptq_load_gguf(path, out, err);
    case FMT_UNKNOWN: break;
    }
    return ptq_fail(err, PTQ_ERR_FORMAT,
                    "%s: unrecognised model format (expected safetensors, a safetensors index, a GGUF file, or a llama2.c "
                    "checkpoint)",
                    path);
}
