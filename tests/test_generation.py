"""The generation stage on the replay engine: seeds, resume, cache, tables; the CodeRM replay format."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from utscale import benchmarks, generation
from utscale.engines import derive_seed
from utscale.engines.replay_engine import ReplayEngine
from utscale.loading import write_problems
from utscale.runs import JsonlLog

CFG = {"SEED": 7, "TEMPERATURE": 0.8, "TOP_P": 0.95, "MAX_TOKENS_SOLUTION": 64, "MAX_TOKENS_TEST": 64,
       "N_SOLUTIONS": 3, "N_UNIT_TESTS": 2}


def problems() -> pd.DataFrame:
    return benchmarks.load_benchmark("humaneval", limit=2).table()


def write_replay(path, probs, texts) -> None:
    rows = [{"task_id": t, "index": k, "raw_response": texts(t, k), "prompt_tokens": 10, "completion_tokens": 5,
             "finish_reason": "stop", "latency_s": 0.5} for t in probs.task_id for k in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_seeds_are_per_sample_and_stable():
    reqs = generation.solution_requests(problems(), CFG)
    assert len(reqs) == 6 and len({r.seed for r in reqs}) == 6
    assert reqs[0].seed == derive_seed(7, "solutions", reqs[0].task_id, 0) == generation.solution_requests(problems(), CFG)[0].seed
    assert reqs[0].messages[0][1].startswith("Please provide a self-contained Python script")


def test_generate_resumes_and_reports_missing_samples(tmp_path):
    probs = problems()
    replay = tmp_path / "replay.jsonl"
    write_replay(replay, probs, lambda t, k: f"```python\ndef f():\n    return {k}\n```")
    engine = ReplayEngine(str(replay), "m")
    log = JsonlLog(tmp_path / "raw.jsonl", generation.RAW_KEY)
    reqs = generation.solution_requests(probs, CFG)
    assert generation.generate(reqs[:2], engine, log) == 2
    assert generation.generate(reqs, engine, log) == 4  # only the rest
    assert generation.generate(reqs, engine, log) == 0
    table = generation.solutions_table(log.frame())
    assert table.extract_status.eq("ok").all() and table.code.iloc[1] == "def f():\n    return 1"
    more = generation.solution_requests(probs, {**CFG, "N_SOLUTIONS": 4})
    generation.generate(more, engine, log)
    missing = generation.solutions_table(log.frame()).query("solution_id == 3")
    assert missing.extract_status.eq("engine_error").all() and missing.code.isna().all()


class CountingEngine:
    """Wraps a replay engine and counts engine calls, to observe the shared cache."""

    name = "counting"

    def __init__(self, inner):
        self.inner, self.model, self.weights_id, self.calls = inner, "m", "w", 0

    def generate(self, requests):
        self.calls += len(requests)
        return self.inner.generate(requests)


def test_shared_cache_serves_a_second_run(tmp_path):
    probs = problems()
    replay = tmp_path / "replay.jsonl"
    write_replay(replay, probs, lambda t, k: f"r{k}")
    engine = CountingEngine(ReplayEngine(str(replay), "m"))
    cache = JsonlLog(tmp_path / "cache.jsonl", ["key"])
    reqs = generation.solution_requests(probs, CFG)
    generation.generate(reqs, engine, JsonlLog(tmp_path / "run1.jsonl", generation.RAW_KEY), cache=cache)
    generation.generate(reqs, engine, JsonlLog(tmp_path / "run2.jsonl", generation.RAW_KEY), cache=cache)
    assert engine.calls == 6
    other_seed = generation.solution_requests(probs, {**CFG, "SEED": 8})
    generation.generate(other_seed, engine, JsonlLog(tmp_path / "run3.jsonl", generation.RAW_KEY), cache=cache)
    assert engine.calls == 12


def test_unit_tests_table_marks_duplicates_and_prompt_code_source(tmp_path):
    probs = problems()
    test = "```python\nimport unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertTrue(True)\n```"
    raw = pd.DataFrame([{"task_id": t, "index": k, "raw_response": test if k < 2 else "nothing", "prompt_tokens": 1,
                         "completion_tokens": 1, "finish_reason": "stop", "latency_s": 0.1, "engine": "replay",
                         "model": "m", "seed": 1} for t in probs.task_id for k in range(3)])
    code = generation.prompt_code(probs, None, "policy_sample")
    assert set(code.values()) == {("none", "")}  # no policy sample: no code, never the ground truth
    table = generation.unit_tests_table(raw, probs, code)
    first = table[table.task_id == probs.task_id.iloc[0]].sort_values("test_id")
    assert pd.isna(first.duplicate_of.iloc[0]) and first.duplicate_of.iloc[1] == 0 and pd.isna(first.duplicate_of.iloc[2])
    assert first.extract_status.tolist() == ["ok", "ok", "no_code_block"]


def test_coderm_replay_format_strips_the_authors_runner(tmp_path):
    wrapped = ("import unittest\nclass TestX(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 1)\n\n"
               "suite = unittest.TestLoader().loadTestsFromTestCase(TestX)\n"
               "runner = unittest.TextTestRunner(stream=output, verbosity=2)\nresult = runner.run(suite)\n"
               "locals_dict['result'] = result\n")
    ut = tmp_path / "ut_coderm.jsonl"
    ut.write_text(json.dumps({"task_id": "HumanEval/0", "unit_tests": [wrapped]}) + "\n")
    sol = tmp_path / "sol_coderm.jsonl"
    sol.write_text(json.dumps({"task_id": "HumanEval/0", "solutions": [{"solution": "def f(x):\n    return x",
                                                                        "plus_status": "pass"}]}) + "\n")
    from utscale import extract
    from utscale.engines import Request, SamplingConfig

    req = Request("HumanEval/0", 0, (("user", "q"),), SamplingConfig(), 1)
    t = ReplayEngine(str(ut), "coderm-8b", "coderm", "unit_tests").generate([req])[0]
    got = extract.extract_unit_test(t.text, t.finish_reason, "f")
    assert got.status == "ok" and "locals_dict" not in got.code and "runner" not in got.code
    s = ReplayEngine(str(sol), "llama3-8b", "coderm", "solutions").generate([req])[0]
    assert extract.extract_solution(s.text).code == "def f(x):\n    return x"
    with pytest.raises(FileNotFoundError, match="replay file not found"):
        ReplayEngine(str(tmp_path / "nope.jsonl"), "m")


def test_prompt_code_is_one_fixed_policy_sample_and_never_the_reference_unless_asked():
    probs = problems()
    first, second = probs.task_id.iloc[0], probs.task_id.iloc[1]
    sols = pd.DataFrame({"task_id": [first, first, first, second], "solution_id": [3, 1, 0, 0],
                         "code": ["c3", "c1", None, None], "extract_status": ["ok", "ok", "no_code_block", "truncated"]})
    code = generation.prompt_code(probs, sols, "policy_sample")
    assert code[first] == ("policy_sample:1", "c1")  # the lowest id that extracted cleanly
    assert code[second] == ("none", "")  # nothing clean: no code rather than the reference
    reference = generation.prompt_code(probs, sols, "reference")
    assert {src for src, _ in reference.values()} == {"reference"}
    assert reference[first][1] == probs.set_index("task_id").reference_solution[first]


def test_a_finished_log_never_loads_the_model(results_root, monkeypatch):
    """Re-rendering a run whose samples are all logged uses the log, not the (vLLM) engine."""
    from utscale import runs

    run = runs.open_run("ci", {"LIMIT": 2, "N_SOLUTIONS": 2, "N_GRID": [1, 2]})
    write_problems(run)
    first = generation.sample_solutions(run)  # replayed into the run's log
    vllm_run = runs.open_run("ci", {"LIMIT": 2, "N_SOLUTIONS": 2, "N_GRID": [1, 2], "POLICY_ENGINE": "vllm"})
    write_problems(vllm_run)
    (vllm_run.path / "solutions_raw.jsonl").write_bytes((run.path / "solutions_raw.jsonl").read_bytes())
    monkeypatch.setattr(generation, "make_engine", lambda *a, **k: pytest.fail("an engine was built"))
    again = generation.sample_solutions(vllm_run)
    assert again.equals(first)
    assert vllm_run.manifest()["models"]["policy"]["engine"] == "replay"  # named by what wrote the log


class ConcurrentEngine:
    """Completions with their own latencies, as concurrent HTTP requests have: a batch took its slowest."""

    name, model, weights_id = "concurrent", "m", "w"

    def generate(self, requests):
        from utscale.engines import Completion

        return [Completion(f"r{r.index}", 3, 2, "stop", latency_s=1.0 + r.index) for r in requests]


def test_engine_seconds_count_each_batch_once_by_its_id(tmp_path):
    reqs = generation.solution_requests(problems(), CFG)  # 2 problems x 3 samples
    cache = JsonlLog(tmp_path / "cache.jsonl", ["key"])
    log = JsonlLog(tmp_path / "raw.jsonl", generation.RAW_KEY)
    generation.generate(reqs, ConcurrentEngine(), log, batch_size=4, cache=cache)
    table = generation.solutions_table(log.frame())
    assert table.batch_id.nunique() == 2 and table.batch_id.str.len().eq(16).all()
    # batch 1 holds indices 0,1,2,0 (slowest 3 s), batch 2 indices 1,2 (slowest 3 s): equal latencies in
    # different batches are not merged, and concurrent requests of one batch are not summed
    assert generation.engine_seconds(table) == 6.0
    assert generation.throughput(table)["tokens_per_second"] == 12 / 6.0
    again = JsonlLog(tmp_path / "served.jsonl", generation.RAW_KEY)
    generation.generate(reqs, ConcurrentEngine(), again, batch_size=6, cache=cache)  # all from the cache
    assert generation.solutions_table(again.frame()).batch_id.tolist() == table.batch_id.tolist()
    legacy = table.drop(columns="batch_id")  # a table written before batch ids: grouped by shared latency
    assert generation.engine_seconds(legacy) == 1.0 + 2.0 + 3.0


class WeightedEngine(CountingEngine):
    """A model engine (not a replay) whose weights id the test chooses, with a CPU plan to record."""

    name = "vllm"

    def __init__(self, inner, weights: str):
        super().__init__(inner)
        self.weights_id = weights

    @property
    def cpu_plan(self):
        class Plan:
            def record(self):
                return {"threads_bind": "0-1", "dtype": "bfloat16"}
        return Plan()


def test_a_resume_with_other_weights_is_refused_unless_allowed_and_then_recorded(tmp_path, monkeypatch):
    """A long generation resumes from its raw log, maybe on another machine: continuing it with other
    weights would mix two models' samples, so it is refused with the way out named; allowed, every
    chunk records what it ran on, and the summary counts each chunk's requests and tokens."""
    probs = problems()
    replay = tmp_path / "replay.jsonl"
    write_replay(replay, probs, lambda t, k: f"r{k}")
    log = JsonlLog(tmp_path / "raw.jsonl", generation.RAW_KEY)
    chunks = JsonlLog(tmp_path / "chunks.jsonl", ["chunk"])
    reqs = generation.solution_requests(probs, CFG)
    assert generation.generate(reqs[:2], WeightedEngine(ReplayEngine(str(replay), "m"), "w1"), log, chunks=chunks) == 2
    other = WeightedEngine(ReplayEngine(str(replay), "m"), "w2")
    with pytest.raises(generation.EngineChanged, match="UTSCALE_ALLOW_ENGINE_CHANGE=1"):
        generation.generate(reqs, other, log, chunks=chunks)
    assert len(log.keys()) == 2 and other.calls == 0  # nothing generated, nothing lost
    monkeypatch.setenv(generation.ALLOW_ENGINE_CHANGE, "1")
    assert generation.generate(reqs, other, log, chunks=chunks) == 4
    recorded = list(chunks)
    assert [(c["weights_id"], c["engine_changed_allowed"]) for c in recorded] == [("w1", False), ("w2", True)]
    assert recorded[0]["cpu_plan"] == {"threads_bind": "0-1", "dtype": "bfloat16"} and recorded[0]["machine"]
    by_chunk = log.frame().groupby("chunk").size().to_dict()
    assert by_chunk == {recorded[0]["chunk"]: 2, recorded[1]["chunk"]: 4}


def test_the_manifest_sums_up_each_chunk(results_root, tmp_path, monkeypatch):
    from utscale import runs

    monkeypatch.setenv("UTSCALE_CACHE", str(tmp_path / "cache"))  # samples a shared cache holds are not generated
    run = runs.open_run("ci", {"LIMIT": 2, "N_SOLUTIONS": 3, "N_GRID": [1, 2]})
    write_problems(run)
    replay = run.path / "replay.jsonl"
    write_replay(replay, run.read_table("problems"), lambda t, k: f"r{k}")
    engine = WeightedEngine(ReplayEngine(str(replay), "m"), "w1")
    generation.sample_solutions(run, engine)
    (summary,) = run.manifest()["generation_chunks"]
    assert summary["requests"] == 6 and summary["completion_tokens"] == 30 and summary["stage"] == "solutions"
    assert summary["engine_seconds"] == 0.5 and summary["tokens_per_second"] == 60.0
