/* Packed token embeddings left in their file (see embed_map.h). */
#include "models/embed_map.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "kernels/qweight.h"

enum { CODES, SCALES, ZEROS, N_ARRAYS };

/* The arrays of q that may live in the mapping, with their sizes in memory and alignments. */
static void arrays(ptq_qweight *q, void ***field, size_t *nbytes, size_t *align) {
    field[CODES] = (void **)&q->codes;
    field[SCALES] = (void **)&q->scales;
    field[ZEROS] = (void **)&q->zeros;
    nbytes[CODES] = (size_t)q->out * q->row_bytes;
    nbytes[SCALES] = (size_t)q->out * (size_t)q->n_groups * sizeof *q->scales;
    nbytes[ZEROS] = (size_t)q->out * (size_t)q->n_groups;
    align[CODES] = align[ZEROS] = 1;
    align[SCALES] = _Alignof(uint16_t);
}

static int inside(const ptq_mmap *mp, const void *p) {
    const unsigned char *b = p;
    return mp && b && b >= mp->data && b < mp->data + mp->size;
}

void ptq_embed_map(ptq_model *m, const ptq_safetensors *st, const char *prefix) {
    ptq_qweight *q = m->tok_emb_q;
    if (!q || q == m->head.q || m->map) return; /* nothing packed, or tied: the head reads every row */
    static const char *suffix[N_ARRAYS] = {"qweight", "scales", "zeros"};
    void **field[N_ARRAYS];
    size_t nbytes[N_ARRAYS], align[N_ARRAYS];
    arrays(q, field, nbytes, align);
    const ptq_st_tensor *t[N_ARRAYS];
    int file = -1;
    for (int i = 0; i < N_ARRAYS; i++) {
        char n[300];
        snprintf(n, sizeof n, "%s.%s", prefix, suffix[i]);
        t[i] = *field[i] ? ptq_st_find(st, n) : NULL;
        /* the stored bytes are the memory layout (not 5-7-bit codes repacked from 8), in the codes' file, and
           aligned for their type; anything else stays a copy */
        if (t[i] && (t[i]->nbytes != nbytes[i] || (file >= 0 && t[i]->file != file) ||
                     (uintptr_t)(t[i]->data - st->maps[t[i]->file].data) % align[i] != 0))
            t[i] = NULL;
        if (i == CODES && !t[i]) return; /* the codes are what matters: ~all of the table */
        if (i == CODES) file = t[i]->file;
    }
    const ptq_mmap *src = &st->maps[file];
    ptq_mmap *mp = calloc(1, sizeof *mp);
    ptq_error quiet = {0};
    if (!mp || ptq_mmap_open(st->file_paths[file], mp, &quiet) != PTQ_OK || mp->size != src->size) {
        if (mp) ptq_mmap_close(mp);
        free(mp);
        return; /* keep the copy: it is correct, only larger */
    }
    unsigned char *at[N_ARRAYS] = {0};
    int same = 1;
    for (int i = 0; i < N_ARRAYS && same; i++) {
        if (!t[i]) continue;
        at[i] = (unsigned char *)mp->data + (t[i]->data - src->data);
        /* the checks (checksums, ranges) ran on the copy: the mapping must hold the same bytes, else the file
           was replaced during the load and the copy stays */
        same = memcmp(at[i], *field[i], nbytes[i]) == 0;
    }
    if (!same) {
        ptq_mmap_close(mp);
        free(mp);
        return;
    }
    for (int i = 0; i < N_ARRAYS; i++) {
        if (!at[i]) continue;
        ptq_free(*field[i]);
        *field[i] = at[i]; /* read-only pages: nothing writes through these (embed_map.h) */
    }
    ptq_mmap_drop(mp->data, mp->size); /* only the rows looked up become resident again */
    m->map = mp;
}

int ptq_embed_is_mapped(const ptq_model *m) {
    const ptq_qweight *q = m->tok_emb_q;
    return q && m->map && (inside(m->map, q->codes) || inside(m->map, q->scales) || inside(m->map, q->zeros));
}

ptq_status ptq_embed_unmap(ptq_model *m, ptq_error *err) {
    if (!m->map) return PTQ_OK;
    if (m->tok_emb_q) {
        void **field[N_ARRAYS];
        size_t nbytes[N_ARRAYS], align[N_ARRAYS];
        arrays(m->tok_emb_q, field, nbytes, align);
        for (int i = 0; i < N_ARRAYS; i++) {
            if (!inside(m->map, *field[i])) continue;
            void *p = ptq_alloc(nbytes[i], 1, "token embeddings", err);
            if (!p) return PTQ_ERR_NOMEM; /* the arrays not yet copied stay mapped: the model is still whole */
            memcpy(p, *field[i], nbytes[i]);
            *field[i] = p;
        }
    }
    ptq_embed_map_close(m);
    return PTQ_OK;
}

void ptq_embed_map_close(ptq_model *m) {
    if (!m->map) return;
    if (m->tok_emb_q) {
        void **field[N_ARRAYS];
        size_t nbytes[N_ARRAYS], align[N_ARRAYS];
        arrays(m->tok_emb_q, field, nbytes, align);
        for (int i = 0; i < N_ARRAYS; i++)
            if (inside(m->map, *field[i])) *field[i] = NULL; /* not ours to free */
    }
    ptq_mmap_close(m->map);
    free(m->map);
    m->map = NULL;
}
