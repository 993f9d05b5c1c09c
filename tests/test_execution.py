"""The execution stage: labels and the pass matrix, dedup fan-out, resume after kill -9, Ray backend."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from utscale import benchmarks, calibration, execution, outputs, runs
from utscale.runs import JsonlLog
from utscale.sandbox import Executor, SandboxSettings
from utscale.sandbox.executor import SCRATCH_PREFIX

SLOW_TEST = ("import unittest, time\nclass T(unittest.TestCase):\n    def test_a(self):\n        time.sleep(0.03)\n"
             "        self.assertEqual({call}, {expected})\n")


# what verdicts logged without the signature fields ran under (a fast-mode run on the wall clock)
LEGACY = {"mode": "fast", "clock": "wall"}

def tiny_inputs(n_problems=3, n_solutions=4, n_tests=5):
    problems = benchmarks.load_benchmark("humaneval", limit=n_problems).table()
    sols, tests = [], []
    for p in problems.itertuples():
        variants = [p.reference_solution, p.reference_solution + "\n# same AST\n",
                    f"def {p.entry_point}(*a):\n    return None\n", None]
        for i in range(n_solutions):
            code = variants[i % len(variants)]
            sols.append({"task_id": p.task_id, "solution_id": i, "code": code})
        for j in range(n_tests):
            code = (None if j == n_tests - 1 else
                    SLOW_TEST.format(call=f"{p.entry_point} is not None", expected="True") + f"# t{j % 3}\n")
            tests.append({"task_id": p.task_id, "test_id": j, "code": code,
                          "duplicate_of": (j - 3) if j >= 3 and code else None})
    return problems, pd.DataFrame(sols), pd.DataFrame(tests)


def test_labels_and_matrix_with_dedup_and_missing_code(tmp_path):
    problems, sols, tests = tiny_inputs()
    with Executor(workers=2, settings=SandboxSettings(timeout=5)) as ex:
        lab_log = JsonlLog(tmp_path / "labels.jsonl", execution.LABEL_KEY)
        report = execution.label_solutions(problems, sols, lab_log, ex, LEGACY)
        labels = execution.labels_table(sols, lab_log, LEGACY)
        ex_log = JsonlLog(tmp_path / "ex.jsonl", execution.EXECUTION_KEY)
        matrix = execution.execute_unit_tests(problems, sols, tests, ex_log, ex, LEGACY)
    assert report.pairs == 9 and report.unique_executed == 6  # the AST-identical copy runs once
    by = labels.set_index(["task_id", "solution_id"])
    for task in problems.task_id:
        assert by.loc[(task, 0), "correct"] and by.loc[(task, 1), "correct"]
        assert not by.loc[(task, 2), "correct"]
        assert by.loc[(task, 3), "status"] == "invalid"
    # tests 0-2 valid and unique; 3 is a duplicate of 0, 4 has no code: 3 solutions with code x 3 tests
    assert matrix.pairs == 27 and matrix.unique_executed == 18  # per problem: 2 distinct ASTs x 3 tests
    table = ex_log.frame()
    assert set(table.test_id) == {0, 1, 2} and table.passed.all()


def test_verdicts_logged_under_another_mode_or_clock_are_computed_again(tmp_path):
    """A run made before LABEL_MODE and SANDBOX_CLOCK existed logged fast-mode, wall-clock labels with
    neither field: under isolated / cpu they are computed again (not reused), once, and the table says
    what each label ran under."""
    problems, sols, _ = tiny_inputs()
    legacy = execution.legacy_signature({"SANDBOX_MODE": "fast"}, labels=True)
    assert legacy == {"mode": "fast", "clock": "wall"}
    log = JsonlLog(tmp_path / "labels.jsonl", execution.LABEL_KEY)
    with Executor(workers=2, settings=SandboxSettings(timeout=5, mode="fast", clock="wall")) as ex:
        first = execution.label_solutions(problems, sols, log, ex, legacy)
    old = execution.labels_table(sols, log, legacy)
    records = [{k: v for k, v in r.items() if k not in execution.SIGNATURE} for r in log]  # the old log's records
    log.path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert set(execution.stale_verdicts(log, {"mode": "isolated", "clock": "cpu"}, legacy).values()) == {("fast", "wall")}
    assert execution.stale_verdicts(log, {"mode": "fast", "clock": "wall"}, legacy) == {}
    assert len(execution.stale_verdicts(log, {"mode": "fast", "clock": "cpu"}, legacy)) == first.executed
    with Executor(workers=2, settings=SandboxSettings(timeout=5, mode="isolated")) as ex:
        second = execution.label_solutions(problems, sols, log, ex, legacy)
        third = execution.label_solutions(problems, sols, log, ex, legacy)
    assert second.executed == second.recomputed == first.executed > 0 and second.recomputed_from == ("fast/wall",)
    assert third.executed == 0
    new = execution.labels_table(sols, log, legacy)
    ran = new.status != "invalid"
    assert set(zip(new["mode"][ran], new["clock"][ran])) == {("isolated", "cpu")} and set(old["mode"][ran]) == {"fast"}
    assert set(new["mode"][~ran]) == {""}  # solutions without code never ran
    assert new.correct.tolist() == old.correct.tolist()


KILL_SCRIPT = textwrap.dedent("""
    import pickle, sys
    from utscale import execution
    from utscale.runs import JsonlLog
    from utscale.sandbox import Executor, SandboxSettings
    problems, sols, tests = pickle.load(open(sys.argv[1], "rb"))
    with Executor(workers=1, settings=SandboxSettings(timeout=5, mode="strict")) as ex:
        execution.execute_unit_tests(problems, sols, tests, JsonlLog(sys.argv[2], execution.EXECUTION_KEY), ex,
                                     execution.legacy_signature({"SANDBOX_MODE": "strict"}, labels=False))
""")


@pytest.mark.slow
def test_kill_minus_9_then_resume_gives_the_same_matrix_and_runs_no_pair_twice(tmp_path):
    import pickle

    problems, sols, tests = tiny_inputs(n_problems=3, n_solutions=6, n_tests=6)
    tests["duplicate_of"] = None
    tests["code"] = [SLOW_TEST.format(call="1", expected="1") + f"# unique {i}\n" for i in range(len(tests))]
    sols["code"] = [f"def f():\n    return {i}\n" for i in range(len(sols))]  # every solution distinct
    inputs = tmp_path / "inputs.pkl"
    inputs.write_bytes(pickle.dumps((problems, sols, tests)))
    log_path = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(inputs), str(log_path)], start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not log_path.exists() or len(log_path.read_text().splitlines()) < 20):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(log_path.read_text().splitlines())
    assert 20 <= done_before < 108, "the kill should land in the middle of the run"
    left = list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-{proc.pid}-*"))
    assert left, "a driver killed with -9 cleans nothing up"
    legacy = execution.legacy_signature({"SANDBOX_MODE": "strict"}, labels=False)
    with Executor(workers=2, settings=SandboxSettings(timeout=5, mode="strict")) as ex:  # what the killed run used
        assert not any(path.exists() for path in left), "the next executor removes a dead driver's scratch"
        assert list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-{os.getpid()}-*"))  # but not its own
        report = execution.execute_unit_tests(problems, sols, tests, JsonlLog(log_path, execution.EXECUTION_KEY), ex,
                                              legacy)
        reference_log = JsonlLog(tmp_path / "reference.jsonl", execution.EXECUTION_KEY)
        execution.execute_unit_tests(problems, sols, tests, reference_log, ex, legacy)
    keys = [tuple(json.loads(line)[k] for k in execution.EXECUTION_KEY) for line in log_path.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 108, "a pair was run twice or lost"
    assert report.resumed == done_before and report.executed == 108 - done_before
    resumed = JsonlLog(log_path, execution.EXECUTION_KEY).frame().drop(columns="duration_s")
    pd.testing.assert_frame_equal(resumed, reference_log.frame().drop(columns="duration_s"))


@pytest.mark.slow
def test_ray_backend_runs_the_same_worker_code(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from utscale.sandbox.ray_backend import RayExecutor

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    problems, sols, tests = tiny_inputs()
    with Executor(workers=2, settings=SandboxSettings(timeout=5)) as ex:
        local = JsonlLog(tmp_path / "local.jsonl", execution.EXECUTION_KEY)
        execution.execute_unit_tests(problems, sols, tests, local, ex, LEGACY)
    with RayExecutor(workers=2, settings=SandboxSettings(timeout=5), num_cpus=2, batch_size=2) as rx:
        remote = JsonlLog(tmp_path / "ray.jsonl", execution.EXECUTION_KEY)
        execution.execute_unit_tests(problems, sols, tests, remote, rx, LEGACY)
    cols = ["task_id", "solution_id", "test_id", "passed", "status", "tests_run"]
    pd.testing.assert_frame_equal(local.frame()[cols], remote.frame()[cols])


def test_unit_test_verdicts_are_the_and_of_their_assertions():
    assertions = pd.DataFrame({"task_id": ["T/0", "T/0", "T/0"], "assertion_id": [0, 1, 2],
                               "sources": ["[[0, 0], [1, 0]]", "[[0, 1]]", "[[1, 1]]"]})
    by_assertion = pd.DataFrame({"task_id": ["T/0"] * 6, "solution_id": [0, 0, 0, 1, 1, 1],
                                 "assertion_id": [0, 1, 2, 0, 1, 2],
                                 "passed": [True, True, False, True, False, True],
                                 "status": ["pass", "pass", "fail", "pass", "timeout", "pass"],
                                 "tests_run": [1] * 6, "duration_s": [0.1] * 6})
    got = execution.unit_test_verdicts(by_assertion, assertions).sort_values(["solution_id", "test_id"])
    # test 0 = assertions 0, 1; test 1 = assertions 0, 2
    assert got.passed.tolist() == [True, False, False, True]
    assert got.status.tolist() == ["pass", "fail", "timeout", "pass"]
    assert got.tests_run.tolist() == [2, 2, 2, 2]


def test_recomputed_verdicts_replace_their_table_remove_what_was_derived_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setenv("UTSCALE_RESULTS", str(tmp_path))
    run = runs.open_run("ci")
    key = ["task_id", "solution_id"]
    old = pd.DataFrame({"task_id": ["T/0", "T/0"], "solution_id": [0, 1], "correct": [True, False]})
    run.write_table("labels", old, key=key)
    run.write_table("difficulty", pd.DataFrame({"task_id": ["T/0"], "pass_rate": [0.5]}), key=["task_id"])
    new = old.assign(correct=[True, True], mode="isolated", clock="cpu")
    report = execution.StageReport(pairs=2, resumed=0, executed=2, unique_executed=2, seconds=0.1, recomputed=2,
                                   recomputed_from=("fast/wall",))
    execution._write_verdicts(run, "labels", new, execution.LABEL_KEY, "correct", report,
                              SandboxSettings(mode="isolated"))
    assert run.read_table("labels").equals(new) and not run.has_table("difficulty")
    (event,) = run.manifest()["recomputed"]
    assert event["from"] == ["fast/wall"] and event["to"] == "isolated/cpu" and event["verdicts"] == 2
    assert event["correct_changed"] == 1 and event["derived_tables_removed"] == ["difficulty"]
    # nothing recomputed: a different table is still refused, never overwritten silently
    unchanged = execution.StageReport(pairs=2, resumed=2, executed=0, unique_executed=0, seconds=0.0)
    with pytest.raises(runs.RunConflict):
        execution._write_verdicts(run, "labels", old, execution.LABEL_KEY, "correct", unchanged,
                                  SandboxSettings(mode="isolated"))


BUSY = "import time\n\ndef f(x):\n    end = time.perf_counter() + x\n    while time.perf_counter() < end:\n        pass\n    return x\n"


def test_outputs_computed_under_another_input_limit_are_computed_again_and_said(results_root, monkeypatch):
    """A run made before OUTPUT_TIMEOUT_S ran its inputs under TIMEOUT_S: opened with a smaller input limit,
    its outputs log is kept aside, every output is computed again (also after an interruption), the table
    is replaced and the manifest says from what limit to what and how many outputs changed."""
    run = runs.open_run("ci", {"LIMIT": 1, "OUTPUT_TIMEOUT_S": 1.0})
    inputs = pd.DataFrame({"task_id": ["T/0"] * 4, "input_id": [0, 1, 2, 3], "input": ["f(0.5)", "f(0.0)", "f('x')", "f(0.5) + 'x'"],
                           "test_ids": ["[0]"] * 4})
    programs = {("T/0", 0): BUSY}
    assert execution.record_outputs(run, programs, inputs, None).executed == 4
    assert run.read_table("outputs").status.tolist() == ["pass", "pass", "error", "error"]
    manifest = run.manifest()
    manifest["sandbox"].pop("value_limits")  # as a run made before the input limit had its own parameter
    runs.manifest_mod.write(run.manifest_path, manifest)
    quarter = dataclasses.replace(run, config={**run.config, "OUTPUT_TIMEOUT_S": 0.25})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(execution, "_run_logged", interrupted)
        with pytest.raises(KeyboardInterrupt):
            execution.record_outputs(quarter, programs, inputs, None)
    assert len(JsonlLog(run.file("outputs_log.limit-1.0s.jsonl"), outputs.OUTPUT_KEY).frame()) == 4  # kept
    assert run.file("outputs_log.jsonl").read_text() == ""  # the new log: never rebuilt from the old table
    report = execution.record_outputs(quarter, programs, inputs, None)  # the replacement, resumed
    assert (report.executed, report.recomputed) == (4, 4)
    assert run.read_table("outputs").status.tolist() == ["timeout", "pass", "error", "timeout"]
    (event,) = run.manifest()["recomputed"]
    assert event["from"] == ["srank/wall/1.0 s per input"] and event["to"] == "srank/wall/0.25 s per input"
    assert event["verdicts"] == 4 and event["output_changed"] == 2  # a status or a text; no text twice: the same
    assert run.manifest()["sandbox"]["value_limits"] == {"outputs": {"timeout_s": 0.25}}
    again = execution.record_outputs(quarter, programs, inputs, None)  # settled: nothing runs twice
    assert (again.executed, again.recomputed) == (0, 0) and len(run.manifest()["recomputed"]) == 1


def test_a_committed_runs_outputs_copied_into_a_fresh_folder_are_taken_as_they_are(results_root):
    """`rerender` copies a committed run's value tables into a fresh folder, whose new manifest records no
    input limit yet: they are inputs, like its verdicts, never computed again under a guessed old limit."""
    run = runs.open_run("ci", {"LIMIT": 1})
    inputs = pd.DataFrame({"task_id": ["T/0"], "input_id": [0], "input": ["f(0.5)"], "test_ids": ["[0]"]})
    committed = pd.DataFrame({"task_id": ["T/0"], "solution_id": [0], "input_id": [0], "status": ["pass"],
                              "output": ["0.5"], "duration_s": [0.5], "mode": ["srank"], "clock": ["wall"]})
    run.write_table("outputs", committed[sorted(committed)], key=list(outputs.OUTPUT_KEY))  # as logs write
    assert "sandbox" not in run.manifest()
    report = execution.record_outputs(run, {("T/0", 0): BUSY}, inputs, None)  # 0.1 s would time it out
    assert (report.executed, report.recomputed) == (0, 0)
    assert run.read_table("outputs").status.tolist() == ["pass"] and "recomputed" not in run.manifest()
    assert run.manifest()["sandbox"]["value_limits"] == {"outputs": {"timeout_s": run.config["OUTPUT_TIMEOUT_S"]}}


SLOW_REFERENCE = ("import time\n\ndef slow(x):\n    end = time.process_time() + 0.25\n    while time.process_time() < end:\n"
                  "        pass\n    return x\n")


def slow_problems() -> pd.DataFrame:
    """Three problems whose ground truth takes the reference 0.25 s of CPU: one with that reference, one
    whose reference fails its own ground truth, one without a reference."""
    truth = benchmarks.ground_truth_program("assert slow(3) == 3", "")
    rows = [{"task_id": f"Slow/{i}", "benchmark": "humaneval", "prompt": "", "question": "", "entry_point": "slow",
             "reference_solution": ref, "ground_truth": truth, "difficulty": ""}
            for i, ref in enumerate([SLOW_REFERENCE, "def slow(x):\n    return -x\n", ""])]
    return pd.DataFrame(rows)


def test_per_problem_limits_give_a_slow_reference_its_time_and_are_measured_once(results_root, monkeypatch):
    run = runs.open_run("ci", {"TIME_LIMIT_FACTOR": 4.0, "LABEL_TIMEOUT_S": 0.1, "TIMEOUT_S": 0.1})
    run.write_table("problems", slow_problems(), key=["task_id"])
    with Executor(workers=2, settings=execution.sandbox_settings(run.config, labels=True)) as ex:
        limits = calibration.time_limits(run, ex).set_index("task_id")
        assert limits.reference_status.tolist() == ["pass", "fail", "none"]
        assert 0.25 <= limits.loc["Slow/0", "reference_seconds"] < 1.0
        assert limits.loc["Slow/0", "label_limit_s"] == pytest.approx(4 * limits.loc["Slow/0", "reference_seconds"],
                                                                      abs=1e-3)
        assert limits.loc[["Slow/1", "Slow/2"], "label_limit_s"].tolist() == [0.1, 0.1]  # the fixed limit stays
        # the correct slow solution: a timeout under the fixed 0.1 s, a pass under its problem's limit
        sols = pd.DataFrame({"task_id": ["Slow/0"], "solution_id": [0], "code": [SLOW_REFERENCE]})
        fixed = execution.label_solutions(run.read_table("problems"), sols, JsonlLog(results_root / "a.jsonl",
                                          execution.LABEL_KEY), ex, LEGACY)
        calibrated_log = JsonlLog(results_root / "b.jsonl", execution.LABEL_KEY)
        execution.label_solutions(run.read_table("problems"), sols, calibrated_log, ex, LEGACY,
                                  calibration.limits_of(limits.reset_index(), "label_limit_s"))
        assert fixed.executed == 1
        assert JsonlLog(results_root / "a.jsonl", execution.LABEL_KEY).frame().status.tolist() == ["timeout"]
        assert calibrated_log.frame().status.tolist() == ["pass"]
        monkeypatch.setattr(calibration, "reference_times", lambda *a, **k: pytest.fail("measured twice"))
        assert calibration.time_limits(run, ex).equals(limits.reset_index())  # read back on resume
    summary = calibration.limits_summary(limits.reset_index(), run.config)
    assert (summary["references_passed"], summary["label_limits_raised"], summary["test_limits_raised"]) == (1, 1, 1)
    assert calibration.time_limits(runs.open_run("ci"), ex) is None  # factor 0: the fixed limits
