"""Golden cases computed by hand, and the vectorised rules against their plain-Python statement."""

from __future__ import annotations

import numpy as np
import pytest
from utscale import voting

T, F = True, False


def test_all_zero_matrix_is_vanilla():
    vote = voting.majority_vote(np.zeros((3, 4), bool), [T, F, F])
    assert vote.accuracy == pytest.approx(1 / 3)
    assert vote.selected.tolist() == [0, 1, 2]


def test_full_tie_is_vanilla_for_every_rule():
    for rule in voting.RULES:
        assert voting.majority_vote_accuracy(np.ones((4, 5), bool), [T, F, F, T], rule) == pytest.approx(0.5)


def test_no_tests_is_random_pick():
    assert voting.majority_vote_accuracy(np.zeros((4, 0), bool), [T, T, F, F]) == pytest.approx(0.5)


def test_unique_winner():
    passes = [[1, 0, 0], [1, 1, 1], [0, 1, 0]]
    assert voting.majority_vote(passes, [T, F, T]).selected.tolist() == [1]
    assert voting.majority_vote_accuracy(passes, [T, F, T]) == 0.0


def test_coderm_tie_break_keeps_the_largest_identical_cluster():
    # counts 2, 2, 2, 1: s0 is alone, s1 and s2 pass the same tests → keep s1, s2
    passes = [[1, 1, 0], [1, 0, 1], [1, 0, 1], [0, 0, 1]]
    vote = voting.majority_vote(passes, [T, F, T, F])
    assert vote.selected.tolist() == [1, 2] and vote.accuracy == 0.5
    # max_pass ignores clusters: uniform among s0, s1, s2
    assert voting.majority_vote_accuracy(passes, [T, F, T, F], "max_pass") == pytest.approx(2 / 3)


def test_coderm_equal_clusters_keep_both():
    passes = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [1, 0, 0, 0]]
    vote = voting.majority_vote(passes, [T, T, F, F, T])
    assert vote.selected.tolist() == [0, 1, 2, 3] and vote.accuracy == 0.5


def test_codet_scores_consensus_sets_by_size_times_tests():
    passes = [[1, 1, 1, 0],               # 1 solution × 3 tests = 3
              [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0],  # 3 × 1 = 3
              [1, 1, 0, 0], [1, 1, 0, 0]]  # 2 × 2 = 4 → wins
    vote = voting.majority_vote(passes, [F, F, F, F, T, F], "codet")
    assert vote.selected.tolist() == [4, 5] and vote.accuracy == 0.5
    assert voting.majority_vote(passes, [T, F, F, F, F, F], "coderm").selected.tolist() == [0]


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="passes must be"):
        voting.majority_vote(np.zeros((3, 2), bool), [T, F])
    with pytest.raises(ValueError, match="unknown rule"):
        voting.majority_vote(np.zeros((2, 2), bool), [T, F], "borda")


@pytest.mark.parametrize("m", [1, 7, 64, 65, 100])
@pytest.mark.parametrize("rule", voting.RULES)
def test_vectorised_rules_match_the_plain_statement(m, rule):
    rng = np.random.default_rng(m)
    # few distinct rows so that ties and clusters are common
    for _ in range(30):
        n = int(rng.integers(1, 12))
        base = rng.random((3, m)) < rng.random()
        passes = base[rng.integers(0, 3, n)] ^ (rng.random((n, m)) < 0.02)
        correct = rng.random(n) < 0.5
        expected = voting.reference_vote_accuracy(passes, correct, rule)
        assert voting.majority_vote_accuracy(passes, correct, rule) == pytest.approx(expected)


def test_batch_selection_matches_one_by_one():
    rng = np.random.default_rng(0)
    passes = rng.random((50, 6, 9)) < 0.5
    correct = rng.random((50, 6)) < 0.5
    one_by_one = [voting.majority_vote_accuracy(p, c) for p, c in zip(passes, correct)]
    np.testing.assert_allclose(voting.expected_accuracy(voting.select(passes), correct), one_by_one)


def test_group_sizes_count_only_members():
    keys = np.array([[5.0, 5.0, 7.0, 5.0, 7.0]])
    members = np.array([[True, True, True, False, False]])
    assert voting.group_sizes(keys, members).tolist() == [[2, 2, 1, 0, 0]]


def test_random_key_weights_are_exact_integer_sums():
    w = voting.key_weights(100, np.random.default_rng(1))
    assert len(np.unique(w)) == 100 and w.max() * 100 <= 2**52
    assert voting.key_weights(5).tolist() == [1, 2, 4, 8, 16]


def test_largest_groups_agrees_with_group_sizes_including_tied_groups():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 4, (500, 9)).astype(float)
    members = rng.random((500, 9)) < 0.7
    sizes = voting.group_sizes(keys, members)
    expected = members & (sizes == sizes.max(axis=-1, keepdims=True))
    np.testing.assert_array_equal(voting.largest_groups(keys, members), expected)
    assert (np.sort(sizes, axis=-1)[:, -1] == np.sort(sizes, axis=-1)[:, -2]).any()  # tied rows were exercised


def test_every_named_rule_has_a_selector_and_an_unknown_rule_is_refused():
    from typing import get_args

    assert set(voting.RULES) == set(get_args(voting.Rule))
    with pytest.raises(ValueError, match="unknown rule 'nope'"):
        voting.select_from(np.zeros((1, 2)), np.zeros((1, 2)), "nope")  # type: ignore[arg-type]
