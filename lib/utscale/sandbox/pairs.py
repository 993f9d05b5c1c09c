"""Pairs in, verdicts out: deduplicate identical solutions and tests, run each unique pair once."""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from utscale.extract import MAX_PARSED_CHARS
from utscale.sandbox.executor import Executor, Job
from utscale.sandbox.statuses import Status


@dataclass(frozen=True)
class Pair:
    id: str
    solution: str
    test: str
    timeout: float | None = None  # a per-problem limit (None: the executor's)


@dataclass(frozen=True)
class PairVerdict:
    id: str
    passed: bool
    status: Status
    tests_run: int
    duration_s: float
    output: str | None = None  # what the test recorded (`srank` mode), else None


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def solution_key(code: str) -> str:
    """Solutions that differ only in formatting or comments share a key (same AST); unparsable code, and
    code over MAX_PARSED_CHARS (not parsed: its AST would take hundreds of times its size), is keyed by its
    text, so it still runs (and fails) once."""
    if len(code) > MAX_PARSED_CHARS:
        return text_key("raw:" + code)
    try:
        normal = ast.dump(ast.parse(code))
    except Exception:  # noqa: BLE001 - SyntaxError, ValueError, RecursionError, MemoryError: model output is untrusted
        normal = "raw:" + code
    return text_key(normal)


@dataclass(frozen=True)
class Plan:
    jobs: list[Job]
    fan_out: dict[tuple[str, str], list[str]]  # (job key, test key) → the pair ids it stands for

    @property
    def unique_pairs(self) -> int:
        return len(self.fan_out)


def plan_jobs(pairs: Iterable[Pair]) -> Plan:
    """One job per unique solution (and time limit) with its unique tests, and the fan-out back to pair ids."""
    solutions: dict[str, str] = {}
    tests: dict[str, dict[str, str]] = {}
    fan_out: dict[tuple[str, str], list[str]] = {}
    keys: dict[str, str] = {}  # parse each distinct solution text once, not once per pair
    limits: dict[str, float | None] = {}
    for pair in pairs:
        s_key = keys.get(pair.solution)
        if s_key is None:
            s_key = keys[pair.solution] = solution_key(pair.solution)
        t_key = text_key(pair.test)
        j_key = s_key if pair.timeout is None else f"{s_key}@{pair.timeout!r}"  # one limit per job
        solutions.setdefault(j_key, pair.solution)
        limits[j_key] = pair.timeout
        tests.setdefault(j_key, {}).setdefault(t_key, pair.test)
        fan_out.setdefault((j_key, t_key), []).append(pair.id)
    jobs = [Job(key, solutions[key], list(tests[key].items()), limits[key]) for key in solutions]
    return Plan(jobs, fan_out)


def run_plan(plan: Plan, executor: Executor) -> Iterator[PairVerdict]:
    """Verdicts for every pair of a plan, streamed as they arrive (each unique pair executed once)."""
    for verdict in executor.run(plan.jobs):
        for pair_id in plan.fan_out[(verdict.job, verdict.test)]:
            yield PairVerdict(pair_id, verdict.passed, verdict.status, verdict.tests_run, verdict.duration_s,
                              verdict.output)


def run_pairs(pairs: Iterable[Pair], executor: Executor) -> Iterator[PairVerdict]:
    return run_plan(plan_jobs(pairs), executor)
