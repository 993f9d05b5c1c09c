"""Progress bars: in the terminal of `utscale run`, as a widget in JupyterLab, never in a batch run's notebooks."""

from __future__ import annotations

import io
import os

import pandas as pd
from tqdm.notebook import tqdm as notebook_tqdm
from utscale import generation, progress
from utscale.engines.replay_engine import ReplayEngine
from utscale.runs import JsonlLog

from tests.test_generation import CFG, problems, write_replay


def test_tqdm_disable_silences_the_notebook_widget_too(monkeypatch):
    """tqdm's notebook widget ignores TQDM_DISABLE (set for CI, nbval and the pipeline's kernels): the
    variable is passed on explicitly."""
    made = []

    def recording(*args, **kwargs):
        made.append(notebook_tqdm(*args, **kwargs))
        made[-1].disabled_at_start = made[-1].disable  # close() disables every bar once it is done
        return made[-1]

    monkeypatch.setattr(progress, "auto_tqdm", recording)
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    progress.bar(total=3).close()
    monkeypatch.setenv("TQDM_DISABLE", "0")
    progress.bar(total=3).close()
    assert [b.disabled_at_start for b in made] == [True, False]


def test_under_the_pipeline_generation_reports_each_sample_with_an_eta_on_the_terminal(tmp_path, monkeypatch):
    """The pipeline's kernels get UTSCALE_PROGRESS=<the terminal's device>: the bar is written there,
    whatever TQDM_DISABLE says, and not to `sys.stderr`, which ipykernel turns into notebook output
    (here a file stands in for the device)."""
    terminal = tmp_path / "pts"
    monkeypatch.setenv(progress.PROGRESS_ENV, str(terminal))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    captured_by_notebook = io.StringIO()
    monkeypatch.setattr("sys.stderr", captured_by_notebook)
    probs = problems()
    replay = tmp_path / "replay.jsonl"
    write_replay(replay, probs, lambda t, k: f"r{k}")
    requests = generation.solution_requests(probs, CFG)
    generation.generate(requests, ReplayEngine(str(replay), "m"), JsonlLog(tmp_path / "a.jsonl", generation.RAW_KEY),
                        batch_size=2, progress="solutions")
    progress._terminals.pop(str(terminal)).close()
    shown = terminal.read_text()
    assert "solutions: 100%" in shown and f"{len(requests)}/{len(requests)}" in shown and "sample/s" in shown
    assert captured_by_notebook.getvalue() == ""


def test_bars_go_to_the_terminal_only_when_a_person_watches_it(tmp_path):
    """A terminal (a pseudo-terminal here) is named by its device; a file, a pipe or a buffer gets none."""
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal, open(tmp_path / "log", "w") as log:
        assert progress.terminal_environment(terminal) == {progress.PROGRESS_ENV: os.ttyname(follower)}
        assert progress.terminal_environment(log) == {}
    assert progress.terminal_environment(io.StringIO()) == {}
    os.close(leader)


def test_the_pass_matrix_stage_reports_pairs(tmp_path, monkeypatch):
    from utscale import execution
    from utscale.sandbox import Executor, SandboxSettings

    terminal = tmp_path / "pts"
    monkeypatch.setenv(progress.PROGRESS_ENV, str(terminal))
    test = "import unittest\nclass T(unittest.TestCase):\n    def test_it(self):\n        self.assertEqual(f({k}), {k})\n"
    pairs = {("T/0", 0, k): ("def f(x):\n    return x\n", test.format(k=k)) for k in range(3)}
    log = JsonlLog(tmp_path / "executions.jsonl", ["task_id", "solution_id", "test_id"])
    with Executor(workers=1, settings=SandboxSettings(mode="fast", jail="none", timeout=5.0)) as executor:
        report = execution._run_logged(pairs, log, executor, lambda v: {"status": v.status}, {})
    assert report.executed == 3
    progress._terminals.pop(str(terminal)).close()
    assert "executions: 100%" in terminal.read_text()
    assert pd.DataFrame(list(log)).status.tolist() == ["pass"] * 3
