"""Figures: each one that backs a verdict plots the verdict's own numbers, on a shared scale, with ticks
at the grid values, and is saved as a 300-dpi PNG, an SVG and its CSV, byte-identical on a re-render."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from utscale import allocation, claims, plots, report, runs, scaling  # noqa: E402

from tests.test_claims import allocation_case, cube_where_tests_help  # noqa: E402


@pytest.fixture(scope="module")
def grid():
    cube = cube_where_tests_help(p=60, n=8, m=12)
    quintiles = scaling.difficulty_quintiles(cube.pass_rates())
    return scaling.scaling_grid(cube, [1, 2, 8], [0, 1, 3, 12], 30, protocol="subsample", seed=3), quintiles


def tick_values(ax) -> list[float]:
    return [float(t) for t in ax.get_xticks()]


def test_scaling_figure_shows_the_paired_gain_claims_1_to_3_read_with_ticks_at_the_grid(grid):
    grid, _ = grid
    curve, gains = grid.summary(), scaling.gain_summary(grid, seed=5)
    estimate, draws = claims.voting_gain(grid, 8, 12, seed=5)
    top = gains[(gains.n_solutions == 8) & (gains.n_tests == 12)].iloc[0]
    # the figure's number at the largest cell is the verdict's (same problems, same bootstrap)
    assert top.gain == pytest.approx(estimate)
    assert (top.ci_low, top.ci_high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])))
    assert top.ci_low > 0 and set(gains.n_tests) == {1, 3, 12}
    fig = plots.scaling_curves(curve, gains)
    left, right = fig.axes
    assert tick_values(left) == [0, 1, 3, 12] and tick_values(right) == [1, 3, 12]
    assert [t.get_text() for t in left.get_xticklabels()] == ["0", "1", "3", "12"]
    assert "percentage points" in right.get_ylabel() and "_" not in left.get_xlabel() + right.get_xlabel()
    plotted = {round(y, 9) for line in right.get_lines() for y in line.get_ydata()}
    assert round(top.gain, 9) in plotted  # the gain itself is drawn, not only the two accuracies
    plt.close(fig)
    ceilings = pd.Series({n: 90.0 + n for n in curve.n_solutions.unique()})
    fig = plots.scaling_curves(curve, gains, ceilings)
    dotted = {round(line.get_ydata()[0], 9) for line in fig.axes[0].get_lines() if line.get_linestyle() == ":"}
    assert dotted == {round(v, 9) for v in ceilings} and "any correct" in fig.axes[0].get_title()
    plt.close(fig)


def test_quintile_figures_share_one_axis_and_show_claim_6s_difference(grid):
    grid, quintiles = grid
    by_quintile = scaling.quintile_summary(grid, quintiles)
    fig = plots.quintile_panels(by_quintile)
    assert len({ax.get_ylim() for ax in fig.axes}) == 1  # one y-range: a small rise looks small
    assert [ax.get_title() for ax in fig.axes][0] == "Q1 (easiest), 12 problems"
    plt.close(fig)
    gains = scaling.quintile_gains(grid, quintiles, seed=5)
    assert list(gains.group) == ["Q1", "Q2", "Q3", "Q4", "Q5", "Q4-5 minus Q1-2"]
    verdict = claims.claim_6_harder_problems_gain_more(grid, quintiles, seed=5)
    difference = gains.iloc[-1]
    # the verdict's evidence states the figure's estimate and interval
    assert f"{difference.gain:+.2f} points (95% interval {difference.ci_low:+.2f} to {difference.ci_high:+.2f}" in verdict.evidence
    fig = plots.quintile_gain_points(gains)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == "Q4-5 minus Q1-2 (48 problems)"
    plt.close(fig)


def test_allocation_figure_shows_each_rule_minus_equal_at_claim_4s_level():
    curves, allocations, budgets, cap = allocation_case(+1)
    allocations.update({("verifier_aware", b): allocations[("equal", b)] for b in budgets[:-1]})
    judged = claims.judged_budgets(budgets, cap)
    level = 0.05 / len(judged)
    differences = allocation.minus_equal(curves, allocations, judged, ("paper_predicted", "paper_gold"), level=level)
    verdict = claims.claim_4_dynamic_beats_equal(curves, allocations, budgets, cap, "mbpp_plus")
    for row in differences[differences.rule == "paper_predicted"].itertuples():
        assert f"{row.budget}: {row.minus_equal:+.2f} ({row.ci_low:+.2f} to {row.ci_high:+.2f};" in verdict.evidence
    table = differences.assign(accuracy=50.0).rename(columns={"minus_equal": "gap"})
    table = table[["rule", "budget", "accuracy", "ci_low", "ci_high"]]
    fig = plots.allocation_rules(table, differences)
    assert tick_values(fig.axes[1]) == [1, 2, 4]
    assert "98.3% intervals" in fig.axes[1].get_title()
    plt.close(fig)


def test_saved_figures_are_300_dpi_png_and_svg_with_their_csv_and_do_not_change_on_a_rerender(results_root, capsys):
    run = runs.open_run("ci", {})
    grid = scaling.scaling_grid(cube_where_tests_help(p=20, n=4, m=4), [4], [0, 2, 4], 5, seed=1)
    curve, gains = grid.summary(), scaling.gain_summary(grid)
    saved = []
    for _ in range(2):
        fig = plots.scaling_curves(curve, gains)
        plots.save_figure(fig, run, "bon_accuracy_vs_unit_tests", curve)
        plt.close(fig)
        saved.append({ext: run.file(f"figures/bon_accuracy_vs_unit_tests.{ext}").read_bytes() for ext in ("png", "svg", "csv")})
    assert saved[0] == saved[1]
    with Image.open(run.file("figures/bon_accuracy_vs_unit_tests.png")) as image:
        assert round(image.info["dpi"][0]) == 300 and image.size[0] >= 3000
    svg = saved[0]["svg"].decode()
    assert svg.lstrip().startswith("<?xml") and "<dc:date>" not in svg
    assert saved[0]["csv"].decode().splitlines()[0] == "n_solutions,n_tests,accuracy,ci_low,ci_high,mc_se"
    assert "Figure `bon_accuracy_vs_unit_tests`" in capsys.readouterr().out  # the heading's text form


def test_ledger_links_each_figure_to_its_heading():
    table = report.ledger_html(pd.DataFrame([
        {"claim": "6", "statement": "s", "paper": "p", "verdict": claims.SUPPORTED, "evidence": "e", "reason": "",
         "figure": "voting_gain_by_quintile"},
        {"claim": "7", "statement": "s", "paper": "p", "verdict": claims.NOT_TESTABLE, "evidence": "e", "reason": "",
         "figure": ""}]))
    assert re.search(r'<a href="#fig-voting_gain_by_quintile">voting_gain_by_quintile</a>', table)
    assert "<td>—</td>" in table


def test_the_online_figure_draws_equal_as_a_curve_and_the_rest_as_points_from_the_cap_up():
    table = pd.DataFrame({
        "rule": ["equal"] * 3 + ["online_margin_h4", "paper_gold", "paper_gold"],
        "budget": [2, 4, 8, 8, 2, 4], "tests_generated": [2.0, 4.0, 8.0, 5.0, 2.0, 4.0],
        "flops": [1e9, 2e9, 4e9, 2.5e9, 1e9, 2e9], "accuracy": [40.0, 45.0, 50.0, 49.0, 41.0, 46.0]})
    table = table.assign(ci_low=table.accuracy - 2, ci_high=table.accuracy + 2)
    fig = plots.online_frontier(table, cap=8)
    left = fig.axes[0]
    (curve,) = [line for line in left.get_lines() if line.get_label() == "equal"]
    assert curve.get_xdata().tolist() == [2.0, 4.0, 8.0]
    plotted = sorted(c.get_label() for c in left.containers)  # errorbar containers: the rules as points
    assert plotted == ["online_margin_h4", "paper_gold"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["unit tests generated per problem", "unit-test FLOPs per problem"]
    plt.close(fig)


def test_the_compute_figure_says_which_costs_a_run_did_not_record():
    costed = pd.DataFrame({"rule": ["equal", "equal"], "flops": [1e9, 2e9], "generation_seconds": [0.0, 0.0],
                           "accuracy": [40.0, 45.0], "pareto": [True, True]})
    fig = plots.compute_frontier(costed)
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert texts == ["no generation seconds per problem recorded for this run"] and not fig.axes[0].texts
    assert fig.axes[0].get_xscale() == "log"
    plt.close(fig)


def test_the_small_figures_label_what_they_show():
    reranked = pd.DataFrame({"rule": ["coderm", "codet"], "granularity": ["none", "assertion"],
                             "accuracy": [50.0, 52.0], "ci_low": [45.0, 47.0], "ci_high": [55.0, 57.0]})
    fig = plots.rerankers(reranked, 100)
    ticks = {round(t.get_position()[1]): t.get_text() for t in fig.axes[0].get_yticklabels()}
    assert ticks == {1: "coderm", 0: "codet (assertion)"}  # the table's first row on top
    assert fig.axes[0].get_title() == "rerankers on the full matrices (100 solutions)"
    tokens = pd.DataFrame({"completion_tokens": [10, 20, 30], "extract_status": ["ok", "ok", "truncated"]})
    fig2 = plots.completion_tokens(tokens, "sampled solution", "solutions")
    assert (fig2.axes[0].get_title(), fig2.axes[0].get_ylabel()) == ("completion tokens per sampled solution", "solutions")
    fig3 = plots.probe_calibration(np.array([0.1, 0.9]), np.array([0.2, 0.7]))
    assert fig3.axes[0].collections[0].get_offsets().tolist() == [[0.1, 0.2], [0.9, 0.7]]
    for f in (fig, fig2, fig3):
        plt.close(f)


def test_who_gets_lists_every_rules_tests_beside_the_pass_rate():
    allocations = {("equal", 2): np.array([2, 2]), ("paper_predicted", 2): np.array([3, 1]),
                   ("verifier_aware", 2): np.array([0, 4])}
    who = allocation.who_gets(("T/0", "T/1"), np.array([0.2, 0.8]), allocations, 2)
    assert who.rule.tolist() == ["equal"] * 2 + ["paper_predicted"] * 2 + ["verifier_aware"] * 2
    assert who.tests.tolist() == [2, 2, 3, 1, 0, 4] and who.pass_rate.tolist() == [0.2, 0.8] * 3
    fig = plots.allocation_by_pass_rate(who, 2)
    assert fig.axes[0].get_title() == "who gets the budget (2 tests per problem on average)"
    plt.close(fig)


def test_the_per_problem_gain_figure_sorts_the_gains_and_marks_their_mean():
    gains = np.array([-10.0, 80.0, 0.0, np.nan, 10.0])
    fig = plots.per_problem_gains(gains, 5, 4)
    ax = fig.axes[0]
    assert [round(bar.get_height(), 6) for bar in ax.patches] == [80.0, 10.0, 0.0, -10.0]
    assert ax.get_legend().get_texts()[0].get_text() == "mean +20.00 points"
    plt.close(fig)


def test_the_reranker_curves_figure_has_a_row_per_granularity_and_a_line_per_rule():
    rows = [{"rule": rule, "granularity": g, "axis": axis, "n": n, "m": m, "accuracy": 30.0, "ci_low": 25.0,
             "ci_high": 35.0, "mc_se": 0.1}
            for g in ("assertion", "outputs") for rule in ("random", "srank" if g == "outputs" else "codet_released")
            for axis, n, m in (("n", 1, 9), ("n", 4, 9)) + ((("m", 4, 1), ("m", 4, 9)) if g == "assertion" else ())]
    fig = plots.reranker_curves(pd.DataFrame(rows))
    assert len(fig.axes) == 4
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["random", "codet_released"]
    assert not fig.axes[3].axison  # outputs have no test axis: every input is always used
    assert [line.get_label() for line in fig.axes[2].get_lines()] == ["random", "srank"]
    plt.close(fig)
