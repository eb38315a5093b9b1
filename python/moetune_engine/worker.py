"""moetune's engine worker: measures an engine's fused-MoE Triton kernel for
moetune's sweep, speaking moetune's worker protocol (docs/worker.md): one
JSON request per line on stdin, one JSON reply per line on stdout. The sweep
(the C program) is the orchestrator: search, database, checks of stored
rows, export. This process only measures, and a crash or hang in it costs
only itself.

Each measurement: inputs drawn from the request's seed (the same for every
config of a batch size), the engine's kernel run with the config forced,
its output checked against moetune's float64 reference (reference.py) on a
window of tokens, then timed: CUDA-graph replays with the L2 flushed between
them on a GPU, wall-clock runs on the CPU; the median over the routings.
"""

import argparse
import json
import math
import os
import sys
import time

PROTOCOL = 1


def _reply(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class Scheme:
    """How a dtype of the engines' names is quantised: weight scheme,
    activation scheme (None, 'tensor', 'token', 'group'), block shape."""

    DTYPES = ("bf16", "fp16", "fp32", "fp8_w8a8", "fp8_w8a8_per_channel", "int8_w8a8", "int8_w8a16", "int4_w4a16",
              "int4_w4a16_zp")

    def __init__(self, dtype, block_n=0, block_k=0, per_channel=False):
        if dtype not in self.DTYPES:
            raise ValueError("dtype '%s' is not measured by the engine worker: it takes %s" % (dtype, ", ".join(self.DTYPES)))
        if dtype == "fp8_w8a8_per_channel":
            # moetune's problem name for fp8_w8a8 with per-channel weights
            dtype, per_channel = "fp8_w8a8", True
        # moetune's problem name for int4_w4a16 with a zero point per group
        # (AWQ's scheme, GPTQ's with sym false): the engines' names do not
        # tell it from the symmetric one, their kernel takes w1_zp and w2_zp
        self.zero_points = dtype == "int4_w4a16_zp"
        if self.zero_points:
            dtype = "int4_w4a16"
        self.dtype = dtype
        self.block = (int(block_n), int(block_k)) if block_n and block_k else None
        if dtype == "int4_w4a16":
            # vLLM's convention: block_shape [0, group_size]
            if not block_k:
                raise ValueError("int4_w4a16 needs its group size (block_k)")
            self.block = (0, int(block_k))
        elif dtype == "int8_w8a16" and block_k:
            # GPTQ's 8-bit groups, block_shape [0, group_size] (without a
            # group: one scale per output channel)
            self.block = (0, int(block_k))
        self.weight = None
        self.act = None
        self.act_qmax = 448.0
        if dtype == "fp8_w8a8":
            if self.block:
                self.weight, self.act = "fp8_block", "group"
            elif per_channel:
                self.weight, self.act = "fp8_channel", "token"
            else:
                self.weight, self.act = "fp8_tensor", "tensor"
        elif dtype == "int8_w8a8":
            self.weight, self.act, self.act_qmax = "int8_w8a8", "token", 127.0
        elif dtype == "int8_w8a16":
            self.weight = "int8_group" if self.block else "int8_channel"
        elif dtype == "int4_w4a16":
            self.weight = "int4_group_zp" if self.zero_points else "int4_group"
        if self.block and dtype not in ("fp8_w8a8", "int4_w4a16", "int8_w8a16"):
            raise ValueError("a block shape is taken with fp8_w8a8 (and a group with int4_w4a16 and int8_w8a16) only")

    @property
    def quantised(self):
        return self.weight is not None


class Problem:
    """The inputs of one (key, M, seed), kept while requests repeat them:
    every config of a batch size is measured on the same tensors."""

    def __init__(self, torch, device, key, M, seed, renormalize, routings, per_channel, weights=None,
                 for_compile=False):
        from . import quant

        self.torch = torch
        self.E, self.N, self.K, self.topk = int(key["E"]), int(key["N"]), int(key["K"]), int(key["topk"])
        if min(self.E, self.N, self.K, self.topk, M) < 1 or self.topk > self.E:
            raise ValueError("the key needs E, N, K, topk >= 1 with topk <= E, and M >= 1")
        self.scheme = Scheme(key.get("dtype") or "bf16", key.get("block_n", 0), key.get("block_k", 0), per_channel)
        self.M = M
        self.compute_dtype = {"fp16": torch.float16, "fp32": torch.float32}.get(self.scheme.dtype, torch.bfloat16)
        self.fp8_dtype = quant.fp8_dtype()
        # the weights depend on the key only: made once per problem and
        # shared by its batch sizes (weights is the cache's entry)
        if weights is None:
            weights = self.compile_weights(torch, device) if for_compile else self.make_weights(torch, device)
        self.w1, self.w2, self.w1_scale, self.w2_scale, self.w1_zp, self.w2_zp, self._ref = weights
        self.weights = weights
        gx = torch.Generator(device="cpu")
        gx.manual_seed(int(seed))
        self.x = torch.randn(M, self.K, generator=gx).to(self.compute_dtype).to(device)
        s = self.scheme
        self.a1_scale = self.a2_scale = None
        # routings: softmax top-k of random logits, renormalised as the
        # problem says; the first is the one checked
        self.routings = []
        for r in range(max(1, routings)):
            logits = torch.randn(M, self.E, generator=gx)
            probs = torch.softmax(logits, dim=-1)
            w, ids = torch.topk(probs, self.topk, dim=-1)
            if renormalize:
                w = w / w.sum(dim=-1, keepdim=True)
            self.routings.append((logits.to(device), w.float().to(device), ids.to(torch.int32).to(device)))
        self.use_routing(0)
        if s.act == "tensor" and for_compile:
            self.a1_scale = torch.ones(1, device=device)
            self.a2_scale = torch.ones(1, device=device)
        elif s.act == "tensor":
            # static per-tensor scales, as checkpoints with a static
            # activation scheme carry them
            self.a1_scale = (self.x.float().abs().max().clamp(min=1e-10) / 448.0).reshape(1)
            from . import reference

            rows = torch.arange(min(M, 256), device=device)
            amax = reference.intermediate_amax(self, rows)
            self.a2_scale = (amax.float().clamp(min=1e-10) / 448.0).reshape(1).to(device)

    def compile_weights(self, torch, device):
        """The kernel's operands for compiling it ahead, values unset: the
        dtypes, shapes and strides of make_weights' (one expert quantised
        gives the scales' shapes), without its float32 copies. A process
        of the compile pool holds only these, so many of them fit beside
        the measuring one (a float32 DeepSeek-V3 expert set is 5.6 GiB)."""
        E = self.E
        full = self.E
        self.E = 1
        try:
            one = self.make_weights(torch, device)
        finally:
            self.E = full
        out = []
        for t in one[:2]:
            out.append(torch.empty((E,) + tuple(t.shape[1:]), dtype=t.dtype, device=device))
        for t in one[2:4]:
            out.append(None if t is None else torch.ones((E,) + tuple(t.shape[1:]), dtype=t.dtype, device=device))
        for t in one[4:6]:
            out.append(None if t is None else torch.zeros((E,) + tuple(t.shape[1:]), dtype=t.dtype, device=device))
        return tuple(out) + (None,)

    def make_weights(self, torch, device):
        """w1 (E, 2N, K) and w2 (E, K, N), drawn on the device from a seed of
        the shape, quantised as the scheme stores them: (w1, w2, w1_scale,
        w2_scale, w1_zp, w2_zp, what the reference dequantises)."""
        from . import quant

        g = torch.Generator(device=device)
        g.manual_seed(0x6D6F65 ^ (self.E * 1000003 + self.N * 10007 + self.K))
        w1 = torch.randn(self.E, 2 * self.N, self.K, generator=g, device=device) / math.sqrt(self.K)
        w2 = torch.randn(self.E, self.K, self.N, generator=g, device=device) / math.sqrt(self.N)
        s = self.scheme
        if not s.quantised:
            return w1.to(self.compute_dtype), w2.to(self.compute_dtype), None, None, None, None, None
        q1, s1, z1 = quant.quantize_weight(w1, s.weight, s.block)
        del w1
        q2, s2, z2 = quant.quantize_weight(w2, s.weight, s.block)
        del w2
        ref = (q1, s1, q2, s2, z1, z2)
        if s.weight == "int4_group_zp":
            return (quant.pack_int4(q1, 0), quant.pack_int4(q2, 0), s1.float(), s2.float(), quant.pack_zero_points(z1),
                    quant.pack_zero_points(z2), ref)
        if s.weight == "int4_group":
            return quant.pack_int4(q1), quant.pack_int4(q2), s1.float(), s2.float(), None, None, ref
        if s.weight == "int8_group":
            # stored unsigned with 128 added: the kernel's zero point
            return ((q1 + 128).to(torch.uint8), (q2 + 128).to(torch.uint8), s1.float(), s2.float(), None, None, ref)
        store = self.fp8_dtype if s.weight.startswith("fp8") else torch.int8
        if store is None:
            # torch without float8: the values stay float32, which only a
            # test double takes
            store = torch.float32
        return q1.to(store), q2.to(store), s1.float(), s2.float(), None, None, ref

    def use_routing(self, r):
        self.logits, self.topk_weights, self.topk_ids = self.routings[r]

    def w1_ref(self, e):
        if self._ref is None:
            return self.w1[e].double()
        from . import quant

        q1, s1, z1 = self._ref[0], self._ref[1], self._ref[4]
        return quant.dequantize_weight(q1[e : e + 1], s1[e : e + 1], self.scheme.weight, self.scheme.block,
                                       None if z1 is None else z1[e : e + 1])[0].to(self.x.device)

    def w2_ref(self, e):
        if self._ref is None:
            return self.w2[e].double()
        from . import quant

        q2, s2, z2 = self._ref[2], self._ref[3], self._ref[5]
        return quant.dequantize_weight(q2[e : e + 1], s2[e : e + 1], self.scheme.weight, self.scheme.block,
                                       None if z2 is None else z2[e : e + 1])[0].to(self.x.device)


def _is_out_of_resources(e):
    return any(c.__name__ == "OutOfResources" for c in type(e).__mro__)


class Worker:
    def __init__(self, engine, device):
        self.engine_name = engine
        self.device_arg = device
        self.torch = None
        self.adapter = None
        self.error = None
        self.problem = None
        self.problem_key = None
        self.weights_key = None
        self.flush = None
        # where the time goes, said on stderr when the worker exits
        self.totals = {"configs": 0, "failed": 0, "setup_s": 0.0, "compile_s": 0.0, "check_s": 0.0, "time_s": 0.0,
                       "ahead_n": 0, "ahead_s": 0.0}
        try:
            import torch
        except ImportError as e:
            self.error = "the engine worker needs torch in the Python it runs in (%s): set MOETUNE_PYTHON" % e
            return
        self.torch = torch
        if device == "cpu":
            self.device = torch.device("cpu")
        else:
            kind, _, idx = device.partition(":")
            if kind not in ("cuda", "hip") or not idx.isdigit():
                self.error = "device '%s': expected cpu, cuda:N or hip:N" % device
                return
            if not torch.cuda.is_available():
                self.error = "no CUDA device: torch %s sees no GPU for %s" % (torch.__version__, device)
                return
            if int(idx) >= torch.cuda.device_count():
                self.error = "%s: torch sees %d GPU(s)" % (device, torch.cuda.device_count())
                return
            self.device = torch.device("cuda", int(idx))
            torch.cuda.set_device(self.device)
        from .engines import EngineError, load

        try:
            self.adapter = load(engine)
        except EngineError as e:
            self.error = str(e)

    # ---- requests ----
    def hello(self):
        if self.error:
            return {"ok": False, "error": self.error}
        t = self.torch
        d = {"ok": True, "protocol": PROTOCOL, "backend": self.engine_name}
        d.update(self.adapter.describe())
        d["kernel"] = self.adapter.kernel_id()
        if self.device.type == "cpu":
            d.update({"platform": "cpu", "raw_name": "CPU", "name": "CPU", "arch": os.uname().machine,
                      "cores": os.cpu_count() or 1, "memory_bytes": 0, "driver": "", "toolkit": "torch " + t.__version__})
        else:
            prop = t.cuda.get_device_properties(self.device)
            rocm = bool(getattr(t.version, "hip", None))
            raw = prop.name
            d.update({
                "platform": "rocm" if rocm else "cuda",
                "raw_name": raw,
                "name": device_file_name(self.engine_name, raw),
                "arch": getattr(prop, "gcnArchName", "") if rocm else "sm_%d%d" % (prop.major, prop.minor),
                "cores": prop.multi_processor_count,
                "memory_bytes": prop.total_memory,
                "l2_bytes": getattr(prop, "L2_cache_size", 0),
                # what a Triton kernel may opt in to: the sweep skips configs
                # whose pipeline cannot fit (families/fused_moe/space.c)
                "smem_per_block": 0 if rocm else getattr(prop, "shared_memory_per_block_optin", 0),
                "driver": "",
                "toolkit": "torch %s, %s %s" % (t.__version__, "hip" if rocm else "cuda", t.version.hip if rocm else t.version.cuda),
            })
        return d

    def ceilings(self):
        if self.error:
            return {"ok": False, "error": self.error}
        t = self.torch
        if self.device.type == "cpu":
            n = 1 << 24
            a = t.empty(n, dtype=t.float32)
            b = t.empty_like(a)
            best = min(_wall(lambda: b.copy_(a)) for _ in range(5))
            m = t.randn(512, 512)
            fl = min(_wall(lambda: m @ m) for _ in range(5))
            return {"ok": True, "bandwidth_gbs": 2 * 4 * n / best / 1e9, "peak_gflops": 2 * 512**3 / fl / 1e9,
                    "how": "torch copy of 64 MiB and a 512^3 fp32 matmul on the CPU"}
        n = 1 << 28
        a = t.empty(n, dtype=t.uint8, device=self.device)
        b = t.empty_like(a)
        bw = 2 * n / self._gpu_best(lambda: b.copy_(a)) / 1e9
        m = t.randn(8192, 8192, device=self.device, dtype=t.bfloat16)
        pk = 2 * 8192**3 / self._gpu_best(lambda: m @ m) / 1e9
        r = {"ok": True, "bandwidth_gbs": bw, "peak_gflops": pk,
             "how": "torch copy of 256 MiB and an 8192^3 bf16 matmul, best of 10"}
        # fp8's ceiling, where the device has fp8 tensor cores (sm_89 on):
        # torch._scaled_mm, cuBLASLt's e4m3 product with fast accumulation
        f8 = getattr(t, "float8_e4m3fn", None)
        cap = t.cuda.get_device_capability(self.device) if not getattr(t.version, "hip", None) else (0, 0)
        if f8 is not None and hasattr(t, "_scaled_mm") and tuple(cap) >= (8, 9):
            try:
                a8 = m.to(f8)
                b8 = m.to(f8).t()
                one = t.ones((), device=self.device)
                fn = lambda: t._scaled_mm(a8, b8, one, one, out_dtype=t.bfloat16, use_fast_accum=True)
                r["peak_fp8_gflops"] = 2 * 8192**3 / self._gpu_best(fn) / 1e9
                r["how"] += "; torch._scaled_mm e4m3 8192^3 (cuBLASLt, fast accumulation)"
            except Exception as e:  # the ceiling is a figure, not a requirement
                r["how"] += "; no fp8 ceiling: %s" % _short(e)
        return r

    def _gpu_best(self, fn):
        t = self.torch
        fn()
        best = float("inf")
        for _ in range(10):
            s, e = t.cuda.Event(enable_timing=True), t.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            best = min(best, s.elapsed_time(e) / 1e3)
        return best

    def precompile(self, req):
        """Run each config once at each batch size in a pool of `jobs`
        processes, so that the engine's Triton kernels are compiled in
        parallel on the CPU cores into Triton's cache before the sweep
        measures them one by one. The sweep asks for a handful at a time
        (the configs its search will likely measure next); the pool and
        each process's inputs stay up between requests, so a request costs
        the compiles and little else, and a config compiled at one batch
        size is found in Triton's cache at the next of the same
        specialisation. Returns how many ran, and the failures (the sweep
        measures those again and stores their reasons)."""
        if self.error:
            return {"ok": False, "error": self.error}
        key, points, configs = req.get("key"), req.get("points"), req.get("configs")
        if not isinstance(key, dict) or not isinstance(points, list) or not isinstance(configs, list):
            return {"ok": False, "error": "a precompile request needs key, points and configs"}
        jobs = max(1, min(int(req.get("jobs", 1) or 1), 64))
        args = {"engine": self.engine_name, "device": self.device_arg, "key": key, "seed": int(req.get("seed", 0)),
                "renormalize": bool(req.get("renormalize", 1)), "points": [int(m) for m in points],
                "pin": req.get("pin")}
        n = max(1, min(jobs, len(configs)))
        chunks = [configs[i::n] for i in range(n)]
        t0 = time.time()
        from concurrent.futures.process import BrokenProcessPool

        # an executor, not a Pool: a process that dies (a crash in the
        # engine or in Triton) fails its share instead of hanging the map
        results, lost = [], 0
        try:
            pool = self._compile_pool(jobs)
            futures = [pool.submit(_compile_chunk, dict(args, configs=c)) for c in chunks]
            for f, c in zip(futures, chunks):
                try:
                    results.append(f.result())
                except Exception as e:
                    lost += len(c)
                    print("moetune engine worker: a compile-ahead process failed (%s: %s): its %d configs are "
                          "compiled when measured" % (type(e).__name__, _short(e), len(c)), file=sys.stderr)
                    if isinstance(e, BrokenProcessPool):
                        self._close_pool()  # a new pool at the next request
        except Exception as e:
            self._close_pool()
            return {"ok": False, "error": "compiling ahead failed: %s: %s" % (type(e).__name__, _short(e))}
        ran = sum(r["ran"] for r in results)
        failures = [f for r in results for f in r["failures"]]
        secs = time.time() - t0
        self.totals["ahead_s"] += secs
        self.totals["ahead_n"] += len(configs)
        return {"ok": True, "ran": ran, "failed": len(failures), "lost": lost, "failures": failures[:20], "jobs": n,
                "seconds": round(secs, 3)}

    def _compile_pool(self, jobs):
        pool = getattr(self, "_pool", None)
        if pool is not None and self._pool_jobs == jobs:
            return pool
        self._close_pool()
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawned, not forked: the parent holds a CUDA context
        self._pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
        self._pool_jobs = jobs
        return self._pool

    def _close_pool(self):
        pool = getattr(self, "_pool", None)
        self._pool = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def measure(self, req):
        r = self._measure(req)
        t = self.totals
        t["configs"] += 1
        t["failed"] += r.get("status") != "ok"
        for k, v in (r.get("times") or {}).items():
            t[k] = t.get(k, 0.0) + v
        return r

    def summary(self):
        t = self.totals
        ahead = ""
        if t["ahead_n"]:
            ahead = "compiled ahead %d configs in %.1f s, " % (t["ahead_n"], t["ahead_s"])
        return ("moetune engine worker: %d configs measured (%d failed or aborted): %ssetup %.1f s, first calls "
                "(Triton compiles not done ahead) %.1f s, checks %.1f s, timing %.1f s"
                % (t["configs"], t["failed"], ahead, t["setup_s"], t["compile_s"], t["check_s"], t["time_s"]))

    def _measure(self, req):
        if self.error:
            return {"ok": False, "error": self.error}
        fam = req.get("family", "fused_moe")
        if fam != "fused_moe":
            return {"ok": False, "error": "family '%s': the engine worker measures fused_moe only" % fam}
        key, point, params = req.get("key"), req.get("point"), req.get("params")
        if not isinstance(key, dict) or not isinstance(point, list) or len(point) != 1 or not isinstance(params, dict):
            return {"ok": False, "error": "a measure request needs key {E,N,K,topk,dtype}, point [M] and params"}
        pol = req.get("policy") or {}
        M = int(point[0])
        seed = int(req.get("seed", 0))
        routings = int(pol.get("routings", 1) or 1)
        ident = json.dumps([key, M, seed, bool(req.get("renormalize", 1)), routings], sort_keys=True)
        wident = json.dumps(key, sort_keys=True)
        t0 = time.time()
        if ident != self.problem_key:
            weights = self.problem.weights if self.problem is not None and self.weights_key == wident else None
            self.problem = None
            try:
                self.problem = Problem(self.torch, self.device, key, M, seed, bool(req.get("renormalize", 1)), routings,
                                       bool(key.get("per_channel", 0)), weights)
            except ValueError as e:
                return {"ok": False, "error": str(e)}
            self.problem_key = ident
            self.weights_key = wident
        p = self.problem
        try:
            launch = _launch(params, req.get("pin"))
        except (TypeError, ValueError, KeyError) as e:
            return {"ok": False, "error": "a measure request's params or pin: %s" % _short(e)}
        from .engines import EngineError

        if launch[1] is not None and not self.adapter.down_gemm:
            return {"ok": False, "error": "%s %s has no separate down-GEMM config: tuning one needs a newer %s"
                    % (self.engine_name, self.adapter.version, self.engine_name)}

        try:
            prepared = self.adapter.prepare(p)
        except EngineError as e:
            return {"ok": False, "error": str(e)}
        setup_s = time.time() - t0
        times = {"setup_s": round(setup_s, 4)}
        # the first call compiles (Triton JIT); its failures are the config's
        t1 = time.time()
        p.use_routing(0)
        try:
            out = self.adapter.run(p, prepared, *launch)
            self._sync()
        except Exception as e:  # the engine's own error is the variant's reason
            times["compile_s"] = round(time.time() - t1, 4)
            if self._device_lost(e):
                return {"ok": True, "status": "failed", "reason": "device fault: %s" % _short(e), "fatal": True,
                        "times": times}
            why = "out of resources: " if _is_out_of_resources(e) else "%s: " % type(e).__name__
            return {"ok": True, "status": "failed", "reason": why + _short(e), "times": times}
        compile_s = time.time() - t1
        fault = os.environ.get("MOETUNE_TEST_FAULT", "")
        if fault.startswith("nan:") and fault[4:] in json.dumps(params, separators=(",", ":")):
            out = out.clone()
            out.view(-1)[0] = float("nan")
        # the check: a window of tokens against the float64 reference
        t2 = time.time()
        from . import reference

        rows_n = max(1, min(M, int(pol.get("check_rows", 32) or 32)))
        start = seed % (M - rows_n + 1)
        rows = self.torch.arange(start, start + rows_n, device=self.device)
        ref = reference.moe_rows(p, rows)
        got = out[rows].double()
        tol = float(pol.get("tolerance", 2e-2) or 2e-2)
        if p.scheme.act:
            # activations quantised on both sides: a value on a rounding
            # boundary may land a step apart (e4m3 carries 3 mantissa bits)
            tol = max(tol, 5e-2)
        times.update({"compile_s": round(compile_s, 4)})
        if not bool(self.torch.isfinite(got).all()):
            return {"ok": True, "status": "failed", "reason": "output holds NaN or Inf", "tolerance": tol, "times": times}
        err = float((got - ref).norm() / ref.norm().clamp(min=1e-30))
        check_s = time.time() - t2
        base = {"ok": True, "rel_err": err, "tolerance": tol,
                "experts_hit": int(self.torch.unique(p.topk_ids).numel()),
                "times": dict(times, check_s=round(check_s, 4))}
        if not err <= tol:
            base.update({"status": "failed", "reason": "wrong result: relative error %.3g above %.3g" % (err, tol)})
            return base
        t3 = time.time()
        try:
            med, spread, reps, aborted = self._time(p, prepared, launch, pol, float(req.get("abort_us", 0) or 0))
        except Exception as e:
            if self._device_lost(e):
                return {"ok": True, "status": "failed", "reason": "device fault: %s" % _short(e), "fatal": True}
            base.update({"status": "failed", "reason": "timing failed: %s: %s" % (type(e).__name__, _short(e))})
            return base
        base["times"]["time_s"] = round(time.time() - t3, 4)
        base.update({"status": "aborted" if aborted else "ok", "median_us": med, "spread_us": spread, "reps": reps})
        if aborted:
            base["reason"] = "stopped early: clearly slower than the best so far"
        return base

    # ---- timing ----
    def _sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def _device_lost(self, e):
        if self.device.type != "cuda":
            return False
        text = str(e)
        return "illegal memory access" in text or "unspecified launch failure" in text or "device-side assert" in text

    def _time(self, p, prepared, launch, pol, abort_us):
        warmup = int(pol.get("warmup", 3) or 0)
        min_reps = max(2, int(pol.get("min_reps", 10) or 10))
        max_reps = max(min_reps, int(pol.get("max_reps", 100) or 100))
        min_time = float(pol.get("min_time_s", 0.02) or 0.0)
        cold = bool(pol.get("cold", 1))
        medians, spreads, total = [], [], 0
        for r in range(len(p.routings)):
            p.use_routing(r)
            run = self._runner(p, prepared, launch)
            for _ in range(warmup):
                run()
            self._sync()
            times = []
            spent = 0.0
            while len(times) < max_reps and (len(times) < min_reps or spent < min_time):
                if cold:
                    self._flush()
                dt = self._once(run)
                times.append(dt)
                spent += dt / 1e6
                if abort_us > 0 and len(times) == 3 and min(times) > abort_us:
                    return _median(times), 0.0, len(times), True
            medians.append(_median(times))
            spreads.append(_median([abs(t - medians[-1]) for t in times]))
            total += len(times)
        p.use_routing(0)
        return sum(medians) / len(medians), max(spreads), total, False

    def _runner(self, p, prepared, launch):
        """One launch of the engine's call: a CUDA graph of it on a GPU (as
        vLLM's and SGLang's tuners time it), the call itself elsewhere or
        where capture is refused."""
        t = self.torch
        if self.device.type != "cuda":
            return lambda: self.adapter.run(p, prepared, *launch)
        try:
            s = t.cuda.Stream(self.device)
            s.wait_stream(t.cuda.current_stream(self.device))
            with t.cuda.stream(s):
                self.adapter.run(p, prepared, *launch)
            t.cuda.current_stream(self.device).wait_stream(s)
            g = t.cuda.CUDAGraph()
            with t.cuda.graph(g):
                self.adapter.run(p, prepared, *launch)
            self._sync()
            return g.replay
        except Exception:
            self._sync()
            return lambda: self.adapter.run(p, prepared, *launch)

    def _once(self, run):
        t = self.torch
        if self.device.type != "cuda":
            a = time.perf_counter()
            run()
            return (time.perf_counter() - a) * 1e6
        s, e = t.cuda.Event(enable_timing=True), t.cuda.Event(enable_timing=True)
        s.record()
        run()
        e.record()
        e.synchronize()
        return s.elapsed_time(e) * 1e3

    def _flush(self):
        """Cold L2: write a buffer twice the cache's size between runs."""
        if self.device.type != "cuda":
            return
        if self.flush is None:
            l2 = getattr(self.torch.cuda.get_device_properties(self.device), "L2_cache_size", 50 << 20) or (50 << 20)
            self.flush = self.torch.empty(2 * l2, dtype=self.torch.uint8, device=self.device)
        self.flush.zero_()


# a compile process's inputs, kept between requests: the weights of the
# key, the inputs of each batch size
_CHILD = {"key": None, "adapter": None, "weights": None, "problems": {}}


def _launch(params, pin):
    """The configs of one call: params, or with pin (SGLang's down GEMM
    tuned on its own) the pinned gate-up config and params as the down
    GEMM's, which takes the gate-up config's BLOCK_SIZE_M (one alignment of
    the tokens feeds both GEMMs)."""
    config = {k: int(v) for k, v in params.items()}
    if pin is None:
        return config, None
    if not isinstance(pin, dict):
        raise TypeError("pin must be the gate-up config, an object")
    up = {k: int(v) for k, v in pin.items()}
    for k in ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M", "num_warps", "num_stages"):
        if k not in up:
            raise ValueError("the pinned gate-up config has no %s" % k)
    down = dict(config, BLOCK_SIZE_M=up["BLOCK_SIZE_M"])
    return up, down


def _compile_chunk(a):
    """One compile-ahead process's share: each config at each batch size,
    once, on the same device (Triton compiles on the first call, or finds
    the kernel in its cache)."""
    import torch

    from .engines import load

    device = torch.device("cpu") if a["device"] == "cpu" else torch.device("cuda", int(a["device"].partition(":")[2]))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    ident = json.dumps([a["engine"], a["device"], a["key"], a["seed"], a["renormalize"]], sort_keys=True)
    if _CHILD["key"] != ident:
        _CHILD.update(key=ident, adapter=load(a["engine"]), weights=None, problems={})
    adapter = _CHILD["adapter"]
    ran, failures = 0, []
    per_channel = bool(a["key"].get("per_channel", 0))
    for M in a["points"]:
        if M not in _CHILD["problems"]:
            p = Problem(torch, device, a["key"], M, a["seed"], a["renormalize"], 1, per_channel, _CHILD["weights"],
                        for_compile=True)
            _CHILD["weights"] = p.weights
            _CHILD["problems"][M] = (p, adapter.prepare(p))
        p, prepared = _CHILD["problems"][M]
        for cfg in a["configs"]:
            try:
                adapter.run(p, prepared, *_launch(cfg, a.get("pin")))
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                ran += 1
            except Exception as e:
                why = "out of resources: " if _is_out_of_resources(e) else "%s: " % type(e).__name__
                failures.append({"M": M, "params": cfg, "reason": why + _short(e)})
    return {"ran": ran, "failures": failures}


def _median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _wall(fn):
    a = time.perf_counter()
    fn()
    return max(time.perf_counter() - a, 1e-9)


def _short(e):
    text = " ".join(str(e).split())
    return text[:300] if text else type(e).__name__


def device_file_name(engine, raw):
    """The device as the engine spells it in its config file names: vLLM
    replaces each run of spaces or '/' with '_' and calls any H200 NVIDIA_H200;
    SGLang replaces spaces only."""
    import re

    if engine == "vllm":
        if "H200" in raw.split() or "H200" in re.split(r"[\s_/-]+", raw):
            return "NVIDIA_H200"
        return re.sub(r"[\s/]+", "_", raw)
    return raw.replace(" ", "_")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="moetune-engine-worker",
                                 description="Internal: started by `moetune sweep --engine`, speaking JSON lines.")
    ap.add_argument("--engine", required=True)
    ap.add_argument("--device", default="cuda:0")
    args = ap.parse_args(argv)
    # the engines log to stdout at import: the protocol needs it for itself
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = proto
    w = Worker(args.engine, args.device)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError as e:
            _reply({"ok": False, "error": "malformed request: %s" % e})
            continue
        op = req.get("op") if isinstance(req, dict) else None
        if op == "hello":
            _reply(w.hello())
        elif op == "ceilings":
            _reply(w.ceilings())
        elif op == "precompile":
            try:
                _reply(w.precompile(req))
            except Exception as e:
                _reply({"ok": False, "error": "engine worker: %s: %s" % (type(e).__name__, _short(e))})
        elif op == "measure":
            try:
                r = w.measure(req)
            except Exception as e:  # a bug of the worker's: said, and the worker goes on
                r = {"ok": False, "error": "engine worker: %s: %s" % (type(e).__name__, _short(e))}
            _reply(r)
            if r.get("fatal"):
                w._close_pool()
                return 3
        elif op == "quit":
            break
        else:
            _reply({"ok": False, "error": "unknown op %r" % (op,)})
    w._close_pool()
    if w.totals["configs"]:
        print(w.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
