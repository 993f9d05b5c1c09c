"""Scale-out: the same sandbox workers on a Ray cluster.

Each Ray actor owns a warm local `Executor` (its own hardened workers, started once), so nodes run
exactly the worker code the local backend runs. Jobs travel in batches; verdicts stream back as
batches finish. `address=None` starts or joins a local Ray instance (tests use `num_cpus=2`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from utscale.sandbox.executor import Executor, Job, JobVerdict, SandboxSettings


def _ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # otherwise Ray writes a token into the home folder
    import ray

    return ray


class RayExecutor:
    """Drop-in for `Executor` (context manager with `run(jobs)`), backed by Ray actors."""

    def __init__(self, workers: int | None = None, settings: SandboxSettings | None = None,
                 address: str | None = None, batch_size: int = 32, num_cpus: int | None = None):
        self.settings = settings or SandboxSettings()
        self.address = address
        self.batch_size = batch_size
        self.num_cpus = num_cpus
        self.n_actors = workers
        self.jailed = False
        self._actors: list = []
        self._started_ray = False

    def __enter__(self) -> RayExecutor:
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address, num_cpus=self.num_cpus, include_dashboard=False,
                     ignore_reinit_error=True, log_to_driver=False)
            self._started_ray = True

        @ray.remote(num_cpus=1)
        class SandboxActor:
            def __init__(self, settings: SandboxSettings):
                self.executor = Executor(workers=1, settings=settings).__enter__()

            def jailed(self) -> bool:
                return self.executor.jailed

            def run(self, jobs: list[Job]) -> list[JobVerdict]:
                return list(self.executor.run(jobs))

            def close(self) -> None:
                self.executor.__exit__(None, None, None)

        count = self.n_actors or max(1, int(ray.available_resources().get("CPU", 1)))
        self._actors = [SandboxActor.remote(self.settings)  # type: ignore[attr-defined]  # added by ray.remote
                        for _ in range(count)]
        self.jailed = all(ray.get([a.jailed.remote() for a in self._actors]))
        return self

    def __exit__(self, *exc: object) -> None:
        ray = _ray()
        if self._actors:
            ray.get([a.close.remote() for a in self._actors])
            for actor in self._actors:
                ray.kill(actor)
        self._actors = []
        if self._started_ray:
            ray.shutdown()

    def run(self, jobs: Iterable[Job]) -> Iterator[JobVerdict]:
        ray = _ray()
        jobs = [j for j in jobs if j.tests]
        batches = [jobs[i:i + self.batch_size] for i in range(0, len(jobs), self.batch_size)]
        free = list(self._actors)
        running: dict = {}
        while batches or running:
            while batches and free:
                actor = free.pop()
                running[actor.run.remote(batches.pop(0))] = actor
            finished, _ = ray.wait(list(running), num_returns=1)
            for ref in finished:
                free.append(running.pop(ref))
                yield from ray.get(ref)
