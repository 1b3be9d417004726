#!/bin/bash
# Reproduces the QuantTune tables of docs/QUANTTUNE.md: fine-tunes with `ptq tune`, then evaluates the float
# models and their quantized versions (`ptq quantize --abits`, four activation calibrators) with `ptq eval`.
#
#   bench/quanttune_tables.sh PTQ_BINARY OUT_DIR [vit|lm|fashion ...]     (default: all three)
#
# vit      vit-mnist: tune on MNIST test images 0-4999, calibrate on 5000-5999, evaluate on 6000-9999
#          (about 15 minutes on 2 cores)
# lm       stories260K: tune on stories 0-59 of tinystories-valid-100.txt, calibrate on the same, perplexity on
#          60-99 (about 5 minutes)
# fashion  a small ViT trained from scratch on Fashion-MNIST (Debian dataset-fashion-mnist) without and with the
#          outlier loss; calibrate on train images 0-999, evaluate on the 10,000 test images (about 15 minutes)
# Each part writes OUT_DIR/<part>.txt (one line per measurement) and prints a markdown table.
set -u
PTQ="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
OUT="$2"
shift 2
PARTS="${*:-vit lm fashion}"
D="${PTQ_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
mkdir -p "$OUT" && cd "$OUT" || exit 1
top1() { sed 's/.*"top1": \([0-9.]*\).*/\1/'; }
ppl() { sed 's/.*"ppl": \([0-9.]*\),.*/\1/'; }

table() { # table FILE MODELS: markdown table of "model config calibration value" lines, deltas against float
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
rows, flt = {}, {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) < 4: continue
    if p[1] == 'float': flt[p[0]] = float(p[3]); continue
    rows.setdefault((p[1], p[2]), {})[p[0]] = p[3]
names = sys.argv[2].split(',')
print('| config | calibration | ' + ' | '.join(names) + ' |\n|---|---|' + '---|' * len(names))
print('| float | | ' + ' | '.join('%.2f' % flt[m] for m in names) + ' |')
for (cfg, cal), d in rows.items():
    cell = lambda m: ('%.2f (%+.2f)' % (float(d[m]), float(d[m]) - flt[m])) if d.get(m, 'FAIL') != 'FAIL' else '-'
    print(f'| {cfg} | {cal} | ' + ' | '.join(cell(m) for m in names) + ' |')
PY
}

vit() {
  local IMG="$D/mnist/t10k-images-idx3-ubyte.gz" LAB="$D/mnist/t10k-labels-idx1-ubyte.gz" f=vit.txt
  : > $f
  tune() { local n=$1; shift; [ -f $n/model.safetensors ] || "$PTQ" tune "$D/vit-mnist" --train "$IMG" --train-labels "$LAB" \
      --first 0 --count 5000 --epochs 2 --lr 3e-4 "$@" -o $n --log $n.csv --json > $n.json; }
  tune ft --outlier-lambda 0
  tune qt1 --outlier-lambda 1 --monitor qkv,proj,fc1
  tune qt5 --outlier-lambda 5 --monitor qkv,proj,fc1
  tune qtall --outlier-lambda 1 --monitor all
  for m in orig ft qt1 qt5 qtall; do
    local src=$m; [ $m = orig ] && src="$D/vit-mnist"
    echo "$m float - $("$PTQ" eval $src --images "$IMG" --labels "$LAB" --first 6000 --count 4000 --json | top1)" >> $f
    for wa in "8 8" "7 7" "6 6" "4 4" "8 3" "3 3"; do set -- $wa
      for c in minmax percentile mse entropy; do
        if "$PTQ" quantize $src --calib "$IMG" --calib-labels "$LAB" --first 5000 --count 1000 --sym --group tensor --method rtn \
             --wbits $1 --abits $2 --act-calib $c -o q.safetensors > /dev/null 2> q.err; then
          echo "$m W$1A$2 $c $("$PTQ" eval q.safetensors --images "$IMG" --labels "$LAB" --first 6000 --count 4000 --json | top1)" >> $f
        else echo "$m W$1A$2 $c FAIL" >> $f; fi
      done
    done
  done
  table $f orig,ft,qt1,qt5,qtall
}

lm() {
  local TXT="$D/tinystories/tinystories-valid-100.txt" TOK="$D/stories260K/tok512.bin" LM="$D/stories260K/stories260K.bin"
  local f=lm.txt S='<|endoftext|>'
  : > $f
  tune() { local n=$1; shift; [ -f $n.bin ] || "$PTQ" tune "$LM" --tokenizer "$TOK" --train "$TXT" --docs-sep "$S" \
      --docs 0:60 "$@" -o $n.bin --log $n.csv --json > $n.json; }
  tune ft --epochs 2 --lr 5e-5 --outlier-lambda 0
  tune qt03 --epochs 2 --lr 5e-5 --outlier-lambda 0.3
  tune qt1 --epochs 2 --lr 5e-5 --outlier-lambda 1
  tune qt1fc2 --epochs 3 --lr 1e-4 --outlier-lambda 1 --monitor fc2
  tune qt3fc2 --epochs 3 --lr 1e-4 --outlier-lambda 3 --monitor fc2
  for m in orig ft qt03 qt1 qt1fc2 qt3fc2; do
    local src=$m.bin; [ $m = orig ] && src="$LM"
    echo "$m float - $("$PTQ" eval $src --tokenizer "$TOK" --text "$TXT" --docs-sep "$S" --docs 60:100 --json | ppl)" >> $f
    for wa in "8 8" "6 6" "8 6" "6 8" "4 4"; do set -- $wa
      if "$PTQ" quantize $src --tokenizer "$TOK" --calib "$TXT" --docs-sep "$S" --docs 0:60 --sym --group tensor --method rtn \
           --wbits $1 --abits $2 --act-calib minmax -o q.safetensors > /dev/null 2> q.err; then
        echo "$m W$1A$2 minmax $("$PTQ" eval q.safetensors --tokenizer "$TOK" --text "$TXT" --docs-sep "$S" --docs 60:100 --json | ppl)" >> $f
      else echo "$m W$1A$2 minmax FAIL" >> $f; fi
    done
  done
  table $f orig,ft,qt03,qt1,qt1fc2,qt3fc2
}

fashion() {
  local F=/usr/share/datasets/fashion-mnist f=fashion.txt
  [ -f $F/train-images-idx3-ubyte.gz ] || { echo "fashion: install dataset-fashion-mnist"; return; }
  local TR=$F/train-images-idx3-ubyte.gz TRL=$F/train-labels-idx1-ubyte.gz TE=$F/t10k-images-idx3-ubyte.gz TEL=$F/t10k-labels-idx1-ubyte.gz
  cat > fashion_vit.json <<'CFG'
{"architecture": "vit", "model_type": "vit", "naming": "timm", "img_size": 28, "patch_size": 7, "in_chans": 1,
 "embed_dim": 64, "depth": 4, "num_heads": 4, "mlp_hidden_dim": 128, "act_layer": "gelu", "qkv_bias": true,
 "norm_layer": "layernorm", "norm_eps": 1e-6, "class_token": true, "global_pool": "token", "num_classes": 10,
 "pretrained_cfg": {"mean": [0.2860], "std": [0.3530], "crop_pct": 1.0}}
CFG
  : > $f
  for lam in 0 0.1; do local n=fashion_l$lam
    [ -f $n/model.safetensors ] || "$PTQ" tune --init random --config fashion_vit.json --train $TR --train-labels $TRL \
        --epochs 3 --batch 64 --lr 1e-3 --weight-decay 0.05 --outlier-lambda $lam -o $n --log $n.csv --json > $n.json
    echo "$n float - $("$PTQ" eval $n --images $TE --labels $TEL --json | top1)" >> $f
    for wa in "8 8" "6 6" "4 4" "8 3"; do set -- $wa
      for c in minmax percentile mse entropy; do
        if "$PTQ" quantize $n --calib $TR --calib-labels $TRL --first 0 --count 1000 --sym --group tensor --method rtn --wbits $1 \
             --abits $2 --act-calib $c -o q.safetensors > /dev/null 2> q.err; then
          echo "$n W$1A$2 $c $("$PTQ" eval q.safetensors --images $TE --labels $TEL --json | top1)" >> $f
        else echo "$n W$1A$2 $c FAIL" >> $f; fi
      done
    done
  done
  table $f fashion_l0,fashion_l0.1
}

for p in $PARTS; do echo "## $p"; $p; done
