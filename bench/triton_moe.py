"""A Triton fused-MoE kernel of moetune's own that takes vLLM's six
parameters with vLLM's meaning (BLOCK_SIZE_M/N/K, GROUP_SIZE_M, num_warps,
num_stages), for timing the engine worker on a GPU machine that has Triton
but no vLLM. It is plugged behind the vLLM test double's entry point
(tests/engines) with MOETUNE_DOUBLE_KERNEL=bench/triton_moe.py:fused, so
that the worker calls it exactly as it calls vLLM's fused_experts.

Pipeline: align the (token, expert) pairs by expert into BLOCK_SIZE_M-row
blocks (torch ops of fixed sizes, so that it is captured in a CUDA graph);
quantise the activations (fp8 per tensor with a static scale, per token, or
per 1 x block_k group; int8 per token); GEMM 1 into the intermediate;
SiLU-and-mul; quantise again; GEMM 2 with the routing weight; the sum over
top-k. The weight-only schemes (int8 per channel or in groups, int4 in
groups with or without zero points) are dequantised in the GEMM's k loop,
as the engines' gptq_awq kernel takes them: int4 two a byte along K (the
even k in the low nibble), zero points two a byte along N, int8 in groups
with 128 added.
"""

import torch
import triton
import triton.language as tl

FP8 = torch.float8_e4m3fn
_OUT = {torch.bfloat16: tl.bfloat16, torch.float16: tl.float16, torch.float32: tl.float32}

# scale kinds of the GEMM
NONE, TENSOR, ROW_CHANNEL, BLOCK, WEIGHT_CHANNEL, INT8_GROUP, INT4_GROUP, INT8_ROW_CHANNEL = 0, 1, 2, 3, 4, 5, 6, 7


@triton.jit
def _gemm(a_ptr, b_ptr, c_ptr, a_scale_ptr, b_scale_ptr, zp_ptr, weight_ptr, sorted_ptr, block_expert_ptr, npadded_ptr,
          Nout, K, EM, num_valid, a_row_div,
          stride_am, stride_ak, stride_be, stride_bn, stride_bk, stride_cm, stride_cn,
          stride_asm, stride_ask, stride_bse, stride_bsn, stride_bsk, stride_ze, stride_zn, stride_zk,
          group_n: tl.constexpr, group_k: tl.constexpr,
          BLOCK_SIZE_M: tl.constexpr, BLOCK_SIZE_N: tl.constexpr, BLOCK_SIZE_K: tl.constexpr,
          GROUP_SIZE_M: tl.constexpr, SCALE: tl.constexpr, HAS_ZP: tl.constexpr, MUL_WEIGHT: tl.constexpr,
          OUT_DTYPE: tl.constexpr):
    # tiles ordered in groups of GROUP_SIZE_M row blocks, so that the row
    # blocks of a group share the weight tiles they read in L2
    pid = tl.program_id(0)
    num_m = tl.cdiv(EM, BLOCK_SIZE_M)
    num_n = tl.cdiv(Nout, BLOCK_SIZE_N)
    width = GROUP_SIZE_M * num_n
    first_m = (pid // width) * GROUP_SIZE_M
    rows_in_group = tl.minimum(num_m - first_m, GROUP_SIZE_M)
    pid_m = first_m + (pid % width) % rows_in_group
    pid_n = (pid % width) // rows_in_group
    if pid_m * BLOCK_SIZE_M >= tl.load(npadded_ptr):
        return
    offs_m = pid_m * BLOCK_SIZE_M + tl.arange(0, BLOCK_SIZE_M)
    pairs = tl.load(sorted_ptr + offs_m)
    valid = pairs < num_valid
    rows = pairs // a_row_div
    expert = tl.load(block_expert_ptr + pid_m).to(tl.int64)
    offs_n = pid_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)
    nmask = offs_n < Nout
    offs_k = tl.arange(0, BLOCK_SIZE_K)
    a_ptrs = a_ptr + rows[:, None].to(tl.int64) * stride_am + offs_k[None, :] * stride_ak
    if SCALE == 6:
        # int4: two k a byte
        b_ptrs = b_ptr + expert * stride_be + offs_n[None, :].to(tl.int64) * stride_bn + (offs_k[:, None] // 2) * stride_bk
    else:
        b_ptrs = b_ptr + expert * stride_be + offs_n[None, :].to(tl.int64) * stride_bn + offs_k[:, None] * stride_bk
    acc = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
    for kb in range(0, tl.cdiv(K, BLOCK_SIZE_K)):
        kmask = offs_k < K - kb * BLOCK_SIZE_K
        a = tl.load(a_ptrs, mask=valid[:, None] & kmask[None, :], other=0.0)
        if SCALE == 5 or SCALE == 6:
            b = tl.load(b_ptrs, mask=kmask[:, None] & nmask[None, :], other=0)
        else:
            b = tl.load(b_ptrs, mask=kmask[:, None] & nmask[None, :], other=0.0)
        if SCALE == 4:
            b = b.to(a.dtype)
        if SCALE == 5 or SCALE == 6:
            # a scale per (output channel, K group), read for every k of the
            # tile: any BLOCK_SIZE_K works with any group
            kg = (kb * BLOCK_SIZE_K + offs_k) // group_k
            wmask = kmask[:, None] & nmask[None, :]
            sb = tl.load(b_scale_ptr + expert * stride_bse + offs_n[None, :] * stride_bsn + kg[:, None] * stride_bsk,
                         mask=wmask, other=0.0).to(tl.float32)
            if SCALE == 5:
                bf = b.to(tl.float32) - 128.0
            else:
                bf = ((b >> ((offs_k[:, None] % 2) * 4)) & 0xF).to(tl.float32)
                if HAS_ZP:
                    z = tl.load(zp_ptr + expert * stride_ze + (offs_n[None, :] // 2) * stride_zn + kg[:, None] * stride_zk,
                                mask=wmask, other=0)
                    bf = bf - ((z >> ((offs_n[None, :] % 2) * 4)) & 0xF).to(tl.float32)
                else:
                    bf = bf - 8.0
            acc = tl.dot(a, (bf * sb).to(a.dtype), acc)
        elif SCALE == 7:
            # int8 x int8: exact in int32 within a k tile
            acc += tl.dot(a, b, out_dtype=tl.int32).to(tl.float32)
        elif SCALE == 3:
            # one scale per (row, K group) and (N group, K group): applied to
            # each K step's product, so BLOCK_SIZE_K must not exceed group_k
            g = (kb * BLOCK_SIZE_K) // group_k
            sa = tl.load(a_scale_ptr + rows * stride_asm + g * stride_ask, mask=valid, other=0.0)
            sb = tl.load(b_scale_ptr + expert * stride_bse + (offs_n // group_n) * stride_bsn + g * stride_bsk,
                         mask=nmask, other=0.0)
            acc += tl.dot(a, b) * sa[:, None] * sb[None, :]
        else:
            acc = tl.dot(a, b, acc)
        a_ptrs += BLOCK_SIZE_K * stride_ak
        if SCALE == 6:
            b_ptrs += (BLOCK_SIZE_K // 2) * stride_bk
        else:
            b_ptrs += BLOCK_SIZE_K * stride_bk
    if SCALE == 1:
        acc = acc * tl.load(a_scale_ptr) * tl.load(b_scale_ptr + expert * stride_bse)
    elif SCALE == 2 or SCALE == 7:
        sa = tl.load(a_scale_ptr + rows * stride_asm, mask=valid, other=0.0)
        sb = tl.load(b_scale_ptr + expert * stride_bse + offs_n * stride_bsn, mask=nmask, other=0.0)
        acc = acc * sa[:, None] * sb[None, :]
    elif SCALE == 4:
        sb = tl.load(b_scale_ptr + expert * stride_bse + offs_n * stride_bsn, mask=nmask, other=0.0)
        acc = acc * sb[None, :]
    if MUL_WEIGHT:
        acc = acc * tl.load(weight_ptr + pairs, mask=valid, other=0.0)[:, None]
    c_ptrs = c_ptr + pairs[:, None].to(tl.int64) * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c_ptrs, acc.to(OUT_DTYPE), mask=valid[:, None] & nmask[None, :])


def align(topk_ids, bm, E):
    """Pairs sorted by expert, each expert's run padded to a multiple of bm:
    (sorted pair ids padded with the pair count, each row block's expert,
    the padded length as a tensor, the static upper bound EM)."""
    flat = topk_ids.reshape(-1).to(torch.int64)
    n = flat.numel()
    dev = flat.device
    counts = torch.zeros(E, dtype=torch.int64, device=dev).scatter_add_(0, flat, torch.ones_like(flat))
    padded = (counts + bm - 1) // bm * bm
    pend = torch.cumsum(padded, 0)
    pstart = pend - padded
    ustart = torch.cumsum(counts, 0) - counts
    order = torch.sort(flat, stable=True).indices
    sexp = flat[order]
    dest = pstart[sexp] + torch.arange(n, device=dev) - ustart[sexp]
    em = triton.cdiv(n + E * (bm - 1), bm) * bm
    sorted_ids = torch.full((em,), n, dtype=torch.int32, device=dev)
    sorted_ids[dest] = order.to(torch.int32)
    starts = torch.arange(0, em, bm, device=dev)
    block_expert = torch.searchsorted(pend, starts, right=True).clamp(max=E - 1).to(torch.int32)
    return sorted_ids, block_expert, pend[-1:].to(torch.int32), em


def _quant(a, how, group, static):
    """Activations to e4m3 with their scales, as the reference quantises."""
    a = a.float()
    if how == "tensor":
        return (a / static).clamp(-448, 448).to(FP8), static.float()
    if how == "token":
        s = a.abs().amax(dim=1, keepdim=True).clamp(min=1e-10) / 448.0
        return (a / s).clamp(-448, 448).to(FP8), s
    if how == "token_int8":
        s = a.abs().amax(dim=1, keepdim=True).clamp(min=1e-10) / 127.0
        return torch.round(a / s).clamp(-127, 127).to(torch.int8), s
    rows, cols = a.shape
    g = triton.cdiv(cols, group)
    v = torch.nn.functional.pad(a, (0, g * group - cols)).view(rows, g, group)
    s = v.abs().amax(dim=2).clamp(min=1e-10) / 448.0
    q = (v / s[:, :, None]).clamp(-448, 448).to(FP8).view(rows, g * group)[:, :cols].contiguous()
    return q, s


def _launch(a, b, c, a_s, b_s, weights, al, num_valid, row_div, config, scale, block, mul_weight, zp=None):
    sorted_ids, block_expert, npadded, em = al
    # (int4 weights hold two k a byte: K is the activations')
    Nout, K = b.shape[1], a.shape[1]
    bm, bn = config["BLOCK_SIZE_M"], config["BLOCK_SIZE_N"]
    dummy = c
    a_s = a_s if a_s is not None else dummy
    b_s = b_s if b_s is not None else dummy
    sas = (a_s.stride(0), a_s.stride(1)) if a_s.dim() >= 2 else (0, 0)
    sbs = tuple(b_s.stride(i) if b_s.dim() > i else 0 for i in range(3)) if b_s is not dummy else (0, 0, 0)
    zs = tuple(zp.stride(i) for i in range(3)) if zp is not None else (0, 0, 0)
    grid = (triton.cdiv(em, bm) * triton.cdiv(Nout, bn),)
    _gemm[grid](a, b, c, a_s, b_s, zp if zp is not None else dummy, weights, sorted_ids, block_expert, npadded, Nout, K,
                em, num_valid, row_div,
                a.stride(0), a.stride(1), b.stride(0), b.stride(1), b.stride(2), c.stride(0), c.stride(1),
                sas[0], sas[1], sbs[0], sbs[1], sbs[2], zs[0], zs[1], zs[2],
                group_n=block[0] if block else 1, group_k=block[1] if block else 1,
                BLOCK_SIZE_M=bm, BLOCK_SIZE_N=bn, BLOCK_SIZE_K=config["BLOCK_SIZE_K"],
                GROUP_SIZE_M=config["GROUP_SIZE_M"], SCALE=scale, HAS_ZP=zp is not None, MUL_WEIGHT=mul_weight,
                OUT_DTYPE=_OUT[c.dtype], num_warps=config["num_warps"], num_stages=config["num_stages"])


def fused(x, w1, w2, topk_weights, topk_ids, *, config, fp8=False, int8_w8a8=False, int8_w8a16=False,
          per_channel=False, w1_scale=None, w2_scale=None, a1_scale=None, a2_scale=None, block_shape=None,
          int4_w4a16=False, w1_zp=None, w2_zp=None, down_config=None):
    """down_config: the down GEMM's own (SGLang's _down files; BLOCK_SIZE_M
    the gate-up config's, one alignment for both); None: config for both"""
    M, K = x.shape
    E, N2, _ = w1.shape
    N = N2 // 2
    topk = topk_ids.shape[1]
    n = M * topk
    al = align(topk_ids, config["BLOCK_SIZE_M"], E)
    weights = topk_weights.reshape(-1).float().contiguous()
    block = tuple(block_shape) if block_shape else None
    how = None
    if fp8:
        how = "group" if block else "token" if per_channel else "tensor"
    elif int8_w8a8:
        how = "token_int8"
    scale = {None: NONE, "tensor": TENSOR, "token": ROW_CHANNEL, "group": BLOCK, "token_int8": INT8_ROW_CHANNEL}[how]
    if int8_w8a16:
        scale = INT8_GROUP if block else WEIGHT_CHANNEL
    if int4_w4a16:
        scale = INT4_GROUP
    if scale in (INT8_GROUP, INT4_GROUP) and (w1.dtype != torch.uint8 or not block or block[0] != 0):
        raise TypeError("weight-only groups need uint8 weights and block_shape [0, group]")
    # the weight-only groups' block_shape [0, group] is no fp8 block
    per_row = (ROW_CHANNEL, WEIGHT_CHANNEL, INT8_ROW_CHANNEL)
    s1 = w1_scale.reshape(E, -1) if scale in per_row else w1_scale
    s2 = w2_scale.reshape(E, -1) if scale in per_row else w2_scale
    if how:
        a1, as1 = _quant(x, how, block[1] if block else 0, a1_scale)
    else:
        a1, as1 = x, None
    h = torch.empty(n, N2, dtype=x.dtype, device=x.device)
    _launch(a1, w1, h, as1, s1, weights, al, n, topk, config, scale, block, False, w1_zp)
    g = (torch.nn.functional.silu(h[:, :N].float()) * h[:, N:].float()).to(x.dtype)
    if how:
        a2, as2 = _quant(g, how, block[1] if block else 0, a2_scale)
    else:
        a2, as2 = g, None
    y = torch.empty(n, w2.shape[1], dtype=x.dtype, device=x.device)
    _launch(a2, w2, y, as2, s2, weights, al, n, 1, down_config or config, scale, block, True, w2_zp)
    return y.view(M, topk, -1).sum(dim=1)
