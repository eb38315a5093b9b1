#!/usr/bin/env bash
# Install what moetune needs to build and test on Debian (bookworm or later).
# Runs as root, or through sudo when there is one.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libsqlite3-dev libcjson-dev liblapacke-dev libcurl4-openssl-dev
      libssl-dev python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
