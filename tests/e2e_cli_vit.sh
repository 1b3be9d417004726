# The CLI on vit-mnist: accuracy on all 10,000 MNIST test images equals the reference 98.29%, the
# selection flags, inspect --act, and inputs that are not images.
source "$(dirname "$0")/e2e_lib.bash"
need vit-mnist/model.safetensors
need mnist/t10k-images-idx3-ubyte.gz
need mnist/t10k-labels-idx1-ubyte.gz
M="$DATA/vit-mnist"
IMG="$DATA/mnist/t10k-images-idx3-ubyte.gz"
LAB="$DATA/mnist/t10k-labels-idx1-ubyte.gz"

out=$("$PTQ" eval "$M" --images "$IMG" --labels "$LAB" --json 2> "$TMP/err")
[ -s "$TMP/err" ] && fail "--json run wrote to stderr"
[ "$(echo "$out" | json_num images)" = 10000 ] || fail "images: $out"
close "$(echo "$out" | json_num top1)" 98.29 0.005 || fail "top1: $out (reference 98.29)"
awk -v t="$(echo "$out" | json_num top5)" 'BEGIN { exit !(t > 99.5 && t <= 100) }' || fail "top5: $out"

out=$("$PTQ" eval "$M/model.safetensors" --images "$IMG" --labels "$LAB" --first 1000 --count 9000 --json)
[ "$(echo "$out" | json_num images)" = 9000 ] || fail "selection: $out"
close "$(echo "$out" | json_num top1)" 98.24 0.006 || fail "top1 on 1000-9999: $out (reference 98.24)"

"$PTQ" inspect "$M" --act "$IMG" --labels "$LAB" --count 64 > "$TMP/act.txt" || fail "inspect --act"
grep -q 'blocks.5.mlp.fc2' "$TMP/act.txt" || fail "inspect --act misses blocks.5.mlp.fc2"
"$PTQ" inspect "$M" --json | grep -q '"blocks.0.attn.qkv.weight"' || fail "inspect tensor table"

echo "not an image" > "$TMP/images.idx"
expect_fail 1 "images.idx" -- "$PTQ" eval "$M" --images "$TMP/images.idx" --labels "$LAB"
mkdir -p "$TMP/folder"; echo "text" > "$TMP/folder/a.png"; echo "a.png 3" > "$TMP/labels.txt"
expect_fail 1 "a.png.*not an image" -- "$PTQ" eval "$M" --images "$TMP/folder" --labels "$TMP/labels.txt"
expect_fail 1 "9990.*only 10000" -- "$PTQ" eval "$M" --images "$IMG" --labels "$LAB" --first 9990 --count 100
expect_fail 2 "image model: use --images" -- "$PTQ" eval "$M" --text "$TMP/labels.txt"
finish
