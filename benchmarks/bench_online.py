"""Online stopping simulation: every rule over a committed run's full matrices, and the loop it replaces.

Target (issue: online dynamic scaling): simulating every rule over 164 problems × 100 tests × 100 orders
takes seconds. The baseline, measured in the same run on a slice, is the plain loop: for each (problem,
order) and each prefix of the order, one `voting.select` call (with `--rule b4_beta0_1e+04`, one
`rerankers.b4_kept` call on the prefix's sampled tests; with `--rule srank`, one `reveal.srank_after` call
(`rerankers.srank_kept` on the inputs and expected values the prefix's tests bring); both with only the ranking-free settings, as
notebook 06 runs them). Prints the vectorised time on the whole run, both times on the slice, their ratio, and checks
that the two agree on the slice's accuracy trajectory.

Run: .venv/bin/python benchmarks/bench_online.py [--run results/codet-humaneval] [--resamples 100] [--rule coderm] [--slice 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from utscale import matrix, online, rerankers, reveal, stopping, voting
from utscale.runs import Run

SETTINGS = stopping.settings_from_config({"ONLINE_STABILITY": [2, 4, 8, 16], "ONLINE_HORIZONS": [25, 50, 100],
                                          "ONLINE_ALPHAS": [0.2, 0.1, 0.05]})


def open_committed(path: Path) -> Run:
    manifest = json.loads((path / "manifest.json").read_text())
    return Run(run_id=path.name, path=path, config=manifest["config"], profile=manifest["profile"])


def loop_trajectory(cube: matrix.PassCube, problems: range, resamples: int, seed: int, rule: str,
                    outputs: reveal.RevealedOutputs | None = None) -> np.ndarray:
    """The baseline: accuracy after every prefix, one selection per (problem, order, prefix), [M+1, R, P]."""
    m = cube.shape[2]
    out = np.empty((m + 1, resamples, len(problems)))
    for k, p in enumerate(problems):
        rng = np.random.default_rng([seed, p])
        orders = rng.permuted(np.tile(np.arange(m), (resamples, 1)), axis=1)
        real = int(cube.n_solutions[p])
        for r in range(resamples):
            passes, correct = cube.passes[p, :real][:, orders[r]], cube.correct[p, :real]
            sampled = cube.weights[p, orders[r]] > 0
            for t in range(m + 1):
                if outputs is not None:
                    kept = reveal.srank_after(outputs, p, orders[r, :t])[None]
                elif rule in rerankers.B4_RULES:
                    kept = rerankers.b4_kept(passes[:, :t][:, sampled[:t]], rerankers.B4_RULES[rule])[None]
                else:
                    kept = voting.select(passes[None, :, :t])
                out[t, r, k] = voting.expected_accuracy(kept, correct[None])[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default="results/codet-humaneval")
    parser.add_argument("--resamples", type=int, default=100)
    parser.add_argument("--slice", type=int, default=4, help="problems in the baseline comparison")
    parser.add_argument("--rule", default="coderm", choices=["coderm", *rerankers.B4_RULES, reveal.SRANK])
    args = parser.parse_args()
    run = open_committed(Path(args.run))
    cube = matrix.load(run)
    outputs = reveal.revealed_outputs(run, cube) if args.rule == reveal.SRANK else None
    settings = SETTINGS if args.rule == "coderm" else [s for s in SETTINGS if s.rule in stopping.RANKING_FREE_RULES]
    p, n, m = cube.shape
    started = time.perf_counter()
    online.simulate(cube, settings, args.resamples, seed=1234, rule=args.rule, outputs=outputs)
    whole = time.perf_counter() - started
    print(f"vectorised {args.rule}: {p} problems x {n} solutions x {m} tests x {args.resamples} orders, "
          f"{len(settings)} settings: {whole:.1f} s")
    part = matrix.PassCube(cube.task_ids[:args.slice], cube.passes[:args.slice], cube.correct[:args.slice],
                           cube.n_solutions[:args.slice], cube.n_tests[:args.slice], cube.weights[:args.slice])
    resamples = max(args.resamples // 10, 2)
    started = time.perf_counter()
    fast = online.simulate(part, settings, resamples, seed=1234, rule=args.rule, outputs=outputs)
    fast_s = time.perf_counter() - started
    started = time.perf_counter()
    slow = loop_trajectory(part, range(args.slice), resamples, seed=1234, rule=args.rule, outputs=outputs)
    slow_s = time.perf_counter() - started
    same = np.allclose(fast.accuracy, slow, equal_nan=True)
    print(f"slice ({args.slice} problems x {resamples} orders): vectorised {fast_s:.2f} s (with its stopping settings), "
          f"loop {slow_s:.2f} s (the trajectory only): {slow_s / fast_s:.0f}x; trajectories agree: {same}")
    per = whole / (p * args.resamples)
    print(f"whole run: {whole:.1f} s = {per * 1e3:.2f} ms per (problem, order); the loop would take about "
          f"{slow_s / (args.slice * resamples) * p * args.resamples / 60:.0f} min")


if __name__ == "__main__":
    main()
