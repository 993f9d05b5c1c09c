"""Rerankers on the full matrices: which solution each rule picks with every sampled solution and test.

The expected accuracy of a uniform pick among what a rule keeps, per problem, on the full N and M (no
resampling: every solution and test is used once), with a problem-bootstrap interval. CodeT's rules
count a sampled assertion as often as it was sampled (`PassCube.weights`); the CodeRM and max-pass
rules count each distinct test once. This is where the suite meets CodeT's published number
(docs/codet.md): `codet_released` is the released code's √|S|·|T| score, `codet_paper` the paper's |S|·|T|.
B4 (Chen et al., ASE 2024) ranks the same matrices by a Bayesian posterior over which solutions and tests
are correct, from the pass matrix alone (`b4_kept`, rule for rule after its authors' strategy.py);
MBR-exec on pass patterns and a two-coin Dawid-Skene model (the negative control) complete the pass-matrix
rules; where a run recorded what each solution returned (`outputs.OutputCube`, granularity `outputs`),
MBR-exec on those results and SRank (To et al., ACL Findings 2024) rank from them (docs/codet.md).
Every rule is one `Reranker` of `RERANKERS`, reported with paired differences against the random pick
and CodeT's released rule (docs/codet.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln

from utscale.matrix import PassCube
from utscale.outputs import OutputCube
from utscale.runs import Run
from utscale.scaling import monte_carlo_se, problem_bootstrap
from utscale.tables import write_csv
from utscale.voting import Rule, expected_accuracy, pass_summaries, select_from


def random_pick(cube: PassCube | OutputCube) -> np.ndarray:
    """Each problem's expected accuracy of a uniform pick among all its solutions, [P]."""
    return cube.pass_rates()


def full_pick_accuracy(cube: PassCube, rule: Rule, weighted: bool) -> np.ndarray:
    """Each problem's expected accuracy of the rule's pick on its full matrix, [P] (nan: no solutions).
    Padding rows (solutions a problem does not have) can never be kept."""
    p, n, _ = cube.shape
    real = np.arange(n)[None, :] < cube.n_solutions[:, None]
    counts, keys = pass_summaries(cube.passes, cube.weights if weighted else None)
    counts = np.where(real, counts, -1.0)  # below every real count: never the most tests passed
    keys = np.where(real, keys, -1.0 - np.arange(n))  # distinct: padding forms no group
    kept = select_from(counts, keys, rule) & real
    return expected_accuracy(kept, cube.correct)


# B4 (Chen et al., ASE 2024, `ZJU-CTAG/B4`, strategy.py): its authors' prior settings, alpha_xy = 1e3 with
# beta_0 = 1e4, 1e5, 1e6 (their defaults), each reported
B4_ALPHA_XY = 1e3
B4_BETA_0 = (1e4, 1e5, 1e6)


B4_RULES = {f"b4_beta0_{beta_0:.0e}": beta_0 for beta_0 in B4_BETA_0}  # the table's names


def b4_scores(passed: np.ndarray, shared: np.ndarray, group: np.ndarray, total: np.ndarray | float,
              tests: np.ndarray | float, solutions: np.ndarray | float, beta_0: float, alpha_xy: float = B4_ALPHA_XY) -> np.ndarray:
    """B4's scores at one prior (`b4_scores_by_prior`)."""
    return b4_scores_by_prior(passed, shared, group, total, tests, solutions, [beta_0], alpha_xy)[0]


def b4_scores_by_prior(passed: np.ndarray, shared: np.ndarray, group: np.ndarray, total: np.ndarray | float,
                       tests: np.ndarray | float, solutions: np.ndarray | float, priors: Sequence[float],
                       alpha_xy: float = B4_ALPHA_XY) -> list[np.ndarray]:
    """B4's log posterior of each solution's hypothesis, "the solutions with my pass pattern and the tests
    I pass are the correct ones", float [..., n], from per-solution summaries [..., n]: `passed` (tests
    it passes, k), `shared` (over every solution, the tests both it and that one pass, so that the
    group's own rows add s·k), `group` (solutions with its pattern, s); and per matrix [...]: `total`
    passes, `tests` (m) and `solutions` (n). Summaries rather than a matrix, so that a batch of matrices
    (every checkpoint of every order of `online.simulate`) is scored at once. B4's four Beta-Bernoulli
    terms: the share of correct tests (prior alpha_xy), of correct solutions (alpha_xy), wrong solutions
    passing correct tests (uniform), wrong solutions passing wrong tests (beta_0, which makes them unlikely).
    One array per prior in `priors`: only the last term depends on it, so the others are summed once."""
    k, s = passed, group
    m, n, u = (np.asarray(v, dtype=np.float64)[..., None] for v in (tests, solutions, total))
    e1 = shared - s * k  # the other solutions' passes on the hypothesis's tests
    e0 = u - s * k - e1  # and on the other tests
    common = (betaln(k + alpha_xy, m - k + 1.0) + betaln(s + alpha_xy, n - s + 1.0)
              + betaln(e1 + 1.0, (n - s) * k - e1 + 1.0))
    return [common + betaln(e0 + 1.0, (n - s) * (m - k) - e0 + beta_0) for beta_0 in priors]


def b4_kept(passes: np.ndarray, beta_0: float, alpha_xy: float = B4_ALPHA_XY) -> np.ndarray:
    """B4's choice on one problem's pass matrix [n, m] (bool), rule for rule after its authors'
    strategy.py: each distinct row (pass pattern) is a hypothesis scored by `b4_scores`. Kept: the
    solutions of the best-scoring pattern(s), [n]."""
    n, m = passes.shape
    e = passes.astype(np.float64)
    _, group, sizes = np.unique(passes, axis=0, return_inverse=True, return_counts=True)
    scores = b4_scores(e.sum(axis=1), e @ e.sum(axis=0), sizes[group.reshape(-1)].astype(np.float64),
                       float(e.sum()), float(m), float(n), beta_0, alpha_xy)
    return np.isclose(scores, scores.max(), rtol=0, atol=1e-9)


def b4_accuracy(cube: PassCube, beta_0: float, alpha_xy: float = B4_ALPHA_XY) -> np.ndarray:
    """Each problem's expected accuracy of a uniform pick among B4's kept solutions, [P] (nan: none);
    B4 counts each test once."""
    return per_problem_accuracy(cube, lambda passes: b4_kept(passes, beta_0, alpha_xy))


# --- per-problem rules on one pass matrix [n, m] (bool), each returning the solutions it keeps [n] -------

def mbr_exec_pattern_kept(passes: np.ndarray) -> np.ndarray:
    """MBR-exec (Shi et al., EMNLP 2022) on pass patterns: the solution whose execution results agree
    with the most others', where two solutions agree when they pass and fail exactly the same tests
    (the 0/1 loss of MBR-exec, on the test outcomes this suite records rather than on raw outputs).
    Kept: the solutions of the largest group of identical pass patterns."""
    _, group, sizes = np.unique(passes, axis=0, return_inverse=True, return_counts=True)
    return sizes[group.reshape(-1)] == sizes.max()


DAWID_SKENE_ITERATIONS = 50
DAWID_SKENE_CLIP = 1e-3  # rates kept inside [clip, 1 - clip]: a test that is never wrong yet stays finite


def dawid_skene_kept(passes: np.ndarray, iterations: int = DAWID_SKENE_ITERATIONS) -> np.ndarray:
    """The negative control: a two-coin Dawid-Skene model (1979) that treats each test as an independent
    annotator voting "correct" for the solutions it passes, with its own sensitivity and specificity,
    fitted by EM from the pass-rate start. Generated tests are not independent annotators (a wrong
    test fails the right solutions together), which is why published work expects it to lose to rules
    that model agreement (CodeT, B4). Kept: the solutions of highest posterior of being correct."""
    e = passes.astype(np.float64)
    n, m = e.shape
    if m == 0:
        return np.ones(n, dtype=bool)
    q = e.mean(axis=1)
    low, high = DAWID_SKENE_CLIP, 1 - DAWID_SKENE_CLIP
    for _ in range(iterations):
        prior = float(np.clip(q.mean(), low, high))
        sensitivity = np.clip(q @ e / max(q.sum(), low), low, high)
        specificity = np.clip((1 - q) @ (1 - e) / max((1 - q).sum(), low), low, high)
        log_odds = (np.log(prior / (1 - prior)) + e @ np.log(sensitivity / (1 - specificity))
                    + (1 - e) @ np.log((1 - sensitivity) / specificity))
        q = 1 / (1 + np.exp(-np.clip(log_odds, -700, 700)))
    return np.isclose(q, q.max(), rtol=0, atol=1e-9)


# --- per-problem rules on one problem's outputs (`outputs.OutputCube` sliced to its real rows and inputs) ---

def mbr_exec_kept(codes: np.ndarray) -> np.ndarray:
    """MBR-exec (Shi et al., EMNLP 2022) with its 0/1 execution-result loss: a solution's risk is the
    number of solutions whose results differ from its own on at least one input, errors being results
    too, so the pick is the largest group of identical result rows. codes int [n, k]; kept [n]."""
    _, group, sizes = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return sizes[group.reshape(-1)] == sizes.max()


def srank_kept(codes: np.ndarray, returned: np.ndarray, agreement: np.ndarray, distinct: np.ndarray) -> np.ndarray:
    """SRank (To et al., ACL Findings 2024; `FSoft-AI4Code/SRank-CodeRanker`, reranking/
    functionality_processing.py and evaluator.py), rule for rule. Solutions are clustered by identical
    outputs (a non-returning input counts as "no output", whatever the error). A solution is invalid, and
    its cluster scores 0, when no input returned or (k > 1) all its outputs are the same. Each valid
    cluster's V = (its distinct solutions / all valid distinct solutions) × its agreement with the tests'
    expected values; the interaction I[a, b] = share of inputs where both returned the same output (1 on
    the diagonal); score = I @ V. Kept: the solutions of every top-scoring cluster (SRank pools tied
    scores). codes, returned [n, k]; agreement float [n]; distinct bool [n]."""
    n, k = codes.shape
    keys = np.where(returned, codes, -1)
    valid = returned.any(axis=1) & ~((keys == keys[:, :1]).all(axis=1) if k > 1 else np.zeros(n, dtype=bool))
    scores = np.zeros(n)
    if valid.any():
        patterns, group = np.unique(keys[valid], axis=0, return_inverse=True)
        group = group.reshape(-1)
        sizes = np.bincount(group, weights=distinct[valid].astype(float), minlength=len(patterns))
        rates = np.bincount(group, weights=agreement[valid], minlength=len(patterns)) / np.bincount(group)
        answered = patterns != -1
        interaction = ((patterns[:, None, :] == patterns[None, :, :]) & answered[:, None, :]).mean(axis=2)
        np.fill_diagonal(interaction, 1.0)
        share = sizes / sizes.sum() if sizes.sum() else sizes
        scores[valid] = (interaction @ (share * rates))[group]
    return np.isclose(scores, scores.max(), rtol=0, atol=1e-12)


def per_output_accuracy(cube: OutputCube, kept_of: Callable[[OutputCube, int, int, int], np.ndarray]) -> np.ndarray:
    """Each problem's expected accuracy of a uniform pick among what a rule on outputs keeps, [P] (nan:
    no solutions); `kept_of(cube, problem, n, k)` sees the problem's real solutions and inputs."""
    out = np.full(len(cube.task_ids), np.nan)
    for i in range(len(cube.task_ids)):
        n, k = int(cube.n_solutions[i]), int(cube.n_inputs[i])
        if n:
            out[i] = cube.correct[i, :n][kept_of(cube, i, n, k)].mean()
    return out


def _srank(cube: OutputCube, i: int, n: int, k: int) -> np.ndarray:
    return srank_kept(cube.codes[i, :n, :k], cube.returned[i, :n, :k], cube.agreement[i, :n], cube.distinct[i, :n])


def _mbr_exec(cube: OutputCube, i: int, n: int, k: int) -> np.ndarray:
    return mbr_exec_kept(cube.codes[i, :n, :k])


def per_problem_accuracy(cube: PassCube, kept_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Each problem's expected accuracy of a uniform pick among what a per-problem rule keeps on its real
    solutions against its real tests (columns with a weight, each counted once), [P] (nan: none)."""
    out = np.full(cube.shape[0], np.nan)
    for i in range(cube.shape[0]):
        n = int(cube.n_solutions[i])
        if n:
            out[i] = cube.correct[i, :n][kept_of(cube.passes[i, :n][:, cube.weights[i] > 0])].mean()
    return out


@dataclass(frozen=True)
class Reranker:
    """One rule of the table: its name, the granularities it is reported at, and each problem's expected
    accuracy of its pick on a full matrix ([P], nan where a problem has no solution)."""

    name: str
    accuracy: Callable[[Any], np.ndarray]  # of a PassCube, or of an OutputCube at the `outputs` granularity
    granularities: tuple[str, ...] = ("unit_test", "assertion")


def _voting(rule: Rule, weighted: bool) -> Callable[[PassCube], np.ndarray]:
    return lambda cube: full_pick_accuracy(cube, rule, weighted)


def _b4(beta_0: float) -> Callable[[PassCube], np.ndarray]:
    return lambda cube: b4_accuracy(cube, beta_0)


RERANKERS: tuple[Reranker, ...] = (
    Reranker("coderm", _voting("coderm", False)),
    Reranker("max_pass", _voting("max_pass", False)),
    Reranker("codet_paper", _voting("codet", True)),
    Reranker("codet_released", _voting("codet_released", True)),
    *(Reranker(name, _b4(beta_0)) for name, beta_0 in B4_RULES.items()),
    Reranker("mbr_exec_pattern", lambda cube: per_problem_accuracy(cube, mbr_exec_pattern_kept)),
    Reranker("dawid_skene", lambda cube: per_problem_accuracy(cube, dawid_skene_kept)),
    Reranker("mbr_exec", lambda cube: per_output_accuracy(cube, _mbr_exec), ("outputs",)),
    Reranker("srank", lambda cube: per_output_accuracy(cube, _srank), ("outputs",)),
)
# the pass-matrix granularity whose tests an outputs granularity's inputs came from (its CodeT baseline)
BASELINE_GRANULARITY = {"outputs": "assertion"}


def _interval(values: np.ndarray, seed: int) -> tuple[float, float]:
    lo, hi = np.nanpercentile(problem_bootstrap(values, seed), [2.5, 97.5])
    return float(lo), float(hi)


def reranker_table(cubes: Mapping[str, PassCube | OutputCube], seed: int = 0) -> pd.DataFrame:
    """rule, granularity, accuracy, ci_low, ci_high (%), and each rule minus the random pick and minus
    CodeT's released rule at the same granularity (for `outputs`: on the assertions the inputs came
    from), with paired intervals (the same problems in every bootstrap draw), for every reranker at
    every granularity `cubes` (granularity -> cube, `matrix.load_all` and `outputs.load_all`) has, after
    the random pick; a rule that cannot run on any granularity the run has is a row with no numbers and a
    `note` saying why. Every cube must hold the same problems in the same order."""
    orders = {tuple(cube.task_ids) for cube in cubes.values()}
    if len(orders) > 1:
        raise ValueError("the cubes hold different problems: rerankers are compared paired by problem")
    random = random_pick(next(iter(cubes.values()))) * 100
    rows = [("random", "none", random)]
    rows += [(r.name, g, r.accuracy(cubes[g]) * 100) for r in RERANKERS for g in r.granularities if g in cubes]
    codet = {g: v for name, g, v in rows if name == "codet_released"}
    out = []
    for name, granularity, values in rows:
        row: dict[str, object] = {"rule": name, "granularity": granularity, "accuracy": float(np.nanmean(values))}
        row["ci_low"], row["ci_high"] = _interval(values, seed)
        same_tests = codet.get(BASELINE_GRANULARITY.get(granularity, granularity))
        for baseline, against in (("random", random), ("codet_released", same_tests)):
            names = (f"minus_{baseline}", f"minus_{baseline}_low", f"minus_{baseline}_high")
            if against is None:  # no such baseline at this granularity
                row.update(dict.fromkeys(names, float("nan")))
                continue
            difference = values - against
            row.update(zip(names, (float(np.nanmean(difference)), *_interval(difference, seed))))
        out.append({**row, "note": ""})
    for r in RERANKERS:  # a rule none of whose granularities this run has: said, not dropped
        if not any(g in cubes for g in r.granularities):
            out.append({"rule": r.name, "granularity": r.granularities[0],
                        "note": f"not run: this run has no {' or '.join(r.granularities)} granularity"})
    return pd.DataFrame(out, columns=list(out[0]))


# --- every reranker as N or M grows: sub-cubes drawn once, each rule on the same draws ----------------

def _first_k(keys: np.ndarray, k: int) -> np.ndarray:
    """Per row of `keys` [P, X], the positions of its k smallest keys, in position order [P, k]."""
    return np.sort(np.argsort(keys, axis=1, kind="stable")[:, :k], axis=1)


def sub_cube(cube: PassCube | OutputCube, rows: np.ndarray, columns: np.ndarray | None) -> PassCube | OutputCube:
    """The cube restricted, per problem, to solutions `rows` [P, n] (and, for a pass cube, tests `columns`
    [P, m]); a problem with fewer real solutions than n keeps only its real ones (padding stays padding)."""
    take = np.arange(len(cube.task_ids))[:, None]
    n_solutions = np.minimum(cube.n_solutions, rows.shape[1])
    correct = cube.correct[take, rows]
    if isinstance(cube, OutputCube):
        return OutputCube(cube.task_ids, cube.codes[take, rows], cube.returned[take, rows], cube.n_inputs,
                          cube.agreement[take, rows], cube.distinct[take, rows], correct, n_solutions)
    assert columns is not None
    passes = cube.passes[take[:, :, None], rows[:, :, None], columns[:, None, :]]
    weights = cube.weights[take, columns]
    return PassCube(cube.task_ids, passes, correct, n_solutions, (weights > 0).sum(axis=1), weights)


def _draw(cube: PassCube | OutputCube, n: int, m: int | None, rng: np.random.Generator) -> PassCube | OutputCube:
    """n solutions (and m tests) per problem, uniformly without replacement among the real ones."""
    p, width = cube.correct.shape
    real = np.arange(width)[None, :] < cube.n_solutions[:, None]
    rows = _first_k(np.where(real, rng.random((p, width)), 2.0 + np.arange(width)), n)
    if m is None:
        return sub_cube(cube, rows, None)
    assert isinstance(cube, PassCube)
    tests = cube.weights > 0  # padding columns of a unit-test cube (invalid tests) count as sampled tests
    columns = _first_k(np.where(tests, rng.random(tests.shape), 2.0 + np.arange(tests.shape[1])), m)
    return sub_cube(cube, rows, columns)


# draws per point of the curves: each runs every rule, B4 and Dawid-Skene problem by problem, so a few
# seconds per draw on 164 x 100; the table's mc_se shows what this leaves of the draws' noise
CURVE_RESAMPLES = 5


def reranker_curves(cubes: Mapping[str, PassCube | OutputCube], n_values: Sequence[int], m_values: Sequence[int],
                    resamples: int = CURVE_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """rule, granularity, axis (n or m), n, m, accuracy, ci_low, ci_high, mc_se (%): every reranker as the
    solutions grow with every test, and as the tests grow with every solution (a rule on outputs uses
    every input: its curve is in n only). Each point averages `resamples` draws, the same draws for
    every rule (paired); the interval is the problem bootstrap of the per-problem means, mc_se the
    Monte-Carlo standard error of the mean over draws (0 where a draw takes everything)."""
    n_max = max(int(c.n_solutions.max()) for c in cubes.values())
    rows = []
    for granularity, cube in cubes.items():
        m_max = int((cube.weights > 0).sum(axis=1).max()) if isinstance(cube, PassCube) else None
        points = [("n", n, m_max) for n in n_values]
        if isinstance(cube, PassCube):
            points += [("m", n_max, m) for m in m_values if m > 0]
        rules = [r for r in RERANKERS if granularity in r.granularities]
        for axis, n, m in points:
            exhaustive = n >= n_max and (m is None or m >= (m_max or 0))
            rng = np.random.default_rng([seed, n, m or 0])
            draws = [_draw(cube, n, m, rng) for _ in range(1 if exhaustive else resamples)]
            per_rule = {r.name: np.stack([r.accuracy(d) for d in draws]) * 100 for r in rules}
            per_rule["random"] = np.stack([random_pick(d) for d in draws]) * 100
            for name, values in per_rule.items():
                per_problem = np.nanmean(values, axis=0)
                low, high = _interval(per_problem, seed)
                se = monte_carlo_se(values)
                rows.append({"rule": name, "granularity": granularity, "axis": axis, "n": n,
                             "m": -1 if m is None else m, "accuracy": float(np.nanmean(per_problem)),
                             "ci_low": low, "ci_high": high, "mc_se": se})
    return pd.DataFrame(rows)


def save(run: Run, table: pd.DataFrame) -> None:
    """`metrics/rerankers.csv` at fixed precision, so that re-rendering a run leaves the file unchanged."""
    write_csv(table, run.file("metrics/rerankers.csv"))


def accuracy_of(table: pd.DataFrame, rule: str, granularity: str) -> pd.Series | None:
    """The row of one rule at one granularity (None when the table has no such row)."""
    rows = table[(table.rule == rule) & (table.granularity == granularity)]
    return None if rows.empty else rows.iloc[0]
