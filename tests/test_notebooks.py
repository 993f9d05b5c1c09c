"""The notebooks' contract with papermill and nbval."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns
from utscale import config, pipeline, runs

NOTEBOOKS = pipeline.notebook_paths()


def test_notebooks_are_numbered_and_named_verb_object():
    assert NOTEBOOKS, "no notebooks found"
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exactly_one_parameters_cell_with_ci_defaults(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    declared = pipeline.declared_parameters(path)
    assert {"PROFILE", "RUN_DIR"} <= set(declared)
    ci = config.load_profile("ci")
    for name, info in declared.items():
        if name in config.META_KEYS:
            continue
        assert name in config.SCHEMA, f"{path.name} declares {name}, unknown to the schema"
        assert eval(info["default"]) == ci[name], f"{path.name}: default of {name} differs from params/ci.yaml"


def parameters_cell(path) -> dict:
    """What a notebook's parameters cell defines, as the kernel that runs it holds it."""
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(cell.source, namespace)
    return namespace


def notebook_run_id(namespace: dict) -> str:
    return config.resolve(*runs.notebook_choice(namespace)).run_id


@pytest.mark.parametrize("profile", config.available_profiles())
def test_every_notebook_of_the_chain_opens_the_run_the_pipeline_writes(profile, monkeypatch):
    """The README's interactive recipe, for every shipped profile: PROFILE set in each notebook's cell,
    or UTSCALE_PROFILE set once for the session, and notebooks 01-07 all open the run that
    `utscale run --profile` writes, though each cell declares the ci values of different keys."""
    monkeypatch.delenv(runs.PROFILE_VARIABLE, raising=False)
    expected = config.resolve(profile).run_id
    assert {p.name: notebook_run_id({**parameters_cell(p), "PROFILE": profile}) for p in NOTEBOOKS} == \
        dict.fromkeys([p.name for p in NOTEBOOKS], expected)
    monkeypatch.setenv(runs.PROFILE_VARIABLE, profile)
    assert {notebook_run_id(parameters_cell(p)) for p in NOTEBOOKS} == {expected}
    # a PROFILE the user typed into a cell wins over the session's
    assert notebook_run_id({**parameters_cell(NOTEBOOKS[0]), "PROFILE": "ci"}) == expected
    assert notebook_run_id({**parameters_cell(NOTEBOOKS[0]), "PROFILE": "embedded"}) == "embedded"


def test_a_value_changed_in_a_cell_is_an_override_of_the_chosen_profile(monkeypatch):
    monkeypatch.setenv(runs.PROFILE_VARIABLE, "embedded")
    changed = {**parameters_cell(NOTEBOOKS[1]), "TEMPERATURE": 0.6}
    profile, overrides = runs.notebook_choice(changed)
    assert (profile, overrides) == ("embedded", {"TEMPERATURE": 0.6})
    chosen = config.resolve(profile, overrides)
    assert chosen.run_id.startswith("embedded-") and chosen["TEMPERATURE"] == 0.6
    assert chosen["POLICY_ENGINE"] == "vllm"  # the cell's ci default (replay) is not an override


def test_every_schema_key_is_received_by_some_notebook():
    declared = set().union(*pipeline.check_notebook_parameters(NOTEBOOKS).values())
    assert set(config.SCHEMA) <= declared


def test_committed_notebooks_carry_outputs_and_no_volatile_metadata():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert "papermill" not in nb.metadata
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.get("execution_count") for c in code), f"{path.name} has unexecuted cells"


def test_sanitize_file_parses_every_pattern():
    text = open("tests/nbval_sanitize.cfg").read()
    assert len(get_sanitize_patterns(text)) == text.count("regex:") == 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_declares_every_parameter_its_code_reads(path):
    """A value a notebook's own code uses comes from its parameters cell, where JupyterLab users and
    papermill see it, never from a lookup into the run's config the reader cannot see."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []))
    declared = set(pipeline.declared_parameters(path))
    looked_up = set(re.findall(r"""(?:config|cfg)\[["']([A-Z_]+)["']\]""", code))
    assert looked_up <= declared, f"{path.name} reads {sorted(looked_up - declared)} without declaring them"
    used = {name for name in config.SCHEMA if re.search(rf"\b{name}\b", code)}
    assert used <= declared, f"{path.name} uses {sorted(used - declared)} without declaring them"
