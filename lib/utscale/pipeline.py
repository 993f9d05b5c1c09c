"""Papermill orchestration: run the numbered notebooks for a profile, then its report; refresh references.

The notebooks orchestrate and show; this module only decides which parameters each notebook gets and
where its executed copy goes (the report is `utscale.report`, the command line `utscale.cli`). Parameters are validated against
`utscale.config.SCHEMA` before the first notebook starts, so a typo never costs a half-finished run.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager

from utscale import config as config_mod
from utscale import progress
from utscale.paths import notebooks_dir, results_dir
from utscale.report import render_report
from utscale.runs import LOCK_ENV, Run, lock_run, open_run, unlock_run


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
    # relative to the results root (see `runs.open_notebook_run`): executed notebooks carry no machine paths
    run_dir = run.path.relative_to(results_dir()) if run.path.is_relative_to(results_dir()) else run.path
    values = {"PROFILE": run.profile, "RUN_DIR": str(run_dir), **run.config}
    return {name: values[name] for name in names if name in values}


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the kernel's process between fork and exec
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class TiedKernelManager(AsyncKernelManager):
    """A kernel that dies the moment the process that started it dies, reached over local sockets.

    jupyter_client starts kernels in a session of their own, so killing a run's process group (Ctrl-\\,
    `kill -9 -- -PGID`) does not reach them, and ipykernel only notices its parent is gone on its next
    poll: about 2 s in which a stopped run's kernel still writes. The parent-death signal (set between
    fork and exec, kept across exec) ends it at once. The kernel talks over IPC (Unix-domain) sockets in
    a private temporary folder, not TCP on localhost: no other user of the machine can connect to it, and
    ipykernel has no reason to warn that the kernel is "running over TCP without encryption"."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(tempfile.mkdtemp(prefix="utscale-kernel-"), "kernel"))
        super().__init__(**kwargs)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart)
        folder = os.path.dirname(self.ip)
        if not restart and os.path.basename(folder).startswith("utscale-kernel-"):
            shutil.rmtree(folder, ignore_errors=True)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        await super()._async_launch_kernel(kernel_cmd, **{**kw, "preexec_fn": _die_with_parent})


def execute(path: Path, output: Path, parameters: Mapping[str, Any] | None) -> None:
    import papermill

    papermill.execute_notebook(
        str(path), str(output), parameters=dict(parameters) if parameters is not None else None,
        kernel_name="python3", cwd=str(notebooks_dir()), progress_bar=False,
        kernel_manager_class=TiedKernelManager,
    )


def run_pipeline(profile: str, overrides: Mapping[str, Any] | None = None, *, only: Sequence[str] = (),
                 wait: bool = False) -> Run:
    """Execute the numbered notebooks in order into `results/<run_id>/notebooks/`, then render the report.

    The run's lock is held throughout (a second copy fails at once, or queues with `wait`); the
    notebooks' kernels inherit it through LOCK_ENV."""
    cfg = config_mod.resolve(profile, overrides)  # fails before any work on a bad name or value
    paths = [p for p in notebook_paths() if not only or p.name[:2] in only]
    declared = check_notebook_parameters(paths)
    target = results_dir() / cfg.run_id
    lock_run(target, wait=wait)
    try:
        return _execute_all(open_run(profile, cfg.values), paths, declared)
    finally:
        unlock_run(target)


# a batch run's kernels put no progress into the notebooks (utscale.progress shows it in the terminal)
QUIET = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def _execute_all(run: Run, paths: Sequence[Path], declared: Mapping[Path, list[str]]) -> Run:
    for name, value in QUIET.items():
        os.environ.setdefault(name, value)
    os.environ[LOCK_ENV] = str(run.path.resolve())
    shown = progress.terminal_environment()  # bars to the terminal when a person watches it
    os.environ.update(shown)
    try:
        _run_notebooks(run, paths, declared)
    finally:
        os.environ.pop(LOCK_ENV, None)
        for name in shown:
            os.environ.pop(name, None)
    report = render_report(run)
    executed = run.manifest().get("notebooks", {})
    run.update_manifest(completed=all(p.name in executed for p in notebook_paths()))
    print(f"[utscale] report: {report}", flush=True)
    return run


def _run_notebooks(run: Run, paths: Sequence[Path], declared: Mapping[Path, list[str]]) -> None:
    for path in paths:
        print(f"[utscale] {run.run_id}: executing {path.name}", flush=True)
        executed = run.file(f"notebooks/{path.name}")
        execute(path, executed, notebook_parameters(declared[path], run))
        clean_notebook(executed)
        run.update_manifest(notebooks={path.name: datetime.now(UTC).isoformat(timespec="seconds")})


VOLATILE_NOTEBOOK_KEYS = ("papermill",)


def kernel_metadata() -> dict[str, Any]:
    """The notebook metadata JupyterLab itself writes when it opens a notebook on this environment's
    `python3` kernel (the kernelspec's display name, the interpreter's version): with anything else a
    committed notebook is marked modified the moment it opens, and a save rewrites it."""
    import platform

    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    return {"kernelspec": {"display_name": spec.display_name, "language": spec.language, "name": "python3"},
            "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                              "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                              "pygments_lexer": "ipython3", "version": platform.python_version()}}


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def clean_notebook(path: Path) -> None:
    """Drop per-execution metadata (papermill's timings and machine paths, execution times) so committed
    notebooks diff cleanly, and keep the kernel metadata JupyterLab would write (see `kernel_metadata`).

    Also: the cell papermill injects gets a fixed id (papermill draws a random one per execution), and
    widget outputs go, with the widget state: the notebooks show no widgets of their own, so one is a
    library's progress bar, whose snapshot and model ids change on every run. Consecutive stream outputs
    are merged (`merged_streams`)."""
    nb = nbformat.read(path, as_version=4)
    for key in VOLATILE_NOTEBOOK_KEYS + ("widgets",):
        nb.metadata.pop(key, None)
    nb.metadata.update(kernel_metadata())
    for cell in nb.cells:
        for key in VOLATILE_NOTEBOOK_KEYS + ("execution",):
            cell.metadata.pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        if cell.cell_type == "code":
            cell.outputs = merged_streams([o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})])
    nbformat.write(nb, path)


def merged_streams(outputs: list[Any]) -> list[Any]:
    """Consecutive stream outputs of one name as one: how a kernel's writes are chunked depends on timing,
    so without this an identical re-render moves the boundaries."""
    merged: list[Any] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    return merged


def refresh_notebooks(only: Sequence[str] = ()) -> None:
    """Re-execute the committed notebooks in place with their defaults (the ci profile), in a fresh
    results folder: the only sanctioned way to update the outputs nbval compares against."""
    saved = {name: os.environ.get(name) for name in (*QUIET, "UTSCALE_RESULTS")}
    os.environ.update(QUIET)
    try:
        with tempfile.TemporaryDirectory(prefix="utscale-refresh-") as tmp:
            os.environ["UTSCALE_RESULTS"] = tmp
            for path in notebook_paths():
                if only and path.name[:2] not in only:
                    continue
                print(f"[utscale] refreshing {path.name}", flush=True)
                execute(path, path, None)
                clean_notebook(path)
    finally:  # the caller's environment as it was (a later run must not land in a deleted folder)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


