"""Geofences for officers' phones around the H3 cells chosen for door-knocking and street work.

Officers' devices alert them when they enter an engagement area, so each (area, tactic) group of
selected cells becomes polygons their apps can load. Two rules shape every polygon. It must CONTAIN
every selected cell's whole hexagon: a geofence that clips part of a cell misses the doors there.
And it must have at most `max_vertices` vertices, because devices and mobile-device-management
tools cap polygon size; the extra area that buys is bounded (`max_extra_area`, default 20%) so
officers are not alerted far from the cells. A group is split until both rules hold. Platforms that
only take circles (iOS monitors at most 20 regions per app, Android 100) get one covering circle
per geofence, best-ranked first. Files: GeoJSON (RFC 7946) and hand-written KML 2.2.

Vertex count rule: the distinct vertices of the exterior plus every interior ring, i.e. each
ring's repeated closing point is not counted (a hexagon has 6).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from targeting.grid import equal_area_crs
from targeting.h3cells import cell_centres, cell_resolutions, valid_cells
from targeting.io import WGS84

GEOFENCE_COLUMNS = ["geofence_id", "area_code", "tactic", "rank", "cells", "area_m2", "vertices"]
CIRCLE_COLUMNS = ["geofence_id", "area_code", "tactic", "rank", "latitude", "longitude", "radius_m"]

# Coordinates are published to 6 decimals, which moves a vertex by up to 0.08 m, so each polygon
# first grows by a margin larger than that (small enough for cells down to H3 resolution 13); the
# second value is a retry if rounding still broke containment or validity.
MARGINS_M = (0.15, 0.5)
EARTH_RADIUS_M = 6371008.8
KML_NS = "http://www.opengis.net/kml/2.2"


class _Plane:
    """Lon/lat scaled to metres about one latitude (an affine map of WGS84 degrees).

    Straight edges here are exactly the straight edges of the published WGS84 polygon, so a polygon
    that contains the hexagons in this plane contains them in WGS84 too; only areas are
    approximate, and the area bound is checked again in an equal-area projection.
    """

    def __init__(self, lat0: float) -> None:
        self.kx = math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
        self.ky = math.radians(1) * EARTH_RADIUS_M

    def forward(self, geom: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(geom, lambda xy: xy * [self.kx, self.ky])

    def inverse(self, geom: shapely.Geometry) -> shapely.Geometry:
        """Back to WGS84 degrees, rounded to the 6 decimals that are published."""
        return shapely.transform(geom, lambda xy: np.round(xy / [self.kx, self.ky], 6))


def vertex_count(geoms: np.ndarray | gpd.GeoSeries) -> np.ndarray:
    """Vertices per polygon under the module's rule (closing points not counted)."""
    return shapely.get_num_coordinates(geoms) - 1 - shapely.get_num_interior_rings(geoms)


def _check_selected(selected: pd.DataFrame, max_vertices: int, max_extra_area: float) -> None:
    missing = [c for c in ["cell", "area_code", "tactic", "rank"] if c not in selected.columns]
    if missing:
        raise ValueError(f"selected has no column(s) {missing}")
    if selected[["area_code", "tactic", "rank"]].isna().any().any():
        raise ValueError("selected has blank area_code, tactic or rank; every cell needs all three")
    if max_vertices < 6:
        raise ValueError(f"max_vertices must be at least 6 (one hexagon), not {max_vertices}")
    if not max_extra_area > 0:
        raise ValueError(f"max_extra_area must be above 0, not {max_extra_area}")
    cells = selected["cell"].unique()
    bad = cells[~valid_cells(cells)].tolist()
    if bad:
        raise ValueError(f"{len(bad)} cells are not valid H3 cells, e.g. {bad[:3]!r}")
    if len(set(cell_resolutions(cells).tolist())) > 1:
        raise ValueError("selected cells must all be of one H3 resolution")


def _components(cells: list[str]) -> list[tuple[shapely.Polygon, list[str]]]:
    """Each edge-connected piece of the cells: its outline (WGS84, holes kept) and its cells."""
    outlines = [
        shapely.Polygon([(x, y) for y, x in p.outer], [[(x, y) for y, x in h] for h in p.holes])
        for p in h3.cells_to_h3shape(cells, tight=False)
    ]
    lat, lon = cell_centres(cells)
    points = shapely.points(lon, lat)
    # a centre lies well inside its own cell, so it finds its piece without edge cases
    cell_idx, piece_idx = shapely.STRtree(outlines).query(points, predicate="within")
    return [(o, [cells[i] for i in cell_idx[piece_idx == k]]) for k, o in enumerate(outlines)]


def _candidates(rings: list[np.ndarray]) -> np.ndarray:
    """Every growth-only way to drop vertices: rows of (area added / vertices removed, area added,
    ring, vertex, kind), kind 0 = cut a reflex or straight vertex, 1 = replace an edge by the
    meeting point of its neighbouring edges, 2 = fill a hole. Interior lies left of every ring.
    """
    sizes = np.array([len(p) for p in rings])
    ring = np.repeat(np.arange(len(rings)), sizes)
    first, n = np.repeat(np.cumsum(sizes) - sizes, sizes), sizes[ring]
    pos = np.arange(len(ring)) - first
    p = np.concatenate(rings)
    step = [first + (pos + k) % n for k in (-1, 1, 2)]  # previous, next and next-but-one vertex
    a, b, c = p - p[step[0]], p[step[1]] - p, p[step[2]] - p[step[1]]
    turn = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    # a right turn is a notch: joining its neighbours adds only the notch's triangle
    notch = (turn <= 0) & (n > 3)
    # edge i -> i+1 between two left turns: extend the edges either side until they meet
    denom = a[:, 0] * c[:, 1] - a[:, 1] * c[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]) / denom
    tri = np.abs(s * (b[:, 0] * a[:, 1] - b[:, 1] * a[:, 0])) / 2
    # (s > 0 with denom > 0 also means the next vertex turns left)
    meet = (turn > 0) & (denom > 0) & (s > 0) & (n > 3)
    q = p[step[1]]
    holes = np.abs(np.bincount(ring, p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]) / 2)[1:]  # shoelace
    cost = np.r_[-turn[notch] / 2, tri[meet], holes]
    removed = np.r_[np.ones(notch.sum() + meet.sum()), sizes[1:]]
    which = np.r_[ring[notch], ring[meet], np.arange(1, len(rings))]
    vertex = np.r_[pos[notch], pos[meet], np.zeros(len(holes))]
    kind = np.repeat([0, 1, 2], [notch.sum(), meet.sum(), len(holes)])
    return np.column_stack([cost / removed, cost, which, vertex, kind])


def _apply(rings: list[np.ndarray], r: int, i: int, kind: int) -> list[np.ndarray]:
    """The rings after one step found by _candidates (ring r, vertex i, kind)."""
    out, p = list(rings), rings[r]
    if kind == 2:
        del out[r]
    elif kind == 0:
        out[r] = np.delete(p, i, axis=0)
    else:
        n = len(p)
        a, b, c = p[i] - p[i - 1], p[(i + 1) % n] - p[i], p[(i + 2) % n] - p[(i + 1) % n]
        q = p.copy()
        q[i] = p[i] + a * (b[0] * c[1] - b[1] * c[0]) / (a[0] * c[1] - a[1] * c[0])
        out[r] = np.delete(q, (i + 1) % n, axis=0)
    return out


def _reduce(polygon: shapely.Polygon, max_vertices: int, budget: float) -> shapely.Polygon | None:
    """Grow the polygon, cheapest area per vertex first, until it has at most max_vertices and no
    more than `budget` area; None if that cannot be done. Every step only adds area and must leave
    a valid polygon, so the result contains the input.
    """
    polygon = shapely.orient_polygons(polygon)
    rings = [np.asarray(r.coords)[:-1] for r in [polygon.exterior, *polygon.interiors]]
    while sum(len(p) for p in rings) > max_vertices:
        cands = _candidates(rings)
        cands = cands[polygon.area + cands[:, 1] <= budget]
        for _, _, r, i, kind in cands[np.lexsort((cands[:, 3], cands[:, 2], cands[:, 0]))]:
            trial = _apply(rings, int(r), int(i), int(kind))
            grown = shapely.Polygon(trial[0], trial[1:])
            if grown.is_valid:
                rings, polygon = trial, grown
                break
        else:
            return None
    return shapely.Polygon(rings[0], rings[1:])


def _fit(
    outline: shapely.Polygon, plane: _Plane, to_ea: pyproj.Transformer, cap: int, extra: float
) -> tuple[shapely.Polygon, float] | None:
    """One geofence and its equal-area m2 for one connected outline; None if none meets the rules."""

    def ea_area(geom: shapely.Geometry) -> float:
        return float(shapely.area(shapely.transform(geom, to_ea.transform, interleaved=False)))

    limit = (1 + extra) * ea_area(outline)
    flat = plane.forward(outline)
    for margin in MARGINS_M:
        grown = shapely.buffer(flat, margin, join_style="mitre")
        reduced = _reduce(grown, cap, (1 + extra) * flat.area)
        if reduced is None:
            return None  # a wider margin only adds area
        fence = plane.inverse(reduced)  # still counter-clockwise: the map keeps orientation
        # verify, don't assume: rounding and the plane's approximate areas are checked here
        if fence.is_valid and fence.covers(outline) and (area := ea_area(fence)) <= limit:
            return fence, area
    return None


def _halves(cells: list[str], plane: _Plane) -> list[list[str]]:
    """Split cells at the median of their centres along the cluster's longest (principal) axis."""
    lat, lon = cell_centres(cells)
    xy = np.column_stack([lon, lat]) * [plane.kx, plane.ky]
    xy -= xy.mean(axis=0)
    axis = np.linalg.eigh(xy.T @ xy)[1][:, -1]
    order = np.lexsort((np.array(cells), xy @ axis))
    half = len(cells) // 2
    return [[cells[i] for i in order[:half]], [cells[i] for i in order[half:]]]


def _fences(
    cells: list[str], plane: _Plane, to_ea: pyproj.Transformer, cap: int, extra: float
) -> list[tuple[shapely.Polygon, float, list[str]]]:
    """(geofence, m2, its cells) for one (area, tactic) group: one per connected piece, split if
    a piece cannot meet both rules; a piece split in two may fall apart, so halves start over.
    """
    out = []
    for outline, members in _components(cells):
        fitted = _fit(outline, plane, to_ea, cap, extra)
        if fitted is not None:
            out.append((*fitted, members))
        elif len(members) == 1:
            raise ValueError(
                f"cell {members[0]} cannot be fenced within {cap} vertices and {extra:.0%} extra "
                "area; use coarser cells or looser limits"
            )
        else:
            for half in _halves(members, plane):
                out.extend(_fences(half, plane, to_ea, cap, extra))
    return out


def cells_to_geofences(
    selected: pd.DataFrame, *, max_vertices: int = 100, max_extra_area: float = 0.2
) -> gpd.GeoDataFrame:
    """Geofence polygons (WGS84) around the selected cells, one per connected piece of each
    (area_code, tactic) group, each containing its cells' whole hexagons with at most
    `max_vertices` vertices and at most `max_extra_area` (a fraction) more area than the cells.

    `selected` has columns cell, area_code, tactic and rank (lower is more important); a cell
    listed twice in a group counts once, at its best rank. Output columns: GEOFENCE_COLUMNS plus
    geometry, sorted by rank then geofence_id (numbered in that order, ties broken by area_code,
    tactic and the fence's smallest cell). Invalid cells, missing codes, mixed resolutions or
    limits that one cell cannot meet raise ValueError.
    """
    _check_selected(selected, max_vertices, max_extra_area)
    rows = selected.groupby(["area_code", "tactic", "cell"], sort=True)["rank"].min().reset_index()
    if rows.empty:
        return _geofence_frame([])
    lat, lon = cell_centres(rows["cell"].unique())
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=WGS84)
    to_ea = pyproj.Transformer.from_crs(WGS84, equal_area_crs(points), always_xy=True)
    plane = _Plane(float(lat.min() + lat.max()) / 2)
    records = []
    for (area_code, tactic), group in rows.groupby(["area_code", "tactic"], sort=True):
        cells = group["cell"].tolist()
        # a plain dict: a label lookup on the frame's text index takes a millisecond a fence
        rank_of = dict(zip(cells, group["rank"].tolist(), strict=True))
        for fence, m2, members in _fences(cells, plane, to_ea, max_vertices, max_extra_area):
            best = int(min(rank_of[cell] for cell in members))
            records.append(
                (best, str(area_code), str(tactic), min(members), len(members), m2, fence)
            )
    return _geofence_frame(records)


def _geofence_frame(records: list[tuple]) -> gpd.GeoDataFrame:
    """The output frame from (rank, area_code, tactic, first cell, cells, m2, polygon) records,
    numbered in sorted order so ids follow rank, then area_code, tactic and first cell.
    """
    records = sorted(records, key=lambda rec: rec[:4])
    width = max(4, len(str(len(records))))
    columns = list(zip(*records, strict=True)) or [()] * 7
    geometry = gpd.GeoSeries(list(columns[6]), crs=WGS84)
    ids = [f"GF{k:0{width}d}" for k in range(1, len(records) + 1)]
    return gpd.GeoDataFrame(
        {
            "geofence_id": pd.Series(ids, dtype=str),
            "area_code": pd.Series(columns[1], dtype=str),
            "tactic": pd.Series(columns[2], dtype=str),
            "rank": np.array(columns[0], dtype=np.int64),
            "cells": np.array(columns[4], dtype=np.int64),
            "area_m2": np.array(columns[5], dtype=np.float64),
            "vertices": vertex_count(geometry.values).astype(np.int64),
        },
        geometry=geometry,
    )


def geofences_to_circles(
    geofences: gpd.GeoDataFrame, *, limit: int = 20, min_radius_m: float = 100
) -> pd.DataFrame:
    """One covering circle per geofence for circle-only platforms, the best `limit` by rank.

    The centre is that of shapely's minimum bounding circle in an azimuthal equidistant projection
    at the polygon's centroid (true metres near it), rounded to 6 decimals; the radius is the
    largest geodesic distance from that rounded centre to the outline, at least min_radius_m,
    rounded up to whole metres, so the published circle covers the whole polygon.
    """
    best = geofences.sort_values(["rank", "geofence_id"]).head(max(limit, 0))
    geod = pyproj.Geod(ellps="WGS84")
    lats, lons, radii = [], [], []
    for polygon in best.geometry.to_crs(WGS84):
        c = polygon.centroid
        # the operation `Transformer.from_crs(WGS84, <this aeqd>, always_xy=True)` finds, written
        # out: the same numbers, without a search of PROJ's database (ten milliseconds a fence)
        fwd = pyproj.Transformer.from_pipeline(
            "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
            f"+step +proj=aeqd +lat_0={c.y} +lon_0={c.x} +x_0=0 +y_0=0 +ellps=WGS84"
        )
        ring = shapely.transform(polygon.exterior, fwd.transform, interleaved=False)
        centre = shapely.minimum_bounding_circle(ring).centroid
        lon, lat = (round(v, 6) for v in fwd.transform(centre.x, centre.y, direction="INVERSE"))
        # densified (~10 m) so the check also covers the edges between vertices
        xy = np.asarray(shapely.segmentize(polygon.exterior, 1e-4).coords)
        _, _, dist = geod.inv(np.full(len(xy), lon), np.full(len(xy), lat), xy[:, 0], xy[:, 1])
        lats.append(lat)
        lons.append(lon)
        radii.append(math.ceil(max(min_radius_m, float(np.max(dist)))))
    out = pd.DataFrame(best[["geofence_id", "area_code", "tactic", "rank"]]).reset_index(drop=True)
    out["latitude"], out["longitude"] = lats, lons
    out["radius_m"] = np.array(radii, dtype=np.int64)
    return out[CIRCLE_COLUMNS]


def write_geofences_geojson(geofences: gpd.GeoDataFrame, path: Path | str) -> None:
    """GeoJSON (RFC 7946: WGS84, counter-clockwise exteriors); same input gives the same bytes."""
    pyogrio.write_dataframe(
        geofences.to_crs(WGS84), path, driver="GeoJSON", layer_options={"RFC7946": "YES"}
    )


def _kml_ring(parent: ET.Element, tag: str, ring: shapely.LinearRing) -> None:
    boundary = ET.SubElement(ET.SubElement(parent, tag), "LinearRing")
    text = " ".join(f"{x:.6f},{y:.6f}" for x, y in np.asarray(ring.coords)[:, :2])
    ET.SubElement(boundary, "coordinates").text = text


def write_geofences_kml(geofences: gpd.GeoDataFrame, path: Path | str) -> None:
    """KML 2.2: one Placemark per geofence named by its id, with area_code, tactic, rank and cells
    as ExtendedData. ElementTree escapes every text (area codes come from user files), and there
    is no timestamp, so the same input gives the same bytes.
    """
    root = ET.Element("kml", xmlns=KML_NS)
    document = ET.SubElement(root, "Document")
    ET.SubElement(document, "name").text = "geofences"
    for row in geofences.to_crs(WGS84).itertuples(index=False):
        placemark = ET.SubElement(document, "Placemark")
        ET.SubElement(placemark, "name").text = str(row.geofence_id)
        data = ET.SubElement(placemark, "ExtendedData")
        for field in ("area_code", "tactic", "rank", "cells"):
            ET.SubElement(ET.SubElement(data, "Data", name=field), "value").text = str(
                getattr(row, field)
            )
        polygon = ET.SubElement(placemark, "Polygon")
        _kml_ring(polygon, "outerBoundaryIs", row.geometry.exterior)
        for hole in row.geometry.interiors:
            _kml_ring(polygon, "innerBoundaryIs", hole)
    ET.indent(root)
    Path(path).write_bytes(ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n")
