"""The HTML report of a run, and the index page beside the committed runs.

A run's report is one self-contained page (images inline, no input cells, no stderr, no CDN scripts):
the claims ledger first, then the run's configuration, then every notebook's outputs in order. The
index (`results/index.html`) puts several runs' ledgers side by side, each linking to its report.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pandas as pd

from utscale.claims import ANSWERED, BY_DEFINITION, INCONCLUSIVE, NOT_REPRODUCED, NOT_SUPPORTED, NOT_TESTABLE, PARTLY_ANSWERED, REPRODUCED, SUPPORTED
from utscale.ledger import CLAIMS
from utscale.runs import Run, git_state
from utscale.tables import atomic_write_text, figure_id

REPORT_FIRST = "07_"  # the claims ledger opens the report
REPORT_TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"

VERDICT_COLOURS = {SUPPORTED: "#1a7f37", NOT_SUPPORTED: "#cf222e", INCONCLUSIVE: "#9a6700", NOT_TESTABLE: "#6e7781",
                   REPRODUCED: "#1a7f37", NOT_REPRODUCED: "#cf222e", BY_DEFINITION: "#0969da", ANSWERED: "#0969da",
                   PARTLY_ANSWERED: "#9a6700"}


def table_html(table: pd.DataFrame, table_id: str) -> str:
    """A plain, escaped HTML table (left- and top-aligned, as the ledger)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    style = f"<style>#{table_id} th, #{table_id} td {{text-align: left; vertical-align: top}}</style>"
    return f'{style}<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def table_bundle(table: pd.DataFrame, table_id: str) -> dict[str, str]:
    """HTML for JupyterLab and the report, text for nbval."""
    return {"text/html": table_html(table, table_id), "text/plain": table.to_string(index=False)}


def figure_cell(name: str) -> str:
    """A ledger cell linking to the figure's heading (`plots.save_figure`); a dash for no figure."""
    if not name or pd.isna(name):
        return "<td>—</td>"
    return f'<td><a href="#{figure_id(name)}">{html.escape(name)}</a></td>'


def ledger_html(table: pd.DataFrame) -> str:
    """The ledger as one HTML table (id `claims-ledger`), the first thing the report shows; each figure
    name links to that figure in the report."""
    def cell(text: str) -> str:
        return f"<td>{html.escape(str(text))}</td>"

    rows = []
    for row in table.itertuples():
        colour = VERDICT_COLOURS[row.verdict]
        verdict = f'<td class="verdict" style="color:{colour};font-weight:bold">{html.escape(row.verdict)}</td>'
        evidence = html.escape(row.evidence) + (f"<br><em>{html.escape(row.reason)}</em>" if row.reason else "")
        rows.append(f'<tr data-claim="{html.escape(row.claim)}">{cell(row.claim)}{cell(row.statement)}{cell(row.paper)}'
                    f"{verdict}<td>{evidence}</td>{figure_cell(row.figure)}</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("claim", "statement", "paper", "verdict", "this run's evidence", "figure"))
    # JupyterLab's stylesheet right-aligns table cells; prose reads better left-aligned and top-aligned
    style = "<style>#claims-ledger th, #claims-ledger td {text-align: left; vertical-align: top}</style>"
    return (f'{style}<table id="claims-ledger"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def ledger_text(table: pd.DataFrame) -> str:
    lines = []
    for row in table.itertuples():
        lines.append(f"[{row.claim}] {row.verdict.upper()}: {row.statement} (paper: {row.paper})")
        lines.append(f"    evidence: {row.evidence}")
        if row.reason:
            lines.append(f"    reason: {row.reason}")
    return "\n".join(lines)


def ledger_bundle(table: pd.DataFrame) -> dict[str, str]:
    """A display bundle: the HTML table for JupyterLab and the report, the same facts as text for
    nbval (which compares text/plain), so a changed number still fails the regression check."""
    return {"text/html": ledger_html(table), "text/plain": ledger_text(table)}


def config_markdown(run: Run) -> str:
    rows = "\n".join(f"| `{k}` | {f'`{v}`' if v != '' else '(empty)'} |" for k, v in sorted(run.config.items()))
    return f'<a id="configuration"></a>\n\n## Configuration\n\nProfile `{run.profile}`.\n\n| parameter | value |\n|---|---|\n{rows}\n'


def _commit(state: dict) -> str:
    commit = state.get("commit") or "unknown"
    return f"`{commit[:12]}`" + (" (with uncommitted changes)" if state.get("dirty") else "")


def provenance_markdown(run: Run, notebooks: Sequence[Path]) -> str:
    """The report's header: what was run, from which code, with which models, where; and its contents."""
    manifest = run.manifest()
    models = []
    for role, entry in sorted(manifest.get("models", {}).items()):
        replay = entry.get("replay")
        source = (f"replay of `{replay['file']}` (sha256 `{replay['sha256'][:12]}`, {replay['samples']} samples)" if replay
                  else f"weights sha256 `{str(entry.get('weights', ''))[:12]}`" + (f", {entry['dtype']}" if entry.get("dtype") else ""))
        models.append(f"{role}: `{entry.get('model')}` via {entry.get('engine')}, {source}")
    machine = manifest.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in sorted(manifest.get("versions", {}).items()))
    contents = "".join(f"\n- [{p.stem.replace('_', ' ')}](#nb-{p.name[:2]})" for p in notebooks)
    return (f"# utscale report: run `{run.run_id}`\n\n"
            f"| | |\n|---|---|\n"
            f"| profile | `{run.profile}` (config sha256 `{str(manifest.get('config_sha256', ''))[:12]}`) |\n"
            f"| generated | {str(manifest.get('created', ''))[:10]} at commit {_commit(manifest.get('git', {}))} |\n"
            f"| rendered | {datetime.now(UTC).date().isoformat()} at commit {_commit(git_state())} |\n"
            f"| models | {'<br>'.join(models) or 'none recorded'} |\n"
            f"| machine | {machine.get('cpu_count', '?')} CPUs, {machine.get('machine', '?')}, {machine.get('platform', '?')} |\n"
            f"| packages | {versions} |\n\n"
            f"**Contents**{contents}\n- [Configuration](#configuration)\n")


def render_report(run: Run) -> Path:
    """One self-contained HTML page (images inline, no input cells, no stderr, no CDN scripts): the
    claims ledger first, then the run's configuration, then every notebook's outputs in order."""
    from nbconvert import HTMLExporter

    executed = sorted((run.path / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    executed.sort(key=lambda p: (not p.name.startswith(REPORT_FIRST), p.name))
    if not executed:
        raise FileNotFoundError(f"no executed notebooks under {run.path / 'notebooks'}")
    combined = nbformat.v4.new_notebook()
    combined.metadata = copy.deepcopy(nbformat.read(executed[0], as_version=4).metadata)
    combined.cells.append(nbformat.v4.new_markdown_cell(provenance_markdown(run, executed), id="provenance"))
    for i, path in enumerate(executed):
        nb = nbformat.read(path, as_version=4)
        combined.cells.append(nbformat.v4.new_markdown_cell(f'<a id="nb-{path.name[:2]}"></a>', id=f"anchor-{path.name[:2]}"))
        cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
        for cell in cells:  # cell ids repeat across notebooks; keep them unique in the combined page
            cell.id = f"{path.name[:2]}-{cell.id}"
            if cell.cell_type == "code":  # engine logs and library warnings stay in the executed notebooks
                cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
        combined.cells.extend(cells)
        if i == 0:
            combined.cells.append(nbformat.v4.new_markdown_cell(config_markdown(run), id="configuration"))
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            template_file=str(REPORT_TEMPLATE))
    body, _ = exporter.from_notebook_node(combined, resources={"metadata": {"name": f"utscale report: {run.run_id}"}})
    out = run.path / "report.html"
    out.write_text(body, encoding="utf-8")
    # after the notebooks it rendered: the sweep counts a point done only when this is the newer
    run.update_manifest(report_rendered=datetime.now(UTC).isoformat(timespec="seconds"))
    return out


def render_index(runs: Sequence[Run], out: Path) -> Path:
    """`out` (results/index.html): every run's ledger verdicts side by side, claim by claim, each run's
    column headed by a link to its report. Missing ledgers show as "not run"."""
    ledgers = {}
    for run in runs:
        path = run.path / "metrics" / "claims_ledger.csv"
        ledgers[run.run_id] = pd.read_csv(path, dtype=str).set_index("claim") if path.exists() else None
    head = "".join(f'<th><a href="{html.escape(r.run_id)}/report.html">{html.escape(r.run_id)}</a><br>'
                   f'<small>{html.escape(r.config["POLICY_MODEL"])} × {r.config["N_SOLUTIONS"]}, '
                   f'{html.escape(r.config["TEST_MODEL"])} × {r.config["N_UNIT_TESTS"]}, {html.escape(r.config["BENCHMARK"])}'
                   f'</small></th>' for r in runs)
    rows = []
    for claim, record in CLAIMS.items():
        cells = []
        for run in runs:
            ledger = ledgers[run.run_id]
            if ledger is None or claim not in ledger.index:
                cells.append("<td>not run</td>")
                continue
            row = ledger.loc[claim]
            colour = VERDICT_COLOURS.get(row.verdict, "#000")
            reason = "" if pd.isna(row.reason) else f"<br><em>{html.escape(row.reason)}</em>"
            cells.append(f'<td><b style="color:{colour}">{html.escape(row.verdict)}</b><br>'
                         f"<small>{html.escape(row.evidence)}{reason}</small></td>")
        rows.append(f'<tr><td>{html.escape(claim)}</td><td>{html.escape(record.statement)}</td>{"".join(cells)}</tr>')
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>utscale: committed runs</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:6px;text-align:left;vertical-align:top}</style></head><body>"
            "<h1>utscale: the committed runs, claim by claim</h1>"
            "<p>Each column is one run; its heading links to the run's full report (figures, tables, notebooks).</p>"
            f'<table id="runs-ledger"><thead><tr><th>claim</th><th>statement</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></body></html>\n")
    atomic_write_text(out, page)
    return out
