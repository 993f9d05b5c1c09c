"""CodeT's released generations (`REPLAY_FORMAT: codet`): parsing, post-processing, provenance.

CodeT (Chen et al., ICLR 2023) released CodeGen-Mono-16B's 100 sampled solutions and 100 sampled
test completions per HumanEval problem. This module turns them into this suite's records exactly as
CodeT's released post-processing does (docs/codet.md):

- a solution is the HumanEval prompt + the completion cut at the first stop string;
- a test completion continues `assert `: `"assert " + completion` is split on `"assert "`, parts that
  mention the entry point are kept, each cut at the stop strings, and kept only if it compiles inside a
  `try:` block; the first 5 kept cases of each completion are used (CodeT's `--test_case_limit 5`).

Two test granularities come from one parse. `unit_test`: one completion = one unit test, a TestCase
whose methods are its first 5 valid assertions (passing iff all pass; a completion with none is an
invalid test every solution fails). `assertion`: one distinct assertion = one test, with how often it
was sampled (CodeT counts duplicates) and which completions it came from, so one execution at the
assertion level yields both pass matrices.

Every file is read with its path and line in every error; the vendored release is checked against
the sha256 of CodeT's own files (`SHA256SUMS` beside it) before anything is parsed.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

STOP_TOKENS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
ASSERTIONS_PER_TEST = 5  # CodeT's --test_case_limit
CHECKSUMS = "SHA256SUMS"
SOLUTION_PROMPTS = "HumanEval_for_code_generation.jsonl"
TEST_PROMPTS = "HumanEval_for_test_case_generation.jsonl"


class ReplayFileError(ValueError):
    """A replay file that cannot be used as it is: the message names the file (and line)."""


def truncate(content: str) -> str:
    """Cut at the first of CodeT's stop strings (its `solution_extract`)."""
    for stop in STOP_TOKENS:
        if stop in content:
            content = content.split(stop)[0]
    return content


def valid_test_case(case: str) -> bool:
    """CodeT's check: an assertion that compiles inside `try: ... except: pass`."""
    if not case.strip() or "assert" not in case:
        return False
    block = "try:\n    " + case.replace("\n", "\n    ") + "\nexcept:\n    pass\n"
    try:
        compile(block, "<test case>", "exec")
    except Exception:  # noqa: BLE001 - SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        return False
    return True


def test_cases(completion: str, entry_point: str) -> list[str]:
    """All valid assertions of one test completion, in order (CodeT's `test_case_extract`)."""
    parts = [f"assert {part}".strip() for part in f"assert {completion}".split("assert ")
             if entry_point.strip() in part and part.strip()]
    return [case for case in (truncate(p).strip() for p in parts) if valid_test_case(case)]


def unit_test_program(cases: Sequence[str], class_name: str = "TestCodeT") -> str:
    """A TestCase with one method per assertion (in order), so it passes iff every assertion passes."""
    methods = []
    for i, case in enumerate(cases):
        body = case.replace("\n", "\n        ")
        methods.append(f"    def test_assertion_{i}(self):\n        {body}\n")
    return "import unittest\n\n\nclass " + class_name + "(unittest.TestCase):\n" + "\n".join(methods)


@dataclass(frozen=True)
class ParsedTest:
    """One test completion: its first valid assertions and how many valid ones it had in all."""

    cases: tuple[str, ...]
    valid_total: int

    @property
    def status(self) -> Literal["ok", "no_valid_assertion"]:
        return "ok" if self.cases else "no_valid_assertion"


def parse_test_completion(completion: str, entry_point: str, limit: int = ASSERTIONS_PER_TEST) -> ParsedTest:
    cases = test_cases(completion, entry_point)
    return ParsedTest(tuple(cases[:limit]), len(cases))


@dataclass(frozen=True)
class Assertion:
    """A distinct assertion of one problem: its text, how often it was sampled among the completions'
    first 5, and where: (test_id, position) for each occurrence."""

    text: str
    multiplicity: int
    sources: tuple[tuple[int, int], ...]


def distinct_assertions(parsed: Mapping[int, ParsedTest]) -> list[Assertion]:
    """The problem's distinct assertions in order of first appearance (test id, then position)."""
    seen: dict[str, list[tuple[int, int]]] = {}
    for test_id in sorted(parsed):
        for position, case in enumerate(parsed[test_id].cases):
            seen.setdefault(case, []).append((test_id, position))
    return [Assertion(text, len(src), tuple(src)) for text, src in seen.items()]


# --- files -----------------------------------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    """A file's content, decompressed when it ends in .xz; a corrupt archive is a ReplayFileError."""
    if not path.is_file():
        raise ReplayFileError(f"replay file not found: {path}")
    data = path.read_bytes()
    if path.suffix == ".xz":
        try:
            data = lzma.decompress(data)
        except lzma.LZMAError as exc:
            raise ReplayFileError(f"{path}: not a valid xz archive ({exc})") from exc
    return data


def logical_name(path: Path) -> str:
    """The released file's own name (`x.jsonl` for `x.jsonl.xz`)."""
    return path.name[:-3] if path.name.endswith(".xz") else path.name


def expected_sha256(path: Path) -> str | None:
    """The sha256 that `SHA256SUMS` beside the file lists for its uncompressed content, if any."""
    sums = path.parent / CHECKSUMS
    if not sums.is_file():
        return None
    for line in sums.read_text().splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].lstrip("*") == logical_name(path):
            return fields[0]
    return None


def read_jsonl(path: Path) -> tuple[list[tuple[int, dict]], str]:
    """(line number, record) for each non-blank line, and the sha256 of the uncompressed content.
    Non-UTF-8 bytes, non-JSON lines, non-object records and a checksum mismatch name the file and line."""
    data = read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    expected = expected_sha256(path)
    if expected is not None and expected != digest:
        raise ReplayFileError(f"{path}: sha256 of its content is {digest}, but {path.parent / CHECKSUMS} "
                              f"lists {expected}: the file was changed or is truncated")
    records = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ReplayFileError(f"{path}, line {number}: not UTF-8 ({exc.reason})") from exc
        except json.JSONDecodeError as exc:
            raise ReplayFileError(f"{path}, line {number}: not valid JSON ({exc.msg}, column {exc.colno})") from exc
        if not isinstance(record, dict):
            raise ReplayFileError(f"{path}, line {number}: expected a JSON object, got {type(record).__name__}")
        records.append((number, record))
    if not records:
        raise ReplayFileError(f"{path}: the file has no records")
    return records, digest


def prompt_index(path: Path) -> dict[str, str]:
    """prompt → task_id from one of CodeT's prompt files (the generated files carry only prompts)."""
    index: dict[str, str] = {}
    for number, record in read_jsonl(path)[0]:
        if not isinstance(record.get("prompt"), str) or not isinstance(record.get("task_id"), str):
            raise ReplayFileError(f"{path}, line {number}: a prompt record needs string 'prompt' and 'task_id'")
        index[record["prompt"]] = record["task_id"]
    return index


def companion(path: Path, name: str) -> Path:
    """A prompt file beside a generated file, compressed or not."""
    for candidate in (path.parent / name, path.parent / f"{name}.xz"):
        if candidate.is_file():
            return candidate
    raise ReplayFileError(f"{path}: CodeT's prompt file {name} (or {name}.xz) must lie beside it, to map its "
                          "prompts to task ids")


@dataclass(frozen=True)
class CodetFile:
    """One generated file: task_id → its samples, with the file's hash and each task's line."""

    path: Path
    samples: dict[str, list[str]]
    prompts: dict[str, str]  # task_id → the prompt the samples continue
    lines: dict[str, int]
    sha256: str


def read_generated(path: Path, kind: str, entry_points: Mapping[str, str] | None = None) -> CodetFile:
    """Read a CodeT generated file (`kind`: "solutions" or "unit_tests").

    Prompts are mapped to task ids through CodeT's prompt file beside it. A prompt no task has, a task
    given twice, a malformed record, or (with `entry_points`, the benchmark's task_id → entry point) a
    prompt that does not define its task's entry point are errors naming the file and line: CodeT's
    prompts drop the docstring examples, so they are matched by task and function, not by text."""
    prompt_file = companion(path, SOLUTION_PROMPTS if kind == "solutions" else TEST_PROMPTS)
    index = prompt_index(prompt_file)
    records, digest = read_jsonl(path)
    samples: dict[str, list[str]] = {}
    prompts: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, record in records:
        prompt, items = record.get("prompt"), record.get("samples")
        if not isinstance(prompt, str) or not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise ReplayFileError(f"{path}, line {number}: a CodeT record needs a string 'prompt' and a list of "
                                  "string 'samples'")
        task_id = index.get(prompt)
        if task_id is None:
            raise ReplayFileError(f"{path}, line {number}: its prompt is not in {prompt_file.name}")
        if task_id in samples:
            raise ReplayFileError(f"{path}, line {number}: {task_id} already appeared on line {lines[task_id]}")
        if entry_points is not None and task_id in entry_points and f"def {entry_points[task_id]}(" not in prompt:
            raise ReplayFileError(f"{path}, line {number}: the prompt of {task_id} does not define the benchmark's "
                                  f"entry point {entry_points[task_id]!r}: this file is not for this benchmark")
        samples[task_id], prompts[task_id], lines[task_id] = items, prompt, number
    return CodetFile(path, samples, prompts, lines, digest)
