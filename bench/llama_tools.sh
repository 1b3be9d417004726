#!/usr/bin/env bash
# Build llama.cpp's own command-line tools that the GGUF comparison in docs/RESULTS.md needs (llama-quantize,
# llama-imatrix, llama-perplexity, llama-bench), once, from the exact source tree scripts/refs.sh cloned, into
# build-ref/llama-build (ignored). Only these targets are built (several minutes on 2 cores); the tests never need
# them: they link the prebuilt libllama from npm instead.
set -euo pipefail
cd "$(dirname "$0")/.."
refs="${PTQ_REFS:-build-ref}"
[ -d "$refs/llama.cpp" ] || { echo "llama.cpp's source is missing: run ./scripts/refs.sh" >&2; exit 1; }
out="$refs/llama-build"
tools=(llama-quantize llama-imatrix llama-perplexity llama-bench)
missing=0
for t in "${tools[@]}"; do [ -x "$out/bin/$t" ] || missing=1; done
if [ "$missing" = 1 ]; then
  cmake -S "$refs/llama.cpp" -B "$out" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=ON > "$out.log" 2>&1
  cmake --build "$out" -j"$(nproc)" --target "${tools[@]}" >> "$out.log" 2>&1 ||
    { echo "building llama.cpp's tools failed: see $out.log" >&2; exit 1; }
fi
echo "$out/bin"
