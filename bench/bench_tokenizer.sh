#!/usr/bin/env bash
# Tokenizer speed, ptq (C) against the JavaScript reference (@lenml/tokenizers under node) in the same run, on the
# real Llama 2 and Llama 3 tokenizer.json files and WikiText-2's raw test split repeated REPEAT times (default 1: 1.3 MB).
#   bench/bench_tokenizer.sh [REPEAT]        (from the repository root, after building into build/)
set -euo pipefail
repeat=${1:-1}
export PTQ_REFS=${PTQ_REFS:-build-ref} PTQ_DATA=${PTQ_DATA:-../shared/data}
c=$(./build/bench/bench_tokenizer "$repeat")
js=$(node bench/bench_tokenizer.mjs "$repeat")
python3 - "$c" "$js" "$PTQ_DATA/wikitext-2/wikitext2-raw-test.txt" <<'PY'
import json, sys
rows = [json.loads(l) for l in (sys.argv[1] + "\n" + sys.argv[2]).splitlines() if l.strip()]
by = {(r["impl"], r["tokenizer"], r["unit"]): r for r in rows}
print("| tokenizer.json | encoded as | tokens | ids equal | load ptq / JS (s) | encode ptq / JS (s) | ptq MB/s | JS MB/s | ptq speed-up |")
print("|---|---|---|---|---|---|---|---|---|")
for name in ["llama2", "llama3"]:
    for unit in ["text", "lines"]:
        c, j = by[("ptq", name, unit)], by[("js", name, unit)]
        same = c["tokens"] == j["tokens"] and c["hash"] == j["hash"]
        print("| %s | %s | %d | %s | %.3f / %.3f | %.3f / %.3f | %.1f | %.2f | %.0fx |" % (
            name, "one text" if unit == "text" else "%d lines" % open(sys.argv[3], "rb").read().count(b"\n"),
            c["tokens"], "yes" if same else "NO (%d vs %d)" % (c["tokens"], j["tokens"]),
            c["load_s"], j["load_s"], c["encode_s"], j["encode_s"], c["mb_per_s"], j["mb_per_s"],
            j["encode_s"] / c["encode_s"]))
PY
echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg) ($(nproc) cores)"
