"""Streets: a road layer the force already holds (OS Open Roads, an OpenStreetMap extract), for
the officers' map only. It reaches no grid count: it lets an officer zoomed in on a hotspot find
the way with no network."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from targeting.config import Config
from targeting.ingest.common import (
    Column,
    FileColumns,
    InputSummary,
    all_rejected,
    first_reason,
    vector_rejects,
)
from targeting.io import read_vector

STREETS = FileColumns(
    "streets",
    # OS Open Roads names a road `name1` (and `name1_lang`, `name2`); OpenStreetMap `name`
    {"name": Column(("name1", "name_1", "road_name", "street", "street_name", "roadname"))},
)


def read_streets(config: Config) -> tuple[gpd.GeoDataFrame | None, InputSummary | None]:
    """Street lines: `name, geometry` in WGS84, the name blank where a road has none (None if
    not configured). Rows without line geometry are rejected, counted."""
    path = config.inputs.streets
    if path is None:
        return None, None
    frame, _ = read_vector(path, input_name="streets")
    cols = STREETS.find(frame, config)
    geoms = np.asarray(frame.geometry.values)
    kind = shapely.get_type_id(geoms)
    lines = (kind == 1) | (kind == 5)  # LineString, MultiLineString
    reasons = np.full(len(frame), "", dtype=object)
    first_reason(reasons, shapely.is_missing(geoms) | shapely.is_empty(geoms), "missing geometry")
    first_reason(reasons, ~lines, "not a line")
    ok = reasons == ""
    rejects = vector_rejects(frame, reasons)
    if not ok.any():
        raise all_rejected("streets", path, rejects, "give street centre lines (LineString)")
    names = (
        frame[cols["name"]].astype("string").fillna("").str.strip().to_numpy(dtype=object)
        if cols["name"]
        else np.full(len(frame), "", dtype=object)
    )
    out = gpd.GeoDataFrame({"name": names[ok]}, geometry=geoms[ok], crs=frame.crs)
    warnings = () if cols["name"] else ("streets have no name column: lines drawn without names",)
    return out, InputSummary("streets", (path,), len(frame), int(ok.sum()), rejects, warnings)
