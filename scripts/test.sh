#!/usr/bin/env bash
# Build and run every test: a Release build with warnings as errors, then the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer, then a clang build (-Werror) and its C tests, then the
# fuzz harnesses (scripts/fuzz.sh): the inputs of fuzz/regressions replayed, and each harness run for
# PTQ_FUZZ_SECONDS (default 10: a smoke run beside the replays; the long runs are docs/FUZZING.md's; 0 only replays).
# The ASan+UBSan run leaves out the tests labelled slow (tests/CMakeLists.txt says why). PTQ_DATA overrides the
# sample-data folder.
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

echo "== clang build (-Werror)"
if command -v clang > /dev/null; then
  cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release -DPTQ_WERROR=ON > /dev/null
  cmake --build build-clang -j"$jobs"
  # the C tests cover the library; the CLI tests already ran twice above
  ctest --test-dir build-clang --output-on-failure -j"$jobs" -R '^test_'
  echo "== fuzz harnesses (clang, libFuzzer, ASan + UBSan)"
  ./scripts/fuzz.sh "${PTQ_FUZZ_SECONDS:-10}"
elif [ "${CI:-}" = true ]; then
  echo "test: clang not found (scripts/setup.sh installs it)" >&2; exit 1
else
  echo "skipped: clang not found (scripts/setup.sh installs it); no clang build, no fuzzing"
fi
