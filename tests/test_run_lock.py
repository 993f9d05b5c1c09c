"""One writer per run: the run lock, its stale takeover, --wait, and what the sweep counts as done."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from utscale import cli, runs, sweep

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from utscale import runs
    runs.lock_run(Path(sys.argv[1]))
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def hold_lock(path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_fails_at_once_naming_the_holder(results_root, capsys):
    target = results_root / "ci"
    holder = hold_lock(target, 30)
    try:
        with pytest.raises(runs.RunLocked, match=rf"being written by another process \(pid {holder.pid}: .*--wait"):
            runs.lock_run(target)
        # the CLI: a clean message and exit status 2, before any notebook ran
        assert cli.main(["run", "--profile", "ci"]) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "Traceback" not in err
        assert not (target / "notebooks").exists()
        # a notebook opened on its own (JupyterLab) refuses too, and does not keep the lock
        with pytest.raises(runs.RunLocked):
            runs.open_notebook_run({"PROFILE": "ci"})
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_is_taken_over(results_root):
    target = results_root / "ci"
    holder = hold_lock(target, 30)
    holder.kill()  # kill -9: no cleanup ran, the lock file stays with its pid
    holder.wait()
    assert f"pid {holder.pid}" in (target / runs.LOCK_FILE).read_text()
    runs.lock_run(target)
    try:
        assert f"pid {holder.pid}" not in (target / runs.LOCK_FILE).read_text()
    finally:
        runs.unlock_run(target)


def test_wait_queues_behind_the_holder(results_root):
    target = results_root / "ci"
    holder = hold_lock(target, 1.0)
    started = time.monotonic()
    runs.lock_run(target, wait=True)
    try:
        assert holder.poll() is not None or time.monotonic() - started > 0.5
    finally:
        runs.unlock_run(target)
        holder.wait()


def test_the_pipeline_s_kernels_write_under_their_parent_s_lock(results_root, monkeypatch):
    target = results_root / "ci"
    runs.lock_run(target)
    try:
        # what a kernel started by the pipeline sees: LOCK_ENV names the run, so opening it is allowed
        monkeypatch.setenv(runs.LOCK_ENV, str(target.resolve()))
        runs.check_unlocked(target)
    finally:
        runs.unlock_run(target)


def test_sweep_counts_a_point_done_only_after_its_report(results_root):
    run = runs.open_run("ci")
    notebooks = {"01_load_benchmark.ipynb": "2026-12-01T10:00:00+00:00", "02_sample_solutions.ipynb": "2026-12-01T10:05:00+00:00"}
    run.update_manifest(notebooks=notebooks)
    assert not sweep.finished(run.run_id, ["01", "02"])  # every notebook ran, the report never did
    (run.path / "report.html").write_text("<html></html>")
    run.update_manifest(report_rendered="2026-12-01T10:01:00+00:00")
    assert not sweep.finished(run.run_id, ["01", "02"])  # a report older than the last notebook
    run.update_manifest(report_rendered="2026-12-01T10:06:00+00:00")
    assert sweep.finished(run.run_id, ["01", "02"])
    assert not sweep.finished(run.run_id, ["01", "02", "03"])
