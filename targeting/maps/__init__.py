"""The map engagement officers open on a laptop or phone, often with no network: one
self-contained HTML page (folium and Leaflet, with Leaflet's script and styles inlined from the
installed `xstatic-leaflet` package) drawn from a finished run's store.

The page carries its data once, compactly: H3 cell outlines as integer offsets from their centres,
and each layer as an array of values over those shared outlines, so ten thousand cells and a
dozen layers stay a few megabytes. Only aggregates are drawn, with the same disclosure control as
the published tables: a withheld value shows as "suppressed", never as 0. Every name from the
inputs is escaped where the page shows it.
"""

from targeting.maps.data import (
    MAP_MAX_CELLS,
    MapData,
    MapTables,
    encode_cells,
    map_cell_resolution,
    map_data,
    map_payload,
    origin_keys,
    read_map_data,
    read_map_tables,
)
from targeting.maps.page import (
    MAP_NAME,
    OfflineMap,
    leaflet_assets,
    map_to_html,
    points_to_map_html,
    script_json,
)

__all__ = [
    "MAP_MAX_CELLS",
    "MAP_NAME",
    "MapData",
    "MapTables",
    "OfflineMap",
    "encode_cells",
    "leaflet_assets",
    "map_cell_resolution",
    "map_data",
    "map_payload",
    "map_to_html",
    "origin_keys",
    "points_to_map_html",
    "read_map_data",
    "read_map_tables",
    "script_json",
]
