# ptq eval / generate --act8 (issue 15, part F): int8 activations for the packed layers (and a GGUF's k-quant
# matrices), against the same
# model with float activations (the exact path, itself tested against references elsewhere).
# Tolerances, from docs/RESULTS.md (int8 activations): perplexity moves by at most 0.05% on
# llama-shakespeare-256 (256-wide layers) and 0.5% on stories260K (64-wide: two 32-column activation blocks
# per row); measured on these excerpts 0.033% and 0.22% (RTN W4 g32, AVX-512 VNNI).
source "$(dirname "$0")/e2e_lib.bash"
need llama-shakespeare-256/model.safetensors
need stories260K/stories260K.bin
need tinystories/tinystories-valid-100.txt
SHK="$DATA/llama-shakespeare-256"
ST="$DATA/stories260K/stories260K.bin"
STT="$DATA/tinystories/tinystories-valid-100.txt"
head -c 2000 "$SHK/shakespeare-eval.txt" > "$TMP/shk.txt"
head -c 4000 "$STT" > "$TMP/st.txt"

# rel_ppl_change MODEL TEXT: |ppl(act8) - ppl(float)| / ppl(float)
ppl_pair() {
  local f a
  f=$("$PTQ" eval "$1" --text "$2" --json) || { fail "eval $1"; return; }
  a=$("$PTQ" eval "$1" --text "$2" --act8 --json) || { fail "eval $1 --act8"; return; }
  echo "$f" > "$TMP/float.json"; echo "$a" > "$TMP/act8.json"

  [ "$(echo "$f" | json_num tokens)" = "$(echo "$a" | json_num tokens)" ] || fail "token counts differ: $f / $a"
  awk -v f="$(echo "$f" | json_num ppl)" -v a="$(echo "$a" | json_num ppl)" \
    'BEGIN { d = (a - f) / f; if (d < 0) d = -d; printf "%.6f", d }'
}

"$PTQ" quantize "$SHK" --calib "$TMP/shk.txt" --calib-n 2 --calib-ctx 64 -o "$TMP/shk.ptq" --wbits 4 --group 32 \
  --method rtn --json > /dev/null 2> "$TMP/err" || fail "quantize shakespeare: $(cat "$TMP/err")"
d=$(ppl_pair "$TMP/shk.ptq" "$TMP/shk.txt")
echo "llama-shakespeare-256 W4 g32: relative perplexity change with --act8 $d"
awk -v d="$d" 'BEGIN { exit !(d != "" && d <= 0.0005) }' || fail "shakespeare --act8 moved perplexity by $d (> 0.05%)"

# a GGUF's k-quant matrices (run on their blocks, kernels/ggml_gemm.h) take int8 activations too (AVX-512 VNNI, AVX2;
# without AVX2 the same float path twice), the Q6_K output head included. Measured on this excerpt: 0.001% (prompts on
# the int8 GEMM), 0.11% (everything on the GEMV kernels), 0.05% (the scalar reference): the same sums in another
# float order flip a few activation roundings in the next layers, so the change is of the order of the int8 noise
"$PTQ" quantize "$SHK" --type Q4_K_M --method rtn -o "$TMP/shk-q4km.gguf" --json > /dev/null 2> "$TMP/err" ||
  fail "quantize shakespeare Q4_K_M: $(cat "$TMP/err")"
d=$(ppl_pair "$TMP/shk-q4km.gguf" "$TMP/shk.txt")
echo "llama-shakespeare-256 Q4_K_M GGUF: relative perplexity change with --act8 $d"
awk -v d="$d" 'BEGIN { exit !(d != "" && d <= 0.0025) }' || fail "Q4_K_M --act8 moved perplexity by $d (> 0.25%)"
if grep -qw avx2 /proc/cpuinfo; then  # the int8 kernels ran (AVX2 or AVX-512 VNNI): the numbers moved
  if cmp -s "$TMP/float.json" "$TMP/act8.json"; then fail "Q4_K_M --act8 left the results unchanged: the int8 kernels did not run"; fi
fi

"$PTQ" quantize "$ST" --calib "$TMP/st.txt" --calib-n 2 --calib-ctx 64 -o "$TMP/st.ptq" --wbits 4 --group 32 \
  --method rtn --json > /dev/null 2> "$TMP/err" || fail "quantize stories260K: $(cat "$TMP/err")"
d=$(ppl_pair "$TMP/st.ptq" "$TMP/st.txt")
echo "stories260K W4 g32: relative perplexity change with --act8 $d"
awk -v d="$d" 'BEGIN { exit !(d != "" && d <= 0.005) }' || fail "stories260K --act8 moved perplexity by $d (> 0.5%)"

# generate: decoding one row at a time (the GEMV path); greedy text starts the same as with float activations
gf=$("$PTQ" generate "$TMP/st.ptq" --prompt "Once upon a time" --steps 24 --temperature 0 --json) || fail "generate"
ga=$("$PTQ" generate "$TMP/st.ptq" --prompt "Once upon a time" --steps 24 --temperature 0 --act8 --json) ||
  fail "generate --act8"
tf=$(echo "$gf" | sed -n 's/.*"text":"\([^"]*\)".*/\1/p')
ta=$(echo "$ga" | sed -n 's/.*"text":"\([^"]*\)".*/\1/p')
[ ${#tf} -ge 20 ] && [ "${tf:0:20}" = "${ta:0:20}" ] || fail "generate --act8 text '$ta' does not start like '$tf'"

# a model without packed layers: a clear error, not a silent no-op
expect_fail 1 "has no packed low-bit layers" -- "$PTQ" eval "$ST" --text "$TMP/st.txt" --act8
expect_fail 1 "has no packed low-bit layers" -- "$PTQ" generate "$ST" --steps 2 --act8
"$PTQ" eval --help | grep -q -- "--act8" || fail "eval --help lacks --act8"
"$PTQ" generate --help | grep -q -- "--act8" || fail "generate --help lacks --act8"
finish
