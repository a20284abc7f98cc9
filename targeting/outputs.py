"""A run's results, and writing them into the run's temporary output folder.

The outputs that need nothing of the week's plan (the representation, the rejects, cells.parquet
and most of the store) are written while the plan is made (`write_before_plan`); the rest once it
is in (`write_outputs`).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from targeting.background import in_background
from targeting.config import Config
from targeting.geofence import write_geofences_geojson, write_geofences_kml
from targeting.grid import Grid
from targeting.history import ratings_to_days, signups_to_days, visits_to_days
from targeting.ingest.deprivation import NAME as DEPRIVATION_INPUT
from targeting.ingest.deprivation import Deprivation
from targeting.ingest.inputs import Ingested, StepCallback
from targeting.pack import write_tasking_pack
from targeting.report import Headline, Section, headline_to_html, headline_to_markdown, write_report
from targeting.representation import TOTAL, Representation
from targeting.store import (
    CELLS_COLUMNS,
    STORE_NAME,
    PreviousRun,
    fsync_tree,
    store_digest,
    write_csv,
    write_manifest,
    write_rejects,
    write_store,
)
from targeting.tasking import Plan

if TYPE_CHECKING:
    from targeting.maps.data import MapTables  # the maps package loads folium


@dataclass(frozen=True)
class BeforePlan:
    """What a run computes without its plan that the analyst files hold: written while the plan
    is made."""

    area_table: pd.DataFrame  # the store's `areas`: attributes, outline, summed counts
    representation: Representation
    map_representation: pd.DataFrame
    emerging: pd.DataFrame | None


@dataclass(frozen=True)
class Results:
    """Everything a run computes from its inputs and grid, before anything is written."""

    before_plan: BeforePlan
    areas: pd.DataFrame  # the areas' attributes (no geometry)
    segments: pd.DataFrame | None
    plan: Plan
    sections: list[Section]
    headline: Headline
    portraits: pd.Series | None  # each segment in words, by segment code
    streets: gpd.GeoDataFrame | None  # the map's streets around the week's visits
    manifest: dict[str, Any]


def write_before_plan(
    tmp: Path, data: Ingested, grid: Grid, early: BeforePlan, *, config: Config
) -> None:
    """The outputs that need no plan, into the temporary folder `tmp`: the representation and
    emerging tables, the rejects, cells.parquet, and the store's tables but the plan's
    (`write_outputs` adds those)."""
    write_csv(early.representation.table, tmp / "representation.csv")
    if early.emerging is not None:
        write_csv(early.emerging, tmp / "emerging.csv")
    write_rejects(tmp, {s.name: s.rejects for s in data.summaries})
    grid.cells[list(CELLS_COLUMNS)].to_parquet(tmp / "cells.parquet", index=False)
    write_store(tmp / STORE_NAME, _store_tables_before_plan(data, grid, early, config))


def write_outputs(
    tmp: Path, data: Ingested, grid: Grid, out: Results, *, config: Config,
    previous: PreviousRun | None, before_plan: Future[None], on_step: StepCallback,
    parallel: bool,
) -> None:  # fmt: skip
    """Every other output file into the temporary folder `tmp`, once `before_plan` (the thread
    writing `write_before_plan`) is done.

    With `parallel`, the map is drawn in a child process on a second core, forked once no other
    thread of the run is working (`in_background`).
    """
    before_plan.result()
    with in_background(lambda: _write_map(tmp, data, grid, out, config=config),
                       name="the map", fork=parallel) as drawing:  # fmt: skip
        # DuckDB lets go of Python's lock: the plan's tables go into the store in a second
        # thread, while this one writes the rest
        with ThreadPoolExecutor(max_workers=1) as background:
            store = background.submit(
                write_store, tmp / STORE_NAME, _store_tables_of_plan(grid, out), add=True
            )
            _write_shared_files(tmp, data, out, config=config, previous=previous)
            store.result()
        # the store is complete: its digest (queries over every table) is worked out while
        # the map's child finishes drawing
        digests = {STORE_NAME: store_digest(tmp / STORE_NAME)}
        on_step("map")
        drawing.result()
    # last: the manifest holds the digest of every file, the store's and the cells' included
    write_manifest(tmp, out.manifest, known=digests)
    fsync_tree(tmp)


def _store_tables_before_plan(
    data: Ingested, grid: Grid, early: BeforePlan, config: Config
) -> dict[str, Any]:
    """The analyst store's tables that need no plan (`targeting.duckdb`); sign-ups and ratings
    by day are what the history reconstructs earlier dates from."""
    rep = early.representation
    deprivation: Deprivation | None = data.get(DEPRIVATION_INPUT)
    # what the deprivation values are and which way they run, for `targeting map` to say so
    measure = (
        {"deprivation_measure": pd.DataFrame({
            "measure": [deprivation.label],
            "higher_is_more_deprived": [deprivation.higher_is_more_deprived],
        })}
        if deprivation is not None
        else {}
    )  # fmt: skip
    contract_first = [*CELLS_COLUMNS, *(c for c in grid.cells.columns if c not in CELLS_COLUMNS)]
    return {
        "grid": pd.DataFrame({"resolution": [grid.resolution], "crs": [grid.crs]}),
        "cells": grid.cells[contract_first],
        "cell_origins": grid.cell_origins,
        "areas": early.area_table,
        "rejects_summary": pd.DataFrame(
            [(s.name, r, n) for s in data.summaries for r, n in s.reasons().items()],
            columns=["input", "reason", "rows"],
        ),
        "representation": rep.table,
        "representation_counts": rep.counts.assign(
            node=rep.counts["node"].replace(TOTAL, "(all origins)")
        ),
        "unknown_origin": rep.unknown,
        "area_gaps": rep.areas,
        "map_representation": early.map_representation,
        "signup_days": signups_to_days(data.signups.table),
        "rating_days": ratings_to_days(data.get("ratings"), low_rating=config.scoring.low_rating),
        **(
            {
                "visit_days": visits_to_days(
                    data.visited, data.signups.table, cells=grid.cells, resolution=grid.resolution
                )
            }
            if data.visited is not None
            else {}
        ),
        **({"emerging": early.emerging} if early.emerging is not None else {}),
        **measure,
    }


def _store_tables_of_plan(grid: Grid, out: Results) -> dict[str, Any]:
    """The analyst store's tables that come from the plan (and the segments, whose portraits
    need its areas' deprivation)."""
    plan = out.plan
    segments = (
        {"cell_segments": grid.cell_segments, "segment_representation": out.segments}
        if out.segments is not None and grid.cell_segments is not None
        else {}
    )
    return {
        "ranked_areas": plan.ranked_areas,
        **segments,
        "hotspots": plan.hotspots,
        "stations": plan.stations,
        "plan": plan.plan,
        **(
            {
                "map_streets": pd.DataFrame(
                    {"name": out.streets["name"], "geometry_wkt": out.streets.geometry.to_wkt()}
                )
            }
            if out.streets is not None
            else {}
        ),
    }


def _write_shared_files(
    tmp: Path, data: Ingested, out: Results, *, config: Config, previous: PreviousRun | None
) -> None:
    """The plan's tables and geofences, the segments' table, the pack and the report."""
    plan = out.plan
    write_csv(plan.ranked_areas, tmp / "ranked_areas.csv")
    if out.segments is not None:
        write_csv(out.segments, tmp / "segment_representation.csv")
    write_csv(plan.hotspots, tmp / "hotspots.csv")
    write_csv(plan.stations, tmp / "stations.csv")
    write_csv(plan.plan, tmp / "plan.csv")
    write_geofences_geojson(plan.geofences, tmp / "geofences.geojson")
    write_geofences_kml(plan.geofences, tmp / "geofences.kml")
    write_csv(plan.circles, tmp / "geofences_circles.csv")
    marking = config.output.protective_marking
    write_tasking_pack(tmp, plan, outlines=data.areas, portraits=out.portraits,
                       previous=previous.ranking if previous is not None else None,
                       marking=marking, as_of=data.as_of)  # fmt: skip
    headline = (headline_to_html(out.headline, as_of=data.as_of),
                headline_to_markdown(out.headline, as_of=data.as_of))  # fmt: skip
    write_report(tmp, out.sections, marking=marking, as_of=data.as_of,
                 base=data.population.base, headline=headline)  # fmt: skip


def _write_map(tmp: Path, data: Ingested, grid: Grid, out: Results, *, config: Config) -> None:
    """The officers' map page."""
    # folium takes half a second to load, so only a run that draws a map imports it
    from targeting.maps import MAP_NAME, map_data, map_to_html

    page = map_to_html(map_data(_map_tables(grid, out, data), config=config), origin=None)
    (tmp / MAP_NAME).write_text(page, encoding="utf-8")


def _or_empty(table: pd.DataFrame | None) -> pd.DataFrame:
    return table if table is not None else pd.DataFrame()


def _map_tables(grid: Grid, out: Results, data: Ingested) -> MapTables:
    """What the map is drawn from, in memory: the same tables `targeting map` reads back."""
    from targeting.maps.data import MapTables

    early, plan = out.before_plan, out.plan
    rep = early.representation
    deprivation: Deprivation | None = data.get(DEPRIVATION_INPUT)
    return MapTables(
        resolution=grid.resolution,
        cells=grid.cells,
        areas=early.area_table,
        representation=rep.table[rep.table["level"].isin(["area", "force"])],
        area_gaps=rep.areas[rep.areas["level"] == "area"],
        map_representation=early.map_representation,
        plan={
            "ranked_areas": plan.ranked_areas,
            "hotspots": plan.hotspots,
            "stations": plan.stations,
            "cell_segments": _or_empty(grid.cell_segments),
            "segment_representation": _or_empty(out.segments),
        },
        geofences=plan.geofences,
        streets=out.streets,
        as_of=data.as_of,
        deprivation_measure=deprivation.label if deprivation is not None else None,
        deprivation_higher_is_more_deprived=(
            deprivation.higher_is_more_deprived if deprivation is not None else True
        ),
    )
