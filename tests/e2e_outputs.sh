# What ptq writes: never an input (by any name), never a folder, device or FIFO; every output path checked
# before any work; a failed or interrupted run leaves nothing behind (no OUT, no OUT.ptq-tmp.<pid>).
source "$(dirname "$0")/e2e_lib.bash"
need stories260K/stories260K.bin
need stories260K/tok512.bin
need tinystories/tinystories-valid-100.txt
need vit-mnist/model.safetensors
need mnist/t10k-images-idx3-ubyte.gz
need mnist/t10k-labels-idx1-ubyte.gz
# private copies: a test that fails must not be able to damage the shared sample data
mkdir -p "$TMP/lm" "$TMP/vit" "$TMP/sub"
cp "$DATA/stories260K/stories260K.bin" "$DATA/stories260K/tok512.bin" "$TMP/lm/"
cp "$DATA/vit-mnist/config.json" "$DATA/vit-mnist/model.safetensors" "$TMP/vit/"
head -c 60000 "$DATA/tinystories/tinystories-valid-100.txt" > "$TMP/calib.txt"
cp "$DATA/mnist/t10k-labels-idx1-ubyte.gz" "$TMP/labels.gz"
chmod -R a+rX "$TMP"
M="$TMP/lm/stories260K.bin"
IMG="$DATA/mnist/t10k-images-idx3-ubyte.gz"
q=(quantize "$M" --calib "$TMP/calib.txt" --wbits 4 --method rtn --calib-n 2 --calib-ctx 64)
vq=(quantize "$TMP/vit" --calib "$IMG" --calib-labels "$TMP/labels.gz" --count 16 --wbits 8 --method rtn)
sums() { cksum "$TMP/lm/"* "$TMP/vit/"* "$TMP/calib.txt" "$TMP/labels.gz"; }
sums > "$TMP/sums.before"
leftovers() { # leftovers DIR...: any temporary file
  find "$@" -name '*.ptq-tmp.*' | grep -q . && fail "temporary files left: $(find "$@" -name '*.ptq-tmp.*')"
}

# -o or --report naming an input, by its name, another spelling, a symlink or a hard link: refused, exit 2
ln -s "$M" "$TMP/link.ptq"
ln "$TMP/calib.txt" "$TMP/hard.md"
for o in "$M" "$TMP/sub/../lm/stories260K.bin" "$TMP/link.ptq" "$TMP/lm/tok512.bin"; do
  expect_fail 2 "-o .*is the input .*(stories260K.bin|tok512.bin).*never overwrites" -- "$PTQ" "${q[@]}" -o "$o"
done
expect_fail 2 "--report .*is the input .*calib.txt" -- "$PTQ" "${q[@]}" -o "$TMP/a.ptq" --bc --report "$TMP/calib.txt"
expect_fail 2 "--report .*hard.md: is the input .*calib.txt" -- "$PTQ" "${q[@]}" -o "$TMP/a.ptq" --bc --report "$TMP/hard.md"
# the files of a model folder: its weights, its config.json; and the calibration labels
expect_fail 2 "is the input .*model.safetensors" -- "$PTQ" "${vq[@]}" -o "$TMP/vit/model.safetensors"
expect_fail 2 "is the input .*config.json" -- "$PTQ" "${vq[@]}" -o "$TMP/vit/config.json"
expect_fail 2 "is the input .*labels.gz" -- "$PTQ" "${vq[@]}" -o "$TMP/labels.gz"
# tune: the output folder of a safetensors model is its own folder; a llama2.c output is the checkpoint; the log
expect_fail 2 "is the input .*model.safetensors" -- "$PTQ" tune "$TMP/vit" --train "$IMG" --train-labels "$TMP/labels.gz" \
  --count 8 --steps 1 -o "$TMP/vit"
expect_fail 2 "is the input .*stories260K.bin" -- "$PTQ" tune "$M" --train "$TMP/calib.txt" --steps 1 -o "$TMP/lm"
expect_fail 2 "--log .*is the input .*calib.txt" -- "$PTQ" tune "$M" --train "$TMP/calib.txt" --steps 1 \
  -o "$TMP/t.bin" --log "$TMP/calib.txt"
sums > "$TMP/sums.after"
cmp -s "$TMP/sums.before" "$TMP/sums.after" || fail "an input changed"
[ -e "$TMP/a.ptq" ] && fail "a refused run wrote -o"

# not a regular file: a FIFO (and, by the same check, a device) is never replaced; a folder is no file name
mkfifo "$TMP/fifo"
expect_fail 2 "-o .*fifo: is a FIFO; ptq only replaces regular files" -- "$PTQ" "${q[@]}" -o "$TMP/fifo"
[ -p "$TMP/fifo" ] || fail "the FIFO was replaced"
expect_fail 2 "-o .*: is a folder" -- "$PTQ" "${q[@]}" -o "$TMP/sub"
expect_fail 2 "-o .*and --report .*name the same file" -- "$PTQ" "${q[@]}" -o "$TMP/a.ptq" --bc --report "$TMP/sub/../a.ptq"

# output paths are checked before anything is loaded: with a model that does not exist, the output is what fails
expect_fail 2 "-o .*nodir/out.ptq: the folder .*nodir does not exist" -- \
  "$PTQ" quantize "$TMP/no-such-model.bin" --calib "$TMP/calib.txt" --wbits 4 -o "$TMP/nodir/out.ptq"
expect_fail 2 "--report .*nodir/r.md: the folder .*nodir does not exist" -- \
  "$PTQ" quantize "$TMP/no-such-model.bin" --calib "$TMP/calib.txt" --wbits 4 -o "$TMP/a.ptq" --bc --report "$TMP/nodir/r.md"
expect_fail 2 "-o .*nodir/t: the folder .*nodir does not exist" -- \
  "$PTQ" tune "$TMP/no-such-model.bin" --train "$TMP/calib.txt" -o "$TMP/nodir/t"
[ -e "$TMP/a.ptq" ] && fail "a failed run wrote -o"

# an unwritable --report folder: reported at once, and the model is not written either. root writes anywhere,
# so as root this runs as nobody (setpriv) when it can
as_user=()
if [ "$(id -u)" = 0 ]; then
  if command -v setpriv > /dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups true 2> /dev/null; then
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  else
    as_user=(skip)
  fi
fi
if [ "${as_user[0]:-}" != skip ]; then
  mkdir -p "$TMP/w" "$TMP/ro" && chmod 777 "$TMP/w" && chmod 555 "$TMP/ro"
  expect_fail 2 "--report .*ro/r.md: the folder .*ro is not writable" -- \
    "${as_user[@]}" "$PTQ" "${q[@]}" -o "$TMP/w/out.ptq" --bc --report "$TMP/ro/r.md"
  [ -e "$TMP/w/out.ptq" ] && fail "the model was written although --report cannot be"
  expect_fail 2 "-o .*ro/out.ptq: the folder .*ro is not writable" -- "${as_user[@]}" "$PTQ" "${q[@]}" -o "$TMP/ro/out.ptq"
else
  echo "note: running as root without setpriv: the unwritable-folder checks are skipped"
fi

# a good run writes exactly its outputs and no temporary file
"$PTQ" "${q[@]}" -o "$TMP/ok.ptq" --bc --report "$TMP/ok.md" --json > /dev/null || fail "quantize with --report"
[ -s "$TMP/ok.ptq" ] && [ -s "$TMP/ok.md" ] || fail "quantize did not write OUT and --report"
leftovers "$TMP"

# SIGTERM or SIGINT during the run: the process ends by the signal and leaves no OUT.ptq-tmp.<pid>
set -m # job control: a background job would otherwise start with SIGINT ignored
for sig in TERM INT; do
  mkdir -p "$TMP/sig$sig"
  "$PTQ" quantize "$M" --calib "$DATA/tinystories/tinystories-valid-100.txt" --wbits 4 --calib-n 64 --calib-ctx 256 \
    --bc --report "$TMP/sig$sig/r.md" -o "$TMP/sig$sig/out.ptq" --json > /dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1000); do # the report's temporary file exists from the start of the run
    ls "$TMP/sig$sig/"*.ptq-tmp.* > /dev/null 2>&1 && break
    sleep 0.01
  done
  ls "$TMP/sig$sig/"*.ptq-tmp.* > /dev/null 2>&1 || fail "SIG$sig: no temporary file while running"
  kill -s "$sig" "$pid"
  wait "$pid"; rc=$?
  [ "$rc" -gt 128 ] || fail "SIG$sig: exit status $rc, expected death by the signal"
  leftovers "$TMP/sig$sig"
  [ -e "$TMP/sig$sig/out.ptq" ] || [ -e "$TMP/sig$sig/r.md" ] && fail "SIG$sig: an interrupted run wrote its outputs"
done
set +m
finish
