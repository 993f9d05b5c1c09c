"""Scaling-grid speed and memory: vectorised `scaling.scaling_grid` against a plain per-problem loop.

Workload: 164 problems × 100 solutions × 100 unit tests (synthetic, clustered like real pass matrices),
N and M on a log grid {1, 2, 5, 10, 20, 50, 100}, 100 resamples, the authors' code protocol.
The loop baseline runs the same draws through `voting.reference_vote_accuracy`; since it would take
far too long on the full grid, it is timed on the first BASELINE_RESAMPLES resamples of every cell
and its time per vote is extrapolated to the full workload (printed as such).

Run: .venv/bin/python benchmarks/bench_scaling_grid.py
"""

from __future__ import annotations

import resource
import time
import tracemalloc

import numpy as np
from utscale import matrix, scaling, voting

P, N, M, R = 164, 100, 100, 100
GRID = (1, 2, 5, 10, 20, 50, 100)
BASELINE_RESAMPLES = 2


def synthetic_cube(seed: int = 0) -> matrix.PassCube:
    rng = np.random.default_rng(seed)
    skill = rng.beta(0.8, 0.8, P)
    correct = rng.random((P, N)) < skill[:, None]
    archetypes = rng.random((P, 6, M)) < 0.5  # wrong solutions fall into a few behaviours
    which = rng.integers(0, 6, (P, N))
    wrong = np.take_along_axis(archetypes, which[:, :, None], axis=1) ^ (rng.random((P, N, M)) < 0.05)
    good_tests = rng.random((P, 1, M)) < 0.8  # tests that are themselves correct
    passes = np.where(correct[:, :, None], good_tests | (rng.random((P, N, M)) < 0.02), wrong)
    return matrix.PassCube(tuple(f"T/{i}" for i in range(P)), passes, correct, np.full(P, N), np.full(P, M))


def baseline_seconds_per_vote(cube: matrix.PassCube) -> tuple[float, int]:
    votes, t0 = 0, time.perf_counter()
    for n in GRID:
        for m in GRID:
            mult = scaling.tests_drawn(cube, m, BASELINE_RESAMPLES, "coderm_code", seed=0)
            for p in range(P):
                for r in range(BASELINE_RESAMPLES):
                    sub = cube.passes[p][:n][:, mult[p, r] > 0]
                    voting.reference_vote_accuracy(sub, cube.correct[p, :n])
                    votes += 1
    return (time.perf_counter() - t0) / votes, votes


def main() -> None:
    cube = synthetic_cube()
    total_votes = P * len(GRID) ** 2 * R
    timings = []
    for _ in range(3):  # timed without instrumentation; best of three
        t0 = time.perf_counter()
        grid = scaling.scaling_grid(cube, GRID, GRID, resamples=R, protocol="coderm_code", seed=0)
        timings.append(time.perf_counter() - t0)
    vec_s = min(timings)
    tracemalloc.start()  # a separate, instrumented run for the memory peak
    scaling.scaling_grid(cube, GRID, GRID, resamples=R, protocol="coderm_code", seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_vote, votes = baseline_seconds_per_vote(cube)
    base_s = per_vote * total_votes
    best = grid.summary().query("n_solutions == 100 and n_tests == 100").accuracy.iloc[0]
    print(f"workload: {P} problems x {N} solutions x {M} tests, grid {len(GRID)}x{len(GRID)}, {R} resamples "
          f"= {total_votes:,} votes")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"vectorised: {vec_s:.2f} s best of 3 ({', '.join(f'{t:.2f}' for t in timings)}; "
          f"{total_votes / vec_s:,.0f} votes/s); peak traced numpy memory {peak / 2**20:.0f} MiB, "
          f"process peak RSS {rss:.0f} MiB")
    print(f"loop baseline: {per_vote * 1e6:.0f} us/vote over {votes:,} votes -> {base_s:,.0f} s extrapolated")
    print(f"ratio (baseline / vectorised): {base_s / vec_s:.0f}x   [target >= 100x, < 30 s, < 2048 MiB]")
    print(f"sanity: accuracy at n=100, m=100 = {best:.2f}%")


if __name__ == "__main__":
    main()
