"""The judge of `isolated` mode: the hardened child that never runs solution code. It forks the loader
(`isolated.loader_main`) before anything untrusted ran, then runs each test, in a fork of itself,
against stand-ins that call a fresh server forked from the loader (docs/sandbox.md). Standard library
and the sandbox's own stdlib-only modules only.
"""

from __future__ import annotations

import builtins
import functools
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable

from utscale.sandbox import codec, isolated
from utscale.sandbox.child import (
    PR_SET_DUMPABLE,
    TimeLimit,
    _arm,
    _disarm,
    _emit,
    _libc,
    _one_test,
    _report,
    _tampered,
    _test_in_fork,
    run_test_program,
)
from utscale.sandbox.modes import WorkerSettings, clock_of, wall_budget


def run_isolated(solution: str, tests: list[tuple[int, str]], settings: WorkerSettings,
                 snapshot: Callable[[], dict[tuple[int, str], object]]) -> None:
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
        message = codec.receive(ctrl)
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
    tampered = functools.partial(_tampered, snapshot(), snapshot)
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
            message = codec.receive(ctrl)
        except (OSError, EOFError, ValueError, TypeError, RecursionError):
            return None
        if isinstance(message, list) and message and message[0] == tag:
            return message
    return None


def _isolated_test(index: int, code: str, description: list, ctrl: socket.socket, settings: WorkerSettings,
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


def _against_server(code: str, description: list, sock: socket.socket, settings: WorkerSettings,
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
