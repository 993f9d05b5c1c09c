"""`python -m utscale.sandbox run --input IN.jsonl --output OUT.jsonl [--timeout S] [--workers N] [--mode M]`

Input lines: {"id": str, "solution": str, "test": str}, `test` a unittest program run after the
solution's definitions. Output lines: {"id", "passed", "status", "tests_run", "duration_s"}.
Each output line also carries `key`, a hash of (solution, test, mode, timeout, clock). Verdicts are appended
as they arrive, so an interrupted run resumes: an output record is reused only when its id *and* key
match the input's (a stale verdict for other code or other settings is run again); output ids not in
the input are reported and dropped (kept with `--keep-extra`); `--output` may not be `--input`. A
malformed input line gets an `invalid` verdict (keyed by its id, or `line-N` without one) instead of
stopping the run. When every pair has a verdict the output is rewritten sorted by id and the exit
status is 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from utscale.records import JsonlLog, natural_key
from utscale.sandbox.executor import MODES, Executor, NoJail, SandboxSettings
from utscale.sandbox.pairs import Pair, run_pairs, text_key


def read_pairs(path: Path) -> tuple[list[Pair], list[dict]]:
    """Well-formed pairs, and verdict records for malformed lines."""
    pairs, rejected, seen = [], [], set()
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                rejected.append({"id": f"line-{number}", "error": f"not JSON: {exc.msg}"})
                continue
            rid = record.get("id") if isinstance(record, dict) else None
            key = rid if isinstance(rid, str) and rid else f"line-{number}"
            fields = record if isinstance(record, dict) else {}
            problems = [f for f in ("id", "solution", "test") if not isinstance(fields.get(f), str)]
            if problems:
                rejected.append({"id": key, "error": f"missing or non-string fields: {problems}"})
            elif key in seen:
                rejected.append({"id": f"line-{number}", "error": f"duplicate id {key!r}"})
            else:
                seen.add(key)
                pairs.append(Pair(key, record["solution"], record["test"]))
    return pairs, rejected


def content_key(solution: str, test: str, mode: str, timeout: float, clock: str) -> str:
    """What a verdict depends on: the code and the rules it ran under (mode, limit, the limit's clock)."""
    return text_key(json.dumps([solution, test, mode, timeout, clock], ensure_ascii=False))


def previous_records(path: Path) -> dict[str, dict]:
    """The output's records by id (the last one of an id wins); a line that is not a record is skipped."""
    records: dict[str, dict] = {}
    JsonlLog(path, ["id"])  # opening the log cuts a torn last line (a kill mid-write), so appends start clean
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                records[record["id"]] = record
    return records


def run(args: argparse.Namespace) -> int:
    source, target = Path(args.input), Path(args.output)
    if not source.is_file():
        print(f"error: input file not found: {source}", file=sys.stderr)
        return 2
    if target.exists() and target.resolve() == source.resolve():
        print(f"error: --output is the input file {source}; verdicts would overwrite the pairs", file=sys.stderr)
        return 2
    pairs, rejected = read_pairs(source)
    settings = SandboxSettings(timeout=args.timeout, mode=args.mode, jail=args.jail, clock=args.clock)
    keys = {p.id: content_key(p.solution, p.test, args.mode, args.timeout, settings.effective_clock) for p in pairs}
    keys.update({r["id"]: content_key("", r["error"], "invalid", 0.0, "") for r in rejected})
    previous = previous_records(target)
    extra = sorted(set(previous) - set(keys), key=natural_key)
    if extra:
        print(f"{'keeping' if args.keep_extra else 'dropping'} {len(extra)} output records whose ids are not in the "
              f"input: {', '.join(extra[:10])}{' …' if len(extra) > 10 else ''}", file=sys.stderr)
    finished = {i for i, r in previous.items() if i in keys and r.get("key") == keys[i]}
    stale = sorted(i for i in previous if i in keys and i not in finished)
    if stale:
        print(f"re-running {len(stale)} pairs whose output came from other code or settings", file=sys.stderr)
    todo = [p for p in pairs if p.id not in finished]
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as out:
        for record in rejected:
            if record["id"] not in finished:
                out.write(json.dumps({"id": record["id"], "passed": False, "status": "invalid", "tests_run": 0,
                                      "duration_s": 0.0, "error": record["error"], "key": keys[record["id"]]}) + "\n")
        out.flush()
        if todo:
            with Executor(workers=args.workers, settings=settings) as executor:
                for verdict in run_pairs(todo, executor):
                    out.write(json.dumps({"id": verdict.id, "passed": verdict.passed, "status": verdict.status,
                                          "tests_run": verdict.tests_run, "duration_s": verdict.duration_s,
                                          "key": keys[verdict.id]}) + "\n")
                    out.flush()
    records = {i: r for i, r in previous_records(target).items()
               if (i in keys and r.get("key") == keys[i]) or (args.keep_extra and i in extra)}
    expected = set(keys)
    missing = expected - set(records)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    tmp.write_text("".join(json.dumps(records[k]) + "\n" for k in sorted(records, key=natural_key)), encoding="utf-8")
    os.replace(tmp, target)
    if missing:
        print(f"error: {len(missing)} pairs got no verdict", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m utscale.sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute (solution, test) pairs from a JSONL file")
    run_p.add_argument("--input", required=True)
    run_p.add_argument("--output", required=True)
    run_p.add_argument("--timeout", type=float, default=1.0, help="seconds per test program (default 1.0)")
    run_p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    run_p.add_argument("--mode", choices=MODES, default="fast")
    run_p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                       help="what the limit counts: CPU time (a wall-clock backstop remains) or wall time")
    run_p.add_argument("--jail", choices=("auto", "bwrap", "none"), default="auto",
                       help="auto: bubblewrap or root namespaces, else refuse; none: run unisolated (warned)")
    run_p.add_argument("--keep-extra", action="store_true", help="keep output records whose ids are not in the input")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.timeout <= 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return 2
    try:
        return run(args)
    except NoJail as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
