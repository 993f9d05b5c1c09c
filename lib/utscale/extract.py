"""From raw model responses to runnable code, with an explicit status for every response.

The authors' rules (docs/method.md §3.3), without their bugs: a class at offset 0 is kept whole (the
program is rebuilt from the AST, not cut at "\\nclass"), and duplicates are removed in order.
Every response gets a status; code is None only when there is nothing runnable to keep.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Literal, get_args

FENCE_PYTHON = re.compile(r"```python\n(.*?)\n```", re.S)
FENCE_ANY = re.compile(r"```\n(.*?)\n```", re.S)
YOUR_MODULE = re.compile(r"^from\s+your_module\s+import\s+[\w, ()]+(\s+#.*)?$", re.M)

# The largest model output the driver parses. Python's AST takes about 400 times the source's size
# (a 6 MB solution: 2.4 GB in `ast.parse`); past this a response is `parser_failure` and keyed by its text,
# so the driver's memory stays a small multiple of one response. Generated code is far below it (768
# tokens is about 3 KB).
MAX_PARSED_CHARS = 256_000

# every status a response can get; the notebooks' status tables list each (zeros included)
ParseStatus = Literal["ok", "syntax_error", "parser_failure"]
SolutionStatus = Literal[ParseStatus, "no_code_block", "multiple_code_blocks", "truncated", "empty", "engine_error"]
TestStatus = Literal[SolutionStatus, "no_test_class", "multiple_classes", "no_test_methods", "no_valid_assertion"]
SOLUTION_STATUSES: tuple[SolutionStatus, ...] = get_args(SolutionStatus)
TEST_STATUSES: tuple[TestStatus, ...] = get_args(TestStatus)


@dataclass(frozen=True)
class Extracted:
    code: str | None
    status: TestStatus
    class_name: str | None = None


def code_blocks(text: str) -> list[str]:
    blocks = FENCE_PYTHON.findall(text)
    return blocks if blocks else FENCE_ANY.findall(text)


def _one_block(text: str, finish_reason: str) -> tuple[str | None, Extracted | None]:
    """The response's single code block, or the status that says why there is none."""
    if finish_reason.startswith("error"):
        return None, Extracted(None, "engine_error")
    if not text.strip():
        return None, Extracted(None, "empty")
    blocks = code_blocks(text)
    if len(blocks) == 1:
        return blocks[0], None
    if not blocks:
        # a response cut off by the token limit loses its closing fence: say so rather than "no block"
        return None, Extracted(None, "truncated" if finish_reason == "length" else "no_code_block")
    return None, Extracted(None, "multiple_code_blocks")


def extract_solution(text: str, finish_reason: str = "stop") -> Extracted:
    """Exactly one code block → its code. A block that does not parse is kept (it will fail its tests:
    that is the policy's error, not ours) with status `syntax_error`."""
    code, failure = _one_block(text, finish_reason)
    if failure is not None or code is None:
        return failure or Extracted(None, "empty")
    status = parse_status(code)
    return Extracted(code, status)


def parse_status(code: str) -> ParseStatus:
    """`ok`, `syntax_error` (SyntaxError, or a ValueError for null bytes) or `parser_failure` (the parser
    itself gave up: RecursionError or MemoryError on degenerate input such as 1+1+…+1 or ------1, or the
    code is over MAX_PARSED_CHARS and is not parsed at all)."""
    if len(code) > MAX_PARSED_CHARS:
        return "parser_failure"
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return "syntax_error"
    except Exception:  # noqa: BLE001 - RecursionError, MemoryError: one bad response must never stop a stage
        return "parser_failure"
    return "ok"


def parses(code: str) -> bool:
    """Whether model-written code parses. Any failure of the parser (SyntaxError, a ValueError for null
    bytes, RecursionError or MemoryError on degenerate input) is "does not parse": one bad response
    must never stop a stage."""
    return parse_status(code) == "ok"


def _imports_entry_point(node: ast.stmt, entry_point: str) -> bool:
    """`from solution import f` (any module) for the function under test: it is already defined."""
    return isinstance(node, ast.ImportFrom) and any(a.name == entry_point for a in node.names)


def extract_unit_test(text: str, finish_reason: str = "stop", entry_point: str = "") -> Extracted:
    """Exactly one code block holding exactly one class, which must be a TestCase with test methods.
    The program is rebuilt as: the block's top-level imports (minus imports of the function under
    test or of `your_module`), then the class's own source."""
    code, failure = _one_block(text, finish_reason)
    if failure is not None or code is None:
        return failure or Extracted(None, "empty")
    code = YOUR_MODULE.sub("", code)
    if len(code) > MAX_PARSED_CHARS:
        return Extracted(None, "parser_failure")
    try:
        return _test_program(code, entry_point)
    except (SyntaxError, ValueError):
        return Extracted(None, "syntax_error")
    except Exception:  # noqa: BLE001 - RecursionError, MemoryError: the parser or unparser gave up
        return Extracted(None, "parser_failure")


def _test_program(code: str, entry_point: str) -> Extracted:
    tree = ast.parse(code)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if not classes:
        return Extracted(None, "no_test_class")
    if len(classes) > 1:
        return Extracted(None, "multiple_classes")
    cls = classes[0]
    bases = {ast.unparse(b) for b in cls.bases}
    if not bases & {"unittest.TestCase", "TestCase"}:
        return Extracted(None, "no_test_class")
    if not any(isinstance(n, ast.FunctionDef) and n.name.startswith("test") for n in cls.body):
        return Extracted(None, "no_test_methods")
    imports = [ast.get_source_segment(code, n) or "" for n in tree.body
               if isinstance(n, (ast.Import, ast.ImportFrom)) and not _imports_entry_point(n, entry_point)]
    if "import unittest" not in imports and "TestCase" not in {a.name for n in tree.body
                                                              if isinstance(n, ast.ImportFrom) for a in n.names}:
        imports.insert(0, "import unittest")
    program = "\n".join(imports) + "\n\n\n" + (ast.get_source_segment(code, cls) or "") + "\n"
    return Extracted(program, "ok", cls.name)


def mark_duplicates(codes: list[str | None]) -> list[int | None]:
    """For each test, the index of the first identical earlier test (None if first or no code): in order,
    never set-ordered, so ids do not depend on hash seeds."""
    first: dict[str, int] = {}
    out: list[int | None] = []
    for i, code in enumerate(codes):
        if code is None:
            out.append(None)
        elif code in first:
            out.append(first[code])
        else:
            first[code] = i
            out.append(None)
    return out
