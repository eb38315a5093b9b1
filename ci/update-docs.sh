#!/usr/bin/env bash
# Refresh the --help block of each command's page in docs/ from the built
# binary (tests/e2e_docs.sh checks that they agree).
set -euo pipefail
cd "$(dirname "$0")/.."
mt=${1:-build/moetune}
for c in sweep devices show export import worker lookup replay compile daemon submit status cancel merge publish pull; do
  "$mt" "$c" --help >/tmp/mt_help.$$
  python3 - "docs/$c.md" /tmp/mt_help.$$ <<'PY'
import re, sys
page, help_text = open(sys.argv[1]).read(), open(sys.argv[2]).read()
page = re.sub(r"```\n.*?```", lambda m: "```\n" + help_text + "```", page, count=1, flags=re.S)
open(sys.argv[1], "w").write(page)
PY
done
# the attention sweep's help: the second block of docs/sweep.md
"$mt" sweep --kernel attention --help >/tmp/mt_help.$$
python3 - docs/sweep.md /tmp/mt_help.$$ <<'PY'
import re, sys
page, help_text = open(sys.argv[1]).read(), open(sys.argv[2]).read()
blocks = [m.span() for m in re.finditer(r"```\n.*?```", page, flags=re.S)]
a, b = blocks[1]
open(sys.argv[1], "w").write(page[:a] + "```\n" + help_text + "```" + page[b:])
PY
rm -f /tmp/mt_help.$$
