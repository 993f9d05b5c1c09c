"""The authors' executors, reproduced as modes of the sandbox's child: `coderm` (the paper's: solution
and test exec'd as one program per pair, a one-shot alarm, a 2 s kill, zero-test classes pass),
`codet` (CodeT's released executor for its assertions: one program per solution, the solution then
every assertion in turn inside one `check()` function, each under its own alarm, in one shared
namespace; a program that fails as a whole, e.g. because one assertion cannot be compiled inside a
function, fails every assertion; an assertion may carry the recorder around its input call, which
records what the call returned without changing the verdict) and `srank` (SRank's executor of test
inputs: CodeT's layout, but each "test" is an input expression whose value is recorded). Their
semantics, not their safety, are the point: docs/sandbox.md.
"""

from __future__ import annotations

import builtins
import io
import os
import time
import unittest
from collections.abc import Callable

from utscale.sandbox.child import TimeLimit, _arm, _disarm, _emit, _pause, _report, _resume, run_test_program
from utscale.sandbox.codec import REACHED, RECORDER_IN, RECORDER_OUT, UNENCODABLE, Unencodable, canonical
from utscale.sandbox.modes import WorkerSettings


class _Recording:
    """The recorder of one CodeT program, for cases `OUT(IN(), call)`: which case runs (its test index),
    whether its call began (IN) and whether it sent a value (OUT). OUT sends the call's canonical value
    (or `UNENCODABLE`) and returns the value unchanged; a call that began and sent nothing (it raised or
    ran out of time) is reported as `REACHED` when its case ends. Encoding pauses the case's alarm, so
    recording never turns a verdict into a timeout."""

    def __init__(self, indexes: list[int]):
        self.indexes, self.index, self.began, self.sent = indexes, -1, False, False

    def start(self, position: int) -> None:
        self.index, self.began, self.sent = self.indexes[position], False, False

    def end(self) -> None:
        if self.began and not self.sent:
            _emit("O", self.index, REACHED)

    def begin(self) -> None:
        self.began = True

    def record(self, _: None, value: object) -> object:
        left = _pause()
        try:
            text = canonical(value)
        except Exception:  # noqa: BLE001 - Unencodable, or a value too deep or large to encode
            text = UNENCODABLE
        _emit("O", self.index, text)
        self.sent = True
        _resume(left)
        return value


class _CaseLimit:
    """CodeT's per-assertion time limit: a one-shot alarm around one case (at `position`, which the
    `recording`, when there is one, starts and ends with it)."""

    def __init__(self, seconds: float, position: int = -1, recording: _Recording | None = None):
        self.seconds, self.position, self.recording = seconds, position, recording

    def __enter__(self) -> None:
        if self.recording is not None:
            self.recording.start(self.position)
        _arm(self.seconds, repeat=False)

    def __exit__(self, *exc: object) -> None:
        _disarm()
        if self.recording is not None:
            self.recording.end()


def codet_program(solution: str, cases: list[str]) -> str:
    """The solution followed by a `check()` that runs each assertion in order under its own limit and
    records pass / fail / timeout / error: laid out as CodeT's packed program (case at 12 spaces,
    continuation lines likewise), so what fails to compile there fails here."""
    lines = [solution, "", "def __codet_check__():", "    __results__ = []"]
    for position, case in enumerate(cases):
        body = case.strip().replace("\n", "\n" + " " * 12)
        lines += ["    try:", f"        with __codet_limit__({position}):", f"            {body}",
                  "            __results__.append('pass')", "    except __codet_timeout__:",
                  "        __results__.append('timeout')", "    except AssertionError:",
                  "        __results__.append('fail')", "    except Exception:", "        __results__.append('error')"]
    lines += ["    return __results__", "", "__codet_results__ = __codet_check__()", ""]
    return "\n".join(lines)


def run_codet_program(solution: str, cases: list[str], timeout: float, indexes: list[int]) -> list[str]:
    """Each case's status under CodeT's semantics; a program that fails as a whole (does not compile,
    raises at top level or escapes a case's handler) gives every case the same failing status. `indexes`:
    the cases' test indexes, under which a recorder in a case reports."""
    recording = _Recording(indexes)
    namespace = {"__codet_limit__": lambda position: _CaseLimit(timeout, position, recording),
                 "__codet_timeout__": TimeLimit, "__builtins__": builtins,
                 RECORDER_IN: recording.begin, RECORDER_OUT: recording.record}
    try:
        exec(compile(codet_program(solution, cases), "<codet>", "exec"), namespace)
        results = namespace["__codet_results__"]
    except TimeLimit:
        return ["timeout"] * len(cases)
    except BaseException:  # noqa: BLE001 - compile error, SystemExit, anything: the program failed
        return ["error"] * len(cases)
    finally:
        _disarm()
    if not isinstance(results, list) or len(results) != len(cases):
        return ["error"] * len(cases)
    return [r if r in ("pass", "fail", "timeout", "error") else "error" for r in results]


def run_codet(solution: str, tests: list[tuple[int, str]], settings: WorkerSettings,
              snapshot: Callable[[], dict]) -> None:  # noqa: ARG001 - the runners' common signature
    """CodeT's executor: one program, every verdict at the end."""
    started = time.perf_counter()
    statuses = run_codet_program(solution, [code for _, code in tests], settings["timeout"], [i for i, _ in tests])
    seconds = round((time.perf_counter() - started) / max(len(tests), 1), 6)
    for (index, _), status in zip(tests, statuses):
        _report(index, status, 1, seconds)
    os._exit(0)


def run_srank(solution: str, tests: list[tuple[int, str]], settings: WorkerSettings,
              snapshot: Callable[[], dict]) -> None:  # noqa: ARG001 - the runners' common signature
    """SRank's executor of test inputs (`execute_with_test_inputs`): the solution, then each input
    expression evaluated in turn in the solution's namespace under its own alarm. A value is recorded
    as its canonical text (an `O` record before the verdict; the status `pass` means "returned"); an
    exception is `error`, the alarm `timeout`, a value that cannot be encoded `unencodable`. A program
    that fails as a whole (the solution does not load, a BaseException escapes) fails every input."""
    namespace: dict = {"__name__": "__utscale_solution__", "__builtins__": builtins}
    try:
        exec(compile(solution, "<solution>", "exec"), namespace)
    except BaseException:  # noqa: BLE001 - SRank's program failed as a whole
        for index, _ in tests:
            _report(index, "error", 0, 0.0)
        os._exit(0)
    for position, (index, code) in enumerate(tests):
        started = time.perf_counter()
        try:
            with _CaseLimit(settings["timeout"]):
                value = eval(compile(code.strip(), "<input>", "eval"), namespace)
            _emit("O", index, canonical(value))
            status = "pass"
        except TimeLimit:
            status = "timeout"
        except Unencodable:
            status = "unencodable"
        except Exception:  # noqa: BLE001 - the input raised: SRank records [False, None]
            status = "error"
        except BaseException:  # noqa: BLE001 - SystemExit and the like end SRank's program
            for later, _ in tests[position:]:
                _report(later, "error", 0, 0.0)
            os._exit(0)
        _report(index, status, 1, round(time.perf_counter() - started, 6))
    os._exit(0)


def run_coderm(solution: str, tests: list[tuple[int, str]], settings: WorkerSettings,
               snapshot: Callable[[], dict]) -> None:  # noqa: ARG001 - the runners' common signature
    """The paper's executor: the paper's globals; solution and test are exec'd as one program."""
    base = {"__name__": "__utscale_solution__", "__builtins__": builtins,
            "unittest": unittest, "output": io.StringIO(), "locals_dict": {}}
    for index, code in tests:
        started = time.perf_counter()
        status, run = run_test_program(solution + "\n\n" + code, dict(base), base, settings)
        _report(index, status, run, round(time.perf_counter() - started, 6))
    os._exit(0)
