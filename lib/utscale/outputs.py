"""What each solution returns on the generated tests' inputs: the inputs, the outputs stage's pairs, and
the output cube that SRank and MBR-exec rank from (docs/codet.md, "Rerankers on outputs").

A pass matrix says whether a solution agreed with a test's expected value; it cannot say whether two
solutions agree with each other where every test is wrong. The outputs stage records, per (solution,
test input), what the solution returned as canonical text (`sandbox.codec.canonical`: equal values
share it, floats to 1e-6, large values hashed whole). For CodeT's assertions the input is the entry-point
call of the assertion, parsed as SRank's released code parses it (`input_and_expected`); for `unittest`
classes, every call of the entry point a test makes on literal arguments (`unit_test_inputs`). For
CodeT's assertions the values are recorded inside CodeT's executor as it runs them (`recording_tests`,
`recorded_outputs`); what it does not reach, and every input of a `unittest` run, runs once per solution
under SRank's executor (`srank` mode: one program, inputs in order). The assertions' expected values are
evaluated the same way (`expected_pairs`) for SRank's agreement (`expected_agreement`).
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from utscale.codet import valid_test_case
from utscale.matrix import rank_within
from utscale.runs import Run
from utscale.sandbox.codec import REACHED, RECORDER_IN, RECORDER_OUT, UNENCODABLE
from utscale.tables import natural_order

OUTPUT_KEY = ("task_id", "solution_id", "input_id")
EXPECTED_KEY = ("task_id", "assertion_id")  # the `expected_values` table: each parsed assertion's expected value
RETURNED = "pass"  # the outputs table's status of an input that returned a value (`srank` mode)


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def input_and_expected(assertion: str, prompt: str, entry_point: str) -> tuple[str, str] | None:
    """An assertion's (input expression, expected-value expression), or None when SRank's parser
    (`execution/utils.py: convert_test_case_to_input_output`) takes no input from it: step for step
    its regular expressions, its left-strip of the characters of "assert", its swap when the call is on
    the right, and its check that the input compiles after the prompt. One change: SRank drops a
    trailing message after the last comma when `eval` of it succeeds; here when it is a literal
    (`ast.literal_eval`), since generated text is never evaluated outside the sandbox."""
    case = re.sub("'''.*?'''", "", assertion, flags=re.DOTALL)
    case = re.sub('""".*?"""', "", case, flags=re.DOTALL).replace("\n", "")
    if "," in case:
        parts = case.split(",")
        if _is_literal(parts[-1].strip()):
            case = ",".join(parts[:-1])
    comparison = case.lstrip("assert").strip()  # noqa: B005 - SRank's own quirk, kept: it strips characters
    if comparison.startswith("(") and comparison.endswith(")"):
        case = f"assert {comparison[1:-1]}"
    if "==" in case:
        match = re.match(r"assert\s+(.*?)\s+(==)\s+(.+)", case)
    else:
        match = re.match(r"assert\s+(.*?)\s+(is)\s+(True|False|None)", case)
    if not match:
        return None
    call, _, expected = match.groups()
    pattern = re.escape(entry_point) + r"\(.*?\)"
    if re.search(pattern, expected):
        call, expected = expected, call
    if not re.search(pattern, call) or not call.strip():
        return None
    try:
        compile(prompt + f"\n    pass\n{call}", "", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return call, expected


def _offset(lines: list[str], line: int, column: int) -> int:
    """The character offset of an AST position (1-based line, UTF-8 byte column) in the joined lines."""
    return sum(len(text) for text in lines[:line - 1]) + len(lines[line - 1].encode()[:column].decode())


def recording_assertion(assertion: str, call: str) -> str | None:
    """The assertion with its input call wrapped in the recorder, `OUT(IN(), call)`, which marks the call
    begun, records what it returned and returns it unchanged, so CodeT's executor records the output as it
    gives the verdict (docs/codet.md). The call is the first node, in source order, of the assertion's
    syntax tree that is the input's tree; None when there is none (SRank's parser cut the text around it)
    or the wrapped assertion does not compile where CodeT's does."""
    try:
        target = ast.dump(ast.parse(call.strip(), mode="eval").body)
        nodes = [n for n in ast.walk(ast.parse(assertion)) if isinstance(n, ast.expr) and ast.dump(n) == target]
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not nodes:
        return None
    node = min(nodes, key=lambda n: (n.lineno, n.col_offset))
    lines = assertion.splitlines(keepends=True)
    start = _offset(lines, node.lineno, node.col_offset)
    end = _offset(lines, node.end_lineno or node.lineno, node.end_col_offset or 0)
    wrapped = f"{assertion[:start]}{RECORDER_OUT}({RECORDER_IN}(), {assertion[start:end]}){assertion[end:]}"
    return wrapped if valid_test_case(wrapped) else None


def test_inputs(problems: pd.DataFrame, assertions: pd.DataFrame) -> pd.DataFrame:
    """task_id, input_id, input, assertion_ids (JSON list): each problem's distinct inputs in order of
    first appearance among its assertions, and the assertions whose call each one is."""
    info = problems.set_index("task_id")[["prompt", "entry_point"]].to_dict("index")
    rows: dict[tuple[str, str], list[int]] = {}
    for task_id, assertion_id, text in zip(assertions.task_id, assertions.assertion_id, assertions.assertion):
        parsed = input_and_expected(text, info[task_id]["prompt"], info[task_id]["entry_point"])
        if parsed is not None:
            rows.setdefault((task_id, parsed[0].strip()), []).append(int(assertion_id))
    return _inputs_table(rows, "assertion_ids")


def _inputs_table(rows: dict[tuple[str, str], list[int]], sources: str) -> pd.DataFrame:
    """task_id, input_id, input, `sources` (JSON list) from (task_id, input) → source ids, numbering each
    problem's inputs in the order they were first met."""
    table = pd.DataFrame([(t, call, json.dumps(ids)) for (t, call), ids in rows.items()],
                         columns=["task_id", "input", sources])
    table.insert(1, "input_id", table.groupby("task_id", sort=False).cumcount())
    return table


def _closed_calls(code: str, entry_point: str) -> list[str]:
    """The source of every call of the entry point in a unit-test program whose arguments name nothing
    but the entry point and builtins (literals, comprehensions of literals...), in order: the inputs a
    solution can be run on without the test. A call on a variable the test built is left out."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    allowed = {entry_point} | set(dir(builtins))
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point:
            bound = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            free = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            if free - bound <= allowed:
                calls.append((node.lineno, node.col_offset, ast.unparse(node)))
    return [call for _, _, call in sorted(calls)]


def unit_test_inputs(problems: pd.DataFrame, unit_tests: pd.DataFrame) -> pd.DataFrame:
    """task_id, input_id, input, test_ids (JSON list): for `unittest`-class tests, each problem's distinct
    closed calls of the entry point (`_closed_calls`) over its executed tests, in order of first
    appearance, and the tests each one comes from."""
    entry = problems.set_index("task_id").entry_point.to_dict()
    rows: dict[tuple[str, str], list[int]] = {}
    for task_id, test_id, code in zip(unit_tests.task_id, unit_tests.test_id, unit_tests.code):
        for call in dict.fromkeys(_closed_calls(code, entry[task_id])):
            rows.setdefault((task_id, call), []).append(int(test_id))
    return _inputs_table(rows, "test_ids")


def output_pairs(programs: Mapping[tuple[str, int], str], inputs: pd.DataFrame) -> dict[tuple, tuple[str, str]]:
    """(task_id, solution_id, input_id) → (solution program, input expression) for every solution program
    ((task_id, solution_id) → program, as the assertion stage runs it) and every input of its problem."""
    by_task: dict[str, list[tuple[int, str]]] = {}
    for task_id, input_id, call in zip(inputs.task_id, inputs.input_id, inputs.input):
        by_task.setdefault(task_id, []).append((int(input_id), call))
    return {(t, s, i): (program, call) for (t, s), program in programs.items() for i, call in by_task.get(t, [])}


def assertion_links(inputs: pd.DataFrame, cases: bool = False) -> pd.DataFrame:
    """task_id, assertion_id, input_id: which assertion's call each input is (and, with `cases`, each
    input's recording case)."""
    return pd.DataFrame([(t, int(a), int(i)) for t, i, ids in zip(inputs.task_id, inputs.input_id, inputs.assertion_ids)
                         for a in [*json.loads(ids), *([case_id(int(i))] if cases else [])]],
                        columns=["task_id", "assertion_id", "input_id"])


def _texts(assertions: pd.DataFrame) -> dict[tuple[str, int], str]:
    return dict(zip(zip(assertions.task_id, assertions.assertion_id.astype(int)), assertions.assertion))


def _call_first(assertion: str, call: str) -> bool:
    """Whether the assertion evaluates its input call before anything else (`assert call == ...`): then
    only a program that fails as a whole keeps the recorder from it."""
    try:
        test = ast.parse(assertion).body[0]
        return (isinstance(test, ast.Assert) and isinstance(test.test, ast.Compare)
                and ast.dump(test.test.left) == ast.dump(ast.parse(call.strip(), mode="eval").body))
    except (SyntaxError, ValueError, MemoryError, RecursionError, IndexError):
        return False


def case_id(input_id: int) -> int:
    """The assertion_id of an input's recording case (negative: no assertion has it)."""
    return -1 - input_id


def recording_tests(assertions: pd.DataFrame, inputs: pd.DataFrame) -> dict[str, list[tuple[int, str]]]:
    """task_id → the tests CodeT's executor runs for each solution, in order: every assertion, with the
    recorder around its input call where it can carry it (`recording_assertion`), then a recording case
    `OUT(IN(), call)` (no assertion; keyed `case_id(input_id)`) for each input that no assertion evaluates
    first, so that an expected value that raises before the call (`assert _________ == f(x)`) leaves no
    output unrecorded. The cases run after every assertion, so no verdict sees their state."""
    text = _texts(assertions)
    wrapped: dict[tuple[str, int], str] = {}
    cases: dict[str, list[tuple[int, str]]] = {}
    for task_id, input_id, call, ids in zip(inputs.task_id, inputs.input_id, inputs.input, inputs.assertion_ids):
        for assertion_id in json.loads(ids):
            recording = recording_assertion(text[(task_id, assertion_id)], call)
            if recording is not None:
                wrapped[(task_id, int(assertion_id))] = recording
        if not any(_call_first(text[(task_id, a)], call) for a in json.loads(ids)):
            cases.setdefault(task_id, []).append((case_id(int(input_id)), f"{RECORDER_OUT}({RECORDER_IN}(), {call.strip()})"))
    return {task_id: [(int(a), wrapped.get((task_id, int(a)), t)) for a, t in zip(group.assertion_id, group.assertion)]
            + cases.get(task_id, []) for task_id, group in assertions.groupby("task_id", sort=False)}


def recorded_outputs(executions: pd.DataFrame, inputs: pd.DataFrame) -> pd.DataFrame:
    """task_id, solution_id, input_id, status, output, duration_s: each solution's output on each input as
    CodeT's executor recorded it (`recording_tests`), from the input's first assertion, in order, whose
    run reached the call, else from its recording case: its value (`pass`), `unencodable`, or, for a
    call that began and never returned, `timeout` or `error` by the test's status. A (solution, input)
    no recorded run reached (an older log, a program that failed as a whole) is not here: SRank's
    executor runs it (`execution.record_outputs`)."""
    columns = [*OUTPUT_KEY, "status", "output", "duration_s"]
    if "recorded" not in executions:
        return pd.DataFrame(columns=columns)
    runs = executions[executions.recorded.eq(True) & executions.output.notna()].merge(
        assertion_links(inputs, cases=True), on=["task_id", "assertion_id"])
    runs = runs.assign(case=runs.assertion_id < 0).sort_values([*OUTPUT_KEY, "case", "assertion_id"])
    runs = runs.drop_duplicates(list(OUTPUT_KEY))
    began = runs.output.eq(REACHED)
    status = np.select([runs.output.eq(UNENCODABLE), began & runs.status.eq("timeout"), began],
                       ["unencodable", "timeout", "error"], RETURNED)
    return runs.assign(status=status, output=runs.output.where(status == RETURNED))[columns].reset_index(drop=True)


def expected_pairs(problems: pd.DataFrame, assertions: pd.DataFrame, inputs: pd.DataFrame
                   ) -> dict[tuple, tuple[str, str]]:
    """(task_id, assertion_id) → (the prompt's function with body `pass`, the assertion's expected-value
    expression), for every assertion that gave an input: SRank's `execution/run.py` evaluates each expected
    value with `eval` after `exec(prompt + "\n    pass")`; here the same program runs in SRank's executor
    in the sandbox (generated text is never evaluated outside it)."""
    info = problems.set_index("task_id")[["prompt", "entry_point"]].to_dict("index")
    text = _texts(assertions)
    pairs = {}
    for task_id, ids in zip(inputs.task_id, inputs.assertion_ids):
        prompt, entry = info[task_id]["prompt"], info[task_id]["entry_point"]
        for assertion_id in json.loads(ids):
            parsed = input_and_expected(text[(task_id, assertion_id)], prompt, entry)
            if parsed is not None:
                pairs[(task_id, assertion_id)] = (prompt + "\n    pass\n", parsed[1].strip())
    return pairs


def expected_outputs(expected: pd.DataFrame, assertions: pd.DataFrame, inputs: pd.DataFrame) -> pd.DataFrame:
    """task_id, input_id, output, weight: each parsed assertion's expected value as canonical text, on its
    input, weighted by how often the assertion was sampled (SRank keeps one expected value per sampled
    test case). A value that did not evaluate (raised, timed out, or cannot be compared: a generator, a
    view) is left out, as SRank leaves out what its `eval` rejects."""
    valued = expected[expected.status.eq(RETURNED)][["task_id", "assertion_id", "output"]]
    table = valued.merge(assertion_links(inputs), on=["task_id", "assertion_id"]).merge(
        assertions[["task_id", "assertion_id", "multiplicity"]], on=["task_id", "assertion_id"])
    return table.rename(columns={"multiplicity": "weight"})[["task_id", "input_id", "output", "weight"]]


def expected_agreement(outputs: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """task_id, solution_id, agreement: SRank's `calculate_cluster_pass_rate` for each solution: the weighted
    share of its problem's expected values (`expected_outputs`) that equal what it returned on their input
    (canonical text; 0 where the problem has none)."""
    returned = outputs[outputs.status.eq(RETURNED)][["task_id", "solution_id", "input_id", "output"]]
    hits = returned.merge(expected, on=["task_id", "input_id", "output"]).groupby(
        ["task_id", "solution_id"]).weight.sum().rename("hits")
    totals = expected.groupby("task_id").weight.sum().rename("total")
    table = outputs[["task_id", "solution_id"]].drop_duplicates().join(hits, on=["task_id", "solution_id"])
    table = table.join(totals, on="task_id").fillna({"hits": 0.0, "total": 0.0})
    table["agreement"] = np.where(table.total > 0, table.hits / table.total.where(table.total > 0, 1.0), 0.0)
    return table[["task_id", "solution_id", "agreement"]].reset_index(drop=True)


@dataclass(frozen=True)
class OutputCube:
    """Every problem's outputs padded to one shape, for the rerankers on outputs.

    codes int [P, N, K]: equal codes in a column are equal outputs; an input that raised or timed out
    has a code per status (MBR-exec compares execution results, errors included), a value that could
    not be encoded a code of its own (it matches nothing). returned bool [P, N, K]: the input returned
    a value (SRank's `output[0]`; an unencodable value returned but matches nothing). agreement float
    [P, N]: SRank's agreement with the generated tests' expected values (`expected_agreement`; for
    `unittest` classes, whose expected values are not parsed, `unit_test_agreement`). distinct bool [P, N]:
    the first solution with its text (SRank counts a cluster's distinct completions).
    """

    task_ids: tuple[str, ...]
    codes: np.ndarray
    returned: np.ndarray
    n_inputs: np.ndarray
    agreement: np.ndarray
    distinct: np.ndarray
    correct: np.ndarray
    n_solutions: np.ndarray

    def pass_rates(self) -> np.ndarray:
        return self.correct.sum(axis=1) / np.maximum(self.n_solutions, 1)


def _output_keys(outputs: pd.DataFrame) -> pd.Series:
    """The text two outputs are compared by: the canonical value, or the status for an input that did not
    return; an unencodable value gets one no other solution shares."""
    keys = outputs.output.where(outputs.status.eq(RETURNED), "!" + outputs.status)
    unencodable = outputs.status.eq("unencodable")
    return keys.where(~unencodable, "!unencodable:" + outputs.solution_id.astype(str))


def agreement_table(assertion_executions: pd.DataFrame, assertions: pd.DataFrame,
                    inputs: pd.DataFrame) -> pd.DataFrame:
    """task_id, solution_id, agreement: the weighted share of the parsed assertions (those with an input)
    each solution passes in CodeT's executor; 0 for a problem none of whose assertions parsed. The suite's
    SRank agreement until SRank's own (`expected_agreement`) replaced it; `benchmarks/srank_protocol.py`
    compares the two."""
    weights = assertion_links(inputs)[["task_id", "assertion_id"]].merge(
        assertions[["task_id", "assertion_id", "multiplicity"]], on=["task_id", "assertion_id"])
    runs = assertion_executions[["task_id", "solution_id", "assertion_id", "passed"]].merge(
        weights, on=["task_id", "assertion_id"])
    runs["hits"] = runs.passed.astype(float) * runs.multiplicity
    summed = runs.groupby(["task_id", "solution_id"], sort=False)[["hits", "multiplicity"]].sum()
    return (summed.hits / summed.multiplicity).rename("agreement").reset_index()


def unit_test_agreement(executions: pd.DataFrame, inputs: pd.DataFrame) -> pd.DataFrame:
    """task_id, solution_id, agreement: the share of the unit tests that gave an input each solution
    passes (each test once; the unit-test counterpart of `agreement_table`)."""
    sources = pd.DataFrame([(t, test) for t, ids in zip(inputs.task_id, inputs.test_ids) for test in json.loads(ids)],
                           columns=["task_id", "test_id"]).drop_duplicates()
    runs = executions[["task_id", "solution_id", "test_id", "passed"]].merge(sources, on=["task_id", "test_id"])
    runs["passed"] = runs.passed.astype(float)
    return runs.groupby(["task_id", "solution_id"], sort=False).passed.mean().rename("agreement").reset_index()


def cube_from_tables(outputs: pd.DataFrame, labels: pd.DataFrame, solutions: pd.DataFrame,
                     agreement: pd.DataFrame) -> OutputCube:
    """The padded cube from the `outputs`, `labels`, `solutions` and `agreement_table` tables, vectorised;
    problems and solutions in the pass cube's order (`matrix.PassCube.from_tables`)."""
    task_ids = tuple(natural_order(labels.task_id.unique()))
    tasks = pd.Index(task_ids)
    lab_task, lab_rank = tasks.get_indexer(labels.task_id), rank_within(labels, "solution_id")
    n_sol = np.bincount(lab_task, minlength=len(task_ids))
    position = pd.Series(lab_rank, index=pd.MultiIndex.from_arrays([labels.task_id, labels.solution_id]))

    def rows_of(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rank = position.reindex(pd.MultiIndex.from_arrays([table.task_id, table.solution_id])).to_numpy()
        known = ~np.isnan(rank)
        return known, tasks.get_indexer(table.task_id)[known], rank[known].astype(np.int64)

    outputs = outputs[outputs.task_id.isin(task_ids)]
    n_inputs = np.zeros(len(task_ids), dtype=np.int64)
    known, out_task, out_sol = rows_of(outputs)
    column = outputs.input_id.to_numpy(dtype=np.int64)[known]
    np.maximum.at(n_inputs, out_task, column + 1)
    shape = (len(task_ids), int(n_sol.max()) if len(n_sol) else 0, int(n_inputs.max()) if len(n_inputs) else 0)
    codes = np.full(shape, -1, dtype=np.int64)  # padding: one code, never returned
    returned = np.zeros(shape, dtype=bool)
    codes[out_task, out_sol, column] = pd.factorize(_output_keys(outputs))[0][known]
    returned[out_task, out_sol, column] = outputs.status.isin([RETURNED, "unencodable"]).to_numpy()[known]
    correct = np.zeros(shape[:2], dtype=bool)
    correct[lab_task, lab_rank] = labels.correct.to_numpy(dtype=bool)
    agree = np.zeros(shape[:2])
    known, a_task, a_sol = rows_of(agreement)
    agree[a_task, a_sol] = agreement.agreement.to_numpy(dtype=float)[known]
    first = ~solutions.duplicated(["task_id", "code"])
    distinct = np.zeros(shape[:2], dtype=bool)
    known, d_task, d_sol = rows_of(solutions)
    distinct[d_task, d_sol] = first.to_numpy()[known]
    return OutputCube(task_ids, codes, returned, n_inputs, agree, distinct, correct, n_sol)


def load(run: Run) -> OutputCube:
    """The run's output cube (recorded by the execution stage)."""
    if not run.has_table("outputs"):
        raise ValueError("this run recorded no outputs (its execution stage ran before outputs were recorded: "
                         "rerun notebook 04)")
    inputs = run.read_table("test_inputs")
    if run.has_table("assertions"):
        if not run.has_table("expected_values"):
            raise ValueError("this run recorded no expected values of its assertions (rerun notebook 04)")
        agreement = expected_agreement(run.read_table("outputs"), expected_outputs(
            run.read_table("expected_values"), run.read_table("assertions"), inputs))
    else:
        agreement = unit_test_agreement(run.read_table("executions"), inputs)
    return cube_from_tables(run.read_table("outputs"), run.read_table("labels"), run.read_table("solutions"),
                            agreement)


def load_all(run: Run) -> dict[str, OutputCube]:
    """{"outputs": the cube} when the run recorded outputs, else {} (beside `matrix.load_all`)."""
    return {"outputs": load(run)} if run.has_table("outputs") else {}
