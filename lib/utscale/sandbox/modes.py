"""The executor modes in one table, and the settings that cross from the driver to a worker.

Every difference between modes is a field of `ModeRules` here: the driver (`executor`), the worker
(`worker`), the child that loads untrusted code (`child`), the isolated judge (`judge`) and the authors'
reference executors (`reference_modes`) read these fields and never test a mode's name. What each mode
guarantees is documented in docs/sandbox.md. Standard library only: a worker imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, TypedDict, cast, get_args

Mode = Literal["fast", "isolated", "strict", "coderm", "codet", "srank"]


@dataclass(frozen=True)
class ModeRules:
    """How one mode executes a job."""

    guarantee: str  # what a verdict of this mode can be trusted for (one line; docs/sandbox.md has the rest)
    child: Literal["fast", "judge", "codet", "coderm", "srank"]  # what the hardened child runs (`worker.CHILDREN`)
    tests_per_child: Literal["all", "one"]  # one child per job, or one per test program
    authors_clock: bool  # limits count wall time whatever the settings say (the authors' executors did)
    repeat_alarm: bool  # the alarm repeats until the test ends (else one shot: the paper's executor)
    empty_class_passes: bool  # a test class that runs no test passes (the paper's executor) or is `invalid`
    reports_loading: bool  # the child reports the solution loaded before any test (so a hang while loading
    # fails every test at once)
    deadline: Literal["per_test_and_load", "per_test", "whole_program"]  # the worker's wall deadline: each
    # test's budget (plus the loading's), each test's alone, or the per-case limit times the cases (CodeT)
    extra_processes: int  # processes of the sandbox uid a job needs beyond the code's own
    forks_helpers_unprivileged: bool  # without root the child forks helpers (loader, servers) of its own
    # uid, so no absolute process limit can be set; they limit themselves (`isolated.cap_new_processes`)
    grace: float | None  # seconds before the hard kill, fixed by the mode (None: the settings')
    rechecks_timeouts: bool  # a wall-clock timeout is rerun alone on an idle pool before it is final


MODE_RULES: dict[Mode, ModeRules] = {
    "fast": ModeRules(
        guarantee="test order and leaked state decide nothing; a solution written against the harness can forge",
        child="fast", tests_per_child="all", authors_clock=False, repeat_alarm=True, empty_class_passes=False,
        reports_loading=True, deadline="per_test_and_load", extra_processes=1, forks_helpers_unprivileged=False,
        grace=None, rechecks_timeouts=True),
    "isolated": ModeRules(
        guarantee="the solution never shares a process with the test or the verdict: nothing it does forges a pass",
        child="judge", tests_per_child="all", authors_clock=False, repeat_alarm=True, empty_class_passes=False,
        reports_loading=True, deadline="per_test_and_load", extra_processes=3, forks_helpers_unprivileged=True,
        grace=None, rechecks_timeouts=True),
    "strict": ModeRules(
        guarantee="a fresh child per test: fast mode's verdicts from a cold start",
        child="fast", tests_per_child="one", authors_clock=False, repeat_alarm=True, empty_class_passes=False,
        reports_loading=True, deadline="per_test_and_load", extra_processes=0, forks_helpers_unprivileged=False,
        grace=None, rechecks_timeouts=True),
    "coderm": ModeRules(
        guarantee="the paper's executor: one process per pair, a one-shot alarm, a 2 s kill, empty classes pass",
        child="coderm", tests_per_child="one", authors_clock=True, repeat_alarm=False, empty_class_passes=True,
        reports_loading=False, deadline="per_test", extra_processes=0, forks_helpers_unprivileged=False,
        grace=1.0, rechecks_timeouts=False),
    "codet": ModeRules(
        guarantee="CodeT's executor: every assertion in one program, each under its own alarm",
        child="codet", tests_per_child="all", authors_clock=True, repeat_alarm=False, empty_class_passes=False,
        reports_loading=False, deadline="whole_program", extra_processes=0, forks_helpers_unprivileged=False,
        grace=None, rechecks_timeouts=False),
    "srank": ModeRules(
        guarantee="SRank's executor of test inputs: every input in one program, each under its own alarm, its value recorded",
        child="srank", tests_per_child="all", authors_clock=True, repeat_alarm=False, empty_class_passes=False,
        reports_loading=False, deadline="whole_program", extra_processes=0, forks_helpers_unprivileged=False,
        grace=None, rechecks_timeouts=False),
}
MODES: tuple[Mode, ...] = get_args(Mode)
assert MODES == tuple(MODE_RULES), "every mode has its rules"


class WorkerSettings(TypedDict):
    """What a worker is started with (one JSON argument): the driver's `SandboxSettings` fields, and
    where and as whom this worker runs."""

    timeout: float
    mode: Mode
    clock: Literal["cpu", "wall"]
    wall_factor: float
    recheck_timeouts: bool
    grace: float
    memory_mb: int
    max_processes: int
    jail: Literal["auto", "bwrap", "none"]
    isolate: bool
    pin: bool
    uid_base: int
    drop_privileges: bool
    index: int  # the worker's number (its core when pinned)
    scratch_root: str  # where its children's scratch folders live
    uid: int  # the uid untrusted code runs as (when root)
    private_tmp: list[str]  # folders a child as root without bubblewrap gets its own tmpfs over


def read_worker_settings(text: str) -> WorkerSettings:
    """The settings a worker was started with, checked key by key: a driver and a worker from different
    versions fail here, not in the middle of a job."""
    settings = json.loads(text)
    fields = WorkerSettings.__annotations__
    if not isinstance(settings, dict) or set(settings) != set(fields):
        got = set(settings) if isinstance(settings, dict) else set()
        raise ValueError(f"worker settings: expected the keys {sorted(fields)}, "
                         f"missing {sorted(set(fields) - got)}, unexpected {sorted(got - set(fields))}")
    numbers = ("timeout", "wall_factor", "grace")
    for key in numbers:
        if not isinstance(settings[key], (int, float)) or isinstance(settings[key], bool):
            raise ValueError(f"worker settings: {key} must be a number, got {settings[key]!r}")
    for key in ("memory_mb", "max_processes", "uid_base", "index", "uid"):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool):
            raise ValueError(f"worker settings: {key} must be an integer, got {settings[key]!r}")
    if settings["mode"] not in MODE_RULES:
        raise ValueError(f"worker settings: mode must be one of {MODES}, got {settings['mode']!r}")
    return cast(WorkerSettings, settings)  # every key and type checked above


def rules(settings: WorkerSettings) -> ModeRules:
    return MODE_RULES[settings["mode"]]


def effective_clock(mode: Mode, clock: str) -> str:
    """The clock a mode's time limits count: the paper's and CodeT's executors keep their wall clock."""
    return "wall" if MODE_RULES[mode].authors_clock else clock


def clock_of(settings: WorkerSettings) -> str:
    return effective_clock(settings["mode"], settings["clock"])


def wall_budget(settings: WorkerSettings) -> float:
    """Seconds of wall clock a test may take before the worker kills it: its limit, times `wall_factor`
    under the cpu clock (a test that gets a third of a core still finishes), plus the grace."""
    factor = settings["wall_factor"] if clock_of(settings) == "cpu" else 1.0
    return settings["timeout"] * factor + settings["grace"]
