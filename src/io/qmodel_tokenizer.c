/* The tokenizer a .ptq file carries: writing and strictly checked reading (qmodel_tokenizer.h). */
#include "io/qmodel_tokenizer.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/json.h"

#define META_KEY "ptq.tokenizer"
/* far above any real vocabulary (Llama 3: 128,256 tokens, 280,147 merges), far below int overflow */
#define MAX_ENTRIES (1 << 24)

static const char *const k_tensors[] = {"tokenizer.tokens", "tokenizer.scores", "tokenizer.types",
                                        "tokenizer.attrs", "tokenizer.merges"};

int ptq_qmodel_is_tokenizer_tensor(const char *name) {
    for (size_t i = 0; i < sizeof k_tensors / sizeof *k_tensors; i++)
        if (!strcmp(name, k_tensors[i])) return 1;
    return 0;
}

int ptq_qmodel_has_tokenizer(const ptq_safetensors *st) { return ptq_st_metadata(st, META_KEY) != NULL; }

/* n strings, each followed by a NUL, as one byte blob */
static ptq_status put_strings(ptq_st_writer *w, const char *name, char *const *s, int n, ptq_error *err) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(s[i]) + 1;
    char *blob = malloc(total ? total : 1);
    if (!blob) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory storing the tokenizer");
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(s[i]) + 1;
        memcpy(blob + at, s[i], l);
        at += l;
    }
    int64_t shape[1] = {(int64_t)total};
    ptq_status st = ptq_st_writer_add(w, name, PTQ_DT_U8, 1, shape, blob, total, err);
    free(blob);
    return st;
}

ptq_status ptq_qmodel_put_tokenizer(ptq_st_writer *w, const ptq_tok_spec *s, ptq_error *err) {
    if (s->model != PTQ_TOK_SPM && s->model != PTQ_TOK_BYTE_BPE)
        return ptq_fail(err, PTQ_ERR_ARG, "tokenizer model %d cannot be stored", s->model);
    cJSON *o = cJSON_CreateObject();
    if (!o) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory storing the tokenizer");
    cJSON_AddStringToObject(o, "model", s->model == PTQ_TOK_SPM ? "llama" : "gpt2");
    cJSON_AddStringToObject(o, "pre", s->pre);
    cJSON_AddNumberToObject(o, "n_tokens", s->n_tokens);
    cJSON_AddNumberToObject(o, "n_merges", s->merges ? s->n_merges : 0);
    cJSON_AddNumberToObject(o, "bos", s->bos);
    cJSON_AddNumberToObject(o, "eos", s->eos);
    cJSON_AddNumberToObject(o, "unk", s->unk);
    cJSON_AddNumberToObject(o, "pad", s->pad);
    cJSON_AddBoolToObject(o, "add_bos", s->add_bos != 0);
    cJSON_AddBoolToObject(o, "add_eos", s->add_eos != 0);
    cJSON_AddBoolToObject(o, "add_space_prefix", s->add_space_prefix != 0);
    cJSON_AddBoolToObject(o, "ignore_merges", s->ignore_merges != 0);
    cJSON_AddBoolToObject(o, "has_scores", s->scores != NULL);
    cJSON_AddBoolToObject(o, "has_types", s->types != NULL);
    cJSON_AddBoolToObject(o, "has_attrs", s->attrs != NULL);
    char *js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!js) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory storing the tokenizer");
    ptq_status st = ptq_st_writer_set_metadata(w, META_KEY, js, err);
    free(js);
    int64_t n[1] = {s->n_tokens};
    if (st == PTQ_OK) st = put_strings(w, "tokenizer.tokens", s->tokens, s->n_tokens, err);
    if (st == PTQ_OK && s->scores)
        st = ptq_st_writer_add(w, "tokenizer.scores", PTQ_DT_F32, 1, n, s->scores, (size_t)s->n_tokens * 4, err);
    if (st == PTQ_OK && s->types)
        st = ptq_st_writer_add(w, "tokenizer.types", PTQ_DT_I32, 1, n, s->types, (size_t)s->n_tokens * 4, err);
    if (st == PTQ_OK && s->attrs)
        st = ptq_st_writer_add(w, "tokenizer.attrs", PTQ_DT_U8, 1, n, s->attrs, (size_t)s->n_tokens, err);
    if (st == PTQ_OK && s->merges && s->n_merges > 0)
        st = put_strings(w, "tokenizer.merges", s->merges, s->n_merges, err);
    return st;
}

/* The tensor `name`, which must be `dt` and 1-d (of `count` elements when count >= 0). */
static ptq_status tensor(const ptq_safetensors *st, const char *path, const char *name, ptq_dtype dt, int64_t count,
                         const ptq_st_tensor **out, ptq_error *err) {
    const ptq_st_tensor *t = *out = ptq_st_find(st, name);
    if (!t) return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor %s is missing (ptq.tokenizer calls for it)", path, name);
    if (t->dtype != dt || t->ndim != 1 || (count >= 0 && t->shape[0] != count))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor %s must be %s 1-d%s, found %s %d-d", path, name,
                        ptq_dtype_name(dt), count >= 0 ? " of the tokenizer's n_tokens" : "",
                        ptq_dtype_name(t->dtype), t->ndim);
    return PTQ_OK;
}

/* Split a blob of NUL-terminated strings into exactly n malloc'ed strings. */
static ptq_status get_strings(const ptq_safetensors *st, const char *path, const char *name, int n, char ***out,
                              ptq_error *err) {
    const ptq_st_tensor *t;
    PTQ_TRY(tensor(st, path, name, PTQ_DT_U8, -1, &t, err));
    const char *p = (const char *)t->data, *end = p + t->nbytes;
    int count = 0;
    for (const char *q = p; q < end; q++) count += *q == 0;
    if (count != n || (t->nbytes > 0 && end[-1] != 0))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor %s holds %d NUL-terminated strings%s, ptq.tokenizer says %d",
                        path, name, count, t->nbytes > 0 && end[-1] != 0 ? " and a trailing unterminated one" : "", n);
    char **v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory reading the tokenizer");
    *out = v; /* owned by the spec from here on, even partly filled */
    for (int i = 0; i < n; i++) {
        size_t l = strlen(p);
        if (!(v[i] = malloc(l + 1))) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory reading the tokenizer");
        memcpy(v[i], p, l + 1);
        p += l + 1;
    }
    return PTQ_OK;
}

static ptq_status check_id(const char *path, const char *what, int id, int n, ptq_error *err) {
    if (id < -1 || id >= n)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: ptq.tokenizer %s %d is not a token id (0..%d) or -1", path, what, id,
                        n - 1);
    return PTQ_OK;
}

static ptq_status read_spec(const ptq_safetensors *st, const char *path, const cJSON *o, ptq_tok_spec *s,
                            ptq_error *err) {
    const char *file = path, *model, *pre;
    PTQ_TRY(ptq_json_string(o, file, "model", 1, NULL, &model, err));
    if (!strcmp(model, "llama")) s->model = PTQ_TOK_SPM;
    else if (!strcmp(model, "gpt2")) s->model = PTQ_TOK_BYTE_BPE;
    else {
        char snip[48];
        ptq_snippet(snip, sizeof snip, model, strlen(model));
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: ptq.tokenizer model %s is not \"llama\" or \"gpt2\"", path, snip);
    }
    PTQ_TRY(ptq_json_string(o, file, "pre", 1, NULL, &pre, err));
    if (strlen(pre) >= sizeof s->pre)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: ptq.tokenizer pre is longer than %zu bytes", path,
                        sizeof s->pre - 1);
    snprintf(s->pre, sizeof s->pre, "%s", pre);
    int has_scores, has_types, has_attrs;
    PTQ_TRY(ptq_json_int(o, file, "n_tokens", 1, 0, 1, MAX_ENTRIES, &s->n_tokens, err));
    PTQ_TRY(ptq_json_int(o, file, "n_merges", 1, 0, 0, MAX_ENTRIES, &s->n_merges, err));
    PTQ_TRY(ptq_json_int(o, file, "bos", 1, -1, -1, MAX_ENTRIES, &s->bos, err));
    PTQ_TRY(ptq_json_int(o, file, "eos", 1, -1, -1, MAX_ENTRIES, &s->eos, err));
    PTQ_TRY(ptq_json_int(o, file, "unk", 1, -1, -1, MAX_ENTRIES, &s->unk, err));
    PTQ_TRY(ptq_json_int(o, file, "pad", 1, -1, -1, MAX_ENTRIES, &s->pad, err));
    PTQ_TRY(ptq_json_bool(o, file, "add_bos", 1, 0, &s->add_bos, err));
    PTQ_TRY(ptq_json_bool(o, file, "add_eos", 1, 0, &s->add_eos, err));
    PTQ_TRY(ptq_json_bool(o, file, "add_space_prefix", 1, 0, &s->add_space_prefix, err));
    PTQ_TRY(ptq_json_bool(o, file, "ignore_merges", 1, 0, &s->ignore_merges, err));
    PTQ_TRY(ptq_json_bool(o, file, "has_scores", 1, 0, &has_scores, err));
    PTQ_TRY(ptq_json_bool(o, file, "has_types", 1, 0, &has_types, err));
    PTQ_TRY(ptq_json_bool(o, file, "has_attrs", 1, 0, &has_attrs, err));
    PTQ_TRY(check_id(path, "bos", s->bos, s->n_tokens, err));
    PTQ_TRY(check_id(path, "eos", s->eos, s->n_tokens, err));
    PTQ_TRY(check_id(path, "unk", s->unk, s->n_tokens, err));
    PTQ_TRY(check_id(path, "pad", s->pad, s->n_tokens, err));
    int n = s->n_tokens;
    PTQ_TRY(get_strings(st, path, "tokenizer.tokens", n, &s->tokens, err));
    const ptq_st_tensor *t;
    if (has_scores) {
        PTQ_TRY(tensor(st, path, "tokenizer.scores", PTQ_DT_F32, n, &t, err));
        if (!(s->scores = malloc((size_t)n * sizeof *s->scores)))
            return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory reading the tokenizer");
        memcpy(s->scores, t->data, (size_t)n * sizeof *s->scores);
        for (int i = 0; i < n; i++)
            if (s->scores[i] != s->scores[i])
                return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor tokenizer.scores[%d] is NaN", path, i);
    } else if (ptq_st_find(st, "tokenizer.scores")) {
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor tokenizer.scores is present but ptq.tokenizer has_scores is false",
                        path);
    }
    if (has_types) {
        PTQ_TRY(tensor(st, path, "tokenizer.types", PTQ_DT_I32, n, &t, err));
        if (!(s->types = malloc((size_t)n * sizeof *s->types)))
            return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory reading the tokenizer");
        memcpy(s->types, t->data, (size_t)n * sizeof *s->types);
        for (int i = 0; i < n; i++)
            if (s->types[i] < PTQ_TOKTYPE_UNDEFINED || s->types[i] > PTQ_TOKTYPE_BYTE)
                return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor tokenizer.types[%d] = %d is not a token type (0..6)",
                                path, i, (int)s->types[i]);
    } else if (ptq_st_find(st, "tokenizer.types")) {
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor tokenizer.types is present but ptq.tokenizer has_types is false",
                        path);
    }
    if (has_attrs) {
        PTQ_TRY(tensor(st, path, "tokenizer.attrs", PTQ_DT_U8, n, &t, err));
        if (!(s->attrs = malloc((size_t)n))) return ptq_fail(err, PTQ_ERR_NOMEM, "out of memory reading the tokenizer");
        memcpy(s->attrs, t->data, (size_t)n);
        for (int i = 0; i < n; i++)
            if (s->attrs[i] & ~(PTQ_TOKATTR_LSTRIP | PTQ_TOKATTR_RSTRIP))
                return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor tokenizer.attrs[%d] = %d has unknown bits", path, i,
                                s->attrs[i]);
    } else if (ptq_st_find(st, "tokenizer.attrs")) {
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor tokenizer.attrs is present but ptq.tokenizer has_attrs is false",
                        path);
    }
    if (s->n_merges > 0) PTQ_TRY(get_strings(st, path, "tokenizer.merges", s->n_merges, &s->merges, err));
    else if (ptq_st_find(st, "tokenizer.merges"))
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: tensor tokenizer.merges is present but ptq.tokenizer n_merges is 0",
                        path);
    return PTQ_OK;
}

ptq_status ptq_qmodel_get_tokenizer(const ptq_safetensors *st, const char *path, ptq_tok_spec *out, ptq_error *err) {
    memset(out, 0, sizeof *out);
    const char *js = ptq_st_metadata(st, META_KEY);
    if (!js)
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: the file carries no tokenizer (it was written before ptq stored "
                        "tokenizers, or from a model without one): pass --tokenizer", path);
    cJSON *o = cJSON_Parse(js);
    ptq_status s = cJSON_IsObject(o) ? read_spec(st, path, o, out, err)
                                     : ptq_fail(err, PTQ_ERR_FORMAT, "%s: __metadata__ ptq.tokenizer is not a JSON object",
                                                path);
    cJSON_Delete(o);
    if (s != PTQ_OK) ptq_tok_spec_free(out);
    return s;
}
