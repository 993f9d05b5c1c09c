from __future__ import annotations

import pytest
from utscale import cli, config


def test_profiles_are_complete_and_valid():
    names = config.available_profiles()
    assert set(names) >= {"ci", "embedded", "coderm-replay", "paper-humaneval-plus", "paper-mbpp-plus",
                          "paper-livecodebench"}
    for name in names:
        values = config.load_profile(name)
        assert set(values) == set(config.SCHEMA)


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
