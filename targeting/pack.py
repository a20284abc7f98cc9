"""The tasking pack a neighbourhood tasking meeting prints and works from: the week force-wide
and its top areas first, then one A4 page (or more) per parent area (NPU), the NPUs in order of
need, each with a small map whose numbered hotspots match its list, and blank columns for the
officer, the date done and the outcome, so the printed list comes back filled in.

`tasking.html` is one self-contained page (no scripts, pictures inline) with the protective
marking at the top and bottom of every printed page; `tasking.csv` holds the same rows for a
spreadsheet. Nothing in the pack names a person: hotspots are H3 cells, shown by their nearest
postcode and street.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from targeting import svg
from targeting.plan import TACTIC_COLOURS, TACTIC_NAMES, UNIT_WORDS, units_text
from targeting.report.render import page_css, table_html
from targeting.store import round_as_published, write_csv
from targeting.tasking import Plan

NO_PARENT = "(no parent area)"
TOP_AREAS = 10
TASKING_COLUMNS = (
    "parent_code", "parent_name", "item", "rank", "area_code", "area_name", "tactic", "cell",
    "latitude", "longitude", "nearest_postcode", "street", "score", "parity_gap",
    "expected_signups", "previous_rank", "rank_change", "parity_gap_change",
    "penetration_gap_change", "segment", "reason",
)  # fmt: skip
# what the pack leaves blank for the meeting to fill in by hand
TO_FILL = ("Officer", "Date done", "Outcome")
VISIT_CLASSES = {"Why here": "why", **dict.fromkeys(TO_FILL, "fill-in")}


def compare_with_previous(ranked: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Each area's rank and gaps against an earlier run's `ranked_areas.csv`: `previous_rank`,
    `rank_change` (positive: moved up the list), and the change of each gap (negative: closing)."""
    out = ranked.copy()
    if previous is None:
        for col in ("previous_rank", "rank_change", "parity_gap_change", "penetration_gap_change"):
            out[col] = np.nan
        return out
    before = previous.set_index("area_code")
    out["previous_rank"] = out["area_code"].map(before["rank"])
    out["rank_change"] = out["previous_rank"] - out["rank"]
    for gap in ("parity_gap", "penetration_gap"):
        out[f"{gap}_change"] = out[gap] - out["area_code"].map(before[gap])
    return out


def tasking_rows(plan: Plan, previous: pd.DataFrame | None) -> pd.DataFrame:
    """The tasking list: areas, hotspots and stations, per parent area, in rank order."""
    areas = compare_with_previous(plan.ranked_areas, previous).assign(
        item="area", segment=plan.ranked_areas["segments"]
    )
    parents = plan.ranked_areas.set_index("area_code")[["parent_code", "parent_name"]]
    hotspots = plan.hotspots.assign(
        item="hotspot",
        segment=(
            plan.hotspots["segment"].astype("string")
            + " "
            + plan.hotspots["segment_label"].astype("string").fillna("")
        ).str.strip(),
        parent_name=plan.hotspots["area_code"].map(parents["parent_name"]),
    )
    stations = plan.stations.assign(
        item="station",
        tactic="station",
        parent_code=plan.stations["area_code"].map(parents["parent_code"]),
        parent_name=plan.stations["area_code"].map(parents["parent_name"]),
        parity_gap=plan.stations["covered_parity_gap"],
    )
    rows = pd.concat([areas, hotspots, stations], ignore_index=True).reindex(
        columns=list(TASKING_COLUMNS)
    )
    rows["parent_code"] = rows["parent_code"].astype(object).fillna(NO_PARENT)
    order = {"area": 0, "hotspot": 1, "station": 2}
    return rows.sort_values(
        ["parent_code", "item", "rank"], key=lambda c: c.map(order) if c.name == "item" else c
    ).reset_index(drop=True)


def _label(item: str, rank: Any) -> str:
    """A hotspot's number in the pack and on its map (its force-wide rank); a station's "S1"."""
    return f"S{int(rank)}" if item == "station" else f"{int(rank)}"


MAP_WIDTH, MAP_HEIGHT = 770, 506  # pixels, as the pack's printed maps have been
_PLOT = (8.0, 36.0, 762.0, 500.0)  # the map's frame within the picture: left, top, right, bottom


def _marker(tactic: str, x: float, y: float, colour: str) -> str:
    """A hotspot's dot, or a station's triangle, white-edged so that neighbours stand apart."""
    edge = 'stroke="#ffffff" stroke-width="1.2"'
    if tactic == "station":
        return (
            f'<polygon points="{x:.1f},{y - 6.5:.1f} {x - 6:.1f},{y + 4:.1f} {x + 6:.1f},'
            f'{y + 4:.1f}" fill="{colour}" {edge}/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.8" fill="{colour}" {edge}/>'


def parent_map_svg(outlines: gpd.GeoDataFrame, rows: pd.DataFrame, *, title: str) -> str:
    """A small map (SVG): the parent's area outlines and names, hotspots by tactic and stations,
    each labelled with its number in the pack's lists, zoomed to where the work is so that the
    numbers stand apart (the outlines, clipped to the frame, give bearings)."""
    points = rows[rows["item"] != "area"]
    if len(points):
        x0, x1 = points["longitude"].min(), points["longitude"].max()
        y0, y1 = points["latitude"].min(), points["latitude"].max()
        pad = max(x1 - x0, y1 - y0, 0.01) * 0.12
        x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
    elif len(outlines):
        x0, y0, x1, y1 = outlines.total_bounds
    else:
        x0, y0, x1, y1 = -0.01, -0.01, 0.01, 0.01
    # degrees of longitude are shorter than degrees of latitude by the cosine of the latitude
    stretch = float(np.cos(np.radians((y0 + y1) / 2)))
    left, top, right, bottom = _PLOT
    scale = min(
        (right - left) / max((x1 - x0) * stretch, 1e-9), (bottom - top) / max(y1 - y0, 1e-9)
    )
    mid_x, mid_y = (x0 + x1) / 2, (y0 + y1) / 2

    def to_picture(coords: np.ndarray) -> np.ndarray:
        return np.column_stack([
            (left + right) / 2 + (coords[:, 0] - mid_x) * stretch * scale,
            (top + bottom) / 2 - (coords[:, 1] - mid_y) * scale,
        ])  # fmt: skip

    rings = shapely.get_parts(shapely.get_parts(outlines.boundary.to_numpy()))
    # a third of a pixel is below what the picture can show: fewer points, a smaller page
    drawn = shapely.simplify(shapely.transform(rings, to_picture), 0.3)
    paths = [
        "M" + " ".join(f"{x:.1f},{y:.1f}" for x, y in shapely.get_coordinates(ring))
        for ring in drawn
    ]
    parts = [
        f'<clipPath id="frame"><rect x="{left}" y="{top}" width="{right - left}" '
        f'height="{bottom - top}"/></clipPath><g clip-path="url(#frame)">',
        *(f'<path d="{d}" fill="none" stroke="#555555" stroke-width="1.1"/>' for d in paths),
    ]
    if len(outlines):
        anchors = to_picture(shapely.get_coordinates(outlines.geometry.representative_point()))
        for (x, y), name in zip(anchors, outlines["area_name"], strict=True):
            # control characters have no glyph; the label shows the rest of the name
            shown = re.sub(r"[\x00-\x1f\x7f]", "", str(name))[:40]
            parts.append(svg.text(x, y, shown, size=10.5, anchor="middle", fill="#555555"))
    at = to_picture(points[["longitude", "latitude"]].to_numpy(dtype=float).reshape(-1, 2))
    shown_tactics = [t for t in TACTIC_COLOURS if (points["tactic"] == t).any()]
    for tactic in shown_tactics:
        chosen = (points["tactic"] == tactic).to_numpy()
        parts += [_marker(tactic, x, y, TACTIC_COLOURS[tactic]) for x, y in at[chosen]]
    parts += [
        svg.text(x + 6, y - 4.5, _label(item, rank), size=10.5, fill="#111111", bold=True)
        for (x, y), item, rank in zip(at, points["item"], points["rank"], strict=True)
    ]
    parts.append("</g>")
    if shown_tactics:
        names = [TACTIC_NAMES.get(t, t) for t in shown_tactics]
        box_w, box_h = 34 + 6.5 * max(len(n) for n in names), 8 + 17 * len(names)
        # in the lower right corner of the drawn extent (the frame's may be far from it)
        corner = to_picture(np.array([[x1, y0]]))[0]
        bx, by = min(corner[0], right) - box_w - 4, min(corner[1], bottom) - box_h - 4
        parts.append(
            f'<rect x="{bx:.1f}" y="{by:.1f}" width="{box_w:.1f}" height="{box_h}" rx="3" '
            'fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>'
        )
        for i, (tactic, name) in enumerate(zip(shown_tactics, names, strict=True)):
            y = by + 13 + 17 * i
            parts += [
                _marker(tactic, bx + 14, y - 1, TACTIC_COLOURS[tactic]),
                svg.text(bx + 26, y + 3.5, name, size=10.5),
            ]
    parts.insert(0, svg.text(MAP_WIDTH / 2, 22, title, size=13, anchor="middle"))
    return svg.document(MAP_WIDTH, MAP_HEIGHT, parts, title=f"Map of {title}")


def _text(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _anchor(parent: Any) -> str:
    """A parent's section id: letters, digits and hyphens only, so every link works."""
    return "parent-" + re.sub(r"[^A-Za-z0-9-]+", "-", str(parent)).strip("-")


def _number(value: Any, digits: int = 0) -> str:
    return "" if value is None or pd.isna(value) else f"{value:,.{digits}f}"


def _change(value: Any) -> str:
    """A change of rank: ▲ up, ▼ down, – same; blank when the area is new."""
    if value is None or pd.isna(value):
        return ""
    n = int(value)
    return f"▲ {n}" if n > 0 else f"▼ {-n}" if n < 0 else "–"


def _tactic(row: Mapping[Hashable, Any]) -> str:
    return TACTIC_NAMES.get(str(row["tactic"]), str(row["tactic"]))


def _areas_table(areas: pd.DataFrame, *, with_parent: bool, previous: bool) -> pd.DataFrame:
    """Ranked areas for reading: human headers, numbers rounded as the CSVs publish them."""
    # only the columns shown are rounded: the ranked areas carry scores of every kind
    shown = ["rank", "area_name", "parent_name", "tactic", *(col for col, _ in UNIT_WORDS),
             "parity_gap", "expected_signups", "previous_rank", "rank_change", "reason"]  # fmt: skip
    records = round_as_published(areas[[c for c in shown if c in areas.columns]]).to_dict("records")
    table = pd.DataFrame(
        {
            "Rank": [_number(r["rank"]) for r in records],
            "Area": [str(r["area_name"]) for r in records],
            **({"NPU": [_text(r["parent_name"]) for r in records]} if with_parent else {}),
            "Tactic": [_tactic(r) for r in records],
            "This week": [units_text(r) or "–" for r in records],
            "Parity gap": [_number(r["parity_gap"]) for r in records],
            "Expected sign-ups": [_number(r["expected_signups"], 1) for r in records],
            **(
                {
                    "Last run": [_number(r["previous_rank"]) for r in records],
                    "Move": [_change(r["rank_change"]) for r in records],
                }
                if previous
                else {}
            ),
            "Why": [str(r["reason"]) for r in records],
        }
    )
    return table


def _visits_table(part: pd.DataFrame) -> pd.DataFrame:
    """Hotspots and station sites for the printed list: number, place, what to do, the
    neighbourhood type, and the blank columns to fill in; on `part`'s index. The street column
    shows only where the postcode data names streets (`_without_blank_streets`)."""
    visits = part[part["item"] != "area"]
    rows = visits.to_dict("records")
    table = pd.DataFrame(
        {
            "No.": [_label(r["item"], r["rank"]) for r in rows],
            "Area": [str(r["area_name"]) for r in rows],
            "Tactic": [_tactic(r) for r in rows],
            "Nearest postcode": [str(r["nearest_postcode"] or "") for r in rows],
            "Street": [str(r["street"]) if pd.notna(r["street"]) else "" for r in rows],
            "Why here": [
                str(r["reason"]) if r["item"] == "hotspot" else "mobile police station site"
                for r in rows
            ],
            "Type": [_segment_code(r["segment"]) for r in rows],
            **{name: [""] * len(rows) for name in TO_FILL},
        },
        index=visits.index,
    )
    return table


def _by_key(frame: pd.DataFrame, keys: pd.Series) -> dict[Hashable, pd.DataFrame]:
    """`frame`'s rows by their key (`keys`, row for row), each part in `frame`'s order; rows
    without a key are left out."""
    return dict(list(frame.groupby(keys.to_numpy(), sort=False)))


def _without_blank_streets(visits: pd.DataFrame) -> pd.DataFrame:
    """A part of `_visits_table` without its street column where it names no street."""
    return visits if visits["Street"].ne("").any() else visits.drop(columns="Street")


def _segment_code(value: Any) -> str:
    """The segment code at the start of a tasking row's segment text ("S04 high ..." -> "S04")."""
    return "" if value is None or pd.isna(value) else str(value).split(" ")[0]


def _types_key(part: pd.DataFrame, portraits: pd.Series | None) -> str:
    """The neighbourhood types of an NPU's hotspots in words, as an HTML list."""
    if portraits is None:
        return ""
    codes = sorted(
        {_segment_code(v) for v in part.loc[part["item"] == "hotspot", "segment"]} - {""}
    )
    shown = [(c, portraits.get(c)) for c in codes if pd.notna(portraits.get(c))]
    if not shown:
        return ""
    return (
        '<p class="note types"><b>Neighbourhood types (Type):</b> '
        + " ".join(f"{html.escape(c)}: {html.escape(str(text))}" for c, text in shown)
        + "</p>"
    )


def _parent_order(rows: pd.DataFrame) -> list[Hashable]:
    """Parent areas by need: the largest parity gap over their areas first, then the best
    ranked area."""
    areas = rows[rows["item"] == "area"]
    need = areas.groupby("parent_code").agg(gap=("parity_gap", "sum"), best=("rank", "min"))
    return list(need.sort_values(["gap", "best"], ascending=[False, True]).index)


def _week_line(row: Mapping[Hashable, Any] | None, *, areas: int) -> str:
    """An NPU's week in one line, from `plan.csv`: its units, officer hours and expected
    sign-ups."""
    units = units_text(row) if row is not None else ""
    if row is None or not units:
        return f"{areas} areas; nothing planned this week."
    return (
        f"{areas} areas; this week {units}: {row['officer_hours']:,.0f} officer hours, "
        f"about {row['expected_signups']:,.0f} sign-ups expected, "
        f"{row['expected_gain']:,.1f} of them from the origins the areas are short of."
    )


def _force_line(plan: pd.DataFrame) -> str:
    totals = plan[["hotspots", "street_sites", "station_days", "social_posts", "officer_hours",
                   "expected_signups", "expected_gain"]].sum()  # fmt: skip
    units = units_text(totals.to_dict())
    return (
        f"This week force-wide: {units or 'nothing planned'}; {totals['officer_hours']:,.0f} "
        f"officer hours, about {totals['expected_signups']:,.0f} sign-ups expected, "
        f"{totals['expected_gain']:,.1f} of them from the origins the areas are short of. "
        "The NPU pages follow, largest parity gap first; each starts on a new page."
    )


def tasking_html(
    rows: pd.DataFrame,
    plan: Plan,
    *,
    outlines: gpd.GeoDataFrame,
    portraits: pd.Series | None,
    previous: bool,
    marking: str,
    as_of: dt.date,
) -> str:
    """The printable pack as one self-contained page."""
    esc = html.escape
    title = f"Tasking pack: week to {as_of:%d %B %Y}"
    week = (
        plan.plan.assign(
            parent_code=plan.plan["parent_code"].astype(object).fillna(NO_PARENT).astype(str)
        )
        .set_index("parent_code")
        .to_dict("index")
    )
    # the areas as ranked (with the week's units), and their moves from the tasking rows
    ranked = plan.ranked_areas.merge(
        rows.loc[rows["item"] == "area", ["area_code", "previous_rank", "rank_change"]],
        on="area_code",
        how="left",
    ).sort_values("rank")
    top = ranked.head(TOP_AREAS)
    order = _parent_order(rows)
    names = (
        rows.dropna(subset=["parent_name"])
        .drop_duplicates("parent_code")
        .set_index("parent_code")["parent_name"]
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{page_css(marking)}"
        ".npu{break-before:page}.fill-in{min-width:4.5rem}.why{min-width:13rem}"
        ".types{font-size:.8rem}"
        "@media print{.fill td{height:8mm}.fill-in{width:19mm}.why{width:34%}table{font-size:7pt;margin:.2rem 0 .6rem}"
        "th,td{padding:.1rem .25rem}img{max-height:80mm;display:block;margin:auto}"
        "h1{font-size:15pt}h2{font-size:12pt;margin-top:0}h3{font-size:9.5pt;margin:.3rem 0}"
        ".note{font-size:8pt;margin:.2rem 0}}"
        "</style></head><body>",
        f'<div class="marking">{esc(marking)}</div>',
        f"<h1>{esc(title)}</h1>",
        '<p class="note">For engagement, not enforcement: where to knock on doors, talk in the '
        "street and park the mobile station, to invite under-represented residents into the "
        "alert system. Aggregates only; small counts are suppressed.</p>",
        f'<section id="force"><h2>Top {len(top)} areas force-wide</h2>',
        f'<p class="note">{esc(_force_line(plan.plan))}</p>',
        table_html(_areas_table(top, with_parent=True, previous=previous)),
        '<h3>NPUs in this pack</h3><p class="note">'
        + " · ".join(f'<a href="#{_anchor(p)}">{esc(str(names.get(p, p)))}</a>' for p in order)
        + "</p></section>",
    ]
    # each parent's rows, visits, outlines and areas' table, split once rather than per parent
    area_parent = rows.loc[rows["item"] == "area"].set_index("area_code")["parent_code"]
    all_visits = _visits_table(rows)
    shown = _areas_table(ranked, with_parent=False, previous=previous)
    by_parent = _by_key(rows, rows["parent_code"])
    visits_of = _by_key(all_visits, rows.loc[all_visits.index, "parent_code"])
    outlines_of = _by_key(outlines, outlines["area_code"].map(area_parent))
    shown_of = _by_key(shown, ranked["area_code"].map(area_parent))
    for parent in order:
        part = by_parent[parent]
        label = str(names.get(parent, parent))
        areas = part[part["item"] == "area"]
        visits = _without_blank_streets(visits_of.get(parent, all_visits.iloc[:0]))
        picture = parent_map_svg(outlines_of.get(parent, outlines.iloc[:0]), part, title=label)
        parts += [
            f'<section class="npu" id="{_anchor(parent)}"><h2>{esc(label)}</h2>',
            f'<p class="note">{esc(_week_line(week.get(str(parent)), areas=len(areas)))}</p>',
            f'<img src="{svg.data_uri(picture)}" alt="Map of {esc(label)}: area outlines, '
            'hotspots numbered as in the list below, station sites">',
            "<h3>Hotspots and station sites</h3>",
            _types_key(part, portraits),
            table_html(visits, classes="fill", column_classes=VISIT_CLASSES)
            if len(visits)
            else '<p class="note">None this week.</p>',
            "<h3>Areas</h3>",
            table_html(shown_of.get(parent, shown.iloc[:0])),
            "</section>",
        ]
    parts += [f'<div class="marking">{esc(marking)}</div>', "</body></html>"]
    return "\n".join(parts) + "\n"


def write_tasking_pack(
    folder: Path,
    plan: Plan,
    *,
    outlines: gpd.GeoDataFrame,
    portraits: pd.Series | None,
    previous: pd.DataFrame | None,
    marking: str,
    as_of: dt.date,
) -> pd.DataFrame:
    """Write `tasking.csv` and `tasking.html` into `folder`; return the tasking rows."""
    rows = tasking_rows(plan, previous)
    write_csv(rows, folder / "tasking.csv")
    page = tasking_html(rows, plan, outlines=outlines, portraits=portraits,
                        previous=previous is not None, marking=marking, as_of=as_of)  # fmt: skip
    (folder / "tasking.html").write_text(page, encoding="utf-8")
    return rows
