"""Rerankers on the full matrices: which solution each rule picks with every sampled solution and test.

The expected accuracy of a uniform pick among what a rule keeps, per problem, on the full N and M (no
resampling: every solution and test is used once), with a problem-bootstrap interval. CodeT's rules
count a sampled assertion as often as it was sampled (`PassCube.weights`); the CodeRM and max-pass
rules count each distinct test once. This is where the suite meets CodeT's published number
(docs/codet.md): `codet_released` is the released code's √|S|·|T| score, `codet_paper` the paper's |S|·|T|.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

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


def reranker_table(cubes: Mapping[str, PassCube], seed: int = 0) -> pd.DataFrame:
    """rule, granularity, accuracy, ci_low, ci_high (%), for every reranker at every granularity that
    `cubes` (granularity → cube) has, after the random pick."""
    first = next(iter(cubes.values()))
    rows = [("random", "none", random_pick(first))]
    for name, rule, weighted, granularities in RERANKERS:
        rows += [(name, g, full_pick_accuracy(cubes[g], rule, weighted)) for g in granularities if g in cubes]
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
