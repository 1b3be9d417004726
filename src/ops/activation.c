#include <math.h>

#include "ops/ops.h"

float ptq_act_scalar(ptq_act_kind kind, float x) {
    switch (kind) {
    case PTQ_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case PTQ_ACT_GELU_TANH: {
        const float k = 0.79788456080286536f; /* sqrt(2/pi) */
        return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    case PTQ_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case PTQ_ACT_SILU: return x / (1.0f + expf(-x));
    }
    return x;
}

void ptq_act_inplace(ptq_act_kind kind, float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] = ptq_act_scalar(kind, x[i]);
}
