"""Rerankers on the full matrices: which solution each rule picks with every sampled solution and test.

The expected accuracy of a uniform pick among what a rule keeps, per problem, on the full N and M (no
resampling: every solution and test is used once), with a problem-bootstrap interval. CodeT's rules
count a sampled assertion as often as it was sampled (`PassCube.weights`); the CodeRM and max-pass
rules count each distinct test once. This is where the suite meets CodeT's published number
(docs/codet.md): `codet_released` is the released code's √|S|·|T| score, `codet_paper` the paper's |S|·|T|.
B4 (Chen et al., ASE 2024) ranks the same matrices by a Bayesian posterior over which solutions and tests
are correct, from the pass matrix alone (`b4_kept`, rule for rule after its authors' strategy.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.special import betaln

from utscale.matrix import PassCube
from utscale.runs import Run
from utscale.scaling import problem_bootstrap
from utscale.tables import write_csv
from utscale.voting import Rule, expected_accuracy, pass_summaries, select_from

# (rule name in the table, voting rule, weighted by multiplicity, granularities it is reported at)
RERANKERS: tuple[tuple[str, Rule, bool, tuple[str, ...]], ...] = (
    ("coderm", "coderm", False, ("unit_test", "assertion")),
    ("max_pass", "max_pass", False, ("unit_test", "assertion")),
    ("codet_paper", "codet", True, ("unit_test", "assertion")),
    ("codet_released", "codet_released", True, ("unit_test", "assertion")),
)


def random_pick(cube: PassCube) -> np.ndarray:
    """Each problem's expected accuracy of a uniform pick among all its solutions, [P]."""
    return cube.pass_rates()


def full_pick_accuracy(cube: PassCube, rule: Rule, weighted: bool) -> np.ndarray:
    """Each problem's expected accuracy of the rule's pick on its full matrix, [P] (nan: no solutions).
    Padding rows (solutions a problem does not have) can never be kept."""
    p, n, _ = cube.shape
    real = np.arange(n)[None, :] < cube.n_solutions[:, None]
    counts, keys = pass_summaries(cube.passes, cube.weights if weighted else None)
    counts = np.where(real, counts, -1.0)  # below every real count: never the most tests passed
    keys = np.where(real, keys, -1.0 - np.arange(n))  # distinct: padding forms no group
    kept = select_from(counts, keys, rule) & real
    return expected_accuracy(kept, cube.correct)


# B4 (Chen et al., ASE 2024, `ZJU-CTAG/B4`, strategy.py): its authors' prior settings, alpha_xy = 1e3 with
# beta_0 = 1e4, 1e5, 1e6 (their defaults), each reported
B4_ALPHA_XY = 1e3
B4_BETA_0 = (1e4, 1e5, 1e6)


def _log_beta_bernoulli(ones: float, total: float, alpha: float = 1.0, beta: float = 1.0) -> float:
    """log B(ones + alpha, total - ones + beta): B4's `bernoulli_with_beta_prior`."""
    return float(betaln(ones + alpha, total - ones + beta))


def b4_kept(passes: np.ndarray, beta_0: float, alpha_xy: float = B4_ALPHA_XY) -> np.ndarray:
    """B4's choice on one problem's pass matrix [n, m] (bool): each distinct row (pass pattern) is a
    hypothesis "these solutions are the correct ones and the tests they pass are the correct ones",
    scored by the log posterior of B4's model (Beta priors on the shares of correct solutions and tests,
    alpha_xy; on wrong solutions passing correct tests, uniform; on wrong solutions passing wrong tests,
    beta_0, which makes such passes unlikely). Kept: the solutions of the best-scoring pattern(s), [n]."""
    n, m = passes.shape
    e = passes.astype(np.int64)
    patterns, group = np.unique(e, axis=0, return_inverse=True)
    group = group.reshape(-1)
    scores = np.empty(len(patterns))
    for g, y in enumerate(patterns):
        x = group == g
        y = y.astype(bool)
        rest = e[~x]
        e1, e0 = rest[:, y], rest[:, ~y]
        scores[g] = (_log_beta_bernoulli(y.sum(), m, alpha=alpha_xy) + _log_beta_bernoulli(x.sum(), n, alpha=alpha_xy)
                     + _log_beta_bernoulli(e1.sum(), e1.size) + _log_beta_bernoulli(e0.sum(), e0.size, beta=beta_0))
    best = np.flatnonzero(np.isclose(scores, scores.max(), rtol=0, atol=1e-9))
    return np.isin(group, best)


def b4_accuracy(cube: PassCube, beta_0: float, alpha_xy: float = B4_ALPHA_XY) -> np.ndarray:
    """Each problem's expected accuracy of a uniform pick among B4's kept solutions, [P] (nan: none).
    The matrix is the problem's real solutions against its real tests (columns with a weight); B4 counts
    each test once."""
    p = cube.shape[0]
    out = np.full(p, np.nan)
    for i in range(p):
        n = int(cube.n_solutions[i])
        if n == 0:
            continue
        columns = cube.weights[i] > 0
        kept = b4_kept(cube.passes[i, :n][:, columns], beta_0, alpha_xy)
        out[i] = cube.correct[i, :n][kept].mean()
    return out


def reranker_table(cubes: Mapping[str, PassCube], seed: int = 0) -> pd.DataFrame:
    """rule, granularity, accuracy, ci_low, ci_high (%), for every reranker at every granularity that
    `cubes` (granularity → cube) has, after the random pick; then B4 at each of its priors."""
    first = next(iter(cubes.values()))
    rows = [("random", "none", random_pick(first))]
    for name, rule, weighted, granularities in RERANKERS:
        rows += [(name, g, full_pick_accuracy(cubes[g], rule, weighted)) for g in granularities if g in cubes]
    rows += [(f"b4_beta0_{beta_0:.0e}", g, b4_accuracy(cube, beta_0)) for beta_0 in B4_BETA_0
             for g, cube in cubes.items()]
    out = []
    for name, granularity, per_problem in rows:
        values = per_problem * 100
        lo, hi = np.nanpercentile(problem_bootstrap(values, seed), [2.5, 97.5])
        out.append({"rule": name, "granularity": granularity, "accuracy": float(np.nanmean(values)),
                    "ci_low": float(lo), "ci_high": float(hi)})
    return pd.DataFrame(out)


def save(run: Run, table: pd.DataFrame) -> None:
    """`metrics/rerankers.csv` at fixed precision, so that re-rendering a run leaves the file unchanged."""
    write_csv(table, run.file("metrics/rerankers.csv"))


def accuracy_of(table: pd.DataFrame, rule: str, granularity: str) -> pd.Series | None:
    """The row of one rule at one granularity (None when the table has no such row)."""
    rows = table[(table.rule == rule) & (table.granularity == granularity)]
    return None if rows.empty else rows.iloc[0]
