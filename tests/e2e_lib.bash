# Sourced by the e2e_*.sh tests: $1 is the ptq binary, $2 the source tree.
set -u
PTQ="$1"
SRC="$2"
DATA="${PTQ_DATA:-${PTQ_DATA_DEFAULT:-$SRC/../shared/data}}"
TMP=$(mktemp -d /tmp/ptq-e2e-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
failures=0

need() { # need FILE: skip (77) when a sample file is missing, fail under CI=true
  if [ ! -e "$DATA/$1" ]; then
    if [ "${CI:-}" = "true" ]; then echo "FAIL: sample file $DATA/$1 is missing (CI=true)"; exit 1; fi
    echo "SKIP: sample file $DATA/$1 is missing (set PTQ_DATA)"; exit 77
  fi
}
REFS="${PTQ_REFS:-$SRC/build-ref}"
need_ref() { # need_ref PATH: a test-only reference installed by scripts/refs.sh, skipped/failed like need
  if [ ! -e "$REFS/$1" ]; then
    if [ "${CI:-}" = "true" ]; then echo "FAIL: reference $REFS/$1 is missing (CI=true; run ./scripts/refs.sh)"; exit 1; fi
    echo "SKIP: reference $REFS/$1 is missing (run ./scripts/refs.sh, or set PTQ_REFS)"; exit 77
  fi
}
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect_fail CODE PATTERN -- command...: the command exits with CODE and stderr matches PATTERN
expect_fail() {
  local code="$1" pattern="$2"; shift 3
  "$@" > "$TMP/out" 2> "$TMP/err"; local rc=$?
  [ "$rc" = "$code" ] || fail "'$*' exited $rc, expected $code"
  grep -qE -- "$pattern" "$TMP/err" || fail "'$*' stderr lacks /$pattern/: $(cat "$TMP/err")"
}
# json_num KEY < json: the number after "KEY":
json_num() { sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p"; }
# close A B TOL: |A-B| <= TOL
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }
finish() {
  if [ "$failures" -gt 0 ]; then echo "$failures failure(s)"; exit 1; fi
  echo "all checks passed"; exit 0
}
