"""HumanEval+ and MBPP+ from the vendored EvalPlus releases: identification by sha256, both layouts,
EvalPlus's correctness rule, base and plus apart, and the HumanEval/32 fix."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import time

import pandas as pd
import pytest
from utscale import benchmarks, evalplus_data, execution
from utscale.evalplus_check import _evalplus_check, _evalplus_oracle
from utscale.runs import JsonlLog
from utscale.sandbox import Executor, SandboxSettings
from utscale.sandbox.oracle import oracle_passes

DATA = evalplus_data.vendored_path


@pytest.fixture(scope="module")
def humaneval_plus() -> dict[str, benchmarks.Problem]:
    return {p.task_id: p for p in benchmarks.load_benchmark("humaneval_plus").problems}


@pytest.fixture(scope="module")
def originfmt() -> dict[str, benchmarks.Problem]:
    path = DATA("HumanEvalPlus-OriginFmt-v0.1.10.jsonl.gz")
    return {p.task_id: p for p in benchmarks.load_benchmark("humaneval_plus", path).problems}


@pytest.mark.slow
def test_both_benchmarks_load_offline_by_default_and_record_their_release():
    for benchmark, count, version in (("humaneval_plus", 164, "v0.1.10"), ("mbpp_plus", 378, "v0.2.0")):
        loaded = benchmarks.load_benchmark(benchmark)
        assert len(loaded.problems) == count
        assert loaded.release == {"release": version, "layout": "native", "file": evalplus_data.DEFAULTS[benchmark],
                                  "sha256": evalplus_data.sha256_of(evalplus_data.default_file(benchmark)),
                                  "verified": True}
        assert loaded.source == f"data/evalplus/{evalplus_data.DEFAULTS[benchmark]}"  # the same on every machine
        table = loaded.table()
        assert table.ground_truth_base.map(bool).all() and (table.ground_truth != table.ground_truth_base).all()


def test_every_vendored_file_is_the_release_its_sha256_says():
    listed = dict(line.split()[::-1] for line in DATA("SHA256SUMS").read_text().splitlines())
    assert {r.file: r.sha256 for r in evalplus_data.RELEASES} == listed
    for release in evalplus_data.RELEASES:
        assert evalplus_data.identify(DATA(release.file), release.benchmark)["release"] == release.version
        with gzip.open(DATA(release.file), "rt") as fh:
            assert sum(1 for _ in fh) == release.problems


def test_an_altered_vendored_file_is_refused_and_a_local_file_is_recorded_as_such(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    altered = tmp_path / "data" / "evalplus" / "HumanEvalPlus-v0.1.10.jsonl.gz"
    altered.parent.mkdir(parents=True)
    rows = benchmarks.read_local_rows(DATA("HumanEvalPlus-v0.1.10.jsonl.gz"))[:3]
    with gzip.open(altered, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    monkeypatch.setenv("UTSCALE_ROOT", str(tmp_path))
    with pytest.raises(benchmarks.BenchmarkUnavailable, match="was altered"):
        benchmarks.load_benchmark("humaneval_plus")
    mine = tmp_path / "my-humaneval-plus.jsonl.gz"
    shutil.copy(altered, mine)
    loaded = benchmarks.load_benchmark("humaneval_plus", mine)
    assert [p.task_id for p in loaded.problems] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert loaded.release["release"] == "local" and not loaded.release["verified"]
    assert loaded.release["sha256"] == evalplus_data.sha256_of(mine)


def test_a_release_of_the_other_benchmark_and_a_row_of_neither_layout_are_refused(tmp_path):
    with pytest.raises(benchmarks.BenchmarkUnavailable, match="is humaneval_plus v0.1.10, not mbpp_plus"):
        benchmarks.load_benchmark("mbpp_plus", DATA("HumanEvalPlus-v0.1.10.jsonl.gz"))
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"task_id": "Mbpp/2", "prompt": "x", "code": "y"}) + "\n")
    with pytest.raises(benchmarks.BenchmarkUnavailable, match="neither EvalPlus layout.*MbppPlus-v0.2.0"):
        benchmarks.load_benchmark("mbpp_plus", odd)


@pytest.mark.slow
def test_the_two_layouts_of_a_release_give_the_same_problems_and_the_same_labels(humaneval_plus, originfmt):
    assert sorted(humaneval_plus) == sorted(originfmt)
    for task_id in ("HumanEval/0", "HumanEval/2", "HumanEval/32", "HumanEval/53", "HumanEval/130"):
        native, hub = humaneval_plus[task_id], originfmt[task_id]
        assert (native.prompt, native.question, native.entry_point, native.reference_solution) == (
            hub.prompt, hub.question, hub.entry_point, hub.reference_solution)
        wrong = native.reference_solution + f"\n\n_right = {native.entry_point}\n" \
            f"def {native.entry_point}(*args):\n    out = _right(*args)\n    return out if args != args else None\n"
        for solution, correct in ((native.reference_solution, True), (wrong, False)):
            assert oracle_passes(solution, native.ground_truth, timeout=60) is correct, task_id
            assert oracle_passes(solution, hub.ground_truth, timeout=60) is correct, task_id


def test_humaneval_32_is_judged_by_its_oracle_not_failed_for_every_solution(humaneval_plus, originfmt):
    """The hub/OriginFmt test of HumanEval/32 unpacks the root (evalplus#253): every solution fails it.
    The fixed test and the native program accept a root within 1e-4 and reject a wrong one."""
    problem = humaneval_plus["HumanEval/32"]
    rows = {r["task_id"]: r for r in benchmarks.read_local_rows(DATA("HumanEvalPlus-OriginFmt-v0.1.10.jsonl.gz"))}
    broken = benchmarks.ground_truth_program(rows["HumanEval/32"]["test"], "check(find_zero)")
    assert not oracle_passes(problem.reference_solution, broken, timeout=60)  # the defect, as released
    off_by_a_bit = problem.reference_solution + "\n\n_root = find_zero\ndef find_zero(xs):\n    return _root(xs) + 0.5\n"
    for program in (problem.ground_truth, originfmt["HumanEval/32"].ground_truth):
        assert oracle_passes(problem.reference_solution, program, timeout=60)
        assert not oracle_passes(off_by_a_bit, program, timeout=60)


def memorised_solution(problem: benchmarks.Problem) -> str:
    """HumanEval/0 answered right on its base inputs only (it remembers them) and wrong elsewhere."""
    row = next(r for r in benchmarks.read_local_rows(DATA("HumanEvalPlus-v0.1.10.jsonl.gz")) if r["task_id"] == problem.task_id)
    base = evalplus_data.native_splits(row, "humaneval_plus")["base"]
    return (problem.reference_solution + f"\n\n_BASE = {base!r}\n_right = has_close_elements\n"
            "def has_close_elements(numbers, threshold):\n"
            "    right = _right(numbers, threshold)\n"
            "    return right if [numbers, threshold] in _BASE else not right\n")


def test_base_and_plus_are_labelled_apart_in_the_isolated_sandbox(humaneval_plus, tmp_path):
    """The label stage's two logs: a solution right on the base inputs only passes the base ground truth
    and fails base + plus; the canonical solution passes both; a solution without code gets neither
    (it is `invalid` in both tables); judged where labels are, in `isolated` mode."""
    problem = humaneval_plus["HumanEval/0"]
    problems = benchmarks.LoadedBenchmark([problem], "", "").table()
    solutions = pd.DataFrame({"task_id": ["HumanEval/0"] * 3, "solution_id": [0, 1, 2],
                              "code": [problem.reference_solution, memorised_solution(problem), None]})
    legacy = {"mode": "isolated", "clock": "cpu"}
    tables = {}
    with Executor(workers=2, settings=SandboxSettings(mode="isolated", timeout=30.0)) as ex:
        for column in ("ground_truth", "ground_truth_base"):
            log = JsonlLog(tmp_path / f"{column}.jsonl", execution.LABEL_KEY)
            report = execution.label_solutions(problems, solutions, log, ex, legacy, column=column)
            assert report.executed == 2
            tables[column] = execution.labels_table(solutions, log, legacy)
    plus, base = (tables[c].set_index("solution_id") for c in ("ground_truth", "ground_truth_base"))
    assert plus.status.to_dict() == {0: "pass", 1: "fail", 2: "invalid"}
    assert base.status.to_dict() == {0: "pass", 1: "pass", 2: "invalid"}
    summary = execution.base_and_plus(tables["ground_truth"], tables["ground_truth_base"]).set_index("task_id")
    assert summary.loc["all", "base"] == pytest.approx(2 / 3) and summary.loc["all", "plus"] == pytest.approx(1 / 3)


def test_evalplus_comparison_rules():
    def accepted(dataset, entry, out, exp, atol=0.0):
        try:
            _evalplus_check(dataset, entry, lambda *args: out, [[0]], lambda inp: (exp, 1.0), atol)
            return True
        except AssertionError:
            return False

    assert accepted("humaneval", "f", 0.1 + 0.2, 0.3)  # a float expected: atol 1e-6 is enforced
    assert not accepted("humaneval", "f", 0.3001, 0.3)
    assert not accepted("humaneval", "f", 1, 1.0000001)  # within tolerance but not the same type
    assert accepted("humaneval", "f", [1.0, 2.0000001], [1.0, 2.0])
    assert not accepted("humaneval", "f", [1.0], [1.0, 2.0])
    assert accepted("humaneval", "f", (1, 2), (1, 2)) and not accepted("humaneval", "f", [1, 2], (1, 2))
    assert accepted("mbpp", "similar_elements", (5, 4), (4, 5))  # Mbpp/2 compares as sets
    assert accepted("mbpp", "check_str", "a match object", True)  # not-None tasks: presence only
    assert not accepted("mbpp", "check_str", None, True)

    class Match:  # what crosses from the isolated solution for a re.Match: any comparison is refused
        def __eq__(self, other):
            raise TypeError("cannot compare")

    assert accepted("mbpp", "check_str", Match(), True)  # presence is all that is asked of it
    assert accepted("mbpp", "are_equivalent", False, True)  # Mbpp/164: EvalPlus accepts any output
    assert accepted("mbpp", "sum_div", 0, 7) and not accepted("mbpp", "sum_div", 3, 7)


def test_a_call_that_returns_after_its_inputs_limit_is_rejected():
    """EvalPlus's per-input limit, max(1 s, 4x the reference's time on the input): a right answer that
    comes too late is wrong, one in time is right."""
    def slow(x):
        time.sleep(x)
        return x

    _evalplus_check("humaneval", "f", slow, [[0.0], [0.05]], lambda inp: (inp[0], 1.0), 0)
    with pytest.raises(AssertionError, match="input 1: 0.0[5-9] s, over its limit of 0.02 s"):
        _evalplus_check("humaneval", "f", slow, [[0.0], [0.05]], lambda inp: (inp[0], 1.0 if inp[0] == 0 else 0.02), 0)


def test_the_oracle_times_the_reference_per_input_and_is_asked_lazily():
    """The reference's output is the expected one; its time on the input, x4 with a 1 s floor, the limit;
    a solution rejected at the first input never makes the reference run on the others."""
    calls = []
    oracle = _evalplus_oracle("import time\ndef f(x):\n    time.sleep(x)\n    return [x]\n", "f", False)
    assert oracle([0.0]) == ([0.0], 1.0)
    out, limit = oracle([0.3])
    assert out == [0.3] and 1.2 <= limit < 1.6
    assert _evalplus_oracle("def f(x):\n    return None\n", "f", True)([1]) == (False, 1.0)  # not-None tasks

    def counting(inp):
        calls.append(inp)
        return inp[0], 1.0

    with pytest.raises(AssertionError, match="input 0: wrong output"):
        _evalplus_check("humaneval", "f", lambda x: x + 1, [[1], [2], [3]], counting, 0)
    assert calls == [[1]]


@pytest.mark.parametrize("value", [
    [1, -2.5, 1e-300, float("inf"), -float("inf"), "s\n'\"", b"\x00", None, True],
    ((1,), (), {1, 2}, set(), {3: (4, 5)}, complex(1.5, -float("inf"))),
    [[10**400, -(10**400)], {"k": [0.1, 0.2]}],
])
def test_inputs_are_embedded_exactly(value):
    rebuilt = eval(evalplus_data.literal(value), {"_evalplus_inf": math.inf, "_evalplus_nan": math.nan})  # noqa: S307
    assert rebuilt == value and repr(rebuilt) == repr(value)
    nan = eval(evalplus_data.literal([math.nan]), {"_evalplus_nan": math.nan})  # noqa: S307
    assert math.isnan(nan[0])
