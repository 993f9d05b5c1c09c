"""Papermill orchestration: run the numbered notebooks for a profile, render the report, refresh references.

The notebooks orchestrate and show; this module only decides which parameters each notebook gets,
where its executed copy goes, and what the report contains. Parameters are validated against
`utscale.config.SCHEMA` before the first notebook starts, so a typo never costs a half-finished run.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat

from utscale import config as config_mod
from utscale.paths import notebooks_dir, results_dir
from utscale.runs import Run, RunConflict, open_run

REPORT_FIRST = "07_"  # the claims ledger opens the report
REPORT_TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"


def notebook_paths() -> list[Path]:
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def declared_parameters(path: Path) -> dict[str, Any]:
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


def check_notebook_parameters(paths: Sequence[Path]) -> dict[Path, list[str]]:
    """Every notebook's declared parameters, each known to the schema (or a meta key)."""
    declared: dict[Path, list[str]] = {}
    for path in paths:
        names = list(declared_parameters(path))
        unknown = [n for n in names if n not in config_mod.SCHEMA and n not in config_mod.META_KEYS]
        if unknown:
            raise config_mod.ParameterError(f"{path.name} declares parameters outside the schema: {unknown}")
        declared[path] = names
    return declared


def notebook_parameters(names: Sequence[str], run: Run) -> dict[str, Any]:
    values = {"PROFILE": run.profile, "RUN_DIR": str(run.path), **run.config}
    return {name: values[name] for name in names if name in values}


def execute(path: Path, output: Path, parameters: Mapping[str, Any] | None) -> None:
    import papermill

    papermill.execute_notebook(
        str(path), str(output), parameters=dict(parameters) if parameters is not None else None,
        kernel_name="python3", cwd=str(notebooks_dir()), progress_bar=False,
    )


def run_pipeline(profile: str, overrides: Mapping[str, Any] | None = None, *, only: Sequence[str] = ()) -> Run:
    """Execute the numbered notebooks in order into `results/<run_id>/notebooks/`, then render the report."""
    cfg = config_mod.resolve(profile, overrides)  # fails before any work on a bad name or value
    paths = [p for p in notebook_paths() if not only or p.name[:2] in only]
    declared = check_notebook_parameters(paths)
    run = open_run(profile, cfg.values)
    os.environ.setdefault("TQDM_DISABLE", "1")
    for path in paths:
        print(f"[utscale] {run.run_id}: executing {path.name}", flush=True)
        execute(path, run.file(f"notebooks/{path.name}"), notebook_parameters(declared[path], run))
        run.update_manifest(notebooks={path.name: datetime.now(timezone.utc).isoformat(timespec="seconds")})
    report = render_report(run)
    executed = run.manifest().get("notebooks", {})
    run.update_manifest(completed=all(p.name in executed for p in notebook_paths()))
    print(f"[utscale] report: {report}", flush=True)
    return run


def config_markdown(run: Run) -> str:
    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in sorted(run.config.items()))
    return f"# utscale report: run `{run.run_id}`\n\nProfile `{run.profile}`.\n\n| parameter | value |\n|---|---|\n{rows}\n"


def render_report(run: Run) -> Path:
    """One self-contained HTML page (images inline, no input cells, no stderr, no CDN scripts): the
    claims ledger first, then the run's configuration, then every notebook's outputs in order."""
    from nbconvert import HTMLExporter

    executed = sorted((run.path / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    executed.sort(key=lambda p: (not p.name.startswith(REPORT_FIRST), p.name))
    if not executed:
        raise FileNotFoundError(f"no executed notebooks under {run.path / 'notebooks'}")
    combined = nbformat.v4.new_notebook()
    combined.metadata = copy.deepcopy(nbformat.read(executed[0], as_version=4).metadata)
    for i, path in enumerate(executed):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
        for cell in cells:  # cell ids repeat across notebooks; keep them unique in the combined page
            cell.id = f"{path.name[:2]}-{cell.id}"
            if cell.cell_type == "code":  # engine logs and library warnings stay in the executed notebooks
                cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
        combined.cells.extend(cells)
        if i == 0:
            combined.cells.append(nbformat.v4.new_markdown_cell(config_markdown(run)))
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            template_file=str(REPORT_TEMPLATE))
    body, _ = exporter.from_notebook_node(combined)
    out = run.path / "report.html"
    out.write_text(body, encoding="utf-8")
    return out


VOLATILE_NOTEBOOK_KEYS = ("papermill",)


def clean_notebook(path: Path) -> None:
    """Drop per-execution metadata (papermill timings, kernel versions) so committed references diff cleanly."""
    nb = nbformat.read(path, as_version=4)
    for key in VOLATILE_NOTEBOOK_KEYS:
        nb.metadata.pop(key, None)
    nb.metadata.get("language_info", {}).pop("version", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for cell in nb.cells:
        for key in VOLATILE_NOTEBOOK_KEYS + ("execution",):
            cell.metadata.pop(key, None)
    nbformat.write(nb, path)


def refresh_notebooks(only: Sequence[str] = ()) -> None:
    """Re-execute the committed notebooks in place with their defaults (the ci profile), in a fresh
    results folder: the only sanctioned way to update the outputs nbval compares against."""
    os.environ["TQDM_DISABLE"] = "1"
    with tempfile.TemporaryDirectory(prefix="utscale-refresh-") as tmp:
        os.environ["UTSCALE_RESULTS"] = tmp
        for path in notebook_paths():
            if only and path.name[:2] not in only:
                continue
            print(f"[utscale] refreshing {path.name}", flush=True)
            execute(path, path, None)
            clean_notebook(path)


def parse_overrides(pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    return {key: config_mod.parse_override(value) for key, value in pairs}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m utscale", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute the notebooks for a profile and render the report")
    run_p.add_argument("--profile", required=True)
    run_p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    run_p.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 01,02")
    rep_p = sub.add_parser("report", help="re-render the HTML report of an existing run")
    rep_p.add_argument("--run", required=True, help="run id (a directory under results/) or a path")
    ref_p = sub.add_parser("refresh-notebooks", help="re-execute committed notebooks in place (ci defaults)")
    ref_p.add_argument("--only", default="")
    sub.add_parser("profiles", help="list the parameter profiles")
    sweep_p = sub.add_parser("sweep", help="run the pipeline over a grid (params/sweep-*.yaml), then compare runs")
    sweep_p.add_argument("grid", help="a grid file, e.g. params/sweep-ci-tests.yaml")
    return parser


def open_existing(run_ref: str) -> Run:
    path = Path(run_ref) if os.sep in run_ref else results_dir() / run_ref
    manifest = path / "manifest.json"
    if not manifest.exists():
        raise FileNotFoundError(f"no run at {path} (no manifest.json)")
    import json

    recorded = json.loads(manifest.read_text())
    return open_run(recorded["profile"], recorded["config"], run_dir=path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            only = [s for s in args.only.split(",") if s]
            run_pipeline(args.profile, parse_overrides(args.parameter), only=only)
        elif args.command == "report":
            print(render_report(open_existing(args.run)))
        elif args.command == "refresh-notebooks":
            refresh_notebooks([s for s in args.only.split(",") if s])
        elif args.command == "profiles":
            print("\n".join(config_mod.available_profiles()))
        elif args.command == "sweep":
            from utscale.sweep import FAILED, run_sweep

            table = run_sweep(args.grid)
            shown = [c for c in ("run_id", "status", "random_pick", "voting", "gain", "test_f1") if c in table]
            print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
            return 1 if (table.status == FAILED).any() else 0
    except (config_mod.ParameterError, FileNotFoundError, RunConflict) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
