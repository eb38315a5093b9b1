# Help, usage errors and the devices listing.
. "$(dirname "$0")/lib.sh"
for c in sweep devices show export import worker; do
  expect_exit 0 "$TMP/h" "$MT" "$c" --help
  expect_in "$TMP/h" "usage: moetune $c"
  expect_exit 2 "$TMP/u" "$MT" "$c" --no-such-option
done
expect_exit 0 "$TMP/h" "$MT" --help
expect_in "$TMP/h" "sweep"
expect_exit 2 "$TMP/u" "$MT" frobnicate
expect_in "$TMP/u" "unknown command 'frobnicate'"
expect_exit 2 "$TMP/u" "$MT"
expect_exit 2 "$TMP/u" "$MT" sweep --device gpu7
expect_in "$TMP/u" "--device 'gpu7'"
expect_exit 2 "$TMP/u" "$MT" export
expect_in "$TMP/u" "--out DIR is required"
expect_exit 2 "$TMP/u" "$MT" sweep --strategy annealing
expect_in "$TMP/u" "--strategy 'annealing'"

expect_exit 0 "$TMP/d" "$MT" devices
expect_in "$TMP/d" "CPU_"
if ! ls /dev/nvidia0 >/dev/null 2>&1; then
  expect_in "$TMP/d" "no CUDA device"
  expect_exit 1 "$TMP/c" "$MT" sweep --device cuda:0 --db "$TMP/x.db"
  expect_in "$TMP/c" "no CUDA device"
fi
expect_exit 0 "$TMP/dj" "$MT" devices --json
[ "$(py "$TMP/dj" 'j["devices"][0]["backend"]')" = cpu ] || fail "devices --json lists the CPU first"; ok

# a full disk on stdout is an error, not a silent success
if [ -w /dev/full ]; then
  set +e; "$MT" sweep --list-models >/dev/full 2>"$TMP/full.err"; rc=$?; set -e
  [ $rc -ne 0 ] || fail "writing to a full disk reported success"; ok
  touch "$TMP/full"; expect_in "$TMP/full" "cannot write the output"
fi
expect_exit 0 "$TMP/m" "$MT" sweep --list-models
expect_in "$TMP/m" "deepseek-v3"
done_ok
