# A LLaMA-architecture model whose only tokenizer file is a Hugging Face tokenizer.json (llama-shakespeare-256
# with its tokenizer.bin converted by tests/ref/l2c_tokenizer_json.py as Hugging Face converts SentencePiece
# models): ptq finds it, encodes exactly as the llama2.c tokenizer does (same tokens, same perplexity; on the
# whole held-out text that is PyTorch's 2.4631, see PROVENANCE.md), and quantizes and evaluates the model,
# the quantized file carrying the tokenizer.json's vocabulary.
source "$(dirname "$0")/e2e_lib.bash"
need llama-shakespeare-256/model.safetensors
need llama-shakespeare-256/tokenizer.bin
need llama-shakespeare-256/shakespeare-eval.txt
need tinyshakespeare/input.txt
L="$DATA/llama-shakespeare-256"
mkdir -p "$TMP/hf" "$TMP/alone"
ln -s "$L/model.safetensors" "$TMP/hf/model.safetensors"
cp "$L/config.json" "$TMP/hf/"
/usr/bin/python3 "$SRC/tests/ref/l2c_tokenizer_json.py" "$L/tokenizer.bin" "$TMP/hf/tokenizer.json" > /dev/null ||
  fail "could not write tokenizer.json"
evalp=(--text "$L/shakespeare-eval.txt" --docs-sep $'\n\n' --docs 0:120 --json)
bin=$("$PTQ" eval "$L" --tokenizer "$L/tokenizer.bin" "${evalp[@]}") || fail "eval with tokenizer.bin"
json=$("$PTQ" eval "$TMP/hf" "${evalp[@]}") || fail "eval with tokenizer.json"
echo "tokenizer.bin: $bin"
echo "tokenizer.json: $json"
[ -n "$bin" ] && [ "$bin" = "$json" ] || fail "tokenizer.json and tokenizer.bin disagree"
"$PTQ" quantize "$TMP/hf" --calib "$DATA/tinyshakespeare/input.txt" --docs-sep $'\n\n' --docs 0:400 --calib-n 8 \
  --calib-ctx 128 --wbits 4 --group 32 --method gptq -o "$TMP/alone/w4.ptq" --json > /dev/null || fail "quantize"
q=$("$PTQ" eval "$TMP/alone/w4.ptq" "${evalp[@]}") || fail "eval of the quantized file without a tokenizer file"
echo "W4 g32 GPTQ: $q"
[ "$(echo "$q" | json_num tokens)" = "$(echo "$json" | json_num tokens)" ] || fail "the quantized file's tokenizer differs"
awk -v f="$(echo "$json" | json_num ppl)" -v q="$(echo "$q" | json_num ppl)" 'BEGIN { exit !(q > f && q < 1.15 * f) }' ||
  fail "W4 perplexity not within 15% of float"
expect_fail 1 "config.json: .*\"model\"" -- "$PTQ" eval "$TMP/hf" --tokenizer "$TMP/hf/config.json" "${evalp[@]}"
finish
