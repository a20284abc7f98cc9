"""Ingest of polygon inputs (targeting.ingest.boundaries): areas, small areas, Watch schemes and
the population raster check. Every reject reason, every fatal message, and rows read = used +
rejected.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio
import shapely
from affine import Affine
from conftest import (
    A_LAT,
    A_LON,
    B_LAT,
    B_LON,
    BNG,
    CODE_A,
    CODE_B,
    FAR_LAT,
    FAR_LON,
    WARD_A_BNG,
    WARD_B_BNG,
    WGS84,
    assert_accounting,
    assert_fatal,
    build_config,
    reasons_by,
    wards_frame,
)
from shapely.geometry import LineString, Point, Polygon, box

from targeting.config import Config
from targeting.errors import InputError
from targeting.ingest import check_raster, read_areas, read_schemes, read_small_areas

# --- areas and small areas --------------------------------------------------------------------


def test_read_areas_recognises_ons_columns_and_rejects_bad_rows(tmp_path: Path) -> None:
    sq = WARD_A_BNG
    frame = gpd.GeoDataFrame(
        {
            "WD13CD": [CODE_A, CODE_B, "", None, CODE_A],
            "WD13NM": ["Alpha", "Tyburn", "x", "x", "x"],
            "LAD_CD": ["L1", "L2", "L1", "L1", "L1"],
            "LAD_NM": ["Birm", "Solihull", "", "", ""],
            "note": ["a", "b", "blank", "null", "dup"],
        },
        geometry=[sq, WARD_B_BNG, sq, sq, sq],
        crs=BNG,
    )
    frame.to_file(tmp_path / "areas.gpkg", driver="GPKG")
    config = build_config(tmp_path, {"areas": "areas.gpkg"})
    areas, summary = read_areas(config)
    assert areas["area_code"].tolist() == [CODE_A, CODE_B]
    assert areas["area_name"].tolist() == ["Alpha", "Tyburn"]
    assert areas["parent_code"].tolist() == ["L1", "L2"]
    assert areas["parent_name"].tolist() == ["Birm", "Solihull"]
    assert areas.crs.to_epsg() == 4326
    assert summary.rows_read == 5 and summary.rows_used == 2
    assert reasons_by(summary, "note") == {
        "blank": "missing area_code",
        "null": "missing area_code",
        "dup": "duplicate area_code (same outline)",
    }
    assert "geometry" not in summary.rejects.columns
    assert_accounting(summary)


@pytest.mark.parametrize(
    ("geometry", "problem"),
    [(None, "has no geometry"), (Polygon(), "has an empty geometry"),
     (Point(401500, 286500), "is a Point, not a polygon")],
)  # fmt: skip
def test_an_area_without_a_polygon_stops_naming_it(
    tmp_path: Path, geometry: object, problem: str
) -> None:
    """An area with no outline would drop out of the ranking and send its sign-ups to the
    rejects as "outside areas": the run stops instead."""
    gpd.GeoDataFrame(
        {"WD13CD": [CODE_A, CODE_B]}, geometry=[WARD_A_BNG, geometry], crs=BNG
    ).to_file(tmp_path / "areas.gpkg", driver="GPKG")
    with pytest.raises(InputError) as info:
        read_areas(build_config(tmp_path, {"areas": "areas.gpkg"}))
    assert_fatal(info, tmp_path / "areas.gpkg", f"area {CODE_B} (feature 2)", problem)


def test_a_code_with_two_outlines_stops_or_is_merged(tmp_path: Path) -> None:
    west = box(401000, 286000, 401500, 287000)
    east = box(401500, 286000, 402000, 287000)
    gpd.GeoDataFrame(
        {"WD13CD": [CODE_A, CODE_B, CODE_B], "WD13NM": ["Alpha", "Tyburn", "Tyburn east"]},
        geometry=[WARD_A_BNG, west, east],
        crs=BNG,
    ).to_file(tmp_path / "areas.gpkg", driver="GPKG")
    with pytest.raises(InputError) as info:
        read_areas(build_config(tmp_path, {"areas": "areas.gpkg"}))
    assert_fatal(
        info,
        tmp_path / "areas.gpkg",
        f"1 code(s) have different outlines: {CODE_B} (features 2, 3)",
        "[areas] merge_duplicates = true",
    )
    areas, summary = read_areas(
        build_config(tmp_path, {"areas": "areas.gpkg"}, areas={"merge_duplicates": True})
    )
    assert areas["area_code"].tolist() == [CODE_A, CODE_B]
    merged = areas.to_crs(BNG).geometry.iloc[1]
    assert merged.area == pytest.approx(1_000_000, rel=1e-6)  # both halves of ward B
    assert summary.reasons() == {"merged into the first row of its area_code": 1}
    assert "1 area code(s) with several outlines merged into one" in summary.warnings
    assert_accounting(summary)


def test_areas_with_z_coordinates_are_read_flat(tmp_path: Path) -> None:
    """3D outlines (a Z per vertex, as some GIS exports write) are read with Z dropped."""
    three_d = [shapely.force_3d(WARD_A_BNG, 120.0), shapely.force_3d(WARD_B_BNG, 95.5)]
    gpd.GeoDataFrame({"WD13CD": [CODE_A, CODE_B]}, geometry=three_d, crs=BNG).to_file(
        tmp_path / "areas.gpkg", driver="GPKG"
    )
    areas, summary = read_areas(build_config(tmp_path, {"areas": "areas.gpkg"}))
    assert not areas.geometry.has_z.any()
    assert areas.to_crs(BNG).geometry.iloc[0].hausdorff_distance(WARD_A_BNG) < 0.01
    assert summary.rows_used == 2


def test_read_areas_column_mapping_and_repairs(tmp_path: Path) -> None:
    bow_tie = Polygon([(-2.0, 52.0), (-1.98, 52.02), (-1.98, 52.0), (-2.0, 52.02), (-2.0, 52.0)])
    gpd.GeoDataFrame(
        {"ward": ["W1", "W2"], "ward name": ["One", "Two"]},
        geometry=[bow_tie, box(-1.97, 52.0, -1.96, 52.01)],
        crs=WGS84,
    ).to_file(tmp_path / "areas.geojson", driver="GeoJSON")
    config = build_config(
        tmp_path, columns={"areas": {"area_code": "ward", "area_name": "ward name"}}
    )
    areas, summary = read_areas(config)
    assert areas["area_code"].tolist() == ["W1", "W2"]  # the bow tie is repaired, not dropped
    assert areas["area_name"].tolist() == ["One", "Two"]
    assert areas.geometry.is_valid.all()
    assert summary.rows_used == 2 and summary.rows_rejected == 0
    assert "1 invalid area polygon(s) repaired with make_valid" in summary.warnings


def test_read_areas_without_names_uses_codes_and_warns(tmp_path: Path) -> None:
    wards_frame()[["WD13CD", "geometry"]].to_file(tmp_path / "areas.geojson", driver="GeoJSON")
    areas, summary = read_areas(build_config(tmp_path))
    assert areas["area_name"].tolist() == [CODE_A, CODE_B]
    assert "areas have no name column; area codes are used as names" in summary.warnings


def test_read_areas_missing_code_column_is_fatal_with_the_fix(tmp_path: Path) -> None:
    wards_frame()[["WD13NM", "geometry"]].to_file(tmp_path / "areas.geojson", driver="GeoJSON")
    with pytest.raises(InputError) as info:
        read_areas(build_config(tmp_path))
    assert_fatal(
        info,
        tmp_path / "areas.geojson",
        "column 'area_code': is missing",
        '[columns.areas] area_code = "Your column name"',
    )


def test_read_areas_mapped_column_absent_names_the_mapping(tmp_path: Path) -> None:
    wards_frame().to_file(tmp_path / "areas.geojson", driver="GeoJSON")
    config = build_config(tmp_path, columns={"areas": {"area_code": "WARD_ID"}})
    with pytest.raises(InputError) as info:
        read_areas(config)
    assert_fatal(info, tmp_path / "areas.geojson", "'WARD_ID', as mapped in [columns.areas]")


def test_read_areas_all_rejected_is_fatal(tmp_path: Path) -> None:
    gpd.GeoDataFrame({"WD13CD": ["", ""]}, geometry=[WARD_A_BNG, WARD_B_BNG], crs=BNG).to_file(
        tmp_path / "areas.gpkg", driver="GPKG"
    )
    with pytest.raises(InputError) as info:
        read_areas(build_config(tmp_path, {"areas": "areas.gpkg"}))
    assert_fatal(
        info,
        tmp_path / "areas.gpkg",
        "no usable rows: missing area_code (2 rows)",
        "check the area codes and geometry",
    )


def test_read_small_areas_rejects_and_households(tmp_path: Path) -> None:
    a = box(400000, 286000, 400500, 286500)
    gpd.GeoDataFrame(
        {
            "OA11CD": ["OA1", "OA2", "", None, "OA1", "OA5", "OA6"],
            "households": [100, 40, 1, 1, 1, 1, -5],
            "note": ["ok1", "ok2", "blank", "null", "dup", "line", "neg"],
        },
        geometry=[a, WARD_B_BNG, a, a, a, LineString([(400000, 286000), (401000, 287000)]), a],
        crs=BNG,
    ).to_file(tmp_path / "oa.gpkg", driver="GPKG")
    config = build_config(tmp_path, {"small_areas": "oa.gpkg"})
    small, summary = read_small_areas(config)
    assert small is not None and summary is not None
    assert small["area_code"].tolist() == ["OA1", "OA2"]
    assert small["households"].tolist() == [100.0, 40.0]
    assert small.crs.to_epsg() == 4326
    assert reasons_by(summary, "note") == {
        "blank": "missing area_code",
        "null": "missing area_code",
        "dup": "duplicate area_code (same outline)",
        "line": "missing or non-polygon geometry",
        "neg": "negative households",
    }
    assert summary.rows_read == 7 and summary.rows_used == 2
    assert_accounting(summary)


def test_read_small_areas_not_configured(tmp_path: Path) -> None:
    assert read_small_areas(build_config(tmp_path)) == (None, None)


def test_read_small_areas_duplicate_counted_only_among_valid_rows(tmp_path: Path) -> None:
    a = box(400000, 286000, 400500, 286500)
    gpd.GeoDataFrame(
        {
            "OA11CD": ["OA1", "OA1", "OA2", "OA2"],
            "households": [7, 30, 40, 41],
            "note": ["line first", "usable second", "ok", "dup"],
        },
        geometry=[LineString([(400000, 286000), (401000, 287000)]), a, WARD_B_BNG, WARD_B_BNG],
        crs=BNG,
    ).to_file(tmp_path / "oa.gpkg", driver="GPKG")
    small, summary = read_small_areas(build_config(tmp_path, {"small_areas": "oa.gpkg"}))
    assert small is not None and summary is not None
    assert small["area_code"].tolist() == ["OA1", "OA2"]
    assert small["households"].tolist() == [30.0, 40.0]  # OA1 from its second, usable row
    assert reasons_by(summary, "note") == {
        "line first": "missing or non-polygon geometry",
        "dup": "duplicate area_code (same outline)",
    }
    assert_accounting(summary)


# --- schemes ----------------------------------------------------------------------------------


def test_schemes_points_and_polygons(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    a_small = box(A_LON - 0.001, A_LAT - 0.001, A_LON + 0.001, A_LAT + 0.001)
    gpd.GeoDataFrame(
        {
            "scheme_id": ["S1", "S2", "S1", "S3", "S4", "", "S6", "S7", None],
            "name": ["Elm Road", "High St", "x", "x", "x", "x", "x", "x", "x"],
            "type": [
                "Neighbourhood",
                "Street",
                "street",
                "street",
                "street",
                "street",
                "street",
                "street",
                "street",
            ],
            "households": [50, 10, 5, -3, 5, 5, 5, None, 5],
            "members": [12, 3, 1, 1, 1, 1, 1, 1, 1],
            "note": [
                "poly",
                "point",
                "dup",
                "neg",
                "far",
                "blank",
                "line",
                "no households",
                "null",
            ],
        },
        geometry=[
            a_small,
            Point(B_LON, B_LAT),
            a_small,
            a_small,
            Point(FAR_LON, FAR_LAT),
            a_small,
            LineString([(A_LON, A_LAT), (B_LON, B_LAT)]),
            a_small,
            a_small,
        ],
        crs=WGS84,
    ).to_file(tmp_path / "schemes.geojson", driver="GeoJSON")
    config = build_config(tmp_path, {"schemes": "schemes.geojson"})
    schemes, summary = read_schemes(config, areas=areas)
    assert schemes is not None and summary is not None
    assert schemes["scheme_id"].tolist() == ["S1", "S2"]
    assert schemes["scheme_name"].tolist() == ["Elm Road", "High St"]
    assert schemes["scheme_type"].tolist() == ["neighbourhood", "street"]
    assert schemes["households"].tolist() == [50.0, 10.0]
    assert schemes["members"].tolist() == [12.0, 3.0]
    assert schemes.geometry.geom_type.tolist() == ["Polygon", "Point"]  # the point stays a point
    assert reasons_by(summary, "note") == {
        "dup": "duplicate scheme_id",
        "neg": "households not a non-negative number",
        "far": "outside areas",
        "blank": "missing scheme_id",
        "line": "missing or unsupported geometry",
        "no households": "households not a non-negative number",
        "null": "missing scheme_id",
    }
    assert summary.rows_read == 9 and summary.rows_used == 2
    assert_accounting(summary)


def test_schemes_missing_households_column_is_fatal(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    gpd.GeoDataFrame({"scheme_id": ["S1"]}, geometry=[Point(A_LON, A_LAT)], crs=WGS84).to_file(
        tmp_path / "schemes.geojson", driver="GeoJSON"
    )
    config = build_config(tmp_path, {"schemes": "schemes.geojson"})
    with pytest.raises(InputError) as info:
        read_schemes(config, areas=areas)
    assert_fatal(
        info,
        tmp_path / "schemes.geojson",
        "column 'households': is missing",
        "[columns.schemes] households",
    )


def test_schemes_not_configured(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    assert read_schemes(build_config(tmp_path), areas=areas) == (None, None)


def test_schemes_duplicate_counted_only_among_valid_rows(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    a_small = box(A_LON - 0.001, A_LAT - 0.001, A_LON + 0.001, A_LAT + 0.001)
    gpd.GeoDataFrame(
        {
            "scheme_id": ["S1", "S1", "S2", "S2"],
            "households": [-3, 20, 8, 9],
            "note": ["negative first", "usable second", "ok", "dup"],
        },
        geometry=[a_small, Point(B_LON, B_LAT), a_small, a_small],
        crs=WGS84,
    ).to_file(tmp_path / "schemes.geojson", driver="GeoJSON")
    schemes, summary = read_schemes(
        build_config(tmp_path, {"schemes": "schemes.geojson"}), areas=areas
    )
    assert schemes is not None and summary is not None
    assert schemes["scheme_id"].tolist() == ["S1", "S2"]
    assert schemes["households"].tolist() == [20.0, 8.0]  # S1 from its second, usable row
    assert schemes.geometry.geom_type.tolist() == ["Point", "Polygon"]
    assert reasons_by(summary, "note") == {
        "negative first": "households not a non-negative number",
        "dup": "duplicate scheme_id",
    }
    assert summary.rows_read == 4 and summary.rows_used == 2
    assert_accounting(summary)


@pytest.mark.parametrize(("radius", "kept"), [(200, True), (50, False), (120, True), (80, False)])
def test_scheme_point_counts_as_inside_when_its_circle_reaches_an_area(
    tmp_path: Path, areas: gpd.GeoDataFrame, radius: float, kept: bool
) -> None:
    # 100 m south of ward A's southern edge (y 286000), over 500 m from ward B: outside both;
    # 120 and 80 m check the radius is taken in metres, as given
    to_wgs84 = pyproj.Transformer.from_crs(BNG, WGS84, always_xy=True)
    lon, lat = to_wgs84.transform(400500, 285900)
    gpd.GeoDataFrame(
        {"scheme_id": ["S1"], "households": [12]}, geometry=[Point(lon, lat)], crs=WGS84
    ).to_file(tmp_path / "schemes.geojson", driver="GeoJSON")
    config = build_config(
        tmp_path, {"schemes": "schemes.geojson"}, schemes={"point_radius_m": radius}
    )
    schemes, summary = read_schemes(config, areas=areas)
    assert schemes is not None and summary is not None
    if kept:
        assert schemes["scheme_id"].tolist() == ["S1"]
        assert schemes.geometry.geom_type.tolist() == ["Point"]  # kept as given, not the circle
        assert summary.rows_rejected == 0
    else:
        assert schemes.empty
        assert reasons_by(summary, "scheme_id") == {"S1": "outside areas"}
    assert_accounting(summary)


# --- population raster ------------------------------------------------------------------------


def write_geotiff(path: Path, *, crs: str | None, width: int = 3, height: int = 2) -> Path:
    """A one-band float GeoTIFF of 100 m cells with its corner at ward A's north-west corner."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="float32",
        crs=crs,
        transform=Affine(100, 0, 400000, 0, -100, 287000),
    ) as dst:
        dst.write(np.ones((1, height, width), dtype="float32"))
    return path


def raster_config(tmp_path: Path) -> Config:
    return build_config(tmp_path, {"population_raster": "pop.tif"})


def test_check_raster_valid_geotiff_counts_its_cells(tmp_path: Path) -> None:
    write_geotiff(tmp_path / "pop.tif", crs=BNG, width=3, height=2)
    summary = check_raster(raster_config(tmp_path))
    assert summary is not None
    assert summary.name == "population_raster"
    assert summary.files == (tmp_path / "pop.tif",)
    assert summary.rows_read == 6 and summary.rows_used == 6  # 3 x 2 cells
    assert summary.rows_rejected == 0
    assert_accounting(summary)


def test_check_raster_missing_file_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        check_raster(raster_config(tmp_path))
    assert_fatal(info, tmp_path / "pop.tif", "missing or empty", "check inputs.population_raster")


def test_check_raster_empty_file_is_fatal(tmp_path: Path) -> None:
    (tmp_path / "pop.tif").write_bytes(b"")
    with pytest.raises(InputError) as info:
        check_raster(raster_config(tmp_path))
    assert_fatal(info, tmp_path / "pop.tif", "missing or empty", "check inputs.population_raster")


def test_check_raster_without_crs_is_fatal(tmp_path: Path) -> None:
    write_geotiff(tmp_path / "pop.tif", crs=None)
    with pytest.raises(InputError) as info:
        check_raster(raster_config(tmp_path))
    assert_fatal(info, tmp_path / "pop.tif", "declares no CRS", "save the GeoTIFF with its CRS")


def test_check_raster_corrupt_file_is_fatal(tmp_path: Path) -> None:
    (tmp_path / "pop.tif").write_text("not a GeoTIFF\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        check_raster(raster_config(tmp_path))
    assert_fatal(info, tmp_path / "pop.tif", "cannot be read (", "save it as a GeoTIFF")


def test_check_raster_not_configured(tmp_path: Path) -> None:
    assert check_raster(build_config(tmp_path)) is None
