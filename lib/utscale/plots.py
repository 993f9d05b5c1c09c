"""Figures with a fixed look, saved by content name next to the CSV of exactly what they plot."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from utscale.runs import Run

FIGSIZE = (7.0, 4.0)


def theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None, height: float | None = None):
    theme()
    return plt.subplots(nrows, ncols, figsize=(width or FIGSIZE[0] * ncols, height or FIGSIZE[1] * nrows),
                        squeeze=False)


def save_figure(fig: plt.Figure, run: Run, name: str, data: pd.DataFrame) -> None:
    """Save `figures/<name>.png` (no volatile metadata) and `figures/<name>.csv`; returns None so a
    notebook cell ending in it prints no figure repr. The printed name heads the figure in the
    report, where the claims ledger refers to figures by name."""
    print(f"Figure `{name}` (data: figures/{name}.csv)")
    fig.tight_layout()
    fig.savefig(run.file(f"figures/{name}.png"), dpi=110, metadata={"Software": None})
    data.to_csv(run.file(f"figures/{name}.csv"), index=False)
