#!/usr/bin/env python3
"""The fp8 peer for moetune's fp8 targets: a fused-MoE pipeline built on
torch._scaled_grouped_mm, on the GPU machine's own torch, timed as moetune
times its kernels (the L2 flushed before each run, the median of CUDA-event
times, the routing drawn once per batch size).

torch's grouped fp8 GEMM takes row-wise scales only: x and the intermediate
are quantised per row (token), the weights per output channel. Where the
target's scheme is 128x128 blocks (DeepSeek-V3, Qwen3 FP8), this peer runs
per-channel weights instead, and says so in its table.

The pipeline, all on the device and all timed: sort the (token, slot) pairs
by expert, gather and quantise x, GEMM 1, SiLU-and-mul, quantise, GEMM 2,
the routing weights, and the scatter-add into the output.

Usage (GPU machine): python3 bench/fp8_peer.py [--batches 1,8,64,256,1024,4096]
Prints a markdown table; exit 1 when a pipeline's output is off its float
reference (checked once per shape)."""
import argparse
import sys

import torch
import torch.nn.functional as F

SHAPES = [
    ("DeepSeek-V3 TP8", 256, 256, 7168, 8, "128x128 blocks"),
    ("Qwen3-30B-A3B", 128, 768, 2048, 8, "128x128 blocks"),
    ("Mixtral-8x7B TP2", 8, 7168, 4096, 2, "per tensor"),
]
E4M3 = torch.float8_e4m3fn


def quant_rows(a):
    """e4m3 values and one float32 scale per row: a ~= q * scale."""
    s = a.abs().amax(dim=1).float().clamp(min=1e-10) / 448.0
    q = (a.float() / s[:, None]).clamp(-448.0, 448.0).to(E4M3)
    return q, s


def weights(E, rows, cols, gen):
    w = torch.randn(E, rows, cols, device="cuda", generator=gen) / cols ** 0.5
    s = w.abs().amax(dim=2).clamp(min=1e-10) / 448.0
    q = (w / s[:, :, None]).clamp(-448.0, 448.0).to(E4M3)
    return q, s.float().contiguous(), w


def pipeline(x, ids, tw, w1q, s1, w2q, s2, E, N, topk):
    M, K = x.shape
    flat = ids.flatten()
    order = torch.argsort(flat, stable=True)
    offs = torch.cumsum(torch.bincount(flat, minlength=E), 0).to(torch.int32)
    tok = order // topk
    xq, sa = quant_rows(x.index_select(0, tok))
    h = torch._scaled_grouped_mm(xq, w1q.transpose(1, 2), sa, s1, offs=offs, out_dtype=torch.bfloat16)
    a = F.silu(h[:, :N]) * h[:, N:]
    aq, sa2 = quant_rows(a)
    y = torch._scaled_grouped_mm(aq, w2q.transpose(1, 2), sa2, s2, offs=offs, out_dtype=torch.bfloat16)
    y = y * tw.flatten().index_select(0, order)[:, None].to(y.dtype)
    return torch.zeros(M, K, device=x.device, dtype=torch.bfloat16).index_add_(0, tok, y)


def reference(x, ids, tw, w1, w2, N, topk):
    """float32 on the unquantised weights: the peer's error, for a sanity check"""
    out = torch.zeros(x.shape[0], x.shape[1], device=x.device)
    xf = x.float()
    for sl in range(topk):
        e = ids[:, sl].long()
        h = torch.bmm(w1[e], xf[:, :, None])[:, :, 0]
        a = F.silu(h[:, :N]) * h[:, N:]
        out += tw[:, sl, None] * torch.bmm(w2[e], a[:, :, None])[:, :, 0]
    return out


def ceiling(runs):
    """the measured dense fp8 matmul ceiling: torch._scaled_mm (cuBLASLt) on
    8192^3 e4m3 with per-tensor scales, bf16 out; and bf16's, for the ratio"""
    n = 8192
    a = torch.randn(n, n, device="cuda").to(E4M3)
    b = torch.randn(n, n, device="cuda").to(E4M3).t()
    one = torch.ones((), device="cuda")
    ab, bb = a.to(torch.bfloat16), b.to(torch.bfloat16)
    out = {}
    for name, fn in (("fp8", lambda: torch._scaled_mm(a, b, one, one, out_dtype=torch.bfloat16)),
                     ("bf16", lambda: ab @ bb)):
        for _ in range(3):
            fn()
        ts = []
        for _ in range(runs):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            fn()
            e1.record()
            torch.cuda.synchronize()
            ts.append(e0.elapsed_time(e1) * 1e-3)
        ts.sort()
        out[name] = 2.0 * n ** 3 / ts[len(ts) // 2] / 1e12
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,8,64,256,1024,4096")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    Ms = [int(v) for v in args.batches.split(",")]
    if not hasattr(torch, "_scaled_grouped_mm"):
        print("fp8_peer: this torch (%s) has no _scaled_grouped_mm" % torch.__version__)
        return 77
    dev = torch.cuda.get_device_name(0)
    print("device %s, torch %s" % (dev, torch.__version__))
    c = ceiling(args.runs)
    print("dense matmul ceiling, 8192^3 (cuBLASLt via torch): fp8 e4m3 %.0f TFLOP/s, bf16 %.0f TFLOP/s"
          % (c["fp8"], c["bf16"]))
    print("\n| shape | target scheme | peer's scheme | M | us (median of %d) | rel. error vs float32 |" % args.runs)
    print("| --- | --- | --- | --- | --- | --- |")
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    bad = 0
    for name, E, N, K, topk, scheme in SHAPES:
        gen = torch.Generator(device="cuda")
        gen.manual_seed(7)
        w1q, s1, w1 = weights(E, 2 * N, K, gen)
        w2q, s2, w2 = weights(E, K, N, gen)
        for M in Ms:
            x = torch.randn(M, K, device="cuda", generator=gen).to(torch.bfloat16)
            logits = torch.randn(M, E, device="cuda", generator=gen)
            tw, ids = torch.topk(torch.softmax(logits, dim=-1), topk, dim=-1)
            tw = (tw / tw.sum(dim=-1, keepdim=True)).float()
            ids = ids.to(torch.int32)
            err = float("nan")
            if M <= 8:
                # the check: the peer is a real fused MoE, within fp8's error
                ref = reference(x, ids, tw, w1, w2, N, topk)
                got = pipeline(x, ids, tw, w1q, s1, w2q, s2, E, N, topk).float()
                err = ((got - ref).norm() / ref.norm()).item()
                bad += not err < 0.1
            times = []
            for i in range(args.runs + 3):
                flush.zero_()
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                pipeline(x, ids, tw, w1q, s1, w2q, s2, E, N, topk)
                b.record()
                torch.cuda.synchronize()
                if i >= 3:
                    times.append(a.elapsed_time(b) * 1e3)
            times.sort()
            print("| %s | %s | per channel (weights), per token (activations) | %d | %.1f | %s |"
                  % (name, scheme, M, times[len(times) // 2], "%.3f" % err if err == err else "-"), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
