/* tokenizer.json -> ptq_tok_spec (see hf_tokenizer.h). */
#include "text/hf_tokenizer.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "io/json.h"
#include "text/pretok.h"

#define MAX_ID (1 << 24)
#define SPM_SPACE "\xE2\x96\x81"

/* The pre-tokenizer regexes ptq implements (text/pretok.c), as tokenizer.json writes them. */
static const struct {
    const char *regex, *pre;
} known_regex[] = {
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", "gpt-2"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "llama-bpe"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "qwen2"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     "qwen35"},
};

typedef struct ctx {
    const char *path;
    ptq_error *err;
} ctx;

static const char *type_name(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int str_is(const cJSON *o, const char *key, const char *want) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && !strcmp(v->valuestring, want);
}

/* A JSON bool field; missing or null = def; another type = -1. */
static int bool_field(const cJSON *o, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return def;
    if (!cJSON_IsBool(v)) return -1;
    return cJSON_IsTrue(v);
}

static ptq_status unsupported(ctx *c, const char *what, const cJSON *o, const char *supported) {
    const char *t = o ? type_name(o) : NULL;
    char q[80];
    ptq_snippet(q, sizeof q, t ? t : "?", strlen(t ? t : "?"));
    return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED, "%s: unsupported %s '%s' (supported: %s)", c->path, what, q,
                    supported);
}

/* The pattern of a Replace normalizer / Split pre-tokenizer: {"String": s} or {"Regex": r}. */
static const char *pattern(const cJSON *o, const char *kind) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, kind);
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

typedef struct family {
    int model; /* 0 until known */
    int prepend, replace;
    char pre[64];
} family;

static ptq_status one_normalizer(ctx *c, const cJSON *n, family *f) {
    const char *t = type_name(n);
    if (t && !strcmp(t, "Prepend") && str_is(n, "prepend", SPM_SPACE)) {
        f->prepend = 1;
        return PTQ_OK;
    }
    if (t && !strcmp(t, "Replace") && pattern(n, "String") && !strcmp(pattern(n, "String"), " ") &&
        str_is(n, "content", SPM_SPACE)) {
        f->replace = 1;
        return PTQ_OK;
    }
    if (t && !strcmp(t, "NFC")) return PTQ_OK; /* not applied (hf_tokenizer.h) */
    return unsupported(c, "normalizer", n,
                       "Prepend(\"\xE2\x96\x81\"), Replace(\" \" -> \"\xE2\x96\x81\"), NFC, a Sequence of them");
}

static ptq_status parse_normalizer(ctx *c, const cJSON *n, family *f) {
    if (!n || cJSON_IsNull(n)) return PTQ_OK;
    if (!cJSON_IsObject(n)) return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: \"normalizer\" must be an object", c->path);
    const char *t = type_name(n);
    if (t && !strcmp(t, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list))
            return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: normalizer Sequence without a \"normalizers\" array", c->path);
        const cJSON *it;
        cJSON_ArrayForEach(it, list) PTQ_TRY(one_normalizer(c, it, f));
        return PTQ_OK;
    }
    return one_normalizer(c, n, f);
}

static ptq_status byte_level(ctx *c, const cJSON *p, int want_regex, family *f) {
    if (bool_field(p, "add_prefix_space", 0) != 0)
        return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED, "%s: unsupported pre-tokenizer ByteLevel with add_prefix_space",
                        c->path);
    int use_regex = bool_field(p, "use_regex", 1);
    if (use_regex < 0) return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: ByteLevel \"use_regex\" must be a bool", c->path);
    if (use_regex != want_regex)
        return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED, "%s: unsupported pre-tokenizer ByteLevel with use_regex %s %s",
                        c->path, use_regex ? "true" : "false", want_regex ? "alone" : "after a Split");
    f->model = PTQ_TOK_BYTE_BPE;
    if (want_regex) snprintf(f->pre, sizeof f->pre, "gpt-2");
    return PTQ_OK;
}

static ptq_status parse_pre_tokenizer(ctx *c, const cJSON *p, family *f) {
    if (!p || cJSON_IsNull(p)) return PTQ_OK;
    if (!cJSON_IsObject(p)) return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: \"pre_tokenizer\" must be an object", c->path);
    const char *t = type_name(p);
    if (t && !strcmp(t, "ByteLevel")) return byte_level(c, p, 1, f);
    if (t && !strcmp(t, "Metaspace")) {
        if (!str_is(p, "replacement", SPM_SPACE) || bool_field(p, "split", 1) != 0)
            return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED,
                            "%s: unsupported pre-tokenizer Metaspace (only replacement \"\xE2\x96\x81\" with split "
                            "false is supported)", c->path);
        const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(p, "prepend_scheme");
        int prefix = cJSON_IsString(scheme) ? strcmp(scheme->valuestring, "never") != 0
                                            : bool_field(p, "add_prefix_space", 1) == 1;
        if (cJSON_IsString(scheme) && strcmp(scheme->valuestring, "first") && strcmp(scheme->valuestring, "always") &&
            strcmp(scheme->valuestring, "never"))
            return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED, "%s: unsupported Metaspace prepend_scheme", c->path);
        f->prepend |= prefix;
        f->replace = 1;
        return PTQ_OK;
    }
    if (t && !strcmp(t, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        const cJSON *split = cJSON_GetArrayItem(list, 0), *bl = cJSON_GetArrayItem(list, 1);
        if (cJSON_IsArray(list) && cJSON_GetArraySize(list) == 2 && type_name(split) &&
            !strcmp(type_name(split), "Split") && type_name(bl) && !strcmp(type_name(bl), "ByteLevel")) {
            const char *re = pattern(split, "Regex");
            if (!re || !str_is(split, "behavior", "Isolated") || bool_field(split, "invert", 0) != 0)
                return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED,
                                "%s: unsupported pre-tokenizer Split (only a Regex with behavior Isolated, not "
                                "inverted, is supported)", c->path);
            for (size_t i = 0; i < sizeof known_regex / sizeof known_regex[0]; i++)
                if (!strcmp(re, known_regex[i].regex)) {
                    PTQ_TRY(byte_level(c, bl, 0, f));
                    snprintf(f->pre, sizeof f->pre, "%s", known_regex[i].pre);
                    return PTQ_OK;
                }
            char q[80];
            ptq_snippet(q, sizeof q, re, strlen(re));
            return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED,
                            "%s: unsupported pre-tokenizer regex \"%s\" (supported: GPT-2's, Llama 3's, Qwen2's and "
                            "Qwen3.5's patterns)", c->path, q);
        }
    }
    return unsupported(c, "pre-tokenizer", p,
                       "ByteLevel, Sequence[Split(regex), ByteLevel], Metaspace with split false, none");
}

/* A token named in tokenizer_config.json / the post-processor: "text" or {"content": "text"}. */
static const char *token_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static int find_token(const ptq_tok_spec *s, const char *text) {
    if (!text) return -1;
    for (int i = 0; i < s->n_tokens; i++)
        if (s->tokens[i] && !strcmp(s->tokens[i], text)) return i;
    return -1;
}

/* TemplateProcessing: a special token first in "single" is BOS, last is EOS. */
static ptq_status parse_template(ctx *c, const cJSON *p, ptq_tok_spec *s) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    if (!cJSON_IsArray(single))
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: TemplateProcessing without a \"single\" array", c->path);
    int n = cJSON_GetArraySize(single);
    for (int end = 0; end < 2 && n > 0; end++) {
        const cJSON *item = cJSON_GetArrayItem(single, end ? n - 1 : 0);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
        if (!st) continue;
        const cJSON *idv = cJSON_GetObjectItemCaseSensitive(st, "id");
        int id = find_token(s, cJSON_IsString(idv) ? idv->valuestring : NULL);
        if (id < 0) {
            const char *name = cJSON_IsString(idv) ? idv->valuestring : "?";
            char q[80];
            ptq_snippet(q, sizeof q, name, strlen(name));
            return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: post_processor names the token \"%s\", which is not in the "
                            "vocabulary", c->path, q);
        }
        if (end) {
            s->eos = id;
            s->add_eos = 1;
        } else {
            s->bos = id;
            s->add_bos = 1;
        }
    }
    return PTQ_OK;
}

static ptq_status parse_post_processor(ctx *c, const cJSON *p, ptq_tok_spec *s) {
    if (!p || cJSON_IsNull(p)) return PTQ_OK;
    const char *t = type_name(p);
    if (t && !strcmp(t, "ByteLevel")) return PTQ_OK; /* offsets only */
    if (t && !strcmp(t, "TemplateProcessing")) return parse_template(c, p, s);
    if (t && (!strcmp(t, "RobertaProcessing") || !strcmp(t, "BertProcessing"))) { /* cls text sep */
        static const char *const keys[] = {"cls", "sep"};
        for (int k = 0; k < 2; k++) {
            const cJSON *pair = cJSON_GetObjectItemCaseSensitive(p, keys[k]);
            const char *name = cJSON_IsArray(pair) && cJSON_IsString(pair->child) ? pair->child->valuestring : NULL;
            int id = find_token(s, name);
            if (id < 0)
                return ptq_fail(c->err, PTQ_ERR_FORMAT,
                                "%s: post_processor %s: \"%s\" must be [token, id] with a token of the vocabulary",
                                c->path, t, keys[k]);
            *(k ? &s->eos : &s->bos) = id;
            *(k ? &s->add_eos : &s->add_bos) = 1;
        }
        return PTQ_OK;
    }
    if (t && !strcmp(t, "Sequence")) {
        const cJSON *it;
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors");
        cJSON_ArrayForEach(it, list) PTQ_TRY(parse_post_processor(c, it, s));
        return PTQ_OK;
    }
    return unsupported(c, "post-processor", p,
                       "TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, a Sequence of them, none");
}

/* tokenizer_config.json beside tokenizer.json: BOS/EOS and whether they are added. */
static ptq_status parse_config(ctx *c, ptq_tok_spec *s) {
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s", c->path);
    char *slash = strrchr(cfg, '/');
    snprintf(slash ? slash + 1 : cfg, sizeof cfg - (size_t)(slash ? slash + 1 - cfg : 0), "tokenizer_config.json");
    if (!ptq_file_exists(cfg)) return PTQ_OK;
    cJSON *root;
    PTQ_TRY(ptq_json_load(cfg, &root, c->err));
    ptq_status st = PTQ_OK;
    static const char *const keys[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    int *dst[] = {&s->bos, &s->eos, &s->pad, &s->unk};
    for (int k = 0; k < 4 && st == PTQ_OK; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (!v || cJSON_IsNull(v)) continue;
        const char *text = token_text(v);
        int id = find_token(s, text);
        if (!text || id < 0) {
            char q[80];
            ptq_snippet(q, sizeof q, text ? text : "?", strlen(text ? text : "?"));
            st = ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: %s \"%s\" is not a token of the vocabulary%s", cfg, keys[k], q,
                          text ? "" : " (expected a string or {\"content\": string})");
        } else {
            *dst[k] = id;
        }
    }
    int v;
    if (st == PTQ_OK && (v = bool_field(root, "add_bos_token", -2)) != -2) {
        if (v < 0) st = ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: \"add_bos_token\" must be true or false", cfg);
        else s->add_bos = v;
    }
    if (st == PTQ_OK && (v = bool_field(root, "add_eos_token", -2)) != -2) {
        if (v < 0) st = ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: \"add_eos_token\" must be true or false", cfg);
        else s->add_eos = v;
    }
    if (st == PTQ_OK && ((s->add_bos && s->bos < 0) || (s->add_eos && s->eos < 0)))
        st = ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: add_%s_token is set but there is no %s token", cfg,
                      s->add_bos && s->bos < 0 ? "bos" : "eos", s->add_bos && s->bos < 0 ? "BOS" : "EOS");
    cJSON_Delete(root);
    return st;
}

static ptq_status id_of(ctx *c, const cJSON *v, const char *what, int *id) {
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!cJSON_IsNumber(v) || !(d >= 0) || d >= MAX_ID || d != floor(d)) {
        char q[80];
        ptq_snippet(q, sizeof q, what, strlen(what));
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: token \"%s\": expected an integer id in [0, %d)", c->path, q,
                        MAX_ID);
    }
    *id = (int)d;
    return PTQ_OK;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Vocabulary, added tokens and merges of model (a BPE object). */
static ptq_status parse_model(ctx *c, const cJSON *model, const cJSON *added, ptq_tok_spec *s) {
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: model.vocab must be an object", c->path);
    if (merges && !cJSON_IsNull(merges) && !cJSON_IsArray(merges))
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: model.merges must be an array", c->path);
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: \"added_tokens\" must be an array", c->path);
    int max_id = -1, id;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        PTQ_TRY(id_of(c, it, it->string ? it->string : "", &id));
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(it, added) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsString(content))
            return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: an added token has no \"content\" string", c->path);
        PTQ_TRY(id_of(c, cJSON_GetObjectItemCaseSensitive(it, "id"), content->valuestring, &id));
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: the vocabulary is empty", c->path);
    /* unused ids become placeholder tokens: a few ids far beyond the others must not cost gigabytes */
    int defined = cJSON_GetArraySize(vocab) + (cJSON_IsArray(added) ? cJSON_GetArraySize(added) : 0);
    if ((long)max_id >= 2L * defined + 1024)
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: token ids go up to %d but only %d tokens are defined", c->path,
                        max_id, defined);
    int n = s->n_tokens = max_id + 1;
    s->tokens = calloc((size_t)n, sizeof *s->tokens);
    s->types = malloc((size_t)n * sizeof *s->types);
    s->attrs = calloc((size_t)n, 1);
    if (!s->tokens || !s->types || !s->attrs) return ptq_fail(c->err, PTQ_ERR_NOMEM, "%s: out of memory", c->path);
    cJSON_ArrayForEach(it, vocab) {
        id = (int)it->valuedouble;
        const char *text = it->string ? it->string : "";
        if (s->tokens[id]) {
            char q[80];
            ptq_snippet(q, sizeof q, text, strlen(text));
            return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: token \"%s\": id %d is used by another token too", c->path, q,
                            id);
        }
        if (!(s->tokens[id] = dup_str(text))) return ptq_fail(c->err, PTQ_ERR_NOMEM, "%s: out of memory", c->path);
        s->types[id] = PTQ_TOKTYPE_NORMAL;
    }
    cJSON_ArrayForEach(it, added) {
        const char *text = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        id = (int)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        char q[80];
        ptq_snippet(q, sizeof q, text, strlen(text));
        if (s->tokens[id] && strcmp(s->tokens[id], text))
            return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: added token \"%s\" has id %d, which the vocabulary gives to "
                            "another token", c->path, q, id);
        int special = bool_field(it, "special", 0), lstrip = bool_field(it, "lstrip", 0);
        int rstrip = bool_field(it, "rstrip", 0);
        if (special < 0 || lstrip < 0 || rstrip < 0)
            return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: added token \"%s\": special/lstrip/rstrip must be bools",
                            c->path, q);
        if (!s->tokens[id] && !(s->tokens[id] = dup_str(text)))
            return ptq_fail(c->err, PTQ_ERR_NOMEM, "%s: out of memory", c->path);
        s->types[id] = special ? PTQ_TOKTYPE_CONTROL : PTQ_TOKTYPE_USER_DEFINED;
        s->attrs[id] = (uint8_t)((lstrip ? PTQ_TOKATTR_LSTRIP : 0) | (rstrip ? PTQ_TOKATTR_RSTRIP : 0));
    }
    for (int i = 0; i < n; i++) { /* ids nobody uses */
        if (s->tokens[i]) continue;
        char name[40];
        snprintf(name, sizeof name, "<ptq_unused_%d>", i);
        if (!(s->tokens[i] = dup_str(name))) return ptq_fail(c->err, PTQ_ERR_NOMEM, "%s: out of memory", c->path);
        s->types[i] = PTQ_TOKTYPE_UNUSED;
    }
    int nm = cJSON_IsArray(merges) ? cJSON_GetArraySize(merges) : 0;
    s->merges = calloc((size_t)nm + 1, sizeof *s->merges);
    if (!s->merges) return ptq_fail(c->err, PTQ_ERR_NOMEM, "%s: out of memory", c->path);
    int r = 0;
    const cJSON *mlist = nm ? merges : NULL;
    cJSON_ArrayForEach(it, mlist) {
        char *m = NULL;
        if (cJSON_IsString(it)) {
            m = dup_str(it->valuestring);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
                   cJSON_IsString(it->child->next)) {
            const char *a = it->child->valuestring, *b = it->child->next->valuestring;
            m = malloc(strlen(a) + strlen(b) + 2);
            if (m) snprintf(m, strlen(a) + strlen(b) + 2, "%s %s", a, b);
        } else {
            s->n_merges = r;
            return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: merge %d: expected \"a b\" or [\"a\", \"b\"]", c->path, r);
        }
        if (!m) {
            s->n_merges = r;
            return ptq_fail(c->err, PTQ_ERR_NOMEM, "%s: out of memory", c->path);
        }
        s->merges[r++] = m;
    }
    s->n_merges = r;
    return PTQ_OK;
}

static ptq_status parse(ctx *c, const cJSON *root, ptq_tok_spec *s) {
    if (!cJSON_IsObject(root)) return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: expected a JSON object", c->path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: no \"model\" object", c->path);
    const char *mt = type_name(model);
    if (mt ? strcmp(mt, "BPE") != 0 : !cJSON_GetObjectItemCaseSensitive(model, "merges"))
        return unsupported(c, "model type", model, "BPE");
    family f;
    memset(&f, 0, sizeof f);
    PTQ_TRY(parse_normalizer(c, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), &f));
    PTQ_TRY(parse_pre_tokenizer(c, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &f));
    if (f.model == PTQ_TOK_BYTE_BPE && (f.prepend || f.replace))
        return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED, "%s: unsupported mix of a \xE2\x96\x81 normalizer and a ByteLevel "
                        "pre-tokenizer", c->path);
    if (!f.model && !f.replace)
        return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED, "%s: unsupported tokenizer: neither a ByteLevel pre-tokenizer "
                        "nor a \xE2\x96\x81 (Metaspace / Replace) normalizer", c->path);
    s->model = f.model ? f.model : PTQ_TOK_SPM;
    snprintf(s->pre, sizeof s->pre, "%s", f.pre);
    s->add_space_prefix = f.prepend;
    int ignore = bool_field(model, "ignore_merges", 0), fallback = bool_field(model, "byte_fallback", 0);
    if (ignore < 0 || fallback < 0)
        return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: model.ignore_merges / byte_fallback must be bools", c->path);
    if (fallback && s->model == PTQ_TOK_BYTE_BPE)
        return ptq_fail(c->err, PTQ_ERR_UNSUPPORTED, "%s: unsupported byte_fallback in a byte-level BPE", c->path);
    s->ignore_merges = ignore;
    s->bos = s->eos = s->unk = s->pad = -1;
    PTQ_TRY(parse_model(c, model, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), s));
    if (s->model == PTQ_TOK_SPM)
        for (int i = 0; i < s->n_tokens; i++) {
            const char *t = s->tokens[i];
            if (s->types[i] == PTQ_TOKTYPE_NORMAL && strlen(t) == 6 && !strncmp(t, "<0x", 3) && t[5] == '>')
                s->types[i] = PTQ_TOKTYPE_BYTE;
        }
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (unk && !cJSON_IsNull(unk)) {
        s->unk = cJSON_IsString(unk) ? find_token(s, unk->valuestring) : -1;
        if (s->unk < 0)
            return ptq_fail(c->err, PTQ_ERR_FORMAT, "%s: model.unk_token is not a token of the vocabulary", c->path);
        s->types[s->unk] = PTQ_TOKTYPE_UNKNOWN;
    }
    PTQ_TRY(parse_post_processor(c, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), s));
    return parse_config(c, s);
}

ptq_status ptq_hf_tokenizer_spec(const char *path, ptq_tok_spec *out, ptq_error *err) {
    memset(out, 0, sizeof *out);
    cJSON *root;
    PTQ_TRY(ptq_json_load(path, &root, err));
    ctx c = {path, err};
    ptq_status st = parse(&c, root, out);
    cJSON_Delete(root);
    if (st != PTQ_OK) ptq_tok_spec_free(out);
    return st;
}
