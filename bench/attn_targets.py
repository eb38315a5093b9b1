#!/usr/bin/env python3
"""Issue 9's targets from one `cuda_run.sh attn` call: moetune's best variant
per row (cuda_attn_check --equal's table) against torch's SDPA on the same
rows (attn_sdpa.py's table, same call), and the KV-read floor.

usage: bench/attn_targets.py ATTN_EQUAL.txt SDPA.txt
Prints the joined table, then how many rows meet each target: faster than
SDPA (every row), within 10 % of it, and at least 0.85 of the floor
(contexts of 2048 and more).
"""
import sys


def rows(path, cols):
    out = {}
    for line in open(path):
        f = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(f) < cols or not f[2].isdigit():
            continue
        out[tuple(f[:4])] = f
    return out


ours, sdpa = rows(sys.argv[1], 8), rows(sys.argv[2], 7)
print("| H/Hkv/D/page | dtype | B | ctx | floor us | SDPA us | moetune us | variant | floor/t | SDPA/t |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
n = faster = within = long_rows = floor_ok = 0
for key, o in ours.items():
    if key not in sdpa:
        continue
    t, floor, s = float(o[4]), float(o[5]), float(sdpa[key][4])
    n += 1
    faster += t < s
    within += t <= 1.10 * s
    if int(key[3]) >= 2048:
        long_rows += 1
        floor_ok += floor / t >= 0.85
    print("| %s | %s | %s | %s | %.1f | %.1f | %.1f | %s | %.2f | %.2f |" % (*key, floor, s, t, o[7], floor / t, s / t))
print()
print("faster than SDPA: %d of %d rows; within 10 %% of SDPA or faster: %d of %d" % (faster, n, within, n))
print("at least 0.85 of the floor, ctx >= 2048: %d of %d rows" % (floor_ok, long_rows))
