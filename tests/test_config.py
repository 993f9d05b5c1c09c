from __future__ import annotations

import pytest
import yaml
from utscale import cli, config, paths


def test_every_shipped_profile_loads_and_each_inherited_one_changes_its_base():
    names = config.available_profiles()
    assert set(names) >= {"ci", "embedded", "coderm-replay", "paper-humaneval-plus", "paper-mbpp-plus",
                          "paper-livecodebench"}
    for name in names:
        values = config.load_profile(name)  # raises on any missing, unknown or inconsistent value
        base = yaml.safe_load((paths.params_dir() / f"{name}.yaml").read_text()).get("base")
        if base:
            assert values != config.load_profile(base), f"{name} repeats {base} unchanged"


def test_a_profile_without_base_must_give_every_parameter_and_base_must_not_loop(tmp_path, monkeypatch):
    monkeypatch.setenv("UTSCALE_ROOT", str(tmp_path))
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "partial.yaml").write_text("SEED: 1\nLIMIT: 3\n")
    with pytest.raises(config.ParameterError, match="missing parameters: .*BENCHMARK"):
        config.load_profile("partial")
    (tmp_path / "params" / "a.yaml").write_text("base: b\nSEED: 2\n")
    (tmp_path / "params" / "b.yaml").write_text("base: a\n")
    with pytest.raises(config.ParameterError, match="without cycles"):
        config.load_profile("a")


def test_unknown_parameter_fails_with_a_suggestion():
    with pytest.raises(config.ParameterError, match=r"unknown parameter 'LIMT' \(did you mean LIMIT\?\)"):
        config.resolve("ci", {"LIMT": 3})


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("LIMIT", "12", "must be of type int"),
        ("LIMIT", -1, "below its minimum"),
        ("LIMIT", True, "must be of type int"),
        ("BENCHMARK", "mbpp", "is not one of"),
        ("SEED", 1.5, "must be of type int"),
    ],
)
def test_bad_values_fail(key, value, message):
    with pytest.raises(config.ParameterError, match=message):
        config.resolve("ci", {key: value})


def test_missing_profile_and_nested_profile(tmp_path, monkeypatch):
    with pytest.raises(config.ParameterError, match="no profile 'nope'"):
        config.load_profile("nope")
    monkeypatch.setenv("UTSCALE_ROOT", str(tmp_path))
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "nested.yaml").write_text("SEED: 1\nMODEL:\n  name: x\n")
    with pytest.raises(config.ParameterError, match="nested mappings"):
        config.load_profile("nested")


def test_run_id_is_the_profile_name_unless_overridden_then_a_stable_hash():
    assert config.resolve("ci").run_id == "ci"
    a = config.resolve("ci", {"LIMIT": 3}).run_id
    assert a.startswith("ci-") and len(a) == 13
    assert a == config.resolve("ci", {"LIMIT": 3}).run_id
    assert a != config.resolve("ci", {"LIMIT": 4}).run_id
    assert config.resolve("ci", {"LIMIT": 12}).run_id == "ci"  # same values as the profile


def test_cli_overrides_parse_as_yaml_scalars():
    assert cli.parse_overrides([("LIMIT", "3"), ("BENCHMARK_PATH", ""), ("BENCHMARK", "mbpp_plus")]) == {
        "LIMIT": 3, "BENCHMARK_PATH": "", "BENCHMARK": "mbpp_plus"}


def test_pipeline_rejects_a_bad_parameter_before_any_work(results_root, capsys):
    rc = cli.main(["run", "--profile", "ci", "-p", "LIMT", "3"])
    assert rc == 2
    assert "unknown parameter 'LIMT'" in capsys.readouterr().err
    assert not results_root.exists()
    assert cli.main(["run", "--profile", "ci", "-p", "LIMIT", "many"]) == 2
    assert not results_root.exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"TIMEOUT_S": 1e10}, r"TIMEOUT_S=.* is above its maximum 3600"),
        ({"LABEL_TIMEOUT_S": 1e10}, "LABEL_TIMEOUT_S=.* is above its maximum"),
        ({"N_SOLUTIONS": 10**9}, "N_SOLUTIONS=1000000000 is above its maximum 10000"),
        ({"N_UNIT_TESTS": 10**9}, "N_UNIT_TESTS=.* is above its maximum"),
        ({"SEED": 2**64 + 1}, "SEED=.* is above its maximum 4294967295"),
        ({"RESAMPLES": 10**7}, "RESAMPLES=.* is above its maximum"),
        ({"MAX_TOKENS_TEST": 10**6}, "MAX_TOKENS_TEST=.* is above its maximum"),
        ({"M_GRID": [0, 1, 9]}, r"M_GRID values must lie in 0..N_UNIT_TESTS \(8\); got \[9\]"),
        ({"N_GRID": [0, 8]}, r"N_GRID .*must lie in 1..N_SOLUTIONS|N_GRID=0 is below its minimum"),
        ({"N_GRID": [1, 16]}, r"N_GRID values must lie in 1..N_SOLUTIONS \(8\); got \[16\]"),
        ({"BUDGETS": []}, "BUDGETS must not be empty"),
        ({"M_GRID": []}, "M_GRID must not be empty"),
        ({"BUDGETS": [4, 64]}, r"BUDGETS values must lie in 1..N_UNIT_TESTS \(8\); got \[64\]"),
        ({"ONLINE_HORIZONS": [100]}, "ONLINE_HORIZONS values must lie in 1..N_UNIT_TESTS"),
        ({"ONLINE_MIN_TESTS": 9}, r"ONLINE_MIN_TESTS \(9\) exceeds N_UNIT_TESTS \(8\)"),
        ({"ALLOCATION_FLOOR": 2}, r"ALLOCATION_FLOOR \(2\) exceeds the smallest of BUDGETS"),
        ({"ONLINE_ALPHAS": [1.5]}, "ONLINE_ALPHAS=1.5 is above its maximum"),
    ],
)
def test_values_that_would_give_silent_nonsense_are_refused_before_any_work(overrides, message):
    with pytest.raises(config.ParameterError, match=message):
        config.resolve("ci", overrides)


def test_a_smaller_test_count_is_fine_when_the_grids_fit():
    values = config.resolve("ci", {"N_UNIT_TESTS": 4, "M_GRID": [0, 4], "BUDGETS": [1, 4], "ONLINE_STABILITY": [1],
                                   "ONLINE_HORIZONS": [4]}).values
    assert values["N_UNIT_TESTS"] == 4


def write_profile(tmp_path, monkeypatch, name: str, text: str) -> None:
    monkeypatch.setenv("UTSCALE_ROOT", str(tmp_path))
    (tmp_path / "params").mkdir(exist_ok=True)
    (tmp_path / "params" / f"{name}.yaml").write_bytes(text.encode() if isinstance(text, str) else text)


def test_malformed_profiles_fail_with_file_and_line(tmp_path, monkeypatch):
    write_profile(tmp_path, monkeypatch, "broken", "SEED: 1\nLIMIT: [1, 2\nTOP_P: 0.9\n")
    with pytest.raises(config.ParameterError, match=r"broken.yaml, line \d+, column \d+: malformed YAML"):
        config.load_profile("broken")
    write_profile(tmp_path, monkeypatch, "twice", "SEED: 1\nLIMIT: 3\nSEED: 2\n")
    with pytest.raises(config.ParameterError, match=r"twice.yaml, line 3: 'SEED' is given twice \(first on line 1\)"):
        config.load_profile("twice")
    write_profile(tmp_path, monkeypatch, "latin1", b"SEED: 1\n# caf\xe9\n")
    with pytest.raises(config.ParameterError, match="is not UTF-8"):
        config.load_profile("latin1")


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/b", "..", ".hidden", ""])
def test_profile_names_cannot_leave_the_params_and_results_folders(name):
    with pytest.raises(config.ParameterError, match="profile names are plain names"):
        config.resolve(name)


@pytest.mark.parametrize("code, words", [(28, "No space left"), (30, "Read-only"), (13, "Permission denied")])
def test_an_unwritable_or_full_results_folder_gets_a_clean_message(monkeypatch, capsys, code, words):
    import os

    def full(*args, **kwargs):
        raise OSError(code, os.strerror(code), "/results/ci/executions.parquet")

    monkeypatch.setattr(cli, "run_pipeline", full)
    assert cli.main(["run", "--profile", "ci"]) == 2
    err = capsys.readouterr().err
    assert "cannot write /results/ci/executions.parquet" in err and words in err and "resumes" in err
    assert "Traceback" not in err


def test_other_os_errors_are_not_disguised(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(cli, "run_pipeline", broken)
    with pytest.raises(OSError, match="Input/output"):
        cli.main(["run", "--profile", "ci"])


def test_a_failed_notebook_is_named_without_papermill_s_traceback(monkeypatch, capsys):
    from papermill.exceptions import PapermillExecutionError

    def failing(*args, **kwargs):
        raise PapermillExecutionError(cell_index=3, exec_count=2, source="x", ename="ValueError",
                                      evalue="no solutions", traceback=["..."])

    monkeypatch.setattr(cli, "run_pipeline", failing)
    assert cli.main(["run", "--profile", "ci"]) == 1
    err = capsys.readouterr().err
    assert "a notebook failed: ValueError: no solutions" in err and "rerun to resume" in err


@pytest.mark.slow
def test_the_utscale_command_is_installed_and_is_the_module_cli():
    """`make install` puts a `utscale` command beside the venv's python: the same parser as `python -m utscale`."""
    import subprocess
    import sys
    from pathlib import Path

    command = Path(sys.executable).parent / "utscale"
    listed = subprocess.run([str(command), "profiles"], capture_output=True, text=True, check=True).stdout.split()
    assert listed == config.available_profiles()
    refused = subprocess.run([str(command), "run", "--profile", "no-such-profile"], capture_output=True, text=True)
    assert refused.returncode == 2 and "no-such-profile" in refused.stderr


def test_codets_release_records_its_outputs_under_its_per_case_limit():
    """CodeT's assertions record most outputs under TIMEOUT_S: the rest, in SRank's executor, may not get
    another limit; a unit-test run's inputs may (each input alone, where a class shares TIMEOUT_S)."""
    with pytest.raises(config.ParameterError, match=r"OUTPUT_TIMEOUT_S \(0.25\) must equal TIMEOUT_S \(0.1\)"):
        config.resolve("codet-humaneval", {"OUTPUT_TIMEOUT_S": 0.25})
    assert config.resolve("codet-humaneval").values["OUTPUT_TIMEOUT_S"] == 0.1
    assert config.resolve("ci", {"OUTPUT_TIMEOUT_S": 0.5}).values["OUTPUT_TIMEOUT_S"] == 0.5
