"""Recorded outputs: the canonical text equal values share, SRank's executor of test inputs, SRank's
assertion parser, the output cube, and the rerankers on outputs (MBR-exec, SRank) on constructed
problems whose picks are known."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from utscale import matrix, outputs, rerankers
from utscale.sandbox import Executor, Pair, SandboxSettings, run_pairs
from utscale.sandbox.codec import OUTPUT_BOUND, Unencodable, canonical


@pytest.mark.parametrize(("one", "other"), [
    (True, 1), (1, 1.0), ([1, 2.0], [True, 2]), (frozenset({3, 1, 2}), {2, 3, 1}), ({1: "a", 2: "b"}, {2: "b", 1: "a"}),
    (0.1 + 0.2, 0.3), (-0.0, 0), ({1.0: [0.5]}, {True: [0.5000000001]}),
])
def test_values_python_calls_equal_share_one_canonical_text(one, other):
    # equal in Python, or (floats) within 1e-6
    assert canonical(one) == canonical(other)


@pytest.mark.parametrize(("one", "other"), [
    ([1, 2], (1, 2)), ("1", 1), (0.5, 0.501), ({1: 2}, {1: 3}), (None, 0), (b"a", "a"), ([[1]], [1]),
])
def test_values_python_calls_different_get_different_texts(one, other):
    assert one != other
    assert canonical(one) != canonical(other)


def test_a_large_output_is_hashed_whole_never_truncated_into_a_match():
    big, almost = list(range(10_000)), [*range(9_999), -1]
    assert canonical(big).startswith("sha256:") and len(canonical(big)) < OUTPUT_BOUND
    assert canonical(big) != canonical(almost)  # they differ only past any prefix a truncation would keep
    assert canonical(big) == canonical(list(range(10_000)))


def test_what_cannot_be_encoded_raises():
    with pytest.raises(Unencodable):
        canonical(x for x in [1])
    with pytest.raises(Unencodable):
        canonical([object()])


SOLUTION = """
calls = []
def f(x):
    calls.append(x)
    if x == 3:
        while True:
            pass
    if x == 4:
        raise ValueError(x)
    if x == 5:
        return iter([])
    return [x, x / 2, len(calls)]
"""


def run_inputs(solution: str, inputs: list[str]) -> dict[str, tuple[str, str | None]]:
    with Executor(workers=1, settings=SandboxSettings(timeout=0.3, mode="srank")) as executor:
        verdicts = run_pairs([Pair(str(i), solution, call) for i, call in enumerate(inputs)], executor)
        return {inputs[int(v.id)]: (v.status, v.output) for v in verdicts}


def test_srank_mode_records_each_inputs_value_in_one_program_in_order():
    got = run_inputs(SOLUTION, ["f(1)", "f(2)", "f(3)", "f(4)", "f(5)", "g(1)", "f(6)"])
    # one namespace, inputs in order (SRank's executor): the state carries from input to input
    assert got["f(1)"] == ("pass", canonical([1, 0.5, 1]))
    assert got["f(2)"] == ("pass", canonical([2, 1, 2]))
    assert got["f(3)"] == ("timeout", None)
    assert got["f(4)"] == ("error", None)
    assert got["f(5)"] == ("unencodable", None)
    assert got["g(1)"] == ("error", None)
    assert got["f(6)"] == ("pass", canonical([6, 3, 6]))


def test_a_killed_programs_inputs_are_timed_each_not_each_with_the_whole_programs_time():
    # one C call (no bytecode boundary for its alarm's signal) runs until the worker kills the program
    # at its whole-program deadline: that input ran from the last input's end to the kill, the input
    # after it never started, and the inputs' times add up to no more than the program's
    solution = "import time\ndef f(x):\n    if x > 1:\n        return sum(range(10 ** 12))\n    time.sleep(x)\n    return x\n"
    inputs = ["f(0.2)", "f(0.21)", "f(0.22)", "f(0.23)", "f(100)", "f(0.1)"]
    with Executor(workers=1, settings=SandboxSettings(timeout=0.3, mode="srank")) as executor:
        started = time.monotonic()
        verdicts = list(run_pairs([Pair(str(i), solution, call) for i, call in enumerate(inputs)], executor))
        program_s = time.monotonic() - started
    got = {v.id: v for v in verdicts}
    assert [got[str(i)].status for i in range(6)] == ["pass"] * 4 + ["timeout"] * 2
    assert got["4"].duration_s > 0.3 and got["5"].duration_s == 0.0
    assert sum(v.duration_s for v in verdicts) <= program_s


def test_srank_mode_fails_every_input_of_a_solution_that_does_not_load():
    got = run_inputs("def f(:\n", ["f(1)", "f(2)"])
    assert got == {"f(1)": ("error", None), "f(2)": ("error", None)}
    got = run_inputs("raise SystemExit\n", ["f(1)"])
    assert got == {"f(1)": ("error", None)}


PROMPT = 'def add(a, b):\n    """Add."""\n'


@pytest.mark.parametrize(("assertion", "parsed"), [
    ("assert add(1, 2) == 3", ("add(1, 2)", "3")),
    ("assert 3 == add(1, 2)", ("add(1, 2)", "3")),  # the call on the right is swapped to the left
    ('assert add(1, 2) == 3, "one and two"', ("add(1, 2)", "3")),  # a literal message is dropped
    ("assert add([1, 2], [3]) == [1, 2, 3]", ("add([1, 2], [3])", "[1, 2, 3]")),
    ("assert (add(1, 1) == 2)", ("add(1, 1)", "2")),
    ("assert add(0, 0) is None", ("add(0, 0)", "None")),
    ("assert not add(0, 0)", None),  # no == and no `is` constant: SRank takes no input
    ("assert sub(1, 2) == -1", None),  # not the entry point
    ("assert add(1, 2 == 3", None),  # does not compile after the prompt
])
def test_inputs_are_parsed_as_srank_parses_them(assertion, parsed):
    assert outputs.input_and_expected(assertion, PROMPT, "add") == parsed


def test_a_message_that_is_code_is_never_evaluated(tmp_path):
    marker = tmp_path / "ran"
    assertion = f"assert add(1, 2) == 3, open({str(marker)!r}, 'w').write('x')"
    assert outputs.input_and_expected(assertion, PROMPT, "add") is not None
    assert not marker.exists()


def one_problem(texts: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The problems and assertions tables of one problem (entry point `add`) with these assertions."""
    problems = pd.DataFrame({"task_id": ["T/0"], "prompt": [PROMPT], "entry_point": ["add"]})
    return problems, pd.DataFrame({"task_id": ["T/0"] * len(texts), "assertion_id": range(len(texts)), "assertion": texts})


def test_distinct_inputs_keep_the_assertions_they_come_from():
    problems, assertions = one_problem(["assert add(1, 2) == 3", "assert add(1, 2) == 4", "assert not add(0, 0)",
                                        "assert add(2, 2) == 4"])
    table = outputs.test_inputs(problems, assertions)
    assert table.input.tolist() == ["add(1, 2)", "add(2, 2)"]
    assert table.input_id.tolist() == [0, 1]
    assert [json.loads(ids) for ids in table.assertion_ids] == [[0, 1], [3]]


def test_the_cube_aligns_outputs_keeps_unencodable_apart_and_weights_agreement():
    labels = pd.DataFrame({"task_id": ["T/0"] * 3, "solution_id": [0, 1, 2], "correct": [True, False, False]})
    solutions = pd.DataFrame({"task_id": ["T/0"] * 3, "solution_id": [0, 1, 2], "code": ["a", "a", "b"]})
    rows = [(0, 0, "pass", "1"), (0, 1, "unencodable", None), (1, 0, "pass", "1"), (1, 1, "unencodable", None),
            (2, 0, "error", None), (2, 1, "timeout", None)]
    table = pd.DataFrame([("T/0", s, i, st, out) for s, i, st, out in rows],
                         columns=["task_id", "solution_id", "input_id", "status", "output"])
    inputs = pd.DataFrame({"task_id": ["T/0", "T/0"], "input_id": [0, 1], "input": ["f(1)", "f(2)"],
                           "assertion_ids": ["[0]", "[1, 2]"]})
    assertions = pd.DataFrame({"task_id": ["T/0"] * 3, "assertion_id": [0, 1, 2], "multiplicity": [3, 1, 1]})
    executions = pd.DataFrame({"task_id": ["T/0"] * 9, "solution_id": np.repeat([0, 1, 2], 3),
                               "assertion_id": [0, 1, 2] * 3, "passed": [1, 0, 0, 1, 1, 1, 0, 0, 0]})
    cube = outputs.cube_from_tables(table, labels, solutions,
                                    outputs.agreement_table(executions, assertions, inputs))
    codes = cube.codes[0]
    assert codes[0, 0] == codes[1, 0]  # the same returned value
    assert codes[0, 1] != codes[1, 1]  # unencodable matches nothing
    assert codes[2, 0] != codes[2, 1]  # an error and a timeout are different execution results
    assert cube.returned[0].tolist() == [[True, True], [True, True], [False, False]]
    assert cube.agreement[0] == pytest.approx([3 / 5, 1.0, 0.0])
    assert cube.distinct[0].tolist() == [True, False, True]
    assert cube.n_inputs.tolist() == [2]


@pytest.mark.parametrize(("assertion", "call", "wrapped"), [
    ("assert add(1, 2) == 3", "add(1, 2)", "assert OUT(IN(), add(1, 2)) == 3"),
    ("assert 3 == add(1,2), 'msg'", "add(1,2)", "assert 3 == OUT(IN(), add(1,2)), 'msg'"),  # swapped, message kept
    ("assert add('é', add(1, 2)) == 3", "add('é', add(1, 2))", "assert OUT(IN(), add('é', add(1, 2))) == 3"),
    ("assert (add(1,\n 1) == 2)", "add(1, 1)", "assert (OUT(IN(), add(1,\n 1)) == 2)"),  # same tree, other layout
    ("assert add(1, 2) == 3", "add(2, 1)", None),  # not a node of the assertion
])
def test_the_recorder_wraps_the_first_node_that_is_the_input_and_nothing_else(assertion, call, wrapped):
    got = outputs.recording_assertion(assertion, call)
    expected = wrapped and wrapped.replace("OUT(", "__utscale_out__(").replace("IN()", "__utscale_in__()")
    assert got == expected


def test_an_input_no_assertion_calls_first_gets_a_recording_case_after_every_assertion():
    problems, assertions = one_problem(["assert add(1, 2) == 3", "assert _________ == add(1, 2)",
                                        "assert _________ == add(2, 2)", "assert 5 == add(2, 3)"])
    inputs = outputs.test_inputs(problems, assertions)
    tests = outputs.recording_tests(assertions, inputs)["T/0"]
    assert [i for i, _ in tests] == [0, 1, 2, 3, outputs.case_id(1), outputs.case_id(2)]  # add(1, 2) is called first by 0
    assert tests[1][1] == "assert _________ == __utscale_out__(__utscale_in__(), add(1, 2))"
    assert tests[4][1] == "__utscale_out__(__utscale_in__(), add(2, 2))" and outputs.case_id(1) < 0


def test_recorded_outputs_come_from_each_inputs_first_assertion_that_reached_the_call():
    from utscale.sandbox.codec import REACHED, UNENCODABLE

    inputs = pd.DataFrame({"task_id": ["T/0"] * 4, "input_id": [0, 1, 2, 3], "input": ["f(1)", "f(2)", "f(3)", "f(4)"],
                           "assertion_ids": ["[0, 1]", "[2]", "[3]", "[4]"]})
    rows = [  # solution, assertion, status, output, recorded
        (0, 0, "error", None, True), (0, 1, "fail", "7", True), (0, 2, "timeout", REACHED, True), (0, 3, "pass", "9", False),
        (1, 0, "pass", "1", True), (1, 1, "fail", "2", True), (1, 2, "error", REACHED, True), (1, 3, "pass", UNENCODABLE, True),
        (0, 4, "error", None, True), (0, outputs.case_id(3), "pass", "4", True),  # f(4)'s recording case
        (1, 4, "pass", "5", True), (1, outputs.case_id(3), "pass", "6", True),  # an assertion reached it first
    ]
    executions = pd.DataFrame([("T/0", s, a, st, out, rec, 0.01) for s, a, st, out, rec in rows],
                              columns=["task_id", "solution_id", "assertion_id", "status", "output", "recorded", "duration_s"])
    got = outputs.recorded_outputs(executions, inputs)
    table = {(r.solution_id, r.input_id): (r.status, None if pd.isna(r.output) else r.output) for r in got.itertuples()}
    assert table == {(0, 0): ("pass", "7"),  # assertion 0 never reached the call: assertion 1 did
                     (0, 1): ("timeout", None), (1, 0): ("pass", "1"), (1, 1): ("error", None),
                     (1, 2): ("unencodable", None),  # (0, 2): run without the recorder, SRank's executor runs it
                     (0, 3): ("pass", "4"), (1, 3): ("pass", "5")}
    assert outputs.recorded_outputs(executions.drop(columns="recorded"), inputs).empty  # an older log


def test_expected_values_are_evaluated_after_the_prompts_stub_as_srank_evaluates_them():
    problems, assertions = one_problem(["assert add(1, 2) == 3", "assert add(1, 2) == [1] * 2", "assert add(2, 2) == four",
                                        "assert 5 == add(2, 3)"])
    inputs = outputs.test_inputs(problems, assertions)
    pairs = outputs.expected_pairs(problems, assertions, inputs)
    assert {key: test for key, (_, test) in pairs.items()} == {
        ("T/0", 0): "3", ("T/0", 1): "[1] * 2", ("T/0", 2): "four", ("T/0", 3): "5"}
    assert {program for program, _ in pairs.values()} == {PROMPT + "\n    pass\n"}  # SRank's exec(prompt + pass)
    with Executor(workers=1, settings=SandboxSettings(timeout=0.3, mode="srank")) as executor:
        got = {tuple(json.loads(v.id)): (v.status, v.output) for v in run_pairs(
            [Pair(json.dumps(list(k)), program, test) for k, (program, test) in pairs.items()], executor)}
    assert got[("T/0", 1)] == ("pass", canonical([1, 1]))  # an expression, not only a literal
    assert got[("T/0", 2)] == ("error", None)  # a name the namespace lacks: SRank's eval rejects it


def test_srank_agreement_counts_the_sampled_expected_values_a_solution_returns():
    inputs = pd.DataFrame({"task_id": ["T/0", "T/0"], "input_id": [0, 1], "input": ["f(1)", "f(2)"],
                           "assertion_ids": ["[0, 1]", "[2, 3]"]})
    assertions = pd.DataFrame({"task_id": ["T/0"] * 4, "assertion_id": [0, 1, 2, 3], "multiplicity": [3, 1, 2, 5]})
    expected = pd.DataFrame({"task_id": ["T/0"] * 4, "assertion_id": [0, 1, 2, 3],
                             "status": ["pass", "pass", "pass", "error"], "output": ["1", "2", "4", None]})
    values = outputs.expected_outputs(expected, assertions, inputs)
    assert sorted(zip(values.input_id, values.output, values.weight)) == [(0, "1", 3), (0, "2", 1), (1, "4", 2)]
    rows = [(0, 0, "pass", "1"), (0, 1, "pass", "4"), (1, 0, "pass", "2"), (1, 1, "error", None),
            (2, 0, "timeout", None), (2, 1, "pass", "4")]
    recorded = pd.DataFrame([("T/0", s, i, st, out) for s, i, st, out in rows],
                            columns=["task_id", "solution_id", "input_id", "status", "output"])
    agreement = outputs.expected_agreement(recorded, values)
    # the error-valued assertion 3 counts nowhere (SRank drops it): every share is out of 3 + 1 + 2
    assert agreement.set_index("solution_id").agreement.to_dict() == pytest.approx({0: 5 / 6, 1: 1 / 6, 2: 2 / 6})
    none = outputs.expected_agreement(recorded, values.iloc[:0])
    assert none.agreement.tolist() == [0.0, 0.0, 0.0]  # a problem with no expected value: no agreement


def test_mbr_exec_keeps_the_largest_group_of_identical_results_errors_included():
    codes = np.array([[1, 2], [1, 2], [7, 7], [7, 7], [7, 7], [1, 3]])  # 7: "raised", shared by three
    assert rerankers.mbr_exec_kept(codes).tolist() == [False, False, True, True, True, False]
    tie = np.array([[1, 2], [1, 2], [3, 4], [3, 4], [5, 6]])
    assert rerankers.mbr_exec_kept(tie).tolist() == [True, True, True, True, False]


def test_srank_prefers_the_cluster_the_tests_and_its_neighbours_support_over_the_largest():
    # three clusters on 4 inputs: A (3 solutions) agrees with the tests 10%; B (2) 90% and agrees with C
    # on 3 of 4 inputs; C (1) 80%. Largest is A (MBR-exec's pick); SRank's I @ V ranks B first.
    codes = np.array([[9, 9, 8, 7]] * 3 + [[1, 2, 3, 4]] * 2 + [[1, 2, 3, 5]])
    returned = np.ones_like(codes, dtype=bool)
    agreement = np.array([0.1] * 3 + [0.9] * 2 + [0.8])
    distinct = np.ones(6, dtype=bool)
    assert rerankers.mbr_exec_kept(codes).tolist() == [True] * 3 + [False] * 3
    assert rerankers.srank_kept(codes, returned, agreement, distinct).tolist() == [False] * 3 + [True, True, False]
    # counted by distinct texts: if B's two solutions are one text, B's share halves and C's neighbour wins
    duplicate = np.array([True] * 4 + [False, True])
    kept = rerankers.srank_kept(codes, returned, np.array([0.1] * 3 + [0.9, 0.9, 0.95]), duplicate)
    assert kept.tolist() == [False] * 5 + [True]


def test_srank_scores_invalid_solutions_zero_and_pools_tied_clusters():
    # rows 0-1 return the same value on every input (SRank: invalid), row 2 never returns (invalid);
    # rows 3 and 4 are two clusters with equal support and no overlap: tied, pooled
    codes = np.array([[5, 5, 5], [5, 5, 5], [0, 0, 0], [1, 2, 3], [4, 6, 8]])
    returned = np.array([[True] * 3, [True] * 3, [False] * 3, [True] * 3, [True] * 3])
    agreement = np.array([1.0, 1.0, 0.0, 0.5, 0.5])
    kept = rerankers.srank_kept(codes, returned, agreement, np.ones(5, dtype=bool))
    assert kept.tolist() == [False, False, False, True, True]
    # nothing valid: every score is 0, every solution is kept (a uniform pick)
    assert rerankers.srank_kept(codes[:3], returned[:3], agreement[:3], np.ones(3, dtype=bool)).all()


def output_cube(task_ids: tuple[str, ...], codes: np.ndarray, correct: np.ndarray) -> outputs.OutputCube:
    p, n, k = codes.shape
    return outputs.OutputCube(task_ids, codes, np.ones_like(codes, dtype=bool), np.full(p, k),
                              np.full((p, n), 0.5), np.ones((p, n), dtype=bool), correct, np.full(p, n))


def test_the_table_gives_rerankers_on_outputs_codet_on_the_same_tests_as_baseline():
    rng = np.random.default_rng(3)
    tasks = tuple(f"T/{i}" for i in range(20))
    correct = rng.random((20, 8)) < 0.4
    cube = matrix.PassCube(tasks, rng.random((20, 8, 5)) < 0.5, correct, np.full(20, 8), np.full(20, 5))
    out = output_cube(tasks, rng.integers(0, 3, (20, 8, 4)), correct)
    table = rerankers.reranker_table({"unit_test": cube, "assertion": cube, "outputs": out}, seed=0)
    rows = table.set_index(["rule", "granularity"])
    codet = rows.loc[("codet_released", "assertion"), "accuracy"]
    for rule in ("srank", "mbr_exec"):
        assert rows.loc[(rule, "outputs"), "minus_codet_released"] == pytest.approx(rows.loc[(rule, "outputs"), "accuracy"] - codet)
    with pytest.raises(ValueError, match="different problems"):
        rerankers.reranker_table({"assertion": cube, "outputs": output_cube(tasks[::-1], out.codes, correct)})


UNIT_TEST = """
import unittest

class TestAdd(unittest.TestCase):
    def test_literals(self):
        self.assertEqual(add(1, 2), 3)
        self.assertEqual(add([1],  [2]), [1, 2])
        self.assertEqual(add(add(1, 1), len("ab")), 4)

    def test_built_inside(self):
        values = [1, 2]
        self.assertEqual(add(values, [3]), [1, 2, 3])  # names a variable of the test: not an input
        self.assertEqual(add([x * 2 for x in range(2)], []), [0, 2])  # a comprehension's own name is fine
        self.assertEqual(add(1, 2), 3)
"""


def test_unit_test_inputs_are_the_closed_calls_of_the_entry_point_in_order_with_their_tests():
    problems = pd.DataFrame({"task_id": ["T/0"], "prompt": [PROMPT], "entry_point": ["add"]})
    unit_tests = pd.DataFrame({"task_id": ["T/0", "T/0", "T/0"], "test_id": [0, 1, 2],
                               "code": [UNIT_TEST, "class Broken(:\n", "self.assertEqual(add(1, 2), 3)"]})
    table = outputs.unit_test_inputs(problems, unit_tests)
    assert table.input.tolist() == ["add(1, 2)", "add([1], [2])", "add(add(1, 1), len('ab'))", "add(1, 1)",
                                    "add([x * 2 for x in range(2)], [])"]
    assert json.loads(table.test_ids[0]) == [0, 2]  # once per test, however often a test makes the call
    executions = pd.DataFrame({"task_id": ["T/0"] * 4, "solution_id": [0, 0, 1, 1], "test_id": [0, 2, 0, 2],
                               "passed": [True, False, True, True]})
    agreement = outputs.unit_test_agreement(executions, table).set_index("solution_id").agreement
    assert agreement.to_dict() == {0: 0.5, 1: 1.0}
