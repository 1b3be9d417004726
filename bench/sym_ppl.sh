#!/usr/bin/env bash
# Perplexity and file size of symmetric grids without stored zero points (--sym, docs/RESULTS.md "Symmetric
# grids without zero points") against the default asymmetric grids, on llama-shakespeare-256: g32 blocks (RTN and
# GPTQ), the head and embeddings packed as llama.cpp's Q4_0 / Q8_0 files keep them (head 6 or 8 bits, embeddings
# 4 or 8 bits, both g32). Calibrated on tinyshakespeare paragraphs 0-1999 (32 windows of 256), evaluated on the
# whole shakespeare-eval.txt (69,688 tokens). Prints a Markdown table.
# PTQ_BIN: the ptq binary (default build/ptq; copy it to keep rebuilding meanwhile).
set -euo pipefail
cd "$(dirname "$0")/.."
ptq="${PTQ_BIN:-build/ptq}"
data="${PTQ_DATA:-../shared/data}"
tmp=$(mktemp -d /tmp/ptq-sym-ppl-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" # a shared machine: one thread is faster and the result the same

S="$data/llama-shakespeare-256"
cal=(--calib "$data/tinyshakespeare/input.txt" --docs-sep $'\n\n' --docs 0:2000 --calib-n 32 --calib-ctx 256)
ev=(--text "$S/shakespeare-eval.txt" --docs-sep $'\n\n')

row() { # row LABEL QUANTIZE-OPTIONS...
  local label=$1; shift
  "$ptq" quantize "$S" "${cal[@]}" "$@" -o "$tmp/q.ptq" --json > "$tmp/q.json"
  local r
  r=$("$ptq" eval "$tmp/q.ptq" "${ev[@]}" --json)
  python3 - "$label" "$(stat -c %s "$tmp/q.ptq")" "$r" "$(cat "$tmp/q.json")" << 'PY'
import json, sys
r, q = json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"| {sys.argv[1]} | {int(sys.argv[2]):,} | {q['bits_per_weight']:.3f} | {r['mean_ce']:.6f} | {r['ppl']:.4f} |")
PY
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| llama-shakespeare-256, g32 | file bytes | bits/weight (blocks + head) | mean CE (nats) | ppl |"
echo "|---|---|---|---|---|"
f=$("$ptq" eval "$S" --tokenizer "$S/tokenizer.bin" "${ev[@]}" --json)
python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(f\"| float model | | | {r['mean_ce']:.6f} | {r['ppl']:.4f} |\")" "$f"
for method in rtn gptq; do
  for h in 6 8; do
    row "W4 $method, head $h-bit, embeddings 4-bit" --wbits 4 --group 32 --method "$method" --head-bits "$h" --embed-bits 4
    row "W4 $method **--sym**, head $h-bit, embeddings 4-bit" --wbits 4 --group 32 --method "$method" --sym \
      --head-bits "$h" --embed-bits 4
  done
  row "W8 $method, head 8-bit, embeddings 8-bit" --wbits 8 --group 32 --method "$method" --head-bits 8 --embed-bits 8
  row "W8 $method **--sym**, head 8-bit, embeddings 8-bit" --wbits 8 --group 32 --method "$method" --sym --head-bits 8 \
    --embed-bits 8
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
