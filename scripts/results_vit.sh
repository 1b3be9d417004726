#!/usr/bin/env bash
# vit-mnist: calibrate on MNIST test images 0-999, evaluate top-1 on 1000-9999 (reference float 98.24%).
# Weight-only quantization with and without Bias Compensation. Prints a markdown table (docs/RESULTS.md).
# Usage: scripts/results_vit.sh [build/ptq]
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
P=${1:-build/ptq}
D=${PTQ_DATA:-$(dirname "$0")/../../shared/data}
IMG=$D/mnist/t10k-images-idx3-ubyte.gz
LAB=$D/mnist/t10k-labels-idx1-ubyte.gz
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
top1() { "$P" eval "$1" --images "$IMG" --labels "$LAB" --first 1000 --count 9000 --json | sed 's/.*"top1": \([0-9.]*\).*/\1/'; }
q() { "$P" quantize "$D/vit-mnist" --calib "$IMG" --calib-labels "$LAB" --first 0 --count 1000 -o "$TMP/q.ptq" "$@" --json > /dev/null; }

echo "float: top-1 $(top1 "$D/vit-mnist")%"
echo
variants=("" "--bc --bc-mode sequential" "--bc --bc-mode parallel")
header="| no BC | BC sequential | BC parallel |"
echo "Weight-only:"
echo
echo "| weights | method $header"
echo "|---|---|---|---|---|"
for cfg in "4 0" "3 0" "2 32"; do
  set -- $cfg
  for method in rtn gptq; do
    row="| W$1 $([ "$2" = 0 ] && echo per-channel || echo "g$2") | $method"
    for bc in "${variants[@]}"; do
      # shellcheck disable=SC2086
      q --wbits "$1" --group "$2" --method "$method" $bc
      row="$row | $(top1 "$TMP/q.ptq")"
    done
    echo "$row |"
  done
done
echo
echo "Weights and activations (per-channel weights, per-tensor min-max activations):"
echo
echo "| W/A | method $header"
echo "|---|---|---|---|---|"
for b in 6 4; do
  for method in rtn gptq; do
    row="| W${b}A${b} | $method"
    for bc in "${variants[@]}"; do
      # shellcheck disable=SC2086
      q --wbits "$b" --abits "$b" --method "$method" $bc
      row="$row | $(top1 "$TMP/q.ptq")"
    done
    echo "$row |"
  done
done
