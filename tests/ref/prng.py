"""The counter-based generator every golden script and C test shares (tests/testutil.c has the C twin):
value i of stream `seed` comes from splitmix64((seed << 32) + i), so any element can be regenerated
without running a generator."""
import numpy as np


def splitmix64(x):
    with np.errstate(over='ignore'):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def uniform_fill(seed, n, scale=1.0, offset=0.0, bits=16):
    """offset + scale * u_i, u_i in [-1, 1) from the top `bits` bits of splitmix64((seed << 32) + i)
    (float64; exactly tu_prng_fill before its rounding to float32)."""
    idx = (np.uint64(seed) << np.uint64(32)) + np.arange(n, dtype=np.uint64)
    m = (splitmix64(idx) >> np.uint64(64 - bits)).astype(np.int64)
    half = 2 ** (bits - 1)
    return offset + (m - half).astype(np.float64) / half * scale
