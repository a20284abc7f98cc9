"""Every input of a run, read and validated in order, with what happened to each.

Progress is reported through an optional `on_step` callback (the names in INGEST_STEPS), so the
library never prints.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from targeting.config import Config
from targeting.disclosure import withhold_small_counts
from targeting.errors import ConfigError, InputError, Problem
from targeting.grid import GridSize, area_locator, grid_size
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
from targeting.ingest.origins_map import read_origin_map
from targeting.ingest.segments import (
    SegmentInput,
    read_segment_descriptions,
    read_segments,
)
from targeting.origins import OriginMapping, map_origins
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


# memory a run takes, a fixed part and a part per estimated cell (fragment): the force-scale
# synthetic run peaked at 0.87, 1.18 and 2.96 GB with 10k, 66k and 446k fragments (resolutions 9
# to 11, about 5 KB a fragment), the national-density size sweep at 12 KB a cell; the larger is
# kept so that a refused grid is one that would not have fitted
BASE_BYTES = 0.8e9
BYTES_PER_CELL = 12e3


def machine_memory_bytes() -> float:
    """The machine's physical memory."""
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_inputs_exist(config: Config) -> None:
    """Every input file the config names is there: one error lists every missing one."""
    named: list[tuple[str, Path]] = [
        (key, value) for key, value in vars(config.inputs).items() if isinstance(value, Path)
    ]
    if config.origins.map is not None:
        named.append(("origins.map", config.origins.map))
    named += [(f"segments.census[{i}]", t.table) for i, t in enumerate(config.segments.census)]
    problems = [
        Problem(str(path), "file not found", f"check [inputs] {key} in the config")
        for key, path in named
        if not path.is_file()
    ]
    problems += [
        Problem(pattern, "matches no file", "check the path in [inputs] crimes")
        for pattern in config.inputs.crimes
        if not any(Path(p).is_file() for p in glob.glob(pattern, recursive=True))
    ]
    if problems:
        raise InputError("inputs", config.path, problems)


def check_grid_size(config: Config, areas: gpd.GeoDataFrame) -> GridSize:
    """Refuse a grid resolution that cannot work over these areas, before any work: cells
    larger than the median area (no hotspot could be told from its area), or more cells or
    memory than `[grid] max_cells` and the machine allow. The message names the resolution that
    fits."""
    resolution = config.grid.resolution
    size = grid_size(areas, resolution=resolution)
    limit = machine_memory_bytes()

    def fits(s: GridSize) -> bool:
        return s.cells <= config.grid.max_cells and BASE_BYTES + s.cells * BYTES_PER_CELL <= limit

    where = f"{config.path} key 'grid.resolution'"
    if size.cell_m2 > size.median_area_m2:
        finest = min(15, resolution + 1)
        while finest < 15 and grid_size(areas, resolution=finest).cell_m2 > size.median_area_m2:
            finest += 1
        raise ConfigError(config.path, [Problem(
            where,
            f"resolution = {resolution} makes cells of {size.cell_m2 / 1e6:,.1f} km2 on average, "
            f"larger than the median area ({size.median_area_m2 / 1e6:,.2f} km2): most areas "
            "would be one or two cells, and no hotspot could be told from its area",
            f"use resolution {finest} or finer; 9 (cells of about 0.1 km2, a few streets) suits "
            "door-knocking")])  # fmt: skip
    if not fits(size):
        coarser = resolution - 1
        while coarser > 0 and not fits(grid_size(areas, resolution=coarser)):
            coarser -= 1
        suggestion = grid_size(areas, resolution=coarser)
        raise ConfigError(config.path, [Problem(
            where,
            f"resolution = {resolution} over these areas ({size.total_m2 / 1e6:,.0f} km2) makes "
            f"about {size.cells:,} cells, needing about "
            f"{(BASE_BYTES + size.cells * BYTES_PER_CELL) / 1e9:,.0f} GB of memory (this "
            f"machine has {limit / 1e9:,.0f} GB; [grid] max_cells is {config.grid.max_cells:,})",
            f"use resolution {coarser} (about {suggestion.cells:,} cells) or coarser; 9 (cells "
            "of about 0.1 km2, a few streets) suits door-knocking")])  # fmt: skip
    return size


def check_unmapped(config: Config, mapping: OriginMapping, population: Population) -> None:
    """Stop when more than `[origins] max_unmapped` of the sign-ups with a known origin have a
    label that maps to no population category: the representation table would rest on a
    fraction of the data and flag the wrong origins."""
    share = mapping.unmapped_share
    if share <= config.origins.max_unmapped:
        return
    threshold = config.privacy.suppression_threshold
    unmapped = [m for m in mapping.labels if m.unmapped]
    shown = withhold_small_counts({m.label: m.signups for m in unmapped[:8]}, threshold=threshold)
    listed = "; ".join(
        f"'{m.label}' ({shown[m.label]}): {m.how.removeprefix('unmapped: ')}" for m in unmapped[:8]
    )
    more = f" and {len(unmapped) - 8} more" if len(unmapped) > 8 else ""
    example = unmapped[0].label
    raise InputError("signups", config.inputs.signups, [Problem(
        f"{config.inputs.signups} column 'origin'",
        f"{share:.1%} of the sign-ups with a known origin have a label that maps to no "
        f"population category ([origins] max_unmapped is {config.origins.max_unmapped:.0%}), so "
        f"the representation table would rest on the rest; labels: {listed}{more}",
        "map each label to one of the population's categories in a CSV named by [origins] map, "
        f"columns origin,population_origin (a line such as '{example},<category>'); the "
        f"categories are: {', '.join(population.origins)}; or raise [origins] max_unmapped")])  # fmt: skip


def ingest_inputs(
    config: Config, *, on_step: StepCallback = no_progress, check_origins: bool = True
) -> Ingested:
    """Read and validate every input the config names; stop at the first unusable file, and
    (with `check_origins`) when too many sign-up origins cannot be mapped (`check_unmapped`)."""
    summaries: list[InputSummary] = []
    check_inputs_exist(config)
    on_step("areas")
    areas, s = read_areas(config)
    summaries.append(s)
    check_grid_size(config, areas)
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
    if check_origins:
        check_unmapped(config, mapping, population)
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
