#!/usr/bin/env python3
"""Read a GGUF file with llama.cpp's own reader (gguf-py) and compare it with a JSON description of what should be
in it (written by tests/test_gguf_write.c). Exit 0 when everything matches, else 1 listing the differences.

    gguf_check_expected.py GGUF_PY_DIR FILE.gguf EXPECTED.json

EXPECTED: {"kv": [[key, value_type_name, value or [values]], ...] in file order,
           "tensors": [[name, ggml_type_name, [ne0, ne1, ...], hex bytes], ...] in file order}
"""
import json
import math
import sys

sys.path.insert(0, sys.argv[1])
from gguf import GGUFReader, GGUFValueType  # noqa: E402

r = GGUFReader(sys.argv[2])
want = json.load(open(sys.argv[3]))
bad = []

fields = [f for f in r.fields.values() if not f.name.startswith("GGUF.")]
if [f.name for f in fields] != [k[0] for k in want["kv"]]:
    bad.append(f"keys {[f.name for f in fields]} != {[k[0] for k in want['kv']]}")


def value(f):
    t = f.types[0]
    if t == GGUFValueType.ARRAY:
        et = f.types[1] if len(f.types) > 1 else None
        vals = [f.parts[i] for i in f.data]
        if et == GGUFValueType.STRING:
            return [bytes(v).decode("utf-8") for v in vals]
        return [v.tolist()[0] for v in vals]
    if t == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]].tolist()[0]


def type_name(f):
    t = f.types[0]
    if t == GGUFValueType.ARRAY:
        return "array:" + (f.types[1].name.lower() if len(f.types) > 1 else "?")
    return t.name.lower()


def same(a, b):
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


for f, (key, tname, val) in zip(fields, want["kv"]):
    if type_name(f) == "array:?" and tname.startswith("array:") and val == []:
        if f.data:  # gguf-py keeps no element type for an empty array: only the count is checked
            bad.append(f"{key}: {len(f.data)} elements, expected none")
    elif type_name(f) != tname:
        bad.append(f"{key}: type {type_name(f)}, expected {tname}")
    elif not same(value(f), val):
        bad.append(f"{key}: value {value(f)!r}, expected {val!r}")

if r.alignment != 32:
    bad.append(f"alignment {r.alignment}")
if [t.name for t in r.tensors] != [t[0] for t in want["tensors"]]:
    bad.append("tensor names/order differ")
for t, (name, tname, ne, hexdata) in zip(r.tensors, want["tensors"]):
    if t.tensor_type.name != tname or [int(x) for x in t.shape] != ne:
        bad.append(f"{name}: {t.tensor_type.name} {list(t.shape)}, expected {tname} {ne}")
    elif bytes(t.data.tobytes()).hex() != hexdata:
        bad.append(f"{name}: bytes differ")
    if t.data_offset % 32:
        bad.append(f"{name}: data at {t.data_offset}, not 32-aligned")

print(f"gguf-py: {len(fields)} keys, {len(r.tensors)} tensors checked, {len(bad)} differences")
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
