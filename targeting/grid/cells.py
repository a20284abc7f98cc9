"""H3 cells, fragments of areas, and placing points on them."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapely
from h3ronpy import ContainmentMode
from h3ronpy.vector import cells_to_wkb_polygons, coordinates_to_cells, wkb_to_cells

from targeting.io import WGS84, polygonal_part

# pieces smaller than this are floating-point noise where a cell edge runs along an area edge
MIN_FRAGMENT_M2 = 0.01


def equal_area_crs(areas: gpd.GeoDataFrame) -> pyproj.CRS:
    """A Lambert azimuthal equal-area CRS centred on the areas (metres, true surface shares)."""
    minx, miny, maxx, maxy = areas.to_crs(WGS84).total_bounds
    lon0, lat0 = (minx + maxx) / 2, (miny + maxy) / 2
    return pyproj.CRS.from_proj4(
        f"+proj=laea +lat_0={lat0:.6f} +lon_0={lon0:.6f} +datum=WGS84 +units=m +no_defs"
    )


def points_to_cell_ids(lat: np.ndarray, lon: np.ndarray, *, resolution: int) -> np.ndarray:
    """The H3 cell of each WGS84 point as its 64-bit index (h3ronpy: vectorised, about 3x h3-py's
    per-point calls on 380,000 points)."""
    if len(lat) == 0:
        return np.array([], dtype=np.uint64)
    cells = coordinates_to_cells(
        np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64), resolution
    )
    return np.asarray(pa.array(cells).to_numpy(), dtype=np.uint64)


def cells_to_ids(cells: np.ndarray) -> np.ndarray:
    """H3 cells given as strings, as their 64-bit indexes."""
    return np.array([int(c, 16) for c in cells], dtype=np.uint64)


def points_to_cells(lat: np.ndarray, lon: np.ndarray, *, resolution: int) -> np.ndarray:
    """The H3 cell (as a string) of each WGS84 point."""
    ids = points_to_cell_ids(lat, lon, resolution=resolution)
    return np.array([format(i, "x") for i in ids.tolist()], dtype=object)


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
        cells = points_to_cell_ids(lat[valid], lon[valid], resolution=locator.resolution)
        found = locator.interior.reindex(cells).to_numpy(dtype=float)
        hit = ~np.isnan(found)
        result[valid[hit]] = found[hit].astype(np.int64)
        todo = np.setdiff1d(todo, valid[hit], assume_unique=True)
    if len(todo) == 0:
        return result
    points = shapely.points(lon[todo], lat[todo])
    tree = locator.tree if locator is not None else shapely.STRtree(areas.geometry.values)
    point_idx, area_idx = tree.query(points, predicate="intersects")
    if len(point_idx):
        order = np.lexsort((area_idx, point_idx))
        point_idx, area_idx = point_idx[order], area_idx[order]
        first = np.r_[True, point_idx[1:] != point_idx[:-1]]
        result[todo[point_idx[first]]] = area_idx[first]
    return result


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


def area_locator(areas: gpd.GeoDataFrame, *, resolution: int = 9) -> AreaLocator:
    """Build the lookup for `points_to_areas` once per set of areas (WGS84).

    A cell counts as interior only when its outline, grown by INTERIOR_MARGIN_DEG, lies inside
    the area's outline as drawn (straight lines between vertices), so a point placed by its cell
    is placed exactly as the outline test would place it.
    """
    geoms = np.asarray(areas.geometry.values)
    listed = pa.array(
        wkb_to_cells(pa.array(shapely.to_wkb(geoms)), resolution, ContainmentMode.ContainsBoundary)
    )
    cells = np.asarray(listed.flatten().to_numpy(), dtype=np.uint64)
    owner = np.asarray(pc.list_parent_indices(listed).to_numpy(), dtype=np.int64)
    outlines = shapely.from_wkb(
        np.asarray(pa.array(cells_to_wkb_polygons(pa.array(cells))).to_numpy(zero_copy_only=False))
    )
    shapely.prepare(geoms)
    inside = shapely.contains_properly(geoms[owner], shapely.buffer(outlines, INTERIOR_MARGIN_DEG))
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


def _cell_polygons(cells: np.ndarray, transformer: pyproj.Transformer) -> np.ndarray:
    """Cell outlines in the equal-area CRS."""
    boundaries = [h3.cell_to_boundary(c) for c in cells]
    counts = np.array([len(b) for b in boundaries])
    coords = np.array([pt for b in boundaries for pt in b], dtype=float).reshape(-1, 2)
    x, y = transformer.transform(coords[:, 1], coords[:, 0])
    ring_idx = np.repeat(np.arange(len(cells)), counts)
    rings = shapely.linearrings(np.column_stack([x, y]), indices=ring_idx)
    return shapely.polygons(rings)


def areas_to_fragments(
    areas: gpd.GeoDataFrame, *, resolution: int, crs: pyproj.CRS
) -> gpd.GeoDataFrame:
    """The fragments (cell x area pieces) covering the areas, with their surface in m2.

    Returns columns `cell, area_code, area_m2, geometry` in `crs`. Cells wholly inside an area are
    whole fragments; boundary cells are cut by the area's outline.
    """
    to_proj = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
    projected = areas.to_crs(crs)
    frames = []
    for code, geom_wgs, geom_proj in zip(
        areas["area_code"], areas.geometry.values, projected.geometry.values, strict=True
    ):
        shape = h3.geo_to_h3shape(shapely.geometry.mapping(geom_wgs))
        full = set(h3.h3shape_to_cells_experimental(shape, resolution, contain="full"))
        overlap = set(h3.h3shape_to_cells_experimental(shape, resolution, contain="overlap"))
        edge = overlap - full
        # a ring around the edge cells catches slivers that h3's spherical test and the projected
        # outline disagree about, so no part of an area is left without a fragment
        candidates = set()
        for cell in edge or {h3.latlng_to_cell(*_rep_latlng(geom_wgs), resolution)}:
            candidates.update(h3.grid_disk(cell, 1))
        candidates -= full
        full_cells = np.array(sorted(full), dtype=object)
        edge_cells = np.array(sorted(candidates), dtype=object)
        full_polys = _cell_polygons(full_cells, to_proj) if len(full_cells) else np.array([])
        edge_polys = _cell_polygons(edge_cells, to_proj) if len(edge_cells) else np.array([])
        shapely.prepare(geom_proj)
        if len(edge_polys):
            hits = shapely.intersects(geom_proj, edge_polys)
            edge_cells, edge_polys = edge_cells[hits], edge_polys[hits]
            edge_polys = shapely.intersection(edge_polys, geom_proj)
            edge_polys = np.array([polygonal_part(g) for g in edge_polys], dtype=object)
        cells = np.concatenate([full_cells, edge_cells])
        polys = np.concatenate([full_polys, edge_polys])
        area = shapely.area(polys) if len(polys) else np.array([])
        keep = area > MIN_FRAGMENT_M2
        frames.append(
            pd.DataFrame(
                {
                    "cell": cells[keep],
                    "area_code": code,
                    "area_m2": area[keep],
                    "geometry": polys[keep],
                }
            )
        )
    fragments = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(fragments, geometry="geometry", crs=crs)


def _rep_latlng(geom: shapely.Geometry) -> tuple[float, float]:
    point = geom.representative_point()
    return point.y, point.x


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
    cells = points_to_cell_ids(lat, lon, resolution=resolution)
    # one integer key per (cell, area): the cell's 64-bit index and the area's position in a
    # sorted list of the area codes, so the lookup is a join on integers, not on strings
    codes, frag_area = np.unique(fragments["area_code"].to_numpy(), return_inverse=True)
    point_area = np.searchsorted(codes, area_code)
    known = (point_area < len(codes)) & (codes[np.minimum(point_area, len(codes) - 1)] == area_code)
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
