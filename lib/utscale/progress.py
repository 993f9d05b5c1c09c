"""Progress with an ETA on long stages (generation, labels, the pass matrix), shown where a person
watches and nowhere else.

- Under `utscale run` started from a terminal, the pipeline names that terminal's device in
  UTSCALE_PROGRESS for its kernels, and bars are written to the device itself: a kernel's stdout and
  stderr, even its process's file descriptors, are copied into the notebook by ipykernel, and it runs in
  a session of its own, without a controlling terminal. No bar reaches an executed notebook or the report.
- In JupyterLab (no variable set): tqdm's notebook widget.
- TQDM_DISABLE (CI, the pipeline's kernels, nbval): none. It is passed explicitly, because tqdm's notebook
  widget ignores the variable and would put a widget into every executed notebook.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm as terminal_tqdm
from tqdm.auto import tqdm as auto_tqdm

PROGRESS_ENV = "UTSCALE_PROGRESS"  # the terminal device (/dev/pts/N) that bars are written to
_terminals: dict[str, TextIO] = {}


def disabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")


def bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it") -> Any:
    """A tqdm bar over `iterable` (or updated by hand up to `total`), shown as the module says; none at
    all when there is nothing to do (`total` 0)."""
    device = os.environ.get(PROGRESS_ENV, "")
    if device:
        if device not in _terminals:
            _terminals[device] = open(device, "w")  # noqa: SIM115 - kept open for every later bar
        return terminal_tqdm(iterable, total=total, desc=desc, unit=unit, file=_terminals[device],
                             disable=total == 0, mininterval=2.0)
    return auto_tqdm(iterable, total=total, desc=desc, unit=unit, disable=disabled() or total == 0)


def terminal_environment(stream: Any = None) -> dict[str, str]:
    """What the pipeline adds to its kernels' environment: bars to the terminal when its own stderr is
    one (a person is watching), nothing when it is a file or a pipe (CI, a background job's log)."""
    stream = sys.stderr if stream is None else stream
    try:
        return {PROGRESS_ENV: os.ttyname(stream.fileno())} if stream.isatty() else {}
    except (AttributeError, OSError, ValueError):  # no descriptor behind it (a test's buffer)
        return {}
