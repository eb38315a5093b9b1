#!/usr/bin/env bash
# Fuzz for hours on this machine (no GPU needed): build the harnesses with
# clang and run every target for HOURS (default 4) in turn, each with half
# the time it would get in a round robin, then again. Crashes land in
# fuzz/crashes/; once fixed, move each into fuzz/regressions/TARGET/, where
# CI replays it on every run.
#   bench/fuzz_long.sh [HOURS]
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-4}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOETUNE_FUZZ=ON \
  -DMOETUNE_CUDA=OFF -DMOETUNE_HIP=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_all
per=$(( hours * 3600 / 10 ))
for round in 1 2; do
  fuzz/run.sh build-fuzz "$per" || echo "round $round: crashes in fuzz/crashes/"
done
