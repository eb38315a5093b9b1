# cmake --install puts the library, header, pkg-config and CMake package
# files in place; the example builds against them both ways and runs a
# fused-MoE forward with a looked-up config, checked against a plain loop.
. "$(dirname "$0")/lib.sh"
BUILD=${MT_BUILD:?}
SRC=$(cd "$(dirname "$0")/.." && pwd)
P=$TMP/prefix
expect_exit 0 "$TMP/inst" cmake --install "$BUILD" --prefix "$P"
for f in include/moetune/moetune.h lib/libmoetune.a lib/pkgconfig/moetune.pc lib/cmake/moetune/moetuneConfig.cmake bin/moetune \
         "share/moetune/configs/E=8,N=7168,K=4096,topk=2,device_name=NVIDIA_H100_80GB_HBM3,backend=cuda,dtype=bf16.moetune.json"; do
  [ -e "$P/$f" ] || fail "not installed: $f"; ok
done
# the bundled configs are moetune's own files (every key of moetune's
# kernels, GEMV and NUM_SM too), never vLLM-format files
for f in "$P"/share/moetune/configs/*.json; do
  case $f in *.moetune.json) ;; *) fail "a bundled config not in moetune's format: $f" ;; esac
done; ok
# looked up from the installed folder alone, as this build's own (not
# foreign); --allow-stale: a kernel source newer than the files' still finds them
expect_exit 0 "$TMP/bl" "$P/bin/moetune" lookup --device-name NVIDIA_H100_80GB_HBM3 --backend cuda --experts 8 \
  --intermediate 7168 --hidden 4096 --topk 2 --batch 1 --bundled-dir "$P/share/moetune/configs" --config-dir '' \
  --cache-dir '' --tuned-dir '' --allow-stale
[ "$(py "$TMP/bl" 'j["source"]')" = bundled ] || fail "bundled lookup: $(cat "$TMP/bl")"; ok
[ "$(py "$TMP/bl" 'j["foreign"]')" = False ] || fail "the bundled file read as foreign: $(cat "$TMP/bl")"; ok
[ "$(py "$TMP/bl" '"GEMV" in j["config"] and "NUM_SM" in j["config"]')" = True ] ||
  fail "the bundled config lost moetune's keys: $(cat "$TMP/bl")"; ok
ls "$P"/lib/libmoetune.so* >/dev/null || fail "no shared library"; ok
# pkg-config
export PKG_CONFIG_PATH=$P/lib/pkgconfig
# the build line the example's own comment gives, word for word, in a copy
# of the example's folder
cmdline=$(sed -n 's/^ \*   \(cc .*fused_moe_cpu\.c.*\)$/\1/p' "$SRC/examples/fused_moe_cpu.c")
[ -n "$cmdline" ] || fail "examples/fused_moe_cpu.c gives no build line"; ok
mkdir -p "$TMP/exdir" && cp "$SRC/examples/fused_moe_cpu.c" "$TMP/exdir/"
expect_exit 0 "$TMP/cc0" bash -c "cd '$TMP/exdir' && $cmdline"
expect_exit 0 "$TMP/cc" cc -O2 -Wall -Werror "$SRC/examples/fused_moe_cpu.c" $(pkg-config --cflags --libs moetune) -lm -o "$TMP/ex"
LD_LIBRARY_PATH=$P/lib expect_exit 0 "$TMP/run" "$TMP/ex"
expect_in "$TMP/run" "matches"
expect_in "$TMP/run" "from default"
# static, through pkg-config --static
expect_exit 0 "$TMP/cc2" cc -O2 "$SRC/examples/fused_moe_cpu.c" -static-libgcc $(pkg-config --cflags moetune) \
  "$P/lib/libmoetune.a" $(pkg-config --libs-only-l --static libcjson) -lpthread -lm -ldl -o "$TMP/ex_static"
expect_exit 0 "$TMP/run2" "$TMP/ex_static"
expect_in "$TMP/run2" "matches"
# the looked-up config comes from $MOETUNE_CONFIG_DIR when a tuned file is there
mkdir -p "$TMP/cfg"
dev=$(LD_LIBRARY_PATH=$P/lib "$TMP/ex" | sed -n 's/^device \([^:]*\):.*/\1/p')
cat >"$TMP/cfg/E=8,N=64,K=128,topk=2,device_name=$dev,backend=cpu,dtype=fp32.moetune.json" <<JSON
{"format": "moetune-config/1", "provenance": {"kernel_hash": "cpu-0000000000000000"},
 "configs": {"16": {"params": {"block_m": 8, "block_n": 16, "block_k": 64, "threads": 1}}}}
JSON
# a hash that does not match is stale: skipped and said; the default runs
MOETUNE_CONFIG_DIR=$TMP/cfg LD_LIBRARY_PATH=$P/lib expect_exit 0 "$TMP/run3" "$TMP/ex"
expect_in "$TMP/run3" "stale"
expect_in "$TMP/run3" "matches"
# CMake's find_package
expect_exit 0 "$TMP/cm" cmake -S "$SRC/examples" -B "$TMP/exbuild" -DCMAKE_PREFIX_PATH="$P"
expect_exit 0 "$TMP/cmb" cmake --build "$TMP/exbuild"
LD_LIBRARY_PATH=$P/lib expect_exit 0 "$TMP/run4" "$TMP/exbuild/fused_moe_cpu"
expect_in "$TMP/run4" "matches"
done_ok
