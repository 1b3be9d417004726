# The README's first command on a fresh Debian machine (root, no sudo) and scripts/setup.sh as a user with
# and without sudo, with apt-get, dpkg-query, cmake and id replaced by stubs that only log what they are asked.
source "$(dirname "$0")/e2e_lib.bash"
bin="$TMP/bin"
mkdir -p "$bin"
for tool in bash dirname grep env mkdir cat rm; do ln -s "$(command -v "$tool")" "$bin/$tool"; done
stub() { printf '#!%s\n%s\n' "$(command -v bash)" "$2" > "$bin/$1"; chmod +x "$bin/$1"; }
stub dpkg-query 'exit 1'                                  # every package missing
stub apt-get 'echo "apt-get $*" >> "$LOG"'
stub cmake 'exit 0'
stub npm 'echo "npm $*" >> "$LOG"'                          # scripts/refs.sh: the test references
stub git 'echo "git $*" >> "$LOG"'
stub nproc 'echo 1'
stub id 'echo "$UID_STUB"'
# run CMD...: in the source tree with only the stubs on PATH and no sample data (setup stops after building)
run() { (cd "$SRC" && env -i PATH="$bin" LOG="$TMP/log" UID_STUB="$uid" PTQ_DATA=/nonexistent PTQ_REFS="$TMP/refs" "$@") > "$TMP/out" 2>&1; }

# the README's first command, as written, as root on a machine without sudo
cmd=$(sed -n '/^## Two commands/,/^## /p' "$SRC/README.md" | grep -m1 '^    ' | sed 's/#.*//; s/^ *//; s/ *$//')
[ -n "$cmd" ] || fail "no command found under '## Two commands' in README.md"
uid=0; : > "$TMP/log"
run bash -c "$cmd" || fail "README's '$cmd' as root without sudo: $(cat "$TMP/out")"
grep -q '^apt-get install .*cmake' "$TMP/log" || fail "as root: packages not installed: $(cat "$TMP/log")"
grep -q '^npm install .*@lenml/tokenizers@.*node-llama-cpp@' "$TMP/log" || fail "test references not installed: $(cat "$TMP/log")"
grep -q '^git clone .*gitRelease.bundle' "$TMP/log" || fail "llama.cpp's source not cloned: $(cat "$TMP/log")"

# a user without sudo: a clear message, nothing attempted
uid=1000; : > "$TMP/log"
run ./scripts/setup.sh && fail "setup as a user without sudo succeeded"
grep -q "sudo is not installed.*as root" "$TMP/out" || fail "no clear message without sudo: $(cat "$TMP/out")"
[ -s "$TMP/log" ] && fail "apt-get ran without root: $(cat "$TMP/log")"

# a user with sudo: apt-get through sudo
stub sudo 'echo "sudo $*" >> "$LOG"'
uid=1000; : > "$TMP/log"
run ./scripts/setup.sh || fail "setup as a user with sudo: $(cat "$TMP/out")"
grep -q '^sudo .*apt-get install .*cmake' "$TMP/log" || fail "apt-get not run through sudo: $(cat "$TMP/log")"
finish
