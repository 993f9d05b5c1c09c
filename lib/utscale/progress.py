"""Progress with an ETA on long stages (generation, labels, the pass matrix), shown where a person
watches and nowhere else.

- Under `utscale run`, started from a terminal, the pipeline sets UTSCALE_PROGRESS=terminal for its
  kernels: bars go to the kernel process's own stderr, which is the terminal's (ipykernel captures
  `sys.stderr` into the notebook, not the process's file descriptor), so no bar reaches an executed
  notebook or the report.
- In JupyterLab (no variable set): tqdm's notebook widget.
- TQDM_DISABLE (CI, the pipeline's kernels, nbval): none. It is passed explicitly, because tqdm's notebook
  widget ignores the variable and would put a widget into every executed notebook.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm as terminal_tqdm
from tqdm.auto import tqdm as auto_tqdm

PROGRESS_ENV = "UTSCALE_PROGRESS"
TERMINAL = "terminal"


def disabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")


def bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it") -> Any:
    """A tqdm bar over `iterable` (or updated by hand up to `total`), shown as the module says."""
    if os.environ.get(PROGRESS_ENV) == TERMINAL:
        return terminal_tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.__stderr__, disable=False,
                             mininterval=2.0, dynamic_ncols=True)
    return auto_tqdm(iterable, total=total, desc=desc, unit=unit, disable=disabled())


def terminal_environment(stream: Any = None) -> dict[str, str]:
    """What the pipeline adds to its kernels' environment: bars to the terminal when its own stderr is
    one (a person is watching), nothing when it is a file or a pipe (CI, a background job's log)."""
    stream = sys.stderr if stream is None else stream
    return {PROGRESS_ENV: TERMINAL} if getattr(stream, "isatty", lambda: False)() else {}
