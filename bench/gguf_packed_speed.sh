#!/usr/bin/env bash
# ptq's speed on GGUF files whose Q4_0 / Q5_0 / Q8_0 matrices it runs on its packed kernels (quant/ggml_to_qweight.c),
# against a baseline ptq binary (e.g. one built before that change, which ran them from dequantized float32) and
# llama.cpp's llama-bench on the same files (docs/RESULTS.md §12). Runs alternate, so that the shared
# machine's load hits both alike; the 1-minute load average is printed with every row.
#   bench/gguf_packed_speed.sh [MODEL [TYPES...]]     env: PTQ_BIN (default build/ptq), PTQ_BASE_BIN (optional),
#                                                          ROUNDS (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${PTQ_DATA:-$(pwd)/../shared/data}"
model="${1:-$data/llama-shakespeare-256}"
shift || true
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(Q4_0 Q8_0 Q5_0)
ptq="${PTQ_BIN:-build/ptq}"
base="${PTQ_BASE_BIN:-}"
rounds="${ROUNDS:-3}"
bins=$(./bench/llama_tools.sh)
tmp=$(mktemp -d /tmp/ptq-gguf-speed-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
num() { sed -n "s/.*\"$1\": *\([0-9.e+]*\).*/\1/p"; }
pbench() { "$1" bench "$2" --tokens 128 --steps 64 --reps 3 --json; }
echo "| type | run | load | ptq prefill | ptq decode | baseline prefill | baseline decode | llama.cpp prefill | llama.cpp decode |"
echo "|---|---|---|---|---|---|---|---|---|"
for t in "${types[@]}"; do
  "$ptq" quantize "$model" --method rtn --type "$t" -o "$tmp/m.gguf" --json > /dev/null
  for r in $(seq "$rounds"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    a=$(pbench "$ptq" "$tmp/m.gguf")
    b=""
    [ -n "$base" ] && b=$(pbench "$base" "$tmp/m.gguf")
    "$bins/llama-bench" -m "$tmp/m.gguf" -p 128 -n 64 -t "$(nproc)" -r 3 -o json > "$tmp/lb.json" 2> /dev/null
    lpp=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%.0f' % [x['avg_ts'] for x in r if x['n_prompt']>0][0])" "$tmp/lb.json")
    ltg=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%.0f' % [x['avg_ts'] for x in r if x['n_gen']>0][0])" "$tmp/lb.json")
    printf '| %s | %d | %s | %.0f | %.0f | %s | %s | %s | %s |\n' "$t" "$r" "$load" \
      "$(echo "$a" | num prefill_tok_per_s)" "$(echo "$a" | num decode_tok_per_s)" \
      "$( [ -n "$b" ] && printf '%.0f' "$(echo "$b" | num prefill_tok_per_s)" || echo -)" \
      "$( [ -n "$b" ] && printf '%.0f' "$(echo "$b" | num decode_tok_per_s)" || echo -)" "$lpp" "$ltg"
  done
done
