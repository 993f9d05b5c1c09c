"""Every reranker on the committed codet-humaneval run (164 problems x 100 solutions; 100 unit tests,
the distinct assertions, the recorded outputs), against plain per-problem loops in the same run.

The suite's `rerankers.reranker_table` computes every rule at every granularity with its bootstrap
intervals. The baselines restate two rules the way their authors' code computes them, one problem at a
time over Python objects: CodeT's released ranking (group solutions by the set of cases they pass,
score sqrt(|group|) x passed cases with multiplicity) and SRank's `process_cluster_attention_one_task`
(clusters by comparing output lists pairwise, the interaction matrix by a double loop over clusters
and inputs). Prints seconds, the ratio, and whether both give the same accuracy (they must).

Run: .venv/bin/python benchmarks/bench_rerankers.py
"""

from __future__ import annotations

import math
import time

import numpy as np
from utscale import matrix, outputs, rerankers, runs


def codet_loop(cube: matrix.PassCube) -> float:
    """CodeT's released ranking (agreement.py), problem by problem over dicts: the mean accuracy (%)."""
    total = 0.0
    for p in range(len(cube.task_ids)):
        n = int(cube.n_solutions[p])
        groups: dict[tuple, list[int]] = {}
        for s in range(n):
            passed = tuple(int(c) for c in np.flatnonzero(cube.passes[p, s] & (cube.weights[p] > 0)))
            if passed:
                groups.setdefault(passed, []).append(s)
        if not groups:
            total += float(cube.correct[p, :n].mean())
            continue
        scores = {key: math.sqrt(len(members)) * sum(cube.weights[p, c] for c in key) for key, members in groups.items()}
        best = max(scores.values())
        picked = [s for key, members in groups.items() if scores[key] == best for s in members]
        total += float(np.mean([cube.correct[p, s] for s in picked]))
    return 100 * total / len(cube.task_ids)


def srank_loop(cube: outputs.OutputCube) -> float:
    """SRank's clustering and interaction matrix as its released code computes them (lists compared
    pairwise, a double loop over clusters and inputs): the mean accuracy (%)."""
    total = 0.0
    for p in range(len(cube.task_ids)):
        n, k = int(cube.n_solutions[p]), int(cube.n_inputs[p])
        clusters: list[list] = []  # [outputs, distinct count, members]
        invalid: list[int] = []
        for s in range(n):
            outs = [(bool(cube.returned[p, s, i]), int(cube.codes[p, s, i]) if cube.returned[p, s, i] else None)
                    for i in range(k)]
            if not any(flag for flag, _ in outs) or (k > 1 and all(o[1] == outs[0][1] for o in outs)):
                invalid.append(s)
                continue
            for cluster in clusters:
                if cluster[0] == outs:
                    cluster[1] += int(cube.distinct[p, s])
                    cluster[2].append(s)
                    break
            else:
                clusters.append([outs, int(cube.distinct[p, s]), [s]])
        sizes = [c[1] for c in clusters]
        rates = [float(np.mean([cube.agreement[p, s] for s in c[2]])) for c in clusters]
        share = [size / sum(sizes) if sum(sizes) else 0.0 for size in sizes]
        scores = []
        for a, ca in enumerate(clusters):
            score = 0.0
            for b, cb in enumerate(clusters):
                overlap = 1.0 if a == b else sum(x[0] and y[0] and x[1] == y[1] for x, y in zip(ca[0], cb[0])) / k
                score += overlap * share[b] * rates[b]
            scores.append(score)
        scored = [(score, c[2]) for score, c in zip(scores, clusters)] + ([(0.0, invalid)] if invalid else [])
        best = max(score for score, _ in scored)
        picked = [s for score, members in scored if abs(score - best) <= 1e-12 for s in members]
        total += float(np.mean([cube.correct[p, s] for s in picked]))
    return 100 * total / len(cube.task_ids)


def timed(call, *args):
    started = time.perf_counter()
    value = call(*args)
    return value, time.perf_counter() - started


def main() -> None:
    run = runs.open_run("codet-humaneval")
    (cubes, seconds_load) = timed(lambda: {**matrix.load_all(run), **outputs.load_all(run)})
    print(f"cubes loaded in {seconds_load:.1f} s: " + ", ".join(f"{g} {c.codes.shape if hasattr(c, 'codes') else c.passes.shape}"
                                                                for g, c in cubes.items()))
    table, seconds_table = timed(lambda: rerankers.reranker_table(cubes, 0))
    print(f"reranker_table, every rule at every granularity with bootstrap intervals: {seconds_table:.1f} s")
    for name, vectorised, loop, cube in (
            ("codet_released", lambda c: rerankers.full_pick_accuracy(c, "codet_released", True).mean() * 100,
             codet_loop, cubes["assertion"]),
            ("srank", lambda c: np.nanmean(rerankers.per_output_accuracy(c, rerankers._srank)) * 100,
             srank_loop, cubes["outputs"])):
        ours, t_ours = timed(vectorised, cube)
        theirs, t_loop = timed(loop, cube)
        print(f"{name}: suite {t_ours:.2f} s, per-problem loop {t_loop:.2f} s, {t_loop / t_ours:.0f}x; "
              f"accuracy {ours:.4f} vs {theirs:.4f} ({'same' if abs(ours - theirs) < 1e-9 else 'DIFFERENT'})")


if __name__ == "__main__":
    main()
