"""moetune's reference for the fused-MoE layer, in float64.

For token t routed to experts e_j with weights w_j:
    out[t] = sum_j w_j * W2[e_j] @ act(W1[e_j] @ x[t])
where W1 is (2N, K) with the gate rows first, act(h) = silu(h[:N]) * h[N:]
(vLLM's and SGLang's silu_and_mul), W2 is (K, N). The weights are the
dequantised values the kernel reads; the activations are quantised as the
engine quantises them (quant.quantize_act), and the intermediate is rounded
to the compute dtype where the engines store it (after the first GEMM and
after the activation), so that the comparison measures the kernel and not
the scheme.
"""

import torch

from . import quant


def _round_to(x, dtype):
    return x.to(dtype).double() if dtype != torch.float64 else x


def _quant(p, a, static):
    """a quantised as the engine quantises a GEMM's input (unchanged where
    the scheme leaves activations alone)"""
    sch = p.scheme
    if sch.act == "tensor":
        return quant.quantize_act(a, "tensor", static_scale=static)
    if sch.act == "token":
        return quant.quantize_act(a, "token", qmax=sch.act_qmax)
    if sch.act == "group":
        return quant.quantize_act(a, "group", group=sch.block[1])
    return a


def _intermediate(p, xq, e):
    """act(W1[e] @ x) for the rows of xq, rounded where the engines store it"""
    N = p.N
    h = _round_to(xq @ p.w1_ref(e).t(), p.compute_dtype)
    return _round_to(torch.nn.functional.silu(h[:, :N]) * h[:, N:], p.compute_dtype)


def moe_rows(problem, rows):
    """The reference output of the given token rows, float64 (len(rows), K)."""
    p = problem
    x = p.x[rows].double()
    ids = p.topk_ids[rows].long()
    wts = p.topk_weights[rows].double()
    xq = _quant(p, x, p.a1_scale)
    out = torch.zeros(len(rows), p.K, dtype=torch.float64, device=x.device)
    # each expert's weights dequantised once, for all the (row, slot) pairs
    # routed to it
    for e in torch.unique(ids).tolist():
        r, j = (ids == e).nonzero(as_tuple=True)
        g = _quant(p, _intermediate(p, xq[r], e), p.a2_scale)
        out.index_add_(0, r, wts[r, j].unsqueeze(1) * (g @ p.w2_ref(e).t()))
    return out


def intermediate_amax(problem, rows):
    """The largest magnitude of the second GEMM's input over the given rows,
    for a static per-tensor activation scale."""
    p = problem
    x = p.x[rows].double()
    ids = p.topk_ids[rows].long()
    xq = _quant(p, x, p.a1_scale)
    amax = torch.zeros((), dtype=torch.float64, device=x.device)
    for e in torch.unique(ids).tolist():
        sel = (ids == e).any(dim=1).nonzero().flatten()
        amax = torch.maximum(amax, _intermediate(p, xq[sel], e).abs().max())
    return amax
