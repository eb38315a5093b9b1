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
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("pragma user_version=10"); c.commit()' "$TMP/newer.db"
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

# --db '': SQLite would take it as a private temporary database and keep nothing
expect_exit 1 "$TMP/e" "$MT" sweep --db '' --model tiny --batch-sizes 1 --budget 2
expect_in "$TMP/e" "the database path is empty"
expect_exit 1 "$TMP/e" "$MT" show --db ''
expect_in "$TMP/e" "the database path is empty"

# special files and absurd values as inputs: refused at once, never read
mkfifo "$TMP/fifo.json"
expect_exit 2 "$TMP/e" timeout 20 "$MT" sweep --db "$DB" --model-config "$TMP/fifo.json"
expect_in "$TMP/e" "not a regular file"
ln -s /dev/zero "$TMP/zero.csv"
expect_exit 2 "$TMP/e" timeout 20 "$MT" replay "$TMP/zero.csv"
expect_in "$TMP/e" "not a regular file"
mkdir -p "$TMP/impdir"
ln -s /dev/zero "$TMP/impdir/E=8,N=14336,device_name=NVIDIA_H100_80GB_HBM3.json"
expect_exit 1 "$TMP/e" timeout 20 "$MT" import --db "$TMP/imp.db" "$TMP/impdir"
expect_in "$TMP/e" "not a regular file"
mkdir -p "$TMP/emptydir"
expect_exit 0 "$TMP/e" "$MT" import --db "$TMP/imp.db" "$TMP/emptydir"
expect_in "$TMP/e" "imported 0 file(s)"
printf '{"num_local_experts": 1e300, "hidden_size": 4096, "intermediate_size": 14336, "num_experts_per_tok": 2}' \
  >"$TMP/huge.json"
expect_exit 2 "$TMP/e" "$MT" sweep --db "$DB" --model-config "$TMP/huge.json"
expect_in "$TMP/e" "'num_local_experts' (expert count) is not a positive integer"
# DBRX keeps its MoE keys under ffn_config
printf '{"model_type": "dbrx", "d_model": 6144, "ffn_config": {"ffn_hidden_size": 10752, "moe_num_experts": 16, "moe_top_k": 4}}' \
  >"$TMP/dbrx.json"
expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/dbrx.db" --model-config "$TMP/dbrx.json" --tp 8 --dry-run
expect_in "$TMP/e" "E=16 N=1344 K=6144 top-4"
# a quantised checkpoint is never tuned as bf16 without a word: an fp8 one
# is tuned in its own scheme by moetune's fp8 kernel, said; another is
# refused, naming what the engine runs it in; with --dtype it goes on and
# says so
QC=$MT_TESTS/fixtures/model-configs
expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/q.db" --device cpu --model-config "$QC/deepseek-v3-fp8.json" --tp 8 --dry-run
expect_in "$TMP/e" "is quantised: fp8 (e4m3) with 128x128 block scales, dynamic activation scales; tuning moetune's fp8_w8a8 kernel with its weight blocks"
expect_in "$TMP/e" "E=256 N=256 K=7168 top-8 fp8_w8a8 block_shape=[128,128]"
expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/q.db" --device cpu --model-config "$QC/mixtral-fp8-dynamic.json" --dry-run
expect_in "$TMP/e" "tuning moetune's fp8_w8a8 kernel with per-channel weights and per-token activations"
expect_in "$TMP/e" "top-2 fp8_w8a8_per_channel"
expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/q.db" --device cpu --model-config "$QC/mixtral-fp8-static.json" --tp 2 --dry-run
expect_in "$TMP/e" "fp8 per tensor, static activation scales; tuning moetune's fp8_w8a8 kernel with per-tensor scales"
expect_in "$TMP/e" "E=8 N=7168 K=4096 top-2 fp8_w8a8, batch sizes"
# a preset named for its fp8 checkpoint is named as the preset, asked for bf16
expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/q.db" --device cpu --model qwen3-30b-a3b-fp8 --dtype bf16 --dry-run
expect_in "$TMP/e" "preset 'qwen3-30b-a3b-fp8' is quantised: fp8_w8a8, block_shape=[128,128]"
expect_in "$TMP/e" "tuning --dtype bf16 as asked"
grep -qs "(null)" "$TMP/e" "$TMP/e.err" && fail "a message printed a null name"; ok
expect_exit 2 "$TMP/e" "$MT" sweep --db "$TMP/q.db" --model-config "$QC/qwen3-30b-a3b-w4a16.json" --dry-run
expect_in "$TMP/e" "is quantised: int4_w4a16 (compressed-tensors, weights 4-bit int (group)"
expect_in "$TMP/e" "or --dtype bf16 to tune the unquantised kernel"
expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/q.db" --model-config "$QC/deepseek-v3-fp8.json" --tp 8 --dtype bf16 --dry-run
expect_in "$TMP/e" "tuning --dtype bf16 as asked"
expect_in "$TMP/e" "E=256 N=256 K=7168 top-8 bf16"
expect_exit 2 "$TMP/e" "$MT" submit --db "$TMP/q.db" --model-config "$QC/mixtral-awq.json"
expect_in "$TMP/e" "is quantised: int4_w4a16 (awq, 4-bit weights in groups of 128 with zero points)"
[ ! -e "$TMP/q.db" ] || [ "$(sql "$TMP/q.db" "select count(*) from problems")" = 0 ] || fail "a refused sweep stored a problem"; ok
# the current models' presets
for m in kimi-k2 glm-4.5 glm-4.6 glm-4.5-air gpt-oss-20b llama-4-scout llama-4-maverick; do
  expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/presets.db" --model "$m" --dry-run
done
expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/presets.db" --model kimi-k2 --dry-run
expect_in "$TMP/e" "E=384 N=2048 K=7168 top-8"
# a preset whose published checkpoint is quantised says which kernel it tunes
expect_in "$TMP/e" "note: kimi-k2's published checkpoint is fp8_w8a8, block_shape=[128,128]; this tunes moetune's bf16 kernel"
expect_in "$TMP/e" "(--model kimi-k2-fp8, or --dtype"
expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/presets.db" --model kimi-k2 --dtype bf16 --dry-run
grep -qs "published checkpoint" "$TMP/e" "$TMP/e.err" && fail "--dtype did not silence the note"; ok
# the presets of the published fp8 checkpoints tune their scheme
for m in deepseek-v3-fp8 kimi-k2-fp8; do
  expect_exit 0 "$TMP/e" "$MT" sweep --db "$TMP/presets.db" --model "$m" --tp 8 --dry-run --device cpu
  expect_in "$TMP/e" "top-8 fp8_w8a8 block_shape=[128,128]"
  expect_in "$TMP/e" "preset '$m' is quantised: fp8 e4m3 weights in 128x128 blocks"
done

# a problem larger than the memory there is: refused before anything is
# stored, with the need, what there is and what would fit
expect_exit 1 "$TMP/e" env MOETUNE_HOST_MEMORY=4000000000 "$MT" sweep --db "$TMP/mem.db" --model mixtral-8x7b --device cpu
expect_in "$TMP/e" "needs about 3.8 GB of memory (the experts' weights 2.8 GB"
expect_in "$TMP/e" "the host has 3.6 GB to give"
expect_in "$TMP/e" "(--tp 2 or --ep 2 fits)"
[ ! -e "$TMP/mem.db" ] || fail "a refused sweep created its database"; ok
expect_exit 0 "$TMP/e" env MOETUNE_HOST_MEMORY=4000000000 "$MT" sweep --model mixtral-8x7b --device cpu --dry-run
expect_in "$TMP/e" "does not fit"

# a database whose configs hold NULL (damaged, or written by hand): an
# error naming the cause from show, export and publish, never a crash
cp "$DB" "$TMP/null.db"
python3 - "$TMP/null.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript("PRAGMA foreign_keys=OFF; CREATE TABLE c2(id INTEGER PRIMARY KEY, backend TEXT, params TEXT);"
                "INSERT INTO c2 SELECT id, backend, NULL FROM configs; DROP TABLE configs;"
                "ALTER TABLE c2 RENAME TO configs;")
c.commit()
PY
expect_exit 1 "$TMP/e" "$MT" show --db "$TMP/null.db"
expect_in "$TMP/e" "parameters are not a JSON object"
expect_exit 1 "$TMP/e" "$MT" export --db "$TMP/null.db" --out "$TMP/nullout"
expect_in "$TMP/e" "parameters are not a JSON object"
expect_exit 1 "$TMP/e" "$MT" publish "file://$TMP/nullbucket" --db "$TMP/null.db"
expect_in "$TMP/e" "parameters are not a JSON object"
[ ! -e "$TMP/nullbucket" ] || [ -z "$(ls -A "$TMP/nullbucket")" ] || fail "a damaged database was published"; ok

# lookup: a device name, never an empty one; folders that are there
expect_exit 2 "$TMP/e" "$MT" lookup --experts 8 --intermediate 256 --batch 1 --device-name ''
expect_exit 2 "$TMP/e" "$MT" lookup --experts 8 --intermediate 256 --batch 1 --config-dir "$TMP/no-such-dir"
expect_in "$TMP/e" "--config-dir '$TMP/no-such-dir'"

[ "$(snapshot)" = "$keep" ] || fail "the database lost or changed measurements"; ok
done_ok
