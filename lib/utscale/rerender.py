"""Re-render a committed run from its committed inputs in a fresh results folder, as `make run` does on a
newcomer's machine, and compare every table, metric and figure's data with the committed files.

A committed run holds two kinds of file. Its inputs are what no one can recompute bit-identically
elsewhere: the raw generation logs, the sandbox's verdicts (load and time limits decide a timeout) and
the probe's features (a forward pass's last bits depend on the CPU's kernels). Everything else is
recomputed from them and must come out the same on any machine: exactly, or (a float that another CPU's
arithmetic moves) within `runs.DRIFT_TOLERANCE`, with the difference printed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from utscale import manifest as manifest_mod
from utscale.paths import project_root
from utscale.runs import numeric_drift

# what a re-render reads and cannot recompute (missing ones are simply not part of that run)
INPUTS = ("solutions_raw.jsonl", "unit_tests_raw.jsonl", "labels_log.jsonl", "labels_base_log.jsonl",
          "executions_log.jsonl", "labels.parquet", "labels_base.parquet", "executions.parquet",
          "assertion_executions.parquet", "recording_cases.parquet", "outputs.parquet", "expected_values.parquet",
          "time_limits.parquet", "probe_features.parquet")
# what a re-render writes and is compared: the run's tables, its metrics and the data of every figure
COMPARED = ("*.parquet", "metrics/*.csv", "metrics/*.json", "figures/*.csv")


@dataclass(frozen=True)
class Comparison:
    path: str  # relative to the run folder
    outcome: str  # identical | drift | differs | missing | extra
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in ("identical", "drift")

    def line(self) -> str:
        return f"{self.outcome:9s} {self.path}" + (f": {self.detail}" if self.detail else "")


def committed_root() -> Path:
    """The checkout's own results/ (not `UTSCALE_RESULTS`, which the test command points elsewhere)."""
    return project_root() / "results"


def committed_runs() -> list[str]:
    """The committed runs that are complete: folders under the checkout's results/ whose manifest says
    every notebook ran. A run still generating (committed for its raw logs, resumed in a later round)
    is not re-rendered: that would mean generating the rest."""
    return sorted(p.name for p in committed_root().iterdir()
                  if (p / "manifest.json").is_file() and manifest_mod.read(p / "manifest.json").get("completed"))


def copy_inputs(committed: Path, fresh: Path) -> list[str]:
    fresh.mkdir(parents=True, exist_ok=True)
    copied = [name for name in INPUTS if (committed / name).is_file()]
    for name in copied:
        shutil.copyfile(committed / name, fresh / name)
    return copied


def _compared_files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for pattern in COMPARED for p in folder.glob(pattern)}


def _frame(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def compare_file(committed: Path, fresh: Path, relative: str) -> Comparison:
    a, b = committed / relative, fresh / relative
    if a.read_bytes() == b.read_bytes():
        return Comparison(relative, "identical")
    if a.suffix == ".json":
        same = json.loads(a.read_text()) == json.loads(b.read_text())
        return Comparison(relative, "identical" if same else "differs", "" if same else "another JSON value")
    old, new = _frame(a), _frame(b)
    if old.equals(new):
        return Comparison(relative, "identical")
    drift = numeric_drift(old, new)
    if drift is not None:
        return Comparison(relative, "drift", ", ".join(f"{c} by {v:.2g}" for c, v in sorted(drift.items())))
    if old.shape != new.shape or list(old.columns) != list(new.columns):
        return Comparison(relative, "differs", f"shape {old.shape} -> {new.shape}, columns "
                                               f"{list(old.columns)} -> {list(new.columns)}")
    changed = [c for c in old.columns if not old[c].equals(new[c])]
    rows = int((old[changed].astype(str) != new[changed].astype(str)).any(axis=1).sum())
    return Comparison(relative, "differs", f"{rows} rows differ in {changed}")


def compare_runs(committed: Path, fresh: Path) -> list[Comparison]:
    """Every compared file of the committed run against the re-rendered one, sorted by path."""
    ours, theirs = _compared_files(committed), _compared_files(fresh)
    out = [compare_file(committed, fresh, r) for r in sorted(ours & theirs)]
    out += [Comparison(r, "missing", "the re-render did not write it") for r in sorted(ours - theirs)]
    out += [Comparison(r, "extra", "not in the committed run") for r in sorted(theirs - ours)]
    return sorted(out, key=lambda c: c.path)


@contextmanager
def _results_root(folder: Path) -> Iterator[None]:
    saved = os.environ.get("UTSCALE_RESULTS")
    os.environ["UTSCALE_RESULTS"] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("UTSCALE_RESULTS", None)
        else:
            os.environ["UTSCALE_RESULTS"] = saved


def rerender(run_id: str, scratch: Path) -> list[Comparison]:
    """Copy the committed run's inputs into `scratch/<run_id>`, run its profile there exactly as `make run`
    does, and compare what it wrote with the committed files."""
    from utscale.pipeline import run_pipeline

    committed = committed_root() / run_id
    manifest = manifest_mod.read(committed / "manifest.json")
    copy_inputs(committed, scratch / run_id)
    with _results_root(scratch):
        run = run_pipeline(manifest["profile"])
    if run.path != (scratch / run_id).resolve():
        raise RuntimeError(f"profile {manifest['profile']} resolved to run {run.run_id}, not the committed {run_id}")
    return compare_runs(committed, run.path)
