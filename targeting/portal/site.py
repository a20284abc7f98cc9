"""The portal's pages: a force page, a page per NPU (parent) and per area, each with its trend
charts, the sortable tables of places under it, and links to each run's own files.

Pages are plain HTML with their figures inline as JSON; `portal.js` (drawing and sorting) and
plotly's bundle are written once beside them, so the site opens from a file share or any web
server with no network.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from targeting.portal.charts import (
    FORCE_COLOUR,
    PARENT_COLOUR,
    PLACE_COLOUR,
    index_figure,
    measure_figure,
    visits_figure,
)
from targeting.portal.series import Series

PLOTLY_FILE, SCRIPT_FILE = "plotly.min.js", "portal.js"
FOLDERS = {"force": "", "parent": "npu", "area": "area"}
RUN_FILES = (("map.html", "map"), ("report.html", "report"), ("tasking.html", "tasking pack"))
# how many snapshots back the table's "recent change" column looks
RECENT = 3

CSS = """
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1a1a1a}
header{background:#08306b;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.3rem 1rem;
  align-items:baseline}
header .marking{font-weight:700;letter-spacing:.04em}
header a{color:#fff}
main{max-width:1200px;margin:0 auto;padding:0 1rem 2rem}
nav.crumbs{margin:.8rem 0 0;font-size:.95rem}
h1{margin:.3rem 0 .2rem;font-size:1.7rem}
h2{margin:1.6rem 0 .5rem;font-size:1.25rem}
.lead{margin:.2rem 0 1rem;color:#333}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:.6rem;margin:.6rem 0}
.kpi{border:1px solid #c6dbef;border-radius:6px;padding:.5rem .7rem;background:#f7fbff}
.kpi b{display:block;font-size:1.45rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,460px),1fr));gap:1rem}
.chart{border:1px solid #ddd;border-radius:6px;padding:.3rem;min-height:300px}
.wide{grid-column:1/-1}
.table-wrap{overflow-x:auto;border:1px solid #ddd;border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:.93rem}
th,td{padding:.45rem .55rem;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{white-space:normal;vertical-align:bottom;min-width:5.5rem}
th:first-child,td:first-child,th.text,td.text{text-align:left}
th button{font:inherit;font-weight:700;background:none;border:0;padding:.35rem 0;cursor:pointer;
  min-height:44px;text-align:inherit}
th[aria-sort=ascending] button::after{content:" \\25B2"}
th[aria-sort=descending] button::after{content:" \\25BC"}
.presets{display:flex;flex-wrap:wrap;gap:.5rem;margin:.4rem 0 .6rem}
.presets button{font:inherit;min-height:44px;padding:.3rem .8rem;border:1px solid #08519c;
  border-radius:22px;background:#fff;color:#08519c;cursor:pointer}
.presets button[aria-pressed=true]{background:#08519c;color:#fff}
.note{font-size:.9rem;color:#444;max-width:60rem}
a{color:#08519c}
@media print{.presets,th button::after{display:none}.chart{break-inside:avoid}}
"""

SCRIPT = """
(function () {
  "use strict";
  window.__errors = window.__errors || [];
  window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
  function draw() {
    document.querySelectorAll(".chart").forEach(function (box) {
      var spec = JSON.parse(box.querySelector("script[type='application/json']").textContent);
      var target = box.querySelector(".plot");
      Plotly.newPlot(target, spec.data, spec.layout, {displayModeBar: false, responsive: true});
    });
  }
  function value(row, col) {
    var cell = row.cells[col];
    var v = cell.getAttribute("data-value");
    return v === null ? cell.textContent.trim() : v;
  }
  function sortBy(table, col, dir) {
    var body = table.tBodies[0];
    var numeric = table.tHead.rows[0].cells[col].getAttribute("data-type") === "number";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, col), y = value(b, col);
      if (numeric) {
        var blankX = x === "", blankY = y === "";
        if (blankX || blankY) { return blankX === blankY ? 0 : (blankX ? 1 : -1); }
        return dir * (parseFloat(x) - parseFloat(y));
      }
      return dir * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === col) { th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending"); }
      else { th.removeAttribute("aria-sort"); }
    });
  }
  function wire() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
        var button = th.querySelector("button");
        if (!button) { return; }
        button.addEventListener("click", function () {
          sortBy(table, i, th.getAttribute("aria-sort") === "ascending" ? -1 : 1);
        });
      });
    });
    document.querySelectorAll(".presets button").forEach(function (button) {
      button.addEventListener("click", function () {
        var table = document.getElementById(button.getAttribute("data-table"));
        var head = table.tHead.rows[0].cells;
        var col = Array.prototype.findIndex.call(head, function (th) {
          return th.getAttribute("data-key") === button.getAttribute("data-key");
        });
        sortBy(table, col, parseInt(button.getAttribute("data-dir"), 10));
        button.parentNode.querySelectorAll("button").forEach(function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    wire();
    try { draw(); } catch (e) { window.__errors.push(String(e)); }
  });
})();
"""


def slug(code: str) -> str:
    """A file name for a place's page from its code."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(code)).strip("-") or "place"


def page_path(level: str, code: str) -> str:
    """A place's page, relative to the site's root."""
    return "index.html" if level == "force" else f"{FOLDERS[level]}/{slug(code)}.html"


def _rel(target: str, *, depth: int) -> str:
    return "../" * depth + target


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float, spec: str = ",.1f", *, blank: str = "–") -> str:
    return (
        blank
        if value is None or (isinstance(value, float) and np.isnan(value))
        else format(value, spec)
    )


def _count(value: float, *, threshold: int) -> str:
    """A published count as shown: "<10" where withheld."""
    return f"<{threshold}" if np.isnan(value) else f"{value:,.0f}"


def _long_date(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def _chart(chart_id: str, figure: dict[str, Any], *, wide: bool = False) -> str:
    spec = json.dumps(figure, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        f'<div class="chart{" wide" if wide else ""}" id="{chart_id}">'
        f'<div class="plot"></div><script type="application/json">{spec}</script></div>'
    )


def _by_date(frame: pd.DataFrame, column: str, dates: Sequence[dt.date]) -> pd.Series:
    return frame.set_index("as_of")[column].reindex(list(dates))


# the measures charted for a place against its NPU and the force: chart id, column, title
# ({days}: the ratings' window), axis title, whether a share
MEASURE_CHARTS = (
    ("chart-per1000", "per_1000", "Sign-ups per 1,000 residents", "per 1,000", False),
    ("chart-watch", "watch_coverage", "Neighbourhood Watch coverage (share of households)",
     "share of households", True),
    ("chart-low", "low_share", "Low ratings (share of ratings in the {days} days before)",
     "share of ratings", True),
    ("chart-unreachable", "unreachable_per_1000",
     "Sign-ups not reached by messages (per 1,000 sign-ups)", "per 1,000 sign-ups", False),
)  # fmt: skip
CHART_ORDER = (
    "chart-per1000", "chart-watch", "chart-index", "chart-low", "chart-unreachable",
    "chart-hotspots",
)  # fmt: skip
WIDE_CHARTS = ("chart-index", "chart-hotspots")


def _charts(series: Series, level: str, code: str, parent: str | None) -> str:
    """A place's trend charts, against its parent and the force."""
    p, dates = series.places, series.dates
    iso = [d.isoformat() for d in dates]
    own = p[(p["level"] == level) & (p["code"] == code)]
    comparators: list[tuple[str, pd.DataFrame, str]] = [("this place", own, PLACE_COLOUR)]
    if parent is not None:
        comparators.append(
            ("its NPU", p[(p["level"] == "parent") & (p["code"] == parent)], PARENT_COLOUR)
        )
    if level != "force":
        comparators.append(("force", p[p["level"] == "force"], FORCE_COLOUR))

    def lines(column: str) -> list[tuple[str, pd.Series, str]]:
        return [(name, _by_date(frame, column, dates), colour)
                for name, frame, colour in comparators]  # fmt: skip

    o = series.origins
    mine = o[(o["level"] == level) & (o["code"] == code) & (o["origin_level"] == "origin")]
    index = mine.pivot(index="as_of", columns="origin", values="representation_index").reindex(
        list(dates)
    )
    # the origins with most residents here first: those whose index moves the place most
    shares = mine[mine["as_of"] == dates[-1]].set_index("origin")["target_rate"]
    index = index.loc[:, index.notna().any()]
    index = index[sorted(index.columns, key=lambda c: -float(shares.get(c, 0.0)))]
    charts = {
        chart_id: measure_figure(lines(column), dates=iso, percent=percent, y_title=y_title,
                                 title=title.format(days=series.quality_days))
        for chart_id, column, title, y_title, percent in MEASURE_CHARTS
    }  # fmt: skip
    charts["chart-index"] = index_figure(index, dates=iso, title="Representation index by origin")
    charts["chart-hotspots"] = visits_figure(
        _by_date(own, "hotspots_planned", dates), _by_date(own, "hotspots_visited", dates),
        dates=iso, colour=PLACE_COLOUR,
    )  # fmt: skip
    figures = [_chart(chart_id, charts[chart_id], wide=chart_id in WIDE_CHARTS)
               for chart_id in CHART_ORDER]  # fmt: skip
    return '<section class="charts">' + "".join(figures) + "</section>"


def _kpis(series: Series, level: str, code: str) -> str:
    p = series.places
    own = p[(p["level"] == level) & (p["code"] == code)].set_index("as_of")
    first, last = own.iloc[0], own.iloc[-1]
    change = last["per_1000"] - first["per_1000"]
    arrow = "▲" if change > 0 else "▼" if change < 0 else "–"
    boxes = [
        ("Sign-ups per 1,000 residents", _fmt(last["per_1000"]),
         f"{arrow} {_fmt(abs(change))} since {_long_date(series.dates[0])}"
         if not np.isnan(change) else "no change measurable"),
        ("Sign-ups", _count(last["signups"], threshold=series.threshold),
         f"of {last['residents']:,.0f} residents"),
        ("Parity gap", _fmt(last["parity_gap"], ",.0f"),
         "more sign-ups of under-represented origins to reach their share"),
        ("Watch coverage", _fmt(last["watch_coverage"], ".0%"), "of households"),
        ("Low ratings", _fmt(last["low_share"], ".0%"),
         f"mean rating {_fmt(last['mean_rating'])} (1 to 6)"),
        ("Hotspots planned", _fmt(last["hotspots_planned"], ",.0f"),
         f"in the run of {_long_date(series.dates[-1])}"),
    ]  # fmt: skip
    if not pd.isna(last["hotspots_visited"]):
        boxes.append((
            "Hotspots visited", _fmt(last["hotspots_visited"], ",.0f"),
            f"{_count(last['visit_signups'], threshold=series.threshold)} sign-ups there since "
            "their visit",
        ))  # fmt: skip
    return (
        '<section class="kpis">'
        + "".join(
            f'<div class="kpi">{_e(title)}<b>{_e(value)}</b>{_e(note)}</div>'
            for title, value, note in boxes
        )
        + "</section>"
    )


def place_table(series: Series, level: str, *, parent: str | None, depth: int) -> pd.DataFrame:
    """The places of a level (under `parent`, if given) with their latest measures and trends:
    what the sortable table shows, one row per place."""
    p, dates = series.places, series.dates
    rows = p[p["level"] == level]
    if parent is not None:
        rows = rows[rows["parent_code"] == parent]
    latest = rows[rows["as_of"] == dates[-1]].set_index("code")
    first = rows[rows["as_of"] == dates[0]].set_index("code")
    recent = rows[rows["as_of"] == dates[max(0, len(dates) - 1 - RECENT)]].set_index("code")
    o = series.origins
    lowest = (
        o[(o["level"] == level) & (o["as_of"] == dates[-1]) & (o["origin_level"] == "origin")
          & (o["target_rate"] >= 0.01)]
        .dropna(subset=["representation_index"])
        .sort_values("representation_index")
        .drop_duplicates("code")
        .set_index("code")
    )  # fmt: skip
    table = pd.DataFrame(index=latest.index)
    table["name"] = latest["name"]
    table["link"] = [_rel(page_path(level, c), depth=depth) for c in latest.index]
    table["parent_name"] = latest["parent_name"]
    table["per_1000"] = latest["per_1000"]
    table["change"] = latest["per_1000"] - first["per_1000"].reindex(latest.index)
    table["recent_change"] = latest["per_1000"] - recent["per_1000"].reindex(latest.index)
    table["parity_gap"] = latest["parity_gap"]
    table["parity_gap_change"] = latest["parity_gap"] - first["parity_gap"].reindex(latest.index)
    table["lowest_origin"] = lowest["origin"].reindex(latest.index)
    table["lowest_index"] = lowest["representation_index"].reindex(latest.index)
    table["watch_coverage"] = latest["watch_coverage"]
    table["low_share"] = latest["low_share"]
    table["hotspots_planned"] = latest["hotspots_planned"]
    table["hotspots_visited"] = latest["hotspots_visited"]
    return table.sort_values("per_1000", na_position="last")


TABLE_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    # key, header, type, format
    ("name", "Place", "text", ""),
    ("parent_name", "NPU", "text", ""),
    ("per_1000", "Sign-ups per 1,000", "number", ",.1f"),
    ("change", "Change since first date", "number", "+,.1f"),
    ("recent_change", f"Change over last {RECENT} dates", "number", "+,.1f"),
    ("parity_gap", "Parity gap", "number", ",.0f"),
    ("parity_gap_change", "Parity gap change", "number", "+,.0f"),
    ("lowest_index", "Lowest index (origin)", "number", ",.0f"),
    ("watch_coverage", "Watch coverage", "number", ".0%"),
    ("low_share", "Low ratings", "number", ".0%"),
    ("hotspots_planned", "Hotspots planned", "number", ",.0f"),
    ("hotspots_visited", "Hotspots visited", "number", ",.0f"),
)
PRESETS = (
    ("Still lowest", "per_1000", 1),
    ("Fastest falling", "recent_change", 1),
    ("Widest parity gap", "parity_gap", -1),
    ("Gap closing fastest", "parity_gap_change", 1),
)


def _table_html(table: pd.DataFrame, *, table_id: str, caption: str, with_parent: bool) -> str:
    columns = [c for c in TABLE_COLUMNS if with_parent or c[0] != "parent_name"]
    head = "".join(
        f'<th scope="col" data-key="{key}" data-type="{kind}"'
        f'{" class=text" if kind == "text" else ""}><button type="button">{_e(title)}</button></th>'
        for key, title, kind, _ in columns
    )
    body = []
    for code, row in table.iterrows():
        cells = []
        for key, _, kind, spec in columns:
            value = row[key]
            if key == "name":
                cells.append(f'<td class="text" data-value="{_e(value)}">'
                             f'<a href="{_e(row["link"])}">{_e(value)}</a></td>')  # fmt: skip
            elif kind == "text":
                cells.append(f'<td class="text">{_e("" if pd.isna(value) else value)}</td>')
            else:
                number = "" if pd.isna(value) else repr(float(value))
                shown = _fmt(float(value), spec) if number else "–"
                if key == "lowest_index" and number:
                    shown += f" ({row['lowest_origin']})"
                cells.append(f'<td data-value="{number}">{_e(shown)}</td>')
        body.append(f'<tr data-code="{_e(code)}">{"".join(cells)}</tr>')
    presets = "".join(
        f'<button type="button" aria-pressed="false" data-table="{table_id}" data-key="{key}" '
        f'data-dir="{direction}">{_e(label)}</button>'
        for label, key, direction in PRESETS
    )
    return (
        f'<div class="presets" role="group" aria-label="Sort by">{presets}</div>'
        f'<div class="table-wrap"><table class="sortable" id="{table_id}"><caption class="note">'
        f"{_e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
        "</table></div>"
    )


def _runs_html(series: Series, snapshots: pd.DataFrame, *, page_dir: Path) -> str:
    """Each date, where it came from, and links to its run's own files where they are."""
    rows = []
    force = series.places[series.places["level"] == "force"].set_index("as_of")["signups"]
    for as_of, source, run_dir in snapshots[["as_of", "source", "run_dir"]].itertuples(
        index=False, name=None
    ):
        links = []
        if isinstance(run_dir, str) and run_dir:
            for name, label in RUN_FILES:
                target = Path(run_dir) / name
                if target.is_file():
                    rel = os.path.relpath(target, page_dir)
                    links.append(f'<a href="{_e(Path(rel).as_posix())}">{label}</a>')
        came = "run" if source == "run" else "reconstructed from a later run"
        signups = _count(float(force[as_of]), threshold=series.threshold)
        rows.append(
            f"<tr><td>{_long_date(as_of)}</td><td class=text>{came}</td>"
            f"<td>{signups}</td><td class=text>{' · '.join(links) or '–'}</td></tr>"
        )
    return (
        '<div class="table-wrap"><table><thead><tr><th>Date</th><th class=text>From</th>'
        "<th>Sign-ups (force)</th><th class=text>The run's own files</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div><p class=note>A run's own files give exact figures for its "
        "date: keep them within the force, since two dates' exact tables differ by small "
        "counts. The portal's figures are rounded so that they can be compared across dates.</p>"
    )


def page_html(
    series: Series,
    *,
    level: str,
    code: str,
    snapshots: pd.DataFrame,
    site: Path,
    marking: str,
) -> str:
    """One place's page."""
    p = series.places
    own = p[(p["level"] == level) & (p["code"] == code)].iloc[-1]
    depth = 0 if level == "force" else 1
    parent = own["parent_code"] if level == "area" and pd.notna(own["parent_code"]) else None
    title = series.force if level == "force" else str(own["name"])
    crumbs = [f'<a href="{_rel("index.html", depth=depth)}">{_e(series.force)}</a>']
    if parent is not None:
        crumbs.append(
            f'<a href="{_rel(page_path("parent", parent), depth=depth)}">'
            f"{_e(own['parent_name'])}</a>"
        )
    kind = {"force": "The force", "parent": "NPU", "area": "Area"}[level]
    lead = (
        f"{kind}. {len(series.dates)} dates, {_long_date(series.dates[0])} to "
        f"{_long_date(series.dates[-1])}."
    )
    body = [_kpis(series, level, code), _charts(series, level, code, parent)]
    if level == "force" and (p["level"] == "parent").any():
        body += ["<h2>NPUs</h2>", _table_html(
            place_table(series, "parent", parent=None, depth=depth), table_id="npus",
            caption="Each NPU at the latest date; click a heading to sort.", with_parent=False,
        )]  # fmt: skip
    if level in ("force", "parent"):
        body += ["<h2>Areas</h2>", _table_html(
            place_table(series, "area", parent=code if level == "parent" else None, depth=depth),
            table_id="areas", caption="Each area at the latest date; click a heading to sort.",
            with_parent=level == "force",
        )]  # fmt: skip
    body += ["<h2>Dates</h2>", _runs_html(series, snapshots, page_dir=site / FOLDERS[level])]
    body.append(
        f"<h2>How these figures are protected</h2><p class=note>Every count of sign-ups, "
        f"ratings and unreachable sign-ups is rounded on its own to the nearest "
        f"{series.threshold} (a published {series.threshold * 4} means "
        f"{series.threshold * 4 - series.threshold // 2} to "
        f"{series.threshold * 4 + series.threshold - series.threshold // 2 - 1}), counts from 1 "
        f"to {series.threshold - 1} show as &lt;{series.threshold}, and every rate, index and "
        "gap is worked out from the rounded counts, so parts need not add up to their totals and "
        "no small count can be recovered by comparing dates, places or origins. Census and "
        "Watch figures are public. For engagement (inviting people in), not enforcement.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}: engagement portal</title><style>{CSS}</style>
<script src="{_rel(PLOTLY_FILE, depth=depth)}"></script>
<script src="{_rel(SCRIPT_FILE, depth=depth)}"></script></head>
<body><header><span class="marking">{_e(marking)}</span>
<span>{_e(series.force)}: engagement portal</span></header>
<main><nav class="crumbs" aria-label="Where you are">{" &rsaquo; ".join(crumbs)}</nav>
<h1>{_e(title)}</h1><p class="lead">{_e(lead)}</p>
{"".join(body)}
</main></body></html>
"""
