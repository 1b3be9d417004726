#!/usr/bin/env python3
"""Independent numpy reference for Bias Compensation (../shared/docs/METHODS.md section 1).

For random layers W [out][in] + b, random data X [n_seq][T][in] and RTN quantizers of 2..8 bits
(per-channel asymmetric min-max, scales rounded to fp16 as ptq stores them), computes
  O = X W^T + b,  Ohat = X What^T + b,  e = O - Ohat
  per-channel bias  = mean of e over sequences and positions      [out]
  per-position bias = mean of e over sequences                    [T][out]
and the per-element MSE of Ohat (+ bias) against O. Data come from the splitmix64 PRNG the C test
reproduces. Rerun: /usr/bin/python3 tests/ref/make_bc_goldens.py  (writes tests/data/bc/goldens.json)
"""
import json, os
import numpy as np
from prng import uniform_fill  # tests/ref/prng.py

CASES = [  # name, out, in, n_seq, T, bits, seed, input offset (a mean shift makes the bias matter)
    ('w2_small', 24, 40, 6, 5, 2, 21, 0.5),
    ('w3_tail', 33, 172, 4, 7, 3, 22, 0.25),
    ('w4_wide', 64, 96, 3, 9, 4, 23, 1.0),
    ('w5', 17, 64, 5, 4, 5, 24, 0.0),
    ('w6', 40, 64, 2, 11, 6, 25, -0.75),
    ('w8', 48, 80, 4, 6, 8, 26, 2.0),
]


def prng(seed, n, scale, offset=0.0):
    return uniform_fill(seed, n, scale, offset)


def rtn(W, bits):
    maxq = 2 ** bits - 1
    xmin = np.minimum(W.min(1), 0.0); xmax = np.maximum(W.max(1), 0.0)
    both0 = (xmin == 0) & (xmax == 0)
    xmin = np.where(both0, -1.0, xmin); xmax = np.where(both0, 1.0, xmax)
    scale = np.array([max(float(np.float16(s)), 2.0 ** -24) for s in (xmax - xmin) / maxq])
    zero = np.clip(np.round(-xmin / scale), 0, maxq)
    q = np.clip(np.round(W / scale[:, None]) + zero[:, None], 0, maxq)
    return scale[:, None] * (q - zero[:, None])


def mse(e, b):
    return float(np.mean((e - b) ** 2))


def main():
    out = []
    for name, O_, I_, S, T, bits, seed, off in CASES:
        W = prng(seed, O_ * I_, 0.5).reshape(O_, I_)
        b = prng(seed + 100, O_, 0.1)
        X = prng(seed + 200, S * T * I_, 1.0, off).reshape(S, T, I_)
        O = X @ W.T + b
        Oh = X @ rtn(W, bits).T + b
        e = O - Oh
        bc = e.mean(axis=(0, 1))
        bp = e.mean(axis=0)
        out.append({'name': name, 'out': O_, 'in': I_, 'n_seq': S, 'T': T, 'bits': bits, 'seed': seed,
                    'offset': off, 'bias_channel': bc.tolist(), 'bias_position': bp.reshape(-1).tolist(),
                    'mse_none': mse(e, 0.0), 'mse_channel': mse(e, bc), 'mse_position': mse(e, bp),
                    'signal': float(np.sum(O ** 2))})
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, '..', 'data', 'bc', 'goldens.json')
    json.dump({'cases': out}, open(path, 'w'), separators=(',', ':'))
    print('wrote', path)


if __name__ == '__main__':
    main()
