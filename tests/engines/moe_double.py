"""The arithmetic the engines' Triton fused-MoE kernels do, on the CPU, for
the engine doubles. Independent of moetune's reference on purpose: its e4m3
rounding looks values up in the format's table instead of computing them."""

import contextlib
import json
import os
import signal

import torch

_config = {"value": None}
SMEM_LIMIT = 232448  # Hopper's opt-in shared memory per block


class OutOfResources(Exception):
    """Named as Triton's (triton.runtime.errors.OutOfResources)."""

    def __init__(self, required, limit, name):
        super().__init__("out of resource: %s, Required: %d, Hardware limit: %d" % (name, required, limit))


@contextlib.contextmanager
def override_config(config):
    old = _config["value"]
    _config["value"] = config
    try:
        yield
    finally:
        _config["value"] = old


def _table():
    vals = set()
    for b in range(128):
        e, m = b >> 3, b & 7
        if e == 15 and m == 7:
            continue
        v = (m / 8) * 2.0**-6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
        vals.add(v)
        vals.add(-v)
    return torch.tensor(sorted(vals), dtype=torch.float64)


_E4M3 = _table()


def to_e4m3(x):
    if hasattr(torch, "float8_e4m3fn"):
        return x.float().clamp(-448, 448).to(torch.float8_e4m3fn).float()
    x = x.double().clamp(-448, 448)
    i = torch.bucketize(x, _E4M3).clamp(1, len(_E4M3) - 1)
    lo, hi = _E4M3[i - 1], _E4M3[i]
    dlo, dhi = x - lo, hi - x
    # ties to the even code: the one whose mantissa's last bit is 0
    pick_hi = (dhi < dlo) | ((dhi == dlo) & (_even(hi)))
    return torch.where(pick_hi, hi, lo).float()


def _even(v):
    m, e = torch.frexp(v.abs())
    # v = m * 2**e, m in [0.5, 1): the 3-bit mantissa is (2m - 1) * 8 for normals
    code = torch.where(v.abs() < 2.0**-6, v.abs() / 2.0**-9, (2 * m - 1) * 8)
    return (code.round().long() % 2) == 0


def _quant_act(a, how, group, static, qmax):
    rnd = to_e4m3 if qmax == 448.0 else (lambda v: torch.round(v).clamp(-127, 127))
    a = a.float()
    if how == "tensor":
        s = static.float().reshape(()) if static is not None else a.abs().max().clamp(min=1e-10) / qmax
        return rnd(a / s) * s
    if how == "token":
        s = a.abs().amax(dim=1, keepdim=True).clamp(min=1e-10) / qmax
        return rnd(a / s) * s
    rows, cols = a.shape
    out = torch.empty_like(a)
    for g0 in range(0, cols, group):
        v = a[:, g0 : g0 + group]
        s = v.abs().amax(dim=1, keepdim=True).clamp(min=1e-10) / qmax
        out[:, g0 : g0 + group] = rnd(v / s) * s
    return out


def _dequant_w(w, scale, kind, block):
    w = w.float()
    if kind is None:
        return w
    E, rows, cols = w.shape
    if kind == "tensor":
        return w * scale.float().reshape(E, 1, 1)
    if kind == "channel":
        return w * scale.float().reshape(E, rows, 1)
    bn, bk = block
    s = scale.float().repeat_interleave(bn, dim=1).repeat_interleave(bk, dim=2)[:, :rows, :cols]
    return w * s


def _check_config(config, elem_bytes, wrong_env="MOETUNE_DOUBLE_WRONG"):
    if config is None:
        raise RuntimeError("the double runs only under override_config")
    for k in ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M", "num_warps", "num_stages"):
        if k not in config:
            raise KeyError(k)
    smem = config["num_stages"] * (config["BLOCK_SIZE_M"] + config["BLOCK_SIZE_N"]) * config["BLOCK_SIZE_K"] * elem_bytes
    if smem > SMEM_LIMIT:
        raise OutOfResources(smem, SMEM_LIMIT, "shared memory")
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    crash = os.environ.get("MOETUNE_DOUBLE_CRASH")
    if crash and crash in text:
        os.kill(os.getpid(), signal.SIGSEGV)
    wrong = os.environ.get(wrong_env)
    return bool(wrong and wrong in text)


def _gemm(a, w, bk):
    """a (rows, K) @ w (cols, K).T accumulated in BLOCK_SIZE_K chunks in float32."""
    acc = torch.zeros(a.shape[0], w.shape[0], dtype=torch.float32)
    for k0 in range(0, a.shape[1], bk):
        acc += a[:, k0 : k0 + bk] @ w[:, k0 : k0 + bk].t()
    return acc


_plugged = {}


def _plugged_kernel():
    """MOETUNE_DOUBLE_KERNEL=FILE.py:FUNCTION: a real kernel behind the
    double's entry point (bench/triton_moe.py on a GPU machine)."""
    spec = os.environ.get("MOETUNE_DOUBLE_KERNEL")
    if not spec:
        return None
    if spec not in _plugged:
        import importlib.util

        path, _, fn = spec.rpartition(":")
        mod_spec = importlib.util.spec_from_file_location("moetune_plugged_kernel", path)
        mod = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(mod)
        _plugged[spec] = getattr(mod, fn)
    return _plugged[spec]


def _unpack_int4(w, scale, group, zp=None):
    """uint8 (E, rows, cols/2), two codes per byte (even column low); scale
    (E, rows, cols/group); zp None (the zero point is 8) or uint8
    (E, rows/2, cols/group), two per byte along rows (even row low), as the
    engines' gptq_awq kernel reads them."""
    if zp is not None and (zp.dtype != torch.uint8 or zp.dim() != 3 or zp.shape[0] != w.shape[0]
                           or 2 * zp.shape[1] != w.shape[1] or zp.shape[2] != scale.shape[2]):
        raise ValueError("zero points %s %s do not fit weights %s" % (zp.dtype, tuple(zp.shape), tuple(w.shape)))
    codes = torch.stack([(w & 0xF).float(), (w >> 4).float()], dim=-1).reshape(w.shape[0], w.shape[1], 2 * w.shape[2])
    if zp is None:
        z = torch.full_like(scale.float(), 8.0)
    else:
        z = torch.stack([(zp & 0xF).float(), (zp >> 4).float()], dim=2).reshape(scale.shape)
    rep = lambda t: t.float().repeat_interleave(group, dim=2)[:, :, : codes.shape[2]]  # noqa: E731
    return (codes - rep(z)) * rep(scale)


def _int8_groups(w, scale, group):
    """uint8 (E, rows, cols), each value with 128 added (GPTQ's 8-bit
    groups, as the engines' gptq_awq kernel reads them); scale (E, rows,
    cols/group)."""
    return (w.float() - 128) * scale.float().repeat_interleave(group, dim=2)[:, :, : w.shape[2]]


def fused(x, w1, w2, topk_weights, topk_ids, *, fp8=False, int8_w8a8=False, int8_w8a16=False, per_channel=False,
          w1_scale=None, w2_scale=None, a1_scale=None, a2_scale=None, block_shape=None, int4_w4a16=False,
          w1_zp=None, w2_zp=None, config=None, down_config=None, clamp_k=False):
    """config: the gate-up GEMM's (None: override_config's); down_config:
    the down GEMM's where the engine resolves one of its own (SGLang's
    _down files; None: the gate-up config for both); clamp_k: vLLM's
    invoke_fused_moe_kernel runs its w8a8 kernel with a block shape at
    BLOCK_SIZE_K = min(BLOCK_SIZE_K, min(block_shape)), so a config's 256
    over 128-wide scale blocks is the 128 kernel there (SGLang does not)"""
    if config is None:
        config = _config["value"]
    if clamp_k and (fp8 or int8_w8a8) and block_shape is not None and min(block_shape) > 0:
        def lower(c):
            return dict(c, BLOCK_SIZE_K=min(c["BLOCK_SIZE_K"], min(block_shape))) if c is not None else None
        config, down_config = lower(config), lower(down_config)
    impl = _plugged_kernel()
    if impl is not None:
        if config is None:
            raise RuntimeError("the double runs only under override_config")
        return impl(x, w1, w2, topk_weights, topk_ids, config=config, fp8=fp8, int8_w8a8=int8_w8a8,
                    int8_w8a16=int8_w8a16, per_channel=per_channel, w1_scale=w1_scale, w2_scale=w2_scale,
                    a1_scale=a1_scale, a2_scale=a2_scale, block_shape=block_shape, int4_w4a16=int4_w4a16,
                    w1_zp=w1_zp, w2_zp=w2_zp, down_config=down_config)
    quant = fp8 or int8_w8a8
    wrong = _check_config(config, 1 if quant else x.element_size())
    if down_config is not None:
        wrong = _check_config(down_config, 1 if quant else x.element_size(), "MOETUNE_DOUBLE_WRONG_DOWN") or wrong
    packed = 2 if int4_w4a16 else 1
    if x.dim() != 2 or w1.dim() != 3 or w2.dim() != 3 or w1.shape[2] * packed != x.shape[1] or w2.shape[1] != x.shape[1]:
        raise ValueError("shape mismatch: x %s, w1 %s, w2 %s" % (tuple(x.shape), tuple(w1.shape), tuple(w2.shape)))
    if fp8 and not (w1.dtype == getattr(torch, "float8_e4m3fn", torch.float32)):
        raise TypeError("fp8_w8a8 needs float8_e4m3fn weights, got %s" % w1.dtype)
    if (w1_zp is not None or w2_zp is not None) and not (int4_w4a16 and w1_zp is not None and w2_zp is not None):
        raise TypeError("zero points are taken with int4_w4a16, for both GEMMs")
    if int4_w4a16 and (w1.dtype != torch.uint8 or not block_shape or block_shape[0] != 0):
        raise TypeError("int4_w4a16 needs packed uint8 weights and block_shape [0, group]")
    int8_groups = int8_w8a16 and block_shape is not None
    if int8_groups and (w1.dtype != torch.uint8 or block_shape[0] != 0 or w1_scale.dim() != 3):
        raise TypeError("int8_w8a16 with a block shape needs uint8 weights (128 added), block_shape [0, group] and "
                        "a scale per group")
    if int8_w8a16 and not int8_groups and w1.dtype != torch.int8:
        raise TypeError("int8_w8a16 per channel needs int8 weights, got %s" % w1.dtype)
    for c in (config, down_config or config):
        if block_shape is not None and block_shape[0] > 0 and c["BLOCK_SIZE_K"] > block_shape[1]:
            raise ValueError("BLOCK_SIZE_K %d does not fit the block shape %s" % (c["BLOCK_SIZE_K"], block_shape))
    wkind = None
    if fp8:
        wkind = "block" if block_shape else "channel" if per_channel else "tensor"
    elif int8_w8a8 or int8_w8a16:
        wkind = "channel"
    how = None
    if fp8:
        how = "group" if block_shape else "token" if per_channel else "tensor"
    elif int8_w8a8:
        how = "token"
    qmax = 127.0 if int8_w8a8 else 448.0
    if int4_w4a16:
        W1 = _unpack_int4(w1, w1_scale, block_shape[1], w1_zp)
        W2 = _unpack_int4(w2, w2_scale, block_shape[1], w2_zp)
    elif int8_groups:
        W1 = _int8_groups(w1, w1_scale, block_shape[1])
        W2 = _int8_groups(w2, w2_scale, block_shape[1])
    else:
        W1 = _dequant_w(w1, w1_scale, wkind, block_shape)
        W2 = _dequant_w(w2, w2_scale, wkind, block_shape)
    out_dtype = x.dtype if not quant or x.dtype != torch.float32 else torch.bfloat16
    cdt = x.dtype
    N = W2.shape[2]
    bk = config["BLOCK_SIZE_K"]
    M, topk = topk_ids.shape
    xa = _quant_act(x, how, block_shape[1] if block_shape else 0, a1_scale, qmax) if how else x.float()
    h = torch.empty(M, topk, 2 * N, dtype=cdt)
    ids = topk_ids.long()
    for e in torch.unique(ids).tolist():
        sel = (ids == e).nonzero()
        h[sel[:, 0], sel[:, 1]] = _gemm(xa[sel[:, 0]], W1[e], bk).to(cdt)
    g = (torch.nn.functional.silu(h[..., :N].float()) * h[..., N:].float()).to(cdt).view(M * topk, N)
    ga = _quant_act(g, how, block_shape[1] if block_shape else 0, a2_scale, qmax) if how else g.float()
    y = torch.empty(M, topk, W2.shape[1], dtype=cdt)
    flat = ids.view(-1)
    for e in torch.unique(flat).tolist():
        r = (flat == e).nonzero().flatten()
        y.view(M * topk, -1)[r] = _gemm(ga[r], W2[e], (down_config or config)["BLOCK_SIZE_K"]).to(cdt)
    out = (y.float() * topk_weights.float().unsqueeze(-1)).sum(dim=1).to(out_dtype)
    if wrong:
        out = out * 1.5
    return out
