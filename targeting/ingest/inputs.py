"""Every input of a run, read and validated in order, with what happened to each.

Progress is reported through an optional `on_step` callback (the names in INGEST_STEPS), so the
library never prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from targeting.config import Config
from targeting.disclosure import withhold_small_counts
from targeting.grid import area_locator
from targeting.ingest import (
    InputSummary,
    Population,
    Signups,
    check_raster,
    read_areas,
    read_crimes,
    read_population,
    read_postcodes,
    read_ratings,
    read_schemes,
    read_signups,
    read_small_areas,
    read_visited,
)
from targeting.ingest.segments import (
    SegmentInput,
    read_segment_descriptions,
    read_segments,
)
from targeting.origins import OriginMapping, map_origins, read_origin_map
from targeting.reference import read_crime_types

StepCallback = Callable[[str], None]
INGEST_STEPS = (
    "areas",
    "small areas",
    "population",
    "postcodes",
    "sign-ups",
    "crimes",
    "ratings",
    "schemes",
    "segments",
)


def no_progress(_: str) -> None:
    """The default `on_step`: report nothing."""
    return None


@dataclass(frozen=True)
class Ingested:
    """Every input, validated and in canonical columns, with what happened to each."""

    areas: gpd.GeoDataFrame
    small_areas: gpd.GeoDataFrame | None
    population: Population
    signups: Signups
    origins: OriginMapping
    crimes: pd.DataFrame | None
    ratings: pd.DataFrame | None
    schemes: gpd.GeoDataFrame | None
    summaries: tuple[InputSummary, ...]
    population_previous: Population | None = None
    visited: pd.DataFrame | None = None
    postcodes: pd.DataFrame | None = None  # postcode centroids, for the nearest postcode of a site
    segments: SegmentInput | None = None
    segment_descriptions: pd.DataFrame | None = None

    @property
    def as_of(self) -> dt.date:
        return self.signups.as_of

    def warnings(self, *, threshold: int) -> list[str]:
        """Every input's warnings; sign-up counts below the disclosure threshold are withheld."""
        out = [f"{s.name}: {w}" for s in self.summaries for w in s.warnings]
        if self.origins.unmapped:
            shown = withhold_small_counts(self.origins.unmapped, threshold=threshold)
            listed = ", ".join(f"{k} ({v})" for k, v in shown.items())
            out.append(f"signups: origins with no mapping, counted as unknown: {listed}")
        return out


def ingest_inputs(config: Config, *, on_step: StepCallback = no_progress) -> Ingested:
    """Read and validate every input the config names; stop at the first unusable file."""
    summaries: list[InputSummary] = []
    on_step("areas")
    areas, s = read_areas(config)
    summaries.append(s)
    on_step("small areas")
    small, s2 = read_small_areas(config)
    if s2:
        summaries.append(s2)
    on_step("population")
    population, s = read_population(
        config,
        area_codes=set(areas["area_code"]),
        small_area_codes=set(small["area_code"]) if small is not None else None,
    )
    summaries.append(s)
    previous = None
    if config.inputs.population_previous is not None:
        previous, s8 = read_population(
            config,
            area_codes=set(areas["area_code"]),
            small_area_codes=set(small["area_code"]) if small is not None else None,
            input_name="population_previous",
        )
        summaries.append(s8)
    raster = check_raster(config)
    if raster:
        summaries.append(raster)
    on_step("postcodes")
    postcodes, s3 = read_postcodes(config)
    if s3:
        summaries.append(s3)
    on_step("sign-ups")
    # built once: every point layer is placed through it
    locator = area_locator(areas, resolution=config.grid.resolution)
    signups, s = read_signups(config, areas=areas, postcodes=postcodes, locator=locator)
    summaries.append(s)
    user_map = None
    if config.origins.map:
        user_map, s7 = read_origin_map(config.origins.map, population_origins=population.origins)
        summaries.append(s7)
    mapped, mapping = map_origins(signups.table["label"], population.origins, user_map=user_map)
    table = signups.table.assign(origin=mapped.to_numpy())
    signups = Signups(table, signups.as_of)
    on_step("crimes")
    crimes, s4 = read_crimes(
        config,
        areas=areas,
        as_of=signups.as_of,
        crime_types=read_crime_types(),
        locator=locator,
    )
    if s4:
        summaries.append(s4)
    on_step("ratings")
    ratings, s5 = read_ratings(
        config, areas=areas, signups=table, as_of=signups.as_of, locator=locator
    )
    if s5:
        summaries.append(s5)
    on_step("schemes")
    schemes, s6 = read_schemes(config, areas=areas)
    if s6:
        summaries.append(s6)
    visited, s9 = read_visited(config, as_of=signups.as_of)
    if s9:
        summaries.append(s9)
    on_step("segments")
    descriptions, s10 = read_segment_descriptions(config)
    if s10:
        summaries.append(s10)
    segments, s11 = read_segments(
        config,
        small_area_codes=set(small["area_code"]) if small is not None else None,
        postcodes=postcodes,
        descriptions=descriptions,
    )
    if s11:
        summaries.append(s11)
    return Ingested(
        areas,
        small,
        population,
        signups,
        mapping,
        crimes,
        ratings,
        schemes,
        tuple(summaries),
        previous,
        visited,
        postcodes,
        segments,
        descriptions,
    )
