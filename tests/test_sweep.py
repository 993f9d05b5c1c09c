"""`python -m utscale sweep`: a grid of profiles and overrides, one run each, resumed, then compared."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from utscale import cli, config, pipeline, sweep
from utscale.paths import params_dir
from utscale.runs import RunConflict

REPLAY = "tests/fixtures/generations/ci_solutions.jsonl"


def write_grid(tmp_path: Path, text: str, name: str = "sweep-test") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_every_committed_grid_expands_to_valid_distinct_runs():
    grids = sorted(params_dir().glob("sweep-*.yaml"))
    assert {g.stem for g in grids} >= {"sweep-ci", "sweep-paper-policies", "sweep-paper-test-generators"}
    for path in grids:
        s = sweep.load_sweep(str(path))
        raw = yaml.safe_load(path.read_text())
        expected = len(raw["profiles"])
        for values in raw.get("grid", {}).values():
            expected *= len(values)
        assert len(s.points) == expected == len({p.run_id for p in s.points}), path.name
        assert all(p.run_id.startswith(p.profile) for p in s.points)


@pytest.mark.parametrize("text, message", [
    ("profiles: [ci]\ngrid:\n  N_UNIT_TEST: [2, 4]\n", r"did you mean N_UNIT_TESTS"),
    ("profiles: [ci]\ngrid:\n  N_UNIT_TESTS: 4\n", r"non-empty list"),
    ("profiles: [ci]\ngrid:\n  N_UNIT_TESTS: [4, -1]\n", r"below its minimum"),
    ("profiles: ci\n", r"'profiles' must be a non-empty list"),
    ("profiles: [nope]\n", r"no profile 'nope'"),
    ("profiles: [ci]\nmatrix: {}\n", r"unknown sweep keys \['matrix'\]"),
])
def test_a_bad_grid_fails_before_any_point_runs(tmp_path, results_root, text, message):
    calls = []
    with pytest.raises(config.ParameterError, match=message):
        sweep.run_sweep(str(write_grid(tmp_path, text)), runner=lambda *a: calls.append(a), log=lambda _: None)
    assert calls == [] and not results_root.exists()


@pytest.mark.notebook
@pytest.mark.slow  # two pipeline runs through notebook 04: about 100 s, 290 s on a busy machine
def test_sweep_runs_each_point_resumes_finished_ones_and_compares(tmp_path, results_root):
    grid = write_grid(tmp_path, "profiles: [ci]\ngrid:\n  N_UNIT_TESTS: [2, 8]\nonly: ['01', '02', '03', '04']\n")
    calls = []

    def counting_runner(profile, overrides, only):
        calls.append(overrides["N_UNIT_TESTS"])
        return pipeline.run_pipeline(profile, overrides, only=only)

    table = sweep.run_sweep(str(grid), runner=counting_runner, log=lambda _: None)
    assert calls == [2, 8]
    assert table.N_UNIT_TESTS.tolist() == [2, 8] and set(table.status) == {sweep.DONE}
    assert (table.problems == 12).all()
    # with every solution kept, a random pick's expected accuracy is the policy's pass rate, and both
    # points share the same (replayed) solutions
    assert table.random_pick.tolist() == pytest.approx(table.policy_pass_rate.tolist())
    assert table.policy_pass_rate.nunique() == 1
    assert (table.test_tokens.iloc[0] < table.test_tokens.iloc[1])
    # all solutions and all tests leave nothing to resample; the interval comes from the 12 problems
    assert (table.voting_ci_low < table.voting).all() and (table.voting < table.voting_ci_high).all()
    assert (table.voting_ci_high - table.voting_ci_low > 10).all()
    assert table.gain.to_numpy() == pytest.approx((table.voting - table.random_pick).to_numpy())
    assert (table.gain_ci_low < table.gain).all() and (table.gain < table.gain_ci_high).all()
    out = results_root / "sweep-test"
    assert pd.read_parquet(out / "comparison.parquet").equals(table)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {p["status"] for p in manifest["points"].values()} == {sweep.DONE}

    again = sweep.run_sweep(str(grid), runner=counting_runner, log=lambda _: None)
    assert calls == [2, 8]  # nothing re-executed
    assert set(again.status) == {sweep.RESUMED}
    assert again.drop(columns="status").equals(table.drop(columns="status"))

    grid.write_text(grid.read_text().replace("[2, 8]", "[2, 4]"))
    with pytest.raises(RunConflict, match="another grid"):
        sweep.run_sweep(str(grid), runner=counting_runner, log=lambda _: None)


@pytest.mark.slow
@pytest.mark.notebook
def test_a_failing_point_is_recorded_and_the_others_still_run(tmp_path, results_root, capsys):
    grid = write_grid(tmp_path, f"profiles: [ci]\ngrid:\n  POLICY_REPLAY_PATH: [missing.jsonl, {REPLAY}]\n"
                                "only: ['01', '02']\n")
    assert cli.main(["sweep", str(grid)]) == 1
    table = pd.read_parquet(results_root / "sweep-test" / "comparison.parquet")
    by_path = table.set_index("POLICY_REPLAY_PATH")
    assert by_path.loc["missing.jsonl", "status"] == sweep.FAILED
    assert "replay file not found" in by_path.loc["missing.jsonl", "error"]
    assert by_path.loc[REPLAY, "status"] == sweep.DONE
    assert by_path.loc[REPLAY, "solution_tokens"] > 0
    assert "FAILED" in capsys.readouterr().out


def test_the_profile_s_grids_follow_a_swept_size_and_an_explicit_grid_is_checked(tmp_path):
    points = sweep.load_sweep(str(write_grid(tmp_path, "profiles: [ci]\ngrid:\n  N_UNIT_TESTS: [2, 8]\n"))).points
    small = next(p for p in points if p.overrides["N_UNIT_TESTS"] == 2)
    # ci's M_GRID [0, 1, 2, 4, 8] and BUDGETS [1, 2, 4, 8] are trimmed to the 2 tests this point samples
    assert small.overrides["M_GRID"] == [0, 1, 2] and small.overrides["BUDGETS"] == [1, 2]
    full = next(p for p in points if p.overrides["N_UNIT_TESTS"] == 8)
    assert full.overrides == {"N_UNIT_TESTS": 8}
    # a grid the sweep itself sets is the user's explicit choice: out of bounds, it is refused
    with pytest.raises(config.ParameterError, match=r"M_GRID values must lie in 0..N_UNIT_TESTS \(2\)"):
        sweep.load_sweep(str(write_grid(tmp_path, "profiles: [ci]\ngrid:\n  N_UNIT_TESTS: [2]\n  M_GRID: [[0, 4]]\n", "sweep-b")))
