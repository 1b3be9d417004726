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
