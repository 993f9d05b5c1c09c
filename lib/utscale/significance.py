"""The p-values the verdict rules (`claims`) are decided by: a bootstrap p-value, Page's trend test over
the test-count grid, and Holm's adjustment over the N values a claim is judged at."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment: adjusted p-values, monotone in the order of the raw ones."""
    raw = np.asarray(p_values, dtype=float)
    order = np.argsort(raw, kind="stable")
    adjusted = np.empty_like(raw)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(raw) - rank) * raw[index]))
        adjusted[index] = running
    return adjusted


def bootstrap_p(draws: np.ndarray) -> float:
    """Two-sided bootstrap p-value of a mean difference being zero: twice the smaller tail of the draws
    on either side of zero, never below one draw's share."""
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return 1.0
    tail = min(float(np.mean(draws <= 0)), float(np.mean(draws >= 0)))
    return float(min(1.0, max(2 * tail, 1 / draws.size)))


def page_trend_p(per_m: np.ndarray) -> tuple[float, float]:
    """Page's L test of an increasing trend across the m grid, problems as blocks ([K, P] per-problem
    accuracies; problems with a missing cell dropped): (L, one-sided p, asymptotic; ties within a
    problem, common when every cell is 0 or 100, make it conservative)."""
    from scipy.stats import page_trend_test

    blocks = per_m.T[~np.isnan(per_m.T).any(axis=1)]
    if len(blocks) < 2:
        return float("nan"), 1.0
    result = page_trend_test(blocks, method="asymptotic")
    return float(result.statistic), float(result.pvalue)
