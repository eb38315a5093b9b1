#!/usr/bin/env bash
# Run the libFuzzer harnesses: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
# Each target first replays its seed corpus and every regression input (a
# crash found once must never come back), then fuzzes for SECONDS from its
# corpus into a scratch folder. A crash leaves its input in fuzz/crashes/
# (add it to fuzz/regressions/TARGET/ once fixed) and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
secs=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(vllm runtime hf manifest db)
scratch=$(mktemp -d /tmp/mt_fuzz_run.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mkdir -p fuzz/crashes
status=0
for t in "${targets[@]}"; do
  bin=$(cd "$build" && pwd)/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz/run.sh: $bin is not built (cmake --build $build --target fuzz_all)" >&2; exit 2; }
  mkdir -p "$scratch/$t"
  # the harnesses write their scratch files under /tmp; each run in its own folder
  # the folders that exist (git keeps no empty one)
  inputs=()
  for d in "$PWD/fuzz/corpus/$t" "$PWD/fuzz/regressions/$t"; do [ -d "$d" ] && inputs+=("$d"); done
  if ! (cd "$scratch" && "$bin" -runs=0 "${inputs[@]}" >"$scratch/$t.replay" 2>&1); then
    echo "fuzz_$t: a seed or regression input fails:" >&2
    tail -30 "$scratch/$t.replay" >&2
    status=1
    continue
  fi
  if ! (cd "$scratch" && "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$OLDPWD/fuzz/crashes/$t-" "$scratch/$t" "$OLDPWD/fuzz/corpus/$t" >"$scratch/$t.log" 2>&1); then
    echo "fuzz_$t: crashed; the input is in fuzz/crashes/:" >&2
    tail -30 "$scratch/$t.log" >&2
    status=1
    continue
  fi
  echo "fuzz_$t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$scratch/$t.log" | tail -1), no crash"
done
exit $status
