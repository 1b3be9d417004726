#!/usr/bin/env bash
# Weight quantization and Bias Compensation on stories260K: calibrate on stories 0-59 of
# tinystories-valid-100.txt, evaluate perplexity on stories 60-99 (disjoint), context 256.
# Prints markdown tables (docs/RESULTS.md). Usage: scripts/results_stories.sh [build/ptq]
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
P=${1:-build/ptq}
D=${PTQ_DATA:-$(dirname "$0")/../../shared/data}
M=$D/stories260K/stories260K.bin
TXT=$D/tinystories/tinystories-valid-100.txt
SEP='<|endoftext|>'
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
calib=(--calib "$TXT" --docs-sep "$SEP" --docs 0:60 --calib-n 32 --calib-ctx 256 --seed 1)
evalp=(--tokenizer "$D/stories260K/tok512.bin" --text "$TXT" --docs-sep "$SEP" --docs 60: --ctx 256 --json)
ppl() { "$P" eval "$1" "${evalp[@]}" | sed 's/.*"ppl": \([0-9.]*\).*/\1/'; }
q() { "$P" quantize "$M" "${calib[@]}" -o "$TMP/q.ptq" "$@" --json > "$TMP/q.json"; }
bpw() { sed 's/.*"bits_per_weight":\([0-9.]*\).*/\1/' "$TMP/q.json"; }

echo "float: perplexity $(ppl "$M") ($(stat -c %s "$M") bytes)"
echo
echo "| weights | bits/weight | RTN ppl | GPTQ ppl | file (bytes) |"
echo "|---|---|---|---|---|"
for cfg in "8 0" "4 0" "4 64" "4 32" "3 32" "2 32"; do
  set -- $cfg
  q --wbits "$1" --group "$2" --method rtn; r=$(ppl "$TMP/q.ptq")
  q --wbits "$1" --group "$2" --method gptq; g=$(ppl "$TMP/q.ptq")
  name="W$1 $([ "$2" = 0 ] && echo per-channel || echo "g$2")"
  printf '| %s | %.3f | %.4f | %.4f | %s |\n' "$name" "$(bpw)" "$r" "$g" "$(stat -c %s "$TMP/q.ptq")"
done
echo
echo "| weights | method | no BC | BC channel, sequential | BC channel, parallel | BC position, sequential | BC position, parallel |"
echo "|---|---|---|---|---|---|---|"
for cfg in "4 32" "4 64" "4 0" "3 32" "3 0" "2 32"; do
  set -- $cfg
  for method in rtn gptq; do
    row="| W$1 $([ "$2" = 0 ] && echo per-channel || echo "g$2") | $method"
    for bc in "" "--bc --bc-shape channel --bc-mode sequential" "--bc --bc-shape channel --bc-mode parallel" \
              "--bc --bc-shape position --bc-mode sequential" "--bc --bc-shape position --bc-mode parallel"; do
      # shellcheck disable=SC2086
      q --wbits "$1" --group "$2" --method "$method" $bc
      row="$row | $(printf %.4f "$(ppl "$TMP/q.ptq")")"
    done
    echo "$row |"
  done
done
