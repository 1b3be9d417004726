#!/usr/bin/env python3
"""GGUF references, written with llama.cpp's own gguf-py (build-ref/llama.cpp/gguf-py, installed by
scripts/refs.sh), never with ptq's code. Debian /usr/bin/python3 with numpy.

  vocab REFS OUT
      What gguf-py reads from the real vocabularies build-ref/llama.cpp/models/ggml-vocab-{llama-spm,llama-bpe}.gguf
      (tokens/test_gguf.c compares ptq_gguf_tok_spec with it), one text file per vocabulary, OUT/<name>.golden:
          model M / pre P / n_tokens N / n_merges N / scores yes|no / types yes|no
          key NAME VALUE        tokenizer.ggml.{bos,eos,unknown,padding}_token_id and add_{bos,eos}_token,
                                add_space_prefix (VALUE "absent" when the file has no such key)
          token ID HEX SCORE TYPE   a sample of tokens (HEX: the UTF-8 bytes; SCORE "-" when no scores)
          merge IDX HEX             a sample of merges
      Committed in tests/data/gguf/.

  model REFS OUT [SHAKESPEARE_DIR]
      LLaMA models as GGUF, converted as llama.cpp's convert_hf_to_gguf.py converts a LlamaForCausalLM (its keys,
      its tensor names, and its Q/K row permutation, written here from its definition: within each head, Hugging
      Face row j*d/2 + i becomes row 2i + j), through gguf-py's GGUFWriter and quants (F16, BF16, Q8_0), into OUT
      (a temporary folder: test_gguf.c and e2e_gguf.sh run this at test time):
        synth/                      a small synthetic LLaMA in Hugging Face layout (config.json + model.safetensors,
                                    float32; dim 64, 4 heads, 2 KV heads, FFN 256, 2 layers, vocab 96, tied head)
        synth-TYPE.gguf             it as GGUF, TYPE in f32 f16 bf16 q8_0 (no output tensor: tied; tokenizer model
                                    "no_vocab", llama.cpp's name for none)
        synth-TYPE-deq/             Hugging Face layout again, holding the weights gguf-py dequantizes from
                                    synth-TYPE.gguf (un-permuted back): ptq must give the same logits on both
        synth-bad-NAME.gguf         broken variants: arch (general.architecture "qwen2"), iq4nl (ffn_down in
                                    IQ4_NL, a type ptq does not read), missing (no blk.1.ffn_up), extra (an
                                    attn_q.scale; a bias would be read), shape (attn_k too wide), nan (a NaN in
                                    blk.0.ffn_gate), layers
                                    (block_count 3), moe (expert_count 8), rope (rope.scaling.type linear), vocab
                                    (a token list shorter than token_embd), vocabsize (llama.vocab_size one more
                                    than token_embd's rows)
        shakespeare-TYPE.gguf       SHAKESPEARE_DIR's model.safetensors (llama-shakespeare-256, untied head) in f32
                                    and q8_0, with its tokenizer.bin as tokenizer.ggml.* (SentencePiece "llama": the
                                    tokens with their spaces back as U+2581, scores, types, BOS 1, EOS 2, UNK 0)
        shakespeare-q8_0-deq/       the dequantized Q8_0 weights in Hugging Face layout (+ config.json)
        shakespeare-tied-q4_k.gguf  the f32 model with no output tensor (tied head) and a token_embd of random Q4_K
                                    blocks (small steps)
"""
import json
import os
import struct
import sys

import numpy as np


def gguf_module(refs):
    sys.path.insert(0, os.path.join(refs, "llama.cpp", "gguf-py"))
    import gguf  # noqa: E402
    import gguf.quants  # noqa: E402,F401

    return gguf


def field_value(r, key):
    """A scalar, string or array value of a GGUF field through gguf-py (None when absent)."""
    f = r.fields.get(key)
    if f is None:
        return None
    return f.contents()


def write_vocab_golden(gguf, path, out):
    r = gguf.GGUFReader(path)
    tokens = field_value(r, "tokenizer.ggml.tokens")
    scores = field_value(r, "tokenizer.ggml.scores")
    types = field_value(r, "tokenizer.ggml.token_type")
    merges = field_value(r, "tokenizer.ggml.merges") or []
    n = len(tokens)
    lines = [
        "model %s" % field_value(r, "tokenizer.ggml.model"),
        "pre %s" % (field_value(r, "tokenizer.ggml.pre") or ""),
        "n_tokens %d" % n,
        "n_merges %d" % len(merges),
        "scores %s" % ("yes" if scores is not None else "no"),
        "types %s" % ("yes" if types is not None else "no"),
    ]
    for k in ("bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id", "add_bos_token",
              "add_eos_token", "add_space_prefix"):
        v = field_value(r, "tokenizer.ggml." + k)
        lines.append("key %s %s" % (k, "absent" if v is None else int(v)))
    ids = sorted(set([0, 1, 2, 3, 10, 13, 29, 100, 255, 256, 259, 1000, 15043, 22557, 29871, 12345, 31999, 40000,
                      100000, 128000, 128001, 128255, n - 1] + list(range(7, n, n // 37))))
    for i in ids:
        if i >= n:
            continue
        sc = "-" if scores is None else repr(float(scores[i]))
        ty = "-" if types is None else str(int(types[i]))
        lines.append("token %d %s %s %s" % (i, tokens[i].encode("utf-8").hex(), sc, ty))
    for i in sorted(set([0, 1, 2, len(merges) - 1] + list(range(5, len(merges), 9973)))):
        if 0 <= i < len(merges):
            lines.append("merge %d %s" % (i, merges[i].encode("utf-8").hex()))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- models

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + end], dtype="<f4").reshape(e["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def permute(w, n_head):
    """HF rotate-half rows -> ggml's interleaved rows, as LlamaModel.permute in llama.cpp's converter."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


HF_TO_GGUF = [("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
              ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
              ("post_attention_layernorm", "ffn_norm"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
              ("mlp.down_proj", "ffn_down")]


def gguf_tensors(hf, cfg):
    """HF tensors -> (gguf name, array in ggml row order) in the converter's order."""
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    out = [("token_embd.weight", hf["model.embed_tokens.weight"])]
    for l in range(cfg["num_hidden_layers"]):
        for a, b in HF_TO_GGUF:
            w = hf["model.layers.%d.%s.weight" % (l, a)]
            if b == "attn_q":
                w = permute(w, nh)
            elif b == "attn_k":
                w = permute(w, nkv)
            out.append(("blk.%d.%s.weight" % (l, b), w))
    out.append(("output_norm.weight", hf["model.norm.weight"]))
    if "lm_head.weight" in hf and not cfg.get("tie_word_embeddings", False):
        out.append(("output.weight", hf["lm_head.weight"]))
    return out


def to_hf(gg, cfg):
    """The inverse of gguf_tensors (dequantized arrays back to Hugging Face names and row order)."""
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    inv = {b: a for a, b in HF_TO_GGUF}
    hf = {"model.embed_tokens.weight": gg["token_embd.weight"], "model.norm.weight": gg["output_norm.weight"]}
    if "output.weight" in gg:
        hf["lm_head.weight"] = gg["output.weight"]
    for name, w in gg.items():
        if not name.startswith("blk."):
            continue
        _, l, b, _ = name.split(".")
        if b == "attn_q":
            w = unpermute(w, nh)
        elif b == "attn_k":
            w = unpermute(w, nkv)
        hf["model.layers.%s.%s.weight" % (l, inv[b])] = w
    return hf


def stored_type(gguf, name, qtype):
    """llama.cpp's converter keeps 1-D tensors (norms) in F32 whatever the file type."""
    return gguf.GGMLQuantizationType.F32 if name.endswith("norm.weight") else qtype


def random_q4k(gguf, shape, seed):
    """Q4_K blocks of random codes and sub-block scales with small fp16 steps d, dmin (gguf-py cannot quantize
    into Q4_K): values d*sc*q - dmin*m below 0.2 in magnitude."""
    rng = np.random.default_rng(seed)
    t = gguf.GGMLQuantizationType.Q4_K
    q = rng.integers(0, 256, size=gguf.quant_shape_to_byte_shape(shape, t), dtype=np.uint8)
    blocks = q.reshape(-1, 144)
    blocks[:, 0:2] = rng.uniform(1e-4, 2e-4, size=blocks.shape[0]).astype(np.float16).view(np.uint8).reshape(-1, 2)
    blocks[:, 2:4] = rng.uniform(0, 1e-4, size=blocks.shape[0]).astype(np.float16).view(np.uint8).reshape(-1, 2)
    return q


def write_gguf(gguf, path, cfg, tensors, qtype, vocab=None, bad=None, q4k=()):
    """tensors: [(name, float32 array)]; returns {name: dequantized float32 array} as gguf-py reads it back.
    q4k: names written as random_q4k blocks instead (of the array's shape)."""
    arch = "qwen2" if bad == "arch" else "llama"
    w = gguf.GGUFWriter(path, arch)
    nh = cfg["num_attention_heads"]
    w.add_name("ptq test model")
    w.add_context_length(cfg.get("max_position_embeddings", 256))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"] + (1 if bad == "layers" else 0))
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(cfg.get("num_key_value_heads", nh))
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    w.add_file_type({"F32": 0, "F16": 1, "Q8_0": 7, "BF16": 32}[qtype.name])
    w.add_vocab_size(cfg["vocab_size"] + (1 if bad == "vocabsize" else 0))
    w.add_rope_dimension_count(cfg["hidden_size"] // nh)
    if bad == "moe":
        w.add_expert_count(8)
    if bad == "rope":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    if not vocab:  # llama.cpp needs a tokenizer key: "no_vocab" is its model without one
        w.add_tokenizer_model("no_vocab")
    else:
        tokens, scores, types = vocab
        if bad == "vocab":
            tokens, scores, types = tokens[:-1], scores[:-1], types[:-1]
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
    deq = {}
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype=np.float32)
        if bad == "missing" and name == "blk.1.ffn_up.weight":
            continue
        if bad == "shape" and name == "blk.0.attn_k.weight":
            a = np.concatenate([a, a[:32]], axis=0)
        if bad == "nan" and name == "blk.0.ffn_gate.weight":
            a = a.copy()
            a[3, 5] = np.nan
        t = stored_type(gguf, name, qtype)
        if name in q4k:
            q = random_q4k(gguf, a.shape, len(name))
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q4_K)
            continue
        if bad == "iq4nl" and name == "blk.0.ffn_down.weight":
            t = gguf.GGMLQuantizationType.IQ4_NL
            q = np.random.default_rng(1).integers(0, 256, size=gguf.quant_shape_to_byte_shape(a.shape, t),
                                                  dtype=np.uint8)
            w.add_tensor(name, q, raw_dtype=t)
            continue
        q = gguf.quants.quantize(a, t)
        if t in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            w.add_tensor(name, q)
        else:
            w.add_tensor(name, q, raw_dtype=t)
        deq[name] = gguf.quants.dequantize(q, t).reshape(a.shape).astype(np.float32)
        if bad == "extra" and name == "blk.0.attn_q.weight":
            w.add_tensor("blk.0.attn_q.scale", np.zeros(a.shape[0], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return deq


def synth_model(seed=0):
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 96, "hidden_size": 64,
           "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
           "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2}
    rng = np.random.default_rng(seed)
    d, h, v, kv = 64, 256, 96, 2 * 16

    def r(*shape, scale=0.08):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    hf = {"model.embed_tokens.weight": r(v, d, scale=0.5), "model.norm.weight": 1 + r(d, scale=0.1)}
    for l in range(2):
        p = "model.layers.%d." % l
        hf[p + "input_layernorm.weight"] = 1 + r(d, scale=0.1)
        hf[p + "post_attention_layernorm.weight"] = 1 + r(d, scale=0.1)
        hf[p + "self_attn.q_proj.weight"] = r(d, d, scale=0.3)
        hf[p + "self_attn.k_proj.weight"] = r(kv, d, scale=0.3)
        hf[p + "self_attn.v_proj.weight"] = r(kv, d)
        hf[p + "self_attn.o_proj.weight"] = r(d, d)
        hf[p + "mlp.gate_proj.weight"] = r(h, d)
        hf[p + "mlp.up_proj.weight"] = r(h, d)
        hf[p + "mlp.down_proj.weight"] = r(d, h)
    return cfg, hf


def write_hf_dir(path, cfg, hf):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    write_safetensors(os.path.join(path, "model.safetensors"), hf)


def llama2c_vocab(path):
    """tokenizer.bin (llama2.c's export of a SentencePiece model) -> tokens, scores, types as the converter would
    write them from the SentencePiece model: llama2.c's export turned U+2581 into spaces and wrapped BOS/EOS in
    newlines; both are undone here."""
    with open(path, "rb") as f:
        raw = f.read()
    off, tokens, scores = 4, [], []
    while off < len(raw):
        score, n = struct.unpack_from("<fi", raw, off)
        off += 8
        tokens.append(raw[off:off + n].decode("utf-8"))
        scores.append(score)
        off += n
    types = []
    for i, t in enumerate(tokens):
        if i == 0:
            types.append(2)  # UNKNOWN
        elif i in (1, 2):
            tokens[i] = t.strip()
            types.append(3)  # CONTROL
        elif len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            types.append(6)  # BYTE
        else:
            tokens[i] = t.replace(" ", "\u2581")
            types.append(1)  # NORMAL
    return tokens, scores, types


def write_models(gguf, out, shakespeare):
    Q = gguf.GGMLQuantizationType
    types = {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0}
    os.makedirs(out, exist_ok=True)
    cfg, hf = synth_model()
    write_hf_dir(os.path.join(out, "synth"), cfg, hf)
    tensors = gguf_tensors(hf, cfg)
    for tname, qt in types.items():
        deq = write_gguf(gguf, os.path.join(out, "synth-%s.gguf" % tname), cfg, tensors, qt)
        if tname != "f32":
            write_hf_dir(os.path.join(out, "synth-%s-deq" % tname), cfg, to_hf(deq, cfg))
    for bad in ("arch", "iq4nl", "missing", "extra", "shape", "nan", "layers", "moe", "rope", "vocab", "vocabsize"):
        vocab = None
        if bad == "vocab":
            vocab = (["<unk>", "<s>", "</s>"] + ["t%d" % i for i in range(93)], [0.0] * 96, [2, 3, 3] + [1] * 93)
        write_gguf(gguf, os.path.join(out, "synth-bad-%s.gguf" % bad), cfg, tensors, Q.F32, vocab=vocab, bad=bad)
    if shakespeare:
        with open(os.path.join(shakespeare, "config.json")) as f:
            scfg = json.load(f)
        shf = read_safetensors(os.path.join(shakespeare, "model.safetensors"))
        vocab = llama2c_vocab(os.path.join(shakespeare, "tokenizer.bin"))
        st = gguf_tensors(shf, scfg)
        write_gguf(gguf, os.path.join(out, "shakespeare-f32.gguf"), scfg, st, Q.F32, vocab=vocab)
        deq = write_gguf(gguf, os.path.join(out, "shakespeare-q8_0.gguf"), scfg, st, Q.Q8_0, vocab=vocab)
        write_hf_dir(os.path.join(out, "shakespeare-q8_0-deq"), scfg, to_hf(deq, scfg))
        # no output tensor (the head tied to token_embd) and token_embd in Q4_K: ptq keeps the table in its blocks
        # for the lookups and the head alike
        write_gguf(gguf, os.path.join(out, "shakespeare-tied-q4_k.gguf"), scfg,
                   [x for x in st if x[0] != "output.weight"], Q.F32, vocab=vocab, q4k=("token_embd.weight",))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "vocab" and len(sys.argv) == 4:
        refs, out = sys.argv[2], sys.argv[3]
        gguf = gguf_module(refs)
        os.makedirs(out, exist_ok=True)
        for name in ("llama-spm", "llama-bpe"):
            src = os.path.join(refs, "llama.cpp", "models", "ggml-vocab-%s.gguf" % name)
            write_vocab_golden(gguf, src, os.path.join(out, name + ".golden"))
    elif cmd == "model" and len(sys.argv) in (4, 5):
        gguf = gguf_module(sys.argv[2])
        write_models(gguf, sys.argv[3], sys.argv[4] if len(sys.argv) == 5 else None)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
