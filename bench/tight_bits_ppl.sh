#!/usr/bin/env bash
# W5 and W6 g32 on llama-shakespeare-256: file size, bits per weight and perplexity with tight 5-7-bit storage
# (this ptq) against 8-bit storage of the same grids (OLD_PTQ: a ptq from before format version 4). RTN, so both
# binaries choose the very same codes; GPTQ too with the same calibration (deterministic on one machine).
# Also the new ptq's load of the old file (8-bit codes repacked on load).
#   bench/tight_bits_ppl.sh NEW_PTQ OLD_PTQ [DATA_DIR]
set -euo pipefail
new=$1
old=$2
data=${3:-../shared/data}
m="$data/llama-shakespeare-256"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
calib=(--calib "$data/tinyshakespeare/input.txt" --calib-n 32 --calib-ctx 256)
ev=(--text "$m/shakespeare-eval.txt" --docs-sep $'\n\n' --json)
printf '%-5s %-6s %-16s %12s %8s %10s %16s\n' W method storage "file bytes" bpw ppl "ppl (this ptq)"
for b in 5 6 4 8; do
  for meth in rtn gptq; do
    for who in new old; do
      bin=$new; [ "$who" = old ] && bin=$old
      f="$tmp/w$b-$meth-$who.ptq"
      "$bin" quantize "$m" "${calib[@]}" --wbits "$b" --group 32 --method "$meth" -o "$f" --json > /dev/null
      # bits per weight and perplexity by the ptq that wrote the file, then this ptq's perplexity of it
      bpw=$("$bin" inspect "$f" --json | python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["bits_per_weight"])')
      ppl=$("$bin" eval "$f" "${ev[@]}" | python3 -c 'import json,sys; print("%.6f" % json.load(sys.stdin)["ppl"])')
      ppl2=$ppl
      [ "$who" = old ] && ppl2=$("$new" eval "$f" "${ev[@]}" | python3 -c 'import json,sys; print("%.6f" % json.load(sys.stdin)["ppl"])')
      label="tight (new)"; [ "$who" = old ] && label="8-bit (before)"
      printf '%-5s %-6s %-16s %12d %8s %10s %16s\n' "W$b" "$meth" "$label" "$(stat -c %s "$f")" "$bpw" "$ppl" "$ppl2"
      [ "$b" -ge 5 ] && [ "$b" -le 7 ] || break # W4/W8: the storage did not change; one row
    done
  done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
