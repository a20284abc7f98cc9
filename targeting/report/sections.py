"""The report's sections: the tables an engagement lead asks for, built from
disclosure-controlled figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from targeting import svg
from targeting.disclosure import protect_breakdown
from targeting.report.origins import (
    DIFFERENCE_NOTE,
    every_origin,
    monthly_counts,
    monthly_origin_table,
    predominant,
    protect_two_way,
    under_represented,
)
from targeting.report.render import (
    NOT_DEFINED,
    WATCH_ROLES,
    WITHHELD,
    Section,
    _blank,
    _count,
    _pct,
)
from targeting.representation import FORCE_CODE, Representation


def daily_heatmap_svg(days: pd.Series, *, as_of: dt.date, threshold: int) -> str:
    """A calendar heatmap of sign-ups per day over the six months to `as_of` (SVG, 990 x 264).

    Days with 1 to threshold-1 sign-ups share one colour band, so no small count can be read:
    the picture holds bands, never counts.
    """
    dates = pd.date_range(as_of - dt.timedelta(days=181), as_of, freq="D")
    counts = days.value_counts().reindex(dates.date, fill_value=0).to_numpy()
    week = (np.arange(len(dates)) + dates[0].day_of_week) // 7
    # colour bands: 0, then 1 to threshold-1 as one band (so no small count can be read), then up
    edges = sorted({0, 1, threshold, 2 * threshold, 5 * threshold})
    edges.append(max(10 * threshold, int(counts.max()) + 1, edges[-1] + 1))
    labels = [f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in pairwise(edges[:-1])]
    labels.append(f"{edges[-2]}+")
    palette = ["#f0f0f0", "#c6dbef", "#6baed6", "#2171b5", "#08306b"][-(len(edges) - 1) :]
    band = np.clip(np.searchsorted(edges, counts, side="right") - 1, 0, len(palette) - 1)
    left, top, width, row = 55.0, 32.0, 735.0, 28.0
    column = width / (week.max() + 1)
    parts = [
        svg.text(495, 20, "Sign-ups per day from under-represented origins", size=13,
                 anchor="middle"),
        # crisp edges: no hairline seams between neighbouring days
        '<g shape-rendering="crispEdges">',
        *(
            f'<rect x="{left + w * column:.1f}" y="{top + d * row:.1f}" width="{column:.1f}" '
            f'height="{row:.1f}" fill="{palette[b]}"/>'
            for w, d, b in zip(week, dates.day_of_week, band, strict=True)
        ),
        "</g>",
        f'<rect x="{left}" y="{top}" width="{width}" height="{7 * row}" fill="none" '
        'stroke="#333333" stroke-width="0.8"/>',
        *(
            svg.text(left - 6, top + d * row + row / 2 + 4, name, size=10, anchor="end")
            for d, name in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
        ),
        *(
            svg.text(left + (week[i] + 0.5) * column, top + 7 * row + 16,
                     dates[i].strftime("%b %Y"), size=10, anchor="middle")
            for i in np.flatnonzero(dates.day == 1).tolist()
        ),
    ]  # fmt: skip
    # the key: one box per band, the lowest at the bottom, each with its range
    key = 7 * row / len(palette)
    for i, (colour, label) in enumerate(zip(palette, labels, strict=True)):
        y = top + 7 * row - (i + 1) * key
        parts += [
            f'<rect x="835" y="{y:.1f}" width="16" height="{key:.1f}" fill="{colour}" '
            'stroke="#333333" stroke-width="0.6"/>',
            svg.text(858, y + key / 2 + 4, label, size=10),
        ]
    return svg.document(990, 264, parts, title="Sign-ups per day, in colour bands")


def _protected_counts(values: np.ndarray, *, threshold: int) -> list[str]:
    """Counts that add up to a total anyone may know, as display strings, small ones protected
    so that none can be worked out from the total and the others."""
    parts = {str(i): int(v) for i, v in enumerate(values)}
    shown = protect_breakdown(parts, threshold=threshold)
    return [WITHHELD if isinstance(v, str) else f"{v:,}" for v in shown.values()]


def _area_gap_rows(gaps: pd.DataFrame) -> pd.DataFrame:
    """The areas' sign-ups and gaps as a readable table ("suppressed" vs "n/a" as in the others)."""
    hidden = gaps["suppressed"].astype(bool).to_numpy()

    def show(values: pd.Series, render: Callable[[Any], str]) -> list[str]:
        return [
            WITHHELD if h else NOT_DEFINED if _blank(v) else render(v)
            for v, h in zip(values, hidden, strict=True)
        ]

    return pd.DataFrame(
        {
            "Area": gaps["area_name"].astype(str).to_numpy(),
            "Residents": [f"{v:,.0f}" for v in gaps["residents"]],
            "Sign-ups": show(gaps["registered"], lambda v: f"{v:,.0f}"),
            "Per 1,000 residents": show(gaps["signups_per_1000"], lambda v: f"{v:.1f}"),
            "Parity gap": [
                WITHHELD if h else NOT_DEFINED if _blank(g) else (f"about {g:,.0f}" if r else f"{g:,.0f}")
                for g, r, h in zip(gaps["parity_gap"], gaps["parity_gap_rounded"], hidden, strict=True)
            ],
            "Gap per 100 sign-ups": show(gaps["parity_gap_per_100"], lambda v: f"{v:.1f}"),
            "Penetration gap": show(gaps["penetration_gap"], lambda v: f"{v:,.0f}"),
        }
    )  # fmt: skip


def build_sections(
    *,
    representation: Representation,
    signups: pd.DataFrame,
    areas: pd.DataFrame,
    cells: pd.DataFrame,
    schemes: pd.DataFrame | None,
    emerging: pd.DataFrame | None,
    labels: pd.DataFrame,
    as_of: dt.date,
    base: str,
    threshold: int,
) -> list[Section]:
    """Every section of the report, in reading order."""
    table = representation.table
    live = signups[signups["status"] != "deleted"]
    return [
        _under_represented_section(table, base=base, threshold=threshold),
        _areas_section(representation, threshold=threshold),
        Section(
            "Predominant origins",
            "The largest origins among residents, force-wide. " + DIFFERENCE_NOTE,
            [("All areas", predominant(table))],
            anchor="predominant",
        ),
        _daily_section(table, live, areas, as_of=as_of, threshold=threshold),
        _monthly_section(representation, live, as_of=as_of, threshold=threshold),
        _origins_by_parent_section(representation, threshold=threshold),
        _users_section(signups, representation, threshold=threshold),
        _watch_section(live, areas, cells, schemes, threshold=threshold),
        _unknown_section(representation, areas),
        _labels_section(table, labels),
        *([_emerging_section(emerging)] if emerging is not None else []),
    ]


def _parents(table: pd.DataFrame) -> pd.DataFrame:
    """The parent areas (NPUs) of the representation table: `area_code, area_name`."""
    return table[table["level"] == "parent"][["area_code", "area_name"]].drop_duplicates()


def _under_represented_section(table: pd.DataFrame, *, base: str, threshold: int) -> Section:
    parents = _parents(table)
    return Section(
        "Under-represented origins",
        f"Origins whose share of sign-ups is below their share of residents ({base}) beyond "
        "doubt: the whole 95% interval of the sign-up share lies below the resident share. "
        "Largest parity gap first; only under-represented origins are listed (every origin is "
        f"in 'Origins by NPU'). {DIFFERENCE_NOTE} 'Beyond chance' means the gap holds after "
        "allowing for the many comparisons made (Benjamini-Hochberg q below 0.05). Counts "
        f"from 1 to {threshold - 1} read <{threshold}; figures that would reveal them read "
        "suppressed.",
        [
            (
                "Under-represented: all areas",
                under_represented(table, level="force", area_code=FORCE_CODE),
            )
        ]
        + [
            (
                f"Under-represented: {name}",
                under_represented(table, level="parent", area_code=code),
            )
            for code, name in zip(parents["area_code"], parents["area_name"], strict=True)
        ],
        anchor="under-represented",
    )


def _origins_by_parent_section(representation: Representation, *, threshold: int) -> Section:
    """Every origin in each parent area (NPU), as the ORIGINS report lists them; force-wide
    where the areas have no parents."""
    parents = _parents(representation.table)
    if parents.empty:
        parents = pd.DataFrame({"area_code": [FORCE_CODE], "area_name": ["All areas"]})
    level = "parent" if (representation.table["level"] == "parent").any() else "force"
    tables = every_origin(representation, level=level, area_codes=parents["area_code"].tolist(),
                          threshold=threshold)  # fmt: skip
    return Section(
        "Origins by NPU",
        "Every origin in each parent area (NPU), largest by residents first. "
        f"{DIFFERENCE_NOTE} A count from 1 to {threshold - 1} reads <{threshold}; a figure "
        "withheld so that such a count cannot be worked out from the totals reads suppressed.",
        list(zip(parents["area_name"], tables, strict=True)),
        anchor="origins-by-npu",
    )


def _areas_section(representation: Representation, *, threshold: int) -> Section:
    gaps = representation.areas[representation.areas["level"] == "area"].sort_values(
        "parity_gap_per_100", ascending=False, na_position="last"
    )
    return Section(
        "Areas: sign-ups and gaps",
        "Per area: sign-ups with a known origin per 1,000 residents; the parity gap (the "
        "sign-ups by which under-represented origins fall short of their share at the area's "
        "current total) and that gap per 100 sign-ups, which shows how unrepresentative an "
        "area's sign-ups are whatever their number; and the penetration gap (how far the area "
        "falls short of the force-wide sign-up rate). Largest gap per 100 sign-ups first. "
        f"Where the gap includes a suppressed count it is rounded to the nearest {threshold}.",
        [("", _area_gap_rows(gaps))],
        anchor="areas",
    )


def _under_origins(table: pd.DataFrame) -> pd.Series:
    """The origins under-represented force-wide."""
    return table[
        (table["level"] == "force")
        & (table["origin_level"] == "origin")
        & table["under_represented"].fillna(False)
    ]["origin"]


def _daily_section(
    table: pd.DataFrame, live: pd.DataFrame, areas: pd.DataFrame, *, as_of: dt.date, threshold: int
) -> Section:
    """Sign-ups per day from the under-represented origins over the last 182 days, and per
    parent area."""
    under = _under_origins(table)
    start = as_of - dt.timedelta(days=182)  # the window is the 182 days after this one
    recent = live[
        live["origin"].isin(set(under))
        & (live["joined"].dt.date > start)
        & (live["joined"].dt.date <= as_of)
    ]
    parents = _parents(table)
    parent_of = dict(zip(areas["area_code"], areas["parent_code"], strict=True))
    names_of_areas = dict(zip(areas["area_code"], areas["area_name"], strict=True))
    parent_names = dict(zip(parents["area_code"], parents["area_name"], strict=True))
    per_parent = (
        recent["area_code"].map(parent_of).fillna(recent["area_code"]).value_counts().sort_index()
    )
    per_parent.index = [parent_names.get(k, names_of_areas.get(k, k)) for k in per_parent.index]
    shown = pd.DataFrame(
        {
            "Area": per_parent.index,
            "Sign-ups": _protected_counts(per_parent.to_numpy(), threshold=threshold),
        }
    )
    return Section(
        "Registrations from under-represented origins, last six months",
        f"Sign-ups per day from the {len(under)} origins under-represented force-wide, "
        f"{start + dt.timedelta(days=1):%d %B %Y} to {as_of:%d %B %Y}; days with 1 to "
        f"{threshold - 1} sign-ups share one colour.",
        [("Per parent area", shown)],
        image_svg=daily_heatmap_svg(recent["joined"].dt.date, as_of=as_of, threshold=threshold),
        image_alt="Calendar heatmap of daily sign-ups from under-represented origins",
        anchor="daily",
    )


def _monthly_section(
    representation: Representation, live: pd.DataFrame, *, as_of: dt.date, threshold: int
) -> Section:
    """Sign-ups per origin per month of the last twelve, with arrows, as ORIGINS shows them;
    protected with the representation hierarchy."""
    table = representation.table
    origins = sorted(table.loc[table["origin_level"] == "origin", "origin"].unique())
    counts = monthly_counts(live, origins, as_of=as_of)
    return Section(
        "Sign-ups per month by origin",
        "The last twelve months, by the month each user joined (deleted users excluded). "
        f"{UP_DOWN_NOTE} Counts from 1 to {threshold - 1} read <{threshold}; a count withheld "
        "so that such a count cannot be worked out from the totals, or from the force-wide "
        "counts in the tables above, reads suppressed.",
        [("", monthly_origin_table(counts, representation, threshold=threshold))],
        anchor="monthly",
    )


UP_DOWN_NOTE = "▲ more than the month before, ▼ fewer, – the same (shown where both are published)."


def _users_section(
    signups: pd.DataFrame, representation: Representation, *, threshold: int
) -> Section:
    """Users by status, protected as parts of the (public) total, and those with no origin."""
    status = signups["status"].value_counts()
    force_unknown = representation.unknown.loc[
        representation.unknown["level"] == "force", "unknown_origin"
    ].iloc[0]
    statuses = {s: int(status.get(s, 0)) for s in ("active", "comms_issue", "incommunicado",
                                                     "deleted")}  # fmt: skip
    shown = protect_breakdown(statuses, total=len(signups), threshold=threshold)
    users = pd.DataFrame(
        {
            "Measure": ["Active", "Comms issues", "Incommunicado", "Deleted",
                        "Users with no known origin (not deleted)"],
            "Users": [*(WITHHELD if isinstance(v, str) else f"{v:,}" for v in shown.values()),
                      _count(force_unknown)],
        }
    )  # fmt: skip
    return Section(
        "User management",
        f"Users of the alert system by status: {len(signups):,} users in all.",
        [("", users)],
        anchor="users",
    )


def _unknown_section(representation: Representation, areas: pd.DataFrame) -> Section:
    unknown = representation.unknown
    names = dict(zip(areas["area_code"], areas["area_name"], strict=True))
    area_unknown = unknown[unknown["level"] == "area"]
    rows = pd.DataFrame(
        {
            "Area": area_unknown["area_code"].map(names),
            "No known origin": area_unknown["unknown_origin"].map(_count),
            "Share": area_unknown["unknown_share"].map(lambda v: _pct(v, 1)),
            "Flag": area_unknown["unreliable"].map(
                lambda f: WITHHELD if pd.isna(f) else ("over 20%" if f else "")
            ),
        }
    ).sort_values("Area")
    return Section(
        "Sign-ups with no known origin",
        "Where more than 20% of an area's sign-ups have no known origin, its rates rest on "
        "too few sign-ups to trust and are flagged.",
        [("", rows)],
        anchor="unknown",
    )


def _labels_section(table: pd.DataFrame, labels: pd.DataFrame) -> Section:
    """Where each sign-up origin label went, and the population origins with no sign-ups."""
    no_signups = table[
        (table["level"] == "force")
        & (table["origin_level"] == "origin")
        & (table["registered"] == 0)
    ]["origin"]
    read = pd.DataFrame(
        {
            "Label": labels["label"].replace("", "(empty)"),
            "Counted as": labels["population_origin"].fillna("unknown origin"),
            "How": labels["how"],
            "Sign-ups": [v if isinstance(v, str) else f"{v:,}" for v in labels["signups"]],
        }
    )
    return Section(
        "How sign-up origins were read",
        "Each origin label in the sign-up export, the population category its sign-ups are "
        "counted under, and how: the same name, your [origins] map, or the shipped crosswalk "
        "of census wording and ORIGINS-style names (a label finer than the population's "
        "categories is counted under the category that holds it). A label with no category "
        "is counted as unknown origin; the run stops when such labels are more than the "
        "configured share of sign-ups with an origin. Population origins with no sign-ups "
        "are listed after.",
        [
            ("Sign-up origin labels", read),
            ("Population origins with no sign-ups", pd.DataFrame({"Origin": list(no_signups)})),
        ],
        anchor="unmatched",
    )


def _emerging_section(emerging: pd.DataFrame) -> Section:
    shown = emerging[emerging["level"] == "area"].head(20)
    rows = pd.DataFrame(
        {
            "Area": shown["name"],
            "Origin": shown["origin"],
            "Before": shown["residents_before"].map(lambda v: f"{v:,.0f}"),
            "Now": shown["residents_now"].map(lambda v: f"{v:,.0f}"),
            "Increase": shown["increase"].map(lambda v: f"{v:,.0f}"),
            "Growth": shown["growth"].map(lambda v: "new" if pd.isna(v) else f"{100 * v:.0f}%"),
        }
    )
    return Section(
        "Emerging communities",
        "Areas where an origin grew since the earlier census snapshot by more than the "
        "configured thresholds (census counts; nothing here is suppressed).",
        [("", rows)],
        anchor="emerging",
    )


def segment_section(table: pd.DataFrame, *, base: str) -> Section:
    """Who is missing by segment: each segment's share of sign-ups against its share of the
    base, as a profile index (100 = the base share), with each segment's portrait in words
    (the table's `portrait`, from `segments.segment_portraits`) beside its code."""
    suppressed = table["suppressed"].to_numpy(bool)

    def shown(col: str, render: Callable[[object], str]) -> list[str]:
        return [
            WITHHELD if s and _blank(v) else NOT_DEFINED if _blank(v) else render(v)
            for v, s in zip(table[col], suppressed, strict=True)
        ]

    rows = pd.DataFrame(
        {
            "Segment": table["segment"],
            **({"Label": table["label"].fillna("")} if "label" in table else {}),
            **(
                {"Who lives there": table["portrait"].fillna("").to_numpy()}
                if "portrait" in table
                else {}
            ),
            base.capitalize(): [_count(v) for v in table[base]],
            "Base share": shown("base_share", _pct),
            "Sign-ups": shown("signups", lambda v: f"{float(v):,.0f}"),  # type: ignore[arg-type]
            "Sign-up share": shown("signup_share", _pct),
            "Profile index": shown("profile_index", lambda v: f"{float(v):.0f}"),  # type: ignore[arg-type]
            "95% interval": [
                WITHHELD
                if s and _blank(lo)
                else NOT_DEFINED
                if _blank(lo)
                else f"{float(lo):.0f} to {float(hi):.0f}"
                for lo, hi, s in zip(
                    table["index_low"], table["index_high"], suppressed, strict=True
                )
            ],
            f"Sign-ups per 1,000 {base}": shown(
                f"signups_per_1000_{base}",
                lambda v: f"{float(v):.1f}",  # type: ignore[arg-type]
            ),
        }
    )
    return Section(
        title="Sign-ups by segment",
        text=(
            f"Each segment's share of sign-ups against its share of {base}: a profile index of 100 "
            "is the base share, below 100 fewer sign-ups than the segment's size would give. "
            "Segments whose whole interval lies below 100 are under-represented."
        ),
        tables=(("", rows),),
        anchor="segments",
    )


def _protect_role_table(roles: pd.DataFrame, *, threshold: int) -> pd.DataFrame:
    """Watch roles per area as display strings, disclosure-controlled, with the force's totals
    as a last row ("All areas").

    Each area's roles (with "none") add up to its users, and each role's areas to the force
    figure, so the table gets the same protection as the representation counts.
    """
    grid = roles.to_numpy(dtype=np.int64)
    n_a, n_c = grid.shape
    withheld = protect_two_way(grid, threshold=threshold, labelled=False)
    cells = withheld[: n_a * n_c].reshape(n_a, n_c)
    totals = withheld[n_a * n_c + n_a : n_a * n_c + n_a + n_c]
    text = [
        [WITHHELD if cells[i, j] else f"{grid[i, j]:,}" for j in range(n_c)] for i in range(n_a)
    ]
    text.append([WITHHELD if totals[j] else f"{grid[:, j].sum():,}" for j in range(n_c)])
    return pd.DataFrame(text, index=[*roles.index, FORCE_CODE], columns=list(roles.columns))


def _watch_section(
    live: pd.DataFrame,
    areas: pd.DataFrame,
    cells: pd.DataFrame,
    schemes: pd.DataFrame | None,
    *,
    threshold: int,
) -> Section:
    """Neighbourhood Watch per parent area (or per area when areas have no parents), and the
    force's totals: schemes, members, households covered and coverage."""
    parent_of = dict(
        zip(areas["area_code"], areas["parent_code"].fillna(areas["area_code"]), strict=True)
    )
    parent_name = dict(
        zip(
            areas["parent_code"].fillna(areas["area_code"]),
            areas["parent_name"].fillna(areas["parent_code"]).fillna(areas["area_name"]),
            strict=True,
        )
    )
    parent_name[FORCE_CODE] = "All areas"
    key = live["area_code"].map(parent_of)
    roles = pd.crosstab(key, live["watch_role"]).reindex(
        columns=[*WATCH_ROLES, "none"], fill_value=0
    )
    users = key.value_counts()
    users[FORCE_CODE] = users.sum()
    roles.loc[FORCE_CODE] = roles.sum()
    shown = _protect_role_table(roles.drop(index=FORCE_CODE), threshold=threshold)
    by_parent = cells.groupby(cells["area_code"].map(parent_of))
    households = by_parent["watch_households"].sum(min_count=1)
    households[FORCE_CODE] = cells["watch_households"].sum(min_count=1)
    all_households = by_parent["households"].sum(min_count=1)
    all_households[FORCE_CODE] = cells["households"].sum(min_count=1)
    scheme_counts = (
        schemes["area_code"].map(parent_of).value_counts()
        if schemes is not None
        else pd.Series(dtype=int)
    )
    scheme_counts[FORCE_CODE] = int(scheme_counts.sum())
    index = [*sorted(k for k in users.index if k != FORCE_CODE), FORCE_CODE]

    def coverage(k: str) -> str:
        covered, every = households.get(k, np.nan), all_households.get(k, np.nan)
        if pd.isna(covered) or pd.isna(every) or every <= 0:
            return "no data"
        return _pct(min(1.0, covered / every), 1)

    rows = pd.DataFrame(
        {
            "Area": [parent_name.get(k, k) for k in index],
            "Coordinators": [shown.at[k, "coordinator"] for k in index],
            "Deputies": [shown.at[k, "deputy"] for k in index],
            "Members": [shown.at[k, "member"] for k in index],
            "Schemes": [
                f"{int(scheme_counts.get(k, 0)):,}" if schemes is not None else "no data"
                for k in index
            ],
            "Households covered": [
                "no data" if pd.isna(households.get(k, np.nan)) else f"{households.get(k):,.0f}"
                for k in index
            ],
            "Coverage of households": [coverage(k) for k in index],
            # the share reveals users minus "none", so it shows only where "none" is published
            "Users in Watch": [
                WITHHELD if shown.at[k, "none"] == WITHHELD
                else _pct((users[k] - roles.at[k, "none"]) / users[k], 1)
                for k in index
            ],
        }
    )  # fmt: skip
    return Section(
        "Neighbourhood Watch",
        "Watch coordinators, deputies and members among users (not deleted), schemes and the "
        "households they cover, the share of all households they cover, and the share of users "
        "in a Watch scheme; the last row is the force's total.",
        [("", rows)],
        anchor="watch",
    )
