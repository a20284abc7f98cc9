"""The demo city's streets: a synthetic, named street network so that the officers' map shows
streets on a fresh machine. A slightly turned lattice of roads about every 180 m across the
city, each road cut into lengths of about 700 m that carry their own made-up names."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from targeting.demo.geography import _City

SPACING_M = 180.0
PIECE_M = 700.0
TURN_DEGREES = 12.0
_FIRST = (
    "Acacia", "Alder", "Ash", "Aspen", "Beech", "Birch", "Blackthorn", "Bramble", "Cedar",
    "Chestnut", "Clover", "Elder", "Elm", "Fern", "Hawthorn", "Hazel", "Heather", "Holly",
    "Hornbeam", "Ivy", "Juniper", "Larch", "Laurel", "Lime", "Linden", "Maple", "Meadow",
    "Mulberry", "Oak", "Orchard", "Pine", "Poplar", "Primrose", "Rowan", "Sycamore", "Thistle",
    "Walnut", "Willow", "Yew", "Foxglove",
)  # fmt: skip
_SUFFIX = ("Road", "Street", "Avenue", "Lane", "Grove", "Close", "Way", "Crescent", "Drive",
           "Gardens", "Terrace")  # fmt: skip


def city_streets(city: _City) -> gpd.GeoDataFrame:
    """Named street lines over the city (`name, geometry`, EPSG:27700), clipped to its outline;
    the same city gives the same streets."""
    minx, miny, maxx, maxy = city.outline.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = max(maxx - minx, maxy - miny) * 0.75
    offsets = np.arange(-half, half + SPACING_M, SPACING_M)
    starts = np.arange(-half, half, PIECE_M)
    # pieces of each lattice line, in the lattice's own frame: (offset, start) for both ways
    grid_off, grid_start = np.meshgrid(offsets, starts, indexing="ij")
    off, start = grid_off.ravel(), grid_start.ravel()
    ends = start + PIECE_M
    eastward = np.stack([np.c_[start, off], np.c_[ends, off]], axis=1)
    northward = np.stack([np.c_[off, start], np.c_[off, ends]], axis=1)
    pieces = np.concatenate([eastward, northward])
    turn = np.radians(TURN_DEGREES)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    turned = pieces @ rotation.T + np.array([cx, cy])
    lines = shapely.intersection(shapely.linestrings(turned), city.outline)
    keep = ~shapely.is_empty(lines) & (shapely.length(lines) > 20)
    number = np.arange(len(pieces))[keep]
    names = np.array([f"{_FIRST[i % len(_FIRST)]} {_SUFFIX[(i // len(_FIRST)) % len(_SUFFIX)]}"
                      for i in range(len(_FIRST) * len(_SUFFIX))])  # fmt: skip
    # neighbouring pieces get different names: a stride through the name list
    return gpd.GeoDataFrame(
        {"name": names[(number * 37) % len(names)]}, geometry=lines[keep], crs="EPSG:27700"
    )
