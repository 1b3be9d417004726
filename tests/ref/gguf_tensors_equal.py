#!/usr/bin/env python3
"""Compare the tensors of two GGUF files with llama.cpp's own reader (gguf-py): names, ggml types, shapes and
bytes must all be equal (metadata is not compared). Exit 0 when equal, 1 with the differences listed.

    gguf_tensors_equal.py GGUF_PY_DIR A.gguf B.gguf
"""
import sys

sys.path.insert(0, sys.argv[1])
from gguf import GGUFReader  # noqa: E402


def tensors(path):
    r = GGUFReader(path)
    return {t.name: (t.tensor_type.name, tuple(int(x) for x in t.shape), bytes(t.data.tobytes())) for t in r.tensors}


a, b = tensors(sys.argv[2]), tensors(sys.argv[3])
bad = []
for name in sorted(set(a) | set(b)):
    if name not in a or name not in b:
        bad.append(f"{name}: only in {'the first' if name in a else 'the second'} file")
        continue
    (ta, sa, da), (tb, sb, db) = a[name], b[name]
    if ta != tb or sa != sb:
        bad.append(f"{name}: {ta} {sa} vs {tb} {sb}")
    elif da != db:
        n = sum(x != y for x, y in zip(da, db))
        bad.append(f"{name} ({ta}): {n} of {len(da)} bytes differ")
print(f"{len(a)} tensors compared, {len(bad)} differ")
for line in bad:
    print("  " + line)
sys.exit(1 if bad else 0)
