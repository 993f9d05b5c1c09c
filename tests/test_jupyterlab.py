"""A JupyterLab smoke test: a committed notebook opens on its kernel without being marked modified.

JupyterLab rewrites a notebook's kernel metadata when it opens it; metadata that differs from what it
would write (an older kernelspec display name, no interpreter version) marks the notebook modified at
once, and a save rewrites the committed file. The server runs on 127.0.0.1 with a token, on a copy of
the notebook, in headless Chromium; the screenshot is kept as an artifact.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_report_browser import CHROMIUM, artifact_dir, sync_api

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOKS / "01_load_benchmark.ipynb", root)
    port, token = free_port(), "utscale-smoke"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
         "--ServerApp.port_retries=0", "--allow-root", "--LabApp.extension_manager=readonly"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    try:
        yield f"http://127.0.0.1:{port}/lab/tree/01_load_benchmark.ipynb?token={token}", root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.slow
def test_a_committed_notebook_opens_in_jupyterlab_without_being_marked_modified(lab, tmp_path):
    url, root = lab
    committed = (root / "01_load_benchmark.ipynb").read_bytes()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url, wait_until="load")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        # the kernel has started and settled: the notebook's execution indicator says idle
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=120_000)
        page.wait_for_timeout(2000)  # JupyterLab writes the kernel's metadata once the kernel reports in
        tab = page.locator(".lm-TabBar-tab", has_text="01_load_benchmark.ipynb")
        classes = tab.first.get_attribute("class") or ""
        page.screenshot(path=str(artifact_dir(tmp_path) / "jupyterlab-01_load_benchmark.png"))
        browser.close()
    assert "jp-mod-dirty" not in classes, "JupyterLab marked the committed notebook modified on opening it"
    assert (root / "01_load_benchmark.ipynb").read_bytes() == committed
