# Streaming quantization (issue 14): ptq quantize converts a block's weights from the mapped source when it reaches
# the block and writes the block out once quantized; the file must be byte for byte the one of --in-memory (the
# whole float32 model loaded, the file written at the end). Covered: a float32 safetensors model, a sharded bf16
# one (bench/make_llama7b_shape.py at a small shape), a llama2.c model (not streamed from the source, but still
# written block by block), with BC (all scopes, held-apart report), activation quantization and act-order.
source "$(dirname "$0")/e2e_lib.bash"
need llama-shakespeare-256/model.safetensors
need stories260K/stories260K.bin
need tinystories/tinystories-valid-100.txt
L="$DATA/llama-shakespeare-256"
S="$DATA/stories260K"
TXT="$DATA/tinystories/tinystories-valid-100.txt"

same() { # same NAME MODEL OPTIONS...: streamed and in-memory files identical
  local name="$1" model="$2"; shift 2
  "$PTQ" quantize "$model" "$@" -o "$TMP/$name.s.ptq" --json > "$TMP/$name.s.json" 2> "$TMP/err" || { fail "$name streamed: $(cat "$TMP/err")"; return; }
  "$PTQ" quantize "$model" "$@" -o "$TMP/$name.m.ptq" --in-memory --json > "$TMP/$name.m.json" 2> "$TMP/err" || { fail "$name in memory: $(cat "$TMP/err")"; return; }
  cmp -s "$TMP/$name.s.ptq" "$TMP/$name.m.ptq" || fail "$name: the streamed file differs from the in-memory one"
  # the summary of the streamed run (its blocks were freed) is the in-memory one
  [ "$(json_num bits_per_weight < "$TMP/$name.s.json")" = "$(json_num bits_per_weight < "$TMP/$name.m.json")" ] ||
    fail "$name: bits per weight differ: $(head -c 200 "$TMP/$name.s.json") vs $(head -c 200 "$TMP/$name.m.json")"
  ls "$TMP" | grep -q 'ptq-tmp\|ptq-spill' && fail "$name: a temporary file was left: $(ls "$TMP")"
}

calib=(--calib "$L/shakespeare-eval.txt" --calib-n 4 --calib-ctx 32 --no-layer-error)
same gptq3bc "$L" "${calib[@]}" --wbits 3 --act-order --bc --bc-scope linear,block,logits --report "$TMP/bc.json"
same w8a8 "$L" "${calib[@]}" --wbits 8 --abits 8 --group 64 --method rtn
same stories "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --calib "$TXT" --calib-n 4 --calib-ctx 64 --wbits 4 --bc

# a sharded bf16 model in Hugging Face's 7B layout, at a small shape
if /usr/bin/python3 "$SRC/bench/make_llama7b_shape.py" "$TMP/bf16" 3 --dim 128 --ffn 352 --heads 4 --vocab 512 --ctx 128 > "$TMP/py.log" 2>&1; then
  same bf16 "$TMP/bf16" --tokenizer "$S/tok512.bin" --calib "$TXT" --calib-n 4 --calib-ctx 64 --wbits 4 --group 32
  # the streamed file runs: perplexity equal to the in-memory file's (the same bytes), and finite
  p=$("$PTQ" eval "$TMP/bf16.s.ptq" --tokenizer "$S/tok512.bin" --text "$TXT" --docs-sep "<|endoftext|>" --docs 0:2 --json | json_num ppl)
  awk -v p="$p" 'BEGIN { exit !(p > 1 && p < 1e6) }' || fail "eval of the streamed bf16 file: ppl '$p'"
else
  [ "${CI:-}" = true ] && fail "bench/make_llama7b_shape.py failed: $(tail -1 "$TMP/py.log")"
  echo "note: no /usr/bin/python3 with numpy: the bf16 shard case was skipped"
fi

# progress output names the calibration activations' size: 4 windows x 64 tokens x dim 64 x 4 bytes = 65.5 kB
"$PTQ" quantize "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --calib "$TXT" --calib-n 4 --calib-ctx 64 --wbits 4 \
  --method rtn -o "$TMP/p.ptq" > /dev/null 2> "$TMP/err" || fail "quantize with progress"
grep -q 'calibration activations between blocks: 0.1 MB (float32)' "$TMP/err" || fail "activation size line: $(head -3 "$TMP/err")"
# a streamed run that fails midway (NaN in block 1's source weights, met only when the block is converted) leaves
# neither the output nor a temporary file
if [ -d "$TMP/bf16" ]; then
  mkdir -p "$TMP/nan" && cp "$TMP/bf16"/*.json "$TMP/nan/" && cp "$TMP/bf16"/*.safetensors "$TMP/nan/"
  /usr/bin/python3 - "$TMP/nan/model-00003-of-00005.safetensors" <<'PY' || fail "could not plant a NaN"
import json, struct, sys
with open(sys.argv[1], "r+b") as f:  # layer 1's shard: the first bf16 of its down_proj becomes NaN (0x7fc0)
    n = struct.unpack("<Q", f.read(8))[0]
    f.seek(8 + n + json.loads(f.read(n))["model.layers.1.mlp.down_proj.weight"]["data_offsets"][0])
    f.write(struct.pack("<H", 0x7FC0))
PY
  expect_fail 1 "model.layers.1.mlp.down_proj.weight.*non-finite|NaN" -- "$PTQ" quantize "$TMP/nan" --tokenizer "$S/tok512.bin" \
    --calib "$TXT" --calib-n 2 --calib-ctx 32 --wbits 4 --method rtn -o "$TMP/nan.ptq"
  [ -e "$TMP/nan.ptq" ] && fail "a failed streamed run left its output"
  ls "$TMP" | grep -q 'ptq-tmp\|ptq-spill' && fail "a failed streamed run left a temporary file: $(ls "$TMP")"
fi
finish
