"""Every input of a run, read and validated in the order of the layer registry
(`targeting.layers`), with what happened to each.

Progress is reported through an optional `on_step` callback (the steps the layers name), so the
library never prints.
"""

from __future__ import annotations

import datetime as dt
import glob
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from targeting.config import Config
from targeting.disclosure import withhold_small_counts
from targeting.errors import InputError, Problem
from targeting.ingest import InputSummary, Population, Signups
from targeting.ingest.segments import SegmentInput
from targeting.layers import BY_NAME, LAYERS, Layer, Read, input_files, layer_steps
from targeting.origins import OriginMapping

StepCallback = Callable[[str], None]
INGEST_STEPS = layer_steps()


def no_progress(_: str) -> None:
    """The default `on_step`: report nothing."""
    return None


@dataclass(frozen=True)
class Ingested:
    """Every input read, by layer name, with what happened to each; `layers` is the whole
    registry (a layer not given still declares the counts it would have added)."""

    data: Mapping[str, Any]
    summaries: tuple[InputSummary, ...]
    layers: tuple[Layer, ...] = LAYERS

    def get(self, name: str) -> Any:
        """A layer's data, or None when it was not given."""
        return self.data.get(name)

    @property
    def areas(self) -> gpd.GeoDataFrame:
        return self.data["areas"]

    @property
    def small_areas(self) -> gpd.GeoDataFrame | None:
        return self.data.get("small_areas")

    @property
    def population(self) -> Population:
        return self.data["population"]

    @property
    def population_previous(self) -> Population | None:
        return self.data.get("population_previous")

    @property
    def signups(self) -> Signups:
        return self.data["signups"]

    @property
    def origins(self) -> OriginMapping:
        mapping = self.signups.origins
        assert mapping is not None  # the sign-up layer maps every label it reads
        return mapping

    @property
    def schemes(self) -> gpd.GeoDataFrame | None:
        return self.data.get("schemes")

    @property
    def visited(self) -> pd.DataFrame | None:
        return self.data.get("visited")

    @property
    def postcodes(self) -> pd.DataFrame | None:
        """Postcode centroids, for the nearest postcode of a site."""
        return self.data.get("postcodes")

    @property
    def segments(self) -> SegmentInput | None:
        return self.data.get("segments")

    @property
    def segment_descriptions(self) -> pd.DataFrame | None:
        return self.data.get("segment_descriptions")

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


def check_inputs_exist(config: Config) -> None:
    """Every input file the config names is there: one error lists every missing one."""
    problems = []
    for name, path in input_files(config):
        if BY_NAME[name].globs:
            if not any(Path(p).is_file() for p in glob.glob(str(path), recursive=True)):
                problems.append(
                    Problem(str(path), "matches no file", f"check the path in [inputs] {name}")
                )
        elif not path.is_file():
            problems.append(
                Problem(str(path), "file not found", f"check [inputs] {name} in the config")
            )
    if config.origins.map is not None and not config.origins.map.is_file():
        problems.append(
            Problem(str(config.origins.map), "file not found", "check [origins] map in the config")
        )
    problems += [
        Problem(str(table.table), "file not found", f"check [segments] census[{i}] in the config")
        for i, table in enumerate(config.segments.census)
        if not table.table.is_file()
    ]
    if problems:
        raise InputError("inputs", config.path, problems)


def ingest_inputs(
    config: Config, *, on_step: StepCallback = no_progress, check_origins: bool = True
) -> Ingested:
    """Read and validate every input the config names, layer by layer; stop at the first
    unusable file, and (with `check_origins`) when too many sign-up origins cannot be mapped."""
    check_inputs_exist(config)
    got = Read(config, check_origins=check_origins)
    summaries: list[InputSummary] = []
    for layer in LAYERS:
        if layer.step is not None:
            on_step(layer.step)
        given = config.inputs.get(layer.name)
        if not (layer.required or given):
            continue
        data, read = layer.read(config, got)
        got.data[layer.name] = data
        summaries += read
    return Ingested(dict(got.data), tuple(summaries))
