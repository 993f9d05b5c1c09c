"""The execution stage: ground-truth labels for every solution and the full N×M pass matrix.

Execute once, analyse many times. Identical solutions (same AST) and identical tests run once per
problem and their verdicts fan out. Every verdict is appended to a JSONL log the moment it arrives,
keyed by (task_id, solution_id[, test_id]): a run killed at any point resumes with exactly the pairs
it had not finished, and the final tables are the log's contents, sorted.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd

from utscale import outputs
from utscale.benchmarks import solution_for_unit_tests
from utscale.calibration import limits_of, limits_summary, time_limits
from utscale.progress import bar as progress_bar
from utscale.runs import JsonlLog, Run
from utscale.sandbox import Executor, Pair, SandboxSettings, plan_jobs, run_plan
from utscale.sandbox.codec import RECORDER_OUT
from utscale.tables import sort_rows

LABEL_KEY = ("task_id", "solution_id")
EXECUTION_KEY = ("task_id", "solution_id", "test_id")
ASSERTION_KEY = ("task_id", "solution_id", "assertion_id")


@dataclass(frozen=True)
class StageReport:
    pairs: int  # all pairs of the stage
    resumed: int  # pairs found already done in the log
    executed: int  # pairs given a verdict in this call (fanned out)
    unique_executed: int  # distinct (solution AST, test text) executions in this call
    seconds: float
    recomputed: int = 0  # of the executed: logged before under another executor signature (mode, clock)
    recomputed_from: tuple[str, ...] = ()  # those signatures, "mode/clock"

    @property
    def pairs_per_second(self) -> float:
        return self.executed / self.seconds if self.seconds > 0 else float("nan")


SIGNATURE = ("mode", "clock")  # what a verdict depends on beyond its pair and its time limit


def signature(settings: SandboxSettings) -> dict[str, str]:
    return {"mode": settings.mode, "clock": settings.effective_clock}


def legacy_signature(config: Mapping[str, Any], *, labels: bool) -> dict[str, str]:
    """What a verdict logged without these fields was computed with (a run made before they existed):
    labels in the matrix's mode (fast for CodeT's), everything on the wall clock."""
    mode = config["SANDBOX_MODE"]
    return {"mode": ("fast" if mode == "codet" else mode) if labels else mode, "clock": "wall"}


def logged_signatures(log: JsonlLog, legacy: Mapping[str, str]) -> dict[tuple, tuple]:
    """Every logged verdict's key → the signature it ran under (one pass over the log)."""
    return {tuple(r[k] for k in log.key): tuple(r.get(f, legacy[f]) for f in SIGNATURE) for r in log}


def _stale(signatures: Mapping[tuple, tuple], current: Mapping[str, str]) -> dict[tuple, tuple]:
    now = tuple(current[f] for f in SIGNATURE)
    return {key: was for key, was in signatures.items() if was != now}


def stale_verdicts(log: JsonlLog, current: Mapping[str, str], legacy: Mapping[str, str]) -> dict[tuple, tuple]:
    """Logged verdicts computed under another signature than `current` (key → that signature): they are
    computed again, never reused."""
    return _stale(logged_signatures(log, legacy), current)


def _run_logged(pairs: Mapping[tuple, tuple[str, str]], log: JsonlLog, executor: Executor,
                verdict_fields: Callable[[Any], dict], legacy: Mapping[str, str],
                limits: Mapping[str, float] | None = None) -> StageReport:
    """Execute the pairs the log does not hold under the executor's signature; each record carries it.
    `limits`: a per-problem time limit (task id, the key's first field → seconds), else the executor's."""
    started = time.perf_counter()
    current = signature(executor.settings)
    signatures = logged_signatures(log, legacy)  # read once: the log can hold 833,100 verdicts
    stale = _stale(signatures, current)
    done = set(signatures) - set(stale)
    plan = plan_jobs(Pair(json.dumps(list(k)), sol, test, None if limits is None else limits[k[0]])
                     for k, (sol, test) in pairs.items() if k not in done)
    executed = 0
    if plan.jobs:
        todo = len(pairs) - len(done & set(pairs))
        with log.writer() as write, progress_bar(total=todo, desc=log.path.stem.removesuffix("_log"), unit="pair") as shown:
            for verdict in run_plan(plan, executor):
                write({**dict(zip(log.key, json.loads(verdict.id))), **verdict_fields(verdict), **current})
                executed += 1
                shown.update()
    return StageReport(pairs=len(pairs), resumed=len(pairs) - executed, executed=executed,
                       unique_executed=plan.unique_pairs, seconds=time.perf_counter() - started,
                       recomputed=len(set(stale) & set(pairs)),
                       recomputed_from=tuple(sorted({"/".join(was) for k, was in stale.items() if k in pairs})))


def with_signature(table: pd.DataFrame, legacy: Mapping[str, str]) -> pd.DataFrame:
    """A log's table, where records older than the signature fields say what they ran under."""
    for field in SIGNATURE:
        if field in table:
            table[field] = table[field].fillna(legacy[field])
    return table


def label_pairs(problems: pd.DataFrame, solutions: pd.DataFrame, column: str = "ground_truth"
                ) -> dict[tuple, tuple[str, str]]:
    """(task_id, solution_id) → (solution code, ground-truth program), for solutions that have code (and,
    for `ground_truth_base`, whose problem has a base program)."""
    truth = problems.set_index("task_id")[column].to_dict()
    return {(r.task_id, r.solution_id): (r.code, truth[r.task_id])
            for r in solutions.itertuples() if isinstance(r.code, str) and truth[r.task_id]}


def _cross(problems: pd.DataFrame, solutions: pd.DataFrame, tests_by_task: Mapping[str, list[tuple[int, str]]]
           ) -> dict[tuple, tuple[str, str]]:
    """(task_id, solution_id, test key) → (solution program, test) for every solution with code and every
    test of its problem."""
    info = problems.set_index("task_id")[["benchmark", "entry_point"]].to_dict("index")
    pairs = {}
    for r in solutions.itertuples():
        if not isinstance(r.code, str):
            continue
        program = solution_for_unit_tests(info[r.task_id]["benchmark"], info[r.task_id]["entry_point"], r.code)
        for test_id, test in tests_by_task.get(r.task_id, []):
            pairs[(r.task_id, r.solution_id, test_id)] = (program, test)
    return pairs


def executed_tests(unit_tests: pd.DataFrame) -> pd.DataFrame:
    """The unit tests the matrix executes: valid (they have code) and not a duplicate of an earlier one."""
    return unit_tests[unit_tests.code.map(lambda c: isinstance(c, str)) & unit_tests.duplicate_of.isna()]


def matrix_pairs(problems: pd.DataFrame, solutions: pd.DataFrame, unit_tests: pd.DataFrame) -> dict[tuple, tuple[str, str]]:
    """(task_id, solution_id, test_id) → (solution program, unit test) for every valid, unique test."""
    valid = executed_tests(unit_tests)
    return _cross(problems, solutions, {t: list(zip(g.test_id, g.code)) for t, g in valid.groupby("task_id")})


def assertion_pairs(problems: pd.DataFrame, solutions: pd.DataFrame, assertions: pd.DataFrame,
                    mode: str = "fast", recording: Mapping[str, list[tuple[int, str]]] | None = None
                    ) -> dict[tuple, tuple[str, str]]:
    """(task_id, solution_id, assertion_id) → (solution program, test) for CodeT's distinct assertions:
    executed once each, they give both granularities' matrices. The test is a one-assertion TestCase,
    or in the `codet` mode the bare assertion (CodeT's executor packs them itself); `recording`
    (`outputs.recording_tests`) replaces each problem's tests by the recorded ones."""
    column = "assertion" if mode == "codet" else "code"
    return _cross(problems, solutions, recording or {t: list(zip(g.assertion_id, g[column]))
                                                     for t, g in assertions.groupby("task_id")})


def recorded_assertion_pairs(problems: pd.DataFrame, solutions: pd.DataFrame, assertions: pd.DataFrame,
                             inputs: pd.DataFrame, mode: str) -> dict[tuple, tuple[str, str]]:
    """The execution stage's pairs for CodeT's assertions: in `codet` mode each assertion records its
    input's output and each input no assertion calls first has a recording case (`outputs.recording_tests`)."""
    return assertion_pairs(problems, solutions, assertions, mode,
                           outputs.recording_tests(assertions, inputs) if mode == "codet" else None)


def assertion_sources(assertions: pd.DataFrame) -> pd.DataFrame:
    """One row per (task_id, assertion_id, test_id, position): which unit test holds which assertion."""
    rows = [(t, a, test_id, position) for t, a, sources in zip(assertions.task_id, assertions.assertion_id,
                                                                 assertions.sources)
            for test_id, position in json.loads(sources)]
    return pd.DataFrame(rows, columns=["task_id", "assertion_id", "test_id", "position"])


def unit_test_verdicts(assertion_executions: pd.DataFrame, assertions: pd.DataFrame) -> pd.DataFrame:
    """The unit-test matrix from the assertion matrix, vectorised: a unit test passes iff all of its
    assertions pass; a failing one carries the status of its first failing assertion; tests_run and
    duration_s add up over its assertions."""
    merged = assertion_executions.merge(assertion_sources(assertions), on=["task_id", "assertion_id"])
    keys = list(EXECUTION_KEY)
    grouped = merged.groupby(keys, sort=False)
    out = grouped.agg(passed=("passed", "all"), tests_run=("tests_run", "sum"), duration_s=("duration_s", "sum"))
    failing = merged[~merged.passed.astype(bool)].sort_values(keys + ["position"])
    first_failure = failing.drop_duplicates(keys).set_index(keys).status
    out["status"] = first_failure.reindex(out.index).fillna("pass")
    return out.reset_index()[keys + ["passed", "status", "tests_run", "duration_s"]]


def label_solutions(problems: pd.DataFrame, solutions: pd.DataFrame, log: JsonlLog, executor: Executor,
                    legacy: Mapping[str, str], limits: Mapping[str, float] | None = None,
                    column: str = "ground_truth") -> StageReport:
    """Ground-truth labels under the executor's signature (recorded per label); a label logged under
    another one (mode, clock) is computed again. `column` ground_truth_base: EvalPlus's base labels."""
    return _run_logged(label_pairs(problems, solutions, column), log, executor,
                       lambda v: {"correct": v.passed, "status": v.status, "tests_run": v.tests_run,
                                  "duration_s": v.duration_s}, legacy, limits)


def _execution_fields(v: Any) -> dict:
    return {"passed": v.passed, "status": v.status, "tests_run": v.tests_run, "duration_s": v.duration_s}


def execute_unit_tests(problems: pd.DataFrame, solutions: pd.DataFrame, unit_tests: pd.DataFrame, log: JsonlLog,
                       executor: Executor, legacy: Mapping[str, str],
                       limits: Mapping[str, float] | None = None) -> StageReport:
    return _run_logged(matrix_pairs(problems, solutions, unit_tests), log, executor, _execution_fields, legacy,
                       limits)


def labels_table(solutions: pd.DataFrame, log: JsonlLog, legacy: Mapping[str, str]) -> pd.DataFrame:
    """One row per solution: executed verdicts with what they ran under, and `invalid` for solutions
    without code."""
    executed = with_signature(log.frame(), legacy)
    done = set(zip(executed.task_id, executed.solution_id)) if len(executed) else set()
    missing = solutions[~solutions.code.map(lambda c: isinstance(c, str))]
    missing = missing[pd.Series([(t, s) not in done for t, s in zip(missing.task_id, missing.solution_id)],
                                index=missing.index, dtype=bool)]
    absent = pd.DataFrame({"task_id": missing.task_id, "solution_id": missing.solution_id, "correct": False,
                           "status": "invalid", "tests_run": 0, "duration_s": 0.0,
                           **{field: "" for field in SIGNATURE if field in executed}})  # "": never executed
    return pd.concat([executed, absent], ignore_index=True) if len(absent) else executed


def sandbox_settings(config: Mapping[str, Any], *, labels: bool = False) -> SandboxSettings:
    """The executor for labels (LABEL_MODE, isolated by default) or for the matrix (SANDBOX_MODE)."""
    mode = config["LABEL_MODE"] if labels else config["SANDBOX_MODE"]
    return SandboxSettings(timeout=config["LABEL_TIMEOUT_S"] if labels else config["TIMEOUT_S"], mode=mode,
                           memory_mb=config["SANDBOX_MEMORY_MB"], jail=config["SANDBOX_JAIL"],
                           clock=config["SANDBOX_CLOCK"])


def make_executor(config: Mapping[str, Any], settings: SandboxSettings):
    workers = config["WORKERS"] or None
    if config["SANDBOX_BACKEND"] == "ray":
        from utscale.sandbox.ray_backend import RayExecutor

        return RayExecutor(workers=workers, settings=settings)
    return Executor(workers=workers, settings=settings)


def verdict_log(run: Run, name: str, table: str, key: tuple[str, ...], *more: str) -> JsonlLog:
    """The stage's verdict log; when it is gone but the stage's table exists (a committed run whose bulky
    logs are not committed), the log is rebuilt from the table (and the `more` tables the stage writes
    from the same log) first, so nothing is executed again and a re-render cannot flip a timing-dependent
    verdict."""
    log = run.log(name, key)
    if not log.path.exists() and run.has_table(table):
        for name_of in (table, *more):
            if run.has_table(name_of):
                log.append(run.read_table(name_of).to_dict(orient="records"))
    return log


def execute_run(run: Run) -> dict[str, StageReport]:
    """Labels and the pass matrix for the run's problems, solutions and unit tests (resumable)."""
    problems, solutions, unit_tests = (run.read_table(n) for n in ("problems", "solutions", "unit_tests"))
    reports = {}
    load_before = os.getloadavg()  # wall-clock limits depend on load: the manifest says what it was
    label_settings = sandbox_settings(run.config, labels=True)
    with make_executor(run.config, label_settings) as executor:
        limits = time_limits(run, executor)
        label_log = verdict_log(run, "labels_log", "labels", LABEL_KEY)
        legacy = legacy_signature(run.config, labels=True)
        reports["labels"] = label_solutions(problems, solutions, label_log, executor, legacy,
                                            limits_of(limits, "label_limit_s"))
        if "ground_truth_base" in problems:  # HumanEval+/MBPP+: EvalPlus's base label beside the plus one
            base_log = verdict_log(run, "labels_base_log", "labels_base", LABEL_KEY)
            reports["labels_base"] = label_solutions(problems, solutions, base_log, executor, legacy,
                                                     limits_of(limits, "label_limit_s"), "ground_truth_base")
        jailed = executor.jailed
    _write_verdicts(run, "labels", labels_table(solutions, label_log, legacy), LABEL_KEY, "correct",
                    reports["labels"], label_settings)
    if "labels_base" in reports:
        _write_verdicts(run, "labels_base", labels_table(solutions, base_log, legacy), LABEL_KEY, "correct",
                        reports["labels_base"], label_settings)
    settings = sandbox_settings(run.config)
    legacy = legacy_signature(run.config, labels=False)
    with make_executor(run.config, settings) as executor:
        if run.has_table("assertions"):  # CodeT's release: execute each distinct assertion, derive unit tests
            assertions = run.read_table("assertions")
            inputs = outputs.test_inputs(problems, assertions)
            log = verdict_log(run, "assertion_executions_log", "assertion_executions", ASSERTION_KEY, "recording_cases")
            pairs = recorded_assertion_pairs(problems, solutions, assertions, inputs, run.config["SANDBOX_MODE"])

            def recorded(v: Any) -> dict:  # what the recorder saw, beside the verdict (docs/codet.md)
                return {**_execution_fields(v), "output": v.output, "recorded": RECORDER_OUT in pairs[tuple(json.loads(v.id))][1]}

            reports["executions"] = _run_logged(pairs, log, executor, recorded, legacy,
                                                limits_of(limits, "test_limit_s"))
            ran = with_signature(log.frame(), legacy)
            _write_verdicts(run, "assertion_executions", ran[ran.assertion_id >= 0], ASSERTION_KEY, "passed",
                            reports["executions"], settings)
            if (ran.assertion_id < 0).any():  # the recording cases: outputs, not verdicts
                run.write_table("recording_cases", ran[ran.assertion_id < 0], key=list(ASSERTION_KEY),
                                force=bool(reports["executions"].recomputed))
            executions = unit_test_verdicts(run.read_table("assertion_executions"), assertions)
            run.write_table("executions", executions, key=list(EXECUTION_KEY), force=bool(reports["executions"].recomputed))
            reports["outputs"] = record_outputs(run, programs_of(pairs), inputs, limits, ran)
            reports["expected_values"] = record_values(run, "expected_values", outputs.expected_pairs(
                problems, assertions, run.read_table("test_inputs")), outputs.EXPECTED_KEY, limits)
        elif run.config["SANDBOX_MODE"] == "codet":
            raise ValueError("SANDBOX_MODE codet runs CodeT's assertions: it needs REPLAY_FORMAT codet")
        else:
            log = verdict_log(run, "executions_log", "executions", EXECUTION_KEY)
            reports["executions"] = execute_unit_tests(problems, solutions, unit_tests, log, executor, legacy,
                                                       limits_of(limits, "test_limit_s"))
            _write_verdicts(run, "executions", with_signature(log.frame(), legacy), EXECUTION_KEY, "passed",
                            reports["executions"], settings)
            reports["outputs"] = record_outputs(run, programs_of(matrix_pairs(problems, solutions, unit_tests)),
                                                outputs.unit_test_inputs(problems, executed_tests(unit_tests)), limits)
        rechecked = {k: getattr(executor, k, None) for k in ("timeouts_rechecked", "timeouts_overturned")}
    # a resumed stage keeps the report of the call that executed it (its throughput is the measured one)
    previous = run.manifest().get("sandbox", {}).get("reports", {})
    measured = {k: ({**asdict(v), "pairs_per_second": v.pairs_per_second} if v.executed or k not in previous
                    else previous[k]) for k, v in reports.items()}
    if reports["executions"].executed or "executions" not in previous:
        measured["executions"].update(rechecked)
    run.update_manifest(sandbox={
        "settings": asdict(settings), "label_settings": asdict(label_settings),
        "label_timeout_s": run.config["LABEL_TIMEOUT_S"],
        "time_limits": limits_summary(limits, run.config),
        "jailed": jailed, "backend": run.config["SANDBOX_BACKEND"], "reports": measured,
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()], "cores": os.cpu_count()},
    })
    return reports


def output_settings(config: Mapping[str, Any]) -> SandboxSettings:
    """SRank's executor of test inputs, each under OUTPUT_TIMEOUT_S, in the matrix's memory and jail."""
    return replace(sandbox_settings(config), mode="srank", timeout=config["OUTPUT_TIMEOUT_S"])


def _value_limit_changed(run: Run, name: str, key: tuple[str, ...], limit: float) -> dict[str, Any] | None:
    """The value table `name`'s input limit, kept in the manifest (`sandbox.value_limits`). When the run's
    limit is no longer the one its log was computed under (a run made before OUTPUT_TIMEOUT_S ran its
    inputs under TIMEOUT_S), the old log is moved aside, kept, and every value is computed again: returns
    what is replaced (also when resuming such a replacement), else None. Each step can be interrupted.
    Values without a recorded limit in a run whose manifest has no sandbox section yet (a committed run's
    inputs copied into a fresh folder, `rerender`) are taken as they are, like its verdicts."""
    log, sandbox = run.log(f"{name}_log", key), run.manifest().get("sandbox")
    states = dict((sandbox or {}).get("value_limits", {}))
    made = sandbox is not None and (log.path.exists() or run.has_table(name))
    state = states.get(name) or {"timeout_s": run.config["TIMEOUT_S"] if made else limit}
    if "replacing" not in state and state["timeout_s"] != limit:
        values = len(verdict_log(run, f"{name}_log", name, key).frame())  # a committed run's, from its table
        state = {"timeout_s": limit, "replacing": {"timeout_s": state["timeout_s"], "values": values,
                                                    "log": f"{log.path.stem}.limit-{state['timeout_s']}s.jsonl"}}
    run.update_manifest(sandbox={"value_limits": {**states, name: state}})
    if "replacing" in state:
        kept = log.path.with_name(state["replacing"]["log"])
        if not kept.exists() and log.path.exists():
            log.path.rename(kept)
        log.path.touch()  # the new log, empty: never rebuilt from the old table
    return state.get("replacing")


def _output_fields(v: Any) -> dict:
    return {"status": v.status, "output": v.output, "duration_s": v.duration_s}


def programs_of(pairs: Mapping[tuple, tuple[str, str]]) -> dict[tuple[str, int], str]:
    """(task_id, solution_id) → the solution program the stage's pairs run."""
    return {(key[0], key[1]): program for key, (program, _) in pairs.items()}


def record_outputs(run: Run, programs: Mapping[tuple[str, int], str], inputs: pd.DataFrame,
                   limits: pd.DataFrame | None, executions: pd.DataFrame | None = None) -> StageReport:
    """The outputs stage: the tests' distinct inputs (`outputs.test_inputs` for CodeT's assertions,
    `outputs.unit_test_inputs` for unittest classes; stored as `test_inputs`), each solution program's
    canonical output on each (`outputs` table: status `pass` when the input returned, and the output's
    text). What CodeT's executor recorded (`executions`, `outputs.recorded_outputs`) is taken as it is;
    SRank's executor runs the rest, resumable from `outputs_log` like every verdict."""
    run.write_table("test_inputs", inputs, key=["task_id", "input_id"])
    inputs = run.read_table("test_inputs")
    taken = outputs.recorded_outputs(executions, inputs) if executions is not None else None
    return record_values(run, "outputs", outputs.output_pairs(programs, inputs), outputs.OUTPUT_KEY, limits, taken)


def record_values(run: Run, name: str, pairs: Mapping[tuple, tuple[str, str]], key: tuple[str, ...],
                  limits: pd.DataFrame | None, taken: pd.DataFrame | None = None) -> StageReport:
    """Each pair's value in SRank's executor (program, then the expression) as the table `name`, resumable
    from its log: the solutions' outputs, or the assertions' expected values (`outputs.expected_pairs`).
    `taken`: values CodeT's executor recorded (keyed like the table), not executed again."""
    settings = output_settings(run.config)
    replacing = _value_limit_changed(run, name, key, settings.timeout)
    log = verdict_log(run, f"{name}_log", name, key)
    taken = pd.DataFrame(columns=list(key)) if taken is None else taken
    known = set(zip(*(taken[k] for k in key)))
    with make_executor(run.config, settings) as executor:
        report = _run_logged({k: v for k, v in pairs.items() if k not in known}, log, executor, _output_fields,
                             signature(settings), limits_of(limits, "test_limit_s", settings.timeout / run.config["TIMEOUT_S"]))
    if replacing:
        report = replace(report, recomputed=replacing["values"],
                         recomputed_from=(_said(signature(settings), replacing["timeout_s"]),))
    logged = log.frame()
    if known:
        rest = logged[[k not in known for k in zip(*(logged[k] for k in key))]] if len(logged) else logged
        logged = sort_rows(pd.concat([taken.assign(**{**signature(settings), "mode": run.config["SANDBOX_MODE"]}), rest],
                                     ignore_index=True), list(key))
    _write_verdicts(run, name, logged, key, "output", report, settings, settings.timeout)
    if replacing:
        run.update_manifest(sandbox={"value_limits": {**run.manifest()["sandbox"]["value_limits"],
                                                      name: {"timeout_s": settings.timeout}}})
    return report


DERIVED = {"labels": ("difficulty",)}  # tables later stages derive from a verdict table (the gold pass rates)


def _said(signature: Mapping[str, str], limit: float | None = None) -> str:
    """A signature as the manifest's `recomputed` says it: "mode/clock", and the input limit of a value table."""
    return f"{signature['mode']}/{signature['clock']}" + ("" if limit is None else f"/{limit} s per input")


def changed(both: pd.DataFrame, outcome: str) -> pd.Series:
    """Which rows' outcomes differ from before. An output is its status and its text, a missing text (an
    input that raised or ran out of time) equal to a missing one."""
    columns = ("status", "output") if outcome == "output" else (outcome,)
    return pd.concat([(both[c] != both[f"{c}_before"]) & ~(both[c].isna() & both[f"{c}_before"].isna())
                      for c in columns], axis=1).any(axis=1)


def _write_verdicts(run: Run, name: str, table: pd.DataFrame, key: tuple[str, ...], outcome: str,
                    report: StageReport, settings: SandboxSettings, limit: float | None = None) -> None:
    """Write a verdict table. When verdicts of another signature (or, `limit` said, another input limit)
    were computed again the table is replaced, and the manifest's `recomputed` list says what, from what,
    to what, and how many outcomes changed."""
    if report.recomputed and run.has_table(name):
        before = run.read_table(name)
        both = table.merge(before, on=list(key), suffixes=("", "_before"))
        now = signature(settings)
        events = run.manifest().get("recomputed", [])
        derived = [t for t in DERIVED.get(name, ()) if run.has_table(t)]
        for table_name in derived:  # computed later from these verdicts: recomputed by its own stage
            run.file(f"{table_name}.parquet").unlink()
        events.append({"date": time.strftime("%Y-%m-%d"), "table": name, "verdicts": report.recomputed,
                       "from": list(report.recomputed_from), "to": _said(now, limit),
                       f"{outcome}_changed": int(changed(both, outcome).sum()),
                       "derived_tables_removed": derived})
        run.update_manifest(recomputed=events)
    run.write_table(name, table, key=list(key), force=bool(report.recomputed))


def base_and_plus(labels: pd.DataFrame, labels_base: pd.DataFrame) -> pd.DataFrame:
    """EvalPlus's two accuracies side by side: the share of solutions correct on the base inputs, and on
    base and plus inputs (the paper's number); per problem and overall (the `all` row)."""
    keys = list(LABEL_KEY)
    both = labels[keys + ["correct"]].merge(
        labels_base[keys + ["correct"]].rename(columns={"correct": "correct_base"}), on=keys)
    per_problem = both.groupby("task_id").agg(solutions=("correct", "size"), base=("correct_base", "mean"),
                                              plus=("correct", "mean")).reset_index()
    overall = pd.DataFrame([{"task_id": "all", "solutions": len(both), "base": both.correct_base.mean(),
                             "plus": both.correct.mean()}])
    return pd.concat([per_problem, overall], ignore_index=True)


def status_counts(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(sorted(Counter(table.status).items()), columns=["status", "pairs"])


def stage_pairs(run: Run) -> dict[tuple, tuple[str, str]]:
    """The pairs the execution stage runs for this run: per distinct assertion for CodeT's release (with
    its recording cases), else per valid, unique unit test."""
    problems, solutions = run.read_table("problems"), run.read_table("solutions")
    if run.has_table("assertions"):
        assertions = run.read_table("assertions")
        return recorded_assertion_pairs(problems, solutions, assertions, outputs.test_inputs(problems, assertions),
                                        run.config["SANDBOX_MODE"])
    return matrix_pairs(problems, solutions, run.read_table("unit_tests"))


def unique_executions(pairs: Mapping[tuple, tuple[str, str]]) -> int:
    """How many executions a set of pairs needs once identical solutions and tests are merged."""
    return plan_jobs(Pair(json.dumps(list(k)), s, t) for k, (s, t) in pairs.items()).unique_pairs
