#!/usr/bin/python3
"""Goldens for tests/test_train.c: whole-model loss and every parameter gradient of tiny ViT (timm names),
LLaMA (Hugging Face names and llama2.c layout), GPT-2 and OPT (post-norm, project_in/out) models, with the
QuantTune outlier term (our placeholder loss, docs/QUANTTUNE.md) included in most of them, and a 10-step AdamW
loss curve (warm-up + cosine schedule, weight decay, gradient clipping).

Each model is written here from its definition in PyTorch (float64, autograd), independently of the C code.
No weights are stored: every tensor comes from a counter-based PRNG that the C test reproduces,
    z = splitmix64((seed << 32) + i)   for element i in row-major order of the STORED shape
    value = offset + ((z >> (64 - bits)) - 2^(bits-1)) / 2^(bits-1) * scale       (exact in float32)
(the scheme of tests/ref/make_hf_goldens.py). Images use the same PRNG; token lists are literal.

The outlier loss of one monitored tensor A (all rows of the batch, [rows, features]), with
mu = mean(A), sigma = sqrt(mean((A - mu)^2) + 1e-12):
    abs: L = mean(relu(|A - mu| - tau sigma)^2)        (METHODS.md 3.2 as written)
    rel: L = mean(relu(|A - mu| / sigma - tau)^2)      (in units of sigma: scale-invariant; ptq tune's default)
and the total loss is  CE + lambda * sum over blocks and monitored kinds (qkv, proj, fc1, fc2) of L, where the
monitored tensors are the inputs of the block's linear layers: qkv = the Q/K/V input, proj = the attention
output (input of the output projection), fc1 = the MLP input, fc2 = the input of the down projection.

The AdamW curve uses torch.optim.AdamW with two parameter groups (weight decay on linear weights and token
embeddings; none on biases, norms, positions and the class token), lr set each step to
    lr * (s + 1) / warmup for s < warmup, else lr * (1 + cos(pi * (s - warmup) / (total - warmup))) / 2,
and torch.nn.utils.clip_grad_norm_ before each step.

Writes tests/data/train/<name>/{config.json (HF models), manifest.json, golden.json}.
Run:  /usr/bin/python3 tests/ref/make_train_goldens.py   (from the repository root; needs torch + numpy)
"""
import json
import math
import os

import numpy as np
from prng import uniform_fill  # tests/ref/prng.py
import torch
import torch.nn.functional as Fn

torch.set_default_dtype(torch.float64)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'tests', 'data', 'train')


# ---------------------------------------------------------------- PRNG (as make_hf_goldens.py)

def prng_values(seed, n, scale, offset, bits=16):
    return uniform_fill(seed, n, scale, offset, bits)


class Gen:
    def __init__(self, base_seed):
        self.seed = base_seed
        self.entries = []
        self.T = {}
        self.order = []

    def add(self, name, shape, scale, offset=0.0, layout=None):
        self.seed += 1
        v = prng_values(self.seed, int(np.prod(shape)), scale, offset)
        t = torch.tensor(v).reshape(shape)
        assert torch.equal(t.to(torch.float32).to(torch.float64), t)
        e = {'name': name, 'shape': list(shape), 'seed': self.seed, 'scale': scale, 'offset': offset, 'bits': 16}
        if layout:
            e['layout'] = layout
        self.entries.append(e)
        self.T[name] = t.clone().requires_grad_(True)
        self.order.append(name)
        return self.T[name]

    def linear(self, p, n_in, n_out, bias=True, scale=0.5, conv1d=False):
        if conv1d:
            self.add(p + '.weight', [n_in, n_out], scale, layout='conv1d [in, out]')
        else:
            self.add(p + '.weight', [n_out, n_in], scale)
        if bias:
            self.add(p + '.bias', [n_out], 0.25)

    def norm(self, p, dim, bias=True):
        self.add(p + '.weight', [dim], 0.25, offset=1.0)
        if bias:
            self.add(p + '.bias', [dim], 0.25)


# ---------------------------------------------------------------- building blocks

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attend(q, k, v, H, KV, causal):
    """q [B, S, H*hd], k/v [B, S, KV*hd] -> [B, S, H*hd]."""
    B, S, _ = q.shape
    hd = q.shape[2] // H
    q = q.reshape(B, S, H, hd).permute(0, 2, 1, 3)
    k = k.reshape(B, S, KV, hd).permute(0, 2, 1, 3).repeat_interleave(H // KV, dim=1)
    v = v.reshape(B, S, KV, hd).permute(0, 2, 1, 3).repeat_interleave(H // KV, dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if causal:
        s = s.masked_fill(torch.triu(torch.ones(S, S, dtype=torch.bool), 1), float('-inf'))
    return (torch.softmax(s, -1) @ v).permute(0, 2, 1, 3).reshape(B, S, H * hd)


def outlier(A, tau, rel):
    A = A.reshape(-1)
    mu = A.mean()
    sigma = torch.sqrt(((A - mu) ** 2).mean() + 1e-12)
    if rel:  # in units of sigma (scale-invariant; the default of ptq tune)
        return (torch.relu((A - mu).abs() / sigma - tau) ** 2).mean()
    return (torch.relu((A - mu).abs() - tau * sigma) ** 2).mean()  # METHODS.md 3.2 as written


class Monitor:
    """Collects the outlier terms of the monitored tensors of one forward pass."""

    def __init__(self, tau, kinds, rel):
        self.tau, self.kinds, self.rel, self.terms = tau, kinds, rel, []

    def __call__(self, kind, A):
        if kind in self.kinds:
            self.terms.append(outlier(A, self.tau, self.rel))

    def total(self):
        return sum(self.terms) if self.terms else torch.tensor(0.0)


def lin(T, p, x, bias=True):
    y = x @ T[p + '.weight'].T
    return y + T[p + '.bias'] if bias else y


def conv1d(T, p, x):
    return x @ T[p + '.weight'] + T[p + '.bias']


def rope(t, S, nh, hd, theta, interleaved):
    B = t.shape[0]
    t = t.reshape(B, S, nh, hd)
    i = torch.arange(hd // 2, dtype=torch.float64)
    freq = 1.0 / theta ** (2 * i / hd)
    ang = torch.arange(S, dtype=torch.float64)[:, None] * freq[None, :]  # [S, hd/2]
    c, s = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    if interleaved:
        a, b = t[..., 0::2], t[..., 1::2]
        out = torch.stack([a * c - b * s, a * s + b * c], -1).reshape(B, S, nh, hd)
    else:
        a, b = t[..., :hd // 2], t[..., hd // 2:]
        out = torch.cat([a * c - b * s, a * s + b * c], -1)
    return out.reshape(B, S, nh * hd)


def ce_loss(logits, targets):
    logits = logits.reshape(-1, logits.shape[-1])
    t = torch.tensor(targets).reshape(-1)
    return Fn.cross_entropy(logits, t, ignore_index=-1, reduction='mean')


# ---------------------------------------------------------------- models: (config, gen, data, forward(mon) -> (ce, logits))

def vit_timm(base_seed):
    c = {'architecture': 'vit', 'model_type': 'vit', 'naming': 'timm', 'img_size': 8, 'patch_size': 4,
         'in_chans': 2, 'embed_dim': 8, 'depth': 2, 'num_heads': 2, 'mlp_hidden_dim': 12, 'act_layer': 'gelu',
         'qkv_bias': True, 'norm_layer': 'layernorm', 'norm_eps': 1e-6, 'pre_norm': False, 'class_token': True,
         'global_pool': 'token', 'num_classes': 4,
         'pretrained_cfg': {'input_size': [2, 8, 8], 'mean': [0.5, 0.5], 'std': [0.5, 0.5], 'crop_pct': 1.0}}
    D, L, H, F, I, P, C, K = (c[k] for k in ['embed_dim', 'depth', 'num_heads', 'mlp_hidden_dim', 'img_size',
                                             'patch_size', 'in_chans', 'num_classes'])
    N = (I // P) ** 2 + 1
    g = Gen(base_seed)
    g.add('cls_token', [1, 1, D], 0.5)
    g.add('pos_embed', [1, N, D], 0.5)
    g.add('patch_embed.proj.weight', [D, C, P, P], 0.25)
    g.add('patch_embed.proj.bias', [D], 0.25)
    for l in range(L):
        h = f'blocks.{l}.'
        g.norm(h + 'norm1', D)
        g.linear(h + 'attn.qkv', D, 3 * D)
        g.linear(h + 'attn.proj', D, D)
        g.norm(h + 'norm2', D)
        g.linear(h + 'mlp.fc1', D, F)
        g.linear(h + 'mlp.fc2', F, D)
    g.norm('norm', D)
    g.linear('head', D, K)

    def batch(seed, n):
        pix = torch.tensor(prng_values(seed, n * C * I * I, 2.0, 0.0)).reshape(n, C, I, I)
        labels = [int(v) for v in (prng_values(seed + 1, n, 1.0, 1.0) * K / 2).astype(int).clip(0, K - 1)]
        return {'images': {'count': n, 'seed': seed, 'scale': 2.0, 'offset': 0.0, 'bits': 16}, 'labels': labels}, \
            (pix, labels)

    def forward(T, data, mon):
        pix, labels = data
        B = pix.shape[0]
        eps = c['norm_eps']
        pe = Fn.conv2d(pix, T['patch_embed.proj.weight'], T['patch_embed.proj.bias'], stride=P)
        x = torch.cat([T['cls_token'].expand(B, 1, D), pe.flatten(2).transpose(1, 2)], 1) + T['pos_embed']
        for l in range(L):
            h = f'blocks.{l}.'
            a = layer_norm(x, T[h + 'norm1.weight'], T[h + 'norm1.bias'], eps)
            mon('qkv', a)
            q, k, v = lin(T, h + 'attn.qkv', a).split(D, dim=-1)
            o = attend(q, k, v, H, H, False)
            mon('proj', o)
            x = x + lin(T, h + 'attn.proj', o)
            a = layer_norm(x, T[h + 'norm2.weight'], T[h + 'norm2.bias'], eps)
            mon('fc1', a)
            u = gelu_erf(lin(T, h + 'mlp.fc1', a))
            mon('fc2', u)
            x = x + lin(T, h + 'mlp.fc2', u)
        xc = layer_norm(x[:, 0], T['norm.weight'], T['norm.bias'], eps)
        logits = lin(T, 'head', xc)
        return ce_loss(logits, labels), logits

    return c, g, batch, forward


def llama_hf(base_seed):
    c = {'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'hidden_size': 8, 'intermediate_size': 12,
         'num_hidden_layers': 2, 'num_attention_heads': 2, 'num_key_value_heads': 1, 'head_dim': 4,
         'vocab_size': 24, 'max_position_embeddings': 16, 'rms_norm_eps': 1e-5, 'rope_theta': 10000.0,
         'attention_bias': True, 'mlp_bias': False, 'hidden_act': 'silu', 'tie_word_embeddings': False,
         'bos_token_id': 1, 'eos_token_id': 2, 'torch_dtype': 'float32'}
    D, F, L, H, KV, hd, V = (c[k] for k in ['hidden_size', 'intermediate_size', 'num_hidden_layers',
                                            'num_attention_heads', 'num_key_value_heads', 'head_dim', 'vocab_size'])
    g = Gen(base_seed)
    g.add('model.embed_tokens.weight', [V, D], 1.0)
    for l in range(L):
        h = f'model.layers.{l}.'
        g.norm(h + 'input_layernorm', D, bias=False)
        g.linear(h + 'self_attn.q_proj', D, H * hd)
        g.linear(h + 'self_attn.k_proj', D, KV * hd)
        g.linear(h + 'self_attn.v_proj', D, KV * hd)
        g.linear(h + 'self_attn.o_proj', H * hd, D)
        g.norm(h + 'post_attention_layernorm', D, bias=False)
        g.linear(h + 'mlp.gate_proj', D, F, bias=False)
        g.linear(h + 'mlp.up_proj', D, F, bias=False)
        g.linear(h + 'mlp.down_proj', F, D, bias=False)
    g.norm('model.norm', D, bias=False)
    g.linear('lm_head', D, V, bias=False)
    tokens = [[1, 5, 23, 7, 0, 11, 3], [1, 9, 9, 14, 2, 20, 6]]
    targets = [[5, 23, 7, 0, 11, 3, 8], [9, 9, 14, -1, 20, 6, 17]]
    return c, g, lm_forward(c, g, D, F, L, H, KV, hd, 'llama', False), tokens, targets


def lm_forward(c, g, D, F, L, H, KV, hd, kind, interleaved):
    def forward(T, data, mon):
        tokens, targets = data
        ids = torch.tensor(tokens)
        B, S = ids.shape
        if kind == 'llama2c':
            x = T['tok_embeddings.weight'][ids]
        else:
            x = T['model.embed_tokens.weight'][ids]
        for l in range(L):
            if kind == 'llama2c':
                n1, n2 = f'layers.{l}.attention_norm.weight', f'layers.{l}.ffn_norm.weight'
                qn, kn, vn, on = (f'layers.{l}.attention.w{s}' for s in 'qkvo')
                gn, dn, un = (f'layers.{l}.feed_forward.w{s}' for s in '123')
                ab = mb = False
                eps, theta = 1e-5, 10000.0
            else:
                h = f'model.layers.{l}.'
                n1, n2 = h + 'input_layernorm.weight', h + 'post_attention_layernorm.weight'
                qn, kn, vn, on = (h + 'self_attn.' + s for s in ['q_proj', 'k_proj', 'v_proj', 'o_proj'])
                gn, un, dn = (h + 'mlp.' + s for s in ['gate_proj', 'up_proj', 'down_proj'])
                ab, mb = c['attention_bias'], c['mlp_bias']
                eps, theta = c['rms_norm_eps'], c['rope_theta']
            a = rms_norm(x, T[n1], eps)
            mon('qkv', a)
            q = rope(lin(T, qn, a, ab), S, H, hd, theta, interleaved)
            k = rope(lin(T, kn, a, ab), S, KV, hd, theta, interleaved)
            v = lin(T, vn, a, ab)
            o = attend(q, k, v, H, KV, True)
            mon('proj', o)
            x = x + lin(T, on, o, ab)
            a = rms_norm(x, T[n2], eps)
            mon('fc1', a)
            u = Fn.silu(lin(T, gn, a, mb)) * lin(T, un, a, mb)
            mon('fc2', u)
            x = x + lin(T, dn, u, mb)
        if kind == 'llama2c':
            x = rms_norm(x, T['norm.weight'], 1e-5)
            logits = x @ T['tok_embeddings.weight'].T
        else:
            x = rms_norm(x, T['model.norm.weight'], c['rms_norm_eps'])
            logits = x @ T['lm_head.weight'].T
        return ce_loss(logits, targets), logits

    return forward


def llama2c(base_seed):
    D, F, L, H, KV, V, S = 8, 12, 2, 2, 1, 20, 16
    hd = D // H
    c = {'dim': D, 'hidden_dim': F, 'n_layers': L, 'n_heads': H, 'n_kv_heads': KV, 'vocab_size': V, 'seq_len': S}
    g = Gen(base_seed)
    # llama2.c file order: tok, attention_norm x L, wq x L, wk, wv, wo, ffn_norm, w1, w2, w3, norm (shared head)
    g.add('tok_embeddings.weight', [V, D], 1.0)
    for l in range(L):
        g.add(f'layers.{l}.attention_norm.weight', [D], 0.25, offset=1.0)
    for s, (o, i) in zip('qkvo', [(D, D), (KV * hd, D), (KV * hd, D), (D, D)]):
        for l in range(L):
            g.add(f'layers.{l}.attention.w{s}.weight', [o, i], 0.5)
    for l in range(L):
        g.add(f'layers.{l}.ffn_norm.weight', [D], 0.25, offset=1.0)
    for s, (o, i) in zip('123', [(F, D), (D, F), (F, D)]):
        for l in range(L):
            g.add(f'layers.{l}.feed_forward.w{s}.weight', [o, i], 0.5)
    g.add('norm.weight', [D], 0.25, offset=1.0)
    # the C model names its linear weights "<lin name>.weight"; the forward above reads "<name>" as a prefix
    tokens = [[1, 4, 19, 7, 0, 11], [1, 3, 3, 12, 2, 9]]
    targets = [[4, 19, 7, 0, 11, 5], [3, 3, 12, 2, 9, 13]]
    return c, g, lm_forward(c, g, D, F, L, H, KV, hd, 'llama2c', True), tokens, targets


def gpt2(base_seed):
    c = {'architectures': ['GPT2LMHeadModel'], 'model_type': 'gpt2', 'n_embd': 8, 'n_layer': 2, 'n_head': 2,
         'n_positions': 12, 'n_ctx': 12, 'vocab_size': 20, 'n_inner': 16, 'activation_function': 'gelu_new',
         'layer_norm_epsilon': 1e-5, 'bos_token_id': 19, 'eos_token_id': 19, 'tie_word_embeddings': True,
         'torch_dtype': 'float32'}
    D, L, H, V, P, F = 8, 2, 2, 20, 12, 16
    g = Gen(base_seed)
    p = 'transformer.'
    g.add(p + 'wte.weight', [V, D], 1.0)
    g.add(p + 'wpe.weight', [P, D], 0.5)
    for l in range(L):
        h = f'{p}h.{l}.'
        g.norm(h + 'ln_1', D)
        g.linear(h + 'attn.c_attn', D, 3 * D, conv1d=True)
        g.linear(h + 'attn.c_proj', D, D, conv1d=True)
        g.norm(h + 'ln_2', D)
        g.linear(h + 'mlp.c_fc', D, F, conv1d=True)
        g.linear(h + 'mlp.c_proj', F, D, conv1d=True)
    g.norm(p + 'ln_f', D)
    tokens = [[19, 3, 17, 5, 0, 8], [19, 12, 12, 1, 6, 4]]
    targets = [[3, 17, 5, 0, 8, 2], [12, 12, 1, 6, 4, 11]]

    def forward(T, data, mon):
        toks, tg = data
        ids = torch.tensor(toks)
        S = ids.shape[1]
        x = T[p + 'wte.weight'][ids] + T[p + 'wpe.weight'][torch.arange(S)]
        for l in range(L):
            h = f'{p}h.{l}.'
            a = layer_norm(x, T[h + 'ln_1.weight'], T[h + 'ln_1.bias'], 1e-5)
            mon('qkv', a)
            q, k, v = conv1d(T, h + 'attn.c_attn', a).split(D, dim=-1)
            o = attend(q, k, v, H, H, True)
            mon('proj', o)
            x = x + conv1d(T, h + 'attn.c_proj', o)
            a = layer_norm(x, T[h + 'ln_2.weight'], T[h + 'ln_2.bias'], 1e-5)
            mon('fc1', a)
            u = gelu_tanh(conv1d(T, h + 'mlp.c_fc', a))
            mon('fc2', u)
            x = x + conv1d(T, h + 'mlp.c_proj', u)
        x = layer_norm(x, T[p + 'ln_f.weight'], T[p + 'ln_f.bias'], 1e-5)
        logits = x @ T[p + 'wte.weight'].T
        return ce_loss(logits, tg), logits

    return c, g, forward, tokens, targets


def opt_post(base_seed):
    c = {'architectures': ['OPTForCausalLM'], 'model_type': 'opt', 'hidden_size': 8, 'word_embed_proj_dim': 6,
         'num_hidden_layers': 2, 'num_attention_heads': 2, 'ffn_dim': 12, 'vocab_size': 20,
         'max_position_embeddings': 12, 'do_layer_norm_before': False, 'enable_bias': True,
         'layer_norm_elementwise_affine': True, 'activation_function': 'relu', 'bos_token_id': 2,
         'eos_token_id': 2, 'pad_token_id': 1, 'tie_word_embeddings': True, 'torch_dtype': 'float32'}
    D, E, L, H, F, V, P = 8, 6, 2, 2, 12, 20, 12
    g = Gen(base_seed)
    p = 'model.decoder.'
    g.add(p + 'embed_tokens.weight', [V, E], 1.0)
    g.add(p + 'embed_positions.weight', [P + 2, D], 0.5)
    g.linear(p + 'project_in', E, D, bias=False)
    g.linear(p + 'project_out', D, E, bias=False)
    for l in range(L):
        h = f'{p}layers.{l}.'
        for r in ['q_proj', 'k_proj', 'v_proj', 'out_proj']:
            g.linear(h + 'self_attn.' + r, D, D)
        g.norm(h + 'self_attn_layer_norm', D)
        g.linear(h + 'fc1', D, F)
        g.linear(h + 'fc2', F, D)
        g.norm(h + 'final_layer_norm', D)
    tokens = [[2, 7, 13, 5, 0, 9], [2, 11, 4, 4, 18, 3]]
    targets = [[7, 13, 5, 0, 9, 6], [11, 4, 4, 18, 3, 15]]

    def forward(T, data, mon):
        toks, tg = data
        ids = torch.tensor(toks)
        S = ids.shape[1]
        x = lin(T, p + 'project_in', T[p + 'embed_tokens.weight'][ids], bias=False)
        x = x + T[p + 'embed_positions.weight'][torch.arange(S) + 2]
        for l in range(L):
            h = f'{p}layers.{l}.'
            mon('qkv', x)
            q, k, v = (lin(T, h + 'self_attn.' + r, x) for r in ['q_proj', 'k_proj', 'v_proj'])
            o = attend(q, k, v, H, H, True)
            mon('proj', o)
            x = layer_norm(x + lin(T, h + 'self_attn.out_proj', o), T[h + 'self_attn_layer_norm.weight'],
                           T[h + 'self_attn_layer_norm.bias'], 1e-5)
            mon('fc1', x)
            u = torch.relu(lin(T, h + 'fc1', x))
            mon('fc2', u)
            x = layer_norm(x + lin(T, h + 'fc2', u), T[h + 'final_layer_norm.weight'], T[h + 'final_layer_norm.bias'],
                           1e-5)
        x = lin(T, p + 'project_out', x, bias=False)
        logits = x @ T[p + 'embed_tokens.weight'].T
        return ce_loss(logits, tg), logits

    return c, g, forward, tokens, targets


# ---------------------------------------------------------------- output

def fmt(t):
    return [float('%.9g' % v) for v in t.detach().reshape(-1).tolist()]


def loss_and_grads(g, forward, data, lam, tau, kinds, rel):
    for t in g.T.values():
        t.grad = None
    mon = Monitor(tau, kinds, rel)
    ce, _ = forward(g.T, data, mon)
    outl = mon.total()
    loss = ce + lam * outl
    loss.backward()
    grads = {n: fmt(g.T[n].grad if g.T[n].grad is not None else torch.zeros_like(g.T[n])) for n in g.order}
    return float(loss), float(ce), float(outl), grads


def write(name, cfg, g, golden):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    if cfg is not None and ('architectures' in cfg or 'architecture' in cfg):
        with open(os.path.join(d, 'config.json'), 'w') as f:
            json.dump(cfg, f, indent=1)
            f.write('\n')
    man = {'prng': 'splitmix64((seed << 32) + i) >> (64 - bits) = m; value = offset + (m - 2^(bits-1)) / '
                   '2^(bits-1) * scale; i over the stored shape in row-major order', 'tensors': g.entries}
    if cfg is not None and 'architectures' not in cfg and 'architecture' not in cfg:
        man['llama2c'] = cfg
    with open(os.path.join(d, 'manifest.json'), 'w') as f:
        json.dump(man, f, indent=0)
        f.write('\n')
    with open(os.path.join(d, 'golden.json'), 'w') as f:
        json.dump(golden, f, separators=(',', ':'))
        f.write('\n')


def lm_case(name, maker, seed, lam, tau, kinds, rel):
    cfg, g, forward, tokens, targets = maker(seed)
    loss, ce, outl, grads = loss_and_grads(g, forward, (tokens, targets), lam, tau, kinds, rel)
    golden = {'tokens': tokens, 'targets': targets, 'lambda': lam, 'tau': tau, 'monitor': ','.join(kinds) or 'none',
              'outlier_loss': 'rel' if rel else 'abs', 'loss': loss, 'ce': ce, 'outlier': outl, 'grads': grads}
    write(name, cfg, g, golden)
    print(f'{name}: loss {loss:.6f} (ce {ce:.6f}, outlier {outl:.6f}), {sum(len(v) for v in grads.values())} grads')


def vit_cases():
    cfg, g, batch, forward = vit_timm(7100)
    meta, data = batch(7190, 5)
    lam, tau, kinds = 0.5, 1.5, ['qkv', 'proj', 'fc1', 'fc2']
    loss, ce, outl, grads = loss_and_grads(g, forward, data, lam, tau, kinds, False)
    golden = dict(meta, **{'lambda': lam, 'tau': tau, 'monitor': ','.join(kinds), 'outlier_loss': 'abs', 'loss': loss,
                           'ce': ce, 'outlier': outl, 'grads': grads})
    # the scale-invariant variant on the same batch (loss and gradients)
    lr_, cr_, or_, gr_ = loss_and_grads(g, forward, data, 0.2, 1.0, kinds, True)
    golden['rel'] = {'lambda': 0.2, 'tau': 1.0, 'monitor': ','.join(kinds), 'outlier_loss': 'rel', 'loss': lr_,
                     'ce': cr_, 'outlier': or_, 'grads': gr_}

    # 10 AdamW steps over 3 fixed batches (step s uses batch s % 3), then the loss on batch 0
    batches = [batch(7300 + 10 * i, 4) for i in range(3)]
    opt = {'lr': 0.01, 'beta1': 0.9, 'beta2': 0.999, 'eps': 1e-8, 'weight_decay': 0.1, 'clip': 0.5, 'warmup': 3,
           'steps': 10}
    lam_c, tau_c = 0.3, 2.0  # the curve uses the scale-invariant outlier loss
    g2 = vit_timm(7100)[1]  # fresh weights
    no_decay = {'cls_token', 'pos_embed'}
    dec = [g2.T[n] for n in g2.order if g2.T[n].dim() >= 2 and n not in no_decay]
    nodec = [g2.T[n] for n in g2.order if not (g2.T[n].dim() >= 2 and n not in no_decay)]
    optim = torch.optim.AdamW([{'params': dec, 'weight_decay': opt['weight_decay']},
                               {'params': nodec, 'weight_decay': 0.0}], lr=opt['lr'],
                              betas=(opt['beta1'], opt['beta2']), eps=opt['eps'])
    curve, lrs, norms = [], [], []
    for s in range(opt['steps']):
        if s < opt['warmup']:
            lr = opt['lr'] * (s + 1) / opt['warmup']
        else:
            lr = opt['lr'] * 0.5 * (1 + math.cos(math.pi * (s - opt['warmup']) / (opt['steps'] - opt['warmup'])))
        for grp in optim.param_groups:
            grp['lr'] = lr
        optim.zero_grad()
        mon = Monitor(tau_c, kinds, True)
        ce_s, _ = forward(g2.T, batches[s % 3][1], mon)
        loss_s = ce_s + lam_c * mon.total()
        loss_s.backward()
        n = torch.nn.utils.clip_grad_norm_(list(g2.T.values()), opt['clip'])
        optim.step()
        curve.append(float(loss_s))
        lrs.append(lr)
        norms.append(float(n))
    mon = Monitor(tau_c, kinds, True)
    ce_f, _ = forward(g2.T, batches[0][1], mon)
    final = float(ce_f + lam_c * mon.total())
    golden['curve'] = {'opt': opt, 'lambda': lam_c, 'tau': tau_c, 'monitor': ','.join(kinds), 'outlier_loss': 'rel',
                       'batches': [b[0] for b in batches], 'loss': curve, 'lr': lrs, 'grad_norm': norms,
                       'final_loss': final,
                       'final_params': {n: fmt(g2.T[n]) for n in ['head.weight', 'blocks.1.mlp.fc2.bias', 'pos_embed']}}
    write('vit_timm', cfg, g, golden)
    print(f'vit_timm: loss {loss:.6f} (ce {ce:.6f}, outlier {outl:.6f}); curve {["%.5f" % v for v in curve]} '
          f'final {final:.6f}; clip active at {sum(v > opt["clip"] for v in norms)} of 10 steps')


if __name__ == '__main__':
    vit_cases()
    lm_case('llama', llama_hf, 7400, 0.0, 3.0, [], True)
    lm_case('llama2c', llama2c, 7500, 0.25, 1.0, ['fc2', 'proj'], False)
    lm_case('gpt2', gpt2, 7600, 0.3, 1.25, ['qkv', 'fc2'], True)
    lm_case('opt_post', opt_post, 7700, 0.4, 1.0, ['qkv', 'proj', 'fc1', 'fc2'], True)
