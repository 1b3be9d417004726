#!/bin/bash
# What storing the calibration activations between blocks compactly costs (--calib-dtype, docs/RESULTS.md):
# GPTQ W4 g32 of llama-shakespeare-256 and stories260K with the activations kept as f32, bf16 and f16; per run the
# mean and max relative output error of the quantized layers, the largest relative change of a layer's error
# against f32, and the perplexity of the quantized model on held-out text (the float model's beside it).
#   bench/calib_dtype_error.sh PTQ [OUT_DIR]
set -euo pipefail
PTQ="$1" OUT="${2:-$(mktemp -d)}"
SRC="$(cd "$(dirname "$0")/.." && pwd)"
D="${PTQ_DATA:-$SRC/../shared/data}"
L="$D/llama-shakespeare-256" S="$D/stories260K" TXT="$D/tinystories/tinystories-valid-100.txt"
mkdir -p "$OUT"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # run NAME EVAL_ARGS -- QUANTIZE_ARGS
  local name="$1"; shift
  local ev=()
  while [ "$1" != -- ]; do ev+=("$1"); shift; done; shift
  local fppl
  fppl=$("$PTQ" eval "${ev[@]}" --json | sed -n 's/.*"ppl": *\([0-9.e+-]*\).*/\1/p')
  for dt in f32 bf16 f16; do
    "$PTQ" quantize "$@" --method gptq --wbits 4 --group 32 --calib-dtype $dt -o "$OUT/$name.$dt.ptq" --json > "$OUT/$name.$dt.json"
    local ev_q=("${ev[@]}")
    ev_q[0]="$OUT/$name.$dt.ptq"
    "$PTQ" eval "${ev_q[@]}" --json > "$OUT/$name.$dt.eval.json"
  done
  /usr/bin/python3 - "$OUT" "$name" "$fppl" <<'PY'
import json, sys
out, name, fppl = sys.argv[1], sys.argv[2], float(sys.argv[3])
err = {dt: [l["rel_error"] for l in json.load(open(f"{out}/{name}.{dt}.json"))["layers"]] for dt in ("f32", "bf16", "f16")}
for dt in ("f32", "bf16", "f16"):
    e = err[dt]
    ppl = json.load(open(f"{out}/{name}.{dt}.eval.json"))["ppl"]
    ch = max(abs(a / b - 1) for a, b in zip(e, err["f32"]))
    print(f"{name:12s} {dt:5s} layers {len(e):3d}  mean rel error {sum(e) / len(e):.5g}  max {max(e):.5g}  "
          f"largest change vs f32 {100 * ch:.2f}%  ppl {ppl:.4f} (vs f32 {100 * (ppl / json.load(open(f'{out}/{name}.f32.eval.json'))['ppl'] - 1):+.3f}%, float model {fppl:.4f})")
PY
}
run shakespeare "$L" --text "$L/shakespeare-eval.txt" -- "$L" --calib "$L/shakespeare-eval.txt" --calib-n 32 --calib-ctx 256
run stories260K "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --text "$TXT" --docs-sep '<|endoftext|>' --docs 50:100 -- \
  "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --calib "$TXT" --docs-sep '<|endoftext|>' --docs 0:50 --calib-n 32 --calib-ctx 256
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
