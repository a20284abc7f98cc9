"""The streets the officers' map draws: a force's road layer kept only around the week's hotspots
and station sites, simplified, and packed compactly for the page, so that a map with streets
still opens on a phone with no network."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from targeting.grid import equal_area_crs

SCALE = 100_000  # integers of 1e-5 degree, about a metre: as the map's cells
SIMPLIFY_M = 2.0  # a street drawn within 2 m of where it runs
NAME_MIN_M = 60.0  # a named piece shorter than this gets no label of its own
STREET_COLUMNS = ("name", "geometry")


def streets_near(
    streets: gpd.GeoDataFrame, points: pd.DataFrame, *, buffer_m: float
) -> gpd.GeoDataFrame:
    """The parts of `streets` (`name, geometry`, WGS84) within `buffer_m` of any of `points`
    (`latitude, longitude`), simplified to `SIMPLIFY_M`, as single lines in WGS84."""
    if streets.empty or points.empty:
        return gpd.GeoDataFrame({"name": pd.Series(dtype=object)}, geometry=[], crs="EPSG:4326")
    crs = equal_area_crs(streets)
    spots = gpd.GeoSeries(
        gpd.points_from_xy(points["longitude"], points["latitude"]), crs="EPSG:4326"
    ).to_crs(crs)
    around = shapely.union_all(spots.buffer(buffer_m, quad_segs=8).to_numpy())
    lines = streets.to_crs(crs)
    near = lines.sindex.query(around, predicate="intersects")
    kept = lines.iloc[np.sort(near)]
    clipped = shapely.intersection(kept.geometry.to_numpy(), around)
    simple = shapely.simplify(clipped, SIMPLIFY_M)
    out = gpd.GeoDataFrame({"name": kept["name"].to_numpy()}, geometry=simple, crs=crs)
    out = out.explode(index_parts=False, ignore_index=True)
    out = out[out.geometry.geom_type.eq("LineString") & ~out.geometry.is_empty]
    return out.to_crs("EPSG:4326").reset_index(drop=True)[list(STREET_COLUMNS)]


def encode_streets(streets: gpd.GeoDataFrame) -> dict[str, Any]:
    """Street lines for the page: each line's points as integers of 1e-5 degree, the first
    absolute and the rest as steps from the one before (short numbers), lines one after another
    with their lengths; and one label point per named line of `NAME_MIN_M` or more."""
    if streets.empty:
        return {"n": [], "d": [], "names": [], "at": []}
    coords, line = shapely.get_coordinates(streets.geometry.to_numpy(), return_index=True)
    ints = np.round(coords[:, ::-1] * SCALE).astype(np.int64)  # (lat, lng)
    steps = ints.copy()
    first = np.r_[True, line[1:] != line[:-1]]
    steps[~first] = ints[~first] - ints[np.flatnonzero(~first) - 1]
    lengths = np.bincount(line, minlength=len(streets))
    metres = streets.to_crs(equal_area_crs(streets)).length.to_numpy()
    named = (streets["name"].astype(str).str.len() > 0).to_numpy() & (metres >= NAME_MIN_M)
    middle = shapely.line_interpolate_point(
        streets.geometry.to_numpy()[named], 0.5, normalized=True
    )
    at = np.round(shapely.get_coordinates(middle)[:, ::-1], 5)
    return {
        "n": lengths.tolist(),
        "d": steps.ravel().tolist(),
        "names": streets["name"].astype(str).to_numpy()[named].tolist(),
        "at": at.tolist(),
    }
