"""Unit-test quality as a classifier of solutions (docs/method.md §4): Accuracy, F1, FAR, FRR, pooled.

The paper prints FAR = FP/(FP+TP) and FRR = FN/(FN+TN) (a false-discovery and a false-omission rate),
while its words describe the conventional rates FP/(FP+TN) and FN/(FN+TP). Its Table 2 is consistent
only with the printed formulas, so both are reported, each under its own name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from utscale.matrix import PassCube


@dataclass(frozen=True)
class Confusion:
    tp: float
    tn: float
    fp: float
    fn: float

    def rates(self) -> dict[str, float]:
        """Percentages; nan where a denominator is zero."""
        def ratio(a: float, b: float) -> float:
            return 100.0 * a / b if b else float("nan")

        precision = ratio(self.tp, self.tp + self.fp)
        recall = ratio(self.tp, self.tp + self.fn)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
        return {
            "accuracy": ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "far_paper": ratio(self.fp, self.fp + self.tp),  # as printed: 1 − precision
            "frr_paper": ratio(self.fn, self.fn + self.tn),  # as printed: false-omission rate
            "far_conventional": ratio(self.fp, self.fp + self.tn),  # wrong solutions accepted
            "frr_conventional": ratio(self.fn, self.fn + self.tp),  # correct solutions rejected
        }


def confusion(predicted: np.ndarray, actual: np.ndarray, mask: np.ndarray | None = None) -> Confusion:
    """Pooled (micro) confusion counts of boolean predictions against boolean truth."""
    predicted, actual = np.asarray(predicted, bool), np.asarray(actual, bool)
    mask = np.ones(predicted.shape, bool) if mask is None else np.asarray(mask, bool)
    return Confusion(
        tp=float(np.count_nonzero(predicted & actual & mask)),
        tn=float(np.count_nonzero(~predicted & ~actual & mask)),
        fp=float(np.count_nonzero(predicted & ~actual & mask)),
        fn=float(np.count_nonzero(~predicted & actual & mask)),
    )


def individual_test_confusion(cube: PassCube) -> Confusion:
    """Each valid (solution, unit test) pair is one classification: the test accepts the solution or not."""
    p, n, m = cube.shape
    valid = (np.arange(n)[None, :, None] < cube.n_solutions[:, None, None]) & (
        np.arange(m)[None, None, :] < cube.n_tests[:, None, None])
    actual = np.broadcast_to(cube.correct[:, :, None], (p, n, m))
    return confusion(cube.passes, actual, valid)


def vote_confusion(cube: PassCube) -> Confusion:
    """All tests combined (the paper's "multiple unit tests"): the solutions accepted by the largest
    number of tests are classified correct, all others incorrect (no tie-break; all-zero → all correct)."""
    valid = np.arange(cube.shape[1])[None, :] < cube.n_solutions[:, None]
    counts = np.where(valid, np.count_nonzero(cube.passes, axis=-1), -1)
    predicted = counts == counts.max(axis=1, keepdims=True)
    return confusion(predicted, cube.correct, valid)


def vote_f1_by_m(cube: PassCube, m_values: list[int], resamples: int = 20, seed: int = 0) -> pd.DataFrame:
    """The vote's F1 (`vote_confusion`) with m tests drawn without replacement per problem, pooled over
    `resamples` draws, for each m ≥ 1 the cube has: how good the reward signal is as tests scale."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xF1]))
    p, _, m_total = cube.shape
    rows = []
    for m in sorted(v for v in m_values if 1 <= v <= m_total):
        pooled = Confusion(0.0, 0.0, 0.0, 0.0)
        for _ in range(resamples if m < m_total else 1):
            columns = np.argsort(rng.random((p, m_total)), axis=1)[:, :m]
            sub = np.take_along_axis(cube.passes, columns[:, None, :], axis=2)
            c = vote_confusion(PassCube(cube.task_ids, sub, cube.correct, cube.n_solutions, np.minimum(cube.n_tests, m)))
            pooled = Confusion(pooled.tp + c.tp, pooled.tn + c.tn, pooled.fp + c.fp, pooled.fn + c.fn)
        rows.append({"n_tests": m, "f1": pooled.rates()["f1"]})
    return pd.DataFrame(rows)


def quality_table(cube: PassCube) -> pd.DataFrame:
    rows = [
        {"classifier": "individual unit test", **individual_test_confusion(cube).rates()},
        {"classifier": f"majority vote ({int(cube.n_tests.max()) if len(cube.n_tests) else 0} tests)",
         **vote_confusion(cube).rates()},
    ]
    return pd.DataFrame(rows)


def test_funnel(unit_tests: pd.DataFrame, executions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """What becomes of the sampled unit tests, pooled over problems: how many are valid (one `unittest`
    class extracted), run (distinct, executed), correct (accept every correct solution of a problem that
    has one), discriminating (correct and reject at least one wrong solution, where the problem has both)
    and perfect (accept every correct and reject every wrong solution). Each row's `percent` is of the row
    named in `of`: the rates a reviewer reads beside the curves (validity, then correctness of what ran)."""
    judged = executions.merge(labels[["task_id", "solution_id", "correct"]], on=["task_id", "solution_id"])
    per_test = judged.groupby(["task_id", "test_id"]).apply(
        lambda t: pd.Series({"correct_all_pass": bool(t.passed[t.correct].all()), "has_correct": bool(t.correct.any()),
                             "has_wrong": bool((~t.correct).any()), "rejects_wrong": bool((~t.passed[~t.correct]).any()),
                             "rejects_all_wrong": bool((~t.passed[~t.correct]).all())}), include_groups=False)
    solvable = per_test[per_test.has_correct]
    both = solvable[solvable.has_wrong]
    valid = unit_tests[unit_tests.extract_status == "ok"]

    def row(stage: str, tests: pd.DataFrame, of: str) -> tuple[str, int, int, str]:
        return stage, len(tests), tests.index.get_level_values("task_id").nunique(), of

    rows = [("sampled", len(unit_tests), unit_tests.task_id.nunique(), "sampled"),
            ("valid (a test could be extracted)", len(valid), valid.task_id.nunique(), "sampled"),
            row("run (distinct, executed)", per_test, "sampled"),
            row("run, on problems with a correct solution", solvable, "run (distinct, executed)"),
            row("correct (accepts every correct solution)", solvable[solvable.correct_all_pass],
                "run, on problems with a correct solution"),
            row("run, on problems with correct and wrong solutions", both, "run (distinct, executed)"),
            row("discriminating (correct, rejects a wrong solution)", both[both.correct_all_pass & both.rejects_wrong],
                "run, on problems with correct and wrong solutions"),
            row("perfect (correct, rejects every wrong solution)", both[both.correct_all_pass & both.rejects_all_wrong],
                "run, on problems with correct and wrong solutions")]
    table = pd.DataFrame(rows, columns=["stage", "tests", "problems", "of"])
    base = table.set_index("stage").tests
    table["percent"] = [100.0 * t / base[o] if base[o] else float("nan") for t, o in zip(table.tests, table.of)]
    return table[["stage", "tests", "problems", "percent", "of"]]


def confusion_from_paper_rates(f1: float, far: float, frr: float) -> Confusion:
    """The normalised pooled confusion matrix implied by the paper's F1, FAR and FRR (all in %),
    reading FAR and FRR as printed. Used to check that reading against the paper's Table 2."""
    precision = 1.0 - far / 100.0
    f1 /= 100.0
    recall = f1 * precision / (2 * precision - f1)
    frr /= 100.0
    tp = 1.0
    fp = tp * (1 - precision) / precision
    fn = tp * (1 - recall) / recall
    tn = fn * (1 - frr) / frr
    total = tp + fp + fn + tn
    return Confusion(tp=tp / total, tn=tn / total, fp=fp / total, fn=fn / total)

