"""Key order, CSVs at fixed precision, and the display tables notebooks show."""

from __future__ import annotations

import numpy as np
import pandas as pd
from utscale import tables


def test_sort_rows_is_the_natural_order_of_the_keys_vectorised():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"task_id": [f"HumanEval/{i}" for i in rng.integers(0, 200, 500)],
                          "solution_id": rng.integers(0, 30, 500), "value": rng.random(500)})
    got = tables.sort_rows(frame, ["task_id", "solution_id"])
    expected = sorted(frame.itertuples(index=False), key=lambda r: (tables.natural_key(r.task_id), r.solution_id))
    assert [tuple(r) for r in got.itertuples(index=False)] == [tuple(r) for r in expected]
    assert tables.sort_rows(frame.iloc[:0], ["task_id"]).empty


def test_csv_is_unchanged_by_float_noise_in_the_last_digits(tmp_path):
    """A re-render that sums in another order differs in the 15th digit; the committed CSV must not."""
    values = np.array([22.212195121951219, 1 / 3, 1e12 / 7, 0.0, np.nan])
    noisy = values * (1 + 3e-15)
    assert not np.array_equal(values[:4], noisy[:4])
    first = tables.write_csv(pd.DataFrame({"task": list("abcde"), "accuracy": values}), tmp_path / "a.csv").read_text()
    second = tables.csv_text(pd.DataFrame({"task": list("abcde"), "accuracy": noisy}))
    assert first == second
    read = pd.read_csv(tmp_path / "a.csv")
    assert np.allclose(read.accuracy[:4], values[:4], rtol=1e-7) and np.isnan(read.accuracy[4])
    assert "22.212195" in first and "1.4285714e+11" in first


def test_display_table_gives_html_and_the_same_rounded_numbers_as_text():
    df = pd.DataFrame({"rule": ["equal", "paper <gold>"], "accuracy": [22.21567, 24.1], "tests": [164, 328]})
    table = tables.show(df, digits=1, caption="allocation")
    page = table._repr_html_()
    assert "<caption>allocation</caption>" in page and "paper &lt;gold&gt;" in page
    assert '<td style="text-align:right">22.2</td>' in page and '<td style="text-align:left">equal</td>' in page
    text = repr(table)
    assert text.splitlines()[0] == "allocation" and "22.2" in text and "22.22" not in text and "328" in text
    indexed = tables.show(df.set_index("rule"), index=True)._repr_html_()
    assert '<th style="text-align:left">paper &lt;gold&gt;</th>' in indexed  # the index heads each row


def test_a_two_level_index_reads_as_words():
    described = pd.DataFrame({"text": ["a", "a", "b"], "words": [1.0, 3.0, 5.0]}).groupby("text")[["words"]].describe().T
    page = tables.show(described, index=True)._repr_html_()
    assert '<th style="text-align:left">words mean</th>' in page and "(&#x27;words&#x27;" not in page
