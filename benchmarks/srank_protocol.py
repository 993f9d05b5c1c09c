"""Which of SRank's protocol choices move its accuracy on codet-humaneval (docs/codet.md, "SRank's 43.07").

SRank's released code makes two choices this measures on the committed run's solutions:
- **Agreement from outputs.** SRank evaluates each parsed expected value (`eval`, in a namespace where
  the prompt's function is defined with body `pass`), drops those that raise or are views, generators,
  files or functions, and counts, per input, the expected values equal to the solution's output. The
  suite does the same (`outputs.expected_agreement`, the expected values evaluated in the sandbox). Until
  this round it read the agreement from CodeT's executor instead (`outputs.agreement_table`: the share
  of the parsed assertions a solution passes); both are reported.
- **Which assertions.** Its execution script cuts each completion's test cases at `--limit`, a value its
  repository does not give; and its test post-processing (`generation/gen_test/post_process.py`) splits
  the completion on "assert " and drops the first part, which keeps the first assertion only when the
  text it reads still starts with the prompt ("all_code"). Fed the bare completion, it loses each
  completion's first assertion. Variants: first 5 (the suite's, CodeT's), first 10, all; with CodeT's
  extraction and with SRank's on the bare completion.

Every solution runs once on the union of all variants' inputs (SRank's executor, one program per
solution, inputs in order of first appearance), resumable from `.cache/srank_protocol/`; each variant
then ranks on its own inputs. Writes `benchmarks/results/srank_protocol.json`.

Run: .venv/bin/python benchmarks/srank_protocol.py   (about 5 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from utscale import codet, execution, outputs, rerankers, runs

CACHE = Path(".cache/srank_protocol")  # resumable logs; a --tasks smoke run shares them (same keys)
RESULT = Path("benchmarks/results/srank_protocol.json")


def srank_test_cases(completion: str, entry_point: str) -> list[str]:
    """SRank's `test_case_extract` on the bare completion: split on "assert ", drop the first part."""
    parts = [f"assert {p}".strip() for p in completion.split("assert ")[1:] if entry_point.strip() in p and p.strip()]
    return [case for case in (codet.truncate(p).strip() for p in parts) if codet.valid_test_case(case)]


Extract = Callable[[str, str], list[str]]
VARIANTS: dict[str, tuple[Extract, int | None]] = {
    "codet_first5": (codet.test_cases, 5),
    "codet_first10": (codet.test_cases, 10),
    "codet_all": (codet.test_cases, None),
    "srank_bare_first5": (srank_test_cases, 5),
    "srank_bare_all": (srank_test_cases, None),
}


def variant_cases(unit_tests: pd.DataFrame, problems: pd.DataFrame, extract: Extract, limit: int | None
                  ) -> dict[str, list[tuple[str, str]]]:
    """task_id → every sampled (input, expected expression), completions in order, SRank's parser."""
    info = problems.set_index("task_id")[["prompt", "entry_point"]].to_dict("index")
    cases: dict[str, list[tuple[str, str]]] = {}
    for r in unit_tests.sort_values(["task_id", "test_id"]).itertuples():
        prompt, entry = info[r.task_id]["prompt"], info[r.task_id]["entry_point"]
        for case in extract(r.raw_response, entry)[:limit]:
            parsed = outputs.input_and_expected(case, prompt, entry)
            if parsed is not None:
                cases.setdefault(r.task_id, []).append((parsed[0].strip(), parsed[1].strip()))
    return cases


def run_logged(name: str, pairs: dict, run: runs.Run) -> pd.DataFrame:
    """SRank's executor on the pairs (resumable from the cache), as a frame keyed like the outputs table."""
    settings = execution.output_settings(run.config)
    log = runs.JsonlLog(CACHE / f"{name}.jsonl", outputs.OUTPUT_KEY)
    with execution.make_executor(run.config, settings) as executor:
        report = execution._run_logged(pairs, log, executor, execution._output_fields,
                                       execution.signature(settings))
    print(f"{name}: {report.pairs} pairs, {report.executed} executed ({report.unique_executed} distinct) "
          f"in {report.seconds:.0f} s", flush=True)
    return log.frame()


def srank_accuracy(outs: pd.DataFrame, labels: pd.DataFrame, solutions: pd.DataFrame,
                   agreement: pd.DataFrame) -> float:
    cube = outputs.cube_from_tables(outs, labels, solutions, agreement)
    return float(np.nanmean(rerankers.per_output_accuracy(cube, rerankers._srank)) * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=0, help="only the first N problems (a smoke run; writes nothing)")
    args = parser.parse_args()
    started = time.perf_counter()
    run = runs.open_run("codet-humaneval")
    problems, solutions, labels, unit_tests, assertions = (run.read_table(n) for n in (
        "problems", "solutions", "labels", "unit_tests", "assertions"))
    if args.tasks:
        kept = set(problems.task_id[:args.tasks])
        problems, solutions, labels, unit_tests, assertions = (t[t.task_id.isin(kept)] for t in (
            problems, solutions, labels, unit_tests, assertions))
    inputs_run = run.read_table("test_inputs").pipe(lambda t: t[t.task_id.isin(set(problems.task_id))])
    pass_matrix = outputs.agreement_table(run.read_table("assertion_executions"), assertions, inputs_run)
    recorded = run.read_table("outputs")
    expected_run = outputs.expected_outputs(run.read_table("expected_values"), assertions, inputs_run)
    results: dict[str, dict] = {"committed": {
        "inputs": len(inputs_run),
        "srank": srank_accuracy(recorded, labels, solutions, outputs.expected_agreement(recorded, expected_run)),
        "srank_pass_matrix_agreement": srank_accuracy(recorded, labels, solutions, pass_matrix)}}
    print("committed", results["committed"], flush=True)

    cases = {name: variant_cases(unit_tests, problems, *spec) for name, spec in VARIANTS.items()}
    union: dict[str, dict[str, int]] = {}  # task_id → input → id, first appearance over the variants
    for name in VARIANTS:
        for task_id, found in cases[name].items():
            ids = union.setdefault(task_id, {})
            for call, _ in found:
                ids.setdefault(call, len(ids))
    inputs = pd.DataFrame([(t, i, call) for t, ids in union.items() for call, i in ids.items()],
                          columns=["task_id", "input_id", "input"])
    programs = execution.programs_of(execution.assertion_pairs(problems, solutions, assertions,
                                                               run.config["SANDBOX_MODE"]))
    outs = run_logged("outputs", outputs.output_pairs(programs, inputs), run)

    expressions: dict[str, dict[str, int]] = {}
    for found in cases.values():
        for task_id, pairs in found.items():
            ids = expressions.setdefault(task_id, {})
            for _, value in pairs:
                ids.setdefault(value, len(ids))
    stubs = {(t, 0): p + "\n    pass\n" for t, p in zip(problems.task_id, problems.prompt)}
    values = run_logged("expected", {(t, 0, i): (stubs[(t, 0)], e) for t, ids in expressions.items()
                                     for e, i in ids.items()}, run)
    valued = values[values.status.eq(outputs.RETURNED)].set_index(["task_id", "input_id"]).output

    for name in VARIANTS:
        rows = [(t, union[t][call], valued.get((t, expressions[t][value])))
                for t, found in cases[name].items() for call, value in found]
        sampled = pd.DataFrame(rows, columns=["task_id", "input_id", "output"])
        expected = sampled.dropna(subset=["output"]).assign(weight=1.0)  # one row per sampled case
        mine = sampled[["task_id", "input_id"]].drop_duplicates()
        local = mine.assign(local_id=mine.groupby("task_id").cumcount())
        view = outs.merge(local, on=["task_id", "input_id"]).drop(columns="input_id").rename(
            columns={"local_id": "input_id"})
        expected = expected.merge(local, on=["task_id", "input_id"]).drop(columns="input_id").rename(
            columns={"local_id": "input_id"})
        results[name] = {"inputs": len(local), "sampled_cases": len(sampled), "valid_expected": len(expected),
                         "srank": srank_accuracy(view, labels, solutions, outputs.expected_agreement(view, expected))}
        if name == "codet_first5":  # the same inputs re-executed, the committed run's agreement
            results[name]["srank_pass_matrix_agreement"] = srank_accuracy(view, labels, solutions, pass_matrix)
        print(name, results[name], flush=True)
    print(f"{time.perf_counter() - started:.0f} s (executions resumed from {CACHE} are not repeated)")
    if args.tasks:
        return
    RESULT.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written {RESULT}")


if __name__ == "__main__":
    main()
