"""The `isolated` mode's parts: the solution's side (loader, servers) and the test's stand-ins.

In `isolated` mode the verdict is decided by a process that never runs solution code (the *judge*, see
`judge.run_isolated`). The solution is loaded once in a *loader* process forked from the judge before
anything untrusted ran; for each test a *server*, forked from the loader (a fresh copy of the loaded
state), answers the test's calls. In the judge, every name the test takes from the solution is a
stand-in built here: a function that sends (name, arguments) to the server, a decoded copy of plain
data, the judge's own import of a standard-library module, or an opaque placeholder.

Only plain data crosses (`codec`), so what a solution sends back is data and nothing else: an object
whose `__eq__` always says yes cannot cross (status `unencodable`). Arguments the call
mutated in place come back and are applied to the test's objects; exceptions come back as type name,
nearest built-in base and message, and are raised again in the test.

Standard library only: the loader and servers share an address space with untrusted code.
"""

from __future__ import annotations

import builtins
import importlib
import os
import resource
import signal
import socket
import sys
import time
import types
from collections.abc import Callable
from typing import Any

from utscale.sandbox.codec import MAX_TEXT, Unencodable, encode, receive, send

MUTABLE = (list, dict, set)
# standard-library modules the judge never imports on a solution's say-so (side effects on import)
NOT_IMPORTED = frozenset({"antigravity", "this", "idlelib", "turtle", "turtledemo", "tkinter", "webbrowser"})


class SolutionDied(Exception):
    """The solution's server vanished (or answered garbage) during a call: the test's status is `crash`."""


class SolutionTimeout(Exception):
    """The solution used up the test's CPU time (the `cpu` clock): the test's status is `timeout`."""


ALARM_INTERVAL = 0.05  # seconds between repeated limit signals once the limit is hit (as the worker's)
_over_limit = False


def _on_limit(signum: int, frame: Any) -> None:  # noqa: ARG001
    global _over_limit
    _over_limit = True
    raise SolutionTimeout("time limit exceeded")


def _limit_cpu(seconds: float | None) -> None:
    """In the loader and each server: the solution's CPU time against the limit (cpu clock only)."""
    global _over_limit
    _over_limit = False
    if seconds is not None:
        signal.signal(signal.SIGPROF, _on_limit)
        signal.setitimer(signal.ITIMER_PROF, seconds, ALARM_INTERVAL)


def _unlimit() -> None:
    signal.setitimer(signal.ITIMER_PROF, 0.0)




def apply_mutation(target: Any, new: Any) -> None:
    """Make an argument the test passed equal to the solution's mutated copy of it, in place, keeping the
    identity of nested containers where the shapes allow (a test may hold references into them)."""
    if isinstance(target, list) and type(new) is list:
        if len(target) != len(new):
            target[:] = new
            return
        for i, (old, value) in enumerate(zip(target, new)):
            if type(old) in MUTABLE and type(old) is type(value):
                apply_mutation(old, value)
            else:
                target[i] = value
    elif isinstance(target, dict) and type(new) is dict:
        for key in [k for k in target if k not in new]:
            del target[key]
        for key, value in new.items():
            old = target.get(key)
            if key in target and type(old) in MUTABLE and type(old) is type(value):
                apply_mutation(old, value)
            else:
                target[key] = value
    elif isinstance(target, set) and type(new) is set:
        target.clear()
        target.update(new)


# --- the solution's side: the loader and its per-test servers ----------------------------------------

def describe(namespace: dict[str, Any]) -> list[list[Any]]:
    """What the loaded solution defines, for the judge's stand-ins: [name, "m", module] for a module,
    [name, "c"] for anything callable, [name, "d", value] for plain data, [name, "o", type] otherwise."""
    entries: list[list[Any]] = []
    for name, value in list(namespace.items()):
        if not isinstance(name, str) or (name.startswith("__") and name.endswith("__")):
            continue
        if isinstance(value, types.ModuleType):
            entries.append([name, "m", str(getattr(value, "__name__", ""))])
        elif callable(value):
            entries.append([name, "c"])
        else:
            try:
                entries.append([name, "d", encode(value)])
            except Unencodable:
                entries.append([name, "o", type(value).__name__])
    return entries


def _builtin_base(exc: BaseException) -> str:
    for kind in type(exc).__mro__:
        if kind.__module__ == "builtins" and issubclass(kind, BaseException):
            return kind.__name__
    return "Exception"


def answer(request: Any, namespace: dict[str, Any]) -> list[Any]:
    """The server's reply to one call: ["r", value, mutated arguments, seconds], ["x", type, base,
    message] for an exception, ["p", type, mutated arguments, seconds] when the value returned cannot
    cross (the test gets an `Opaque` stand-in: it can check `is None` and nothing else), ["o", type] when
    a mutated argument cannot cross, ["t"] once the test's CPU time is used up (even if the solution
    caught the signal). `seconds`: the call's own wall time, measured here around the solution's code
    only, so that a per-call time limit in the test (EvalPlus's) is not charged for encoding and moving
    a large result between processes. It is the solution's process's word: a hostile solution can
    understate it, and then only the test's own limit on CPU time binds (docs/sandbox.md)."""
    if _over_limit:
        return ["t"]
    _, name, args, kwargs = request
    kwargs = dict(kwargs)
    sent = {i: encode(a) for i, a in enumerate(args) if type(a) in MUTABLE}
    sent.update({k: encode(v) for k, v in kwargs.items() if type(v) in MUTABLE})
    try:
        function = namespace[name]
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPROF})  # the limit's signal: in solution code only
        try:
            started = time.perf_counter()
            result = function(*args, **kwargs)
            seconds = time.perf_counter() - started
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF})
    except BaseException as exc:  # noqa: BLE001 - the solution's exception goes to the test
        if _over_limit:
            return ["t"]
        try:
            message = str(exc)[:MAX_TEXT]
        except BaseException:  # noqa: BLE001 - a __str__ that raises
            message = ""
        return ["x", type(exc).__name__[:200], _builtin_base(exc), message]
    if _over_limit:
        return ["t"]
    try:
        current = {**dict(enumerate(args)), **kwargs}
        mutated = [[where, now] for where, before in sent.items() if (now := encode(current[where])) != before]
    except Unencodable:
        return ["o", type(result).__name__[:200]]
    try:
        return ["r", encode(result), mutated, seconds]
    except Unencodable:
        return ["p", type(result).__name__[:200], mutated, seconds]


def serve(fd: int, namespace: dict[str, Any], limit: float | None) -> None:
    """A per-test server: answer calls until the judge closes the connection (under the cpu clock, with
    the test's limit on its CPU time)."""
    sock = socket.socket(fileno=fd)
    # the limit's signal is blocked outside the solution's own calls (`answer` unblocks it around each):
    # landing in our reading or writing it would tear a message and turn a timeout into a crash
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF})
    _limit_cpu(limit)
    while True:
        try:
            request = receive(sock)
        except (EOFError, OSError, ValueError):
            os._exit(0)
        try:
            reply = answer(request, namespace)
        except SolutionTimeout:
            reply = ["t"]
        except BaseException:  # noqa: BLE001 - a malformed request or an argument's encoding failed
            reply = ["o", "request"]
        try:
            send(sock, reply)
        except OSError:
            os._exit(0)


IDENTITY_MAP = ["0", "0", "4294967295"]  # /proc/self/uid_map outside any user namespace of our own


def _tasks(pid: str) -> int:
    """Threads count against RLIMIT_NPROC as processes do."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:  # it exited meanwhile
        return 0


def cap_new_processes(extra: int) -> None:
    """Let this process, and all it forks, start at most `extra` more processes. RLIMIT_NPROC counts the
    uid's processes: as root the worker's sandbox uid has the job to itself and the worker sets it (`child.harden`);
    as an ordinary user the uid is shared, except inside a user namespace of its own (bubblewrap run by
    an ordinary user), where the kernel counts the namespace's processes only and /proc lists exactly
    those. There the limit is set relative to what is alive (threads included); elsewhere (no jail)
    nothing is set."""
    if os.geteuid() == 0:
        return
    try:
        with open("/proc/self/uid_map") as fh:
            if fh.read().split() == IDENTITY_MAP:
                return
        alive = sum(_tasks(entry) for entry in os.listdir("/proc") if entry.isdigit())
    except OSError:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (alive + extra, alive + extra))
    except (ValueError, OSError):
        pass  # above the hard limit inherited: that one stays, and it is lower


def loader_main(ctrl_fd: int, solution: str, limit: float | None, max_processes: int = 1) -> None:
    """The loader, forked from the judge: keep nothing of the judge's but the control socket (above all
    not the verdict pipe), load the solution, describe it, then fork one server per test the judge asks
    for (a fresh copy of the loaded state each time). `limit`: seconds of CPU time for loading and for
    each test (the cpu clock), or None (the judge's wall clock). `max_processes`: what a server may run at
    once, itself included (1: it cannot fork). Never returns."""
    os.closerange(3, ctrl_fd)
    os.closerange(ctrl_fd + 1, 1 << 16)
    # room for each test's two processes (the judge's test fork and this loader's server) and what a
    # server may fork; a solution that forks while loading uses that room and its tests crash
    cap_new_processes(1 + max_processes)
    ctrl = socket.socket(fileno=ctrl_fd)
    sys.set_int_max_str_digits(0)
    namespace: dict[str, Any] = {"__name__": "__utscale_solution__", "__builtins__": builtins}
    _limit_cpu(limit)
    try:
        exec(compile(solution, "<solution>", "exec"), namespace)
        _unlimit()
        send(ctrl, ["R", describe(namespace)])
    except BaseException:  # noqa: BLE001 - a solution that does not load fails every test
        _unlimit()
        try:
            send(ctrl, ["S", "timeout" if _over_limit else "error"])
        finally:
            os._exit(0)
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(ctrl, 16, 1)
        except OSError:
            os._exit(0)
        if not fds:
            os._exit(0)
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid == 0:
            try:
                ctrl.close()
                # the judge forks the test's process after this server: room for it, then for the forks
                # max_processes allows (with 1, none: the solution's calls come only once the test runs)
                cap_new_processes(max_processes)
                serve(fds[0], namespace, limit)
            finally:
                os._exit(0)  # a server never returns into the loader's loop
        os.close(fds[0])
        send(ctrl, ["P", pid])
        if pid > 0:
            os.waitpid(pid, 0)
        send(ctrl, ["D"])


# --- the judge's side: stand-ins for the solution's names -------------------------------------------

class Channel:
    """The judge's end of one test's connection to its server; remembers whether anything could not
    cross or the server died, which decide the test's status whatever the test caught."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.unencodable = False
        self.died = False
        self.timed_out = False
        self.call_seconds = 0.0  # the last call's wall time, as its server measured it (`answer`)

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            request = ["call", name, [encode(a) for a in args], [[k, encode(v)] for k, v in kwargs.items()]]
        except Unencodable:
            self.unencodable = True
            raise
        try:
            send(self.sock, request)
            reply = receive(self.sock)
            kind = reply[0]
        except (OSError, EOFError, ValueError, TypeError, RecursionError, IndexError, KeyError) as exc:
            self.died = True
            raise SolutionDied(f"the solution's process ended or answered garbage during {name}()") from exc
        if kind in ("r", "p") and len(reply) == 4 and isinstance(reply[2], list) and _seconds(reply[3]):
            self.call_seconds = float(reply[3])
            for where, value in reply[2]:
                target = args[where] if isinstance(where, int) and 0 <= where < len(args) else kwargs.get(where)
                apply_mutation(target, value)
            # a result that cannot cross: a stand-in that is not None (EvalPlus's MBPP+ `re.Match` answers
            # are judged on exactly that); any other use of it makes the test `unencodable`
            return reply[1] if kind == "r" else Opaque(f"{name}()'s result", str(reply[1]), self)
        if kind == "x" and len(reply) == 4 and all(isinstance(x, str) for x in reply[1:]):
            raise rebuild_exception(*reply[1:])
        if kind == "t":
            self.timed_out = True
            raise SolutionTimeout(f"{name}() used up the test's CPU time")
        self.unencodable = True
        raise Unencodable(f"{name}() returned a value that cannot cross to the test")


def rebuild_exception(name: str, base_name: str, message: str) -> BaseException:
    """The solution's exception as the test can catch it: its built-in base, or a subclass of it named
    like the solution's own class (so `assertRaises(ValueError)` catches a ValueError subclass)."""
    base = getattr(builtins, base_name, Exception)
    if not (isinstance(base, type) and issubclass(base, BaseException)):
        base = Exception
    for kind in base.__mro__:
        if not issubclass(kind, BaseException):
            continue
        cls = kind if name == kind.__name__ else type(name, (kind,), {"__module__": "solution"})
        try:
            return cls(message)
        except TypeError:  # a base that needs more arguments (UnicodeDecodeError): try the next one up
            continue
    return Exception(message)


class Opaque:
    """A solution value that cannot cross (an instance at module level, a returned `re.Match`): an identity
    check (`is None`) works, as it does on the real object; any other use is `unencodable`."""

    __slots__ = ("_where",)

    def __init__(self, name: str, kind: str, channel: Channel):
        object.__setattr__(self, "_where", (name, kind, channel))

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        name, kind, channel = object.__getattribute__(self, "_where")
        channel.unencodable = True
        raise Unencodable(f"{name} (a {kind}) cannot cross to the test")

    __call__ = __getattr__ = __eq__ = __lt__ = __gt__ = __le__ = __ge__ = __iter__ = __len__ = __bool__ = _refuse
    __getitem__ = __contains__ = __add__ = __sub__ = __mul__ = __int__ = __float__ = __index__ = _refuse
    __hash__ = None  # type: ignore[assignment]


def _seconds(value: Any) -> bool:
    return type(value) in (int, float) and 0 <= value < float("inf")


CALL_SECONDS = "utscale_call_seconds"  # the stand-in's attribute read by EvalPlus's rule (evalplus_check)


def _proxy(name: str, channel: Channel) -> Callable[..., Any]:
    """A stand-in for one of the solution's functions. After each call that returned, its attribute
    `utscale_call_seconds` holds the call's wall time in the solution's process, without the encoding
    and transfer of its arguments and result."""
    def call(*args: Any, **kwargs: Any) -> Any:
        result = channel.call(name, args, kwargs)
        setattr(call, CALL_SECONDS, channel.call_seconds)
        return result

    call.__name__ = call.__qualname__ = name
    return call


def stand_ins(description: list[list[Any]], channel: Channel) -> dict[str, Any]:
    """The test's view of the solution's names, built fresh for each test from the loader's description."""
    names: dict[str, Any] = {}
    for entry in description:
        if not (isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[0], str)):
            continue
        name, kind = entry[0], entry[1]
        if kind == "c":
            names[name] = _proxy(name, channel)
        elif kind == "d" and len(entry) == 3:
            names[name] = entry[2]
        elif kind == "m" and len(entry) == 3 and _importable(entry[2]):
            names[name] = importlib.import_module(entry[2])
        else:
            names[name] = Opaque(name, str(entry[2] if len(entry) == 3 else kind), channel)
    return names


def _importable(module: Any) -> bool:
    """A module the judge imports itself: standard library only, and none that acts on import."""
    if not isinstance(module, str) or not module:
        return False
    top = module.split(".", 1)[0]
    if top not in sys.stdlib_module_names or top in NOT_IMPORTED:
        return False
    try:
        importlib.import_module(module)
    except BaseException:  # noqa: BLE001 - not importable here: an opaque placeholder
        return False
    return True
