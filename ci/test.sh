#!/usr/bin/env bash
# Build and run every test twice: a plain release build, then a build with
# AddressSanitizer and UndefinedBehaviorSanitizer; then the thread test
# under ThreadSanitizer; then, built with clang, the unit tests under its
# UBSan (which also checks float-to-integer conversions) and the fuzz
# harnesses: every seed and regression replayed, each fuzzed for a while.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/install.sh
ci/build.sh build
(cd build && ctest --output-on-failure -j "$(nproc)")
ci/build.sh build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOETUNE_SANITIZE=ON
# detect_leaks: a leak is a failure too
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-sanitize && ctest --output-on-failure -j "$(nproc)")
# ThreadSanitizer: one runtime shared by threads looking up both kernel families
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOETUNE_TSAN=ON >/dev/null
cmake --build build-tsan -j "$(nproc)" --target test_threads
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 build-tsan/tests/test_threads
# clang: ASan + UBSan with float-cast-overflow, libFuzzer's coverage
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOETUNE_FUZZ=ON \
  -DMOETUNE_CUDA=OFF -DMOETUNE_HIP=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)"
(cd build-fuzz && ctest --output-on-failure -j "$(nproc)" -R '^(test_|e2e_bad_input|e2e_cli)' -E '^test_(nvrtc|hip|tile_hip)$')
fuzz/run.sh build-fuzz "${MOETUNE_FUZZ_SECONDS:-30}"
