#!/usr/bin/env bash
# Decode only, ptq against llama.cpp on prepared files, the tools alternated (docs/RESULTS.md §21):
#   bench/llama_decode.sh LLAMA.gguf PTQ_FILE [ROUNDS]
# each round: llama-bench's tg64 (64 tokens from an empty context, all cores, one repetition), then
# `ptq bench PTQ_FILE --tokens 1 --steps 64 --act8` (the same: decoding from an empty context), one line per round
# with the 1-minute load. The files come from bench/llama_speed.sh's preparation (PTQ_SPEED_DIR). Needs
# build-ref/llama-build/bin (bench/llama_tools.sh). PTQ_BENCH_OPTS replaces --act8.
set -euo pipefail
cd "$(dirname "$0")/.."
gguf="${1:?usage: bench/llama_decode.sh LLAMA.gguf PTQ_FILE [ROUNDS]}"
pf="${2:?usage: bench/llama_decode.sh LLAMA.gguf PTQ_FILE [ROUNDS]}"
rounds="${3:-3}"
bins=$(./bench/llama_tools.sh)
ptq=${PTQ:-build/ptq}
threads=$(nproc)
for ((r = 1; r <= rounds; r++)); do
  l=$(LD_LIBRARY_PATH="$bins:${LD_LIBRARY_PATH:-}" "$bins/llama-bench" -m "$gguf" -p 0 -n 64 -t "$threads" -r 1 -o json \
        2> /dev/null | python3 -c 'import json, sys; print("%.1f" % json.load(sys.stdin)[0]["avg_ts"])')
  # shellcheck disable=SC2086
  p=$("$ptq" bench "$pf" --tokens 1 --steps 64 --reps 1 --no-bandwidth ${PTQ_BENCH_OPTS---act8} --json |
        python3 -c 'import json, sys; print("%.1f" % json.load(sys.stdin)["decode_tok_per_s"])')
  awk -v r="$r" -v l="$l" -v p="$p" -v ld="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN { printf "round %d: llama.cpp %.1f tok/s, ptq %.1f tok/s, ratio %.2f, load %s\n", r, l, p, p / l, ld }'
done
