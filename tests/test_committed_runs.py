"""CI runs the main job as a newcomer does: every committed run is re-rendered from its committed inputs
(raw generation logs, sandbox verdicts, probe features) in a fresh results folder, exactly as `make run`
does, and what it writes must match the committed tables, metrics and figure data (exact, or within
`runs.DRIFT_TOLERANCE` with the difference printed)."""

from __future__ import annotations

import pandas as pd
import pytest
from utscale import rerender


@pytest.mark.slow
@pytest.mark.rerender
@pytest.mark.parametrize("run_id", rerender.committed_runs())
def test_a_committed_run_re_renders_to_its_committed_files(run_id, tmp_path):
    comparisons = rerender.rerender(run_id, tmp_path)
    for c in comparisons:
        if c.outcome != "identical":
            print(c.line())
    assert len(comparisons) > 10
    assert [c.line() for c in comparisons if not c.ok] == []


def _run_folder(root, **tables):
    root.mkdir(parents=True)
    for name, frame in tables.items():
        frame.to_parquet(root / f"{name}.parquet")
    (root / "metrics").mkdir()
    (root / "metrics" / "verdicts.json").write_text('{"a": 1}')
    return root


def test_the_comparison_reaches_each_of_its_outcomes(tmp_path):
    table = pd.DataFrame({"task_id": ["a", "b"], "x": [0.5, 0.25]})
    committed = _run_folder(tmp_path / "c", same=table, drifted=table, changed=table, gone=table)
    fresh = _run_folder(tmp_path / "f", same=table, drifted=table.assign(x=[0.5, 0.25 + 1e-9]),
                        changed=table.assign(x=[0.5, 0.3]), new=table)
    outcomes = {c.path: c.outcome for c in rerender.compare_runs(committed, fresh)}
    assert outcomes == {"same.parquet": "identical", "drifted.parquet": "drift", "changed.parquet": "differs",
                        "gone.parquet": "missing", "new.parquet": "extra", "metrics/verdicts.json": "identical"}
    (fresh / "metrics" / "verdicts.json").write_text('{"a": 2}')
    assert rerender.compare_file(committed, fresh, "metrics/verdicts.json").outcome == "differs"


def test_only_the_inputs_travel(tmp_path):
    committed = _run_folder(tmp_path / "c", labels=pd.DataFrame({"a": [1]}), difficulty=pd.DataFrame({"a": [1]}))
    (committed / "solutions_raw.jsonl").write_text("{}\n")
    assert rerender.copy_inputs(committed, tmp_path / "f") == ["solutions_raw.jsonl", "labels.parquet"]
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["labels.parquet", "solutions_raw.jsonl"]


def test_a_run_still_generating_is_committed_for_its_logs_but_not_re_rendered(tmp_path, monkeypatch):
    """A long generation spans rounds of work: its raw logs are committed at every stop, but re-rendering it
    would mean generating the rest, so only runs whose every notebook ran count as committed runs."""
    from utscale import manifest

    template = dict(manifest.read(rerender.committed_root() / "embedded" / "manifest.json"))
    template.pop("completed")
    for name, completed in (("done", True), ("generating", False), ("old", None)):
        (tmp_path / name).mkdir()
        extra = {"completed": completed} if completed is not None else {}
        manifest.write(tmp_path / name / "manifest.json", {**template, "run_id": name, **extra})
    (tmp_path / "no-manifest").mkdir()
    monkeypatch.setattr(rerender, "committed_root", lambda: tmp_path)
    assert rerender.committed_runs() == ["done"]
