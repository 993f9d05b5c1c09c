"""Keyed JSONL records, standard library only: the append-only log every resumable stage writes (and
the sandbox's command line, which must not need the analysis stack), and the natural order of keys."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def natural_key(value: Any) -> tuple:
    """Sort `HumanEval/2` before `HumanEval/10`."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(value)))


class JsonlLog:
    """An append-only JSONL file of keyed records, for resumable stages.

    A process killed mid-write can leave a partial last line; opening the log drops it (the record is
    simply redone), so a resumed run neither crashes on it nor counts it as done.
    """

    def __init__(self, path: str | Path, key: Sequence[str]):
        self.path = Path(path)
        self.key = tuple(key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()

    def _repair_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as fh:
            fh.truncate(cut)

    def _key_of(self, record: Mapping[str, Any]) -> tuple:
        return tuple(record[k] for k in self.key)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    def keys(self) -> set[tuple]:
        return {self._key_of(r) for r in self}

    def append(self, records: Iterable[Mapping[str, Any]], *, sync: bool = True) -> int:
        """Append records; returns how many were written.

        Flushed to the OS every time, so a killed process loses nothing it appended; `sync` also
        fsyncs (survives a machine crash), which streaming writers do once at the end instead.
        """
        lines = [json.dumps(dict(r), sort_keys=True, ensure_ascii=False) + "\n" for r in records]
        if not lines:
            return 0
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        return len(lines)

    @contextmanager
    def writer(self) -> Iterator[Callable[[Mapping[str, Any]], None]]:
        """A streaming writer: each record is written and flushed at once (a killed process loses
        only the record it had not yet received), one fsync at the end."""
        with open(self.path, "a", encoding="utf-8") as fh:
            def write(record: Mapping[str, Any]) -> None:
                fh.write(json.dumps(dict(record), sort_keys=True, ensure_ascii=False) + "\n")
                fh.flush()

            yield write
            os.fsync(fh.fileno())
