# ptq bench (issue 15, part B): peak RSS, bytes read per decoded token and the act8 switch. The bytes per token
# are recomputed here from the model's shapes (stories260K: dim 64, FFN 172, 5 layers, 8 heads, 4 KV heads,
# vocab 512, head shared with the float embeddings) and the W4 g32 layout of docs/FORMAT.md.
source "$(dirname "$0")/e2e_lib.bash"
need stories260K/stories260K.bin
need tinystories/tinystories-valid-100.txt
M="$DATA/stories260K/stories260K.bin"
TXT="$DATA/tinystories/tinystories-valid-100.txt"
"$PTQ" quantize "$M" --calib "$TXT" --calib-n 2 --calib-ctx 64 -o "$TMP/w4.ptq" --wbits 4 --group 32 --method rtn \
  --json > /dev/null 2> "$TMP/err" || fail "quantize: $(cat "$TMP/err")"
for act in "" --act8; do
  out=$("$PTQ" bench "$TMP/w4.ptq" --tokens 8 --steps 4 --reps 1 --no-bandwidth $act --json) || fail "bench $act"
  bytes=$(echo "$out" | json_num decode_bytes_per_token)
  rss=$(echo "$out" | json_num peak_rss_bytes)
  # per linear: out * ceil(in/32) * (16 code bytes + 2 scale + 1 zero); q, o: 64x64; k, v: 32x64;
  # w1, w3: 172x64; w2: 64x172 (6 chunks); head 512x64 floats; one embedding row
  expect=$(awk 'BEGIN { l = 64*2*19 + 64*2*19 + 32*2*19 + 32*2*19 + 172*2*19*2 + 64*6*19; print 5*l + 512*64*4 + 64*4 }')
  close "$bytes" "$expect" 0 || fail "bench $act: decode_bytes_per_token $bytes, expected $expect"
  awk -v r="$rss" 'BEGIN { exit !(r > 1e6 && r < 4e9) }' || fail "bench $act: peak_rss_bytes $rss"
  echo "$out" | grep -q "\"act8\":$([ -n "$act" ] && echo true || echo false)" || fail "bench $act: act8 flag: $out"
done
# the OpenBLAS kernels it names are the ones the environment asks for (Haswell: any AVX2 CPU runs them)
out=$(OPENBLAS_CORETYPE=Haswell "$PTQ" bench "$TMP/w4.ptq" --tokens 8 --steps 1 --reps 1 --no-bandwidth --json) ||
  fail "bench with OPENBLAS_CORETYPE"
echo "$out" | grep -q '"openblas_kernels":"Haswell"' || fail "bench: openblas_kernels is not Haswell: $out"
OPENBLAS_CORETYPE=Haswell "$PTQ" bench "$TMP/w4.ptq" --tokens 8 --steps 1 --reps 1 --no-bandwidth |
  grep -q "OpenBLAS kernels: Haswell (set by OPENBLAS_CORETYPE)" || fail "bench: no OpenBLAS kernels line"
"$PTQ" bench --help | grep -q -- "--act8" || fail "bench --help lacks --act8"
finish
