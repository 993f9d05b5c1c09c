"""The notebooks' contract with papermill and nbval."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns
from utscale import config, pipeline

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
