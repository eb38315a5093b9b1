# Bad input: a clear error naming the culprit, a non-zero exit, and nothing
# in the database lost.
. "$(dirname "$0")/lib.sh"
DB=$TMP/keep.db
expect_exit 0 "$TMP/o" "$MT" sweep --db "$DB" --model tiny --batch-sizes 4 --budget 3 --no-export --quiet
snapshot() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute("select group_concat(id||M||config_id||median_us) from measurements").fetchone()[0])' "$DB"; }
keep=$(snapshot)

expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model nope
expect_in "$TMP/e" "unknown model 'nope'"
expect_in "$TMP/e" "mixtral-8x7b"

printf '{"num_local_experts": 8, "hidden_size": 4096,' >"$TMP/malformed.json"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model-config "$TMP/malformed.json"
expect_in "$TMP/e" "malformed JSON"
expect_in "$TMP/e" "malformed.json"

printf '{"hidden_size": 4096, "intermediate_size": 14336, "num_experts_per_tok": 2}' >"$TMP/incomplete.json"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model-config "$TMP/incomplete.json"
expect_in "$TMP/e" "has no expert count"
expect_in "$TMP/e" "num_local_experts"

expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model-config "$TMP/absent.json"
expect_in "$TMP/e" "absent.json"

touch "$TMP/plainfile"
expect_exit 1 "$TMP/e" "$MT" sweep --db "$TMP/plainfile/sub.db" --batch-sizes 1
expect_in "$TMP/e" "cannot open database '$TMP/plainfile/sub.db'"

head -c 16384 /dev/urandom >"$TMP/corrupt.db"
sum=$(sha256sum <"$TMP/corrupt.db")
expect_exit 1 "$TMP/e" "$MT" show --db "$TMP/corrupt.db"
expect_in "$TMP/e" "not a database"
expect_in "$TMP/e" "corrupt.db"
[ "$(sha256sum <"$TMP/corrupt.db")" = "$sum" ] || fail "the corrupt file was modified"; ok

cp "$DB" "$TMP/newer.db"
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("pragma user_version=9"); c.commit()' "$TMP/newer.db"
sum=$(sha256sum <"$TMP/newer.db")
expect_exit 1 "$TMP/e" "$MT" sweep --db "$TMP/newer.db" --batch-sizes 1
expect_in "$TMP/e" "newer than this moetune"
[ "$(sha256sum <"$TMP/newer.db")" = "$sum" ] || fail "the newer database was modified"; ok

expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --experts 4 --intermediate 64 --hidden 64 --topk 8
expect_in "$TMP/e" "top-k 8 exceeds the expert count 4"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model mixtral-8x7b --tp 3
expect_in "$TMP/e" "does not divide by --tp 3"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model mixtral-8x7b --ep 3
expect_in "$TMP/e" "do not divide by --ep 3"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --experts 8 --hidden 64
expect_in "$TMP/e" "needs all of"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model tiny --experts 8
expect_in "$TMP/e" "give one of"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --batch-sizes 1,x
expect_in "$TMP/e" "--batch-sizes '1,x'"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --tp 0
expect_in "$TMP/e" "--tp '0'"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --dtype int3
expect_in "$TMP/e" "--dtype 'int3'"
# --only: a name the space lacks, a value it lacks, no '=' (the space's names
# and values are listed)
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model tiny --only foo=1
expect_in "$TMP/e" "--only 'foo=1': no parameter 'foo'; this space has block_m block_n block_k threads"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model tiny --only threads=1,block_m=3
expect_in "$TMP/e" "block_m=3: the values are 4 8 16 32 64"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model tiny --only block_m
expect_in "$TMP/e" "'block_m' is not NAME=VALUE"

[ "$(snapshot)" = "$keep" ] || fail "the database lost or changed measurements"; ok
done_ok
