# ptq quantize --format gguf end to end: the CLI's options and refusals, a file ptq reads back with the types
# llama.cpp's rules give (the numbers against llama.cpp itself are in tests/test_gguf_export.c and
# test_gguf_gpt2.c), GPTQ + BC on stories260K carried as bias tensors that llama.cpp's reader (gguf-py) finds, and
# a GPT-2 folder into llama.cpp's gpt2 layout.
source "$(dirname "$0")/e2e_lib.bash"
need llama-shakespeare-256/model.safetensors
need llama-shakespeare-256/shakespeare-eval.txt
need stories260K/stories260K.bin
need stories260K/tok512.bin
need tinystories/tinystories-valid-100.txt
need vit-mnist/model.safetensors
need_ref llama.cpp/gguf-py/gguf/gguf_reader.py
D="$DATA/llama-shakespeare-256"
S="$DATA/stories260K"
TXT="$D/shakespeare-eval.txt"
SEP=$'\n\n'

# RTN needs no calibration; the type is llama.cpp's name, case-insensitive, and .gguf selects the format
"$PTQ" quantize "$D" --type q4_k_m --method rtn -o "$TMP/a.gguf" > "$TMP/out" 2> "$TMP/err" || fail "rtn Q4_K_M: $(cat "$TMP/err")"
grep -q "GGUF Q4_K_M" "$TMP/out" || fail "summary: $(cat "$TMP/out")"
"$PTQ" inspect "$TMP/a.gguf" > "$TMP/insp" || fail "inspect"
# Q4_K_M on 4 layers: attn_v and ffn_down of layers 2 and 3 in Q6_K (llama.cpp's use_more_bits: i >= 7n/8 or
# (i - n/8) % 3 == 2), of layers 0 and 1 in Q4_K; output in Q6_K
for t in blk.2.attn_v blk.3.attn_v blk.2.ffn_down blk.3.ffn_down output; do
  grep -qE "^  $t.weight +Q6_K " "$TMP/insp" || fail "$t is not Q6_K: $(grep "$t.weight" "$TMP/insp")"
done
for t in blk.0.attn_v blk.1.ffn_down blk.0.attn_q token_embd; do
  grep -qE "^  $t.weight +Q4_K " "$TMP/insp" || fail "$t is not Q4_K: $(grep "$t.weight" "$TMP/insp")"
done
out=$("$PTQ" eval "$TMP/a.gguf" --text "$TXT" --docs-sep "$SEP" --docs 0:40 --json) || fail "eval of the export"
f32=$("$PTQ" eval "$D" --text "$TXT" --docs-sep "$SEP" --docs 0:40 --json)
close "$(echo "$out" | json_num mean_ce)" "$(echo "$f32" | json_num mean_ce)" 0.05 || fail "Q4_K_M $out vs float $f32"

# --json reports the type and bits per weight; F32 is the float model exactly
js=$("$PTQ" quantize "$D" --format gguf --type F32 --method rtn -o "$TMP/f.bin" --json) || fail "F32 export"
echo "$js" | grep -q '"type":"F32"' || fail "json: $js"
close "$(echo "$js" | json_num bits_per_weight)" 32 1e-9 || fail "F32 bits per weight: $js"
out=$("$PTQ" eval "$TMP/f.bin" --text "$TXT" --docs-sep "$SEP" --docs 0:40 --json)
[ "$(echo "$out" | json_num mean_ce)" = "$(echo "$f32" | json_num mean_ce)" ] || fail "F32 export $out vs model $f32"

# stories260K (llama2.c): rows of 64 and 172 take llama.cpp's fallbacks; GPTQ + BC into Q4_0 with biases in the file
"$PTQ" quantize "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --calib "$DATA/tinystories/tinystories-valid-100.txt" \
  --calib-n 8 --calib-ctx 64 --type Q4_0 --bc -o "$TMP/s.gguf" > "$TMP/out" 2> "$TMP/err" || fail "gptq+bc: $(cat "$TMP/err")"
"$PTQ" inspect "$TMP/s.gguf" > "$TMP/insp"
grep -qE "^  blk.0.ffn_down.weight +F16 " "$TMP/insp" || fail "ffn_down (rows of 172) is not F16: $(grep ffn_down "$TMP/insp" | head -2)"
grep -qE "^  blk.0.ffn_gate.weight +Q4_0 " "$TMP/insp" || fail "ffn_gate is not Q4_0"
grep -qE "^  token_embd.weight +Q8_0 " "$TMP/insp" || fail "tied token_embd (rows of 64) is not Q8_0"
grep -q "^  output.weight" "$TMP/insp" && fail "a tied model got an output tensor"
grep -qE "^  blk.4.ffn_down.bias +F32 " "$TMP/insp" || fail "no BC bias in the file: $(grep bias "$TMP/insp")"
/usr/bin/python3 -c "
import sys; sys.path.insert(0, '$REFS/llama.cpp/gguf-py')
from gguf import GGUFReader
r = GGUFReader('$TMP/s.gguf')
names = {t.name for t in r.tensors}
assert 'blk.4.ffn_down.bias' in names, names
f = r.fields['general.architecture']; assert bytes(f.parts[f.data[0]]) == b'llama'
f = r.fields['tokenizer.ggml.model']; assert bytes(f.parts[f.data[0]]) == b'llama'
assert len(r.fields['tokenizer.ggml.tokens'].data) == 512
" 2> "$TMP/py" || fail "gguf-py reading the export: $(cat "$TMP/py")"
"$PTQ" eval "$TMP/s.gguf" --text "$DATA/tinystories/tinystories-valid-100.txt" --json > /dev/null ||
  fail "eval of the BC export"

# GPT-2 (a small Hugging Face folder written here, tests/data/gpt2tok's byte-level BPE): llama.cpp's gpt2 layout
need wikitext-2/wikitext2-raw-test.txt
G="$TMP/gpt2"
mkdir -p "$G"
cp "$SRC/tests/data/gpt2tok/vocab.json" "$SRC/tests/data/gpt2tok/merges.txt" "$G/"
/usr/bin/python3 - "$G" <<'PY' || fail "writing the GPT-2 folder"
import json, struct, sys
import numpy as np
d, L, F, P, V = 256, 2, 512, 64, 2257
rng = np.random.default_rng(0)
t = {"transformer.wte.weight": rng.normal(0, 0.3, (V, d)), "transformer.wpe.weight": rng.normal(0, 0.1, (P, d)),
     "transformer.ln_f.weight": 1 + rng.normal(0, 0.1, d), "transformer.ln_f.bias": rng.normal(0, 0.05, d)}
for l in range(L):
    p = f"transformer.h.{l}."
    for n, shape, sd in [("ln_1.weight", d, 0.1), ("ln_1.bias", d, 0.05), ("attn.c_attn.weight", (d, 3 * d), 0.07),
                         ("attn.c_attn.bias", 3 * d, 0.02), ("attn.c_proj.weight", (d, d), 0.06),
                         ("attn.c_proj.bias", d, 0.02), ("ln_2.weight", d, 0.1), ("ln_2.bias", d, 0.05),
                         ("mlp.c_fc.weight", (d, F), 0.06), ("mlp.c_fc.bias", F, 0.02),
                         ("mlp.c_proj.weight", (F, d), 0.04), ("mlp.c_proj.bias", d, 0.02)]:
        t[p + n] = rng.normal(0, sd, shape) + (1 if n.startswith("ln") and n.endswith("weight") else 0)
hdr, blobs, off = {}, [], 0
for k, v in t.items():
    b = np.asarray(v, dtype="<f4").tobytes()
    hdr[k] = {"dtype": "F32", "shape": list(np.shape(v)), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1] + "/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
json.dump({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": d, "n_layer": L, "n_head": 4,
           "n_positions": P, "vocab_size": V, "n_inner": F, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "bos_token_id": V - 1, "eos_token_id": V - 1},
          open(sys.argv[1] + "/config.json", "w"))
PY
WT="$DATA/wikitext-2/wikitext2-raw-test.txt"
"$PTQ" quantize "$G" --type Q4_K_M --method rtn -o "$TMP/g.gguf" > "$TMP/out" 2> "$TMP/err" || fail "gpt2 rtn: $(cat "$TMP/err")"
"$PTQ" inspect "$TMP/g.gguf" > "$TMP/insp" || fail "inspect gpt2"
# llama.cpp's rules: attn_qkv is treated as attn_v (Q6_K in the use_more_bits layer 1 of 2), the tied token_embd
# as the output (Q6_K), position_embd stays F32, every bias present
for want in "blk.0.attn_qkv.weight +Q4_K" "blk.1.attn_qkv.weight +Q6_K" "blk.1.ffn_down.weight +Q6_K" \
            "token_embd.weight +Q6_K" "position_embd.weight +F32" "blk.0.attn_qkv.bias +F32" "output_norm.bias +F32"; do
  grep -qE "^  $want " "$TMP/insp" || fail "gpt2 export: no '$want': $(grep "${want%% *}" "$TMP/insp")"
done
/usr/bin/python3 -c "
import sys; sys.path.insert(0, '$REFS/llama.cpp/gguf-py')
from gguf import GGUFReader
r = GGUFReader('$TMP/g.gguf')
s = lambda k: bytes(r.fields[k].parts[r.fields[k].data[0]]).decode()
assert s('general.architecture') == 'gpt2' and s('tokenizer.ggml.model') == 'gpt2', 'arch'
assert s('tokenizer.ggml.pre') == 'gpt-2', s('tokenizer.ggml.pre')
assert len(r.fields['tokenizer.ggml.merges'].data) == 2000
" 2> "$TMP/py" || fail "gguf-py reading the gpt2 export: $(cat "$TMP/py")"
out=$("$PTQ" eval "$TMP/g.gguf" --text "$WT" --docs-sep "$SEP" --docs 0:20 --json) || fail "eval of the gpt2 export"
fl=$("$PTQ" eval "$G" --text "$WT" --docs-sep "$SEP" --docs 0:20 --json)
close "$(echo "$out" | json_num mean_ce)" "$(echo "$fl" | json_num mean_ce)" 0.05 || fail "gpt2 Q4_K_M $out vs float $fl"
"$PTQ" quantize "$G" --type Q8_0 --calib "$WT" --docs-sep "$SEP" --calib-n 8 --calib-ctx 64 --bc -o "$TMP/gb.gguf" \
  > "$TMP/out" 2> "$TMP/err" || fail "gpt2 gptq+bc: $(cat "$TMP/err")"
"$PTQ" eval "$TMP/gb.gguf" --text "$WT" --docs-sep "$SEP" --docs 0:20 --json > /dev/null || fail "eval of gpt2 GPTQ+BC"

# refusals, before any work
expect_fail 2 "--type must be one of F32, F16, Q8_0" -- "$PTQ" quantize "$D" --type Q7_K --method rtn -o "$TMP/x.gguf"
expect_fail 2 "needs --type" -- "$PTQ" quantize "$D" --format gguf --method rtn -o "$TMP/x.gguf"
expect_fail 2 "--wbits and --group do not apply" -- "$PTQ" quantize "$D" --type Q4_0 --wbits 4 --method rtn -o "$TMP/x.gguf"
expect_fail 2 "activation quantization" -- "$PTQ" quantize "$D" --type Q4_0 --abits 8 --calib "$TXT" -o "$TMP/x.gguf"
expect_fail 2 "apply to --format gguf" -- "$PTQ" quantize "$D" --type Q4_0 --calib "$TXT" --wbits 4 -o "$TMP/x.ptq"
expect_fail 2 "--format must be ptq or gguf" -- "$PTQ" quantize "$D" --format onnx --type Q4_0 -o "$TMP/x.gguf"
expect_fail 2 "needs -o OUT, and --calib" -- "$PTQ" quantize "$D" --type Q4_0 -o "$TMP/x.gguf"
expect_fail 1 "act-order" -- "$PTQ" quantize "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --calib \
  "$DATA/tinystories/tinystories-valid-100.txt" --calib-n 2 --calib-ctx 32 --type Q8_0 --act-order -o "$TMP/x.gguf"
expect_fail 1 "logits.*no output bias" -- "$PTQ" quantize "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --calib \
  "$DATA/tinystories/tinystories-valid-100.txt" --calib-n 2 --calib-ctx 32 --type Q8_0 --bc --bc-scope logits \
  -o "$TMP/x.gguf"
expect_fail 1 "position-shaped" -- "$PTQ" quantize "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --calib \
  "$DATA/tinystories/tinystories-valid-100.txt" --calib-n 2 --calib-ctx 32 --type Q8_0 --bc --bc-shape position \
  -o "$TMP/x.gguf"
expect_fail 1 "LLaMA and GPT-2 language models.*image model" -- "$PTQ" quantize "$DATA/vit-mnist" --type Q8_0 \
  --method rtn -o "$TMP/x.gguf"
# a GGUF whose matrices are Q4_0 blocks (packed at load) is not quantized again, into .ptq or GGUF
expect_fail 1 "already quantized.*float model" -- "$PTQ" quantize "$TMP/s.gguf" --calib \
  "$DATA/tinystories/tinystories-valid-100.txt" --calib-n 2 --calib-ctx 32 --wbits 4 -o "$TMP/x.ptq"
expect_fail 1 "no float weights.*Q4_0/Q5_0/Q8_0 blocks" -- "$PTQ" quantize "$TMP/s.gguf" --type Q8_0 --method rtn \
  -o "$TMP/x.gguf"
[ -e "$TMP/x.ptq" ] && fail "a refused run left $TMP/x.ptq"
[ -e "$TMP/x.gguf" ] && fail "a refused run left $TMP/x.gguf"
cp "$S/stories260K.bin" "$TMP/m.bin"
expect_fail 2 "" -- "$PTQ" quantize "$TMP/m.bin" --tokenizer "$S/tok512.bin" --type Q8_0 --method rtn --format gguf -o "$TMP/m.bin"
cmp -s "$TMP/m.bin" "$S/stories260K.bin" || fail "the model was overwritten"
finish
