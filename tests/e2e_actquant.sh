# ptq quantize with activation quantization end to end: vit-mnist W8A8 + NoisyQuant (unchecked, so that
# the noise is kept) calibrated on 256 MNIST test images stays within 1 point of float top-1 on images
# 1000-1999 and the saved file carries the noise vectors; stories260K W8A8 + NoisyQuant (with its checks)
# stays within 3% of float perplexity, and when its checks reject the noise the model evaluates exactly
# as plain W8A8; bad activation options fail with clear messages. Runs in ~15 s.
source "$(dirname "$0")/e2e_lib.bash"
need vit-mnist/model.safetensors
need mnist/t10k-images-idx3-ubyte.gz
need mnist/t10k-labels-idx1-ubyte.gz
need stories260K/stories260K.bin
need tinystories/tinystories-valid-100.txt
IMG="$DATA/mnist/t10k-images-idx3-ubyte.gz"
LAB="$DATA/mnist/t10k-labels-idx1-ubyte.gz"
V="$DATA/vit-mnist"
evalv=(--images "$IMG" --labels "$LAB" --first 1000 --count 1000 --json)
calv=(--calib "$IMG" --calib-labels "$LAB" --first 0 --count 256)

float=$("$PTQ" eval "$V" "${evalv[@]}" | json_num top1)
"$PTQ" quantize "$V" "${calv[@]}" -o "$TMP/w8a8nq.ptq" --wbits 8 --abits 8 --noisyquant-unchecked > "$TMP/q.out" \
  2> "$TMP/q.err" || fail "quantize --abits 8 --noisyquant-unchecked: $(cat "$TMP/q.err")"
grep -q 'NoisyQuant: noise kept on [1-9][0-9]* of 24 linears' "$TMP/q.out" \
  || fail "unchecked NoisyQuant should keep noise on some of the 24 linears: $(cat "$TMP/q.out")"
grep -q 'A8 minmax +NoisyQuant' "$TMP/q.err" || fail "quantize banner lacks 'A8 minmax +NoisyQuant': $(head -3 "$TMP/q.err")"
q8=$("$PTQ" eval "$TMP/w8a8nq.ptq" "${evalv[@]}" | json_num top1)
echo "vit-mnist top-1 on 1000-1999: float $float, W8A8 + NoisyQuant $q8"
[ -n "$q8" ] && awk -v f="$float" -v q="$q8" 'BEGIN { d = f - q; if (d < 0) d = -d; exit !(d <= 1.0) }' \
  || fail "W8A8 + NoisyQuant top-1 $q8 is more than 1 point from float $float"
# the file carries the activation quantizers and the noise vectors
"$PTQ" inspect "$TMP/w8a8nq.ptq" --json > "$TMP/insp.json" 2>&1 || fail "inspect of a W8A8 file"
grep -q '"blocks.0.qkv.noise"' "$TMP/insp.json" || fail "inspect does not list the noise tensor blocks.0.qkv.noise"

# a language model: W8A8 + NoisyQuant with a small calibration set
M="$DATA/stories260K/stories260K.bin"
TXT="$DATA/tinystories/tinystories-valid-100.txt"
SEP='<|endoftext|>'
evall=(--tokenizer "$DATA/stories260K/tok512.bin" --text "$TXT" --docs-sep "$SEP" --docs 60:80 --ctx 256 --json)
pf=$("$PTQ" eval "$M" "${evall[@]}" | json_num ppl)
calm=(--calib "$TXT" --docs-sep "$SEP" --docs 0:60 --calib-n 8 --calib-ctx 128 --wbits 8 --abits 8 --act-calib mse --method rtn --json)
"$PTQ" quantize "$M" "${calm[@]}" --noisyquant -o "$TMP/s8.ptq" > "$TMP/q.json" 2> "$TMP/q.err" || fail "quantize stories260K: $(cat "$TMP/q.err")"
"$PTQ" quantize "$M" "${calm[@]}" -o "$TMP/s8plain.ptq" > /dev/null 2> "$TMP/q.err" || fail "quantize stories260K: $(cat "$TMP/q.err")"
kept=$(json_num noisy_linears < "$TMP/q.json")
pq=$("$PTQ" eval "$TMP/s8.ptq" "${evall[@]}" | json_num ppl)
pp=$("$PTQ" eval "$TMP/s8plain.ptq" "${evall[@]}" | json_num ppl)
echo "stories260K ppl on stories 60-79: float $pf, W8A8 mse $pp, + NoisyQuant $pq (noise kept on ${kept:-?} linears)"
[ -n "$pq" ] && awk -v f="$pf" -v q="$pq" 'BEGIN { exit !(q < f * 1.03) }' || fail "W8A8 ppl $pq is over 3% above float $pf"
[ -n "$kept" ] || fail "quantize --json does not report noisy_linears"
[ "$kept" != 0 ] || [ "$pq" = "$pp" ] || fail "NoisyQuant kept no noise, yet its perplexity $pq differs from plain W8A8 $pp"

# bad options: clear messages, nothing written
bad=("$PTQ" quantize "$V" "${calv[@]}" -o "$TMP/x.ptq" --wbits 8)
expect_fail 2 "need --abits" -- "${bad[@]}" --noisyquant
expect_fail 2 "need --abits" -- "${bad[@]}" --act-calib mse
expect_fail 2 "--act-calib must be minmax, percentile, mse, entropy, easyquant or twin, got 'foo'" -- "${bad[@]}" --abits 8 --act-calib foo
expect_fail 2 "--abits expects an integer in \[2, 8\], got '9'" -- "${bad[@]}" --abits 9
expect_fail 1 "NoisyQuant needs static activation quantization" -- "${bad[@]}" --abits 8 --act-per-token --noisyquant
[ -e "$TMP/x.ptq" ] && fail "a failed quantize left $TMP/x.ptq behind"
finish
