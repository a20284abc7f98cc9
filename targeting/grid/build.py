"""Every input's counts on the fragment grid."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj

from targeting.background import Pending, in_background
from targeting.config import Config
from targeting.grid.cells import areas_to_fragments, equal_area_crs
from targeting.grid.clip import ConvexPolygons, convex_polygons
from targeting.grid.overlay import raster_to_points
from targeting.grid.place import GridContext, Placed, SmallAreaWeights, small_area_weights

if TYPE_CHECKING:  # the ingest imports the grid: its types are named, not imported, here
    from targeting.ingest.inputs import Ingested
    from targeting.layers import Placer


@dataclass(frozen=True)
class Grid:
    """Every count on the cell x area fragment grid, and what fell outside every area."""

    cells: pd.DataFrame  # one row per fragment: `fragment, cell, area_code, area_m2` and counts
    cell_origins: pd.DataFrame  # cell, area_code, origin, residents, registered
    unallocated: dict[str, float]
    crs: str
    resolution: int
    summed: tuple[str, ...]  # the count columns that add up over fragments, cells and areas
    warnings: tuple[str, ...]
    previous: pd.DataFrame | None = None  # cell, area_code, origin, residents of the earlier census
    cell_segments: pd.DataFrame | None = None  # cell, area_code, segment, households


@dataclass(frozen=True)
class GridShapes:
    """The grid's shapes, from the outlines alone: the fragments, their CRS and the small areas'
    weights over them (without a population raster). A run works them out beside its reading
    of the other inputs (`grid_shapes`)."""

    crs: pyproj.CRS
    fragments: gpd.GeoDataFrame
    small_weights: SmallAreaWeights | None
    convex: ConvexPolygons  # the fragments' convex outlines, which the overlays clip against


def grid_shapes(
    areas: gpd.GeoDataFrame,
    small_areas: gpd.GeoDataFrame | None,
    *,
    config: Config,
    touching: tuple[np.ndarray, np.ndarray] | None = None,
) -> GridShapes:
    """The fragments of the areas and, with small areas, their weights over the fragments, as
    `build_grid` makes them when no population raster is given (`touching`: the areas' cells,
    `cells_touching`, made already). A run makes the two apart (`grid_fragments`, then
    `weigh_small_areas`), each as soon as its outlines are read."""
    shapes = grid_fragments(areas, config=config, touching=touching)
    if small_areas is None:
        return shapes
    return weigh_small_areas(shapes, areas, small_areas, config=config)


def grid_fragments(
    areas: gpd.GeoDataFrame,
    *,
    config: Config,
    touching: tuple[np.ndarray, np.ndarray] | None = None,
) -> GridShapes:
    """The grid's shapes from the areas alone: the fragments and their CRS (no weights yet)."""
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(
        areas, resolution=config.grid.resolution, crs=crs, touching=touching
    )
    return GridShapes(crs, fragments, None, convex_polygons(np.asarray(fragments.geometry.values)))


def weigh_small_areas(
    shapes: GridShapes,
    areas: gpd.GeoDataFrame,
    small_areas: gpd.GeoDataFrame,
    *,
    config: Config,
) -> GridShapes:
    """`shapes` (from `grid_fragments` on `areas`) with the small areas' weights over its
    fragments."""
    weights = small_area_weights(
        small_areas, areas=areas, fragments=shapes.fragments, crs=shapes.crs, config=config,
        raster=None, convex=shapes.convex,
    )  # fmt: skip
    return GridShapes(shapes.crs, shapes.fragments, weights, shapes.convex)


def build_grid(
    data: Ingested, *, config: Config, shapes: GridShapes | None = None, parallel: bool = False
) -> Grid:
    """Put every input's counts on the fragments of the areas: a loop over the input layers,
    each placed its own way (`targeting.grid.place`, `targeting.layers`).

    `shapes`, from `grid_shapes` on the same areas and small areas, saves working them out
    here; with a population raster they cannot be made ahead (the raster weighs the small areas).
    With `parallel`, a layer read in a child is placed in one too (`in_background`).
    Counts of a layer that was not given are null rather than zero. Every table is joined to the
    fragments on their id, never on row position: the grid is sorted by cell before it is
    returned.
    """
    areas = data.areas
    raster_path = data.get("population_raster")
    if shapes is not None and raster_path is not None:
        raise ValueError("grid shapes made ahead leave out the population raster's weights")
    crs = equal_area_crs(areas) if shapes is None else shapes.crs
    resolution = config.grid.resolution
    fragments = (
        areas_to_fragments(areas, resolution=resolution, crs=crs)
        if shapes is None
        else shapes.fragments
    )
    raster = (
        raster_to_points(raster_path, crs=crs, bounds=tuple(areas.total_bounds))
        if raster_path is not None
        else None
    )
    warnings = (
        [f"population_raster: {raster.negative_cells} negative cells read as 0"]
        if raster is not None and raster.negative_cells
        else []
    )
    ctx = GridContext(areas=areas, fragments=fragments, crs=crs, config=config,
                      small_areas=data.small_areas, raster=raster,
                      small_weights=shapes.small_weights if shapes is not None else None,
                      convex=shapes.convex if shapes is not None else None)  # fmt: skip
    cells = pd.DataFrame(fragments[["cell", "area_code", "area_m2"]]).reset_index(drop=True)
    cells.insert(0, "fragment", np.arange(len(fragments)))
    placers = {
        layer.name: layer.place
        for layer in data.layers
        if layer.place is not None and data.given(layer.name)
    }
    by_layer = _place_layers(data, ctx, placers, parallel=parallel)
    counts: dict[str, Any] = {}
    tables: dict[str, pd.DataFrame] = {}
    unallocated: dict[str, float] = {}
    for layer in data.layers:
        placed = by_layer.get(layer.name)
        counts |= {c.name: c.absent(len(cells)) for c in layer.counts}
        counts |= dict(placed.counts) if placed is not None else {}
        if placed is not None:
            tables |= placed.tables
            unallocated |= placed.unallocated
            warnings += placed.warnings
    cells = cells.assign(**counts)
    keys = cells[["fragment", "cell", "area_code"]]
    return Grid(
        cells=cells.sort_values(["cell", "area_code"], kind="stable").reset_index(drop=True),
        cell_origins=_cell_origins(tables, keys),
        unallocated=unallocated,
        crs=crs.srs,
        resolution=resolution,
        summed=tuple(c.name for layer in data.layers for c in layer.counts if c.summed),
        warnings=tuple(warnings),
        previous=_by_fragment(tables.get("previous_by_origin"), keys, "origin", "residents"),
        cell_segments=_by_fragment(
            tables.get("segments_by_fragment"), keys, "segment", "households"
        ),
    )


def _place_layers(
    data: Ingested, ctx: GridContext, placers: dict[str, Placer], *, parallel: bool
) -> dict[str, Placed]:
    """Each layer placed, by name. The layers in hand are placed first; the layers still being
    read in a child (`Ingested.pending`) are placed in another child beside them (with
    `parallel`) as soon as they are all in, or else last, here, so that their reading overlaps
    as much of the grid as it can."""
    reading = [name for name in placers if name in data.pending]
    by_layer: dict[str, Placed] = {}
    with contextlib.ExitStack() as children:
        placing: list[Pending[dict[str, Placed]]] = []
        for name in (name for name in placers if name not in data.pending):
            if (
                parallel
                and reading
                and not placing
                and all(data.pending[n].done() for n in reading)
            ):
                held = {n: data.layer_data(n) for n in reading}
                placing.append(children.enter_context(in_background(
                    partial(_place, placers, ctx, held, data.data),
                    name=f"placing {', '.join(reading)}", fork=True,
                )))  # fmt: skip
            by_layer |= _place(placers, ctx, {name: data.layer_data(name)}, data.data)
        if placing:
            return by_layer | placing[0].result()
    held = {name: data.layer_data(name) for name in reading}
    return by_layer | _place(placers, ctx, held, data.data)


def _place(
    placers: dict[str, Placer], ctx: GridContext, layers: dict[str, Any], read: Mapping[str, Any]
) -> dict[str, Placed]:
    """The given layers' data placed, by layer name (`read`: every layer read, for placers that
    use another layer)."""
    return {name: placers[name](ctx, value, read) for name, value in layers.items()}


def _by_fragment(
    table: pd.DataFrame | None, keys: pd.DataFrame, key: str, value: str
) -> pd.DataFrame | None:
    """A table keyed by fragment id, as `cell, area_code, key, value`, sorted."""
    if table is None:
        return None
    return (
        table.merge(keys, on="fragment")[["cell", "area_code", key, value]]
        .sort_values(["cell", "area_code", key], kind="stable")
        .reset_index(drop=True)
    )


def _cell_origins(tables: dict[str, pd.DataFrame], keys: pd.DataFrame) -> pd.DataFrame:
    """Residents and sign-ups per fragment and origin: `cell, area_code, origin, residents,
    registered`, sorted.

    Joined and sorted on integers (the fragment, and each origin's place among the origins'
    names) with the text taken in at the end: at national scale a million rows, where joining
    and sorting on text took most of a second.
    """
    residents = tables["residents_by_origin"][["fragment", "origin", "residents"]]
    registered = tables["registered_by_origin"][["fragment", "origin", "registered"]]
    names = pa.array(
        np.unique(np.concatenate([residents["origin"].unique(), registered["origin"].unique()])),
        type=pa.large_string(),
    )

    def coded(frame: pd.DataFrame) -> pd.DataFrame:
        text = pa.array(frame["origin"], type=pa.large_string())
        return frame.assign(origin=np.asarray(pc.index_in(text, value_set=names), dtype=np.int64))

    merged = (
        coded(residents)
        .merge(coded(registered), on=["fragment", "origin"], how="outer")
        .fillna({"residents": 0.0, "registered": 0})
        .astype({"registered": "int64"})
    )
    fragment = merged["fragment"].to_numpy(dtype=np.int64)
    row_of = pd.Series(np.arange(len(keys)), index=keys["fragment"].to_numpy())
    key_row = row_of.reindex(fragment).to_numpy()
    found = ~np.isnan(key_row)
    merged, fragment, key_row = merged[found], fragment[found], key_row[found].astype(np.int64)
    # each fragment's place in (cell, area) order, found over the fragments alone
    by_place = keys.sort_values(["cell", "area_code"], kind="stable").index.to_numpy()
    place = np.empty(len(keys), dtype=np.int64)
    place[keys.index.get_indexer(pd.Index(by_place))] = np.arange(len(keys))
    origin = merged["origin"].to_numpy(dtype=np.int64)
    # one integer key; the rows come nearly in order, which a stable sort (timsort) runs through
    order = np.argsort(place[key_row] * len(names) + origin, kind="stable")
    rows = key_row[order]

    def text(column: pd.Series, at: np.ndarray) -> pd.api.extensions.ExtensionArray:
        taken = pc.take(pa.array(column, type=pa.large_string()), pa.array(at))
        return pd.array(taken, dtype=column.dtype)

    return pd.DataFrame(
        {
            "cell": text(keys["cell"], rows),
            "area_code": text(keys["area_code"], rows),
            "origin": pd.array(pc.take(names, pa.array(origin[order])),
                               dtype=residents["origin"].dtype),
            "residents": merged["residents"].to_numpy()[order],
            "registered": merged["registered"].to_numpy()[order],
        }
    )  # fmt: skip
