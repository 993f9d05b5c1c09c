"""The papermill pipeline end to end on the ci profile (notebook 01 and whatever exists after it)."""

from __future__ import annotations

import os
import re

import pytest
from utscale import pipeline

pytestmark = pytest.mark.notebook


def test_pipeline_runs_notebooks_and_renders_a_self_contained_report(results_root):
    run = pipeline.run_pipeline("ci", {"LIMIT": 4}, only=["01"])
    executed = run.path / "notebooks" / "01_load_benchmark.ipynb"
    assert executed.exists()
    assert len(run.read_table("problems")) == 4
    html = (run.path / "report.html").read_text()
    assert f"run: {run.run_id}" in html
    assert re.search(r'<img[^>]*src="data:image/png;base64,', html)
    assert "LIMIT" in html and "<code>4</code>" in html
    assert "def has_close_elements" in re.sub(r"<[^>]+>", "", html)  # outputs are in, code cells are not
    assert '<div class="highlight' in html  # the prompt and the harness are shown as code, not as a string
    assert "open_notebook_run" not in html
    assert (run.path / "figures" / "prompt_length_distribution.csv").exists()
    manifest = run.manifest()
    assert list(manifest["notebooks"]) == ["01_load_benchmark.ipynb"]
    assert manifest["completed"] is False  # only a part of the pipeline ran
    assert "load_benchmark" in run.manifest()["timings"]
    # the executed notebook records no machine paths, timings or warnings: it can be committed as it is
    text = executed.read_text()
    assert str(results_root) not in text and str(pipeline.notebooks_dir()) not in text and '"papermill"' not in text
    assert '"name": "stderr"' not in text and "\\u001b[" not in text
    assert f'RUN_DIR = \\"{run.run_id}\\"' in text  # relative to the results root


def test_refreshing_notebooks_leaves_the_callers_environment_as_it_was(monkeypatch, tmp_path):
    from utscale import pipeline

    monkeypatch.setenv("UTSCALE_RESULTS", str(tmp_path))
    for name in pipeline.QUIET:
        monkeypatch.delenv(name, raising=False)
    pipeline.refresh_notebooks(only=("99",))  # no notebook is numbered 99: only the environment is at stake
    assert os.environ["UTSCALE_RESULTS"] == str(tmp_path) and not set(pipeline.QUIET) & set(os.environ)


def test_cleaning_an_executed_notebook_removes_what_changes_on_every_run(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"papermill": {"duration": 1.0}, "widgets": {"state": {}}})
    injected = nbformat.v4.new_code_cell("RUN_DIR = 'x'", metadata={"tags": ["injected-parameters"]})
    bar = nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "ab12"},
                                                     "text/plain": "Loading:   0%|"})
    kept = nbformat.v4.new_output("stream", name="stdout", text="run: ci\n")
    chunk = nbformat.v4.new_output("stream", name="stdout", text="done\n")  # the kernel's writes, chunked by timing
    warning = nbformat.v4.new_output("stream", name="stderr", text="w\n")
    work = nbformat.v4.new_code_cell("print('run: ci')", outputs=[bar, kept, chunk, warning, chunk],
                                     metadata={"execution": {"iopub.status.busy": "2026-12-01T20:00:00Z"}})
    nb.cells = [injected, work]
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    pipeline.clean_notebook(path)
    cleaned = nbformat.read(path, as_version=4)
    assert "papermill" not in cleaned.metadata and "widgets" not in cleaned.metadata
    assert cleaned.metadata["kernelspec"]["name"] == "python3"
    assert cleaned.cells[0].id == "injected-parameters"  # papermill draws a new random id per execution
    assert [(o.name, o.text) for o in cleaned.cells[1].outputs] == [("stdout", "run: ci\ndone\n"), ("stderr", "w\n"),
                                                                    ("stdout", "done\n")]
    assert "execution" not in cleaned.cells[1].metadata
