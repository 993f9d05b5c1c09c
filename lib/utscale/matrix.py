"""The pass matrix: every problem's N×M verdicts as one padded cube, built in one place.

Notebooks 04–07 and the sweep all read the matrix through `load`, so there is one rule for its shape:
at the `unit_test` granularity every problem has `N_UNIT_TESTS` columns (a sampled test that was
invalid, a duplicate that was not executed, or one never generated is a column every solution fails,
as in the authors' evaluation code); at the `assertion` granularity (CodeT's release) the columns are
the problem's distinct assertions, each weighted by how often it was sampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from utscale.runs import Run
from utscale.tables import natural_order, sort_order

GRANULARITIES = ("unit_test", "assertion")


@dataclass(frozen=True)
class PassCube:
    """All problems' pass matrices padded to one shape.

    passes bool [P, N, M], correct bool [P, N]. Padding rows (missing solutions) and columns (unit tests
    that were invalid or never generated) are all False: a missing test is "not passed" by every
    solution. `weights` [P, M] is how often each test was sampled (1 for unit tests; CodeT counts a
    repeated assertion once per sample), 0 on padding columns past a problem's own tests. `valid` [P, M]
    marks the columns that hold an executed test (by default a problem's first `n_tests` columns, where
    `from_tables` puts them): the online stopping rules count only those as evidence.
    """

    task_ids: tuple[str, ...]
    passes: np.ndarray
    correct: np.ndarray
    n_solutions: np.ndarray  # [P] real solutions per problem
    n_tests: np.ndarray  # [P] tests per problem (valid, executed)
    weights: np.ndarray = field(default=None)  # type: ignore[arg-type]  # [P, M]; ones when not given
    valid: np.ndarray = field(default=None)  # type: ignore[arg-type]  # [P, M]; the first n_tests when not given

    def __post_init__(self) -> None:
        if self.weights is None:
            object.__setattr__(self, "weights", np.ones(self.passes.shape[::2], dtype=np.float64))
        if self.valid is None:
            columns = np.arange(self.passes.shape[2])[None, :]
            object.__setattr__(self, "valid", columns < np.asarray(self.n_tests)[:, None])

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.passes.shape  # type: ignore[return-value]

    @classmethod
    def from_tables(cls, executions: pd.DataFrame, labels: pd.DataFrame, n_tests_nominal: int = 0,
                    weights: pd.DataFrame | None = None, test_key: str = "test_id") -> PassCube:
        """Build from the `executions` (task_id, solution_id, <test_key>, passed) and `labels` (task_id,
        solution_id, correct) tables, vectorised (no loop over pairs). `n_tests_nominal` pads every
        problem to the number of tests that were sampled, so dropped tests count as failed rather than
        vanishing; `weights` (task_id, <test_key>, multiplicity) weights the columns."""
        task_ids = tuple(natural_order(labels.task_id.unique()))
        task_pos = pd.Index(task_ids)
        lab_task = task_pos.get_indexer(labels.task_id)
        lab_rank = rank_within(labels, "solution_id")
        n_sol = np.bincount(lab_task, minlength=len(task_ids))
        ex = executions[executions.task_id.isin(task_ids)]
        ex_task = task_pos.get_indexer(ex.task_id)
        test_rank = rank_within(ex, test_key)
        n_tests = np.zeros(len(task_ids), dtype=np.int64)
        if len(ex):
            np.maximum.at(n_tests, ex_task, test_rank + 1)
        m_max = int(max([int(n_tests.max()) if len(n_tests) else 0, n_tests_nominal]))
        passes = np.zeros((len(task_ids), int(n_sol.max()) if len(n_sol) else 0, m_max), dtype=bool)
        correct = np.zeros(passes.shape[:2], dtype=bool)
        correct[lab_task, lab_rank] = labels.correct.to_numpy(dtype=bool)
        sol_of = pd.Series(lab_rank, index=pd.MultiIndex.from_arrays([labels.task_id, labels.solution_id]))
        ex_sol = sol_of.reindex(pd.MultiIndex.from_arrays([ex.task_id, ex.solution_id])).to_numpy()
        hit = ex.passed.to_numpy(dtype=bool) & ~np.isnan(ex_sol)
        passes[ex_task[hit], ex_sol[hit].astype(np.int64), test_rank[hit]] = True
        cube_weights = np.ones((len(task_ids), m_max))
        if weights is not None:
            cube_weights[:] = 0.0
            w = weights[weights.task_id.isin(task_ids)]
            cols = pd.Series(test_rank, index=pd.MultiIndex.from_arrays([ex.task_id, ex[test_key]])).groupby(level=[0, 1]).first()
            where = cols.reindex(pd.MultiIndex.from_arrays([w.task_id, w[test_key]])).to_numpy()
            ok = ~np.isnan(where)
            cube_weights[task_pos.get_indexer(w.task_id)[ok], where[ok].astype(np.int64)] = w.multiplicity.to_numpy()[ok]
        return cls(task_ids=task_ids, passes=passes, correct=correct, n_solutions=n_sol, n_tests=n_tests,
                   weights=cube_weights)

    def pass_rates(self) -> np.ndarray:
        """Fraction of each problem's sampled solutions that are correct: the policy's difficulty signal."""
        return self.correct.sum(axis=1) / np.maximum(self.n_solutions, 1)


def rank_within(table: pd.DataFrame, column: str) -> np.ndarray:
    """Each row's position among its task's distinct values of `column`, in natural order, int [rows]."""
    if table.empty:
        return np.zeros(0, dtype=np.int64)
    pairs = table[["task_id", column]].drop_duplicates()
    pairs = pairs.iloc[sort_order(pairs, ["task_id", column])]
    rank = pairs.groupby("task_id", sort=False).cumcount().to_numpy()
    lookup = pd.Series(rank, index=pd.MultiIndex.from_frame(pairs))
    return lookup.reindex(pd.MultiIndex.from_frame(table[["task_id", column]])).to_numpy().astype(np.int64)


def granularity_of(run: Run) -> str:
    return run.config.get("TEST_GRANULARITY", "unit_test")


def load(run: Run, granularity: str | None = None) -> PassCube:
    """The run's pass cube at a granularity (default: the run's `TEST_GRANULARITY`)."""
    granularity = granularity or granularity_of(run)
    labels = run.read_table("labels")
    if granularity == "unit_test":
        return PassCube.from_tables(run.read_table("executions"), labels, n_tests_nominal=run.config["N_UNIT_TESTS"])
    if granularity != "assertion":
        raise ValueError(f"unknown granularity {granularity!r}; choose one of {GRANULARITIES}")
    if not run.has_table("assertions"):
        raise ValueError("the assertion granularity needs CodeT-format tests (REPLAY_FORMAT codet): this run has "
                         "no assertions table")
    assertions = run.read_table("assertions")
    return PassCube.from_tables(run.read_table("assertion_executions"), labels,
                                weights=assertions[["task_id", "assertion_id", "multiplicity"]], test_key="assertion_id")


def load_all(run: Run) -> dict[str, PassCube]:
    """Every granularity the run has: `unit_test` always, `assertion` for CodeT's release."""
    cubes = {"unit_test": load(run, "unit_test")}
    if run.has_table("assertions"):
        cubes["assertion"] = load(run, "assertion")
    return cubes


# --- views of one cube for the notebooks ------------------------------------------------------------

def problem_summary(cube: PassCube) -> pd.DataFrame:
    """Per problem: solutions, valid tests, pass rate of the policy, mean fraction of tests passed."""
    rows = []
    for p, task in enumerate(cube.task_ids):
        n, m = int(cube.n_solutions[p]), int(cube.n_tests[p])
        rows.append({"task_id": task, "solutions": n, "tests": m, "pass_rate": float(cube.correct[p, :n].mean()),
                     "tests_passed": float(cube.passes[p, :n, :m].mean()) if m else float("nan")})
    return pd.DataFrame(rows)


def most_informative_problem(cube: PassCube) -> int:
    """The problem whose matrix shows most: mixed correctness, then most tests (first on ties)."""
    rates = cube.pass_rates()
    score = -abs(rates - 0.5) + 0.001 * cube.n_tests
    return int(score.argmax())


def problem_matrix(cube: PassCube, p: int) -> pd.DataFrame:
    """One problem's pass matrix as a frame: rows 'solution i ✓/✗', columns test ids."""
    n, m = int(cube.n_solutions[p]), int(cube.n_tests[p])
    index = [f"{i} {'✓' if cube.correct[p, i] else '✗'}" for i in range(n)]
    return pd.DataFrame(cube.passes[p, :n, :m].astype(int), index=index, columns=list(range(m)))
