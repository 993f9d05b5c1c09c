"""Figures with a fixed look, saved by name next to the CSV of exactly what they plot.

Conventions every figure follows (docs/report.md): accuracies and gains in percentage points; axis
labels in words; ticks at the grid values the analysis used, not at powers of ten; seaborn's
colour-blind palette; intervals wherever a verdict reads one. A figure that backs a verdict shows the
paired difference the verdict is computed on (e.g. voting minus random pick), not two overlapping
bands. `save_figure` writes a 300-dpi PNG, an SVG and the CSV, and heads the figure in the notebook
(and so in the report) with an anchor the claims ledger links to.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from utscale.allocation import INFORMED
from utscale.runs import Run
from utscale.tables import figure_id, write_csv

FIGSIZE = (7.0, 4.0)
DPI = 300
PALETTE = "colorblind"
POINTS = "percentage points"


def theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams["svg.hashsalt"] = "utscale"  # SVG element ids from a fixed salt: re-rendering changes nothing


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None, height: float | None = None,
               sharey: bool = False) -> tuple[Figure, np.ndarray]:
    theme()
    return plt.subplots(nrows, ncols, figsize=(width or FIGSIZE[0] * ncols, height or FIGSIZE[1] * nrows),
                        squeeze=False, sharey=sharey)


def problems(count: int) -> str:
    return f"{count} problem" + ("" if count == 1 else "s")


def save_figure(fig: Figure, run: Run, name: str, data: pd.DataFrame) -> None:
    """Save `figures/<name>.png` (300 dpi) and `.svg`, without volatile metadata, and `figures/<name>.csv`;
    display the figure's heading. Returns None so a cell ending in it prints no figure repr."""
    display({"text/plain": f"Figure `{name}` (data: figures/{name}.csv)",
             "text/html": f'<p id="{figure_id(name)}" class="utscale-figure"><b>Figure</b> <code>{name}</code> '
                          f"(data: <code>figures/{name}.csv</code>, also as PNG and SVG)</p>"}, raw=True)
    fig.tight_layout()
    # "tight": legends placed outside the axes are part of the picture
    fig.savefig(run.file(f"figures/{name}.png"), dpi=DPI, metadata={"Software": None}, bbox_inches="tight")
    fig.savefig(run.file(f"figures/{name}.svg"), metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    write_csv(data, run.file(f"figures/{name}.csv"))


def grid_axis(ax: Axes, values: Sequence[float], label: str, log2: bool = False) -> None:
    """An x axis on a log scale (linear below 1, so 0 = random pick has a place) with a tick at every
    grid value, labelled as the value itself."""
    values = sorted({float(v) for v in values})
    if log2:
        ax.set_xscale("log", base=2)
    else:
        ax.set_xscale("symlog", linthresh=1, linscale=0.5)
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel(label)


def colours_for(keys: Sequence) -> dict:
    """One colour of the palette per key, in order: each line keeps its colour across a figure's panels."""
    return dict(zip(keys, sns.color_palette(PALETTE, len(keys))))


def _band(ax: Axes, x: pd.Series, low: pd.Series, high: pd.Series, colour, alpha: float = 0.18) -> None:
    ax.fill_between(x, low, high, color=colour, alpha=alpha, linewidth=0)


def scaling_curves(curve: pd.DataFrame, gains: pd.DataFrame, any_correct: pd.Series | None = None) -> Figure:
    """Left: best-of-N accuracy against the number of unit tests, one line per N (the largest N with its
    interval), and dotted at each N's ceiling, any correct among N (`any_correct`: N → %, pass@N).
    Right: each N's paired gain over random pick with its interval, which is what claims 1-3 and 8
    judge; the bands of the left panel overlap by construction, those on the right need not."""
    fig, axes = new_figure(ncols=2, width=12, height=4.3)
    left, right = axes[0]
    colours = colours_for(sorted(curve.n_solutions.unique()))
    n_max = max(colours)
    for n, part in curve.groupby("n_solutions"):
        left.plot(part.n_tests, part.accuracy, marker="o", color=colours[n], label=f"{n}")
        if n == n_max:
            _band(left, part.n_tests, part.ci_low, part.ci_high, colours[n])
    for n, part in gains.groupby("n_solutions"):
        right.plot(part.n_tests, part.gain, marker="o", color=colours[n], label=f"{n}")
        _band(right, part.n_tests, part.ci_low, part.ci_high, colours[n], alpha=0.12)
    right.axhline(0, color="black", linewidth=0.8)
    for n, ceiling in ({} if any_correct is None else any_correct.items()):
        if n in colours:
            left.axhline(ceiling, color=colours[n], linestyle=":", linewidth=1)
    grid_axis(left, curve.n_tests.unique(), "unit tests per problem (0 = random pick)")
    grid_axis(right, gains.n_tests.unique(), "unit tests per problem")
    left.set_ylabel("problems solved (%)")
    right.set_ylabel(f"gain over random pick ({POINTS})")
    left.set_title(f"best-of-N accuracy (band: 95% interval at N = {n_max}"
                   + ("; dotted: any correct among N)" if any_correct is not None else ")"))
    right.set_title("voting minus random pick, paired (95% intervals)")
    left.legend(title="solutions (N)", fontsize=8)
    return fig


def quintile_panels(by_quintile: pd.DataFrame) -> Figure:
    """Best-of-N accuracy against unit tests within each difficulty quintile, on one shared y axis (a
    6-point rise must look like one), the largest N with its interval, problems per quintile in each
    title."""
    quintiles = sorted(by_quintile.quintile.unique())
    fig, axes = new_figure(ncols=len(quintiles), width=3.2 * len(quintiles), height=3.8, sharey=True)
    colours = colours_for(sorted(by_quintile.n_solutions.unique()))
    n_max = max(colours)
    names = {1: "easiest", 5: "hardest"}
    for ax, q in zip(axes[0], quintiles):
        part = by_quintile[by_quintile.quintile == q]
        for n, line in part.groupby("n_solutions"):
            ax.plot(line.n_tests, line.accuracy, marker="o", markersize=3, color=colours[n], label=f"{n}")
            if n == n_max:
                _band(ax, line.n_tests, line.ci_low, line.ci_high, colours[n])
        grid_axis(ax, part.n_tests.unique(), "unit tests per problem")
        if part.n_tests.nunique() > 5:  # a long grid's labels would run into each other
            ax.tick_params(axis="x", labelsize=7, labelrotation=90)
        label = f" ({names[q]})" if q in names else ""
        ax.set_title(f"Q{q}{label}, {problems(int(part.problems.iloc[0]))}", fontsize=10)
    axes[0, 0].set_ylabel("problems solved (%)")
    axes[0, 0].legend(title="solutions (N)", fontsize=7, title_fontsize=8)
    fig.suptitle(f"accuracy by difficulty quintile (band: 95% interval at N = {n_max})")
    return fig


def quintile_gain_points(gains: pd.DataFrame) -> Figure:
    """Each quintile's gain of the largest cell over random pick, and hard minus easy, with 95%
    intervals: exactly the numbers claim 6 judges."""
    fig, axes = new_figure(width=8, height=0.5 * len(gains) + 1.5)
    ax = axes[0, 0]
    y = np.arange(len(gains))
    palette = sns.color_palette(PALETTE)
    for row, at in zip(gains.itertuples(), y):
        ax.errorbar(row.gain, at, xerr=[[row.gain - row.ci_low], [row.ci_high - row.gain]], fmt="o", capsize=3,
                    color=palette[3 if "minus" in row.group else 0])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [f"{g} ({problems(p)})" for g, p in zip(gains.group, gains.problems)])
    ax.invert_yaxis()
    ax.set_xlabel(f"gain over random pick ({POINTS})")
    n, m = int(gains.n_solutions.iloc[0]), int(gains.n_tests.iloc[0])
    ax.set_title(f"voting with {m} tests minus random pick\namong N = {n} solutions (95% intervals)", fontsize=11)
    return fig


def gain_by_difficulty(gains: pd.DataFrame, title: str = "") -> Figure:
    """The paper's Appendix B view: the gain over random pick per difficulty bin, one line per m."""
    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.set_title(title)
    sns.lineplot(data=gains.assign(tests=gains.n_tests.astype(str)), x="difficulty", y="gain", hue="tests",
                 marker="o", ax=ax, palette=PALETTE)
    ax.axhline(0, color="black", linewidth=0.8)
    bins = sorted(gains.difficulty.unique())
    ax.set_xticks(bins, [f"{b:.2f}" for b in bins], fontsize=8)
    ax.set_xlabel("difficulty (1 − the policy's pass rate), bin centre")
    ax.set_ylabel(f"gain over random pick ({POINTS})")
    ax.legend(title="unit tests", fontsize=8)
    return fig


def allocation_rules(table: pd.DataFrame, differences: pd.DataFrame) -> Figure:
    """Left: accuracy per allocation rule against the average budget. Right: each rule minus equal
    allocation, paired by problem, with the intervals claim 4 reads (Bonferroni over its budgets)."""
    fig, axes = new_figure(ncols=2, width=12, height=4.3)
    left, right = axes[0]
    rules = list(dict.fromkeys(table.rule))
    colours = colours_for(rules)
    for rule, part in table.groupby("rule", sort=False):
        left.plot(part.budget, part.accuracy, marker="o", color=colours[rule], label=rule.replace("_", " "))
        if rule == "equal":
            _band(left, part.budget, part.ci_low, part.ci_high, colours[rule])
    offsets = np.linspace(-0.06, 0.06, max(differences.rule.nunique(), 1))
    for offset, (rule, part) in zip(offsets, differences.groupby("rule", sort=False)):
        x = part.budget * 2 ** offset  # dodge on the log axis so the intervals do not hide each other
        right.errorbar(x, part.minus_equal, yerr=[part.minus_equal - part.ci_low, part.ci_high - part.minus_equal],
                       marker="o", capsize=3, color=colours[rule], label=rule.replace("_", " "))
    right.axhline(0, color="black", linewidth=0.8)
    for ax in (left, right):
        grid_axis(ax, table.budget.unique(), "budget (unit tests per problem, on average)", log2=True)
    left.set_ylabel("problems solved (%)")
    right.set_ylabel(f"rule minus equal allocation ({POINTS})")
    left.set_title("accuracy by allocation rule (band: 95% interval, equal)")
    level = float(differences.level.iloc[0]) if len(differences) else 0.05
    right.set_title(f"paired difference from equal ({100 * (1 - level):.1f}% intervals)")
    left.legend(fontsize=8)
    return fig


def probe_calibration(true: np.ndarray, predicted: np.ndarray) -> Figure:
    """The difficulty probe's out-of-fold prediction of each problem's pass rate against the truth."""
    fig, axes = new_figure(width=5, height=4)
    ax = axes[0, 0]
    ax.scatter(true, predicted)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--")
    ax.set_xlabel("true pass rate")
    ax.set_ylabel("predicted (out of fold)")
    ax.set_title("difficulty probe")
    return fig


def allocation_by_pass_rate(who: pd.DataFrame, budget: int) -> Figure:
    """How many tests each rule gives a problem against its pass rate (`allocation.who_gets`)."""
    fig, axes = new_figure()
    ax = axes[0, 0]
    sns.scatterplot(data=who, x="pass_rate", y="tests", hue="rule", style="rule", ax=ax)
    ax.set_title(f"who gets the budget ({budget} tests per problem on average)")
    ax.set_xlabel("the policy's pass rate (true)")
    ax.set_ylabel("unit tests allocated")
    return fig


def online_frontier(table: pd.DataFrame, cap: int) -> Figure:
    """Accuracy against unit tests generated and against their FLOPs (`allocation.csv`): equal allocation
    as a curve with its band, every other rule (offline ones at each budget, online settings and equal
    allocation from the cap up) as points with intervals."""
    fig, axes = new_figure(ncols=2, width=11)
    points = table[(table.budget >= cap) | table.rule.isin(INFORMED)]
    equal = table[table.rule == "equal"]
    for ax, column, label in ((axes[0, 0], "tests_generated", "unit tests generated per problem"),
                              (axes[0, 1], "flops", "unit-test FLOPs per problem")):
        ax.plot(equal[column], equal.accuracy, color="black", label="equal")
        ax.fill_between(equal[column], equal.ci_low, equal.ci_high, color="black", alpha=0.1)
        for rule, part in points[points.rule != "equal"].groupby("rule"):
            ax.errorbar(part[column], part.accuracy, yerr=[part.accuracy - part.ci_low, part.ci_high - part.accuracy],
                        marker="o", linestyle="-" if not rule.startswith("online") else "none", capsize=2, label=rule)
        # linear from 0 to the smallest positive value (one test, or its FLOPs), logarithmic above: the
        # zero-test point stays on the axis and no empty decades stretch it
        positive = table.loc[table[column] > 0, column]
        ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1.0)
        ax.set_xlabel(label)
    axes[0, 0].set_ylabel("problems solved (%)")
    axes[0, 1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)  # off the data
    return fig


def compute_frontier(costed: pd.DataFrame) -> Figure:
    """Accuracy against FLOPs and against generation seconds per problem, Pareto front drawn; a panel
    whose cost this run did not record (replayed generations carry no timings) says so."""
    fig, axes = new_figure(ncols=2)
    for ax, column, label in ((axes[0, 0], "flops", "FLOPs per problem"),
                              (axes[0, 1], "generation_seconds", "generation seconds per problem")):
        ax.set_xlabel(label)
        if not (costed[column] > 0).any():
            ax.text(0.5, 0.5, f"no {label} recorded for this run", ha="center", va="center", transform=ax.transAxes)
            continue
        sns.scatterplot(data=costed, x=column, y="accuracy", hue="rule", style="pareto", ax=ax, legend=ax is axes[0, 0])
        front = costed[costed.pareto].sort_values(column)
        ax.plot(front[column], front.accuracy, color="black", linewidth=1)
        ax.set_xscale("log")
        ax.set_ylabel("problems solved (%)")
    if axes[0, 0].get_legend() is not None:  # one legend for both panels, below them, off the data
        sns.move_legend(axes[0, 0], "upper left", bbox_to_anchor=(0.0, -0.2), ncol=4, fontsize=7, frameon=False)
    return fig


def prompt_lengths(lengths: pd.DataFrame, title: str) -> Figure:
    """Histograms of the policy prompts' and test questions' lengths (`benchmarks.prompt_lengths`)."""
    fig, axes = new_figure(ncols=2)
    for ax, unit in zip(axes[0], ("characters", "words")):
        sns.histplot(data=lengths, x=unit, hue="text", ax=ax, bins=15)
        ax.set_xlabel(f"prompt length ({unit})")
        ax.set_ylabel("problems")
    fig.suptitle(title)
    return fig


def completion_tokens(table: pd.DataFrame, what: str, counted: str) -> Figure:
    """Completion tokens per sample, stacked by extraction status (`what`: "sampled solution" or
    "generated unit test"; `counted`: the y axis, "solutions" or "unit tests")."""
    fig, axes = new_figure()
    ax = axes[0, 0]
    sns.histplot(data=table, x="completion_tokens", hue="extract_status", multiple="stack", bins=20, ax=ax)
    ax.set_title(f"completion tokens per {what}")
    ax.set_xlabel("completion tokens")
    ax.set_ylabel(counted)
    return fig


def pass_matrix(matrix: pd.DataFrame, title: str) -> Figure:
    """One problem's pass matrix (`matrix.problem_matrix`): solutions × unit tests, passes in green."""
    fig, axes = new_figure(width=6, height=4)
    ax = axes[0, 0]
    sns.heatmap(matrix, cmap="Greens", cbar=False, linewidths=0.5, linecolor="white", ax=ax)
    ax.set_title(title)
    ax.set_xlabel("unit test")
    ax.set_ylabel("solution")
    return fig


def rule_curves(curves: pd.DataFrame) -> Figure:
    """Each selection rule's best-of-N accuracy against the unit tests (`scaling.rule_curves`), the
    intervals as bands."""
    fig, axes = new_figure(width=7, height=4.3)
    ax = axes[0, 0]
    colours = dict(zip(curves.rule.unique(), sns.color_palette("colorblind", curves.rule.nunique())))
    for rule, part in curves.groupby("rule", sort=False):
        ax.plot(part.n_tests, part.accuracy, marker="o", color=colours[rule], label=rule)
        _band(ax, part.n_tests, part.ci_low, part.ci_high, colours[rule], alpha=0.08)
    grid_axis(ax, curves.n_tests.unique(), "unit tests per problem (0 = random pick)")
    ax.set_ylabel("problems solved (%)")
    ax.set_title(f"each rule as the tests grow ({int(curves.n_solutions.max())} solutions)")
    ax.legend(title="rule", fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig


def per_problem_gains(gains: np.ndarray, n: int, m: int) -> Figure:
    """Each problem's gain over random pick at one cell (`scaling.gain_points`), sorted: where the mean
    gain comes from (a few problems or many)."""
    fig, axes = new_figure(width=7, height=3.6)
    ax = axes[0, 0]
    ordered = np.sort(gains[~np.isnan(gains)])[::-1]
    up, down = sns.color_palette("colorblind")[2], sns.color_palette("colorblind")[3]
    colours = [up if gain > 0 else down for gain in ordered]
    ax.bar(np.arange(ordered.size), ordered, width=1.0, color=colours)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axhline(float(ordered.mean()), color="grey", linestyle="--", linewidth=0.8,
               label=f"mean {ordered.mean():+.2f} points")
    ax.set_xlabel(f"problems, sorted by gain ({ordered.size})")
    ax.set_ylabel("gain over random pick (points)")
    ax.set_title(f"per-problem gain of voting, {n} solutions, {m} tests")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def reranker_curves(curves: pd.DataFrame) -> Figure:
    """Every reranker against the solutions (left) and the tests (right), a row per granularity
    (`rerankers.reranker_curves`); the random pick dotted, intervals as bands."""
    granularities = list(curves.granularity.unique())
    fig, axes = new_figure(ncols=2, nrows=len(granularities), width=11, height=3.6 * len(granularities),
                           sharey=True)
    names = list(curves.rule.unique())
    colours = dict(zip(names, sns.color_palette("colorblind", 10) + sns.color_palette("dark", 10)))
    for row, granularity in enumerate(granularities):
        for col, (axis, x, label) in enumerate((("n", "n", "solutions per problem (every test)"),
                                                ("m", "m", "tests per problem (every solution)"))):
            ax = axes[row, col]
            part = curves[(curves.granularity == granularity) & (curves.axis == axis)]
            if part.empty:
                ax.set_axis_off()
                ax.set_title(f"{granularity}: every input, always")
                continue
            for rule, line in part.groupby("rule", sort=False):
                style = ":" if rule == "random" else "-"
                ax.plot(line[x], line.accuracy, marker="o", markersize=3, linestyle=style, color=colours[rule],
                        label=rule)
                _band(ax, line[x], line.ci_low, line.ci_high, colours[rule], alpha=0.05)
            grid_axis(ax, part[x].unique(), label)
            ax.set_title(f"{granularity}: as the {'solutions' if axis == 'n' else 'tests'} grow")
            if col == 0:
                ax.set_ylabel("problems solved (%)")
        handles = {h.get_label(): h for ax in axes[row] for h in ax.get_lines()}
        axes[row, 1].legend(handles.values(), handles.keys(), title="rule", fontsize=7, loc="upper left",
                            bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig


def rerankers(reranked: pd.DataFrame, n: int) -> Figure:
    """Each reranker's accuracy on the full matrices with its problem-bootstrap interval
    (`rerankers.reranker_table`; rules that did not run are left out)."""
    reranked = reranked[reranked.accuracy.notna()]
    fig, axes = new_figure(width=7, height=0.45 * len(reranked) + 1)
    ax = axes[0, 0]
    labels = [f"{r.rule} ({r.granularity})" if r.granularity != "none" else r.rule for r in reranked.itertuples()]
    y = np.arange(len(reranked))[::-1]
    ax.errorbar(reranked.accuracy, y, xerr=[reranked.accuracy - reranked.ci_low, reranked.ci_high - reranked.accuracy],
                fmt="o", capsize=3)
    ax.set_yticks(y, labels)
    ax.set_xlabel("% problems solved by the pick (95% problem-bootstrap interval)")
    ax.set_title(f"rerankers on the full matrices ({n} solutions)")
    return fig

