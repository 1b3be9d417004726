#!/usr/bin/env python3
"""Helpers of tests/e2e_vit_preprocess.sh (Debian's python3 with python3-numpy and python3-pil).

  pngs IMAGES.idx.gz OUTDIR --first F --count N [--labels LABELS.idx.gz] [--side S]
      write images [F, F+N) of an IDX file as grey PNG files OUTDIR/img_NNNNN.png (upscaled to S x S with
      PIL's bicubic filter when --side is given: input images of another size than the model's), and with
      --labels a labels file OUTDIR/../labels.txt ("img_NNNNN.png LABEL" lines)

  top1 MODEL_DIR REF_DIR (--idx IMAGES.idx.gz LABELS.idx.gz --first F --count N | --folder DIR LABELS.txt)
      the independent reference's top-1: MODEL_DIR's preprocessor_config.json applied as transformers'
      ViTImageProcessor does (make_preprocess_goldens.hf_preprocess: PIL resize, crop, rescale, normalise),
      then REF_DIR/vit_ref.py's numpy forward (float32 weights, float64 activations where numpy promotes).
      Prints "images=N correct=K".
"""
import argparse
import gzip
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_preprocess_goldens import hf_preprocess, load_as  # noqa: E402


def read_idx(path):
    raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def cmd_pngs(a):
    x = read_idx(a.images)[a.first:a.first + a.count]
    os.makedirs(a.outdir, exist_ok=True)
    names = []
    for i, im in enumerate(x):
        pil = Image.fromarray(im, "L")
        if a.side:
            pil = pil.resize((a.side, a.side), Image.BICUBIC)
        name = f"img_{a.first + i:05d}.png"
        pil.save(os.path.join(a.outdir, name))
        names.append(name)
    if a.labels:
        y = read_idx(a.labels)[a.first:a.first + a.count]
        with open(os.path.join(os.path.dirname(os.path.abspath(a.outdir)), "labels.txt"), "w") as f:
            f.writelines(f"{n} {int(l)}\n" for n, l in zip(names, y))


def cmd_top1(a):
    sys.path.insert(0, a.ref_dir)
    import vit_ref
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    prep = json.load(open(os.path.join(a.model, "preprocessor_config.json")))
    ch = cfg["in_chans"]
    if a.idx:
        x = read_idx(a.idx[0])[a.first:a.first + a.count]
        y = read_idx(a.idx[1])[a.first:a.first + a.count].astype(int)
        X = np.stack([hf_preprocess(np.repeat(im[:, :, None], ch, 2), prep) for im in x])
    else:
        lines = [l.split() for l in open(a.folder[1]) if l.strip()]
        X = np.stack([hf_preprocess(load_as(os.path.join(a.folder[0], n), ch), prep) for n, _ in lines])
        y = np.array([int(l) for _, l in lines])
    T = vit_ref.load_safetensors(os.path.join(a.model, "model.safetensors"))
    pred = np.concatenate([vit_ref.forward(T, cfg, X[i:i + 250]).argmax(1) for i in range(0, len(X), 250)])
    print(f"images={len(y)} correct={int((pred == y).sum())}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pngs")
    p.add_argument("images")
    p.add_argument("outdir")
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--labels")
    p.add_argument("--side", type=int, default=0)
    t = sub.add_parser("top1")
    t.add_argument("model")
    t.add_argument("ref_dir")
    t.add_argument("--idx", nargs=2)
    t.add_argument("--folder", nargs=2)
    t.add_argument("--first", type=int, default=0)
    t.add_argument("--count", type=int, default=0)
    a = ap.parse_args()
    cmd_pngs(a) if a.cmd == "pngs" else cmd_top1(a)


if __name__ == "__main__":
    main()
