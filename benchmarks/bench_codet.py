"""The codet-humaneval profile at full scale: the execution stage's throughput, and the whole profile.

Stage benchmark (default): in a fresh results folder, load the benchmark, replay CodeT's 164 × 100 ×
100 generations, then label and execute every (solution, distinct assertion) pair twice — in the
profile's `codet` mode (CodeT's executor: one packed program per unique solution) and in the `fast`
mode (one test program per assertion, run on its own, the baseline measured in the same run), and record
every solution's outputs on the assertions' inputs (`srank` mode, what SRank ranks from). Prints pairs,
unique executions, seconds, pairs/s, their ratio, the verdicts on which the two modes differ and the
peak RSS of this process.

Whole profile (`--whole`): `python -m utscale run --profile codet-humaneval` in a fresh results folder,
timed end to end (notebooks 01–07 and the report); the target is 15 minutes on 2 cores.

Run: .venv/bin/python benchmarks/bench_codet.py [--limit 0] [--whole]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def stage(limit: int) -> None:
    from utscale import benchmarks, execution, generation, runs

    reports = {}
    tables = {}
    for mode in ("codet", "fast"):
        run = runs.open_run("codet-humaneval", {"LIMIT": limit, "SANDBOX_MODE": mode} if limit else {"SANDBOX_MODE": mode})
        benchmarks.write_problems(run)
        generation.sample_solutions(run)
        generation.generate_unit_tests(run)
        started = time.perf_counter()
        reports[mode] = execution.execute_run(run)
        reports[mode]["wall"] = time.perf_counter() - started
        tables[mode] = run.read_table("assertion_executions")
    for mode, rep in reports.items():
        for name in ("labels", "executions", "outputs"):
            r = rep[name]
            print(f"{mode:>5} {name:>10}: {r.pairs} pairs, {r.unique_executed} unique executions, {r.seconds:.1f} s, "
                  f"{r.pairs_per_second:.0f} pairs/s")
        print(f"{mode:>5} stage wall time {rep['wall']:.1f} s")
    codet = reports["codet"]
    print(f"recording outputs (srank mode) adds {100 * codet['outputs'].seconds / codet['executions'].seconds:.0f}% "
          "to the assertion stage's seconds")
    ratio = reports["codet"]["executions"].pairs_per_second / reports["fast"]["executions"].pairs_per_second
    merged = tables["codet"].merge(tables["fast"], on=["task_id", "solution_id", "assertion_id"], suffixes=("_codet", "_fast"))
    differ = merged[merged.passed_codet != merged.passed_fast]
    print(f"codet mode / fast mode throughput: {ratio:.2f}x; verdicts differ on {len(differ)} of {len(merged)} pairs "
          f"({differ.task_id.nunique()} problems)")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def whole() -> None:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "utscale", "run", "--profile", "codet-humaneval"], check=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"whole profile: {time.perf_counter() - started:.0f} s wall; largest child process peaked at {children:.0f} MB RSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="problems (0: all 164)")
    parser.add_argument("--whole", action="store_true", help="time the whole profile instead of the stage")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="utscale-bench-codet-") as tmp:
        os.environ["UTSCALE_RESULTS"] = tmp
        os.environ.setdefault("TQDM_DISABLE", "1")
        whole() if args.whole else stage(args.limit)


if __name__ == "__main__":
    main()
