"""The research questions beyond the paper's claims: what a point of accuracy costs (Q1) and how
accuracy and cost move with the number of unit tests (Q2), each with a rule that can fail: a question is
"partly answered" when the run did not measure a cost it needs (a replay), and a gain whose interval
includes zero gets no price per point (docs/claims.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from utscale.claims import ANSWERED, NOT_TESTABLE, PARTLY_ANSWERED, ClaimVerdict
from utscale.compute import CostModel


def question_1(costed: pd.DataFrame, online_gains: pd.DataFrame | None = None,
               gain: tuple[float, np.ndarray] | None = None, crossfitted: pd.DataFrame | None = None) -> ClaimVerdict:
    """Q1, the accuracy-cost trade-off: the Pareto frontier over N, M and allocation rule in FLOPs, what
    a point of accuracy costs between random pick and voting over every test, where dynamic allocation
    sits, and what online stopping buys. `costed`: notebook 06's cost table (rule, n_solutions, n_tests,
    accuracy, costs, pareto); `online_gains`: `online.gains_table`; `crossfitted`: `online.crossfit`; `gain`: voting over every test minus
    random pick at the largest N with its bootstrap draws (`voting_gain`). A price per point is given
    only for a gain whose 95% interval lies above zero. Answered when the run measured what it prices
    (tokens and generation seconds); partly answered when it has tokens but no generation time (a
    replay); not testable without token counts."""
    if not (costed.flops > 0).any():
        return ClaimVerdict("Q1", NOT_TESTABLE, "no token counts behind this run's generations",
                       "a replay without token counts: set REPLAY_TOKENIZER")
    same = costed[costed.rule == "same tests for all"]
    n_max, m_max = int(same.n_solutions.max()), int(same.n_tests.max())
    front = costed[costed.pareto].sort_values("flops")
    best = costed.loc[costed.accuracy.idxmax()]
    near = front[front.accuracy >= best.accuracy - 1.0].iloc[0]
    parts = [f"frontier: {len(front)} of {len(costed)} points; best {best.accuracy:.1f}% ({best.rule}, N={int(best.n_solutions)}, "
             f"M={best.n_tests:g}) at {best.flops:.3g} FLOPs per problem; within 1 point of it from {near.flops:.3g} FLOPs "
             f"(N={int(near.n_solutions)}, M={near.n_tests:g}, {near.rule})"]
    random = same[(same.n_solutions == n_max) & (same.n_tests == 0)]
    full = same[(same.n_solutions == n_max) & (same.n_tests == m_max)]
    if len(random) and len(full):
        r, f = random.iloc[0], full.iloc[0]
        points = f.accuracy - r.accuracy
        lo, hi = np.nanpercentile(gain[1], [2.5, 97.5]) if gain is not None else (np.nan, np.nan)
        interval = f" (95% interval {lo:+.2f} to {hi:+.2f})" if gain is not None else ""
        if gain is not None and lo <= 0:
            per_point = "no price per point: the gain's interval includes zero"
        elif points > 0:
            per_point = (f"{(f.flops - r.flops) / points:.3g} FLOPs and {(f.generated_tokens - r.generated_tokens) / points:.3g} "
                         "tokens per point")
        else:
            per_point = "no point gained"
        parts.append(f"voting over {m_max} tests vs random pick among {n_max}: {points:+.2f} points{interval} for "
                     f"{f.flops - r.flops:.3g} more FLOPs per problem ({per_point})")
    dynamic = costed[costed.rule.isin(["paper_predicted", "paper_gold", "verifier_aware"])]
    if len(dynamic):
        parts.append(f"dynamic allocation: {int(dynamic.pareto.sum())} of its {len(dynamic)} points on the frontier")
    if online_gains is not None and len(online_gains):
        parts.append(_online_summary(online_gains, m_max, crossfitted))
    if "generation_seconds" in costed and not (costed.generation_seconds > 0).any():
        return ClaimVerdict("Q1", PARTLY_ANSWERED, "; ".join(parts), "tokens and FLOPs only: this run measured no "
                            "generation time (a replay), so what a point costs in seconds is not answered")
    return ClaimVerdict("Q1", ANSWERED, "; ".join(parts), "costs from this run's own token counts and timings")


def _online_summary(gains: pd.DataFrame, cap: int, crossfitted: pd.DataFrame | None) -> str:
    """What online stopping buys, judged on held-out problems (`online.crossfit`: the setting and the fixed
    budget are chosen on other problems, each compared with every test by an equivalence test at the
    stated margin), and how every setting compares with equal allocation given the same number of tests
    (paired intervals over problems)."""
    parts = []
    if crossfitted is not None and len(crossfitted):
        vs_all = crossfitted[crossfitted.versus == "every test"].set_index("arm")
        margin = float(crossfitted.margin.iloc[0])
        for arm in ("fixed budget (held-out choice)", "online (held-out choice)"):
            r = vs_all.loc[arm]
            parts.append(f"{arm} ({r.chosen}): {r.tests_generated:.1f} tests per problem ({100 * r.tests_generated / cap:.0f}% "
                         f"of the cap), {r.difference:+.2f} points against every test (90% {r.ci_low:+.2f} to "
                         f"{r.ci_high:+.2f}; margin ±{margin:g}: {r.verdict})")
        head = crossfitted[crossfitted.versus != "every test"].iloc[0]
        parts.append(f"online minus the fixed budget: {head.difference:+.2f} points (95% {head.ci_low:+.2f} to "
                     f"{head.ci_high:+.2f}, {head.verdict}) for {head.tests_generated:+.1f} tests per problem")
    for budget, low, high in (("tests", "ci_low", "ci_high"),
                              ("tokens", "gain_vs_equal_same_tokens_ci_low", "gain_vs_equal_same_tokens_ci_high"),
                              ("FLOPs", "gain_vs_equal_same_flops_ci_low", "gain_vs_equal_same_flops_ci_high")):
        better, worse = gains[gains[low] > 0].rule.tolist(), gains[gains[high] < 0].rule.tolist()
        parts.append(f"against equal allocation given the same {budget}: better in {len(better)}, worse in {len(worse)} "
                     f"(intervals excluding zero) of {len(gains)} settings" + (f"; worse: {', '.join(worse)}" if worse else ""))
    return "online stopping, choices made on held-out problems: " + "; ".join(parts)


def question_2(curve: pd.DataFrame, costs: CostModel, token_source: str = "") -> ClaimVerdict:
    """Q2, tests and correctness: how best-of-N accuracy moves with the number of unit tests (the
    largest N of the grid) and what each test costs to generate and to run. Only deterministic costs go
    into the evidence: measured seconds depend on the machine and stay in the cost table. A sampled test
    is charged the sandbox executions that ran (only the executed share of sampled tests reaches the
    sandbox). `token_source` names a proxy tokenizer when the generating model's own counts are not
    available (a replay); with that, or without measured generation seconds, the question is only
    partly answered."""
    n = int(curve.n_solutions.max())
    line = curve[curve.n_solutions == n].sort_values("n_tests")
    if len(line) < 2:
        return ClaimVerdict("Q2", NOT_TESTABLE, "the grid has one m value", "a relation needs several")
    steps = np.diff(line.accuracy.to_numpy()) / np.maximum(np.diff(line.n_tests.to_numpy()), 1)
    shape = ", ".join(f"{int(m)}: {a:.1f}" for m, a in zip(line.n_tests, line.accuracy))
    flops = float(costs.cost(0, 1)["flops"])
    tokens = f"{costs.test_completion_tokens:.0f} generated tokens" + (f" in a proxy tokenizer ({token_source})"
                                                                        if token_source else "")
    evidence = (f"best-of-{n} accuracy (%) by unit tests: {shape}; points per added test from {steps[0]:+.2f} (first step) "
                f"to {steps[-1]:+.3f} (last); each sampled unit test costs {tokens} ({flops:.3g} FLOPs) and "
                f"{n * costs.executed_test_share:.3g} sandbox executions ({n} solutions × the "
                f"{100 * costs.executed_test_share:.1f}% of sampled tests that were valid and ran; their measured "
                "seconds are in the cost table)")
    missing = [what for what, absent in (("the generating model's token counts", bool(token_source)),
                                         ("measured generation seconds", costs.test_seconds_per_token <= 0)) if absent]
    if missing:
        return ClaimVerdict("Q2", PARTLY_ANSWERED, evidence, f"the accuracy side is measured; missing: {' and '.join(missing)} "
                            "(a replay), so what a test costs to generate is estimated")
    return ClaimVerdict("Q2", ANSWERED, evidence, "the same resampled grid as the curves; costs measured on this run")
