"""The week's plan as one decision: how many door-knocking hotspots, street sessions, mobile-station
days and geofenced social posts go to each area, within the week's capacity, to bring in the most
expected sign-ups from the origins each area is short of.

Every place the plan can use is an *option*: one door hotspot (a residential cell), one street
session (a cell of busy public places), one station day (the area's best site), or one social post
(a geofence over the area's homes of its target origins). An option's `value` is its expected
sign-ups from the area's target origins: the tactic's yield per unit times the share of the people
it reaches who are of those origins. The plan chooses options to maximise the sum over areas of
those values, each area's sum counted at most up to its gap (`caps`: what it is short) and
weighted by the area's score (so the run's weights, its priorities, decide between areas), with
one tactic on the ground per area (a social post may come on top), within the limits: hotspots
(door and street) force-wide, or officer hours per NPU; station days; social posts. It is a small
integer program, solved exactly by HiGHS through `scipy.optimize.milp`; every hotspot, station
site and geofence is then read off its solution, so nothing downstream can contradict the tactic
an area was given.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from targeting.errors import PlanError

PLAN_TACTICS = ("door", "street", "station", "social")
# each tactic's colour on every map (the pack's and the officers'): outside the map's fill
# palettes (browns and teals for the index, yellow to red for densities, greens for Watch), so a
# marker never takes the colour of the fill under it; tactics also differ by shape
TACTIC_COLOURS = {"door": "#000000", "street": "#e7298a", "station": "#7570b3", "social": "#1f78b4"}
# how the pages name each tactic, and each unit of the week a plan counts (its column, its word)
TACTIC_NAMES = {
    "door": "door-knocking", "street": "street engagement", "station": "mobile police station",
    "social": "social media posts", "none": "nothing this week",
}  # fmt: skip
UNIT_WORDS = (
    ("hotspots", "door hotspot"), ("street_sites", "street session"),
    ("station_days", "station day"), ("social_posts", "social post"),
)  # fmt: skip
OPTION_COLUMNS = ("area_code", "parent_code", "tactic", "cell", "value", "signups", "hours")
# what an hour of slack is worth against a sign-up: enough that no unit is spent where it adds
# nothing, too little to change which sign-ups are won
_HOURS_PENALTY = 1e-6


@dataclass(frozen=True)
class Limits:
    """The week's capacity: door and street hotspots force-wide (None: officer hours bind
    instead), officer hours per parent (NPU) (None: hotspots bind instead), station days and
    geofenced social posts force-wide."""

    hotspots: int | None
    officer_hours: float | None
    station_days: int
    social_posts: int


def solve_plan(
    options: pd.DataFrame, caps: pd.Series, priority: pd.Series, *, limits: Limits
) -> np.ndarray:
    """Which options the week's plan takes (a boolean per row of `options`), exactly.

    `options` has `OPTION_COLUMNS`; `caps` is each area's most countable gain (its gap) and
    `priority` its weight (the run's score, so the force's priorities decide between areas),
    both indexed by area_code (an area without them counts nothing). Maximises the sum over
    areas of priority x min(cap, value of its chosen options), with at most one tactic on the
    ground (door, street or station) per area, social posts on top, within `limits`.
    """
    n = len(options)
    if n == 0:
        return np.zeros(0, dtype=bool)
    areas = pd.Index(sorted(options["area_code"].unique()))
    area_of = areas.get_indexer(options["area_code"])
    pairs = pd.MultiIndex.from_frame(options[["area_code", "tactic"]]).unique().sort_values()
    pair_of = pairs.get_indexer(pd.MultiIndex.from_frame(options[["area_code", "tactic"]]))
    n_pair, n_area = len(pairs), len(areas)
    # variables: y (options), z (area x tactic pairs), g (countable gain per area)
    y0, z0, g0 = 0, n, n + n_pair
    total = n + n_pair + n_area
    rows: list[sparse.coo_array] = []
    upper: list[np.ndarray] = []

    def block(coo: tuple[np.ndarray, np.ndarray, np.ndarray], count: int, ub: np.ndarray) -> None:
        data, r, c = coo
        rows.append(sparse.coo_array((data, (r, c)), shape=(count, total)))
        upper.append(ub)

    idx = np.arange(n)
    # an option only in its area's chosen tactic: y_o - z_(a,t) <= 0
    block((np.r_[np.ones(n), -np.ones(n)], np.r_[idx, idx], np.r_[y0 + idx, z0 + pair_of]),
          n, np.zeros(n))  # fmt: skip
    # one tactic per area on the ground; a social post is read on phones, so it may come on top
    on_ground = pairs.get_level_values(1) != "social"
    pair_area = areas.get_indexer(pairs.get_level_values(0))
    block((np.ones(on_ground.sum()), pair_area[on_ground], z0 + np.flatnonzero(on_ground)),
          n_area, np.ones(n_area))  # fmt: skip
    # the gain counted is at most what the area's options bring: g_a - sum(value y) <= 0
    value = options["value"].to_numpy(dtype=float)
    block((np.r_[np.ones(n_area), -value], np.r_[np.arange(n_area), area_of],
           np.r_[g0 + np.arange(n_area), y0 + idx]), n_area, np.zeros(n_area))  # fmt: skip
    tactic = options["tactic"].to_numpy()
    hours = options["hours"].to_numpy(dtype=float)
    for which, limit in (
        (np.isin(tactic, ["door", "street"]), limits.hotspots),
        (tactic == "station", limits.station_days),
        (tactic == "social", limits.social_posts),
    ):
        if limit is not None and which.any():
            block((np.ones(which.sum()), np.zeros(which.sum(), dtype=int), y0 + idx[which]),
                  1, np.array([float(limit)]))  # fmt: skip
    if limits.officer_hours is not None:
        parents = pd.Index(sorted(options["parent_code"].astype(str).unique()))
        parent_of = parents.get_indexer(options["parent_code"].astype(str))
        block((hours, parent_of, y0 + idx), len(parents),
              np.full(len(parents), float(limits.officer_hours)))  # fmt: skip
    matrix = sparse.vstack(rows).tocsr()
    cap = caps.reindex(areas).fillna(0.0).clip(lower=0.0).to_numpy(dtype=float)
    lower = np.zeros(total)
    upper_bounds = np.r_[np.ones(n + n_pair), cap]
    weight = priority.reindex(areas).fillna(0.0).clip(lower=0.0).to_numpy(dtype=float)
    cost = np.r_[_HOURS_PENALTY * hours, np.zeros(n_pair), -weight]
    integrality = np.r_[np.ones(n + n_pair), np.zeros(n_area)]
    result = milp(
        cost,
        constraints=LinearConstraint(matrix, -np.inf, np.concatenate(upper)),
        bounds=Bounds(lower, upper_bounds),
        integrality=integrality,
        # presolve costs more than it saves on a programme this small: without it a force's
        # plan solves in under half the time (0.19 to 0.08 s on the real 2011 OAs), to the same
        # choice on every reference run (`benchmarks/output_digests.py`)
        options={"mip_rel_gap": 1e-9, "presolve": False},
    )
    if result.x is None:
        raise PlanError(f"the week's plan could not be solved: {result.message}")
    return best_of_each_kind(options, np.asarray(result.x[:n] > 0.5))


# option values closer than this are ties, so a last-bit difference in a sum behind them (a
# refactor's, not the data's) never decides between two cells
_VALUE_DIGITS = 9


def best_of_each_kind(options: pd.DataFrame, chosen: np.ndarray) -> np.ndarray:
    """`chosen` with, of each area's options of one tactic and length (`hours`), the same
    number taken but the highest-valued ones (ties: cell).

    Options of one kind are interchangeable in the programme (one area, so one parent; one
    tactic, so one limit; the same hours), and a higher value only adds to an area's sum, so
    this is as good an optimum. It is also one that does not depend on the solver's path:
    where an area's gap is filled, the programme gains nothing from which of its options fill
    it, and any of them is optimal.
    """
    kind = ["area_code", "tactic", "hours"]
    frame = options[[*kind, "cell"]].assign(
        value=options["value"].round(_VALUE_DIGITS), chosen=chosen, position=np.arange(len(options))
    )
    taken = frame.groupby(kind)["chosen"].transform("sum").to_numpy()
    ordered = frame.assign(taken=taken).sort_values(
        [*kind, "value", "cell"], ascending=[True, True, True, False, True], kind="stable"
    )
    rank = ordered.groupby(kind).cumcount().to_numpy()
    best = np.zeros(len(options), dtype=bool)
    best[ordered["position"].to_numpy()[rank < ordered["taken"].to_numpy()]] = True
    return best


def area_plan(
    options: pd.DataFrame,
    chosen: np.ndarray,
    caps: pd.Series,
    *,
    area_codes: pd.Index,
) -> pd.DataFrame:
    """Per area: its `tactic` (its door, street or station units; "social" when it has only
    social posts; "none" when the plan gives it nothing), the units of each tactic
    (`hotspots` for doors, `street_sites`, `station_days`, `social_posts`), `officer_hours`,
    `expected_signups` (all origins) and `expected_gain` (its target origins, up to its cap)."""
    taken = options.loc[chosen]
    units = taken.pivot_table(
        index="area_code", columns="tactic", values="value", aggfunc="size", fill_value=0
    ).reindex(index=area_codes, columns=list(PLAN_TACTICS), fill_value=0)
    sums = taken.groupby("area_code")[["hours", "signups", "value"]].sum().reindex(area_codes)
    ground = units[["door", "street", "station"]]
    idle = np.where(units["social"] > 0, "social", "none")
    tactic = np.where(ground.sum(axis=1) > 0, ground.idxmax(axis=1).astype(str), idle)
    gain = np.minimum(sums["value"].fillna(0.0), caps.reindex(area_codes).fillna(0.0).clip(lower=0))
    return pd.DataFrame(
        {
            "tactic": tactic,
            "hotspots": units["door"].astype(int),
            "street_sites": units["street"].astype(int),
            "station_days": units["station"].astype(int),
            "social_posts": units["social"].astype(int),
            "officer_hours": sums["hours"].fillna(0.0),
            "expected_signups": sums["signups"].fillna(0.0),
            "expected_gain": gain,
        },
        index=area_codes,
    )


def parent_plan(plan: pd.DataFrame, parents: pd.DataFrame, *, limits: Limits) -> pd.DataFrame:
    """`plan.csv`: per parent (NPU), what the week uses of its capacity. `plan` is `area_plan`;
    `parents` maps area_code to `parent_code, parent_name`."""
    joined = plan.join(parents)
    counted = ["hotspots", "street_sites", "station_days", "social_posts", "officer_hours",
               "expected_signups", "expected_gain"]  # fmt: skip
    out = joined.groupby(["parent_code", "parent_name"], dropna=False)[counted].sum().reset_index()
    mix = (
        joined[joined["tactic"] != "none"]
        .groupby("parent_code")["tactic"]
        .agg(lambda t: ", ".join(f"{k} {v}" for k, v in t.value_counts().sort_index().items()))
    )
    out.insert(2, "tactics", out["parent_code"].map(mix).astype(object).fillna(""))
    out.insert(3, "officer_hours_capacity", limits.officer_hours)
    return out.sort_values("expected_gain", ascending=False, kind="stable").reset_index(drop=True)


def units_text(row: Mapping[Hashable, Any]) -> str:
    """A plan row's units in words ("12 door hotspots, 1 station day"); "" when none."""
    values = [(row.get(col), word) for col, word in UNIT_WORDS]
    counts = [(0 if v is None or pd.isna(v) else int(v), w) for v, w in values]
    return ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts if n > 0)


def _best(frame: pd.DataFrame, by: str, *, per_area: int) -> pd.DataFrame:
    """The `per_area` rows of each area with the largest `by` (ties: cell)."""
    ordered = frame.rename_axis(None).sort_values(
        ["area_code", by, "cell"], ascending=[True, False, True]
    )
    return ordered[ordered.groupby("area_code").cumcount() < per_area]


def station_areas(areas: pd.DataFrame) -> pd.Index:
    """The areas the mobile station may go to: the worse half on the run's overlay score and,
    where Watch coverage is known, coverage below the force's median area. `areas` is indexed
    by area_code with `score` and `watch_share` (NaN where unknown)."""
    scored = areas["score"].notna()
    worse = scored & (areas["score"] >= areas.loc[scored, "score"].median())
    watch = areas["watch_share"]
    if watch.notna().any():
        worse &= watch < watch.median()
    return areas.index[worse.to_numpy()]


def plan_options(
    cells: pd.DataFrame,
    *,
    lived_in: pd.Series,
    excluded: frozenset[str],
    parents: pd.Series,
    stations_in: pd.Index,
    door_yields: pd.Series,
    yields: Mapping[str, float],
    hours: Mapping[str, float],
    per_area: int,
    radius_m: float,
    social: bool,
) -> pd.DataFrame:
    """Every place the week's plan may use, with its value (`OPTION_COLUMNS`).

    `cells` is indexed by cell with `area_code` (its main area), `residents`,
    `target_residents` (residents of its area's target origins), `public_crimes` and `area_m2`;
    `lived_in` marks the cells where people live; `excluded` cells were visited lately and rest
    this week; `parents` maps
    area_code to parent_code; `stations_in` are the areas the station may go to; `door_yields`
    is each cell's door yield (by its segment where `[segments.yields]` gives one).

    Door: the area's `per_area` lived-in cells with the largest share of residents of its target
    origins (value: yield x that share). Street: the area's `per_area` cells with the densest
    crimes of busy public places (the footfall proxy), value yield x density against the median
    candidate's (between a quarter and four times) x the area's share of target residents.
    Station: in `stations_in` areas, the lived-in cell whose walking radius holds most residents,
    value yield x the target share of those residents. Social (when `social`): one post per area,
    yield x the area's target share.
    """
    from targeting.siting import coverage_matrix

    residents = cells["residents"].to_numpy(dtype=float)
    target = cells["target_residents"].fillna(0.0).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = pd.Series(np.where(residents > 0, target / residents, 0.0), index=cells.index)
    by_area = cells.groupby("area_code")[["target_residents", "residents"]].sum()
    area_share = (by_area["target_residents"] / by_area["residents"]).fillna(0.0)
    frames = []
    rested = cells.index.isin(list(excluded))
    homes = cells[lived_in.reindex(cells.index, fill_value=False).to_numpy() & ~rested]
    door = homes.assign(cell=homes.index, share=share.reindex(homes.index))
    door = _best(door[door["share"] > 0], "share", per_area=per_area)
    frames.append(door.assign(tactic="door",
                              value=door_yields.reindex(door.index).to_numpy() * door["share"],
                              signups=door_yields.reindex(door.index).to_numpy()))  # fmt: skip
    if cells["public_crimes"].notna().any():
        busy = cells[(cells["public_crimes"] > 0).to_numpy() & ~rested]
        density = busy["public_crimes"] / (busy["area_m2"] / 1e6)
        factor = (density / density.median()).clip(0.25, 4.0) if len(density) else density
        street = _best(busy.assign(cell=busy.index, factor=factor), "factor", per_area=per_area)
        frames.append(street.assign(
            tactic="street", signups=yields["street"],
            value=yields["street"] * street["factor"] * street["area_code"].map(area_share),
        ))  # fmt: skip
    sites = homes[homes["area_code"].isin(stations_in)]
    if len(sites):
        cover = coverage_matrix(cells.index, sites.index, radius_m=radius_m)
        covered = cover @ residents
        covered_target = cover @ target
        site_table = sites.assign(cell=sites.index, covered=covered,
                                  share=np.where(covered > 0, covered_target / covered, 0.0))  # fmt: skip
        best = _best(site_table, "covered", per_area=1)
        frames.append(best.assign(tactic="station", signups=yields["station"],
                                  value=yields["station"] * best["share"]))  # fmt: skip
    if social:
        top = _best(door.assign(n=door["target_residents"]), "n", per_area=1)
        frames.append(top.assign(tactic="social", signups=yields["social"],
                                 value=yields["social"] * top["area_code"].map(area_share)))  # fmt: skip
    options = pd.concat(frames, ignore_index=True)
    options["parent_code"] = options["area_code"].map(parents).astype(str)
    options["hours"] = options["tactic"].map(dict(hours)).astype(float)
    options = options[options["value"] > 0]
    return options[list(OPTION_COLUMNS)].reset_index(drop=True)
