#!/usr/bin/env bash
# ptq against llama.cpp on the same model, same machine, same threads (docs/RESULTS.md, "Speed against llama.cpp"):
# prefill and decode tokens/s and peak RSS of
#   ptq W4 g32 (.ptq)  vs  llama.cpp Q4_0 and Q4_K_M      ptq W8 g32 (.ptq)  vs  llama.cpp Q8_0
#   ptq float (the model itself)  vs  llama.cpp F32
# and ptq running llama.cpp's own Q4_0 / Q4_K_M / Q8_0 / Q3_K_M / Q2_K files (the same bytes) beside llama-bench on
# them.
# llama.cpp's files come from its own llama-quantize, from the F32 GGUF ptq exports (exactly the model's weights).
# Like for like by default: llama.cpp's Q4_0 is a symmetric grid with an fp16 scale per 32 weights (4.5 bits),
# keeps the output head in Q6_K (6.56 bits) and the token embeddings in Q4_0, its Q8_0 all in Q8_0 (8.5 bits), and
# it multiplies quantized weights with 8-bit activations; so ptq's W4 file is --sym g32 with --head-bits 6
# --embed-bits 4 (4.5, 6.5 and 4.5 bits), its W8 file --sym g32 with --head-bits 8 --embed-bits 8 (8.5 bits), and
# ptq bench runs with --act8.
# The tools run alternately, ROUNDS times; the table holds the medians. Needs ./scripts/refs.sh and
# ./bench/llama_tools.sh (llama-bench, llama-quantize).
#   bench/llama_speed.sh MODEL_DIR [ROUNDS]        (ROUNDS 0: prepare the files only)
# Environment:
#   PTQ_SPEED_DIR   keep the prepared files in this folder and reuse them (default: a temporary folder)
#   PTQ_W4_OPTS     ptq quantize options of the W4 file (default: --wbits 4 --group 32 --sym --head-bits 6 --embed-bits 4)
#   PTQ_W8_OPTS     the same for W8 (default: --wbits 8 --group 32 --sym --head-bits 8 --embed-bits 8)
#   (the prepared ptq files are named after a hash of their options, so changing them prepares new ones)
#   PTQ_BENCH_OPTS  ptq bench options for the quantized files (default: --act8; empty: float activations)
#   PTQ_SPEED_ONLY  measure only the pairs whose label matches this extended regex (e.g. 'on Q[23]_K')
# MODEL_DIR: a LLaMA-architecture model ptq reads (safetensors + config.json); bench/make_llama7b_shape.py writes the
# TinyLlama- and 7B-shaped ones used in RESULTS. Prefill: 256 tokens; decode: 64 tokens from an empty context (both
# tools); threads: all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:?usage: bench/llama_speed.sh MODEL_DIR [ROUNDS]}"
rounds="${2:-3}"
ptq=${PTQ:-build/ptq}
bins=$(./bench/llama_tools.sh)
threads=$(nproc)
w4opts=${PTQ_W4_OPTS:---wbits 4 --group 32 --sym --head-bits 6 --embed-bits 4}
w8opts=${PTQ_W8_OPTS:---wbits 8 --group 32 --sym --head-bits 8 --embed-bits 8}
benchopts=${PTQ_BENCH_OPTS---act8}
tmp=$(mktemp -d /tmp/ptq-llama-speed-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
files=${PTQ_SPEED_DIR:-$tmp}
mkdir -p "$files"

# RTN needs no calibration, but ptq quantize reads a little text; a synthetic model folder without a tokenizer
# borrows llama.cpp's 32000-token test vocabulary (PTQ_REFS) to read it
printf 'Once upon a time there was a model.\n' > "$tmp/calib.txt"
tok=()
if [ -d "$model" ] && ! ls "$model"/tokenizer.json "$model"/tokenizer.bin "$model"/tok*.bin "$model"/vocab.json \
     > /dev/null 2>&1; then
  tok=(--tokenizer "${PTQ_REFS:-$(pwd)/build-ref}/llama.cpp/models/ggml-vocab-llama-spm.gguf")
fi
q() { # q OUT OPTIONS...: unless OUT exists already
  local out=$1; shift
  [ -s "$out" ] && return 0
  echo "preparing $out ..." >&2
  "$ptq" quantize "$model" "${tok[@]}" --calib "$tmp/calib.txt" --calib-n 1 --calib-ctx 8 --method rtn \
    --no-layer-error "$@" -o "$out" --json > /dev/null
}
q "$files/f32.gguf" --type F32
for t in Q4_0 Q4_K_M Q8_0 Q3_K_M Q2_K; do
  [ -s "$files/$t.gguf" ] && continue
  echo "preparing $files/$t.gguf ..." >&2
  "$bins/llama-quantize" "$files/f32.gguf" "$files/$t.gguf" "$t" > "$tmp/lq.log" 2>&1 ||
    { rm -f "$files/$t.gguf"; tail -3 "$tmp/lq.log"; exit 1; }
done
w4="$files/w4-$(printf %s "$w4opts" | md5sum | cut -c1-8).ptq"
w8="$files/w8-$(printf %s "$w8opts" | md5sum | cut -c1-8).ptq"
# shellcheck disable=SC2086 # the options are word lists
q "$w4" $w4opts
# shellcheck disable=SC2086
q "$w8" $w8opts
[ "$rounds" = 0 ] && { echo "prepared the files in $files" >&2; exit 0; }  # ROUNDS 0: prepare only

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
run_ptq() { # run_ptq FILE [OPTIONS]: prefill of 256 tokens, then (a second run) decode of 64 from an empty
  # context, as llama-bench's pp256 and tg64 tests; the peak RSS is the larger of the two runs
  # shellcheck disable=SC2086
  /usr/bin/time -f %M -o "$tmp/rss" "$ptq" bench "$1" --tokens 256 --steps 1 --reps 1 --no-bandwidth ${2:-} --json \
    > "$tmp/pb.json"
  # shellcheck disable=SC2086
  /usr/bin/time -f %M -o "$tmp/rss2" "$ptq" bench "$1" --tokens 1 --steps 64 --reps 1 --no-bandwidth ${2:-} --json \
    > "$tmp/pb2.json"
  python3 - "$tmp/pb.json" "$tmp/pb2.json" "$(cat "$tmp/rss")" "$(cat "$tmp/rss2")" << 'EOF'
import json, sys
p, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(p["prefill_tok_per_s"], d["decode_tok_per_s"], max(int(sys.argv[3]), int(sys.argv[4])))
EOF
}

# label | ptq file | llama.cpp file
pairs=("ptq W4 g32 vs Q4_0|$w4|$files/Q4_0.gguf"
       "ptq W4 g32 vs Q4_K_M|$w4|$files/Q4_K_M.gguf"
       "ptq W8 g32 vs Q8_0|$w8|$files/Q8_0.gguf"
       "float vs F32|$model|$files/f32.gguf"
       "ptq on Q4_0.gguf vs Q4_0|$files/Q4_0.gguf|$files/Q4_0.gguf"
       "ptq on Q4_K_M.gguf vs Q4_K_M|$files/Q4_K_M.gguf|$files/Q4_K_M.gguf"
       "ptq on Q8_0.gguf vs Q8_0|$files/Q8_0.gguf|$files/Q8_0.gguf"
       "ptq on Q3_K_M.gguf vs Q3_K_M|$files/Q3_K_M.gguf|$files/Q3_K_M.gguf"
       "ptq on Q2_K.gguf vs Q2_K|$files/Q2_K.gguf|$files/Q2_K.gguf")
if [ -n "${PTQ_SPEED_ONLY:-}" ]; then
  kept=()
  for p in "${pairs[@]}"; do if [[ "${p%%|*}" =~ $PTQ_SPEED_ONLY ]]; then kept+=("$p"); fi; done
  [ ${#kept[@]} -gt 0 ] || { echo "PTQ_SPEED_ONLY '$PTQ_SPEED_ONLY' matches no pair" >&2; exit 2; }
  pairs=("${kept[@]}")
fi
load0=$(cut -d' ' -f1 /proc/loadavg)
for ((r = 1; r <= rounds; r++)); do
  for i in "${!pairs[@]}"; do
    IFS='|' read -r label pf lf <<< "${pairs[$i]}"
    echo "round $r/$rounds: $label" >&2
    opts=$benchopts; [ "$pf" = "$model" ] && opts=""  # the float model has no packed layers
    echo "$i ptq $(run_ptq "$pf" "$opts")" >> "$tmp/results"
    echo "$i llama $(run_llama "$lf")" >> "$tmp/results"
  done
done
load1=$(cut -d' ' -f1 /proc/loadavg)

med() { # median of field $3 for pair $1, tool $2
  awk -v i="$1" -v t="$2" -v f="$3" '$1 == i && $2 == t { print $f }' "$tmp/results" | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
bpw() { # bits per parameter of a file, or of a model folder's *.safetensors
  local b; if [ -d "$1" ]; then b=$(cat "$1"/*.safetensors | wc -c); else b=$(stat -L -c %s "$1"); fi
  awk -v b="$b" -v p="$params" 'BEGIN { printf "%.2f", 8 * b / p }'; }
params=$("$ptq" inspect "$model" --json | sed -n 's/.*"params":[[:space:]]*\([0-9]*\).*/\1/p')

echo "model: $model ($params parameters), $threads threads, prefill 256 tokens, decode 64, medians of $rounds" \
     "alternating rounds, 1-minute load $load0 before, $load1 after"
kern=$(sed -n 's/.*"openblas_kernels":"\([^"]*\)".*/\1/p' "$tmp/pb.json")
echo "ptq W4: $w4opts; W8: $w8opts; ptq bench ${benchopts:-(float activations)}; OpenBLAS kernels (ptq's float" \
     "products): ${kern:-?}${OPENBLAS_CORETYPE:+ (set by OPENBLAS_CORETYPE)}"
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
