"""Claim verdict rules on matrices where the answer is known by construction."""

from __future__ import annotations

import numpy as np

from utscale import claims, matrix, scaling


def cube_where_tests_help(p=60, n=8, m=12, seed=0, noise=0.1) -> matrix.PassCube:
    rng = np.random.default_rng(seed)
    skill = np.linspace(0.05, 0.95, p)
    correct = rng.random((p, n)) < skill[:, None]
    correct[:, 0] = True  # every problem solvable
    passes = np.where(correct[:, :, None], rng.random((p, n, m)) > noise, rng.random((p, n, m)) < noise)
    return matrix.PassCube(tuple(f"T/{i}" for i in range(p)), passes, correct, np.full(p, n), np.full(p, m))


def cube_where_tests_are_noise(p=60, n=8, m=12, seed=1) -> matrix.PassCube:
    rng = np.random.default_rng(seed)
    correct = rng.random((p, n)) < 0.5
    passes = rng.random((p, n, m)) < 0.5  # unrelated to correctness
    return matrix.PassCube(tuple(f"T/{i}" for i in range(p)), passes, correct, np.full(p, n), np.full(p, m))


def grid_of(cube, resamples=40):
    return scaling.scaling_grid(cube, [1, 8], [0, 1, 12], resamples, protocol="bootstrap", seed=3)


def test_informative_tests_support_claims_5_8_and_9():
    cube = cube_where_tests_help()
    grid = grid_of(cube)
    assert claims.claim_5_more_tests_better_reward(grid).verdict == claims.SUPPORTED
    assert claims.claim_8_voting_is_best_of_n(grid).verdict == claims.SUPPORTED
    verdict = claims.claim_9_selected_pass_most(cube)
    assert verdict.verdict == claims.SUPPORTED and "60 problems" in verdict.evidence


def test_noise_tests_do_not_support_claim_5():
    grid = grid_of(cube_where_tests_are_noise())
    assert claims.claim_5_more_tests_better_reward(grid).verdict in (claims.INCONCLUSIVE, claims.NOT_SUPPORTED)
    assert claims.claim_8_voting_is_best_of_n(grid).verdict in (claims.INCONCLUSIVE, claims.NOT_SUPPORTED)


def test_claim_6_easy_problems_cannot_gain_much():
    cube = cube_where_tests_help()
    grid = grid_of(cube)
    quintiles = scaling.difficulty_quintiles(cube.pass_rates())
    assert claims.claim_6_harder_problems_gain_more(grid, quintiles).verdict == claims.SUPPORTED
    few = cube_where_tests_help(p=12)
    small = claims.claim_6_harder_problems_gain_more(grid_of(few), scaling.difficulty_quintiles(few.pass_rates()))
    assert small.verdict == claims.INCONCLUSIVE


def test_interval_rule_and_missing_baseline():
    assert claims.interval_verdict(np.array([1.0, 2.0, 3.0]), "x", "d", 3).verdict == claims.SUPPORTED
    assert claims.interval_verdict(np.array([-1.0, -2.0]), "x", "d", 3).verdict == claims.NOT_SUPPORTED
    v = claims.interval_verdict(np.array([-1.0, 2.0]), "x", "d", 3)
    assert v.verdict == claims.INCONCLUSIVE and "includes zero" in v.line()
    no_zero = scaling.scaling_grid(cube_where_tests_help(), [8], [1, 12], 3)
    assert claims.claim_8_voting_is_best_of_n(no_zero).verdict == claims.NOT_TESTABLE


def test_table1_claims_need_the_papers_models(results_root):
    from utscale import runs

    run = runs.open_run("ci")
    draws = np.array([17.0, 18.0, 19.5, 20.0])
    gain = (18.6, draws)
    v = claims.table1_claim("1", run.config, gain)
    assert v.verdict == claims.NOT_TESTABLE and "llama3-8b-instruct" in v.reason
    paper = {**run.config, "BENCHMARK": "humaneval_plus", "POLICY_MODEL": "llama3-8b-instruct", "TEST_MODEL": "coderm-8b"}
    assert claims.table1_claim("1", paper, gain).verdict == claims.SUPPORTED
    assert claims.table1_claim("1", paper, (3.6, draws - 15)).verdict == claims.NOT_SUPPORTED


def test_ledger_lists_every_claim_and_reads_saved_verdicts(results_root):
    from utscale import runs

    run = runs.open_run("ci")
    claims.save_verdicts(run, "05", [claims.Verdict("5", claims.SUPPORTED, "e5")])
    table = claims.ledger(run, (1.5, np.array([1.0, 2.0])))
    assert table.claim.tolist() == [str(i) for i in range(1, 10)] + ["R1"]
    by = table.set_index("claim")
    assert by.loc["5", "verdict"] == claims.SUPPORTED and by.loc["5", "evidence"] == "e5"
    assert by.loc["7", "verdict"] == claims.NOT_TESTABLE and by.loc["4", "reason"] == "run the whole pipeline"


def test_every_claim_figure_is_saved_by_a_notebook():
    import json
    import re

    from utscale.paths import notebooks_dir

    saved = set()
    for path in notebooks_dir().glob("*.ipynb"):
        source = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        saved |= set(re.findall(r'save_figure\(fig, run, "([a-z_]+)"', source))
    named = {f for f in claims.CLAIM_FIGURE.values() if f}
    assert named and named <= saved, named - saved
    assert set(claims.CLAIM_FIGURE) == set(claims.CLAIM_TEXT) == set(claims.CLAIM_PAPER)


def test_ledger_html_and_text_carry_every_verdict_and_escape_model_text(results_root):
    from utscale import runs

    run = runs.open_run("ci")
    claims.save_verdicts(run, "05", [claims.Verdict("5", claims.SUPPORTED, "gain 3.1 [1.2, 5.0] <b>x</b>"),
                                     claims.Verdict("6", claims.NOT_SUPPORTED, "e6", "too few problems")])
    table = claims.ledger(run, (1.5, np.array([1.0, 2.0])))
    page = claims.ledger_html(table)
    assert page.count("<tr data-claim=") == len(claims.CLAIM_TEXT)
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert claims.VERDICT_COLOURS[claims.NOT_SUPPORTED] in page and "too few problems" in page
    text = claims.ledger_text(table)
    assert "[5] SUPPORTED" in text and "gain 3.1 [1.2, 5.0]" in text and "reason: too few problems" in text
    bundle = claims.ledger_bundle(table)
    assert bundle == {"text/html": page, "text/plain": text}


def test_intervals_include_the_sampling_of_problems():
    """At the full N and M every resample sees the same matrices, so an interval over resamples alone
    has zero width; the problem bootstrap gives it the width that a 12-problem benchmark deserves."""
    cube = cube_where_tests_help(p=12, n=8, m=12)
    grid = scaling.scaling_grid(cube, [8], [0, 12], 200, protocol="bootstrap", seed=3)
    full = claims.per_problem(grid, 8, 12)
    estimate, draws = claims.voting_gain(grid, 8, 12, seed=5)
    assert estimate == np.nanmean(full - claims.per_problem(grid, 8, 0))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    assert lo < estimate < hi and hi - lo > 5  # points: 12 problems cannot pin a gain to a point
    # the draw is seeded and shared by the cells of a difference (paired)
    assert np.array_equal(claims.voting_gain(grid, 8, 12, seed=5)[1], draws)
    paired = claims.benchmark_accuracy(grid, 8, 12, seed=5) - claims.benchmark_accuracy(grid, 8, 0, seed=5)
    assert np.allclose(paired, draws)  # same seed, same problems
    # more problems, narrower interval
    big = cube_where_tests_help(p=240, n=8, m=12)
    big_grid = scaling.scaling_grid(big, [8], [0, 12], 200, protocol="bootstrap", seed=3)
    big_lo, big_hi = np.percentile(claims.voting_gain(big_grid, 8, 12, seed=5)[1], [2.5, 97.5])
    assert big_hi - big_lo < (hi - lo) / 2
    verdict = claims.claim_8_voting_is_best_of_n(grid, seed=5)
    assert f"{estimate:+.2f} points" in verdict.evidence
