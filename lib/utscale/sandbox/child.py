"""What runs in the hardened child that loads untrusted code: its hardening, the alarms, the unittest
runner, the verdict records and the tamper check, and the `fast` mode's loop (`run_fast`; `strict` is
the same loop with one test per child).

Per job in `fast` mode (design (e) of the research notes): the child execs the solution once, then runs
every test program in a fork of itself (a fresh copy of the loaded solution's whole state) under a
repeating alarm; the fork writes the test's verdict and the child its end, each record carrying a nonce
that no Python object holds (`_emit`); a test whose run changed what the verdict relies on is
`tampered` (`snapshot_over`). The worker (`worker`) forks this child, reads its records and kills it
on a hang. The other modes' children reuse these pieces: `judge` (isolated) and `reference_modes`
(coderm, codet).

This module imports only the standard library and the sandbox's own stdlib-only modules: it is what
untrusted code shares an address space with.
"""

from __future__ import annotations

import builtins
import ctypes
import functools
import os
import resource
import signal
import tempfile
import time
import types
import unittest
from collections.abc import Callable, Iterable

from utscale.sandbox import isolated
from utscale.sandbox.modes import MODE_RULES, WorkerSettings, clock_of, rules

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


def _pause() -> float:
    """Stop the running alarm and return what was left of it (`_resume` restarts it): time the harness spends
    on its own work inside a test is not the test's."""
    return signal.setitimer(_timer, 0.0)[0]


def _resume(seconds: float) -> None:
    if seconds > 0:
        signal.setitimer(_timer, seconds)


def _use_clock(settings: WorkerSettings) -> None:
    """Time limits on the settings' clock: `cpu` counts this process's CPU time (ITIMER_PROF), so a slow or
    busy machine does not turn a slow pass into a timeout; the worker's wall-clock deadline stays a backstop
    against code that waits without computing."""
    global _timer
    _timer = signal.ITIMER_PROF if clock_of(settings) == "cpu" else signal.ITIMER_REAL
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGPROF, _on_alarm)


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


def harden(settings: WorkerSettings, verdict_fd: int, nonce_fd: int, uid: int, n_tests: int) -> str:
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
        resource.RLIMIT_NPROC: settings["max_processes"] + rules(settings).extra_processes,
    }
    if rules(settings).forks_helpers_unprivileged and not is_root:
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


def run_test_program(code: str, namespace: dict, before: dict, settings: WorkerSettings) -> tuple[str, int]:
    """(status, tests_run) for one unittest program in the given (already solution-populated) namespace."""
    global _running_result
    mode = MODE_RULES[settings["mode"]]
    try:
        compiled = compile(code, "<unit_test>", "exec")
    except (SyntaxError, ValueError):
        return "invalid", 0
    result = None
    _arm(settings["timeout"], repeat=mode.repeat_alarm)
    try:
        exec(compiled, namespace)
        classes = _test_classes(namespace, before)
        if classes:
            loader = unittest.TestLoader()
            suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in classes)
            result = CountingResult()
            if mode.repeat_alarm:  # the paper's executor lets the remaining methods run on after its one alarm
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
        return ("pass" if mode.empty_class_passes else "invalid"), 0  # the paper's executor passes it
    if result.wasSuccessful():
        return "pass", result.testsRun
    return ("error" if result.errors else "fail"), result.testsRun


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


def run_fast(solution: str, tests: list[tuple[int, str]], settings: WorkerSettings,
             snapshot: Callable[[], dict[tuple[int, str], object]]) -> None:
    """`fast` and `strict` modes: exec the solution once, run each test in a fork of the loaded state, report.

    What runs after the solution has loaded is bound here first (`emit`, `in_fork`, each test's runner
    with `run_test_program`, the snapshot and its check): a solution that rebinds the harness's names
    (`run_test_program`, `_one_test`, `_emit`...) changes none of them, and the rebinding itself is found
    by the snapshot (`tampered`)."""
    base = {"__name__": "__utscale_solution__", "__builtins__": builtins}
    emit, in_fork = _emit, _test_in_fork
    tampered = functools.partial(_tampered, snapshot(), snapshot)
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


def _one_test(code: str, base: dict, settings: WorkerSettings, run: Callable[..., tuple[str, int]],
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


def _test_in_fork(index: int, run_one: Callable[[], tuple[str, int]], settings: WorkerSettings,
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


# What the verdict relies on, taken before any untrusted code runs: the attributes of unittest's classes
# and modules and of CountingResult; every name the code that runs once a solution has loaded looks up
# (`compile`, `unittest.TestSuite`, `_test_classes`, `os.write`...), in the globals of the modules that
# code lives in, in builtins and in the modules that code uses; and every function of the sandbox's
# modules (rebinding one the verdict no longer passes through, `run_test_program`, forges nothing, but
# is reported). A test whose run changed any of it is `tampered`. Those names only, not whole
# namespaces: reading a value touches its page, and every page a fork touches is copied (all of `os`
# and `builtins`: +1.5 ms per test here).
AFTER_LOADING: tuple[Callable[..., object], ...] = (
    run_test_program, _test_classes, _one_test, _tampered, _snapshot_of, _emit, _report, _test_in_fork, _arm,
    _disarm, _on_alarm, *(f for f in vars(CountingResult).values() if isinstance(f, types.FunctionType)))


def snapshot_over(functions: tuple[Callable[..., object], ...], modules: Iterable[types.ModuleType]
                  ) -> Callable[[], dict[tuple[int, str], object]]:
    """The verdict's snapshot for `functions` (AFTER_LOADING) and the sandbox's `modules`: the globals of
    every module a function lives in, whichever that is, and of `modules`. The worker binds it once, when
    every module has loaded and before any untrusted code runs, so that rebinding `sys.modules`, `vars`
    or a module's name hides nothing."""
    namespaces = {id(ns): ns for ns in [f.__globals__ for f in functions] + [vars(m) for m in modules]}
    names = _looked_up(functions) | {name for ns in namespaces.values() for name, value in ns.items()
                                     if isinstance(value, types.FunctionType)}
    return functools.partial(
        _snapshot_of, TAMPERABLE + (CountingResult,),
        (*namespaces.values(), vars(builtins), *(vars(m) for m in (os, time, resource, signal, types, unittest))),
        names)
