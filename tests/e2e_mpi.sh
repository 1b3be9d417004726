# mpirun -np 2 on loopback: the calibration split across two processes gives the file one process writes,
# byte for byte (cmp), on stories260K (GPTQ + Bias Compensation, W3 g32: Hessians and BC sums summed
# across processes) and vit-mnist (W8A8 with the entropy calibrator, whose histograms come from the
# activation samples gathered across processes, and NoisyQuant as in the paper); rank 1 writes and
# prints nothing; a split with fewer calibration batches than processes fails clearly.
# Runs only where the ptq binary is built with MPI and mpirun is installed (skipped otherwise; a failure
# under CI=true). Under AddressSanitizer, leak detection is off in the processes mpirun starts: Open MPI
# leaves allocations of its own at exit, from plugins it has already unloaded (so no suppression by library
# name matches them); the library code these runs use is leak-checked by the single-process tests. ASan's
# other checks stay on.
source "$(dirname "$0")/e2e_lib.bash"
need stories260K/stories260K.bin
need tinystories/tinystories-valid-100.txt
need vit-mnist/model.safetensors
need mnist/t10k-images-idx3-ubyte.gz
if ! command -v mpirun > /dev/null; then
  if [ "${CI:-}" = "true" ]; then echo "FAIL: mpirun is missing (CI=true: scripts/setup.sh installs openmpi-bin)"; exit 1; fi
  echo "SKIP: mpirun is not installed"; exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMP_NUM_THREADS=1
mpi=(env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun -np 2 --oversubscribe --bind-to none)
probe=$("${mpi[@]}" "$PTQ" quantize 2>&1)
if echo "$probe" | grep -q "built without MPI"; then
  if [ "${CI:-}" = "true" ]; then echo "FAIL: ptq is built without MPI (CI=true)"; exit 1; fi
  echo "SKIP: ptq is built without MPI (PTQ_MPI=OFF or no MPI found)"; exit 77
fi

M="$DATA/stories260K/stories260K.bin"
TXT="$DATA/tinystories/tinystories-valid-100.txt"
# 16 windows of 512 tokens: two batches of 8 windows (4096 rows), one per process
lm=(--calib "$TXT" --docs-sep '<|endoftext|>' --docs 0:60 --calib-n 16 --calib-ctx 512 --wbits 3 --group 32 --method gptq --bc)
"$PTQ" quantize "$M" "${lm[@]}" -o "$TMP/lm1.ptq" --json > /dev/null || fail "quantize stories260K"
"${mpi[@]}" "$PTQ" quantize "$M" "${lm[@]}" -o "$TMP/lm2.ptq" --json > "$TMP/out" 2> "$TMP/err" ||
  fail "mpirun quantize stories260K: $(cat "$TMP/err")"
cmp "$TMP/lm1.ptq" "$TMP/lm2.ptq" || fail "stories260K: the 2-process file differs from the 1-process file"
[ "$(grep -c '"output"' "$TMP/out")" = 1 ] || fail "expected one JSON line (rank 0's): $(head -c 400 "$TMP/out")"
[ -s "$TMP/err" ] && fail "--json under mpirun wrote to stderr: $(head -c 400 "$TMP/err")"

# vit-mnist: 256 images are two batches (240 + 16)
vit=(--calib "$DATA/mnist/t10k-images-idx3-ubyte.gz" --count 256 --wbits 8 --abits 8 --act-calib entropy
     --method rtn --noisyquant-unchecked)
"$PTQ" quantize "$DATA/vit-mnist" "${vit[@]}" -o "$TMP/v1.ptq" --json > /dev/null || fail "quantize vit-mnist"
"${mpi[@]}" "$PTQ" quantize "$DATA/vit-mnist" "${vit[@]}" -o "$TMP/v2.ptq" --json > /dev/null 2> "$TMP/err" ||
  fail "mpirun quantize vit-mnist: $(cat "$TMP/err")"
cmp "$TMP/v1.ptq" "$TMP/v2.ptq" || fail "vit-mnist: the 2-process file differs from the 1-process file"

# one batch cannot feed two processes; nothing is written
expect_fail 1 "cannot be split across 2 processes" -- "${mpi[@]}" "$PTQ" quantize "$M" --calib "$TXT" \
  --docs-sep '<|endoftext|>' --calib-n 4 --calib-ctx 256 --method rtn --wbits 4 -o "$TMP/none.ptq"
[ -e "$TMP/none.ptq" ] && fail "a failed split left an output"
finish
