#!/usr/bin/env python3
"""The fp8 targets' table from one bench/fp8_targets.sh run: per shape and
M, moetune's best tuned fp8 pipeline against the peer on
torch._scaled_grouped_mm (fp8_peer.txt), against moetune's own best bf16
pipeline of the same shape, and against the roofline: the floor's fraction
on memory-bound rows, the share of the measured fp8 matmul ceiling on
compute-bound rows (the device's stored peak_fp8_gflops).

Usage: python3 bench/fp8_table.py OUT   (the folder fp8_targets.sh wrote)"""
import os
import re
import sqlite3
import sys


def main(out):
    if not os.path.exists(out + "/targets.db"):
        print("no %s/targets.db: run the sweeps first" % out)
        return 1
    db = sqlite3.connect(out + "/targets.db")
    dev = db.execute("select name, bandwidth_gbs, peak_gflops, peak_fp8_gflops from devices").fetchone()
    if not dev:
        print("no device in %s/targets.db" % out)
        return 1
    name, bw, peak, peak8 = dev
    print("device %s: %.0f GB/s, bf16 %.0f TFLOP/s, fp8 %s TFLOP/s (stored ceilings)"
          % (name, bw, peak / 1e3, "%.0f" % (peak8 / 1e3) if peak8 else "not measured"))
    peer = {}
    try:
        for line in open(out + "/fp8_peer.txt"):
            m = re.match(r"\| ([^|]+?) \| [^|]+ \| [^|]+ \| (\d+) \| ([\d.]+) \|", line)
            if m:
                peer[(m.group(1).split()[0], int(m.group(2)))] = float(m.group(3))
    except OSError:
        pass
    best = {}
    for E, N, K, topk, dtype, bn, M, t in db.execute(
            "select p.E, p.N, p.K, p.topk, p.dtype, p.block_n, m.M, min(m.median_us) from measurements m "
            "join problems p on p.id = m.problem_id where m.status = 'ok' group by p.id, m.M"):
        best[(E, N, K, topk, "fp8" if dtype.startswith("fp8") else dtype, M)] = (t, bn)
    print("\n| shape | M | fp8 us | peer us | fp8 / peer | bf16 us | fp8 / bf16 | bound | of the bound |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    names = {(256, 256, 7168, 8): "DeepSeek-V3", (128, 768, 2048, 8): "Qwen3-30B-A3B", (8, 7168, 4096, 2): "Mixtral-8x7B"}
    for (E, N, K, topk, dt, M), (t, bn) in sorted(best.items()):
        if dt != "fp8":
            continue
        b = best.get((E, N, K, topk, "bf16", M), (float("nan"), 0))[0]
        label = names.get((E, N, K, topk), "E=%d N=%d K=%d" % (E, N, K))
        p = peer.get((label.split()[0], M), float("nan"))
        # bytes: the experts hit (all of them past a few tokens) in fp8, x
        # in and out in bf16; FLOPs 2 M topk 3 N K
        hit = min(E, M * topk)
        byts = hit * 3 * N * K * 1.0 + M * K * 2 * 2
        flops = 2.0 * M * topk * 3 * N * K
        t_mem = byts / (bw * 1e9) * 1e6
        t_cmp = flops / ((peak8 or peak) * 1e9) * 1e6
        bound, frac = ("memory", t_mem / t) if t_mem >= t_cmp else ("fp8 compute" if peak8 else "compute", t_cmp / t)
        print("| %s | %d | %.1f | %.1f | %.2f | %.1f | %.2f | %s | %.2f |" % (label, M, t, p, t / p, b, t / b, bound, frac))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/mt_out"))
