from __future__ import annotations

import json

import pytest
from utscale import benchmarks
from utscale.sandbox.oracle import oracle_passes

from tests.conftest import FIXTURES


def test_humaneval_loads_offline_from_the_package():
    loaded = benchmarks.load_benchmark("humaneval")
    assert len(loaded.problems) == 164
    first = loaded.problems[0]
    assert first.task_id == "HumanEval/0" and first.entry_point == "has_close_elements"
    assert first.question.startswith("Write a function named `has_close_elements`. Check if in given list")
    assert first.reference_solution.startswith(first.prompt)
    assert loaded.source.endswith("HumanEval.jsonl.gz")


def test_limit_spreads_a_deterministic_slice_through_the_same_loader():
    a = benchmarks.load_benchmark("humaneval", limit=5)
    b = benchmarks.load_benchmark("humaneval", limit=5)
    ids = [p.task_id for p in a.problems]
    assert ids == [p.task_id for p in b.problems] == [
        "HumanEval/0", "HumanEval/41", "HumanEval/82", "HumanEval/122", "HumanEval/163"]
    assert a.source_sha256 == b.source_sha256
    assert a.source_sha256 != benchmarks.load_benchmark("humaneval", limit=6).source_sha256


@pytest.mark.parametrize("task_index", [0, 15, 32, 53, 107, 163])
def test_humaneval_ground_truth_accepts_canonical_and_rejects_wrong(task_index):
    problem = benchmarks.load_benchmark("humaneval").problems[task_index]
    assert oracle_passes(problem.reference_solution, problem.ground_truth)
    wrong = f"def {problem.entry_point}(*args, **kwargs):\n    return None\n"
    assert not oracle_passes(wrong, problem.ground_truth)


def test_humaneval_plus_local_file_and_harness():
    loaded = benchmarks.load_benchmark("humaneval_plus", FIXTURES / "humaneval_plus_sample.jsonl")
    assert [p.task_id for p in loaded.problems] == ["HumanEval/2", "HumanEval/7"]
    for p in loaded.problems:
        assert p.benchmark == "humaneval_plus"
        assert oracle_passes(p.reference_solution, p.ground_truth)
    off = loaded.problems[0]
    assert not oracle_passes("def truncate_number(number):\n    return number % 1.0 + 0.01\n", off.ground_truth)


def test_mbpp_plus_local_file_prompt_entry_point_and_harness():
    loaded = benchmarks.load_benchmark("mbpp_plus", FIXTURES / "mbpp_plus_sample.jsonl")
    first, second = loaded.problems
    assert first.task_id == "Mbpp/2" and first.entry_point == "similar_elements"
    assert first.prompt.startswith('"""\nWrite a function to find the shared elements')
    assert "assert set(similar_elements(" in first.prompt
    assert second.entry_point == "is_not_prime"
    for p in loaded.problems:  # one harness defines check(), the other asserts at top level
        assert oracle_passes(p.reference_solution, p.ground_truth)
    assert not oracle_passes("def is_not_prime(n):\n    return False\n", second.ground_truth)


def test_livecodebench_keeps_functional_problems_and_decodes_private_tests():
    loaded = benchmarks.load_benchmark("livecodebench", FIXTURES / "livecodebench_sample.jsonl")
    assert [p.task_id for p in loaded.problems] == ["LiveCodeBench/3300"]
    problem = loaded.problems[0]
    assert problem.difficulty == "easy"
    assert problem.question.endswith("def addTwo(a: int, b: int) -> int:")
    good = "class Solution:\n    def addTwo(self, a, b):\n        return a + b\n"
    assert oracle_passes(good, problem.ground_truth)
    # passes the public test (1+2) but not the private ones
    assert not oracle_passes("class Solution:\n    def addTwo(self, a, b):\n        return 3\n", problem.ground_truth)


@pytest.mark.slow
def test_hub_benchmark_offline_names_the_local_file_option(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(benchmarks.BenchmarkUnavailable, match="BENCHMARK_PATH"):
        benchmarks.load_benchmark("mbpp_plus", "hub")  # asked for explicitly: the offline default is the vendored file


def test_missing_local_file_and_wrong_layout_are_clear_errors(tmp_path):
    with pytest.raises(benchmarks.BenchmarkUnavailable, match="not found"):
        benchmarks.load_benchmark("humaneval_plus", tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x", "prompt": "def f(): pass"}\n')
    with pytest.raises(benchmarks.BenchmarkUnavailable, match="neither EvalPlus layout"):
        benchmarks.load_benchmark("humaneval_plus", bad)
    with pytest.raises(benchmarks.BenchmarkUnavailable, match="lacks the column"):
        benchmarks.load_benchmark("humaneval", bad)


def test_parquet_local_file(tmp_path):
    import pandas as pd

    rows = benchmarks.read_local_rows(FIXTURES / "humaneval_plus_sample.jsonl")
    path = tmp_path / "he.parquet"
    pd.DataFrame(rows).to_parquet(path)
    assert [p.task_id for p in benchmarks.load_benchmark("humaneval_plus", path).problems] == ["HumanEval/2", "HumanEval/7"]


def test_livecodebench_private_tests_cannot_run_code(tmp_path):
    import base64
    import pickle
    import zlib

    from utscale.benchmarks import BenchmarkUnavailable, decode_lcb_tests

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    hostile = base64.b64encode(zlib.compress(pickle.dumps(Exploit()))).decode()
    with pytest.raises(BenchmarkUnavailable, match="row 42: its test cases are not plain data"):
        decode_lcb_tests(hostile, "LiveCodeBench row 42")
    assert not marker.exists()
    plain = [{"input": "1", "output": "2", "testtype": "functional"}]
    encoded = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(plain)))).decode()
    assert decode_lcb_tests(encoded) == plain  # the format LiveCodeBench really uses still loads
    with pytest.raises(BenchmarkUnavailable, match="not plain data"):
        decode_lcb_tests("not base64 at all!!")
