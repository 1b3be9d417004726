# The CLI on stories260K: eval --json against the reference perplexity, generate, inspect, and bad input.
source "$(dirname "$0")/e2e_lib.bash"
need stories260K/stories260K.bin
need stories260K/tok512.bin
need tinystories/tinystories-valid-100.txt
M="$DATA/stories260K/stories260K.bin"
TOK="$DATA/stories260K/tok512.bin"
TXT="$DATA/tinystories/tinystories-valid-100.txt"

out=$("$PTQ" eval "$M" --tokenizer "$TOK" --text "$TXT" --docs-sep '<|endoftext|>' --json 2> "$TMP/err")
[ -s "$TMP/err" ] && fail "--json run wrote to stderr: $(cat "$TMP/err")"
[ "$(echo "$out" | json_num tokens)" = 32982 ] || fail "tokens: $out"
close "$(echo "$out" | json_num ppl)" 3.4998 1e-3 || fail "ppl: $out (reference 3.4998)"
close "$(echo "$out" | json_num mean_ce)" 1.2527 1e-3 || fail "mean_ce: $out (reference 1.2527)"

# a shorter context scores the same tokens in more windows; perplexity rises a little
out=$("$PTQ" eval "$M" --tokenizer "$TOK" --text "$TXT" --docs-sep '<|endoftext|>' --ctx 128 --json)
awk -v p="$(echo "$out" | json_num ppl)" 'BEGIN { exit !(p > 3.4998 && p < 4.0) }' || fail "ctx 128 ppl: $out"

# the tokenizer is found beside the model when not given (tok512.bin for a 512-token vocabulary)
"$PTQ" generate "$M" --steps 30 --temperature 0 --json > "$TMP/gen.json" || fail "generate without --tokenizer"
grep -q '"text":"Once upon a time, there was a little girl named Lily' "$TMP/gen.json" || fail "greedy text: $(cat "$TMP/gen.json")"
"$PTQ" generate "$M" --prompt "The dog" --steps 20 --temperature 0.8 --top-p 0.9 --seed 7 > "$TMP/g1" 2>/dev/null
"$PTQ" generate "$M" --prompt "The dog" --steps 20 --temperature 0.8 --top-p 0.9 --seed 7 > "$TMP/g2" 2>/dev/null
cmp -s "$TMP/g1" "$TMP/g2" || fail "sampling with the same seed is not deterministic"
grep -q '^The dog' "$TMP/g1" || fail "prompt not echoed: $(cat "$TMP/g1")"
# --prompt-chunk: a prompt fed 2 tokens per forward continues the same way (library: tests/test_llama2c.c)
"$PTQ" generate "$M" --prompt "Once upon a time, there was a little girl" --steps 20 --temperature 0 --json \
  --prompt-chunk 2 > "$TMP/c2.json" || fail "generate --prompt-chunk 2"
grep -q '"text":" named Lily' "$TMP/c2.json" || fail "--prompt-chunk 2 greedy text: $(cat "$TMP/c2.json")"
"$PTQ" generate "$M" --prompt-chunk 0 > /dev/null 2> "$TMP/err" && fail "--prompt-chunk 0 accepted"
grep -q -- '--prompt-chunk expects an integer in \[1, 65536\]' "$TMP/err" || fail "--prompt-chunk 0: $(cat "$TMP/err")"

"$PTQ" inspect "$M" --json > "$TMP/inspect.json" || fail "inspect"
grep -q '"tok_embeddings.weight"' "$TMP/inspect.json" || fail "inspect lists no tok_embeddings.weight"
grep -q '"params":	*26' "$TMP/inspect.json" || grep -q '"params": *26' "$TMP/inspect.json" || fail "parameter count"
"$PTQ" inspect "$M" --act "$TXT" --docs-sep '<|endoftext|>' --act-n 2 > "$TMP/act.txt" || fail "inspect --act"
grep -q 'layers.4.feed_forward.w2' "$TMP/act.txt" || fail "inspect --act misses layers.4.feed_forward.w2"
grep -q 'kurtosis' "$TMP/act.txt" || fail "inspect --act has no kurtosis column"

# bad input: clear messages, no crash
expect_fail 1 "no-such-model.bin" -- "$PTQ" eval "$TMP/no-such-model.bin" --text "$TXT"
head -c 5000 "$M" > "$TMP/trunc.bin"
expect_fail 1 "trunc.bin.*(truncated|should be)" -- "$PTQ" eval "$TMP/trunc.bin" --tokenizer "$TOK" --text "$TXT"
echo "hello" > "$TMP/junk.bin"
expect_fail 1 "unrecognised model format" -- "$PTQ" inspect "$TMP/junk.bin"
expect_fail 2 "unknown argument '--bogus'" -- "$PTQ" eval "$M" --bogus
expect_fail 2 "--ctx expects an integer" -- "$PTQ" eval "$M" --text "$TXT" --ctx abc
expect_fail 1 "exceeds the model's context" -- "$PTQ" eval "$M" --tokenizer "$TOK" --text "$TXT" --ctx 4096
expect_fail 1 "missing.txt" -- "$PTQ" eval "$M" --tokenizer "$TOK" --text "$TMP/missing.txt"
expect_fail 2 "unknown command" -- "$PTQ" frobnicate
finish
