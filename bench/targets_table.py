#!/usr/bin/env python3
"""Compare a moetune GPU database with ../shared/TARGETS.md's vLLM figures.

usage: bench/targets_table.py GPU_DB > table.md

For each TARGETS shape and M: our tuned time (the best verified variant of the
latest kernel in the database), our kernel with vLLM's default heuristic
config (measured in the same sweep), the roofline floor from our measured
ceilings, and vLLM's tuned and current-default GEMM times on the same device
model (from TARGETS.md, measured 2026-11-23).
"""
import json
import sqlite3
import sys

# TARGETS.md, section 1: (E, N, K, topk) -> {M: (experts hit, vLLM tuned GEMMs us, vLLM current-default GEMMs us)}
VLLM = {
    ("Mixtral-8x7B TP1", 8, 14336, 4096, 2): {1: (2, 256, 258), 8: (8, 932, 955), 64: (8, 951, 958),
                                             256: (8, 1036, 1223), 1024: (8, 1577, 2192), 4096: (8, 4490, 5749)},
    ("Mixtral-8x7B TP2", 8, 7168, 4096, 2): {1: (2, 145, 145), 8: (8, 485, 370), 64: (8, 489, 499),
                                            256: (8, 523, 590), 1024: (8, 786, 961), 4096: (8, 2386, 2945)},
    ("Qwen3-30B-A3B", 128, 768, 2048, 8): {1: (8, 46, 46), 8: (52, 187, 191), 64: (127, 419, 416),
                                          256: (128, 437, 442), 1024: (128, 484, 479), 4096: (128, 732, 782)},
}
# issue 8 adds DeepSeek-V3 at TP8: TARGETS.md has no vLLM figures for it, so
# its rows hold ours against the floor only
NO_VLLM = {("DeepSeek-V3 TP8", 256, 256, 7168, 8): [1, 8, 64, 256, 1024, 4096]}


def main(path):
    c = sqlite3.connect(path)
    print("| shape | M | ours tuned µs | ours, vLLM default config µs | floor µs | bound | tuned floor/t "
          "| vLLM tuned GEMMs µs | vLLM default GEMMs µs | ours / best vLLM |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    bw, peak = c.execute("select bandwidth_gbs, peak_gflops from devices where backend='cuda'").fetchone()
    shapes = list(VLLM.items()) + [(k, {M: (None, None, None) for M in ms}) for k, ms in NO_VLLM.items()]
    for (name, E, N, K, topk), rows in shapes:
        prob = c.execute("select id from problems where E=? and N=? and K=? and topk=? and dtype='bf16'",
                         (E, N, K, topk)).fetchone()
        if not prob:
            continue
        # the newest kernel hash measured for this problem
        (khash,) = c.execute("select kernel_hash from measurements where problem_id=? order by id desc limit 1",
                             prob).fetchone()
        for M, (hit, v_tuned, v_def) in rows.items():
            best = c.execute("select median_us, floor_us from measurements where problem_id=? and M=? and "
                             "status='ok' and kernel_hash=? order by median_us limit 1", (prob[0], M, khash)).fetchone()
            dflt = c.execute("select median_us from measurements where problem_id=? and M=? and status='ok' and "
                             "is_default=1 and kernel_hash=?", (prob[0], M, khash)).fetchone()
            if not best:
                continue
            flops = 2.0 * M * topk * 3 * N * K
            bound = "comp" if flops / (peak * 1e9) > best[1] * 1e-6 * 0.999 else "mem"
            ratio = f"{best[0] / min(v_tuned, v_def):.2f}" if v_tuned else "-"
            print(f"| {name} | {M} | {best[0]:.1f} | {dflt[0] if dflt else float('nan'):.1f} | {best[1]:.1f} | {bound} "
                  f"| {best[1] / best[0]:.2f} | {v_tuned or '-'} | {v_def or '-'} | {ratio} |")
    print(f"\nceilings measured by moetune on this device: {bw:.0f} GB/s copy, {peak / 1e3:.0f} TFLOP/s bf16 (cuBLAS)")


if __name__ == "__main__":
    main(sys.argv[1])
