"""What a neighbourhood team does next week: the ranked areas, the week's door-knocking and street
engagement hotspots, the mobile-station sites and the geofences for officers' devices.

Everything shared here is built from disclosure-controlled figures (area gaps from the
representation stage) or rounded so that a cell's few sign-ups cannot be recovered: a cell's or a
station's parity gap is published to the nearest multiple of the disclosure threshold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from targeting.config import Config, ScoringConfig
from targeting.geofence import cells_to_geofences, geofences_to_circles
from targeting.grid import Grid
from targeting.h3cells import cell_centres, ids_to_cells, points_to_cells, points_to_ids
from targeting.plan import Limits, area_plan, parent_plan, plan_options, solve_plan, station_areas
from targeting.scoring import (
    COMPONENT_NAMES,
    MEASURE_NAMES,
    Force,
    contribution_order,
    dominant_components,
    effective_weights,
    force_rates,
    rank_by_score,
    rank_percentiles,
    reason_clauses,
    reasons,
    score_units,
    unit_measures,
    units_to_components,
)
from targeting.segments import dominant_segments, main_segments
from targeting.siting import site_stations

# residents per household, for cells where no households were given (England and Wales, 2021)
PERSONS_PER_HOUSEHOLD = 2.4

RANKED_AREAS_COLUMNS = (
    "rank", "area_code", "area_name", "parent_code", "parent_name", "score", "tactic",
    "parity_gap", "penetration_gap", "expected_signups", "expected_gain", "hotspots",
    "street_sites", "station_days", "social_posts", "officer_hours", "reason",
    "gap_origins", "segments", *COMPONENT_NAMES, *MEASURE_NAMES,
)  # fmt: skip
HOTSPOTS_COLUMNS = (
    "rank", "hotspot_id", "cell", "area_code", "area_name", "parent_code", "tactic", "latitude",
    "longitude", "nearest_postcode", "street", "score", "parity_gap", "households",
    "expected_signups", "reason", "target_origins", "segment", "segment_label",
)  # fmt: skip
STATIONS_COLUMNS = (
    "rank", "cell", "area_code", "area_name", "latitude", "longitude", "nearest_postcode",
    "street", "covered_residents", "covered_parity_gap", "fixed",
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """The week's plan; every table is ready to share."""

    ranked_areas: pd.DataFrame
    hotspots: pd.DataFrame
    stations: pd.DataFrame
    geofences: gpd.GeoDataFrame
    circles: pd.DataFrame
    plan: pd.DataFrame  # plan.csv: per NPU, its tactic mix, hours and expected sign-ups
    notes: tuple[str, ...]


def round_to(values: np.ndarray, step: int) -> np.ndarray:
    """Values to the nearest multiple of `step` (halves up), so small counts behind them stay
    hidden."""
    return np.floor(np.asarray(values, dtype=float) / step + 0.5) * step


def origins_by_cell(cell_origins: pd.DataFrame) -> pd.DataFrame:
    """Each cell's `residents` and `registered` per origin, summed over the area fragments in
    it: indexed by (cell, origin), sorted. Made once for `cell_units` and `target_residents`:
    grouping the grid's table of fragments by origin (a million rows in a large force) is most
    of either's time."""
    return cell_origins.groupby(["cell", "origin"], sort=True)[["residents", "registered"]].sum()


def cell_units(
    cells: pd.DataFrame,
    per_origin: pd.DataFrame,
    *,
    summed: tuple[str, ...],
    signups_per_resident: float,
) -> pd.DataFrame:
    """One row per H3 cell (sums of its fragments' `summed` counts) with its main area (the
    fragment with most residents) and its parity and penetration gaps from raw counts
    (`per_origin`: `origins_by_cell`), for choosing cells only."""
    sums = cells.groupby("cell", sort=True)[list(summed)].sum(min_count=1)
    main = (
        cells.sort_values(["cell", "residents", "area_code"], ascending=[True, False, True])
        .drop_duplicates("cell")
        .set_index("cell")["area_code"]
    )
    res_total = per_origin["residents"].groupby(level="cell").transform("sum")
    n = per_origin["registered"].groupby(level="cell").transform("sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        short = (per_origin["residents"] / res_total * n - per_origin["registered"]).clip(lower=0)
    units = sums.assign(area_code=main)
    units["parity_gap"] = (
        short.fillna(0.0).groupby(level="cell").sum().reindex(units.index, fill_value=0.0)
    )
    units["penetration_gap"] = np.maximum(
        0.0, signups_per_resident * units["residents"] - units["registered_known"].astype(float)
    )
    if units["households"].isna().all():
        units["households"] = units["residents"] / PERSONS_PER_HOUSEHOLD
    return units


def gap_origins(
    representation: pd.DataFrame, *, level: str = "area", among: frozenset[str] | None = None
) -> pd.DataFrame:
    """Per area (or the force, `level="force"`), the origin or two with the largest published
    parity gaps (a second is named when its gap is at least half the first's), only from `among`
    where given: `area_code, origin, parity_gap`, largest first. A suppressed row has no
    published gap and is never named, so no number behind it is."""
    rows = representation[
        (representation["level"] == level) & (representation["origin_level"] == "origin")
    ].assign(parity_gap=lambda t: pd.to_numeric(t["parity_gap"], errors="coerce"))
    if among is not None:
        rows = rows[rows["origin"].isin(list(among))]
    rows = rows[rows["parity_gap"] > 0].sort_values(
        ["area_code", "parity_gap", "origin"], ascending=[True, False, True]
    )
    by_area = rows.groupby("area_code")
    n = by_area.cumcount()
    named = (n == 0) | (
        (n == 1) & (rows["parity_gap"] >= 0.5 * by_area["parity_gap"].transform("first"))
    )
    return rows.loc[named, ["area_code", "origin", "parity_gap"]].reset_index(drop=True)


def _joined(pairs: pd.DataFrame, text: pd.Series, sep: str) -> pd.Series:
    """`text` of each row of `pairs` joined per key (`pairs` column `key`), in row order."""
    return text.groupby(pairs["key"].to_numpy(), sort=False).agg(sep.join)


def gap_origins_columns(named: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per area, its named origins as `ranked_areas.csv` has them (`Pakistani:16;Black
    Caribbean:14`) and as its reason says them (`Pakistani 16, Black Caribbean 14`)."""
    pairs = named.rename(columns={"area_code": "key"})
    gap = pairs["parity_gap"].round(0).astype(int).astype(str)
    machine = _joined(pairs, pairs["origin"].astype(str) + ":" + gap, ";")
    words = _joined(pairs, pairs["origin"].astype(str) + " " + gap, ", ")
    return machine, words


def score_table(
    units: pd.DataFrame, *, force: Force, scoring: ScoringConfig
) -> tuple[pd.DataFrame, dict[str, float], list[str]]:
    """Units with their normalised components, `score`, driving components; the weights used."""
    units = units.join(unit_measures(units))
    raw = units_to_components(units, force=force, scoring=scoring)
    weights = scoring.weights
    used, notes = effective_weights(weights, raw)
    normalised = rank_percentiles(raw)
    scored = units.join(normalised).assign(score=score_units(normalised, used))
    scored = scored.join(dominant_components(normalised, used))
    return scored.join(raw.add_prefix("raw_")), used, notes


def rank_areas(
    area_units: pd.DataFrame,
    representation: pd.DataFrame,
    *,
    force: Force,
    scoring: ScoringConfig,
) -> tuple[pd.DataFrame, list[str]]:
    """Areas best first, with their tactic and the reason, and notes on components switched off.

    `area_units` is indexed by area_code and has `area_name, parent_code, parent_name` and the
    counts each component needs, the gaps being the published (disclosure-controlled) ones.
    """
    scored, used, notes = score_table(area_units, force=force, scoring=scoring)
    raw = scored[[f"raw_{c}" for c in COMPONENT_NAMES]].rename(columns=lambda c: c[4:])
    machine, words = gap_origins_columns(gap_origins(representation))
    clauses = reason_clauses(raw, scored, words, force=force)
    order = contribution_order(scored[list(COMPONENT_NAMES)], used)
    scored["reason"] = reasons(clauses, order)
    # the origins the reason names, with the same numbers, for a machine to read
    scored["gap_origins"] = machine.reindex(scored.index).where(clauses["representation_gap"] != "")
    ranked = rank_by_score(scored.rename_axis("area_code").reset_index(), key="area_code")
    return ranked, notes


def residential(units: pd.DataFrame, *, min_households: float, min_postcodes: int) -> pd.Series:
    """Cells where people live: at least `min_households` households and, where postcode
    centroids were counted (a `postcodes` column), at least `min_postcodes` of them, since census
    counts spread by surface also land on parks and industrial estates, and addresses do not."""
    lived_in = units["households"] >= min_households
    if "postcodes" in units.columns:
        lived_in &= units["postcodes"] >= min_postcodes
    return lived_in


def postcodes_per_cell(postcodes: pd.DataFrame | None, *, resolution: int) -> pd.Series | None:
    """How many postcode centroids fall in each cell; None without postcodes."""
    if postcodes is None:
        return None
    ids = points_to_ids(
        postcodes["latitude"].to_numpy(dtype=float),
        postcodes["longitude"].to_numpy(dtype=float),
        resolution=resolution,
    )
    # counted on the 64-bit indexes; only the distinct cells are written out as text
    distinct, counts = np.unique(ids, return_counts=True)
    return pd.Series(counts, index=ids_to_cells(distinct), name="count")


def hotspot_targets(
    named: pd.DataFrame, force_named: pd.DataFrame, *, area_codes: pd.Series
) -> pd.DataFrame:
    """The origins each area's hotspots are chosen for: the origins its reason names, or, where
    its own gaps are not published, the force's: `area_code, origin, order`."""
    own = named[["area_code", "origin"]]
    rest = area_codes[~area_codes.isin(own["area_code"])].to_frame("area_code")
    borrowed = rest.merge(force_named[["origin"]], how="cross")
    both = pd.concat([own, borrowed], ignore_index=True)
    return both.assign(order=both.groupby("area_code").cumcount())


def target_residents(
    cell_areas: pd.Series, per_origin: pd.DataFrame, targets: pd.DataFrame
) -> pd.DataFrame:
    """Residents of its area's target origins in each cell (`cell_areas`: cell -> its main
    area; `per_origin`: `origins_by_cell`): `cell, origin, order, residents`, a row per cell and
    target origin, zeros included."""
    pairs = (
        cell_areas.rename("area_code").rename_axis("cell").reset_index()
        .merge(targets, on="area_code")
    )  # fmt: skip
    found = per_origin["residents"].reindex(pd.MultiIndex.from_frame(pairs[["cell", "origin"]]))
    residents = found.fillna(0.0).to_numpy(dtype=float)
    return pairs.assign(residents=residents)[["cell", "origin", "order", "residents"]]


def target_origins_columns(residents: pd.DataFrame, *, step: int) -> tuple[pd.Series, pd.Series]:
    """Per cell, its target origins with their residents rounded to `step`, as `hotspots.csv`
    has them (`Pakistani:120;Black Caribbean:40`) and as its reason says them ("about 120
    Pakistani and 40 Black Caribbean residents"; "fewer than 10" where it rounds to nothing)."""
    pairs = residents.sort_values(["cell", "order"]).rename(columns={"cell": "key"})
    shown = round_to(pairs["residents"].to_numpy(), step).astype(int)
    origin = pairs["origin"].astype(str)
    machine = _joined(pairs, origin + ":" + pd.Series(shown, index=pairs.index).astype(str), ";")
    first = pairs["order"].to_numpy() == pairs.groupby("key")["order"].transform("min").to_numpy()
    count = pd.Series(shown, index=pairs.index)
    about = pd.Series(np.where(first, "about ", ""), index=pairs.index, dtype=str)
    figure = count.map("{:,}".format).astype(str)
    amount = (about + figure).where(count >= step, f"fewer than {step}")
    words = _joined(pairs, amount + " " + origin, " and ")
    return machine, words + " residents"


def visited_cells(visited: pd.DataFrame | None, *, as_of: dt.date, cooldown_days: int) -> frozenset:
    """Cells visited within `cooldown_days` before `as_of` (visits after it count too)."""
    if visited is None or visited.empty:
        return frozenset()
    since = pd.Timestamp(as_of) - pd.Timedelta(days=cooldown_days)
    return frozenset(visited.loc[visited["visited_on"] > since, "cell"])


def _cell_centres(cells: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = cell_centres(cells.to_numpy())
    return lat.round(6), lon.round(6)


def plan_week(
    *,
    config: Config,
    grid: Grid,
    areas: pd.DataFrame,
    area_gaps: pd.DataFrame,
    representation: pd.DataFrame,
    visited: pd.DataFrame | None,
    postcodes: pd.DataFrame | None,
    as_of: dt.date,
    segment_labels: pd.Series | None = None,
) -> Plan:
    """Rank the areas, then plan the week as one decision (`targeting.plan`): each area's tactic
    and units, and from that same allocation its hotspots, station sites and geofences.

    `grid` holds the raw counts; `areas` has the area attributes; `area_gaps` and
    `representation` are the published, disclosure-controlled tables; `postcodes` (centroids,
    optional) tell which cells hold addresses; the grid's segments (where given) name each area's
    and hotspot's main segments and set a door hotspot's yield by its segment.
    """
    threshold = config.privacy.suppression_threshold
    cells, cell_segments = grid.cells, grid.cell_segments
    sums = cells.groupby("area_code")[list(grid.summed)].sum(min_count=1)
    gaps = area_gaps[area_gaps["level"] == "area"].set_index("area_code")
    area_units = (
        areas.set_index("area_code")[["area_name", "parent_code", "parent_name"]]
        .join(sums)
        .join(gaps[["parity_gap", "penetration_gap"]])
    )
    force = force_rates(cells)
    ranked, notes = rank_areas(area_units, representation, force=force, scoring=config.scoring)

    per_origin = origins_by_cell(grid.cell_origins)
    units = cell_units(cells, per_origin, summed=(*grid.summed, "area_m2"),
                       signups_per_resident=force.signups_per_resident)  # fmt: skip
    per_cell = postcodes_per_cell(postcodes, resolution=grid.resolution)
    if per_cell is not None:
        units["postcodes"] = per_cell.reindex(units.index, fill_value=0).to_numpy()
    # the week goes to the origins the force misses: an area's own largest gaps among the origins
    # under-represented force-wide, or the force's largest where the area has none of them
    force_rows = representation[
        (representation["level"] == "force") & (representation["origin_level"] == "origin")
    ]
    missed = frozenset(force_rows.loc[force_rows["under_represented"].eq(True), "origin"])
    targets = hotspot_targets(
        gap_origins(representation, among=missed), gap_origins(representation, level="force"),
        area_codes=ranked["area_code"],
    )  # fmt: skip
    residents = target_residents(units["area_code"], per_origin, targets)
    units["target_residents"] = residents.groupby("cell")["residents"].sum()
    scored_cells, used, _ = score_table(units, force=force, scoring=config.scoring)
    excluded = visited_cells(visited, as_of=as_of, cooldown_days=config.hotspots.cooldown_days)
    if excluded:
        notes.append(
            f"hotspots: {len(excluded)} cells visited in the last {config.hotspots.cooldown_days} days left out"
        )
    cell_main = (
        main_segments(cell_segments.rename(columns={"cell": "key"})) if cell_segments is not None
        else pd.Series(dtype=str)
    )  # fmt: skip
    units["segment"] = cell_main.reindex(units.index)

    week = _solve_week(units, ranked, area_units, excluded=excluded, config=config)
    taken, by_area = week.taken, week.by_area
    ranked = ranked.join(by_area, on="area_code")
    visits = taken[taken["tactic"].isin(["door", "street"])].set_index("cell")
    chosen = scored_cells.loc[visits.index].assign(
        tactic=visits["tactic"], area_code=visits["area_code"]
    ).rename_axis("cell").reset_index()  # fmt: skip
    machine, words = target_origins_columns(
        residents[residents["cell"].isin(chosen["cell"])], step=threshold
    )
    chosen["target_origins"] = chosen["cell"].map(machine)
    chosen["segment"] = chosen["cell"].map(cell_main)
    chosen["segment_label"] = (
        chosen["segment"].map(segment_labels) if segment_labels is not None else np.nan
    )
    hotspots = _hotspots_table(chosen, ranked, words, config=config, force=force, weights=used)
    ranked["segments"] = (
        ranked["area_code"].map(
            dominant_segments(cell_segments, by="area_code", labels=segment_labels)
        )
        if cell_segments is not None
        else np.nan
    )
    station_cells = taken.loc[taken["tactic"] == "station", "cell"].tolist()
    stations = _stations_table(
        units, areas, station_cells, config=config, resolution=grid.resolution
    )
    social = taken[taken["tactic"] == "social"]
    fenced = pd.concat(
        [hotspots[["cell", "area_code", "tactic", "rank"]], _social_cells(social, units, ranked)],
        ignore_index=True,
    )
    geofences = cells_to_geofences(
        fenced,
        max_vertices=config.geofences.max_vertices,
        max_extra_area=config.geofences.max_extra_area,
    )
    circles = geofences_to_circles(
        geofences, limit=config.geofences.circles, min_radius_m=config.geofences.min_radius_m
    )
    stations = stations.assign(
        covered_parity_gap=round_to(stations["covered_parity_gap"].to_numpy(), threshold)
    )
    hotspots = hotspots.join(nearest_postcodes(hotspots, postcodes))
    stations = stations.join(nearest_postcodes(stations, postcodes))
    parents = areas.set_index("area_code")[["parent_code", "parent_name"]]
    return Plan(
        ranked_areas=ranked[list(RANKED_AREAS_COLUMNS)],
        hotspots=hotspots.assign(parity_gap=round_to(hotspots["parity_gap"].to_numpy(), threshold))[
            list(HOTSPOTS_COLUMNS)
        ],
        stations=stations[list(STATIONS_COLUMNS)],
        geofences=geofences,
        circles=circles,
        plan=parent_plan(by_area, parents, limits=week.limits),
        notes=tuple(notes),
    )


NEAREST_POSTCODE_M = 500.0


def nearest_postcodes(points: pd.DataFrame, postcodes: pd.DataFrame | None) -> pd.DataFrame:
    """The postcode nearest each of `points` (`latitude, longitude`), written with its space
    ("B35 6AB"), and its street where the postcode data has one: `nearest_postcode, street`
    on `points`' index, blank without postcodes or where none is within
    `NEAREST_POSTCODE_M`. A postcode centroid is a public place name
    that officers find their way by, not a person's address."""
    from scipy.spatial import cKDTree

    out = pd.DataFrame({"nearest_postcode": "", "street": ""}, index=points.index, dtype=object)
    if postcodes is None or postcodes.empty or points.empty:
        return out
    lat, lon = points["latitude"].to_numpy(float), points["longitude"].to_numpy(float)
    scale = np.cos(np.radians(float(np.mean(lat))))
    tree = cKDTree(
        np.column_stack([postcodes["latitude"], postcodes["longitude"].to_numpy() * scale])
    )
    distance, idx = tree.query(np.column_stack([lat, lon * scale]))
    # a postcode further than this from the cell's centre would send an officer astray
    near = distance * 111_320.0 <= NEAREST_POSTCODE_M
    # only the postcodes picked are written out
    key = pd.Series(postcodes["key"].array.take(idx), dtype=str)
    spaced = (key.str.slice(0, -3) + " " + key.str.slice(-3)).str.strip()
    out["nearest_postcode"] = np.where(near, spaced.to_numpy(), "")
    if "street" in postcodes:
        streets = pd.Series(postcodes["street"].array.take(idx)).fillna("").astype(object)
        out["street"] = np.where(near, streets.to_numpy(), "")
    return out


@dataclass(frozen=True)
class _Week:
    """The solved week: the options taken, the plan per area, and the limits it was solved in."""

    taken: pd.DataFrame
    by_area: pd.DataFrame
    limits: Limits


def _solve_week(
    units: pd.DataFrame,
    ranked: pd.DataFrame,
    area_units: pd.DataFrame,
    *,
    excluded: frozenset[str],
    config: Config,
) -> _Week:
    """The week's options, each area's cap (its published parity gap, or its penetration gap
    where that is withheld) and the limits, solved as one decision."""
    watch = area_units["watch_households"] / area_units["households"]
    overlay = pd.DataFrame(
        {"score": ranked.set_index("area_code")["score"], "watch_share": watch.clip(upper=1.0)}
    )
    door_yields = pd.Series(
        segment_yields(units["segment"], pd.Series("door", index=units.index),
                       yields=config.tactics.yields, by_segment=config.segments.yields),
        index=units.index,
    )  # fmt: skip
    options = plan_options(
        units,
        lived_in=residential(units, min_households=config.hotspots.min_households,
                             min_postcodes=config.hotspots.min_postcodes),
        excluded=excluded,
        parents=area_units["parent_code"].astype(str),
        stations_in=station_areas(overlay),
        door_yields=door_yields,
        yields=config.tactics.yields,
        hours=config.tactics.hours,
        per_area=config.hotspots.max_per_area,
        radius_m=config.stations.radius_m,
        social=config.plan.social_posts > 0,
    )  # fmt: skip
    caps = (
        area_units["parity_gap"].astype(float).fillna(area_units["penetration_gap"].astype(float))
    )
    hours = config.plan.officer_hours
    limits = Limits(
        hotspots=None if hours is not None else config.hotspots.per_week,
        officer_hours=hours,
        station_days=config.stations.count,
        social_posts=config.plan.social_posts,
    )
    priority = ranked.set_index("area_code")["score"]
    chosen = solve_plan(options, caps, priority, limits=limits)
    by_area = area_plan(options, chosen, caps, area_codes=pd.Index(ranked["area_code"]))
    return _Week(options.loc[chosen].reset_index(drop=True), by_area, limits)


def _social_cells(
    social: pd.DataFrame, units: pd.DataFrame, ranked: pd.DataFrame, *, cells: int = 5
) -> pd.DataFrame:
    """A social post's geofence: the `cells` cells of its area with the most residents of the
    area's target origins, carrying the area's rank."""
    pool = units.loc[
        units["area_code"].isin(social["area_code"]), ["area_code", "target_residents"]
    ]
    pool = pool.rename_axis("cell").reset_index().sort_values(
        ["area_code", "target_residents", "cell"], ascending=[True, False, True]
    )  # fmt: skip
    top = pool[pool.groupby("area_code").cumcount() < cells]
    rank = ranked.set_index("area_code")["rank"]
    return top.assign(tactic="social", rank=top["area_code"].map(rank))[
        ["cell", "area_code", "tactic", "rank"]
    ]


def _hotspots_table(
    chosen: pd.DataFrame,
    ranked: pd.DataFrame,
    chosen_for: pd.Series,
    *,
    config: Config,
    force: Force,
    weights: Mapping[str, float],
) -> pd.DataFrame:
    """The chosen cells as the contract's hotspot rows, best first; `chosen_for` says, per cell,
    the residents it is chosen for."""
    info = ranked.set_index("area_code")
    out = chosen.sort_values(["score", "cell"], ascending=[False, True]).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out["hotspot_id"] = "HS-" + out["cell"]
    out["area_name"] = out["area_code"].map(info["area_name"])
    out["parent_code"] = out["area_code"].map(info["parent_code"])
    out["latitude"], out["longitude"] = _cell_centres(out["cell"])
    out["expected_signups"] = segment_yields(
        out["segment"],
        out["tactic"],
        yields=config.tactics.yields,
        by_segment=config.segments.yields,
    )
    raw = out[[f"raw_{c}" for c in COMPONENT_NAMES]].rename(columns=lambda c: c[4:])
    # a cell's reason never quotes its parity gap (a few sign-ups could be read back from it):
    # it names the residents the cell is chosen for, which census counts tell
    homes = "home to " + pd.Series(out["cell"].map(chosen_for).to_numpy(), index=out.index)
    # a street session meets passers-by: its place is a busy one, among the same residents
    who = homes.where(out["tactic"] != "street", "a busy public place, " + homes)
    clauses = reason_clauses(raw, out, who, force=force, cells=True)
    out["reason"] = reasons(clauses, contribution_order(out[list(COMPONENT_NAMES)], weights))
    return out


def segment_yields(
    segment: pd.Series,
    tactic: pd.Series,
    *,
    yields: Mapping[str, float],
    by_segment: Mapping[str, Mapping[str, float]],
) -> np.ndarray:
    """Expected sign-ups per hotspot: the segment's yield for the tactic where `[segments.yields]`
    gives one, else the tactic's default."""
    default = tactic.map(dict(yields)).to_numpy(dtype=float)
    table = pd.Series(
        {(str(s), str(t)): float(v) for s, row in by_segment.items() for t, v in row.items()},
        dtype=float,
    )
    keys = pd.MultiIndex.from_arrays([segment.astype(str), tactic.astype(str)])
    chosen = table.reindex(keys).to_numpy(dtype=float) if len(table) else np.full(len(keys), np.nan)
    return np.where(np.isnan(chosen), default, chosen)


def _stations_table(
    units: pd.DataFrame, areas: pd.DataFrame, sites: list[str], *, config: Config, resolution: int
) -> pd.DataFrame:
    """The plan's station sites (and any fixed ones, listed first): the residents and parity gap
    within walking distance of each, every cell credited to the first site that covers it."""
    demand = units.rename_axis("cell").reset_index()[["cell", "parity_gap", "residents"]]
    fixed_at = np.array(config.stations.fixed, dtype=float).reshape(-1, 2)
    fixed = points_to_cells(fixed_at[:, 0], fixed_at[:, 1], resolution=resolution).tolist()
    table = site_stations(
        demand,
        k=len(sites),
        radius_m=config.stations.radius_m,
        candidates=sites,
        fixed=fixed,
        weight="parity_gap",
    )
    names = areas.set_index("area_code")["area_name"]
    table["area_code"] = table["cell"].map(units["area_code"])
    table["area_name"] = table["area_code"].map(names)
    return table.rename(columns={"covered_weight": "covered_parity_gap"})
