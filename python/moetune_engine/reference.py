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


def moe_rows(problem, rows):
    """The reference output of the given token rows, float64 (len(rows), K)."""
    p = problem
    x = p.x[rows].double()
    ids = p.topk_ids[rows].long()
    wts = p.topk_weights[rows].double()
    sch = p.scheme
    if sch.act == "tensor":
        xq = quant.quantize_act(x, "tensor", static_scale=p.a1_scale)
    elif sch.act == "token":
        xq = quant.quantize_act(x, "token", qmax=sch.act_qmax)
    elif sch.act == "group":
        xq = quant.quantize_act(x, "group", group=sch.block[1])
    else:
        xq = x
    out = torch.zeros(len(rows), p.K, dtype=torch.float64, device=x.device)
    N = p.N
    for j in range(ids.shape[1]):
        for e in torch.unique(ids[:, j]).tolist():
            sel = (ids[:, j] == e).nonzero().flatten()
            w1 = p.w1_ref(e)
            w2 = p.w2_ref(e)
            h = _round_to(xq[sel] @ w1.t(), p.compute_dtype)
            g = _round_to(torch.nn.functional.silu(h[:, :N]) * h[:, N:], p.compute_dtype)
            if sch.act == "tensor":
                g = quant.quantize_act(g, "tensor", static_scale=p.a2_scale)
            elif sch.act == "token":
                g = quant.quantize_act(g, "token", qmax=sch.act_qmax)
            elif sch.act == "group":
                g = quant.quantize_act(g, "group", group=sch.block[1])
            out[sel] += wts[sel, j : j + 1] * (g @ w2.t())
    return out


def intermediate_amax(problem, rows):
    """The largest magnitude of the second GEMM's input over the given rows,
    for a static per-tensor activation scale."""
    p = problem
    x = p.x[rows].double()
    ids = p.topk_ids[rows].long()
    xq = quant.quantize_act(x, "tensor", static_scale=p.a1_scale) if p.a1_scale is not None else x
    amax = torch.zeros((), dtype=torch.float64, device=x.device)
    N = p.N
    for e in torch.unique(ids).tolist():
        sel = (ids == e).any(dim=1).nonzero().flatten()
        h = _round_to(xq[sel] @ p.w1_ref(e).t(), p.compute_dtype)
        g = _round_to(torch.nn.functional.silu(h[:, :N]) * h[:, N:], p.compute_dtype)
        amax = torch.maximum(amax, g.abs().max())
    return amax
