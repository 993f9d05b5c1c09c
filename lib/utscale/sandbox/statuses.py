"""The verdicts a test can get (docs/sandbox.md): the sandbox's whole vocabulary, shared by the driver,
the worker and every executor mode. Only `pass` passes. Standard library only."""

from __future__ import annotations

from typing import Literal, get_args

Status = Literal["pass", "fail", "error", "timeout", "crash", "invalid", "tampered", "unencodable"]
STATUSES: tuple[Status, ...] = get_args(Status)
