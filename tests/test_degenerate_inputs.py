"""Degenerate model output (deeply nested expressions that make the parser itself give up) gets a status
in extraction, planning and execution; the rest of the stage completes."""

from __future__ import annotations

import pytest
from utscale import extract
from utscale.sandbox import Executor, Pair, SandboxSettings, run_pairs
from utscale.sandbox.pairs import solution_key

DEEP_SUM = "def add(a, b):\n    x = " + "+".join(["1"] * 20_000) + "\n    return a + b\n"
DASHES = "x = " + "-" * 3000 + "1\n"
GOOD = "def add(a, b):\n    return a + b\n"
TEST = "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n"


def fenced(code: str) -> str:
    return f"Here it is:\n```python\n{code}\n```\n"


@pytest.mark.parametrize("code", [DEEP_SUM, DASHES])
def test_extraction_records_a_status_instead_of_raising(code):
    got = extract.extract_solution(fenced(code))
    assert got.status == "parser_failure" and got.code is not None
    assert not extract.parses(code)
    test = extract.extract_unit_test(fenced("import unittest\n" + code + "\nclass T(unittest.TestCase):\n    def test_x(self): pass\n"))
    assert test.status == "parser_failure" and test.code is None


def test_parser_failure_is_its_own_status():
    assert extract.parse_status(DASHES) == "parser_failure"
    assert extract.parse_status("x = (" * 300 + ")" * 300) in ("parser_failure", "syntax_error")
    assert extract.parse_status("x = 1\0") == "syntax_error"
    assert extract.parse_status(GOOD) == "ok"


def test_the_planner_keys_degenerate_code_by_its_text():
    key = solution_key(DEEP_SUM)
    assert key == solution_key(DEEP_SUM) and key != solution_key(GOOD)


def test_a_degenerate_solution_fails_while_the_others_get_their_verdicts():
    pairs = [Pair("deep", DEEP_SUM, TEST), Pair("dashes", DASHES, TEST), Pair("good", GOOD, TEST)]
    with Executor(1, SandboxSettings(timeout=5.0)) as ex:
        verdicts = {v.id: v for v in run_pairs(pairs, ex)}
    assert set(verdicts) == {"deep", "dashes", "good"}
    assert verdicts["good"].passed
    assert not verdicts["deep"].passed and not verdicts["dashes"].passed
