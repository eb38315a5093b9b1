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
# the README leads with the two set-up commands, and cites nothing outside
# the repository
ROOT=$(dirname "$0")/..
python3 - "$ROOT/README.md" <<'PY' || fail "the README's head or its references"
import re, sys
t = open(sys.argv[1]).read()
block = re.search(r"```sh\n(.*?)```", t, re.S).group(1)
cmds = [l for l in block.splitlines() if l and not l.startswith("#")]
assert cmds == ["ci/install.sh && ci/build.sh && build/moetune sweep --device auto", "ci/test.sh"], cmds
for bad in ("DESIGN.md", "TARGETS.md", "issue 8", "issue 9", "issue 10", "calls 8", "session"):
    assert bad not in t, bad
PY
ok
# the Dockerfile's steps are the README's set-up commands; each Kubernetes
# file holds one Job, so applying one never starts the next
grep -q '^RUN ci/install.sh && ci/build.sh && cmake --install build' "$ROOT/Dockerfile" || fail "the Dockerfile's RUN"; ok
for f in "$ROOT"/docs/fleet/*.yaml; do
  [ "$(grep -c '^kind: Job' "$f")" = 1 ] || fail "$f holds more than one Job"; ok
  grep -q '^---' "$f" && fail "$f holds several documents"; ok
done
done_ok
