"""Sweeps: the papermill pipeline once per point of a grid of profiles and overrides, then one table.

A grid file (`params/sweep-<name>.yaml`) names base profiles and, per parameter, the values to cross:

    profiles: [embedded]
    grid:
      N_UNIT_TESTS: [4, 8]
      TEMPERATURE: [0.2, 0.8]
    only: ["01", "02"]          # optional: a prefix of the notebooks

Every point is validated before the first notebook starts (a typo fails the sweep, not point 7 of
9). Each point is an ordinary run with its own directory, so a point whose notebooks all finished is
skipped on a rerun and a half-finished one resumes through the stages' own logs. A point that fails
is recorded with its error and the sweep goes on: one bad model must not cost the other points.
The comparison table is derived data, rewritten from the runs on every call.
"""

from __future__ import annotations

import itertools
import json
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from utscale import claims, ledger, matrix, metrics, scaling
from utscale import config as config_mod
from utscale import manifest as manifest_mod
from utscale.paths import params_dir, results_dir
from utscale.pipeline import notebook_paths, run_pipeline
from utscale.runs import Run, RunConflict, open_run
from utscale.tables import atomic_write_text, csv_text, sort_rows

GRID_KEYS = ("profiles", "grid", "only")
DONE, RESUMED, FAILED = "done", "already finished", "failed"


@dataclass(frozen=True)
class Point:
    profile: str
    overrides: dict[str, Any]
    run_id: str


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str  # the grid file's text, kept in the sweep manifest
    points: list[Point]
    only: list[str] = field(default_factory=list)
    varied: list[str] = field(default_factory=list)  # the grid's keys, the comparison's first columns


def grid_path(ref: str) -> Path:
    """`params/sweep-x.yaml`, `sweep-x` or a path."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = params_dir() / f"{path.stem}.yaml"
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(f"no sweep grid {ref!r} (looked for {path} and {candidate})")


def load_sweep(ref: str) -> Sweep:
    path = grid_path(ref)
    source = path.read_text()
    raw = config_mod.read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise config_mod.ParameterError(f"{path}: a sweep grid is a mapping with keys {list(GRID_KEYS)}")
    unknown = sorted(set(raw) - set(GRID_KEYS))
    if unknown:
        raise config_mod.ParameterError(f"{path}: unknown sweep keys {unknown}; allowed: {list(GRID_KEYS)}")
    profiles = raw.get("profiles")
    if not isinstance(profiles, list) or not profiles or not all(isinstance(p, str) for p in profiles):
        raise config_mod.ParameterError(f"{path}: 'profiles' must be a non-empty list of profile names")
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict):
        raise config_mod.ParameterError(f"{path}: 'grid' must map parameter names to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise config_mod.ParameterError(f"{path}: grid[{key}] must be a non-empty list of values, got {values!r}")
    only = [str(n).zfill(2) for n in raw.get("only") or []]
    points: list[Point] = []
    seen: set[str] = set()
    keys = list(grid)
    for profile in profiles:
        for combo in itertools.product(*(grid[k] for k in keys)):
            overrides = dict(zip(keys, combo))
            # the profile's grids follow the swept sizes (documented policy: values above the bound are dropped)
            merged = {**config_mod.load_profile(profile), **config_mod.validate(overrides)}
            overrides.update(config_mod.fit_grids(merged, fixed=keys))
            cfg = config_mod.resolve(profile, overrides)  # every point checked before any work
            if cfg.run_id not in seen:
                seen.add(cfg.run_id)
                points.append(Point(profile, overrides, cfg.run_id))
    return Sweep(name=path.stem, source=source, points=points, only=only, varied=keys)


def finished(run_id: str, notebooks: Sequence[str]) -> bool:
    """All of these notebooks (numbers) recorded as executed in the run's manifest, and the report
    rendered after the last of them (a run killed between its notebooks and its report is not done)."""
    manifest = results_dir() / run_id / "manifest.json"
    if not manifest.exists():
        return False
    recorded = manifest_mod.read(manifest)
    executed = recorded.get("notebooks", {})
    if not all(any(name.startswith(n) for name in executed) for n in notebooks):
        return False
    report = recorded.get("report_rendered", "")
    return bool(report) and (results_dir() / run_id / "report.html").exists() and report >= max(executed.values())


def summarise(run: Run, resamples: int = 100) -> dict[str, Any]:
    """One comparison row from a run's tables: what voting buys over a random pick, how good the
    tests are, what it cost. Columns a run has not reached yet are NaN."""
    row: dict[str, Any] = {}
    cfg = run.config
    if run.has_table("solutions"):
        sols = run.read_table("solutions")
        row["solution_tokens"] = int(sols.completion_tokens.sum())
        row["extracted_solutions"] = float((sols.extract_status == "ok").mean() * 100)
    if run.has_table("unit_tests"):
        tests = run.read_table("unit_tests")
        row["test_tokens"] = int(tests.completion_tokens.sum())
        row["valid_unit_tests"] = float((tests.extract_status == "ok").mean() * 100)
    if run.has_table("executions") and run.has_table("labels"):
        cube = matrix.load(run)
        problems, n, m = cube.shape
        grid = scaling.scaling_grid(cube, [n], [0, m], resamples, protocol=cfg["PROTOCOL"], seed=cfg["SEED"])
        voted = claims.benchmark_accuracy(grid, n, m, cfg["SEED"])  # bootstrap draws over problems
        gain, gain_draws = claims.voting_gain(grid, n, m, cfg["SEED"])
        row.update(problems=problems, policy_pass_rate=float(cube.correct.sum() / cube.n_solutions.sum() * 100),
                   random_pick=float(np.nanmean(scaling.cell_points(grid, n, 0))),
                   voting=float(np.nanmean(scaling.cell_points(grid, n, m))),
                   voting_ci_low=float(np.nanpercentile(voted, 2.5)), voting_ci_high=float(np.nanpercentile(voted, 97.5)),
                   gain=gain, gain_ci_low=float(np.nanpercentile(gain_draws, 2.5)),
                   gain_ci_high=float(np.nanpercentile(gain_draws, 97.5)))
        test_quality = metrics.individual_test_confusion(cube).rates()
        row.update({f"test_{k.lower()}": v for k, v in test_quality.items()})
    verdicts = ledger.load_verdicts(run)
    for verdict in (claims.SUPPORTED, claims.NOT_SUPPORTED, claims.INCONCLUSIVE):
        row[verdict.replace(" ", "_")] = sum(v.verdict == verdict for v in verdicts.values()) if verdicts else np.nan
    timings = run.manifest().get("timings", {})
    row["stage_seconds"] = round(sum(t.get("seconds", 0.0) for t in timings.values()), 1)
    return row


PipelineRunner = Callable[[str, Mapping[str, Any], Sequence[str]], Run]


def _run_pipeline(profile: str, overrides: Mapping[str, Any], only: Sequence[str]) -> Run:
    return run_pipeline(profile, overrides, only=only)


def run_sweep(ref: str, *, runner: PipelineRunner = _run_pipeline, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Run every point not already finished, then write `results/<sweep>/comparison.{parquet,csv}`."""
    sweep = load_sweep(ref)
    wanted = sweep.only or [p.name[:2] for p in notebook_paths()]
    out = results_dir() / sweep.name
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and json.loads(manifest_path.read_text()).get("grid") != sweep.source:
        raise RunConflict(f"{out} holds a sweep of another grid; rename the grid file or move {out} away")
    status: dict[str, dict[str, Any]] = {}
    for i, point in enumerate(sweep.points, 1):
        label = f"[sweep {sweep.name}] {i}/{len(sweep.points)} {point.run_id}"
        if finished(point.run_id, wanted):
            log(f"{label}: {RESUMED}")
            status[point.run_id] = {"status": RESUMED, "error": ""}
            continue
        log(f"{label}: running {point.profile} with {point.overrides}")
        try:
            runner(point.profile, point.overrides, sweep.only)
            status[point.run_id] = {"status": DONE, "error": ""}
        except Exception as exc:  # one failed point must not lose the others
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
            status[point.run_id] = {"status": FAILED, "error": detail[-1][:500] if detail else type(exc).__name__}
            log(f"{label}: FAILED: {status[point.run_id]['error']}")
    rows = []
    for point in sweep.points:
        row = {"run_id": point.run_id, "profile": point.profile,
               **{k: json.dumps(point.overrides[k]) if isinstance(point.overrides[k], list) else point.overrides[k]
                  for k in sweep.varied},
               **status[point.run_id]}
        if (results_dir() / point.run_id / "manifest.json").exists():
            run = open_run(point.profile, point.overrides)
            row.update(summarise(run, run.config["RESAMPLES"]))
        rows.append(row)
    table = sort_rows(pd.DataFrame(rows), ["profile", *sweep.varied, "run_id"])
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "comparison.parquet", index=False)
    atomic_write_text(out / "comparison.csv", csv_text(table))
    atomic_write_text(manifest_path, json.dumps({
        "sweep": sweep.name, "grid": sweep.source, "only": sweep.only,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "points": {p.run_id: {"profile": p.profile, "overrides": p.overrides, **status[p.run_id]} for p in sweep.points},
    }, indent=2, sort_keys=True) + "\n")
    log(f"[sweep {sweep.name}] comparison: {out / 'comparison.csv'}")
    return table
