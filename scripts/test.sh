#!/usr/bin/env bash
# Build and run every test: a Release build with warnings as errors, then the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer. PTQ_DATA overrides the sample-data folder.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== Release build (-Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPTQ_WERROR=ON > /dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== ASan + UBSan build (-Werror)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPTQ_WERROR=ON -DPTQ_SANITIZE=ON > /dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow
