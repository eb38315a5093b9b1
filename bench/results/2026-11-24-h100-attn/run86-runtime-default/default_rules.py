# Scores fixed variants and simple rules, as the CUDA attention default, against each
# row's best variant in cuda_attn_check tables (per layer): the geometric mean and the
# worst of time / best. Usage: python3 default_rules.py IN_ORDER_FILES SHUFFLED_FILES
# (each a comma-separated list of attn_equal.txt files, .gz allowed).
import re, math, gzip, sys
def load(files):
    rows = {}
    for f in files:
        op = gzip.open if f.endswith('.gz') else open
        cur = None
        for line in op(f, 'rt'):
            m = re.match(r'\s+H=(\d+) Hkv=(\d+) D=(\d+) page (\d+) (\w+) B=(\d+) ctx=(\d+) (.*?): (ok|unchecked) ([\d.]+) us', line)
            if m: cur = (tuple(m.group(1,2,3,4,5,6,7)), m.group(8)); continue
            m = re.match(r'\s+per layer of \d+: ([\d.]+) us', line)
            if m and cur: rows.setdefault(cur[0], {})[cur[1]] = float(m.group(1)); cur = None
    return rows
def p2(x):
    p = 64
    while p < x: p *= 2
    return min(p, 8192)
def r1(k): return "partition 256 warps 4 mma ring2"
def r2(k):
    H,Hkv,D,ps,dt,B,ctx = k; B=int(B); Hkv=int(Hkv); ctx=int(ctx)
    if B*Hkv >= 128: return "partition %d warps 2 mma ring2" % p2(ctx)
    return "partition 256 warps 4 mma ring2"
def r3(k):
    H,Hkv,D,ps,dt,B,ctx = k; B=int(B); Hkv=int(Hkv); ctx=int(ctx)
    if B*Hkv >= 128: return "partition %d warps 2 mma ring2" % p2(ctx)
    # about 2 blocks per SM of 132
    part = p2(max(64, ctx * B * Hkv // 264))
    return "partition %d warps 4 mma ring2" % part
for name, files in [("in order", sys.argv[1].split(',')), ("shuffled", sys.argv[2].split(','))]:
    rows = load(files)
    for rn, r in [("fma default", lambda k: "partition 512 warps 4"), ("256/4 ring2", r1), ("r2", r2), ("r3", r3)]:
        rat = []
        for k, v in rows.items():
            if r(k) in v: rat.append((v[r(k)] / min(v.values()), k))
            else: print("missing", rn, k, r(k))
        print("%s %-12s rows %d geo %.3f worst %.2f %s" % (name, rn, len(rat), math.exp(sum(math.log(x) for x, _ in rat) / len(rat)), max(rat)[0], max(rat)[1]))
