#!/usr/bin/python3
"""GGUF files holding ggml's block types, for tests/test_ggml_quants.c (ptq reads them).

  make_gguf_qtypes.py rows REFS SHAKESPEARE_DIR OUT
      OUT/rows/NAME.f32: every 2-D weight of llama-shakespeare-256 in GGUF name and ggml row order (Q/K rows
      permuted as llama.cpp's converter does), float32; OUT/rows/list.txt: "NAME ROWS COLS" lines.
  make_gguf_qtypes.py gguf REFS SHAKESPEARE_DIR OUT TYPE...
      for each ggml type name TYPE (Q4_0, Q4_K, ...): OUT/TYPE/NAME.bin holds ptq's bytes of each weight of
      list.txt (written by the test); writes OUT/shakespeare-TYPE.gguf through gguf-py's GGUFWriter (the model's
      metadata and tokenizer as tests/ref/make_gguf_fixtures.py writes them, norms F32, the weights as those raw
      bytes of TYPE), and OUT/shakespeare-TYPE-deq/ (Hugging Face layout + config.json): the weights gguf-py's own
      numpy dequantizer (gguf.quants.dequantize) makes of those bytes. ptq must give the same logits on both.

gguf-py is llama.cpp's (build-ref/llama.cpp/gguf-py, scripts/refs.sh): the file layout and the dequantization are
its, not ptq's. Debian /usr/bin/python3 with numpy.
"""
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_gguf_fixtures as fx  # noqa: E402


def load(shk):
    import json
    with open(os.path.join(shk, "config.json")) as f:
        cfg = json.load(f)
    hf = fx.read_safetensors(os.path.join(shk, "model.safetensors"))
    return cfg, fx.gguf_tensors(hf, cfg), fx.llama2c_vocab(os.path.join(shk, "tokenizer.bin"))


def write_rows(shk, out):
    _, tensors, _ = load(shk)
    d = os.path.join(out, "rows")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "list.txt"), "w") as lst:
        for name, a in tensors:
            if a.ndim != 2:
                continue
            np.ascontiguousarray(a, dtype="<f4").tofile(os.path.join(d, name + ".f32"))
            lst.write("%s %d %d\n" % (name, a.shape[0], a.shape[1]))


def write_type(gguf, shk, out, tname):
    cfg, tensors, vocab = load(shk)
    qt = gguf.GGMLQuantizationType[tname]
    raw, deq = {}, {}
    for name, a in tensors:
        if a.ndim != 2:
            continue
        b = np.fromfile(os.path.join(out, tname, name + ".bin"), dtype=np.uint8)
        b = b.reshape(gguf.quant_shape_to_byte_shape(a.shape, qt))
        raw[name] = b
        deq[name] = gguf.quants.dequantize(b, qt).reshape(a.shape).astype(np.float32)

    class Writer(gguf.GGUFWriter):
        """GGUFWriter storing the 2-D weights as ptq's raw bytes of the type."""

        def add_tensor(self, name, tensor, *args, **kw):
            if name in raw:
                return super().add_tensor(name, raw[name], raw_dtype=qt)
            return super().add_tensor(name, tensor, *args, **kw)

    g = types.SimpleNamespace(**{k: getattr(gguf, k) for k in dir(gguf) if not k.startswith("__")})
    g.GGUFWriter = Writer
    fx.write_gguf(g, os.path.join(out, "shakespeare-%s.gguf" % tname), cfg, tensors, gguf.GGMLQuantizationType.F32,
                  vocab=vocab)
    for name, a in tensors:
        if a.ndim != 2:
            deq[name] = a
    fx.write_hf_dir(os.path.join(out, "shakespeare-%s-deq" % tname), cfg, fx.to_hf(deq, cfg))


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "rows":
        write_rows(sys.argv[3], sys.argv[4])
    elif len(sys.argv) >= 6 and sys.argv[1] == "gguf":
        gguf = fx.gguf_module(sys.argv[2])
        for t in sys.argv[5:]:
            write_type(gguf, sys.argv[3], sys.argv[4], t)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
