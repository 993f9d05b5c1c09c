"""Sandbox throughput: utscale's executor against a one-process-per-pair executor (the paper's design).

Workload (HumanEval-derived, 30 problems x 10 solutions x 10 unit-test classes = 3,000 pairs):
- solutions: canonical, an exact duplicate, a reformatted copy (same AST), four mutants (flipped
  comparison, off-by-one constant, swapped operator, `return None`), a truncated program (syntax
  error), one raising at call time, and one more mutant; in the "with hangs" workload the truncated
  program of half the problems is replaced by one that loops forever (5% of all pairs hang);
- tests: `unittest.TestCase` classes of 4 methods built from the problem's own asserts, the last two
  classes of each problem deliberately wrong (one expected value changed).
Baseline: for every pair a forked `multiprocessing.Process` runs solution + test under a one-shot 1 s
alarm, the parent joins for 2 s then terminates and kills; a pool of W such drivers (the paper's
executor, written here in our own words). Verdicts of both are compared with a fresh interpreter per
pair (the oracle, run in parallel on W threads).

Both sandbox modes are measured: `fast` (the test runs in a fork of the process that loaded the solution)
and `isolated` (the verdict decided by a process that never runs solution code), plus each mode's
start-up time to a first verdict.

Run: .venv/bin/python benchmarks/bench_sandbox.py [--problems 30] [--workers 2]
"""

from __future__ import annotations

import argparse
import ast
import io
import multiprocessing
import signal
import time
import unittest
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from utscale import benchmarks
from utscale.sandbox import Executor, Pair, SandboxSettings, run_pairs
from utscale.sandbox.oracle import oracle_passes


class _Flip(ast.NodeTransformer):
    """One mutation of the entry point: the first comparison, constant or operator found."""

    def __init__(self, kind: str):
        self.kind, self.done = kind, False

    def visit_Compare(self, node):
        if self.kind == "compare" and not self.done:
            swap = {ast.Lt: ast.GtE, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.GtE: ast.Lt, ast.Eq: ast.NotEq,
                    ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
            node.ops = [swap.get(type(node.ops[0]), ast.NotEq)()] + node.ops[1:]
            self.done = True
        return self.generic_visit(node)

    def visit_Constant(self, node):
        if self.kind == "constant" and not self.done and isinstance(node.value, int) and not isinstance(node.value, bool):
            self.done = True
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_BinOp(self, node):
        if self.kind == "operator" and not self.done:
            swap = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.Mod: ast.FloorDiv, ast.FloorDiv: ast.Mod}
            node.op = swap.get(type(node.op), ast.Add)()
            self.done = True
        return self.generic_visit(node)


def mutate(code: str, kind: str) -> str:
    tree = ast.parse(code)
    mutator = _Flip(kind)
    tree = mutator.visit(tree)
    out = ast.unparse(tree)
    return out if mutator.done else code.replace("return ", "return None and ", 1)


def solutions_for(problem: benchmarks.Problem, hang: bool) -> list[str]:
    ref = problem.reference_solution
    entry = problem.entry_point
    loop = ref.replace(f"def {entry}(", f"def _{entry}(", 1) + f"\n\ndef {entry}(*args):\n    while True:\n        pass\n"
    return [
        ref, ref, ast.unparse(ast.parse(ref)) + "\n# reformatted\n",
        mutate(ref, "compare"), mutate(ref, "constant"), mutate(ref, "operator"),
        f"def {entry}(*args):\n    return None\n",
        loop if hang else ref[: int(len(ref) * 0.8)],
        f"def {entry}(*args):\n    raise RuntimeError('no')\n",
        mutate(mutate(ref, "compare"), "constant"),
    ]


def tests_for(problem: benchmarks.Problem, count: int = 10) -> list[str]:
    check_src = problem.ground_truth.split("_GROUND_TRUTH = ", 1)[1].split("\n\n\nclass GroundTruth")[0]
    source = ast.literal_eval(check_src)
    tree = ast.parse(source)
    check = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check")
    asserts = [ast.unparse(n).replace("candidate", problem.entry_point) for n in ast.walk(check) if isinstance(n, ast.Assert)]
    header = "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    programs = []
    for t in range(count):
        chosen = [asserts[(t + k) % len(asserts)] for k in range(4)]
        if t >= count - 2:  # deliberately wrong tests: flip the truth of one assertion
            chosen[0] = chosen[0].replace("assert ", "assert not (", 1) + ")"
        methods = "".join(f"    def test_{k}(self):\n        {a}\n" for k, a in enumerate(chosen))
        programs.append(f"import unittest\n{header}\n\nclass Test{t}(unittest.TestCase):\n{methods}")
    return programs


def workload(n_problems: int, hangs: bool) -> list[Pair]:
    problems = [p for p in benchmarks.load_benchmark("humaneval").problems
                if "def check" in p.ground_truth and p.ground_truth.count("assert") >= 6][:n_problems]
    pairs = []
    for i, p in enumerate(problems):
        for s, sol in enumerate(solutions_for(p, hang=hangs and i % 2 == 0)):
            for t, test in enumerate(tests_for(p)):
                pairs.append(Pair(f"{p.task_id}|s{s}|t{t}", sol, test))
    return pairs


# --- the baseline: the paper's executor design, one fresh multiprocessing.Process per pair ---------------

def _baseline_child(code: str, verdict) -> None:
    def alarm(signum, frame):
        raise TimeoutError

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 1.0)  # one shot, as in the paper's executor
    try:
        namespace = {"unittest": unittest, "__name__": "__pair__"}
        exec(code, namespace)
        cases = [v for v in list(namespace.values())
                 if isinstance(v, type) and issubclass(v, unittest.TestCase) and v is not unittest.TestCase]
        suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromTestCase(c) for c in cases)
        result = unittest.TextTestRunner(stream=io.StringIO()).run(suite)
        verdict.value = int(result.wasSuccessful() and result.testsRun > 0)
    except BaseException:
        verdict.value = 0


def _baseline_pair(code: str) -> bool:
    ctx = multiprocessing.get_context("fork")
    verdict = ctx.Value("i", 0)
    proc = ctx.Process(target=_baseline_child, args=(code, verdict))
    proc.start()
    proc.join(2)
    if proc.is_alive():
        proc.terminate()
        time.sleep(0.1)
        if proc.is_alive():
            proc.kill()
            time.sleep(0.1)
    proc.join()
    return bool(verdict.value)


def _baseline_chunk(codes: list[str]) -> list[bool]:
    return [_baseline_pair(c) for c in codes]


def baseline(pairs: list[Pair], workers: int) -> dict[str, bool]:
    codes = [p.solution + "\n\n" + p.test for p in pairs]
    chunk = max(1, len(codes) // (workers * 8))
    parts = [codes[i:i + chunk] for i in range(0, len(codes), chunk)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        results = [v for part in pool.map(_baseline_chunk, parts) for v in part]
    return {p.id: v for p, v in zip(pairs, results)}


def ours(pairs: list[Pair], workers: int, mode: str = "fast") -> dict[str, str]:
    with Executor(workers=workers, settings=SandboxSettings(timeout=1.0, mode=mode)) as ex:
        return {v.id: v.status for v in run_pairs(pairs, ex)}


def oracle(pairs: list[Pair], workers: int) -> dict[str, bool]:
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip([p.id for p in pairs], pool.map(lambda p: oracle_passes(p.solution, p.test, 3.0), pairs)))


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


MODES = ("fast", "isolated")


def report(label: str, pairs: list[Pair], measured: dict[str, tuple[dict[str, str], float]], workers: int,
           truth: dict[str, bool], target: float) -> None:
    """Each mode's time and disagreements with the oracle, and its ratio to the process-per-pair baseline."""
    slow, t_slow = timed(baseline, pairs, workers)
    n = len(pairs)
    statuses = measured["fast"][0]
    hanging = sum(statuses[p.id] in ("timeout", "crash") for p in pairs)
    print(f"[{label}] {n} pairs, {hanging} hanging ({100 * hanging / n:.1f}%), {sum(truth[p.id] for p in pairs)} pass")
    for mode, (got, seconds) in measured.items():
        wrong = [p.id for p in pairs if (got[p.id] == "pass") != truth[p.id]]
        print(f"  utscale {mode:<8}: {seconds:7.2f} s  {n / seconds:8.1f} pairs/s  disagreements with oracle: "
              f"{len(wrong)}  ratio {t_slow / seconds:.1f}x   [target >= {target:g}x]" + (f"  {wrong[:5]}" if wrong else ""))
    dis_slow = sum(slow[p.id] != truth[p.id] for p in pairs)
    print(f"  process per pair: {t_slow:7.2f} s  {n / t_slow:8.1f} pairs/s  disagreements with oracle: {dis_slow}",
          flush=True)


def startup(workers: int, mode: str) -> float:
    """Seconds from nothing to the first verdict of a one-pair job (worker start-up included)."""
    pair = Pair("one", "def add(a, b):\n    return a + b\n",
                "import unittest\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(add(1, 2), 3)\n")
    return timed(ours, [pair], workers, mode)[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for mode in MODES:
        print(f"start-up to the first verdict ({mode}): {startup(args.workers, mode):.2f} s   [target <= 0.2 s]")
    pairs = workload(args.problems, hangs=True)
    truth, t_oracle = timed(oracle, pairs, args.workers)
    print(f"oracle (fresh interpreter per pair): {len(pairs)} pairs in {t_oracle:.1f} s", flush=True)
    measured = {mode: timed(ours, pairs, args.workers, mode) for mode in MODES}
    # the no-hang workload: the solutions none of whose pairs hang (as the research notes measured it)
    hung = {p.id.rsplit("|", 1)[0] for p in pairs if measured["fast"][0][p.id] in ("timeout", "crash")}
    calm = [p for p in pairs if p.id.rsplit("|", 1)[0] not in hung]
    calm_measured = {mode: timed(ours, calm, args.workers, mode) for mode in MODES}
    report("no hanging solutions", calm, calm_measured, args.workers, truth, 10.0)
    report("with hanging solutions", pairs, measured, args.workers, truth, 4.0)


if __name__ == "__main__":
    main()
