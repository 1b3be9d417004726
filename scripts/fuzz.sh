#!/usr/bin/env bash
# Build the libFuzzer harnesses of fuzz/ (clang, ASan + UBSan) into build-fuzz/, replay fuzz/regressions/,
# then run each harness for SECONDS (default 60) on its corpus and print, per harness, the executions, the
# coverage (cov: edges, ft: features, from libFuzzer's final stats) and the findings. See docs/FUZZING.md.
#   scripts/fuzz.sh [SECONDS]       SECONDS 0: build and replay the regressions only
# Environment: PTQ_FUZZ_ONLY="fuzz_idx fuzz_ptq" runs only those harnesses; PTQ_FUZZ_JOBS harnesses at a
# time (default: the cores); PTQ_FUZZ_KEEP_GOING=1 keeps fuzzing after a finding (libFuzzer's fork mode);
# PTQ_DATA the sample-data folder. Exits 1 on any finding, whose input is kept in fuzz/findings/HARNESS/.
# The corpus grows in fuzz/corpus/HARNESS/ (seeds: fuzz/seeds/, regenerated from the sample data each run).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
jobs=${PTQ_FUZZ_JOBS:-$(nproc)}
data="${PTQ_DATA:-$(pwd)/../shared/data}"
export OMP_NUM_THREADS=1
# the harnesses' input folders and libFuzzer's fork-mode files: here, not in /tmp, and cleared each run
export TMPDIR="$(pwd)/build-fuzz/tmp"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"

echo "== building the fuzz harnesses (clang, ASan + UBSan)"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPTQ_FUZZ=ON -DPTQ_WERROR=ON > /dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzzers ptq > /dev/null
harnesses=${PTQ_FUZZ_ONLY:-$(cd fuzz && ls fuzz_*.c | sed 's/\.c$//' | grep -v '^fuzz_util$')}

echo "== replaying fuzz/regressions"
fail=0
for h in $harnesses; do
  [ -d "fuzz/regressions/$h" ] || continue
  mapfile -t inputs < <(find "fuzz/regressions/$h" -type f | sort)
  [ ${#inputs[@]} -gt 0 ] || continue
  if ! "build-fuzz/fuzz/$h" -timeout=60 "${inputs[@]}" > "build-fuzz/replay-$h.log" 2>&1; then
    echo "$h: a regression input fails again (build-fuzz/replay-$h.log)"; fail=1
  else
    echo "$h: ${#inputs[@]} inputs pass"
  fi
done
[ "$fail" = 0 ] || exit 1
[ "$secs" -gt 0 ] || exit 0

echo "== seeds (from $data and tests/data)"
rm -rf fuzz/seeds
python3 fuzz/make_seeds.py "$data" fuzz/seeds
# .ptq seeds: a tiny checkpoint with stories260K's vocabulary, quantized eight ways (two with tightly stored 5-7-bit codes: format version 4; two symmetric, without zero points: version 5), four with a packed or 16-bit head/embedding table (first byte: the flags)
if [ -f "$data/stories260K/tok512.bin" ]; then
  mkdir -p fuzz/seeds/fuzz_ptq
  i=0
  for opts in "--wbits 3 --act-order" "--wbits 8 --group channel --sym --method rtn --abits 8 --bc" \
              "--wbits 2 --group 32 --abits 4 --act-per-token --quant-attn" \
              "--wbits 4 --method rtn --head-bits 4 --head-group 32" "--wbits 4 --method rtn --embed-bits 16" \
              "--wbits 5 --method rtn --head-bits 6 --head-group 32" "--wbits 7 --act-order" \
              "--wbits 4 --group 32 --sym --method rtn --head-bits 6"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    ASAN_OPTIONS=detect_leaks=0 build-fuzz/ptq quantize fuzz/seeds/fuzz_llama2c/tiny-v512 --tokenizer \
      "$data/stories260K/tok512.bin" --calib "$data/tinystories/tinystories-valid-100.txt" --docs-sep '<|endoftext|>' \
      --docs 0:2 --calib-ctx 8 $opts -o build-fuzz/seed.ptq > /dev/null 2>&1
    { printf '\001'; cat build-fuzz/seed.ptq; } > "fuzz/seeds/fuzz_ptq/tiny-$i"
  done
fi

echo "== fuzzing each harness for ${secs}s ($jobs at a time)"
run_one() {
  local h=$1 log=build-fuzz/fuzz-$1.log
  mkdir -p "fuzz/corpus/$h" "fuzz/findings/$h" "fuzz/seeds/$h"
  local keep=()
  [ "${PTQ_FUZZ_KEEP_GOING:-0}" = 1 ] && keep=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  "build-fuzz/fuzz/$h" "${keep[@]}" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -print_final_stats=1 \
    -artifact_prefix="fuzz/findings/$h/" "fuzz/corpus/$h" "fuzz/seeds/$h" > "$log" 2>&1 || true
}
export -f run_one
export secs
before=$(mktemp)
mkdir -p fuzz/findings
find fuzz/findings -type f | sort > "$before"
printf '%s\n' $harnesses | xargs -P "$jobs" -I{} bash -c 'run_one {}'

printf '%-24s %12s %8s %8s  %s\n' harness executions cov ft findings
for h in $harnesses; do
  log=build-fuzz/fuzz-$h.log
  # the last status line: "#EXECS ... cov: N ft: N ..."
  last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<< "$last")
  execs=$(grep -oE 'number_of_executed_units: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || echo "${execs:-?}")
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<< "$last")
  ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<< "$last")
  new=$(find "fuzz/findings/$h" -type f | sort | comm -13 "$before" - | tr '\n' ' ')
  printf '%-24s %12s %8s %8s  %s\n' "$h" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${new:-none}"
  if [ -n "$new" ] || grep -qE '^==[0-9]+==ERROR|runtime error:|ERROR: libFuzzer' "$log"; then
    fail=1
    echo "  $h: see $log; replay with build-fuzz/fuzz/$h FILE"
  fi
done
rm -f "$before"
exit "$fail"
