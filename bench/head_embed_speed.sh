#!/usr/bin/env bash
# Decode speed, peak RSS and file size of W4 g32 (RTN) files of a model with the LM head / token embeddings
# float32, 8-bit and 4-bit (docs/RESULTS.md "Quantized head and embeddings"). The files are measured alternately,
# ROUNDS times, by `ptq bench --no-bandwidth` (peak RSS from /usr/bin/time); the table holds the medians and the
# load average before and after.
#   bench/head_embed_speed.sh MODEL_DIR [ROUNDS] [OUT_DIR]
# MODEL_DIR: a LLaMA-architecture safetensors folder (bench/make_llama_shape.py writes the TinyLlama shape);
# a folder without a tokenizer borrows llama.cpp's test vocabulary (PTQ_REFS) to read the calibration line.
# OUT_DIR keeps the files (and reuses those already there). PTQ_BIN: the ptq binary (default build/ptq).
# PTQ_BENCH_OPTS: extra ptq bench options (e.g. --act8).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:?usage: bench/head_embed_speed.sh MODEL_DIR [ROUNDS] [OUT_DIR]}"
rounds="${2:-3}"
out="${3:-}"
ptq="${PTQ_BIN:-build/ptq}"
tmp=$(mktemp -d /tmp/ptq-head-embed-speed-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
[ -n "$out" ] || out="$tmp"
mkdir -p "$out"
printf 'Once upon a time there was a model.\n' > "$tmp/calib.txt"
tok=()
if [ -d "$model" ] && ! ls "$model"/tokenizer.json "$model"/tokenizer.bin "$model"/vocab.json > /dev/null 2>&1; then
  tok=(--tokenizer "${PTQ_REFS:-$(pwd)/build-ref}/llama.cpp/models/ggml-vocab-llama-spm.gguf")
fi
names=(base h8 h8e4 h4e4)
opts=("" "--head-bits 8" "--head-bits 8 --embed-bits 4" "--head-bits 4 --embed-bits 4")
labels=("head, embeddings float32" "head 8-bit" "head 8-bit, embeddings 4-bit" "head 4-bit, embeddings 4-bit")
for i in "${!names[@]}"; do
  f="$out/tl-${names[$i]}.ptq"
  [ -s "$f" ] && continue
  echo "quantizing $f ..." >&2
  # shellcheck disable=SC2086
  "$ptq" quantize "$model" "${tok[@]}" --calib "$tmp/calib.txt" --calib-n 1 --calib-ctx 8 --method rtn \
    --no-layer-error --wbits 4 --group 32 ${opts[$i]} -o "$f" --json > /dev/null
done
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    echo "round $r/$rounds: ${names[$i]}" >&2
    # shellcheck disable=SC2086
    /usr/bin/time -f %M -o "$tmp/rss" "$ptq" bench "$out/tl-${names[$i]}.ptq" --tokens 32 --steps 32 --reps 1 \
      --no-bandwidth ${PTQ_BENCH_OPTS:-} --json > "$tmp/b.json"
    python3 - "$i" "$tmp/b.json" "$(cat "$tmp/rss")" >> "$tmp/results" << 'PY'
import json, sys
r = json.load(open(sys.argv[2]))
print(sys.argv[1], r["decode_tok_per_s"], r.get("decode_bytes_per_token", r.get("weight_bytes_per_token", 0)), sys.argv[3])
PY
  done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "raw (file index, decode tok/s, bytes per token, peak RSS KiB), in the order run:" >&2
cat "$tmp/results" >&2
echo "| W4 g32 RTN blocks | file bytes | decode tok/s (median of $rounds) | bytes read per token | peak RSS (MiB) |"
echo "|---|---|---|---|---|"
for i in "${!names[@]}"; do
  python3 - "$i" "$tmp/results" "${labels[$i]}" "$(stat -c %s "$out/tl-${names[$i]}.ptq")" << 'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[2]) if l.split()[0] == sys.argv[1]]
tps = statistics.median(float(r[1]) for r in rows)
wb = float(rows[0][2])
rss = statistics.median(float(r[3]) for r in rows) / 1024
print(f"| {sys.argv[3]} | {int(sys.argv[4]):,} | {tps:.2f} | {wb / 1e6:.0f} MB | {rss:.0f} |")
PY
done
echo
echo "load average (1, 5, 15 min) before: $load0, after: $load1"
