"""Stopping a run stops its notebook kernels at once (the kernels live in sessions of their own)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.notebook

HEARTBEAT = """
import itertools, os, time
open({pid!r}, "w").write(str(os.getpid()))
for beat in itertools.count():
    with open({beats!r}, "w") as fh:
        fh.write(str(beat))
    time.sleep(0.005)
"""


def alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state.split()[1]  # a zombie has stopped running


@pytest.mark.slow
def test_killing_a_runs_process_group_stops_its_kernel_at_once(tmp_path):
    pid_file, beats = tmp_path / "kernel.pid", tmp_path / "beats"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        HEARTBEAT.format(pid=str(pid_file), beats=str(beats)))])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "beat.ipynb")
    driver = subprocess.Popen(
        [sys.executable, "-c", "import sys; from utscale.pipeline import execute; "
                               "execute(*map(__import__('pathlib').Path, sys.argv[1:3]), None)",
         str(tmp_path / "beat.ipynb"), str(tmp_path / "out.ipynb")],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (beats.exists() and beats.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        kernel = int(pid_file.read_text())
        assert alive(kernel)
        os.killpg(driver.pid, signal.SIGKILL)  # what Ctrl-\ or `kill -9 -- -PGID` does to a run
        driver.wait()
        time.sleep(0.3)
        after_kill = beats.read_text()
        time.sleep(2.5)  # ipykernel's own parent poll would have ended it by now
        assert beats.read_text() == after_kill, "the kernel kept writing after its run was killed"
        assert not alive(kernel)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)


@pytest.mark.slow
def test_kernels_talk_over_private_local_sockets_and_say_nothing_about_tcp(tmp_path):
    """The kernel is reached over Unix-domain sockets in a private folder (no TCP port another user could
    connect to, and no "running over TCP without encryption" warning in the terminal), removed after."""
    probe = "import json, os, sys\nfrom ipykernel.kernelapp import IPKernelApp\napp = IPKernelApp.instance()\n" \
            "print(json.dumps([app.transport, app.ip]))"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "probe.ipynb")
    done = subprocess.run([sys.executable, "-c", "import sys, pathlib; from utscale.pipeline import execute; "
                           "execute(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), None)",
                           str(tmp_path / "probe.ipynb"), str(tmp_path / "out.ipynb")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "TCP" not in done.stderr
    transport, ip = __import__("json").loads(nbformat.read(tmp_path / "out.ipynb", 4).cells[0].outputs[0]["text"])
    assert transport == "ipc" and Path(ip).parent.name.startswith("utscale-kernel-")
    assert not Path(ip).parent.exists()  # the private folder is gone with the kernel
