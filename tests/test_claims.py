"""Claim verdict rules on matrices where the answer is known by construction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from utscale import claims, compute, ledger, matrix, questions, report, scaling, significance


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


def grid_of(cube, resamples=40, m_values=(0, 1, 4, 12)):
    return scaling.scaling_grid(cube, [1, 8], list(m_values), resamples, protocol="subsample", seed=3)


def cube_where_tests_mislead(p=60, n=8, m=12, seed=2) -> matrix.PassCube:
    """Tests written against a wrong idea of the task: the wrong solutions pass them, the right fail."""
    cube = cube_where_tests_help(p, n, m, seed)
    return matrix.PassCube(cube.task_ids, ~cube.passes, cube.correct, cube.n_solutions, cube.n_tests)


def test_claim_5_reaches_each_verdict_at_every_n():
    helpful = claims.claim_5_more_tests_better_reward(grid_of(cube_where_tests_help()))
    assert helpful.verdict == claims.SUPPORTED and "headline N=8" in helpful.evidence
    assert "Page trend Holm p" in helpful.evidence and helpful.reason == "at every N from 8 to 8"
    misleading = claims.claim_5_more_tests_better_reward(grid_of(cube_where_tests_mislead()))
    assert misleading.verdict == claims.NOT_SUPPORTED
    noise = claims.claim_5_more_tests_better_reward(grid_of(cube_where_tests_are_noise(p=20)))
    assert noise.verdict == claims.INCONCLUSIVE
    one_m = claims.claim_5_more_tests_better_reward(grid_of(cube_where_tests_help(), m_values=(0, 12)))
    assert one_m.verdict == claims.NOT_TESTABLE
    f1 = pd.DataFrame({"n_tests": [1, 12], "f1": [40.0, 60.0]})
    assert "vote F1 against m: 1: 40.0, 12: 60.0" in claims.claim_5_more_tests_better_reward(
        grid_of(cube_where_tests_help()), vote_f1=f1).evidence


def test_claim_5_is_judged_for_every_reranker_and_each_reaches_its_verdict():
    grids = {"coderm (unit_test)": grid_of(cube_where_tests_help()), "codet (unit_test)": grid_of(cube_where_tests_mislead()),
             "coderm (assertion)": grid_of(cube_where_tests_are_noise(p=20)),
             "one m": grid_of(cube_where_tests_help(), m_values=(0, 12))}
    table = claims.claim_5_by_rule(grids).set_index("reranker")
    assert table.verdict.to_dict() == {"coderm (unit_test)": claims.SUPPORTED, "codet (unit_test)": claims.NOT_SUPPORTED,
                                       "coderm (assertion)": claims.INCONCLUSIVE, "one m": claims.NOT_TESTABLE}
    helpful = table.loc["coderm (unit_test)"]
    assert helpful.ci_low > 0 and helpful.page_p_holm < 0.05 and (helpful.m_low, helpful.m_high) == (1, 12)
    row = claims.claim_5_more_tests_better_reward(grids["coderm (unit_test)"], by_rule=claims.claim_5_by_rule(grids))
    assert "every reranker at N=8: coderm (unit_test) supported (+" in row.evidence
    assert "codet (unit_test) not supported (-" in row.evidence and "m 1→12" in row.evidence


def test_a_per_n_rule_headlines_the_largest_n_and_names_the_others():
    grid = scaling.scaling_grid(cube_where_tests_help(p=40, noise=0.3), [2, 8], [0, 1, 4, 12], 40, seed=3)
    verdict = claims.claim_5_more_tests_better_reward(grid)
    assert "N=2:" in verdict.evidence and "N=8:" in verdict.evidence and "Holm over 2 values of N" in verdict.evidence
    per_n = [claims.AtN(5, -3.0, -5.0, -1.0, 0.01, claims.NOT_SUPPORTED),
             claims.AtN(100, 1.0, -2.0, 4.0, 0.4, claims.INCONCLUSIVE)]
    row = claims.headline(per_n, "5", "a difference", 164)
    assert row.verdict == claims.INCONCLUSIVE and row.reason == "at N=100; other N: not supported"
    assert "at the headline N=100: +1.00 points" in row.evidence and "N=5: -3.00 [-5.00, -1.00]" in row.evidence


def test_holm_and_the_bootstrap_p_value():
    np.testing.assert_allclose(significance.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(significance.holm([0.5]), [0.5])
    assert significance.bootstrap_p(np.array([1.0, 2.0, 3.0, -1.0])) == 0.5
    assert significance.bootstrap_p(np.full(1000, 2.0)) == 0.001  # never below one draw's share
    _, p_up = significance.page_trend_p(np.array([[1.0, 2.0, 1.0, 0.0], [2.0, 3.0, 2.0, 1.0], [3.0, 4.0, 3.0, 2.0]]))
    _, p_down = significance.page_trend_p(np.array([[3.0, 4.0, 3.0, 2.0], [2.0, 3.0, 2.0, 1.0], [1.0, 2.0, 1.0, 0.0]]))
    assert p_up < 0.01 < 0.99 < p_down


def test_concentration_counts_the_problems_that_carry_a_gain():
    assert claims.concentration(np.array([90.0, 5.0, 3.0, 2.0])) == "1 of 4 problems carry half of the summed gain (+100.0 points)"
    assert claims.concentration(np.array([10.0, 10.0, 10.0, 10.0])).startswith("2 of 4")
    assert claims.concentration(np.array([-1.0, 0.0])) == "no positive total gain"


def test_claims_8_and_9_are_statements_of_the_method_checked_as_an_implementation():
    cube = cube_where_tests_help()
    grid = grid_of(cube)
    for verdict in (claims.claim_8_voting_is_best_of_n(grid, cube), claims.claim_9_selected_pass_most(cube)):
        assert verdict.verdict == claims.BY_DEFINITION and "60 of 60 problems" in verdict.evidence
    # even with tests that are pure noise (no gain at all) the statement holds: it is not an empirical claim
    noise = cube_where_tests_are_noise()
    assert claims.claim_8_voting_is_best_of_n(grid_of(noise), noise).verdict == claims.BY_DEFINITION


def test_claims_8_and_9_report_an_implementation_that_departs_from_the_rule(monkeypatch):
    cube = cube_where_tests_help(p=10)
    monkeypatch.setattr(claims, "select", lambda passes, rule="coderm": np.ones(passes.shape[:2], bool))
    for verdict in (claims.claim_9_selected_pass_most(cube), claims.claim_8_voting_is_best_of_n(grid_of(cube), cube)):
        assert verdict.verdict == claims.INCONCLUSIVE and "departs from the rule" in verdict.reason


def test_claim_6_reaches_each_verdict_and_states_groups_and_headroom():
    cube = cube_where_tests_help()
    quintiles = scaling.difficulty_quintiles(cube.pass_rates())
    supported = claims.claim_6_harder_problems_gain_more(grid_of(cube), quintiles)
    assert supported.verdict == claims.SUPPORTED and "headroom" in supported.evidence and "(Q4-5, 24 problems)" in supported.evidence
    assert "problems carry half of the summed gain" in supported.evidence and "N=8:" in supported.evidence
    # tests that only help the easy problems: hard problems' tests are noise
    rng = np.random.default_rng(4)
    passes = cube.passes.copy()
    hard = quintiles >= 4
    passes[hard] = rng.random(passes[hard].shape) < 0.5
    easy_gain = matrix.PassCube(cube.task_ids, passes, cube.correct, cube.n_solutions, cube.n_tests)
    assert claims.claim_6_harder_problems_gain_more(grid_of(easy_gain), quintiles).verdict == claims.NOT_SUPPORTED
    few = cube_where_tests_help(p=12)
    small = claims.claim_6_harder_problems_gain_more(grid_of(few), scaling.difficulty_quintiles(few.pass_rates()))
    assert small.verdict == claims.INCONCLUSIVE and "too small to call" in small.reason
    noise = cube_where_tests_are_noise(p=60)
    assert claims.claim_6_harder_problems_gain_more(
        grid_of(noise), scaling.difficulty_quintiles(noise.pass_rates())).verdict == claims.INCONCLUSIVE
    assert claims.claim_6_harder_problems_gain_more(grid_of(cube, m_values=(1, 12)), quintiles).verdict == claims.NOT_TESTABLE


def test_interval_rule_reaches_each_verdict():
    assert claims.interval_verdict(np.array([1.0, 2.0, 3.0]), "x", "d", 3).verdict == claims.SUPPORTED
    assert claims.interval_verdict(np.array([-1.0, -2.0]), "x", "d", 3).verdict == claims.NOT_SUPPORTED
    v = claims.interval_verdict(np.array([-1.0, 2.0]), "x", "d", 3)
    assert v.verdict == claims.INCONCLUSIVE and "includes zero" in v.line()


def test_consistency_rule_reaches_each_verdict_at_benchmark_size():
    """At 164 problems an interval is 7-8 points wide: the rule must still reach every verdict."""
    inside = claims.consistency_verdict("1", np.linspace(14.0, 22.0, 100), 18.0, 18.43, "gain")
    assert inside.verdict == claims.REPRODUCED and "7.6 wide" in inside.evidence and "size: 100%" in inside.evidence
    outside = claims.consistency_verdict("1", np.linspace(2.0, 10.0, 100), 6.0, 18.43, "gain")
    assert outside.verdict == claims.NOT_REPRODUCED
    straddle = claims.consistency_verdict("3", np.linspace(-1.0, 7.0, 100), 3.0, 3.42, "gain")
    assert straddle.verdict == claims.INCONCLUSIVE and "so does zero" in straddle.reason
    assert "power to see a gain of the paper's size: 31%" in straddle.evidence  # Φ(3.42 / 2.31 − 1.96): rarely seen


def test_table1_claims_need_the_papers_models(results_root):
    from utscale import runs

    run = runs.open_run("ci")
    draws = np.linspace(14.0, 22.0, 50)
    v = claims.table1_claim("1", run.config, (18.6, draws))
    assert v.verdict == claims.NOT_TESTABLE and "llama3-8b-instruct" in v.reason and "a positive gain" in v.reason
    assert "at N=8, M=8 (the paper: N = M = 100)" in v.evidence
    paper = {**run.config, "BENCHMARK": "humaneval_plus", "POLICY_MODEL": "llama3-8b-instruct", "TEST_MODEL": "coderm-8b",
             "N_SOLUTIONS": 100, "N_UNIT_TESTS": 100}
    assert claims.table1_claim("1", paper, (18.6, draws)).verdict == claims.REPRODUCED
    assert claims.table1_claim("1", paper, (3.6, draws - 15)).verdict == claims.NOT_REPRODUCED


def allocation_case(shift_predicted: float, shift_gold: float = 0.0, p: int = 40, budgets=(1, 2, 4)):
    """Curves [cap+1, R, P] and allocations where dynamic beats equal by a known amount per problem."""
    cap = 8
    curves = np.tile(np.linspace(0.2, 0.6, cap + 1)[:, None, None], (1, 3, p))
    equal = {("equal", b): np.full(p, b) for b in budgets}
    rng = np.random.default_rng(0)
    predicted = {("paper_predicted", b): np.clip(b + np.round(shift_predicted + rng.normal(0, 0.2, p)).astype(int), 0, cap)
                 for b in budgets}
    gold = {("paper_gold", b): np.clip(b + int(shift_gold), 0, cap) * np.ones(p, int) for b in budgets}
    return curves, {**equal, **predicted, **gold}, list(budgets) + [cap], cap


def test_claim_4_is_judged_at_every_budget_below_the_cap_and_reaches_each_verdict():
    curves, allocations, budgets, cap = allocation_case(+1)
    better = claims.claim_4_dynamic_beats_equal(curves, allocations, budgets, cap, "mbpp_plus")
    assert better.verdict == claims.SUPPORTED and "Bonferroni over 3" in better.evidence and "gold λ" in better.evidence
    assert claims.judged_budgets(budgets, cap) == [1, 2, 4]
    worse = claims.claim_4_dynamic_beats_equal(*allocation_case(-1)[:2], budgets, cap, "mbpp_plus")
    assert worse.verdict == claims.NOT_SUPPORTED
    same = claims.claim_4_dynamic_beats_equal(*allocation_case(0)[:2], budgets, cap, "mbpp_plus")
    assert same.verdict == claims.INCONCLUSIVE
    shape = claims.claim_4_dynamic_beats_equal(curves, allocations, budgets, cap, "humaneval")
    assert shape.verdict == claims.SUPPORTED and shape.reason.startswith("shape only")


def test_ledger_lists_every_claim_and_reads_saved_verdicts(results_root):
    from utscale import runs

    run = runs.open_run("ci")
    ledger.save_verdicts(run, "05", [claims.ClaimVerdict("5", claims.SUPPORTED, "e5")])
    table = ledger.ledger(run, (1.5, np.array([1.0, 2.0])))
    assert table.claim.tolist() == [str(i) for i in range(1, 10)] + ["R1", "Q1", "Q2"]
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
        # save_figure(<a figure, or the call drawing it>, run, "name", ...)
        saved |= set(re.findall(r'save_figure\([^\n]*?\brun, "([a-z_]+)"', source))
    named = {c.figure for c in ledger.CLAIMS.values() if c.figure}
    assert named and named <= saved, named - saved


def test_ledger_html_and_text_carry_every_verdict_and_escape_model_text(results_root):
    from utscale import runs

    run = runs.open_run("ci")
    ledger.save_verdicts(run, "05", [claims.ClaimVerdict("5", claims.SUPPORTED, "gain 3.1 [1.2, 5.0] <b>x</b>"),
                                     claims.ClaimVerdict("6", claims.NOT_SUPPORTED, "e6", "too few problems")])
    table = ledger.ledger(run, (1.5, np.array([1.0, 2.0])))
    page = report.ledger_html(table)
    assert page.count("<tr data-claim=") == len(ledger.CLAIMS)
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert report.VERDICT_COLOURS[claims.NOT_SUPPORTED] in page and "too few problems" in page
    text = report.ledger_text(table)
    assert "[5] SUPPORTED" in text and "gain 3.1 [1.2, 5.0]" in text and "reason: too few problems" in text
    bundle = report.ledger_bundle(table)
    assert bundle == {"text/html": page, "text/plain": text}


def test_intervals_include_the_sampling_of_problems():
    """At the full N and M every resample sees the same matrices, so an interval over resamples alone
    has zero width; the problem bootstrap gives it the width that a 12-problem benchmark deserves."""
    cube = cube_where_tests_help(p=12, n=8, m=12)
    grid = scaling.scaling_grid(cube, [8], [0, 12], 200, protocol="bootstrap", seed=3)
    full = scaling.cell_points(grid, 8, 12)
    estimate, draws = claims.voting_gain(grid, 8, 12, seed=5)
    assert estimate == np.nanmean(full - scaling.cell_points(grid, 8, 0))
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
    verdict = claims.claim_8_voting_is_best_of_n(grid, cube, seed=5)
    assert f"{estimate:+.2f} points" in verdict.evidence


def costed_points(flops_scale: float = 1e9) -> pd.DataFrame:
    rows = [("same tests for all", 8, m, acc) for m, acc in ((0, 30.0), (1, 33.0), (4, 38.0), (12, 40.0))]
    rows += [("paper_predicted", 8, 4, 38.5)]
    table = pd.DataFrame(rows, columns=["rule", "n_solutions", "n_tests", "accuracy"])
    table["generated_tokens"] = 100.0 * table.n_solutions + 300.0 * table.n_tests
    table["flops"] = table.generated_tokens * flops_scale
    table["generation_seconds"] = table.generated_tokens * 0.01
    from utscale import compute

    table["pareto"] = compute.pareto_front(table.flops.to_numpy(), table.accuracy.to_numpy())
    return table


def test_research_questions_are_answered_with_numbers_or_not_testable():
    q1 = questions.question_1(costed_points())
    assert q1.verdict == claims.ANSWERED and "+10.00 points" in q1.evidence and "per point" in q1.evidence
    assert "dynamic allocation: 1 of its 1 points on the frontier" in q1.evidence
    assert questions.question_1(costed_points(0.0)).verdict == claims.NOT_TESTABLE
    replay = questions.question_1(costed_points().assign(generation_seconds=0.0))
    assert replay.verdict == claims.PARTLY_ANSWERED and "no generation time" in replay.reason
    priced = questions.question_1(costed_points(), gain=(10.0, np.linspace(4.0, 16.0, 100))).evidence
    assert "+10.00 points (95% interval +4.30 to +15.70)" in priced and "per point" in priced
    unpriced = questions.question_1(costed_points(), gain=(10.0, np.linspace(-2.0, 22.0, 100))).evidence
    assert "no price per point: the gain's interval includes zero" in unpriced and "FLOPs and" not in unpriced
    gains = pd.DataFrame({"rule": ["online_a", "online_b"], "tests_generated": [3.0, 6.0], "share_of_cap": [0.25, 0.5],
                          "gain_vs_equal_same_tests": [0.8, -0.4], "ci_low": [0.2, -0.9], "ci_high": [1.4, -0.1],
                          "gain_vs_equal_same_tokens": [0.5, 0.2], "gain_vs_equal_same_tokens_ci_low": [-0.1, 0.05],
                          "gain_vs_equal_same_tokens_ci_high": [1.1, 0.4], "gain_vs_equal_same_flops": [-0.6, 0.2],
                          "gain_vs_equal_same_flops_ci_low": [-1.2, -0.1], "gain_vs_equal_same_flops_ci_high": [-0.1, 0.5],
                          "minus_equal_full_budget": [-0.3, 0.1], "full_ci_low": [-1.0, -0.2], "full_ci_high": [0.4, 0.3]})
    crossfitted = pd.DataFrame([
        {"arm": "fixed budget (held-out choice)", "chosen": "8, 8, 12", "tests_generated": 9.3, "difference": -0.2,
         "versus": "every test", "ci_low": -0.4, "ci_high": 0.1, "margin": 0.5, "verdict": "equivalent"},
        {"arm": "online (held-out choice)", "chosen": "online_a, online_a, online_a", "tests_generated": 3.0,
         "difference": -0.3, "versus": "every test", "ci_low": -0.9, "ci_high": 0.2, "margin": 0.5, "verdict": "not shown"},
        {"arm": "online (held-out choice)", "chosen": "", "tests_generated": -6.3, "difference": -0.1,
         "versus": "fixed budget (held-out choice)", "ci_low": -0.8, "ci_high": 0.6, "margin": 0.5,
         "verdict": "no difference shown"}])
    online_q1 = questions.question_1(costed_points(), gains, crossfitted=crossfitted).evidence
    assert "online stopping, choices made on held-out problems" in online_q1
    assert "fixed budget (held-out choice) (8, 8, 12): 9.3 tests per problem (78% of the cap), -0.20 points" in online_q1
    assert "(90% -0.90 to +0.20; margin ±0.5: not shown)" in online_q1
    assert "online minus the fixed budget: -0.10 points (95% -0.80 to +0.60, no difference shown) for -6.3 tests" in online_q1
    assert "the same tests: better in 1, worse in 1 (intervals excluding zero) of 2 settings; worse: online_b" in online_q1
    # each budget matching is counted on its own intervals (online_a: better in tests, neither in tokens, worse in FLOPs)
    assert "the same tokens: better in 1, worse in 0 (intervals excluding zero) of 2 settings;" in online_q1
    assert "the same FLOPs: better in 0, worse in 1 (intervals excluding zero) of 2 settings; worse: online_a" in online_q1
    curve = costed_points()[lambda t: t.rule == "same tests for all"][["n_solutions", "n_tests", "accuracy"]]
    model = compute.CostModel(policy_parameters=10**9, test_parameters=5 * 10**8, solution_prompt_tokens=100,
                              solution_completion_tokens=200, test_prompt_tokens=100, test_completion_tokens=300,
                              solution_seconds_per_token=0.01, test_seconds_per_token=0.01, seconds_per_pair=0.1,
                              executed_test_share=0.25)
    q2 = questions.question_2(curve, model)
    assert q2.verdict == claims.ANSWERED and "0: 30.0, 1: 33.0, 4: 38.0, 12: 40.0" in q2.evidence
    assert "+3.00 (first step)" in q2.evidence and "costs 300 generated tokens (4e+11 FLOPs)" in q2.evidence
    # only the quarter of sampled tests that ran reaches the sandbox: 8 solutions × 25%
    assert "and 2 sandbox executions (8 solutions × the 25.0% of sampled tests" in q2.evidence
    assert questions.question_2(curve.iloc[:1], model).verdict == claims.NOT_TESTABLE
    replay = questions.question_2(curve, replace(model, test_seconds_per_token=0.0), "qwen2.5-coder-0.5b-instruct")
    assert replay.verdict == claims.PARTLY_ANSWERED and "in a proxy tokenizer (qwen2.5-coder-0.5b-instruct)" in replay.evidence
    assert "missing: the generating model's token counts and measured generation seconds" in replay.reason
    assert questions.question_2(curve, model, "proxy").verdict == claims.PARTLY_ANSWERED


def test_deviations_name_what_this_run_changed(results_root):
    from utscale import runs

    run = runs.open_run("ci")
    table = ledger.deviations(run)
    assert {"benchmark", "code in the unit-test prompt", "difficulty probe's training data"} - set(table.aspect) == {
        "code in the unit-test prompt"}  # no unit tests generated yet in this empty run
    assert "cross-fitted over 4 folds" in table.set_index("aspect").loc["difficulty probe's training data", "this run"]
    assert "64 ReLU units) is drawn from the seed and frozen" in table.set_index("aspect").loc[
        "difficulty probe's training", "this run"]
    bundle = report.table_bundle(table, "deviations")
    assert bundle["text/html"].count("<tr>") == len(table) + 1 and "benchmark" in bundle["text/plain"]  # + the header


def test_the_cap_is_counted_only_where_the_run_knows_why_a_response_ended():
    live = pd.DataFrame({"finish_reason": ["stop", "length", "length"], "completion_tokens": [10, 300, 300]})
    assert ledger.cap_use(live, 300, "") == "300; 2 of 3 responses hit it"
    replayed = pd.DataFrame({"finish_reason": ["unknown"] * 3, "completion_tokens": [10, 301, 420]})
    text = ledger.cap_use(replayed, 300, "qwen2.5-coder-0.5b-instruct")
    assert "3 of 3 responses record no finish reason (replayed), so how many hit it is unknown" in text
    assert "2 are over 300 tokens in the proxy tokenizer (qwen2.5-coder-0.5b-instruct)" in text and "hit it\n" not in text
    assert "proxy" not in ledger.cap_use(replayed, 300, "")
