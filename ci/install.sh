#!/usr/bin/env bash
# Install what moetune needs to build and test on Debian (bookworm or later).
# Runs as root, or through sudo when there is one.
set -euo pipefail
# nginx and openssl (its passwd) serve the bucket tests; npm brings s3rver;
# hipcc and libamdhip64 (hipRTC) compile the kernels for AMD GPUs (no GPU needed)
pkgs=(build-essential cmake ninja-build pkg-config libsqlite3-dev libcjson-dev liblapacke-dev libcurl4-openssl-dev
      libssl-dev python3 nginx openssl hipcc libamdhip64-dev)
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
# s3rver, an S3 server for the tests, in the checkout (.tools is ignored)
cd "$(dirname "$0")/.."
if [ ! -x .tools/s3rver/node_modules/.bin/s3rver ]; then
  npm install --no-audit --no-fund --loglevel=error --prefix .tools/s3rver s3rver@3.7.1 >/dev/null
fi
