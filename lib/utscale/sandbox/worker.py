"""The sandbox worker: a small, warm process that forks one hardened child per job and streams verdicts.

Started once per core by the driver (`utscale.sandbox.executor`), never forked from a notebook kernel.
It reads jobs (one solution and its unit-test programs) as JSON lines on stdin and writes one JSON line
per (solution, test) verdict on stdout, then `{"job": ..., "done": true}`.

Per job, in the default `fast` mode (design (e) of the research notes): one child execs the solution
once, then runs every test program in a fork of itself (a fresh copy of the loaded solution's whole
state) under a repeating alarm; the fork writes the test's verdict and the child its end, each record
carrying a nonce that no Python object holds (`_emit`); a test whose run changed what the verdict
relies on is `tampered`. The worker resets a deadline on each line; on a hang it kills the child's
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
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
import types
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
# In a child the verdict pipe to the worker is descriptor 3 and the job's nonce lives only in the memfd at
# descriptor 4, read at each record and never bound to a name: no frame, global, closure or object `gc`
# can list holds it, so code walking the child's Python state finds no verdict channel (`_emit`)
VERDICT_FD, NONCE_FD = 3, 4
NONCE_BYTES = 16
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


def harden(settings: dict, verdict_fd: int, nonce_fd: int, uid: int, n_tests: int) -> str:
    """Everything a child does before touching untrusted code; returns its scratch directory. Its only
    descriptors afterwards: /dev/null as 0-2, the verdict pipe as VERDICT_FD, the nonce as NONCE_FD."""
    os.setpgid(0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    high = 1 << 10  # out of the way first: either descriptor may already be 3 or 4
    os.dup2(verdict_fd, high)
    os.dup2(nonce_fd, high + 1)
    os.dup2(high, VERDICT_FD)
    os.dup2(high + 1, NONCE_FD)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(NONCE_FD + 1, 1 << 16)
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


def _emit(*fields: object, _write: Callable[[int, bytes], int] = os.write,
          _pread: Callable[[int, int, int], bytes] = os.pread, _text: type = str) -> None:
    """One record to the worker: the job's nonce, then the fields. The nonce is read from its memfd into an
    expression, never a name or a container, so it exists as a Python object only inside this call. The
    functions it uses are bound when the module loads: a solution rebinding `os.write` or `str` (to turn
    `fail` into `pass` on its way out) changes nothing here, and is `tampered`."""
    _write(VERDICT_FD, _pread(NONCE_FD, NONCE_BYTES, 0).hex().encode()
           + ("\t" + "\t".join([_text(field) for field in fields]) + "\n").encode())


def _report(index: int, status: str, tests_run: int, seconds: float, emit: Callable[..., None] = _emit) -> None:
    """Test `index`'s verdict (`V`), then its end (`E`), from the process that ran it and stays. A test run in
    a fork sends `V` from the fork and `E` from its parent once the fork has ended (`_test_in_fork`): the
    worker counts a verdict only at its `E`, so a test that kills the process it was forked from, and
    reports `pass` before dying with it, is a `crash`."""
    emit("V", index, status, tests_run, seconds)
    emit("E", index, seconds)


def child_main(solution: str, tests: list[tuple[int, str]], settings: dict) -> None:
    """Runs in the forked child, hardened by `run_child`: exec the solution once, run each test, report, exit.

    What runs after the solution has loaded is bound here first (`emit`, `in_fork`, each test's runner
    with `run_test_program`, the snapshot and its check): a solution that rebinds the worker's names
    (`run_test_program`, `_one_test`, `_emit`...) changes none of them, and the rebinding itself is found
    by the snapshot (`tampered`)."""
    _use_clock(settings)
    if settings["mode"] == "isolated":
        run_isolated(solution, tests, settings)
        os._exit(0)
    if settings["mode"] == "codet":  # CodeT's executor: one program, every verdict at the end
        started = time.perf_counter()
        statuses = run_codet_program(solution, [code for _, code in tests], settings["timeout"])
        seconds = round((time.perf_counter() - started) / max(len(tests), 1), 6)
        for (index, _), status in zip(tests, statuses):
            _report(index, status, 1, seconds)
        os._exit(0)
    base = {"__name__": "__utscale_solution__", "__builtins__": builtins}
    if settings["mode"] == "coderm":  # the paper's globals; solution and test are exec'd as one program
        base.update({"unittest": unittest, "output": io.StringIO(), "locals_dict": {}})
        for index, code in tests:
            started = time.perf_counter()
            status, run = run_test_program(solution + "\n\n" + code, dict(base), base, settings)
            _report(index, status, run, round(time.perf_counter() - started, 6))
        os._exit(0)
    emit, in_fork = _emit, _test_in_fork
    tampered = functools.partial(_tampered, verdict_snapshot(), verdict_snapshot)
    runs = [(index, functools.partial(_one_test, code, base, settings, run_test_program, tampered))
            for index, code in tests]
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
    for index, run_one in runs:
        in_fork(index, run_one, settings)
    os._exit(0)


def run_isolated(solution: str, tests: list[tuple[int, str]], settings: dict) -> None:
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
        _emit("S", "crash")
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
        _emit("S", "timeout")
        return
    except (OSError, EOFError, ValueError, TypeError, RecursionError):
        _disarm(signal.ITIMER_REAL)
        _emit("S", "crash")
        return
    if not (isinstance(message, list) and len(message) == 2 and message[0] in ("R", "S")):
        _emit("S", "crash")
        return
    if message[0] == "S":
        _emit("S", "timeout" if message[1] == "timeout" else "error")
        return
    description = message[1] if isinstance(message[1], list) else []
    _emit("R")
    tampered = functools.partial(_tampered, verdict_snapshot(), verdict_snapshot)
    for index, code in tests:
        _isolated_test(index, code, description, ctrl, settings, tampered)
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


def _isolated_test(index: int, code: str, description: list, ctrl: socket.socket, settings: dict,
                   tampered: Callable[[], bool]) -> None:
    """One test: ask the loader for a fresh server, run the test in a fork of the judge (which closes the
    control socket before any test code runs) against stand-ins that call that server, then end the
    server (killed if it is still computing)."""
    started = time.perf_counter()
    mine, theirs = socket.socketpair()
    try:
        socket.send_fds(ctrl, [b"T"], [theirs.fileno()])
    except OSError:
        mine.close()
        _report(index, "crash", 0, round(time.perf_counter() - started, 6))
        return
    finally:
        theirs.close()
    server = _expect(ctrl, "P", settings["timeout"] + settings["grace"])
    if server is None or len(server) != 2 or not isinstance(server[1], int) or server[1] <= 0:
        mine.close()
        _report(index, "crash", 0, round(time.perf_counter() - started, 6))
        return
    _test_in_fork(index, lambda: _against_server(code, description, mine, settings, tampered), settings,
                  closes=(ctrl.fileno(),), started=started)
    mine.close()  # an idle server exits on this
    if _expect(ctrl, "D", 0.5) is None:
        try:
            os.kill(server[1], signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _expect(ctrl, "D", 5.0)


def _against_server(code: str, description: list, sock: socket.socket, settings: dict,
                    tampered: Callable[[], bool]) -> tuple[str, int]:
    """The test against stand-ins calling the server. A server that died mid-call makes the test `crash`,
    a value that could not cross makes it `unencodable`, whatever the test caught."""
    channel = isolated.Channel(sock)
    namespace = {"__name__": "__utscale_solution__", "__builtins__": builtins,
                 **isolated.stand_ins(description, channel)}
    status, run = _one_test(code, namespace, settings, run_test_program, tampered)
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
TAMPERABLE = (unittest.TestCase, unittest.TestResult, unittest.TestSuite, unittest.TestLoader,
              unittest.case, unittest.result, unittest.suite, unittest.loader)


def _looked_up(functions: tuple[Callable[..., object], ...]) -> frozenset[str]:
    """Every name `functions` look up (globals, builtins, module attributes: `co_names`, nested code too)."""
    codes = [f.__code__ for f in functions]
    names: set[str] = set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return frozenset(names)


def _snapshot_of(owners: tuple[object, ...], namespaces: tuple[dict[str, object], ...], names: frozenset[str],
                 _isinstance: Callable[..., bool] = isinstance) -> dict[tuple[int, str], object]:
    """The attributes of `owners`, and the values of `names` in each of `namespaces` (constants and flags
    left out: the alarm's flags change in every test)."""
    snapshot = {(id(owner), name): value for owner in owners for name, value in owner.__dict__.items()}
    for namespace in namespaces:
        for name in names:
            if name in namespace and not _isinstance(namespace[name], (bool, int, float, str, types.NoneType)):
                snapshot[(id(namespace), name)] = namespace[name]
    return snapshot


def _tampered(pristine: dict[tuple[int, str], object], snapshot: Callable[[], dict[tuple[int, str], object]]) -> bool:
    now = snapshot()
    if now.keys() != pristine.keys():
        return True
    for key, value in pristine.items():  # a loop, not any(): a rebound builtin would answer for it
        if now[key] is not value:
            return True
    return False


def _one_test(code: str, base: dict, settings: dict, run: Callable[..., tuple[str, int]],
              tampered: Callable[[], bool]) -> tuple[str, int]:
    """One test program's (status, tests_run) by `run`, `tampered` if `tampered()` says its run changed
    what the verdict relies on. Both are passed in, bound before a solution could rebind any name."""
    try:
        status, tests_run = run(code, dict(base), base, settings)
    except TimeLimit:  # an alarm landing in our own bookkeeping, after the program ran
        status, tests_run = "timeout", 0
    except BaseException:  # noqa: BLE001 - anything escaping the runner fails the test
        status, tests_run = "error", 0
    return ("tampered", tests_run) if tampered() else (status, tests_run)


def _test_in_fork(index: int, run_one: Callable[[], tuple[str, int]], settings: dict,
                  closes: tuple[int, ...] = (), started: float | None = None,
                  emit: Callable[..., None] = _emit, report: Callable[..., None] = _report) -> None:
    """Test `index`, `run_one()`, in a fork of this process, which sends its own verdict: in fast mode
    the process that loaded the solution, so every test starts from the state the solution had right
    after loading and a test that mutates it cannot change a later test's verdict (verdicts do not depend
    on test order); in isolated mode the judge, for the same reason on the test's side. No pipe connects
    the fork to this process (a pipe would be a verdict channel whose descriptor sits in a frame): once
    the fork has ended this process sends the test's end (see `_report`; a test whose fork sent no
    verdict is a `crash`). The fork may fork as far as max_processes allows (with the default of 1: not
    at all). If forking fails (a solution that spawned a process while loading used the uid's last
    process slot) the test runs here; `emit` and `report` are bound when the module loads, so a solution
    that provokes that path cannot also rebind what reports it. The fork first closes `closes`."""
    started = time.perf_counter() if started is None else started
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        status, tests_run = run_one()
        report(index, status, tests_run, round(time.perf_counter() - started, 6))
        return
    if pid == 0:
        try:
            # a test that kills this process ends with it (`crash`), never reporting past its parent
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(0)
            for fd in closes:
                os.close(fd)
            try:  # the loader holds one process slot of the uid: the test gets what max_processes allows
                slots = settings["max_processes"] + 1
                resource.setrlimit(resource.RLIMIT_NPROC, (slots, slots))
            except (ValueError, OSError):
                pass
            status, tests_run = run_one()
            emit("V", index, status, tests_run, round(time.perf_counter() - started, 6))
        finally:
            os._exit(0)
    try:  # a fork that hangs is the worker's deadline's business (it kills the whole process group)
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    emit("E", index, round(time.perf_counter() - started, 6))


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


def run_child(solution: str, tests: list[tuple[int, str]], settings: dict, uid: int, on_result):
    """Fork one child for these tests, calling on_result(index, status, tests_run, seconds) as each
    verdict arrives. Returns (reported indices, solution_status, failure, ready, seconds): failure is
    None, "timeout" (the deadline passed) or "crash" (the child vanished); ready says the solution loaded."""
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
            try:
                if fields[1] == "S":
                    solution_status = fields[2] if fields[2] in STATUSES else "crash"
                elif fields[1] == "R":
                    ready = True
                elif fields[1] == "V" and len(fields) == 6:  # a verdict, counted at its test's end (`_report`)
                    pending[int(fields[2])] = (fields[3] if fields[3] in STATUSES else "crash", int(fields[4]),
                                               float(fields[5]))
                elif fields[1] == "E" and len(fields) == 4:
                    index = int(fields[2])
                    if index not in wanted or index in results:
                        continue
                    status, run, seconds = pending.pop(index, ("crash", 0, float(fields[3])))
                    results.add(index)
                    on_result(index, status, run, seconds)
            except (ValueError, IndexError):
                continue  # a malformed record (only code that read the nonce can write one) counts for nothing
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


# What the verdict relies on, taken before any untrusted code runs: the attributes of unittest's classes
# and modules and of CountingResult; every name the code that runs once a solution has loaded looks up
# (`compile`, `unittest.TestSuite`, `_test_classes`, `os.write`...), in this module's globals, in builtins
# and in the modules that code uses; and every function of this module (rebinding one the verdict no
# longer passes through, `run_test_program`, forges nothing, but is reported). A test whose run changed
# any of it is `tampered`. Those names only, not whole namespaces: reading a value touches its page, and
# every page a fork touches is copied (all of `os` and `builtins`: +1.5 ms per test here). Bound now, once
# every function exists, so that rebinding `sys.modules`, `vars` or a module's name hides nothing.
AFTER_LOADING: tuple[Callable[..., object], ...] = (
    run_test_program, _test_classes, _one_test, _tampered, _snapshot_of, _emit, _report, _test_in_fork, _arm,
    _disarm, _on_alarm, *(f for f in vars(CountingResult).values() if isinstance(f, types.FunctionType)))
verdict_snapshot = functools.partial(
    _snapshot_of, TAMPERABLE + (CountingResult,),
    (globals(), vars(builtins), *(vars(m) for m in (os, time, resource, signal, types, unittest))),
    _looked_up(AFTER_LOADING) | {name for name, value in globals().items() if isinstance(value, types.FunctionType)})


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
