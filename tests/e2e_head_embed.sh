# --head-bits / --embed-bits end to end: llama-shakespeare-256 (separate head) with an 8-bit head keeps the
# perplexity of the same file with a float32 head (and of the float model), files shrink by what the tables
# lose, a tied model (stories260K) keeps one table, the files run in eval/inspect, and bad options fail clearly.
source "$(dirname "$0")/e2e_lib.bash"
need llama-shakespeare-256/model.safetensors
need llama-shakespeare-256/shakespeare-eval.txt
need tinyshakespeare/input.txt
need stories260K/stories260K.bin
need tinystories/tinystories-valid-100.txt
D="$DATA/llama-shakespeare-256"
calib=(--calib "$DATA/tinyshakespeare/input.txt" --docs-sep $'\n\n' --docs 0:200 --calib-n 4 --calib-ctx 64)
evalp=(--text "$D/shakespeare-eval.txt" --docs-sep $'\n\n' --docs 0:25 --json)
size() { stat -c %s "$1"; }

"$PTQ" --help quantize 2>&1 | grep -q -- "--head-bits N" || "$PTQ" quantize --help 2>&1 | grep -q -- "--head-bits N" ||
  fail "quantize --help does not document --head-bits"
for v in float h8 h8e4 h16e16; do
  case $v in
    float) o=() ;;
    h8) o=(--head-bits 8) ;;
    h8e4) o=(--head-bits 8 --embed-bits 4 --embed-group 32) ;;
    h16e16) o=(--head-bits 16 --embed-bits 16) ;;
  esac
  "$PTQ" quantize "$D" "${calib[@]}" --wbits 8 --group 32 --method rtn "${o[@]}" -o "$TMP/$v.ptq" --json \
    > "$TMP/$v.json" || fail "quantize $v"
done
ce0=$("$PTQ" eval "$D/model.safetensors" --tokenizer "$D/tokenizer.bin" "${evalp[@]}" | json_num mean_ce)
ce_f=$("$PTQ" eval "$TMP/float.ptq" "${evalp[@]}" | json_num mean_ce)
ce_8=$("$PTQ" eval "$TMP/h8.ptq" "${evalp[@]}" | json_num mean_ce)
ce_84=$("$PTQ" eval "$TMP/h8e4.ptq" "${evalp[@]}" | json_num mean_ce)
ce_16=$("$PTQ" eval "$TMP/h16e16.ptq" "${evalp[@]}" | json_num mean_ce)
echo "mean CE: float model $ce0, W8 float head $ce_f, head 8-bit $ce_8, + embeddings 4-bit $ce_84, both 16-bit $ce_16"
# an 8-bit head moves the cross-entropy by less than 0.002 nats (RESULTS: 1e-5 nats on the whole text), 4-bit
# embeddings by less than 0.02, 16-bit tables by less than 0.001
close "$ce_8" "$ce_f" 0.002 || fail "8-bit head: CE $ce_8 vs $ce_f with a float32 head"
close "$ce_8" "$ce0" 0.005 || fail "8-bit head: CE $ce_8 vs $ce0 for the float model"
close "$ce_84" "$ce_f" 0.02 || fail "4-bit embeddings: CE $ce_84 vs $ce_f"
close "$ce_16" "$ce_f" 0.001 || fail "16-bit tables: CE $ce_16 vs $ce_f"
# the head's 512x256 float32 matrix (524,288 bytes) becomes 8-bit codes with an fp16 scale and a zero per 32
sf=$(size "$TMP/float.ptq"); s8=$(size "$TMP/h8.ptq"); s84=$(size "$TMP/h8e4.ptq"); s16=$(size "$TMP/h16e16.ptq")
echo "bytes: float head $sf, head 8-bit $s8, + embeddings 4-bit $s84, 16-bit tables $s16"
[ $((sf - s8)) -ge 380000 ] || fail "an 8-bit head saved $((sf - s8)) bytes, expected about 393,000"
[ $((s8 - s84)) -ge 380000 ] || fail "4-bit embeddings saved $((s8 - s84)) bytes, expected about 450,000"
[ $((sf - s16)) -ge 520000 ] || fail "16-bit tables saved $((sf - s16)) bytes, expected 524,288"
"$PTQ" inspect "$TMP/h8e4.ptq" --json > "$TMP/inspect.json" || fail "inspect"
for t in head.qweight tok_emb.qweight tok_emb.scales; do
  grep -q "\"$t\"" "$TMP/inspect.json" || fail "inspect lacks $t"
done
b=$("$PTQ" bench "$TMP/h8e4.ptq" --tokens 16 --steps 4 --reps 1 --no-bandwidth --act8 --json) || fail "bench --act8 on a packed head"
echo "$b" | grep -q '"decode_tok_per_s"' || fail "bench output: $b"

# a tied model keeps one table: --head-bits alone packs it, and contradicting settings are refused
M="$DATA/stories260K/stories260K.bin"
scal=(--calib "$DATA/tinystories/tinystories-valid-100.txt" --docs-sep '<|endoftext|>' --docs 0:20 --calib-n 4 --calib-ctx 64)
"$PTQ" quantize "$M" "${scal[@]}" --wbits 4 --method rtn --head-bits 8 -o "$TMP/tied.ptq" --json > /dev/null ||
  fail "quantize a tied model with --head-bits 8"
"$PTQ" inspect "$TMP/tied.ptq" --json > "$TMP/tied.json" || fail "inspect tied"
grep -q '"tok_emb.qweight"' "$TMP/tied.json" && ! grep -q '"head.qweight"' "$TMP/tied.json" ||
  fail "a tied model should store one packed table (tok_emb.qweight, no head.qweight)"
"$PTQ" generate "$TMP/tied.ptq" --steps 12 --temperature 0 > "$TMP/gen.txt" 2> /dev/null || fail "generate on a packed table"
grep -q 'Once upon a time' "$TMP/gen.txt" || fail "greedy text with a packed table: $(cat "$TMP/gen.txt")"
expect_fail 1 "ties its head to the token embeddings.*--head-bits 8.*--embed-bits 4" -- \
  "$PTQ" quantize "$M" "${scal[@]}" --wbits 4 --method rtn --head-bits 8 --embed-bits 4 -o "$TMP/x.ptq"
[ -e "$TMP/x.ptq" ] && fail "a refused run left its output"

expect_fail 2 "--head-bits expects 2 to 8 .* or 16 .*, got '9'" -- \
  "$PTQ" quantize "$M" "${scal[@]}" --wbits 4 --head-bits 9 -o "$TMP/x.ptq"
expect_fail 2 "--embed-bits expects .*got 'x'" -- "$PTQ" quantize "$M" "${scal[@]}" --wbits 4 --embed-bits x -o "$TMP/x.ptq"
expect_fail 2 "--head-group expects a group size that is a multiple of 32" -- \
  "$PTQ" quantize "$M" "${scal[@]}" --wbits 4 --head-bits 4 --head-group 48 -o "$TMP/x.ptq"
expect_fail 2 "--embed-group needs --embed-bits" -- "$PTQ" quantize "$M" "${scal[@]}" --wbits 4 --embed-group 32 -o "$TMP/x.ptq"
expect_fail 2 "--head-group does not apply to --head-bits 16" -- \
  "$PTQ" quantize "$M" "${scal[@]}" --wbits 4 --head-bits 16 --head-group 32 -o "$TMP/x.ptq"
expect_fail 2 "--head-bits and --embed-bits apply to .ptq output" -- \
  "$PTQ" quantize "$M" "${scal[@]}" --type Q4_0 --head-bits 8 -o "$TMP/x.gguf"
finish
