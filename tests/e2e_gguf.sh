# GGUF inputs end to end: llama-shakespeare-256 converted to GGUF by tests/ref/make_gguf_fixtures.py (llama.cpp's
# gguf-py, the converter's Q/K permutation, its tokenizer.bin as tokenizer.ggml.*) must evaluate, generate and
# quantize exactly as the safetensors it came from, with the tokenizer found in the GGUF itself.
source "$(dirname "$0")/e2e_lib.bash"
need llama-shakespeare-256/model.safetensors
need llama-shakespeare-256/tokenizer.bin
need llama-shakespeare-256/shakespeare-eval.txt
need_ref llama.cpp/gguf-py/gguf/gguf_writer.py
D="$DATA/llama-shakespeare-256"
TXT="$D/shakespeare-eval.txt"
FX="$TMP/fx"
if ! /usr/bin/python3 "$SRC/tests/ref/make_gguf_fixtures.py" model "$REFS" "$FX" "$D" > "$TMP/py.log" 2>&1; then
  if [ "${CI:-}" = "true" ]; then echo "FAIL: make_gguf_fixtures.py: $(cat "$TMP/py.log")"; exit 1; fi
  echo "SKIP: cannot write the GGUF fixtures (needs /usr/bin/python3 with numpy): $(tail -1 "$TMP/py.log")"; exit 77
fi
G="$FX/shakespeare-f32.gguf"
SEP=$'\n\n'

# perplexity: the GGUF (weights and its own tokenizer) equals PyTorch's 2.4631 on the whole held-out text, and the
# safetensors + tokenizer.bin exactly on its first 150 paragraphs
out=$("$PTQ" eval "$G" --text "$TXT" --docs-sep "$SEP" --json 2> "$TMP/err")
[ -s "$TMP/err" ] && fail "--json run wrote to stderr: $(cat "$TMP/err")"
close "$(echo "$out" | json_num mean_ce)" 2.4631 1e-4 || fail "mean_ce $out vs PyTorch 2.4631"
ref=$("$PTQ" eval "$D/model.safetensors" --tokenizer "$D/tokenizer.bin" --text "$TXT" --docs-sep "$SEP" --docs 0:150 --json)
f32=$("$PTQ" eval "$G" --text "$TXT" --docs-sep "$SEP" --docs 0:150 --json)
[ "$(echo "$f32" | json_num tokens)" = "$(echo "$ref" | json_num tokens)" ] || fail "tokens: $f32 vs $ref"
[ "$(echo "$f32" | json_num mean_ce)" = "$(echo "$ref" | json_num mean_ce)" ] || fail "mean_ce: $f32 vs $ref"

# Q8_0: equal to the weights gguf-py dequantizes, and close to float32
ref=$("$PTQ" eval "$FX/shakespeare-q8_0-deq" --tokenizer "$D/tokenizer.bin" --text "$TXT" --docs-sep "$SEP" --docs 0:150 --json)
out=$("$PTQ" eval "$FX/shakespeare-q8_0.gguf" --text "$TXT" --docs-sep "$SEP" --docs 0:150 --json)
[ "$(echo "$out" | json_num mean_ce)" = "$(echo "$ref" | json_num mean_ce)" ] || fail "q8_0 mean_ce: $out vs $ref"
close "$(echo "$out" | json_num mean_ce)" "$(echo "$f32" | json_num mean_ce)" 0.01 || fail "q8_0 $out vs f32 $f32"

# generation: the same text as from the safetensors
"$PTQ" generate "$G" --prompt "ROMEO:" --steps 40 --temperature 0 > "$TMP/g1" || fail "generate from GGUF"
"$PTQ" generate "$D/model.safetensors" --tokenizer "$D/tokenizer.bin" --prompt "ROMEO:" --steps 40 --temperature 0 \
  > "$TMP/g2" || fail "generate from safetensors"
cmp -s "$TMP/g1" "$TMP/g2" || fail "greedy text differs: $(cat "$TMP/g1") vs $(cat "$TMP/g2")"
grep -q '^ROMEO:' "$TMP/g1" || fail "prompt not echoed: $(cat "$TMP/g1")"

# quantize from the GGUF (calibration text tokenized by its own tokenizer): the same .ptq model as from safetensors
Q="--calib $TXT --docs-sep $SEP --docs 0:60 --calib-n 4 --calib-ctx 64 --wbits 4 --group 64"
"$PTQ" quantize "$G" $Q -o "$TMP/g.ptq" --json > "$TMP/q1.json" || fail "quantize the GGUF: $(cat "$TMP/q1.json")"
"$PTQ" quantize "$D/model.safetensors" --tokenizer "$D/tokenizer.bin" $Q -o "$TMP/s.ptq" --json > "$TMP/q2.json" \
  || fail "quantize the safetensors"
a=$("$PTQ" eval "$TMP/g.ptq" --tokenizer "$G" --text "$TXT" --docs-sep "$SEP" --docs 150:250 --json)
b=$("$PTQ" eval "$TMP/s.ptq" --tokenizer "$D/tokenizer.bin" --text "$TXT" --docs-sep "$SEP" --docs 150:250 --json)
[ -n "$(echo "$a" | json_num mean_ce)" ] && [ "$(echo "$a" | json_num mean_ce)" = "$(echo "$b" | json_num mean_ce)" ] \
  || fail "quantized from GGUF $a vs from safetensors $b"

# inspect names the GGUF tensors with their types
"$PTQ" inspect "$FX/shakespeare-q8_0.gguf" > "$TMP/inspect.txt" || fail "inspect"
grep -qE 'blk\.3\.ffn_down\.weight +Q8_0 +\[256, 768\]' "$TMP/inspect.txt" || fail "inspect: $(head -12 "$TMP/inspect.txt")"
grep -qE 'output_norm\.weight +F32' "$TMP/inspect.txt" || fail "inspect lacks output_norm"

# bad GGUF files: clear messages, no crash
expect_fail 1 "blk.0.ffn_down.weight.*IQ4_NL, which is not supported for reading yet; supported: F32, F16, BF16, Q4_0" \
  -- "$PTQ" eval "$FX/synth-bad-iq4nl.gguf" --text "$TXT"
expect_fail 1 "general.architecture is \"qwen2\"" -- "$PTQ" inspect "$FX/synth-bad-arch.gguf"
head -c 100000 "$G" > "$TMP/trunc.gguf"
expect_fail 1 "trunc.gguf.*(truncated|beyond the end)" -- "$PTQ" eval "$TMP/trunc.gguf" --text "$TXT"
expect_fail 1 "synth-f32.gguf: no tokenizer in this GGUF file" -- "$PTQ" eval "$FX/synth-f32.gguf" --text "$TXT"
finish
