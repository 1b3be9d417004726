#!/usr/bin/env python3
"""A synthetic LLaMA-shaped model (HF layout: config.json + model.safetensors) with random weights, to
measure quantization time and memory at a real model's shape without downloading one. Defaults: the
TinyLlama-1.1B shape (dim 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632, vocab 32000), bf16.

  /usr/bin/python3 bench/make_llama_shape.py OUT_DIR [--dim 2048] [--layers 22] [--heads 32] [--kv-heads 4]
      [--ffn 5632] [--vocab 32000] [--ctx 2048] [--dtype bf16|f32] [--seed 1]

Weights ~ N(0, 0.02) (norms 1), written one tensor at a time (memory: the largest tensor)."""
import argparse, json, os, struct
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument('out')
ap.add_argument('--dim', type=int, default=2048)
ap.add_argument('--layers', type=int, default=22)
ap.add_argument('--heads', type=int, default=32)
ap.add_argument('--kv-heads', type=int, default=4)
ap.add_argument('--ffn', type=int, default=5632)
ap.add_argument('--vocab', type=int, default=32000)
ap.add_argument('--ctx', type=int, default=2048)
ap.add_argument('--dtype', choices=['bf16', 'f32'], default='bf16')
ap.add_argument('--seed', type=int, default=1)
a = ap.parse_args()
hd = a.dim // a.heads
shapes = [('model.embed_tokens.weight', (a.vocab, a.dim))]
for l in range(a.layers):
    p = f'model.layers.{l}.'
    shapes += [(p + 'input_layernorm.weight', (a.dim,)), (p + 'post_attention_layernorm.weight', (a.dim,)),
               (p + 'self_attn.q_proj.weight', (a.heads * hd, a.dim)),
               (p + 'self_attn.k_proj.weight', (a.kv_heads * hd, a.dim)),
               (p + 'self_attn.v_proj.weight', (a.kv_heads * hd, a.dim)),
               (p + 'self_attn.o_proj.weight', (a.dim, a.heads * hd)),
               (p + 'mlp.gate_proj.weight', (a.ffn, a.dim)), (p + 'mlp.up_proj.weight', (a.ffn, a.dim)),
               (p + 'mlp.down_proj.weight', (a.dim, a.ffn))]
shapes += [('model.norm.weight', (a.dim,)), ('lm_head.weight', (a.vocab, a.dim))]
es = 2 if a.dtype == 'bf16' else 4
header, off = {}, 0
for name, shp in shapes:
    n = int(np.prod(shp)) * es
    header[name] = {'dtype': 'BF16' if a.dtype == 'bf16' else 'F32', 'shape': list(shp), 'data_offsets': [off, off + n]}
    off += n
hb = json.dumps(header, separators=(',', ':')).encode()
hb += b' ' * (-len(hb) % 8)
os.makedirs(a.out, exist_ok=True)
rng = np.random.default_rng(a.seed)
with open(os.path.join(a.out, 'model.safetensors'), 'wb') as f:
    f.write(struct.pack('<Q', len(hb)) + hb)
    for name, shp in shapes:
        x = np.ones(shp, np.float32) if name.endswith('norm.weight') else rng.standard_normal(shp, np.float32) * 0.02
        if a.dtype == 'bf16':  # round to nearest even on the upper 16 bits
            u = x.view(np.uint32)
            x = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        f.write(x.tobytes())
cfg = {'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'vocab_size': a.vocab, 'hidden_size': a.dim,
       'intermediate_size': a.ffn, 'num_hidden_layers': a.layers, 'num_attention_heads': a.heads,
       'num_key_value_heads': a.kv_heads, 'max_position_embeddings': a.ctx, 'rms_norm_eps': 1e-5,
       'rope_theta': 10000.0, 'hidden_act': 'silu', 'tie_word_embeddings': False, 'bos_token_id': 1,
       'eos_token_id': 2, 'attention_bias': False, 'torch_dtype': 'bfloat16' if a.dtype == 'bf16' else 'float32'}
with open(os.path.join(a.out, 'config.json'), 'w') as f:
    json.dump(cfg, f, indent=2)
print(f'{a.out}: {off / 1e9:.2f} GB of {a.dtype} weights, {sum(int(np.prod(s)) for _, s in shapes) / 1e9:.3f} G parameters')
