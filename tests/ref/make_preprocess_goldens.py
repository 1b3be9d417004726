#!/usr/bin/env python3
"""Goldens for the Hugging Face image preprocessing (src/io/preprocess.c; tests/test_preprocess.c).

Writes into tests/data/preprocess/:
  small test images made here (PNG grey/RGB/RGBA/LA/palette, JPEG grey/RGB, BMP) and a 3-image IDX file;
  for each JPEG, NAME.pil.png: Pillow's own decoding of it, saved losslessly (JPEG decoders differ by a
  level here and there; the .pil.png cases test the rest of the pipeline exactly on the same pixels);
  cases.json: one entry per case {name, image, channels, img, config, golden, max_levels}
    config      the preprocessor_config.json object
    golden      a file of float32 little-endian values, [images][channels][img][img]
    max_levels  0: the C result must equal the golden bit for bit; k > 0 (JPEG): may differ by k 8-bit levels
                (k * rescale_factor / std after normalisation) because ptq decodes JPEG with stb_image, Pillow
                with libjpeg.

The expected tensors are made the way transformers' ViTImageProcessor (the PIL-based, "slow" one) and its
relatives do it, written here from their documented behaviour (transformers is not installed):
  image -> PIL convert("L") for a 1-channel model, convert("RGB") for a 3-channel one (IDX bytes: mode "L")
  do_resize: PIL Image.resize((w, h), resample) on the 8-bit image; size {height, width}, or {shortest_edge: S}
             (shorter side S, longer int(S * long / short)); an image already of that size is kept (PIL copy)
  do_center_crop: crop_size at top = (H - h) // 2, left = (W - w) // 2, zero padding (ceil((h - H) / 2)) when
             the image is smaller (transformers' image_transforms.center_crop)
  do_rescale: (x.astype(float64) * rescale_factor).astype(float32)
  do_normalize: x cast to float32 if needed, mean/std as float32 arrays, (x - mean) / std in float32
Rerun from the repository root (Debian's python3-pil and python3-numpy; about a second):
    /usr/bin/python3 tests/ref/make_preprocess_goldens.py [--out tests/data/preprocess]
"""
import argparse
import json
import math
import os

import numpy as np
from prng import splitmix64  # tests/ref/prng.py
from PIL import Image

MNIST_HALF = {"image_mean": [0.5], "image_std": [0.5]}
IMAGENET = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}


def pattern(w, h, bands, seed):
    """A smooth gradient plus texture plus noise: resizing it is not trivial, and no value is clipped."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for b in range(bands):
        v = 128 + 90 * np.sin(x / (3.0 + b) + seed) * np.cos(y / (4.0 + 2 * b)) + 20 * ((x + 2 * y + b) % 7 - 3)
        v += rng.uniform(-20, 20, size=v.shape)
        out.append(np.clip(np.round(v), 0, 255).astype(np.uint8))
    return np.stack(out, -1) if bands > 1 else out[0]


def make_images(out):
    imgs = {}

    def save(name, arr, mode, **kw):
        im = Image.fromarray(arr, mode)
        im.save(os.path.join(out, name), **kw)
        imgs[name] = name

    save("grey40.png", pattern(40, 40, 1, 1), "L")
    save("grey20x17.png", pattern(20, 17, 1, 2), "L")
    save("rgb50x30.png", pattern(50, 30, 3, 3), "RGB")
    save("rgb100x90.png", pattern(100, 90, 3, 4), "RGB")
    save("rgb45x30.png", pattern(45, 30, 3, 5), "RGB")
    save("rgba30.png", pattern(30, 30, 4, 6), "RGBA")
    save("la26x22.png", pattern(26, 22, 2, 7), "LA")
    pal = Image.fromarray(pattern(24, 24, 3, 8), "RGB").quantize(colors=37, method=Image.Quantize.MEDIANCUT)
    pal.save(os.path.join(out, "pal24.png"))
    save("rgb33x21.bmp", pattern(33, 21, 3, 9), "RGB")
    save("rgb64x48.jpg", pattern(64, 48, 3, 10), "RGB", quality=90)
    save("grey31x29.jpg", pattern(31, 29, 1, 11), "L", quality=85)
    for j in ("rgb64x48.jpg", "grey31x29.jpg"):  # Pillow's decoding, kept losslessly
        Image.open(os.path.join(out, j)).save(os.path.join(out, j[:-4] + ".pil.png"))
    # IDX: 3 grey 28x28 images, not stored: tests/test_preprocess.c writes the same file at test time (pixel i is
    # the top byte of splitmix64((20 << 32) + i), tests/ref/prng.py and tu_splitmix64)
    i = (np.uint64(20) << np.uint64(32)) + np.arange(3 * 28 * 28, dtype=np.uint64)
    return (splitmix64(i) >> np.uint64(56)).astype(np.uint8).reshape(3, 28, 28)


def hf_size(cfg, h, w):
    size = cfg.get("size", {"height": 224, "width": 224})
    if isinstance(size, int):
        return size, size
    if isinstance(size, list):
        return size[0], size[1]
    if "shortest_edge" in size:
        s = size["shortest_edge"]
        short, long = (w, h) if w <= h else (h, w)
        nl = int(s * long / short)
        return (nl, s) if w <= h else (s, nl)
    return size["height"], size["width"]


def hf_center_crop(chw, ch, cw):
    """transformers' center_crop on a (C, H, W) array"""
    H, W = chw.shape[1:]
    top, left = (H - ch) // 2, (W - cw) // 2
    if top >= 0 and left >= 0 and top + ch <= H and left + cw <= W:
        return chw[:, top:top + ch, left:left + cw]
    nh, nw = max(ch, H), max(cw, W)
    pad = np.zeros((chw.shape[0], nh, nw), chw.dtype)
    tp, lp = math.ceil((nh - H) / 2), math.ceil((nw - W) / 2)
    pad[:, tp:tp + H, lp:lp + W] = chw
    top, left = top + tp, left + lp
    return pad[:, max(0, top):min(nh, top + ch), max(0, left):min(nw, left + cw)]


def hf_preprocess(arr, cfg):
    """arr: uint8 (H, W, C) with the model's channel count"""
    if cfg.get("do_resize", True):
        h, w = arr.shape[:2]
        oh, ow = hf_size(cfg, h, w)
        pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        pil = pil.resize((ow, oh), resample=cfg.get("resample", 2))
        arr = np.array(pil)
        if arr.ndim == 2:
            arr = arr[:, :, None]
    chw = arr.transpose(2, 0, 1)
    if cfg.get("do_center_crop", False):
        cs = cfg["crop_size"]
        ch, cw = (cs, cs) if isinstance(cs, int) else (cs["height"], cs["width"])
        chw = hf_center_crop(chw, ch, cw)
    x = chw
    if cfg.get("do_rescale", True):
        x = (x.astype(np.float64) * cfg.get("rescale_factor", 1 / 255)).astype(np.float32)
    if cfg.get("do_normalize", True):
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        c = x.shape[0]
        mean = cfg.get("image_mean", [0.5] * c)
        std = cfg.get("image_std", [0.5] * c)
        mean = np.array(mean if isinstance(mean, list) else [mean] * c, dtype=x.dtype)
        std = np.array(std if isinstance(std, list) else [std] * c, dtype=x.dtype)
        x = ((x.T - mean) / std).T
    return np.ascontiguousarray(x, dtype=np.float32)


def load_as(path, channels):
    im = Image.open(path).convert("L" if channels == 1 else "RGB")
    a = np.array(im)
    return a[:, :, None] if a.ndim == 2 else a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/preprocess")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    idx = make_images(args.out)

    def cfg(size, resample, extra=None, norm=MNIST_HALF):
        c = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": size, "resample": resample,
             "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True}
        c.update(norm)
        c.update(extra or {})
        return c

    hw = lambda n: {"height": n, "width": n}
    cases = [  # name, image, channels, img, config, max_levels
        ("grey_down_bilinear", "grey40.png", 1, 28, cfg(hw(28), 2), 0),
        ("grey_up_bicubic", "grey20x17.png", 1, 28, cfg(hw(28), 3), 0),
        ("rgb_nearest", "rgb50x30.png", 3, 32, cfg(hw(32), 0, norm=IMAGENET), 0),
        ("rgb_lanczos_3x", "rgb50x30.png", 3, 16, cfg(hw(16), 1, norm=IMAGENET), 0),
        ("rgb_to_grey_4x", "rgb100x90.png", 1, 24, cfg(hw(24), 2), 0),
        ("rgb_int_size_bicubic", "rgb100x90.png", 3, 20, cfg(20, 3, norm=IMAGENET), 0),
        ("shortest_edge_crop_box", "rgb45x30.png", 3, 16,
         cfg({"shortest_edge": 20}, 4, {"do_center_crop": True, "crop_size": hw(16)}, IMAGENET), 0),
        ("hamming_no_normalize", "grey40.png", 1, 24, cfg(hw(24), 5, {"do_normalize": False}), 0),
        ("no_rescale", "rgb50x30.png", 3, 24,
         cfg(hw(24), 3, {"do_rescale": False}, {"image_mean": 127.5, "image_std": 64.0}), 0),
        ("pad_crop_no_resize", "grey20x17.png", 1, 24,
         cfg(hw(24), 2, {"do_resize": False, "do_center_crop": True, "crop_size": 24}), 0),
        ("crop_bigger_resize", "rgb33x21.bmp", 3, 20,
         cfg([26, 22], 2, {"do_center_crop": True, "crop_size": {"height": 20, "width": 20}}, IMAGENET), 0),
        ("rgba_alpha_dropped", "rgba30.png", 3, 30, cfg(hw(30), 2, norm=IMAGENET), 0),
        ("la_to_grey", "la26x22.png", 1, 28, cfg(hw(28), 3), 0),
        ("palette", "pal24.png", 3, 16, cfg(hw(16), 2, norm=IMAGENET), 0),
        ("rescale_factor_custom", "grey40.png", 1, 20,
         cfg(hw(20), 2, {"rescale_factor": 0.00390625}, {"image_mean": 0.25, "image_std": 0.7}), 0),
        ("jpeg_rgb", "rgb64x48.jpg", 3, 24, cfg(hw(24), 3, norm=IMAGENET), 3),
        ("jpeg_rgb_pil_decoded", "rgb64x48.pil.png", 3, 24, cfg(hw(24), 3, norm=IMAGENET), 0),
        ("jpeg_grey", "grey31x29.jpg", 1, 16, cfg(hw(16), 2), 3),
        ("jpeg_grey_pil_decoded", "grey31x29.pil.png", 1, 16, cfg(hw(16), 2), 0),
    ]
    manifest = []
    for name, image, ch, img, c, tol in cases:
        x = hf_preprocess(load_as(os.path.join(args.out, image), ch), c)
        assert x.shape == (ch, img, img), (name, x.shape)
        golden = name + ".f32"
        x.astype("<f4").tofile(os.path.join(args.out, golden))
        manifest.append({"name": name, "image": image, "channels": ch, "img": img, "config": c, "golden": golden,
                         "max_levels": tol})
    # IDX: the grey bytes as mode "L" images; a 3-channel model gets them replicated (convert("RGB"))
    for name, ch, img, c in [("idx_bicubic_up", 1, 32, cfg(hw(32), 3)),
                             ("idx_rgb_model", 3, 28, cfg(hw(28), 2, norm=IMAGENET))]:
        x = np.stack([hf_preprocess(np.repeat(im[:, :, None], ch, 2), c) for im in idx])
        x.astype("<f4").tofile(os.path.join(args.out, name + ".f32"))
        manifest.append({"name": name, "image": "three.idx", "channels": ch, "img": img, "config": c,
                         "golden": name + ".f32", "max_levels": 0})
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {len(manifest)} cases to {args.out}")


if __name__ == "__main__":
    main()
