"""Rerankers on full matrices, against CodeT's released ranking stated plainly; the pass cube built
vectorised from tables; the R1 reference rule reaching each of its verdicts."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from utscale import claims, matrix, rerankers, voting


def released_codet_accuracy(solutions: list[str], correct: dict[str, bool], passed: dict[str, set[str]],
                            case_counts: Counter) -> float:
    """CodeT's released agreement.py + evaluation.py for one task, top-1, restated over strings: solutions
    (with duplicates), each unique solution's set of passed cases, each case's sampled count."""
    frequency = Counter(solutions)
    groups: dict[tuple, list[str]] = {}
    for sol in frequency:
        if not passed.get(sol):
            continue  # a solution passing no case is not ranked at all
        case_ids = tuple(sorted(f"{case}#{k}" for case in passed[sol] for k in range(case_counts[case])))
        groups.setdefault(case_ids, []).extend([sol] * frequency[sol])
    if not groups:
        return sum(correct[s] for s in solutions) / len(solutions)
    scored = sorted(((members, math.sqrt(len(members)) * len(cases)) for cases, members in groups.items()),
                    key=lambda x: x[1], reverse=True)
    best = [m for members, score in scored if score == scored[0][1] for m in members]
    return sum(correct[s] for s in best) / len(best)


def random_problem(rng, n=12, m=7):
    distinct = [f"s{i}" for i in range(rng.integers(2, 6))]
    solutions = [distinct[k] for k in rng.integers(0, len(distinct), n)]
    correct = {s: bool(rng.random() < 0.4) for s in distinct}
    cases = [f"c{j}" for j in range(m)]
    counts = Counter({c: int(rng.integers(1, 4)) for c in cases})
    passed = {s: {c for c in cases if rng.random() < (0.7 if correct[s] else 0.3)} for s in distinct}
    return solutions, correct, passed, cases, counts


@pytest.mark.parametrize("seed", range(40))
def test_codet_released_on_the_cube_equals_codets_released_ranking(seed):
    rng = np.random.default_rng(seed)
    solutions, correct, passed, cases, counts = random_problem(rng)
    passes = np.array([[c in passed[s] for c in cases] for s in solutions])[None]
    cube = matrix.PassCube(("T",), passes, np.array([[correct[s] for s in solutions]]), np.array([len(solutions)]),
                           np.array([len(cases)]), np.array([[counts[c] for c in cases]], dtype=float))
    ours = rerankers.full_pick_accuracy(cube, "codet_released", weighted=True)[0]
    assert ours == pytest.approx(released_codet_accuracy(solutions, correct, passed, counts))
    plain = voting.reference_vote_accuracy(passes[0], cube.correct[0], "codet_released", cube.weights[0])
    assert ours == pytest.approx(plain)


def test_padding_solutions_are_never_picked_and_weights_matter():
    # problem 0 has 2 real solutions of 3 rows; the padding row would pass nothing
    passes = np.array([[[1, 0], [0, 1], [0, 0]]], dtype=bool)
    correct = np.array([[False, True, False]])
    heavy_second = matrix.PassCube(("T",), passes, correct, np.array([2]), np.array([2]), np.array([[1.0, 3.0]]))
    assert rerankers.full_pick_accuracy(heavy_second, "codet_released", True)[0] == 1.0
    assert rerankers.full_pick_accuracy(heavy_second, "codet_released", False)[0] == 0.5  # unweighted: a tie
    none_pass = matrix.PassCube(("T",), np.zeros((1, 3, 2), bool), correct, np.array([2]), np.array([2]))
    for rule in voting.RULES:  # nothing passes: every rule is the random pick over the 2 real solutions
        assert rerankers.full_pick_accuracy(none_pass, rule, True)[0] == 0.5


def test_reranker_table_rows_and_random_pick():
    rng = np.random.default_rng(3)
    passes = rng.random((30, 10, 6)) < 0.5
    correct = rng.random((30, 10)) < 0.3
    cube = matrix.PassCube(tuple(f"T/{i}" for i in range(30)), passes, correct, np.full(30, 10), np.full(30, 6))
    table = rerankers.reranker_table({"unit_test": cube}, seed=0)
    assert table.rule.tolist()[0] == "random"
    assert table.accuracy.iloc[0] == pytest.approx(correct.mean() * 100)
    ran = table[table.accuracy.notna()]
    assert set(ran.granularity) == {"none", "unit_test"}
    assert set(table[table.accuracy.isna()].rule) == {"srank", "mbr_exec"}  # they need outputs
    assert (ran.ci_low <= ran.accuracy).all() and (ran.accuracy <= ran.ci_high).all()


def test_pass_cube_from_tables_orders_naturally_pads_and_weights():
    labels = pd.DataFrame({"task_id": ["T/10", "T/2", "T/2", "T/10"], "solution_id": [0, 1, 0, 1],
                           "correct": [True, False, True, False]})
    executions = pd.DataFrame({"task_id": ["T/2", "T/2", "T/10", "T/2"], "solution_id": [0, 1, 1, 0],
                               "assertion_id": [5, 5, 0, 7], "passed": [True, True, True, False]})
    weights = pd.DataFrame({"task_id": ["T/2", "T/2", "T/10"], "assertion_id": [5, 7, 0], "multiplicity": [2, 1, 4]})
    cube = matrix.PassCube.from_tables(executions, labels, weights=weights, test_key="assertion_id")
    assert cube.task_ids == ("T/2", "T/10")
    assert cube.passes.shape == (2, 2, 2)
    assert cube.passes[0].tolist() == [[True, False], [True, False]]  # T/2: columns are assertions 5, 7
    assert cube.passes[1].tolist() == [[False, False], [True, False]]  # T/10: one assertion, one padding column
    assert cube.correct.tolist() == [[True, False], [True, False]]
    assert cube.weights.tolist() == [[2.0, 1.0], [4.0, 0.0]]
    assert cube.n_tests.tolist() == [2, 1]
    padded = matrix.PassCube.from_tables(executions.rename(columns={"assertion_id": "test_id"}), labels, n_tests_nominal=5)
    assert padded.passes.shape == (2, 2, 5) and padded.weights.tolist()[0] == [1.0] * 5


R1_CONFIG = {"REPLAY_FORMAT": "codet", "POLICY_MODEL": "codegen-16b-mono", "BENCHMARK": "humaneval", "LIMIT": 0,
             "N_SOLUTIONS": 100, "N_UNIT_TESTS": 100}


def reranked(codet_accuracy: float, random_accuracy: float) -> pd.DataFrame:
    return pd.DataFrame([{"rule": "random", "granularity": "none", "accuracy": random_accuracy, "ci_low": 18.0, "ci_high": 26.0},
                         {"rule": "codet_released", "granularity": "assertion", "accuracy": codet_accuracy,
                          "ci_low": 30.0, "ci_high": 44.0}])


def test_reference_rule_reaches_each_of_its_verdicts():
    assert claims.reference_codet(reranked(36.9, 22.2), R1_CONFIG).verdict == claims.REPRODUCED
    far = claims.reference_codet(reranked(38.0, 22.2), R1_CONFIG)
    assert far.verdict == claims.NOT_REPRODUCED and "the ranking differs by 1.25" in far.reason
    base = claims.reference_codet(reranked(36.75, 23.0), R1_CONFIG)
    assert base.verdict == claims.NOT_REPRODUCED and "random pick" in base.reason
    for key, value in (("LIMIT", 12), ("N_SOLUTIONS", 20), ("POLICY_MODEL", "qwen"), ("REPLAY_FORMAT", "utscale")):
        assert claims.reference_codet(reranked(36.75, 22.12), {**R1_CONFIG, key: value}).verdict == claims.NOT_TESTABLE
    # a table without the assertion granularity (a non-CodeT run) cannot be judged
    assert claims.reference_codet(reranked(36.75, 22.12).iloc[:1], R1_CONFIG).verdict == claims.NOT_TESTABLE


def b4_restated(rows: list[tuple[int, ...]], beta_0: float, alpha_xy: float = 1e3) -> set[int]:
    """B4's choice restated in plain Python (its strategy.py: one hypothesis per distinct row, log posterior
    = log B(|y| + a, m - |y| + 1) + log B(|x| + a, n - |x| + 1) + log B(ones in E1 + 1, zeros in E1 + 1)
    + log B(ones in E0 + 1, zeros in E0 + beta_0), E1/E0: the other rows on the tests y passes / fails);
    ties between hypotheses merged."""
    def log_beta(a: float, b: float) -> float:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    n, m = len(rows), len(rows[0])
    scores = {}
    for pattern in set(rows):
        x = [i for i, r in enumerate(rows) if r == pattern]
        e1 = [rows[i][j] for i in range(n) if i not in x for j in range(m) if pattern[j]]
        e0 = [rows[i][j] for i in range(n) if i not in x for j in range(m) if not pattern[j]]
        scores[pattern] = (log_beta(sum(pattern) + alpha_xy, m - sum(pattern) + 1) + log_beta(len(x) + alpha_xy, n - len(x) + 1)
                           + log_beta(sum(e1) + 1, len(e1) - sum(e1) + 1) + log_beta(sum(e0) + 1, len(e0) - sum(e0) + beta_0))
    top = max(scores.values())
    return {i for i, r in enumerate(rows) if abs(scores[r] - top) <= 1e-9}


@pytest.mark.parametrize("seed", range(30))
def test_b4_keeps_what_its_posterior_restated_keeps(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 10)), int(rng.integers(1, 8))
    passes = rng.random((n, m)) < rng.random()
    for beta_0 in rerankers.B4_BETA_0:
        kept = set(np.flatnonzero(rerankers.b4_kept(passes, beta_0)).tolist())
        assert kept == b4_restated([tuple(int(v) for v in row) for row in passes], beta_0)


def test_b4_and_codet_part_where_b4s_prior_decides():
    """Two solutions pass all four tests, four fail test 1 (an edge case they miss), five pass test 1 only.
    CodeT's |S|·|T| keeps the four (4·3 > 2·4 > 5·1); B4 keeps the two: its prior lets wrong solutions pass
    correct tests but makes them unlikely to pass wrong ones (beta_0), and every other hypothesis needs
    wrong tests that wrong solutions pass."""
    passes = np.array([[1, 1, 1, 1]] * 2 + [[1, 0, 1, 1]] * 4 + [[0, 1, 0, 0]] * 5, dtype=bool)
    correct = np.array([True] * 2 + [False] * 9)
    cube = matrix.PassCube(("T",), passes[None], correct[None], np.array([11]), np.array([4]))
    assert rerankers.full_pick_accuracy(cube, "codet", False)[0] == 0.0
    for beta_0 in rerankers.B4_BETA_0:
        assert np.flatnonzero(rerankers.b4_kept(passes, beta_0)).tolist() == [0, 1]
        assert rerankers.b4_accuracy(cube, beta_0)[0] == 1.0
    table = rerankers.reranker_table({"unit_test": cube})
    assert {f"b4_beta0_{b:.0e}" for b in rerankers.B4_BETA_0} <= set(table.rule)


def test_mbr_exec_keeps_the_largest_group_of_identical_pass_patterns_where_voting_keeps_the_most_passes():
    """Three solutions agree (pass test 0 only), one passes everything: MBR-exec's 0/1 agreement keeps the
    three, CodeRM's most-tests-passed keeps the one."""
    passes = np.array([[1, 0, 0]] * 3 + [[1, 1, 1]], dtype=bool)
    correct = np.array([True, True, True, False])
    cube = matrix.PassCube(("T",), passes[None], correct[None], np.array([4]), np.array([3]))
    assert rerankers.mbr_exec_pattern_kept(passes).tolist() == [True, True, True, False]
    assert rerankers.per_problem_accuracy(cube, rerankers.mbr_exec_pattern_kept)[0] == 1.0
    assert rerankers.full_pick_accuracy(cube, "coderm", False)[0] == 0.0
    tied = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]], dtype=bool)  # two groups of two: both kept
    assert rerankers.mbr_exec_pattern_kept(tied).tolist() == [True, True, True, True, False]


def test_dawid_skene_trusts_the_tests_that_agree_and_is_fooled_by_tests_that_err_together():
    """Independent annotators: a solution every test passes is the one kept. Tests that err together
    (six wrong tests that six alike wrong solutions pass) outvote two right ones: no rule that sees only
    the pass matrix can tell that case from its mirror image, and it is the case generated tests make
    common, which is why a model of independent annotators is the negative control."""
    clear = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=bool)
    assert rerankers.dawid_skene_kept(clear).tolist() == [True, False, False, False]
    right = [[1, 1] + [0] * 6] * 2
    wrong = [[0, 0] + [1] * 6] * 6
    fooled = np.array(right + wrong, dtype=bool)
    assert np.flatnonzero(rerankers.dawid_skene_kept(fooled)).tolist() == list(range(2, 8))
    assert rerankers.dawid_skene_kept(np.zeros((3, 0), dtype=bool)).all()  # no tests: every solution


def test_the_table_reports_every_reranker_with_paired_differences():
    rng = np.random.default_rng(5)
    passes = rng.random((30, 10, 6)) < 0.5
    correct = rng.random((30, 10)) < 0.3
    cube = matrix.PassCube(tuple(f"T/{i}" for i in range(30)), passes, correct, np.full(30, 10), np.full(30, 6))
    table = rerankers.reranker_table({"unit_test": cube, "assertion": cube}, seed=0).set_index(["rule", "granularity"])
    assert {r.name for r in rerankers.RERANKERS} | {"random"} == set(table.index.get_level_values("rule"))
    for rule in ("srank", "mbr_exec"):  # no outputs recorded: in the table, with no number and the reason
        row = table.loc[(rule, "outputs")]
        assert math.isnan(row.accuracy) and "not run" in row.note
    table = table[table.accuracy.notna()]
    random_accuracy = table.loc[("random", "none"), "accuracy"]
    for (_, granularity), row in table.iterrows():
        assert row.minus_random == pytest.approx(row.accuracy - random_accuracy)
        assert row.minus_random_low <= row.minus_random <= row.minus_random_high
        if granularity != "none":
            codet = table.loc[("codet_released", granularity), "accuracy"]
            assert row.minus_codet_released == pytest.approx(row.accuracy - codet)
    same = table.loc[("codet_released", "unit_test")]
    assert same.minus_codet_released == same.minus_codet_released_low == same.minus_codet_released_high == 0
    assert math.isnan(table.loc[("random", "none"), "minus_codet_released"])  # no CodeT at no granularity


def test_reranker_curves_meet_the_table_at_full_size_and_use_real_solutions_and_tests_only():
    rng = np.random.default_rng(11)
    p, n, m = 25, 9, 7
    n_solutions = rng.integers(5, n + 1, p)  # ragged: padding rows must never be drawn
    passes = rng.random((p, n, m)) < 0.5
    passes[np.arange(n)[None, :] >= n_solutions[:, None]] = True  # padding that would win every vote
    correct = (rng.random((p, n)) < 0.4) & (np.arange(n)[None, :] < n_solutions[:, None])
    weights = np.ones((p, m))
    weights[:, 5:] = 0  # the last two columns are padding of an assertion cube (no one passes them)
    passes[:, :, 5:] = False
    cube = matrix.PassCube(tuple(f"T/{i}" for i in range(p)), passes, correct, n_solutions, np.full(p, 5), weights)
    curves = rerankers.reranker_curves({"assertion": cube}, [2, n], [1, 5], resamples=4, seed=0)
    table = rerankers.reranker_table({"assertion": cube}, seed=0).set_index(["rule", "granularity"])
    full = curves[(curves.axis == "n") & (curves.n == n)].set_index("rule")
    for rule in ("codet_released", "coderm", "b4_beta0_1e+04", "dawid_skene"):
        assert full.loc[rule, "accuracy"] == pytest.approx(table.loc[(rule, "assertion"), "accuracy"])
        assert full.loc[rule, "mc_se"] == 0  # one draw takes everything
    # a draw of 2 solutions among real ones only: the random pick's mean is the real pass rate
    random = curves[(curves.rule == "random") & (curves.axis == "n") & (curves.n == 2)].iloc[0]
    assert random.accuracy == pytest.approx(table.loc[("random", "none"), "accuracy"], abs=6)
    drawn = rerankers._draw(cube, 2, 1, np.random.default_rng(0))
    assert drawn.passes.shape == (p, 2, 1) and (drawn.weights > 0).all()  # padding columns never drawn
    assert not drawn.passes.all()  # padding rows (all passing) were not drawn
