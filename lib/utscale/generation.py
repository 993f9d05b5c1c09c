"""The generation stages: N solutions and M unit tests per problem, resumable and cached.

Every sample is its own request with its own seed (derived from the run's root seed, the stage, the
task and the sample index), so any subset can be regenerated identically. Raw completions are
appended to the run's log batch by batch (a killed run resumes where it stopped) and to a shared
cache keyed by (model + weights, prompt, sampling parameters, seed, sample index), so another run
asking for the same samples does not pay for them again. Extraction turns the raw log into the
`solutions` and `unit_tests` tables (docs/design.md contracts).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from utscale import benchmarks, codet, extract, prompts
from utscale.engines import Engine, Request, SamplingConfig, derive_seed, make_engine
from utscale.engines.base import cache_key
from utscale.engines.cpu_settings import cpu_description
from utscale.paths import cache_dir
from utscale.runs import JsonlLog, Run

RAW_KEY = ("task_id", "index")


def solution_requests(problems: pd.DataFrame, config: Mapping[str, Any]) -> list[Request]:
    sampling = SamplingConfig(config["TEMPERATURE"], config["TOP_P"], config["MAX_TOKENS_SOLUTION"])
    return [Request(p.task_id, k, prompts.messages(benchmarks.policy_prompt(p.benchmark, p.prompt)), sampling,
                    derive_seed(config["SEED"], "solutions", p.task_id, k))
            for p in problems.itertuples() for k in range(config["N_SOLUTIONS"])]


def prompt_code(problems: pd.DataFrame, solutions: pd.DataFrame | None, source: str) -> dict[str, tuple[str, str]]:
    """The code shown in each problem's unit-test prompt, and where it came from (recorded per test).

    `policy_sample` (the paper's setting: one fixed candidate per problem, sometimes wrong, never the
    ground truth): the lowest-id policy solution that extracted cleanly, recorded as
    `policy_sample:<solution_id>`; a problem without one gets no code (`none`), never the reference.
    `reference`: the benchmark's canonical solution, only as an explicit, labelled ablation (the test
    generator then sees the ground truth)."""
    if source == "reference":
        return {p.task_id: ("reference", p.reference_solution) for p in problems.itertuples()}
    first_ok: dict[str, tuple[int, str]] = {}
    if solutions is not None:
        ok = solutions[solutions.extract_status == "ok"].sort_values(["task_id", "solution_id"])
        for row in ok.itertuples():
            first_ok.setdefault(row.task_id, (int(row.solution_id), row.code))
    chosen = {}
    for p in problems.itertuples():
        if p.task_id in first_ok:
            index, code = first_ok[p.task_id]
            chosen[p.task_id] = (f"policy_sample:{index}", code)
        else:
            chosen[p.task_id] = ("none", "")
    return chosen


def unit_test_requests(problems: pd.DataFrame, code: Mapping[str, tuple[str, str]],
                       config: Mapping[str, Any]) -> list[Request]:
    sampling = SamplingConfig(config["TEMPERATURE"], config["TOP_P"], config["MAX_TOKENS_TEST"])
    return [Request(p.task_id, k, prompts.messages(prompts.unit_test_prompt(p.question, code[p.task_id][1])),
                    sampling, derive_seed(config["SEED"], "unit_tests", p.task_id, k))
            for p in problems.itertuples() for k in range(config["N_UNIT_TESTS"])]


def shared_cache() -> JsonlLog:
    return JsonlLog(cache_dir() / "generations.jsonl", ["key"])


def progress_disabled() -> bool:
    """Whether TQDM_DISABLE (set for CI and the pipeline) asks for no progress bars. Passed explicitly:
    tqdm's notebook bar (`tqdm.auto` under Jupyter) ignores the variable and would put a widget into every
    executed notebook."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")


ALLOW_ENGINE_CHANGE = "UTSCALE_ALLOW_ENGINE_CHANGE"  # =1: resume a log with another engine/model/weights


class EngineChanged(RuntimeError):
    """A resumed log was written by another engine, model or weights than the one asked to continue it."""


def check_same_engine(log: JsonlLog, engine: Engine) -> bool:
    """Whether continuing `log` with `engine` mixes engines: refused (EngineChanged, naming the way out)
    unless UTSCALE_ALLOW_ENGINE_CHANGE=1, in which case True is returned and the chunk records it. The
    run's configuration (sampling, model name, engine name) is already fixed by its directory; the weights
    are what a resume on another machine could change unnoticed."""
    now = (engine.name, engine.model, engine.weights_id)
    before = {(r["engine"], r["model"], r["weights_id"]) for r in log if r.get("engine") != "replay"} - {now}
    if not before:
        return False
    if os.environ.get(ALLOW_ENGINE_CHANGE, "") == "1":
        return True
    was = ", ".join("/".join(str(x)[:16] for x in b) for b in sorted(before))
    raise EngineChanged(f"{log.path.name} was generated by {was}, not {'/'.join(str(x)[:16] for x in now)}: "
                        f"a resume would mix samples of two engines. Use the same engine and weights, or set "
                        f"{ALLOW_ENGINE_CHANGE}=1 to continue anyway (each chunk records its engine)")


def chunk_record(engine: Engine, stage: str, mixed: bool) -> dict[str, Any]:
    """What one uninterrupted stretch of generation ran on: engine, weights, the CPU plan, the machine."""
    plan = getattr(engine, "cpu_plan", None)
    return {"chunk": f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}", "stage": stage,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "engine": engine.name,
            "model": engine.model, "weights_id": engine.weights_id, "machine": cpu_description(),
            "cores": os.cpu_count(), "cpu_plan": plan.record() if plan is not None else None,
            "engine_changed_allowed": mixed}


def generate(requests: Sequence[Request], engine: Engine, log: JsonlLog, batch_size: int = 128,
             cache: JsonlLog | None = None, progress: str = "", chunks: JsonlLog | None = None) -> int:
    """Fill `log` with one raw record per request not already in it; returns how many were generated
    (fresh from the engine, not from the run's log or the shared cache). Each batch is appended as soon
    as it returns, so a stop loses at most the batch in flight. With `chunks`, the first fresh batch
    records this chunk (engine, CPU plan, machine) there, and every raw record names its chunk."""
    done = log.keys()
    todo = [(r, cache_key(engine, r)) for r in requests if (r.task_id, r.index) not in done]  # each key once
    cached: dict[str, dict] = {}
    if cache is not None and todo:
        wanted = {k for _, k in todo}
        cached = {rec["key"]: rec for rec in cache if rec["key"] in wanted}
    mixed = check_same_engine(log, engine) if todo and engine.name != "replay" else False
    fresh, chunk = 0, ""
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    bar = tqdm(batches, desc=progress or "generating", disable=not batches or progress_disabled())
    for batch in bar:
        missing = [(r, k) for r, k in batch if k not in cached]
        if missing and chunks is not None and not chunk:
            record = chunk_record(engine, progress, mixed)
            chunks.append([record])
            chunk = record["chunk"]
        # the engine call that made a record: its first request's cache key, unique in any log or cache
        batch_id = missing[0][1][:16] if missing else ""
        for (_, key), completion in zip(missing, engine.generate([r for r, _ in missing])):
            record = {"key": key, **completion.record(), "batch_size": len(missing), "batch_id": batch_id,
                      "chunk": chunk}
            cached[record["key"]] = record
            if cache is not None and not completion.finish_reason.startswith("error"):
                cache.append([record])
        fresh += len(missing)
        log.append([{"task_id": r.task_id, "index": r.index, "raw_response": cached[k]["text"],
                     "prompt_tokens": cached[k]["prompt_tokens"], "completion_tokens": cached[k]["completion_tokens"],
                     "finish_reason": cached[k]["finish_reason"], "latency_s": cached[k]["latency_s"],
                     "batch_size": cached[k].get("batch_size", len(batch)), "batch_id": cached[k].get("batch_id", ""),
                     "seed": r.seed, "engine": engine.name, "model": engine.model, "weights_id": engine.weights_id,
                     "prompt_sha256": r.prompt_hash, **({"chunk": chunk} if chunks is not None else {})}
                    for r, k in batch])
    return fresh


def chunks_summary(run: Run) -> list[dict[str, Any]]:
    """Each recorded chunk with what it generated (requests, tokens, engine seconds, tokens/s), from the
    raw logs: the manifest's `generation_chunks`. Records served from the shared cache count as the
    chunk's requests but not its engine seconds."""
    chunks = run.log("generation_chunks", ["chunk"])
    if not chunks.path.exists():
        return []
    raw = pd.concat([run.log(name, RAW_KEY).frame() for name in ("solutions_raw", "unit_tests_raw")
                     if run.file(f"{name}.jsonl").exists()], ignore_index=True)
    summary = []
    for record in chunks:
        mine = raw[raw.get("chunk", pd.Series("", index=raw.index)).eq(record["chunk"])] if len(raw) else raw
        tokens = int(mine.completion_tokens.sum()) if len(mine) else 0
        seconds = engine_seconds(mine)
        summary.append({**record, "requests": len(mine), "completion_tokens": tokens,
                        "engine_seconds": round(seconds, 1),
                        "tokens_per_second": round(tokens / seconds, 1) if seconds else None})
    return summary


def solutions_table(raw: pd.DataFrame, codet_prompts: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per sampled solution with its extracted code and status. With `codet_prompts` (task →
    CodeT's prompt), CodeT's post-processing instead: the program is the prompt + the completion cut
    at its stop strings (`utscale.codet`)."""
    rows = []
    for r in raw.itertuples():
        if codet_prompts is not None:
            got = codet_solution(codet_prompts.get(r.task_id, ""), r.raw_response, r.finish_reason)
        else:
            got = extract.extract_solution(r.raw_response, r.finish_reason)
        rows.append({"task_id": r.task_id, "solution_id": int(r.index), "raw_response": r.raw_response,
                     "code": got.code, "extract_status": got.status, "prompt_tokens": int(r.prompt_tokens),
                     "completion_tokens": int(r.completion_tokens), "latency_s": float(r.latency_s),
                     "batch_id": batch_id_of(r), "finish_reason": r.finish_reason, "engine": r.engine,
                     "model": r.model, "seed": int(r.seed)})
    return pd.DataFrame(rows)


def batch_id_of(record: Any) -> str:
    """The engine call a logged record came from. Records logged before batch ids were (replays, the
    committed runs' older logs) are grouped by the latency their batch shared, which vLLM gives every
    completion of one call."""
    recorded = getattr(record, "batch_id", "")
    return recorded if isinstance(recorded, str) and recorded else f"latency:{float(record.latency_s)!r}"


def engine_seconds(table: pd.DataFrame) -> float:
    """Wall seconds of the engine calls behind a table's rows, each call once: a batch's rows share a
    batch id, and a batch of concurrent HTTP requests took as long as its slowest."""
    if table.empty:
        return 0.0
    ids = table.batch_id if "batch_id" in table else pd.Series([batch_id_of(r) for r in table.itertuples()],
                                                               index=table.index)  # a table written before
    return float(table.latency_s.groupby(ids).max().sum())


def codet_solution(prompt: str, completion: str, finish_reason: str) -> extract.Extracted:
    """CodeT's program for one sampled completion; a blank completion is kept (it runs and fails, as
    in CodeT) with status `empty`, one that does not parse with `syntax_error`."""
    if finish_reason.startswith("error"):
        return extract.Extracted(None, "engine_error")
    code = prompt + codet.truncate(completion)
    if not completion.strip():
        return extract.Extracted(code, "empty")
    return extract.Extracted(code, "ok" if extract.parses(code) else "syntax_error")


def unit_tests_table(raw: pd.DataFrame, problems: pd.DataFrame, code_source: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    entry = problems.set_index("task_id").entry_point.to_dict()
    rows = []
    for task_id, group in raw.groupby("task_id", sort=False):
        group = group.sort_values("index")
        found = [extract.extract_unit_test(t, f, entry[task_id]) for t, f in zip(group.raw_response, group.finish_reason)]
        duplicates = extract.mark_duplicates([g.code for g in found])
        indices = group["index"].tolist()
        for r, got, dup in zip(group.itertuples(), found, duplicates):
            rows.append({**_test_row(r, code_source[task_id][0]), "code": got.code, "class_name": got.class_name,
                         "extract_status": got.status, "duplicate_of": None if dup is None else int(indices[dup])})
    table = pd.DataFrame(rows)[UNIT_TEST_COLUMNS]
    table["duplicate_of"] = table["duplicate_of"].astype("Int64")
    return table


# the unit_tests table's columns, in order (CodeT's release adds `assertions` at the end)
UNIT_TEST_COLUMNS = ["task_id", "test_id", "raw_response", "code", "class_name", "extract_status", "duplicate_of",
                     "prompt_code_source", "prompt_tokens", "completion_tokens", "latency_s", "batch_id", "finish_reason",
                     "engine", "model", "seed"]


def _test_row(r: Any, prompt_code_source: str) -> dict[str, Any]:
    """The fields every unit-test row carries from its raw generation record."""
    return {"task_id": r.task_id, "test_id": int(r.index), "raw_response": r.raw_response,
            "prompt_code_source": prompt_code_source, "prompt_tokens": int(r.prompt_tokens),
            "completion_tokens": int(r.completion_tokens), "latency_s": float(r.latency_s),
            "batch_id": batch_id_of(r), "finish_reason": r.finish_reason, "engine": r.engine, "model": r.model,
            "seed": int(r.seed)}


CODET_PROMPT_CODE = "none (CodeT's prompt: signature and docstring, body `pass`)"


def codet_test_tables(raw: pd.DataFrame, problems: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CodeT's test completions as unit tests (one completion = one TestCase of its first 5 valid
    assertions) and as distinct assertions (multiplicity and the completions they came from).

    Every completion is a unit test, repeated ones included (CodeT counts what was sampled);
    `duplicate_of` records the first identical one. A completion without a valid assertion has no code:
    an invalid test that every solution fails."""
    entry = problems.set_index("task_id").entry_point.to_dict()
    tests, assertions = [], []
    for task_id, group in raw.groupby("task_id", sort=False):
        parsed: dict[int, codet.ParsedTest] = {}
        rows = []
        for r in group.sort_values("index").itertuples():
            code, status, count = None, "engine_error", 0
            if not r.finish_reason.startswith("error"):
                got = parsed[int(r.index)] = codet.parse_test_completion(r.raw_response, entry[task_id])
                code, status, count = (codet.unit_test_program(got.cases) if got.cases else None), got.status, len(got.cases)
            rows.append({**_test_row(r, CODET_PROMPT_CODE), "code": code, "class_name": "TestCodeT" if code else None,
                         "extract_status": status, "assertions": count})
        for row, dup in zip(rows, extract.mark_duplicates([row["code"] for row in rows])):
            row["duplicate_of"] = None if dup is None else rows[dup]["test_id"]
        tests += rows
        assertions += [{"task_id": task_id, "assertion_id": i, "assertion": found.text,
                        "code": codet.unit_test_program([found.text]), "multiplicity": found.multiplicity,
                        "sources": json.dumps([list(s) for s in found.sources])}
                       for i, found in enumerate(codet.distinct_assertions(parsed))]
    unit_tests = pd.DataFrame(tests)[UNIT_TEST_COLUMNS + ["assertions"]]
    unit_tests["duplicate_of"] = unit_tests["duplicate_of"].astype("Int64")
    return unit_tests, pd.DataFrame(assertions)


def _cache_for(engine: Engine) -> JsonlLog | None:
    return None if engine.name == "replay" else shared_cache()


def _chunks_log(run: Run, engine: Engine) -> JsonlLog | None:
    """Where a model engine's chunks are recorded; a replay generates nothing, so it has none."""
    return None if engine.name == "replay" else run.log("generation_chunks", ["chunk"])


def _codet(engine: Engine) -> bool:
    return getattr(engine, "format", "") == "codet"


def _record_engine(run: Run, role: str, engine: Engine) -> None:
    """The engine, model and weights in the manifest; for a replay, the file's hash and sample count."""
    entry = {"engine": engine.name, "model": engine.model, "weights": engine.weights_id}
    dtype = getattr(engine, "dtype", "")
    if dtype:
        entry["dtype"] = dtype
    plan = getattr(engine, "cpu_plan", None)  # vLLM-CPU: cores, dtype and its measured rate, batch, sampler
    if plan is not None:
        entry["cpu"] = plan.record()
    provenance = getattr(engine, "provenance", None)
    if provenance is not None:
        entry["replay"] = provenance()
        entry["tokenizer"] = run.config["REPLAY_TOKENIZER"] or "none (the file's own counts)"
    run.update_manifest(models={role: entry})
    chunks = chunks_summary(run)
    if chunks:
        run.update_manifest(generation_chunks=chunks)


class LoggedEngine:
    """Stands in for a model engine when the run's log already holds every requested sample: re-rendering
    a finished run then never loads a model. It names the engine that wrote the log, and generates nothing."""

    def __init__(self, record: Mapping[str, Any]):
        self.name, self.model, self.weights_id = record["engine"], record["model"], record["weights_id"]

    def generate(self, requests: Sequence[Request]) -> list:
        raise RuntimeError("the run's log is complete; nothing should be generated")


def _engine_for(run: Run, role: str, problems: pd.DataFrame, requests: Sequence[Request], log: JsonlLog) -> Engine:
    """The configured engine, or (a model engine whose samples are all logged already) a `LoggedEngine`."""
    if run.config[f"{'POLICY' if role == 'policy' else 'TEST'}_ENGINE"] != "replay" and requests:
        done = log.keys()
        if all((r.task_id, r.index) in done for r in requests):
            return LoggedEngine(next(iter(log)))  # type: ignore[return-value]
    return make_engine(run.config, role, problems, log_file=run.file("logs/engine.log"))


def sample_solutions(run: Run, engine: Engine | None = None) -> pd.DataFrame:
    """Notebook 02: N solutions per problem → `solutions` table (and `solutions_raw.jsonl`)."""
    problems = run.read_table("problems")
    log = run.log("solutions_raw", RAW_KEY)
    requests = solution_requests(problems, run.config)
    engine = engine or _engine_for(run, "policy", problems, requests, log)
    generate(requests, engine, log, cache=_cache_for(engine), progress="solutions", chunks=_chunks_log(run, engine))
    _record_engine(run, "policy", engine)
    prompts = getattr(engine, "prompts", None) if _codet(engine) else None
    run.write_table("solutions", solutions_table(log.frame(), prompts), key=["task_id", "solution_id"])
    return run.read_table("solutions")


@dataclass
class UnitTestStage:
    """What generating a run's unit tests needs: the problems, the code each prompt shows, every request
    the run may make (N_UNIT_TESTS per problem), the raw log and the engine."""

    run: Run
    problems: pd.DataFrame
    code: dict[str, tuple[str, str]]
    requests: list[Request]
    log: JsonlLog
    engine: Engine

    @classmethod
    def open(cls, run: Run, engine: Engine | None = None) -> UnitTestStage:
        problems = run.read_table("problems")
        solutions = run.read_table("solutions") if run.has_table("solutions") else None
        code = prompt_code(problems, solutions, run.config["TEST_PROMPT_CODE"])
        log = run.log("unit_tests_raw", RAW_KEY)
        requests = unit_test_requests(problems, code, run.config)
        return cls(run, problems, code, requests, log, engine or _engine_for(run, "test", problems, requests, log))

    def generate(self, requests: Sequence[Request], progress: str = "unit tests") -> int:
        return generate(requests, self.engine, self.log, cache=_cache_for(self.engine), progress=progress,
                        chunks=_chunks_log(self.run, self.engine))

    def table(self) -> pd.DataFrame:
        """The unit tests logged so far, extracted (our extraction; CodeT's release has its own)."""
        return unit_tests_table(self.log.frame(), self.problems, self.code)

    def write(self) -> pd.DataFrame:
        """The `unit_tests` table of everything logged (for CodeT's release also `assertions`)."""
        _record_engine(self.run, "test", self.engine)
        if _codet(self.engine):
            unit_tests, assertions = codet_test_tables(self.log.frame(), self.problems)
            self.run.write_table("assertions", assertions, key=["task_id", "assertion_id"])
        else:
            unit_tests = self.table()
        self.run.write_table("unit_tests", unit_tests, key=["task_id", "test_id"])
        return self.run.read_table("unit_tests")


def generate_unit_tests(run: Run, engine: Engine | None = None) -> pd.DataFrame:
    """Notebook 03: M unit tests per problem → `unit_tests` table (and `unit_tests_raw.jsonl`); for
    CodeT's release also the `assertions` table (the assertion granularity). In rounds, stopping each
    problem once its vote is settled: `utscale.live`."""
    stage = UnitTestStage.open(run, engine)
    stage.generate(stage.requests)
    return stage.write()


def status_table(table: pd.DataFrame, statuses: Iterable[str]) -> pd.DataFrame:
    """Counts of every extraction status in the vocabulary (zeros included), for the notebooks; a status
    outside it (a table written by older code) is listed after them rather than hidden."""
    counts = table.extract_status.value_counts()
    listed = list(statuses)
    listed += sorted(set(counts.index) - set(listed))
    return pd.DataFrame({"status": listed, "responses": [int(counts.get(s, 0)) for s in listed]})


def throughput(table: pd.DataFrame) -> dict[str, float]:
    """Tokens and tokens/s of the engine calls behind a table."""
    seconds = engine_seconds(table)
    tokens = int(table.completion_tokens.sum())
    return {"samples": len(table), "prompt_tokens": int(table.prompt_tokens.sum()), "completion_tokens": tokens,
            "engine_seconds": seconds, "tokens_per_second": tokens / seconds if seconds else float("nan")}
