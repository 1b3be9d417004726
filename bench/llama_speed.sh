#!/usr/bin/env bash
# ptq against llama.cpp on the same model, same machine, same threads (docs/RESULTS.md, "Speed against llama.cpp"):
# prefill and decode tokens/s and peak RSS of
#   ptq W4 g32 (.ptq)  vs  llama.cpp Q4_0 and Q4_K_M      ptq W8 g32 (.ptq)  vs  llama.cpp Q8_0
#   ptq float (the model itself)  vs  llama.cpp F32
# and ptq running llama.cpp's own Q4_0 / Q8_0 files (the same bytes) beside llama-bench on them.
# llama.cpp's files come from its own llama-quantize, from the F32 GGUF ptq exports (exactly the model's weights).
# The tools run alternately, ROUNDS times; the table holds the medians. Needs ./scripts/refs.sh and
# ./bench/llama_tools.sh (llama-bench, llama-quantize).
#   bench/llama_speed.sh MODEL_DIR [ROUNDS]        PTQ_QUANT_OPTS: extra options for ptq quantize (e.g. --head-bits 8)
# MODEL_DIR: a LLaMA-architecture model ptq reads (safetensors + config.json); bench/make_llama7b_shape.py writes the
# TinyLlama- and 7B-shaped ones used in RESULTS. Prefill: 256 tokens; decode: 64 tokens; threads: all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:?usage: bench/llama_speed.sh MODEL_DIR [ROUNDS]}"
rounds="${2:-3}"
ptq=build/ptq
bins=$(./bench/llama_tools.sh)
threads=$(nproc)
tmp=$(mktemp -d /tmp/ptq-llama-speed-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# RTN needs no calibration, but ptq quantize reads a little text for its per-layer error report; a synthetic
# model folder without a tokenizer borrows llama.cpp's 32000-token test vocabulary (PTQ_REFS) to read it
printf 'Once upon a time there was a model.\n' > "$tmp/calib.txt"
tok=()
if [ -d "$model" ] && ! ls "$model"/tokenizer.json "$model"/tokenizer.bin "$model"/tok*.bin "$model"/vocab.json \
     > /dev/null 2>&1; then
  tok=(--tokenizer "${PTQ_REFS:-$(pwd)/build-ref}/llama.cpp/models/ggml-vocab-llama-spm.gguf")
fi
q() { "$ptq" quantize "$model" "${tok[@]}" --calib "$tmp/calib.txt" --calib-n 1 --calib-ctx 8 --method rtn \
        ${PTQ_QUANT_OPTS:-} "$@" --json > /dev/null; }
echo "preparing the files in $tmp ..." >&2
q --type F32 -o "$tmp/f32.gguf"
for t in Q4_0 Q4_K_M Q8_0; do
  "$bins/llama-quantize" "$tmp/f32.gguf" "$tmp/$t.gguf" "$t" > "$tmp/lq.log" 2>&1 || { tail -3 "$tmp/lq.log"; exit 1; }
done
q --wbits 4 --group 32 -o "$tmp/w4.ptq"
q --wbits 8 --group 32 -o "$tmp/w8.ptq"

# one measurement: prints "prefill decode rss_kib"
run_llama() {
  /usr/bin/time -f %M -o "$tmp/rss" "$bins/llama-bench" -m "$1" -p 256 -n 64 -t "$threads" -r 1 -o json \
    > "$tmp/lb.json" 2> /dev/null
  python3 - "$tmp/lb.json" "$(cat "$tmp/rss")" << 'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
pp = [x["avg_ts"] for x in r if x["n_prompt"] > 0][0]
tg = [x["avg_ts"] for x in r if x["n_gen"] > 0][0]
print(pp, tg, sys.argv[2])
EOF
}
run_ptq() {
  /usr/bin/time -f %M -o "$tmp/rss" "$ptq" bench "$1" --tokens 256 --steps 64 --reps 1 --no-bandwidth --json > "$tmp/pb.json"
  python3 - "$tmp/pb.json" "$(cat "$tmp/rss")" << 'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["prefill_tok_per_s"], r["decode_tok_per_s"], sys.argv[2])
EOF
}

# label | ptq file | llama.cpp file
pairs=("ptq W4 g32 vs Q4_0|$tmp/w4.ptq|$tmp/Q4_0.gguf"
       "ptq W4 g32 vs Q4_K_M|$tmp/w4.ptq|$tmp/Q4_K_M.gguf"
       "ptq W8 g32 vs Q8_0|$tmp/w8.ptq|$tmp/Q8_0.gguf"
       "float vs F32|$model|$tmp/f32.gguf"
       "ptq on Q4_0.gguf vs Q4_0|$tmp/Q4_0.gguf|$tmp/Q4_0.gguf"
       "ptq on Q8_0.gguf vs Q8_0|$tmp/Q8_0.gguf|$tmp/Q8_0.gguf")
load0=$(cut -d' ' -f1 /proc/loadavg)
for ((r = 1; r <= rounds; r++)); do
  for i in "${!pairs[@]}"; do
    IFS='|' read -r label pf lf <<< "${pairs[$i]}"
    echo "round $r/$rounds: $label" >&2
    echo "$i ptq $(run_ptq "$pf")" >> "$tmp/results"
    echo "$i llama $(run_llama "$lf")" >> "$tmp/results"
  done
done
load1=$(cut -d' ' -f1 /proc/loadavg)

med() { # median of field $3 for pair $1, tool $2
  awk -v i="$1" -v t="$2" -v f="$3" '$1 == i && $2 == t { print $f }' "$tmp/results" | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
bpw() { # bits per parameter of a file, or of a model folder's *.safetensors
  local b; if [ -d "$1" ]; then b=$(cat "$1"/*.safetensors | wc -c); else b=$(stat -c %s "$1"); fi
  awk -v b="$b" -v p="$params" 'BEGIN { printf "%.2f", 8 * b / p }'; }
params=$("$ptq" inspect "$model" --json | sed -n 's/.*"params":[[:space:]]*\([0-9]*\).*/\1/p')

echo "model: $model ($params parameters), $threads threads, prefill 256 tokens, decode 64, medians of $rounds" \
     "alternating rounds, 1-minute load $load0 before, $load1 after"
echo
echo "| pair (ptq vs llama.cpp) | bits/weight (file) | prefill tok/s | decode tok/s | ratio ptq/llama.cpp (prefill, decode) | peak RSS |"
echo "|---|---|---|---|---|---|"
for i in "${!pairs[@]}"; do
  IFS='|' read -r label pf lf <<< "${pairs[$i]}"
  pp=$(med "$i" ptq 3); tg=$(med "$i" ptq 4); rs=$(med "$i" ptq 5)
  lpp=$(med "$i" llama 3); ltg=$(med "$i" llama 4); lrs=$(med "$i" llama 5)
  awk -v l="$label" -v pb="$(bpw "$pf")" -v lb="$(bpw "$lf")" -v pp="$pp" -v tg="$tg" -v rs="$rs" -v lpp="$lpp" -v ltg="$ltg" \
      -v lrs="$lrs" 'BEGIN { printf "| %s | %s vs %s | %.1f vs %.1f | %.1f vs %.1f | %.2f, %.2f | %.2f vs %.2f GiB |\n",
                              l, pb, lb, pp, lpp, tg, ltg, pp / lpp, tg / ltg, rs / 1048576, lrs / 1048576 }'
done
