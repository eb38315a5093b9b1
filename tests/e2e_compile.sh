#!/bin/bash
# moetune compile: the kernel cache filled in parallel by NVRTC with no GPU,
# reused on the next run, a damaged entry recompiled, and bad usage refused.
. "$(dirname "$0")/lib.sh"
C=$TMP/cache

expect_exit 2 $TMP/o "$MT" compile
expect_in $TMP/o "give one of --arch"
expect_exit 2 $TMP/o "$MT" compile --arch sm_90a --device cuda:0
expect_in $TMP/o "give one of --arch"
expect_exit 2 $TMP/o "$MT" compile --arch rdna3
expect_in $TMP/o "expected an NVIDIA target such as sm_80 or sm_90a, or an AMD one"
expect_exit 2 $TMP/o "$MT" compile --arch sm_75
expect_in $TMP/o "give --smem-limit"
expect_exit 2 $TMP/o "$MT" compile --arch sm_90a --dtype fp8
expect_in $TMP/o "expected bf16, fp16, fp8_w8a8 or all"
expect_exit 2 $TMP/o "$MT" compile --arch sm_90a --jobs 0
expect_exit 2 $TMP/o "$MT" compile --device cpu
expect_in $TMP/o "expected cuda:N"
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_exit 1 $TMP/o "$MT" compile --device cuda:0
  expect_in $TMP/o "--device cuda:0"
fi

# AMD targets through hipRTC (libamdhip64, no GPU): the same cache layout,
# code objects for the GPU named by --arch, in LDS of 64 KiB
set +e; "$MT" compile --arch gfx90a --limit 1 --cache-dir $TMP/hprobe --quiet >$TMP/hprobe.txt 2>&1; hrc=$?; set -e
if [ $hrc = 1 ] && grep -q "libamdhip64" $TMP/hprobe.txt; then
  echo "skipped the AMD compiles: $(cat $TMP/hprobe.txt)"
else
  [ $hrc = 0 ] || { cat $TMP/hprobe.txt; fail "compile --arch gfx90a --limit 1 exited $hrc"; }
  H=$TMP/hcache
  expect_exit 0 $TMP/o "$MT" compile --arch gfx90a --limit 3 --jobs 2 --cache-dir $H --quiet
  expect_in $TMP/o "3 binaries for gfx90a (shared memory 65536 bytes)"
  expect_in $TMP/o "3 compiled, 0 already cached, 0 failed"
  for f in $H/*.hsaco; do
    head -1 "$f" | grep -q "^moetune-hsaco/1 src=[0-9a-f]* arch=gfx90a hiprtc=[0-9]*\.[0-9]* -DBLOCK_SIZE_M=" ||
      fail "$f: unexpected key line"
    # ELF for EM_AMDGPU (224), holding the GEMM kernels
    python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); e=b[b.index(b"\n")+1:]; assert e[:4]==b"\x7fELF" and int.from_bytes(e[18:20],"little")==224 and b"moe_gemm1" in e' "$f" ||
      fail "$f: not an AMD GPU code object with moe_gemm1"
  done
  [ "$(ls $H/*.hsaco | wc -l)" = 3 ] || fail "3 code objects expected"; ok
  expect_exit 0 $TMP/o "$MT" compile --arch gfx90a --limit 3 --jobs 2 --cache-dir $H --quiet
  expect_in $TMP/o "0 compiled, 3 already cached, 0 failed"
  # --device hip:N: the target of the GPU the amdgpu driver lists (a
  # made-up KFD topology with an MI210, gfx90a), into the same cache
  K=$TMP/kfd/sys/class/kfd/kfd/topology/nodes
  mkdir -p "$K/1/mem_banks/0"
  printf 'simd_count 416\nsimd_per_cu 4\ngfx_target_version 90010\nvendor_id 4098\ndevice_id 29711\n' >"$K/1/properties"
  printf 'size_in_bytes 68702699520\n' >"$K/1/mem_banks/0/properties"
  MOETUNE_SYSFS_ROOT=$TMP/kfd expect_exit 0 $TMP/o "$MT" compile --device hip:0 --limit 3 --jobs 2 --cache-dir $H --quiet
  expect_in $TMP/o "3 binaries for gfx90a (shared memory 65536 bytes)"
  expect_in $TMP/o "0 compiled, 3 already cached, 0 failed"
  MOETUNE_SYSFS_ROOT=$TMP/kfd expect_exit 1 $TMP/o "$MT" compile --device hip:1 --cache-dir $H
  expect_in $TMP/o "no AMD GPU hip:1: the amdgpu driver lists 1"
  # MI300X (gfx942): Debian's comgr aborts inside hipRTC there; the crash is
  # one failed binary per variant with the compiler named, never an abort
  set +e; "$MT" compile --arch gfx942 --limit 2 --jobs 2 --cache-dir $TMP/h942 --quiet >$TMP/g942 2>&1; grc=$?; set -e
  case $grc in
    0) expect_in $TMP/g942 "0 failed" ;;
    1) expect_in $TMP/g942 "crashed ("; expect_in $TMP/g942 "compiling for gfx942" ;;
    *) cat $TMP/g942; fail "compile --arch gfx942 exited $grc" ;;
  esac
fi
if [ ! -d /sys/class/kfd ]; then
  expect_exit 1 $TMP/o "$MT" compile --device hip:0
  expect_in $TMP/o "--device hip:0: no AMD GPU"
fi

# --kernel attention: the shape is required and whole, AMD targets refused
expect_exit 2 $TMP/o "$MT" compile --arch sm_90a --kernel attention --heads 8
expect_in $TMP/o "give --heads, --kv-heads, --head-dim and --page-size"
expect_exit 2 $TMP/o "$MT" compile --arch sm_90a --kernel attention --heads 12 --kv-heads 8 --head-dim 64 --page-size 16
expect_in $TMP/o "not a multiple of --kv-heads"
expect_exit 2 $TMP/o "$MT" compile --arch sm_90a --head-dim 64
expect_in $TMP/o "go with --kernel attention"
expect_exit 2 $TMP/o "$MT" compile --arch sm_90a --kernel gemm
expect_in $TMP/o "expected moe or attention"
expect_exit 1 $TMP/o "$MT" compile --arch gfx90a --kernel attention --heads 8 --kv-heads 8 --head-dim 64 --page-size 16
expect_in $TMP/o "NVIDIA targets only"
ok

# no NVRTC (a machine without the CUDA toolkit): said so, and the rest skipped
set +e; "$MT" compile --arch sm_90a --limit 1 --cache-dir $C --quiet >$TMP/probe 2>&1; rc=$?; set -e
if [ $rc = 1 ] && grep -q "NVRTC" $TMP/probe; then
  echo "skipped the compiles: $(cat $TMP/probe)"
  done_ok
  exit 77
fi
[ $rc = 0 ] || { cat $TMP/probe; fail "compile --limit 1 exited $rc"; }
rm -rf $C

expect_exit 0 $TMP/o "$MT" compile --arch sm_90a --limit 5 --jobs 2 --cache-dir $C --quiet
expect_in $TMP/o "5 binaries for sm_90a (shared memory 232448 bytes)"
expect_in $TMP/o "5 compiled, 0 already cached, 0 failed"
[ "$(ls $C/*.cubin | wc -l)" = 5 ] || fail "5 cubins expected in the cache, found $(ls $C | wc -l)"
ok
# each entry: the key line (source hash, arch, NVRTC version, options), then an ELF image
for f in $C/*.cubin; do
  head -1 "$f" | grep -q "^moetune-cubin/1 src=[0-9a-f]* arch=sm_90a nvrtc=[0-9]*\.[0-9]* -DBLOCK_SIZE_M=" ||
    fail "$f: unexpected key line"
  [ "$(head -1 "$f" | grep -o -- "-DGROUP_SIZE_M\|-DNUM_SM" | wc -l)" = 0 ] ||
    fail "$f: launch arguments must not be compile options"
  python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); assert b[b.index(b"\n")+1:][:4]==b"\x7fELF"' "$f" ||
    fail "$f: no ELF image after the key"
done
ok

# a second run finds them all; a damaged entry is compiled again
expect_exit 0 $TMP/o "$MT" compile --arch sm_90a --limit 5 --jobs 3 --cache-dir $C --quiet
expect_in $TMP/o "0 compiled, 5 already cached, 0 failed"
victim=$(ls $C/*.cubin | head -1)
printf 'moetune-cubin/1 src=0000 truncated' >"$victim"
expect_exit 0 $TMP/o "$MT" compile --arch sm_90a --limit 5 --jobs 2 --cache-dir $C --quiet
expect_in $TMP/o "1 compiled, 4 already cached, 0 failed"
head -1 "$victim" | grep -q "arch=sm_90a" || fail "the damaged entry was not rewritten"
ok

# fp8: its own binaries (per tensor/channel, 128x128 blocks), from sm_89 on
expect_exit 0 $TMP/o "$MT" compile --arch sm_90a --limit 2 --dtype fp8_w8a8 --cache-dir $TMP/f8c --quiet
expect_in $TMP/o "2 binaries for sm_90a"
expect_in $TMP/o "2 compiled, 0 already cached, 0 failed"
expect_exit 2 $TMP/o "$MT" compile --arch sm_80 --dtype fp8_w8a8 --cache-dir $TMP/f8c --quiet
expect_in $TMP/o "sm_80 has no fp8 tensor cores"
# another architecture and dtype are other entries; fp16 and bf16 both counted with --dtype all
expect_exit 0 $TMP/o "$MT" compile --arch sm_80 --limit 2 --dtype all --cache-dir $C --quiet
expect_in $TMP/o "shared memory 166912 bytes"
expect_in $TMP/o "2 compiled, 0 already cached"
[ "$(ls $C/*.cubin | wc -l)" = 7 ] || fail "7 cubins expected"
ok

# the attention space of one shape, as a sweep over contexts up to 100
# tokens times it: partitions of 64 and 128 only (256 would hold the whole
# context twice), each variant one cubin keyed by its compile options
A=$TMP/acache
expect_exit 0 $TMP/o "$MT" compile --arch sm_90a --kernel attention --heads 8 --kv-heads 8 --head-dim 64 --page-size 16 \
  --max-context 100 --jobs 2 --cache-dir $A --quiet
expect_in $TMP/o "attention variants for sm_90a"
expect_in $TMP/o "0 already cached, 0 failed"
n=$(sed -n 's/^\([0-9]*\) attention variants.*/\1/p' $TMP/o)
[ "$n" -gt 10 ] && [ "$(ls $A/*.cubin | wc -l)" = "$n" ] || fail "$n variants reported, $(ls $A | wc -l) cubins"
for f in $A/*.cubin; do
  head -1 "$f" | grep -q "^moetune-cubin/1 src=[0-9a-f]* arch=sm_90a nvrtc=[0-9.]* -DHEAD_DIM=64 -DPAGE_SIZE=16 -DGROUP=1 -DPARTITION=\(64\|128\) " ||
    fail "$f: unexpected key line: $(head -1 "$f")"
done
[ "$(head -qn1 $A/*.cubin | grep -c -- "-DATTN_STAGE=[234]")" -gt 0 ] || fail "no ring variant compiled"
ok
expect_exit 0 $TMP/o "$MT" compile --arch sm_90a --kernel attention --heads 8 --kv-heads 8 --head-dim 64 --page-size 16 \
  --max-context 100 --jobs 2 --cache-dir $A --quiet
expect_in $TMP/o "0 compiled, $n already cached, 0 failed"
ok
done_ok
