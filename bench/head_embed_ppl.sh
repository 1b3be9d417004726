#!/usr/bin/env bash
# Perplexity and file size with the LM head / token embeddings quantized (--head-bits / --embed-bits, docs/RESULTS.md
# "Quantized head and embeddings"): W4 g32 GPTQ blocks, the head and embeddings float32, 8-bit and 4-bit (g32).
#   llama-shakespeare-256 (separate head): calibrated on tinyshakespeare paragraphs 0-1999 (32 windows of 256),
#     evaluated on the whole shakespeare-eval.txt (69,688 tokens);
#   stories260K (tied: one table serves both): calibrated on stories 0-59 of tinystories-valid-100 (16 windows of 256),
#     evaluated on stories 60-99.
# Prints a Markdown table. PTQ_BIN: the ptq binary (default build/ptq; copy it to keep rebuilding meanwhile).
set -euo pipefail
cd "$(dirname "$0")/.."
ptq="${PTQ_BIN:-build/ptq}"
data="${PTQ_DATA:-../shared/data}"
tmp=$(mktemp -d /tmp/ptq-head-embed-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" # a shared machine: one thread is faster and the result the same

row() { # row LABEL OPTIONS MODEL CALIB... -- EVAL...
  local label=$1 opts=$2 model=$3; shift 3
  local calib=() ev=()
  while [ "$1" != "--" ]; do calib+=("$1"); shift; done
  shift
  ev=("$@")
  # shellcheck disable=SC2086
  "$ptq" quantize "$model" "${calib[@]}" --wbits 4 --group 32 --method gptq $opts -o "$tmp/q.ptq" --json > /dev/null
  local r
  r=$("$ptq" eval "$tmp/q.ptq" "${ev[@]}" --json)
  python3 - "$label" "$(stat -c %s "$tmp/q.ptq")" "$r" << 'PY'
import json, sys
r = json.loads(sys.argv[3])
print(f"| {sys.argv[1]} | {int(sys.argv[2]):,} | {r['mean_ce']:.6f} | {r['ppl']:.4f} |")
PY
}

S="$data/llama-shakespeare-256"
scal=(--calib "$data/tinyshakespeare/input.txt" --docs-sep $'\n\n' --docs 0:2000 --calib-n 32 --calib-ctx 256)
sev=(--text "$S/shakespeare-eval.txt" --docs-sep $'\n\n')
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| llama-shakespeare-256, W4 g32 GPTQ blocks | file bytes | mean CE (nats) | ppl |"
echo "|---|---|---|---|"
f=$("$ptq" eval "$S" --tokenizer "$S/tokenizer.bin" "${sev[@]}" --json)
python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(f\"| float model | | {r['mean_ce']:.6f} | {r['ppl']:.4f} |\")" "$f"
row "head, embeddings float32" "" "$S" "${scal[@]}" -- "${sev[@]}"
row "head 16-bit, embeddings 16-bit" "--head-bits 16 --embed-bits 16" "$S" "${scal[@]}" -- "${sev[@]}"
row "head 4-bit" "--head-bits 4" "$S" "${scal[@]}" -- "${sev[@]}"
row "head 8-bit" "--head-bits 8" "$S" "${scal[@]}" -- "${sev[@]}"
row "head 8-bit, embeddings 8-bit" "--head-bits 8 --embed-bits 8" "$S" "${scal[@]}" -- "${sev[@]}"
row "head 8-bit, embeddings 4-bit" "--head-bits 8 --embed-bits 4" "$S" "${scal[@]}" -- "${sev[@]}"
row "head 4-bit, embeddings 4-bit" "--head-bits 4 --embed-bits 4" "$S" "${scal[@]}" -- "${sev[@]}"

M="$data/stories260K/stories260K.bin"
TXT="$data/tinystories/tinystories-valid-100.txt"
tcal=(--calib "$TXT" --docs-sep '<|endoftext|>' --docs 0:60 --calib-n 16 --calib-ctx 256)
tev=(--tokenizer "$data/stories260K/tok512.bin" --text "$TXT" --docs-sep '<|endoftext|>' --docs 60:)
echo
echo "| stories260K (tied), W4 g32 GPTQ blocks | file bytes | mean CE (nats) | ppl |"
echo "|---|---|---|---|"
f=$("$ptq" eval "$M" "${tev[@]}" --json)
python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(f\"| float model | | {r['mean_ce']:.6f} | {r['ppl']:.4f} |\")" "$f"
row "one table float32" "" "$M" "${tcal[@]}" -- "${tev[@]}"
row "one table 16-bit" "--embed-bits 16" "$M" "${tcal[@]}" -- "${tev[@]}"
row "one table 8-bit" "--head-bits 8" "$M" "${tcal[@]}" -- "${tev[@]}"
row "one table 4-bit" "--head-bits 4" "$M" "${tcal[@]}" -- "${tev[@]}"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
