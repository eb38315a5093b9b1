#!/usr/bin/env python3
"""torch's scaled_dot_product_attention on the decode shapes of
bench/cuda_attn_check.c (--equal: every sequence at the full context), for
issue 9's comparison. q [B, H, 1, D]; K and V dense [B, Hkv, ctx, D] (SDPA
has no paged cache: the copy into that layout is not timed); grouped-query
attention through enable_gqa where torch has it, else K and V repeated to
H heads beforehand (not timed either). Best of 20 CUDA-event timings of a
CUDA graph's replay, L2 flushed before each (as cuda_attn_check), with
the KV bytes over the copy bandwidth as the floor.
--layers N: also the per-layer time of a decode step's graph, N calls each
over its own layer's K and V (as many as 16 GB of KV holds, at least 1),
the graph's time over the calls, as cuda_attn_check --layers times moetune.
--shapes LO:HI: the table's shapes LO to HI only, as cuda_attn_check --shapes.
usage: bench/attn_sdpa.py [--quick] [--layers N] [--shapes LO:HI]"""
import sys
import torch
import torch.nn.functional as F

quick = "--quick" in sys.argv
layers = int(sys.argv[sys.argv.index("--layers") + 1]) if "--layers" in sys.argv else 0
dev = torch.device("cuda")
x = torch.empty(1 << 29, dtype=torch.float16, device=dev)
y = torch.empty_like(x)
best = 1e30
for i in range(6):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); y.copy_(x); e.record(); torch.cuda.synchronize()
    if i: best = min(best, s.elapsed_time(e))
bw = 2 * x.numel() * 2 / (best * 1e-3)
del x, y
flush = torch.empty(256 << 20, dtype=torch.uint8, device=dev)  # over the H100's 50 MB of L2
print(f"copy bandwidth {bw / 1e9:.0f} GB/s, torch {torch.__version__}")
shapes = [(32, 8, 128, 16), (64, 8, 128, 16), (32, 32, 128, 16), (16, 16, 64, 32), (8, 1, 256, 16)][: 2 if quick else 5]
if "--shapes" in sys.argv:
    lo, hi = map(int, sys.argv[sys.argv.index("--shapes") + 1].split(":"))
    shapes = shapes[lo:hi + 1]
if layers:
    print("| H/Hkv/D/page | dtype | B | ctx | SDPA us | floor us | floor/t | per layer us | floor/t | layers |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
else:
    print("| H/Hkv/D/page | dtype | B | ctx | SDPA us | floor us | floor/t |\n| --- | --- | --- | --- | --- | --- | --- |")


def timed(g, calls):
    """best of 20 replays of graph g, L2 flushed before each, per call"""
    t = 1e30
    for _ in range(20):
        flush.zero_()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); g.replay(); e.record(); torch.cuda.synchronize()
        t = min(t, s.elapsed_time(e))
    return t * 1e3 / calls


for H, Hkv, D, ps in shapes:
    for dt in (torch.bfloat16, torch.float16):
        for B in (1, 8, 32):
            for ctx in (511, 2048, 8192):
                if dt == torch.float16 and (B != 1 or ctx != 2048):
                    continue
                q = torch.rand(B, H, 1, D, dtype=dt, device=dev) * 2 - 1
                k = torch.rand(B, Hkv, ctx, D, dtype=dt, device=dev) * 2 - 1
                v = torch.rand(B, Hkv, ctx, D, dtype=dt, device=dev) * 2 - 1
                try:
                    F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                    gqa = True
                except TypeError:  # torch before 2.5: repeat the KV heads
                    gqa = False

                # torch before 2.5 repeats the KV heads outside the timing
                kv = [(k, v) if gqa else (k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1))]
                run = (lambda: F.scaled_dot_product_attention(q, kv[0][0], kv[0][1], enable_gqa=True)) if gqa else \
                    (lambda: F.scaled_dot_product_attention(q, kv[0][0], kv[0][1]))
                # graph replays, so that the figure is the kernels' and not
                # Python's dispatch; L2 flushed before each, outside the timing
                run()
                torch.cuda.synchronize()
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    run()
                us = timed(g, 1)
                del g
                floor = B * ctx * Hkv * D * 2 * 2 / bw * 1e6
                name = "bf16" if dt == torch.bfloat16 else "fp16"
                line = f"| {H}/{Hkv}/{D}/{ps} | {name} | {B} | {ctx} | {us:.1f} | {floor:.1f} | {floor / us:.2f} |"
                if layers:
                    # a decode step: one call per layer, each over its own K and V
                    per = 2 * kv[0][0].numel() * kv[0][0].element_size()
                    L = layers if per * layers <= 16 << 30 else max(1, (16 << 30) // per)
                    kv += [(kv[0][0].clone(), kv[0][1].clone()) for _ in range(L - 1)]
                    f = (lambda kk, vv: F.scaled_dot_product_attention(q, kk, vv, enable_gqa=True)) if gqa else \
                        (lambda kk, vv: F.scaled_dot_product_attention(q, kk, vv))
                    for kk, vv in kv:
                        f(kk, vv)
                    torch.cuda.synchronize()
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g):
                        for kk, vv in kv:
                            f(kk, vv)
                    ul = timed(g, L)
                    del g
                    line += f" {ul:.2f} | {floor / ul:.2f} | {L} |"
                print(line, flush=True)
                del kv
                del q, k, v
