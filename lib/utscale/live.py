"""Online dynamic scaling, live: notebook 03 generates unit tests in rounds and stops each problem once
its vote is settled, so the tokens and seconds it saves are real (docs/method.md §8).

Each round asks the engine only for the open problems' next `ONLINE_ROUND` tests, executes them against
the problem's solutions at once (in the matrix's sandbox mode, into the execution stage's own verdict
log, so notebook 04 finds them done), and applies the stopping rule `ONLINE_LIVE` to the pass matrix so
far: never to the ground truth, which nothing here reads. The decision is `online.simulate`'s, on the
tests revealed in the order they were generated (columns not generated yet count as unknown: no
solution passes them), so the live run stops each problem exactly where the simulation of the same
order would. A problem stops when the rule settles it, or at N_UNIT_TESTS.

Resumable like every generation: a rerun replays the rounds from the logs (nothing is generated or
executed twice) and reaches the same decisions. The manifest's `online_generation` records every
round: problems open, tests asked for, their tokens (from the log) and the seconds the engine took
(measured by the call that generated them; for a replay, reading the file).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from utscale import calibration, execution
from utscale.engines import Engine
from utscale.generation import UnitTestStage
from utscale.matrix import PassCube
from utscale.online import simulate
from utscale.runs import Run
from utscale.stopping import Setting
from utscale.tables import natural_order
from utscale.voting import Rule


def revealed_cube(task_ids: Sequence[str], solutions: pd.DataFrame, unit_tests: pd.DataFrame,
                  executions: pd.DataFrame, cap: int) -> PassCube:
    """The pass matrices so far with columns in generation order (column j = test_id j), [P, N, cap].

    Rows are each problem's solutions by solution_id (one without code passes nothing); a test that is
    invalid, a duplicate (not executed, as in the full matrix) or not generated yet passes for no one and
    is not `valid` (the stopping rules do not count it as evidence). `correct` is all False: the stopping rules never see the ground truth."""
    tasks = list(task_ids)
    sols = solutions[solutions.task_id.isin(tasks)]
    per_task = sols.groupby("task_id").size().reindex(tasks, fill_value=0).to_numpy()
    n_max = int(per_task.max()) if len(per_task) else 0
    passes = np.zeros((len(tasks), n_max, cap), dtype=bool)
    task_pos = pd.Index(tasks)
    rank = sols.sort_values(["task_id", "solution_id"]).groupby("task_id").cumcount()
    row_of = pd.Series(rank.to_numpy(), index=pd.MultiIndex.from_frame(sols.loc[rank.index, ["task_id", "solution_id"]]))
    valid = execution.executed_tests(unit_tests)
    keep = set(zip(valid.task_id, valid.test_id))
    if not executions.empty:  # empty when nothing ran yet (e.g. every test so far was invalid)
        ex = executions[executions.task_id.isin(tasks) & executions.passed.astype(bool)]
        # a boolean array, not a list: an empty list would select no columns instead of no rows
        ex = ex[np.array([(t, int(i)) in keep for t, i in zip(ex.task_id, ex.test_id)], dtype=bool)]
        rows = row_of.reindex(pd.MultiIndex.from_frame(ex[["task_id", "solution_id"]])).to_numpy()
        ok = ~np.isnan(rows) & (ex.test_id.to_numpy() < cap)
        passes[task_pos.get_indexer(ex.task_id[ok]), rows[ok].astype(np.int64), ex.test_id.to_numpy()[ok]] = True
    executed = np.zeros((len(tasks), cap), dtype=bool)
    where = valid[valid.task_id.isin(tasks) & (valid.test_id < cap)]
    executed[task_pos.get_indexer(where.task_id), where.test_id.to_numpy(dtype=np.int64)] = True
    return PassCube(tuple(tasks), passes, np.zeros(passes.shape[:2], dtype=bool), per_task,
                    np.full(len(tasks), cap), valid=executed)


def settled(cube: PassCube, generated: np.ndarray, setting: Setting, round_size: int, min_tests: int,
            rule: Rule = "coderm") -> np.ndarray:
    """bool [P]: whether `setting` settles each problem's vote with the first `generated[p]` tests (the
    cube's first columns, the rest not generated yet)."""
    trajectory = simulate(cube, [setting], 1, rule=rule, round_size=round_size, min_tests=min_tests, shuffle=False)
    stop = trajectory.checkpoints[trajectory.stops[setting.name][0]]
    return stop <= np.asarray(generated)


def _tokens(log_frame: pd.DataFrame, keys: set[tuple[str, int]]) -> dict[str, int]:
    """Prompt and completion tokens of the logged generations with these (task_id, index) keys."""
    rows = log_frame[[(t, int(i)) in keys for t, i in zip(log_frame.task_id, log_frame["index"])]]
    return {"prompt_tokens": int(rows.prompt_tokens.sum()), "completion_tokens": int(rows.completion_tokens.sum())}


def generate_in_rounds(run: Run, engine: Engine | None = None) -> pd.DataFrame:
    """Notebook 03 with ONLINE_LIVE: unit tests in rounds, each problem stopped once its vote is settled;
    returns the `unit_tests` table (only the tests generated)."""
    config: Mapping[str, Any] = run.config
    setting = Setting.from_name(config["ONLINE_LIVE"])
    cap, step, floor = int(config["N_UNIT_TESTS"]), int(config["ONLINE_ROUND"]), int(config["ONLINE_MIN_TESTS"])
    stage = UnitTestStage.open(run, engine)
    solutions = run.read_table("solutions")
    tasks = natural_order(stage.problems.task_id)
    by_task: dict[str, list] = {t: [] for t in tasks}
    for request in sorted(stage.requests, key=lambda r: r.index):
        by_task[request.task_id].append(request)
    generated = np.zeros(len(tasks), dtype=np.int64)
    open_ = np.ones(len(tasks), dtype=bool)
    rounds: list[dict[str, Any]] = []
    earlier = {r["round"]: r for r in run.manifest().get("online_generation", {}).get("rounds", [])}
    log = execution.verdict_log(run, "executions_log", "executions", execution.EXECUTION_KEY)
    legacy = execution.legacy_signature(config, labels=False)
    with execution.make_executor(config, execution.sandbox_settings(config)) as executor:
        limits = calibration.limits_of(calibration.time_limits(run, executor), "test_limit_s")
        while open_.any():
            asked = [r for p in np.flatnonzero(open_) for r in by_task[tasks[p]][generated[p]:generated[p] + step]]
            started = time.perf_counter()
            fresh = stage.generate(asked, progress=f"unit tests, round {len(rounds) + 1}")
            seconds = time.perf_counter() - started
            if not fresh:  # a resumed round: its generation was timed by the call that made it
                seconds = earlier.get(len(rounds) + 1, {}).get("engine_seconds", 0.0)
            generated[open_] = np.minimum(generated[open_] + step, cap)
            unit_tests = stage.table()
            execution.execute_unit_tests(stage.problems, solutions, unit_tests, log, executor, legacy, limits)
            cube = revealed_cube(tasks, solutions, unit_tests, log.frame(), cap)
            done = settled(cube, generated, setting, step, floor) | (generated >= cap)
            rounds.append({"round": len(rounds) + 1, "open": int(open_.sum()), "tests_asked": len(asked),
                           "fresh_from_engine": fresh, "stopped": int((open_ & done).sum()),
                           **_tokens(stage.log.frame(), {(r.task_id, r.index) for r in asked}),
                           "engine_seconds": round(seconds, 3)})
            open_ &= ~done
    table = stage.write()
    total = _tokens(stage.log.frame(), {(r.task_id, r.index) for r in stage.requests})
    run.update_manifest(online_generation={
        "rule": setting.name, "round": step, "min_tests": floor, "cap": cap, "problems": len(tasks),
        "tests_generated": int(generated.sum()), "tests_per_problem": round(float(generated.mean()), 3),
        "equal_allocation_tests": cap * len(tasks), **{f"total_{k}": v for k, v in total.items()},
        "total_engine_seconds": round(sum(r["engine_seconds"] for r in rounds), 3),
        "tests_by_problem": {t: int(g) for t, g in zip(tasks, generated)}, "rounds": rounds})
    return table


def rounds_table(run: Run) -> pd.DataFrame:
    """The manifest's record of a live run's rounds, for notebook 03."""
    return pd.DataFrame(run.manifest().get("online_generation", {}).get("rounds", []))
