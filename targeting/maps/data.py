"""What the map draws: read from a run's store and packed compactly for the page."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from targeting.config import Config
from targeting.h3cells import cell_centres, cell_corners, cell_parents
from targeting.plan import TACTIC_COLOURS, TACTIC_NAMES
from targeting.scoring import low_rating_share
from targeting.segments import main_segments
from targeting.store import STORE_NAME
from targeting.streets import encode_streets

SCALE = 100_000  # coordinates as integers of 1e-5 degree: about a metre, enough for a street map
MAP_MAX_CELLS = 60_000  # about 5 MB of cell outlines: a page that opens on a phone
# index classes: below parity in browns, above in teals (100 = parity); ColorBrewer BrBG, which
# colour-blind readers tell apart, and which no marker colour (plan.TACTIC_COLOURS) is close to
INDEX_BREAKS = (50, 80, 95, 105, 125, 200)
INDEX_COLOURS = ("#8c510a", "#d8b365", "#f6e8c3", "#f5f5f5", "#c7eae5", "#5ab4ac", "#01665e")
SUPPRESSED_COLOUR = "#969696"  # withheld: a mid grey, unlike "no data" (no fill at all)
SEQUENTIAL = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
GREENS = ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c")
# ColorBrewer Set3: twelve categories that stay apart
SEGMENT_COLOURS = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
                   "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f")  # fmt: skip


@dataclass(frozen=True)
class MapData:
    """What the map draws, read from a finished run's output folder."""

    cell_resolution: int  # resolution of the grid-cell layers (coarser than the grid when large)
    default_origin: str | None  # the origin the map opens on: the force's largest parity gap
    areas: gpd.GeoDataFrame  # area_code, area_name, parent_name, geometry (WGS84)
    cells: pd.DataFrame  # cell, residents, watch_share, crimes_km2, sac_km2 (whole cells)
    origin_cells: pd.DataFrame  # cell, origin, representation_index, suppressed (map resolution)
    area_rows: pd.DataFrame  # area-level representation rows (origins and groups)
    area_gaps: pd.DataFrame  # area_code, parity_gap, penetration_gap, suppressed
    satisfaction: pd.Series  # per area_code: shrunk share of low ratings (NaN without ratings)
    ranked: pd.DataFrame
    hotspots: pd.DataFrame
    stations: pd.DataFrame
    geofences: gpd.GeoDataFrame
    marking: str
    station_radius_m: float
    threshold: int
    segment_labels: pd.Series  # segment -> portrait or label (empty without either)
    title: str = ""  # the title bar: the force
    week: str = ""  # "week to 31 October 2018"
    streets: dict[str, Any] | None = None  # `streets.encode_streets`, None without streets
    tiles: str | None = None  # a force's own tile server ({z}/{x}/{y}); None: no tiles
    tiles_attribution: str = ""
    scripts: Mapping[str, str] = dataclasses.field(default_factory=dict)  # what to say, by tactic
    # what the cells' deprivation values are, and which way they run: ranks and deciles count 1
    # as most deprived, so their colours are reversed and darker is always more deprived
    deprivation_measure: str | None = None
    deprivation_higher_is_more_deprived: bool = True


PLAN_TABLES = ("ranked_areas", "hotspots", "stations", "cell_segments", "segment_representation")


@dataclass(frozen=True)
class MapTables:
    """The run's tables the map is drawn from: in memory at the end of a run, or read back from
    a finished run's store (`read_map_tables`) to draw it again."""

    resolution: int  # the grid's
    cells: pd.DataFrame  # the grid's fragments and their counts
    areas: pd.DataFrame  # area_code, area_name, parent_name, geometry_wkt and summed counts
    representation: pd.DataFrame  # area and force rows of representation.csv
    area_gaps: pd.DataFrame  # area rows of the store's area_gaps
    map_representation: pd.DataFrame
    plan: Mapping[str, pd.DataFrame]  # PLAN_TABLES, each empty where the run has none
    geofences: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame | None = None  # streets around the week's visits (`name`, lines)
    as_of: dt.date | None = None  # the run's date: the week the map is for
    deprivation_measure: str | None = None  # what the deprivation values are ("IMD score")
    # ranks and deciles count 1 as most deprived: their colours are reversed
    deprivation_higher_is_more_deprived: bool = True


def read_map_tables(out_dir: Path) -> MapTables:
    """The map's tables from a finished run's store and geofences, without recomputing."""
    with duckdb.connect(str(out_dir / STORE_NAME), read_only=True) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        plan = {
            name: con.execute(f"SELECT * FROM {name}").df() if name in tables else pd.DataFrame()
            for name in PLAN_TABLES
        }
        resolution = con.execute("SELECT resolution FROM grid").fetchone()
        measure = (
            con.execute(
                "SELECT measure, higher_is_more_deprived FROM deprivation_measure"
            ).fetchone()
            if "deprivation_measure" in tables
            else None
        )
        read = MapTables(
            resolution=int(resolution[0]) if resolution else 0,
            cells=con.execute("SELECT * FROM cells").df(),
            areas=con.execute("SELECT * FROM areas").df(),
            representation=con.execute(
                "SELECT * FROM representation WHERE level IN ('area', 'force')"
            ).df(),
            area_gaps=con.execute("SELECT * FROM area_gaps WHERE level = 'area'").df(),
            map_representation=con.execute("SELECT * FROM map_representation").df(),
            plan=plan,
            geofences=gpd.GeoDataFrame(geometry=[], crs="EPSG:4326"),
            streets=_stored_streets(con) if "map_streets" in tables else None,
            deprivation_measure=str(measure[0]) if measure else None,
            deprivation_higher_is_more_deprived=bool(measure[1]) if measure else True,
        )
    fences_path = out_dir / "geofences.geojson"
    if fences_path.is_file():
        read = dataclasses.replace(read, geofences=gpd.read_file(fences_path))
    manifest = out_dir / "manifest.json"
    if manifest.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            as_of = json.loads(manifest.read_text("utf-8"))["as_of"]
            read = dataclasses.replace(read, as_of=dt.date.fromisoformat(str(as_of)[:10]))
    return read


def _stored_streets(con: duckdb.DuckDBPyConnection) -> gpd.GeoDataFrame:
    """The map's streets as the run stored them (`map_streets`: name, WKT lines)."""
    frame = con.execute("SELECT name, geometry_wkt FROM map_streets").df()
    return gpd.GeoDataFrame(
        {"name": frame["name"]}, geometry=shapely.from_wkt(frame["geometry_wkt"]), crs="EPSG:4326"
    )


def map_data(tables: MapTables, *, config: Config) -> MapData:
    """What the map draws, from the run's tables: cell layers on the finest resolution that
    keeps the page small, the areas' outlines, each area's satisfaction (shrunk as the score
    shrinks it) and the origin the map opens on."""
    frag, plan = tables.cells, dict(tables.plan)
    # a national grid would make one giant page: its cell layers go to coarser parent cells until
    # they number at most MAP_MAX_CELLS (sums are additive, so the figures stay exact)
    cell_resolution = map_cell_resolution(frag["cell"], resolution=tables.resolution)
    if cell_resolution < tables.resolution:
        unique = frag["cell"].unique()
        parent = dict(zip(unique, cell_parents(unique, resolution=cell_resolution), strict=True))
        frag = frag.assign(cell=frag["cell"].map(parent))
        if not plan["cell_segments"].empty:
            seg = plan["cell_segments"]
            plan["cell_segments"] = (
                seg.assign(cell=seg["cell"].map(parent))
                .groupby(["cell", "segment"], as_index=False)[["households"]]
                .sum()
            )
    summed = ["residents", "households", "watch_households", "crimes", "sac_crimes", "area_m2",
              "deprivation_residents", "deprivation_sum", "deprivation_need"]  # fmt: skip
    # a run from before the deprivation layer has none of its columns: they read as absent
    cells = (
        frag.reindex(columns=["cell", *summed]).groupby("cell", sort=True)[summed].sum(min_count=1)
    )
    km2 = cells["area_m2"] / 1e6
    with np.errstate(invalid="ignore", divide="ignore"):
        cells["watch_share"] = np.where(
            cells["households"] > 0,
            np.minimum(1.0, cells["watch_households"] / cells["households"]),
            np.nan,
        )
    if not plan["cell_segments"].empty:
        main = main_segments(plan["cell_segments"].rename(columns={"cell": "key"}))
        cells["segment"] = main.reindex(cells.index)
    cells["crimes_km2"] = cells["crimes"] / km2
    cells["sac_km2"] = cells["sac_crimes"] / km2
    with np.errstate(invalid="ignore", divide="ignore"):
        cells["deprivation_value"] = cells["deprivation_sum"] / cells["deprivation_residents"]
    areas = tables.areas
    ratings = areas["ratings"].astype(float)
    low = areas["low_ratings"].astype(float)
    satisfaction = pd.Series(
        low_rating_share(
            low.to_numpy(), ratings.to_numpy(),
            force_share=low.sum() / ratings.sum() if ratings.sum() > 0 else np.nan,
            prior=config.scoring.rating_prior,
        ),
        index=areas["area_code"],
    )  # fmt: skip
    outlines = gpd.GeoDataFrame(
        areas[["area_code", "area_name", "parent_name"]],
        geometry=shapely.from_wkt(areas["geometry_wkt"].to_numpy()),
        crs="EPSG:4326",
    )
    rep = tables.representation
    force = rep[(rep["level"] == "force") & (rep["origin_level"] == "origin")]
    gap = pd.Series(
        pd.to_numeric(force["parity_gap"], errors="coerce").to_numpy(), index=force["origin"]
    ).sort_index()
    default = str(gap.idxmax()) if gap.notna().any() and gap.max() > 0 else None
    segments = plan["segment_representation"]
    return MapData(
        cell_resolution=cell_resolution,
        default_origin=default,
        areas=outlines,
        cells=cells.reset_index(),
        origin_cells=tables.map_representation,
        area_rows=rep[rep["level"] == "area"].reset_index(drop=True),
        area_gaps=tables.area_gaps,
        satisfaction=satisfaction,
        ranked=plan["ranked_areas"],
        hotspots=plan["hotspots"],
        stations=plan["stations"],
        geofences=tables.geofences,
        marking=config.output.protective_marking,
        station_radius_m=config.stations.radius_m,
        segment_labels=_segment_words(segments),
        threshold=config.privacy.suppression_threshold,
        deprivation_measure=tables.deprivation_measure,
        deprivation_higher_is_more_deprived=tables.deprivation_higher_is_more_deprived,
        title=config.map.title or config.path.stem,
        week=f"week to {tables.as_of:%d %B %Y}" if tables.as_of else "",
        streets=encode_streets(tables.streets) if tables.streets is not None else None,
        tiles=config.map.tiles,
        tiles_attribution=config.map.tiles_attribution,
        scripts=dict(config.map.scripts),
    )


def read_map_data(out_dir: Path, *, config: Config) -> MapData:
    """The map of a finished run, from its store and geofences."""
    return map_data(read_map_tables(out_dir), config=config)


def map_cell_resolution(cells: pd.Series, *, resolution: int) -> int:
    """The finest resolution, at or above the grid's (`resolution`), at which the cells number
    at most `MAP_MAX_CELLS`."""
    unique = cells.unique()
    count = len(unique)
    while count > MAP_MAX_CELLS and resolution > 0:
        resolution -= 1
        count = len(np.unique(cell_parents(unique, resolution=resolution)))
    return resolution


def encode_cells(cells: pd.Series) -> dict[str, list[int]]:
    """H3 cell outlines, compactly: each centre as integers of 1e-5 degree, and the six corners
    (a pentagon repeats its last) as offsets from it."""
    lat, lon = cell_centres(cells.to_numpy())
    centres = np.column_stack([lat, lon])
    coords, ring = cell_corners(cells.to_numpy())
    counts = np.bincount(ring, minlength=len(cells))  # each ring's corners and its closing point
    start = np.r_[0, np.cumsum(counts)[:-1]]
    # six corners per cell, as (latitude, longitude); a pentagon's first corner comes again
    at = start[:, None] + np.arange(6)[None, :] % (counts - 1)[:, None]
    corners = coords[at][..., ::-1].reshape(-1, 6, 2)
    centre_i = np.round(centres * SCALE).astype(np.int64)
    offsets = np.round(corners * SCALE).astype(np.int64) - centre_i[:, None, :]
    return {"c": centre_i.ravel().tolist(), "o": offsets.ravel().tolist()}


def _values(series: pd.Series, digits: int) -> list[float | None]:
    """Values rounded for the page, NaN as null."""
    rounded = series.astype(float).round(digits)
    return [None if math.isnan(v) else v for v in rounded.tolist()]


def _quantile_breaks(values: pd.Series, classes: int = 5, *, positive: bool = True) -> list[float]:
    """Class breaks at quantiles of the values (of the positive ones: counts per km², where a
    cell with none says nothing of the spread), rounded to 2 significant digits."""
    used = values[values > 0] if positive else values
    used = used.dropna()
    if used.empty:
        return [1.0] * (classes - 1)
    qs = used.quantile(np.linspace(0, 1, classes + 1)[1:-1]).to_numpy()
    return [float(f"{q:.2g}") for q in qs]


def _outline(geom: shapely.Geometry) -> list[list[list[float]]]:
    """Rings of a (multi)polygon as [lat, lng] lists, simplified to about 10 m."""
    simple = shapely.simplify(geom, 1e-4, preserve_topology=True)
    rings = []
    for poly in getattr(simple, "geoms", [simple]):
        for ring in (poly.exterior, *poly.interiors):
            coords = np.asarray(ring.coords)[:, ::-1].round(5)
            rings.append(coords.tolist())
    return rings


def _flags(values: pd.Series) -> list[bool]:
    """True/false per row, blanks false (a column of flags made JSON-ready in one pass)."""
    return values.astype("boolean").fillna(False).astype(bool).tolist()


def map_payload(data: MapData, *, origin: str | None) -> dict[str, Any]:
    """Everything the page's script needs, as plain JSON-ready structures."""
    areas = data.areas.sort_values("area_code").reset_index(drop=True)
    points = areas.geometry.representative_point()
    gaps = data.area_gaps.set_index("area_code")
    ranked = data.ranked.set_index("area_code") if not data.ranked.empty else pd.DataFrame()

    def area_field(frame: pd.DataFrame, col: str) -> list[Any]:
        if frame.empty or col not in frame:
            return [None] * len(areas)
        values = frame[col].reindex(areas["area_code"])
        return [None if pd.isna(v) else (v if isinstance(v, str) else float(v)) for v in values]

    rows = data.area_rows
    # only the columns used: a wide frame makes each group's `set_index` slow
    index = rows[["area_code", "representation_index", "suppressed"]].assign(key=_keys(rows))
    keys = origin_keys(data)
    by_key = {}
    for key, part in index.groupby("key"):
        part = part.set_index("area_code").reindex(areas["area_code"])
        by_key[key] = {
            "v": _values(part["representation_index"], 1),
            "s": _flags(part["suppressed"]),
        }
    cell_origins = data.origin_cells[["cell", "origin", "representation_index", "suppressed"]]
    origin_cell_ids = sorted(cell_origins["cell"].unique())
    by_origin = {}
    for key, part in cell_origins.groupby("origin"):
        part = part.set_index("cell").reindex(origin_cell_ids)
        by_origin[key] = {
            "v": _values(part["representation_index"], 1),
            "s": _flags(part["suppressed"]),
        }
    default = origin if origin in by_key else data.default_origin
    cells = data.cells
    layers_cells = _cell_layers(cells, data)
    hotspots = data.hotspots
    stations = data.stations
    fences = data.geofences
    return {
        "marking": data.marking,
        "threshold": data.threshold,
        "default_origin": default,
        "origins": keys,
        "areas": {
            "code": areas["area_code"].tolist(),
            "name": areas["area_name"].astype(str).tolist(),
            "parent": [None if pd.isna(p) else str(p) for p in areas["parent_name"]],
            "rings": [_outline(g) for g in areas.geometry],
            "label": np.column_stack([points.y, points.x]).round(5).tolist(),
            "parity_gap": area_field(gaps, "parity_gap"),
            "penetration_gap": area_field(gaps, "penetration_gap"),
            "gap_suppressed": [
                bool(v) for v in gaps["suppressed"].reindex(areas["area_code"]).fillna(False)
            ],
            "satisfaction": _values(data.satisfaction.reindex(areas["area_code"]), 3),
            "rank": area_field(ranked, "rank"),
            "score": area_field(ranked, "score"),
            "tactic": area_field(ranked, "tactic"),
            "reason": area_field(ranked, "reason"),
            "expected": area_field(ranked, "expected_signups"),
            "index": by_key,
        },
        "cells": {
            "resolution": data.cell_resolution,
            **encode_cells(cells["cell"]),
            "layers": layers_cells,
            "segments": _segment_layer(cells, data.segment_labels),
        },
        "origin_cells": {**encode_cells(pd.Series(origin_cell_ids, dtype=str)), "index": by_origin},
        "title": data.title,
        "week": data.week,
        "tactic_names": TACTIC_NAMES,
        "tiles": data.tiles,
        "tiles_attribution": data.tiles_attribution,
        "scripts": dict(data.scripts),
        "streets": data.streets,
        "hotspots": {
            "postcode": _texts(hotspots, "nearest_postcode"),
            "street": _texts(hotspots, "street"),
            "lat": hotspots.get("latitude", pd.Series(dtype=float)).round(5).tolist(),
            "lng": hotspots.get("longitude", pd.Series(dtype=float)).round(5).tolist(),
            "rank": hotspots.get("rank", pd.Series(dtype=int)).astype(int).tolist(),
            "tactic": hotspots.get("tactic", pd.Series(dtype=str)).astype(str).tolist(),
            "area": hotspots.get("area_name", pd.Series(dtype=str)).astype(str).tolist(),
            "reason": hotspots.get("reason", pd.Series(dtype=str)).astype(str).tolist(),
            "gap": _values(hotspots.get("parity_gap", pd.Series(dtype=float)), 0),
        },
        "stations": {
            "postcode": _texts(stations, "nearest_postcode"),
            "street": _texts(stations, "street"),
            "lat": stations.get("latitude", pd.Series(dtype=float)).round(5).tolist(),
            "lng": stations.get("longitude", pd.Series(dtype=float)).round(5).tolist(),
            "rank": stations.get("rank", pd.Series(dtype=int)).astype(int).tolist(),
            "area": stations.get("area_name", pd.Series(dtype=str)).astype(str).tolist(),
            "residents": _values(stations.get("covered_residents", pd.Series(dtype=float)), 0),
            "gap": _values(stations.get("covered_parity_gap", pd.Series(dtype=float)), 0),
            "radius": data.station_radius_m,
        },
        "geofences": {
            "id": fences.get("geofence_id", pd.Series(dtype=str)).astype(str).tolist(),
            "tactic": fences.get("tactic", pd.Series(dtype=str)).astype(str).tolist(),
            "rank": fences.get("rank", pd.Series(dtype=int)).astype(int).tolist(),
            "rings": [_outline(g) for g in fences.geometry],
        },
        "colours": {
            "index_breaks": list(INDEX_BREAKS),
            "index": list(INDEX_COLOURS),
            "sequential": list(SEQUENTIAL),
            "greens": list(GREENS),
            "tactic": TACTIC_COLOURS,
            "suppressed": SUPPRESSED_COLOUR,
        },
    }


def _texts(frame: pd.DataFrame, column: str) -> list[str]:
    """A text column for the page, blank where missing (or where the run has no such column)."""
    if column not in frame:
        return [""] * len(frame)
    return frame[column].astype(object).where(frame[column].notna(), "").astype(str).tolist()


def _cell_layers(cells: pd.DataFrame, data: MapData) -> dict[str, dict[str, Any]]:
    """The analysis-grid layers a run has data for: values over the shared cell outlines, class
    breaks, colours (darker is always more of what the layer is named for) and how to show a
    value."""
    darker_lower = list(reversed(SEQUENTIAL))
    return {
        col: {
            "label": label,
            "v": _values(cells[col], digits),
            "breaks": breaks,
            "colours": list(colours),
            "percent": col == "watch_share",
            "digits": digits,
        }
        for col, label, digits, breaks, colours in (
            ("watch_share", "Watch coverage", 3, [0.05, 0.1, 0.2, 0.4], GREENS),
            ("crimes_km2", "Crimes per km²", 0, _quantile_breaks(cells["crimes_km2"]), SEQUENTIAL),
            ("sac_km2", "Serious acquisitive crimes per km²", 0,
             _quantile_breaks(cells["sac_km2"]), SEQUENTIAL),
            ("deprivation_value",
             f"Deprivation: {data.deprivation_measure or 'as given'}, residents-weighted "
             "(darker: more deprived)", 2,
             _quantile_breaks(cells["deprivation_value"], positive=False),
             SEQUENTIAL if data.deprivation_higher_is_more_deprived else darker_lower),
        )
        if cells[col].notna().any()
    }  # fmt: skip


def _keys(rows: pd.DataFrame) -> np.ndarray:
    return np.where(rows["origin_level"] == "group", "group: " + rows["origin"], rows["origin"])


def origin_keys(data: MapData) -> list[str]:
    """The origins and groups (as "group: NAME") the map's selector offers: origins first."""
    return sorted(set(_keys(data.area_rows)), key=lambda k: (k.startswith("group: "), k))


def _segment_words(segments: pd.DataFrame) -> pd.Series:
    """Each segment in words for the map: its portrait (who lives there), or its label where a
    run has no portraits."""
    if "segment" not in segments:  # a run without segments
        return pd.Series(dtype=str)
    words = pd.Series(np.nan, index=segments["segment"], dtype=object)
    for column in ("label", "portrait"):  # the portrait, where there is one, wins
        if column in segments:
            given = segments.set_index("segment")[column]
            words = given.where(given.notna(), words)
    return words.dropna().astype(str)


def _segment_layer(cells: pd.DataFrame, labels: pd.Series) -> dict[str, Any] | None:
    """Each cell's main segment as an index into the segment list, with the segments' labels."""
    if "segment" not in cells or cells["segment"].isna().all():
        return None
    names = sorted(cells["segment"].dropna().unique())
    position = {name: i for i, name in enumerate(names)}
    return {
        "names": names,
        "labels": [str(labels.get(n, "")) for n in names],
        "v": [None if pd.isna(v) else position[v] for v in cells["segment"]],
        "colours": [SEGMENT_COLOURS[i % len(SEGMENT_COLOURS)] for i in range(len(names))],
    }
