/* ptq_tokenizer_load_for_model: which tokenizer a model uses, and its BOS/EOS (ptq.h). */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "io/qmodel.h"
#include "io/qmodel_tokenizer.h"
#include "models/model.h"
#include "text/tokenizer_internal.h"

/* 1 when the model's own file carries a tokenizer: a GGUF file, or a .ptq written with one */
static int model_file_has_tokenizer(const ptq_model *m) {
    if (!strcmp(m->format, "gguf")) return 1;
    if (strcmp(m->format, "ptq") != 0) return 0;
    ptq_safetensors st;
    ptq_error e;
    if (ptq_st_open(m->path, &st, &e) != PTQ_OK) return 0;
    int has = ptq_qmodel_has_tokenizer(&st);
    ptq_st_close(&st);
    return has;
}

ptq_status ptq_tokenizer_load_for_model(const ptq_model *m, const char *path, ptq_tokenizer **out, ptq_error *err) {
    *out = NULL;
    const ptq_config *c = &m->cfg;
    if (c->arch == PTQ_ARCH_VIT) return ptq_fail(err, PTQ_ERR_ARG, "%s: an image model has no tokenizer", m->path);
    char dir[4096];
    if (!path && model_file_has_tokenizer(m)) path = m->path;
    if (!path) { /* the model's folder (ptq_tokenizer_load says what it looks for there) */
        snprintf(dir, sizeof dir, "%s", m->path);
        if (!ptq_is_dir(dir)) {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0;
            else snprintf(dir, sizeof dir, ".");
        }
        path = dir;
    }
    ptq_tokenizer *t;
    PTQ_TRY(ptq_tokenizer_load(path, c->vocab_size, &t, err));
    /* The model's config.json (bos_token_id / eos_token_id) names the ids it was trained with; a tokenizer file may
     * not say (vocab.json has no notion of BOS: OPT's is </s>, id 2) or guess (<|endoftext|>). */
    int n = ptq_tokenizer_vocab_size(t);
    int bos = c->bos_id >= 0 && c->bos_id < n ? c->bos_id : ptq_tokenizer_bos(t);
    int eos = c->eos_id >= 0 && c->eos_id < n ? c->eos_id : ptq_tokenizer_eos(t);
    ptq_status s = PTQ_OK;
    if (bos != ptq_tokenizer_bos(t) || eos != ptq_tokenizer_eos(t)) s = ptq_tokenizer_set_bos_eos(t, bos, eos, err);
    if (s != PTQ_OK) {
        ptq_tokenizer_free(t);
        return s;
    }
    *out = t;
    return PTQ_OK;
}
