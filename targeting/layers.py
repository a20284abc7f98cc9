"""The input layers, each declared once: its `[inputs]` key, its file's columns, how it is read,
how it reaches the grid's fragments and the counts it adds there.

A run reads the layers in this order (each may use those read before it) and places them on the
grid in the same order; a `background` layer may be read in a child process beside the layers
around it, and is then placed last, its counts still added in its place. To add an input: write its reader (which declares its file's columns)
and, if it reaches the grid, its placer (`targeting.grid.place`), then add a `Layer` here; the
config's `[inputs]` and `[columns.<name>]` keys, the manifest, the grid's counts, the area and
cell sums and the store follow from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from targeting.config import Config
from targeting.grid import AreaLocator, area_locator, cells_touching
from targeting.grid.place import (
    Count,
    GridContext,
    Placed,
    place_crimes,
    place_deprivation,
    place_households,
    place_population,
    place_previous,
    place_ratings,
    place_schemes,
    place_segments,
    place_signups,
)
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
from targeting.ingest.boundaries import (
    AREAS,
    DEPRIVATION_AREAS,
    SCHEMES,
    SMALL_AREAS,
    read_outlines,
)
from targeting.ingest.checks import check_grid_size, check_unmapped
from targeting.ingest.common import FileColumns
from targeting.ingest.deprivation import DEPRIVATION, read_deprivation
from targeting.ingest.origins_map import read_origin_map
from targeting.ingest.points import CRIMES, POSTCODES, RATINGS, SIGNUPS, VISITED
from targeting.ingest.population import POPULATION
from targeting.ingest.segments import (
    SEGMENT_DESCRIPTIONS,
    SEGMENTS,
    read_segment_descriptions,
    read_segments,
)
from targeting.ingest.streets import STREETS, read_streets
from targeting.origins import map_origins
from targeting.reference import read_crime_types


class Read:
    """What a run has read so far: the config, the layers read (by name) and what is worked out
    from them once (the areas' point lookup, the date the run describes)."""

    def __init__(self, config: Config, *, check_origins: bool = True) -> None:
        self.config = config
        self.check_origins = check_origins
        self.data: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        return self.data.get(name)

    @cached_property
    def touching(self) -> tuple[np.ndarray, np.ndarray]:
        """The cells touching each area (`cells_touching`): found once, for the areas' lookup and
        for the grid's fragments."""
        return cells_touching(self.data["areas"], resolution=self.config.grid.resolution)

    @cached_property
    def locator(self) -> AreaLocator:
        """Built once: every point layer is placed through it."""
        return area_locator(
            self.data["areas"], resolution=self.config.grid.resolution, touching=self.touching
        )

    def codes(self, name: str) -> set[str] | None:
        """The area codes of a polygon layer read (None when it was not given)."""
        frame = self.data.get(name)
        return set(frame["area_code"]) if frame is not None else None

    @property
    def as_of(self) -> Any:
        """`[run] as_of`, or else the sign-ups' (their last date)."""
        return self.config.run.as_of or self.data["signups"].as_of


Summaries = tuple[InputSummary, ...]
Reader = Callable[[Config, Read], tuple[Any, Summaries]]
# a placer reads the grid's context, its own data and every layer read (by name)
Placer = Callable[[GridContext, Any, Mapping[str, Any]], Placed]


@dataclass(frozen=True)
class Layer:
    """One input: how it is read, how it reaches the grid and what it adds there."""

    name: str  # its `[inputs]` key, its manifest entry and its rejects file
    read: Reader
    columns: FileColumns | None = None  # the canonical columns `[columns.<name>]` maps
    required: bool = False
    globs: bool = False  # a list of paths or glob patterns
    step: str | None = None  # the progress step it starts
    personal: bool = False  # rows about people: restricted to analysts
    # read in a child process beside the rest of the run when it runs in parallel (a long read
    # no later layer uses), started after the turn of the layer this names: the last it uses
    background: Callable[[Config], str] | None = None
    place: Placer | None = None
    counts: tuple[Count, ...] = ()


def _one(result: tuple[Any, InputSummary | None]) -> tuple[Any, Summaries]:
    data, summary = result
    return data, (summary,) if summary is not None else ()


def _read_areas(config: Config, got: Read) -> tuple[Any, Summaries]:
    """The areas, and the grid's resolution checked against them before any work."""
    areas, summary = read_areas(config)
    check_grid_size(config, areas)
    return areas, (summary,)


def _read_signups(config: Config, got: Read) -> tuple[Any, Summaries]:
    """Sign-ups, located in the areas, with their origin labels mapped onto the population's
    categories (through `[origins] map` and the crosswalk)."""
    population: Population = got.data["population"]
    signups, summary = read_signups(config, areas=got.data["areas"], postcodes=got.get("postcodes"),
                                    locator=got.locator)  # fmt: skip
    summaries = [summary]
    user_map = None
    if config.origins.map:
        user_map, map_summary = read_origin_map(
            config.origins.map, population_origins=population.origins
        )
        summaries.append(map_summary)
    mapped, mapping = map_origins(signups.table["label"], population.origins, user_map=user_map)
    if got.check_origins:
        check_unmapped(config, mapping, population)
    table = signups.table.assign(origin=mapped.to_numpy())
    return Signups(table, signups.as_of, mapping), tuple(summaries)


LAYERS: tuple[Layer, ...] = (
    Layer("areas", _read_areas, AREAS, required=True, step="areas"),
    Layer(
        "small_areas", lambda c, got: _one(read_small_areas(c)), SMALL_AREAS, step="small areas",
        place=lambda ctx, data, got: place_households(ctx, data),
        counts=(Count("households"),),
    ),
    Layer(
        "population",
        lambda c, got: _one(read_population(c, area_codes=got.codes("areas") or set(),
                                            small_area_codes=got.codes("small_areas"))),
        POPULATION, required=True, step="population",
        place=lambda ctx, data, got: place_population(ctx, data),
        counts=(Count("residents"),),
    ),
    Layer(
        "population_previous",
        lambda c, got: _one(read_population(c, area_codes=got.codes("areas") or set(),
                                            small_area_codes=got.codes("small_areas"),
                                            input_name="population_previous")),
        POPULATION,
        place=lambda ctx, data, got: place_previous(ctx, data),
    ),
    Layer("population_raster",
          lambda c, got: _one((c.inputs.population_raster, check_raster(c)))),
    Layer("postcodes", lambda c, got: _one(read_postcodes(c)), POSTCODES, step="postcodes"),
    Layer(
        "signups", _read_signups, SIGNUPS, required=True, step="sign-ups", personal=True,
        place=lambda ctx, data, got: place_signups(ctx, data),
        counts=(Count("registered", integer=True), Count("registered_known", integer=True),
                Count("watch_members", integer=True)),
    ),
    Layer(
        "crimes",
        lambda c, got: _one(read_crimes(c, areas=got.data["areas"], as_of=got.as_of,
                                        crime_types=read_crime_types(), locator=got.locator)),
        CRIMES, globs=True, step="crimes",
        # the areas and the run's date: the sign-ups' last date unless the config sets it
        background=lambda c: "areas" if c.run.as_of is not None else "signups",
        place=lambda ctx, data, got: place_crimes(ctx, data),
        counts=(Count("crimes", integer=True), Count("sac_crimes", integer=True),
                Count("public_crimes", integer=True), Count("asb", integer=True)),
    ),
    Layer(
        "ratings",
        lambda c, got: _one(read_ratings(c, areas=got.data["areas"], signups=got.data["signups"].table,
                                         as_of=got.as_of, locator=got.locator)),
        RATINGS, step="ratings", personal=True,
        place=lambda ctx, data, got: place_ratings(ctx, data),
        counts=(Count("ratings", integer=True), Count("low_ratings", integer=True),
                Count("mean_rating", summed=False)),
    ),
    Layer(
        "schemes", lambda c, got: _one(read_schemes(c, areas=got.data["areas"])), SCHEMES,
        step="schemes",
        place=lambda ctx, data, got: place_schemes(ctx, data),
        counts=(Count("watch_households"), Count("watch_scheme_members")),
    ),
    Layer("visited", lambda c, got: _one(read_visited(c, as_of=got.as_of)), VISITED),
    # streets only draw the officers' map: they reach no grid count
    Layer("streets", lambda c, got: _one(read_streets(c)), STREETS, step="streets"),
    Layer(
        "segment_descriptions", lambda c, got: _one(read_segment_descriptions(c)),
        SEGMENT_DESCRIPTIONS, step="segments",
    ),
    Layer(
        "segments",
        lambda c, got: _one(read_segments(c, small_area_codes=got.codes("small_areas"),
                                          postcodes=got.get("postcodes"),
                                          descriptions=got.get("segment_descriptions"))),
        SEGMENTS,
        place=lambda ctx, data, got: place_segments(ctx, data, got.get("postcodes")),
    ),
    Layer(
        "deprivation_areas", lambda c, got: _one(read_outlines(c, columns=DEPRIVATION_AREAS)),
        DEPRIVATION_AREAS, step="deprivation index",
    ),
    Layer(
        DEPRIVATION.input_name,
        lambda c, got: _one(read_deprivation(c, small_area_codes=got.codes("small_areas"),
                                             outline_codes=got.codes("deprivation_areas"))),
        DEPRIVATION,
        place=lambda ctx, data, got: place_deprivation(ctx, data, got["population"],
                                                       got.get("deprivation_areas")),
        counts=(Count("deprivation_residents"), Count("deprivation_sum"),
                Count("deprivation_need")),
    ),
)  # fmt: skip
BY_NAME: Mapping[str, Layer] = {layer.name: layer for layer in LAYERS}


def layer_steps() -> tuple[str, ...]:
    """The progress steps of reading the inputs, in order."""
    return tuple(layer.step for layer in LAYERS if layer.step is not None)


def input_files(config: Config) -> list[tuple[str, Path]]:
    """Every file the config's `[inputs]` names (globs not expanded), with its layer."""
    named: list[tuple[str, Path]] = []
    for layer in LAYERS:
        value = config.inputs.get(layer.name)
        if layer.globs:
            named += [(layer.name, Path(p)) for p in value or ()]
        elif value is not None:
            named.append((layer.name, value))
    return named
