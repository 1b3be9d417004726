#!/bin/bash
# Training throughput of `ptq tune`'s C trainer against PyTorch training the same models the same way, measured
# in one run on this machine: bench_train (C) and bench/train_torch.py (PyTorch, float32, CPU) alternate for
# ROUNDS rounds with the same thread count; the best round of each is compared.
#
#   bench/train_vs_torch.sh [BUILD_DIR] [ROUNDS]          (defaults: build, 3)
#
# Environment: OMP_NUM_THREADS (default: all cores) is used by both sides (torch.set_num_threads); PTQ_DATA as
# for the tests; extra arguments for both programs in BENCH_ARGS (e.g. "--steps 10 --ctx 128").
set -eu
BUILD="${1:-build}"
ROUNDS="${2:-3}"
HERE="$(cd "$(dirname "$0")" && pwd)"
THREADS="${OMP_NUM_THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
PY=/usr/bin/python3
if ! "$PY" -c 'import torch' 2>/dev/null; then echo "PyTorch is not installed (python3-torch): nothing to compare"; exit 77; fi
[ -x "$BUILD/bench/bench_train" ] || { echo "build first: $BUILD/bench/bench_train is missing"; exit 1; }
OUT=$(mktemp -d /tmp/ptq-train-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS: ptq ..." >&2
  "$BUILD/bench/bench_train" --json ${BENCH_ARGS:-} > "$OUT/c$r.json"
  echo "round $r/$ROUNDS: PyTorch ..." >&2
  "$PY" "$HERE/train_torch.py" --threads "$THREADS" ${BENCH_ARGS:-} > "$OUT/t$r.json"
done
"$PY" - "$OUT" "$ROUNDS" <<'PYEOF'
import json, os, sys
out, rounds = sys.argv[1], int(sys.argv[2])
C = [json.load(open(os.path.join(out, f'c{r}.json'))) for r in range(1, rounds + 1)]
T = [json.load(open(os.path.join(out, f't{r}.json'))) for r in range(1, rounds + 1)]
print(f"threads: ptq {C[0]['threads']}, PyTorch {T[0]['threads']} (torch {T[0].get('torch', '?')}); best of {rounds} rounds")
for key, unit, what in [('vit', 'images_per_s', 'images/s'), ('lm', 'tokens_per_s', 'tokens/s')]:
    if key not in C[0] or key not in T[0]:
        continue
    c = max((x[key] for x in C), key=lambda v: v[unit])
    t = max((x[key] for x in T), key=lambda v: v[unit])
    shape = f"batch {c['batch']}" + (f" x {c['ctx']} tokens" if 'ctx' in c else '')
    name = 'vit-mnist' if key == 'vit' else 'stories260K'
    print(f"{name:12s} {shape:22s} ptq {c[unit]:9.1f} {what}   PyTorch {t[unit]:9.1f} {what}   ratio {c[unit] / t[unit]:.2f}x")
    print(f"{'':12s} {'step ms':22s} ptq {c['step_ms']:7.1f} (fwd {c['forward_ms']:.1f}, bwd {c['backward_ms']:.1f}, "
          f"opt {c['optimizer_ms']:.1f})   PyTorch {t['step_ms']:7.1f} (fwd {t['forward_ms']:.1f}, "
          f"bwd+clip {t['backward_ms']:.1f}, opt {t['optimizer_ms']:.1f})")
PYEOF
