"""The sandbox worker: a small, warm process that forks one hardened child per job and streams verdicts.

Started once per core by the driver (`utscale.sandbox.executor`), never forked from a notebook kernel.
It reads jobs (one solution and its unit-test programs) as JSON lines on stdin and writes one JSON line
per (solution, test) verdict on stdout, then `{"job": ..., "done": true}`. Per job it forks a child
(`child.harden`, then the mode's runner: `child.run_fast`, `judge.run_isolated` or one of
`reference_modes`), reads the child's nonce-stamped records, resets a deadline on each, and on a hang
kills the child's process group, marks that test, and resumes the remaining tests in a fresh child.
What differs between modes is read from `modes.MODE_RULES`.

This module imports only the standard library and the sandbox's stdlib-only modules: the children it
forks share its address space with untrusted code.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import time
from collections.abc import Callable

from utscale.sandbox import child, codec, judge, reference_modes
from utscale.sandbox.child import NONCE_BYTES, PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, _libc, _use_clock, harden
from utscale.sandbox.modes import WorkerSettings, read_worker_settings, rules, wall_budget
from utscale.sandbox.statuses import STATUSES

# Modules solutions and tests commonly import, loaded once so each child starts warm. Not unittest.mock:
# it pulls in asyncio, which makes every per-test fork 0.7 ms slower, and 1 test in 80 of the committed
# runs imports it (that test pays the import in its fork instead).
PRELOAD = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
           "random", "statistics", "fractions", "decimal", "copy", "operator", "datetime", "json", "hashlib",
           "dataclasses", "enum", "array", "cmath", "numbers", "textwrap", "difflib")

OUTPUT_LIMIT = 2 * codec.OUTPUT_BOUND  # characters of a recorded value a child can send (canonical ones are shorter)
FLUSH_EVERY = 0.02  # seconds between flushes of verdicts to the driver
# what the hardened child runs, by `ModeRules.child`; each ends the child itself
CHILDREN: dict[str, Callable[..., None]] = {"fast": child.run_fast, "judge": judge.run_isolated,
                                           "codet": reference_modes.run_codet, "coderm": reference_modes.run_coderm,
                                           "srank": reference_modes.run_srank}


def child_main(solution: str, tests: list[tuple[int, str]], settings: WorkerSettings) -> None:
    """Runs in the forked child, hardened by `run_child`: the mode's runner, which reports and exits."""
    _use_clock(settings)
    CHILDREN[rules(settings).child](solution, tests, settings, VERDICT_SNAPSHOT)
    os._exit(0)


def _clear(directory: str) -> None:
    """Remove what children left in the scratch root (outside a private /tmp they share the host's)."""
    for entry in os.listdir(directory):
        shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)


def _kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _reap_orphans(wait: float = 2.0) -> None:
    """Wait (up to `wait` seconds) for the job's killed processes that outlived their parents (isolated
    mode's loader and servers): the worker is their subreaper. Left to an init that does not reap,
    their zombies would count against the sandbox uid's process limit and make later jobs' forks fail."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children left
        if pid == 0:
            time.sleep(0.0005)


def _reap_uid(uid: int) -> None:
    """Kill every process still running as the sandbox uid (escapees that left the process group):
    kill(-1) from a process with that uid reaches exactly the processes of that uid."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _new_nonce() -> int:
    """A memfd holding NONCE_BYTES random bytes, copied by the kernel from /dev/urandom: the nonce never
    passes through this process's Python objects before the child is forked (nor after, in the child)."""
    fd = os.memfd_create("utscale-job")
    source = os.open("/dev/urandom", os.O_RDONLY)
    try:
        copied = os.sendfile(fd, source, None, NONCE_BYTES)
    except OSError:  # a kernel that cannot splice from /dev/urandom: the bytes are freed before the fork
        copied = os.write(fd, os.urandom(NONCE_BYTES))
    finally:
        os.close(source)
    if copied != NONCE_BYTES:
        raise OSError("could not write the job's nonce")
    return fd


def run_child(solution: str, tests: list[tuple[int, str]], settings: WorkerSettings, uid: int, on_result):
    """Fork one child for these tests, calling on_result(index, status, tests_run, seconds, output) as each
    verdict arrives (output: what the test recorded, in `srank` mode or by `codet` mode's recorder, else
    None). Returns (reported indices, solution_status, failure, ready, seconds): failure is None,
    "timeout" (the deadline passed) or "crash" (the child vanished); ready says the solution loaded;
    seconds are those since the child's last record (since its start if none came): the time of the
    test it left unfinished, not of the tests it finished before that one."""
    read_fd, write_fd = os.pipe()
    nonce_fd = _new_nonce()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            harden(settings, write_fd, nonce_fd, uid, len(tests))
            child_main(solution, tests, settings)
        finally:
            os._exit(70)
    os.close(write_fd)
    nonce = os.pread(nonce_fd, NONCE_BYTES, 0).hex()  # read only now: the child's copy of memory lacks it
    os.close(nonce_fd)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    wanted = {index for index, _ in tests}
    results: set[int] = set()
    pending: dict[int, tuple[str, int, float]] = {}
    outputs: dict[int, str] = {}
    solution_status, failure, ready, buffer = None, None, False, b""
    budget, mode = wall_budget(settings), rules(settings)
    deadline = time.monotonic() + budget + (settings["timeout"] if mode.deadline == "per_test_and_load" else 0.0)
    if mode.deadline == "whole_program":  # CodeT's whole-program budget: the per-case limit times the cases
        deadline = time.monotonic() + settings["timeout"] * len(tests) + 0.1 + settings["grace"]
    last = time.monotonic()  # the child's start, then its last record
    while results != wanted and solution_status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failure = "timeout"
            break
        readable, _, _ = select.select([read_fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            failure = "crash"
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            fields = raw.decode(errors="replace").split("\t")
            if len(fields) < 2 or fields[0] != nonce:
                continue  # not from our child code
            last = time.monotonic()
            if mode.deadline != "whole_program":  # a whole program's budget is not renewed by its records
                deadline = last + budget
            try:
                if fields[1] == "S":
                    solution_status = fields[2] if fields[2] in STATUSES else "crash"
                elif fields[1] == "R":
                    ready = True
                elif fields[1] == "V" and len(fields) == 6:  # a verdict, counted at its test's end (`_report`)
                    pending[int(fields[2])] = (fields[3] if fields[3] in STATUSES else "crash", int(fields[4]),
                                               float(fields[5]))
                elif fields[1] == "O" and len(fields) == 4:  # a recorded value, before its verdict
                    outputs[int(fields[2])] = fields[3][:OUTPUT_LIMIT]
                elif fields[1] == "E" and len(fields) == 4:
                    index = int(fields[2])
                    if index not in wanted or index in results:
                        continue
                    status, run, seconds = pending.pop(index, ("crash", 0, float(fields[3])))
                    results.add(index)
                    output = outputs.pop(index, None)
                    on_result(index, status, run, seconds, output)
            except (ValueError, IndexError):
                continue  # a malformed record (only code that read the nonce can write one) counts for nothing
    unfinished_s = time.monotonic() - last
    _kill_group(pid)
    os.close(read_fd)
    if os.geteuid() == 0 and settings["drop_privileges"] and uid > 0 and (settings["max_processes"] > 1
                                                                          or mode.extra_processes):
        _reap_uid(uid)  # with one process slot (strict, coderm, codet) the uid cannot fork: nothing escaped
    _reap_orphans()
    _clear(settings["scratch_root"])
    return results, solution_status, failure, ready, unfinished_s


def run_job(job: dict, settings: WorkerSettings, uid: int, emit) -> None:
    """Emit one verdict per test of the job as soon as it is known, resuming in a fresh child after a
    hang or crash, so a worker that dies mid-job has already reported every finished test."""
    tests = [(i, t["code"]) for i, t in enumerate(job["tests"])]
    ids = [t["id"] for t in job["tests"]]
    if job.get("timeout"):  # a per-problem limit (calibrated on the reference solution) replaces the pool's
        settings = {**settings, "timeout": float(job["timeout"])}

    def verdict(index: int, status: str, run: int, seconds: float, output: str | None = None) -> None:
        record = {"test": ids[index], "status": status, "tests_run": run, "duration_s": round(seconds, 6)}
        emit(record if output is None else {**record, "output": output})

    mode = rules(settings)
    per_child = len(tests) if mode.tests_per_child == "all" else 1
    pending = tests
    while pending:
        batch, pending = pending[:per_child], pending[per_child:]
        results, solution_status, failure, ready, elapsed = run_child(job["solution"], batch, settings, uid, verdict)
        if mode.deadline == "whole_program" and failure is not None:  # CodeT: the whole program timed out or died
            # in order: the first unreported test is the one it was running; the rest never started
            for n, index in enumerate(index for index, _ in batch if index not in results):
                verdict(index, failure, 0, 0.0 if n else elapsed)
            return
        if solution_status is not None or (failure == "timeout" and not ready and mode.reports_loading):
            # the solution itself fails or hangs while loading: every remaining test fails the same way
            for index, _ in batch + pending:
                if index not in results:
                    verdict(index, solution_status or "timeout", 0, 0.0 if solution_status else elapsed)
            return
        missing = [item for item in batch if item[0] not in results]
        if missing:
            verdict(missing[0][0], failure or "crash", 0, elapsed)
            pending = missing[1:] + pending


# bound once every sandbox module has loaded, before any job (`child.snapshot_over`)
VERDICT_SNAPSHOT = child.snapshot_over(child.AFTER_LOADING, (child, judge, reference_modes, sys.modules[__name__]))


def _pin(index: int) -> None:
    try:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) > 1:
            os.sched_setaffinity(0, {cores[index % len(cores)]})
    except (AttributeError, OSError):
        pass


def main() -> int:
    settings = read_worker_settings(sys.argv[1])
    uid = settings["uid"]
    if settings["pin"]:
        _pin(settings["index"])
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # not dumpable: code running as this user (no root, no separate sandbox uid) cannot open this
    # process's /proc files, its verdict pipe to the driver above all
    _libc.prctl(PR_SET_DUMPABLE, 0)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    os.makedirs(settings["scratch_root"], exist_ok=True)
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        last_flush = time.monotonic()

        def emit(record: dict, key: str = job["job"]) -> None:
            # flushed at most every FLUSH_EVERY seconds: progress streams, the driver is not woken per
            # verdict (a worker killed before flushing has its unreported tests rerun one by one)
            nonlocal last_flush
            out.write(json.dumps({**record, "job": key}) + "\n")
            if time.monotonic() - last_flush > FLUSH_EVERY:
                out.flush()
                last_flush = time.monotonic()

        run_job(job, settings, uid, emit)
        out.write(json.dumps({"job": job["job"], "done": True}) + "\n")
        out.flush()
    shutil.rmtree(settings["scratch_root"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
