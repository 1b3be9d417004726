# A quantized file carries its tokenizer: `ptq eval OUT.ptq` and `ptq generate OUT.ptq` work with the file
# alone, in a folder with nothing else, and give exactly what they give with the original tokenizer file.
source "$(dirname "$0")/e2e_lib.bash"
need stories260K/stories260K.bin
need stories260K/tok512.bin
need tinystories/tinystories-valid-100.txt
M="$DATA/stories260K/stories260K.bin"
TOK="$DATA/stories260K/tok512.bin"
TXT="$DATA/tinystories/tinystories-valid-100.txt"
SEP='<|endoftext|>'
mkdir -p "$TMP/alone"
"$PTQ" quantize "$M" --tokenizer "$TOK" --calib "$TXT" --docs-sep "$SEP" --docs 0:20 --calib-n 8 --calib-ctx 128 \
  --wbits 4 --group 32 --method rtn -o "$TMP/alone/w4.ptq" --json > /dev/null || fail "quantize"
with=$("$PTQ" eval "$TMP/alone/w4.ptq" --tokenizer "$TOK" --text "$TXT" --docs-sep "$SEP" --docs 60: --json)
alone=$("$PTQ" eval "$TMP/alone/w4.ptq" --text "$TXT" --docs-sep "$SEP" --docs 60: --json) || fail "eval without --tokenizer"
[ -n "$with" ] && [ "$(echo "$with" | json_num ppl)" = "$(echo "$alone" | json_num ppl)" ] &&
  [ "$(echo "$with" | json_num tokens)" = "$(echo "$alone" | json_num tokens)" ] ||
  fail "the carried tokenizer differs from tok512.bin: $with / $alone"
g1=$("$PTQ" generate "$TMP/alone/w4.ptq" --tokenizer "$TOK" --prompt "Once upon a time" --steps 24 --temperature 0 2>/dev/null)
g2=$("$PTQ" generate "$TMP/alone/w4.ptq" --prompt "Once upon a time" --steps 24 --temperature 0 2>/dev/null) || fail "generate without --tokenizer"
[ -n "$g1" ] && [ "$g1" = "$g2" ] || fail "generated text differs: '$g1' / '$g2'"
# the file's tokenizer is checked like the rest of the file: a damaged token string is refused
cp "$TMP/alone/w4.ptq" "$TMP/flip.ptq"
python3 - "$TMP/flip.ptq" <<'PY' || fail "could not damage the tokenizer"
import json, struct, sys
with open(sys.argv[1], "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    at = 8 + n + json.loads(f.read(n))["tokenizer.tokens"]["data_offsets"][0] + 40
    f.seek(at); b = f.read(1)[0]; f.seek(at); f.write(bytes([b ^ 0x01]))
PY
expect_fail 1 "flip.ptq: tensor tokenizer.tokens is corrupted" -- "$PTQ" eval "$TMP/flip.ptq" --text "$TXT"
finish
