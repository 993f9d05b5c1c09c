"""`isolated` mode on the committed runs' real pairs: agreement with a fresh interpreter per pair, and speed.

For each run (default: results/embedded and results/codet-humaneval): the ground-truth label pairs
(every solution against its problem's ground truth) and, where the matrix holds unit tests, the unit-test
pairs. Identical pairs (same solution AST, same test) run once. Each unique pair is judged three ways:
`isolated` mode, `fast` mode, and the oracle (a fresh interpreter per pair, `sandbox.oracle`), all with
the run's own time limits. Prints the agreement of each mode with the oracle, each disagreement one by
one, and each mode's throughput. `--out` writes every unique pair's three verdicts as CSV.

Run: .venv/bin/python benchmarks/bench_isolated.py [--runs results/embedded ...] [--limit 0] [--out file.csv]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from utscale import execution
from utscale.sandbox import Executor, Pair, SandboxSettings, plan_jobs, run_plan
from utscale.sandbox.oracle import oracle_passes


def real_pairs(run_dir: Path, limit: int) -> dict[str, list[Pair]]:
    """The run's label pairs and (when its matrix is over unit tests) its unit-test pairs."""
    problems = pd.read_parquet(run_dir / "problems.parquet")
    solutions = pd.read_parquet(run_dir / "solutions.parquet")
    if limit:
        keep = problems.task_id.iloc[:limit]
        problems, solutions = problems[problems.task_id.isin(keep)], solutions[solutions.task_id.isin(keep)]
    sets = {"labels": execution.label_pairs(problems, solutions)}
    if not (run_dir / "assertions.parquet").exists():
        sets["unit tests"] = execution.matrix_pairs(problems, solutions, pd.read_parquet(run_dir / "unit_tests.parquet"))
    return {name: [Pair(json.dumps(list(k)), s, t) for k, (s, t) in pairs.items()] for name, pairs in sets.items()}


def unique(pairs: list[Pair]) -> list[Pair]:
    """One representative per unique (solution AST, test)."""
    by_id = {p.id: p for p in pairs}
    return [by_id[ids[0]] for ids in plan_jobs(pairs).fan_out.values()]


def judged(pairs: list[Pair], mode: str, timeout: float, workers: int) -> tuple[dict[str, str], float]:
    started = time.perf_counter()
    with Executor(workers=workers, settings=SandboxSettings(mode=mode, timeout=timeout)) as ex:
        got = {v.id: v.status for v in run_plan(plan_jobs(pairs), ex)}
    return got, time.perf_counter() - started


def oracle(pairs: list[Pair], timeout: float, workers: int) -> tuple[dict[str, bool], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        verdicts = list(pool.map(lambda p: oracle_passes(p.solution, p.test, timeout + 1.0), pairs))
    return dict(zip([p.id for p in pairs], verdicts)), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", nargs="+", default=["results/embedded", "results/codet-humaneval"])
    parser.add_argument("--limit", type=int, default=0, help="first N problems of each run (0: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    rows = []
    for run in map(Path, args.runs):
        config = json.loads((run / "manifest.json").read_text())["config"]
        for name, pairs in real_pairs(run, args.limit).items():
            timeout = config["LABEL_TIMEOUT_S"] if name == "labels" else config["TIMEOUT_S"]
            todo = unique(pairs)
            truth, t_oracle = oracle(todo, timeout, args.workers)
            print(f"[{run.name}, {name}] {len(pairs)} pairs, {len(todo)} unique, {sum(truth.values())} pass the oracle "
                  f"({timeout:g} s limit); oracle {t_oracle:.1f} s = {len(todo) / t_oracle:.1f} pairs/s", flush=True)
            statuses = {}
            for mode in ("isolated", "fast"):
                statuses[mode], seconds = judged(todo, mode, timeout, args.workers)
                wrong = [p.id for p in todo if (statuses[mode][p.id] == "pass") != truth[p.id]]
                print(f"  {mode:<8}: {seconds:7.1f} s = {len(todo) / seconds:7.1f} pairs/s ({t_oracle / seconds:.1f}x "
                      f"the oracle); agrees with the oracle on {len(todo) - len(wrong)}/{len(todo)}", flush=True)
                for pair_id in wrong:
                    print(f"    disagrees: {pair_id}: {mode} {statuses[mode][pair_id]}, oracle "
                          f"{'pass' if truth[pair_id] else 'fail'}")
            between = sum(statuses["isolated"][p.id] != statuses["fast"][p.id] for p in todo)
            print(f"  isolated and fast give different statuses on {between} of {len(todo)}")
            rows += [{"run": run.name, "pairs": name, "id": p.id, "oracle": truth[p.id],
                      "isolated": statuses["isolated"][p.id], "fast": statuses["fast"][p.id]} for p in todo]
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
