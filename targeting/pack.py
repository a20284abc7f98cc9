"""The tasking pack a neighbourhood tasking meeting reads: per parent area (NPU), its ranked areas,
the week's hotspots with their tactic and nearest postcode, the station sites, a small static map,
and, given an earlier run, how each area moved.

`tasking.html` is one self-contained, printable page (the report's layout, protective marking at
top and bottom); `tasking.csv` holds the same rows for a spreadsheet.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from targeting.plan import TACTIC_COLOURS
from targeting.report import Section, sections_to_html
from targeting.store import write_csv
from targeting.tasking import Plan

NO_PARENT = "(no parent area)"
TASKING_COLUMNS = (
    "parent_code", "parent_name", "item", "rank", "area_code", "area_name", "tactic", "cell",
    "latitude", "longitude", "nearest_postcode", "score", "parity_gap", "expected_signups",
    "previous_rank", "rank_change", "parity_gap_change", "penetration_gap_change", "segment",
    "reason",
)  # fmt: skip


def nearest_postcodes(
    lat: np.ndarray, lon: np.ndarray, postcodes: pd.DataFrame | None
) -> np.ndarray:
    """The postcode nearest each point (`key, latitude, longitude` table, keys without spaces),
    written with its space ("B35 6AB"); blank without postcodes."""
    if postcodes is None or postcodes.empty or len(lat) == 0:
        return np.full(len(lat), "", dtype=object)
    scale = np.cos(np.radians(float(np.mean(lat))))
    tree = cKDTree(
        np.column_stack([postcodes["latitude"], postcodes["longitude"].to_numpy() * scale])
    )
    _, idx = tree.query(np.column_stack([lat, lon * scale]))
    keys = postcodes["key"].astype(str).to_numpy()[idx]
    return np.array([f"{k[:-3]} {k[-3:]}" if len(k) > 3 else k for k in keys], dtype=object)


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


def tasking_rows(
    plan: Plan, postcodes: pd.DataFrame | None, previous: pd.DataFrame | None
) -> pd.DataFrame:
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
        nearest_postcode=nearest_postcodes(
            plan.hotspots["latitude"].to_numpy(), plan.hotspots["longitude"].to_numpy(), postcodes
        ),
    )
    stations = plan.stations.assign(
        item="station",
        tactic="station",
        parent_code=plan.stations["area_code"].map(parents["parent_code"]),
        parent_name=plan.stations["area_code"].map(parents["parent_name"]),
        parity_gap=plan.stations["covered_parity_gap"],
        nearest_postcode=nearest_postcodes(
            plan.stations["latitude"].to_numpy(), plan.stations["longitude"].to_numpy(), postcodes
        ),
    )
    rows = pd.concat([areas, hotspots, stations], ignore_index=True).reindex(
        columns=list(TASKING_COLUMNS)
    )
    rows["parent_code"] = rows["parent_code"].fillna(NO_PARENT)
    order = {"area": 0, "hotspot": 1, "station": 2}
    return rows.sort_values(
        ["parent_code", "item", "rank"], key=lambda c: c.map(order) if c.name == "item" else c
    ).reset_index(drop=True)


def parent_map_png(outlines: gpd.GeoDataFrame, rows: pd.DataFrame, *, title: str) -> bytes:
    """A small static map: the parent's area outlines and names, hotspots by tactic, stations."""
    # matplotlib is imported where it draws (it takes a third of a second to load)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.5), dpi=90)
    outlines.boundary.plot(ax=ax, color="#555555", linewidth=0.8)
    for point, name in zip(
        outlines.geometry.representative_point(), outlines["area_name"], strict=True
    ):
        # control characters have no glyph; the label shows the rest of the name
        shown = re.sub(r"[\x00-\x1f\x7f]", "", str(name))[:40]
        ax.annotate(shown, (point.x, point.y), fontsize=7, ha="center", color="#333333")
    for tactic, colour in TACTIC_COLOURS.items():
        pts = rows[(rows["item"] != "area") & (rows["tactic"] == tactic)]
        if len(pts):
            ax.scatter(
                pts["longitude"], pts["latitude"], s=40 if tactic == "station" else 14,
                marker="^" if tactic == "station" else "o", color=colour, label=tactic,
            )  # fmt: skip
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    _, miny, _, maxy = outlines.total_bounds
    ax.set_aspect(1 / np.cos(np.radians((miny + maxy) / 2)))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _fmt(frame: pd.DataFrame) -> pd.DataFrame:
    """Tables for reading: blanks for missing values, whole numbers for counts."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            digits = 3 if col == "score" else (6 if col in ("latitude", "longitude") else 0)
            out[col] = out[col].map(lambda v, d=digits: "" if pd.isna(v) else f"{v:,.{d}f}")
    return out.fillna("")


def _week_line(row: Mapping[Hashable, Any], *, areas: int) -> str:
    """An NPU's week in one line, from `plan.csv`: its units, officer hours and expected
    sign-ups."""
    units = [
        f"{int(row[col])} {word}{'' if int(row[col]) == 1 else 's'}"
        for col, word in (("hotspots", "door hotspot"), ("street_sites", "street session"),
                          ("station_days", "station day"), ("social_posts", "social post"))
        if row[col] > 0
    ]  # fmt: skip
    if not units:
        return f"{areas} areas; nothing planned this week."
    return (
        f"{areas} areas; this week {', '.join(units)}: {row['officer_hours']:,.0f} officer hours, "
        f"about {row['expected_signups']:,.0f} sign-ups expected, "
        f"{row['expected_gain']:,.1f} of them from the origins the areas are short of."
    )


def write_tasking_pack(
    folder: Path,
    plan: Plan,
    *,
    outlines: gpd.GeoDataFrame,
    postcodes: pd.DataFrame | None,
    previous: pd.DataFrame | None,
    marking: str,
    as_of: dt.date,
) -> pd.DataFrame:
    """Write `tasking.csv` and `tasking.html` into `folder`; return the tasking rows."""
    rows = tasking_rows(plan, postcodes, previous)
    write_csv(rows, folder / "tasking.csv")
    sections = []
    week = plan.plan.astype({"parent_code": str}).set_index("parent_code").to_dict("index")
    for parent, part in rows.groupby("parent_code", sort=True):
        name = part["parent_name"].dropna()
        label = str(name.iloc[0]) if len(name) else str(parent)
        areas = part[part["item"] == "area"]
        codes = set(areas["area_code"])
        area_cols = ["rank", "area_name", "score", "tactic", "parity_gap", "expected_signups"]
        if previous is not None:
            area_cols += ["previous_rank", "rank_change", "parity_gap_change"]
        hot_cols = ["rank", "area_name", "tactic", "nearest_postcode", "cell", "segment", "reason"]
        sections.append(
            Section(
                title=f"{label}",
                text=_week_line(week[str(parent)], areas=len(areas))
                if str(parent) in week
                else f"{len(areas)} areas; nothing planned this week.",
                tables=(
                    ("Ranked areas", _fmt(areas[[*area_cols, "reason"]])),
                    ("Hotspots", _fmt(part[part["item"] == "hotspot"][hot_cols])),
                    ("Station sites", _fmt(part[part["item"] == "station"][hot_cols[:5]])),
                ),
                image_png=parent_map_png(
                    outlines[outlines["area_code"].isin(codes)], part, title=label
                ),
                image_alt=f"Map of {label}: area outlines, hotspots by tactic and station sites",
                anchor=f"parent-{parent}",
            )
        )
    title = f"Tasking pack: week to {as_of:%d %B %Y}"
    lead = (
        "For engagement, not enforcement: where to knock on doors, talk in the street and park "
        "the mobile station, to invite under-represented residents into the alert system. "
        "Aggregates only; small counts are suppressed."
    )
    (folder / "tasking.html").write_text(
        sections_to_html(sections, title=title, marking=marking, lead=lead), encoding="utf-8"
    )
    return rows
