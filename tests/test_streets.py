"""The map's streets: kept around the week's visits only, simplified, and packed as steps."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString

from targeting.streets import SCALE, encode_streets, streets_near


def streets_27700() -> gpd.GeoDataFrame:
    """Two named roads 2 km apart in British National Grid metres, and a short lane."""
    return gpd.GeoDataFrame(
        {"name": ["Near Road", "Far Road", "Lane"]},
        geometry=[LineString([(410000, 290000), (411000, 290000)]),
                  LineString([(410000, 292000), (411000, 292000)]),
                  LineString([(410400, 290000), (410400, 290030)])],
        crs="EPSG:27700",
    ).to_crs(4326)  # fmt: skip


def visit_at(x: float, y: float) -> pd.DataFrame:
    point = gpd.GeoSeries([shapely.Point(x, y)], crs="EPSG:27700").to_crs(4326)
    return pd.DataFrame({"latitude": point.y, "longitude": point.x})


def test_streets_are_cut_to_the_neighbourhood_of_the_visits() -> None:
    near = streets_near(streets_27700(), visit_at(410500, 290100), buffer_m=300)
    assert near["name"].tolist() == ["Near Road", "Lane"]  # Far Road is 1.9 km away
    # Near Road is cut to the 300 m around the visit: about 2 x sqrt(300² - 100²) = 566 m
    metres = near.to_crs("EPSG:27700").length
    assert abs(metres.iloc[0] - 2 * np.sqrt(300**2 - 100**2)) < 5
    assert streets_near(streets_27700(), visit_at(410500, 290100).iloc[:0], buffer_m=300).empty


def test_streets_encode_as_steps_with_one_label_per_long_named_piece() -> None:
    near = streets_near(streets_27700(), visit_at(410500, 290100), buffer_m=300)
    packed = encode_streets(near)
    coords = shapely.get_coordinates(near.geometry.to_numpy())
    assert packed["n"] == [2, 2]
    steps = np.asarray(packed["d"]).reshape(-1, 2)
    # first point absolute, the next a step from it: decoding gives the points to 1e-5 degree
    decoded = np.cumsum(steps[:2], axis=0) / SCALE
    assert np.allclose(decoded, coords[:2, ::-1], atol=1e-5)
    assert packed["names"] == ["Near Road"]  # the 30 m lane is too short to label
    assert len(packed["at"]) == 1
