# Each command's manual page in docs/ holds its --help text verbatim.
. "$(dirname "$0")/lib.sh"
DOCS=$(dirname "$0")/../docs
for c in sweep devices show export import worker lookup replay compile daemon submit status cancel merge publish pull; do
  "$MT" "$c" --help >"$TMP/help"
  python3 - "$TMP/help" "$DOCS/$c.md" <<'PY' || fail "docs/$c.md does not hold 'moetune $c --help' (regenerate it)"
import sys
assert open(sys.argv[1]).read() in open(sys.argv[2]).read()
PY
  ok
done
"$MT" sweep --kernel attention --help >"$TMP/help"
python3 - "$TMP/help" "$DOCS/sweep.md" <<'PY' || fail "docs/sweep.md does not hold 'moetune sweep --kernel attention --help'"
import sys
assert open(sys.argv[1]).read() in open(sys.argv[2]).read()
PY
ok
done_ok
