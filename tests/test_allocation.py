"""Greedy allocation against brute force, and the verifier-aware gains."""

from __future__ import annotations

import numpy as np
import pytest
from utscale import allocation


@pytest.mark.parametrize("seed", range(12))
def test_greedy_matches_brute_force_on_small_cases(seed):
    rng = np.random.default_rng(seed)
    p, cap = int(rng.integers(2, 4)), int(rng.integers(2, 5))
    lam = rng.random(p)
    gains = allocation.paper_marginal_gains(lam, cap)
    for total in range(0, p * cap + 1):
        counts = allocation.allocate(gains, total)
        value = sum(gains[i, :c].sum() for i, c in enumerate(counts))
        best, _ = allocation.brute_force(gains, total)
        assert counts.sum() == total and value == pytest.approx(best)


def test_paper_rule_behaviour():
    # the first unit goes to the highest pass rate (gain = λ at b = 0); unsolvable problems get nothing
    gains = allocation.paper_marginal_gains(np.array([0.0, 0.3, 0.9]), cap=10)
    assert allocation.allocate(gains, 1).tolist() == [0, 0, 1]
    counts = allocation.allocate(gains, 12)
    assert counts[0] == 0 and counts[1] > counts[2] >= 1  # the mid problem gets most of the budget


def test_floor_cap_and_bad_budget():
    gains = allocation.paper_marginal_gains(np.array([0.5, 0.5]), cap=3)
    assert allocation.allocate(gains, 4, floor=1).tolist() == [2, 2]
    assert allocation.allocate(gains, 99).tolist() == [3, 3]  # capped
    with pytest.raises(ValueError, match="at least 2"):
        allocation.allocate(gains, 3, floor=2)
    assert allocation.equal_allocation(3, 5, cap=4).tolist() == [4, 4, 4]


def test_ties_go_to_the_lower_index():
    gains = allocation.paper_marginal_gains(np.array([0.5, 0.5, 0.5]), cap=2)
    assert allocation.allocate(gains, 1).tolist() == [1, 0, 0]


def test_verifier_gains_are_cross_fitted_and_non_increasing():
    p, cap = 40, 6
    bins = np.repeat([0, 1], p // 2)
    # bin 1 gains a lot from tests, bin 0 nothing
    curves = np.where(bins[:, None] == 1, np.minimum(1, 0.2 + 0.15 * np.arange(cap + 1)), 0.9)
    folds = np.arange(p) % 4
    gains = allocation.verifier_gains(curves, bins, folds)
    assert gains.shape == (p, cap)
    assert np.all(np.diff(gains, axis=1) <= 1e-12)
    assert gains[bins == 1].mean() > 0.1 and np.allclose(gains[bins == 0], 0)
    counts = allocation.allocate(gains, 3 * p)
    assert counts[bins == 1].sum() > counts[bins == 0].sum()
    # a problem whose own curve is extreme does not change its own gains (it is held out)
    altered = curves.copy()
    altered[0] = 1.0
    assert np.allclose(allocation.verifier_gains(altered, bins, folds)[0], gains[0])


def test_allocation_accuracy_reads_each_problems_curve():
    curves = np.zeros((4, 2, 3))  # b = 0..3, 2 resamples, 3 problems
    curves[2, :, 0] = 1.0
    curves[1, :, 1] = 0.5
    acc = allocation.allocation_accuracy(curves, np.array([2, 1, 0]))
    assert acc.tolist() == pytest.approx([50.0, 50.0])


def test_compare_rules_prefers_informed_allocation_when_difficulty_matters():
    rng = np.random.default_rng(1)
    p, cap, r = 60, 8, 20
    lam = np.linspace(0.05, 0.95, p)
    b = np.arange(cap + 1)[:, None, None]
    # a problem's accuracy with b tests approaches 1 at a speed set by its pass rate; easy ones start high
    curves = np.broadcast_to(1 - (1 - lam[None, None, :]) * np.exp(-b * (1 - lam[None, None, :])), (cap + 1, r, p))
    curves = np.clip(curves + rng.normal(scale=0.01, size=(cap + 1, r, p)), 0, 1)
    table, allocations = allocation.compare_rules(curves, lam, lam, budgets=[1, 2, 4])
    assert set(table.rule) == set(allocation.RULES) and len(table) == 12
    assert (table.tests_used <= 60 * 4).all()
    # here the hard problems gain most per test, which only verifier_aware measures: it must beat equal
    # allocation at every budget below the cap, while the paper's λ(1-λ)^b (largest for λ near ½) does not
    for budget in (1, 2, 4):
        at = table[table.budget == budget].set_index("rule").accuracy
        assert at["verifier_aware"] > at["equal"] + 0.5
        assert at["paper_gold"] < at["equal"]
    assert allocations[("equal", 2)].tolist() == [2] * p


def test_least_concave_majorant_does_not_inflate_a_late_rise():
    np.testing.assert_allclose(allocation.least_concave_majorant(np.array([0.0, 0.0, 0.3])), [0.0, 0.15, 0.3])
    steps = np.diff(allocation.least_concave_majorant(np.array([0.0, 0.0, 0.3])))
    np.testing.assert_allclose(steps, [0.15, 0.15])  # a running maximum gave [0.3, 0.3]: twice the rise
    concave = np.array([0.0, 0.5, 0.7, 0.8])
    np.testing.assert_allclose(allocation.least_concave_majorant(concave), concave)  # already concave: kept
    rng = np.random.default_rng(0)
    for _ in range(50):
        y = np.cumsum(rng.random(9) * (rng.random(9) < 0.5))
        hull = allocation.least_concave_majorant(y)
        assert np.all(hull >= y - 1e-12) and np.all(np.diff(hull, 2) <= 1e-12)
        assert hull[0] == y[0] and hull[-1] == y[-1]


def test_verifier_gains_add_up_to_the_rise_of_the_other_problems_curve():
    curves = np.array([[0.0, 0.0, 0.3]] * 4 + [[0.0, 0.0, 0.3]] * 4)
    gains = allocation.verifier_gains(curves, np.zeros(8, dtype=int), np.arange(8) % 2)
    np.testing.assert_allclose(gains, [[0.15, 0.15]] * 8)
