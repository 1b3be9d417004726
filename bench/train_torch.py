#!/usr/bin/python3
"""PyTorch reference for bench/bench_train.c: the same training step (cross-entropy + 0.01 x the outlier loss on
every linear layer's input inside the blocks, backward, gradient clipping at 1.0, AdamW lr 1e-4 with weight decay
0.01 on matrices), the same models (vit-mnist with timm names from model.safetensors, stories260K from the llama2.c
.bin), the same batch shapes and synthetic inputs, float32 on the CPU with torch.set_num_threads(--threads).

    train_torch.py [--vit DIR] [--lm MODEL.bin] [--steps N] [--vit-batch B] [--lm-batch B] [--ctx T] [--threads N]

Prints one JSON object like bench_train --json. Run by bench/train_vs_torch.sh.
"""
import argparse
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        assert t['dtype'] == 'F32', f'{name}: only F32 is handled here'
        a, b = t['data_offsets']
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).copy()).reshape(t['shape'])
    return out


def outlier(A, tau=3.0):
    A = A.reshape(-1)
    mu = A.mean()
    sigma = torch.sqrt(((A - mu) ** 2).mean() + 1e-12)
    return (torch.relu((A - mu).abs() / sigma - tau) ** 2).mean()  # ptq tune's default (scale-invariant) form


class ViT(torch.nn.Module):
    def __init__(self, cfg, W):
        super().__init__()
        self.cfg = cfg
        self.P = torch.nn.ParameterDict({k.replace('.', '__'): torch.nn.Parameter(v) for k, v in W.items()})

    def w(self, name):
        return self.P[name.replace('.', '__')]

    def forward(self, pix, mon):
        c = self.cfg
        D, H, P = c['embed_dim'], c['num_heads'], c['patch_size']
        eps = c.get('norm_eps', 1e-6)
        B = pix.shape[0]
        pe = F.conv2d(pix, self.w('patch_embed.proj.weight'), self.w('patch_embed.proj.bias'), stride=P)
        x = torch.cat([self.w('cls_token').expand(B, 1, D), pe.flatten(2).transpose(1, 2)], 1) + self.w('pos_embed')
        S = x.shape[1]
        hd = D // H
        for l in range(c['depth']):
            p = f'blocks.{l}.'
            a = F.layer_norm(x, (D,), self.w(p + 'norm1.weight'), self.w(p + 'norm1.bias'), eps)
            mon.append(a)
            qkv = F.linear(a, self.w(p + 'attn.qkv.weight'), self.w(p + 'attn.qkv.bias'))
            q, k, v = qkv.reshape(B, S, 3, H, hd).permute(2, 0, 3, 1, 4)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1) @ v
            o = att.transpose(1, 2).reshape(B, S, D)
            mon.append(o)
            x = x + F.linear(o, self.w(p + 'attn.proj.weight'), self.w(p + 'attn.proj.bias'))
            a = F.layer_norm(x, (D,), self.w(p + 'norm2.weight'), self.w(p + 'norm2.bias'), eps)
            mon.append(a)
            u = F.relu(F.linear(a, self.w(p + 'mlp.fc1.weight'), self.w(p + 'mlp.fc1.bias')))
            mon.append(u)
            x = x + F.linear(u, self.w(p + 'mlp.fc2.weight'), self.w(p + 'mlp.fc2.bias'))
        x = F.layer_norm(x[:, 0], (D,), self.w('norm.weight'), self.w('norm.bias'), eps)
        return F.linear(x, self.w('head.weight'), self.w('head.bias'))


class Llama(torch.nn.Module):
    """llama2.c layout: interleaved RoPE, GQA, SiLU-gated MLP, RMSNorm eps 1e-5, shared classifier."""

    def __init__(self, path):
        super().__init__()
        with open(path, 'rb') as f:
            hdr = struct.unpack('<7i', f.read(28))
            data = np.frombuffer(f.read(), dtype=np.float32)
        D, Fh, L, H, KV, V, S = hdr
        self.shared = V > 0
        V = abs(V)
        self.D, self.Fh, self.L, self.H, self.KV, self.V, self.S = D, Fh, L, H, KV, V, S
        hd = D // H
        off = [0]

        def take(*shape):
            n = int(np.prod(shape))
            t = torch.from_numpy(data[off[0]:off[0] + n].copy()).reshape(shape)
            off[0] += n
            return torch.nn.Parameter(t)

        self.tok = take(V, D)
        self.n1 = take(L, D)
        self.wq, self.wk, self.wv, self.wo = take(L, D, D), take(L, KV * hd, D), take(L, KV * hd, D), take(L, D, D)
        self.n2 = take(L, D)
        self.w1, self.w2, self.w3 = take(L, Fh, D), take(L, D, Fh), take(L, Fh, D)
        self.nf = take(D)
        self.out = self.tok if self.shared else None

    def forward(self, toks, mon):
        B, S = toks.shape
        D, H, KV = self.D, self.H, self.KV
        hd = D // H
        i = torch.arange(hd // 2, dtype=torch.float32)
        freq = 1.0 / 10000.0 ** (2 * i / hd)
        ang = torch.arange(S, dtype=torch.float32)[:, None] * freq[None, :]
        cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]

        def rope(t, nh):
            t = t.reshape(B, S, nh, hd)
            a, b = t[..., 0::2], t[..., 1::2]
            return torch.stack([a * cos - b * sin, a * sin + b * cos], -1).reshape(B, S, nh, hd)

        def rms(x, w):
            return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5) * w

        mask = torch.triu(torch.full((S, S), float('-inf')), 1)
        x = self.tok[toks]
        for l in range(self.L):
            a = rms(x, self.n1[l])
            mon.append(a)
            q = rope(F.linear(a, self.wq[l]), H).transpose(1, 2)
            k = rope(F.linear(a, self.wk[l]), KV).transpose(1, 2).repeat_interleave(H // KV, dim=1)
            v = F.linear(a, self.wv[l]).reshape(B, S, KV, hd).transpose(1, 2).repeat_interleave(H // KV, dim=1)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1) @ v
            o = att.transpose(1, 2).reshape(B, S, D)
            mon.append(o)
            x = x + F.linear(o, self.wo[l])
            a = rms(x, self.n2[l])
            mon.append(a)
            u = F.silu(F.linear(a, self.w1[l])) * F.linear(a, self.w3[l])
            mon.append(u)
            x = x + F.linear(u, self.w2[l])
        x = rms(x, self.nf)
        return x @ self.tok.T


def bench(model, make_loss, decay, nodecay, warm, steps, samples):
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': nodecay, 'weight_decay': 0.0}],
                            lr=1e-4)
    params = decay + nodecay
    tf = tb = 0.0
    t0 = 0.0
    for s in range(warm + steps):
        if s == warm:
            t0 = time.perf_counter()
        a = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = make_loss()
        f = time.perf_counter()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        g = time.perf_counter()
        opt.step()
        if s >= warm:
            tf += f - a
            tb += g - f
    total = time.perf_counter() - t0
    return {'per_s': samples * steps / total, 'step_ms': 1e3 * total / steps, 'forward_ms': 1e3 * tf / steps,
            'backward_ms': 1e3 * tb / steps, 'optimizer_ms': 1e3 * (total - tf - tb) / steps}


def main():
    data = os.environ.get('PTQ_DATA', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared',
                                                   'data'))
    ap = argparse.ArgumentParser()
    ap.add_argument('--vit', default=os.path.join(data, 'vit-mnist'))
    ap.add_argument('--lm', default=os.path.join(data, 'stories260K', 'stories260K.bin'))
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--vit-batch', type=int, default=64)
    ap.add_argument('--lm-batch', type=int, default=8)
    ap.add_argument('--ctx', type=int, default=256)
    ap.add_argument('--threads', type=int, default=int(os.environ.get('OMP_NUM_THREADS', os.cpu_count())))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    res = {'threads': torch.get_num_threads(), 'torch': torch.__version__}
    if os.path.exists(os.path.join(a.vit, 'model.safetensors')):
        with open(os.path.join(a.vit, 'config.json')) as f:
            cfg = json.load(f)
        m = ViT(cfg, read_safetensors(os.path.join(a.vit, 'model.safetensors')))
        B, C, I = a.vit_batch, cfg.get('in_chans', 3), cfg['img_size']
        pix = torch.rand(B, C, I, I) * 3 - 0.5
        lab = torch.randint(0, cfg['num_classes'], (B,))

        def vit_loss():
            mon = []
            logits = m(pix, mon)
            return F.cross_entropy(logits, lab) + 0.01 * sum(outlier(t) for t in mon)

        names = list(m.P.keys())
        decay = [m.P[n] for n in names if m.P[n].dim() >= 2 and n not in ('cls_token', 'pos_embed')]
        nodecay = [m.P[n] for n in names if not (m.P[n].dim() >= 2 and n not in ('cls_token', 'pos_embed'))]
        r = bench(m, vit_loss, decay, nodecay, 3, a.steps, B)
        res['vit'] = {'batch': B, 'images_per_s': r['per_s'], 'step_ms': r['step_ms'], 'forward_ms': r['forward_ms'],
                      'backward_ms': r['backward_ms'], 'optimizer_ms': r['optimizer_ms']}
    if os.path.exists(a.lm):
        m = Llama(a.lm)
        T = min(a.ctx, m.S)
        B = a.lm_batch
        toks = torch.randint(0, m.V, (B, T))
        tg = torch.randint(0, m.V, (B, T))

        def lm_loss():
            mon = []
            logits = m(toks, mon)
            return F.cross_entropy(logits.reshape(-1, m.V), tg.reshape(-1)) + 0.01 * sum(outlier(t) for t in mon)

        decay = [m.tok, m.wq, m.wk, m.wv, m.wo, m.w1, m.w2, m.w3]
        nodecay = [m.n1, m.n2, m.nf]
        r = bench(m, lm_loss, decay, nodecay, 3, a.steps, B * T)
        res['lm'] = {'batch': B, 'ctx': T, 'tokens_per_s': r['per_s'], 'step_ms': r['step_ms'],
                     'forward_ms': r['forward_ms'], 'backward_ms': r['backward_ms'], 'optimizer_ms': r['optimizer_ms']}
    print(json.dumps(res))


if __name__ == '__main__':
    main()
