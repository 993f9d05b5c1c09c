"""The paper's prompts, verbatim (docs/method.md §3.2)."""

from __future__ import annotations

UNIT_TEST_PROMPT = (
    "Below is a question and it's corresponding code answer. Please write test cases to check the correctness "
    "of the code answer. You need to use the unittest library in Python and create a test class for testing.\n\n"
    "### question\n{question}\n\n### code solution\n{code}\n\n"
    "Please add detailed comments to the test cases you write. You do not need to test the function's ability "
    "to throw exceptions."
)

EVALPLUS_SOLUTION_PROMPT = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
    "```python\n{prompt}\n```\n"
)

LIVECODEBENCH_SOLUTION_PROMPT = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will generate "
    "a correct Python program that matches the specification and passes all tests. You will NOT return anything "
    "except for the program.\n\n{prompt}\n\n### Format: You will use the following starter code to write the "
    "solution to the problem and enclose your code within delimiters.\n\n### Answer: (use the provided format "
    "with backticks)\n"
)


def evalplus_solution_prompt(prompt: str) -> str:
    """EvalPlus's policy prompt (HumanEval+, MBPP+); each benchmark names its own in `benchmarks.BENCHMARKS`."""
    return EVALPLUS_SOLUTION_PROMPT.format(prompt=prompt.strip("\n"))


def livecodebench_solution_prompt(prompt: str) -> str:
    """LiveCodeBench's standard policy prompt."""
    return LIVECODEBENCH_SOLUTION_PROMPT.format(prompt=prompt)


def unit_test_prompt(question: str, code: str) -> str:
    return UNIT_TEST_PROMPT.format(question=question, code=code)


def messages(content: str) -> tuple[tuple[str, str], ...]:
    """A single user turn; the chat template (with its generation prompt) is the engine's business."""
    return (("user", content),)
