/* Internal to ggml_quants.c / ggml_kquants.c: the type table and ggml's rounding. */
#ifndef PTQ_QUANT_GGML_QUANTS_IMPL_H
#define PTQ_QUANT_GGML_QUANTS_IMPL_H

#include <stdint.h>
#include <string.h>

#include "quant/ggml_quants.h"

typedef struct {
    uint32_t type;
    const char *name;
    int block, bytes, sub, qmax, zero, affine;
} ptq_ggml_qtype;

/* NULL when the type is not one of the ten. */
const ptq_ggml_qtype *ptq_ggml_qtype_get(uint32_t type);

/* Round half to even for |f| < 2^22, the way ggml's k-quants round: adding 1.5 * 2^23 leaves the
 * integer in the low mantissa bits. */
static inline int ptq_ggml_nearest(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

#define PTQ_GGML_EPS 1e-15f /* ggml's GROUP_MAX_EPS: a sub-block with max |x| below it is all zero */

/* k-quants (ggml_kquants.c): choose the parameters of a super-block (imp NULL: ggml's reference choice),
 * with L the codes of the scale search (0..qmax), which ggml keeps for a sub-block whose quantized scale
 * is zero. */
void ptq_ggml_kq_choose(uint32_t type, const float *x, const float *imp, ptq_ggml_block_params *p, uint8_t *L);
void ptq_ggml_kq_rechoose_sub(const float *x, const float *imp, int s, ptq_ggml_block_params *p);
/* ggml's scale searches, shared with the importance-weighted legacy choice */
float ptq_ggml_make_qx(int n, int nmax, const float *x, int8_t *L, int rmse_type, const float *qw);
float ptq_ggml_make_qkx2(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min, uint8_t *Laux,
                         float rmin, float rdelta, int nstep, int use_mad);

#endif
