/* Calibration data sampling. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "ptq.h"

ptq_status ptq_calib_windows(const int *tokens, int64_t n, int n_seqs, int seq_len, uint64_t seed, int **out,
                             ptq_error *err) {
    *out = NULL;
    if (n_seqs <= 0 || seq_len <= 0)
        return ptq_fail(err, PTQ_ERR_ARG, "calibration needs at least one window of at least one token");
    if (n < seq_len)
        return ptq_fail(err, PTQ_ERR_ARG, "calibration text has %lld tokens, fewer than one window of %d",
                        (long long)n, seq_len);
    int *w = malloc((size_t)n_seqs * seq_len * sizeof *w);
    if (!w) return ptq_fail(err, PTQ_ERR_NOMEM, "cannot allocate %d calibration windows", n_seqs);
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    uint64_t span = (uint64_t)(n - seq_len) + 1;
    for (int i = 0; i < n_seqs; i++) {
        uint64_t z = ptq_splitmix64(&s); /* a well-mixed start position for every window */
        memcpy(w + (size_t)i * seq_len, tokens + (z % span), (size_t)seq_len * sizeof *w);
    }
    *out = w;
    return PTQ_OK;
}
