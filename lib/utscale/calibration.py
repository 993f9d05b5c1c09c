"""Per-problem time limits calibrated on each problem's reference solution (evalplus's rule, docs/sandbox.md):
a slow but correct solution of a heavy problem is not a timeout because the fixed limit fits light ones."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from utscale.runs import Run
from utscale.sandbox import Executor, Pair, plan_jobs, run_plan

CALIBRATION_REPEATS = 3  # a reference's time is its fastest of three runs: load only ever slows a run down
CALIBRATION_HEADROOM = 10.0  # the reference runs under ten times the fixed limits


def reference_times(problems: pd.DataFrame, executor: Executor, timeout: float,
                    repeats: int = CALIBRATION_REPEATS) -> pd.DataFrame:
    """Each problem's reference solution run against its ground truth `repeats` times in one job (each a
    fresh state): the fastest run's seconds and the status (`none` without a reference solution)."""
    rows = {r.task_id: {"task_id": r.task_id, "reference_status": "none", "reference_seconds": float("nan")}
            for r in problems.itertuples()}
    # the repeats differ by a trailing comment: distinct test texts, so none is deduplicated away
    pairs = [Pair(json.dumps([r.task_id, k]), r.reference_solution, f"{r.ground_truth}\n# run {k}\n", timeout)
             for r in problems.itertuples() if isinstance(r.reference_solution, str) and r.reference_solution.strip()
             for k in range(repeats)]
    runs: dict[str, list[Any]] = {}
    for verdict in run_plan(plan_jobs(pairs), executor):
        runs.setdefault(json.loads(verdict.id)[0], []).append(verdict)
    for task_id, verdicts in runs.items():
        passed = [v.duration_s for v in verdicts if v.passed]
        rows[task_id].update(reference_status="pass" if len(passed) == len(verdicts) else
                             next(v.status for v in verdicts if not v.passed),
                             reference_seconds=min(passed) if passed else float("nan"))
    return pd.DataFrame(list(rows.values()))


def time_limits(run: Run, executor: Executor) -> pd.DataFrame | None:
    """The run's per-problem limits when TIME_LIMIT_FACTOR > 0 (else None): the larger of the fixed limit
    and the factor times the reference's time, for labels and for unit tests (evalplus's rule; a problem
    whose reference does not pass keeps the fixed limits). Measured once and stored as `time_limits`:
    a resumed run reads them back, since a re-measurement on a busier machine would move limits, and so
    verdicts, mid-run."""
    factor = run.config["TIME_LIMIT_FACTOR"]
    if not factor:
        return None
    if run.has_table("time_limits"):
        return run.read_table("time_limits")
    floor_labels, floor_tests = run.config["LABEL_TIMEOUT_S"], run.config["TIMEOUT_S"]
    table = reference_times(run.read_table("problems"), executor,
                            CALIBRATION_HEADROOM * max(floor_labels, floor_tests))
    table["label_limit_s"] = scaled_limits(table, factor, floor_labels)
    table["test_limit_s"] = scaled_limits(table, factor, floor_tests)
    run.write_table("time_limits", table, key=["task_id"])
    return run.read_table("time_limits")


def scaled_limits(references: pd.DataFrame, factor: float, floor: float) -> pd.Series:
    """Per-problem limits from `reference_times`: the larger of `floor` and `factor` times the reference's
    seconds (evalplus's rule); a problem whose reference does not pass keeps `floor`."""
    scaled = factor * references.reference_seconds.where(references.reference_status.eq("pass"), 0.0)
    return scaled.clip(lower=floor).round(3)


def limits_of(table: pd.DataFrame | None, column: str, scale: float = 1.0) -> dict[str, float] | None:
    """task id → limit from a `time_limits` table (`label_limit_s` or `test_limit_s`), times `scale` (SRank's
    input limit: OUTPUT_TIMEOUT_S as a share of TIMEOUT_S); None: fixed limits."""
    return None if table is None else dict(zip(table.task_id, table[column].astype(float) * scale))


def limits_summary(table: pd.DataFrame | None, config: Mapping[str, Any]) -> dict[str, Any]:
    """What the manifest says about the limits: fixed, or calibrated (how many problems got more time)."""
    if table is None:
        return {"calibrated": False}
    return {"calibrated": True, "factor": config["TIME_LIMIT_FACTOR"], "problems": len(table),
            "references_passed": int(table.reference_status.eq("pass").sum()),
            "label_limits_raised": int((table.label_limit_s > config["LABEL_TIMEOUT_S"]).sum()),
            "test_limits_raised": int((table.test_limit_s > config["TIMEOUT_S"]).sum()),
            "test_limit_s": {"median": float(table.test_limit_s.median()), "max": float(table.test_limit_s.max())},
            "label_limit_s": {"median": float(table.label_limit_s.median()), "max": float(table.label_limit_s.max())}}
