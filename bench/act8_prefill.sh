#!/usr/bin/env bash
# Whole-model prefill with int8 activations, before and after a change (docs/RESULTS.md, Part G): `ptq bench --act8`
# of two .ptq files (e.g. W4 g32 and W8 g32 of the same model) with a baseline ptq binary and with build/ptq, and
# build/ptq on the float model, alternated for ROUNDS rounds; one line per run with the 1-minute load before/after.
#   bench/act8_prefill.sh PTQ_BEFORE FLOAT_MODEL A.ptq B.ptq [ROUNDS] [TOKENS]
# PTQ_BEFORE: a ptq binary built from the tree before the change (e.g. `git archive REV | tar -x -C DIR`, then build).
set -euo pipefail
cd "$(dirname "$0")/.."
before="${1:?usage: bench/act8_prefill.sh PTQ_BEFORE FLOAT_MODEL A.ptq B.ptq [ROUNDS] [TOKENS]}"
float_model="${2:?}"; qa="${3:?}"; qb="${4:?}"; rounds="${5:-2}"; tokens="${6:-256}"
after=build/ptq
load() { cut -d' ' -f1 /proc/loadavg; }
run() { # BIN MODEL [--act8] -> prefill tok/s
  "$1" bench "$2" ${3:-} --tokens "$tokens" --steps 4 --reps 2 --no-bandwidth --json |
    python3 -c 'import json, sys; print("%.1f" % json.load(sys.stdin)["prefill_tok_per_s"])'
}
echo "round  run                                  prefill tok/s  load before/after"
for r in $(seq "$rounds"); do
  for spec in "before:$qa" "after:$qa" "before:$qb" "after:$qb" "float:$float_model"; do
    who=${spec%%:*}; m=${spec#*:}
    bin=$after; flag=--act8
    [ "$who" = before ] && bin=$before
    [ "$who" = float ] && flag=
    l0=$(load); t=$(run "$bin" "$m" $flag); l1=$(load)
    printf '%-6s %-36s %13s  %s/%s\n' "$r" "$who $(basename "$m") ${flag}" "$t" "$l0" "$l1"
  done
done
