# ptq quantize end to end: stories260K calibrated on stories 0-59 and evaluated on 60-99 (GPTQ beats RTN
# at 3 bits), vit-mnist at W4, the file runs in eval/generate/inspect, and bad options fail clearly.
source "$(dirname "$0")/e2e_lib.bash"
need stories260K/stories260K.bin
need tinystories/tinystories-valid-100.txt
need vit-mnist/model.safetensors
need mnist/t10k-images-idx3-ubyte.gz
M="$DATA/stories260K/stories260K.bin"
TOK="$DATA/stories260K/tok512.bin"
TXT="$DATA/tinystories/tinystories-valid-100.txt"
SEP='<|endoftext|>'
calib=(--calib "$TXT" --docs-sep "$SEP" --docs 0:60 --calib-n 16 --calib-ctx 256)
evalp=(--tokenizer "$TOK" --text "$TXT" --docs-sep "$SEP" --docs 60: --json)

float=$("$PTQ" eval "$M" "${evalp[@]}" | json_num ppl)
"$PTQ" quantize "$M" "${calib[@]}" -o "$TMP/rtn3.ptq" --wbits 3 --group 32 --method rtn --json > "$TMP/q.json" 2> "$TMP/err" || fail "quantize rtn"
[ -s "$TMP/err" ] && fail "--json quantize wrote to stderr"
grep -q '"layers":\[{"name":"layers.0.attention.wq"' "$TMP/q.json" || fail "per-layer report: $(head -c 300 "$TMP/q.json")"
"$PTQ" quantize "$M" "${calib[@]}" -o "$TMP/gptq3.ptq" --wbits 3 --group 32 --method gptq > "$TMP/q.txt" 2> "$TMP/q.err" || fail "quantize gptq"
grep -q 'layers.4.feed_forward.w2 .*rel. output error' "$TMP/q.err" || fail "per-layer lines missing: $(cat "$TMP/q.err")"
rtn=$("$PTQ" eval "$TMP/rtn3.ptq" "${evalp[@]}" | json_num ppl)
gptq=$("$PTQ" eval "$TMP/gptq3.ptq" "${evalp[@]}" | json_num ppl)
echo "float $float, RTN W3g32 $rtn, GPTQ W3g32 $gptq"
awk -v f="$float" -v r="$rtn" -v g="$gptq" 'BEGIN { exit !(f < g && g < r) }' || fail "expected float < GPTQ < RTN"
# a damaged file is refused, naming the tensor; PTQ_SKIP_CHECKSUMS=1 (a file the user trusts) loads it anyway
cp "$TMP/gptq3.ptq" "$TMP/flip.ptq"
python3 - "$TMP/flip.ptq" <<'PY' || fail "could not flip a code byte"
import json, struct, sys
with open(sys.argv[1], "r+b") as f:  # one bit of blocks.0.q.qweight (packed codes: any byte is a valid code)
    n = struct.unpack("<Q", f.read(8))[0]
    at = 8 + n + json.loads(f.read(n))["blocks.0.q.qweight"]["data_offsets"][0] + 5
    f.seek(at); b = f.read(1)[0]; f.seek(at); f.write(bytes([b ^ 0x10]))
PY
expect_fail 1 "flip.ptq: tensor .* is corrupted" -- "$PTQ" eval "$TMP/flip.ptq" "${evalp[@]}"
PTQ_SKIP_CHECKSUMS=1 "$PTQ" eval "$TMP/flip.ptq" "${evalp[@]}" > /dev/null 2>&1 || fail "PTQ_SKIP_CHECKSUMS=1 did not skip the verification"
"$PTQ" generate "$TMP/gptq3.ptq" --tokenizer "$TOK" --steps 20 --temperature 0 > "$TMP/gen.txt" 2>/dev/null || fail "generate on a quantized file"
grep -q 'Once upon a time' "$TMP/gen.txt" || fail "quantized greedy text: $(cat "$TMP/gen.txt")"
"$PTQ" inspect "$TMP/gptq3.ptq" --json | grep -q '"blocks.0.q.qweight"' || fail "inspect of a quantized file"
b=$("$PTQ" bench "$TMP/gptq3.ptq" --baseline "$M" --tokens 32 --steps 8 --reps 1 --json) || fail "bench"
awk -v p="$(echo "$b" | sed 's/.*"decode_tok_per_s":\([0-9.e+]*\).*/\1/')" 'BEGIN { exit !(p > 0) }' || fail "bench output: $b"
echo "$b" | grep -q '"baseline_prefill_tok_per_s"' || fail "bench baseline: $b"

"$PTQ" quantize "$DATA/vit-mnist" --calib "$DATA/mnist/t10k-images-idx3-ubyte.gz" \
  --calib-labels "$DATA/mnist/t10k-labels-idx1-ubyte.gz" --count 256 -o "$TMP/vit4.ptq" --wbits 4 --json > /dev/null || fail "quantize vit"
top1=$("$PTQ" eval "$TMP/vit4.ptq" --images "$DATA/mnist/t10k-images-idx3-ubyte.gz" \
  --labels "$DATA/mnist/t10k-labels-idx1-ubyte.gz" --first 1000 --count 2000 --json | json_num top1)
awk -v t="$top1" 'BEGIN { exit !(t > 96.0) }' || fail "vit W4 top1 $top1"

# one grid per tensor (--group tensor) against one per output channel: the coarser grid loses more
for g in tensor channel; do
  "$PTQ" quantize "$M" "${calib[@]}" -o "$TMP/$g.ptq" --wbits 4 --sym --method rtn --group $g --json > /dev/null || fail "quantize --group $g"
done
pt=$("$PTQ" eval "$TMP/tensor.ptq" "${evalp[@]}" | json_num ppl)
pc=$("$PTQ" eval "$TMP/channel.ptq" "${evalp[@]}" | json_num ppl)
echo "RTN W4 symmetric: per channel $pc, per tensor $pt"
awk -v f="$float" -v c="$pc" -v t="$pt" 'BEGIN { exit !(f < c && c < t) }' || fail "expected float < per-channel < per-tensor"
expect_fail 2 "--group expects a group size that is a multiple of 32" -- "$PTQ" quantize "$M" "${calib[@]}" -o "$TMP/x.ptq" --wbits 4 --group rows

expect_fail 2 "--wbits expects an integer in \[2, 8\]" -- "$PTQ" quantize "$M" "${calib[@]}" -o "$TMP/x.ptq" --wbits 9
expect_fail 2 "multiple of 32" -- "$PTQ" quantize "$M" "${calib[@]}" -o "$TMP/x.ptq" --wbits 4 --group 48
expect_fail 2 "no-dir/x.ptq: the folder .*no-dir does not exist" -- "$PTQ" quantize "$M" "${calib[@]}" -o "$TMP/no-dir/x.ptq" --wbits 4
expect_fail 2 "--method must be rtn or gptq" -- "$PTQ" quantize "$M" "${calib[@]}" -o "$TMP/x.ptq" --wbits 4 --method awq
expect_fail 1 "documents \[200, 300\)" -- "$PTQ" quantize "$M" --calib "$TXT" --docs-sep "$SEP" --docs 200:300 -o "$TMP/x.ptq" --wbits 4
[ -e "$TMP/x.ptq" ] && fail "a failed quantize left $TMP/x.ptq behind"
ls "$TMP" | grep -q 'tmp\.' && fail "a temporary file was left behind"
finish
