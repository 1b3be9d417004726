#!/usr/bin/env python3
"""Independent numpy (float64) implementation of GPTQ (../shared/docs/METHODS.md section 4.1) and goldens.

Weights W [40][172] and inputs X [300][172] come from the counter-based splitmix64 PRNG that the C test
reproduces (values exact in float32); input column 5 is dead (all zero) and column 17 is an outlier (x8).
For each configuration the script writes the integer codes (in packed-column order), fp16 scales, zero
points, the permutation (act-order) and the relative output error tr(D H D^T)/tr(W H W^T).

As in ptq, scales are rounded to fp16 before codes are chosen (ptq stores fp16 scales), and never below
2^-24. Rerun: /usr/bin/python3 tests/ref/make_gptq_goldens.py   (writes tests/data/gptq/goldens.json)
"""
import json, os
import numpy as np
from prng import uniform_fill  # tests/ref/prng.py

OUT, IN, N = 40, 172, 300
CONFIGS = [  # name, bits, group (0 = per channel, -1 = per tensor), sym, act_order, reference_groups
    ('w4_channel', 4, 0, False, False, True),
    ('w3_g32', 3, 32, False, False, True),
    ('w2_g32', 2, 32, False, False, True),
    ('w4_g64_actorder', 4, 64, False, True, True),
    ('w8_channel_sym', 8, 0, True, False, True),
    ('w4_g32_updated_groups', 4, 32, False, False, False),
    ('w8_tensor_sym', 8, -1, True, False, True),
    ('w4_tensor_sym', 4, -1, True, False, True),
    ('w6_tensor_asym_actorder', 6, -1, False, True, True),
]


def prng(seed, n, scale, bits=16):
    return uniform_fill(seed, n, scale, 0.0, bits)


def data():
    W = prng(11, OUT * IN, 0.25).reshape(OUT, IN)
    X = prng(12, N * IN, 1.0).reshape(N, IN)
    X[:, 5] = 0.0
    X[:, 17] *= 8.0
    return W, X


def fp16_scale(s):
    f = float(np.float16(s))
    return max(f, 2.0 ** -24)


def find_params(w, bits, sym):
    """w: [rows, n] -> per-row scale (fp16-rounded) and integer zero."""
    maxq = 2 ** bits - 1
    xmin = np.minimum(w.min(1), 0.0)
    xmax = np.maximum(w.max(1), 0.0)
    if sym:
        a = np.maximum(-xmin, xmax)
        xmin = np.where(xmin < 0, -a, xmin)
        xmax = a
    both0 = (xmin == 0) & (xmax == 0)
    xmin = np.where(both0, -1.0, xmin)
    xmax = np.where(both0, 1.0, xmax)
    scale = np.array([fp16_scale(v) for v in (xmax - xmin) / maxq])
    if sym:
        zero = np.full(w.shape[0], (maxq + 1) // 2, dtype=np.int64)
    else:
        zero = np.clip(np.round(-xmin / scale), 0, maxq).astype(np.int64)
    return scale, zero


def gptq(W, H, bits, group, sym, act_order, reference_groups, block=128, percdamp=0.01):
    W = W.copy(); H = H.copy(); rows, cols = W.shape
    maxq = 2 ** bits - 1
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    perm = np.arange(cols)
    if act_order:
        perm = np.argsort(-np.diag(H), kind='stable')
        W = W[:, perm]; H = H[perm][:, perm]
    G = cols if group <= 0 else group
    ng = (cols + G - 1) // G
    scales = np.zeros((rows, ng)); zeros = np.zeros((rows, ng), dtype=np.int64)
    if group == -1:  # one grid from the whole (dead-zeroed) matrix
        s, z = find_params(W.reshape(1, -1), bits, sym); scales[:, 0] = s[0]; zeros[:, 0] = z[0]
    elif G == cols:
        s, z = find_params(W, bits, sym); scales[:, 0] = s; zeros[:, 0] = z
    H = H + percdamp * np.mean(np.diag(H)) * np.eye(cols)
    L = np.linalg.cholesky(H)
    Hinv = np.linalg.inv(L).T @ np.linalg.inv(L)
    U = np.linalg.cholesky(Hinv).T          # upper, Hinv = U^T U
    Q = np.zeros((rows, cols), dtype=np.int64)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        W1 = W[:, i1:i2].copy(); Err1 = np.zeros_like(W1)
        for i in range(i2 - i1):
            j = i1 + i
            if G < cols and j % G == 0:
                seg = W[:, j:j + G].copy()
                if not reference_groups:
                    k = min(j + G, i2) - j
                    seg[:, :k] = W1[:, i:i + k]
                s, z = find_params(seg, bits, sym)
                scales[:, j // G] = s; zeros[:, j // G] = z
            g = j // G
            w = W1[:, i]
            q = np.clip(np.round(w / scales[:, g]) + zeros[:, g], 0, maxq).astype(np.int64)
            Q[:, j] = q
            e = (w - scales[:, g] * (q - zeros[:, g])) / U[j, j]
            Err1[:, i] = e
            W1[:, i:] -= np.outer(e, U[j, i1 + i:i2])
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    return Q, scales, zeros, perm


def rel_error(W, Q, scales, zeros, perm, group, H):
    cols = W.shape[1]; G = cols if group <= 0 else group
    g = np.arange(cols) // G
    What_p = scales[:, g] * (Q - zeros[:, g])
    What = np.zeros_like(W); What[:, perm] = What_p
    D = W - What
    return float(np.trace(D @ H @ D.T) / np.trace(W @ H @ W.T))


def main():
    W, X = data()
    H = 2.0 * X.T @ X / X.shape[0]
    out = {'out': OUT, 'in': IN, 'n': N, 'configs': []}
    for name, bits, group, sym, act_order, refg in CONFIGS:
        Q, s, z, perm = gptq(W, H, bits, group, sym, act_order, refg)
        # RTN on the same grid rules, for the "GPTQ beats RTN" check
        G = IN if group <= 0 else group
        Wr = W.copy(); Qr = np.zeros_like(Q); sr = np.zeros_like(s); zr = np.zeros_like(z)
        for gi in range((IN + G - 1) // G):
            seg = Wr[:, gi * G:(gi + 1) * G]
            if group == -1:
                a, b = find_params(Wr.reshape(1, -1), bits, sym)
                a = np.full(OUT, a[0]); b = np.full(OUT, b[0])
            else:
                a, b = find_params(seg, bits, sym)
            sr[:, gi] = a; zr[:, gi] = b
            Qr[:, gi * G:(gi + 1) * G] = np.clip(np.round(seg / a[:, None]) + b[:, None], 0, 2 ** bits - 1)
        out['configs'].append({
            'name': name, 'bits': bits, 'group': group, 'sym': sym, 'act_order': act_order,
            'reference_groups': refg,
            'codes': Q.reshape(-1).tolist(), 'scales': [float(v) for v in s.reshape(-1)],
            'zeros': z.reshape(-1).tolist(), 'perm': perm.tolist(),
            'rel_error': rel_error(W, Q, s, z, perm, group, H),
            'rtn_rel_error': rel_error(W, Qr, sr, zr, np.arange(IN), group, H),
        })
        print(name, out['configs'][-1]['rel_error'], 'rtn', out['configs'][-1]['rtn_rel_error'])
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, '..', 'data', 'gptq', 'goldens.json')
    with open(path, 'w') as f:
        json.dump(out, f, separators=(',', ':'))
    print('wrote', path)


if __name__ == '__main__':
    main()
