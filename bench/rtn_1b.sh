#!/usr/bin/env bash
# RTN (W4 g128) of the TinyLlama-1.1B shape end to end: time, peak RSS and the load average, next to the
# share of the time the per-layer error report takes (the "rel. output error" lines: the report is
# computed on sampled output rows where a layer's exact cost passes 2^28 multiply-adds, src/quant/layer_error.c).
#   bench/rtn_1b.sh [BUILD_DIR] [MODEL_DIR]     (makes MODEL_DIR with bench/make_llama7b_shape.py if missing)
# Needs llama.cpp's 32000-token SentencePiece vocabulary from the test references (PTQ_REFS) to tokenize
# the calibration text; calibration: 4 windows of 512 tokens of TinyStories.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
model=${2:-/tmp/tinyllama-shape}
refs=${PTQ_REFS:-/work/main/build-ref}
data=${PTQ_DATA:-$here/../shared/data}
[ -f "$model/config.json" ] || /usr/bin/python3 "$here/bench/make_llama7b_shape.py" "$model" 22 --dim 2048 --ffn 5632 \
  --heads 32 --kv-heads 4 --ctx 2048
out=$(mktemp -d /tmp/rtn1b-XXXXXX)
trap 'rm -rf "$out"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v "$build/ptq" quantize "$model" --tokenizer "$refs/llama.cpp/models/ggml-vocab-llama-spm.gguf" \
  --calib "$data/tinystories/tinystories-valid-100.txt" --calib-n 4 --calib-ctx 512 \
  --method rtn --wbits 4 --group 128 -o "$out/q.ptq" 2> "$out/err" > "$out/out" || { cat "$out/err"; exit 1; }
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$out/out"
grep -E "Elapsed|Maximum resident" "$out/err"
awk '/rel. output error/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+s$/) s += $i; n++ }
     END { printf "%d layers, quantization + error report per layer summed: %.1f s\n", n, s }' "$out/err"
