"""Adapters: one per engine, each calling the fused-MoE Triton kernel of the
user's own installation through its public entry point, with a config forced
by the engine's own override_config.

Each adapter follows the engine's public source at the versions it names,
and finds the calling convention of the installed version by the entry
point's parameters, so that a version it does not know is refused with a
message that names it rather than called wrongly.

  vLLM  0.6.4 and later: vllm.model_executor.layers.fused_moe.fused_experts
        (hidden_states, w1, w2, topk_weights, topk_ids, inplace, ...) with the
        quantisation as keyword flags (use_fp8_w8a8=..., w1_scale=...,
        block_shape=..., through 0.10) or as a FusedMoEQuantConfig
        (quant_config=..., from 0.11); override_config from the same package.
  SGLang 0.4.4 and later: sglang.srt.layers.moe.fused_moe_triton.fused_moe
        .fused_experts, taking (topk_weights, topk_ids, inplace, ...) through
        0.4.x, or (topk_output, moe_runner_config, ...) from 0.5, with keyword
        flags; override_config from sglang.srt.layers.moe.fused_moe_triton.
"""

import contextlib
import importlib
import inspect
import os
import re
import sys


class EngineError(Exception):
    """The engine cannot be used: missing, too old, or an entry point of a
    shape this adapter does not know. The message says what to do."""


def _version_tuple(v):
    nums = re.findall(r"\d+", v.split("+")[0])[:3]
    return tuple(int(n) for n in nums) + (0,) * (3 - len(nums))


def _import(name, engine, version, what):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise EngineError(
            "%s %s is installed but has no %s (%s): moetune's %s adapter supports %s"
            % (engine, version, name, e, engine, SUPPORTED[engine])
        )


SUPPORTED = {"vllm": "vLLM 0.6.4 and later", "sglang": "SGLang 0.4.4 and later"}
MINIMUM = {"vllm": (0, 6, 4), "sglang": (0, 4, 4)}
PIP_NAME = {"vllm": "vllm", "sglang": "sglang"}


def _probe_version(engine):
    try:
        mod = importlib.import_module(engine)
    except ImportError as e:
        raise EngineError(
            "%s is not installed in the Python moetune runs (%s): install it there, or point MOETUNE_PYTHON "
            "at the Python of the environment that has it (%s)" % (engine, e, SUPPORTED[engine])
        )
    version = str(getattr(mod, "__version__", "") or "unknown")
    if version == "unknown" or _version_tuple(version) < MINIMUM[engine]:
        raise EngineError(
            "%s %s found: moetune's %s adapter supports %s; upgrade %s"
            % (engine, version, engine, SUPPORTED[engine], PIP_NAME[engine])
        )
    return version


def _params(fn):
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}


def _kwargs_for(params, engine, version, flags):
    """The keyword flags the installed entry point takes; a flag the scheme
    needs that it lacks is an error naming the version."""
    out = {}
    for k, v in flags.items():
        if k in params:
            out[k] = v
        elif v is not None and v is not False:  # (a tensor has no truth value)
            raise EngineError("%s %s's fused_experts has no '%s': this dtype needs a newer %s" % (engine, version, k, engine))
    return out


class Adapter:
    name = ""
    # SGLang's down GEMM with a config of its own (its _down files)
    down_gemm = False
    # the folders the engine reads vLLM-named config files from, in its
    # order (the sweep proposes the config in use first)
    config_dirs = ()

    def __init__(self):
        self.version = _probe_version(self.name)
        try:
            import triton  # noqa: F401

            self.triton_version = str(getattr(triton, "__version__", "unknown"))
        except ImportError:
            self.triton_version = "none"

    def describe(self):
        return {"engine": self.name, "engine_version": self.version, "triton_version": self.triton_version,
                "api": self.api, "supports": SUPPORTED[self.name], "down_gemm": self.down_gemm,
                "config_dirs": list(self.config_dirs)}

    def _entry(self, fn_module, cfg_module):
        """fused_experts from fn_module, override_config from cfg_module,
        and the entry point's parameters"""
        fm = _import(fn_module, self.name, self.version, "fused-MoE module")
        pkg = _import(cfg_module, self.name, self.version, "fused-MoE package")
        self.fused_experts = getattr(fm, "fused_experts", None)
        self.override_config = getattr(pkg, "override_config", None)
        if self.fused_experts is None or self.override_config is None:
            raise EngineError(
                "%s %s: %s has no fused_experts or %s no override_config; moetune's %s adapter supports %s"
                % (self.name, self.version, fn_module, cfg_module, self.name, SUPPORTED[self.name])
            )
        self.params = _params(self.fused_experts)

    def _unknown_api(self, a, b):
        return EngineError(
            "%s %s: fused_experts takes neither %s nor %s (%s): this version is not supported by moetune's %s "
            "adapter (%s)" % (self.name, self.version, a, b, ", ".join(self.params), self.name, SUPPORTED[self.name])
        )

    def _flag_kwargs(self, p):
        """the quantisation as the engines' keyword flags: those the
        installed entry point takes"""
        s = p.scheme
        flags = {
            "use_fp8_w8a8": s.dtype == "fp8_w8a8",
            "use_int8_w8a8": s.dtype == "int8_w8a8",
            "use_int8_w8a16": s.dtype == "int8_w8a16",
            "use_int4_w4a16": s.dtype == "int4_w4a16",
            "per_channel_quant": s.act == "token",
            "w1_scale": p.w1_scale,
            "w2_scale": p.w2_scale,
            # int4 with zero points (AWQ): the kernel's has_zp path
            "w1_zp": p.w1_zp,
            "w2_zp": p.w2_zp,
            "a1_scale": p.a1_scale,
            "a2_scale": p.a2_scale,
            "block_shape": list(s.block) if s.block else None,
        }
        return _kwargs_for(self.params, self.name, self.version, flags)

    def kernel_id(self):
        # what the stored rows are keyed by: a new engine or Triton version is a new kernel
        return "%s %s, triton %s, %s" % (self.name, self.version, self.triton_version, self.api)


class VllmAdapter(Adapter):
    name = "vllm"

    def __init__(self):
        super().__init__()
        pkg = "vllm.model_executor.layers.fused_moe"
        self._entry(pkg, pkg)
        if "quant_config" in self.params:
            self.api = "quant_config"
            self.config_mod = _import("vllm.model_executor.layers.fused_moe.config", "vllm", self.version, "config")
        elif "use_fp8_w8a8" in self.params:
            self.api = "flags"
        else:
            raise self._unknown_api("quant_config", "use_fp8_w8a8")
        # where vLLM's get_moe_configs looks: VLLM_TUNED_CONFIG_FOLDER, then
        # configs/ beside its fused-MoE module
        fm = sys.modules.get(pkg)
        own = os.path.join(os.path.dirname(os.path.realpath(fm.__file__)), "configs") if getattr(fm, "__file__", None) else ""
        self.config_dirs = tuple(d for d in (os.environ.get("VLLM_TUNED_CONFIG_FOLDER", ""), own) if d)

    def _quant_config(self, p):
        s = p.scheme
        cm = self.config_mod
        if s.dtype in ("bf16", "fp16", "fp32"):
            return getattr(cm, "FUSED_MOE_UNQUANTIZED_CONFIG", None) or cm.FusedMoEQuantConfig.make()
        make = cm.FusedMoEQuantConfig.make
        if s.dtype == "fp8_w8a8":
            # (a torch without float8 has only the name, for the test doubles)
            fp8 = p.fp8_dtype if p.fp8_dtype is not None else "float8_e4m3fn"
            return make(quant_dtype=fp8, per_act_token_quant=s.act == "token",
                        per_out_ch_quant=s.weight == "fp8_channel", block_shape=list(s.block) if s.block else None,
                        w1_scale=p.w1_scale, w2_scale=p.w2_scale, a1_scale=p.a1_scale, a2_scale=p.a2_scale)
        if s.dtype == "int8_w8a8":
            return make(quant_dtype=p.torch.int8, per_act_token_quant=True, w1_scale=p.w1_scale,
                        w2_scale=p.w2_scale)
        if s.dtype == "int8_w8a16":
            # per channel, or GPTQ's groups with block_shape [0, group]
            return make(quant_dtype=None, weight_dtype=p.torch.int8, block_shape=list(s.block) if s.block else None,
                        w1_scale=p.w1_scale, w2_scale=p.w2_scale)
        if s.dtype == "int4_w4a16":
            # block_shape [0, group]; GPTQ's symmetric int4 has no
            # zero-point tensor (the kernel takes 8), AWQ's has w1_zp, w2_zp
            zp = _kwargs_for(_params(make), self.name, self.version, {"w1_zp": p.w1_zp, "w2_zp": p.w2_zp})
            return make(quant_dtype=None, weight_dtype="int4", block_shape=list(s.block), w1_scale=p.w1_scale,
                        w2_scale=p.w2_scale, **zp)
        raise EngineError("vllm: dtype %s is not measured by moetune's vllm adapter" % s.dtype)

    def prepare(self, p):
        """Everything of a call that does not change between configs."""
        if self.api == "quant_config":
            return {"quant_config": self._quant_config(p)}
        return self._flag_kwargs(p)

    def run(self, p, prepared, config, down=None):
        if down is not None:
            raise EngineError("vllm %s runs one config for both GEMMs: a down-GEMM config is SGLang's" % self.version)
        with self.override_config(config):
            return self.fused_experts(p.x, p.w1, p.w2, p.topk_weights, p.topk_ids, inplace=False, **prepared)


class SglangAdapter(Adapter):
    name = "sglang"

    def __init__(self):
        super().__init__()
        self._entry("sglang.srt.layers.moe.fused_moe_triton.fused_moe", "sglang.srt.layers.moe.fused_moe_triton")
        if "topk_output" in self.params:
            self.api = "topk_output"
            topk = _import("sglang.srt.layers.moe.topk", "sglang", self.version, "top-k module")
            runner = _import("sglang.srt.layers.moe.moe_runner", "sglang", self.version, "MoE runner module")
            self.TopKOutput = getattr(topk, "StandardTopKOutput")
            self.RunnerConfig = getattr(runner, "MoeRunnerConfig")
        elif "topk_weights" in self.params:
            self.api = "topk_weights"
        else:
            raise self._unknown_api("topk_output", "topk_weights")
        # The down GEMM's own config (SGLang's _down files, from 0.5.x): the
        # fused-MoE module resolves both GEMMs' configs through its
        # try_get_optimal_moe_config(..., return_down_config=True), which
        # under override_config gives the down GEMM none (it runs the
        # gate-up config). Measuring a down config means answering that
        # call with the pinned gate-up config and the down config, as
        # SGLang's own down tuner does.
        self._resolver_mod = sys.modules.get(getattr(self.fused_experts, "__module__", "") or "")
        resolver = getattr(self._resolver_mod, "try_get_optimal_moe_config", None)
        self.down_gemm = resolver is not None and "return_down_config" in _params(resolver)
        self.config_dirs = self._config_dirs(resolver)

    def _config_dirs(self, resolver):
        """where get_moe_configs looks: configs/triton_X_Y_Z under
        SGLANG_MOE_CONFIG_DIR, else beside its config module, the installed
        Triton's folder first, then the others newest first"""
        mod = sys.modules.get(getattr(resolver, "__module__", "") or "")
        root = os.environ.get("SGLANG_MOE_CONFIG_DIR") or (
            os.path.dirname(os.path.realpath(mod.__file__)) if getattr(mod, "__file__", None) else "")
        if not root:
            return ()
        configs = os.path.join(root, "configs")
        mine = "triton_" + self.triton_version.replace(".", "_")
        try:
            others = [d for d in os.listdir(configs) if d.startswith("triton_") and d != mine]
        except OSError:
            others = []

        def version(d):
            return tuple(int(x) if x.isdigit() else 0 for x in d[len("triton_"):].split("_"))

        return tuple(os.path.join(configs, d) for d in [mine] + sorted(others, key=version, reverse=True))

    def prepare(self, p):
        s = p.scheme
        if s.dtype not in ("bf16", "fp16", "fp32", "fp8_w8a8", "int8_w8a8", "int8_w8a16", "int4_w4a16"):
            raise EngineError("sglang: dtype %s is not measured by moetune's sglang adapter" % s.dtype)
        kw = self._flag_kwargs(p)
        if self.api == "topk_output":
            kw["moe_runner_config"] = self.RunnerConfig(inplace=False)
        return kw

    @contextlib.contextmanager
    def _pinned(self, config, down):
        """the gate-up config and the down GEMM's, as SGLang's resolver
        gives them from a file pair (BLOCK_SIZE_M shared)"""
        mod = self._resolver_mod
        original = mod.try_get_optimal_moe_config

        def resolve(*args, **kwargs):
            if kwargs.get("return_down_config"):
                return dict(config), (dict(down), down["BLOCK_SIZE_M"])
            return dict(config)

        mod.try_get_optimal_moe_config = resolve
        try:
            yield
        finally:
            mod.try_get_optimal_moe_config = original

    def run(self, p, prepared, config, down=None):
        if down is not None and not self.down_gemm:
            raise EngineError("sglang %s has no separate down-GEMM config: tuning one needs a newer SGLang"
                              % self.version)
        with self.override_config(config) if down is None else self._pinned(config, down):
            if self.api == "topk_output":
                topk = self.TopKOutput(topk_weights=p.topk_weights, topk_ids=p.topk_ids, router_logits=p.logits)
                return self.fused_experts(p.x, p.w1, p.w2, topk, **prepared)
            if "inplace" in self.params:
                prepared = dict(prepared, inplace=False)
            return self.fused_experts(p.x, p.w1, p.w2, p.topk_weights, p.topk_ids, **prepared)


ADAPTERS = {"vllm": VllmAdapter, "sglang": SglangAdapter}


def load(engine):
    if engine not in ADAPTERS:
        raise EngineError("unknown engine '%s': expected %s" % (engine, " or ".join(sorted(ADAPTERS))))
    return ADAPTERS[engine]()
