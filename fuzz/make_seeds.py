#!/usr/bin/env python3
"""Write the seed corpus of every fuzz harness: small valid files built from the sample data (DATA, usually
../shared/data) and the test manifests in tests/data. Usage: make_seeds.py DATA OUT (OUT/<harness>/ gets
the seeds; the .ptq seeds are written by scripts/fuzz.sh with the ptq CLI). Standard library only."""
import gzip
import json
import os
import struct
import sys

SEP = b"\n#ptq-fuzz-split#\n"  # FZ_SEP in fuzz/fuzz_util.h
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I8": 1, "U8": 1, "I32": 4, "I64": 8}
PACK = {"F32": "<f", "F64": "<d", "F16": "<e"}


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def values(dtype, n, seed):
    """n small deterministic values of dtype as bytes (BF16: the top half of F32)."""
    vals = [((i * 7 + seed) % 13 - 6) / 16.0 for i in range(n)]
    if dtype == "BF16":
        return b"".join(struct.pack("<f", v)[2:] for v in vals)
    if dtype in PACK:
        return b"".join(struct.pack(PACK[dtype], v) for v in vals)
    return bytes((i * 7 + seed) % 5 for i in range(n * SIZES[dtype]))


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape). Returns the file bytes."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for k, (name, dtype, shape) in enumerate(tensors):
        b = values(dtype, numel(shape), k)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def manifest(name):
    with open(os.path.join(ROOT, "tests/data/train", name, "manifest.json")) as f:
        m = json.load(f)
    return m, [(t["name"], t.get("dtype", m.get("dtype", "F32")), t["shape"]) for t in m["tensors"]]


def write(out, harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path, limit=None):
    with open(path, "rb") as f:
        return f.read() if limit is None else f.read(limit)


def main(data, out):
    hf = ["gpt2", "llama", "opt_post", "vit_timm"]
    # safetensors: the tiny test models, plus every dtype and a __metadata__
    for name in hf:
        write(out, "fuzz_safetensors", name, safetensors(manifest(name)[1]))
    mixed = [("a.f32", "F32", [2, 3]), ("b.f16", "F16", [4]), ("c.bf16", "BF16", [2, 2]), ("d.f64", "F64", [3]),
             ("e.i8", "I8", [5]), ("f.scalar", "F32", []), ("g.empty", "F32", [0, 4])]
    write(out, "fuzz_safetensors", "mixed", safetensors(mixed, {"format": "pt", "note": "seed"}))
    vit = os.path.join(data, "vit-mnist/model.safetensors")
    if os.path.exists(vit):  # the real header, truncated: a file to complete
        write(out, "fuzz_safetensors", "vit-mnist-head", read(vit, 4096))
    # a sharded set: index + two shards
    for name in ["llama", "gpt2"]:
        t = manifest(name)[1]
        half = len(t) // 2
        index = {"metadata": {"total_size": 0}, "weight_map": {}}
        for i, (n, _, _) in enumerate(t):
            index["weight_map"][n] = "model-0000%d-of-00002.safetensors" % (1 if i < half else 2)
        write(out, "fuzz_safetensors_index", name, json.dumps(index, indent=1).encode() + SEP +
              safetensors(t[:half]) + SEP + safetensors(t[half:]))
    # config.json + model.safetensors
    for name in hf:
        cfg = read(os.path.join(ROOT, "tests/data/train", name, "config.json"))
        write(out, "fuzz_hf_config", name, cfg + SEP + safetensors(manifest(name)[1]))
    vitcfg = os.path.join(data, "vit-mnist/config.json")
    if os.path.exists(vitcfg):  # the real config with the tiny test weights (a mismatch to explore)
        write(out, "fuzz_hf_config", "vit-mnist-config", read(vitcfg) + SEP + safetensors(manifest("vit_timm")[1]))
    # llama2.c checkpoints: the tiny test model's shape, with a shared and an unshared classifier, and one
    # with the 512-token vocabulary of stories260K's tokenizer (for the .ptq seeds)
    c = manifest("llama2c")[0]["llama2c"]
    write(out, "fuzz_llama2c", "tiny-shared", llama2c(c, True))
    write(out, "fuzz_llama2c", "tiny-wcls", llama2c(c, False))
    write(out, "fuzz_llama2c", "tiny-v512", llama2c(dict(c, vocab_size=512), True))
    # tokenizers
    for rel in ["stories260K/tok512.bin", "llama-shakespeare-256/tokenizer.bin"]:
        p = os.path.join(data, rel)
        if os.path.exists(p):
            write(out, "fuzz_llama2c_tok", rel.replace("/", "-"), read(p))
    tiny = struct.pack("<i", 3) + b"".join(struct.pack("<fi", -float(i), len(s)) + s
                                          for i, s in enumerate([b"<unk>", b"<s>", b"</s>", b"<0x0A>", b"a", b"b",
                                                                 b"ab", b"\xe2\x96\x81"]))
    write(out, "fuzz_llama2c_tok", "tiny", tiny)
    g = os.path.join(ROOT, "tests/data/gpt2tok")
    write(out, "fuzz_gpt2_bpe", "test-vocab", read(os.path.join(g, "vocab.json")) + SEP +
          read(os.path.join(g, "merges.txt")))
    write(out, "fuzz_gpt2_bpe", "tiny", json.dumps({"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120a": 4,
                                                   "<|endoftext|>": 5}).encode() + SEP + "#version: 0.2\na b\n\u0120 a\n".encode())
    # tokenizer.json: tiny byte-level (Llama 3's pre-tokenizer, ignore_merges, added tokens, TemplateProcessing) and
    # SentencePiece-style (Prepend/Replace normalizer, byte fallback) files, each with a tokenizer_config.json
    def b2u(b):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE:
            return chr(b)
        return chr(0x100 + b if b <= 0x20 else 0x100 + 33 + b - 0x7F if b <= 0xA0 else 0x100 + 67)
    bvocab = {b2u(b): b for b in range(256)}
    bvocab.update({"he": 256, "ll": 257, "hell": 258, "\u0120w": 259})
    llama3_re = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                 "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
    bl = {"model": {"type": "BPE", "vocab": bvocab, "merges": [["h", "e"], "l l", "he ll", "\u0120 w"],
                    "ignore_merges": True, "byte_fallback": False},
          "added_tokens": [{"id": 260, "content": "<|begin_of_text|>", "special": True, "lstrip": False,
                            "rstrip": False}, {"id": 261, "content": "<|end_of_text|>", "special": True},
                           {"id": 262, "content": "<tool>", "special": False, "rstrip": True}],
          "normalizer": None,
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": llama3_re}, "behavior": "Isolated", "invert": False},
              {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]},
          "post_processor": {"type": "TemplateProcessing", "single": [
              {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]}}
    write(out, "fuzz_tokenizer_json", "byte-level", json.dumps(bl).encode() + SEP +
          json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|end_of_text|>"}}).encode())
    svocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    svocab.update({"<0x%02X>" % b: 3 + b for b in range(256)})
    for w in ["\u2581", "a", "b", "ab", "\u2581a", "\u2581ab"]:
        svocab[w] = len(svocab)
    spm = {"model": {"type": "BPE", "vocab": svocab, "merges": ["a b", "\u2581 a", "\u2581a b"], "byte_fallback": True,
                     "unk_token": "<unk>", "fuse_unk": True},
           "added_tokens": [{"id": i, "content": c, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])],
           "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                             {"type": "Replace", "pattern": {"String": " "},
                                                              "content": "\u2581"}]},
           "pre_tokenizer": None, "post_processor": None}
    write(out, "fuzz_tokenizer_json", "spm", json.dumps(spm).encode() + SEP +
          json.dumps({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "add_eos_token": False}).encode())
    write(out, "fuzz_tokenizer_json", "spm-no-config", json.dumps(spm).encode())
    # IDX: the first 3 MNIST test images and labels (flags byte: 0 as they are, 3 gzip'ed by the harness)
    imgs = os.path.join(data, "mnist/t10k-images-idx3-ubyte.gz")
    labs = os.path.join(data, "mnist/t10k-labels-idx1-ubyte.gz")
    if os.path.exists(imgs) and os.path.exists(labs):
        with gzip.open(imgs) as f:
            im = f.read(16 + 3 * 784)
        with gzip.open(labs) as f:
            lb = f.read(8 + 3)
        im = im[:4] + struct.pack(">I", 3) + im[8:]
        lb = lb[:4] + struct.pack(">I", 3) + lb[8:]
        write(out, "fuzz_idx", "mnist3-plain", b"\x00" + im + SEP + lb)
        write(out, "fuzz_idx", "mnist3-gz-here", b"\x03" + im + SEP + lb)
        write(out, "fuzz_idx", "mnist3-gz-file", b"\x04" + gzip.compress(im, 1) + SEP + gzip.compress(lb, 1))
    # images: tiny PNG (grey, RGB, RGBA, palette), BMP, PPM/PGM, written here
    write(out, "fuzz_images", "grey.png", b"\x04" + png(5, 3, 0, bytes(range(15))))
    write(out, "fuzz_images", "rgb.png", b"\x05" + png(3, 4, 2, bytes((i * 37) % 256 for i in range(36))))
    write(out, "fuzz_images", "rgba.png", b"\x03" + png(2, 2, 6, bytes(range(0, 64, 4))))
    write(out, "fuzz_images", "rgb.bmp", b"\x07" + bmp(3, 2))
    write(out, "fuzz_images", "grey.pgm", b"\x02" + b"P5\n4 3\n255\n" + bytes(range(0, 240, 20)))
    write(out, "fuzz_images", "rgb.ppm", b"\x01" + b"P6\n2 2\n255\n" + bytes(range(12)))
    # GGUF: vocabulary-only files (SentencePiece "llama" and byte-level "gpt2") and a tiny LLaMA in several types
    spm = ["<unk>", "<s>", "</s>", "<0x0A>", "\u2581a", "b", "\u2581ab"]
    write(out, "fuzz_gguf", "vocab-spm", gguf(vocab_kv("llama", "default", spm), []))
    bpe = ["a", "b", "ab", "\u0120", "\u0120a", "<|begin_of_text|>"]
    write(out, "fuzz_gguf", "vocab-bpe", gguf(vocab_kv("gpt2", "llama-bpe", bpe, ["a b", "\u0120 a"]), []))
    write(out, "fuzz_gguf", "llama-tiny", gguf(llama_kv(8) + vocab_kv("llama", "default", spm + ["c"]),
                                               llama_tensors(8)))
    write(out, "fuzz_gguf", "gpt2-tiny", gguf(gpt2_kv() + vocab_kv("gpt2", "gpt-2", bpe + ["c", "d"], ["a b"]),
                                              gpt2_tensors(8)))
    # a tensor of each of ggml's block types ptq dequantizes
    write(out, "fuzz_gguf", "block-types", gguf([], [("t%d" % t, t, [256, 2]) for t in (2, 3, 6, 7, 10, 11, 12, 13, 14)]))

    # preprocessor_config.json (+ an image): the test cases' configs, each with a small PNG
    with open(os.path.join(ROOT, "tests/data/preprocess/cases.json")) as f:
        cases = json.load(f)
    sizes = [1, 7, 28, 64]
    for c in cases:
        ch, img = c["channels"], c["img"]
        cfg = dict(c["config"])
        if cfg.get("do_center_crop"):
            cfg["crop_size"] = {"height": 28, "width": 28}
        elif cfg.get("do_resize", True) and "shortest_edge" not in (cfg.get("size") if isinstance(cfg.get("size"), dict) else {}):
            cfg["size"] = {"height": 28, "width": 28}
        pix = png(9, 6, 2, bytes((i * 37) % 256 for i in range(162))) if ch == 3 else png(5, 3, 0, bytes(range(15)))
        write(out, "fuzz_preprocessor", c["name"], bytes([(ch == 3) | sizes.index(28) << 1]) +
              json.dumps(cfg).encode() + SEP + pix)


# ---------------------------------------------------------------- GGUF (format in src/io/gguf.h)

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR, GGUF_ARR = 4, 5, 6, 7, 8, 9


def gguf_str(t):
    b = t.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, vtype, value):
    """value: packed bytes for a scalar/string, or (elem_type, [packed elements]) for an array."""
    if vtype == GGUF_ARR:
        et, elems = value
        return gguf_str(key) + struct.pack("<IIQ", GGUF_ARR, et, len(elems)) + b"".join(elems)
    return gguf_str(key) + struct.pack("<I", vtype) + value


def vocab_kv(model, pre, tokens, merges=None):
    ty = [2 if t == "<unk>" else 3 if t.startswith("<") and not t.startswith("<0x") else 6 if t.startswith("<0x")
          else 1 for t in tokens]
    kv = [gguf_kv("tokenizer.ggml.model", GGUF_STR, gguf_str(model)),
          gguf_kv("tokenizer.ggml.pre", GGUF_STR, gguf_str(pre)),
          gguf_kv("tokenizer.ggml.tokens", GGUF_ARR, (GGUF_STR, [gguf_str(t) for t in tokens])),
          gguf_kv("tokenizer.ggml.scores", GGUF_ARR, (GGUF_F32, [struct.pack("<f", -i) for i in range(len(tokens))])),
          gguf_kv("tokenizer.ggml.token_type", GGUF_ARR, (GGUF_I32, [struct.pack("<i", t) for t in ty])),
          gguf_kv("tokenizer.ggml.bos_token_id", GGUF_U32, struct.pack("<I", 1)),
          gguf_kv("tokenizer.ggml.add_bos_token", GGUF_BOOL, b"\x01")]
    if merges:
        kv.append(gguf_kv("tokenizer.ggml.merges", GGUF_ARR, (GGUF_STR, [gguf_str(m) for m in merges])))
    return kv


def llama_kv(vocab):
    u = lambda k, v: gguf_kv(k, GGUF_U32, struct.pack("<I", v))  # noqa: E731
    return [gguf_kv("general.architecture", GGUF_STR, gguf_str("llama")), u("llama.embedding_length", 32),
            u("llama.block_count", 1), u("llama.feed_forward_length", 32), u("llama.attention.head_count", 2),
            u("llama.attention.head_count_kv", 1), u("llama.context_length", 16),
            gguf_kv("llama.attention.layer_norm_rms_epsilon", GGUF_F32, struct.pack("<f", 1e-5)),
            u("llama.vocab_size", vocab)]


def ggml_data(gtype, ne):
    """Small deterministic values of ggml type gtype (0 F32, 1 F16, 8 Q8_0, 30 BF16), ne[0] fastest."""
    n = numel(ne)
    vals = [((i * 7) % 13 - 6) / 16.0 for i in range(n)]
    if gtype == 0:
        return b"".join(struct.pack("<f", v) for v in vals)
    if gtype == 1:
        return b"".join(struct.pack("<e", v) for v in vals)
    if gtype == 30:
        return b"".join(struct.pack("<f", v)[2:] for v in vals)
    if gtype == 8:
        return b"".join(struct.pack("<e", 1 / 64.0) + bytes((i * 5) % 256 for i in range(32)) for _ in range(n // 32))
    # the other block types (quant/ggml_quants.h): (block, bytes) as ggml-common.h; bytes of a small pattern with
    # their fp16 d/dmin set to 1/64
    block, size, halves = {2: (32, 18, [0]), 3: (32, 20, [0, 2]), 6: (32, 22, [0]), 7: (32, 24, [0, 2]),
                           10: (256, 84, [80, 82]), 11: (256, 110, [108]), 12: (256, 144, [0, 2]),
                           13: (256, 176, [0, 2]), 14: (256, 210, [208])}[gtype]
    out = b""
    for k in range(n // block):
        b = bytearray((i * 5 + k) % 256 for i in range(size))
        for h in halves:
            b[h:h + 2] = struct.pack("<e", 1 / 64.0)
        out += bytes(b)
    return out


def llama_tensors(vocab):
    d, h, kv = 32, 32, 16
    return [("token_embd.weight", 1, [d, vocab]), ("blk.0.attn_norm.weight", 0, [d]),
            ("blk.0.attn_q.weight", 8, [d, d]), ("blk.0.attn_k.weight", 0, [d, kv]), ("blk.0.attn_v.weight", 30, [d, kv]),
            ("blk.0.attn_output.weight", 8, [d, d]), ("blk.0.ffn_norm.weight", 0, [d]),
            ("blk.0.ffn_gate.weight", 1, [d, h]), ("blk.0.ffn_up.weight", 8, [d, h]), ("blk.0.ffn_down.weight", 0, [h, d]),
            ("output_norm.weight", 0, [d])]


def gpt2_kv():
    u = lambda k, v: gguf_kv(k, GGUF_U32, struct.pack("<I", v))  # noqa: E731
    return [gguf_kv("general.architecture", GGUF_STR, gguf_str("gpt2")), u("gpt2.embedding_length", 32),
            u("gpt2.block_count", 1), u("gpt2.feed_forward_length", 64), u("gpt2.attention.head_count", 2),
            u("gpt2.context_length", 16),
            gguf_kv("gpt2.attention.layer_norm_epsilon", GGUF_F32, struct.pack("<f", 1e-5))]


def gpt2_tensors(vocab):
    """llama.cpp's gpt2 layout (src/models/gguf_gpt2.c): fused attn_qkv, a bias on every norm and linear."""
    d, h = 32, 64
    return [("token_embd.weight", 1, [d, vocab]), ("position_embd.weight", 0, [d, 16]),
            ("blk.0.attn_norm.weight", 0, [d]), ("blk.0.attn_norm.bias", 0, [d]),
            ("blk.0.attn_qkv.weight", 8, [d, 3 * d]), ("blk.0.attn_qkv.bias", 0, [3 * d]),
            ("blk.0.attn_output.weight", 30, [d, d]), ("blk.0.attn_output.bias", 0, [d]),
            ("blk.0.ffn_norm.weight", 0, [d]), ("blk.0.ffn_norm.bias", 0, [d]),
            ("blk.0.ffn_up.weight", 8, [d, h]), ("blk.0.ffn_up.bias", 0, [h]),
            ("blk.0.ffn_down.weight", 1, [h, d]), ("blk.0.ffn_down.bias", 0, [d]),
            ("output_norm.weight", 0, [d]), ("output_norm.bias", 0, [d])]


def gguf(kvs, tensors, align=32):
    """A GGUF v3 file: kvs (packed), tensors [(name, ggml type, ne)] laid out aligned."""
    infos, blobs, off = [], [], 0
    for name, gtype, ne in tensors:
        b = ggml_data(gtype, ne)
        infos.append(gguf_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne) +
                     struct.pack("<IQ", gtype, off))
        blobs.append(b + b"\0" * (-len(b) % align))
        off += len(blobs[-1])
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(infos)
    return head + b"\0" * (-len(head) % align) + b"".join(blobs)


def llama2c(c, shared):
    """A llama2.c checkpoint of config c (the header's dims) with small values."""
    d, h, L, v = c["dim"], c["hidden_dim"], c["n_layers"], c["vocab_size"]
    kv = d // c["n_heads"] * c["n_kv_heads"]
    n = (v * d + L * (d + d * d + 2 * d * kv + d * d + d + 3 * h * d) + d +
         c["seq_len"] * (d // c["n_heads"]) + (0 if shared else v * d))  # ... + freq_cis + wcls
    hdr = struct.pack("<7i", d, h, L, c["n_heads"], c["n_kv_heads"], v if shared else -v, c["seq_len"])
    return hdr + values("F32", n, 3)


def png(w, h, color, pix):
    import zlib
    ch = {0: 1, 2: 3, 6: 4}[color]
    raw = b"".join(b"\x00" + pix[y * w * ch:(y + 1) * w * ch] for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def bmp(w, h):
    row = bytes((x * 50 + y * 20 + c) % 256 for x in range(w) for c in range(3) for y in [0])
    stride = (3 * w + 3) // 4 * 4
    rows = b"".join((row + bytes(stride - len(row))) for _ in range(h))
    return (b"BM" + struct.pack("<IHHI", 54 + len(rows), 0, 0, 54) +
            struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(rows), 2835, 2835, 0, 0) + rows)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
