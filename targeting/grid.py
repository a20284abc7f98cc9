"""The H3 analysis grid, held as cell x area fragments, and allocation of counts onto it.

H3 cells and areas do not nest, so every count is held per fragment: the part of a cell inside one
area. Area figures are sums of their fragments (exact); cell figures are sums over a cell's
fragments. Census counts are spread from small areas to fragments by the share of each small
area's surface (or raster weight) that lies in the fragment; points go to the area that contains
them and the cell that contains them. Geometry work happens in a Lambert azimuthal equal-area
projection centred on the areas, so surface shares are true shares.
"""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyproj
import shapely

from targeting.io import WGS84


def equal_area_crs(areas: gpd.GeoDataFrame) -> pyproj.CRS:
    """A Lambert azimuthal equal-area CRS centred on the areas (metres, true surface shares)."""
    minx, miny, maxx, maxy = areas.to_crs(WGS84).total_bounds
    lon0, lat0 = (minx + maxx) / 2, (miny + maxy) / 2
    return pyproj.CRS.from_proj4(
        f"+proj=laea +lat_0={lat0:.6f} +lon_0={lon0:.6f} +datum=WGS84 +units=m +no_defs"
    )


def points_to_cells(lat: np.ndarray, lon: np.ndarray, *, resolution: int) -> np.ndarray:
    """The H3 cell (as a string) of each WGS84 point."""
    to_cell = h3.latlng_to_cell
    return np.array(
        [to_cell(y, x, resolution) for y, x in zip(lat.tolist(), lon.tolist(), strict=True)],
        dtype=object,
    )


def points_to_areas(lon: np.ndarray, lat: np.ndarray, areas: gpd.GeoDataFrame) -> np.ndarray:
    """Index (position) of the area containing each point, -1 where none does.

    A point on a shared boundary goes to the first area in file order, so placement is
    deterministic.
    """
    result = np.full(len(lon), -1, dtype=np.int64)
    if len(lon) == 0:
        return result
    points = shapely.points(lon, lat)
    tree = shapely.STRtree(areas.geometry.values)
    point_idx, area_idx = tree.query(points, predicate="intersects")
    if len(point_idx):
        order = np.lexsort((area_idx, point_idx))
        point_idx, area_idx = point_idx[order], area_idx[order]
        first = np.r_[True, point_idx[1:] != point_idx[:-1]]
        result[point_idx[first]] = area_idx[first]
    return result


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
            edge_polys = np.array([_polygons_only(g) for g in edge_polys], dtype=object)
        cells = np.concatenate([full_cells, edge_cells])
        polys = np.concatenate([full_polys, edge_polys])
        area = shapely.area(polys) if len(polys) else np.array([])
        keep = area > 0
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


def _polygons_only(geom: shapely.Geometry) -> shapely.Geometry:
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, shapely.Polygon)]
    return shapely.MultiPolygon(parts) if parts else shapely.Polygon()


def overlay_weights(
    sources: gpd.GeoSeries,
    fragments: gpd.GeoDataFrame,
    *,
    raster_weights: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Share of each source polygon that falls in each fragment: `source, fragment, weight`.

    `sources` and `fragments` share an equal-area CRS. Weights are surface shares, or, when
    `raster_weights` (x, y, value of raster cell centres in the same CRS) is given, raster mass
    shares, falling back to surface shares for sources no raster cell centre falls in. A source's
    weights sum to at most 1; the rest lies outside every area. Overlapping areas would count a
    piece twice, so a source whose weights exceed 1 is scaled back to 1. A source with no surface
    (a degenerate polygon) goes wholly to the fragment under its representative point.
    """
    src_geoms = sources.values
    frag_geoms = fragments.geometry.values
    tree = shapely.STRtree(frag_geoms)
    src_idx, frag_idx = tree.query(src_geoms, predicate="intersects")
    pieces = shapely.intersection(src_geoms[src_idx], frag_geoms[frag_idx])
    piece_area = shapely.area(pieces)
    src_area = shapely.area(src_geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(src_area[src_idx] > 0, piece_area / src_area[src_idx], 0.0)
    keep = weight > 0
    pairs = pd.DataFrame(
        {"source": src_idx[keep], "fragment": frag_idx[keep], "weight": weight[keep]}
    )
    if raster_weights is not None and len(pairs):
        pairs = _raster_shares(pairs, pieces[keep], src_geoms, raster_weights)

    degenerate = np.flatnonzero(src_area <= 0)
    if len(degenerate):
        points = shapely.point_on_surface(src_geoms[degenerate])
        p_idx, f_idx = tree.query(points, predicate="intersects")
        first = pd.DataFrame({"p": p_idx, "f": f_idx}).drop_duplicates("p")
        extra = pd.DataFrame(
            {
                "source": degenerate[first["p"].to_numpy()],
                "fragment": first["f"].to_numpy(),
                "weight": 1.0,
            }
        )
        pairs = pd.concat([pairs, extra], ignore_index=True)

    totals = pairs.groupby("source")["weight"].transform("sum").to_numpy()
    pairs["weight"] = np.where(
        totals > 1.0, pairs["weight"].to_numpy() / totals, pairs["weight"].to_numpy()
    )
    return pairs


def _raster_shares(
    pairs: pd.DataFrame,
    pieces: np.ndarray,
    src_geoms: np.ndarray,
    raster_weights: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> pd.DataFrame:
    """Replace surface shares by raster-mass shares where the raster has mass in the source."""
    x, y, value = raster_weights
    points = shapely.points(x, y)
    piece_tree = shapely.STRtree(pieces)
    pt, pc = piece_tree.query(points, predicate="within")
    piece_mass = np.bincount(pc, weights=value[pt], minlength=len(pieces))
    src_tree = shapely.STRtree(src_geoms)
    pt2, sc = src_tree.query(points, predicate="within")
    src_mass = np.bincount(sc, weights=value[pt2], minlength=len(src_geoms))
    total = src_mass[pairs["source"].to_numpy()]
    has_mass = total > 0
    out = pairs.copy()
    out["weight"] = np.where(has_mass, piece_mass / np.where(has_mass, total, 1.0), out["weight"])
    return out[out["weight"] > 0].reset_index(drop=True)


def allocate_to_fragments(
    pairs: pd.DataFrame, values: pd.DataFrame, *, source_col: str = "source"
) -> tuple[pd.DataFrame, pd.Series]:
    """Spread per-source values over fragments by the pair weights.

    `values` has a `source_col` column (source position) and numeric columns. Returns the values
    per (fragment, other key columns) and, per numeric column, the amount left outside every area
    (input minus allocated, so the two always add up to the input).
    """
    numeric = [
        c for c in values.columns if c != source_col and pd.api.types.is_float_dtype(values[c])
    ]
    keys = [c for c in values.columns if c not in numeric and c != source_col]
    merged = values.merge(pairs, left_on=source_col, right_on="source", how="inner")
    for c in numeric:
        merged[c] = merged[c].to_numpy() * merged["weight"].to_numpy()
    allocated = (
        merged.groupby(["fragment", *keys], sort=True, observed=True)[numeric].sum().reset_index()
    )
    unallocated = values[numeric].sum() - allocated[numeric].sum()
    return allocated, unallocated


def raster_to_points(path: str, *, crs: pyproj.CRS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres of a raster's positive cells in `crs`, with their values (weights)."""
    import rasterio

    with rasterio.open(path) as src:
        band = src.read(1, masked=True).astype(float)
        rows, cols = np.nonzero(np.ma.filled(band, 0.0) > 0)
        values = np.asarray(band[rows, cols], dtype=float)
        xs, ys = rasterio.transform.xy(src.transform, rows, cols, offset="center")
        transformer = pyproj.Transformer.from_crs(src.crs, crs, always_xy=True)
        x, y = transformer.transform(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
    return np.asarray(x), np.asarray(y), values
