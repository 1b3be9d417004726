/* The calibration activations between blocks (--calib-dtype, src/quant/calib_stream.c): a bfloat16 stream reads
 * back exactly each float32 value rounded to bfloat16, nearest even, by an independent bit formula (ties included);
 * float16 gives ptq's tested f16 rounding and refuses values beyond its range; float32 is exact; names parse. */
#include <math.h>
#include <string.h>

#include "io/safetensors.h"
#include "quant/calib_stream.h"
#include "testutil.h"

enum { N = 4096 };

/* float32 -> bfloat16 -> float32, round to nearest even, from the bits (finite inputs) */
static float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    u &= 0xFFFF0000u;
    memcpy(&x, &u, 4);
    return x;
}

static void fill(float *x) {
    uint64_t s = 7;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double r = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        x[i] = (float)(r * pow(10.0, (double)(i % 13) - 6)); /* magnitudes 1e-6 .. 1e6 */
    }
    /* exact ties: a bfloat16 value plus half its last place, odd and even last bits */
    for (int i = 0; i < 64; i++) {
        uint32_t u = 0x3F800000u + ((uint32_t)i << 16) + 0x8000u;
        memcpy(&x[i * 7], &u, 4);
    }
    x[1] = 0.0f, x[2] = -0.0f, x[3] = 1e-40f, x[4] = -3.0e38f;
}

int main(void) {
    static float x[N], y[N];
    fill(x);
    ptq_error e;
    ptq_calib_stream s;
    /* bfloat16: stored in three uneven pieces, read back in two */
    CHECK(ptq_calib_stream_alloc(&s, PTQ_CALIB_BF16, N, &e) == PTQ_OK && s.h && !s.f);
    CHECK(ptq_calib_stream_put(&s, 0, 1000, x, &e) == PTQ_OK);
    CHECK(ptq_calib_stream_put(&s, 1000, 3000, x + 1000, &e) == PTQ_OK);
    CHECK(ptq_calib_stream_put(&s, 4000, N - 4000, x + 4000, &e) == PTQ_OK);
    ptq_calib_stream_get(&s, 0, 2048, y);
    ptq_calib_stream_get(&s, 2048, N - 2048, y + 2048);
    int bad = 0, changed = 0;
    for (int i = 0; i < N; i++) {
        float r = bf16_round(x[i]);
        bad += memcmp(&y[i], &r, 4) != 0;
        changed += y[i] != x[i];
    }
    CHECK_MSG(bad == 0, "%d of %d bfloat16 values differ from round-to-nearest-even", bad, N);
    CHECK(changed > N / 2); /* the rounding did happen */
    ptq_calib_stream_free(&s);
    CHECK(s.h == NULL);

    /* float16: ptq's conversion, and a value beyond its range is an error, not an infinity */
    CHECK(ptq_calib_stream_alloc(&s, PTQ_CALIB_F16, N, &e) == PTQ_OK);
    for (int i = 0; i < N; i++) y[i] = fmaxf(-6e4f, fminf(6e4f, x[i]));
    CHECK(ptq_calib_stream_put(&s, 0, N, y, &e) == PTQ_OK);
    static float z[N];
    ptq_calib_stream_get(&s, 0, N, z);
    bad = 0;
    for (int i = 0; i < N; i++) bad += z[i] != ptq_f16_to_f32(ptq_f32_to_f16(y[i]));
    CHECK(bad == 0);
    float big[2] = {65519.0f, 1e5f}; /* the first rounds to 65504; the second overflows */
    CHECK(ptq_calib_stream_put(&s, 0, 1, big, &e) == PTQ_OK);
    ptq_calib_stream_get(&s, 0, 1, z);
    CHECK(z[0] == 65504.0f);
    CHECK(ptq_calib_stream_put(&s, 0, 2, big, &e) == PTQ_ERR_NUMERIC && strstr(e.msg, "float16") &&
          strstr(e.msg, "bf16"));
    ptq_calib_stream_free(&s);

    /* float32: exact */
    CHECK(ptq_calib_stream_alloc(&s, PTQ_CALIB_F32, N, &e) == PTQ_OK && s.f && !s.h);
    CHECK(ptq_calib_stream_put(&s, 0, N, x, &e) == PTQ_OK);
    ptq_calib_stream_get(&s, 0, N, y);
    CHECK(!memcmp(x, y, sizeof x));
    ptq_calib_stream_free(&s);

    ptq_calib_dtype d;
    CHECK(ptq_calib_dtype_parse("bf16", &d) == 0 && d == PTQ_CALIB_BF16 && ptq_calib_dtype_size(d) == 2);
    CHECK(ptq_calib_dtype_parse("f32", &d) == 0 && d == PTQ_CALIB_F32 && ptq_calib_dtype_size(d) == 4);
    CHECK(ptq_calib_dtype_parse("f16", &d) == 0 && !strcmp(ptq_calib_dtype_name(d), "f16"));
    CHECK(ptq_calib_dtype_parse("fp8", &d) != 0);
    CHECK(ptq_calib_stream_alloc(&s, (ptq_calib_dtype)7, 4, &e) == PTQ_ERR_ARG);
    return tu_done("test_gptq_calib_stream");
}
