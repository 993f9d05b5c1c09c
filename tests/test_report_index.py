"""results/index.html: the committed runs' ledgers side by side, each column linking to its report."""

from __future__ import annotations

import pandas as pd
from utscale import claims, ledger, report, runs


def test_index_puts_ledgers_side_by_side_and_links_reports(results_root):
    ci = runs.open_run("ci")
    other = runs.open_run("ci", {"LIMIT": 3})
    table = pd.DataFrame([{"claim": c, "statement": r.statement, "paper": "",
                           "verdict": claims.SUPPORTED if c == "5" else claims.NOT_TESTABLE,
                           "evidence": f"evidence {c} <x>", "reason": "", "figure": ""} for c, r in ledger.CLAIMS.items()])
    table.to_csv(ci.file("metrics/claims_ledger.csv"), index=False)
    page = report.render_index([ci, other], results_root / "index.html").read_text()
    assert page.count('href="ci/report.html"') == 1 and f'href="{other.run_id}/report.html"' in page
    assert page.count("<tr>") == len(ledger.CLAIMS) + 1  # + the header row
    assert "evidence 5 &lt;x&gt;" in page and report.VERDICT_COLOURS[claims.SUPPORTED] in page
    assert page.count("not run") == len(ledger.CLAIMS)  # the second run has no ledger yet
    assert "<title>" in page
