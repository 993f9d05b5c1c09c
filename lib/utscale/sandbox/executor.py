"""The sandbox driver: start workers once, feed them jobs, stream verdicts back.

A job is one unique solution with the unique test programs to run against it; the worker forks one
hardened child per job (see `worker`). Workers are separate small processes started with a scrubbed
environment, optionally inside bubblewrap (no network, read-only root, private /tmp, own pid
namespace); when one dies mid-job (it can only be killed by code running as its own uid, i.e. when
the driver is not root), the driver marks the test in flight as a crash and resumes the rest of the
job on a fresh worker.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from utscale.sandbox.modes import MODE_RULES, MODES, Mode, WorkerSettings, effective_clock
from utscale.sandbox.statuses import Status


@dataclass(frozen=True)
class SandboxSettings:
    """Limits and isolation; recorded with every result so verdicts can be traced to their rules."""

    timeout: float = 1.0  # seconds per test program (the paper: 1 s)
    mode: Mode = "fast"
    # what the limit counts: `cpu` time (load does not turn a slow pass into a timeout; a wall-clock
    # backstop of timeout × wall_factor remains) or `wall` time; coderm and codet keep their authors' wall clock
    clock: Literal["cpu", "wall"] = "cpu"
    wall_factor: float = 4.0
    recheck_timeouts: bool = True  # wall clock: each timeout once more, alone, on an idle pool before it is final
    grace: float = 0.25  # extra seconds before the hard kill (the paper's executor: 1 s)
    memory_mb: int = 1024
    max_processes: int = 1  # RLIMIT_NPROC of the sandbox uid: 1 means the code cannot fork
    jail: Literal["auto", "bwrap", "none"] = "auto"
    isolate: bool = True  # per-child network and mount namespaces when running as root
    pin: bool = True
    uid_base: int = 61000  # untrusted code runs as the first free uid from here (when root)
    drop_privileges: bool = True  # as root, run untrusted code as that uid (off only for debugging)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.timeout > 0:
            raise ValueError("timeout must be positive")
        if self.clock not in ("cpu", "wall") or not self.wall_factor >= 1:
            raise ValueError("clock must be cpu or wall, and wall_factor at least 1")
        if self.uid_base < 1000:
            raise ValueError("uid_base must be an unprivileged uid (>= 1000)")

    @property
    def effective_clock(self) -> str:
        """The clock the limits count in this mode (coderm and codet keep their authors' wall clock)."""
        return effective_clock(self.mode, self.clock)

    def worker_settings(self, index: int, scratch_root: str, uid: int) -> WorkerSettings:
        """What a worker starts with (`modes.read_worker_settings` checks it there): these settings, the
        mode's own grace where it fixes one (the paper joins for 2 s with a 1 s alarm), and the worker's
        place."""
        fixed = MODE_RULES[self.mode].grace
        return WorkerSettings(timeout=self.timeout, mode=self.mode, clock=self.clock, wall_factor=self.wall_factor,
                              recheck_timeouts=self.recheck_timeouts,
                              grace=self.grace if fixed is None else fixed, memory_mb=self.memory_mb,
                              max_processes=self.max_processes, jail=self.jail, isolate=self.isolate, pin=self.pin,
                              uid_base=self.uid_base, drop_privileges=self.drop_privileges, index=index,
                              scratch_root=scratch_root, uid=uid, private_tmp=private_tmp_roots())


@dataclass(frozen=True)
class Job:
    key: str
    solution: str
    tests: Sequence[tuple[str, str]]  # (test key, unittest program)
    timeout: float | None = None  # this job's limit per test program (None: the executor's)


@dataclass(frozen=True)
class JobVerdict:
    """The verdict of one test program on a job's solution (`pairs.PairVerdict` is the pair-level view)."""

    job: str
    test: str
    status: Status
    tests_run: int
    duration_s: float
    output: str | None = None  # the value the test recorded (`srank` mode: what the input returned)
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "passed", self.status == "pass")


def code_paths_in_tmp() -> list[str]:
    """Where this interpreter's code lives under /tmp or /dev/shm (a checkout or venv there): a private
    /tmp would hide it from the sandbox, so those paths are bound back read-only (or /tmp is kept)."""
    roots = {sys.prefix, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))} | set(sys.path)
    found = set()
    for path in roots:
        real = os.path.realpath(path) if path else ""
        for private in ("/tmp/", "/var/tmp/", "/dev/shm/"):
            if real.startswith(private) and os.path.exists(real):
                found.add(private + real[len(private):].split("/", 1)[0])
    return sorted(found)


TMP_ROOTS = ("/tmp", "/var/tmp", "/dev/shm")


def private_tmp_roots() -> list[str]:
    """The shared temporary folders a child as root without bubblewrap gets a tmpfs of its own over: all
    three, less any that holds this interpreter's code (a checkout or venv in /tmp would vanish)."""
    code = code_paths_in_tmp()
    return [root for root in TMP_ROOTS if not any(path.startswith(root + "/") for path in code)]


def bwrap_prefix() -> list[str] | None:
    """The bubblewrap command line the workers run under, or None when bubblewrap is unusable here."""
    exe = shutil.which("bwrap")
    if not exe:
        return None
    prefix = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
              "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
              "--new-session"]
    for path in code_paths_in_tmp():
        prefix += ["--ro-bind", path, path]
    if os.geteuid() == 0:  # keep what the worker needs to drop to its uid and set limits
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SYS_RESOURCE", "CAP_CHOWN", "CAP_FOWNER",
                    "CAP_DAC_OVERRIDE"):
            prefix += ["--cap-add", cap]
    probe = subprocess.run(prefix + ["/bin/true"], capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 else None


class WorkerDied(RuntimeError):
    pass


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the code it runs): `run()` ends with this instead of hanging. The
    verdicts it yielded before are final, so a stage that logged them resumes with the rest."""


class NoJail(RuntimeError):
    """Untrusted code would run without isolation and nobody said that was acceptable."""


NO_JAIL_WARNING = ("utscale sandbox: SANDBOX_JAIL none: untrusted code runs WITHOUT a jail (no private /tmp, "
                   "network or process namespace); verdicts and your files are only as safe as the code")


# per euid: a folder root created (mode 0700) must never block another user's sandbox
UID_LOCKS = f"/tmp/utscale-uid-locks-{os.geteuid()}"
UID_SPAN = 4096


def claim_uid(base: int) -> tuple[int, int]:
    """A sandbox uid no other live worker on this machine uses, and the locked fd that holds it.

    Every worker, of every executor in every process, runs its untrusted code as its own uid: the
    reaper kills every process of that uid, which must never reach another worker's children."""
    os.makedirs(UID_LOCKS, mode=0o700, exist_ok=True)
    for uid in range(base, base + UID_SPAN):
        fd = os.open(os.path.join(UID_LOCKS, f"{uid}.lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return uid, fd
        except BlockingIOError:
            os.close(fd)
    raise RuntimeError(f"no free sandbox uid in {base}..{base + UID_SPAN - 1}")


SCRATCH_PREFIX = "utscale-w"  # a worker's scratch root: utscale-w<index>-<driver pid>-<random>
STALE_SCRATCH = re.compile(re.escape(SCRATCH_PREFIX) + r"\d+-(\d+)-\w+")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_scratch(root: str | None = None) -> list[str]:
    """Remove the scratch roots that drivers killed without cleaning up (kill -9) left in the temporary
    folder: this user's, named for a driver pid that no longer runs. A live driver's are never touched."""
    root = root or tempfile.gettempdir()
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = STALE_SCRATCH.fullmatch(entry.name)
        try:
            mine = entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.geteuid()
        except OSError:
            continue
        if match and mine and not _alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return sorted(removed)


class _Worker:
    def __init__(self, index: int, settings: SandboxSettings, prefix: list[str] | None):
        self.index = index
        self.uid, self._uid_lock = claim_uid(settings.uid_base)
        self.scratch_root = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{index}-{os.getpid()}-")
        os.chmod(self.scratch_root, 0o711)
        inner = "/tmp/utscale-scratch" if prefix else self.scratch_root  # bwrap gives a private /tmp
        args = json.dumps(settings.worker_settings(index, inner, self.uid))
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
        # -I without its -E (which would ignore PYTHONHASHSEED: every worker a random hash seed, so an order
        # of set or dict iteration, and a verdict or output that depends on it, would vary between runs):
        # no user site (-s), no unsafe path first in sys.path (-P); the environment is only the above
        self.proc = subprocess.Popen(
            (prefix or []) + [sys.executable, "-s", "-P", "-m", "utscale.sandbox.worker", args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
            bufsize=1, cwd="/",
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both are pipes
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.busy = False

    def run(self, job: Job) -> Iterator[dict]:
        message = {"job": job.key, "solution": job.solution, "tests": [{"id": k, "code": c} for k, c in job.tests],
                   "timeout": job.timeout}
        self.busy = True  # until the worker says the job is done: a worker abandoned mid-job is replaced
        try:
            self.stdin.write(json.dumps(message) + "\n")
            self.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(str(exc)) from exc
        for line in self.stdout:
            record = json.loads(line)
            if record.get("done"):
                self.busy = False
                return
            yield record
        raise WorkerDied(f"worker {self.index} exited with {self.proc.wait()}")

    def close(self) -> None:
        try:
            self.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.scratch_root, ignore_errors=True)
        os.close(self._uid_lock)


class Executor:
    """A pool of sandbox workers. Use as a context manager; `run(jobs)` streams verdicts."""

    def __init__(self, workers: int | None = None, settings: SandboxSettings | None = None):
        self.settings = settings or SandboxSettings()
        self.n_workers = max(1, workers or len(os.sched_getaffinity(0)))
        self.prefix = None
        if self.settings.jail in ("auto", "bwrap"):
            self.prefix = bwrap_prefix()
            if self.settings.jail == "bwrap" and self.prefix is None:
                raise RuntimeError("jail='bwrap' was asked for but bubblewrap is not installed or not usable")
        namespaces = os.geteuid() == 0 and self.settings.isolate  # root: per-child namespaces and a sandbox uid
        if self.prefix is None and self.settings.jail == "auto" and not namespaces:
            # fail closed: without bubblewrap and without root nothing stands between the code and this user
            raise NoJail("no sandbox jail is available: bubblewrap is missing or unusable and this process is "
                         "not root. Install bubblewrap (Debian: apt install bubblewrap), or accept running "
                         "untrusted code unisolated with --jail none (SANDBOX_JAIL: none)")
        if self.settings.jail == "none":
            warnings.warn(NO_JAIL_WARNING, stacklevel=2)
        self.jailed = self.prefix is not None
        self._workers: list[_Worker] = []
        self.timeouts_rechecked = 0  # over this executor's life: timeouts run again alone, and how many
        self.timeouts_overturned = 0  # of those got another verdict the second time

    def __enter__(self) -> Executor:
        remove_stale_scratch()
        self._workers = [_Worker(i, self.settings, self.prefix) for i in range(self.n_workers)]
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self._workers:
            worker.close()
        self._workers = []

    @staticmethod
    def _collect(out: queue.Queue, open_jobs: int) -> Iterator[JobVerdict]:
        """The serving threads' verdicts until `open_jobs` jobs (and the ones they requeue) are finished."""
        while open_jobs:
            item = out.get()
            if isinstance(item, JobVerdict):
                yield item
            elif item[0] == "requeued":
                open_jobs += 1
            elif item[0] == "failed":
                raise SandboxError(f"a sandbox serving thread failed: {type(item[1]).__name__}: {item[1]}; "
                                   "the verdicts reported so far are kept, and a rerun resumes with the "
                                   "rest") from item[1]
            else:
                open_jobs -= 1

    def _serve(self, slot: int, jobs: queue.Queue, out: queue.Queue) -> None:
        """A serving thread. Whatever goes wrong in it (a bug, a broken pipe, a malformed worker line)
        reaches `run()` as ("failed", exception): an unexpected exception must never leave `run()`
        waiting for a job that no thread will finish."""
        try:
            self._serve_jobs(slot, jobs, out)
        except BaseException as exc:  # noqa: BLE001 - reported to run(), which raises it
            out.put(("failed", exc))

    def _serve_jobs(self, slot: int, jobs: queue.Queue, out: queue.Queue) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            done: set[str] = set()
            try:
                for record in self._workers[slot].run(job):
                    done.add(record["test"])
                    out.put(JobVerdict(job.key, record["test"], record["status"], record["tests_run"],
                                    record["duration_s"], record.get("output")))
            except WorkerDied:
                # the code killed its worker (possible only when it runs as the worker's own uid). A child
                # can run ahead of what the worker forwarded, so the culprit is not known: each unreported
                # test runs again alone, and only a test that kills its worker when alone is a crash.
                self._workers[slot].close()
                self._workers[slot] = _Worker(slot, self.settings, self.prefix)
                left = [t for t in job.tests if t[0] not in done]
                if len(job.tests) == 1 and left:
                    out.put(JobVerdict(job.key, left[0][0], "crash", 0, 0.0))
                else:
                    for test in left:
                        jobs.put(replace(job, tests=[test]))
                        out.put(("requeued", job.key))
            out.put(("finished", job.key))

    def run(self, jobs: Iterable[Job]) -> Iterator[JobVerdict]:
        """Verdicts as they arrive. With `recheck_timeouts` on the wall clock a timeout is held back and,
        once every job is done, its test runs once more alone (one job at a time: the rest of the pool
        idle); the re-check's verdict is the final one. A timeout caused by load then turns into the
        test's real verdict. (On the cpu clock the limit counts the code's own CPU time, so a re-check
        would only repeat the timeout.)"""
        if not self._workers:
            raise RuntimeError("use the Executor as a context manager")
        pending: queue.Queue = queue.Queue()
        out: queue.Queue = queue.Queue()
        open_jobs = 0
        by_key: dict[str, Job] = {}
        for job in jobs:
            if job.tests:
                pending.put(job)
                by_key[job.key] = job
                open_jobs += 1
        # on the cpu clock a timeout already does not depend on load: only wall-clock timeouts are re-checked
        recheck = (self.settings.recheck_timeouts and self.settings.effective_clock == "wall"
                   and MODE_RULES[self.settings.mode].rechecks_timeouts)
        threads = [threading.Thread(target=self._serve, args=(i, pending, out), daemon=True)
                   for i in range(len(self._workers))]
        for thread in threads:
            thread.start()
        try:
            held: list[JobVerdict] = []
            for verdict in self._collect(out, open_jobs):
                if recheck and verdict.status == "timeout":
                    held.append(verdict)
                else:
                    yield verdict
            for first in held:
                job = by_key[first.job]
                pending.put(replace(job, tests=[(first.test, dict(job.tests)[first.test])]))
                again = list(self._collect(out, 1)) or [first]
                self.timeouts_rechecked += 1
                self.timeouts_overturned += again[0].status != "timeout"
                yield again[0]
        finally:
            while True:  # a consumer that stops early abandons the jobs not yet started
                try:
                    pending.get_nowait()
                except queue.Empty:
                    break
            for _ in threads:
                pending.put(None)
            for thread in threads:
                thread.join()
            for slot, worker in enumerate(self._workers):  # a worker left mid-job by a failed thread
                if worker.busy:
                    worker.close()
                    self._workers[slot] = _Worker(slot, self.settings, self.prefix)
