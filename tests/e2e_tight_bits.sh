# Tight 5-7-bit storage end to end: llama-shakespeare-256 quantized W5 / W6 / W7 g32 (RTN) through the CLI gives
# format version 4 files whose bits per weight are exactly bits + 24/32 (codes + fp16 scale + zero per 32; every
# matrix is a multiple of 32 wide), whose code bytes shrink the file by exactly out * in * (8 - bits) / 8 over the
# block matrices against the 8-bit storage of the same grid (the W8 file has the very same scales and zeros
# layout), and whose cross-entropy stays within 0.02 nats of the float model's (PyTorch reference: 2.4631 on the
# whole text); a 6-bit head runs; --act8 runs the packed int8 kernels; W4 files stay version 2.
source "$(dirname "$0")/e2e_lib.bash"
need llama-shakespeare-256/model.safetensors
need llama-shakespeare-256/shakespeare-eval.txt
need tinyshakespeare/input.txt
D="$DATA/llama-shakespeare-256"
calib=(--calib "$DATA/tinyshakespeare/input.txt" --docs-sep $'\n\n' --docs 0:100 --calib-n 2 --calib-ctx 64)
evalp=(--text "$D/shakespeare-eval.txt" --docs-sep $'\n\n' --docs 0:25 --json)
version() { head -c 65536 "$1" | grep -a -o '"ptq.format_version":"[0-9]*"' | grep -o '[0-9]*"$' | tr -d '"'; }

ce0=$("$PTQ" eval "$D/model.safetensors" --tokenizer "$D/tokenizer.bin" "${evalp[@]}" | json_num mean_ce)
for b in 4 5 6 7 8; do
  "$PTQ" quantize "$D" "${calib[@]}" --wbits $b --group 32 --method rtn -o "$TMP/w$b.ptq" --json > "$TMP/w$b.json" ||
    fail "quantize W$b"
done
for b in 5 6 7; do
  [ "$(version "$TMP/w$b.ptq")" = 4 ] || fail "W$b: format version $(version "$TMP/w$b.ptq"), expected 4"
  bpw=$("$PTQ" inspect "$TMP/w$b.ptq" --json | tr -d '\t' | json_num bits_per_weight)
  close "$bpw" "$b.75" 1e-9 || fail "W$b g32: $bpw bits per weight, expected $b.75"
  ce=$("$PTQ" eval "$TMP/w$b.ptq" "${evalp[@]}" | json_num mean_ce)
  ce8=$("$PTQ" eval "$TMP/w$b.ptq" "${evalp[@]}" --act8 | json_num mean_ce)
  echo "W$b g32: $bpw bits per weight, mean CE $ce (--act8 $ce8), float model $ce0"
  close "$ce" "$ce0" 0.02 || fail "W$b: mean CE $ce, float model $ce0"
  close "$ce8" "$ce" 0.02 || fail "W$b --act8: mean CE $ce8 vs $ce"
done
[ "$(version "$TMP/w4.ptq")" = 2 ] || fail "a W4 file is version $(version "$TMP/w4.ptq"), expected 2 as before"
# block matrices of llama-shakespeare-256: the difference of a W8 and a W5 file is in the codes only
w=$("$PTQ" inspect "$TMP/w8.ptq" --json | tr -d '\t' | json_num quantized_weights)
s8=$(stat -c %s "$TMP/w8.ptq")
for b in 5 6 7; do
  s=$(stat -c %s "$TMP/w$b.ptq")
  want=$((w * (8 - b) / 8))
  [ $((s8 - s - want)) -ge -256 ] && [ $((s8 - s - want)) -le 256 ] ||
    fail "W$b file $s bytes, W8 $s8: $((s8 - s)) apart, expected $want (codes) within 256 (header)"
done
"$PTQ" quantize "$D" "${calib[@]}" --wbits 5 --group 32 --method rtn --head-bits 6 -o "$TMP/h6.ptq" --json > /dev/null ||
  fail "quantize --head-bits 6"
ce=$("$PTQ" eval "$TMP/h6.ptq" "${evalp[@]}" | json_num mean_ce)
close "$ce" "$ce0" 0.03 || fail "W5 with a 6-bit head: mean CE $ce, float model $ce0"
"$PTQ" generate "$TMP/h6.ptq" --steps 8 --temperature 0 > /dev/null 2>&1 || fail "generate with a 6-bit head"
finish
