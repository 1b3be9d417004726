# Hugging Face image preprocessing and unlabeled calibration, end to end on vit-mnist.
#  1. A HF-style folder (vit-mnist's weights and config.json + a preprocessor_config.json whose mean/std, the
#     HF default 0.5/0.5, differ from config.json's): `ptq eval` gives exactly the top-1 count of the
#     independent reference (PIL/numpy preprocessing as transformers' ViTImageProcessor, then
#     shared/reference/vit_ref.py's numpy forward), on IDX images and on a folder of 40x40 PNGs that the
#     preprocessing resizes (bicubic, antialiased) to 28x28. The CLI notes that preprocessor_config.json wins.
#  2. `ptq quantize --calib` with an unlabeled folder of PNGs (other files skipped, and said so), an unlabeled
#     IDX file, and an unlabeled folder of Fashion-MNIST images (Debian's dataset-fashion-mnist): each .ptq
#     evaluated with labels keeps the float model's accuracy within a floor measured here. A .ptq made from the
#     HF folder carries its preprocessing.
#  3. A broken preprocessor_config.json is a clear error naming the file and the field.
source "$(dirname "$0")/e2e_lib.bash"
need vit-mnist/model.safetensors
need mnist/t10k-images-idx3-ubyte.gz
need mnist/t10k-labels-idx1-ubyte.gz
REFDIR="$DATA/../reference"
PY=/usr/bin/python3
if [ ! -e "$REFDIR/vit_ref.py" ] || ! "$PY" -c 'import numpy, PIL' 2>/dev/null; then
  if [ "${CI:-}" = "true" ]; then echo "FAIL: $REFDIR/vit_ref.py or python3-numpy/python3-pil missing (CI=true)"; exit 1; fi
  echo "SKIP: needs $REFDIR/vit_ref.py and Debian's python3-numpy + python3-pil"; exit 77
fi
HELP="$SRC/tests/ref/hf_vit_reference.py"
M="$DATA/vit-mnist"
IMG="$DATA/mnist/t10k-images-idx3-ubyte.gz"
LAB="$DATA/mnist/t10k-labels-idx1-ubyte.gz"
acc() { json_num top1; }
count() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%d", t * n / 100 + 0.5 }'; } # top-1 % of n images -> count

# ---- 1. the HF folder against the reference
HF="$TMP/hf"
mkdir -p "$HF"
ln -s "$(cd "$M" && pwd)/model.safetensors" "$HF/model.safetensors"
cp "$M/config.json" "$HF/"
cat > "$HF/preprocessor_config.json" <<'EOF'
{
  "image_processor_type": "ViTImageProcessor",
  "do_resize": true,
  "size": {"height": 28, "width": 28},
  "resample": 3,
  "do_rescale": true,
  "rescale_factor": 0.00392156862745098,
  "do_normalize": true,
  "image_mean": [0.5],
  "image_std": [0.5]
}
EOF
N=400
out=$("$PTQ" eval "$HF" --images "$IMG" --labels "$LAB" --count $N --json 2> "$TMP/err") || fail "eval of the HF folder: $(cat "$TMP/err")"
grep -q "preprocessor_config.json's mean/std (0.5/0.5), not config.json's (0.1307/0.3081)" "$TMP/err" ||
  fail "no note that preprocessor_config.json wins: $(cat "$TMP/err")"
[ "$(grep -c . "$TMP/err")" = 1 ] || fail "the note is not one line: $(cat "$TMP/err")"
"$PTQ" inspect "$HF" | grep -q "images 1x28x28, preprocessing from preprocessor_config.json (Hugging Face), mean/std 0.5/0.5" ||
  fail "inspect does not show the preprocessing"
"$PTQ" inspect "$M" --json | grep -q '"image_preprocessing":.*"config.json"' || fail "inspect --json of vit-mnist"
ptq_n=$(count "$(echo "$out" | acc)" $N)
ref=$("$PY" "$HELP" top1 "$HF" "$REFDIR" --idx "$IMG" "$LAB" --count $N) || fail "reference failed"
ref_n=${ref##*correct=}
echo "HF folder, IDX images 0-$((N - 1)): ptq $ptq_n / $N correct, reference $ref"
[ "$ptq_n" = "$ref_n" ] || fail "HF preprocessing on IDX: ptq top-1 $ptq_n of $N, reference $ref_n"
float_full=$("$PTQ" eval "$M" --images "$IMG" --labels "$LAB" --count $N --json | acc)
[ "$(count "$float_full" $N)" != "$ptq_n" ] || fail "mean/std 0.5/0.5 changed nothing: is preprocessor_config.json read?"

# 40x40 PNGs (MNIST upscaled with PIL), resized back to 28x28 by the preprocessing, with a labels file
"$PY" "$HELP" pngs "$IMG" "$TMP/big/png" --count 300 --labels "$LAB" --side 40 || fail "writing PNGs"
out=$("$PTQ" eval "$HF" --images "$TMP/big/png" --labels "$TMP/big/labels.txt" --json 2> /dev/null) || fail "eval of 40x40 PNGs"
ptq_n=$(count "$(echo "$out" | acc)" 300)
ref=$("$PY" "$HELP" top1 "$HF" "$REFDIR" --folder "$TMP/big/png" "$TMP/big/labels.txt") || fail "reference failed"
echo "HF folder, 300 PNGs of 40x40 resized to 28x28: ptq $ptq_n / 300 correct, reference $ref"
[ "$ptq_n" = "${ref##*correct=}" ] || fail "HF preprocessing with resize: ptq top-1 $ptq_n of 300, reference $ref"

# ---- 2. unlabeled calibration; accuracy measured on images 1000-1999
EV=(--images "$IMG" --labels "$LAB" --first 1000 --count 1000 --json)
float=$("$PTQ" eval "$M" "${EV[@]}" | acc)
floor=$(awk -v f="$float" 'BEGIN { print f - 1.5 }')
"$PY" "$HELP" pngs "$IMG" "$TMP/calib" --count 256 || fail "writing calibration PNGs"
echo "not an image" > "$TMP/calib/README.txt"
"$PTQ" quantize "$M" --calib "$TMP/calib" --wbits 4 -o "$TMP/folder.ptq" --json > /dev/null 2> "$TMP/err" ||
  fail "quantize with an unlabeled folder: $(cat "$TMP/err")"
grep -q "256 image files, 1 other entry skipped" "$TMP/err" || fail "skipped files not reported: $(cat "$TMP/err")"
q_folder=$("$PTQ" eval "$TMP/folder.ptq" "${EV[@]}" | acc)
"$PTQ" quantize "$M" --calib "$IMG" --count 256 --wbits 4 -o "$TMP/idx.ptq" --json > /dev/null ||
  fail "quantize with an unlabeled IDX file"
q_idx=$("$PTQ" eval "$TMP/idx.ptq" "${EV[@]}" | acc)
echo "W4 GPTQ, 256 unlabeled calibration images: float $float%, folder of PNGs $q_folder%, IDX $q_idx% (floor $floor%)"
for q in "$q_folder" "$q_idx"; do
  awk -v q="$q" -v f="$floor" 'BEGIN { exit !(q >= f) }' || fail "unlabeled calibration: $q% < floor $floor%"
done
# the same pixels: the folder of PNGs and the IDX file give the same quantized model
[ "$q_folder" = "$q_idx" ] || fail "the PNG folder ($q_folder%) and the IDX file ($q_idx%) hold the same images"

FM=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz # Debian's dataset-fashion-mnist
if [ -e "$FM" ]; then
  "$PY" "$HELP" pngs "$FM" "$TMP/fashion" --count 256 || fail "writing Fashion-MNIST PNGs"
  "$PTQ" quantize "$M" --calib "$TMP/fashion" --wbits 4 -o "$TMP/fashion.ptq" --json > /dev/null ||
    fail "quantize with an unlabeled Fashion-MNIST folder"
  q_fm=$("$PTQ" eval "$TMP/fashion.ptq" "${EV[@]}" | acc)
  echo "W4 GPTQ calibrated on 256 unlabeled Fashion-MNIST PNGs (out of domain): $q_fm% on MNIST"
  awk -v q="$q_fm" -v f="$float" 'BEGIN { exit !(q >= f - 10) }' || fail "Fashion-MNIST calibration: $q_fm%"
elif [ "${CI:-}" = "true" ]; then
  fail "$FM missing: install Debian's dataset-fashion-mnist"
else
  echo "(Fashion-MNIST calibration skipped: install dataset-fashion-mnist)"
fi

# the HF folder quantized (W8) keeps its preprocessing in the .ptq: its accuracy follows the HF float one
hf_float=$("$PTQ" eval "$HF" "${EV[@]}" 2> /dev/null | acc)
"$PTQ" quantize "$HF" --calib "$IMG" --count 256 --wbits 8 -o "$TMP/hf8.ptq" --json > /dev/null 2>&1 ||
  fail "quantize of the HF folder"
hf_q=$("$PTQ" eval "$TMP/hf8.ptq" "${EV[@]}" 2> "$TMP/err" | acc)
echo "HF folder: float $hf_float%, W8 .ptq $hf_q% (vit-mnist with its own normalisation: $float%)"
close "$hf_q" "$hf_float" 1.5 || fail "the .ptq of the HF folder: $hf_q%, its float model $hf_float%"
grep -q "preprocessor_config.json's mean/std" "$TMP/err" || fail "the .ptq lost its preprocessing note"

# labels are still accepted for calibration, and still needed for accuracy
"$PTQ" quantize "$M" --calib "$IMG" --calib-labels "$LAB" --count 64 --wbits 8 -o "$TMP/lab.ptq" --json > /dev/null ||
  fail "quantize with --calib-labels"
expect_fail 2 "--images needs --labels" -- "$PTQ" eval "$M" --images "$TMP/calib"
"$PTQ" inspect "$M" --act "$TMP/calib" --count 16 > /dev/null 2>&1 || fail "inspect --act with an unlabeled folder"
mkdir -p "$TMP/none"; echo x > "$TMP/none/a.txt"
expect_fail 1 "no JPEG, PNG or BMP files" -- "$PTQ" quantize "$M" --calib "$TMP/none" --wbits 4 -o "$TMP/n.ptq"

# ---- 3. a broken preprocessor_config.json
sed -i 's/"image_std": \[0.5\]/"image_std": [0]/' "$HF/preprocessor_config.json"
expect_fail 1 "preprocessor_config.json: image_std\[0\] = 0 must be positive" -- "$PTQ" eval "$HF" --images "$IMG" --labels "$LAB" --count 10
printf '{"size": 28, "resample": 7}' > "$HF/preprocessor_config.json"
expect_fail 1 "preprocessor_config.json: resample = 7 is not a PIL filter" -- "$PTQ" eval "$HF" --images "$IMG" --labels "$LAB" --count 10
printf '{"size": {"height": 32, "width": 32}}' > "$HF/preprocessor_config.json"
expect_fail 1 "size 32x32 .* does not give the 28x28 images" -- "$PTQ" eval "$HF" --images "$IMG" --labels "$LAB" --count 10
printf '{"size": 28,' > "$HF/preprocessor_config.json"
expect_fail 1 "preprocessor_config.json: not valid JSON" -- "$PTQ" eval "$HF" --images "$IMG" --labels "$LAB" --count 10
finish
