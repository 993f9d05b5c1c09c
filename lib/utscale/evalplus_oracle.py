"""EvalPlus's own evaluator as the oracle of our HumanEval+ / MBPP+ labels: the same solutions, judged by
PyPI `evalplus` (pointed at the same release file) and by our label stage, and every disagreement.

`evalplus` is a development dependency only (the Makefile installs it without its model-provider
dependencies, whose protobuf pin would downgrade vLLM's). It runs in a subprocess of its own: it reads
`HUMANEVAL_OVERRIDE_PATH` / `MBPP_OVERRIDE_PATH` when imported, writes its expected-output cache under
`XDG_CACHE_HOME` (a scratch folder here) and executes solutions in its own processes, without a jail:
use it on solutions you would run anyway (canonical, mutated, published generations).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from utscale import benchmarks, calibration, execution
from utscale.runs import JsonlLog
from utscale.sandbox import Executor, SandboxSettings

DATASET = {"humaneval_plus": ("humaneval", "HUMANEVAL_OVERRIDE_PATH"), "mbpp_plus": ("mbpp", "MBPP_OVERRIDE_PATH")}
KEY = ["task_id", "solution_id"]

RUNNER = """
import json, sys
from evalplus.evaluate import evaluate
dataset, samples, parallel, floor, factor = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
evaluate(dataset, samples=samples, parallel=parallel, i_just_wanna_run=True, min_time_limit=floor,
         gt_time_limit_factor=factor)
"""
# EvalPlus's defaults (evalplus.config): each input may take max(1 s, 4x the reference's time), wall clock
MIN_TIME_LIMIT, TIME_LIMIT_FACTOR = 1.0, 4.0


@dataclass(frozen=True)
class Judged:
    """Verdicts of one judge: a table keyed by (task_id, solution_id) with `base` and `plus` (EvalPlus's
    plus: base and plus inputs both pass), and the judge's wall seconds."""

    verdicts: pd.DataFrame
    seconds: float


def evalplus_verdicts(benchmark: str, solutions: pd.DataFrame, release_file: Path, workdir: Path,
                      parallel: int = 0, min_time_limit: float = MIN_TIME_LIMIT,
                      time_limit_factor: float = TIME_LIMIT_FACTOR) -> Judged:
    """EvalPlus 0.3.1's `evaluate` on `solutions` (task_id, solution_id, code; every problem of the file
    needs at least one), as it ships: its 4 GiB memory limit, its fast check, and by default its time
    limits (wall clock per input; a test raises them to judge semantics without timing)."""
    dataset, variable = DATASET[benchmark]
    workdir.mkdir(parents=True, exist_ok=True)
    ordered = solutions.sort_values(KEY).reset_index(drop=True)
    samples = workdir / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "solution": c}) + "\n"
                               for t, c in zip(ordered.task_id, ordered.code)))
    result = workdir / "samples_eval_results.json"
    result.unlink(missing_ok=True)  # EvalPlus would ask on stdin whether to overwrite it
    env = {**os.environ, variable: str(release_file), "XDG_CACHE_HOME": str(workdir / "cache"),
           "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUNNER, dataset, str(samples), str(parallel or os.cpu_count() or 1),
                           str(min_time_limit), str(time_limit_factor)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"EvalPlus's evaluator failed (is `evalplus` installed? `make install`):\n{done.stderr[-3000:]}")
    seconds = time.perf_counter() - started
    results = json.loads(result.read_text())["eval"]
    rows = []
    for task_id, group in ordered.groupby("task_id", sort=False):
        judged = results[task_id]
        if len(judged) != len(group):
            raise RuntimeError(f"EvalPlus returned {len(judged)} verdicts for {task_id}, not {len(group)}")
        for solution_id, verdict in zip(group.solution_id, judged):
            rows.append({"task_id": task_id, "solution_id": int(solution_id),
                         "base_status": verdict["base_status"], "plus_status": verdict["plus_status"]})
    return Judged(evalplus_table(pd.DataFrame(rows)), seconds)


def evalplus_table(statuses: pd.DataFrame) -> pd.DataFrame:
    """EvalPlus's statuses (task_id, solution_id, base_status, plus_status: as its results file, or as
    a stored copy of them) as verdicts: base, and plus = base and plus inputs both pass."""
    return pd.DataFrame({"task_id": statuses.task_id, "solution_id": statuses.solution_id.astype(int),
                         "base": statuses.base_status == "pass",
                         "plus": (statuses.base_status == "pass") & (statuses.plus_status == "pass"),
                         "evalplus_status": statuses.base_status + "/" + statuses.plus_status})


def utscale_verdicts(problems: pd.DataFrame, solutions: pd.DataFrame, workdir: Path,
                     settings: SandboxSettings, time_limit_factor: float = 0.0) -> Judged:
    """Our label stage on the same solutions: the ground truth (base and plus) and the base program, in
    the given sandbox settings (labels: `isolated`). `time_limit_factor` > 0: each problem's program
    limit is the larger of the settings' and that factor times its reference's (the run parameter
    TIME_LIMIT_FACTOR), so that a reference slower in total than the fixed limit (Mbpp/599: 12 s over
    its 91 inputs) is not a timeout; 0: the fixed limit."""
    workdir.mkdir(parents=True, exist_ok=True)
    legacy = {"mode": settings.mode, "clock": settings.effective_clock}
    tables = {}
    started = time.perf_counter()
    with Executor(settings=settings) as executor:
        limits = None
        if time_limit_factor:
            references = calibration.reference_times(problems, executor,
                                                     calibration.CALIBRATION_HEADROOM * settings.timeout)
            limits = dict(zip(references.task_id,
                              calibration.scaled_limits(references, time_limit_factor, settings.timeout)))
        for column in ("ground_truth", "ground_truth_base"):
            (workdir / f"{column}.jsonl").unlink(missing_ok=True)  # judged afresh: the seconds are this call's
            log = JsonlLog(workdir / f"{column}.jsonl", execution.LABEL_KEY)
            execution.label_solutions(problems, solutions, log, executor, legacy, limits, column=column)
            tables[column] = execution.labels_table(solutions, log, legacy)
    seconds = time.perf_counter() - started
    plus = tables["ground_truth"][KEY + ["correct", "status"]].rename(columns={"correct": "plus", "status": "plus_status"})
    base = tables["ground_truth_base"][KEY + ["correct", "status"]].rename(columns={"correct": "base",
                                                                                     "status": "base_status"})
    both = plus.merge(base, on=KEY)
    both["utscale_status"] = both.base_status + "/" + both.plus_status
    return Judged(both[KEY + ["base", "plus", "utscale_status"]], seconds)


def agreement(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """Agreement rates on base and plus, and every solution where the two judges differ on either."""
    both = ours.merge(theirs, on=KEY, suffixes=("_utscale", "_evalplus"))
    if len(both) != len(ours) or len(both) != len(theirs):
        raise ValueError("the two judges did not judge the same solutions")
    same_base = both.base_utscale == both.base_evalplus
    same_plus = both.plus_utscale == both.plus_evalplus
    rates = {"solutions": len(both), "base_agreement": float(same_base.mean()), "plus_agreement": float(same_plus.mean()),
             "plus_correct_utscale": float(both.plus_utscale.mean()), "plus_correct_evalplus": float(both.plus_evalplus.mean()),
             "base_correct_utscale": float(both.base_utscale.mean()), "base_correct_evalplus": float(both.base_evalplus.mean())}
    return rates, both[~(same_base & same_plus)].reset_index(drop=True)


def problems_table(benchmark: str, release_file: Path) -> pd.DataFrame:
    return benchmarks.load_benchmark(benchmark, release_file).table()


def canonical_solutions(problems: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"task_id": problems.task_id, "solution_id": 0, "code": problems.reference_solution})


def compare(benchmark: str, solutions: pd.DataFrame, release_file: Path, workdir: Path,
            settings: SandboxSettings, problems: pd.DataFrame | None = None,
            min_time_limit: float = MIN_TIME_LIMIT, theirs: Judged | None = None,
            time_limit_factor: float = 0.0) -> Mapping[str, object]:
    """Both judges on the same solutions: rates, seconds and the disagreements (a list of records).
    `theirs`: EvalPlus's verdicts from an earlier run on exactly these solutions (an hour's work for
    CodeT's 16,400), or None to run EvalPlus now. `time_limit_factor`: ours per-problem program limits
    (`utscale_verdicts`)."""
    problems = problems if problems is not None else problems_table(benchmark, release_file)
    if theirs is None:
        theirs = evalplus_verdicts(benchmark, solutions, release_file, workdir / "evalplus", min_time_limit=min_time_limit)
    ours = utscale_verdicts(problems, solutions, workdir / "utscale", settings, time_limit_factor)
    rates, differ = agreement(ours.verdicts, theirs.verdicts)
    return {**rates, "seconds_utscale": round(ours.seconds, 1), "seconds_evalplus": round(theirs.seconds, 1),
            "disagreements": differ.to_dict(orient="records")}


class _Mutate(ast.NodeTransformer):
    """Changes the `target`-th mutable node (in walk order) of a program: a comparison flipped at its
    boundary (or negated: `in`, `is`), an arithmetic or bitwise operator swapped, an integer constant
    moved by one, `and`/`or` swapped, a `reversed`/`sorted` call's argument left as it is."""

    SWAPS: Mapping[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                                  ast.NotEq: ast.Eq, ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv,
                                  ast.FloorDiv: ast.Mult, ast.And: ast.Or, ast.Or: ast.And, ast.In: ast.NotIn,
                                  ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.BitAnd: ast.BitOr,
                                  ast.BitOr: ast.BitAnd, ast.Mod: ast.FloorDiv, ast.Div: ast.Mult}

    def __init__(self, target: int):
        self.target, self.seen = target, -1

    def _hit(self) -> bool:
        self.seen += 1
        return self.seen == self.target

    def visit_Compare(self, node: ast.Compare) -> ast.AST:  # noqa: N802 - ast's visitor API
        self.generic_visit(node)
        if type(node.ops[0]) in self.SWAPS and self._hit():
            node.ops[0] = self.SWAPS[type(node.ops[0])]()
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        if type(node.op) in self.SWAPS and self._hit():
            node.op = self.SWAPS[type(node.op)]()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        if self._hit():
            node.op = self.SWAPS[type(node.op)]()
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:  # noqa: N802
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in ("sorted", "reversed", "set", "abs") and \
                len(node.args) == 1 and not node.keywords and self._hit():
            return ast.copy_location(ast.Call(ast.Name("list", ast.Load()), node.args, []), node)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:  # noqa: N802
        if type(node.value) is int and self._hit():
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node


def mutants(code: str, count: int) -> list[str]:
    """Up to `count` distinct programs, each `code` with one mutation (deterministic: the first mutable
    nodes in order). Mutants that happen to stay correct are fine: the judges must agree on them too."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    found: list[str] = []
    target = 0
    while len(found) < count:
        mutator = _Mutate(target)
        changed = ast.unparse(mutator.visit(ast.parse(code)))
        if mutator.seen < target:  # no node left to mutate
            break
        if changed != ast.unparse(tree) and changed not in found:
            found.append(changed)
        target += 1
    return found


def mutated_solutions(problems: pd.DataFrame, per_problem: int) -> pd.DataFrame:
    """Each problem's canonical solution (solution_id 0) and up to `per_problem` mutants of it (1...)."""
    rows = []
    for task_id, code in zip(problems.task_id, problems.reference_solution):
        for index, program in enumerate([code, *mutants(code, per_problem)]):
            rows.append({"task_id": task_id, "solution_id": index, "code": program})
    return pd.DataFrame(rows)
