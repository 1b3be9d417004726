#!/usr/bin/python3
"""Write a synthetic LLaMA-2-7B-shaped model (Hugging Face layout) with N layers, for memory and speed
measurements of models bigger than memory (docs/RESULTS.md §15).

    bench/make_llama7b_shape.py OUT_DIR N_LAYERS [--dim 4096 --ffn 11008 --heads 32 --kv-heads H --vocab 32000
                                                  --ctx 4096 --tied]

Other shapes by option, e.g. TinyLlama-1.1B: N_LAYERS 22 --dim 2048 --ffn 5632 --kv-heads 4 --ctx 2048; Llama-3.2-1B:
N_LAYERS 16 --dim 2048 --ffn 8192 --kv-heads 8 --vocab 128256 --tied (--tied: no lm_head, the head is the embedding
table, tie_word_embeddings).

OUT_DIR gets config.json, model.safetensors.index.json and one bf16 safetensors shard per layer
(plus one for the embeddings and one for the final norm and head), as Hugging Face writes 7B models.
The weights are deterministic (numpy PCG64, seed = a hash of the tensor's name) and have the scale of a
trained model: linear weights N(0, 1/sqrt(in)) (std 0.0156 for in = 4096), embeddings N(0, 0.02), RMSNorm
weights near 1. Only numpy; memory stays at about one tensor.
"""
import argparse
import json
import os
import struct
import zlib

import numpy as np


def bf16_bytes(a):
    """float32 -> bf16 with round-to-nearest-even, as raw little-endian bytes."""
    u = a.astype(np.float32).view(np.uint32)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype("<u2").tobytes()


def tensor(name, shape, kind):
    rng = np.random.Generator(np.random.PCG64(zlib.crc32(name.encode())))
    if kind == "norm":
        return 1.0 + 0.05 * rng.standard_normal(shape, dtype=np.float32)
    std = 0.02 if kind == "embed" else 1.0 / np.sqrt(shape[1])
    out = np.empty(shape, dtype=np.float32)
    step = max(1, (1 << 24) // shape[1])  # rows per chunk: 64 MiB of float32 at a time
    for r in range(0, shape[0], step):
        rng.standard_normal(out[r:r + step].shape, dtype=np.float32, out=out[r:r + step])
    out *= np.float32(std)
    return out


def write_shard(path, specs):
    """specs: [(name, shape, kind)], written in order, bf16."""
    header, off = {}, 0
    for name, shape, _ in specs:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape, kind in specs:
            f.write(bf16_bytes(tensor(name, shape, kind)))
    os.replace(tmp, path)
    return off


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("layers", type=int)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--ffn", type=int, default=11008)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=0, help="key/value heads (GQA); default: --heads")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--tied", action="store_true", help="no lm_head: the head is the embedding table")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    d, f, v = a.dim, a.ffn, a.vocab
    kvh = a.kv_heads or a.heads
    kv = d // a.heads * kvh  # rows of k_proj / v_proj
    shards = [[("model.embed_tokens.weight", (v, d), "embed")]]
    for l in range(a.layers):
        p = f"model.layers.{l}."
        shards.append([(p + "input_layernorm.weight", (d,), "norm"),
                       (p + "self_attn.q_proj.weight", (d, d), "lin"),
                       (p + "self_attn.k_proj.weight", (kv, d), "lin"),
                       (p + "self_attn.v_proj.weight", (kv, d), "lin"),
                       (p + "self_attn.o_proj.weight", (d, d), "lin"),
                       (p + "post_attention_layernorm.weight", (d,), "norm"),
                       (p + "mlp.gate_proj.weight", (f, d), "lin"),
                       (p + "mlp.up_proj.weight", (f, d), "lin"),
                       (p + "mlp.down_proj.weight", (d, f), "lin")])
    shards.append([("model.norm.weight", (d,), "norm")] + ([] if a.tied else [("lm_head.weight", (v, d), "lin")]))
    n = len(shards)
    weight_map, total = {}, 0
    for i, specs in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        path = os.path.join(a.out, fn)
        if not os.path.exists(path):  # a rerun completes an interrupted one
            write_shard(path, specs)
        for name, shape, _ in specs:
            weight_map[name] = fn
            total += int(np.prod(shape)) * 2
        print(fn, flush=True)
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh, indent=1)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": v, "hidden_size": d,
           "intermediate_size": f, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
           "num_key_value_heads": kvh, "max_position_embeddings": a.ctx, "rms_norm_eps": 1e-05,
           "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": a.tied, "bos_token_id": 1,
           "eos_token_id": 2, "attention_bias": False, "torch_dtype": "bfloat16"}
    with open(os.path.join(a.out, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=1)
    print(f"wrote {a.out}: {a.layers} layers, {total / 1e9:.2f} GB of bf16 weights")


if __name__ == "__main__":
    main()
