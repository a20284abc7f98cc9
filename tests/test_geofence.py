"""Geofences: containment of whole hexagons, the vertex cap, the area bound, circles and files.

Cells are real H3 cells near Birmingham; cluster sizes are known by hand (a disk of radius k has
3k^2 + 3k + 1 cells, a ring of radius k has 6k).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from targeting import geofence
from targeting.geofence import (
    CIRCLE_COLUMNS,
    GEOFENCE_COLUMNS,
    cells_to_geofences,
    geofences_to_circles,
    vertex_count,
    write_geofences_geojson,
    write_geofences_kml,
)
from targeting.grid import equal_area_crs

HOME = h3.latlng_to_cell(52.52, -1.84, 9)  # Sutton Coldfield
AWAY = h3.latlng_to_cell(52.48, -1.90, 9)  # Birmingham centre, ~6 km away
HOSTILE = '<script>&"x"'
GEOD = pyproj.Geod(ellps="WGS84")
KML = "{http://www.opengis.net/kml/2.2}"


def _frame(*groups: tuple[list[str], str, str, int]) -> pd.DataFrame:
    """Rows for (cells, area_code, tactic, first rank) groups, ranks counting up within a group."""
    parts = [
        pd.DataFrame({"cell": cells, "area_code": area, "tactic": tactic}).assign(
            rank=lambda f, r=rank: np.arange(r, r + len(f))
        )
        for cells, area, tactic, rank in groups
    ]
    return pd.concat(parts, ignore_index=True)


def _hexagon(cell: str) -> shapely.Polygon:
    return shapely.Polygon([(x, y) for y, x in h3.cell_to_boundary(cell)])


def _equal_area(geoms: list[shapely.Geometry]) -> np.ndarray:
    series = gpd.GeoSeries(geoms, crs="EPSG:4326")
    return series.to_crs(equal_area_crs(gpd.GeoDataFrame(geometry=series))).area.to_numpy()


def _snake() -> list[str]:
    """A long, one-cell-wide line of cells: its notches cannot all be filled within 20%."""
    return list(h3.grid_path_cells(HOME, h3.latlng_to_cell(52.56, -1.74, 9)))


def _assert_rules(selected: pd.DataFrame, fences: gpd.GeoDataFrame, cap: int, extra: float) -> None:
    """Every rule the module promises, checked independently of how it builds the fences."""
    assert list(fences.columns) == [*GEOFENCE_COLUMNS, "geometry"]
    geoms = fences.geometry.values
    assert shapely.is_valid(geoms).all()
    assert (vertex_count(geoms) <= cap).all()
    assert (fences["vertices"].to_numpy() == vertex_count(geoms)).all()
    coords = shapely.get_coordinates(geoms)
    assert np.array_equal(coords, np.round(coords, 6))
    assert all(shapely.is_ccw(g.exterior) for g in geoms)
    assert not any(shapely.is_ccw(h) for g in geoms for h in g.interiors)
    for (area, tactic), group in selected.groupby(["area_code", "tactic"]):
        mine = fences[(fences["area_code"] == area) & (fences["tactic"] == tactic)]
        cells = group["cell"].unique()
        assert mine["cells"].sum() == len(cells)  # the fences partition the group's cells
        assert mine["rank"].min() == group["rank"].min()
        hexagons = [_hexagon(c) for c in cells]
        for hexagon in hexagons:
            assert shapely.covers(mine.geometry.values, hexagon).any()
        # per fence: against its cell count times the largest nearby hexagon (a looser bound that
        # the true one implies); per group: exactly, since each fence's cells are its own
        hex_m2 = _equal_area(hexagons)
        assert (mine["area_m2"] <= (1 + extra) * mine["cells"] * hex_m2.max() + 1e-6).all()
        union_m2 = _equal_area([shapely.union_all(hexagons)])[0]
        assert mine["area_m2"].sum() <= (1 + extra) * union_m2 * (1 + 1e-9)
        assert np.allclose(mine["area_m2"], _equal_area(list(mine.geometry)), rtol=1e-6)


def test_two_separate_clusters_in_one_area_give_two_geofences() -> None:
    selected = _frame(
        (list(h3.grid_disk(HOME, 1)), "A", "door", 5), (list(h3.grid_disk(AWAY, 1)), "A", "door", 1)
    )
    fences = cells_to_geofences(selected)
    assert len(fences) == 2
    assert fences["cells"].tolist() == [7, 7]
    # AWAY holds the best rank (1), so it comes first and is GF0001
    assert fences["geofence_id"].tolist() == ["GF0001", "GF0002"]
    assert fences["rank"].tolist() == [1, 5]
    assert fences.geometry.iloc[0].contains(shapely.Point(h3.cell_to_latlng(AWAY)[::-1]))
    _assert_rules(selected, fences, 100, 0.2)
    # each fence against exactly its own cells' union
    for fence, centre in zip(fences.geometry, [AWAY, HOME], strict=True):
        union = shapely.union_all([_hexagon(c) for c in h3.grid_disk(centre, 1)])
        fence_m2, union_m2 = _equal_area([fence, union])
        assert union_m2 < fence_m2 <= 1.2 * union_m2


def test_one_contiguous_cluster_gives_one_geofence_at_its_best_rank() -> None:
    selected = _frame((list(h3.grid_disk(HOME, 2)), "A", "door", 3))
    fences = cells_to_geofences(selected)
    assert len(fences) == 1
    assert fences.loc[0, ["geofence_id", "area_code", "tactic", "rank", "cells"]].tolist() == [
        "GF0001",
        "A",
        "door",
        3,
        19,
    ]
    _assert_rules(selected, fences, 100, 0.2)


def test_two_tactics_on_the_same_cells_get_separate_geofences() -> None:
    cells = list(h3.grid_disk(HOME, 1))
    selected = _frame((cells, "A", "street", 0), (cells, "A", "door", 0))
    fences = cells_to_geofences(selected)
    assert len(fences) == 2
    # same rank and area: ordered by tactic
    assert fences["tactic"].tolist() == ["door", "street"]
    assert fences["geofence_id"].tolist() == ["GF0001", "GF0002"]
    assert shapely.equals(fences.geometry.iloc[0], fences.geometry.iloc[1])
    _assert_rules(selected, fences, 100, 0.2)


def test_ids_follow_rank_then_area_and_output_is_deterministic() -> None:
    selected = _frame(
        (list(h3.grid_disk(HOME, 1)), "B", "door", 2),
        (list(h3.grid_disk(AWAY, 1)), "A", "door", 2),
        (list(h3.grid_disk(HOME, 1)), "A", "door", 0),
    )
    before = selected.copy()
    fences = cells_to_geofences(selected)
    pd.testing.assert_frame_equal(selected, before)  # input untouched
    assert fences[["geofence_id", "area_code", "rank"]].values.tolist() == [
        ["GF0001", "A", 0],
        ["GF0002", "A", 2],
        ["GF0003", "B", 2],
    ]
    again = cells_to_geofences(selected.sample(frac=1, random_state=3))
    pd.testing.assert_frame_equal(fences, again)
    assert shapely.equals_exact(fences.geometry.values, again.geometry.values, 0).all()


def test_repeated_cell_counts_once_at_its_best_rank() -> None:
    selected = pd.DataFrame(
        {"cell": [HOME, HOME], "area_code": ["A", "A"], "tactic": ["door", "door"], "rank": [9, 4]}
    )
    fences = cells_to_geofences(selected)
    assert fences[["cells", "rank", "vertices"]].values.tolist() == [[1, 4, 6]]


def test_empty_input_gives_empty_frame_with_the_columns() -> None:
    empty = pd.DataFrame({"cell": [], "area_code": [], "tactic": [], "rank": []})
    fences = cells_to_geofences(empty)
    assert fences.empty
    assert list(fences.columns) == [*GEOFENCE_COLUMNS, "geometry"]
    assert fences.crs == "EPSG:4326"


def test_cheap_hole_is_kept_so_the_unselected_middle_cell_is_outside() -> None:
    selected = _frame((list(h3.grid_ring(HOME, 1)), "A", "door", 0))
    fences = cells_to_geofences(selected)
    assert len(fences) == 1
    fence = fences.geometry.iloc[0]
    assert len(fence.interiors) == 1
    assert not fence.contains(shapely.Point(h3.cell_to_latlng(HOME)[::-1]))
    _assert_rules(selected, fences, 100, 0.2)


def test_containment_is_verified_not_assumed(monkeypatch: pytest.MonkeyPatch) -> None:
    # with no margin, rounding to 6 decimals moves some vertices inwards; the module must notice
    # and retry with the next margin rather than publish a fence that clips a hexagon
    monkeypatch.setattr(geofence, "MARGINS_M", (0.0, 0.25))
    selected = _frame((list(h3.grid_disk(HOME, 2)), "A", "door", 0))
    fences = cells_to_geofences(selected)
    assert len(fences) == 1
    _assert_rules(selected, fences, 100, 0.2)


@pytest.mark.parametrize("cap", [8, 12])
@pytest.mark.parametrize("shape", ["ring", "snake"])
def test_vertex_cap_forces_a_split_that_keeps_every_rule(cap: int, shape: str) -> None:
    cells = list(h3.grid_ring(HOME, 2)) if shape == "ring" else _snake()
    selected = _frame((cells, "A", "door", 0))
    whole = cells_to_geofences(selected)
    assert len(whole) == 1  # the default cap fits it in one piece
    fences = cells_to_geofences(selected, max_vertices=cap)
    assert len(fences) > 1
    _assert_rules(selected, fences, cap, 0.2)


def test_tighter_area_bound_is_respected() -> None:
    selected = _frame((list(h3.grid_disk(HOME, 3)), "A", "door", 0))
    loose = cells_to_geofences(selected, max_vertices=6)
    tight = cells_to_geofences(selected, max_vertices=6, max_extra_area=0.05)
    assert len(loose) == 1
    assert len(tight) > 1
    _assert_rules(selected, tight, 6, 0.05)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_vertices": 5}, "max_vertices"),
        ({"max_extra_area": 0}, "max_extra_area"),
        ({"cell": "not-a-cell"}, "not valid H3"),
        ({"cell": h3.cell_to_parent(HOME, 8)}, "one H3 resolution"),
        ({"area_code": None}, "blank"),
    ],
)
def test_bad_input_is_refused(change: dict, message: str) -> None:
    selected = _frame((list(h3.grid_disk(HOME, 1)), "A", "door", 0))
    options = {k: v for k, v in change.items() if k.startswith("max_")}
    for column in set(change) - set(options):
        selected.loc[0, column] = change[column]
    with pytest.raises(ValueError, match=message):
        cells_to_geofences(selected, **options)


@settings(max_examples=30, deadline=None)
@given(
    picks=st.sets(st.integers(0, 60), min_size=1, max_size=30),
    split=st.integers(0, 60),
    cap=st.sampled_from([6, 8, 12, 30, 100]),
    extra=st.sampled_from([0.1, 0.2]),
)
def test_any_cell_set_is_contained_capped_and_bounded(
    picks: set[int], split: int, cap: int, extra: float
) -> None:
    disk = sorted(h3.grid_disk(HOME, 4))  # 61 cells
    chosen = sorted(picks)
    selected = pd.DataFrame(
        {
            "cell": [disk[i] for i in chosen],
            "area_code": ["A" if i < split else "B" for i in chosen],
            "tactic": "door",
            "rank": np.arange(len(chosen))[::-1],
        }
    )
    _assert_rules(
        selected, cells_to_geofences(selected, max_vertices=cap, max_extra_area=extra), cap, extra
    )


def _fences() -> gpd.GeoDataFrame:
    """Three fences, one with a hole, one named by a hostile area code."""
    return cells_to_geofences(
        _frame(
            (list(h3.grid_ring(HOME, 1)), HOSTILE, "door", 0),
            (list(h3.grid_disk(AWAY, 2)), "A&B", "street", 1),
            (_snake(), "C", "door", 2),
        )
    )


def test_circles_cover_every_vertex_with_at_least_the_minimum_radius() -> None:
    fences = _fences()
    circles = geofences_to_circles(fences)
    assert list(circles.columns) == CIRCLE_COLUMNS
    assert circles["geofence_id"].tolist() == fences["geofence_id"].tolist()
    assert circles["radius_m"].dtype == np.int64
    for circle, fence in zip(circles.itertuples(), fences.geometry, strict=True):
        xy = shapely.get_coordinates(fence)
        n = len(xy)
        _, _, dist = GEOD.inv(
            np.full(n, circle.longitude), np.full(n, circle.latitude), xy[:, 0], xy[:, 1]
        )
        assert dist.max() <= circle.radius_m
        assert circle.radius_m >= 100
        # near-minimal: within a metre or two of the smallest circle around the polygon
        c = fence.centroid
        aeqd = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={c.y} +lon_0={c.x} +datum=WGS84")
        local = gpd.GeoSeries([fence], crs="EPSG:4326").to_crs(aeqd).iloc[0]
        assert circle.radius_m <= max(100, shapely.minimum_bounding_radius(local) + 2)
        assert (round(circle.latitude, 6), round(circle.longitude, 6)) == (
            circle.latitude,
            circle.longitude,
        )


def test_circle_for_a_small_cell_is_raised_to_the_minimum_radius() -> None:
    small = h3.latlng_to_cell(52.52, -1.84, 11)  # ~25 m edges
    fences = cells_to_geofences(_frame(([small], "A", "door", 0)))
    assert geofences_to_circles(fences)["radius_m"].tolist() == [100]
    assert geofences_to_circles(fences, min_radius_m=150)["radius_m"].tolist() == [150]


def test_circle_limit_keeps_the_best_ranks() -> None:
    # 25 single cells about 1 km apart, so none touch; ranks reversed against cell order
    cells = [
        h3.latlng_to_cell(52.5 + i / 100, -1.9 + j / 60, 9) for i in range(5) for j in range(5)
    ]
    ranks = list(range(len(cells)))[::-1]
    selected = pd.DataFrame({"cell": cells, "area_code": "A", "tactic": "door", "rank": ranks})
    fences = cells_to_geofences(selected)
    assert len(fences) == len(cells)
    circles = geofences_to_circles(fences)
    assert len(circles) == 20
    assert circles["rank"].tolist() == list(range(20))
    assert geofences_to_circles(fences, limit=3)["rank"].tolist() == [0, 1, 2]


def test_circles_csv_round_trips(tmp_path: Path) -> None:
    from targeting.store import write_csv

    circles = geofences_to_circles(_fences())
    path = tmp_path / "geofences_circles.csv"
    write_csv(circles, path)
    back = pd.read_csv(path, dtype={"area_code": str})
    pd.testing.assert_frame_equal(back, circles, check_dtype=False)


def test_geojson_reads_back_equal_and_is_byte_identical_on_rerun(tmp_path: Path) -> None:
    fences = _fences()
    path = tmp_path / "geofences.geojson"
    write_geofences_geojson(fences, path)
    first = path.read_bytes()
    write_geofences_geojson(fences, path)
    assert path.read_bytes() == first
    back = gpd.read_file(path)
    pd.testing.assert_frame_equal(
        pd.DataFrame(back.drop(columns="geometry")),
        pd.DataFrame(fences.drop(columns="geometry")),
        check_dtype=False,
    )
    assert shapely.equals_exact(back.geometry.values, fences.geometry.values, 0).all()
    assert HOSTILE in set(back["area_code"])


def test_kml_is_read_back_by_gdal_and_xml_parsers(tmp_path: Path) -> None:
    fences = _fences()
    kml, geojson = tmp_path / "geofences.kml", tmp_path / "geofences.geojson"
    write_geofences_kml(fences, kml)
    write_geofences_geojson(fences, geojson)
    first = kml.read_bytes()
    write_geofences_kml(fences, kml)
    assert kml.read_bytes() == first
    assert b"<script>" not in first

    read = pyogrio.read_dataframe(kml)
    assert len(read) == len(fences)
    from_kml = shapely.normalize(shapely.force_2d(read.geometry.values))
    from_json = shapely.normalize(gpd.read_file(geojson).geometry.values)
    assert shapely.equals_exact(from_kml, from_json, 1e-6).all()
    assert any(len(g.interiors) for g in from_kml)

    root = ET.parse(kml).getroot()
    placemarks = root.findall(f"{KML}Document/{KML}Placemark")
    assert [p.findtext(f"{KML}name") for p in placemarks] == fences["geofence_id"].tolist()
    data = [
        {d.get("name"): d.findtext(f"{KML}value") for d in p.iter(f"{KML}Data")} for p in placemarks
    ]
    assert data[0] == {"area_code": HOSTILE, "tactic": "door", "rank": "0", "cells": "6"}
    assert [d["area_code"] for d in data] == fences["area_code"].tolist()
