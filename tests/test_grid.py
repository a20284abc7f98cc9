"""Grid: H3 indexing, point-in-area, fragments and mass-preserving allocation."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from targeting.grid import (
    allocate_to_fragments,
    areas_to_fragments,
    equal_area_crs,
    overlay_weights,
    points_to_areas,
    points_to_cells,
)

BNG = "EPSG:27700"


def _areas() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"area_code": ["A", "B"]},
        geometry=[box(400000, 286000, 401000, 287000), box(401000, 286000, 402000, 287000)],
        crs=BNG,
    ).to_crs("EPSG:4326")


def test_points_to_cells_matches_h3_known_answer() -> None:
    # the example in h3's documentation
    cells = points_to_cells(np.array([37.3615593]), np.array([-122.0553238]), resolution=5)
    assert cells.tolist() == ["85283473fffffff"]


def test_points_to_areas_inside_outside_and_shared_boundary() -> None:
    areas = gpd.GeoDataFrame(
        {"area_code": ["A", "B"]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs="EPSG:4326"
    )
    idx = points_to_areas(np.array([0.5, 1.5, 1.0, 5.0]), np.array([0.5, 0.5, 0.5, 5.0]), areas)
    # the point on the shared edge goes to the first area in file order
    assert idx.tolist() == [0, 1, 0, -1]


def test_fragments_tile_each_area_exactly() -> None:
    areas = _areas()
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(areas, resolution=9, crs=crs)
    projected = areas.to_crs(crs)
    for code, geom in zip(projected["area_code"], projected.geometry, strict=True):
        own = fragments[fragments["area_code"] == code]
        assert own["area_m2"].sum() == pytest.approx(geom.area, rel=1e-6)
        assert own["cell"].is_unique
    # cells on the shared boundary are cut: one fragment per area
    shared = set(fragments.loc[fragments["area_code"] == "A", "cell"]) & set(
        fragments.loc[fragments["area_code"] == "B", "cell"]
    )
    assert shared
    assert all(h3.get_resolution(c) == 9 for c in fragments["cell"])


def _allocate(sources: gpd.GeoSeries, residents: np.ndarray) -> tuple[pd.DataFrame, float]:
    areas = _areas()
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(areas, resolution=9, crs=crs)
    pairs = overlay_weights(sources.to_crs(crs), fragments)
    values = pd.DataFrame(
        {"source": np.arange(len(residents)), "residents": residents.astype(float)}
    )
    allocated, left = allocate_to_fragments(pairs, values)
    allocated = allocated.join(fragments[["area_code"]], on="fragment")
    return allocated, float(left["residents"])


def test_small_area_smaller_than_a_cell_lands_all_its_residents() -> None:
    tiny = gpd.GeoSeries([box(400500, 286700, 400520, 286720)], crs=BNG)
    allocated, left = _allocate(tiny, np.array([12.0]))
    assert allocated["residents"].sum() == pytest.approx(12.0, rel=1e-9)
    assert left == pytest.approx(0.0, abs=1e-9)
    assert set(allocated["area_code"]) == {"A"}


def test_small_area_half_outside_every_area_leaves_half_unallocated() -> None:
    half_out = gpd.GeoSeries([box(400000, 286500, 401000, 287500)], crs=BNG)
    allocated, left = _allocate(half_out, np.array([100.0]))
    # BNG is not equal-area, so the half is a half to about 1e-6
    assert left == pytest.approx(50.0, rel=1e-5)
    assert allocated["residents"].sum() + left == pytest.approx(100.0, rel=1e-12)


def test_small_area_straddling_two_areas_is_split_by_surface() -> None:
    straddle = gpd.GeoSeries([box(400750, 286000, 401250, 287000)], crs=BNG)
    allocated, _ = _allocate(straddle, np.array([80.0]))
    by_area = allocated.groupby("area_code")["residents"].sum()
    assert by_area["A"] == pytest.approx(40.0, rel=1e-5)
    assert by_area["B"] == pytest.approx(40.0, rel=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(399000, 402500),
            st.floats(285500, 287400),
            st.floats(1, 900),
            st.floats(1, 900),
            st.floats(0, 1e5),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_allocation_preserves_mass(boxes: list[tuple[float, float, float, float, float]]) -> None:
    geoms = gpd.GeoSeries([box(x, y, x + w, y + h) for x, y, w, h, _ in boxes], crs=BNG)
    residents = np.array([r for *_, r in boxes])
    allocated, left = _allocate(geoms, residents)
    total = residents.sum()
    assert allocated["residents"].sum() + left == pytest.approx(total, rel=1e-9, abs=1e-9)
    assert left >= -1e-6 * max(total, 1)
    assert (allocated["residents"] >= 0).all()


def test_raster_weights_move_residents_to_where_the_raster_says(tmp_path) -> None:
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from targeting.grid import raster_to_points

    # a 100 m raster over the straddling small area with all weight in its ward-B half
    transform = from_origin(400750.0, 287000.0, 100.0, 100.0)
    data = np.zeros((10, 5), dtype="float32")
    data[:, 3:] = 1.0
    path = tmp_path / "pop.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=10,
        width=5,
        count=1,
        dtype="float32",
        crs=BNG,
        transform=transform,
    ) as dst:
        dst.write(data, 1)
    areas = _areas()
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(areas, resolution=9, crs=crs)
    straddle = gpd.GeoSeries([box(400750, 286000, 401250, 287000)], crs=BNG).to_crs(crs)
    raster = raster_to_points(path, crs=crs, bounds=tuple(areas.total_bounds))
    pairs = overlay_weights(straddle, fragments, raster_weights=raster)
    values = pd.DataFrame({"source": [0], "residents": [80.0]})
    allocated, left = allocate_to_fragments(pairs, values)
    by_area = (
        allocated.join(fragments[["area_code"]], on="fragment")
        .groupby("area_code")["residents"]
        .sum()
    )
    assert by_area.get("A", 0.0) == pytest.approx(0.0, abs=1e-9)
    assert by_area["B"] == pytest.approx(80.0, rel=1e-9)
    assert left["residents"] == pytest.approx(0.0, abs=1e-9)


def test_degenerate_small_area_goes_to_the_fragment_under_it() -> None:
    areas = _areas()
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(areas, resolution=9, crs=crs)
    point = gpd.GeoSeries([box(400500, 286500, 400500, 286500)], crs=BNG).to_crs(crs)
    assert shapely.area(point.values[0]) == 0
    pairs = overlay_weights(point, fragments)
    assert pairs["weight"].sum() == pytest.approx(1.0)
