"""Online stopping rules on constructed pass matrices whose right stopping point is known."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from utscale import allocation, matrix, online, outputs, rerankers, reveal, scaling, stopping, voting
from utscale.matrix import PassCube
from utscale.runs import Run, project_root


def cube_of(passes: np.ndarray, correct: np.ndarray, n_solutions: np.ndarray | None = None) -> PassCube:
    p, n, m = passes.shape
    return PassCube(task_ids=tuple(f"t/{i}" for i in range(p)), passes=passes, correct=correct,
                    n_solutions=np.full(p, n) if n_solutions is None else n_solutions, n_tests=np.full(p, m))


def one_winner(m: int = 16, n: int = 4) -> PassCube:
    """Solution 0 passes every test, the others none: every order of the tests looks the same."""
    passes = np.zeros((1, n, m), dtype=bool)
    passes[0, 0] = True
    correct = np.zeros((1, n), dtype=bool)
    correct[0, 0] = True
    return cube_of(passes, correct)


def all_agree(m: int = 16, n: int = 4) -> PassCube:
    """Every solution passes every test: the tests never separate them."""
    return cube_of(np.ones((1, n, m), dtype=bool), np.array([[True, False, False, False]]))


def stop_tests(cube: PassCube, setting: stopping.Setting, **kw) -> np.ndarray:
    traj = online.simulate(cube, [setting], resamples=5, seed=3, **kw)
    return traj.tests_at(traj.stops[setting.name])


def test_stability_stops_k_tests_after_the_last_change():
    # the kept set changes at test 1 ({all} -> {0}) and never again
    assert set(stop_tests(one_winner(), stopping.Setting("stability", 3)).ravel()) == {4}
    # nothing ever changes: the window is full after k tests
    assert set(stop_tests(all_agree(), stopping.Setting("stability", 3)).ravel()) == {3}


def test_margin_stops_when_no_outsider_can_catch_up_by_the_horizon():
    # after t tests the lead is t and h - t tests are left: the first t with t > h - t
    assert set(stop_tests(one_winner(), stopping.Setting("margin", 10)).ravel()) == {6}
    assert set(stop_tests(one_winner(), stopping.Setting("margin", 9)).ravel()) == {5}
    # while everyone agrees nothing is decided: the rule runs to its horizon
    assert set(stop_tests(all_agree(), stopping.Setting("margin", 10)).ravel()) == {10}


def test_posterior_stops_at_the_error_target():
    # a = t leader wins, b = 0: P(challenger better) = 2^-(t+1); <= 0.05 first at t = 4 (1/32)
    assert set(stop_tests(one_winner(), stopping.Setting("posterior", 0.05)).ravel()) == {4}
    # no evidence at all: the rule of succession 1 / (t + 2) <= 0.1 first at t = 8
    assert set(stop_tests(all_agree(), stopping.Setting("posterior", 0.1)).ravel()) == {8}
    # a stricter target never stops earlier
    assert stop_tests(one_winner(), stopping.Setting("posterior", 0.01)).min() == 6


def test_min_tests_and_rounds_delay_every_stop():
    setting = stopping.Setting("stability", 1)
    assert set(stop_tests(one_winner(), setting).ravel()) == {2}
    assert set(stop_tests(one_winner(), setting, min_tests=5).ravel()) == {5}
    # rounds of 4: the rule only sees the vote at 4, 8, …; the change lies inside the first round, so the
    # first round that shows no change ends at 8
    assert set(stop_tests(one_winner(), setting, round_size=4).ravel()) == {8}


def test_challenger_probability_is_the_beta_posterior():
    table = stopping.challenger_better(12)
    assert table[0, 0] == pytest.approx(0.5)
    assert table[3, 0] == pytest.approx(0.5**4)  # P(Beta(4, 1) <= 1/2)
    assert table[5, 5] == pytest.approx(0.5)
    assert table[2, 7] == pytest.approx(1 - table[7, 2])
    # against a Monte Carlo estimate of P(Beta(1 + b, 1 + a) > 1/2)
    draws = np.random.default_rng(0).beta(1 + 4, 1 + 9, size=200_000)
    assert table[9, 4] == pytest.approx((draws > 0.5).mean(), abs=0.005)


def random_cube(seed: int = 0, p: int = 6, n: int = 7, m: int = 9) -> PassCube:
    rng = np.random.default_rng(seed)
    quality = rng.random((p, n, 1))
    passes = rng.random((p, n, m)) < quality
    correct = quality[..., 0] > 0.6
    return cube_of(passes, correct)


def test_equal_allocation_is_the_trajectory_read_at_m():
    cube = random_cube()
    traj = online.simulate(cube, [], resamples=40, seed=1)
    # all tests: the order does not matter, so it is exactly the full-matrix vote
    full = voting.expected_accuracy(voting.select(cube.passes), cube.correct)
    assert np.allclose(traj.accuracy[-1], full[None, :])
    # no tests: a uniform pick, the pass rate
    assert np.allclose(traj.accuracy[0], cube.pass_rates()[None, :])
    # m tests in a random order is m tests drawn without replacement: the subsample protocol's expectation
    grid = scaling.scaling_grid(cube, [cube.shape[1]], [4], 400, protocol="subsample", seed=2)
    assert np.nanmean(traj.accuracy[4]) == pytest.approx(np.nanmean(grid.accuracy[0][0]), abs=0.04)


def test_result_does_not_depend_on_chunking_and_padding_solutions_never_win():
    cube = random_cube(1)
    passes = cube.passes.copy()
    passes[2, 5:] = True  # rows past problem 2's real solutions: they must not count
    padded = cube_of(passes, cube.correct, n_solutions=np.array([7, 7, 5, 7, 7, 7]))
    settings = [stopping.Setting("stability", 2), stopping.Setting("posterior", 0.1), stopping.Setting("margin", 6)]
    a = online.simulate(padded, settings, resamples=6, seed=4, chunk=1)
    b = online.simulate(padded, settings, resamples=6, seed=4, chunk=4)
    assert np.array_equal(a.accuracy, b.accuracy, equal_nan=True)
    assert all(np.array_equal(a.stops[k], b.stops[k]) for k in a.stops)
    real = cube_of(cube.passes[:, :5], cube.correct[:, :5])
    alone = online.simulate(real, [], resamples=6, seed=4)
    # problem 2 with padding keeps its 5 real solutions: the same accuracy as a cube of 5 solutions at m = M
    assert a.accuracy[-1, :, 2] == pytest.approx(alone.accuracy[-1, :, 2])


def test_under_budget_shares_out_what_settled_problems_leave():
    checkpoints = np.arange(0, 11)
    stop = np.array([[2, 10, 10]])  # problem 0 settles after 2 tests, the others never
    # 4 tests per problem on average (12 in all): problem 0 takes 2, the other two share 10
    assert under(stop, checkpoints, 4) == [2, 5, 5]
    # a budget above what the rules ask for changes nothing
    assert under(stop, checkpoints, 10) == [2, 10, 10]
    assert under(stop, checkpoints, 0) == [0, 0, 0]


def under(stop, checkpoints, budget):
    return online.under_budget(stop, checkpoints, budget)[0].tolist()


def test_allocation_table_has_every_rule_with_costs_and_intervals():
    cube = random_cube(2, p=10, m=8)
    settings = [stopping.Setting("stability", 2), stopping.Setting("margin", 8), stopping.Setting("posterior", 0.1)]
    traj = online.simulate(cube, settings, resamples=10, seed=0)
    curves = np.moveaxis(traj.accuracy, 0, 0)  # [M+1, R, P]
    gold = cube.pass_rates()
    offline, allocations = allocation.compare_rules(curves, gold, gold, [2, 4], folds=np.arange(10) % 5)
    costs = online.TestCosts(np.full(10, 100.0), np.arange(10, dtype=float) + 1, parameters=1_000)
    table = online.allocation_table(traj, settings, [2, 4], costs, offline, allocations)
    assert list(table.columns[:7]) == ["rule", "tests_generated", "tokens", "flops", "accuracy", "ci_low", "ci_high"]
    assert {"equal", "paper_gold", "paper_predicted", "verifier_aware"} <= set(table.rule)
    assert {s.name for s in settings} <= set(table.rule)
    equal = table[table.rule == "equal"]
    assert equal.tests_generated.tolist() == list(range(9))
    # tokens: tests × each problem's completion tokens; FLOPs: 2 × parameters × (prompt + completion)
    four = equal[equal.tests_generated == 4].iloc[0]
    assert four.tokens == pytest.approx(4 * 5.5)
    assert four.flops == pytest.approx(2 * 1_000 * 4 * (100 + 5.5))
    assert (table.ci_low <= table.accuracy + 1e-9).all() and (table.accuracy <= table.ci_high + 1e-9).all()
    # a budgeted online row never generates more than its budget on average
    budgeted = table[table.rule.str.startswith("online_") & (table.budget < 8)]
    assert (budgeted.tests_generated <= budgeted.budget + 1e-9).all()
    gains = online.gains_table(traj, settings, costs).set_index("rule")
    margin = gains.loc["online_margin_h8"]
    # the margin rule with the horizon at the cap keeps the full-budget pick's set: no loss against it
    assert margin.minus_equal_full_budget >= -1e-9
    for name in gains.index:
        for budget in ("tests", "tokens", "flops"):
            row = gains.loc[name]
            column = "gain_vs_equal_same_tests" if budget == "tests" else f"gain_vs_equal_same_{budget}"
            low = "ci_low" if budget == "tests" else f"{column}_ci_low"
            assert row[low] <= row[column] + 1e-9


def test_matching_tokens_charges_a_rule_for_the_long_tests_it_buys():
    """Two problems whose tests cost 1 and 9 tokens: a rule that stops the cheap one after 1 test and runs
    the dear one to 8 averages 4.5 tests but 36.5 tokens, what equal allocation spends at 7.3 tests."""
    checkpoints = np.arange(9)
    accuracy = np.zeros((9, 1, 2))
    accuracy[1:, 0, 0] = 1.0  # settled by one test
    accuracy[:, 0, 1] = checkpoints / 8  # every test helps
    traj = online.Trajectories(checkpoints, accuracy, {"r": np.array([[1, 8]])})
    costs = online.TestCosts(np.zeros(2), np.array([1.0, 9.0]), parameters=1)
    row = online.paired_gain(traj, "r", costs)
    assert row["gain_vs_equal_same_tests"] == pytest.approx(100 - (100 + 4.5 / 8 * 100) / 2)
    assert row["gain_vs_equal_same_tokens"] == pytest.approx(100 - (100 + 7.3 / 8 * 100) / 2)
    # FLOPs are tokens times a constant here (no prompt): the same match
    assert row["gain_vs_equal_same_flops"] == pytest.approx(row["gain_vs_equal_same_tokens"])


def test_adaptive_consistency_is_the_packages_beta_criterion():
    """Our vectorised criterion against Adaptive-Consistency's own `BetaStoppingCriteria` on the votes it
    would see (the leader's a votes, the runner-up's b)."""
    from adaptive_consistency import BetaStoppingCriteria

    criterion = BetaStoppingCriteria(conf_thresh=0.95)
    for a, b in [(1, 0), (4, 0), (5, 2), (9, 4), (12, 11), (30, 20)]:
        theirs = criterion.should_stop(["x"] * a + ["y"] * b)
        assert stopping.leader_confidence(np.array(a), np.array(b)) == pytest.approx(theirs["prob"], abs=1e-7)
        assert (stopping.leader_confidence(np.array(a), np.array(b)) >= 0.95) == theirs["stop"]


def test_adaptive_stops_when_the_race_is_decided_and_runs_on_a_tie():
    # one winner: a = t, b = 0; P(Beta(1 + t, 1) > ½) = 1 − 2^-(t+1) ≥ 0.95 first at t = 4
    assert set(stop_tests(one_winner(), stopping.Setting("adaptive", 0.05)).ravel()) == {4}
    # everyone passes everything: a = t against nobody (b = 0), the package's single-answer case: same stop
    assert set(stop_tests(all_agree(), stopping.Setting("adaptive", 0.05)).ravel()) == {4}
    # two solutions that pass alternate tests, revealed in order: a and b stay within one, never decided
    passes = np.zeros((1, 2, 16), dtype=bool)
    passes[0, 0, ::2] = passes[0, 1, 1::2] = True
    tie = cube_of(passes, np.array([[True, False]]))
    setting = stopping.Setting("adaptive", 0.05)
    in_order = online.simulate(tie, [setting], resamples=1, shuffle=False)
    assert in_order.tests_at(in_order.stops[setting.name]).tolist() == [[16]]
    # in random orders a streak of four tests for one side decides it early: the criterion reads the
    # race as it stands, with no guarantee about where it ends
    assert stop_tests(tie, setting).min() < 16


def test_anytime_evalue_keeps_its_guarantee_under_the_null_and_has_power():
    """Ville's inequality, checked: under θ = ½ (the boundary of the null) the chance that the mixture e-value
    ever reaches 1/α within 400 separating tests is at most α; with θ = 0.8 it reaches it almost always."""
    rng = np.random.default_rng(0)
    alpha, runs, length = 0.1, 4000, 400
    for theta, check in ((0.5, lambda rate: rate <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / runs)),
                         (0.8, lambda rate: rate >= 0.95)):
        wins = rng.random((runs, length)) < theta
        a = np.cumsum(wins, axis=1)
        b = np.arange(1, length + 1) - a
        crossed = (stopping.log_evalue(a, b) >= np.log(1 / alpha)).any(axis=1)
        assert check(crossed.mean()), (theta, crossed.mean())
    # the closed form against the mixture integral it stands for
    from scipy import integrate
    value, _ = integrate.quad(lambda th: 2 * (2 * th) ** 7 * (2 * (1 - th)) ** 2, 0.5, 1)
    assert np.exp(stopping.log_evalue(np.array(7), np.array(2))) == pytest.approx(value)


def test_anytime_stops_only_on_enough_evidence_against_every_outsider():
    # one winner among 4: E after t unanimous tests is 2^(t+1) (1 − 2^-(t+1)) / (t + 1); the threshold
    # n(n − 1)/α = 12 / 0.05 = 240 is first reached at t = 11
    e = np.exp(stopping.log_evalue(np.arange(16), np.zeros(16)))
    first = int(np.argmax(e >= 240))
    assert first == 11
    assert set(stop_tests(one_winner(), stopping.Setting("anytime", 0.05)).ravel()) == {first}
    # a looser α stops no later
    assert stop_tests(one_winner(), stopping.Setting("anytime", 0.5)).max() <= first
    # nobody is ever told apart: no evidence, the rule runs to the cap
    assert set(stop_tests(all_agree(), stopping.Setting("anytime", 0.05)).ravel()) == {16}
    # a kept set whose members disagree on some test is not one voice: solutions 0 and 1 pass the same
    # number of tests (different ones), 2 and 3 nothing; the rule never stops
    passes = np.zeros((1, 4, 16), dtype=bool)
    passes[0, 0, :8] = passes[0, 1, 8:] = True
    split = cube_of(passes, np.array([[True, False, False, False]]))
    full = online.simulate(split, [stopping.Setting("anytime", 0.5)], resamples=5, seed=3)
    assert (full.tests_at(full.stops["online_anytime_a0.5"]) == 16).mean() > 0.5


def test_settings_names_and_config():
    assert stopping.Setting("posterior", 0.05).name == "online_posterior_a0.05"
    assert stopping.Setting("stability", 4).name == "online_stability_k4"
    with pytest.raises(ValueError, match="unknown stopping rule"):
        stopping.Setting("patience", 3)
    names = [s.name for s in stopping.settings_from_config(
        {"ONLINE_STABILITY": [2], "ONLINE_HORIZONS": [8], "ONLINE_ALPHAS": [0.1]})]
    assert names == ["online_stability_k2", "online_margin_h8", "online_posterior_a0.1", "online_adaptive_a0.1",
                     "online_anytime_a0.1"]
    assert all(stopping.Setting.from_name(n).name == n for n in names)


def test_the_decomposition_adds_up_and_names_each_cause():
    """Against equal allocation at the same average tests: an informed stop gains in `timing`, an
    uninformed uneven stop on a concave curve loses in `within_problem`, and the parts add up."""
    checkpoints = np.arange(5)
    # problem 0: each order's vote turns right at its own moment; problem 1: one concave curve for both orders
    accuracy = np.zeros((5, 2, 2))
    accuracy[:, 0, 0] = [0, 1, 1, 1, 1]
    accuracy[:, 1, 0] = [0, 0, 0, 1, 1]
    accuracy[:, :, 1] = np.array([0, 0.6, 0.8, 0.9, 1.0])[:, None]
    stops = {"informed": np.array([[1, 0], [3, 4]]), "blind": np.array([[3, 0], [1, 4]])}
    traj = online.Trajectories(checkpoints, accuracy, stops)
    informed, blind = (online.decomposition(traj, name) for name in ("informed", "blind"))
    for row in (informed, blind):
        total = row["across_problems"] + row["within_problem"] + row["timing"]
        assert total == pytest.approx(row["gain_vs_equal_same_tests"])
        assert row["tests_generated"] == 2.0
    # problem 0's stops are when its order's vote turned right (timing +25 points there, so +12.5 overall);
    # the blind stops at the same counts on the wrong orders lose the same 12.5
    assert informed["timing"] == pytest.approx(12.5) and blind["timing"] == pytest.approx(-12.5)
    # problem 1 (concave) stopped at 0 and 4 instead of 2 and 2: -30 points there, -15 overall (Jensen)
    assert informed["within_problem"] == pytest.approx((25 - 30) / 2)
    assert informed["across_problems"] == pytest.approx(0.0)  # both problems average 2 tests


def trajectories(curve_by_problem: np.ndarray, stops: dict[str, np.ndarray]) -> online.Trajectories:
    """Trajectories with a given accuracy curve per problem [T, P] (0-1), the same in every resample."""
    t, p = curve_by_problem.shape
    accuracy = np.repeat(curve_by_problem[:, None, :], 3, axis=1)
    return online.Trajectories(np.arange(t) * 2, accuracy, {k: np.broadcast_to(v, (3, p)).copy() for k, v in stops.items()})


def test_crossfit_reaches_each_verdict_and_chooses_on_other_problems():
    p = 40
    saturating = np.tile(np.array([0.2, 0.6, 1.0, 1.0, 1.0])[:, None], (1, p))  # right from 4 tests on
    settings = [stopping.Setting("stability", 1), stopping.Setting("stability", 2)]
    early, enough = np.full(p, 1), np.full(p, 2)  # stop at 2 tests (60%) or at 4 (100%)
    traj = trajectories(saturating, {settings[0].name: early, settings[1].name: enough})
    rows = online.crossfit(traj, settings, margin=0.5, folds=5, seed=0)
    by = {(r.arm, r.versus): r for r in rows.itertuples()}
    assert by[("fixed budget (held-out choice)", "every test")].chosen == "4, 4, 4, 4, 4"  # one choice per fold
    assert by[("fixed budget (held-out choice)", "every test")].verdict == "equivalent"
    assert by[("online (held-out choice)", "every test")].verdict == "equivalent"
    assert by[("online (held-out choice)", "every test")].chosen == ", ".join([settings[1].name] * 5)
    assert by[("online (held-out choice)", "fixed budget (held-out choice)")].verdict == "no difference shown"
    # only the early setting exists: chosen for want of better, and worse than every test by 40 points
    only_early = online.crossfit(trajectories(saturating, {settings[0].name: early}), settings[:1], seed=0)
    worse = only_early[(only_early.arm == "online (held-out choice)") & (only_early.versus == "every test")].iloc[0]
    assert worse.verdict == "worse" and worse.difference == pytest.approx(-40.0)
    # stopping at 2 tests loses 2 points on half the problems and gains 0.5 on the others: -0.75 on average,
    # with a 90% interval across -0.5: neither equivalent nor shown worse
    close = np.tile(np.array([0.2, 0.0, 0.9, 0.9, 0.9])[:, None], (1, p))
    close[1, : p // 2], close[1, p // 2:] = 0.88, 0.905
    shaky = online.crossfit(trajectories(close, {settings[0].name: early}), settings[:1], margin=0.5, seed=0)
    arm = shaky[(shaky.arm == "online (held-out choice)") & (shaky.versus == "every test")].iloc[0]
    assert arm.difference == pytest.approx(-0.75) and arm.ci_low < -0.5 < arm.ci_high and arm.verdict == "not shown"


def test_invalid_tests_are_paid_for_but_are_no_evidence():
    """Eight invalid tests (nothing extracted: every solution fails, not `valid`) come first, then eight
    valid ones. Counting them as tests would settle both rules on the invalid run alone."""
    valid = np.array([[False] * 8 + [True] * 8])
    winner = one_winner()
    winner.passes[0, 0, :8] = False
    late_winner = PassCube(winner.task_ids, winner.passes, winner.correct, winner.n_solutions, np.array([8]), valid=valid)
    stability = stopping.Setting("stability", 3)
    traj = online.simulate(late_winner, [stability], resamples=1, shuffle=False)
    # the kept set changes at the first valid test (t = 9), then three more valid tests: t = 12
    assert traj.tests_at(traj.stops[stability.name]).tolist() == [[12]]
    agree = all_agree()
    agree.passes[0, :, :8] = False
    late_agree = PassCube(agree.task_ids, agree.passes, agree.correct, agree.n_solutions, np.array([8]), valid=valid)
    posterior = stopping.Setting("posterior", 0.1)
    traj = online.simulate(late_agree, [posterior], resamples=1, shuffle=False)
    # the rule of succession over valid tests: 1 / (8 + 2) <= 0.1 only after all eight valid ones
    assert traj.tests_at(traj.stops[posterior.name]).tolist() == [[16]]
    # the default: a cube's first n_tests columns are its valid ones (where from_tables puts them)
    assert one_winner().valid.all() and PassCube(("t",), np.zeros((1, 2, 4), bool), np.zeros((1, 2), bool),
                                                   np.array([2]), np.array([3])).valid.tolist() == [[True] * 3 + [False]]


def test_last_bit_differences_never_make_an_interval_exclude_zero():
    """The same accuracies averaged in two orders (a rule that runs to the cap against equal allocation at
    the cap) differ by ~1e-15 points on every problem: without care, an interval entirely below zero."""
    rounding = np.array([-2.6e-15, -4.0e-16, -5.3e-15, -1.1e-15])
    assert online._with_interval("gain", rounding, 0) == {"gain": 0.0, "gain_ci_low": 0.0, "gain_ci_high": 0.0}
    real = np.array([-2.0, -1.0, -3.0, -1.5])
    assert online._with_interval("gain", real, 0)["gain_ci_high"] < 0


def test_a_settled_ranking_costs_more_tests_under_codet_when_its_groups_overturn_the_vote():
    """Solution 0 (right) passes all 8 tests; three identical wrong solutions pass all but test 0. The vote
    keeps solution 0 once test 0 is revealed, at position r. CodeT's released rule (√|group| × tests) keeps it
    too while r ≤ 2 (1 > 0, 2 > √3), then the wrong trio for good from the third test on. So with a stability
    window of 2, the vote stops at r + 2 when r ≤ 2 (else at 2, nothing having changed), and CodeT at 5 when
    r ≤ 2 (else at 2): the same orders, read under two rankings."""
    passes = np.ones((1, 4, 8), dtype=bool)
    passes[0, 1:, 0] = False
    cube = cube_of(passes, np.array([[True, False, False, False]]))
    free = [s for s in [stopping.Setting("stability", 2), stopping.Setting("margin", 8)]
            if s.rule in stopping.RANKING_FREE_RULES]
    runs = {rule: online.simulate(cube, free, resamples=40, seed=5, rule=rule) for rule in ("coderm", "codet_released")}
    vote, codet = (runs[r].tests_at(runs[r].stops["online_stability_k2"])[:, 0] for r in ("coderm", "codet_released"))
    assert set(vote) > {2} and np.all(codet == np.where(vote > 2, 5, 2))
    costs = online.TestCosts(np.zeros(1), np.ones(1), parameters=1)
    table = online.reranker_table(runs, free, costs).set_index("reranker")
    assert list(table.rule) == ["online_stability_k2"] * 2  # the margin rule is not ranking-free: never run here
    assert table.loc["coderm", "accuracy_every_test"] == 100 and table.loc["codet_released", "accuracy_every_test"] == 0
    assert table.loc["codet_released", "tests_generated"] > table.loc["coderm", "tests_generated"]
    assert table.loc["coderm", "accuracy"] == pytest.approx(100 * np.mean(np.where(vote > 2, 1.0, 0.25)))


@pytest.mark.parametrize("rule", sorted(rerankers.B4_RULES))
def test_b4_online_is_b4_on_every_revealed_prefix(rule):
    """Read at each checkpoint, the simulation's B4 is `rerankers.b4_kept` on the tests revealed so far
    (its vectorised running sums against the per-matrix rule), padding solutions never kept and a padding
    column (a test the problem does not have) never counted; with every test it is the reranker table's B4."""
    cube = random_cube(3, p=5, n=8, m=10)
    weights = np.ones((5, 10))
    passes, correct = cube.passes.copy(), cube.correct.copy()
    # problem 1: five solutions, one test, which solution 4 alone passes; B4 at beta_0 = 1e6 keeps solution
    # 4, but would keep the other four if it counted the nine padding columns as tests all of them fail
    weights[1, 1:] = 0.0
    passes[1], correct[1] = False, False
    passes[1, 4, 0] = correct[1, 4] = True
    passes[4, 6:] = True  # rows past problem 4's real solutions
    padded = PassCube(cube.task_ids, passes, correct, np.array([8, 5, 8, 8, 6]), np.array([10, 1, 10, 10, 10]),
                      weights=weights)
    traj = online.simulate(padded, [stopping.Setting("stability", 2)], resamples=1, rule=rule, shuffle=False)
    beta_0 = rerankers.B4_RULES[rule]
    for i, t in enumerate(traj.checkpoints):
        prefix = PassCube(padded.task_ids, passes[:, :, :t], padded.correct, padded.n_solutions,
                          np.minimum(padded.n_tests, t), weights=weights[:, :t])
        assert np.allclose(traj.accuracy[i, 0], rerankers.b4_accuracy(prefix, beta_0), equal_nan=True), t
    shuffled = online.simulate(padded, [], resamples=7, seed=2, rule=rule)
    assert np.allclose(shuffled.accuracy[-1], rerankers.b4_accuracy(padded, beta_0)[None])
    with pytest.raises(ValueError, match="unknown ranking"):
        online.simulate(padded, [], resamples=1, rule="b4_beta0_1e+03")


def test_the_pairwise_rules_refuse_to_run_without_the_tests_told_apart():
    kept = np.ones((2, 1, 3), dtype=bool)
    with pytest.raises(ValueError, match="discordant"):
        stopping.stopping_indices(np.array([0, 1]), kept, np.zeros((2, 1, 3)), kept, np.zeros((2, 1)), None,
                                  np.zeros((2, 1)), [stopping.Setting("anytime", 0.05)], 1)


def random_revealed(seed: int, n: int = 7, u: int = 4, k: int = 4, m: int = 6) -> reveal.RevealedOutputs:
    """One problem's revealed outputs at random: u output groups over k inputs (-1: no output; few values,
    so that groups tie, agree on some inputs and answer one value everywhere), n solutions, m columns (the
    last a padding column that brings nothing), each bringing random inputs and expected-value weights."""
    rng = np.random.default_rng(seed)
    reveals = rng.random((m, k)) < 0.35
    reveals[-1] = False
    totals = rng.integers(0, 3, m).astype(float)
    totals[-1] = 0.0
    return reveal.RevealedOutputs(keys=[rng.integers(-1, 2, (u, k))], group=[rng.integers(0, u, n)],
                                  distinct=[rng.random(n) < 0.7], reveals=[reveals],
                                  matches=[np.floor(rng.random((m, u)) * (totals[:, None] + 1))], totals=[totals])


@pytest.mark.parametrize("seed", range(6))
def test_srank_online_is_srank_on_every_revealed_prefix(seed):
    """Read at each checkpoint, `reveal.srank_trajectory` is `reveal.srank_after` (`rerankers.srank_kept` on
    the drawn real solutions, the inputs revealed so far and the agreement with the expected values revealed
    so far):
    clusters that split as inputs arrive, solutions that answer one value everywhere (invalid past one
    input), ties pooled, padding rows never kept."""
    revealed = random_revealed(seed)
    n_real, m = len(revealed.group[0]), revealed.reveals[0].shape[0]
    rng = np.random.default_rng(seed)
    order = np.stack([rng.permutation(m) for _ in range(4)])
    draw = np.stack([rng.permutation(n_real + 2)[:6] for _ in range(4)])  # rows n_real, n_real + 1: padding
    real = draw < n_real
    checkpoints = np.arange(m + 1)
    kept = reveal.srank_trajectory(revealed, 0, order, draw, real, checkpoints)
    for r in range(4):
        for t in checkpoints:
            expected = reveal.srank_after(revealed, 0, order[r, :t], draw[r][real[r]])
            assert np.array_equal(kept[t, r][real[r]], expected), (r, t)
            assert not kept[t, r][~real[r]].any()


def test_srank_online_needs_its_outputs():
    cube = one_winner()
    with pytest.raises(ValueError, match="outputs"):
        online.simulate(cube, [], resamples=1, rule=reveal.SRANK)
    with pytest.raises(ValueError, match="outputs"):
        online.simulate(cube, [], resamples=1, outputs=random_revealed(0))


def read_run(path: Path, name: str) -> Run:
    """A committed run (or a copy of some of its tables) opened for reading, as its manifest describes it."""
    manifest = json.loads((path / "manifest.json").read_text())
    return Run(run_id=name, path=path, config=manifest["config"], profile=name)


@pytest.mark.parametrize("name", ["codet-humaneval", "embedded"])
def test_srank_online_with_every_test_is_the_reranker_tables_srank(name):
    """On a committed run (CodeT's assertions; `unittest` classes), what the pass cube's columns bring adds
    up to the run's output cube: with every test revealed, in any order, the agreement is `outputs.load`'s
    and the simulation's SRank is the reranker table's."""
    committed = project_root() / "results" / name
    if not (committed / "outputs.parquet").exists():
        pytest.skip(f"results/{name} is not in this checkout")
    run = read_run(committed, name)
    cube = matrix.load(run, "unit_test")
    revealed, cube_of_outputs = reveal.revealed_outputs(run, cube), outputs.load(run)
    every_test = np.arange(cube.shape[2])
    for p, n in enumerate(cube.n_solutions):
        agreement = reveal.revealed_agreement(revealed, p, every_test)
        assert np.allclose(agreement[revealed.group[p]], cube_of_outputs.agreement[p, :n]), p
    traj = online.simulate(cube, [], resamples=2, seed=5, rule=reveal.SRANK, outputs=revealed)
    table = next(r for r in rerankers.RERANKERS if r.name == "srank").accuracy(cube_of_outputs)
    assert np.allclose(traj.accuracy[-1], table[None], equal_nan=True)


def test_srank_online_refuses_a_test_that_gives_inputs_but_was_never_executed(tmp_path):
    committed = project_root() / "results" / "embedded"
    if not (committed / "outputs.parquet").exists():
        pytest.skip("results/embedded is not in this checkout")
    for table in ("manifest.json", "labels.parquet", "solutions.parquet", "executions.parquet", "outputs.parquet",
                  "test_inputs.parquet"):
        shutil.copy(committed / table, tmp_path / table)
    inputs = pd.read_parquet(tmp_path / "test_inputs.parquet")
    task_id, test_id = inputs.task_id.iloc[0], json.loads(inputs.test_ids.iloc[0])[0]
    executions = pd.read_parquet(tmp_path / "executions.parquet")
    executions[~(executions.task_id.eq(task_id) & executions.test_id.eq(test_id))].to_parquet(
        tmp_path / "executions.parquet")
    run = read_run(tmp_path, "embedded")
    with pytest.raises(ValueError, match=f"{task_id}: test {test_id} gives inputs but was never executed"):
        reveal.revealed_outputs(run, matrix.load(run, "unit_test"))


def test_rankings_replayed_together_are_each_as_alone():
    """`simulate_rankings` shares the revealed tests and B4's summaries between rankings: each ranking's
    trajectories and stops are those of its own `simulate` call, to the bit."""
    rng = np.random.default_rng(0)
    passes = rng.random((4, 9, 12)) < rng.random((4, 1, 12)) * 0.5  # each test its own pass rate: B4's priors differ
    cube = cube_of(passes, rng.random((4, 9)) < 0.4)
    settings = [stopping.Setting("stability", 2), stopping.Setting("stability", 4)]
    rankings = {"coderm": None, "codet_released": None, **{rule: None for rule in rerankers.B4_RULES}}
    together = online.simulate_rankings(cube, settings, 6, rankings, seed=4, round_size=2)
    for rule in rankings:
        alone = online.simulate(cube, settings, 6, seed=4, rule=rule, round_size=2)
        assert np.array_equal(together[rule].accuracy, alone.accuracy, equal_nan=True), rule
        assert all(np.array_equal(together[rule].stops[s], alone.stops[s]) for s in alone.stops), rule
    b4 = [together[rule].accuracy for rule in rerankers.B4_RULES]
    assert not any(np.array_equal(b4[i], b4[j]) for i, j in [(0, 1), (0, 2), (1, 2)])


def test_notebook_06_replays_srank_only_where_a_run_recorded_outputs(tmp_path):
    committed = project_root() / "results" / "embedded"
    if not (committed / "outputs.parquet").exists():
        pytest.skip("results/embedded is not in this checkout")
    run = read_run(committed, "embedded")
    cube = matrix.load(run, "unit_test")
    rankings = reveal.online_rankings(run, cube)
    assert list(rankings) == ["codet_released", *rerankers.B4_RULES, reveal.SRANK]
    assert isinstance(rankings[reveal.SRANK], reveal.RevealedOutputs)
    assert all(rankings[rule] is None for rule in ["codet_released", *rerankers.B4_RULES])
    for table in ("manifest.json", "labels.parquet", "executions.parquet"):
        shutil.copy(committed / table, tmp_path / table)
    without = read_run(tmp_path, "embedded")
    assert reveal.SRANK not in reveal.online_rankings(without, cube)
