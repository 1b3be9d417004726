#!/bin/bash
# ptq's int8-activation path against llama.cpp on given files (docs/RESULTS.md §13, "with this session's kernels"):
#   bench/llama_speed_act8.sh Q4_0.gguf W4.ptq Q8_0.gguf W8.ptq FLOAT_MODEL
# two alternating rounds of llama-bench (pp 256, tg 64, 2 threads) and `ptq bench --tokens 256 --steps 64`, with
# peak RSS. The files come from bench/llama_speed.sh's preparation (llama-quantize) or ptq quantize (e.g. W4 g32
# with --head-bits 8 --embed-bits 4). Needs build-ref/llama-build/bin (bench/llama_tools.sh).
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
B="${PTQ_REFS:-$SRC/build-ref}/llama-build/bin"
P="$SRC/build/ptq"
Q4="$1" W4="$2" Q8="$3" W8="$4" FL="$5"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export LD_LIBRARY_PATH=$B:${LD_LIBRARY_PATH:-}
lb() { /usr/bin/time -f %M -o "$T"/fs.rss $B/llama-bench -m "$1" -p 256 -n 64 -t 2 -r 1 -o json > "$T"/fs.json 2>/dev/null
  python3 -c "import json;r=json.load(open('$T/fs.json'));print('%s pp %.1f tg %.1f rss_mib %d'%('$2',[x['avg_ts'] for x in r if x['n_prompt']>0][0],[x['avg_ts'] for x in r if x['n_gen']>0][0],int(open('$T/fs.rss').read())//1024))"; }
pb() { /usr/bin/time -f %M -o "$T"/fs.rss $P bench "$1" --tokens 256 --steps 64 --reps 1 --no-bandwidth --json ${3:-} > "$T"/fs.json
  python3 -c "import json;r=json.load(open('$T/fs.json'));print('%s pp %.1f tg %.1f rss_mib %d'%('$2',r['prefill_tok_per_s'],r['decode_tok_per_s'],int(open('$T/fs.rss').read())//1024))"; }
echo "load before $(cut -d' ' -f1-3 /proc/loadavg)"
for r in 1 2; do
  lb "$Q4" "llama Q4_0"
  pb "$W4" "ptq W4 --act8" --act8
  pb "$W4" "ptq W4 float activations"
  lb "$Q8" "llama Q8_0"
  pb "$W8" "ptq W8 --act8" --act8
  pb "$FL" "ptq float model"
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
