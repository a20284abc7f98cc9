"""The report's sections: the tables an engagement lead asks for, built from
disclosure-controlled figures."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from targeting.disclosure import protect_breakdown, protect_counts
from targeting.origins import origin_groups
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


def format_origin_rows(rows: pd.DataFrame, *, with_area: bool = False) -> pd.DataFrame:
    """Representation rows as a readable table.

    Values withheld by disclosure control read "suppressed"; values that are undefined (no
    sign-ups, or no residents of that origin) read "n/a", so a reader never mistakes one for the
    other or for 0.
    """
    hidden = rows["suppressed"].fillna(False).astype(bool).to_numpy()

    def show(values: pd.Series, render: Callable[[Any], str]) -> list[str]:
        return [
            WITHHELD if h and _blank(v) else NOT_DEFINED if _blank(v) else render(v)
            for v, h in zip(values, hidden, strict=True)
        ]

    table = pd.DataFrame(
        {
            "Origin": rows["origin"].astype(str).to_numpy(),
            "Active in area": [f"{v:,.0f}" for v in rows["active_in_area"]],
            "Registered": show(rows["registered"], lambda v: f"{v:,.0f}"),
            "Target rate": show(rows["target_rate"], _pct),
            "Actual rate": show(rows["actual_rate"], _pct),
            "Delta": show(rows["rate_delta"], _pct),
            "Index": show(rows["representation_index"], lambda v: f"{v:.0f}"),
            "95% interval": [
                WITHHELD if h and _blank(lo) else NOT_DEFINED if _blank(lo)
                else f"{100 * lo:.2f}-{100 * hi:.2f}%"
                for lo, hi, h in zip(rows["ci_low"], rows["ci_high"], hidden, strict=True)
            ],
            "Parity gap": show(rows["parity_gap"], lambda v: f"{v:,.0f}"),
            "Under-represented": show(rows["under_represented"], lambda f: "yes" if f else "no"),
            "Beyond chance": show(rows["q_value"], lambda q: "yes" if q < 0.05 else "no"),
        }
    )  # fmt: skip
    if with_area:
        table.insert(0, "Area", rows["area_name"].astype(str).to_numpy())
    return table


def under_represented(
    table: pd.DataFrame, *, level: str, area_code: str, limit: int = 15
) -> pd.DataFrame:
    """Origins with fewer sign-ups than their share, largest parity gap first."""
    rows = table[
        (table["level"] == level)
        & (table["area_code"] == area_code)
        & (table["origin_level"] == "origin")
        & ((table["rate_delta"] > 0) | table["suppressed"])
    ]
    rows = rows.assign(_gap=rows["parity_gap"].astype("Float64").fillna(-1)).sort_values(
        ["_gap", "active_in_area"], ascending=False
    )
    return format_origin_rows(rows.head(limit))


def predominant(table: pd.DataFrame, *, limit: int = 10) -> pd.DataFrame:
    """The largest origins force-wide."""
    rows = table[(table["level"] == "force") & (table["origin_level"] == "origin")]
    return format_origin_rows(rows.sort_values("active_in_area", ascending=False).head(limit))


def daily_heatmap_png(days: pd.Series, *, as_of: dt.date, threshold: int) -> bytes:
    """A calendar heatmap of sign-ups per day over the six months to `as_of` (PNG).

    Days with 1 to threshold-1 sign-ups share one colour band, so no small count can be read.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    dates = pd.date_range(as_of - dt.timedelta(days=181), as_of, freq="D")
    counts = days.value_counts().reindex(dates.date, fill_value=0).to_numpy()
    week = (np.arange(len(dates)) + dates[0].day_of_week) // 7
    grid = np.full((7, week.max() + 1), np.nan)
    grid[dates.day_of_week, week] = counts
    # colour bands: 0, then 1 to threshold-1 as one band (so no small count can be read), then up
    edges = sorted({0, 1, threshold, 2 * threshold, 5 * threshold})
    edges.append(max(10 * threshold, int(counts.max()) + 1, edges[-1] + 1))
    labels = [f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in pairwise(edges[:-1])]
    labels.append(f"{edges[-2]}+")
    palette = ["#f0f0f0", "#c6dbef", "#6baed6", "#2171b5", "#08306b"][-(len(edges) - 1) :]
    cmap = ListedColormap(palette)
    fig, ax = plt.subplots(figsize=(9, 2.4), dpi=110)
    image = ax.imshow(grid, aspect="auto", cmap=cmap, norm=BoundaryNorm(edges, cmap.N))
    ax.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], fontsize=7)
    firsts = [i for i, d in enumerate(dates) if d.day == 1]
    ax.set_xticks(
        [week[i] for i in firsts], [dates[i].strftime("%b %Y") for i in firsts], fontsize=7
    )
    middles = [(a + b) / 2 for a, b in pairwise(edges)]
    bar = fig.colorbar(image, ax=ax, ticks=middles)
    bar.ax.set_yticklabels(labels, fontsize=7)
    ax.set_title("Sign-ups per day from under-represented origins", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


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
            "The largest origins among residents, force-wide.",
            [("All areas", predominant(table))],
            anchor="predominant",
        ),
        _daily_section(table, live, areas, as_of=as_of, threshold=threshold),
        _monthly_section(table, live, as_of=as_of, threshold=threshold),
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
        f"Origins with a smaller share of sign-ups than of residents ({base}), largest parity "
        "gap first. The parity gap is the number of extra sign-ups of that origin that would "
        "bring its share up to its share of residents. 'Beyond chance' means the gap holds "
        "after allowing for the many comparisons made (Benjamini-Hochberg q below 0.05). "
        f"Counts from 1 to {threshold - 1}, and every figure that would reveal them, are "
        "suppressed.",
        [("All areas", under_represented(table, level="force", area_code=FORCE_CODE))]
        + [
            (name, under_represented(table, level="parent", area_code=code, limit=8))
            for code, name in zip(parents["area_code"], parents["area_name"], strict=True)
        ],
        anchor="under-represented",
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
        image_png=daily_heatmap_png(recent["joined"].dt.date, as_of=as_of, threshold=threshold),
        image_alt="Calendar heatmap of daily sign-ups from under-represented origins",
        anchor="daily",
    )


def _monthly_section(
    table: pd.DataFrame, live: pd.DataFrame, *, as_of: dt.date, threshold: int
) -> Section:
    """Sign-ups per month of the last twelve, by origin group."""
    # groups are read from every population origin, as the representation table reads them
    groups = origin_groups(list(table.loc[table["origin_level"] == "origin", "origin"].unique()))
    months = pd.period_range(pd.Period(as_of, "M") - 11, pd.Period(as_of, "M"), freq="M")
    monthly = (
        live.dropna(subset=["origin"])
        .assign(month=live["joined"].dt.to_period("M"), group=lambda d: d["origin"].map(groups))
        .pipe(lambda d: d[d["month"].isin(months)])
        .pivot_table(
            index="month", columns="group", values="user_id", aggfunc="count", fill_value=0
        )
        .reindex(months, fill_value=0)
    )
    # each month's groups are protected as parts of the month's total, treated as public
    monthly_shown = pd.DataFrame(
        [_protected_counts(row, threshold=threshold) for row in monthly.to_numpy()],
        columns=monthly.columns,
    )
    monthly_shown.insert(0, "Month", [m.strftime("%b %Y") for m in monthly.index])
    return Section(
        "Sign-ups per month by origin group",
        "The last twelve months, by the month each user joined (deleted users excluded).",
        [("", monthly_shown.reset_index(drop=True))],
        anchor="monthly",
    )


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
    base, as a profile index (100 = the base share)."""
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
    """Watch roles per area as display strings, disclosure-controlled.

    Each area's roles (with "none") add up to its users, and each role's areas to the force
    figure, so the table gets the same protection as the representation counts.
    """
    areas, columns = list(roles.index), list(roles.columns)
    grid = roles.to_numpy(dtype=np.int64)
    values = np.concatenate(
        [grid.ravel(), grid.sum(axis=1), grid.sum(axis=0), [grid.sum()]]
    ).astype(np.int64)
    n_a, n_c = grid.shape
    cell = np.arange(n_a * n_c).reshape(n_a, n_c)
    row_total = n_a * n_c + np.arange(n_a)
    col_total = n_a * n_c + n_a + np.arange(n_c)
    grand = n_a * n_c + n_a + n_c
    rows = [(f"r{i}", int(c), False) for i in range(n_a) for c in cell[i]]
    rows += [(f"r{i}", int(row_total[i]), True) for i in range(n_a)]
    rows += [(f"c{j}", int(c), False) for j in range(n_c) for c in cell[:, j]]
    rows += [(f"c{j}", int(col_total[j]), True) for j in range(n_c)]
    rows += [("g", int(t), False) for t in row_total] + [("g", grand, True)]
    withheld = protect_counts(
        values, pd.DataFrame(rows, columns=["line", "cell", "is_total"]), threshold=threshold
    )
    text = [
        [WITHHELD if withheld[cell[i, j]] else f"{grid[i, j]:,}" for j in range(n_c)]
        for i in range(n_a)
    ]
    return pd.DataFrame(text, index=areas, columns=columns)


def _watch_section(
    live: pd.DataFrame,
    areas: pd.DataFrame,
    cells: pd.DataFrame,
    schemes: pd.DataFrame | None,
    *,
    threshold: int,
) -> Section:
    """Neighbourhood Watch per parent area (or per area when areas have no parents)."""
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
    key = live["area_code"].map(parent_of)
    roles = pd.crosstab(key, live["watch_role"]).reindex(
        columns=[*WATCH_ROLES, "none"], fill_value=0
    )
    users = key.value_counts()
    shown = _protect_role_table(roles, threshold=threshold)
    households = cells.groupby(cells["area_code"].map(parent_of))["watch_households"].sum(
        min_count=1
    )
    scheme_counts = (
        schemes["area_code"].map(parent_of).value_counts()
        if schemes is not None
        else pd.Series(dtype=int)
    )
    index = sorted(users.index)
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
        "households they cover, and the share of users in a Watch scheme.",
        [("", rows)],
        anchor="watch",
    )
