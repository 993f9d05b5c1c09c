"""Replay: generations read from files instead of a model.

Three formats:
- `utscale`: our own raw generation logs (`solutions_raw.jsonl` / `unit_tests_raw.jsonl` of a run,
  or a committed fixture): one row per (task_id, index) with the raw response and its token counts.
- `coderm`: the CodeRM authors' released files: `sol_*.jsonl` rows {task_id, solutions: [{solution,
  ...}]} and `ut_*.jsonl` rows {task_id, unit_tests: [str]} where each test is wrapped in the
  authors' runner (docs/method.md §3.3). Their code is re-fenced and their runner lines removed, so
  the same extraction applies to everyone's generations.
- `codet`: CodeT's released files (`utscale.codet`): rows {prompt, samples}; the raw completion is
  replayed as it was sampled, and CodeT's own post-processing turns it into code (`generation`).
  The files carry no token counts: a named tokenizer counts them (`REPLAY_TOKENIZER`).
A sample the file does not have is an explicit `error: not in replay file` completion.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from utscale import codet
from utscale.engines.base import Completion, Request
from utscale.paths import project_root

RUNNER_LINES = re.compile(
    r"^\s*(suite\s*=\s*unittest\.TestLoader\(\)\.loadTestsFromTestCase\(.*\)|"
    r"runner\s*=\s*unittest\.TextTestRunner\(.*\)|result\s*=\s*runner\.run\(suite\)|"
    r"locals_dict\[['\"]result['\"]\]\s*=\s*result)\s*$", re.M)
FORMATS = ("utscale", "coderm", "codet")
TokenCounter = Callable[[list[str]], list[int]]


def _fence(code: str) -> str:
    return f"```python\n{code.strip()}\n```"


def _records(path: Path) -> list[tuple[int, dict]]:
    """Each non-blank line as (line number, JSON object); errors name the file and line."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise codet.ReplayFileError(f"{path}, line {number}: not valid JSON ({exc.msg})") from exc
    return out


def read_replay(path: Path, fmt: str, kind: str) -> dict[tuple[str, int], dict]:
    """(task_id, index) → {text, prompt_tokens, completion_tokens, finish_reason, latency_s}
    for the `utscale` and `coderm` formats (`codet` has its own reader, `utscale.codet`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown replay format {fmt!r}: use one of {FORMATS}")
    if not path.is_file():
        raise FileNotFoundError(f"replay file not found: {path}")
    table: dict[tuple[str, int], dict] = {}
    for _, row in _records(path):
        if fmt == "utscale":
            table[(row["task_id"], int(row["index"]))] = {
                "text": row["raw_response"], "prompt_tokens": row.get("prompt_tokens", 0),
                "completion_tokens": row.get("completion_tokens", 0),
                "finish_reason": row.get("finish_reason", "stop"), "latency_s": row.get("latency_s", 0.0)}
        else:
            items = row["solutions"] if kind == "solutions" else row["unit_tests"]
            for i, item in enumerate(items):
                code = item["solution"] if isinstance(item, dict) else item
                if kind == "unit_tests":
                    code = RUNNER_LINES.sub("", code)
                table[(row["task_id"], i)] = {"text": _fence(code), "prompt_tokens": 0, "completion_tokens": 0,
                                              "finish_reason": "stop", "latency_s": 0.0}
    return table


def read_codet(path: Path, kind: str, count_tokens: TokenCounter | None,
               entry_points: Mapping[str, str] | None = None) -> tuple[dict[tuple[str, int], dict], codet.CodetFile]:
    """CodeT's file as replay records, sample index = position in the file's `samples`."""
    release = codet.read_generated(path, kind, entry_points)
    keys = [(task, i) for task, items in release.samples.items() for i in range(len(items))]
    texts = [release.samples[task][i] for task, i in keys]
    tasks = list(release.prompts)
    if count_tokens is not None:
        completion_tokens = count_tokens(texts)
        prompt_tokens = dict(zip(tasks, count_tokens([release.prompts[t] for t in tasks])))
    else:
        completion_tokens, prompt_tokens = [0] * len(texts), dict.fromkeys(tasks, 0)
    table = {key: {"text": text, "prompt_tokens": int(prompt_tokens[key[0]]), "completion_tokens": int(tokens),
                   "finish_reason": "unknown", "latency_s": 0.0}
             for key, text, tokens in zip(keys, texts, completion_tokens)}
    return table, release


class ReplayEngine:
    name = "replay"

    def __init__(self, path: str, model: str, fmt: str = "utscale", kind: str = "solutions",
                 count_tokens: TokenCounter | None = None, entry_points: Mapping[str, str] | None = None):
        resolved = Path(path) if Path(path).is_absolute() else project_root() / path
        self.model = model
        self.format = fmt
        self.prompts: dict[str, str] = {}  # codet: the prompt each task's samples continue
        if fmt == "codet":
            self.table, release = read_codet(resolved, kind, count_tokens, entry_points)
            self.prompts, sha256 = release.prompts, release.sha256
        else:
            self.table = read_replay(resolved, fmt, kind)
            sha256 = hashlib.sha256(resolved.read_bytes()).hexdigest()
        self.sha256 = sha256
        self.weights_id = f"replay:{resolved.name}"

    def provenance(self) -> dict:
        """What the manifest records of the file: its hash and how many samples it holds."""
        return {"file": self.weights_id.removeprefix("replay:"), "format": self.format, "sha256": self.sha256,
                "samples": len(self.table)}

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for r in requests:
            hit = self.table.get((r.task_id, r.index))
            out.append(Completion(**hit) if hit else Completion("", 0, 0, "error: not in replay file", 0.0))
        return out
