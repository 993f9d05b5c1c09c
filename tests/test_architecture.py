"""The library's shape: modules import one way (no cycle, not even through function-local imports),
and the config's allowed benchmarks and engines are the registries' entries."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest
from utscale import benchmarks, config, resampling
from utscale.engines import factory
from utscale.sandbox.executor import MODES

LIB = Path(__file__).resolve().parents[1] / "lib" / "utscale"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """utscale modules `path` imports anywhere: in functions, and under `if TYPE_CHECKING:` too (a
    type-level import is a dependency a reader has to follow as much as any other)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name in known}


def import_graph() -> nx.DiGraph:
    files = {module_name(p): p for p in LIB.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in files.items():
        graph.add_node(name)
        for target in imported_modules(path, set(files)):
            # a package's __init__ re-exporting its own modules is not a dependency between them
            if target != name and not (path.name == "__init__.py" and target.startswith(name + ".")):
                graph.add_edge(name, target)
    return graph


def test_the_import_graph_is_read_from_the_code():
    graph = import_graph()
    assert graph.has_edge("utscale.generation", "utscale.benchmarks")
    assert graph.has_edge("utscale.config", "utscale.engines.factory")
    assert graph.number_of_nodes() > 30


def test_library_modules_import_one_way():
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == [], f"import cycles: {cycles}"


def test_a_cycle_would_be_found():
    graph = import_graph()
    graph.add_edge("utscale.benchmarks", "utscale.generation")  # what a back-import would add
    assert any({"utscale.benchmarks", "utscale.generation"} <= set(c) for c in nx.simple_cycles(graph))


def test_an_import_under_type_checking_is_a_dependency_and_closes_a_circle(tmp_path):
    """The circle benchmarks -> runs -> config -> benchmarks was invisible while type-level imports were
    skipped: one written only for a type annotation is found, and the cycle with it."""
    typed = tmp_path / "benchmarks.py"
    typed.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from utscale.runs import Run\n")
    assert imported_modules(typed, {"utscale.runs", "utscale.config"}) == {"utscale.runs"}
    graph = import_graph()
    assert graph.has_edge("utscale.runs", "utscale.config") and graph.has_edge("utscale.config", "utscale.benchmarks")
    graph.add_edge("utscale.benchmarks", "utscale.runs")
    assert any({"utscale.benchmarks", "utscale.runs", "utscale.config"} <= set(c) for c in nx.simple_cycles(graph))


def test_config_spells_no_vocabulary_of_its_own():
    assert config.SCHEMA["SANDBOX_MODE"].choices == MODES
    assert config.SCHEMA["PROTOCOL"].choices == resampling.PROTOCOLS


def test_each_protocol_keeps_its_seed_stream_whatever_the_order_of_the_names():
    """The streams the committed curves were drawn from: a reordered or longer list of protocols moves
    no curve (the seeds were once the names' positions in a tuple)."""
    assert resampling.SEED_STREAM == {"subsample": 0, "bootstrap": 1, "coderm_code": 2}
    assert set(resampling.SEED_STREAM) == set(resampling.PROTOCOLS)


def test_config_allows_exactly_the_registered_benchmarks_and_engines():
    assert config.SCHEMA["BENCHMARK"].choices == tuple(benchmarks.BENCHMARKS)
    assert config.SCHEMA["POLICY_ENGINE"].choices == tuple(factory.ENGINES)
    assert config.SCHEMA["TEST_ENGINE"].choices == tuple(factory.ENGINES)


def test_a_new_benchmark_is_one_registry_entry(monkeypatch, tmp_path):
    rows = tmp_path / "tiny.jsonl"
    rows.write_text('{"id": "a", "text": "Add one."}\n{"id": "b", "text": "Skip me."}\n')

    def convert(row):
        if row["text"].startswith("Skip"):
            return None
        return benchmarks.Problem(task_id=f"tiny/{row['id']}", benchmark="tiny", prompt=row["text"],
                                  question=row["text"], entry_point="f", reference_solution="",
                                  ground_truth=benchmarks.ground_truth_program("assert f(1) == 2", ""))

    monkeypatch.setitem(benchmarks.BENCHMARKS, "tiny", benchmarks.BenchmarkSpec(convert, policy_prompt=str.upper))
    loaded = benchmarks.load_benchmark("tiny", rows)
    assert [p.task_id for p in loaded.problems] == ["tiny/a"]
    assert benchmarks.policy_prompt("tiny", "add one.") == "ADD ONE."
    with pytest.raises(benchmarks.BenchmarkUnavailable, match="BENCHMARK_PATH"):
        benchmarks.load_benchmark("tiny")  # no package copy, no hub: it says how to pass a file


def test_a_new_engine_is_one_registry_entry(monkeypatch):
    built = []
    monkeypatch.setitem(factory.ENGINES, "echo", lambda cfg, prefix, problems, log: built.append(prefix) or "engine")
    assert factory.make_engine({"TEST_ENGINE": "echo"}, "test") == "engine"
    assert built == ["TEST"]
    with pytest.raises(ValueError, match="unknown engine 'nope'"):
        factory.make_engine({"POLICY_ENGINE": "nope"}, "policy")


MAX_MODULE_LINES = 480  # a module a reader takes in at one sitting (the structure issue's ~450)


def test_no_library_module_is_too_long_to_read_at_one_sitting():
    long = {module_name(p): n for p in LIB.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}
