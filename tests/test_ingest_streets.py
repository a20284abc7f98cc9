"""Reading a force's road layer for the map: names recognised, lines kept, anything else a
counted reject."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from conftest import BNG, build_config
from shapely.geometry import LineString, Point

from targeting.errors import ConfigError
from targeting.ingest.streets import read_streets


def test_os_open_roads_names_and_lines_are_read_and_points_rejected(tmp_path: Path) -> None:
    roads = gpd.GeoDataFrame(
        {"name1": ["Tyburn Road", None, "Kingsbury Road"]},
        geometry=[LineString([(410000, 290000), (410500, 290200)]),
                  LineString([(410500, 290200), (411000, 290300)]), Point(411000, 290300)],
        crs=BNG,
    )  # fmt: skip
    roads.to_file(tmp_path / "roads.gpkg", driver="GPKG")
    streets, summary = read_streets(build_config(tmp_path, {"streets": "roads.gpkg"}))
    assert streets is not None and summary is not None
    assert streets["name"].tolist() == ["Tyburn Road", ""]  # an unnamed road is drawn unnamed
    assert streets.crs.to_epsg() == 4326
    assert (summary.rows_read, summary.rows_used) == (3, 2)
    assert summary.rejects["reason"].tolist() == ["not a line"]


def test_streets_without_a_name_column_warn_and_still_draw(tmp_path: Path) -> None:
    gpd.GeoDataFrame(
        {"kind": ["A road"]}, geometry=[LineString([(0, 0), (1, 1)])], crs="EPSG:27700"
    ).to_file(tmp_path / "roads.geojson", driver="GeoJSON")
    streets, summary = read_streets(build_config(tmp_path, {"streets": "roads.geojson"}))
    assert streets is not None and summary is not None
    assert streets["name"].tolist() == [""]
    assert summary.warnings == ("streets have no name column: lines drawn without names",)


def test_no_streets_configured_reads_nothing(tmp_path: Path) -> None:
    assert read_streets(build_config(tmp_path)) == (None, None)


def test_map_tiles_must_be_a_url_template(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"map\.tiles"):
        build_config(tmp_path, map={"tiles": "https://tiles.example/{z}/{x}.png"})
    good = build_config(tmp_path, map={"tiles": "https://tiles.example/{z}/{x}/{y}.png"})
    assert good.map.tiles == "https://tiles.example/{z}/{x}/{y}.png"
