"""Tables as data and as display: natural key order, atomic writes, CSVs at fixed precision, and the
HTML tables notebooks show.

Everything a run writes is sorted by key (`sort_rows`, natural order so `HumanEval/2` precedes
`HumanEval/10`) and replaced atomically (`atomic_write_text`). CSVs carry a fixed number of significant
digits (`CSV_DIGITS`): a re-render from the same generations sums floats in another order now and then,
which must not churn committed files in the 15th digit. Notebooks show tables with `show`: styled HTML
for JupyterLab and the report, the same rounded numbers as text for nbval, which compares text/plain.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from utscale.records import natural_key

CSV_DIGITS = 8  # significant digits in every CSV a run writes


def natural_order(values: Iterable[Any]) -> list[Any]:
    """Values sorted naturally (`HumanEval/2` before `HumanEval/10`)."""
    return sorted(values, key=natural_key)


def _natural_codes(column: pd.Series) -> np.ndarray:
    """Integer codes that sort like the column's natural keys: numbers as numbers, and other values by
    `natural_key` of each distinct value (a Python sort over the distinct values only)."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.to_numpy()
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    order = sorted(range(len(uniques)), key=lambda i: natural_key(uniques[i]))
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[order] = np.arange(len(uniques))
    return rank[codes]


def sort_order(df: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """Row positions that sort `df` by the key columns in natural order (stable, vectorised)."""
    if df.empty:
        return np.arange(0)
    return np.lexsort([_natural_codes(df[k]) for k in reversed(list(keys))])


def sort_rows(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by key columns (natural order for ids), index reset: the on-disk order is deterministic."""
    if df.empty:
        return df.reset_index(drop=True)
    return df.iloc[sort_order(df, keys)].reset_index(drop=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def csv_text(df: pd.DataFrame, digits: int = CSV_DIGITS) -> str:
    """The CSV of `df` with every float at `digits` significant digits (no index)."""
    return df.to_csv(index=False, float_format=f"%.{digits}g", lineterminator="\n")


def write_csv(df: pd.DataFrame, path: Path, digits: int = CSV_DIGITS) -> Path:
    """`csv_text` written atomically; returns the path."""
    atomic_write_text(path, csv_text(df, digits))
    return path


def _formatted(df: pd.DataFrame, digits: int, formats: Mapping[str, str]) -> pd.DataFrame:
    """Every float column at `digits` decimals, or in its own format spec (e.g. `.3g` for FLOPs), as
    text; missing values as an empty cell."""
    out = df.copy()
    for column in out.columns:
        if column in formats or pd.api.types.is_float_dtype(out[column]):
            spec = formats.get(column, f",.{digits}f")
            out[column] = [("" if pd.isna(v) else format(v, spec)) for v in out[column]]
    return out


class Table:
    """A table for display: JupyterLab and the report get a styled HTML table (numbers right-aligned,
    text left-aligned, a caption), nbval gets the same rounded values as text."""

    def __init__(self, df: pd.DataFrame, digits: int = 2, caption: str = "", index: bool = False,
                 formats: Mapping[str, str] | None = None):
        if index and isinstance(df.index, pd.MultiIndex):  # ("characters", "mean") reads as "characters mean"
            df = df.set_axis([" ".join(map(str, label)) for label in df.index], axis=0)
        self.df = df if index else df.reset_index(drop=True)
        self.digits, self.caption, self.index, self.formats = digits, caption, index, dict(formats or {})

    def _repr_html_(self) -> str:
        shown = _formatted(self.df, self.digits, self.formats)
        numeric = {c for c in self.df.columns if pd.api.types.is_numeric_dtype(self.df[c])}

        def cell(tag: str, value: Any, column: Any) -> str:
            align = "right" if column in numeric else "left"
            return f'<{tag} style="text-align:{align}">{html.escape(str(value))}</{tag}>'

        index_head = f"<th>{html.escape(str(self.df.index.name or ''))}</th>" if self.index else ""
        head = index_head + "".join(cell("th", c, c) for c in shown.columns)
        rows = []
        for label, row in zip(shown.index, shown.itertuples(index=False)):
            first = f'<th style="text-align:left">{html.escape(str(label))}</th>' if self.index else ""
            rows.append("<tr>" + first + "".join(cell("td", v, c) for v, c in zip(row, shown.columns)) + "</tr>")
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f'<table class="utscale-table">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table>")

    def __repr__(self) -> str:
        text = _formatted(self.df, self.digits, self.formats).to_string(index=self.index)
        return f"{self.caption}\n{text}" if self.caption else text


def show(df: pd.DataFrame, digits: int = 2, caption: str = "", index: bool = False,
         formats: Mapping[str, str] | None = None) -> Table:
    """A notebook cell ending in `tables.show(df)` displays `df` as a `Table`."""
    return Table(df, digits, caption, index, formats)


def figure_id(name: str) -> str:
    """The element id of a figure's heading in a report (`plots.save_figure` writes it, the ledger links
    `#fig-<name>`)."""
    return f"fig-{name}"
