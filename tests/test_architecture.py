"""The library's shape: modules import one way (no cycle, not even through function-local imports),
and the config's allowed benchmarks and engines are the registries' entries."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest
from utscale import benchmarks, config
from utscale.engines import factory

LIB = Path(__file__).resolve().parents[1] / "lib" / "utscale"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """utscale modules `path` imports anywhere (functions included), except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and ast.unparse(node.test).endswith("TYPE_CHECKING") for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
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
