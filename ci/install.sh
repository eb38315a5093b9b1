#!/usr/bin/env bash
# Install what moetune needs to build and test on Debian (bookworm or later).
# Runs as root, or through sudo when there is one.
set -euo pipefail
# nginx and openssl (its passwd) serve the bucket tests; npm brings s3rver;
# hipcc and libamdhip64 (hipRTC) compile the kernels for AMD GPUs (no GPU needed);
# clang and its runtime libraries build the fuzz harnesses (libFuzzer);
# python3-torch runs the engine worker against the engines' test doubles
pkgs=(build-essential cmake ninja-build pkg-config libsqlite3-dev libcjson-dev liblapacke-dev libcurl4-openssl-dev
      libssl-dev python3 python3-torch nginx openssl hipcc libamdhip64-dev clang)
command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# libFuzzer's runtime comes with clang's compiler-rt package, named for the
# clang version (bookworm: clang 14, libclang-rt-14-dev)
clang_major=$(clang -dumpversion 2>/dev/null | cut -d. -f1 || true)
if [ -n "$clang_major" ] && ! ls /usr/lib/llvm-"$clang_major"/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
     >/dev/null 2>&1; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  rt=libclang-rt-$clang_major-dev
  apt-cache show "$rt" >/dev/null 2>&1 || "${as_root[@]}" apt-get update -qq
  apt-cache show "$rt" >/dev/null 2>&1 || rt=libclang-common-$clang_major-dev
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$rt"
fi
# s3rver, an S3 server for the tests, in the checkout (.tools is ignored)
cd "$(dirname "$0")/.."
if [ ! -x .tools/s3rver/node_modules/.bin/s3rver ]; then
  npm install --no-audit --no-fund --loglevel=error --prefix .tools/s3rver s3rver@3.7.1 >/dev/null
fi
