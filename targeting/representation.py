"""Target-versus-actual registration per origin: who is missing from the alert system, and where.

Per origin within an area (and per origin group, for parents and the whole force), the target
rate is the origin's share of residents and the actual rate its share of sign-ups with a known
origin (not deleted). The 95% Wilson interval says how sure the actual rate is; an origin is
under-represented only when the whole interval lies below the target, so small numbers do not
raise false alarms; a Benjamini-Hochberg q-value per level says which gaps are beyond chance
across the thousands of rows a force has. Sign-up counts are disclosure-controlled across the
whole hierarchy before anything is published (`targeting.disclosure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from targeting.disclosure import protect_counts, suppress_lines
from targeting.errors import NoRunError
from targeting.h3cells import cell_parents
from targeting.io import normalise_name
from targeting.origins import origin_groups

FORCE_CODE, FORCE_NAME = "ALL", "All areas"
LEVELS = ("force", "parent", "area")
TOTAL = "\x00all origins"  # the all-origins node of the hierarchy (never an origin's name)
REPRESENTATION_COLUMNS = (
    "level", "area_code", "area_name", "origin_level", "origin", "active_in_area", "registered",
    "target_rate", "actual_rate", "rate_delta", "representation_index", "ci_low", "ci_high",
    "parity_gap", "under_represented", "suppressed", "p_value", "q_value",
)  # fmt: skip
UNKNOWN_SHARE_FLAG = 0.20  # above this, an area's rates rest on too few sign-ups with an origin


# scipy.stats (which statsmodels' interval and tests import) takes 0.8 s to load, a twentieth of
# a force's run, for three closed forms: these use scipy.special's binomial distribution and
# normal quantile instead, and the tests check them against statsmodels and scipy.stats


def wilson_interval(count: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of count / n; NaN where n is 0."""
    from scipy.special import ndtri

    count = np.asarray(count, dtype=float)
    n = np.asarray(n, dtype=float)
    safe = np.where(n > 0, n, 1.0)
    z = ndtri(0.975)
    share = count / safe
    centre = (share + z * z / (2 * safe)) / (1 + z * z / safe)
    half = z / (1 + z * z / safe) * np.sqrt(share * (1 - share) / safe + z * z / (4 * safe * safe))
    return np.where(n > 0, centre - half, np.nan), np.where(n > 0, centre + half, np.nan)


def parity_gaps(target: np.ndarray, registered: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Extra sign-ups of an origin that would bring its actual rate up to its target rate,
    the area's other sign-ups unchanged: ceil(max(0, (t N - r) / (1 - t))); NaN when N is 0 or
    the target is 0 or 1."""
    t = np.asarray(target, dtype=float)
    defined = (np.asarray(n) > 0) & (t > 0) & (t < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.ceil(np.maximum(0.0, (t * n - registered) / (1.0 - t)) - 1e-9)
    return np.where(defined, np.maximum(gap, 0.0), np.nan)


def binomial_p_values(registered: np.ndarray, n: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Two-sided exact binomial p-value of `registered` sign-ups out of `n` at rate `target`
    (twice the smaller tail, at most 1).

    NaN where the test is undefined (n is 0, or the target is 0 or 1).
    """
    from scipy.special import bdtr, bdtrc

    k = np.asarray(registered, dtype=float)
    n = np.asarray(n, dtype=float)
    t = np.clip(np.asarray(target, dtype=float), 1e-12, 1 - 1e-12)
    defined = (n > 0) & (np.asarray(target) > 0) & (np.asarray(target) < 1)
    trials = n.astype(np.int64)  # counts; scipy.special deprecates a float number of trials
    lower = bdtr(k, trials, t)  # P(X <= k)
    upper = bdtrc(k - 1, trials, t)  # P(X >= k); 1 at k = 0
    return np.where(defined, np.minimum(1.0, 2.0 * np.minimum(lower, upper)), np.nan)


def bh_q_values(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of the defined p-values (NaN stays NaN): each sorted p-value
    times m over its rank, made monotone from the largest down, at most 1."""
    q = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok) == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * len(order) / np.arange(1, len(order) + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return q


@dataclass(frozen=True)
class Representation:
    """The published table and the hierarchy of counts behind it.

    `table` is `representation.csv` (disclosure-controlled). `counts` holds every node of the
    geography x origin hierarchy with raw counts and whether each is withheld, so later outputs
    (rankings, maps, reports) withhold the same counts. `unknown` has, per area, parent and the
    force, the sign-ups with no known origin and their share.
    """

    table: pd.DataFrame
    counts: pd.DataFrame
    unknown: pd.DataFrame
    areas: pd.DataFrame
    # the hierarchy's additive lines over `counts`' rows (`disclosure.suppress_lines`' format),
    # so that a table published beside it (the report's monthly one) is protected with it
    lines: pd.DataFrame = field(default_factory=pd.DataFrame)


def _flags(values: np.ndarray, *, blank: np.ndarray) -> pd.Series:
    """A true/false column that is blank (NA) where `blank` holds."""
    return pd.Series(values, dtype="boolean").mask(blank)


def _geo_nodes(areas: pd.DataFrame) -> pd.DataFrame:
    """Geography nodes: the force, parents (where areas have them), areas; with each area's chain."""
    has_parent = areas["parent_code"].notna() & areas["parent_code"].astype(str).ne("")
    rows = [("force", FORCE_CODE, FORCE_NAME)]
    if has_parent.any():
        parents = areas.loc[has_parent, ["parent_code", "parent_name"]].drop_duplicates(
            "parent_code"
        )
        names = parents["parent_name"].where(parents["parent_name"].notna(), parents["parent_code"])
        rows += [("parent", c, str(n)) for c, n in zip(parents["parent_code"], names, strict=True)]
    rows += [("area", c, n) for c, n in zip(areas["area_code"], areas["area_name"], strict=True)]
    return pd.DataFrame(rows, columns=["level", "area_code", "area_name"])


def count_hierarchy(
    area_counts: pd.DataFrame,
    *,
    areas: pd.DataFrame,
    values: Sequence[str] = ("residents", "registered"),
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str], dict[str, str]]:
    """Residents and sign-ups (or any other `values` columns of `area_counts`) at every node of
    the two hierarchies: geography (area, parent, force) by origin (origin, group, all origins).

    Returns the counts (`level, geo, origin_level, node` and the values), the complete area x
    origin leaf table (with each origin's `group`), each area's parent and each origin's group.
    `area_counts` and `areas` are as for `represent`.
    """
    origins = sorted(area_counts["origin"].unique())
    groups = origin_groups(origins)
    has_parent = areas["parent_code"].notna() & areas["parent_code"].astype(str).ne("")
    parent_of = dict(
        zip(areas.loc[has_parent, "area_code"], areas.loc[has_parent, "parent_code"], strict=True)
    )

    # leaf table: area x origin, complete (every origin in every area)
    leaf = (
        pd.MultiIndex.from_product([areas["area_code"], origins], names=["area_code", "origin"])
        .to_frame(index=False)
        .merge(area_counts, on=["area_code", "origin"], how="left")
        .fillna(dict.fromkeys(values, 0))
        .copy()  # one block again: filling column by column splits a wide frame
    )
    leaf["group"] = leaf["origin"].map(groups)
    # every origin node (origin, its group, all origins) at every geography node
    parts = []
    for geo_level, key in (("area", leaf["area_code"]), ("parent", leaf["area_code"].map(parent_of)),
                           ("force", pd.Series(FORCE_CODE, index=leaf.index))):  # fmt: skip
        base = leaf.assign(geo=key.to_numpy())
        if geo_level == "parent" and not parent_of:
            continue
        base = base[base["geo"].notna()]
        for origin_level, node in (("origin", base["origin"]), ("group", base["group"]),
                                   ("total", pd.Series(TOTAL, index=base.index))):  # fmt: skip
            parts.append(
                base.assign(level=geo_level, origin_level=origin_level, node=node.to_numpy())
                .groupby(["level", "geo", "origin_level", "node"], sort=False)[list(values)]
                .sum()
                .reset_index()
            )
    counts = pd.concat(parts, ignore_index=True)
    if "registered" in values:
        counts["registered"] = counts["registered"].astype(np.int64)
    return counts, leaf, parent_of, groups


def represent(
    area_counts: pd.DataFrame,
    *,
    areas: pd.DataFrame,
    unknown_by_area: pd.Series,
    threshold: int,
) -> Representation:
    """Representation at every level, per origin and per group, disclosure-controlled.

    `area_counts` has `area_code, origin, residents, registered` (registered: known-origin sign-ups
    that are not deleted); `areas` has `area_code, area_name, parent_code, parent_name`;
    `unknown_by_area` counts sign-ups (not deleted) with no known origin per area.
    """
    counts, leaf, parent_of, groups = count_hierarchy(area_counts, areas=areas)
    lines = _lines(counts, leaf, parent_of, groups)
    counts["suppressed"] = protect_counts(
        counts["registered"].to_numpy(), lines, threshold=threshold, labelled=labelled_rows(counts)
    )

    table = _table(counts, areas)
    unknown = _unknown(counts, unknown_by_area, parent_of, threshold=threshold)
    return Representation(
        table, counts, unknown, _area_gaps(counts, areas, threshold=threshold), lines
    )


def _lines(
    counts: pd.DataFrame,
    leaf: pd.DataFrame,
    parent_of: Mapping[str, str],
    groups: Mapping[str, str],
) -> pd.DataFrame:
    """Every additive line of the hierarchy: a total cell and the cells that add up to it."""
    pos = pd.Series(
        np.arange(len(counts)),
        index=pd.MultiIndex.from_frame(counts[["level", "geo", "origin_level", "node"]]),
    )
    rows: list[pd.DataFrame] = []

    def add(line_keys: pd.DataFrame, total_keys: pd.DataFrame, child_keys: pd.DataFrame) -> None:
        total = pos.reindex(pd.MultiIndex.from_frame(total_keys)).to_numpy()
        child = pos.reindex(pd.MultiIndex.from_frame(child_keys)).to_numpy()
        # the key columns joined column by column (a join per row took 0.7 s at force scale)
        text = [line_keys[c].astype(str).to_numpy(dtype=object) for c in line_keys.columns]
        line_id = text[0]
        for part in text[1:]:
            line_id = line_id + "|" + part
        rows.append(
            pd.DataFrame({"line": line_id, "cell": total, "is_total": True}).drop_duplicates()
        )
        rows.append(pd.DataFrame({"line": line_id, "cell": child, "is_total": False}))

    by_node = counts[["level", "geo", "origin_level", "node"]]
    # origin dimension: origins add up to their group, groups to all origins, at each geography
    o = by_node[by_node["origin_level"] == "origin"]
    add(
        o[["level", "geo"]].assign(kind="g", g=o["node"].map(groups)),
        o[["level", "geo"]].assign(origin_level="group", node=o["node"].map(groups).to_numpy()),
        o,
    )
    g = by_node[by_node["origin_level"] == "group"]
    add(
        g[["level", "geo"]].assign(kind="t"),
        g[["level", "geo"]].assign(origin_level="total", node=TOTAL),
        g,
    )
    # geography dimension: areas add up to parents, parents (or areas) to the force
    up = {"area": ("parent", parent_of)} if parent_of else {}
    a = by_node[by_node["level"] == "area"]
    if up:
        a_p = a[a["geo"].isin(parent_of)]
        add(
            a_p[["origin_level", "node"]].assign(kind="p", p=a_p["geo"].map(parent_of)),
            a_p[["origin_level", "node"]].assign(
                level="parent", geo=a_p["geo"].map(parent_of).to_numpy()
            )[["level", "geo", "origin_level", "node"]],
            a_p,
        )
    # the force adds up parents and any areas that have no parent
    top = by_node[
        (by_node["level"] == "parent")
        | ((by_node["level"] == "area") & ~by_node["geo"].isin(parent_of))
    ]
    add(
        top[["origin_level", "node"]].assign(kind="f"),
        top[["origin_level", "node"]].assign(level="force", geo=FORCE_CODE)[
            ["level", "geo", "origin_level", "node"]
        ],
        top,
    )
    lines = pd.concat(rows, ignore_index=True)
    return lines[lines["cell"].notna()].astype({"cell": np.int64})


def _table(counts: pd.DataFrame, areas: pd.DataFrame) -> pd.DataFrame:
    """`representation.csv`: one row per level x area x origin (and group), withheld values blank."""
    totals = counts[counts["origin_level"] == "total"].set_index(["level", "geo"])
    rows = counts[counts["origin_level"] != "total"].copy()
    key = pd.MultiIndex.from_frame(rows[["level", "geo"]])
    area_res = totals["residents"].reindex(key).to_numpy()
    n = totals["registered"].reindex(key).to_numpy().astype(float)
    n_withheld = totals["suppressed"].reindex(key).to_numpy(dtype=bool)
    res = rows["residents"].to_numpy(dtype=float)
    reg = rows["registered"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(area_res > 0, res / area_res, np.nan)
        actual = np.where(n > 0, reg / n, np.nan)
        index = np.where(target > 0, 100.0 * actual / target, np.nan)
    low, high = wilson_interval(reg, n)
    gap = parity_gaps(target, reg, n)
    p = binomial_p_values(reg, n, target)
    own = rows["suppressed"].to_numpy(dtype=bool)
    # a rate, bound or gap reveals the count when N is known, and N when the count is known
    derived_hidden = own | n_withheld
    table = pd.DataFrame(
        {
            "level": rows["level"].to_numpy(),
            "area_code": rows["geo"].to_numpy(),
            "origin_level": rows["origin_level"].to_numpy(),
            "origin": rows["node"].to_numpy(),
            "active_in_area": res,
            "registered": pd.array(np.where(own, np.nan, reg), dtype="Int64"),
            "target_rate": target,
            "actual_rate": np.where(derived_hidden, np.nan, actual),
            "rate_delta": np.where(derived_hidden, np.nan, target - actual),
            "representation_index": np.where(derived_hidden, np.nan, index),
            "ci_low": np.where(derived_hidden, np.nan, low),
            "ci_high": np.where(derived_hidden, np.nan, high),
            "parity_gap": pd.array(np.where(derived_hidden, np.nan, gap), dtype="Int64"),
            "under_represented": _flags(high < target, blank=derived_hidden | np.isnan(high)),
            "suppressed": derived_hidden,
            "p_value": np.where(derived_hidden, np.nan, p),
        }
    )
    table["q_value"] = np.nan
    for level in LEVELS:
        at = (table["level"] == level).to_numpy()
        table.loc[at, "q_value"] = bh_q_values(table.loc[at, "p_value"].to_numpy())
    names = _geo_nodes(areas).set_index(["level", "area_code"])["area_name"]
    table.insert(
        2,
        "area_name",
        names.reindex(pd.MultiIndex.from_frame(table[["level", "area_code"]])).to_numpy(),
    )
    order = {lvl: i for i, lvl in enumerate(LEVELS)}
    table = table.sort_values(
        ["level", "area_code", "origin_level", "origin"],
        key=lambda s: s.map(order) if s.name == "level" else s,
        kind="stable",
    )
    return table[list(REPRESENTATION_COLUMNS)].reset_index(drop=True)


def _area_gaps(counts: pd.DataFrame, areas: pd.DataFrame, *, threshold: int) -> pd.DataFrame:
    """Per area, parent and the force: sign-ups, parity gap and penetration gap.

    `parity_gap` = sum over origins of max(0, target_rate x N - registered): the sign-ups by which
    under-represented origins fall short of their share at the current total. `penetration_gap`
    = max(0, p x residents - N), p the force's known-origin sign-ups per resident: how far the
    area as a whole falls short of the force-wide rate. Where an origin's count in the area is
    withheld, the parity gap is rounded to the nearest multiple of the threshold (and flagged),
    so the withheld count can only be placed in a window as wide as the threshold; both gaps are
    blank where the area's total is withheld.
    """
    origin_rows = counts[counts["origin_level"] == "origin"]
    totals = counts[counts["origin_level"] == "total"].set_index(["level", "geo"])
    key = pd.MultiIndex.from_frame(origin_rows[["level", "geo"]])
    n = totals["registered"].reindex(key).to_numpy(dtype=float)
    res_total = totals["residents"].reindex(key).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        shortfall = np.maximum(
            0.0,
            origin_rows["residents"].to_numpy() / res_total * n
            - origin_rows["registered"].to_numpy(),
        )
    per_geo = (
        origin_rows.assign(shortfall=np.nan_to_num(shortfall))
        .groupby(["level", "geo"], sort=False)
        .agg(parity_gap=("shortfall", "sum"), any_withheld=("suppressed", "any"))
    )
    out = totals[["residents", "registered", "suppressed"]].join(per_geo).reset_index()
    force = out[out["level"] == "force"].iloc[0]
    rate = force["registered"] / force["residents"] if force["residents"] > 0 else 0.0
    n_all = out["registered"].to_numpy(dtype=float)
    hidden_n = out["suppressed"].to_numpy(bool)
    # the penetration gap uses the force's rate, so it would reveal a withheld force total
    hidden_pen = hidden_n | bool(force["suppressed"])
    rounded = out["any_withheld"].to_numpy(bool) & ~hidden_n
    gap = out["parity_gap"].to_numpy(dtype=float)
    gap = np.where(rounded, np.floor(gap / threshold + 0.5) * threshold, gap)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_1000 = np.where(out["residents"] > 0, 1000 * n_all / out["residents"], np.nan)
        per_100 = np.where(n_all > 0, 100 * gap / n_all, np.nan)
    names = _geo_nodes(areas).set_index(["level", "area_code"])["area_name"]
    result = pd.DataFrame(
        {
            "level": out["level"],
            "area_code": out["geo"],
            "area_name": names.reindex(pd.MultiIndex.from_frame(out[["level", "geo"]])).to_numpy(),
            "residents": out["residents"],
            "registered": pd.array(np.where(hidden_n, np.nan, n_all), dtype="Int64"),
            "signups_per_1000": np.where(hidden_n, np.nan, per_1000),
            "parity_gap": np.where(hidden_n, np.nan, gap),
            "parity_gap_rounded": rounded,
            "parity_gap_per_100": np.where(hidden_n, np.nan, per_100),
            "penetration_gap": np.where(
                hidden_pen, np.nan, np.maximum(0.0, rate * out["residents"] - n_all)
            ),
            "suppressed": hidden_n,
        }
    )
    order = {lvl: i for i, lvl in enumerate(LEVELS)}
    return result.sort_values(
        ["level", "area_code"], key=lambda c: c.map(order) if c.name == "level" else c
    ).reset_index(drop=True)


def labelled_rows(counts: pd.DataFrame) -> np.ndarray:
    """The counts the report prints as "<threshold" when they are withheld small counts: the
    origin rows of the force and of each parent (the NPU tables)."""
    return ((counts["level"] != "area") & (counts["origin_level"] == "origin")).to_numpy()


def _unknown(
    counts: pd.DataFrame,
    unknown_by_area: pd.Series,
    parent_of: Mapping[str, str],
    *,
    threshold: int,
) -> pd.DataFrame:
    """Sign-ups with no known origin per area, parent and force, with their share and a flag.

    The counts add up from areas to parents to the force, so they get the same protection as the
    origin counts (`protect_counts` over those lines); a withheld count, or a withheld N, blanks
    the share and the flag.
    """
    totals = counts[counts["origin_level"] == "total"][["level", "geo", "registered", "suppressed"]]
    area_unknown = unknown_by_area.astype(np.int64)
    per = {"area": area_unknown}
    if parent_of:
        per["parent"] = area_unknown.groupby(area_unknown.index.map(parent_of)).sum()
    per["force"] = pd.Series({FORCE_CODE: int(area_unknown.sum())})
    nodes = pd.concat(
        [
            pd.DataFrame({"level": lvl, "geo": s.index, "value": s.to_numpy()})
            for lvl, s in per.items()
        ],
        ignore_index=True,
    )
    pos = pd.Series(np.arange(len(nodes)), index=pd.MultiIndex.from_frame(nodes[["level", "geo"]]))
    areas = nodes[nodes["level"] == "area"]
    up = areas["geo"].map(parent_of) if parent_of else pd.Series(np.nan, index=areas.index)
    rows = []
    for geo, parent in zip(areas["geo"], up, strict=True):
        if isinstance(parent, str):
            rows += [(f"p|{parent}", pos[("area", geo)], False)]
        else:
            rows += [("f", pos[("area", geo)], False)]
    if parent_of:
        rows += [(f"p|{p}", pos[("parent", p)], True) for p in per["parent"].index]
        rows += [("f", pos[("parent", p)], False) for p in per["parent"].index]
    rows.append(("f", pos[("force", FORCE_CODE)], True))
    lines = pd.DataFrame(rows, columns=["line", "cell", "is_total"])
    protected = protect_counts(nodes["value"].to_numpy(np.int64), lines, threshold=threshold)
    frames = []
    for level, series in per.items():
        t = totals[totals["level"] == level].set_index("geo")
        known = t["registered"].reindex(series.index).fillna(0).to_numpy()
        unknown = series.to_numpy()
        all_signups = known + unknown
        own = protected[
            pos.reindex(pd.MultiIndex.from_arrays([[level] * len(series), series.index])).to_numpy()
        ]
        withheld = own | t["suppressed"].reindex(series.index).fillna(False).to_numpy(bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(all_signups > 0, unknown / all_signups, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "level": level,
                    "area_code": series.index,
                    "unknown_origin": pd.array(np.where(own, np.nan, unknown), dtype="Int64"),
                    "unknown_share": np.where(withheld, np.nan, share),
                    "unreliable": _flags(
                        share > UNKNOWN_SHARE_FLAG, blank=withheld | np.isnan(share)
                    ),
                    "suppressed": withheld,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def grid_to_representation(
    cell_origins: pd.DataFrame, cells: pd.DataFrame, *, areas: pd.DataFrame, threshold: int
) -> Representation:
    """Representation from a run's grid: area counts are sums of their fragments."""
    area_counts = cell_origins.groupby(["area_code", "origin"], as_index=False)[
        ["residents", "registered"]
    ].sum()
    unknown = (cells["registered"] - cells["registered_known"]).groupby(cells["area_code"]).sum()
    unknown = unknown.reindex(areas["area_code"], fill_value=0)
    return represent(area_counts, areas=areas, unknown_by_area=unknown, threshold=threshold)


def map_cells(cell_origins: pd.DataFrame, *, resolution: int, threshold: int) -> pd.DataFrame:
    """Per-origin representation on coarser H3 cells for the map, disclosure-controlled.

    Per-origin counts on the analysis grid mostly fall under the threshold, so the map uses
    parent cells at `resolution`; a cell's origins add up to its total, and an origin's cells to
    the force total, and both kinds of line get primary and line-by-line secondary suppression.
    The linear-programming audit the tables get (`protect_counts`) takes minutes on a force's
    map table, so the map (which renders this table) is audited separately.
    """
    # each distinct cell's parent, found once and taken for every row by its code (a million
    # rows at national scale, where mapping the text through a dict took a fifth of a second)
    encoded = pc.dictionary_encode(pa.array(cell_origins["cell"], type=pa.large_string()))
    parents = pa.array(cell_parents(np.asarray(encoded.dictionary.to_pylist(), dtype=object),
                                    resolution=resolution), type=pa.large_string())  # fmt: skip
    parent_of_row: pd.api.extensions.ExtensionArray = pd.array(
        pc.take(parents, encoded.indices), dtype=cell_origins["cell"].dtype
    )
    coarse = (
        cell_origins.assign(cell=parent_of_row)
        .groupby(["cell", "origin"], as_index=False)[["residents", "registered"]]
        .sum()
    )
    totals = coarse.groupby("cell", as_index=False)[["residents", "registered"]].sum()
    totals["origin"] = TOTAL
    force = coarse.groupby("origin", as_index=False)[["residents", "registered"]].sum()
    force["cell"] = FORCE_CODE
    table = pd.concat([coarse, totals, force], ignore_index=True)
    table["registered"] = table["registered"].astype(np.int64)
    idx = np.arange(len(table))
    pos = pd.Series(idx, index=pd.MultiIndex.from_frame(table[["cell", "origin"]]))
    by_cell = table[(table["cell"] != FORCE_CODE)]
    lines = pd.concat(
        [
            pd.DataFrame({"line": "c" + by_cell["cell"], "cell": by_cell.index,
                          "is_total": (by_cell["origin"] == TOTAL).to_numpy()}),
            pd.DataFrame({"line": "o" + coarse["origin"],
                          "cell": pos.reindex(pd.MultiIndex.from_frame(coarse[["cell", "origin"]])).to_numpy(),
                          "is_total": False}),
            pd.DataFrame({"line": "o" + force["origin"],
                          "cell": pos.reindex(pd.MultiIndex.from_frame(force[["cell", "origin"]])).to_numpy(),
                          "is_total": True}),
        ],
        ignore_index=True,
    )  # fmt: skip
    table["suppressed"] = suppress_lines(table["registered"].to_numpy(), lines, threshold=threshold)
    out = table[(table["cell"] != FORCE_CODE) & (table["origin"] != TOTAL)].copy()
    cell_tot = table[table["origin"] == TOTAL].set_index("cell")
    n = cell_tot["registered"].reindex(out["cell"]).to_numpy(dtype=float)
    res_total = cell_tot["residents"].reindex(out["cell"]).to_numpy(dtype=float)
    hidden = out["suppressed"].to_numpy(bool) | cell_tot["suppressed"].reindex(
        out["cell"]
    ).to_numpy(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(res_total > 0, out["residents"].to_numpy() / res_total, np.nan)
        actual = np.where(n > 0, out["registered"].to_numpy() / n, np.nan)
        index = np.where(target > 0, 100 * actual / target, np.nan)
    out["target_rate"] = target
    out["actual_rate"] = np.where(hidden, np.nan, actual)
    out["representation_index"] = np.where(hidden, np.nan, index)
    out["registered"] = pd.array(np.where(hidden, np.nan, out["registered"]), dtype="Int64")
    out["suppressed"] = hidden
    return out.sort_values(["cell", "origin"]).reset_index(drop=True)


def read_representation(path: Path) -> pd.DataFrame:
    """A finished run's `representation.csv` (blank cells stay blank)."""
    if not path.is_file():
        raise NoRunError(
            f"no finished run in {path.parent}: {path.name} is not there; run `targeting run` "
            "with this config first, then look again"
        )
    return pd.read_csv(path, dtype={"area_code": str, "area_name": str, "origin": str})


def select_rows(
    table: pd.DataFrame, *, level: str, origin: str | None = None, origin_level: str = "origin"
) -> pd.DataFrame:
    """Rows of one level (and one origin, matched like labels), largest parity gap first."""
    rows = table[(table["level"] == level) & (table["origin_level"] == origin_level)]
    if origin is not None:
        rows = rows[rows["origin"].map(normalise_name) == normalise_name(origin)]
    return rows.sort_values(["parity_gap", "active_in_area"], ascending=False, na_position="last")
