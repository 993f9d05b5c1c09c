"""Scaling curves from one pass matrix: accuracy(n solutions, m unit tests) with resampled intervals,
difficulty quintiles, and the gain over random pick by difficulty (docs/method.md §1–§2).

Execute once, analyse many times: the full N×M matrix per problem is computed once by the sandbox;
every curve here is a vectorised function of it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from utscale.matrix import PassCube
from utscale.resampling import PROTOCOLS, SEED_STREAM, Protocol
from utscale.voting import Rule, expected_accuracy, key_weights, select_from


def _test_rng(seed: int, m: int, protocol: Protocol) -> np.random.Generator:
    # tests are drawn per (m, resample) and shared by every n: curves for different N are paired
    return np.random.default_rng(np.random.SeedSequence([seed, m, SEED_STREAM[protocol], 0]))


def _solution_rng(seed: int, n: int, protocol: Protocol) -> np.random.Generator:
    # no m in the seed: the same solutions are drawn for every number of tests (paired curves)
    return np.random.default_rng(np.random.SeedSequence([seed, n, SEED_STREAM[protocol], 1]))


def _test_multiplicity(cube: PassCube, m: int, resamples: int, protocol: Protocol,
                       rng: np.random.Generator) -> np.ndarray:
    """How often each test is drawn in each resample, float [P, R, M]."""
    p_count, _, m_total = cube.shape
    mult = np.zeros((p_count, resamples, m_total))
    if m == 0 or m_total == 0:
        return mult
    if protocol in ("coderm_code", "subsample"):
        # m tests drawn without replacement, independently per problem and resample
        if m >= m_total:
            mult[:] = 1.0
            return mult
        chosen = np.argpartition(rng.random((p_count, resamples, m_total)), m - 1, axis=-1)[..., :m]
        np.put_along_axis(mult, chosen, 1.0, axis=-1)
        return mult
    # the paper's text: bootstrap, with replacement
    drawn = rng.integers(0, m_total, size=(p_count, resamples, m))
    flat = drawn + (np.arange(p_count * resamples) * m_total).reshape(p_count, resamples, 1)
    return np.bincount(flat.ravel(), minlength=mult.size).reshape(mult.shape).astype(float)


def tests_drawn(cube: PassCube, m: int, resamples: int, protocol: Protocol, seed: int) -> np.ndarray:
    """How often each test is drawn in each resample, float [P, R, M]: the draws behind every cell with m
    tests (shared by every n), as `solution_draw` gives the solutions'."""
    return _test_multiplicity(cube, m, resamples, protocol, _test_rng(seed, m, protocol))


def transposed_float(cube: PassCube) -> np.ndarray:
    """passes as contiguous float64 [P, M, N], so the per-draw products take numpy's BLAS path."""
    return np.ascontiguousarray(cube.passes.transpose(0, 2, 1), dtype=np.float64)


def test_draw_summaries(cube: PassCube, m: int, resamples: int, protocol: Protocol, seed: int,
                        passes_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every solution's pass count and pass-set key over each resample's drawn tests, [P, R, N] each.

    No [n, m] sub-matrix is materialised: both are batched matrix products of the full matrix with
    the draw's test multiplicities (keys use exact-integer weights, see `voting.key_weights`).
    """
    rng = _test_rng(seed, m, protocol)
    mult = _test_multiplicity(cube, m, resamples, protocol, rng)
    weights = key_weights(cube.shape[2], rng)
    return np.matmul(mult, passes_t), np.matmul((mult > 0) * weights, passes_t)


def solution_draw(cube: PassCube, n: int, resamples: int, protocol: Protocol, seed: int) -> np.ndarray | None:
    """Which n solutions each resample uses, int [P, R, n] (None: the first n, the authors' code)."""
    p_count, n_total, _ = cube.shape
    if protocol == "coderm_code":
        return None
    rng = _solution_rng(seed, n, protocol)
    if protocol == "bootstrap":  # with replacement from each problem's real solutions
        return (rng.random((p_count, resamples, n)) * cube.n_solutions[:, None, None]).astype(np.int64)
    # without replacement: the n smallest of random keys, padding rows (missing solutions) last
    padding = np.arange(n_total)[None, None, :] >= cube.n_solutions[:, None, None]
    keys = np.where(padding, np.inf, rng.random((p_count, resamples, n_total)))
    return np.argpartition(keys, n - 1, axis=-1)[..., :n] if n < n_total else np.argsort(keys, axis=-1)


def vote_on_draw(cube: PassCube, counts: np.ndarray, keys: np.ndarray, n: int, protocol: Protocol,
                 seed: int, rule: Rule) -> np.ndarray:
    """Expected accuracy per resample and problem [R, P] for n solutions, given a test draw's summaries."""
    p_count, resamples, _ = counts.shape
    correct = np.broadcast_to(cube.correct[:, None, :], counts.shape)
    sol = solution_draw(cube, n, resamples, protocol, seed)
    if sol is None:  # the authors' code: the first n solutions
        counts, keys, correct = counts[..., :n], keys[..., :n], correct[..., :n]
    else:
        counts, keys, correct = (np.take_along_axis(a, sol, axis=-1) for a in (counts, keys, correct))
    batch = p_count * resamples
    kept = select_from(counts.reshape(batch, n), keys.reshape(batch, n), rule)
    return expected_accuracy(kept, correct.reshape(batch, n)).reshape(p_count, resamples).T


def cell_accuracy(cube: PassCube, n: int, m: int, resamples: int, protocol: Protocol, seed: int,
                  rule: Rule = "coderm") -> np.ndarray:
    """Expected best-of-n accuracy with m tests, per resample and problem: float [R, P]."""
    counts, keys = test_draw_summaries(cube, m, resamples, protocol, seed, transposed_float(cube))
    return vote_on_draw(cube, counts, keys, n, protocol, seed, rule)


@dataclass(frozen=True)
class ScalingGrid:
    """accuracy[i_n, i_m, r, p]: problem p's expected accuracy in resample r with n_values[i_n] solutions
    and m_values[i_m] tests (nan where the protocol cannot draw that many)."""

    n_values: tuple[int, ...]
    m_values: tuple[int, ...]
    protocol: Protocol
    rule: Rule
    accuracy: np.ndarray
    task_ids: tuple[str, ...]
    seed: int = 0  # the run's seed the draws came from; the intervals' bootstrap uses it too

    def summary(self, problems: np.ndarray | None = None, seed: int | None = None) -> pd.DataFrame:
        """Benchmark accuracy per cell (%): the mean over problems of each problem's expected accuracy,
        with a 95% interval from a bootstrap over the problems (see `problem_bootstrap`), seeded with the
        grid's seed unless told otherwise, so the figures' intervals are the verdicts' draws. `mc_se`: the
        Monte-Carlo standard error of the accuracy from the finite resamples of solutions and tests (the
        spread of the per-resample benchmark means over the square root of their number; 0 where every
        resample draws the same), the part of the noise more resamples would remove."""
        seed = self.seed if seed is None else seed
        expected = self.per_problem() if problems is None else self.per_problem()[..., problems]
        draws = self.accuracy if problems is None else self.accuracy[..., problems]
        rows = []
        for i, n in enumerate(self.n_values):
            for j, m in enumerate(self.m_values):
                values = expected[i, j] * 100
                if np.all(np.isnan(values)):
                    continue
                lo, hi = np.nanpercentile(problem_bootstrap(values, seed), [2.5, 97.5])
                rows.append({"n_solutions": n, "n_tests": m, "accuracy": float(np.nanmean(values)),
                             "ci_low": float(lo), "ci_high": float(hi), "mc_se": monte_carlo_se(draws[i, j] * 100)})
        return pd.DataFrame(rows)

    def per_problem(self) -> np.ndarray:
        """Mean over resamples, [n, m, P]."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(self.accuracy, axis=2)


BOOTSTRAP_DRAWS = 2000  # problem resamples behind every interval


def monte_carlo_se(draws: np.ndarray) -> float:
    """The Monte-Carlo standard error of a benchmark mean from draws [R, P] (resample, problem): the
    standard deviation of the R per-resample means over sqrt(R); 0 with one resample or identical ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(draws, axis=-1)
    means = means[~np.isnan(means)]
    return float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else 0.0


def problem_bootstrap(expected: np.ndarray, seed: int = 0, draws: int = BOOTSTRAP_DRAWS) -> np.ndarray:
    """Bootstrap draws of the mean over problems (last axis of `expected`, per-problem expected values).
    The benchmark is a sample of problems: an interval over the resamples of solutions and tests alone
    has zero width at the full N and M however few problems there are. Seeded, so quantities drawn
    with the same seed are paired by problem."""
    p = expected.shape[-1]
    pick = np.random.default_rng(seed).integers(0, p, size=(draws, p))
    with warnings.catch_warnings():  # a draw of only unscored problems stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(expected[..., pick], axis=-1)


def scaling_grid(cube: PassCube, n_values: Sequence[int], m_values: Sequence[int], resamples: int,
                 protocol: Protocol = "subsample", seed: int = 0, rule: Rule = "coderm",
                 workers: int | None = None) -> ScalingGrid:
    """accuracy(n, m) for every cell of the grid, every resample and every problem at once.

    Cells sharing a test draw run on `workers` threads (default: one per core); numpy releases the
    GIL in the sorts and products that dominate. Results do not depend on the number of workers.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    if resamples < 1:
        raise ValueError("resamples must be ≥ 1")
    _, n_total, m_total = cube.shape
    acc = np.full((len(n_values), len(m_values), resamples, cube.shape[0]), np.nan)
    passes_t = transposed_float(cube)
    for j, m in enumerate(m_values):
        without_replacement = protocol in ("coderm_code", "subsample")
        feasible = [i for i, n in enumerate(n_values)
                    if n >= 1 and m >= 0 and not (without_replacement and (n > n_total or m > m_total))]
        if not feasible:
            continue
        if m == 0 and protocol == "subsample":
            # no tests: every rule picks uniformly among the drawn solutions, whose expected accuracy is
            # exactly the problem's pass rate, whatever n (no resampling noise)
            for i in feasible:
                acc[i, j] = cube.pass_rates()[None, :]
            continue
        # without replacement, drawing none or all of the tests is the same in every resample
        fixed = without_replacement and (m == 0 or m >= m_total)
        draws = 1 if fixed else resamples
        counts, keys = test_draw_summaries(cube, m, draws, protocol, seed, passes_t)
        if fixed and protocol == "subsample":  # the solution draw still varies by resample
            counts, keys = (np.broadcast_to(a, (a.shape[0], resamples, a.shape[2])) for a in (counts, keys))
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            # the pool is drained inside this iteration, so binding counts and keys here is safe
            cells = pool.map(lambda i, c=counts, k=keys: vote_on_draw(cube, c, k, n_values[i], protocol, seed, rule),
                             feasible)
            for i, cell in zip(feasible, cells):
                acc[i, j] = cell  # broadcasts a fixed draw over the resamples
    return ScalingGrid(tuple(n_values), tuple(m_values), protocol, rule, acc, cube.task_ids, seed)


def cell_points(grid: ScalingGrid, n: int, m: int) -> np.ndarray:
    """Each problem's expected accuracy (%) in one cell (its mean over the resamples), [P]."""
    return grid.per_problem()[grid.n_values.index(n), grid.m_values.index(m)] * 100


def gain_points(grid: ScalingGrid, n: int, m: int) -> np.ndarray:
    """Voting with m tests minus random pick among the same n, per problem (points), [P]. The
    difference is paired: both cells draw the same solutions (see `_solution_rng`)."""
    return cell_points(grid, n, m) - cell_points(grid, n, 0)


def gain_distribution(grid: ScalingGrid, m: int | None = None, tolerance: float = 1e-9) -> pd.DataFrame:
    """How the gain over random pick is spread over problems, per n at m tests (default: the largest):
    problems that gain, lose and stay level (within `tolerance` points), the points gained and lost in
    sum, the fewest problems whose gains make up half of all points gained, and the per-problem gain's
    10th, 50th and 90th percentiles. A mean gain of +2 can be 20 problems up by 10 or 2 up by 100 and 18
    down by 0: the reader of a verdict needs to know which."""
    m = max(grid.m_values) if m is None else m
    rows = []
    for n in grid.n_values:
        gains = gain_points(grid, n, m)
        gains = gains[~np.isnan(gains)]
        if gains.size == 0:
            continue
        up = np.sort(gains[gains > tolerance])[::-1]
        carriers = int(np.searchsorted(np.cumsum(up), up.sum() / 2) + 1) if up.size else 0
        p10, p50, p90 = np.percentile(gains, [10, 50, 90])
        rows.append({"n_solutions": n, "n_tests": m, "problems": int(gains.size), "gained": int(up.size),
                     "lost": int((gains < -tolerance).sum()), "level": int((np.abs(gains) <= tolerance).sum()),
                     "points_gained": float(up.sum()), "points_lost": float(gains[gains < -tolerance].sum()),
                     "half_of_gains_from": carriers, "p10": float(p10), "median": float(p50), "p90": float(p90)})
    return pd.DataFrame(rows)


def interval(draws: np.ndarray, level: float = 0.05) -> tuple[float, float]:
    """The central (1 − level) percentile interval of bootstrap draws (NaN draws ignored)."""
    lo, hi = np.nanpercentile(draws, [100 * level / 2, 100 * (1 - level / 2)])
    return float(lo), float(hi)


def gain_summary(grid: ScalingGrid, seed: int = 0) -> pd.DataFrame:
    """The paired gain over random pick (points) in every cell with m > 0, with its 95% problem-bootstrap
    interval: the quantity claims 1-3 and 8 judge at the largest cell, here at every n and m."""
    if 0 not in grid.m_values:
        raise ValueError("the grid needs m = 0 (random pick) to measure gains")
    rows = []
    for n in grid.n_values:
        for m in grid.m_values:
            gains = gain_points(grid, n, m)
            if m == 0 or np.all(np.isnan(gains)):
                continue
            lo, hi = interval(problem_bootstrap(gains, seed))
            rows.append({"n_solutions": n, "n_tests": m, "gain": float(np.nanmean(gains)), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


HARD, EASY = (4, 5), (1, 2)  # the quintiles claim 6 compares


def hard_minus_easy(gains: np.ndarray, quintiles: np.ndarray, seed: int = 0) -> np.ndarray:
    """Bootstrap draws of the mean gain on the hard quintiles minus that on the easy ones; each group
    is resampled on its own (stratified), with its own draw."""
    hard, easy = np.isin(quintiles, HARD), np.isin(quintiles, EASY)
    return problem_bootstrap(gains[hard], seed) - problem_bootstrap(gains[easy], seed + 1)


def quintile_gains(grid: ScalingGrid, quintiles: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """The gain of the largest cell (most solutions, most tests) over random pick, per difficulty
    quintile and for hard (Q4-5) minus easy (Q1-2), with 95% intervals: claim 6's numbers."""
    n, m = max(grid.n_values), max(grid.m_values)
    gains = gain_points(grid, n, m)
    rows = []
    for q in range(1, 6):
        mask = quintiles == q
        if mask.any():
            lo, hi = interval(problem_bootstrap(gains[mask], seed))
            rows.append({"group": f"Q{q}", "problems": int(mask.sum()), "gain": float(np.nanmean(gains[mask])),
                         "ci_low": lo, "ci_high": hi})
    hard, easy = np.isin(quintiles, HARD), np.isin(quintiles, EASY)
    if hard.any() and easy.any():
        lo, hi = interval(hard_minus_easy(gains, quintiles, seed))
        rows.append({"group": "Q4-5 minus Q1-2", "problems": int(hard.sum() + easy.sum()),
                     "gain": float(np.nanmean(gains[hard]) - np.nanmean(gains[easy])), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows).assign(n_solutions=n, n_tests=m)


def difficulty_quintiles(pass_rates: np.ndarray) -> np.ndarray:
    """Quintile per problem, 1 = easiest (highest pass rate) … 5 = hardest; 0 for problems with no
    correct solution, which the paper removes first. Sizes differ by at most one."""
    quintile = np.zeros(len(pass_rates), dtype=int)
    solvable = np.flatnonzero(pass_rates > 0)
    order = solvable[np.argsort(-pass_rates[solvable], kind="stable")]
    for q, part in enumerate(np.array_split(order, 5), start=1):
        quintile[part] = q
    return quintile


def quintile_summary(grid: ScalingGrid, quintiles: np.ndarray) -> pd.DataFrame:
    frames = []
    for q in range(1, 6):
        mask = quintiles == q
        if mask.any():
            frames.append(grid.summary(mask).assign(quintile=q, problems=int(mask.sum())))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def gain_by_difficulty(grid: ScalingGrid, pass_rates: np.ndarray, n: int, bins: int = 10) -> pd.DataFrame:
    """Best-of-n accuracy with m tests minus the random-pick accuracy (m = 0), in points, per difficulty
    bin (difficulty = 1 − pass rate), as in the paper's Appendix B."""
    if 0 not in grid.m_values:
        raise ValueError("the grid needs m = 0 (random pick) to measure gains")
    i_n = grid.n_values.index(n)
    per_problem = grid.per_problem()[i_n]  # [m, P]
    vanilla = per_problem[grid.m_values.index(0)]
    difficulty = 1.0 - pass_rates
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(difficulty, edges[1:-1]), 0, bins - 1)
    rows = []
    for j, m in enumerate(grid.m_values):
        if m == 0:
            continue
        gain = per_problem[j] - vanilla
        for b in range(bins):
            mask = (which == b) & ~np.isnan(gain)
            if mask.any():
                rows.append({"difficulty": round(float((edges[b] + edges[b + 1]) / 2), 3), "n_tests": m,
                             "gain": float(gain[mask].mean()) * 100, "problems": int(mask.sum())})
    return pd.DataFrame(rows)


def pass_at(cube: PassCube, n: int) -> np.ndarray:
    """[P] the chance that n solutions drawn without replacement from a problem's sampled ones include a
    correct one (pass@n, the unbiased estimator of Chen et al. 2021: 1 - C(N-c, n) / C(N, n)); a problem
    with fewer than n solutions uses all of them. The ceiling of every reranker at N = n; pass@1 is the
    random pick. NaN for a problem without solutions."""
    total = cube.n_solutions.astype(int)
    correct = cube.correct.sum(axis=1).astype(int)
    k = np.minimum(n, total)
    # C(N-c, k) / C(N, k) = prod_{i<k} (N-c-i) / (N-i), as a product of ratios (no huge binomials)
    i = np.arange(max(int(k.max(initial=0)), 1))[None, :]
    used = i < k[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(used, np.clip(total[:, None] - correct[:, None] - i, 0, None) / (total[:, None] - i), 1.0)
    out = 1.0 - np.prod(ratio, axis=1)
    return np.where(total > 0, out, np.nan)


def oracle_summary(cube: PassCube, n_values: Sequence[int], seed: int = 0) -> pd.DataFrame:
    """The bounds of the curves per N (percent, 95% problem-bootstrap intervals): pass@1, the random pick,
    and pass@N, any correct among N, which no reranker can exceed."""
    random = 100 * pass_at(cube, 1)  # the same at every N
    rows = []
    for n in n_values:
        for name, values in (("pass@1 (random pick)", random), ("pass@N (any correct)", 100 * pass_at(cube, n))):
            lo, hi = interval(problem_bootstrap(values, seed))
            rows.append({"n_solutions": n, "bound": name, "accuracy": float(np.nanmean(values)), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def rule_curves(cube: PassCube, n: int, m_values: Sequence[int], resamples: int, protocol: Protocol = "subsample",
                seed: int = 0, rules: Sequence[Rule] = ("coderm", "max_pass", "codet", "codet_released")
                ) -> pd.DataFrame:
    """Each selection rule's best-of-n accuracy as the unit tests grow (percent, 95% problem-bootstrap
    intervals): the rules of `voting` on the same resampled draws (same seed, so paired by problem and
    draw), one `scaling_grid` per rule at the one n."""
    return pd.concat([scaling_grid(cube, [n], m_values, resamples, protocol=protocol, seed=seed, rule=rule)
                      .summary().assign(rule=rule) for rule in rules], ignore_index=True)
