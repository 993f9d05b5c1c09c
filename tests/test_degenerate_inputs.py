"""Degenerate model output (deeply nested expressions that make the parser itself give up) gets a status
in extraction, planning and execution; the rest of the stage completes."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from utscale import extract, generation
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


def test_the_status_tables_count_parser_failures():
    solutions = pd.DataFrame({"extract_status": [extract.extract_solution(fenced(c)).status for c in (DEEP_SUM, GOOD)]})
    table = generation.status_table(solutions, extract.SOLUTION_STATUSES).set_index("status").responses
    assert (table["parser_failure"], table["ok"], table.sum()) == (1, 1, 2)
    assert "parser_failure" in extract.TEST_STATUSES
    legacy = generation.status_table(pd.DataFrame({"extract_status": ["ok", "retired"]}), ["ok", "empty"])
    assert legacy.status.tolist() == ["ok", "empty", "retired"]  # a status outside the vocabulary is not hidden


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


DRIVER_MEMORY = """
import resource, sys
from utscale import extract
from utscale.sandbox import Executor, Pair, SandboxSettings, run_pairs
from utscale.sandbox.pairs import solution_key
code = "def add(a, b):\\n    return a + b\\n" + "x = 1\\n" * 1_000_000
test = "import unittest\\nclass T(unittest.TestCase):\\n    def test(self):\\n        self.assertEqual(add(1, 2), 3)\\n"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
status = extract.parse_status(code)
solution_key(code)
with Executor(workers=1, settings=SandboxSettings(timeout=30, jail="none")) as ex:
    verdicts = [v.status for v in run_pairs([Pair("big", code, test)], ex)]
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(status, verdicts, grown / len(code))
"""


def test_the_drivers_memory_stays_a_small_multiple_of_one_huge_solution():
    """A 6 MB solution (the issue's case) made the driver use 1.1-2.4 GB in `ast.parse`; code over
    MAX_PARSED_CHARS is not parsed by the driver, gets `parser_failure`, and still gets a verdict."""
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", DRIVER_MEMORY], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    status, verdict, growth = out[0], out[1], float(out[2])
    assert status == "parser_failure" and verdict in ("['error']", "['pass']")
    assert growth < 10, f"the driver grew by {growth:.0f}x the solution's size"
