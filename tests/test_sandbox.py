"""The sandbox against a hostile-program corpus: every attack fails to produce a pass, the run goes on,
every control verdict stays right, and nothing (process, file, connection) is left behind.

Each hostile test program is written so that it *passes iff the attack worked*.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from utscale.sandbox import Executor, Pair, SandboxSettings, plan_jobs, run_pairs
from utscale.sandbox.executor import bwrap_prefix, private_tmp_roots
from utscale.sandbox.oracle import oracle_passes

ROOT = os.geteuid() == 0
GOOD = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"


def unit_test_program(body: str, imports: str = "import os, sys, signal, re, socket") -> str:
    return f"import unittest\n{imports}\n\n\nclass Hostile(unittest.TestCase):\n    def test_attack(self):\n" + \
        textwrap.indent(textwrap.dedent(body).strip(), " " * 8) + "\n"


ADD_OK = unit_test_program("self.assertEqual(add(2, 3), 5)")


def sandbox_processes(uids) -> list[int]:
    """Pids of processes running as any of these uids."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            if int(uid_line.split()[1]) in set(uids):
                found.append(int(entry.name))
    return found


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


JAILS = ["none"] + (["bwrap"] if bwrap_prefix() else [])


@pytest.fixture(params=[(jail, mode) for jail in JAILS for mode in ("fast", "isolated")], ids=str)
def executor(request):
    jail, mode = request.param
    with Executor(workers=2, settings=SandboxSettings(timeout=1.0, jail=jail, mode=mode)) as ex:
        yield ex


def hostile_corpus(tmp_path: Path, port: int) -> dict[str, tuple[str, str]]:
    outside = tmp_path / "outside.txt"
    return {
        "os_exit_in_test": (GOOD, unit_test_program("os._exit(0)")),
        "sys_exit_in_test": (GOOD, unit_test_program("sys.exit(0)")),
        "sys_exit_on_import": ("import sys\nsys.exit(0)\n" + GOOD, ADD_OK),
        "kill_parent": (GOOD, unit_test_program("os.kill(os.getppid(), signal.SIGKILL)\nself.assertTrue(True)")),
        "kill_own_group": (GOOD, unit_test_program("os.killpg(os.getpgid(0), signal.SIGKILL)")),
        "ignore_alarm_and_spin": (GOOD, unit_test_program("signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass")),
        "swallow_timeouts": (GOOD, unit_test_program("while True:\n    try:\n        sum(range(10**6))\n    except BaseException:\n        pass")),
        "hang_in_c_regex": (GOOD, unit_test_program("re.match(r'(a+)+$', 'a' * 40 + 'b')\nself.assertTrue(True)")),
        "fork_and_linger": (GOOD, unit_test_program("pid = os.fork()\nif pid == 0:\n    import time; time.sleep(60)\nself.assertTrue(pid > 0)")),
        "flood_memory": (GOOD, unit_test_program("blob = bytearray(8 * 2**30)\nself.assertTrue(len(blob) > 0)")),
        "flood_stdout": (WRONG, unit_test_program("for _ in range(200):\n    print('x' * 100000)\nself.assertEqual(add(2, 3), 5)")),
        "read_environment": (GOOD, unit_test_program(
            "secret = os.environ.get('UTSCALE_SECRET', '')\n"
            "try:\n    secret += open(f'/proc/{os.getppid()}/environ').read()\nexcept OSError:\n    pass\n"
            "self.assertIn('hunter2', secret)")),
        "open_socket": (GOOD, unit_test_program(f"s = socket.create_connection(('127.0.0.1', {port}), timeout=0.5)\ns.close()")),
        "write_outside_scratch": (GOOD, unit_test_program(f"open({str(outside)!r}, 'w').write('pwned')\nself.assertTrue(True)")),
        "forge_verdict_lines": (WRONG, unit_test_program(
            "for fd in range(3, 64):\n    try:\n        os.write(fd, b'R\\n0\\tpass\\t1\\t0.0\\n')\n    except OSError:\n        pass\n"
            "self.assertEqual(add(2, 3), 5)")),
        "infinite_recursion": (GOOD, unit_test_program("def f(n):\n    return f(n + 1)\nf(0)")),
    }


@pytest.mark.slow
def test_hostile_programs_never_pass_and_leave_nothing_behind(executor, tmp_path, monkeypatch):
    monkeypatch.setenv("UTSCALE_SECRET", "hunter2")
    fds_before = len(os.listdir("/proc/self/fd"))
    listener = Listener()
    tmp_before = set(os.listdir("/tmp"))
    try:
        corpus = hostile_corpus(tmp_path, listener.port)
        pairs = [Pair(name, sol, test) for name, (sol, test) in corpus.items()]
        # controls interleaved: right verdicts must survive every attack
        pairs += [Pair(f"control_pass_{i}", GOOD + f"# copy {i}\n", ADD_OK) for i in range(3)]
        pairs += [Pair(f"control_fail_{i}", WRONG, ADD_OK + f"# copy {i}\n") for i in range(3)]
        verdicts = {v.id: v for v in run_pairs(pairs, executor)}
    finally:
        listener.close()
    assert set(verdicts) == {p.id for p in pairs}
    for name in corpus:
        assert not verdicts[name].passed, f"{name} produced a pass ({verdicts[name].status})"
    for i in range(3):
        assert verdicts[f"control_pass_{i}"].status == "pass"
        assert verdicts[f"control_fail_{i}"].status == "fail"
    assert verdicts["os_exit_in_test"].status == "crash"
    assert verdicts["kill_own_group"].status == "crash"
    assert verdicts["sys_exit_on_import"].status == "error"
    for name in ("ignore_alarm_and_spin", "swallow_timeouts", "hang_in_c_regex"):
        assert verdicts[name].status == "timeout", name
    assert listener.connections == 0
    assert not (tmp_path / "outside.txt").exists()
    if ROOT:
        assert sandbox_processes(w.uid for w in executor._workers) == []
    assert len(os.listdir("/proc/self/fd")) == fds_before
    new_tmp = set(os.listdir("/tmp")) - tmp_before
    assert not [n for n in new_tmp if not n.startswith("utscale-w")], new_tmp  # only the live workers' roots


def test_worker_scratch_roots_are_removed_on_close():
    before = {n for n in os.listdir("/tmp") if n.startswith("utscale-w")}
    with Executor(workers=2, settings=SandboxSettings(jail="none")) as ex:
        list(run_pairs([Pair("a", GOOD, ADD_OK)], ex))
    assert {n for n in os.listdir("/tmp") if n.startswith("utscale-w")} == before


@pytest.mark.skipif(not ROOT, reason="needs root to run code as another uid")
def test_a_killed_worker_is_replaced_and_the_job_resumes():
    """Without the uid drop, code can kill its worker: the test in flight is a crash, the rest still run."""
    settings = SandboxSettings(jail="none", drop_privileges=False)
    kill_parent = unit_test_program("os.kill(os.getppid(), signal.SIGKILL)")
    pairs = [Pair("t0", GOOD, ADD_OK), Pair("t1", GOOD, kill_parent),
             Pair("t2", GOOD, ADD_OK + "# later\n"), Pair("t3", GOOD, unit_test_program("self.assertEqual(add(1, 1), 3)"))]
    with Executor(workers=1, settings=settings) as ex:
        verdicts = {v.id: v.status for v in run_pairs(pairs, ex)}
        assert verdicts == {"t0": "pass", "t1": "crash", "t2": "pass", "t3": "fail"}
        assert [v.status for v in run_pairs([Pair("after", GOOD, ADD_OK)], ex)] == ["pass"]


def test_statuses_and_tests_run_for_ordinary_programs():
    two_methods = ("import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(add(1, 1), 2)\n"
                   "    def test_b(self):\n        self.assertEqual(add(0, 0), 0)\n")
    raising = unit_test_program("raise ValueError('boom')")
    empty = "import unittest\nclass T(unittest.TestCase):\n    pass\n"
    pairs = [Pair("two", GOOD, two_methods), Pair("raising", GOOD, raising), Pair("empty", GOOD, empty),
             Pair("syntax", GOOD, "class T(:\n"), Pair("no_class", GOOD, "x = 1\n"),
             Pair("bad_solution", "def add(a, b) return", ADD_OK), Pair("main_guard", GOOD + "if __name__ == '__main__':\n    input()\n", ADD_OK)]
    with Executor(workers=2, settings=SandboxSettings(jail="none")) as ex:
        got = {v.id: (v.status, v.tests_run) for v in run_pairs(pairs, ex)}
    assert got == {"two": ("pass", 2), "raising": ("error", 1), "empty": ("invalid", 0), "syntax": ("invalid", 0),
                   "no_class": ("invalid", 0), "bad_solution": ("error", 0), "main_guard": ("pass", 1)}


def test_coderm_mode_keeps_the_papers_semantics():
    empty = "import unittest\nclass T(unittest.TestCase):\n    pass\n"
    with Executor(workers=1, settings=SandboxSettings(jail="none", mode="coderm")) as ex:
        got = {v.id: v.status for v in run_pairs([Pair("empty", GOOD, empty), Pair("ok", GOOD, ADD_OK),
                                                   Pair("wrong", WRONG, ADD_OK)], ex)}
    assert got == {"empty": "pass", "ok": "pass", "wrong": "fail"}


def test_codet_mode_keeps_codets_executor_semantics():
    """One program per solution, assertions in order in one namespace with their own limits; a case that
    cannot be compiled inside a function (CodeT packs them into one) fails every case of the program."""
    stateful = "SEEN = []\ndef add(a, b):\n    SEEN.append(a)\n    return a + b + len(SEEN) - 1\n"
    cases = {"ok": "assert add(1, 2) == 3", "wrong": "assert add(1, 2) == 4", "error": "assert add(1) == 1",
             "slow": "assert add(1, 2) == 3 and all(i >= 0 for i in iter(int, 1))", "after": "assert add(2, 2) == 4"}
    with Executor(workers=1, settings=SandboxSettings(jail="none", mode="codet", timeout=0.2)) as ex:
        got = {v.id: v.status for v in run_pairs([Pair(k, GOOD, c) for k, c in cases.items()] +
                                                  [Pair("loops", "def add(a, b):\n    while True: pass\n", cases["ok"])], ex)}
        assert got == {"ok": "pass", "wrong": "fail", "error": "error", "slow": "timeout", "after": "pass", "loops": "timeout"}
        # shared state: the second call of the stateful add sees the first
        shared = {v.id: v.status for v in run_pairs([Pair("a", stateful, "assert add(1, 2) == 3"),
                                                     Pair("b", stateful, "assert add(2, 2) == 4")], ex)}
        assert shared == {"a": "pass", "b": "fail"}
        broken = {v.id: v.status for v in run_pairs([Pair("fine", GOOD, cases["ok"]),
                                                     Pair("star", GOOD, "assert add(1, 1) == 2\nfrom os import *")], ex)}
        assert broken == {"fine": "error", "star": "error"}
    with Executor(workers=1, settings=SandboxSettings(jail="none", mode="fast", timeout=0.2)) as ex:
        from utscale import codet

        alone = {v.id: v.status for v in run_pairs([Pair("fine", GOOD, codet.unit_test_program([cases["ok"]])),
                                                    Pair("star", GOOD, codet.unit_test_program(["assert add(1, 1) == 2\nfrom os import *"]))], ex)}
    assert alone == {"fine": "pass", "star": "invalid"}  # isolated, only the broken case fails


@pytest.mark.parametrize("mode", ["fast", "isolated", "strict", "coderm", "codet", "srank"])
def test_every_mode_runs_code_under_one_fixed_hash_seed(mode):
    """Set and dict orders of strings, and so verdicts and outputs that depend on them, are the same in
    every worker and every run: the code sees PYTHONHASHSEED=0's hashes (a worker started with -I ignored
    it and drew a random seed)."""
    seeded = subprocess.run([sys.executable, "-c", "print(hash('utscale'))"], env={"PYTHONHASHSEED": "0"},
                            capture_output=True, text=True, check=True).stdout.strip()
    solution = "def h():\n    return hash('utscale')\n"
    test = ("h()" if mode == "srank" else f"assert h() == {seeded}" if mode == "codet" else
            unit_test_program(f"self.assertEqual(h(), {seeded})"))
    with Executor(workers=2, settings=SandboxSettings(mode=mode)) as ex:  # in the jail, as runs execute
        verdicts = list(run_pairs([Pair(str(i), solution + f"# {i}\n", test) for i in range(4)], ex))
    assert [v.status for v in verdicts] == ["pass"] * 4
    if mode == "srank":
        assert {v.output for v in verdicts} == {seeded}


def test_codets_executor_records_each_input_call_without_changing_a_verdict():
    """The recorder around an assertion's input call (`outputs.recording_assertion`) reports what the call
    returned, that it began and never returned, or nothing when it was not reached; every verdict is the
    one the bare assertion gets."""
    from utscale import outputs
    from utscale.sandbox.codec import REACHED, UNENCODABLE, canonical

    solution = GOOD + "def gen(n):\n    return (i for i in range(n))\ndef spin(n):\n    while True: pass\n"
    cases = {"pass": ("assert add(1, 2) == 3", "add(1, 2)"), "fail": ("assert add(1, 2) == 4", "add(1, 2)"),
             "raises": ("assert add(1) == 1", "add(1)"), "before": ("assert _undefined == add(2, 2)", "add(2, 2)"),
             "timeout": ("assert spin(1) == 1", "spin(1)"), "generator": ("assert list(gen(2)) == [0, 1]", "gen(2)"),
             "is": ("assert add(0, 0) is 0", "add(0, 0)")}
    bare = [Pair(k, solution, text) for k, (text, _) in cases.items()]
    wrapped = [Pair(k, solution, outputs.recording_assertion(text, call)) for k, (text, call) in cases.items()]
    assert all(p.test != b.test for p, b in zip(wrapped, bare))
    with Executor(workers=1, settings=SandboxSettings(jail="none", mode="codet", timeout=0.2)) as ex:
        plain = {v.id: v.status for v in run_pairs(bare, ex)}
        recorded = {v.id: (v.status, v.output) for v in run_pairs(wrapped, ex)}
    assert {k: status for k, (status, _) in recorded.items()} == plain
    assert plain == {"pass": "pass", "fail": "fail", "raises": "error", "before": "error", "timeout": "timeout",
                     "generator": "pass", "is": "pass"}
    outs = {k: out for k, (_, out) in recorded.items()}
    assert outs == {"pass": canonical(3), "fail": canonical(3), "raises": REACHED, "before": None,
                    "timeout": REACHED, "generator": UNENCODABLE, "is": canonical(0)}


def test_state_leaking_tests_get_a_fresh_interpreter_s_verdicts_in_every_mode():
    """A test that mutates the solution's state (a module global, builtins, a list the solution returns)
    cannot change a later test's verdict: fast forks each test from the freshly loaded solution."""
    solution = "CALLS = []\ndef add(a, b):\n    CALLS.append(1)\n    return a + b\ndef cache():\n    return CALLS\n"
    first = unit_test_program("import sys\nsys.modules['builtins'].LEAK = True\ncache().append(9)\nself.assertEqual(add(1, 2), 3)")
    second = unit_test_program("import builtins\nself.assertFalse(hasattr(builtins, 'LEAK'))\nself.assertEqual(cache(), [])")
    pairs = [Pair("first", solution, first), Pair("second", solution, second)]
    expected = {p.id: ("pass" if oracle_passes(p.solution, p.test) else "fail") for p in pairs}
    assert expected == {"first": "pass", "second": "pass"}  # a fresh interpreter per pair
    for mode in ("fast", "isolated", "strict"):
        with Executor(workers=1, settings=SandboxSettings(jail="none", mode=mode)) as ex:
            assert {v.id: v.status for v in run_pairs(pairs, ex)} == expected, mode
        # and in the other order
        with Executor(workers=1, settings=SandboxSettings(jail="none", mode=mode)) as ex:
            assert {v.id: v.status for v in run_pairs(pairs[::-1], ex)} == expected, mode


@pytest.mark.parametrize("where", ["test", "solution"])
def test_tampering_with_unittest_is_reported_not_passed(where):
    patch = "import unittest\nunittest.TestResult.wasSuccessful = lambda self: True\n"
    solution, body = (WRONG, patch + "self.assertEqual(add(2, 2), 4)") if where == "test" else (patch + WRONG, "self.assertEqual(add(2, 2), 4)")
    pairs = [Pair("forged", solution, unit_test_program(body)), Pair("clean", GOOD, ADD_OK)]
    with Executor(workers=1, settings=SandboxSettings(jail="none")) as ex:
        got = {v.id: (v.status, v.passed) for v in run_pairs(pairs, ex)}
    assert got["forged"] == ("tampered", False)
    assert got["clean"] == ("pass", True)


def test_duplicate_solutions_and_tests_run_once_and_fan_out():
    from utscale.sandbox.pairs import plan_jobs

    reformatted = "def add(a,b):  # same program\n    return (a + b)\n"
    pairs = [Pair("x1", GOOD, ADD_OK), Pair("x2", reformatted, ADD_OK), Pair("x3", GOOD, ADD_OK)]
    plan = plan_jobs(pairs)
    assert len(plan.jobs) == 1 and len(plan.jobs[0].tests) == 1 and plan.unique_pairs == 1
    assert sorted(sum(plan.fan_out.values(), [])) == ["x1", "x2", "x3"]
    with Executor(workers=1, settings=SandboxSettings(jail="none")) as ex:
        assert {v.id: v.status for v in run_pairs(pairs, ex)} == {"x1": "pass", "x2": "pass", "x3": "pass"}


@pytest.mark.parametrize("mode", ["fast", "isolated", "strict", "coderm"])
def test_verdicts_agree_with_a_fresh_interpreter_per_pair(mode):
    from utscale import benchmarks

    problems = benchmarks.load_benchmark("humaneval", limit=6).problems
    pairs = []
    for p in problems:
        wrong = p.reference_solution.replace("return ", "return not ", 1)
        for sid, sol in (("ref", p.reference_solution), ("mut", wrong)):
            pairs.append(Pair(f"{p.task_id}|{sid}", sol, p.ground_truth))
    with Executor(workers=2, settings=SandboxSettings(mode=mode, timeout=3.0)) as ex:
        got = {v.id: v.passed for v in run_pairs(pairs, ex)}
    expected = {pair.id: oracle_passes(pair.solution, pair.test) for pair in pairs}
    assert got == expected
    assert sum(expected.values()) >= 6


def test_bwrap_is_used_when_asked_and_available():
    if shutil.which("bwrap") is None:
        with pytest.raises(RuntimeError, match="bubblewrap"):
            Executor(settings=SandboxSettings(jail="bwrap"))
    else:
        assert Executor(settings=SandboxSettings(jail="bwrap")).jailed


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="mode"):
        SandboxSettings(mode="turbo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        SandboxSettings(timeout=0)
    with pytest.raises(ValueError, match="uid_base"):
        SandboxSettings(uid_base=0)


@pytest.mark.skipif(not ROOT, reason="the uid reaper needs root")
def test_processes_that_leave_the_group_are_reaped_when_forking_is_allowed(tmp_path):
    """With forking allowed, a grandchild that calls setsid() escapes the process group; the reaper
    (kill -1 as the sandbox uid) still ends it."""
    escape = unit_test_program(
        "pid = os.fork()\nif pid == 0:\n    os.setsid()\n    import time\n    time.sleep(60)\n    os._exit(0)\n"
        "self.assertTrue(pid > 0)")
    settings = SandboxSettings(jail="none", max_processes=16)
    with Executor(workers=1, settings=settings) as ex:
        verdicts = {v.id: v.status for v in run_pairs([Pair("escape", GOOD, escape), Pair("ok", GOOD, ADD_OK)], ex)}
        assert verdicts == {"escape": "pass", "ok": "pass"}  # forking is allowed here, so the test passes
        assert sandbox_processes(w.uid for w in ex._workers) == []


def test_concurrent_executors_get_distinct_uids():
    with Executor(workers=2, settings=SandboxSettings(jail="none")) as a, \
            Executor(workers=2, settings=SandboxSettings(jail="none")) as b:
        uids = [w.uid for w in a._workers + b._workers]
    assert len(set(uids)) == 4


def test_without_any_jail_the_sandbox_fails_closed_unless_told_otherwise(monkeypatch):
    from utscale.sandbox import executor as ex

    monkeypatch.setattr(ex, "bwrap_prefix", lambda: None)
    monkeypatch.setattr(ex.os, "geteuid", lambda: 1000)  # a user without bubblewrap and without root
    with pytest.raises(ex.NoJail, match="no sandbox jail is available.*--jail none"):
        ex.Executor(1, SandboxSettings())
    with pytest.raises(RuntimeError, match="bubblewrap is not installed"):
        ex.Executor(1, SandboxSettings(jail="bwrap"))
    with pytest.warns(UserWarning, match="WITHOUT a jail"):
        assert ex.Executor(1, SandboxSettings(jail="none")).jailed is False


def test_uid_locks_live_in_a_folder_of_the_user_who_runs_the_sandbox():
    from utscale.sandbox import executor as ex

    assert ex.UID_LOCKS.endswith(f"-{os.geteuid()}")


def test_a_failing_serving_thread_ends_run_with_a_clear_error_keeping_the_verdicts_so_far(monkeypatch):
    """Fault injection: an unexpected exception in a serving thread (not a dead worker) must end `run()`
    with an error, never leave it waiting; what was yielded stands, and a second run finishes the rest."""
    from utscale.sandbox.executor import Job, SandboxError, _Worker

    jobs = [Job(f"j{i}", GOOD + f"# {i}\n", [("t", ADD_OK)]) for i in range(8)]
    real_run = _Worker.run

    def flaky(self, job):
        if job.key == "j3":
            raise ValueError("injected fault")
        yield from real_run(self, job)

    monkeypatch.setattr(_Worker, "run", flaky)
    seen: list[str] = []
    outcome: dict[str, BaseException] = {}

    def consume() -> None:
        try:
            with Executor(workers=2, settings=SandboxSettings(jail="none")) as ex:
                seen.extend(v.job for v in ex.run(jobs))
        except SandboxError as exc:
            outcome["error"] = exc

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(120)
    assert not consumer.is_alive(), "run() hung after a serving thread failed"
    assert "injected fault" in str(outcome["error"]) and "j3" not in seen
    monkeypatch.setattr(_Worker, "run", real_run)
    with Executor(workers=2, settings=SandboxSettings(jail="none")) as ex:
        rest = [v.job for v in ex.run([j for j in jobs if j.key not in seen])]
    assert sorted(seen + rest) == sorted(j.key for j in jobs)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "isolated", "strict"])
def test_the_cpu_clock_counts_computing_not_waiting(mode):
    """Under the cpu clock a test that waits 1.5 s with a 1 s limit passes (it computed nothing), one that
    computes for longer times out, and one that waits for ever meets the wall-clock backstop."""
    waits = "import time\ndef add(a, b):\n    time.sleep(1.5)\n    return a + b\n"
    spins = "def add(a, b):\n    while True:\n        pass\n"
    forever = "import time\ndef add(a, b):\n    time.sleep(1000)\n"
    pairs = [Pair("waits", waits, ADD_OK), Pair("spins", spins, ADD_OK), Pair("forever", forever, ADD_OK)]
    for clock, expected in (("cpu", {"waits": "pass", "spins": "timeout", "forever": "timeout"}),
                            ("wall", {"waits": "timeout", "spins": "timeout", "forever": "timeout"})):
        settings = SandboxSettings(jail="none", mode=mode, clock=clock, timeout=1.0, recheck_timeouts=False)
        with Executor(workers=2, settings=settings) as ex:
            assert {v.id: v.status for v in run_pairs(pairs, ex)} == expected, (mode, clock)


@pytest.mark.parametrize("mode", ["fast", "isolated", "strict"])
def test_a_pairs_own_limit_replaces_the_pools_and_splits_a_shared_solution_into_two_jobs(mode):
    """The same 0.4 s computation under a 0.2 s per-pair limit times out and under a 2 s one passes, in a
    pool whose own limit is 1 s; identical solutions with different limits are judged apart."""
    computes = ("import time\ndef add(a, b):\n    end = time.process_time() + 0.4\n"
                "    while time.process_time() < end:\n        pass\n    return a + b\n")
    pairs = [Pair("tight", computes, ADD_OK, timeout=0.2), Pair("loose", computes, ADD_OK, timeout=2.0),
             Pair("pool", computes, ADD_OK)]
    assert len(plan_jobs(pairs).jobs) == 3
    settings = SandboxSettings(jail="none", mode=mode, timeout=1.0, recheck_timeouts=False)
    with Executor(workers=2, settings=settings) as ex:
        assert {v.id: v.status for v in run_pairs(pairs, ex)} == {"tight": "timeout", "loose": "pass", "pool": "pass"}


def test_cpu_hogs_on_every_core_do_not_change_a_cpu_clock_verdict():
    """A test that needs about half its limit in CPU time passes with a busy loop on every core."""
    near = "def add(a, b):\n    n = 0\n    for i in range(N):\n        n += i\n    return a + b\n"

    started = time.process_time()
    n = 0
    for i in range(2_000_000):
        n += i
    per_million = (time.process_time() - started) / 2
    solution = near.replace("N", str(int(0.5 / per_million * 1e6)))  # about 0.5 s of CPU here
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        with Executor(workers=2, settings=SandboxSettings(jail="none", timeout=1.0, recheck_timeouts=False)) as ex:
            got = {v.id: v.status for v in run_pairs([Pair("near", solution, ADD_OK)], ex)}
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert got == {"near": "pass"}


@pytest.mark.parametrize("recheck", [True, False])
def test_a_timeout_is_run_once_more_alone_before_it_is_final(recheck):
    """On the wall clock the first run of this solution times out (it finds no marker and spins); its
    re-check finds the marker and passes. Without the re-check the timeout stands. On the cpu clock a
    timeout is not re-checked (it does not depend on load)."""
    import tempfile

    shared = Path(tempfile.mkdtemp(dir="/tmp"))  # reachable by the sandbox uid (pytest's tmp_path is not)
    shared.chmod(0o777)
    marker = shared / "seen"
    flaky = (f"import os\ndef add(a, b):\n    if not os.path.exists({str(marker)!r}):\n"
             f"        open({str(marker)!r}, 'w').close()\n        while True:\n            pass\n    return a + b\n")
    settings = SandboxSettings(jail="none", isolate=False, timeout=0.5, clock="wall", recheck_timeouts=recheck)
    with Executor(workers=2, settings=settings) as ex:
        got = {v.id: v.status for v in run_pairs([Pair("flaky", flaky, ADD_OK), Pair("good", GOOD, ADD_OK)], ex)}
        counts = (ex.timeouts_rechecked, ex.timeouts_overturned)
    shutil.rmtree(shared)
    assert got == {"flaky": "pass" if recheck else "timeout", "good": "pass"}
    assert counts == ((1, 1) if recheck else (0, 0))
    marker.unlink(missing_ok=True)
    shared = Path(tempfile.mkdtemp(dir="/tmp"))
    shared.chmod(0o777)
    cpu = SandboxSettings(jail="none", isolate=False, timeout=0.5, recheck_timeouts=recheck)
    with Executor(workers=2, settings=cpu) as ex:
        got = {v.id: v.status for v in run_pairs([Pair("flaky", flaky.replace(str(marker), str(shared / "seen")),
                                                        ADD_OK)], ex)}
        assert got == {"flaky": "timeout"} and ex.timeouts_rechecked == 0
    shutil.rmtree(shared)


@pytest.mark.skipif(not ROOT, reason="per-child namespaces are what root gets without bubblewrap")
@pytest.mark.parametrize("mode", ["fast", "isolated"])
def test_as_root_without_bubblewrap_nothing_persists_between_solutions_and_other_processes_are_hidden(mode):
    """Root without a jail: what one solution writes to /tmp, /var/tmp or /dev/shm is gone for the next,
    and /proc shows no process of another user (the driver's pid 1 above all)."""
    import secrets

    name = f"utscale-plant-{secrets.token_hex(4)}"
    # a temporary folder that holds this checkout or its venv stays shared (it would vanish otherwise)
    places = [f"{root}/{name}" for root in private_tmp_roots()]
    assert places, "every temporary folder holds code: nothing to check"
    plant = ("import os\ndef add(a, b):\n    for p in PLACES:\n        try:\n            open(p, 'w').write('x')\n"
             "        except OSError:\n            pass\n    return a + b\n").replace("PLACES", repr(places))
    finds = ("import os\ndef add(a, b):\n    seen = [p for p in PLACES if os.path.exists(p)]\n"
             "    return a + b if seen else None\n").replace("PLACES", repr(places))
    sees_init = "import os\ndef add(a, b):\n    return a + b if os.path.exists('/proc/1/status') else None\n"
    sees_self = "import os\ndef add(a, b):\n    return a + b if os.path.exists('/proc/self/status') else None\n"
    settings = SandboxSettings(jail="none", mode=mode)
    with Executor(workers=1, settings=settings) as ex:
        first = {v.id: v.status for v in run_pairs([Pair("plant", plant, ADD_OK)], ex)}
        later = {v.id: v.status for v in run_pairs([Pair("finds", finds, ADD_OK), Pair("init", sees_init, ADD_OK),
                                                     Pair("self", sees_self, ADD_OK)], ex)}
    assert first == {"plant": "pass"}
    assert later == {"finds": "fail", "init": "fail", "self": "pass"}
    assert not [p for p in places if os.path.exists(p)]  # nothing reached the host either
