"""Our HumanEval+/MBPP+ labels against EvalPlus's own evaluator (PyPI evalplus 0.3.1) on the same
solutions, same run: agreement, every disagreement, and each judge's wall seconds.

Suites (each writes benchmarks/results/evalplus_oracle_<suite>.json):
- canonical: the 164 HumanEval+ and 378 MBPP+ canonical solutions. Target: ours well under a minute
  for HumanEval+ on 2 cores, every canonical solution correct (or the exception explained).
- codet: CodeT's 16,400 released CodeGen-Mono-16B HumanEval samples (data/codet-humaneval/, as the
  committed codet-humaneval run holds them) on HumanEval+. Target: agreement >= 99.5%. With
  `--stored-evalplus`, EvalPlus's verdicts are read from its committed run on the same samples
  (EVALPLUS_CODET, about an hour of two cores) instead of being computed again; its seconds are then 0.
- mbpp-mutants: MBPP+'s canonical solutions and up to 6 AST mutants of each (>= 1,000). Target >= 99.5%.
EvalPlus runs as it ships (its wall-clock limits, max(1 s, 4x the reference's time per input)); ours
in the labels' sandbox settings of the humaneval-plus-embedded profile (isolated, 10 s CPU per program).

Run: .venv/bin/python benchmarks/bench_evalplus_oracle.py canonical|codet|mbpp-mutants [--stored-evalplus]
(canonical ~2 min, mbpp-mutants ~10 min, codet about an hour on 2 cores).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
from utscale import evalplus_data, evalplus_oracle
from utscale.paths import project_root
from utscale.sandbox import SandboxSettings

LABELS = SandboxSettings(mode="isolated", timeout=10.0, memory_mb=1024, clock="cpu")
OUT = project_root() / "benchmarks" / "results"
EVALPLUS_CODET = OUT / "evalplus_0.3.1_codet_samples_on_humaneval_plus.parquet"


def suite(name: str) -> list[tuple[str, pd.DataFrame]]:
    """(benchmark, solutions) pairs of a suite."""
    tables = {b: evalplus_oracle.problems_table(b, evalplus_data.default_file(b)) for b in evalplus_oracle.DATASET}
    if name == "canonical":
        return [(b, evalplus_oracle.canonical_solutions(t)) for b, t in tables.items()]
    if name == "codet":
        solutions = pd.read_parquet(project_root() / "results" / "codet-humaneval" / "solutions.parquet")
        solutions = solutions[solutions.code.map(lambda c: isinstance(c, str))]
        return [("humaneval_plus", solutions[["task_id", "solution_id", "code"]])]
    if name == "mbpp-mutants":
        return [("mbpp_plus", evalplus_oracle.mutated_solutions(tables["mbpp_plus"], 6))]
    raise SystemExit(f"unknown suite {name!r}: canonical, codet or mbpp-mutants")


def stored_evalplus(solutions: pd.DataFrame) -> evalplus_oracle.Judged:
    """EvalPlus's committed verdicts on CodeT's samples, for exactly the solutions asked about."""
    stored = evalplus_oracle.evalplus_table(pd.read_parquet(EVALPLUS_CODET))
    asked = solutions[evalplus_oracle.KEY].merge(stored, on=evalplus_oracle.KEY, how="left", indicator=True)
    if (asked._merge != "both").any():
        raise SystemExit(f"{EVALPLUS_CODET.name} has no verdict for {int((asked._merge != 'both').sum())} of the solutions")
    return evalplus_oracle.Judged(asked.drop(columns="_merge"), 0.0)


def main(name: str, stored: bool) -> None:
    report = {}
    with tempfile.TemporaryDirectory(prefix="utscale-oracle-") as scratch:
        for benchmark, solutions in suite(name):
            release = evalplus_data.default_file(benchmark)
            theirs = stored_evalplus(solutions) if stored else None
            result = evalplus_oracle.compare(benchmark, solutions, release, Path(scratch) / benchmark, LABELS, theirs=theirs)
            report[benchmark] = {"release": evalplus_data.identify(release, benchmark),
                                 "evalplus_verdicts": EVALPLUS_CODET.name if stored else "this run", **result}
            shown = {k: v for k, v in result.items() if k != "disagreements"}
            print(f"{benchmark}: {json.dumps(shown)}; {len(result['disagreements'])} disagreements", flush=True)
    OUT.mkdir(exist_ok=True)
    path = OUT / f"evalplus_oracle_{name}.json"
    path.write_text(json.dumps(report, indent=1, sort_keys=True, default=str) + "\n")
    print(f"written: {path}")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--stored-evalplus"]
    main(arguments[0] if arguments else "canonical", "--stored-evalplus" in sys.argv[1:])
