#!/usr/bin/env bash
# Decode GEMV with tightly stored 5- and 6-bit codes against W4 g32 and W8 g32 (8-bit storage: what a 5-7-bit grid
# cost before format version 4), on the issue's shapes 4096x14336 and 14336x4096, float and int8 activations.
# Formats alternate within each round (bench_qgemv --decode --fmt, each re-measuring the read bandwidth beside it);
# prints every round's table lines and the median cold GB/s and fraction of the read bandwidth per format and kernel.
#   bench/tight_bits_decode.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
out=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
  for f in W4g32 W5g32 W6g32 W8g32; do
    OMP_WAIT_POLICY=passive "$build/bench/bench_qgemv" --decode --fmt "$f" --json > "$out/$f.$r.json" 2> "$out/$f.$r.txt"
    echo "round $r $f: load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
for f in ("W4g32", "W5g32", "W6g32", "W8g32"):
    for r in range(1, rounds + 1):
        j = json.load(open(f"{d}/{f}.{r}.json"))
        j = j.get("results", j)
        for k, v in j.items():
            if k.endswith("_cold_gbs") and f in k:
                shape, kern = k.split("_")[1], k.split(f + "_")[1][: -len("_cold_gbs")]
                frac = j.get(k[: -len("_cold_gbs")] + "_frac_bw")
                ms = j.get(k[: -len("_cold_gbs")] + "_cold_ms")
                rows.setdefault((shape, f, kern), []).append((v, frac, ms))
print(f"{'shape':<11} {'weights':<7} {'kernel':<10} {'cold ms':>8} {'cold GB/s':>9} {'of bw':>6}   (median of {rounds})")
for (shape, f, kern), vs in sorted(rows.items()):
    g = statistics.median(v for v, _, _ in vs)
    fr = statistics.median(x for _, x, _ in vs if x is not None)
    ms = statistics.median(m for _, _, m in vs if m is not None)
    print(f"{shape:<11} {f:<7} {kern:<10} {ms:8.3f} {g:9.2f} {100 * fr:5.0f}%")
PY
rm -rf "$out"
