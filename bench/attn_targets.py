#!/usr/bin/env python3
"""Issue 9's targets from one `cuda_run.sh attn` call: moetune's best variant
per row (cuda_attn_check --equal's table) against torch's SDPA on the same
rows (attn_sdpa.py's table, same call), and the KV-read floor.

usage: bench/attn_targets.py ATTN_EQUAL.txt SDPA.txt
Prints the joined table, then how many rows meet each target: faster than
SDPA (every row), within 10 % of it, and at least 0.85 of the floor
(contexts of 2048 and more). Where both tables carry the per-layer columns
(cuda_attn_check --layers, attn_sdpa.py --layers: a decode step's graph of
one launch per layer, the graph's time over the launches), the targets are
counted for that measure too.
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
both = [k for k in ours if k in sdpa]
layered = bool(both) and all(len(ours[k]) >= 12 and len(sdpa[k]) >= 10 for k in both)


def count(label, pick):
    n = faster = within = long_rows = floor_ok = 0
    for key in both:
        t, s, floor = pick(key)
        n += 1
        faster += t < s
        within += t <= 1.10 * s
        if int(key[3]) >= 2048:
            long_rows += 1
            floor_ok += floor / t >= 0.85
    print("%s: faster than SDPA: %d of %d rows; within 10 %% of SDPA or faster: %d of %d" % (label, faster, n, within, n))
    print("%s: at least 0.85 of the floor, ctx >= 2048: %d of %d rows" % (label, floor_ok, long_rows))


def single(key):
    return float(ours[key][4]), float(sdpa[key][4]), float(ours[key][5])


def per_layer(key):
    return float(ours[key][8]), float(sdpa[key][7]), float(ours[key][5])


head = "| H/Hkv/D/page | dtype | B | ctx | floor us | SDPA us | moetune us | variant | floor/t | SDPA/t |"
if layered:
    head += " layers | SDPA per layer us | moetune per layer us | variant | floor/t | SDPA/t |"
print(head)
print("|" + " --- |" * (head.count("|") - 1))
for key in both:
    t, s, floor = single(key)
    line = "| %s | %s | %s | %s | %.1f | %.1f | %.1f | %s | %.2f | %.2f |" % (*key, floor, s, t, ours[key][7], floor / t, s / t)
    if layered:
        tl, sl, _ = per_layer(key)
        line += " %s | %.2f | %.2f | %s | %.2f | %.2f |" % (ours[key][11], sl, tl, ours[key][10], floor / tl, sl / tl)
    print(line)
print()
if layered:
    count("one launch per graph", single)
    count("per layer of a decode step's graph", per_layer)
else:
    count("one launch per graph", single)
