"""The report's origin tables, as the force's ORIGINS report lays them out: each origin's
residents and sign-ups with the difference signed so that a shortfall reads as one, the
under-represented rows on their own, every origin per NPU, and sign-ups per origin per month
with an arrow against the month before.

Withheld counts of 1 to the threshold minus one read "<10" (the threshold is public); counts
withheld only to protect them (secondary suppression) read "suppressed". The representation
table and the monthly table are protected knowing that a reader sees "<10"
(`disclosure.protect_counts(labelled=...)`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from targeting.disclosure import is_small, protect_counts
from targeting.report.render import NOT_DEFINED, WITHHELD, _blank, _pct
from targeting.representation import FORCE_CODE, Representation, labelled_rows

UP, DOWN, SAME = "▲", "▼", "–"
DIFFERENCE_NOTE = (
    "Difference is the origin's share of sign-ups minus its share of residents, in percentage "
    "points: a negative difference (−) is a shortfall, fewer sign-ups than the origin's share "
    "of residents would give; positive (+) is more. Index: 100 is parity, below 100 a "
    "shortfall. The parity gap is the number of extra sign-ups of that origin that would bring "
    "its share up to its share of residents."
)


def small_withheld(
    representation: Representation, rows: pd.DataFrame, *, threshold: int
) -> np.ndarray:
    """Which of `rows` (representation table rows) hold a withheld count of 1 to threshold-1,
    printed "<threshold"; rows withheld only to protect others read "suppressed"."""
    counts = representation.counts
    small = counts[
        counts["suppressed"] & is_small(counts["registered"].to_numpy(), threshold=threshold)
    ]
    keys = pd.MultiIndex.from_arrays(
        [small["level"], small["geo"], small["origin_level"], small["node"]]
    )
    wanted = pd.MultiIndex.from_arrays(
        [rows["level"], rows["area_code"], rows["origin_level"], rows["origin"]]
    )
    return np.asarray(wanted.isin(keys), dtype=bool)


def _signed_points(value: object) -> str:
    number = 100 * float(value)  # type: ignore[arg-type]
    if round(number, 2) == 0:
        return "0.00 pts"
    return f"{'+' if number > 0 else '−'}{abs(number):.2f} pts"


def format_origin_rows(
    rows: pd.DataFrame,
    *,
    with_area: bool = False,
    small: np.ndarray | None = None,
    threshold: int = 10,
) -> pd.DataFrame:
    """Representation rows as a readable table.

    Values withheld by disclosure control read "suppressed" (a withheld count of 1 to
    threshold-1, marked in `small`, reads "<threshold"); values that are undefined (no
    sign-ups, or no residents of that origin) read "n/a", so a reader never mistakes one for
    the other or for 0. The difference is sign-up share minus resident share, so that a
    shortfall is negative.
    """
    hidden = rows["suppressed"].fillna(False).astype(bool).to_numpy()
    low = np.zeros(len(rows), dtype=bool) if small is None else np.asarray(small, dtype=bool)

    def show(values: pd.Series, render: Callable[[Any], str]) -> list[str]:
        return [
            WITHHELD if h and _blank(v) else NOT_DEFINED if _blank(v) else render(v)
            for v, h in zip(values, hidden, strict=True)
        ]

    registered = show(rows["registered"], lambda v: f"{v:,.0f}")
    table = pd.DataFrame(
        {
            "Origin": rows["origin"].astype(str).to_numpy(),
            "Residents": [f"{v:,.0f}" for v in rows["active_in_area"]],
            "Sign-ups": [f"<{threshold}" if s else r for r, s in zip(registered, low, strict=True)],
            "Share of residents": show(rows["target_rate"], _pct),
            "Share of sign-ups": show(rows["actual_rate"], _pct),
            "Difference": show(-rows["rate_delta"].astype(float), _signed_points),
            "Index": show(rows["representation_index"], lambda v: f"{v:.0f}"),
            "95% interval of sign-up share": [
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


def _origin_rows(table: pd.DataFrame, *, level: str, area_code: str) -> pd.DataFrame:
    return table[
        (table["level"] == level)
        & (table["area_code"] == area_code)
        & (table["origin_level"] == "origin")
    ]


def under_represented(
    table: pd.DataFrame, *, level: str, area_code: str, limit: int | None = None
) -> pd.DataFrame:
    """Origins under-represented (the whole interval of their sign-up share below their share
    of residents), largest parity gap first; all of them unless `limit` is given."""
    rows = _origin_rows(table, level=level, area_code=area_code)
    rows = rows[rows["under_represented"].eq(True)].sort_values(
        ["parity_gap", "active_in_area"], ascending=False
    )
    return format_origin_rows(rows if limit is None else rows.head(limit)).drop(
        columns=["Under-represented"]
    )


def every_origin(
    representation: Representation, *, level: str, area_codes: list[str], threshold: int
) -> list[pd.DataFrame]:
    """Every origin of each of `area_codes` (places at `level`), largest first by residents,
    withheld small counts "<10": one table per place, in the order given. The places' rows are
    sorted and their small counts found once for all of them (a force has dozens of NPUs)."""
    table = representation.table
    rows = table[(table["level"] == level) & (table["origin_level"] == "origin")].sort_values(
        ["active_in_area", "origin"], ascending=[False, True]
    )
    small = small_withheld(representation, rows, threshold=threshold)
    at = rows.groupby("area_code", sort=False).indices
    none = np.zeros(0, dtype=np.int64)
    return [
        format_origin_rows(rows.iloc[at.get(code, none)], small=small[at.get(code, none)],
                           threshold=threshold)
        for code in area_codes
    ]  # fmt: skip


def predominant(table: pd.DataFrame, *, limit: int = 10) -> pd.DataFrame:
    """The largest origins force-wide."""
    rows = _origin_rows(table, level="force", area_code=FORCE_CODE)
    return format_origin_rows(rows.sort_values("active_in_area", ascending=False).head(limit))


def protect_two_way(grid: np.ndarray, *, threshold: int, labelled: bool) -> np.ndarray:
    """Which cells of a table with published row and column totals and grand total to withhold
    (rows x columns, then row totals, column totals and the grand total, flattened): each
    row and each column is an additive line, and the totals add up to the grand total.
    `labelled`: withheld small counts are printed "<threshold"."""
    n_r, n_c = grid.shape
    values = np.concatenate(
        [grid.ravel(), grid.sum(axis=1), grid.sum(axis=0), [grid.sum()]]
    ).astype(np.int64)
    cell = np.arange(n_r * n_c).reshape(n_r, n_c)
    row_total = n_r * n_c + np.arange(n_r)
    col_total = n_r * n_c + n_r + np.arange(n_c)
    grand = n_r * n_c + n_r + n_c
    rows = [(f"r{i}", int(c), False) for i in range(n_r) for c in cell[i]]
    rows += [(f"r{i}", int(row_total[i]), True) for i in range(n_r)]
    rows += [(f"c{j}", int(c), False) for j in range(n_c) for c in cell[:, j]]
    rows += [(f"c{j}", int(col_total[j]), True) for j in range(n_c)]
    rows += [("g", int(t), False) for t in row_total] + [("g", grand, True)]
    lines = pd.DataFrame(rows, columns=["line", "cell", "is_total"])
    return protect_counts(
        values, lines, threshold=threshold,
        labelled=np.ones(len(values), dtype=bool) if labelled else None,
    )  # fmt: skip


def monthly_counts(live: pd.DataFrame, origins: list[str], *, as_of: dt.date) -> pd.DataFrame:
    """Sign-ups (not deleted) per origin (rows, every population origin) per month (columns,
    the twelve to `as_of`), by the month each user joined."""
    months = pd.period_range(pd.Period(as_of, "M") - 11, pd.Period(as_of, "M"), freq="M")
    joined = live.dropna(subset=["origin"])
    joined = joined[joined["joined"].dt.date <= as_of]  # as the representation counts them
    month = joined["joined"].dt.to_period("M")
    return (
        pd.crosstab(joined["origin"], month)
        .reindex(index=origins, columns=months, fill_value=0)
        .astype(np.int64)
    )


def _protect_monthly(
    grid: np.ndarray, origins: list[str], representation: Representation, *, threshold: int
) -> np.ndarray:
    """Which of the monthly table's cells to withhold (months, row totals, column totals, the
    grand total, flattened in that order), protected as one system with the representation
    hierarchy: for each origin, its force count = its twelve months + its sign-ups before
    them (a cell never printed, but derivable)."""
    hier = representation.counts.reset_index(drop=True)
    n_h = len(hier)
    force_row = pd.Series(np.arange(n_h), index=hier["node"])[
        ((hier["level"] == "force") & (hier["origin_level"] == "origin")).to_numpy()
    ]
    f_pos = force_row.reindex(origins).to_numpy()
    n_r, n_c = grid.shape
    row_total, col_total = grid.sum(axis=1), grid.sum(axis=0)
    before = hier["registered"].to_numpy(np.int64)[f_pos] - row_total
    if (before < 0).any():  # the months count sign-ups the hierarchy does not: a bug upstream
        raise ValueError("monthly sign-ups exceed the force-wide counts they are part of")
    # positions: the hierarchy, then months, row totals, column totals, grand total, befores
    m0 = n_h
    t0, c0 = m0 + n_r * n_c, m0 + n_r * n_c + n_r
    g, b0 = c0 + n_c, c0 + n_c + 1
    cell = m0 + np.arange(n_r * n_c).reshape(n_r, n_c)
    rows = [(f"m{i}", int(t0 + i), True) for i in range(n_r)]
    rows += [(f"m{i}", int(c), False) for i in range(n_r) for c in cell[i]]
    rows += [(f"c{j}", int(c0 + j), True) for j in range(n_c)]
    rows += [(f"c{j}", int(c), False) for j in range(n_c) for c in cell[:, j]]
    rows += [("g", g, True)] + [("g", int(t0 + i), False) for i in range(n_r)]
    rows += [("f" + str(i), int(f_pos[i]), True) for i in range(n_r)]
    rows += [("f" + str(i), int(t0 + i), False) for i in range(n_r)]
    rows += [("f" + str(i), int(b0 + i), False) for i in range(n_r)]
    table_lines = pd.DataFrame(rows, columns=["line", "cell", "is_total"])
    values = np.concatenate(
        [hier["registered"].to_numpy(np.int64), grid.ravel(), row_total, col_total,
         [grid.sum()], before]
    ).astype(np.int64)  # fmt: skip
    ours = len(values) - n_h
    hidden_h = hier["suppressed"].to_numpy(bool)
    # printed: the hierarchy's force and parent origin rows and every cell of this table, not
    # the befores
    labelled = np.concatenate([labelled_rows(hier), np.ones(ours - n_r, bool), np.zeros(n_r, bool)])
    # where every origin's force count is published, those constants cut this table off from
    # the rest of the hierarchy (audited when it was published): this table's lines and those
    # constants are the whole system. A withheld force count links the two: then it is all one.
    linked = bool(hidden_h[f_pos].any())
    lines = (
        pd.concat([representation.lines, table_lines], ignore_index=True) if linked else table_lines
    )
    withheld = protect_counts(
        values, lines, threshold=threshold, labelled=labelled,
        initial=np.concatenate([hidden_h, np.zeros(ours, bool)]),
        frozen=np.concatenate([np.ones(n_h, bool), np.zeros(ours, bool)]),
        check=None if linked else np.arange(n_h, len(values)),
    )  # fmt: skip
    return withheld[m0:b0]


def monthly_origin_table(
    counts: pd.DataFrame, representation: Representation, *, threshold: int
) -> pd.DataFrame:
    """The ORIGINS-style monthly table: each origin's sign-ups per month with an arrow against
    the month before (when both are published), its twelve-month total, and an "All origins"
    row; withheld small counts "<threshold".

    It is protected together with the representation hierarchy it sits beside: an origin's
    force-wide count (published in `representation.csv`) is its twelve months plus the sign-ups
    before them, so the two tables are one system of lines. The hierarchy's cells keep the
    status they were published with; only this table's cells are withheld to protect both.
    """
    grid = counts.to_numpy(dtype=np.int64)
    withheld = _protect_monthly(grid, list(counts.index), representation, threshold=threshold)
    n_r, n_c = grid.shape
    full = np.zeros((n_r + 1, n_c + 1), dtype=np.int64)
    full[:n_r, :n_c], full[:n_r, n_c], full[n_r, :n_c], full[n_r, n_c] = (
        grid, grid.sum(axis=1), grid.sum(axis=0), grid.sum(),
    )  # fmt: skip
    hidden = np.zeros_like(full, dtype=bool)
    hidden[:n_r, :n_c] = withheld[: n_r * n_c].reshape(n_r, n_c)
    hidden[:n_r, n_c] = withheld[n_r * n_c : n_r * n_c + n_r]
    hidden[n_r, :n_c] = withheld[n_r * n_c + n_r : n_r * n_c + n_r + n_c]
    hidden[n_r, n_c] = withheld[n_r * n_c + n_r + n_c]
    small = hidden & (full >= 1) & (full < threshold)
    # a display table of a few hundred cells: each published count with its arrow against the
    # month before, when that month is published too
    text = np.empty(full.shape, dtype=object)
    for (i, j), value in np.ndenumerate(full):
        if hidden[i, j]:
            text[i, j] = f"<{threshold}" if small[i, j] else WITHHELD
            continue
        text[i, j] = f"{value:,}"
        if 0 < j < n_c and not hidden[i, j - 1]:
            before = full[i, j - 1]
            text[i, j] += f" {UP if value > before else DOWN if value < before else SAME}"
    months = [str(m.strftime("%b %Y")) for m in pd.PeriodIndex(counts.columns)]
    shown = pd.DataFrame(text, columns=[*months, "Last 12 months"])
    shown.insert(0, "Origin", [*map(str, counts.index), "All origins"])
    return shown
