"""Every input of a run, read and validated in the order of the layer registry
(`targeting.layers`), with what happened to each.

Progress is reported through an optional `on_step` callback (the steps the layers name), so the
library never prints.
"""

from __future__ import annotations

import datetime as dt
import glob
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from targeting.background import Pending, in_background
from targeting.config import Config
from targeting.disclosure import withhold_small_counts
from targeting.errors import InputError, Problem, TargetingError
from targeting.ingest import Population, Signups
from targeting.ingest.segments import SegmentInput
from targeting.layers import BY_NAME, LAYERS, Layer, Read, Summaries, input_files, layer_steps
from targeting.origins import OriginMapping

StepCallback = Callable[[str], None]
INGEST_STEPS = layer_steps()
BY_POSITION = {layer.name: turn for turn, layer in enumerate(LAYERS)}


def no_progress(_: str) -> None:
    """The default `on_step`: report nothing."""
    return None


ReadCallback = Callable[[str, Read], None]


def nothing_more(name: str, read: Read) -> None:
    """The default `on_read`: start nothing."""
    return None


@dataclass(frozen=True)
class Ingested:
    """Every input read, by layer name, with what happened to each (`read`, in the registry's
    order); `layers` is the whole registry (a layer not given still declares the counts it would
    have added).

    `pending` holds the layers still being read in a child process (`Layer.background`):
    `layer_data` waits for one, `collected` waits for them all.
    """

    data: Mapping[str, Any]
    read: Mapping[str, Summaries]
    layers: tuple[Layer, ...] = LAYERS
    pending: Mapping[str, Pending[tuple[Any, Summaries]]] = field(default_factory=dict)

    @property
    def summaries(self) -> Summaries:
        """What happened to each input read, in the registry's order."""
        assert not self.pending, "collect the layers still being read first"
        return tuple(s for summaries in self.read.values() for s in summaries)

    def get(self, name: str) -> Any:
        """A layer's data, or None when it was not given."""
        return self.data.get(name)

    def given(self, name: str) -> bool:
        """Whether the layer was given: read, or still being read."""
        return name in self.data or name in self.pending

    def layer_data(self, name: str) -> Any:
        """A layer's data, waiting for it if it is still being read (None when not given)."""
        if name in self.pending:
            return self.pending[name].result()[0]
        return self.data.get(name)

    def collected(self) -> Ingested:
        """Every layer in hand: waits for those still being read, and raises the error of the
        first (in the registry's order) that failed."""
        if not self.pending:
            return self
        done = {name: self.pending[name].result() for name in self.pending}
        return replace(
            self,
            data={**self.data, **{name: value for name, (value, _) in done.items()}},
            read={
                layer.name: done[layer.name][1] if layer.name in done else self.read[layer.name]
                for layer in self.layers
                if layer.name in done or layer.name in self.read
            },
            pending={},
        )

    def cancel(self) -> None:
        """Stop the children of layers still being read (the run failed before it needed them)."""
        for reading in self.pending.values():
            reading.cancel()

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
    config: Config,
    *,
    on_step: StepCallback = no_progress,
    check_origins: bool = True,
    parallel: bool = False,
    on_read: ReadCallback = nothing_more,
) -> Ingested:
    """Read and validate every input the config names, layer by layer; stop at the first
    unusable file, and (with `check_origins`) when too many sign-up origins cannot be mapped.

    With `parallel`, a layer marked `background` is read in a child process (`in_background`)
    while the run reads the rest and builds the grid; the result holds it as `pending` until it
    is collected (`Ingested.collected`), or stopped (`Ingested.cancel`). `on_read` is called
    after each layer's turn, given or not, with its name and what has been read (not to be
    changed), so a caller can start work on it while the rest is read.
    """
    check_inputs_exist(config)
    got = Read(config, check_origins=check_origins)
    read: dict[str, Summaries] = {}
    pending: dict[str, Pending[tuple[Any, Summaries]]] = {}
    # layers read in a child, by the layer after whose turn each starts
    starts: dict[str, list[Layer]] = {}
    for layer in LAYERS:
        if parallel and layer.background is not None and config.inputs.get(layer.name):
            starts.setdefault(layer.background(config), []).append(layer)
    turn = 0
    try:
        for layer in LAYERS:
            turn = BY_POSITION[layer.name]
            if layer.step is not None:
                on_step(layer.step)
            if layer.name not in pending and (layer.required or config.inputs.get(layer.name)):
                got.data[layer.name], read[layer.name] = layer.read(config, got)
            for later in starts.get(layer.name, ()):
                # the areas' lookup is built first: the child shares it (and a forked child
                # cannot build one: `targeting.grid.cells._cells_in`)
                got.locator  # noqa: B018
                pending[later.name] = in_background(
                    partial(later.read, config, got), name=f"reading {later.name}", fork=True
                )
            on_read(layer.name, got)
            for reading in pending.values():
                reading.poll()  # a child that has finished lets go of its memory at once
    except BaseException as error:
        try:
            if isinstance(error, TargetingError):
                # a layer read in a child that comes before this one: its error is the one to
                # report, as reading in order would have
                for name, reading in pending.items():
                    if BY_POSITION[name] < turn:
                        reading.result()
        finally:
            for reading in pending.values():
                reading.cancel()
        raise
    return Ingested(dict(got.data), read, pending=pending)
