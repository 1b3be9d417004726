#!/usr/bin/env bash
# Activation quantization tables for docs/ACTQUANT.md (issue 5).
#  vit-mnist: calibrated on MNIST test images 0-999, top-1 on 1000-9999 (float 98.24%), weights RTN
#    symmetric per-channel min-max (NoisyQuant's setting), W8A8 / W6A6 / W4A4, every activation calibrator,
#    without and with NoisyQuant (with ptq's held-out checks; unchecked as in the paper; the released code's
#    variant, unchecked), with BC, and NoisyQuant + BC.
#  stories260K: calibrated on stories 0-59 of tinystories-valid-100.txt (32 windows of 256 tokens),
#    perplexity on stories 60-99 at ctx 256, W8A8 and W6A6, every calibrator, without and with NoisyQuant.
# Usage: scripts/results_actquant.sh [build/ptq] [vit|lm|all]   (about 15 minutes on 2 busy cores)
# Prints markdown; each cell is one `ptq quantize` + `ptq eval` run.
set -euo pipefail
P=${1:-build/ptq}
WHAT=${2:-all}
D=${PTQ_DATA:-$(dirname "$0")/../../shared/data}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
IMG=$D/mnist/t10k-images-idx3-ubyte.gz
LAB=$D/mnist/t10k-labels-idx1-ubyte.gz
M=$D/stories260K/stories260K.bin
TOK=$D/stories260K/tok512.bin
TXT=$D/tinystories/tinystories-valid-100.txt
SEP='<|endoftext|>'
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
num() { sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p"; }

top1() { "$P" eval "$1" --images "$IMG" --labels "$LAB" --first 1000 --count 9000 --json | num top1; }
qv() { "$P" quantize "$D/vit-mnist" --calib "$IMG" --calib-labels "$LAB" --first 0 --count 1000 -o "$TMP/q.ptq" \
         --method rtn "$@" --json > "$TMP/q.json"; }
ppl() { "$P" eval "$1" --tokenizer "$TOK" --text "$TXT" --docs-sep "$SEP" --docs 60: --ctx 256 --json | num ppl; }
ql() { "$P" quantize "$M" --calib "$TXT" --docs-sep "$SEP" --docs 0:60 --calib-ctx 256 --calib-n 32 -o "$TMP/q.ptq" \
         --method rtn "$@" --json > "$TMP/q.json"; }
# "value (k)" for NoisyQuant with its checks: k = linears that kept noise (0: exactly the base quantizer)
kept() { echo "$1 ($(num noisy_linears < "$TMP/q.json"))"; }

CALIBS="minmax percentile mse entropy easyquant twin"

if [ "$WHAT" = vit ] || [ "$WHAT" = all ]; then
  echo "### vit-mnist top-1 (%) on MNIST test images 1000-9999, calibrated on images 0-999"
  echo
  echo "float: $(top1 "$D/vit-mnist")"
  echo
  echo "| bits | calibrator | base | + NoisyQuant (layers kept) | + NoisyQuant unchecked | + NoisyQuant ref. code unchecked | + BC | + NoisyQuant + BC (layers kept) |"
  echo "|---|---|---|---|---|---|---|---|"
  for b in 8 6 4; do
    qv --wbits "$b"
    echo "| W${b} (weights only) | - | $(top1 "$TMP/q.ptq") | | | | | |"
    for c in $CALIBS; do
      row="| W${b}A${b} | $c"
      for v in "" "--noisyquant" "--noisyquant-unchecked" "--noisyquant-ref --noisyquant-unchecked" "--bc" "--noisyquant --bc"; do
        # shellcheck disable=SC2086
        qv --wbits "$b" --abits "$b" --act-calib "$c" $v
        if [ "$v" = --noisyquant ] || [ "$v" = "--noisyquant --bc" ]; then row="$row | $(kept "$(top1 "$TMP/q.ptq")")"
        else row="$row | $(top1 "$TMP/q.ptq")"; fi
      done
      echo "$row |"
    done
  done
  echo
fi

if [ "$WHAT" = lm ] || [ "$WHAT" = all ]; then
  echo "### stories260K perplexity on stories 60-99 (ctx 256), calibrated on stories 0-59 (32 x 256 tokens)"
  echo
  echo "float: $(ppl "$M")"
  echo
  echo "| bits | calibrator | base | + NoisyQuant (layers kept) | + NoisyQuant unchecked | + NoisyQuant ref. code unchecked |"
  echo "|---|---|---|---|---|---|"
  for b in 8 6; do
    ql --wbits "$b"
    echo "| W${b} (weights only) | - | $(ppl "$TMP/q.ptq") | | | |"
    for c in $CALIBS; do
      row="| W${b}A${b} | $c"
      for v in "" "--noisyquant" "--noisyquant-unchecked" "--noisyquant-ref --noisyquant-unchecked"; do
        # shellcheck disable=SC2086
        ql --wbits "$b" --abits "$b" --act-calib "$c" $v
        if [ "$v" = --noisyquant ]; then row="$row | $(kept "$(ppl "$TMP/q.ptq")")"
        else row="$row | $(ppl "$TMP/q.ptq")"; fi
      done
      echo "$row |"
    done
  done
  echo
fi
