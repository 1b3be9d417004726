#!/bin/bash
# Peak RSS and time of a streamed `ptq quantize` on the synthetic LLaMA-2-7B-shaped models of
# bench/make_llama7b_shape.py (docs/RESULTS.md §15):
#   [METHOD=rtn] [CALIB_N=16] [CALIB_CTX=128] bench/stream_rss.sh PTQ MODEL_DIR OUT.ptq [extra quantize options...]
# prints one line: model, layers, peak RSS (GiB), wall seconds, the load average before and after, output size.
# Every ${SAMPLE_S:-20} s, OUT.mem.log gets VmHWM, VmRSS, RssAnon, RssFile (kB), the layers quantized so far and the load
# (the peak so far of a run stopped early, and whether mapped file pages or the process's own memory make it).
# The calibration text and the 32000-token vocabulary come from the sample data and llama.cpp's test vocab
# (PTQ_REFS): the weights are random, so any text that tokenizes into the vocabulary serves.
set -euo pipefail
PTQ="$1" MODEL="$2" OUT="$3"; shift 3
SRC="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${PTQ_DATA:-$SRC/../shared/data}"
REFS="${PTQ_REFS:-$SRC/build-ref}"
VOCAB="$REFS/llama.cpp/models/ggml-vocab-llama-spm.gguf"
LOG="$OUT.time.log"
l0=$(cut -d' ' -f1 /proc/loadavg)
/usr/bin/time -v "$PTQ" quantize "$MODEL" --tokenizer "$VOCAB" --calib "$DATA/tinystories/tinystories-valid-100.txt" \
  --calib-n "${CALIB_N:-16}" --calib-ctx "${CALIB_CTX:-128}" --method "${METHOD:-gptq}" --wbits 4 --group 128 --no-layer-error \
  -o "$OUT" "$@" > "$OUT.log" 2> "$LOG" &
tpid=$!
: > "$OUT.mem.log"
while kill -0 "$tpid" 2> /dev/null; do
  pid=$(pgrep -P "$tpid" | head -1 || true)
  if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
    st=$(grep -E '^(VmHWM|VmRSS|RssAnon|RssFile)' "/proc/$pid/status" | tr -s ' \t' ' ' | cut -d' ' -f1,2 | tr '\n' ' ' || true)
    echo "$(date +%T) $st layers=$(grep -ac 'rel. output error' "$LOG" || true) load=$(cut -d' ' -f1 /proc/loadavg)" >> "$OUT.mem.log"
  fi
  sleep "${SAMPLE_S:-20}"
done
wait "$tpid"
l1=$(cut -d' ' -f1 /proc/loadavg)
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$LOG")
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$LOG")
layers=$(sed -n 's/.*"num_hidden_layers": *\([0-9]*\).*/\1/p' "$MODEL/config.json")
printf '%s layers=%s peak_rss_gib=%.2f wall=%s load_before=%s load_after=%s out_bytes=%s\n' "$MODEL" "$layers" \
  "$(echo "$rss / 1048576" | bc -l)" "$wall" "$l0" "$l1" "$(stat -c %s "$OUT")"
