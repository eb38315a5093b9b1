"""Quantisation as the engines' fused-MoE kernels take it.

Weights are quantised here once per problem, the way checkpoints store them
(fp8 e4m3 with a scale per tensor, per output channel or per 128x128 block;
int8 with a scale per output channel, or per group along K as GPTQ stores
it; int4 in groups along K, symmetric as GPTQ stores it or with a zero point
per group as AWQ does). Activations are quantised by the
engine inside its call; the reference (reference.py) quantises them the same
way with the functions below, so that what is compared differs only by
accumulation order and rounding-boundary cases.

e4m3 rounding is written out (round to nearest even on the e4m3fn grid,
saturating at 448) so that it runs with any torch, including one without a
float8 dtype; where torch has float8_e4m3fn, the tensors handed to the
engine are of that dtype and the two roundings agree bit for bit
(bench/engine_check.py checks it on the GPU).
"""

import torch

E4M3_MAX = 448.0
INT8_MAX = 127.0
# the smallest scale the engines allow (vLLM's per-token-group quantiser
# clamps the group's absolute maximum at 1e-10)
EPS = 1e-10


def fp8_dtype():
    """torch's e4m3fn dtype, or None where torch has no float8 types."""
    return getattr(torch, "float8_e4m3fn", None)


def e4m3_round(x):
    """Round float values onto the e4m3fn grid (nearest, ties to even),
    saturating at +-448. Returns a float32 tensor of representable values."""
    x = x.float().clamp(-E4M3_MAX, E4M3_MAX)
    _, e = torch.frexp(x)
    # x = m * 2**e with m in [0.5, 1): 3 mantissa bits below the leading one
    # give a step of 2**(e - 4); below the smallest normal (2**-6) the step
    # is the subnormals' 2**-9
    step = torch.pow(2.0, (e - 4).clamp(min=-9).float())
    return torch.round(x / step) * step


def int8_round(x):
    return torch.round(x.float()).clamp(-INT8_MAX, INT8_MAX)


def _scale(amax, qmax):
    return amax.float().clamp(min=EPS) / qmax


def quantize_weight(w, scheme, block):
    """w: (E, rows, cols) float. Returns (q, scale, zero) with q's values on
    the grid (float32) and scale shaped as vLLM's and SGLang's kernels take
    it: per tensor (E,), per channel (E, rows, 1), blocks (E, ceil(rows/bn),
    ceil(cols/bk)); int8 weight-only per channel (E, rows); int4 and int8
    per group (E, rows, cols/group). zero: the int4 zero points (E, rows, cols/group)
    for int4_group_zp, None for the symmetric schemes."""
    E, rows, cols = w.shape
    if scheme == "fp8_tensor":
        s = _scale(w.abs().amax(dim=(1, 2)), E4M3_MAX)
        return e4m3_round(w / s[:, None, None]), s, None
    if scheme == "fp8_channel":
        s = _scale(w.abs().amax(dim=2, keepdim=True), E4M3_MAX)
        return e4m3_round(w / s), s, None
    if scheme == "fp8_block":
        bn, bk = block
        nb, kb = -(-rows // bn), -(-cols // bk)
        pad = torch.zeros(E, nb * bn, kb * bk, dtype=torch.float32, device=w.device)
        pad[:, :rows, :cols] = w.float()
        blocks = pad.view(E, nb, bn, kb, bk)
        s = _scale(blocks.abs().amax(dim=(2, 4)), E4M3_MAX)
        q = e4m3_round(blocks / s[:, :, None, :, None]).view(E, nb * bn, kb * bk)[:, :rows, :cols]
        return q.contiguous(), s, None
    if scheme in ("int8_channel", "int8_w8a8"):
        s = _scale(w.abs().amax(dim=2), INT8_MAX)
        return int8_round(w / s[:, :, None]), s, None
    if scheme == "int8_group":
        # GPTQ's 8-bit groups: a scale per (row, group of bk columns)
        g = block[1]
        if cols % g:
            raise ValueError("int8_w8a16 in groups needs K and N divisible by the group size %d" % g)
        v = w.float().view(E, rows, cols // g, g)
        s = _scale(v.abs().amax(dim=3), INT8_MAX)
        return int8_round(v / s[..., None]).view(E, rows, cols), s, None
    if scheme in ("int4_group", "int4_group_zp"):
        g = block[1]
        if cols % g or cols % 2 or rows % 2:
            raise ValueError("int4_w4a16 needs K and N divisible by the group size %d" % g)
        v = w.float().view(E, rows, cols // g, g)
        if scheme == "int4_group":
            # GPTQ's symmetric scheme: a scale per (row, group of bk
            # columns), values -8..7 (stored with 8 added, 0..15)
            s = _scale(v.abs().amax(dim=3), 7.0)
            q = torch.round(v / s[..., None]).clamp(-8, 7).view(E, rows, cols)
            return q, s, None
        # AWQ's asymmetric scheme: the group's range [lo, hi] over the 16
        # codes, and the code that stands for 0 (its zero point, 0..15);
        # w = (q - zero) * scale with q in 0..15
        lo, hi = v.amin(dim=3), v.amax(dim=3)
        s = _scale(hi - lo, 15.0)
        z = torch.round(-lo / s).clamp(0, 15)
        q = (torch.round(v / s[..., None]) + z[..., None]).clamp(0, 15).view(E, rows, cols)
        return q, s, z
    raise ValueError("no weight quantisation '%s'" % scheme)


def pack_int4(q, zero_point=8):
    """(E, rows, cols) int4 values as the engines' int4_w4a16 kernels read
    them: two per byte along cols, the even column in the low nibble.
    Symmetric values (-8..7) are stored with 8 added; with zero points
    (zero_point=0) the values are the codes 0..15 themselves. Returns uint8
    (E, rows, cols // 2)."""
    u = (q + zero_point).to(torch.uint8)
    return (u[..., 0::2] | (u[..., 1::2] << 4)).contiguous()


def pack_zero_points(z):
    """(E, rows, groups) zero points 0..15 as vLLM's and SGLang's
    fused_moe_kernel_gptq_awq read them (w1_zp, w2_zp): two per byte along
    rows (the weights' output dimension), the even row in the low nibble.
    Returns uint8 (E, rows // 2, groups)."""
    u = z.to(torch.uint8)
    return (u[:, 0::2] | (u[:, 1::2] << 4)).contiguous()


def dequantize_weight(q, s, scheme, block, zero=None):
    """The float64 weights that q and s (and the zero points) stand for."""
    q = q.double()
    s = s.double()
    if scheme == "int4_group_zp":
        z = zero.double().repeat_interleave(block[1], dim=2)[:, :, : q.shape[2]]
        return (q - z) * s.repeat_interleave(block[1], dim=2)[:, :, : q.shape[2]]
    if scheme == "fp8_tensor":
        return q * s[:, None, None]
    if scheme == "fp8_channel":
        return q * s
    if scheme == "fp8_block":
        bn, bk = block
        full = s.repeat_interleave(bn, dim=1).repeat_interleave(bk, dim=2)
        return q * full[:, : q.shape[1], : q.shape[2]]
    if scheme in ("int8_channel", "int8_w8a8"):
        return q * s[:, :, None]
    if scheme in ("int4_group", "int8_group"):
        return q * s.repeat_interleave(block[1], dim=2)[:, :, : q.shape[2]]
    raise ValueError("no weight quantisation '%s'" % scheme)


def quantize_act(a, how, group=0, static_scale=None, qmax=E4M3_MAX):
    """Activations (rows, cols) as the engine quantises them before a GEMM:
    'tensor' (one scale: static_scale, or the tensor's own), 'token' (one
    per row), 'group' (one per row and `group` columns, DeepSeek-V3's 1x128).
    Returns the dequantised float64 values the kernel multiplies with."""
    # in float32, as the engines' quantisers divide
    rnd = e4m3_round if qmax == E4M3_MAX else int8_round
    a = a.float()
    if how == "tensor":
        s = static_scale.float() if static_scale is not None else _scale(a.abs().amax(), qmax)
        return rnd(a / s).double() * s.double()
    if how == "token":
        s = _scale(a.abs().amax(dim=1, keepdim=True), qmax)
        return rnd(a / s).double() * s.double()
    if how == "group":
        rows, cols = a.shape
        g = -(-cols // group)
        pad = torch.zeros(rows, g * group, dtype=torch.float32, device=a.device)
        pad[:, :cols] = a
        v = pad.view(rows, g, group)
        s = _scale(v.abs().amax(dim=2, keepdim=True), qmax)
        return (rnd(v / s).double() * s.double()).view(rows, g * group)[:, :cols]
    raise ValueError("no activation quantisation '%s'" % how)
