export LD_LIBRARY_PATH=$PWD/.carry/lib:/usr/local/cuda/lib64
for b in k2 k4; do for row in 32/8/128/16/8/2048 64/8/128/16/8/511 32/32/128/16/1/2048 16/16/64/32/8/2048 64/8/128/16/1/8192; do for v in 512/4/1/2 128/8/1/3 64/4/1/2; do
  echo "check $b $row $v: $(timeout 60 .carry/$b/cuda_attn_check --only $row --variant $v 2>&1 | grep -E '^  H=|rror' | sed 's/.*warps [0-9]*[a-z0-9 ]*: //')"
done; done; done | tee $OUT/kpb_checks.txt | grep -c ": ok"
BUILDS="bin k2 k4 bin k2 k4" ENTRIES="32/8/128/16/1/8192@256/4/1/2 64/8/128/16/32/8192@8192/4/1/2 64/8/128/16/32/8192@8192/8/1/2 64/8/128/16/32/2048@2048/4/1/2 32/8/128/16/32/8192@8192/4/1/2 32/32/128/16/8/2048@512/4/1/2 16/16/64/32/32/8192@1024/4/1/2 64/8/128/16/8/511@128/4/1/2 32/8/128/16/8/2048@512/4/1/2" OUT=$OUT bash bench/attn_locality_probe.sh | sed 's/unchecked //; s/ of floor//g; s/, 0\.[0-9]*//g'
grep -v ": ok" $OUT/kpb_checks.txt | head
