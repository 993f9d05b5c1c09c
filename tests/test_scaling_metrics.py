from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from utscale import matrix, metrics, scaling, voting


def random_cube(p=20, n=10, m=12, seed=0) -> matrix.PassCube:
    rng = np.random.default_rng(seed)
    skill = rng.random(p)
    correct = rng.random((p, n)) < skill[:, None]
    # correct solutions pass most tests, wrong ones some
    passes = np.where(correct[:, :, None], rng.random((p, n, m)) < 0.9, rng.random((p, n, m)) < 0.3)
    return matrix.PassCube(tuple(f"T/{i}" for i in range(p)), passes, correct, np.full(p, n), np.full(p, m))


def test_full_cell_of_the_code_protocol_is_the_plain_vote_and_its_interval_comes_from_problems():
    cube = random_cube()
    grid = scaling.scaling_grid(cube, [10], [12], resamples=5, protocol="coderm_code", seed=1)
    expected = np.mean([voting.majority_vote_accuracy(p, c) for p, c in zip(cube.passes, cube.correct)]) * 100
    assert np.ptp(np.nanmean(grid.accuracy[0, 0], axis=-1)) == 0  # nothing to resample at the full cell
    row = grid.summary().iloc[0]
    assert row.accuracy == pytest.approx(expected)
    assert row.ci_low < expected < row.ci_high  # ... but the problems are a sample
    assert grid.summary().equals(grid.summary())  # seeded


def test_the_curves_intervals_are_drawn_with_the_runs_seed_like_the_verdicts():
    from utscale import claims

    cube = random_cube()
    grid = scaling.scaling_grid(cube, [4], [0, 6], resamples=8, seed=1234)
    row = grid.summary().set_index("n_tests").loc[6]
    draws = claims.benchmark_accuracy(grid, 4, 6, seed=1234)
    assert (row.ci_low, row.ci_high) == tuple(np.percentile(draws, [2.5, 97.5]))
    other = scaling.scaling_grid(cube, [4], [0, 6], resamples=8, seed=99).summary(seed=1234)
    assert other.accuracy.tolist() != grid.summary().accuracy.tolist()  # the seed reaches the draws too


def test_zero_tests_is_the_mean_correctness_of_the_first_n():
    cube = random_cube()
    grid = scaling.scaling_grid(cube, [4], [0], resamples=3, protocol="coderm_code")
    assert grid.summary().accuracy.iloc[0] == pytest.approx(cube.correct[:, :4].mean() * 100)


def test_resampling_is_seeded_and_infeasible_cells_are_skipped():
    cube = random_cube()
    a = scaling.scaling_grid(cube, [2, 5, 50], [1, 3, 99], resamples=20, protocol="bootstrap", seed=7)
    b = scaling.scaling_grid(cube, [2, 5, 50], [1, 3, 99], resamples=20, protocol="bootstrap", seed=7)
    c = scaling.scaling_grid(cube, [2, 5, 50], [1, 3, 99], resamples=20, protocol="bootstrap", seed=8)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    assert not np.array_equal(a.accuracy, c.accuracy)
    assert len(a.summary()) == 9  # bootstrap can draw any n, m
    code = scaling.scaling_grid(cube, [2, 5, 50], [1, 3, 99], resamples=4, protocol="coderm_code")
    assert set(map(tuple, code.summary()[["n_solutions", "n_tests"]].to_numpy())) == {(2, 1), (2, 3), (5, 1), (5, 3)}
    with pytest.raises(ValueError, match="unknown protocol"):
        scaling.scaling_grid(cube, [2], [1], 2, protocol="jackknife")  # type: ignore[arg-type]


def test_more_tests_help_on_average_when_tests_are_informative():
    cube = random_cube(p=60, n=10, m=30, seed=3)
    s = scaling.scaling_grid(cube, [10], [0, 1, 30], resamples=30, protocol="coderm_code").summary()
    acc = s.set_index("n_tests").accuracy
    assert acc[0] < acc[1] < acc[30]


def test_from_tables_pads_missing_tests_as_failed():
    labels = pd.DataFrame({"task_id": ["A", "A", "B", "B"], "solution_id": [0, 1, 0, 1], "correct": [True, False, True, True]})
    ex = pd.DataFrame({"task_id": ["A"] * 4 + ["B"] * 2, "solution_id": [0, 0, 1, 1, 0, 1],
                       "test_id": [0, 1, 0, 1, 0, 0], "passed": [True, True, False, True, True, False]})
    cube = matrix.PassCube.from_tables(ex, labels, n_tests_nominal=3)
    assert cube.shape == (2, 2, 3)
    assert cube.n_tests.tolist() == [2, 1]
    assert cube.passes[0].tolist() == [[True, True, False], [False, True, False]]
    assert cube.passes[1].tolist() == [[True, False, False], [False, False, False]]
    assert cube.pass_rates().tolist() == [0.5, 1.0]


def test_quintiles_drop_unsolved_and_put_the_easiest_first():
    rates = np.array([0.0, 0.9, 0.1, 0.5, 0.3, 0.7, 0.0, 0.2, 0.6, 0.8, 0.4])
    q = scaling.difficulty_quintiles(rates)
    assert q[0] == q[6] == 0
    assert q[1] == 1 and q[2] == 5
    assert sorted(np.bincount(q)[1:].tolist()) == [1, 2, 2, 2, 2]
    for a in range(len(rates)):
        for b in range(len(rates)):
            if q[a] and q[b] and q[a] < q[b]:
                assert rates[a] >= rates[b]


def test_gain_by_difficulty_is_measured_against_random_pick():
    cube = random_cube(p=40, seed=5)
    grid = scaling.scaling_grid(cube, [10], [0, 12], resamples=2, protocol="coderm_code")
    gains = scaling.gain_by_difficulty(grid, cube.pass_rates(), n=10)
    assert set(gains.n_tests) == {12} and gains.problems.sum() == 40
    with pytest.raises(ValueError, match="m = 0"):
        scaling.gain_by_difficulty(scaling.scaling_grid(cube, [10], [12], 2), cube.pass_rates(), n=10)


# The paper's Table 2 (HumanEval+): Acc, F1, FAR, FRR as printed.
TABLE2 = [
    (60.02, 44.97, 13.66, 46.13), (73.65, 70.15, 11.10, 34.51), (69.64, 63.63, 11.17, 38.55),
    (74.21, 74.35, 20.44, 30.55), (78.30, 78.76, 17.19, 25.97), (80.46, 81.27, 16.48, 22.71),
]


@pytest.mark.parametrize("acc, f1, far, frr", TABLE2)
def test_paper_table2_accuracy_follows_from_its_f1_far_frr_as_printed(acc, f1, far, frr):
    rates = metrics.confusion_from_paper_rates(f1, far, frr).rates()
    assert rates["accuracy"] == pytest.approx(acc, abs=0.02)
    assert rates["f1"] == pytest.approx(f1, abs=1e-6)
    assert rates["far_paper"] == pytest.approx(far, abs=1e-6) and rates["frr_paper"] == pytest.approx(frr, abs=1e-6)


def test_quality_counts_by_hand():
    passes = np.array([[[1, 1], [0, 1], [0, 0]]], bool)  # solution 0 correct, 1 and 2 wrong
    correct = np.array([[True, False, False]])
    cube = matrix.PassCube(("T",), passes, correct, np.array([3]), np.array([2]))
    single = metrics.individual_test_confusion(cube)
    assert (single.tp, single.fn, single.fp, single.tn) == (2, 0, 1, 3)
    vote = metrics.vote_confusion(cube)
    assert (vote.tp, vote.fp, vote.tn, vote.fn) == (1, 0, 2, 0)
    r = single.rates()
    assert r["far_paper"] == pytest.approx(100 / 3) and r["far_conventional"] == pytest.approx(25.0)
    assert r["frr_conventional"] == 0.0 and r["accuracy"] == pytest.approx(500 / 6)
    zero = matrix.PassCube(("T",), np.zeros((1, 3, 2), bool), correct, np.array([3]), np.array([2]))
    v0 = metrics.vote_confusion(zero)
    assert (v0.tp, v0.fp) == (1, 2)  # all tied at zero → all classified correct
    table = metrics.quality_table(cube)
    assert table.classifier.tolist() == ["individual unit test", "majority vote (2 tests)"]


@pytest.mark.parametrize("protocol", scaling.PROTOCOLS)
@pytest.mark.parametrize("rule", voting.RULES)
def test_grid_cells_match_the_plain_rule_on_the_same_draws(protocol, rule):
    """Recompute a cell's per-problem accuracies by explicitly forming each drawn sub-matrix."""
    cube = random_cube(p=6, n=8, m=70, seed=11)  # m > 52: the randomised keys
    n, m, r_count = 5, 60, 3
    fast = scaling.cell_accuracy(cube, n, m, r_count, protocol, seed=4, rule=rule)
    mult = scaling.tests_drawn(cube, m, r_count, protocol, seed=4)
    sol = scaling.solution_draw(cube, n, r_count, protocol, seed=4)
    if sol is None:  # the authors' code: the first n
        sol = np.broadcast_to(np.arange(n), (6, r_count, n))
    for p in range(6):
        for r in range(r_count):
            tests = np.repeat(np.arange(70), mult[p, r].astype(int))
            sub = cube.passes[p][np.ix_(sol[p, r], tests)]
            expected = voting.reference_vote_accuracy(sub, cube.correct[p, sol[p, r]], rule)
            assert fast[r, p] == pytest.approx(expected)


def test_grid_does_not_depend_on_the_number_of_workers():
    cube = random_cube(p=10, n=8, m=9, seed=2)
    one = scaling.scaling_grid(cube, [1, 4, 8], [0, 3, 9], 5, protocol="bootstrap", seed=3, workers=1)
    two = scaling.scaling_grid(cube, [1, 4, 8], [0, 3, 9], 5, protocol="bootstrap", seed=3, workers=2)
    np.testing.assert_array_equal(one.accuracy, two.accuracy)


def test_subsample_draws_without_replacement_pairs_m_and_makes_random_pick_exact():
    cube = random_cube(p=12, n=10, m=8, seed=5)
    draw = scaling.solution_draw(cube, 4, 50, "subsample", seed=9)
    assert draw.shape == (12, 50, 4)
    assert all(len(set(row)) == 4 for row in draw.reshape(-1, 4))  # no solution twice in one draw
    assert draw.min() >= 0 and draw.max() < 10
    grid = scaling.scaling_grid(cube, [1, 2, 5, 10], [0, 3, 8], resamples=40, protocol="subsample", seed=9)
    per_problem = grid.per_problem()
    # m = 0: the expected accuracy of a uniform pick is the pass rate, for every n, with no noise
    for i in range(4):
        np.testing.assert_allclose(per_problem[i, 0], cube.pass_rates())
    # the authors' first-n rule instead depends on which solutions come first
    first_n = scaling.scaling_grid(cube, [1, 2], [0], resamples=2, protocol="coderm_code").per_problem()
    assert not np.allclose(first_n[0, 0], first_n[1, 0])
    # with all tests (m = M) only the solution draw varies, and it is the one used at every other m
    full = scaling.cell_accuracy(cube, 5, 8, 40, "subsample", seed=9)
    np.testing.assert_allclose(full, grid.accuracy[2, 2])


def test_a_subsample_of_every_solution_is_the_full_matrix_vote():
    cube = random_cube(p=7, n=6, m=5, seed=8)
    grid = scaling.scaling_grid(cube, [6], [5], resamples=3, protocol="subsample", seed=1)
    exact = [voting.reference_vote_accuracy(cube.passes[p], cube.correct[p]) for p in range(7)]
    for r in range(3):
        np.testing.assert_allclose(grid.accuracy[0, 0, r], exact)


def test_the_notebook_views_of_a_cube_pick_a_mixed_problem_and_mark_correct_solutions():
    passes = np.zeros((2, 3, 2), bool)
    passes[1, 0] = True
    correct = np.array([[True, True, True], [True, False, False]])  # problem 0 all correct, 1 mixed
    cube = matrix.PassCube(("T/0", "T/1"), passes, correct, np.array([3, 3]), np.array([2, 2]))
    assert matrix.most_informative_problem(cube) == 1
    frame = matrix.problem_matrix(cube, 1)
    assert frame.index.tolist() == ["0 ✓", "1 ✗", "2 ✗"] and frame.to_numpy().tolist() == [[1, 1], [0, 0], [0, 0]]
    summary = matrix.problem_summary(cube).set_index("task_id")
    assert summary.loc["T/1", "pass_rate"] == pytest.approx(1 / 3) and summary.loc["T/1", "tests_passed"] == pytest.approx(1 / 3)


def test_pass_at_n_is_the_chance_that_a_draw_holds_a_correct_solution():
    """Against every subset of a problem's solutions, enumerated; pass@1 is the pass rate, pass@N the
    any-correct indicator, and a problem with fewer solutions than n uses all of them."""
    import itertools

    correct = np.array([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=bool)
    n_solutions = np.array([5, 5, 3])
    cube = matrix.PassCube(task_ids=["A", "B", "C"], passes=np.zeros((3, 5, 1), dtype=bool), correct=correct,
                           n_solutions=n_solutions, n_tests=np.array([1, 1, 1]))
    for n in (1, 2, 3, 5):
        got = scaling.pass_at(cube, n)
        for p in range(3):
            real = correct[p, :n_solutions[p]]
            k = min(n, n_solutions[p])
            draws = [any(real[list(c)]) for c in itertools.combinations(range(n_solutions[p]), k)]
            assert got[p] == pytest.approx(np.mean(draws)), (n, p)
    assert scaling.pass_at(cube, 1) == pytest.approx(cube.pass_rates())
    table = scaling.oracle_summary(cube, [1, 5], seed=0).set_index(["n_solutions", "bound"])
    assert table.loc[(5, "pass@N (any correct)"), "accuracy"] == pytest.approx(100 * 2 / 3)
    assert table.loc[(5, "pass@1 (random pick)"), "accuracy"] == pytest.approx(100 * (0.4 + 0 + 1) / 3)


def test_rule_curves_put_every_rule_on_the_same_draws():
    """Each rule's curve is its own scaling grid at one n, on the same seeded draws: where the rules
    agree (one test, so every rule keeps the solutions that pass it) the curves coincide, and with no
    tests every rule is the random pick."""
    rng = np.random.default_rng(3)
    passes = rng.random((6, 5, 4)) < 0.5
    correct = rng.random((6, 5)) < 0.5
    cube = matrix.PassCube(task_ids=[f"T/{i}" for i in range(6)], passes=passes, correct=correct,
                           n_solutions=np.full(6, 5), n_tests=np.full(6, 4))
    curves = scaling.rule_curves(cube, 4, [0, 1, 4], 20, seed=7, rules=("coderm", "max_pass"))
    assert sorted(curves.rule.unique()) == ["coderm", "max_pass"]
    by = curves.set_index(["rule", "n_tests"]).accuracy
    assert by[("coderm", 0)] == by[("max_pass", 0)] == pytest.approx(100 * cube.pass_rates().mean())
    assert by[("coderm", 1)] == pytest.approx(by[("max_pass", 1)])
    alone = scaling.scaling_grid(cube, [4], [0, 1, 4], 20, seed=7, rule="max_pass").summary()
    assert alone.accuracy.tolist() == pytest.approx(curves[curves.rule == "max_pass"].accuracy.tolist())


def test_gain_distribution_counts_problems_up_down_and_level_and_who_carries_the_gain():
    # 6 problems, random pick 0.2 each; with 4 tests: +0.8, +0.1, +0.1, 0, -0.2, -0.1 (as fractions)
    with_tests = np.array([1.0, 0.3, 0.3, 0.2, 0.0, 0.1])
    accuracy = np.empty((1, 2, 3, 6))  # [n, m, resample, problem]
    accuracy[0, 0] = 0.2
    accuracy[0, 1] = with_tests
    grid = scaling.ScalingGrid((5,), (0, 4), "subsample", "coderm", accuracy, tuple(f"T/{i}" for i in range(6)))
    row = scaling.gain_distribution(grid).iloc[0]
    assert (row.gained, row.lost, row.level, row.problems) == (3, 2, 1, 6)
    assert row.points_gained == pytest.approx(100.0) and row.points_lost == pytest.approx(-30.0)
    assert row.half_of_gains_from == 1  # +80 of the +100 points gained come from one problem
    assert row["median"] == pytest.approx(5.0)


def test_monte_carlo_error_is_zero_for_identical_draws_and_the_spread_of_draw_means_otherwise():
    same = np.tile([0.1, 0.5, 0.9], (4, 1))
    assert scaling.monte_carlo_se(same) == 0.0
    assert scaling.monte_carlo_se(same[:1]) == 0.0  # one draw: nothing to estimate it from
    varied = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # draw means 0, 1, .5, .5
    assert scaling.monte_carlo_se(varied) == pytest.approx(np.std([0, 1, 0.5, 0.5], ddof=1) / 2)


def test_test_funnel_counts_validity_and_correctness_by_hand():
    """Problem A: solutions 0 and 1 correct, 2 wrong; tests 0 (perfect), 1 (rejects correct solution 1),
    2 (correct but accepts the wrong one), 3 (not extracted). Problem B: no correct solution, one test run."""
    unit_tests = pd.DataFrame({"task_id": ["A"] * 4 + ["B"], "test_id": [0, 1, 2, 3, 0],
                               "extract_status": ["ok", "ok", "ok", "syntax_error", "ok"]})
    labels = pd.DataFrame({"task_id": ["A"] * 3 + ["B"], "solution_id": [0, 1, 2, 0], "correct": [True, True, False, False]})
    passed = {0: [True, True, False], 1: [True, False, False], 2: [True, True, True]}
    executions = pd.DataFrame([{"task_id": "A", "solution_id": s, "test_id": t, "passed": passed[t][s]}
                               for t in passed for s in range(3)]
                              + [{"task_id": "B", "solution_id": 0, "test_id": 0, "passed": False}])
    funnel = metrics.test_funnel(unit_tests, executions, labels).set_index("stage")
    assert funnel.tests.tolist() == [5, 4, 4, 3, 2, 3, 1, 1]
    assert funnel.loc["valid (a test could be extracted)", "percent"] == pytest.approx(80.0)
    assert funnel.loc["correct (accepts every correct solution)", "percent"] == pytest.approx(200 / 3)
    assert funnel.loc["discriminating (correct, rejects a wrong solution)", "percent"] == pytest.approx(100 / 3)
    assert funnel.loc["run, on problems with a correct solution", "problems"] == 1
