"""Allocation speed: 400 problems x 64 budget levels x 100 resamples of the pass rates, the paper's greedy
rule, vectorised (`allocation.allocate`) against a heap-based greedy loop (one pop per unit of budget),
checking both give the same allocations. The loop is timed on RESAMPLES_BASELINE resamples and
extrapolated to all of them.

Run: .venv/bin/python benchmarks/bench_allocation.py
"""

from __future__ import annotations

import heapq
import time

import numpy as np
from utscale import allocation

P, CAP, LEVELS, R = 400, 100, 64, 100
RESAMPLES_BASELINE = 2


def heap_greedy(lam: np.ndarray, total: int, cap: int) -> np.ndarray:
    counts = np.zeros(len(lam), dtype=int)
    heap = [(-lam[i], i) for i in range(len(lam))]
    heapq.heapify(heap)
    for _ in range(min(total, len(lam) * cap)):
        _, i = heapq.heappop(heap)
        counts[i] += 1
        if counts[i] < cap:
            heapq.heappush(heap, (-lam[i] * (1 - lam[i]) ** counts[i], i))
    return counts


def main() -> None:
    rng = np.random.default_rng(0)
    pass_rates = rng.beta(0.7, 0.7, size=(R, P))  # e.g. bootstrap resamples of the solutions
    budgets = np.arange(1, LEVELS + 1)
    t0 = time.perf_counter()
    vectorised = [allocation.allocate_levels(allocation.paper_marginal_gains(lam, CAP), budgets * P)
                  for lam in pass_rates]
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    looped = [[heap_greedy(lam, b * P, CAP) for b in budgets] for lam in pass_rates[:RESAMPLES_BASELINE]]
    slow = (time.perf_counter() - t0) * R / RESAMPLES_BASELINE
    agree = sum(np.array_equal(a, b) for va, vl in zip(vectorised, looped) for a, b in zip(va, vl))
    print(f"{P} problems x {LEVELS} budget levels x {R} resamples = {P * LEVELS * R:,} problem allocations")
    print(f"vectorised: {fast:.2f} s; heap greedy: {slow:.1f} s (extrapolated from {RESAMPLES_BASELINE} resamples)")
    print(f"ratio: {slow / fast:.1f}x; identical allocations on {agree} of {RESAMPLES_BASELINE * LEVELS} checked")


if __name__ == "__main__":
    main()
