"""HumanEval+ and MBPP+ from the vendored EvalPlus release files: which release a file is, its two
layouts, MBPP+'s typed inputs, and the ground-truth programs that judge with EvalPlus's rules.

The release files live in `data/evalplus/` (Apache-2.0, provenance in its README) and are checked by
sha256 on every load. A file at another path is accepted as the user's explicit choice and recorded as
`local`, with its hash; a file in `data/evalplus/` whose hash is not the release's is refused (it was
altered). Two layouts exist per release:

- *native* (EvalPlus's own, `HumanEvalPlus-v0.1.10.jsonl.gz`): base and plus inputs apart. Labels are
  computed from the inputs with EvalPlus's rule (`utscale.evalplus_check`), base and plus separately.
- *OriginFmt* (the hub's `evalplus/humanevalplus`, `evalplus/mbppplus`): one assertion program holding
  base and plus inputs together. It gives the same `correct` label; `correct_base` is not separable
  from it and is left empty, never guessed. Its HumanEval/32 test is broken (evalplus#253) and is
  replaced by EvalPlus's own oracle for that problem (docs/benchmarks.md).
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utscale.paths import project_root

DATA_DIR = "data/evalplus"


@dataclass(frozen=True)
class Release:
    """One published EvalPlus file: what it is and the sha256 of its bytes as distributed (.jsonl.gz)."""

    benchmark: str  # humaneval_plus | mbpp_plus
    version: str
    layout: str  # native | originfmt
    file: str  # name in data/evalplus/
    sha256: str
    problems: int


RELEASES: tuple[Release, ...] = (
    Release("humaneval_plus", "v0.1.10", "native", "HumanEvalPlus-v0.1.10.jsonl.gz",
            "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101", 164),
    Release("humaneval_plus", "v0.1.10", "originfmt", "HumanEvalPlus-OriginFmt-v0.1.10.jsonl.gz",
            "daa7661c8189924068069b0872a440b491edb60f8bdf431d5957adc88d18bae5", 164),
    Release("humaneval_plus", "v0.1.9", "native", "HumanEvalPlus-v0.1.9.jsonl.gz",
            "e62f4130146963d969da64553f407a66e52d095adbfed4ee6733b4d59e14a3ed", 164),
    Release("mbpp_plus", "v0.2.0", "native", "MbppPlus-v0.2.0.jsonl.gz",
            "af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63", 378),
    Release("mbpp_plus", "v0.2.0", "originfmt", "MbppPlus-OriginFmt-v0.2.0.jsonl.gz",
            "7a5aec547b134fa297ee6c45f829298aa3f58de02547b8d8a5c3d85d9cb10efc", 378),
    Release("mbpp_plus", "v0.1.0", "native", "MbppPlus-v0.1.0.jsonl.gz",
            "57d639e77667d88930052b2b07212011c25c0bab94dfc1f19d15e1f7f558bfa9", 399),
)
# the default of each benchmark: the releases the paper used (HumanEval+ v0.1.10 most likely; MBPP+ v0.2.0)
DEFAULTS = {"humaneval_plus": "HumanEvalPlus-v0.1.10.jsonl.gz", "mbpp_plus": "MbppPlus-v0.2.0.jsonl.gz"}


class ReleaseMismatch(ValueError):
    """A vendored file whose bytes are not the release's, or a file given for the wrong benchmark."""


def vendored_path(name: str) -> Path:
    return project_root() / DATA_DIR / name


def default_file(benchmark: str) -> Path:
    return vendored_path(DEFAULTS[benchmark])


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def identify(path: Path, benchmark: str) -> dict[str, Any]:
    """What the manifest records about a benchmark file: its release (version, layout) when its sha256
    is a known release's, else `local` with the hash. A vendored file that is not its release is refused,
    and so is a known release of the other benchmark."""
    digest = sha256_of(path)
    known = {r.sha256: r for r in RELEASES}
    in_data = path.resolve().parent == (project_root() / DATA_DIR).resolve()
    if digest in known:
        release = known[digest]
        if release.benchmark != benchmark:
            raise ReleaseMismatch(f"{path} is {release.benchmark} {release.version}, not {benchmark}: "
                                  f"set BENCHMARK {release.benchmark} or pass a {benchmark} file")
        return {"release": release.version, "layout": release.layout, "file": release.file, "sha256": digest,
                "verified": True}
    if in_data and any(r.file == path.name for r in RELEASES):
        raise ReleaseMismatch(f"{path} does not match its release's sha256 (found {digest[:16]}…): the vendored "
                              "file was altered; restore it with `git checkout -- data/evalplus`")
    return {"release": "local", "layout": "", "file": str(path), "sha256": digest, "verified": False}


def layout_of(row: Mapping[str, Any]) -> str:
    """native (base_input and plus_input apart) or originfmt (the hub's one assertion program)."""
    if "base_input" in row and "plus_input" in row:
        return "native"
    if "test" in row and ("test_list" in row or "canonical_solution" in row):
        return "originfmt"
    return "unknown"


# --- MBPP+ inputs: JSON has no tuples, sets or complex numbers; EvalPlus restores them per task -------

def _tuples(items: Iterable[Any]) -> list[tuple]:
    return [tuple(item) for item in items]


def _all_tuples(value: Any) -> Any:
    return tuple(_all_tuples(v) for v in value) if isinstance(value, list) else value


def mbpp_deserialize_inputs(task_id: str, inputs: list) -> list:
    """EvalPlus 0.3.1's `evalplus.data.mbpp.mbpp_deserialize_inputs`, rule for rule (Apache-2.0): the
    Python types of MBPP+ inputs that JSON flattened to lists and strings. Tested equal to EvalPlus's own
    on every MBPP+ task (tests/test_evalplus_oracle.py)."""
    task = int(task_id.split("/")[-1])
    if task in (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726,
                740, 744, 809):
        return [_tuples(inp) for inp in inputs]
    if task in (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780):
        return [[_tuples(lst_lst) for lst_lst in inp] for inp in inputs]
    if task in (75, 413, 444, 753):
        return [[_tuples(inp[0])] + [inp[1]] for inp in inputs]
    if task in (106, 750):
        return [[inp[0]] + [tuple(inp[1])] for inp in inputs]
    if task == 115:
        return [[[set(item) if isinstance(item, list) and len(item) else {} for item in inp[0]]] for inp in inputs]
    if task == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if task in (250, 405, 446, 617, 720, 763, 808):
        return [[tuple(inp[0])] + [inp[1]] for inp in inputs]
    if task in (259, 401, 445):
        return [_tuples([_tuples(lst_lst) for lst_lst in inp]) for inp in inputs]
    if task == 278:
        return [_tuples([[tuple(item) if isinstance(item, list) else item for item in inp[0]]]) for inp in inputs]
    if task == 307:
        return [[tuple(inp[0])] + [inp[1], inp[2]] for inp in inputs]
    if task == 722:
        return [[{key: tuple(value) for key, value in inp[0].items()}] + inp[1:] for inp in inputs]
    if task == 252:
        return [[complex(inp[0])] for inp in inputs]
    if task in (580, 615, 791):
        return [_all_tuples(inp) for inp in inputs]
    return inputs


# --- ground-truth programs ----------------------------------------------------------------------------

def literal(value: Any) -> str:
    """Python source that evaluates to `value` (nested built-in data; inf and nan by name, defined in the
    program's preamble), so inputs are embedded exactly, floats to the last bit."""
    if isinstance(value, float):
        if math.isnan(value):
            return "_evalplus_nan"
        if math.isinf(value):
            return "_evalplus_inf" if value > 0 else "-_evalplus_inf"
        return repr(value)
    if isinstance(value, complex):
        return f"complex({literal(value.real)}, {literal(value.imag)})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(literal(v) + ", " for v in value) + ")"
    if isinstance(value, set):
        return "{" + ", ".join(literal(v) for v in value) + "}" if value else "set()"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return repr(value)
    raise TypeError(f"cannot embed a {type(value).__name__} in a ground-truth program")


def checker_source() -> str:
    """The source of `utscale.evalplus_check`, embedded at the top of every program."""
    return (Path(__file__).parent / "evalplus_check.py").read_text(encoding="utf-8")


def ground_truth(dataset: str, entry_point: str, reference: str, atol: float,
                 splits: Mapping[str, list]) -> str:
    """A unittest program with one test method per split (`test_base`, `test_plus`): input by input, each
    runs the reference (its output is the expected one, its time sets the input's limit), then calls the
    solution's entry point on a deep copy and applies EvalPlus's comparison and time limit. It passes
    iff every split passes; with only `base`, it is the base label. The reference runs where the test
    runs (the sandbox's judge in `isolated` mode), never in the solution's process."""
    output_not_none = dataset == "mbpp" and entry_point in ("check_str", "text_match_three", "text_starta_endb")
    lines = [checker_source(), "", "import unittest", "",
             "_evalplus_inf = float('inf')", "_evalplus_nan = float('nan')",
             f"_evalplus_reference = {reference!r}"]
    methods = []
    for split, inputs in splits.items():
        lines.append(f"_evalplus_{split}_inputs = {literal(inputs)}")
        methods.append(
            f"    def test_{split}(self):\n"
            f"        oracle = _evalplus_oracle(_evalplus_reference, {entry_point!r}, {output_not_none!r})\n"
            f"        _evalplus_check({dataset!r}, {entry_point!r}, globals()[{entry_point!r}], _evalplus_{split}_inputs, "
            f"oracle, {atol!r})\n")
    lines += ["", "", "class EvalPlusGroundTruth(unittest.TestCase):", *methods]
    return "\n".join(lines) + "\n"


def native_splits(row: Mapping[str, Any], benchmark: str) -> dict[str, list]:
    """The base and plus inputs of a native row, typed as EvalPlus types them."""
    splits = {"base": row["base_input"], "plus": row["plus_input"]}
    if benchmark == "mbpp_plus":
        splits = {k: mbpp_deserialize_inputs(row["task_id"], v) for k, v in splits.items()}
    return {k: copy.deepcopy(v) for k, v in splits.items()}


HUMANEVAL_32_BROKEN = "assert _poly(*candidate(*inp), inp) <= 0.0001"
HUMANEVAL_32_FIXED = "assert abs(_poly(*inp, candidate(*inp))) <= 0.0001"


def fix_originfmt_test(task_id: str, test: str) -> str:
    """The OriginFmt test of HumanEval/32 calls `_poly(*candidate(*inp), inp)`: it unpacks the root (a
    float, so a TypeError for every solution) and passes the input as x. EvalPlus's own oracle for the
    problem is `abs(_poly(*inp, out)) <= atol` (atol 1e-4): the fix. Any other test is returned as is."""
    if task_id != "HumanEval/32":
        return test
    if HUMANEVAL_32_BROKEN not in test:
        raise ReleaseMismatch("HumanEval/32's OriginFmt test is not the release's: cannot apply the evalplus#253 fix")
    return test.replace(HUMANEVAL_32_BROKEN, HUMANEVAL_32_FIXED)
