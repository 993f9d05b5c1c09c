"""Best-of-N selection from a pass matrix: the CodeRM rule, CodeT's dual agreement, plain max-pass.

Everything is a pure numpy function of boolean arrays. A batch axis `B` (problems × resamples) comes
first, so one call scores thousands of (problem, resample) draws without a Python loop.

Shapes: `passes` bool [B, n, m] (solution i passes unit test j); `correct` bool [B, n] (solution i
passes the ground truth). Missing tests or solutions are represented as all-False rows/columns, which
is how the authors' code treats them (docs/method.md §1.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

Rule = Literal["coderm", "codet", "codet_released", "max_pass"]

def key_weights(m: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Per-test weights whose weighted sum identifies a pass-set, float64 [m].

    Without an rng the weights are powers of two (exact, up to m = 52). Otherwise they are distinct
    random integers no larger than 2^52 / m, so every sum is an exact integer in float64 whatever the
    summation order, and two different pass-sets share a key only if a random signed subset sum is
    zero (probability about m / 2^52 per pair).
    """
    if rng is None:
        if m > 52:
            rng = np.random.default_rng(0x5EED_C0DE)
        else:
            return np.ldexp(1.0, np.arange(m))
    bound = 2**52 // max(m, 1)
    return rng.choice(bound, size=m, replace=False).astype(np.float64) + 1.0


def pass_summaries(passes: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(tests passed, pass-set key) per solution from bool [B, n, m]; both float64 [B, n]. `weights`
    ([m] or [B, m]) counts each passed test that many times (CodeT's multiplicity)."""
    passes = np.asarray(passes, dtype=bool)
    as_float = passes.astype(np.float64)
    counts = as_float.sum(axis=-1) if weights is None else np.einsum("bnm,bm->bn", as_float,
                                                                     np.broadcast_to(weights, passes.shape[::2]))
    return counts, as_float @ key_weights(passes.shape[-1])


def group_sizes(keys: np.ndarray, members: np.ndarray) -> np.ndarray:
    """For each member, how many members share its key (non-members get 0); int [B, n].

    Sort-based, O(n log n) per row: the n × n comparison it replaces dominated large grids.
    """
    b, n = keys.shape
    # non-members get distinct negative keys so they never join a group (real keys are ≥ 0)
    marked = np.where(members, keys, -1.0 - np.arange(n))
    order = np.argsort(marked, axis=-1)  # order inside a group is irrelevant
    ordered = np.take_along_axis(marked, order, axis=-1)
    run = np.zeros((b, n), dtype=np.int64)
    run[:, 1:] = np.cumsum(ordered[:, 1:] != ordered[:, :-1], axis=-1)
    flat = run + (np.arange(b) * n)[:, None]
    lengths = np.bincount(flat.ravel(), minlength=b * n)[flat]
    sizes = np.empty_like(lengths)
    np.put_along_axis(sizes, order, lengths, axis=-1)
    return np.where(members, sizes, 0)


def largest_groups(keys: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Members belonging to a largest group of equal keys among the members, bool [B, n].

    Same answer as `group_sizes(...) == max`, faster: a value sort finds each row's largest group and
    its key, and membership is then a key comparison; rows with several equally large groups (rare)
    go through `group_sizes`.
    """
    # fast path: rows whose members all share one key (often a single member) keep every member
    high = np.where(members, keys, -np.inf).max(axis=-1)
    low = np.where(members, keys, np.inf).min(axis=-1)
    kept = members.copy()
    mixed = np.flatnonzero(high != low)
    if mixed.size:
        kept[mixed] = _largest_groups_sorted(keys[mixed], members[mixed])
    return kept


def _largest_groups_sorted(keys: np.ndarray, members: np.ndarray) -> np.ndarray:
    b, n = keys.shape
    marked = np.where(members, keys, -1.0 - np.arange(n))
    ordered = np.sort(marked, axis=-1)
    new_run = np.ones((b, n), dtype=bool)
    new_run[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(starts, b * n))
    values = ordered.ravel()[starts]
    lengths = np.where(values >= 0, lengths, 0)  # runs of non-members do not count
    rows = starts // n
    longest = np.maximum.reduceat(lengths, np.searchsorted(rows, np.arange(b)))
    winning = (lengths == longest[rows]) & (lengths > 0)
    winners_per_row = np.bincount(rows[winning], minlength=b)
    winner_key = np.full(b, np.nan)
    winner_key[rows[winning][::-1]] = values[winning][::-1]  # the first winning key of each row
    kept = members & (keys == winner_key[:, None])
    tied = np.flatnonzero(winners_per_row > 1)
    if tied.size:
        sizes = group_sizes(keys[tied], members[tied])
        kept[tied] = members[tied] & (sizes == longest[tied][:, None])
    return kept


# (counts [B, n], pass-set keys [B, n], the most-passing solutions bool [B, n]) -> the kept solutions
Selector = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _codet_selector(size_weight: Callable[[np.ndarray], np.ndarray]) -> Selector:
    def keep(counts: np.ndarray, keys: np.ndarray, top: np.ndarray) -> np.ndarray:
        score = size_weight(group_sizes(keys, np.ones_like(top)).astype(np.float64)) * counts
        return score == score.max(axis=-1, keepdims=True)

    return keep


# A new rule is one entry here (and one name in `Rule`); `select_from` documents each.
SELECTORS: dict[Rule, Selector] = {
    "coderm": lambda counts, keys, top: largest_groups(keys, top),
    "codet": _codet_selector(lambda sizes: sizes),
    "codet_released": _codet_selector(np.sqrt),
    "max_pass": lambda counts, keys, top: top,
}
RULES: tuple[Rule, ...] = tuple(SELECTORS)


def select_from(counts: np.ndarray, keys: np.ndarray, rule: Rule = "coderm") -> np.ndarray:
    """The solutions a rule keeps, bool [B, n], from per-solution pass counts and pass-set keys.

    - coderm (Eq. 1 + the authors' tie-break): most tests passed; among those, the members of the
      largest group of identical pass-sets.
    - codet (dual execution agreement, the paper's formula |S|·|T|): group solutions by identical
      pass-set; a group's score is its size × the number of tests it passes; keep the solutions of the
      best-scoring groups.
    - codet_released (CodeT's released code): the same with √size × tests passed.
    - max_pass: most tests passed, ties broken uniformly at random.
    With zero tests every rule keeps every solution: that is Vanilla (random pick).
    """
    if rule not in SELECTORS:
        raise ValueError(f"unknown rule {rule!r}; choose one of {RULES}")
    return SELECTORS[rule](counts, keys, counts == counts.max(axis=-1, keepdims=True))


def select(passes: np.ndarray, rule: Rule = "coderm", weights: np.ndarray | None = None) -> np.ndarray:
    """`select_from` on a batch of pass matrices bool [B, n, m] (tests weighted by `weights`)."""
    return select_from(*pass_summaries(passes, weights), rule)


def expected_accuracy(kept: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Expected correctness of a uniform pick among the kept solutions, float [B] (nan when n = 0)."""
    kept_n = np.count_nonzero(kept, axis=-1)
    hits = np.count_nonzero(kept & np.asarray(correct, dtype=bool), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(kept_n > 0, hits / np.maximum(kept_n, 1), np.nan)


@dataclass(frozen=True)
class Vote:
    accuracy: float
    selected: np.ndarray  # solution indices the rule keeps (the pick is uniform among them)


def majority_vote(passes: np.ndarray, correct: np.ndarray, rule: Rule = "coderm") -> Vote:
    """One problem: passes bool [N, M], correct bool [N] → expected accuracy and the kept solution ids."""
    passes = np.asarray(passes, dtype=bool)
    correct = np.asarray(correct, dtype=bool)
    if passes.ndim != 2 or correct.shape != passes.shape[:1]:
        raise ValueError(f"passes must be [N, M] and correct [N]; got {passes.shape} and {correct.shape}")
    kept = select(passes[None], rule)[0]
    return Vote(accuracy=float(expected_accuracy(kept[None], correct[None])[0]), selected=np.flatnonzero(kept))


def majority_vote_accuracy(passes: np.ndarray, correct: np.ndarray, rule: Rule = "coderm") -> float:
    return majority_vote(passes, correct, rule).accuracy


def reference_vote_accuracy(passes: np.ndarray, correct: np.ndarray, rule: Rule = "coderm",
                            weights: np.ndarray | None = None) -> float:
    """The same rules stated plainly in Python, one problem at a time: the oracle the vectorised path is
    tested against and the baseline its benchmark is measured against. `weights`: how often each test
    counts (CodeT's multiplicity); 1 each by default."""
    rows = [tuple(bool(x) for x in row) for row in np.asarray(passes)]
    if not rows:
        return float("nan")
    w = [1.0] * len(rows[0]) if weights is None else [float(x) for x in weights]
    counts = [sum(wj for wj, x in zip(w, r) if x) for r in rows]
    groups: dict[tuple[bool, ...], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r, []).append(i)
    if rule == "max_pass":
        kept = [i for i, c in enumerate(counts) if c == max(counts)]
    elif rule == "coderm":
        top = [i for i, c in enumerate(counts) if c == max(counts)]
        consistency = {i: sum(1 for j in top if rows[j] == rows[i]) for i in top}
        kept = [i for i in top if consistency[i] == max(consistency.values())]
    elif rule in ("codet", "codet_released"):
        size = (lambda k: k) if rule == "codet" else math.sqrt
        score = [size(len(groups[r])) * counts[i] for i, r in enumerate(rows)]
        kept = [i for i, s in enumerate(score) if s == max(score)]
    else:
        raise ValueError(f"unknown rule {rule!r}")
    return sum(bool(correct[i]) for i in kept) / len(kept)
