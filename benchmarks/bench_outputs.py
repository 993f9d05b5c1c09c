"""What recording the outputs adds to the execution stage, on the committed codet-humaneval run's solutions
and assertions (every EVERY-th problem), each way timed in the same run:
- plain: the assertion stage without outputs (CodeT's executor, the bare assertions);
- recorded: the assertion stage with the recorder around each assertion's input call and a recording case
  for each input no assertion calls first (`outputs.recording_tests`), then SRank's executor on the
  (solution, input) pairs no test reached (`execution.record_outputs`, as shipped);
- separate: the plain stage's outputs recorded as before this round, SRank's executor on every
  (solution, input) pair after the assertion stage.
Runs in the order plain, recorded, separate, recorded, plain, so that a machine drifting steadily favours
neither. Prints seconds, the overhead of each way of recording over the plain stage (target: <= 20%),
and whether the recorded outputs equal SRank's executor's.

Run: .venv/bin/python benchmarks/bench_outputs.py [--every 4]   (about 8 minutes on 2 cores at --every 4)
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
from utscale import execution, outputs, runs
from utscale.sandbox import Executor, Pair, SandboxSettings, run_pairs


def timed(pairs: dict, settings: SandboxSettings, key: tuple[str, ...]) -> tuple[pd.DataFrame, float]:
    """Every pair's verdict (status, output, duration) as a table keyed by `key`, and the wall seconds."""
    started = time.perf_counter()
    with Executor(settings=settings) as executor:
        rows = [{**dict(zip(key, json.loads(v.id))), "status": v.status, "output": v.output,
                 "duration_s": v.duration_s}
                for v in run_pairs([Pair(json.dumps(list(k)), sol, test) for k, (sol, test) in pairs.items()], executor)]
    return pd.DataFrame(rows), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=int, default=4, help="every N-th problem of the run (1: all 164)")
    args = parser.parse_args()
    run = runs.open_run("codet-humaneval")
    problems, solutions, assertions = (run.read_table(n) for n in ("problems", "solutions", "assertions"))
    kept = set(problems.task_id[::args.every])
    problems, solutions, assertions = (t[t.task_id.isin(kept)] for t in (problems, solutions, assertions))
    inputs = outputs.test_inputs(problems, assertions)
    mode, settings = run.config["SANDBOX_MODE"], execution.sandbox_settings(run.config)
    srank = execution.output_settings(run.config)
    plain_pairs = execution.assertion_pairs(problems, solutions, assertions, mode)
    recording_pairs = execution.assertion_pairs(problems, solutions, assertions, mode,
                                                outputs.recording_tests(assertions, inputs))
    all_outputs = outputs.output_pairs(execution.programs_of(plain_pairs), inputs)
    carrying = sum(recording_pairs[k][1] != test for k, (_, test) in plain_pairs.items())
    print(f"{len(kept)} problems: {len(plain_pairs)} assertion pairs ({carrying} carry the recorder), "
          f"{len(recording_pairs) - len(plain_pairs)} recording cases, {len(all_outputs)} output pairs", flush=True)

    def plain() -> float:
        seconds = timed(plain_pairs, settings, execution.ASSERTION_KEY)[1]
        print(f"  plain: assertion stage {seconds:.1f} s", flush=True)
        return seconds

    def recorded() -> tuple[pd.DataFrame, float]:
        verdicts, seconds = timed(recording_pairs, settings, execution.ASSERTION_KEY)
        taken = outputs.recorded_outputs(verdicts.assign(recorded=True), inputs)
        known = set(zip(taken.task_id, taken.solution_id, taken.input_id))
        rest, more = timed({k: v for k, v in all_outputs.items() if k not in known}, srank, outputs.OUTPUT_KEY)
        print(f"  recorded: assertion stage {seconds:.1f} s, {len(taken)} outputs from it; SRank's executor on "
              f"{len(rest)} more, {more:.1f} s", flush=True)
        return pd.concat([taken, rest], ignore_index=True), seconds + more

    def separate() -> tuple[pd.DataFrame, float]:
        table, seconds = timed(all_outputs, srank, outputs.OUTPUT_KEY)
        print(f"  separate: SRank's executor on every output pair {seconds:.1f} s", flush=True)
        return table, seconds + plain()

    plain_1 = plain()
    table_1, recorded_1 = recorded()
    table_s, separate_s = separate()
    _, recorded_2 = recorded()
    plain_2 = plain()
    base = (plain_1 + plain_2) / 2
    with_recorder = (recorded_1 + recorded_2) / 2
    merged = table_1.merge(table_s, on=list(outputs.OUTPUT_KEY), suffixes=("", "_before"))
    same = ~execution.changed(merged, "output")
    result = {"problems": len(kept), "assertion_pairs": len(plain_pairs), "output_pairs": len(all_outputs),
              "plain_s": [round(plain_1, 1), round(plain_2, 1)], "recorded_s": [round(recorded_1, 1), round(recorded_2, 1)],
              "separate_s": round(separate_s, 1),
              "recording_overhead": round(with_recorder / base - 1, 3),
              "separate_overhead": round(separate_s / base - 1, 3),
              "outputs_equal_to_srank_executor": round(float(same.mean()), 5)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
