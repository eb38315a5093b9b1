# Shared by the end-to-end tests: the moetune binary, a scratch folder that
# is removed on exit, and assertions that say what failed.
set -euo pipefail
MT=${1:?usage: $0 path/to/moetune}
TMP=$(mktemp -d /tmp/mt_e2e.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export XDG_DATA_HOME=$TMP/xdg
PASSED=0

fail() { echo "FAIL: $*" >&2; echo "$PASSED passed, 1 failed"; exit 1; }
ok() { PASSED=$((PASSED + 1)); }

# expect_exit CODE OUTFILE CMD...: run CMD, stdout to OUTFILE and stderr to
# OUTFILE.err, check the status
expect_exit() {
  local want=$1 out=$2; shift 2
  set +e; "$@" >"$out" 2>"$out.err"; local got=$?; set -e
  [ "$got" = "$want" ] || { cat "$out" "$out.err" >&2; fail "'$*' exited $got, want $want"; }
  ok
}

# expect_in FILE TEXT: FILE (stdout) or FILE.err (stderr) contains TEXT
expect_in() {
  # grep reads both files itself: 'cat | grep -q' fails under pipefail when
  # grep stops early and cat gets SIGPIPE
  grep -qsF -- "$2" "$1" "$1.err" || { cat "$1" "$1.err" >&2 2>/dev/null; fail "output lacks '$2'"; }
  ok
}

# sql DB QUERY: one value from a real SQLite file, through Python's sqlite3
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchone(); print(r[0] if r else "")' "$1" "$2"; }

# jq-like: py FILE EXPR, with the parsed JSON as j
py() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

done_ok() { echo "$PASSED passed, 0 failed"; }
