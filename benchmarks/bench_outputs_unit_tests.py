"""What recording the outputs adds to the execution stage of a `unittest`-class run, on the committed
humaneval-plus-embedded run's solutions and unit tests (every EVERY-th problem), each way timed in the
same run:
- plain: the execution stage without outputs: the labels (EvalPlus's plus and base ground truths, in the
  label executor) and the unit-test matrix;
- outputs at each input limit of `--limits`: SRank's executor on every (solution, closed call) pair
  (`outputs.unit_test_inputs`), each input under that limit; the shipped OUTPUT_TIMEOUT_S and the
  whole test's TIMEOUT_S that the stage used before it had its own limit.
Runs plain, each limit, each limit again in reverse order, plain, so that a machine drifting steadily
favours none. Prints seconds, each limit's overhead over the plain stage and over the matrix alone
(target: <= 20% of the stage), and how many outputs each limit changes against the largest one.

Run: .venv/bin/python benchmarks/bench_outputs_unit_tests.py [--every 4] [--limits 1.0,0.25,0.1]
(about 6 minutes on 2 cores at --every 4)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from bench_outputs import timed
from utscale import execution, outputs, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=int, default=4, help="every N-th problem of the run (1: all 164)")
    parser.add_argument("--limits", default="1.0,0.25,0.1", help="input limits to time (seconds, comma-separated)")
    args = parser.parse_args()
    run = runs.open_run("humaneval-plus-embedded")
    problems, solutions, unit_tests = (run.read_table(n) for n in ("problems", "solutions", "unit_tests"))
    kept = set(problems.task_id[::args.every])
    problems, solutions, unit_tests = (t[t.task_id.isin(kept)] for t in (problems, solutions, unit_tests))
    labels = {**{("plus", *k): v for k, v in execution.label_pairs(problems, solutions).items()},
              **{("base", *k): v for k, v in execution.label_pairs(problems, solutions, "ground_truth_base").items()}}
    matrix = execution.matrix_pairs(problems, solutions, unit_tests)
    pairs = outputs.output_pairs(execution.programs_of(matrix),
                                 outputs.unit_test_inputs(problems, execution.executed_tests(unit_tests)))
    limits = [float(x) for x in args.limits.split(",")]
    print(f"{len(kept)} problems: {len(labels)} label pairs, {len(matrix)} matrix pairs, {len(pairs)} output pairs",
          flush=True)

    def plain() -> tuple[float, float]:
        label_s = timed(labels, execution.sandbox_settings(run.config, labels=True), ("truth", *execution.LABEL_KEY))[1]
        matrix_s = timed(matrix, execution.sandbox_settings(run.config), execution.EXECUTION_KEY)[1]
        print(f"  plain: labels {label_s:.1f} s, matrix {matrix_s:.1f} s", flush=True)
        return label_s, matrix_s

    tables, seconds = {}, {limit: [] for limit in limits}

    def recorded(limit: float) -> None:
        table, took = timed(pairs, replace(execution.output_settings(run.config), timeout=limit), outputs.OUTPUT_KEY)
        tables[limit] = table
        seconds[limit].append(took)
        print(f"  outputs at {limit} s per input: {took:.1f} s, {int(table.status.eq('timeout').sum())} time-outs",
              flush=True)

    first = plain()
    for limit in [*limits, *reversed(limits)]:
        recorded(limit)
    last = plain()
    stage, matrix_only = (sum(first) + sum(last)) / 2, (first[1] + last[1]) / 2
    reference = tables[max(limits)]
    result = {"problems": len(kept), "output_pairs": len(pairs), "plain_s": [round(sum(first), 1), round(sum(last), 1)],
              "matrix_s": [round(first[1], 1), round(last[1], 1)]}
    for limit in limits:
        mean = sum(seconds[limit]) / len(seconds[limit])
        both = tables[limit].merge(reference, on=list(outputs.OUTPUT_KEY), suffixes=("", "_before"))
        result[f"limit_{limit}"] = {"seconds": [round(s, 1) for s in seconds[limit]],
                                    "overhead_on_stage": round(mean / stage, 3),
                                    "overhead_on_matrix": round(mean / matrix_only, 3),
                                    "changed_vs_largest": int(execution.changed(both, "output").sum())}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
