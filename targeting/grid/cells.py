"""H3 cells, fragments of areas, and placing points on them."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapely
from h3ronpy import ContainmentMode, grid_disk
from h3ronpy.vector import wkb_to_cells

from targeting.background import BackgroundError
from targeting.h3cells import (
    cells_to_ids,
    id_corners,
    id_outlines,
    ids_to_cells,
    points_to_ids,
    rings_to_polygons,
)
from targeting.io import WGS84, polygonal_part

# pieces smaller than this are floating-point noise where a cell edge runs along an area edge
MIN_FRAGMENT_M2 = 0.01
# the grid's worker threads (GEOS and numpy let go of Python's lock): one per core, up to four
THREADS = min(4, os.cpu_count() or 1)


def in_threads(
    operation: Callable[[np.ndarray, np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """A vectorised shapely `operation` on pairs of geometries, in `THREADS` slices at once
    (not for a predicate on prepared geometries, which are not safe to share between threads)."""
    if THREADS == 1 or len(a) < 1000:
        return operation(a, b)
    slices = np.array_split(np.arange(len(a)), THREADS)
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return np.concatenate(list(pool.map(lambda i: operation(a[i], b[i]), slices)))


def equal_area_crs(areas: gpd.GeoDataFrame) -> pyproj.CRS:
    """A Lambert azimuthal equal-area CRS centred on the areas (metres, true surface shares)."""
    minx, miny, maxx, maxy = areas.to_crs(WGS84).total_bounds
    lon0, lat0 = (minx + maxx) / 2, (miny + maxy) / 2
    return pyproj.CRS.from_proj4(
        f"+proj=laea +lat_0={lat0:.6f} +lon_0={lon0:.6f} +datum=WGS84 +units=m +no_defs"
    )


@dataclass(frozen=True)
class GridSize:
    """What a resolution makes of a set of areas, estimated before any cell is made."""

    resolution: int
    cells: int  # cells covering the areas: their surface over a cell's, plus a ring at the edges
    cell_m2: float  # a cell's average surface at this resolution
    median_area_m2: float  # the median area's surface
    total_m2: float  # the areas' surface


def grid_size(areas: gpd.GeoDataFrame, *, resolution: int) -> GridSize:
    """How many H3 cells of `resolution` the areas need, from their surface and outline length
    (cells cut by an outline are counted once per area they touch), without making a cell."""
    projected = areas.to_crs(equal_area_crs(areas)).geometry
    surface = projected.area.to_numpy()
    cell_m2 = float(h3.average_hexagon_area(resolution, unit="m^2"))
    edge_m = float(h3.average_hexagon_edge_length(resolution, unit="m"))
    # a cell across an outline is a fragment of each side: one per cell width of outline
    boundary = float(projected.length.sum()) / (np.sqrt(3) * edge_m)
    return GridSize(
        resolution=resolution,
        cells=int(np.ceil(surface.sum() / cell_m2 + boundary)),
        cell_m2=cell_m2,
        median_area_m2=float(np.median(surface)),
        total_m2=float(surface.sum()),
    )


def points_to_areas(
    lon: np.ndarray, lat: np.ndarray, areas: gpd.GeoDataFrame, *, locator: AreaLocator | None = None
) -> np.ndarray:
    """Index (position) of the area containing each point, -1 where none does.

    A point on a shared boundary goes to the first area in file order, so placement is
    deterministic. With a `locator` (see `area_locator`) built on the same areas, points in cells
    that lie wholly inside one area are placed by their cell, with the same answer, and only the
    rest are tested against the outlines.
    """
    result = np.full(len(lon), -1, dtype=np.int64)
    if len(lon) == 0:
        return result
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    todo = np.arange(len(lon))
    if locator is not None:
        valid = np.flatnonzero(
            np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        )
        cells = points_to_ids(lat[valid], lon[valid], resolution=locator.resolution)
        found = locator.interior.reindex(cells).to_numpy(dtype=float)
        hit = ~np.isnan(found)
        result[valid[hit]] = found[hit].astype(np.int64)
        todo = np.setdiff1d(todo, valid[hit], assume_unique=True)
    if len(todo) == 0:
        return result
    # strictly inside: a tree of the points queried by each (prepared) outline, the fast way
    # round; points on an outline or outside every area then go through the areas' tree
    points = shapely.points(lon[todo], lat[todo])
    geoms = np.asarray(areas.geometry.values)
    area_idx, point_idx = shapely.STRtree(points).query(geoms, predicate="contains")
    _first_area(result, todo, point_idx, area_idx)
    todo = todo[result[todo] < 0]
    if len(todo) == 0:
        return result
    tree = locator.tree if locator is not None else shapely.STRtree(geoms)
    point_idx, area_idx = tree.query(shapely.points(lon[todo], lat[todo]), predicate="intersects")
    _first_area(result, todo, point_idx, area_idx)
    return result


def _first_area(
    result: np.ndarray, todo: np.ndarray, point_idx: np.ndarray, area_idx: np.ndarray
) -> None:
    """Fill `result` at `todo[point_idx]` with the first of each point's areas in file order."""
    if len(point_idx):
        order = np.lexsort((area_idx, point_idx))
        point_idx, area_idx = point_idx[order], area_idx[order]
        first = np.r_[True, point_idx[1:] != point_idx[:-1]]
        result[todo[point_idx[first]]] = area_idx[first]


# margin (degrees, about a metre) by which a cell must lie inside an area to be placed by lookup:
# H3's cell edges and the straight lines between an outline's vertices differ by far less
INTERIOR_MARGIN_DEG = 1e-5


@dataclass(frozen=True)
class AreaLocator:
    """The H3 cells that lie wholly inside one area each, so points in them need no
    point-in-polygon test; and the outlines' tree for the rest."""

    resolution: int
    interior: pd.Series  # area position, indexed by 64-bit cell index
    tree: shapely.STRtree


def area_locator(
    areas: gpd.GeoDataFrame,
    *,
    resolution: int = 9,
    touching: tuple[np.ndarray, np.ndarray] | None = None,
) -> AreaLocator:
    """Build the lookup for `points_to_areas` once per set of areas (WGS84), from the cells
    touching each area (`cells_touching`, unless given as `touching`).

    A cell counts as interior only when its outline, grown by INTERIOR_MARGIN_DEG, lies inside
    the area's outline as drawn (straight lines between vertices), so a point placed by its cell
    is placed exactly as the outline test would place it.
    """
    geoms = np.asarray(areas.geometry.values)
    owner, cells = (
        touching if touching is not None else cells_touching(areas, resolution=resolution)
    )
    shapely.prepare(geoms)
    inside = shapely.contains_properly(geoms[owner], _grown(*id_corners(cells), count=len(cells)))
    interior = (
        pd.DataFrame({"cell": cells[inside], "area": owner[inside]})
        .sort_values(["cell", "area"], kind="stable")
        .drop_duplicates("cell")
    )
    return AreaLocator(
        resolution,
        pd.Series(interior["area"].to_numpy(), index=interior["cell"].to_numpy()),
        shapely.STRtree(geoms),
    )


def _grown(coords: np.ndarray, ring: np.ndarray, *, count: int) -> np.ndarray:
    """Convex cell outlines (`count` closed rings as flat coordinates and each one's ring, as
    `id_corners` gives them) scaled about their centres so every edge moves out by at least
    INTERIOR_MARGIN_DEG, as polygons: they then hold the outline buffered by that margin (a
    buffer of each is ten times slower)."""
    if count == 0:  # no cell lies wholly inside an area (cells larger than the areas)
        return np.array([], dtype=object)
    n = np.bincount(ring, minlength=count)
    centre = np.column_stack(
        [np.bincount(ring, weights=coords[:, i], minlength=count) / n for i in (0, 1)]
    )
    # the ring's last vertex repeats its first, so the next vertex of the last is itself
    nxt = np.r_[np.arange(1, len(ring)), len(ring) - 1]
    nxt[np.r_[ring[1:] != ring[:-1], True]] = np.flatnonzero(np.r_[ring[1:] != ring[:-1], True])
    edge = coords[nxt] - coords
    to_centre = centre[ring] - coords
    length = np.hypot(edge[:, 0], edge[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = np.abs(edge[:, 0] * to_centre[:, 1] - edge[:, 1] * to_centre[:, 0]) / length
    distance[length == 0] = np.inf
    nearest = np.full(count, np.inf)
    np.minimum.at(nearest, ring, distance)
    scale = 1 + INTERIOR_MARGIN_DEG / nearest
    grown = centre[ring] + (coords - centre[ring]) * scale[ring][:, None]
    return rings_to_polygons(grown, ring, count=count)


# h3ronpy fills polygons on a pool of threads it starts at its first fill, and a forked child
# has none of its parent's threads: a fill in a child forked after its parent's first would wait
# for ever. So a run fills before it forks (`cells_touching`, `area_locator`) and hands the cells
# to its children; this is the process that started the pool, so that a child can tell.
_FILLING: list[int] = []


def _cells_in(
    geoms: np.ndarray, *, resolution: int, mode: ContainmentMode
) -> tuple[np.ndarray, np.ndarray]:
    """The cells each WGS84 polygon holds under `mode`: (polygon position, 64-bit cell) pairs.

    Raises `BackgroundError` in a child process forked after its parent filled polygons (see
    `_FILLING`): fork such a child before, or fill in the parent.
    """
    if not _FILLING:
        _FILLING.append(os.getpid())
    elif _FILLING[0] != os.getpid():
        raise BackgroundError(
            "H3 cells cannot be filled into polygons in a child process forked after its parent "
            "did (h3ronpy's threads are not forked with it); fork the child earlier"
        )
    listed = pa.array(wkb_to_cells(pa.array(shapely.to_wkb(geoms)), resolution, mode))
    owner = np.asarray(pc.list_parent_indices(listed).to_numpy(), dtype=np.int64)
    return owner, np.asarray(listed.flatten().to_numpy(), dtype=np.uint64)


def cells_touching(areas: gpd.GeoDataFrame, *, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The cells touching each area, found for all areas at once (h3ronpy, on the sphere):
    (area position, 64-bit cell) pairs. Made in the process that forks, and handed to a child
    making the fragments (`areas_to_fragments`), since a forked child cannot fill polygons."""
    geoms = np.asarray(areas.geometry.values)
    return _cells_in(geoms, resolution=resolution, mode=ContainmentMode.IntersectsBoundary)


def areas_to_fragments(
    areas: gpd.GeoDataFrame,
    *,
    resolution: int,
    crs: pyproj.CRS,
    touching: tuple[np.ndarray, np.ndarray] | None = None,
) -> gpd.GeoDataFrame:
    """The fragments (cell x area pieces) covering the areas, with their surface in m2.

    Returns columns `cell, area_code, area_m2, geometry` in `crs`. Cells wholly inside an area's
    projected outline are whole fragments; the others are cut by the outline. The cells that
    touch each area (`cells_touching`, unless given as `touching`) are found on the sphere;
    whether a cell is whole is decided against the projected outline, and a ring of cells
    around the cut ones catches slivers the sphere and the projection disagree about: no part
    of an area is left without a fragment.
    """
    to_proj = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
    geoms = np.asarray(areas.geometry.values)
    projected = np.asarray(areas.to_crs(crs).geometry.values)
    shapely.prepare(projected)
    owner, cells = (
        touching if touching is not None else cells_touching(areas, resolution=resolution)
    )
    # a cell on a boundary between areas is listed once per area: each outline is made once
    known, listed = np.unique(cells, return_inverse=True)
    known_outlines = id_outlines(known, to_proj)
    outlines = known_outlines[listed]
    whole = shapely.contains_properly(projected[owner], outlines)
    full = pd.DataFrame({"area": owner[whole], "cell": cells[whole]})
    seed_owner, seed_cells = owner[~whole], cells[~whole]
    lonely = np.setdiff1d(np.arange(len(geoms)), np.r_[seed_owner, full["area"].to_numpy()])
    if len(lonely):
        points = shapely.point_on_surface(geoms[lonely])
        seed_owner = np.r_[seed_owner, lonely]
        seed_cells = np.r_[
            seed_cells,
            points_to_ids(shapely.get_y(points), shapely.get_x(points), resolution=resolution),
        ]
    disk = pa.array(grid_disk(pa.array(seed_cells, type=pa.uint64()), 1))
    ring_owner = seed_owner[np.asarray(pc.list_parent_indices(disk).to_numpy(), dtype=np.int64)]
    edge = (
        pd.DataFrame({"area": ring_owner, "cell": np.asarray(disk.flatten().to_numpy(), np.uint64)})
        .drop_duplicates()
        .merge(full, how="left", indicator=True)
    )
    edge = edge[edge["_merge"] == "left_only"].drop(columns="_merge")
    edge_area = edge["area"].to_numpy()
    edge_polys = _outlines_of(edge["cell"].to_numpy(), known, known_outlines, to_proj)
    hits = shapely.intersects(projected[edge_area], edge_polys)
    # a prepared outline must not be read by two threads at once (GEOS builds its index on first
    # use): only the cutting, which never uses it, runs in threads
    pieces = in_threads(shapely.intersection, edge_polys[hits], projected[edge_area[hits]])
    mixed = ~np.isin(shapely.get_type_id(pieces), [3, 6])
    pieces[mixed] = [polygonal_part(g) for g in pieces[mixed]]

    fragments = pd.DataFrame(
        {
            "area": np.r_[full["area"].to_numpy(), edge_area[hits]],
            "cut": np.r_[np.zeros(len(full), bool), np.ones(int(hits.sum()), bool)],
            "cell": ids_to_cells(np.r_[full["cell"].to_numpy(), edge["cell"].to_numpy()[hits]]),
            "geometry": np.r_[outlines[whole], pieces],
        }
    )
    fragments["area_m2"] = shapely.area(fragments["geometry"].to_numpy())
    fragments = fragments[fragments["area_m2"] > MIN_FRAGMENT_M2].sort_values(
        ["area", "cut", "cell"], kind="stable"
    )
    fragments["area_code"] = areas["area_code"].to_numpy()[fragments["area"].to_numpy()]
    return gpd.GeoDataFrame(
        fragments[["cell", "area_code", "area_m2", "geometry"]].reset_index(drop=True),
        geometry="geometry",
        crs=crs,
    )


def _outlines_of(
    cells: np.ndarray, known: np.ndarray, known_outlines: np.ndarray, to_proj: pyproj.Transformer
) -> np.ndarray:
    """Outlines of `cells`, taken from those already made for the sorted `known` cells where
    they are there (most of a ring around the cut cells), made through `to_proj` otherwise."""
    at = np.minimum(np.searchsorted(known, cells), max(len(known) - 1, 0))
    found = known[at] == cells if len(known) else np.zeros(len(cells), dtype=bool)
    outlines = np.empty(len(cells), dtype=object)
    outlines[found] = known_outlines[at[found]]
    outlines[~found] = id_outlines(cells[~found], to_proj)
    return outlines


def points_to_fragments(
    lat: np.ndarray,
    lon: np.ndarray,
    area_code: np.ndarray,
    fragments: gpd.GeoDataFrame,
    *,
    resolution: int,
) -> np.ndarray:
    """Position of the fragment holding each point, given the area each point lies in.

    A point goes to the fragment of its own area in its own H3 cell. Where that cell has no
    fragment of the area (a point a hair inside an area whose piece of the cell was too thin to
    keep), it goes to the nearest fragment of its area, so every count sits in a real fragment.
    """
    cells = points_to_ids(lat, lon, resolution=resolution)
    # one integer key per (cell, area): the cell's 64-bit index and the area's position in a
    # sorted list of the area codes, so the lookup is a join on integers, not on strings
    codes, frag_area = np.unique(fragments["area_code"].to_numpy(), return_inverse=True)
    # each distinct code looked up once: a search on text for every point is slow
    point_of, point_codes = pd.factorize(area_code)
    at = np.searchsorted(codes, point_codes)
    found_code = (at < len(codes)) & (codes[np.minimum(at, len(codes) - 1)] == point_codes)
    point_area = at[point_of]
    known = found_code[point_of] & (point_of >= 0)
    lookup = pd.Series(
        np.arange(len(fragments)),
        index=pd.MultiIndex.from_arrays([cells_to_ids(fragments["cell"].to_numpy()), frag_area]),
    )
    found = lookup.reindex(pd.MultiIndex.from_arrays([cells, point_area])).to_numpy(
        dtype=float, copy=True
    )
    found[~known] = np.nan
    missing = np.flatnonzero(np.isnan(found))
    if len(missing):
        to_proj = pyproj.Transformer.from_crs(WGS84, fragments.crs, always_xy=True)
        x, y = to_proj.transform(lon[missing], lat[missing])
        points = shapely.points(x, y)
        geoms = np.asarray(fragments.geometry.values)
        edge = h3.average_hexagon_edge_length(resolution, unit="m")
        p_idx, f_idx = shapely.STRtree(geoms).query(points, predicate="dwithin", distance=2 * edge)
        same = fragments["area_code"].to_numpy()[f_idx] == area_code[missing][p_idx]
        p_idx, f_idx = p_idx[same], f_idx[same]
        dist = shapely.distance(points[p_idx], geoms[f_idx])
        nearest = (
            pd.DataFrame({"p": p_idx, "f": f_idx, "d": dist})
            .sort_values(["p", "d", "f"])
            .drop_duplicates("p")
        )
        found[missing[nearest["p"].to_numpy()]] = nearest["f"].to_numpy()
    if np.isnan(found).any():
        raise ValueError("a point lies in an area that has no fragment near it")
    return found.astype(np.int64)
