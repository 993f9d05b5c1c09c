"""Extraction statuses for every kind of malformed response, and the paper's prompts verbatim."""

from __future__ import annotations

import pytest
from utscale import benchmarks, extract, prompts

SOL = "```python\ndef f(x):\n    return x + 1\n```"
TEST_BODY = ("import unittest\n\nclass TestF(unittest.TestCase):\n    def test_one(self):\n"
             "        # f adds one\n        self.assertEqual(f(1), 2)\n")


def fenced(code: str, lang: str = "python") -> str:
    return f"Here you go:\n```{lang}\n{code}\n```\nDone."


@pytest.mark.parametrize("text, finish, code, status", [
    (SOL, "stop", "def f(x):\n    return x + 1", "ok"),
    ("```\ndef f(x):\n    return 1\n```", "stop", "def f(x):\n    return 1", "ok"),  # plain fence fallback
    ("def f(x): return x", "stop", None, "no_code_block"),
    (SOL + "\nand\n" + SOL, "stop", None, "multiple_code_blocks"),
    ("```python\ndef f(x) return\n```", "stop", "def f(x) return", "syntax_error"),
    ("```python\ndef f(x):\n    return [x,", "length", None, "truncated"),
    ("   ", "stop", None, "empty"),
    ("", "error: HTTP 500", None, "engine_error"),
])
def test_solution_extraction(text, finish, code, status):
    got = extract.extract_solution(text, finish)
    assert (got.code, got.status) == (code, status)


def test_unit_test_extraction_rebuilds_imports_plus_the_class():
    text = fenced("import math\nfrom your_module import f\nfrom solution import f\n\n" + TEST_BODY
                  + "\nif __name__ == '__main__':\n    unittest.main()\n\nprint(f(3))\n")
    got = extract.extract_unit_test(text, "stop", entry_point="f")
    assert got.status == "ok" and got.class_name == "TestF"
    assert got.code.startswith("import math\nimport unittest\n") or got.code.startswith("import unittest\nimport math\n")
    assert "your_module" not in got.code and "from solution" not in got.code
    assert "unittest.main" not in got.code and "print(f(3))" not in got.code
    assert "# f adds one" in got.code  # comments inside the class survive


def test_class_at_offset_zero_is_kept_whole():
    # the authors' find('\\nclass') returned -1 here and cut the program to its last character
    got = extract.extract_unit_test(fenced("class TestF(unittest.TestCase):\n    def test_a(self):\n        self.assertTrue(f(0))\n"))
    assert got.status == "ok" and "class TestF(unittest.TestCase):" in got.code
    assert got.code.startswith("import unittest")  # added: the class uses it


@pytest.mark.parametrize("body, status", [
    ("x = 1\n", "no_test_class"),
    ("class Helper:\n    pass\n", "no_test_class"),
    (TEST_BODY + "\nclass TestG(unittest.TestCase):\n    def test_g(self):\n        pass\n", "multiple_classes"),
    ("import unittest\nclass TestF(unittest.TestCase):\n    def helper(self):\n        pass\n", "no_test_methods"),
    ("class TestF(unittest.TestCase)\n    pass\n", "syntax_error"),
])
def test_unit_test_rejections(body, status):
    got = extract.extract_unit_test(fenced(body))
    assert got.code is None and got.status == status


def test_unit_test_truncated_and_two_blocks():
    assert extract.extract_unit_test("```python\n" + TEST_BODY, "length").status == "truncated"
    assert extract.extract_unit_test(fenced(TEST_BODY) + fenced(TEST_BODY)).status == "multiple_code_blocks"


def test_duplicates_are_marked_in_order_and_never_for_missing_code():
    assert extract.mark_duplicates(["a", "b", None, "a", "b", "a", None]) == [None, None, None, 0, 1, 0, None]


def test_prompts_are_the_papers():
    text = prompts.unit_test_prompt("Write a function named `f`.", "def f(): pass")
    assert text.startswith("Below is a question and it's corresponding code answer. Please write test cases")
    assert "### question\nWrite a function named `f`.\n\n### code solution\ndef f(): pass\n\n" in text
    assert text.endswith("You do not need to test the function's ability to throw exceptions.")
    policy = benchmarks.policy_prompt("humaneval", "def f():\n    \"\"\"doc\"\"\"\n")
    assert policy == ("Please provide a self-contained Python script that solves the following problem in a markdown "
                      "code block:\n```python\ndef f():\n    \"\"\"doc\"\"\"\n```\n")
    assert benchmarks.policy_prompt("livecodebench", "Q").startswith("You are an expert Python programmer.")
