# Argument parsing: per-command help (--help, -h, ptq help CMD) listing exactly the options each command
# reads; strict integers with ranges; repeated options; --group and --docs-sep checked before anything loads;
# an empty text named as such.
source "$(dirname "$0")/e2e_lib.bash"
need stories260K/stories260K.bin
need stories260K/tok512.bin
M="$DATA/stories260K/stories260K.bin"
TOK="$DATA/stories260K/tok512.bin"
NOMODEL="$TMP/no-such-model.bin" # where a check must come before loading, a missing model proves it

# help: every command, three ways, the same text on stdout, exit 0
for cmd in eval generate inspect quantize tune bench; do
  "$PTQ" "$cmd" --help > "$TMP/h1" 2> "$TMP/err" || fail "$cmd --help exited $?"
  [ -s "$TMP/err" ] && fail "$cmd --help wrote to stderr: $(cat "$TMP/err")"
  "$PTQ" "$cmd" -h > "$TMP/h2" || fail "$cmd -h exited $?"
  "$PTQ" help "$cmd" > "$TMP/h3" || fail "help $cmd exited $?"
  "$PTQ" "$cmd" "$M" --json --help > "$TMP/h4" || fail "$cmd MODEL --json --help exited $?"
  head -1 "$TMP/h1" | grep -q "^usage: ptq $cmd " || fail "$cmd --help: $(head -1 "$TMP/h1")"
  for h in h2 h3 h4; do cmp -s "$TMP/h1" "$TMP/$h" || fail "$cmd: $h differs from --help"; done
  # exactly the options the command reads (tools/cmd_<cmd>.c, and the text options of parse_text_opts),
  # each on a line of its own
  src="$SRC/tools/cmd_$cmd.c"
  { grep -oE 'opt_(str|flag|num|int)\(a, "[^"]+"' "$src" | sed 's/.*"\(.*\)"/\1/'
    grep -q parse_text_opts "$src" && printf '%s\n' --tokenizer --docs-sep --docs
  } | sort -u > "$TMP/parsed"
  grep -oE '^  (-o|--[a-z0-9-]+)' "$TMP/h1" | sed 's/^  //' | sort > "$TMP/listed"
  [ -s "$TMP/parsed" ] || fail "$cmd: no options found in $src"
  diff "$TMP/parsed" "$TMP/listed" > "$TMP/diff" || fail "$cmd --help: options differ from $src ('<' not listed, '>' not read): $(cat "$TMP/diff")"
  [ "$(sort "$TMP/listed" | uniq -d)" = "" ] || fail "$cmd --help lists an option twice"
done
"$PTQ" help > "$TMP/ov" || fail "ptq help exited $?"
grep -q "quantize" "$TMP/ov" && grep -q "help CMD" "$TMP/ov" || fail "ptq help: $(cat "$TMP/ov")"
"$PTQ" --help | cmp -s - "$TMP/ov" || fail "ptq --help differs from ptq help"
expect_fail 2 "unknown command 'frobnicate'" -- "$PTQ" help frobnicate

# integers: strict, with ranges (no 3.5 -> 3, no 2^32 wrapping to 0)
expect_fail 2 "--wbits expects an integer in \[2, 8\], got '3.5'" -- "$PTQ" quantize "$NOMODEL" --calib x -o "$TMP/x.ptq" --wbits 3.5
expect_fail 2 "--wbits expects an integer.*got '4x'" -- "$PTQ" quantize "$NOMODEL" --calib x -o "$TMP/x.ptq" --wbits 4x
expect_fail 2 "--wbits expects an integer.*got ' 4'" -- "$PTQ" quantize "$NOMODEL" --calib x -o "$TMP/x.ptq" --wbits ' 4'
expect_fail 2 "--calib-n expects an integer.*got '1e3'" -- "$PTQ" quantize "$NOMODEL" --calib x -o "$TMP/x.ptq" --wbits 4 --calib-n 1e3
expect_fail 2 "--seed expects an integer.*got '99999999999999999999'" -- "$PTQ" generate "$NOMODEL" --seed 99999999999999999999
expect_fail 2 "--count expects an integer.*got '4294967296'" -- "$PTQ" eval "$NOMODEL" --images x --labels y --count 4294967296
expect_fail 2 "--ctx expects an integer.*got '-1'" -- "$PTQ" eval "$NOMODEL" --text x --ctx -1
expect_fail 2 "--steps expects an integer.*got '2.0'" -- "$PTQ" tune "$NOMODEL" --train x -o "$TMP/t" --steps 2.0
expect_fail 2 "--reps expects an integer.*got ''" -- "$PTQ" bench "$NOMODEL" --reps ''
expect_fail 2 "--act-n expects an integer" -- "$PTQ" inspect "$NOMODEL" --act x --act-n 0x10
for d in 4294967296:4294967298 1:1 3:2 -1:4 1:2:3 a:b 1 :5 2:-1; do
  expect_fail 2 "--docs expects I:J.*got '$d'" -- "$PTQ" eval "$NOMODEL" --text x --docs-sep S --docs "$d"
done
expect_fail 2 "--docs-sep needs a non-empty separator" -- "$PTQ" eval "$NOMODEL" --text x --docs-sep ''

# a repeated option says so
expect_fail 2 "option --wbits given twice" -- "$PTQ" quantize "$NOMODEL" --calib x -o "$TMP/x.ptq" --wbits 4 --wbits 3
expect_fail 2 "option --json given twice" -- "$PTQ" eval "$NOMODEL" --text x --json --json
expect_fail 2 "option -o given twice" -- "$PTQ" quantize "$NOMODEL" --calib x -o "$TMP/x.ptq" -o "$TMP/y.ptq" --wbits 4

# --group: checked before loading, with the values the CLI accepts (never -1)
for g in 7 48 -1 -32 32.0 abc ''; do
  expect_fail 2 "--group expects .*multiple of 32.*'channel' \(or 0.*'tensor'.*got '$g'" -- \
    "$PTQ" quantize "$NOMODEL" --calib x -o "$TMP/x.ptq" --wbits 4 --group "$g"
  grep -q -- "-1" "$TMP/err" && [ "$g" != -1 ] && fail "--group $g message suggests -1: $(cat "$TMP/err")"
done

# an empty text names the file and says it is empty
: > "$TMP/empty.txt"
printf ' \n\t\n' > "$TMP/blank.txt"
for f in empty blank; do
  expect_fail 1 "$f.txt: the text file is empty" -- "$PTQ" eval "$M" --tokenizer "$TOK" --text "$TMP/$f.txt"
  expect_fail 1 "$f.txt: the text file is empty" -- "$PTQ" eval "$M" --tokenizer "$TOK" --text "$TMP/$f.txt" --docs-sep '<|endoftext|>'
  expect_fail 1 "$f.txt: the text file is empty" -- "$PTQ" quantize "$M" --tokenizer "$TOK" --calib "$TMP/$f.txt" \
    -o "$TMP/x.ptq" --wbits 4
done
[ -e "$TMP/x.ptq" ] && fail "a failed quantize wrote its output"
finish
