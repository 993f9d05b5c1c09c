"""The sandbox worker: a small, warm process that forks one hardened child per job and streams verdicts.

Started once per core by the driver (`utscale.sandbox.executor`), never forked from a notebook kernel.
It reads jobs (one solution and its unit-test programs) as JSON lines on stdin and writes one JSON line
per (solution, test) verdict on stdout, then `{"job": ..., "done": true}`.

Per job, in the default `fast` mode (design (e) of the research notes): one child execs the solution
once, then runs every test program in a fork of itself (a fresh copy of the loaded solution's whole
state) under a repeating alarm, writing a line per test; a test that changed unittest's classes is
`tampered`. The worker resets a deadline on each line; on a hang it kills the child's
process group, marks that test, and resumes the remaining tests in a fresh child. `strict` forks one
child per test; `coderm` reproduces the paper's executor (one child per pair, one-shot alarm, a 2 s
kill, zero-test classes pass); `codet` reproduces CodeT's released executor for its assertions (one
program per solution: the solution, then every assertion in turn inside one `check()` function, each
under its own alarm, in one shared namespace; a program that fails as a whole, e.g. because one
assertion cannot be compiled inside a function, fails every assertion).

This module imports only the standard library: it is what untrusted code shares an address space with.
"""

from __future__ import annotations

import builtins
import ctypes
import functools
import io
import json
import os
import resource
import secrets
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest
from collections.abc import Callable
from typing import Literal, get_args

from utscale.sandbox import isolated

# Modules solutions and tests commonly import, loaded once so each child starts warm. Not unittest.mock:
# it pulls in asyncio, which makes every per-test fork 0.7 ms slower, and 1 test in 80 of the committed
# runs imports it (that test pays the import in its fork instead).
PRELOAD = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
           "random", "statistics", "fractions", "decimal", "copy", "operator", "datetime", "json", "hashlib",
           "dataclasses", "enum", "array", "cmath", "numbers", "textwrap", "difflib")

EXTRA_PROCESSES = {"fast": 1, "isolated": 3}  # processes of the sandbox uid a job needs beyond the code's own
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
ALARM_INTERVAL = isolated.ALARM_INTERVAL  # seconds between repeated alarms once the limit is hit
FLUSH_EVERY = 0.02  # seconds between flushes of verdicts to the driver

_libc = ctypes.CDLL(None, use_errno=True)


class TimeLimit(Exception):
    """Raised by the alarm inside untrusted code. An Exception (not BaseException) on purpose: unittest
    then records it as an error of the running test method, and the repeating alarm ends the rest."""


_alarm_armed = False
_timed_out = False
_running_result: unittest.TestResult | None = None
_timer = signal.ITIMER_REAL  # ITIMER_PROF under the `cpu` clock: the limit counts this process's CPU time


def _on_alarm(signum, frame):  # noqa: ARG001
    global _timed_out
    if _alarm_armed:
        _timed_out = True
        if _running_result is not None:
            _running_result.stop()  # the class is over its limit: its verdict is timeout, run no more methods
        raise TimeLimit("time limit exceeded")


def _arm(seconds: float, repeat: bool, timer: int | None = None) -> None:
    """Raise TimeLimit after `seconds` on the settings' clock (or on `timer`), repeatedly if `repeat`."""
    global _alarm_armed, _timed_out
    _timed_out = False
    _alarm_armed = True
    signal.setitimer(_timer if timer is None else timer, seconds, ALARM_INTERVAL if repeat else 0.0)


def _disarm(timer: int | None = None) -> None:
    global _alarm_armed
    _alarm_armed = False
    signal.setitimer(_timer if timer is None else timer, 0.0)


def clock_of(settings: dict) -> str:
    """The clock a mode's time limits count: the paper's and CodeT's executors keep their wall clock."""
    return "wall" if settings["mode"] in ("coderm", "codet") else settings["clock"]


def _use_clock(settings: dict) -> None:
    """Time limits on the settings' clock: `cpu` counts this process's CPU time (ITIMER_PROF), so a slow or
    busy machine does not turn a slow pass into a timeout; the worker's wall-clock deadline stays a backstop
    against code that waits without computing."""
    global _timer
    _timer = signal.ITIMER_PROF if clock_of(settings) == "cpu" else signal.ITIMER_REAL
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGPROF, _on_alarm)


def wall_budget(settings: dict) -> float:
    """Seconds of wall clock a test may take before the worker kills it: its limit, times `wall_factor`
    under the cpu clock (a test that gets a third of a core still finishes), plus the grace."""
    factor = settings["wall_factor"] if clock_of(settings) == "cpu" else 1.0
    return settings["timeout"] * factor + settings["grace"]


def _mount_private(roots: list[str]) -> None:
    """In a fresh mount namespace: private propagation, a /proc of its own that hides every process of
    another user (`hidepid=invisible`: the driver, the worker, other jobs), and a tmpfs over each of
    `roots` (/tmp, /var/tmp, /dev/shm, less one that holds the interpreter's code), so what one solution
    writes there no other can read."""
    _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
    _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, b"hidepid=invisible")
    for target in roots:
        if os.path.isdir(target):
            _libc.mount(b"tmpfs", target.encode(), b"tmpfs", 0, b"size=64m,mode=1777")


def harden(settings: dict, keep_fd: int, uid: int, n_tests: int) -> str:
    """Everything a child does before touching untrusted code; returns its scratch directory."""
    os.setpgid(0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, 1 << 16)
    is_root = os.geteuid() == 0
    if is_root and settings["isolate"]:
        # own network (nothing reachable, not even loopback) and own /tmp; ~1 ms, once per child
        if _libc.unshare(CLONE_NEWNET | CLONE_NEWNS) == 0:
            _mount_private(settings["private_tmp"])
    os.makedirs(settings["scratch_root"], exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="job-", dir=settings["scratch_root"])
    memory = settings["memory_mb"] * 2**20
    limits = {
        resource.RLIMIT_AS: memory,
        resource.RLIMIT_DATA: memory,
        # a backstop only (the alarm and the worker's deadline come first): every test may use its limit
        resource.RLIMIT_CPU: int(settings["timeout"] * (n_tests + 1) * 2) + 2,
        resource.RLIMIT_FSIZE: 16 * 2**20,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: 64,
        # fast mode forks one process per test from the loaded solution (which itself cannot fork again);
        # isolated mode has the judge, its fork per test, the loader and the test's server
        resource.RLIMIT_NPROC: settings["max_processes"] + EXTRA_PROCESSES.get(settings["mode"], 0),
    }
    if settings["mode"] == "isolated" and not is_root:
        # an absolute limit low enough to stop the solution forking would stop the judge forking its
        # loader too; the loader and each server set limits relative to what is alive instead
        # (`isolated.cap_new_processes`, where the count is the sandbox's own: bubblewrap as a user)
        del limits[resource.RLIMIT_NPROC]
    for which, value in limits.items():
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass  # a limit above the hard limit we inherited: keep the inherited one
    if is_root and settings["drop_privileges"]:
        os.chmod(settings["scratch_root"], 0o711)
        os.chown(scratch, uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.chdir(scratch)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": scratch, "LANG": "C.UTF-8", "TMPDIR": scratch})
    return scratch


class CountingResult(unittest.TestResult):
    """A TestResult that records outcomes without formatting tracebacks (the verdict needs only counts;
    formatting a failure's traceback costs more than running a typical test)."""

    def addError(self, test, err):  # noqa: N802 - unittest's API
        self.errors.append((test, ""))

    def addFailure(self, test, err):  # noqa: N802
        self.failures.append((test, ""))

    def addSubTest(self, test, subtest, err):  # noqa: N802
        if err is not None:
            (self.failures if issubclass(err[0], test.failureException) else self.errors).append((subtest, ""))

    def addExpectedFailure(self, test, err):  # noqa: N802
        self.expectedFailures.append((test, ""))


def _test_classes(namespace: dict, before: dict) -> list[type]:
    """TestCase subclasses the test program defined (not the base class, not the solution's own)."""
    found = []
    for name, value in list(namespace.items()):
        if (isinstance(value, type) and issubclass(value, unittest.TestCase) and value is not unittest.TestCase
                and before.get(name) is not value):
            found.append(value)
    return found


def run_test_program(code: str, namespace: dict, before: dict, settings: dict) -> tuple[str, int]:
    """(status, tests_run) for one unittest program in the given (already solution-populated) namespace."""
    global _running_result
    coderm = settings["mode"] == "coderm"
    try:
        compiled = compile(code, "<unit_test>", "exec")
    except (SyntaxError, ValueError):
        return "invalid", 0
    result = None
    _arm(settings["timeout"], repeat=not coderm)
    try:
        exec(compiled, namespace)
        classes = _test_classes(namespace, before)
        if classes:
            loader = unittest.TestLoader()
            suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in classes)
            result = CountingResult()
            if not coderm:  # the paper's executor lets the remaining methods run on after its one alarm
                _running_result = result
            suite.run(result)
    except TimeLimit:
        _disarm()
        return "timeout", result.testsRun if result else 0
    except BaseException:  # noqa: BLE001 - SystemExit, MemoryError, anything: the pair fails
        _disarm()
        return "error", result.testsRun if result else 0
    finally:
        _disarm()
        _running_result = None
    if _timed_out:
        return "timeout", result.testsRun if result else 0
    if result is None:
        return "invalid", 0
    if result.testsRun == 0:
        return ("pass" if coderm else "invalid"), 0  # the paper's executor passes an empty class
    if result.wasSuccessful():
        return "pass", result.testsRun
    return ("error" if result.errors else "fail"), result.testsRun


class _CaseLimit:
    """CodeT's per-assertion time limit: a one-shot alarm around one case."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self) -> None:
        _arm(self.seconds, repeat=False)

    def __exit__(self, *exc: object) -> None:
        _disarm()


def codet_program(solution: str, cases: list[str]) -> str:
    """The solution followed by a `check()` that runs each assertion in order under its own limit and
    records pass / fail / timeout / error: laid out as CodeT's packed program (case at 12 spaces,
    continuation lines likewise), so what fails to compile there fails here."""
    lines = [solution, "", "def __codet_check__():", "    __results__ = []"]
    for case in cases:
        body = case.strip().replace("\n", "\n" + " " * 12)
        lines += ["    try:", "        with __codet_limit__():", f"            {body}",
                  "            __results__.append('pass')", "    except __codet_timeout__:",
                  "        __results__.append('timeout')", "    except AssertionError:",
                  "        __results__.append('fail')", "    except Exception:", "        __results__.append('error')"]
    lines += ["    return __results__", "", "__codet_results__ = __codet_check__()", ""]
    return "\n".join(lines)


def run_codet_program(solution: str, cases: list[str], timeout: float) -> list[str]:
    """Each case's status under CodeT's semantics; a program that fails as a whole (does not compile,
    raises at top level or escapes a case's handler) gives every case the same failing status."""
    namespace = {"__codet_limit__": lambda: _CaseLimit(timeout), "__codet_timeout__": TimeLimit,
                 "__builtins__": builtins}
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


def child_main(write_fd: int, nonce: str, solution: str, tests: list[tuple[int, str]], settings: dict,
               uid: int) -> None:
    """Runs in the forked child: harden, exec the solution once, run each test, report, exit."""

    def emit(*fields: object) -> None:
        os.write(write_fd, ("\t".join([nonce, *map(str, fields)]) + "\n").encode())

    harden(settings, write_fd, uid, len(tests))
    _use_clock(settings)
    if settings["mode"] == "isolated":
        run_isolated(solution, tests, settings, emit)
        os._exit(0)
    if settings["mode"] == "codet":  # CodeT's executor: one program, every verdict at the end
        started = time.perf_counter()
        statuses = run_codet_program(solution, [code for _, code in tests], settings["timeout"])
        seconds = round((time.perf_counter() - started) / max(len(tests), 1), 6)
        for (index, _), status in zip(tests, statuses):
            emit(index, status, 1, seconds)
        os._exit(0)
    base = {"__name__": "__utscale_solution__", "__builtins__": builtins}
    if settings["mode"] == "coderm":  # the paper's globals; solution and test are exec'd as one program
        base.update({"unittest": unittest, "output": io.StringIO(), "locals_dict": {}})
        for index, code in tests:
            started = time.perf_counter()
            status, run = run_test_program(solution + "\n\n" + code, dict(base), base, settings)
            emit(index, status, run, round(time.perf_counter() - started, 6))
        os._exit(0)
    pristine = unittest_snapshot()
    _arm(settings["timeout"], repeat=True)
    try:
        exec(compile(solution, "<solution>", "exec"), base)
        _disarm()
    except TimeLimit:
        _disarm()
        emit("S", "timeout")
        os._exit(0)
    except BaseException:  # noqa: BLE001 - a solution that does not even load fails every test
        _disarm()
        emit("S", "error")
        os._exit(0)
    emit("R")
    for index, code in tests:
        started = time.perf_counter()
        status, run = _test_in_fork(functools.partial(_one_test, code, base, settings, pristine), settings)
        emit(index, status, run, round(time.perf_counter() - started, 6))
    os._exit(0)


def run_isolated(solution: str, tests: list[tuple[int, str]], settings: dict, emit: Callable[..., None]) -> None:
    """The judge of `isolated` mode (see `isolated`): it never runs solution code. It forks the loader
    before anything untrusted ran, then runs each test, in a fork of itself, against stand-ins that
    call a fresh server forked from the loader. Not dumpable: the loader and servers share its uid but
    can neither ptrace it nor open its /proc files (its verdict pipe above all)."""
    _libc.prctl(PR_SET_DUMPABLE, 0)
    sys.set_int_max_str_digits(0)
    ctrl, loader_end = socket.socketpair()
    try:
        pid = os.fork()
    except OSError:
        emit("S", "crash")
        return
    if pid == 0:
        try:
            ctrl.close()
            # under the cpu clock the solution's own processes count their CPU time against the limit
            isolated.loader_main(loader_end.fileno(), solution,
                                 settings["timeout"] if clock_of(settings) == "cpu" else None,
                                 settings["max_processes"])
        finally:
            os._exit(0)
    loader_end.close()
    # the solution's loading time, as in fast mode: on the wall clock here, or in the loader (cpu clock,
    # with the worker's deadline as the backstop)
    _arm(wall_budget(settings) - settings["grace"], repeat=True, timer=signal.ITIMER_REAL)
    try:
        message = isolated.receive(ctrl)
        _disarm(signal.ITIMER_REAL)
    except TimeLimit:
        _disarm(signal.ITIMER_REAL)
        emit("S", "timeout")
        return
    except (OSError, EOFError, ValueError, TypeError, RecursionError):
        _disarm(signal.ITIMER_REAL)
        emit("S", "crash")
        return
    if not (isinstance(message, list) and len(message) == 2 and message[0] in ("R", "S")):
        emit("S", "crash")
        return
    if message[0] == "S":
        emit("S", "timeout" if message[1] == "timeout" else "error")
        return
    description = message[1] if isinstance(message[1], list) else []
    emit("R")
    pristine = unittest_snapshot()
    for index, code in tests:
        started = time.perf_counter()
        status, run = _isolated_test(code, description, ctrl, settings, pristine)
        emit(index, status, run, round(time.perf_counter() - started, 6))
    ctrl.close()  # the loader exits on this (and is killed with the job's process group if it does not)


def _expect(ctrl: socket.socket, tag: str, wait: float) -> list | None:
    """The loader's next `tag` message on the control socket (skipping a late one of an earlier test),
    or None when none comes within `wait` seconds or the loader is gone."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([ctrl], [], [], left)[0]:
            return None
        try:
            message = isolated.receive(ctrl)
        except (OSError, EOFError, ValueError, TypeError, RecursionError):
            return None
        if isinstance(message, list) and message and message[0] == tag:
            return message
    return None


def _isolated_test(code: str, description: list, ctrl: socket.socket, settings: dict,
                   pristine: dict) -> tuple[str, int]:
    """One test: ask the loader for a fresh server, run the test in a fork of the judge (which closes the
    control socket before any test code runs) against stand-ins that call that server, then end the
    server (killed if it is still computing)."""
    mine, theirs = socket.socketpair()
    try:
        socket.send_fds(ctrl, [b"T"], [theirs.fileno()])
    except OSError:
        mine.close()
        return "crash", 0
    finally:
        theirs.close()
    started = _expect(ctrl, "P", settings["timeout"] + settings["grace"])
    if started is None or len(started) != 2 or not isinstance(started[1], int) or started[1] <= 0:
        mine.close()
        return "crash", 0
    status, run = _test_in_fork(lambda: _against_server(code, description, mine, settings, pristine), settings,
                                closes=(ctrl.fileno(),))
    mine.close()  # an idle server exits on this
    if _expect(ctrl, "D", 0.5) is None:
        try:
            os.kill(started[1], signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _expect(ctrl, "D", 5.0)
    return status, run


def _against_server(code: str, description: list, sock: socket.socket, settings: dict,
                    pristine: dict) -> tuple[str, int]:
    """The test against stand-ins calling the server. A server that died mid-call makes the test `crash`,
    a value that could not cross makes it `unencodable`, whatever the test caught."""
    channel = isolated.Channel(sock)
    namespace = {"__name__": "__utscale_solution__", "__builtins__": builtins,
                 **isolated.stand_ins(description, channel)}
    status, run = _one_test(code, namespace, settings, pristine)
    if channel.timed_out:  # before `died`: a server that ran out of time and then ended timed out
        return "timeout", run
    if channel.died:
        return "crash", run
    if channel.unencodable:
        return "unencodable", run
    return status, run


# every verdict a test can get (docs/sandbox.md); only "pass" passes
Status = Literal["pass", "fail", "error", "timeout", "crash", "invalid", "tampered", "unencodable"]
STATUSES: tuple[Status, ...] = get_args(Status)
TAMPERABLE = (unittest.TestCase, unittest.TestResult, unittest.TestSuite, unittest.TestLoader, unittest.case,
              unittest.result, unittest.suite, unittest.loader)


def unittest_snapshot() -> dict[tuple[int, str], object]:
    """What the verdict relies on in unittest (its classes' and modules' attributes), taken before any
    untrusted code runs; a test whose run changed any of it is `tampered`."""
    return {(id(owner), name): value for owner in TAMPERABLE for name, value in vars(owner).items()}


def _tampered(pristine: dict[tuple[int, str], object]) -> bool:
    now = unittest_snapshot()
    return now.keys() != pristine.keys() or any(now[k] is not v for k, v in pristine.items())


def _one_test(code: str, base: dict, settings: dict, pristine: dict) -> tuple[str, int]:
    try:
        status, run = run_test_program(code, dict(base), base, settings)
    except TimeLimit:  # an alarm landing in our own bookkeeping, after the program ran
        status, run = "timeout", 0
    except BaseException:  # noqa: BLE001 - anything escaping the runner fails the test
        status, run = "error", 0
    return ("tampered", run) if _tampered(pristine) else (status, run)


def _test_in_fork(run_one: Callable[[], tuple[str, int]], settings: dict, closes: tuple[int, ...] = ()
                  ) -> tuple[str, int]:
    """One test, `run_one()`, in a fork of this process: in fast mode the process that loaded the
    solution, so every test starts from the state the solution had right after loading and a test that
    mutates it cannot change a later test's verdict (verdicts do not depend on test order); in isolated
    mode the judge, for the same reason on the test's side. The fork may fork as far as max_processes
    allows (with the default of 1: not at all). If forking fails (a solution that spawned a process while
    loading used the uid's last process slot) the test runs here. The fork first closes `closes`."""
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return run_one()
    if pid == 0:
        try:
            for fd in (read_fd, *closes):
                os.close(fd)
            try:  # the loader holds one process slot of the uid: the test gets what max_processes allows
                slots = settings["max_processes"] + 1
                resource.setrlimit(resource.RLIMIT_NPROC, (slots, slots))
            except (ValueError, OSError):
                pass
            status, run = run_one()
            os.write(write_fd, f"{status}\t{run}\n".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    data = b""
    # up to the record's newline, not EOF: a process the test forked may hold the pipe open; a fork that
    # hangs is the worker's deadline's business (it kills the whole process group)
    while not data.endswith(b"\n"):
        chunk = os.read(read_fd, 256)
        if not chunk:
            break
        data += chunk
    os.close(read_fd)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    fields = data.decode(errors="replace").rstrip("\n").split("\t")
    if len(fields) == 2 and fields[0] in STATUSES and fields[1].isdigit():
        return fields[0], int(fields[1])
    return "crash", 0


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


def run_child(solution: str, tests: list[tuple[int, str]], settings: dict, uid: int, on_result):
    """Fork one child for these tests, calling on_result(index, status, tests_run, seconds) as each
    verdict arrives. Returns (reported indices, solution_status, failure, ready, seconds): failure is
    None, "timeout" (the deadline passed) or "crash" (the child vanished); ready says the solution loaded."""
    read_fd, write_fd = os.pipe()
    nonce = secrets.token_hex(8)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            child_main(write_fd, nonce, solution, tests, settings, uid)
        finally:
            os._exit(70)
    os.close(write_fd)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    wanted = {index for index, _ in tests}
    results: set[int] = set()
    solution_status, failure, ready, buffer = None, None, False, b""
    budget = wall_budget(settings)
    deadline = time.monotonic() + budget + (settings["timeout"] if settings["mode"] != "coderm" else 0.0)
    if settings["mode"] == "codet":  # CodeT's whole-program budget: the per-case limit times the cases
        deadline = time.monotonic() + settings["timeout"] * len(tests) + 0.1 + settings["grace"]
    started = time.monotonic()
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
            deadline = time.monotonic() + budget
            if fields[1] == "S":
                solution_status = fields[2]
            elif fields[1] == "R":
                ready = True
            elif len(fields) == 5 and int(fields[1]) in wanted and int(fields[1]) not in results:
                results.add(int(fields[1]))
                on_result(int(fields[1]), fields[2], int(fields[3]), float(fields[4]))
    _kill_group(pid)
    os.close(read_fd)
    if os.geteuid() == 0 and settings["drop_privileges"] and uid > 0 and (settings["max_processes"] > 1
                                                                          or settings["mode"] in EXTRA_PROCESSES):
        _reap_uid(uid)  # with one process slot (strict, coderm, codet) the uid cannot fork: nothing escaped
    _reap_orphans()
    _clear(settings["scratch_root"])
    return results, solution_status, failure, ready, time.monotonic() - started


def run_job(job: dict, settings: dict, uid: int, emit) -> None:
    """Emit one verdict per test of the job as soon as it is known, resuming in a fresh child after a
    hang or crash, so a worker that dies mid-job has already reported every finished test."""
    tests = [(i, t["code"]) for i, t in enumerate(job["tests"])]
    ids = [t["id"] for t in job["tests"]]
    if job.get("timeout"):  # a per-problem limit (calibrated on the reference solution) replaces the pool's
        settings = {**settings, "timeout": float(job["timeout"])}

    def verdict(index: int, status: str, run: int, seconds: float) -> None:
        emit({"test": ids[index], "status": status, "tests_run": run, "duration_s": round(seconds, 6)})

    per_child = len(tests) if settings["mode"] in ("fast", "isolated", "codet") else 1
    pending = tests
    while pending:
        batch, pending = pending[:per_child], pending[per_child:]
        results, solution_status, failure, ready, elapsed = run_child(job["solution"], batch, settings, uid, verdict)
        if settings["mode"] == "codet" and failure is not None:  # CodeT: the whole program timed out or died
            for index, _ in batch:
                if index not in results:
                    verdict(index, failure, 0, elapsed)
            return
        if solution_status is not None or (failure == "timeout" and not ready and settings["mode"] != "coderm"):
            # the solution itself fails or hangs while loading: every remaining test fails the same way
            for index, _ in batch + pending:
                if index not in results:
                    verdict(index, solution_status or "timeout", 0, 0.0 if solution_status else elapsed)
            return
        missing = [item for item in batch if item[0] not in results]
        if missing:
            verdict(missing[0][0], failure or "crash", 0, elapsed)
            pending = missing[1:] + pending


def _pin(index: int) -> None:
    try:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) > 1:
            os.sched_setaffinity(0, {cores[index % len(cores)]})
    except (AttributeError, OSError):
        pass


def main() -> int:
    settings = json.loads(sys.argv[1])
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
