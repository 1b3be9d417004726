# ptq tune on the sample models (a few steps each, so it stays fast): the tuned model is written in the input's own
# format and loads wherever the original did (eval on the saved safetensors folder / llama2.c .bin), the loss log
# (CSV and JSON) and the --json summary, training from scratch with --init random, and usage errors.
source "$(dirname "$0")/e2e_lib.bash"
need vit-mnist/model.safetensors
need mnist/t10k-images-idx3-ubyte.gz
need mnist/t10k-labels-idx1-ubyte.gz
need stories260K/stories260K.bin
need stories260K/tok512.bin
need tinystories/tinystories-valid-100.txt
M="$DATA/vit-mnist"
IMG="$DATA/mnist/t10k-images-idx3-ubyte.gz"
LAB="$DATA/mnist/t10k-labels-idx1-ubyte.gz"
LM="$DATA/stories260K/stories260K.bin"
TOK="$DATA/stories260K/tok512.bin"
TXT="$DATA/tinystories/tinystories-valid-100.txt"

# vit-mnist: 4 steps on 64 images, with the outlier loss; the result is a folder with the same tensor names
out=$("$PTQ" tune "$M" --train "$IMG" --train-labels "$LAB" --count 64 --batch 16 --steps 4 --lr 1e-5 \
      --outlier-lambda 0.1 --monitor qkv,fc2 --report-n 32 -o "$TMP/vit" --log "$TMP/vit.csv" --json 2> "$TMP/err") \
  || fail "tune vit: $(cat "$TMP/err")"
[ -s "$TMP/err" ] && fail "--json run wrote to stderr: $(cat "$TMP/err")"
[ "$(echo "$out" | json_num steps)" = 4 ] || fail "steps: $out"
echo "$out" | grep -q '"max_abs_over_std_before"' || fail "no dynamic-range report: $out"
[ -f "$TMP/vit/model.safetensors" ] && [ -f "$TMP/vit/config.json" ] || fail "tuned folder incomplete: $(ls "$TMP/vit")"
[ "$(wc -l < "$TMP/vit.csv")" = 5 ] || fail "CSV log should have a header and 4 rows: $(cat "$TMP/vit.csv")"
head -1 "$TMP/vit.csv" | grep -q '^step,epoch,lr,loss,ce,outlier,grad_norm' || fail "CSV header: $(head -1 "$TMP/vit.csv")"
"$PTQ" inspect "$M" --json | grep -o '"name": *"[^"]*"' | sort > "$TMP/names0"
"$PTQ" inspect "$TMP/vit" --json | grep -o '"name": *"[^"]*"' | sort > "$TMP/names1"
cmp -s "$TMP/names0" "$TMP/names1" || fail "tensor names differ after tuning: $(diff "$TMP/names0" "$TMP/names1" | head)"
acc=$("$PTQ" eval "$TMP/vit" --images "$IMG" --labels "$LAB" --first 6000 --count 500 --json)
awk -v t="$(echo "$acc" | json_num top1)" 'BEGIN { exit !(t > 97) }' || fail "tuned vit-mnist accuracy: $acc"
"$PTQ" tune "$M" --train "$IMG" --train-labels "$LAB" --count 32 --steps 1 -o "$TMP/vit2" --log "$TMP/vit.json" \
  --report-n 0 > /dev/null 2>&1 || fail "tune with a JSON log"
grep -q '"steps"' "$TMP/vit.json" && grep -q '"summary"' "$TMP/vit.json" || fail "JSON log: $(head -c 300 "$TMP/vit.json")"

# stories260K: llama2.c in, llama2.c out (same size), evaluated with the original tokenizer
"$PTQ" tune "$LM" --tokenizer "$TOK" --train "$TXT" --docs-sep '<|endoftext|>' --docs 0:6 --ctx 64 --batch 4 \
  --steps 3 --lr 1e-4 --outlier-lambda 0.05 -o "$TMP/lm.bin" > "$TMP/out" 2> "$TMP/err" || fail "tune lm: $(cat "$TMP/err")"
[ "$(stat -c %s "$TMP/lm.bin")" = "$(stat -c %s "$LM")" ] || fail "the tuned llama2.c file has another size"
ppl=$("$PTQ" eval "$TMP/lm.bin" --tokenizer "$TOK" --text "$TXT" --docs-sep '<|endoftext|>' --docs 60:62 --json)
awk -v p="$(echo "$ppl" | json_num ppl)" 'BEGIN { exit !(p > 1 && p < 10) }' || fail "tuned stories260K perplexity: $ppl"

# from scratch: a random model from a config trains and saves under the loader's names
cat > "$TMP/cfg.json" <<'CFG'
{"architecture": "vit", "model_type": "vit", "naming": "timm", "img_size": 28, "patch_size": 7, "in_chans": 1,
 "embed_dim": 16, "depth": 1, "num_heads": 2, "mlp_hidden_dim": 32, "act_layer": "relu", "num_classes": 10,
 "norm_eps": 1e-5, "pretrained_cfg": {"mean": [0.1307], "std": [0.3081]}}
CFG
"$PTQ" tune --init random --config "$TMP/cfg.json" --train "$IMG" --train-labels "$LAB" --count 128 --epochs 1 \
  --lr 1e-3 -o "$TMP/scratch" > "$TMP/out" 2> "$TMP/err" || fail "tune --init random: $(cat "$TMP/err")"
"$PTQ" eval "$TMP/scratch" --images "$IMG" --labels "$LAB" --count 64 > /dev/null || fail "eval of the model trained from scratch"

# usage errors
expect_fail 2 "needs --train DATA and -o OUT" -- "$PTQ" tune "$M" --train "$IMG" --train-labels "$LAB"
expect_fail 2 "not both" -- "$PTQ" tune "$M" --train "$IMG" --train-labels "$LAB" -o "$TMP/x" --steps 3 --epochs 1
expect_fail 2 "unknown monitored activation 'fc3'" -- "$PTQ" tune "$M" --train "$IMG" --train-labels "$LAB" -o "$TMP/x" --monitor qkv,fc3
expect_fail 2 "needs --config" -- "$PTQ" tune --init random --train "$IMG" --train-labels "$LAB" -o "$TMP/x"
expect_fail 2 "needs --train-labels" -- "$PTQ" tune "$M" --train "$IMG" -o "$TMP/x"
expect_fail 2 "apply to image models" -- "$PTQ" tune "$LM" --tokenizer "$TOK" --train "$TXT" --train-labels "$LAB" -o "$TMP/x"
expect_fail 2 "outlier-loss must be rel" -- "$PTQ" tune "$M" --train "$IMG" --train-labels "$LAB" -o "$TMP/x" --outlier-loss l1
finish
