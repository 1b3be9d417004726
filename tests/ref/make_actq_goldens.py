#!/usr/bin/env python3
"""Independent numpy reference for ptq's activation quantizers and calibrators (src/quant/actq.c;
../shared/docs/METHODS.md sections 0 and 5.2). Writes tests/data/actq/goldens.json, read by
tests/test_actquant.c. Rerun: /usr/bin/python3 tests/ref/make_actq_goldens.py

Data: the splitmix64 PRNG of tests/ref/make_bc_goldens.py, u = (top 16 bits - 32768) / 32768 in [-1, 1),
turned into heavy-tailed activations by exact double arithmetic, then rounded to float32:
  cubic     x = u*u*u*scale + offset
  outliers  x = u*u*u*scale, and every 61st value (index % 61 == 0) times 8
  gelu      x = u*u*u*scale for u >= 0, x = 0.16*u for u < 0     (a post-GELU-like input)

Definitions implemented here (b bits; all quantizer arithmetic in float32 like the C code; the search
objectives in float64):
  fake quant    fq(x; s, z, lo, hi) = s * (clamp(rint(x / s) + z, lo, hi) - z)
                (float32 division, round half to even, float32 product); symmetric: z = 0,
                [lo, hi] = [-2^(b-1), 2^(b-1)-1]; asymmetric: [0, 2^b - 1] with an integer zero point.
  per token     s = max_j |x_j + noise_j| / (2^(b-1)-1) per row (float32), 1 for an all-zero row.
  twin          x >= 0: fq(x; s_pos, 0, 0, 2^(b-1)-1);  x < 0: fq(x; s_neg, 0, -2^(b-1), 0).
  noise         fq is applied to (x + noise_j) in float32 (NoisyQuant); the output is not de-noised.
  range -> step symmetric: c = max(|lo|, |hi|), s = float32(c / (2^(b-1)-1)) (1 when c = 0), z = 0;
                asymmetric: lo = min(lo, 0), hi = max(hi, 0), s = float32((hi - lo) / (2^b - 1)),
                z = rint(-lo / s).
  sample        stratified: stride = ceil(n / min(n, 2^20)); block k (values k*stride ..
                (k+1)*stride - 1) keeps the value at k*stride + (r_k mod stride), with r_k the k-th
                draw (k = 0, 1, ...) of splitmix64 from the state 0x5DEECE66D * (in + 1) + n (mod 2^64),
                i.e. r_k = splitmix64(state + k * 0x9E3779B97F4A7C15) with splitmix64 of prng.py; a
                position past the end is not kept. min and max are over ALL values.
  minmax        the range [min, max].
  percentile    p (percent): symmetric: c = sorted(|v|)[min(n-1, floor(p/100 (n-1) + 0.5))];
                asymmetric: lo = sorted(v)[floor((100-p)/100 (n-1) + 0.5)], hi = sorted(v)[floor(p/100 (n-1) + 0.5)].
  mse           candidates i = 100, 99, ..., 1: range [min i/100, max i/100]; keep the first smallest
                sum over the sample of (v - fq(v))^2.
  entropy       (symmetric; asymmetric falls back to minmax) amax = max(|min|, |max|), 2048 bins of
                width w = amax / 2048 over |v| (bin floor(|v| / w), the last one taking the overflow);
                for i = 2^(b-1) .. 2048: P = bins[0:i] with the mass of bins[i:] added to bin i-1;
                Q = bins[0:i] WITHOUT that tail, cut into 2^(b-1) groups [floor(g i / L), floor((g+1) i / L))
                (at least one bin each), each group's mass spread evenly over its non-empty bins (empty bins
                get 0); KL(P || Q) = sum over P > 0 of p log(p / q) with p, q normalised (q = 0 -> 1e-12);
                keep the first i with the smallest KL; clip c = (i + 0.5) w.
  twin search   s_neg = 0.16997124254703522 / 2^(b-1) (float32); d0 = max(max, or 1 if max <= 0) / (2^(b-1) - 0.5);
                candidates s_pos = float32(d0 (0.01 + k (1.2 - 0.01) / 100)), k = 0..99; keep the first
                smallest sum of squared twin errors over the sample.
Every search case also records the relative gap between its best and second-best objective, so a
tie that rounding could flip is visible (the generator refuses gaps below 1e-9).
"""
import json
import os

import numpy as np
from prng import splitmix64, uniform_fill  # tests/ref/prng.py

F = np.float32


def uniform(seed, n):
    return uniform_fill(seed, n)


def data(kind, seed, n, scale, offset):
    u = uniform(seed, n)
    if kind == 'cubic':
        x = u * u * u * scale + offset
    elif kind == 'outliers':
        x = u * u * u * scale
        x[np.arange(n) % 61 == 0] *= 8.0
    elif kind == 'gelu':
        x = np.where(u >= 0, u * u * u * scale, 0.16 * u)
    else:
        raise ValueError(kind)
    return x.astype(F)


def fq(x, s, z, lo, hi):
    x = np.asarray(x, dtype=F)
    s = F(s)
    if not s > 0:
        return np.zeros_like(x)
    c = np.rint(x / s) + F(z)
    c = np.clip(c, F(lo), F(hi))
    return (s * (c - F(z))).astype(F)


def grid(bits, sym):
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if sym else (0, 2 ** bits - 1)


def value(q, x):
    if q.get('twin'):
        half = 2 ** (q['bits'] - 1)
        pos = fq(x, q['scale'], 0, 0, half - 1)
        neg = fq(x, q['scale_neg'], 0, -half, 0)
        return np.where(np.asarray(x) >= 0, pos, neg).astype(F)
    lo, hi = grid(q['bits'], q['sym'])
    return fq(x, q['scale'], q['zero'] if not q['sym'] else 0, lo, hi)


def apply(q, X, noise=None):
    """X [rows][in] float32 -> fake-quantized (X + noise)."""
    X = np.asarray(X, dtype=F)
    V = X + noise.astype(F) if noise is not None else X.copy()
    if q.get('per_token'):
        tmax = F(2 ** (q['bits'] - 1) - 1)
        out = np.empty_like(V)
        lo, hi = grid(q['bits'], True)
        for r in range(V.shape[0]):
            m = np.max(np.abs(V[r])) if V.shape[1] else F(0)
            s = F(m) / tmax if m > 0 else F(1)
            out[r] = fq(V[r], s, 0, lo, hi)
        return out
    return value(q, V)


def set_range(bits, sym, lo, hi):
    if sym:
        c = max(abs(lo), abs(hi))
        s = float(F(c / (2 ** (bits - 1) - 1))) if c > 0 else 1.0
        return {'bits': bits, 'sym': 1, 'scale': s, 'zero': 0.0}
    lo = min(lo, 0.0)
    hi = max(hi, 0.0)
    r = hi - lo
    s = float(F(r / (2 ** bits - 1))) if r > 0 else 1.0
    return {'bits': bits, 'sym': 0, 'scale': s, 'zero': float(np.rint(-lo / s))}


def sample(x, width):
    n = len(x)
    cap = min(n, 1 << 20)
    stride = max(1, -(-n // cap))
    blocks = -(-n // stride)
    with np.errstate(over='ignore'):
        state = np.uint64((0x5DEECE66D * (width + 1) + n) % (1 << 64))
        r = splitmix64(state + np.arange(blocks, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    pos = np.arange(blocks, dtype=np.int64) * stride + (r % np.uint64(stride)).astype(np.int64)
    v = x[pos[pos < n]]
    return v, float(x.min()), float(x.max())


def sq_err(q, v):
    d = v.astype(np.float64) - value(q, v).astype(np.float64)
    return float(np.sum(d * d))


def gap(errs, best, keys=None):
    """Relative margin between the kept objective and the best candidate giving a different quantizer
    (candidates with the same key, e.g. the same float32 step, tie harmlessly)."""
    keys = keys if keys is not None else list(range(len(errs)))
    others = [e for e, k in zip(errs, keys) if k != keys[best]]
    if not others:
        return float('inf')
    return (min(others) - errs[best]) / max(abs(errs[best]), 1e-300)


def calib_percentile(v, bits, sym, pc):
    n = len(v)
    if sym:
        a = np.sort(np.abs(v))
        c = float(a[int(min(n - 1.0, np.floor(pc / 100.0 * (n - 1) + 0.5)))])
        return set_range(bits, sym, -c, c)
    a = np.sort(v)
    lo = float(a[int(np.floor((100.0 - pc) / 100.0 * (n - 1) + 0.5))])
    hi = float(a[int(np.floor(pc / 100.0 * (n - 1) + 0.5))])
    return set_range(bits, sym, lo, hi)


def calib_mse(v, mn, mx, bits, sym):
    cands, errs = [], []
    for i in range(100, 0, -1):
        q = set_range(bits, sym, mn * i / 100.0, mx * i / 100.0)
        cands.append(q)
        errs.append(sq_err(q, v))
    best = int(np.argmin(errs))  # first smallest
    return cands[best], gap(errs, best, [(q['scale'], q['zero']) for q in cands])


def calib_entropy(v, mn, mx, bits):
    BINS = 2048
    amax = max(abs(mn), abs(mx))
    w = amax / BINS
    idx = np.minimum(np.floor(np.abs(v.astype(np.float64)) / w).astype(np.int64), BINS - 1)
    h = np.bincount(idx, minlength=BINS).astype(np.float64)
    L = 2 ** (bits - 1)
    kls = []
    for i in range(L, BINS + 1):
        p = h[:i].copy()
        p[i - 1] += h[i:].sum()
        q = np.zeros(i)
        for g in range(L):
            b0 = (g * i) // L
            b1 = ((g + 1) * i) // L
            if b1 <= b0:
                b1 = b0 + 1
            b1 = min(b1, i)
            seg = h[b0:b1]
            nz = np.count_nonzero(seg)
            if nz:
                q[b0:b1] = np.where(seg > 0, seg.sum() / nz, 0.0)
        pp = p / p.sum()
        qq = q / q.sum()
        m = pp > 0
        qm = np.where(qq[m] > 0, qq[m], 1e-12)
        kls.append(float(np.sum(pp[m] * np.log(pp[m] / qm))))
    best = int(np.argmin(kls))
    c = (best + L + 0.5) * w
    return set_range(bits, True, -c, c), gap(kls, best), best + L


def calib_twin(v, mx, bits):
    half = 2 ** (bits - 1)
    s_neg = float(F(0.16997124254703522) / F(half))
    hi = mx if mx > 0 else 1.0
    d0 = hi / (half - 0.5)
    cands, errs = [], []
    for k in range(100):
        q = {'bits': bits, 'sym': 1, 'twin': 1, 'scale_neg': s_neg, 'zero': 0.0,
             'scale': float(F(d0 * (0.01 + k * (1.2 - 0.01) / 100.0)))}
        cands.append(q)
        errs.append(sq_err(q, v))
    best = int(np.argmin(errs))
    return cands[best], gap(errs, best, [q['scale'] for q in cands])


# name, kind, seed, n (values), in (row width), scale, offset
DISTS = [
    ('cubic', 'cubic', 31, 6000, 48, 3.0, 0.0),
    ('shifted', 'cubic', 32, 6000, 60, 2.5, 0.75),
    ('outliers', 'outliers', 33, 9000, 90, 1.5, 0.0),
    ('gelu', 'gelu', 34, 6000, 40, 4.0, 0.0),
    ('big_strided', 'outliers', 35, 1200000, 100, 2.0, 0.0),  # > 2^20 values: the sample keeps one of every 2
]
N_VALUES_OUT = 48  # quantized codes stored per case (of the first values of the data)


def codes(q, x):
    """Integer codes (c - z) of the fake-quantized values: value = float32(step * code) exactly, with the
    step of the code's sign for twin."""
    v = value(q, x).astype(np.float64)
    s = np.where(v < 0, q['scale_neg'], q['scale']) if q.get('twin') else np.full(len(v), q['scale'])
    c = np.rint(v / s)
    assert np.all((c * s).astype(F) == v.astype(F))
    return [int(k) for k in c]


def f32list(a):
    return [float(x) for x in np.asarray(a, dtype=F)]


def main():
    calib = []
    for name, kind, seed, n, width, scale, off in DISTS:
        x = data(kind, seed, n, scale, off)
        v, mn, mx = sample(x, width)
        head = x[:N_VALUES_OUT]
        for bits in (4, 6, 8):
            for sym in (1, 0):
                methods = ['minmax', 'percentile', 'mse', 'entropy']
                if sym and kind == 'gelu':
                    methods.append('twin')
                if name == 'big_strided' and bits != 8:
                    methods = ['minmax', 'percentile', 'mse']
                for meth in methods:
                    g = float('inf')
                    extra = {}
                    if meth == 'minmax':
                        q = set_range(bits, sym, mn, mx)
                    elif meth == 'percentile':
                        q = calib_percentile(v, bits, sym, 99.9)
                        extra['percentile'] = 99.9
                    elif meth == 'mse':
                        q, g = calib_mse(v, mn, mx, bits, sym)
                    elif meth == 'entropy':
                        if sym:
                            q, g, ibin = calib_entropy(v, mn, mx, bits)
                            extra['entropy_bin'] = ibin
                        else:
                            q = set_range(bits, sym, mn, mx)
                    else:
                        q, g = calib_twin(v, mx, bits)
                    if g < 1e-9:
                        raise SystemExit('%s b%d sym%d %s: near tie (gap %g); pick another seed' % (name, bits, sym, meth, g))
                    case = {'name': name, 'kind': kind, 'seed': seed, 'n': n, 'in': width, 'scale_data': scale,
                            'offset': off, 'bits': bits, 'sym': sym, 'method': meth,
                            'scale': q['scale'], 'zero': q['zero'], 'twin': q.get('twin', 0),
                            'scale_neg': q.get('scale_neg', 0.0), 'n_sample': int(len(v)),
                            'sample_sq_err': sq_err(q, v), 'gap': g if np.isfinite(g) else None,
                            'codes': codes(q, head)}
                    case.update(extra)
                    calib.append(case)
    # ptq_actq_apply on explicit quantizers: ties, clamping, noise, per token, twin
    applies = []
    R, C = 5, 37
    base = data('outliers', 41, R * C, 3.0, 0.0).reshape(R, C)
    ties = (np.arange(R * C, dtype=np.float64).reshape(R, C) - 90.0) * 0.125  # exact halves of step 0.25
    noise = (uniform(42, C) * 0.3).astype(F)
    specs = [
        ('sym8', base, {'bits': 8, 'sym': 1, 'scale': float(F(3.0 * 8 / 127)), 'zero': 0.0}, None),
        ('sym4_clamp', base, {'bits': 4, 'sym': 1, 'scale': float(F(0.21)), 'zero': 0.0}, None),
        ('sym6_ties', ties, {'bits': 6, 'sym': 1, 'scale': 0.25, 'zero': 0.0}, None),
        ('asym5', base + F(1.0), {'bits': 5, 'sym': 0, 'scale': float(F(0.37)), 'zero': 9.0}, None),
        ('asym8_ties', ties, {'bits': 8, 'sym': 0, 'scale': 0.25, 'zero': 100.0}, None),
        ('sym6_noise', base, {'bits': 6, 'sym': 1, 'scale': float(F(0.3)), 'zero': 0.0}, noise),
        ('asym4_noise', base, {'bits': 4, 'sym': 0, 'scale': float(F(0.9)), 'zero': 7.0}, noise),
        ('pertoken8', base, {'bits': 8, 'sym': 1, 'scale': 1.0, 'zero': 0.0, 'per_token': 1}, None),
        ('pertoken4_zero_row', np.vstack([base[:2], np.zeros((1, C), F), base[3:]]),
         {'bits': 4, 'sym': 1, 'scale': 1.0, 'zero': 0.0, 'per_token': 1}, None),
        ('twin6', base, {'bits': 6, 'sym': 1, 'twin': 1, 'scale': float(F(0.11)), 'scale_neg': float(F(0.16997124254703522) / F(32)),
                         'zero': 0.0}, None),
        ('twin4_noise', base, {'bits': 4, 'sym': 1, 'twin': 1, 'scale': float(F(0.5)), 'scale_neg': 0.02, 'zero': 0.0}, noise),
    ]
    for name, X, q, nz in specs:
        X = np.asarray(X, dtype=F)
        applies.append({'name': name, 'rows': R, 'in': C, 'bits': q['bits'], 'sym': q['sym'],
                        'per_token': q.get('per_token', 0), 'twin': q.get('twin', 0), 'scale': q['scale'],
                        'zero': q['zero'], 'scale_neg': float(F(q.get('scale_neg', 0.0))),
                        'x': f32list(X.reshape(-1)), 'noise': f32list(nz) if nz is not None else None,
                        'out': f32list(apply(q, X, nz).reshape(-1))})
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, '..', 'data', 'actq', 'goldens.json')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump({'calib': calib, 'apply': applies}, f, separators=(',', ':'))
    print('wrote', path, len(calib), 'calibration cases,', len(applies), 'apply cases')


if __name__ == '__main__':
    main()
