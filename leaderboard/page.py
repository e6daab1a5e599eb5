"""The leaderboard page: one static HTML file with sortable columns, plus a Markdown table.

Everything comes from the results store; every value a submitter typed is HTML-escaped. Cells
carry their exact value in ``data-v`` (what the sorter compares and what tests read back), and
show it rounded.
"""

from __future__ import annotations

import html
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facebench.files import atomic_write, json_dumps_strict, replace_dir, temp_dir
from facebench.pose import POSE_BIN_NAMES
from leaderboard.store import Store, read_json

BIN_TITLES = {"frontal": "frontal", "three_quarter": "¾", "profile": "profile", "rear": "rear"}


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    numeric: bool = True
    tip: str = ""


def load_results(store: Store) -> list[dict[str, Any]]:
    """All results, best mean F1 first (NaN last, then by submission time)."""
    rows = [read_json(store, k) for k in store.list("results") if k.endswith(".json")]

    def key(r: dict[str, Any]) -> tuple[float, str]:
        v = r["overall"]["mean_f1_fg"]
        return (-v if isinstance(v, float) and not math.isnan(v) else math.inf, r["submitted_at"])

    return sorted(rows, key=key)


def columns(regions: list[str]) -> list[Column]:
    cols = [Column("rank", "#"), Column("name", "submission", False), Column("badge", "type", False),
            Column("mean_f1", "mean F1", tip="mean F1 over the 18 foreground classes, all images"),
            Column("miou", "mIoU", tip="mean IoU over all 19 classes incl. background")]
    cols += [Column(f"bin:{b}", f"F1 {BIN_TITLES[b]}", tip=f"mean F1 (fg), {b} pose bin") for b in POSE_BIN_NAMES]
    cols += [Column(f"region:{r}", r, tip=f"F1 of {r}") for r in regions]
    cols += [Column("training_data", "training data", False), Column("submitted", "submitted", False),
             Column("sha", "predictions sha256", False), Column("evaluator", "evaluator", False),
             Column("revision", "dataset revision", False)]
    return cols


def cell_value(r: dict[str, Any], key: str, rank: int) -> Any:
    if key == "rank":
        return rank
    if key == "name":
        return r["name"]
    if key == "badge":
        return "verified" if r.get("verified") else "predictions-only"
    if key == "mean_f1":
        return r["overall"]["mean_f1_fg"]
    if key == "miou":
        return r["overall"]["miou"]
    if key.startswith("bin:"):
        b = r["by_pose_bin"].get(key[4:])
        return b["mean_f1_fg"] if b else math.nan
    if key.startswith("region:"):
        c = r["overall"]["per_class"].get(key[7:])
        return c["f1"] if c else math.nan
    if key == "training_data":
        return r["training_data"]
    if key == "submitted":
        return r["submitted_at"][:16].replace("T", " ")
    if key == "sha":
        return r["predictions_sha256"]
    if key == "evaluator":
        return r["evaluator"]["version"].split(" ")[0]
    if key == "revision":
        return r["dataset"]["revision"]
    raise KeyError(key)


def _num(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def _td(col: Column, v: Any) -> str:
    if col.key == "badge":
        return f'<td class="badge {html.escape(v)}" data-v="{html.escape(v)}"><span>{html.escape(v)}</span></td>'
    if col.key == "rank":
        return f'<td data-v="{v}">{v}</td>'
    if col.numeric:
        exact = "" if isinstance(v, float) and math.isnan(v) else repr(float(v))
        return f'<td class="num" data-v="{exact}">{_num(v)}</td>'
    if col.key == "sha":
        return f'<td class="mono" data-v="{html.escape(v)}" title="{html.escape(v)}">{html.escape(v[:12])}</td>'
    return f'<td data-v="{html.escape(str(v))}">{html.escape(str(v))}</td>'


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 6px;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0;user-select:none}
th[aria-sort=descending]::after{content:" ▼"}th[aria-sort=ascending]::after{content:" ▲"}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.mono{font-family:monospace}
.badge span{border-radius:8px;padding:1px 7px;font-size:11px;color:#fff}
.badge.verified span{background:#1a7f37}.badge.predictions-only span{background:#9a6700}
.meta{color:#555;font-size:13px}code{background:#f5f5f5;padding:0 3px}
.wrap{overflow-x:auto}
"""

SCRIPT = """
document.querySelectorAll('#board th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = document.getElementById('board'), body = table.tBodies[0], col = th.cellIndex;
    var numeric = th.dataset.numeric === '1';
    var dir = th.getAttribute('aria-sort') === 'descending' ? 'ascending' : 'descending';
    if (!th.hasAttribute('aria-sort') && !numeric) dir = 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir);
    var sign = dir === 'ascending' ? 1 : -1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      if (numeric) {
        var fx = x === '' ? NaN : parseFloat(x), fy = y === '' ? NaN : parseFloat(y);
        if (isNaN(fx) || isNaN(fy)) return isNaN(fx) - isNaN(fy);  // missing values always last
        return sign * (fx - fy);
      }
      return sign * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def render_html(results: list[dict[str, Any]], title: str = "facebench leaderboard") -> str:
    regions = [n for n in (results[0]["evaluator"]["labels"] if results else []) if n != "background"]
    cols = columns(regions)
    head = "".join(f'<th data-key="{html.escape(c.key)}" data-numeric="{int(c.numeric)}" '
                   f'title="{html.escape(c.tip or c.title)}">{html.escape(c.title)}</th>' for c in cols)
    body = []
    for rank, r in enumerate(results, start=1):
        tds = "".join(_td(c, cell_value(r, c.key, rank)) for c in cols)
        body.append(f'<tr id="req-{html.escape(r["request_id"])}">{tds}</tr>')
    evaluators = sorted({r["evaluator"]["version"] for r in results})
    revisions = sorted({r["dataset"]["revision"] for r in results})
    shas = sorted({r["dataset"]["labels_sha256"] for r in results})
    settings = sorted({json.dumps(r["evaluator"]["metric_settings"], sort_keys=True) for r in results})
    convention = results[0]["evaluator"]["convention"] if results else ""
    meta = (f"<p class='meta'>Evaluator: <code>{html.escape(', '.join(evaluators) or '—')}</code> · "
            f"dataset revision: <code>{html.escape(', '.join(revisions) or '—')}</code> · "
            f"hidden labels sha256: <code>{html.escape(', '.join(shas) or '—')}</code> · "
            f"metric settings: <code>{html.escape(', '.join(settings) or '—')}</code></p>"
            "<p class='meta'><b>verified</b>: the host ran the submitted checkpoint; <b>predictions-only</b>: "
            "the host scored uploaded masks. All scores are computed by the host on the hidden split, whose "
            "labels are never released. Click a column header to sort.</p>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{meta}"
            f"<div class='wrap'><table id='board'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
            f"</tbody></table></div><h2>Convention</h2><p class='meta'>{html.escape(convention)}</p>"
            f"<script>{SCRIPT}</script></body></html>")


def _md_escape(s: str) -> str:
    """Submitted text as inert Markdown: table and link syntax neutralised, then HTML escaped (renderers pass
    raw HTML through), one line."""
    s = " ".join(str(s).split())
    for ch in "\\|[]()`*_!":
        s = s.replace(ch, "\\" + ch)
    return html.escape(s, quote=True)


def render_markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| # | submission | type | mean F1 | mIoU | " + " | ".join(f"F1 {BIN_TITLES[b]}" for b in POSE_BIN_NAMES)
             + " | training data |", "|---" * (6 + len(POSE_BIN_NAMES)) + "|"]
    for rank, r in enumerate(results, start=1):
        bins = " | ".join(_num(cell_value(r, f"bin:{b}", rank)) for b in POSE_BIN_NAMES)
        badge = "verified" if r.get("verified") else "predictions-only"
        lines.append(f"| {rank} | {_md_escape(r['name'])} | {badge} | {_num(r['overall']['mean_f1_fg'])} | "
                     f"{_num(r['overall']['miou'])} | {bins} | {_md_escape(r['training_data'])} |")
    if results:
        lines += ["", f"Evaluator `{results[0]['evaluator']['version']}`, dataset revision "
                      f"`{results[0]['dataset']['revision']}`, hidden labels sha256 "
                      f"`{results[0]['dataset']['labels_sha256']}`."]
    return "\n".join(lines) + "\n"


def build_site(results_store: Store, out: str | Path, title: str = "facebench leaderboard") -> Path:
    """Write ``index.html``, ``leaderboard.md`` and ``results.json`` as the folder ``out``; returns the HTML path.

    The three files are written into a temporary sibling that is swapped in whole, so a reader (or a web
    server) never sees a page from one build beside a table from another."""
    out = Path(out)
    results = load_results(results_store)
    tmp = temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        atomic_write(tmp / "leaderboard.md", render_markdown(results).encode())
        atomic_write(tmp / "results.json", json_dumps_strict(results, indent=1).encode())  # NaN -> null
        atomic_write(tmp / "index.html", render_html(results, title).encode())
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"
