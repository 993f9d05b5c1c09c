from __future__ import annotations

import json
import time
from datetime import datetime

import pandas as pd
import pytest
from utscale import config, manifest, runs


def test_open_run_writes_a_manifest_and_reopens_the_same_directory(results_root):
    run = runs.open_run("ci", {"LIMIT": 3})
    manifest = run.manifest()
    assert run.path.parent == results_root and run.run_id.startswith("ci-")
    assert manifest["config"]["LIMIT"] == 3 and manifest["seeds"] == {"root": 1234}
    assert {"commit", "dirty"} <= set(manifest["git"]) and "numpy" in manifest["versions"]
    again = runs.open_run("ci", {"LIMIT": 3})
    assert again.path == run.path and again.manifest()["created"] == manifest["created"]


def test_a_run_directory_refuses_another_configuration(results_root):
    run = runs.open_run("ci", {"LIMIT": 3})
    with pytest.raises(runs.RunConflict, match="differs in \\['LIMIT'\\]"):
        runs.open_run("ci", {"LIMIT": 4}, run_dir=run.path)


def test_tables_are_sorted_and_never_overwritten_silently(results_root):
    run = runs.open_run("ci")
    df = pd.DataFrame({"task_id": ["T/10", "T/2", "T/1"], "x": [3, 2, 1]})
    run.write_table("t", df, key=["task_id"])
    assert run.read_table("t").task_id.tolist() == ["T/1", "T/2", "T/10"]
    run.write_table("t", df.iloc[::-1], key=["task_id"])  # same content: a no-op
    with pytest.raises(runs.RunConflict, match="refusing to overwrite"):
        run.write_table("t", df.assign(x=[0, 0, 0]), key=["task_id"])
    run.write_table("t", df.assign(x=[0, 0, 0]), key=["task_id"], force=True)
    assert run.read_table("t").x.tolist() == [0, 0, 0]


def test_missing_table_names_the_notebook_to_run_first(results_root):
    run = runs.open_run("ci")
    with pytest.raises(FileNotFoundError, match="no 'executions' table yet: run 04_execute.ipynb on this run first"):
        run.read_table("executions")
    with pytest.raises(FileNotFoundError, match="run 01_load_benchmark.ipynb .*utscale run --profile ci"):
        run.read_table("problems")


def test_a_profile_that_does_not_exist_lists_the_available_ones(results_root):
    with pytest.raises(config.ParameterError, match=r"no profile 'embeded'.*available: \[.*'embedded'"):
        runs.open_notebook_run({"PROFILE": "embeded", "RUN_DIR": ""})


def test_jsonl_log_resumes_after_a_torn_write(tmp_path):
    log = runs.JsonlLog(tmp_path / "gen.jsonl", key=["task_id", "i"])
    log.append([{"task_id": "a", "i": 0, "text": "x"}, {"task_id": "a", "i": 1, "text": "y"}])
    with open(log.path, "a") as fh:  # a kill -9 in the middle of a line
        fh.write('{"task_id": "a", "i": 2, "te')
    reopened = runs.JsonlLog(tmp_path / "gen.jsonl", key=["task_id", "i"])
    assert reopened.keys() == {("a", 0), ("a", 1)}
    reopened.append([{"task_id": "a", "i": 2, "text": "z"}])
    assert [json.loads(line)["i"] for line in log.path.read_text().splitlines()] == [0, 1, 2]
    assert reopened.frame().text.tolist() == ["x", "y", "z"]


def test_stage_timings_land_in_the_manifest(results_root):
    run = runs.open_run("ci")
    with run.stage("demo"):
        time.sleep(0.05)  # a lower bound the recorded time cannot miss if it measures the stage at all
    timing = run.manifest()["timings"]["demo"]
    assert timing["seconds"] >= 0.05
    assert datetime.fromisoformat(timing["started"]).tzinfo is not None


def test_a_notebook_under_the_pipeline_takes_the_manifest_config(results_root):
    run = runs.open_run("ci", {"LIMIT": 3})
    # a notebook that declares only SEED (with the run's value) opens the same run, LIMIT included
    opened = runs.open_notebook_run({"PROFILE": "ci", "RUN_DIR": str(run.path), "SEED": 1234})
    assert opened.path == run.path and opened.config["LIMIT"] == 3
    with pytest.raises(runs.RunConflict, match="SEED"):
        runs.open_notebook_run({"PROFILE": "ci", "RUN_DIR": str(run.path), "SEED": 99})


def test_git_state_counts_code_changes_but_not_run_outputs(tmp_path, monkeypatch):
    import subprocess

    from utscale import runs

    repo = tmp_path / "repo"
    (repo / "lib").mkdir(parents=True)
    (repo / "lib" / "code.py").write_text("x = 1\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    monkeypatch.setenv("UTSCALE_ROOT", str(repo))
    (repo / "results" / "embedded").mkdir(parents=True)
    (repo / "results" / "embedded" / "report.html").write_text("<html></html>")
    state = runs.git_state()
    assert state["dirty"] is False and len(state["commit"]) == 40
    (repo / "lib" / "code.py").write_text("x = 2\n")
    assert runs.git_state()["dirty"] is True


def test_numeric_drift_reaches_each_of_its_verdicts():
    """Kept with the drift recorded (float columns within the tolerance), refused (beyond it, a NaN moved,
    a non-float value, a dtype or a column changed)."""
    from utscale.runs import DRIFT_TOLERANCE, numeric_drift

    a = pd.DataFrame({"task_id": ["a", "b"], "x": [0.5, float("nan")], "n": [1, 2]})
    assert numeric_drift(a, a.assign(x=[0.5 + DRIFT_TOLERANCE / 2, float("nan")])) == {"x": pytest.approx(5e-7)}
    assert numeric_drift(a, a.assign(x=[0.5 + 10 * DRIFT_TOLERANCE, float("nan")])) is None
    assert numeric_drift(a, a.assign(x=[0.5, 0.1])) is None
    assert numeric_drift(a, a.assign(n=[1, 3])) is None
    assert numeric_drift(a, a.assign(n=[1.0, 2.0])) is None
    assert numeric_drift(a, a.rename(columns={"x": "y"})) is None
    assert numeric_drift(a, a) is None  # nothing drifted: write_table keeps it as identical


def test_write_table_records_drift_and_refuses_a_real_change(results_root):
    run = runs.open_run("ci")
    table = pd.DataFrame({"task_id": ["a", "b"], "x": [0.25, 0.75]})
    run.write_table("t", table, key=["task_id"])
    run.write_table("t", table.assign(x=[0.25, 0.75 + 1e-9]), key=["task_id"])
    assert run.read_table("t").equals(table)
    assert run.manifest()["drift"]["t"]["max_abs_difference"] == {"x": pytest.approx(1e-9)}
    with pytest.raises(runs.RunConflict, match="different t table"):
        run.write_table("t", table.assign(x=[0.25, 0.8]), key=["task_id"])


def test_the_manifest_has_one_schema_checked_on_write_and_on_read(results_root):
    run = runs.open_run("ci")
    run.update_manifest(completed=False, notebooks={"01_load_benchmark.ipynb": "2026-12-02T00:00:00+00:00"})
    assert run.manifest()["completed"] is False
    with pytest.raises(manifest.ManifestError, match=r"unknown keys: \['complete'\]"):
        run.update_manifest(complete=True)  # a misspelt section is refused, not stored beside the right one
    with pytest.raises(manifest.ManifestError, match=r"values of the wrong type: \['notebooks'\]"):
        run.update_manifest(notebooks=["01"])
    stored = json.loads(run.manifest_path.read_text())
    del stored["config"]
    run.manifest_path.write_text(json.dumps(stored))
    with pytest.raises(manifest.ManifestError, match=r"manifest.json: .*missing keys: \['config'\]"):
        run.manifest()


def test_every_committed_runs_manifest_follows_the_schema():
    from utscale.paths import project_root

    found = sorted((project_root() / "results").glob("*/manifest.json"))
    assert found
    for path in found:
        assert manifest.read(path)["run_id"] == path.parent.name
