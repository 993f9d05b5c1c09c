"""The rendered report in a real headless Chromium: it loads, opens with the claims ledger, shows every
figure, and shows no code. A full-page screenshot of each report checked is kept as an artifact
(`$UTSCALE_ARTIFACTS`, by default pytest's temporary folder).

Checked on a report rendered now (the ci pipeline end to end) and on the committed runs'
reports, which are what a reviewer opens without running anything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from utscale import ledger, pipeline, report, rerender, tables

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM and not os.environ.get("UTSCALE_REQUIRE_BROWSER"):
    pytest.skip("Debian chromium is not installed (bash .ci/system-packages installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

COMMITTED = [rerender.committed_root() / name for name in rerender.committed_runs()]

PAGE_FACTS = """() => {
  const ledger = document.querySelector('#claims-ledger');
  const images = Array.from(document.images);
  const first = images[0];
  return {
    verdicts: ledger ? Array.from(ledger.querySelectorAll('tbody tr')).map(r => [r.dataset.claim,
                       r.querySelector('.verdict').textContent]) : null,
    ledgerBeforeFigures: !!(ledger && first && (ledger.compareDocumentPosition(first) & Node.DOCUMENT_POSITION_FOLLOWING)),
    images: images.map(i => ({loaded: i.complete && i.naturalWidth > 0, shown: i.offsetWidth > 0 && i.offsetHeight > 0,
                              width: i.naturalWidth})),
    text: document.body.innerText,
    inputAreas: document.querySelectorAll('.jp-CodeCell .jp-InputArea').length,
    ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
    links: Array.from(document.querySelectorAll('a[href^="#"]')).map(a => a.getAttribute('href').slice(1)),
    ledgerLinks: ledger ? Array.from(ledger.querySelectorAll('a[href^="#fig-"]')).map(a => a.getAttribute('href').slice(1)) : [],
    title: document.title,
    header: (document.querySelector('[id="cell-id=provenance"]') || {innerText: ''}).innerText,
    tables: document.querySelectorAll('table.utscale-table').length,
    code: document.querySelectorAll('.highlight pre').length,
  };
}"""


@pytest.fixture(scope="module")
def rendered_ci_run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UTSCALE_RESULTS", str(tmp_path_factory.mktemp("results")))
        yield pipeline.run_pipeline("ci")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"])
        yield chromium
        chromium.close()


def artifact_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("UTSCALE_ARTIFACTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_report(browser, page_path: Path, figures: Path, screenshot: Path) -> dict:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
    page.on("request", lambda request: request.url.startswith(("file:", "data:")) or errors.append(
        f"not self-contained: {request.url}"))
    response = page.goto(page_path.resolve().as_uri(), wait_until="load")
    assert response is not None and response.ok
    facts = page.evaluate(PAGE_FACTS)
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    assert errors == []
    assert facts["verdicts"] is not None, "no claims ledger on the page"
    assert [c for c, _ in facts["verdicts"]] == list(ledger.CLAIMS)
    assert {v for _, v in facts["verdicts"]} <= set(report.VERDICT_COLOURS)
    assert facts["ledgerBeforeFigures"], "the report must open with the claims ledger"
    assert "LIMIT" in facts["text"] and "POLICY_MODEL" in facts["text"]  # the configuration table
    assert facts["inputAreas"] == 0 and "open_notebook_run" not in facts["text"]
    duplicated = sorted({i for i in facts["ids"] if facts["ids"].count(i) > 1})
    assert duplicated == [], f"element ids must be unique (anchors): {duplicated}"
    # every figure the run saved is on the page once, decoded and laid out
    assert len(facts["images"]) == len(list(figures.glob("*.png"))) > 0
    assert all(i["loaded"] and i["shown"] for i in facts["images"]), facts["images"]
    # every in-page link lands on an element (the contents, the ledger's figure links)
    assert facts["links"] and sorted(set(facts["links"]) - set(facts["ids"])) == []
    assert sorted(set(facts["ledgerLinks"])) == sorted({tables.figure_id(c.figure) for c in ledger.CLAIMS.values() if c.figure})
    assert facts["title"].startswith("utscale report: ")
    for field in ("profile", "generated", "rendered", "models", "machine", "packages"):
        assert field in facts["header"], field
    assert facts["tables"] >= 10, "tables are HTML tables, not text dumps"
    assert facts["code"] >= 1, "code is shown as highlighted code"
    assert screenshot.stat().st_size > 10_000
    return facts


def test_fresh_report_renders_in_chromium(browser, rendered_ci_run, tmp_path):
    run = rendered_ci_run
    facts = check_report(browser, run.path / "report.html", run.path / "figures",
                         artifact_dir(tmp_path) / f"report-{run.run_id}.png")
    saved = {c: v.verdict for c, v in ledger.load_verdicts(run).items()}
    shown = dict(facts["verdicts"])
    assert all(shown[c] == v for c, v in saved.items())  # the page shows the verdicts the notebooks computed


@pytest.mark.parametrize("committed", [p for p in COMMITTED if (p / "report.html").exists()], ids=lambda p: p.name)
def test_committed_reports_render_in_chromium(browser, tmp_path, committed):
    check_report(browser, committed / "report.html", committed / "figures", artifact_dir(tmp_path) / f"report-{committed.name}.png")
