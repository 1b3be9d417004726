/* Packed token embeddings left in their file (peak memory, docs/GUIDE.md "Token embeddings stay in the file").
 *
 * A decode step reads one row of the token-embedding table per token, so a model loaded from a .ptq file
 * keeps its packed, untied table (tok_emb_q) in a read-only mapping of that file instead of a copy: only the
 * rows looked up become resident, as with llama.cpp's mmap. The model owns the mapping (ptq_model.map):
 *
 *   - ptq_embed_map (the loader, after its checks) maps the file a second time, points tok_emb_q's codes, and
 *     its scales and zero points where their alignment allows, at the stored bytes, frees the copies, and
 *     drops the mapping's pages from the resident set;
 *   - ptq_embed_unmap copies the arrays back into model memory and unmaps (for anything about to change them:
 *     the mapping is PROT_READ, a write would fault);
 *   - ptq_model_free calls ptq_embed_map_close, which forgets the pointers into the mapping and unmaps it.
 *
 * A tied head reads every row each token: its table stays a copy. The file must not change while a model is
 * loaded from it (MAP_PRIVATE shows another writer's changes to pages not yet read).
 */
#ifndef PTQ_MODELS_EMBED_MAP_H
#define PTQ_MODELS_EMBED_MAP_H

#include "io/safetensors.h"
#include "models/model.h"

/* Leaves m->tok_emb_q (just loaded from st as a checked copy of the tensors <prefix>.qweight, .scales and
 * .zeros) in a mapping of st's file. The mapped bytes are compared with the checked copy before it is freed, so
 * a file replaced during the load keeps the copy, never unchecked data. Best effort: the copy stays for a tied
 * head, a table whose stored layout differs from memory (5-7-bit codes of an older file), scales not aligned
 * for uint16_t (only they stay a copy), or when the mapping fails. */
void ptq_embed_map(ptq_model *m, const ptq_safetensors *st, const char *prefix);
/* Copies the mapped arrays of tok_emb_q into model memory and closes the mapping; a no-op when nothing is
 * mapped. Call it before changing tok_emb_q in place. */
ptq_status ptq_embed_unmap(ptq_model *m, ptq_error *err);
/* 1 when some array of tok_emb_q lies in the model's file mapping. */
int ptq_embed_is_mapped(const ptq_model *m);
/* For ptq_model_free: tok_emb_q's pointers into the mapping become NULL (nothing to free), then it is unmapped. */
void ptq_embed_map_close(ptq_model *m);

#endif
