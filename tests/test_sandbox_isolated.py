"""`isolated` mode: the verdict is decided by a process that never runs solution code.

The forgery corpus is written so that a solution *passes iff its forgery worked*: each one carries a
wrong `add` (or none at all) and is judged by a test that the wrong `add` fails.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from utscale import benchmarks
from utscale.evalplus_check import _evalplus_check
from utscale.sandbox import Executor, Pair, SandboxSettings, run_pairs, worker
from utscale.sandbox.codec import Unencodable, dumps, encode, loads, receive, send
from utscale.sandbox.isolated import CALL_SECONDS, Channel, answer, apply_mutation, rebuild_exception, stand_ins
from utscale.sandbox.oracle import oracle_passes

from tests.test_sandbox import ADD_OK, GOOD, JAILS, WRONG, Listener, sandbox_processes, unit_test_program


def roundtrip(value):
    return loads(dumps(encode(value)))


# --- the encoding ------------------------------------------------------------------------------------

def test_plain_data_crosses_exactly():
    value = {"a": [1, 2.5, -0.0, None, True, "x", b"\x00\xff", 3 + 4j, (1, (2, 3)), {5, 6}, frozenset({7})],
             (1, "k"): {"nested": [[[]]]}, 10**500: "a long int", 1.0: "float key"}
    back = roundtrip(value)
    assert back == value
    assert type(back["a"][8]) is tuple and type(back["a"][9]) is set and type(back["a"][10]) is frozenset
    assert math.copysign(1, back["a"][2]) == -1  # the sign of -0.0 crosses
    nan, inf = roundtrip([float("nan"), float("inf"), float("-inf")])[0], roundtrip(float("inf"))
    assert math.isnan(nan) and inf == math.inf


def test_subclasses_cross_as_their_base_types_whatever_they_override():
    class AlwaysEqualInt(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

        def __int__(self):
            return 999

    class LyingStr(str):
        def __str__(self):
            return "lie"

    class Disguised:
        __class__ = int  # isinstance(Disguised(), int) is True

    back = roundtrip([AlwaysEqualInt(3), LyingStr("true"), (True, False)])
    assert back == [3, "true", (True, False)]
    assert [type(x) for x in back] == [int, str, tuple]
    assert back[0] != 4  # the always-equal __eq__ stayed behind
    with pytest.raises(Unencodable):
        encode(Disguised())


@pytest.mark.parametrize("value", [object(), lambda: 1, (x for x in range(3)), bytearray(b"x"), range(3), ...])
def test_anything_else_cannot_cross(value):
    with pytest.raises(Unencodable):
        encode(value)


def test_a_cyclic_structure_cannot_cross():
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(Unencodable):
        encode(cycle)


@pytest.mark.parametrize("data", [b'{"t": [1], "s": [2]}', b'{"p": []}', b'{"d": [[[1], 2]]}', b'{"s": [[1]]}',
                                  b'{"c": ["1", 2]}', b'{"b": 5}', b"[" * 100_000, b"cos\nsystem\n(S'ls'\ntR."])
def test_the_decoder_refuses_anything_but_tagged_plain_data(data):
    with pytest.raises((ValueError, TypeError, RecursionError)):
        loads(data)


def test_mutated_arguments_are_applied_in_place_keeping_nested_identity():
    inner = [3, 1]
    arg = [inner, {"k": 1}, 5]
    apply_mutation(arg, [[1, 3], {"k": 2, "new": 0}, 6])
    assert arg == [[1, 3], {"k": 2, "new": 0}, 6] and arg[0] is inner
    shrinking, d, s = [1, 2, 3], {"a": 1, "b": 2}, {1, 2}
    apply_mutation(shrinking, [9])
    apply_mutation(d, {"b": 3})
    apply_mutation(s, {4})
    assert (shrinking, d, s) == ([9], {"b": 3}, {4})


def test_exceptions_come_back_catchable_as_their_builtin_base():
    exc = rebuild_exception("ParseError", "ValueError", "bad input")
    assert isinstance(exc, ValueError) and type(exc).__name__ == "ParseError" and str(exc) == "bad input"
    assert type(rebuild_exception("KeyError", "KeyError", "k")) is KeyError
    assert isinstance(rebuild_exception("Odd", "not_a_builtin", "m"), Exception)
    assert isinstance(rebuild_exception("MyDecodeError", "UnicodeDecodeError", "m"), UnicodeError)


def test_a_stand_in_reports_the_calls_own_time_not_the_transfer_of_its_result():
    """EvalPlus's per-input limit is on the solution's time: a stand-in carries its call's wall time as
    the solution's process measured it. A 30 MB answer that takes milliseconds to build but far longer
    to encode and move is judged on the milliseconds; a call that sleeps is judged on its sleep."""
    namespace: dict = {}
    exec("import time\ndef big(n):\n    return 'x' * n\ndef slow(s):\n    time.sleep(s)\n    return s\n", namespace)
    judge, server = socket.socketpair()

    def serve() -> None:
        while True:
            try:
                request = receive(server)
            except EOFError:
                return
            send(server, answer(request, namespace))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    channel = Channel(judge)
    names = stand_ins([["big", "c"], ["slow", "c"]], channel)
    big, slow = names["big"], names["slow"]
    started = time.perf_counter()
    assert len(big(30_000_000)) == 30_000_000
    round_trip = time.perf_counter() - started
    assert 0 <= getattr(big, CALL_SECONDS) < round_trip / 2
    assert slow(0.1) == 0.1 and getattr(slow, CALL_SECONDS) >= 0.1
    # the rule itself: the late call is rejected, the big answer is in time for a limit under its transfer
    within = lambda inp: ("x" * inp[0] if inp[0] > 1 else inp[0], round_trip / 2)  # noqa: E731
    _evalplus_check("humaneval", "big", big, [[30_000_000]], within, 0)
    with pytest.raises(AssertionError, match="over its limit of 0.05 s"):
        _evalplus_check("humaneval", "slow", slow, [[0.1]], lambda inp: (inp[0], 0.05), 0)
    judge.close()
    thread.join(timeout=10)


# --- isolated mode end to end ------------------------------------------------------------------------

def isolated(**kwargs) -> Executor:
    return Executor(workers=2, settings=SandboxSettings(mode="isolated", jail="none", **kwargs))


def statuses(pairs: list[Pair], executor: Executor) -> dict[str, str]:
    return {v.id: v.status for v in run_pairs(pairs, executor)}


@pytest.mark.slow
def test_honest_solutions_get_a_fresh_interpreters_verdicts():
    mutate = "def sort_in_place(xs):\n    xs.sort()\n\ndef fill(d):\n    d['seen'] = True\n    return len(d)\n"
    mutate_test = unit_test_program(
        "xs = [3, 1, 2]\nself.assertIsNone(sort_in_place(xs))\nself.assertEqual(xs, [1, 2, 3])\n"
        "d = {}\nself.assertEqual(fill(d), 1)\nself.assertEqual(d, {'seen': True})")
    raises = "class ParseError(ValueError):\n    pass\n\ndef parse(s):\n    if not s:\n        raise ParseError('empty')\n    return int(s)\n"
    raises_test = unit_test_program("with self.assertRaises(ValueError):\n    parse('')\nself.assertEqual(parse('12'), 12)")
    data = "import math\nLIMIT = (1, 2.5)\ndef area(r):\n    return math.pi * r * r\n"
    data_test = unit_test_program("self.assertEqual(LIMIT, (1, 2.5))\nself.assertAlmostEqual(area(1), math.pi)",
                                  imports="")
    rich = "def stats(xs):\n    return {'n': len(xs), 'set': set(xs), 'pair': (min(xs), max(xs)), 'z': complex(1, -1)}\n"
    rich_test = unit_test_program("self.assertEqual(stats([2, 1, 2]), {'n': 3, 'set': {1, 2}, 'pair': (1, 2), 'z': 1-1j})")
    pairs = [Pair("good", GOOD, ADD_OK), Pair("wrong", WRONG, ADD_OK), Pair("mutate", mutate, mutate_test),
             Pair("raises", raises, raises_test), Pair("data", data, data_test), Pair("rich", rich, rich_test),
             Pair("load_error", "raise RuntimeError('no')\n" + GOOD, ADD_OK),
             Pair("syntax", "def add(a, b)\n    return a + b\n", ADD_OK),
             Pair("spin", "def add(a, b):\n    while True:\n        pass\n", ADD_OK),
             Pair("spin_on_load", "while True:\n    pass\n" + GOOD, ADD_OK),
             Pair("dies", "import os\ndef add(a, b):\n    os._exit(3)\n", ADD_OK)]
    with isolated(timeout=1.0) as ex:
        got = statuses(pairs, ex)
    assert got == {"good": "pass", "wrong": "fail", "mutate": "pass", "raises": "pass", "data": "pass", "rich": "pass",
                   "load_error": "error", "syntax": "error", "spin": "timeout", "spin_on_load": "timeout",
                   "dies": "crash"}
    for pair in pairs:
        assert oracle_passes(pair.solution, pair.test, timeout=3) == (got[pair.id] == "pass"), pair.id


def test_what_cannot_cross_gets_its_own_status_even_when_the_test_catches_it():
    instance = "class Box:\n    def __init__(self, v):\n        self.v = v\n\ndef make(v):\n    return Box(v)\n"
    generator = "def evens(n):\n    return (i for i in range(0, n, 2))\n"
    module_object = "class Config:\n    pass\nCONFIG = Config()\n"
    pairs = [Pair("instance", instance, unit_test_program("self.assertEqual(make(1).v, 1)")),
             Pair("generator", generator, unit_test_program("self.assertEqual(list(evens(5)), [0, 2, 4])")),
             Pair("caught", generator, unit_test_program("try:\n    list(evens(5))\nexcept Exception:\n    pass")),
             Pair("global", module_object, unit_test_program("self.assertIsNotNone(CONFIG.__dict__)")),
             Pair("argument", GOOD, unit_test_program("with self.assertRaises(TypeError):\n    add(lambda: 1, 2)"))]
    with isolated() as ex:
        got = statuses(pairs, ex)
    assert got == dict.fromkeys(got, "unencodable") and set(got) == {p.id for p in pairs}


def test_each_test_starts_from_the_freshly_loaded_solution_in_either_order():
    solution = "CALLS = []\ndef add(a, b):\n    CALLS.append(1)\n    return a + b\ndef calls():\n    return len(CALLS)\n"
    first = unit_test_program("add(1, 2)\nadd(1, 2)\nself.assertEqual(calls(), 2)")
    second = unit_test_program("self.assertEqual(calls(), 0)")
    for order in (1, -1):
        with isolated() as ex:
            assert statuses([Pair("first", solution, first), Pair("second", solution, second)][::order], ex) == \
                {"first": "pass", "second": "pass"}


FRAME_WALK = """
import gc, os, sys
def _forge():
    frames, f = [], sys._getframe()
    while f is not None:
        frames.append(f.f_locals)
        f = f.f_back
    for scope in frames + [o for o in gc.get_objects() if isinstance(o, dict)]:
        if 'nonce' in scope and 'write_fd' in scope:
            for i in range(64):
                try:
                    os.write(scope['write_fd'], f"{scope['nonce']}\\tV\\t{i}\\tpass\\t1\\t0.0\\n"
                                                f"{scope['nonce']}\\tE\\t{i}\\t0.0\\n".encode())
                except OSError:
                    pass
            os._exit(0)
_forge()
"""

HUNT_EVERY_PYTHON_OBJECT = """
import gc, os, sys
def _hunt():
    # any hexadecimal string held by a frame, a module, a closure, a default or any container gc can list
    scopes = []
    for frame in sys._current_frames().values():
        while frame is not None:
            scopes.append(frame.f_locals)
            frame = frame.f_back
    scopes += [vars(m) for m in list(sys.modules.values()) if hasattr(m, '__dict__')]
    for o in gc.get_objects():
        if isinstance(o, dict):
            scopes.append(o)
        elif isinstance(o, (list, tuple, set, frozenset)):
            scopes.append(dict(enumerate(o)))
        elif type(o).__name__ == 'cell':
            try:
                scopes.append({0: o.cell_contents})
            except ValueError:
                pass
        elif hasattr(o, '__defaults__'):
            scopes.append(dict(enumerate(o.__defaults__ or ())))
            scopes.append(o.__kwdefaults__ or {})
    found = set()
    for scope in scopes:
        for v in list(scope.values()):
            v = v.decode('latin-1') if isinstance(v, bytes) else v
            if isinstance(v, str) and 8 <= len(v) <= 128 and all(c in '0123456789abcdefABCDEF' for c in v):
                found.add(v)
    # in the worker's record format: a test's verdict, then its end
    records = ''.join(f'{n}\\tV\\t{i}\\tpass\\t1\\t0.0\\n{n}\\tE\\t{i}\\t0.0\\n'
                      for n in sorted(found) for i in range(4)).encode()
    for fd in range(3, 64):
        try:
            os.write(fd, records)
        except OSError:
            pass
    os._exit(0)
_hunt()
"""

FORGERIES = {
    # the generic prelude: walk to the driver's frame, write `pass` for every test, exit
    "frame_walk": FRAME_WALK,
    # the same, for a nonce anywhere in the process's Python objects (it finds one: see the next test)
    "hunt_every_python_object": HUNT_EVERY_PYTHON_OBJECT,
    "replace_the_runner": "import sys\nm = sys.modules['utscale.sandbox.child']\nm.run_test_program = lambda *a, **k: ('pass', 1)\n"
                          "m._one_test = lambda *a, **k: ('pass', 1)\n",
    # every name the verdict passes through after loading, rebound to say `pass`
    "rebind_the_harness": "import os, sys, functools\nm = sys.modules['utscale.sandbox.child']\nemit, write = m._emit, os.write\n"
                          "m._emit = lambda index, status='', *rest: emit(index, 'pass', *rest)\n"
                          "os.write = lambda fd, data: write(fd, data.replace(b'\\tfail\\t', b'\\tpass\\t')"
                          ".replace(b'\\ttampered\\t', b'\\tpass\\t'))\n"
                          "m.run_test_program = m._one_test = lambda *a, **k: ('pass', 1)\n"
                          "m._tampered = lambda *a, **k: False\nm._test_in_fork = m._tampered\n"
                          "functools.partial = lambda *a, **k: (lambda *b, **c: ('pass', 1))\n",
    "patch_was_successful": "import unittest\nunittest.TestResult.wasSuccessful = lambda self: True\n",
    "patch_assert_equal": "import unittest\nunittest.TestCase.assertEqual = lambda self, a, b, msg=None: None\n",
    "patch_testcase_run": "import unittest\nunittest.TestCase.run = lambda self, result=None: result\n",
    "spray_every_descriptor": "import os, struct, json\nframe = json.dumps(['r', 5, [], 0.0]).encode()\n"
                              "for fd in range(0, 256):\n    try:\n        os.write(fd, struct.pack('>I', len(frame)) + frame)\n"
                              "        os.write(fd, b'R\\n0\\tpass\\t1\\t0.0\\n')\n    except OSError:\n        pass\n",
    "proc_of_other_processes": "import os\nfor pid in os.listdir('/proc'):\n    if not pid.isdigit():\n        continue\n"
                               "    for fd in range(3, 32):\n        try:\n"
                               "            with open(f'/proc/{pid}/fd/{fd}', 'wb') as h:\n                h.write(b'0\\tpass\\t1\\t0.0\\n')\n"
                               "        except OSError:\n            pass\n",
}
# what fast mode cannot stop (README): a solution written against utscale's own harness, which reads the
# nonce through the descriptor the harness reads it from, or rewrites a harness function in place
FAST_MODE_LIMITS = {
    "read_the_nonce_descriptor": "import os\nn = os.pread(4, 16, 0).hex()\n"
                                 "os.write(3, ''.join(f'{n}\\tV\\t{i}\\tpass\\t1\\t0.0\\n{n}\\tE\\t{i}\\t0.0\\n'"
                                 " for i in range(4)).encode())\n"
                                 "os._exit(0)\n",
    "rewrite_the_runner_in_place": "import sys\nm = sys.modules['utscale.sandbox.child']\n"
                                   "m.run_test_program.__code__ = (lambda code, namespace, before, settings: ('pass', 1)).__code__\n",
}
RETURNS = {  # solutions whose add returns something that claims to equal anything
    "always_equal_object": "class Yes:\n    def __eq__(self, other):\n        return True\n\n"
                           "def add(a, b):\n    return Yes()\n",
    "always_equal_int": "class Yes(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n\n"
                        "def add(a, b):\n    return Yes(0)\n",
}


@pytest.mark.parametrize("jail", JAILS)
def test_no_forgery_passes_in_isolated_mode(jail):
    pairs = [Pair(name, prelude + WRONG, ADD_OK) for name, prelude in {**FORGERIES, **FAST_MODE_LIMITS}.items()]
    pairs += [Pair(name, code, ADD_OK) for name, code in RETURNS.items()]
    pairs += [Pair("control", GOOD, ADD_OK)]
    with Executor(workers=2, settings=SandboxSettings(mode="isolated", jail=jail)) as ex:
        got = statuses(pairs, ex)
    assert got.pop("control") == "pass"
    assert not [name for name, status in got.items() if status == "pass"], got
    assert got["always_equal_object"] == "unencodable" and got["always_equal_int"] == "fail"


def test_the_generic_prelude_labels_no_solution_correct():
    """The issue's forgery: a prelude with no solution in it, labelled against real ground truth."""
    problems = benchmarks.load_benchmark("humaneval", limit=6).problems
    pairs = [Pair(p.task_id, FRAME_WALK, p.ground_truth) for p in problems]
    pairs += [Pair(p.task_id + "|ref", p.reference_solution, p.ground_truth) for p in problems]
    with isolated(timeout=3.0) as ex:
        got = statuses(pairs, ex)
    assert not [p.task_id for p in problems if got[p.task_id] == "pass"], got
    assert [got[p.task_id + "|ref"] for p in problems] == ["pass"] * len(problems)


SOLUTION_SIDE_ATTACKS = {  # each `add` is right only if its attack worked
    "read_a_secret": "import os\nsecret = ''\nfor pid in os.listdir('/proc'):\n    try:\n"
                     "        secret += open(f'/proc/{pid}/environ').read()\n    except OSError:\n        pass\n"
                     "secret += os.environ.get('UTSCALE_SECRET', '')\n"
                     "def add(a, b):\n    return a + b if 'hunter2' in secret else None\n",
    "connect": "import socket\ndef add(a, b):\n    try:\n        socket.create_connection(('127.0.0.1', PORT), timeout=0.5).close()\n"
               "    except OSError:\n        return None\n    return a + b\n",
    "write_outside": "def add(a, b):\n    try:\n        open(OUTSIDE, 'w').write('pwned')\n    except OSError:\n        return None\n"
                     "    return a + b\n",
    "fork_and_linger": "import os, time\ndef add(a, b):\n    try:\n        pid = os.fork()\n    except OSError:\n        return None\n"
                       "    if pid == 0:\n        time.sleep(60)\n    return a + b\n",
    "kill_every_process_of_the_uid": "import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n    return a + b\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("jail", JAILS)
def test_solution_side_attacks_are_contained_in_isolated_mode(jail, tmp_path, monkeypatch):
    monkeypatch.setenv("UTSCALE_SECRET", "hunter2")
    listener = Listener()
    outside = tmp_path / "outside.txt"
    try:
        pairs = [Pair(name, code.replace("PORT", str(listener.port)).replace("OUTSIDE", repr(str(outside))), ADD_OK)
                 for name, code in SOLUTION_SIDE_ATTACKS.items()]
        pairs.append(Pair("control", GOOD, ADD_OK))
        with Executor(workers=2, settings=SandboxSettings(mode="isolated", jail=jail)) as ex:
            got = statuses(pairs, ex)
            if os.geteuid() == 0:
                assert sandbox_processes(w.uid for w in ex._workers) == []
    finally:
        listener.close()
    assert got.pop("control") == "pass"
    assert not [name for name, status in got.items() if status == "pass"], got
    assert listener.connections == 0 and not outside.exists()


@pytest.mark.parametrize("mode", ["fast", "isolated"])
def test_fast_mode_reports_unittest_tampering_that_isolated_mode_never_sees(mode):
    pairs = [Pair(name, FORGERIES[name] + GOOD, ADD_OK) for name in ("patch_was_successful", "patch_assert_equal")]
    with Executor(workers=1, settings=SandboxSettings(mode=mode, jail="none")) as ex:
        got = statuses(pairs, ex)
    # in fast mode the solution's patch lands in the process that runs the test: reported, a fail;
    # in isolated mode it lands in the solution's own process, and the honest add passes
    assert set(got.values()) == ({"tampered"} if mode == "fast" else {"pass"})


def test_isolated_processes_are_not_dumpable():
    """No other process of the job (the judge above all) can be opened through /proc by the solution."""
    probe = textwrap.dedent("""
        import os
        def add(a, b):
            for pid in os.listdir('/proc'):
                if pid.isdigit() and int(pid) != os.getpid():
                    try:
                        os.listdir(f'/proc/{pid}/fd')
                        return None
                    except OSError:
                        pass
            return a + b
    """)
    with isolated() as ex:
        assert statuses([Pair("probe", probe, ADD_OK)], ex) == {"probe": "pass"}


def test_the_forgery_corpus_forges_fast_mode_which_is_why_rewards_use_isolated():
    """In fast mode (the solution shares the test's process) no Python object leads to the verdict
    channel and rebinding the harness is `tampered`; what still forges it is code written against the
    harness itself (its descriptors, its functions' code) and always-equal results, as the README says.
    Isolated mode stops them all (above)."""
    pairs = [Pair(name, prelude + WRONG, ADD_OK) for name, prelude in {**FORGERIES, **FAST_MODE_LIMITS}.items()]
    pairs += [Pair(name, code, ADD_OK) for name, code in RETURNS.items()]
    with Executor(workers=2, settings=SandboxSettings(mode="fast", jail="none")) as ex:
        got = statuses(pairs, ex)
    assert {name for name, status in got.items() if status == "pass"} == {*FAST_MODE_LIMITS, *RETURNS}
    assert {got[name] for name in ("patch_was_successful", "patch_assert_equal", "patch_testcase_run",
                                   "replace_the_runner", "rebind_the_harness")} == {"tampered"}
    # the frame walk finds no nonce and lets the wrong add be judged; the hunt writes what it found and exits
    assert got["frame_walk"] == "fail" and got["hunt_every_python_object"] == "crash"


def test_records_outside_the_protocol_count_for_nothing():
    """Only code that read the nonce can write a record the worker reads at all; one that is malformed
    (numbers that are not, a status outside the vocabulary) never stops the worker, and a status it does
    not know is a `crash`."""
    garble = ("import os\nn = os.pread(4, 16, 0).hex()\n"
              "os.write(3, (f'{n}\\tV\\tx\\tpass\\t1\\t0.0\\n{n}\\tE\\tzero\\t0\\n{n}\\tV\\t0\\tpwned\\t1\\t0.0\\n'"
              " f'{n}\\tE\\t0\\t0.0\\n').encode())\nos._exit(0)\n")
    pairs = [Pair("garbled", garble + GOOD, ADD_OK), Pair("control", GOOD + "# after\n", ADD_OK)]
    with Executor(workers=1, settings=SandboxSettings(mode="fast", jail="none")) as ex:
        assert statuses(pairs, ex) == {"garbled": "crash", "control": "pass"}


@pytest.mark.parametrize("where", ["frame", "closure", "module", "list"])
def test_the_hunt_finds_a_nonce_left_in_any_python_object(where, tmp_path):
    """The hunt above has teeth: a nonce held in a frame, a closure, a module or a container, with a
    descriptor open, gets forged records written to it."""
    nonce = "0123456789abcdef" * 2
    hold = {"frame": f"def holder():\n    nonce = {nonce!r}\n    exec(HUNT, {{}})\nholder()\n",
            "closure": f"def outer():\n    nonce = {nonce!r}\n    def inner():\n        return nonce\n"
                       f"    return inner\nkeep = outer()\nexec(HUNT, {{}})\n",
            "module": f"import types, sys\nsys.modules['m'] = types.ModuleType('m')\nsys.modules['m'].n = {nonce!r}\n"
                      "exec(HUNT, {})\n",
            "list": f"keep = [[{nonce!r}.encode()]]\nexec(HUNT, {{}})\n"}[where]
    read_fd, write_fd = os.pipe()
    script = tmp_path / "hold.py"
    script.write_text(f"HUNT = {HUNT_EVERY_PYTHON_OBJECT!r}\n" + hold)
    subprocess.run([sys.executable, str(script)], pass_fds=(write_fd,), check=True, timeout=60)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        assert f"{nonce}\tV\t0\tpass\t1\t0.0\n{nonce}\tE\t0\t0.0\n".encode() in pipe.read()


@pytest.mark.slow
def test_a_solution_that_runs_out_of_time_while_growing_memory_is_a_timeout():
    """The committed embedded run's change_base(-3, 2) loops for ever appending digits: a timeout in fast
    mode, and it must be one in isolated mode too (the limit's signal landing in the server's own
    reading or writing used to end the server: `crash`)."""
    grows = "def add(a, b):\n    digits = []\n    x = -3\n    while x:\n        digits.append(str(x % 2))\n        x //= 2\n"
    swallows = ("def add(a, b):\n    while True:\n        try:\n            sum(range(10**5))\n"
                "        except BaseException:\n            pass\n")
    two_calls = unit_test_program("self.assertEqual(add(1, 1), 2)\nself.assertEqual(add(2, 3), 5)")
    pairs = [Pair("grows", grows, two_calls), Pair("swallows", swallows, ADD_OK), Pair("good", GOOD, two_calls)]
    for mode in ("fast", "isolated"):
        with Executor(workers=2, settings=SandboxSettings(mode=mode, jail="none", timeout=1.0)) as ex:
            assert statuses(pairs, ex) == {"grows": "timeout", "swallows": "timeout", "good": "pass"}, mode


FORKS = textwrap.dedent("""
    import os, time
    def forked(count):
        made = 0
        for _ in range(count):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(3)
                os._exit(0)
            made += 1
        return made
    AT_LOAD = {at_load}
    def add(a, b):
        return a + b + {penalty} * forked(20)
""")
AS_USER = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("ignore")
    from utscale.sandbox import Executor, Pair, SandboxSettings, run_pairs, worker
    cases, max_processes = json.loads(sys.argv[1]), int(sys.argv[2])
    with Executor(workers=1, settings=SandboxSettings(timeout=5, mode="isolated", jail="bwrap",
                                                      max_processes=max_processes)) as ex:
        print(json.dumps({v.id: v.status for v in run_pairs([Pair(k, s, t) for k, (s, t) in cases.items()], ex)}))
""")


def run_as_nobody(cases: dict, max_processes: int = 1) -> dict:
    """The sandbox as an ordinary user (nobody), with bubblewrap, while that user runs 20 other processes:
    the uid's process count there is not the sandbox's own."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("bwrap"):
        pytest.skip("needs root (to become nobody), setpriv and bubblewrap")
    lib = Path(__file__).resolve().parents[1] / "lib"
    nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    others = [subprocess.Popen([*nobody, "sleep", "60"]) for _ in range(20)]
    try:
        got = subprocess.run([*nobody, "env", "HOME=/", f"PYTHONPATH={lib}", sys.executable, "-c", AS_USER,
                              json.dumps(cases), str(max_processes)], capture_output=True, text=True, timeout=120,
                             cwd="/")
    finally:
        for proc in others:
            proc.kill()
            proc.wait()
    if got.returncode and "Permission denied" in got.stderr:
        pytest.skip("the checkout is not readable by nobody")
    assert got.returncode == 0, got.stderr[-2000:]
    return json.loads(got.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_as_an_ordinary_user_under_bubblewrap_a_solution_cannot_fork():
    cases = {"good": (GOOD, ADD_OK),
             # passes iff every fork failed (add is off by the number of processes it made)
             "calls_fork": (FORKS.format(at_load="0", penalty=1), ADD_OK),
             "forks_while_loading": (FORKS.format(at_load="forked(20)", penalty=0), ADD_OK)}
    got = run_as_nobody(cases)
    assert got["good"] == "pass" and got["calls_fork"] == "pass"
    assert got["forks_while_loading"] == "crash"  # it used the room the test's server needed: no verdict forged


@pytest.mark.slow
def test_as_an_ordinary_user_max_processes_still_lets_a_solution_fork_that_many():
    forks = FORKS.format(at_load="0", penalty=1)  # add(0, 0) is the number of processes the server made
    # one job per count (the solutions differ by a constant): a job's sleeping children would hold slots
    got = run_as_nobody({f"made_{k}": (forks + f"JOB = {k}\n", unit_test_program(f"self.assertEqual(add(0, 0), {k})"))
                         for k in range(5)}, max_processes=3)
    assert got == {f"made_{k}": "pass" if k == 2 else "fail" for k in range(5)}  # 3 slots, itself included


@pytest.mark.parametrize("splice", [True, False])
def test_each_job_gets_a_fresh_nonce_with_or_without_splicing_from_urandom(splice, monkeypatch):
    """The nonce is copied by the kernel (`sendfile`); a kernel that cannot splice from /dev/urandom
    gets it written from `os.urandom` instead, never a short or repeated one."""
    if not splice:
        def refuse(*args):
            raise OSError(22, "Invalid argument")
        monkeypatch.setattr(worker.os, "sendfile", refuse)
    nonces = []
    for _ in range(3):
        fd = worker._new_nonce()
        try:
            nonces.append(os.pread(fd, 64, 0))
        finally:
            os.close(fd)
    assert [len(n) for n in nonces] == [worker.NONCE_BYTES] * 3 and len(set(nonces)) == 3


def test_a_result_that_cannot_cross_is_still_known_not_to_be_none():
    """EvalPlus judges MBPP+'s regex tasks (check_str, ...) on `out is not None` alone: a `re.Match`
    cannot cross, but that much about it is known; any other use of it stays `unencodable`."""
    matcher = "import re\ndef check_str(s):\n    return re.search('^[aeiou]', s)\n"
    pairs = [Pair("not_none", matcher, unit_test_program("self.assertIsNotNone(check_str('apple'))")),
             Pair("none", matcher, unit_test_program("self.assertIsNotNone(check_str('pear'))")),
             Pair("used", matcher, unit_test_program("self.assertEqual(check_str('apple').group(0), 'a')"))]
    with isolated() as ex:
        got = statuses(pairs, ex)
    assert got == {"not_none": "pass", "none": "fail", "used": "unencodable"}
    for pair in pairs[:2]:
        assert oracle_passes(pair.solution, pair.test, timeout=3) == (got[pair.id] == "pass"), pair.id
