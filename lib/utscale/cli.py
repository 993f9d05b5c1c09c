"""`python -m utscale ...`: the command line over the pipeline, the report, the index and sweeps."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from utscale import config as config_mod
from utscale import manifest as manifest_mod
from utscale import rerender
from utscale.codet import ReplayFileError
from utscale.paths import results_dir
from utscale.pipeline import refresh_notebooks, run_pipeline
from utscale.report import render_index, render_report
from utscale.runs import Run, RunConflict, open_run
from utscale.sandbox.executor import NoJail
from utscale.sweep import FAILED, run_sweep


def parse_overrides(pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    return {key: config_mod.parse_override(value) for key, value in pairs}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m utscale", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute the notebooks for a profile and render the report")
    run_p.add_argument("--profile", required=True)
    run_p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    run_p.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,02")
    run_p.add_argument("--wait", action="store_true", help="if another process is writing the run, wait for it")
    rep_p = sub.add_parser("report", help="re-render the HTML report of an existing run")
    rep_p.add_argument("--run", required=True, help="run id (a directory under results/) or a path")
    ref_p = sub.add_parser("refresh-notebooks", help="re-execute committed notebooks in place (ci defaults)")
    ref_p.add_argument("--only", default="")
    sub.add_parser("profiles", help="list the parameter profiles")
    sweep_p = sub.add_parser("sweep", help="run the pipeline over a grid (params/sweep-*.yaml), then compare runs")
    sweep_p.add_argument("grid", help="a grid file, e.g. params/sweep-ci-tests.yaml")
    check_p = sub.add_parser("check-rerender", help="re-render committed runs from their inputs in a fresh folder "
                             "and compare with the committed files (what CI does)")
    check_p.add_argument("runs", nargs="*", help="run ids under results/ (default: every committed run)")
    index_p = sub.add_parser("index", help="write results/index.html: the runs' ledgers side by side")
    index_p.add_argument("runs", nargs="+", help="run ids (directories under results/)")
    return parser


def open_existing(run_ref: str) -> Run:
    path = Path(run_ref) if os.sep in run_ref else results_dir() / run_ref
    manifest = path / "manifest.json"
    if not manifest.exists():
        raise FileNotFoundError(f"no run at {path} (no manifest.json)")
    recorded = manifest_mod.read(manifest)
    return open_run(recorded["profile"], recorded["config"], run_dir=path)


def check_rerender(run_ids: Sequence[str]) -> int:
    failed = 0
    with tempfile.TemporaryDirectory(prefix="utscale-rerender-") as scratch:
        for run_id in run_ids:
            comparisons = rerender.rerender(run_id, Path(scratch))
            bad = [c for c in comparisons if not c.ok]
            print(f"[utscale] {run_id}: {len(comparisons) - len(bad)} of {len(comparisons)} files match", flush=True)
            for c in comparisons:
                if c.outcome != "identical":
                    print("  " + c.line(), flush=True)
            failed += bool(bad)
    return 1 if failed else 0


# the results folder cannot take what the run writes: a clean message, the run resumes later
STORAGE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            only = [s for s in args.only.split(",") if s]
            run_pipeline(args.profile, parse_overrides(args.parameter), only=only, wait=args.wait)
        elif args.command == "report":
            print(render_report(open_existing(args.run)))
        elif args.command == "refresh-notebooks":
            refresh_notebooks([s for s in args.only.split(",") if s])
        elif args.command == "profiles":
            print("\n".join(config_mod.available_profiles()))
        elif args.command == "index":
            print(render_index([open_existing(r) for r in args.runs], results_dir() / "index.html"))
        elif args.command == "check-rerender":
            return check_rerender(args.runs or rerender.committed_runs())
        elif args.command == "sweep":
            table = run_sweep(args.grid)
            shown = [c for c in ("run_id", "status", "random_pick", "voting", "gain", "test_f1") if c in table]
            print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
            return 1 if (table.status == FAILED).any() else 0
    except (config_mod.ParameterError, FileNotFoundError, RunConflict, ReplayFileError, NoJail) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in STORAGE_ERRORS:
            raise
        print(f"error: cannot write {exc.filename or results_dir()}: {exc.strerror}. Free space or fix the "
              "folder's permissions (UTSCALE_RESULTS chooses another folder), then run the same command again: "
              "the run resumes from what it has written", file=sys.stderr)
        return 2
    except Exception as exc:  # a notebook that failed: say which and why, not papermill's whole traceback
        if type(exc).__name__ != "PapermillExecutionError":
            raise
        print(f"error: a notebook failed: {getattr(exc, 'ename', '')}: {getattr(exc, 'evalue', '')} (the executed notebook under "
              "results/<run_id>/notebooks/ shows the cell; fix the cause and rerun to resume)", file=sys.stderr)
        return 1
    return 0
