#!/usr/bin/env python3
"""Golden files for the image loaders (src/io/idx.c, src/io/images.c; tests/test_images.c).

Writes two small text files into tests/data/images/:

  mnist.txt   facts about the real MNIST test set (../shared/data/mnist), decoded here with gzip + numpy:
                labels_first20, labels_last10, label_sum_all (over all 10,000),
                norm_sums_first10  sum of each normalised image 0..9, (x/255 - 0.1307)/0.3081, float64
                raw_sums_last10    sum of the raw bytes of images 9990..9999
                img0_row14         the 28 normalised pixels of row 14 of image 0

  folder.txt  the image-folder pipeline on procedurally generated images. The C test writes the same images
              (BMP and PNG files, generated from `pattern` below) at test time, so no binary image is
              committed, then loads them with each model and compares with the tensors here (abs. tol. 1e-5).
                model NAME CHANNELS IMG_SIZE CROP_PCT CLASSES MEAN0 MEAN1 MEAN2 STD0 STD1 STD2
                image W H COLOR FORMAT SEED LABEL FILENAME...    (COLOR gray|rgb|rgba, FORMAT bmp|png;
                                                                  the file name is the rest of the line)
                expect MODEL IMAGE_INDEX N v1 ... vN             (the [C][IMG][IMG] tensor, row-major)

The pipeline implemented here, independently of the C code (timm's eval transform, without antialiasing):
  decode to RGB (alpha dropped; grey replicated); 1-channel models: Pillow's convert("L");
  resize so the shorter side is floor(img/crop_pct) and the longer floor(S*long/short), bilinear with
  half-pixel centres (= torch.nn.functional.interpolate(mode="bilinear", align_corners=False));
  torchvision CenterCrop (zero padding by (crop-side)//2 when a side is too short, offset
  round((side-crop)/2) with Python's round); x/255; (x-mean)/std.
The script cross-checks its luma against Pillow and its resize against torch when they are installed.

Rerun from the repository root (Debian python3 with python3-numpy; a few seconds):
    /usr/bin/python3 tests/ref/make_image_goldens.py [--data ../shared/data] [--out tests/data/images]
"""
import argparse
import gzip
import math
import os

import numpy as np

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

# name, channels, img_size, crop_pct, classes, mean[3], std[3]
MODELS = [
    ("A", 3, 8, 0.875, 5, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # S = 9: mild resize + crop
    ("B", 1, 12, 1.0, 10, (0.1307, 0, 0), (0.3081, 1, 1)),               # luma, S = 12
    ("C", 3, 10, 1.15, 7, (0.5, 0.5, 0.5), (0.5, 0.25, 0.125)),          # S = floor(8.7) = 8 < 10: zero padding
]

# w, h, color, format, seed, label, file name
IMAGES = [
    (13, 9, "rgb", "bmp", 0, 1, "a.bmp"),
    (9, 17, "rgb", "bmp", 1, 4, "b.bmp"),
    (40, 30, "rgb", "png", 2, 0, "c.png"),
    (5, 7, "gray", "png", 3, 3, "d e.png"),
    (6, 6, "rgba", "png", 4, 2, "e.png"),
    (11, 9, "rgb", "png", 5, 4, "f.png"),  # model A: resized 11 wide, crop offset round(1.5) = 2 (ties to even)
]


def pattern(w, h, seed):
    """[h][w][4] uint8 test pattern; channel 3 is alpha. Same integer formula as in tests/test_images.c."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    out = np.zeros((h, w, 4), dtype=np.int64)
    for c in range(4):
        out[..., c] = (x * (37 + 6 * c) + y * (11 + 4 * c) + x * y * (3 + c) + 17 * c + 29 * seed) % 256
    return out.astype(np.uint8)


def decoded_rgb(w, h, color, seed):
    p = pattern(w, h, seed)
    if color == "gray":
        return np.repeat(p[..., :1], 3, axis=2)
    return p[..., :3].copy()


def luma(rgb):
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.float64)


def resize_bilinear(img, nh, nw):
    """img [h][w] float64 -> [nh][nw], half-pixel centres, source index clamped at 0 and at the last pixel."""
    h, w = img.shape

    def taps(n_in, n_out):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.maximum(src, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        lam = src - i0
        return i0, i1, lam

    y0, y1, ly = taps(h, nh)
    x0, x1, lx = taps(w, nw)
    top = img[y0][:, x0] * (1 - lx) + img[y0][:, x1] * lx
    bot = img[y1][:, x0] * (1 - lx) + img[y1][:, x1] * lx
    return top * (1 - ly)[:, None] + bot * ly[:, None]


def center_crop(img, size):
    h, w = img.shape
    if h < size or w < size:
        pl = (size - w) // 2 if size > w else 0
        pt = (size - h) // 2 if size > h else 0
        pr = (size - w + 1) // 2 if size > w else 0
        pb = (size - h + 1) // 2 if size > h else 0
        img = np.pad(img, ((pt, pb), (pl, pr)))
        h, w = img.shape
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return img[top:top + size, left:left + size]


def transform(rgb, channels, size, crop_pct, mean, std):
    h, w = rgb.shape[:2]
    s = math.floor(size / crop_pct)
    if w <= h:
        nw, nh = s, int(s * h / w)
    else:
        nh, nw = s, int(s * w / h)
    planes = [luma(rgb)] if channels == 1 else [rgb[..., c].astype(np.float64) for c in range(3)]
    out = []
    for c, p in enumerate(planes):
        q = center_crop(resize_bilinear(p, nh, nw), size)
        out.append((q / 255.0 - mean[c]) / std[c])
    return np.stack(out)


def cross_check():
    rng = np.random.default_rng(1)
    try:
        from PIL import Image
        a = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
        pil = np.asarray(Image.fromarray(a).convert("L")).astype(np.float64)
        assert np.array_equal(pil, luma(a)), "luma differs from Pillow's convert('L')"
        print("luma matches Pillow")
    except ImportError:
        print("Pillow not installed: luma not cross-checked")
    try:
        import torch
        import torch.nn.functional as F
        for (h, w, nh, nw) in [(9, 13, 9, 13), (30, 40, 9, 12), (7, 5, 16, 11), (17, 9, 12, 8), (6, 6, 13, 13)]:
            img = rng.random((h, w)) * 255
            ref = F.interpolate(torch.from_numpy(img)[None, None], size=(nh, nw), mode="bilinear",
                                align_corners=False)[0, 0].numpy()
            got = resize_bilinear(img, nh, nw)
            assert np.abs(ref - got).max() < 1e-9, (h, w, nh, nw, np.abs(ref - got).max())
        print("resize matches torch.nn.functional.interpolate")
    except ImportError:
        print("torch not installed: resize not cross-checked")


def fmt(v):
    return "%.9g" % v


def write_mnist(data, out):
    with gzip.open(os.path.join(data, "mnist", "t10k-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    assert int.from_bytes(raw[0:4], "big") == 0x803
    n, rows, cols = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    imgs = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    with gzip.open(os.path.join(data, "mnist", "t10k-labels-idx1-ubyte.gz")) as f:
        raw = f.read()
    assert int.from_bytes(raw[0:4], "big") == 0x801
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)
    assert len(labels) == n
    norm = (imgs[:10].astype(np.float64) / 255.0 - MNIST_MEAN) / MNIST_STD
    lines = [
        "# MNIST test set facts, written by tests/ref/make_image_goldens.py",
        "count %d %d %d" % (n, rows, cols),
        "labels_first20 " + " ".join(str(v) for v in labels[:20]),
        "labels_last10 " + " ".join(str(v) for v in labels[-10:]),
        "label_sum_all %d" % labels.sum(),
        "norm_sums_first10 " + " ".join(fmt(v) for v in norm.reshape(10, -1).sum(axis=1)),
        "raw_sums_last10 " + " ".join(str(int(v)) for v in imgs[-10:].reshape(10, -1).astype(np.int64).sum(axis=1)),
        "img0_row14 " + " ".join(fmt(v) for v in norm[0, 14]),
    ]
    with open(os.path.join(out, "mnist.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def write_folder(out):
    lines = ["# Image-folder pipeline goldens, written by tests/ref/make_image_goldens.py (see its docstring)"]
    for name, ch, size, crop, classes, mean, std in MODELS:
        lines.append("model %s %d %d %s %d %s %s" % (name, ch, size, fmt(crop), classes,
                                                    " ".join(fmt(v) for v in mean), " ".join(fmt(v) for v in std)))
    for w, h, color, form, seed, label, fname in IMAGES:
        lines.append("image %d %d %s %s %d %d %s" % (w, h, color, form, seed, label, fname))
    for name, ch, size, crop, classes, mean, std in MODELS:
        for i, (w, h, color, form, seed, label, fname) in enumerate(IMAGES):
            t = transform(decoded_rgb(w, h, color, seed), ch, size, crop, mean, std)
            lines.append("expect %s %d %d %s" % (name, i, t.size, " ".join(fmt(v) for v in t.ravel())))
    with open(os.path.join(out, "folder.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(root, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "images"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cross_check()
    write_mnist(a.data, a.out)
    write_folder(a.out)
    print("wrote", os.path.join(a.out, "mnist.txt"), "and", os.path.join(a.out, "folder.txt"))


if __name__ == "__main__":
    main()
