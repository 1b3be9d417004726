#!/usr/bin/env bash
# ptq's GGUF exports against llama.cpp's own quantizer, evaluated by llama.cpp (docs/RESULTS.md, "GGUF export"):
# for each type, llama-quantize without and with an importance matrix (llama-imatrix on the calibration text),
# and ptq RTN, GPTQ and GPTQ + Bias Compensation into the same type, each file's perplexity measured by
# llama-perplexity on the held-out text. Needs ./scripts/refs.sh and ./bench/llama_tools.sh (llama.cpp's tools).
#   bench/gguf_compare.sh [MODEL_DIR CALIB_TEXT HELDOUT_TEXT [TYPES...]]
# Defaults: llama-shakespeare-256, calibrated on paragraphs 0-1999 of tinyshakespeare (its training part),
# evaluated on shakespeare-eval.txt. Prints a Markdown table. Environment: PTQ_BIN (the ptq binary, default
# build/ptq: copy it elsewhere to keep rebuilding while this runs), PTQ_DOCS_SEP (the calibration text's document
# separator, default a blank line; paragraphs are counted on blank lines either way), PTQ_SPEED=0 (skip the speed
# table). stories260K, for example (llama2.c: its tok512.bin lies beside it):
#   PTQ_DOCS_SEP='<|endoftext|>' bench/gguf_compare.sh ../shared/data/stories260K/stories260K.bin calib.txt eval.txt
set -euo pipefail
cd "$(dirname "$0")/.."
data="${PTQ_DATA:-$(pwd)/../shared/data}"
model="${1:-$data/llama-shakespeare-256}"
calib_src="${2:-$data/tinyshakespeare/input.txt}"
heldout="${3:-$data/llama-shakespeare-256/shakespeare-eval.txt}"
shift 3 2> /dev/null || shift $#
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(Q8_0 Q6_K Q5_K Q5_0 Q4_K Q4_K_M Q4_0 Q3_K Q3_K_M Q2_K)
ptq="${PTQ_BIN:-build/ptq}"
bins=$(./bench/llama_tools.sh)
ctx=256
tmp=$(mktemp -d /tmp/ptq-gguf-compare-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# the calibration text both tools see: the first 2000 paragraphs
awk 'BEGIN { RS = ""; ORS = "\n\n" } NR <= 2000' "$calib_src" > "$tmp/calib.txt"
calib=(--calib "$tmp/calib.txt" --docs-sep "${PTQ_DOCS_SEP:-$'\n\n'}" --calib-n 128 --calib-ctx "$ctx" --seed 1)

"$ptq" quantize "$model" --method rtn --type F32 -o "$tmp/f32.gguf" --json > /dev/null
"$bins/llama-imatrix" -m "$tmp/f32.gguf" -f "$tmp/calib.txt" -c "$ctx" --chunks 128 -o "$tmp/imatrix.dat" \
  > "$tmp/imatrix.log" 2>&1 || { tail -5 "$tmp/imatrix.log"; exit 1; }

ppl() { # llama.cpp's perplexity of a GGUF on the held-out text (llama-perplexity's asynchronous log sometimes loses
        # its last lines at exit: run it again then)
  local v="" try
  for try in 1 2 3; do
    "$bins/llama-perplexity" -m "$1" -f "$heldout" -c "$ctx" -t "$(nproc)" > "$tmp/ppl.log" 2>&1 || break
    v=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$tmp/ppl.log")
    [ -n "$v" ] && break
  done
  [ -n "$v" ] || { echo "no perplexity for $1:" >&2; tail -c 300 "$tmp/ppl.log" >&2; v=nan; }
  echo "$v"
}
size_bpw() { # file size in MB and bits per weight of the matrices (file size over parameters)
  awk -v b="$(stat -c %s "$1")" -v p="$2" 'BEGIN { printf "%.2f MB | %.2f", b / 1e6, 8 * b / p }'
}
params=$("$ptq" inspect "$model" --json | sed -n 's/.*"params":[[:space:]]*\([0-9]*\).*/\1/p')
echo "F32: llama.cpp perplexity $(ppl "$tmp/f32.gguf") (context $ctx)"
echo
echo "| type | llama.cpp | llama.cpp + imatrix | ptq RTN | ptq GPTQ | ptq GPTQ+BC | file (GPTQ+BC) | bits/weight |"
echo "|---|---|---|---|---|---|---|---|"
for t in "${types[@]}"; do
  "$bins/llama-quantize" "$tmp/f32.gguf" "$tmp/lq.gguf" "$t" > "$tmp/q.log" 2>&1 || { tail -3 "$tmp/q.log"; continue; }
  "$bins/llama-quantize" --imatrix "$tmp/imatrix.dat" "$tmp/f32.gguf" "$tmp/lqi.gguf" "$t" > "$tmp/q.log" 2>&1 ||
    { tail -3 "$tmp/q.log"; continue; }
  "$ptq" quantize "$model" --method rtn --type "$t" -o "$tmp/rtn.gguf" --json > /dev/null
  "$ptq" quantize "$model" "${calib[@]}" --method gptq --type "$t" -o "$tmp/gptq.gguf" --json > /dev/null
  "$ptq" quantize "$model" "${calib[@]}" --method gptq --bc --type "$t" -o "$tmp/bc.gguf" --json > /dev/null
  echo "| $t | $(ppl "$tmp/lq.gguf") | $(ppl "$tmp/lqi.gguf") | $(ppl "$tmp/rtn.gguf") | $(ppl "$tmp/gptq.gguf") |" \
       "$(ppl "$tmp/bc.gguf") | $(size_bpw "$tmp/bc.gguf" "$params") |"
done

[ "${PTQ_SPEED:-1}" = 0 ] && exit 0
# speed on the same files (the RTN exports, which are llama-quantize's own files): llama.cpp's llama-bench and
# ptq bench, alternately, 128-token prefill and 64-token decode, all cores
echo
echo "| type | llama.cpp prefill tok/s | ptq prefill tok/s | llama.cpp decode tok/s | ptq decode tok/s |"
echo "|---|---|---|---|---|"
for t in "${types[@]}"; do
  "$ptq" quantize "$model" --method rtn --type "$t" -o "$tmp/rtn.gguf" --json > /dev/null
  "$bins/llama-bench" -m "$tmp/rtn.gguf" -p 128 -n 64 -t "$(nproc)" -r 3 -o json > "$tmp/lb.json" 2> /dev/null
  lpp=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%.0f' % [x['avg_ts'] for x in r if x['n_prompt']>0][0])" "$tmp/lb.json")
  ltg=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%.0f' % [x['avg_ts'] for x in r if x['n_gen']>0][0])" "$tmp/lb.json")
  pb=$("$ptq" bench "$tmp/rtn.gguf" --tokens 128 --steps 64 --reps 3 --json)
  ppp=$(echo "$pb" | sed -n 's/.*"prefill_tok_per_s": *\([0-9.e+]*\).*/\1/p')
  ptg=$(echo "$pb" | sed -n 's/.*"decode_tok_per_s": *\([0-9.e+]*\).*/\1/p')
  printf '| %s | %s | %.0f | %s | %.0f |\n' "$t" "$lpp" "$ppp" "$ltg" "$ptg"
done
