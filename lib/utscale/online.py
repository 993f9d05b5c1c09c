"""Online dynamic scaling: generate unit tests in rounds and stop each problem once its vote is settled.

Beyond the paper (docs/method.md §8). The paper fixes each problem's budget in advance from a difficulty
probe. Here tests arrive in rounds; after each round a *stopping rule* looks only at the pass matrix so
far (never at the ground truth) and decides whether the problem's vote is settled; a total budget that
settled problems leave unspent goes to the problems still open.

The rules are in `utscale.stopping`.

The simulation reveals the columns of a full pass matrix in random order (resampled over orders and,
for n < N, solution draws without replacement); equal allocation at m tests is the same trajectory read
at m, so every rule is compared on the same draws. All of it is vectorised over problems × resamples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from utscale.matrix import PassCube
from utscale.rerankers import B4_RULES, b4_scores_by_prior
from utscale.reveal import SRANK, RevealedOutputs, at_checkpoints, srank_trajectory
from utscale.runs import Run
from utscale.scaling import problem_bootstrap
from utscale.stopping import PAIRWISE_RULES, Setting, stopping_indices
from utscale.tables import write_csv
from utscale.voting import RULES, Rule, expected_accuracy, group_sizes, key_weights, select_from


@dataclass(frozen=True)
class Trajectories:
    """The vote after each round, for every problem and resample.

    checkpoints: tests revealed at each round boundary, int [T] (0, r, 2r, …, M).
    accuracy: expected correctness of the pick after checkpoints[i] tests, float [T, R, P] (0–1).
    stops: for each setting's name, the checkpoint index at which it stops, int [R, P].
    """

    checkpoints: np.ndarray
    accuracy: np.ndarray
    stops: dict[str, np.ndarray]

    @property
    def cap(self) -> int:
        return int(self.checkpoints[-1])

    def tests_at(self, index: np.ndarray) -> np.ndarray:
        return self.checkpoints[index]

    def accuracy_at(self, index: np.ndarray) -> np.ndarray:
        """Per (resample, problem) accuracy when each stops at checkpoint `index` [R, P]."""
        r, p = index.shape
        return self.accuracy[index, np.arange(r)[:, None], np.arange(p)[None, :]]


def _packed(flags: np.ndarray) -> np.ndarray:
    """Bool [..., M] as little-endian bit sets in uint64 words [..., ceil(M / 64)]."""
    m = flags.shape[-1]
    padded = np.zeros((*flags.shape[:-1], -(-m // 64) * 64), dtype=bool)
    padded[..., :m] = flags
    return np.packbits(padded, axis=-1, bitorder="little").view(np.uint64)


def _popcount(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Number of bits set in x & y, summed over the last axis (words), int16."""
    total = np.bitwise_count(x[..., 0] & y[..., 0]).astype(np.int16)
    for w in range(1, max(x.shape[-1], y.shape[-1])):
        total += np.bitwise_count(x[..., w] & y[..., w])
    return total


def simulate(cube: PassCube, settings: Sequence[Setting], resamples: int, seed: int = 0, n: int | None = None,
             rule: str = "coderm", round_size: int = 1, min_tests: int = 1, chunk: int = 8,
             shuffle: bool = True, outputs: RevealedOutputs | None = None) -> Trajectories:
    """Reveal each problem's tests in `resamples` random orders and record the vote after every round.

    `rule` ranks what is revealed so far: the pass matrix by a `voting.Rule` or one of B4's priors
    (`rerankers.B4_RULES`, e.g. b4_beta0_1e+04), or, with `outputs` (`reveal.revealed_outputs` of the same
    cube), the revealed tests' inputs and expected values by SRank (`reveal.SRANK`).

    A problem's orders and solution draws come from a generator seeded by (seed, problem index), so the
    result does not depend on `chunk` (problems per vectorised step, a memory knob only). With
    `shuffle=False` the tests are revealed in the cube's column order and every solution is used (one
    resample): the order in which live generation produces them (`utscale.live`).
    """
    return simulate_rankings(cube, settings, resamples, {rule: outputs}, seed, n, round_size, min_tests, chunk,
                             shuffle)[rule]


def simulate_rankings(cube: PassCube, settings: Sequence[Setting], resamples: int,
                      rankings: Mapping[str, RevealedOutputs | None], seed: int = 0, n: int | None = None,
                      round_size: int = 1, min_tests: int = 1, chunk: int = 8, shuffle: bool = True
                      ) -> dict[str, Trajectories]:
    """`simulate` under several rankings (each with its `outputs`, None but for SRank) on the same orders and
    draws, each exactly as alone: what they share (the revealed tests, B4's running summaries for all its
    priors) is computed once per chunk of problems."""
    for rule, outputs in rankings.items():
        if rule not in B4_RULES and rule not in RULES and rule != SRANK:
            raise ValueError(f"unknown ranking {rule!r}; choose one of {(*RULES, *B4_RULES, SRANK)}")
        if (rule == SRANK) != (outputs is not None):
            raise ValueError("SRank ranks the revealed tests' outputs: pass `outputs` with it, and only with it")
    p_count, n_all, m = cube.shape
    n = n_all if n is None else min(n, n_all)
    if not shuffle and (resamples != 1 or n != n_all):
        raise ValueError("revealing tests in their given order is one resample over every solution")
    checkpoints = np.unique(np.append(np.arange(0, m + 1, max(round_size, 1)), m))
    accuracy = {rule: np.empty((len(checkpoints), resamples, p_count)) for rule in rankings}
    stops = {rule: {s.name: np.empty((resamples, p_count), dtype=np.int64) for s in settings} for rule in rankings}
    priors = [B4_RULES[rule] for rule in rankings if rule in B4_RULES]
    key_w = key_weights(m)
    pairwise = any(s.rule in PAIRWISE_RULES for s in settings)
    for start in range(0, p_count, chunk):
        problems = range(start, min(start + chunk, p_count))
        orders, draws = [], []
        for p in problems:
            rng = np.random.default_rng([seed, p])
            in_order = np.tile(np.arange(m), (resamples, 1))
            orders.append(rng.permuted(in_order, axis=1) if shuffle else in_order)
            real = int(cube.n_solutions[p])
            pick = np.tile(np.arange(n_all), (resamples, 1))
            pick = rng.permuted(pick, axis=1) if shuffle else pick
            # real solutions first (padding rows last), then the first n of a uniform order of them
            pick = np.take_along_axis(pick, np.argsort(pick >= real, axis=1, kind="stable"), axis=1)[:, :n]
            draws.append(pick)
        idx = np.array(list(problems))
        order = np.stack(orders, axis=1)  # [R, c, m]
        draw = np.stack(draws, axis=1)  # [R, c, n]
        c = len(idx)
        # passes[r, p, i, j]: drawn solution i on the j-th revealed test
        rows = cube.passes[idx[None, :, None], draw]  # [R, c, n, M]
        revealed = np.take_along_axis(rows, order[:, :, None, :], axis=3)
        weights = np.take_along_axis(np.broadcast_to(cube.weights[idx][None], (resamples, c, m)), order, axis=2)
        valid = np.take_along_axis(np.broadcast_to(cube.valid[idx][None], (resamples, c, m)), order, axis=2)
        correct = cube.correct[idx[None, :, None], draw]  # [R, c, n]
        real = draw < cube.n_solutions[idx][None, :, None]
        b = resamples * c
        revealed = revealed.reshape(b, n, m)
        weights = weights.reshape(b, m)
        as_float = revealed.astype(np.float64)
        counts = at_checkpoints(as_float * weights[:, None, :], checkpoints)  # [T, b, n]
        keys = at_checkpoints(as_float * key_w[None, None, :], checkpoints)
        real_b = real.reshape(b, n)
        t_count = len(checkpoints)
        weight_left = weights.sum(axis=1)[None, :] - at_checkpoints(weights, checkpoints)  # [T, b]
        valid_so_far = at_checkpoints(valid.reshape(b, m), checkpoints)
        b4 = _b4_trajectories(revealed, weights, real_b, keys, checkpoints, priors) if priors else {}
        for rule, outputs in rankings.items():
            if rule in B4_RULES:
                kept = b4[B4_RULES[rule]]
            elif outputs is not None:
                kept = np.stack([srank_trajectory(outputs, int(p), order[:, j], draw[:, j], real[:, j], checkpoints)
                                 for j, p in enumerate(idx)], axis=2).reshape(t_count, b, n)
            else:
                # padding solutions never win: they pass nothing and are outside every group that matters
                kept = select_from(np.where(real_b[None], counts, -1.0).reshape(t_count * b, n),
                                   np.where(real_b[None], keys, -1.0 - np.arange(n)).reshape(t_count * b, n),
                                   cast(Rule, rule))
                kept = kept.reshape(t_count, b, n) & real_b[None]
            accuracy[rule][:, :, idx] = expected_accuracy(kept, np.broadcast_to(correct.reshape(b, n), kept.shape)
                                                          ).reshape(t_count, resamples, c)
            discordant = _discordant(revealed, kept, checkpoints) if pairwise else None
            chunk_stops = stopping_indices(checkpoints, kept, counts, real_b[None], weight_left, discordant,
                                           valid_so_far, settings, min_tests)
            for name, where in chunk_stops.items():
                stops[rule][name][:, idx] = where.reshape(resamples, c)
    return {rule: Trajectories(checkpoints=checkpoints, accuracy=accuracy[rule], stops=stops[rule]) for rule in rankings}


def _discordant(revealed: np.ndarray, kept: np.ndarray, checkpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The revealed tests the leader (first kept solution) passes and each other solution fails, and the
    reverse, per checkpoint, int16 [T, b, n] each, from passes [b, n, m]: pass vectors packed into 64-bit
    words, so that "tests both passed so far" is a popcount."""
    b, _, m = revealed.shape
    leader = kept.argmax(axis=-1)  # [T, b]
    bits = _packed(revealed)  # [b, n, words]
    prefix = _packed(np.arange(m)[None, :] < checkpoints[:, None])  # [T, words]
    lead_bits = bits[np.arange(b)[None, :], leader] & prefix[:, None, :]  # [T, b, words]
    both = _popcount(lead_bits[:, :, None, :], bits[None])  # [T, b, n]
    plain = _popcount(bits[None], prefix[:, None, None, :])
    lead_plain = np.take_along_axis(plain, leader[..., None], axis=-1)
    return lead_plain - both, plain - both


def _b4_trajectories(revealed: np.ndarray, weights: np.ndarray, real: np.ndarray, keys: np.ndarray,
                     checkpoints: np.ndarray, priors: Sequence[float]) -> dict[float, np.ndarray]:
    """B4's kept solutions after each round at each prior, bool [T, b, n], every checkpoint of every order
    scored at once from running sums (`rerankers.b4_scores_by_prior`, the summaries shared by the priors);
    as `rerankers.b4_accuracy` on the full matrix, B4 sees each sampled test once (the columns with a
    weight) and only the real solutions."""
    sampled = weights > 0  # [b, m]
    ones = (revealed & sampled[:, None, :] & real[:, :, None]).astype(np.float64)  # [b, n, m]
    passed = at_checkpoints(ones, checkpoints)
    shared = at_checkpoints(ones * ones.sum(axis=1, keepdims=True), checkpoints)
    del ones
    tests = at_checkpoints(sampled, checkpoints)  # [T, b]
    t_count, b, n = passed.shape
    members = np.broadcast_to(real[None], passed.shape).reshape(t_count * b, n)
    group = group_sizes(keys.reshape(t_count * b, n), members).reshape(t_count, b, n).astype(np.float64)
    by_prior = b4_scores_by_prior(passed, shared, group, passed.sum(axis=-1), tests,
                                  np.broadcast_to(real.sum(axis=-1)[None], (t_count, b)), priors)
    kept = {}
    for beta_0, scores in zip(priors, by_prior):
        scores = np.where(real[None], scores, -np.inf)
        kept[beta_0] = real[None] & np.isclose(scores, scores.max(axis=-1, keepdims=True), rtol=0, atol=1e-9)
    return kept


def under_budget(stop: np.ndarray, checkpoints: np.ndarray, budget: float) -> np.ndarray:
    """Checkpoint index each problem reaches when a total of budget × P tests is shared out in rounds.

    Every open problem gets one more round at a time; a settled problem stops asking, so what it leaves
    goes to those still open; the last affordable round is the largest level ℓ with Σ min(stop, ℓ) within
    the total. int [R, P] from the unconstrained stops [R, P].
    """
    tests = checkpoints[stop]  # [R, P]
    total = budget * stop.shape[1]
    spent = np.minimum(tests[None], checkpoints[:, None, None]).sum(axis=2)  # [T, R]
    level = (spent <= total + 1e-9).sum(axis=0) - 1  # spent grows with the level
    return np.minimum(stop, np.maximum(level, 0)[:, None])


@dataclass(frozen=True)
class TestCosts:
    """Per-problem mean tokens of one generated unit test, and the test generator's parameters."""

    prompt_tokens: np.ndarray  # [P]
    completion_tokens: np.ndarray  # [P]
    parameters: int

    @classmethod
    def from_table(cls, unit_tests: pd.DataFrame, task_ids: Sequence[str], parameters: int) -> TestCosts:
        means = unit_tests.groupby("task_id")[["prompt_tokens", "completion_tokens"]].mean().reindex(list(task_ids))
        return cls(means.prompt_tokens.fillna(0).to_numpy(float), means.completion_tokens.fillna(0).to_numpy(float),
                   parameters)

    def of(self, tests: np.ndarray) -> tuple[float, float]:
        """(generated tokens, FLOPs) per problem on average when problem i gets tests[..., i] tests."""
        tests = np.asarray(tests, dtype=float)
        tokens = float((tests * self.completion_tokens).mean())
        flops = float((2.0 * self.parameters * tests * (self.prompt_tokens + self.completion_tokens)).mean())
        return tokens, flops


COLUMNS = ["rule", "tests_generated", "tokens", "flops", "accuracy", "ci_low", "ci_high", "budget"]


def _row(rule: str, budget: float, tests: np.ndarray, per_problem: np.ndarray, costs: TestCosts, seed: int) -> dict:
    """One allocation.csv row: tests [R, P] or [P]; per_problem expected accuracy (%) [P]."""
    tokens, flops = costs.of(np.asarray(tests, dtype=float).reshape(-1, tests.shape[-1]).mean(axis=0))
    lo, hi = np.percentile(problem_bootstrap(per_problem, seed), [2.5, 97.5])
    return {"rule": rule, "tests_generated": float(np.mean(tests)), "tokens": tokens, "flops": flops,
            "accuracy": float(np.nanmean(per_problem)), "ci_low": float(lo), "ci_high": float(hi), "budget": float(budget)}


def online_rows(traj: Trajectories, settings: Sequence[Setting], budgets: Sequence[float], costs: TestCosts,
                seed: int = 0) -> pd.DataFrame:
    """allocation.csv rows for equal allocation at every checkpoint and every online setting, unconstrained
    (budget = the cap) and under each total budget."""
    rows = []
    for i, t in enumerate(traj.checkpoints):
        per_problem = np.nanmean(traj.accuracy[i], axis=0) * 100
        rows.append(_row("equal", t, np.full(traj.accuracy.shape[2], float(t)), per_problem, costs, seed))
    for s in settings:
        stop = traj.stops[s.name]
        for budget in [traj.cap, *[b for b in budgets if b < traj.cap]]:
            where = stop if budget >= traj.cap else under_budget(stop, traj.checkpoints, budget)
            per_problem = np.nanmean(traj.accuracy_at(where), axis=0) * 100
            rows.append(_row(s.name, budget, traj.tests_at(where), per_problem, costs, seed))
    return pd.DataFrame(rows, columns=COLUMNS)


def offline_rows(table: pd.DataFrame, allocations: dict, costs: TestCosts, seed: int = 0) -> pd.DataFrame:
    """allocation.csv rows for the paper's rules and verifier_aware from `allocation.compare_rules`."""
    rows = []
    for rec in table.itertuples():
        if rec.rule == "equal":
            continue  # equal is on the fine grid of `online_rows`
        tokens, flops = costs.of(allocations[(rec.rule, rec.budget)])
        rows.append({"rule": rec.rule, "tests_generated": rec.tests_used / len(costs.completion_tokens),
                     "tokens": tokens, "flops": flops, "accuracy": rec.accuracy, "ci_low": rec.ci_low,
                     "ci_high": rec.ci_high, "budget": float(rec.budget)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _equal_at(traj: Trajectories, tests: float) -> np.ndarray:
    """Each problem's equal-allocation accuracy (%) at `tests` tests (interpolated between checkpoints) [P]."""
    return np.array([np.interp(tests, traj.checkpoints, np.nanmean(traj.accuracy[:, :, p], axis=1) * 100)
                     for p in range(traj.accuracy.shape[2])])


ROUNDING = 1e-9  # points: below this a per-problem difference is the order of a floating-point sum, not a result


def _with_interval(prefix: str, diff: np.ndarray, seed: int) -> dict:
    """Mean difference (points) and its 95% problem-bootstrap interval. The same accuracies averaged in
    two orders differ in the last bits (e.g. a rule that always runs to the cap against equal allocation at
    the cap); such differences are set to zero first, so that no interval excludes zero on rounding alone."""
    diff = np.where(np.abs(diff) < ROUNDING, 0.0, diff)
    lo, hi = np.percentile(problem_bootstrap(diff, seed), [2.5, 97.5])
    return {prefix: float(np.nanmean(diff)), f"{prefix}_ci_low": float(lo), f"{prefix}_ci_high": float(hi)}


def paired_gain(traj: Trajectories, name: str, costs: TestCosts, seed: int = 0) -> dict:
    """An online setting (unconstrained) minus equal allocation, per problem then bootstrapped over
    problems: points, each with its 95% interval, with equal allocation given the same budget three ways.

    - the same average number of tests (`gain_vs_equal_same_tests`, interval `ci_low`/`ci_high`);
    - the same generated tokens and the same FLOPs (`…_same_tokens`, `…_same_flops`): a rule that gives
      more tests to problems whose tests are long spends more per test, so equal allocation gets the
      constant number of tests that costs what the rule spent on average;
    - every test (`minus_equal_full_budget`).

    Equal allocation at a fractional number of tests is the interpolation between neighbouring checkpoints."""
    stop = traj.stops[name]
    online = np.nanmean(traj.accuracy_at(stop), axis=0) * 100
    tests = traj.tests_at(stop)
    mean_tests = float(tests.mean())
    same = _with_interval("gain_vs_equal_same_tests", online - _equal_at(traj, mean_tests), seed)
    tokens, flops = costs.of(tests.mean(axis=0))
    per_test_tokens, per_test_flops = costs.of(np.ones(len(online)))
    row = {"rule": name, "tests_generated": mean_tests, "share_of_cap": mean_tests / traj.cap,
           "gain_vs_equal_same_tests": same["gain_vs_equal_same_tests"],
           "ci_low": same["gain_vs_equal_same_tests_ci_low"], "ci_high": same["gain_vs_equal_same_tests_ci_high"]}
    for what, spent, per_test in (("tokens", tokens, per_test_tokens), ("flops", flops, per_test_flops)):
        matched = spent / per_test if per_test > 0 else mean_tests  # no recorded cost: the tests themselves
        row |= _with_interval(f"gain_vs_equal_same_{what}", online - _equal_at(traj, matched), seed)
    full = _with_interval("minus_equal_full_budget", online - np.nanmean(traj.accuracy[-1], axis=0) * 100, seed)
    return row | {"minus_equal_full_budget": full["minus_equal_full_budget"],
                  "full_ci_low": full["minus_equal_full_budget_ci_low"],
                  "full_ci_high": full["minus_equal_full_budget_ci_high"]}


def decomposition(traj: Trajectories, name: str, seed: int = 0) -> dict:
    """Why a setting beats or trails equal allocation given the same average tests t̄: the difference
    (points) split into three parts that add up to it exactly, each with a 95% problem-bootstrap interval.
    With f_p(t) problem p's accuracy after t tests averaged over the orders (equal allocation's curve) and
    t_rp the setting's stop for order r:

    - `across_problems` = f_p(t̄_p) − f_p(t̄): which problems get more tests (t̄_p: p's mean stop);
    - `within_problem` = mean_r f_p(t_rp) − f_p(t̄_p): how unevenly a problem's orders are stopped; on a
      concave curve this is never positive (Jensen), so a rule whose stops carry no information loses here;
    - `timing` = mean_r acc_rp(t_rp) − mean_r f_p(t_rp): whether it stops an order when that order's own
      vote is right (information in the stopping time itself).
    """
    stop = traj.stops[name]  # [R, P] checkpoint indices
    curve = np.nanmean(traj.accuracy, axis=1) * 100  # [T, P]
    p_idx = np.arange(stop.shape[1])
    tests = traj.tests_at(stop).astype(float)
    mean_all, mean_p = float(tests.mean()), tests.mean(axis=0)
    at = np.array([np.interp(v, traj.checkpoints, curve[:, p]) for p, v in zip(p_idx, mean_p)])
    equal = np.array([np.interp(mean_all, traj.checkpoints, curve[:, p]) for p in p_idx])
    same_counts = curve[stop, p_idx[None, :]].mean(axis=0)
    online = np.nanmean(traj.accuracy_at(stop), axis=0) * 100
    parts = {"across_problems": at - equal, "within_problem": same_counts - at, "timing": online - same_counts,
             "gain_vs_equal_same_tests": online - equal}
    row: dict = {"rule": name, "tests_generated": mean_all}
    for key, values in parts.items():
        lo, hi = np.percentile(problem_bootstrap(values, seed), [2.5, 97.5])
        row.update({key: float(np.nanmean(values)), f"{key}_ci_low": float(lo), f"{key}_ci_high": float(hi)})
    return row


def decomposition_table(traj: Trajectories, settings: Sequence[Setting], seed: int = 0) -> pd.DataFrame:
    """`decomposition` for every setting."""
    return pd.DataFrame([decomposition(traj, s.name, seed) for s in settings])


def allocation_table(traj: Trajectories, settings: Sequence[Setting], budgets: Sequence[float], costs: TestCosts,
                     offline: pd.DataFrame, allocations: dict, seed: int = 0) -> pd.DataFrame:
    """`metrics/allocation.csv`: equal allocation on every checkpoint, the paper's rules and
    verifier_aware at each budget (from `allocation.compare_rules`), every online setting; sorted by rule
    then budget."""
    rows = pd.concat([online_rows(traj, settings, budgets, costs, seed), offline_rows(offline, allocations, costs, seed)],
                     ignore_index=True)
    return rows.sort_values(["rule", "budget"], kind="stable").reset_index(drop=True)


def gains_table(traj: Trajectories, settings: Sequence[Setting], costs: TestCosts, seed: int = 0) -> pd.DataFrame:
    """`metrics/online_vs_equal.csv`: each online setting against equal allocation (`paired_gain`)."""
    return pd.DataFrame([paired_gain(traj, s.name, costs, seed) for s in settings])


def reranker_table(runs: Mapping[str, Trajectories], settings: Sequence[Setting], costs: TestCosts,
                   seed: int = 0) -> pd.DataFrame:
    """`metrics/online_by_reranker.csv`: what a settled ranking costs in tests under each ranking (of the
    pass matrix, or SRank's of the outputs). `runs` maps a reranker (a `simulate` rule) to its trajectories
    on the same orders and draws (`simulate(..., rule=...)` with the same seed); per reranker and setting,
    the tests generated, the accuracy at the stop and with every test (the reranker's own cap), and
    `paired_gain` against that reranker's equal allocation. Only the settings run for a reranker appear (`stopping.RANKING_FREE_RULES`
    for a ranking other than the vote)."""
    rows = []
    for reranker, traj in sorted(runs.items()):
        every_test = float(np.nanmean(traj.accuracy[-1]) * 100)
        for s in settings:
            if s.name in traj.stops:
                at_stop = float(np.nanmean(traj.accuracy_at(traj.stops[s.name])) * 100)
                rows.append({"reranker": reranker, **paired_gain(traj, s.name, costs, seed),
                             "accuracy": at_stop, "accuracy_every_test": every_test})
    return pd.DataFrame(rows)


EQUIVALENCE_MARGIN = 0.5  # points: what "as accurate as every test" may lose (docs/method.md §8)
CROSSFIT_FOLDS = 5


def _smallest_within(accuracy: np.ndarray, tests: np.ndarray, full: float, margin: float) -> int:
    """Index of the cheapest option (fewest tests) whose accuracy is within `margin` of `full`."""
    ok = np.flatnonzero(accuracy >= full - margin)
    return int(ok[np.argmin(tests[ok])]) if ok.size else int(np.argmax(accuracy))


def crossfit(traj: Trajectories, settings: Sequence[Setting], margin: float = EQUIVALENCE_MARGIN,
             folds: int = CROSSFIT_FOLDS, seed: int = 0) -> pd.DataFrame:
    """Online stopping against the best fixed budget, both chosen on held-out problems (cross-fitting).

    For each of `folds` folds of problems, on the other folds: the fixed budget (tests per problem, the
    same for all) and the online setting that come within `margin` points of every test with the fewest
    tests; both are then scored on the fold's own problems, so no choice is scored on the data that made
    it. Three arms, each per problem: `fixed budget (held-out choice)`, `online (held-out choice)`, and
    every test. Each arm's difference from every test is bootstrapped over problems (90% interval: two
    one-sided tests at 5%) and called `equivalent` when that interval lies inside ±margin (TOST),
    `worse` when it lies below −margin, else `not shown`; a last row compares the online arm with the
    fixed one (95% interval; `tests_generated` there is the online arm's extra tests per problem)."""
    p = traj.accuracy.shape[2]
    by_checkpoint = np.nanmean(traj.accuracy, axis=1) * 100  # [T, P]
    full = by_checkpoint[-1]
    names = [s.name for s in settings]
    online_acc = np.stack([np.nanmean(traj.accuracy_at(traj.stops[n]), axis=0) * 100 for n in names])  # [S, P]
    online_tests = np.stack([traj.tests_at(traj.stops[n]).mean(axis=0) for n in names])  # [S, P]
    fold_of = np.random.default_rng(seed).permutation(p) % folds
    fixed_acc, fixed_tests, chosen_acc, chosen_tests = (np.empty(p) for _ in range(4))
    picks: dict[str, list[str]] = {"fixed budget (held-out choice)": [], "online (held-out choice)": []}
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        if not test.any():
            continue
        target = float(full[train].mean())
        b = _smallest_within(by_checkpoint[:, train].mean(axis=1), traj.checkpoints.astype(float), target, margin)
        fixed_acc[test], fixed_tests[test] = by_checkpoint[b, test], traj.checkpoints[b]
        s = _smallest_within(online_acc[:, train].mean(axis=1), online_tests[:, train].mean(axis=1), target, margin)
        chosen_acc[test], chosen_tests[test] = online_acc[s, test], online_tests[s, test]
        picks["fixed budget (held-out choice)"].append(str(int(traj.checkpoints[b])))
        picks["online (held-out choice)"].append(names[s])
    rows = []
    arms = {"fixed budget (held-out choice)": (fixed_acc, fixed_tests), "online (held-out choice)": (chosen_acc, chosen_tests),
            "every test": (full, np.full(p, float(traj.cap)))}
    for arm, (acc, tests) in arms.items():
        lo, hi = np.percentile(problem_bootstrap(acc - full, seed), [5, 95])
        verdict = ("equivalent" if -margin < lo and hi < margin else "worse" if hi < -margin else "not shown")
        rows.append({"arm": arm, "chosen": ", ".join(picks.get(arm, ["all"])), "tests_generated": float(tests.mean()),
                     "accuracy": float(acc.mean()), "difference": float((acc - full).mean()), "versus": "every test",
                     "ci_low": float(lo), "ci_high": float(hi), "level": "90% (TOST)", "margin": margin, "verdict": verdict})
    lo, hi = np.percentile(problem_bootstrap(chosen_acc - fixed_acc, seed), [2.5, 97.5])
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "no difference shown"
    rows.append({"arm": "online (held-out choice)", "chosen": "", "tests_generated": float((chosen_tests - fixed_tests).mean()),
                 "accuracy": float(chosen_acc.mean()), "difference": float((chosen_acc - fixed_acc).mean()),
                 "versus": "fixed budget (held-out choice)", "ci_low": float(lo), "ci_high": float(hi), "level": "95%",
                 "margin": margin, "verdict": verdict})
    return pd.DataFrame(rows)


def save(run: Run, allocation: pd.DataFrame, gains: pd.DataFrame, crossfitted: pd.DataFrame | None = None,
         by_reranker: pd.DataFrame | None = None) -> None:
    """The tables under metrics/ at fixed precision, so that re-rendering a run leaves the files unchanged."""
    write_csv(allocation, run.file("metrics/allocation.csv"))
    write_csv(gains, run.file("metrics/online_vs_equal.csv"))
    for name, extra in (("online_crossfit", crossfitted), ("online_by_reranker", by_reranker)):
        if extra is not None:
            write_csv(extra, run.file(f"metrics/{name}.csv"))
