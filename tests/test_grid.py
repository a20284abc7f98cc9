"""Grid: H3 indexing, point-in-area, fragments and mass-preserving allocation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box
from tiny import REALDATA, needs_realdata

from targeting.background import BackgroundError, Pending, can_fork, in_background
from targeting.config import config_from_dict
from targeting.grid import (
    Grid,
    allocate_to_fragments,
    area_locator,
    areas_to_fragments,
    best_fit_weights,
    build_grid,
    centroid_areas,
    equal_area_crs,
    grid_shapes,
    grid_size,
    home_areas,
    overlay_weights,
    points_to_areas,
    points_to_fragments,
    split_share,
)
from targeting.h3cells import points_to_ids
from targeting.ingest import Population, Signups
from targeting.ingest.deprivation import Deprivation
from targeting.ingest.inputs import Ingested
from targeting.ingest.segments import SegmentInput

BNG = "EPSG:27700"


def _areas() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"area_code": ["A", "B"]},
        geometry=[box(400000, 286000, 401000, 287000), box(401000, 286000, 402000, 287000)],
        crs=BNG,
    ).to_crs("EPSG:4326")


def test_points_to_areas_inside_outside_and_shared_boundary() -> None:
    areas = gpd.GeoDataFrame(
        {"area_code": ["A", "B"]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs="EPSG:4326"
    )
    idx = points_to_areas(np.array([0.5, 1.5, 1.0, 5.0]), np.array([0.5, 0.5, 0.5, 5.0]), areas)
    # the point on the shared edge goes to the first area in file order
    assert idx.tolist() == [0, 1, 0, -1]


def test_locator_places_points_exactly_as_the_outline_test() -> None:
    areas = _areas()
    locator = area_locator(areas, resolution=9)
    assert len(locator.interior) >= 6  # of about 20 cells over the two 1 km2 areas
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = areas.total_bounds
    lon = rng.uniform(minx - 0.005, maxx + 0.005, 20_000)
    lat = rng.uniform(miny - 0.003, maxy + 0.003, 20_000)
    # and points exactly on the shared edge and on the outer edges
    edge = areas.geometry.boundary.union_all()
    on_edge = [edge.interpolate(d, normalized=True) for d in np.linspace(0, 1, 200)]
    lon = np.r_[lon, [p.x for p in on_edge], np.nan]
    lat = np.r_[lat, [p.y for p in on_edge], 52.58]
    expected = points_to_areas(lon, lat, areas)
    assert (expected >= 0).sum() > 1000 and (expected == -1).sum() > 1000
    np.testing.assert_array_equal(points_to_areas(lon, lat, areas, locator=locator), expected)


@needs_realdata
def test_locator_matches_the_outline_test_on_real_wards() -> None:
    wards = gpd.read_file(REALDATA / "boundaries" / "wm_wards_2013.geojson")
    wards["geometry"] = shapely.make_valid(wards.geometry.values)
    locator = area_locator(wards, resolution=9)
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = wards.total_bounds
    lon, lat = rng.uniform(minx, maxx, 100_000), rng.uniform(miny, maxy, 100_000)
    expected = points_to_areas(lon, lat, wards)
    found = points_to_areas(lon, lat, wards, locator=locator)
    np.testing.assert_array_equal(found, expected)
    # most points inside a ward are placed by lookup, with no outline test
    cells = points_to_ids(lat, lon, resolution=9)
    by_lookup = np.isin(cells, locator.interior.index.to_numpy())[expected >= 0].mean()
    assert by_lookup > 0.5


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


def test_best_fit_puts_each_small_area_wholly_in_its_largest_part() -> None:
    areas = _areas()
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(areas, resolution=9, crs=crs)
    sources = gpd.GeoSeries(
        [
            box(400800, 286000, 401300, 287000),  # 40% in A, 60% in B
            box(400000, 286400, 400400, 287400),  # 60% in A, 40% outside every area
            box(399000, 286000, 400200, 286100),  # 1/6 in A, 5/6 outside every area
        ],
        crs=BNG,
    ).to_crs(crs)
    pairs = overlay_weights(sources, fragments)
    home = home_areas(pairs, fragments)
    # a share outside every area competes too: 5/6 outside beats A's sixth
    assert home.to_dict() == {0: "B", 1: "A"}
    fitted = best_fit_weights(pairs, fragments, home)
    values = pd.DataFrame({"source": [0, 1, 2], "residents": [100.0, 60.0, 30.0]})
    allocated, left = allocate_to_fragments(fitted, values)
    by_area = allocated.join(fragments[["area_code"]], on="fragment").groupby("area_code")
    residents = by_area["residents"].sum()
    assert residents["B"] == pytest.approx(100.0, rel=1e-9)
    assert residents["A"] == pytest.approx(60.0 + 5.0, rel=1e-5)
    assert float(left["residents"]) == pytest.approx(25.0, rel=1e-5)
    # still spread over the cells it covers in its own area, never over another area's
    in_b = allocated.join(fragments[["area_code"]], on="fragment").query("area_code == 'B'")
    assert in_b["fragment"].nunique() > 1
    # split by surface, 40 of source 0's 100 residents and none of the others' cross a line
    weight = np.array([100.0, 60.0, 30.0])
    assert split_share(pairs, fragments, home, weight) == pytest.approx(40.0 / 190.0, rel=1e-5)


def _square_with_a_tail() -> shapely.Geometry:
    """500 m x 1 km in A with a 1 km x 100 m tail into B: 5/6 of its surface in A, but the
    widest run across its middle (400400 to 401900) has its midpoint, 401150, in B."""
    return shapely.union(box(400400, 286000, 400900, 287000), box(400900, 286450, 401900, 286550))


def test_centroid_fit_follows_the_point_on_the_surface_not_the_largest_share() -> None:
    areas = _areas()
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(areas, resolution=9, crs=crs)
    sources = gpd.GeoDataFrame(
        geometry=[_square_with_a_tail(), box(403000, 286000, 403100, 286100)], crs=BNG
    ).to_crs("EPSG:4326")
    pairs = overlay_weights(sources.to_crs(crs).geometry, fragments)
    assert home_areas(pairs, fragments).to_dict() == {0: "A"}
    # the second source lies outside every area: it has no fit and keeps its (empty) shares
    fit = centroid_areas(sources, areas, pairs, fragments, largest=home_areas(pairs, fragments))
    assert fit.to_dict() == {0: "B"}
    fitted = best_fit_weights(pairs, fragments, fit)
    values = pd.DataFrame({"source": [0], "residents": [90.0]})
    allocated, left = allocate_to_fragments(fitted, values)
    by_area = allocated.join(fragments[["area_code"]], on="fragment").groupby("area_code")
    assert by_area["residents"].sum().to_dict() == {"B": pytest.approx(90.0, rel=1e-9)}
    assert float(left["residents"]) == pytest.approx(0.0, abs=1e-9)


def test_centroid_fit_falls_back_to_the_largest_share_where_the_point_shares_no_surface() -> None:
    areas = _areas()
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(areas, resolution=9, crs=crs)
    sources = gpd.GeoDataFrame(geometry=[_square_with_a_tail()], crs=BNG).to_crs("EPSG:4326")
    pairs = overlay_weights(sources.to_crs(crs).geometry, fragments)
    # as if B's piece of the source were too thin to keep as a share
    in_a = fragments["area_code"].to_numpy()[pairs["fragment"].to_numpy()] == "A"
    largest = home_areas(pairs[in_a], fragments)
    assert centroid_areas(sources, areas, pairs[in_a], fragments, largest=largest).to_dict() == {
        0: "A"
    }


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
    # what is left outside agrees with the geometry, computed independently in BNG
    union = box(400000, 286000, 402000, 287000)
    outside = np.array([1 - g.intersection(union).area / g.area for g in geoms])
    assert left == pytest.approx(
        float((outside * residents).sum()), rel=1e-4, abs=1e-4 * max(total, 1)
    )
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


def _wgs84_point(x: float, y: float) -> tuple[float, float]:
    """(lat, lon) of a British National Grid point."""
    import pyproj

    lon, lat = pyproj.Transformer.from_crs(BNG, "EPSG:4326", always_xy=True).transform(x, y)
    return lat, lon


def test_points_land_in_their_own_fragment() -> None:
    areas = _areas()
    fragments = areas_to_fragments(areas, resolution=9, crs=equal_area_crs(areas))
    lat, lon = _wgs84_point(400500, 286500)
    idx = points_to_fragments(
        np.array([lat]), np.array([lon]), np.array(["A"]), fragments, resolution=9
    )
    assert fragments["area_code"].iloc[idx[0]] == "A"
    assert fragments["cell"].iloc[idx[0]] == h3.latlng_to_cell(lat, lon, 9)


def test_point_whose_cell_has_no_fragment_of_its_area_goes_to_the_nearest_one() -> None:
    areas = _areas()
    fragments = areas_to_fragments(areas, resolution=9, crs=equal_area_crs(areas))
    lat, lon = _wgs84_point(400990, 286500)  # 10 m inside A, by the edge with B
    cell = h3.latlng_to_cell(lat, lon, 9)
    # as if A's piece of this cell had been too thin to keep
    thin = fragments[~((fragments["cell"] == cell) & (fragments["area_code"] == "A"))]
    thin = thin.reset_index(drop=True)
    idx = points_to_fragments(np.array([lat]), np.array([lon]), np.array(["A"]), thin, resolution=9)
    assert thin["area_code"].iloc[idx[0]] == "A"
    assert thin["cell"].iloc[idx[0]] in h3.grid_disk(cell, 1)


def _grid(
    *,
    areas: gpd.GeoDataFrame | None = None,
    population: pd.DataFrame | None = None,
    keyed_by: str = "areas",
    settings: dict[str, dict[str, object]] | None = None,
    shapes_ahead: bool = False,
    reading: tuple[str, ...] = (),
    **layers: object,
) -> Grid:
    """The grid of two wards (or `areas`), residents keyed by area (or `keyed_by`), no
    sign-ups, and whatever other layers are given (by layer name); with `shapes_ahead`, on
    shapes made by `grid_shapes`, and with the `reading` layers still being read."""
    table = (
        population
        if population is not None
        else pd.DataFrame(
            {"area_code": ["A", "B"], "origin": ["X", "X"], "residents": [600.0, 300.0]}
        )
    )
    signups = pd.DataFrame(
        columns=["latitude", "longitude", "area_code", "status", "origin", "watch_role"]
    ).astype({"latitude": float, "longitude": float})
    data = {
        "areas": areas if areas is not None else _areas(),
        "population": Population(table, keyed_by, tuple(sorted(table["origin"].unique()))),
        "signups": Signups(signups, dt.date(2018, 10, 31)),
        **{name: value for name, value in layers.items() if value is not None},
    }
    config = config_from_dict(
        {"inputs": {"areas": "a", "population": "p", "signups": "s"}, **(settings or {})},
        path=Path("/run.toml"),
    )
    shapes = grid_shapes(data["areas"], data.get("small_areas"), config=config)
    ingested = Ingested(
        {name: value for name, value in data.items() if name not in reading},
        {},
        pending={name: Pending(name=name, value=(data[name], ())) for name in reading},
    )
    return build_grid(ingested, config=config, shapes=shapes if shapes_ahead else None)


def _west_residents(grid: Grid, areas: gpd.GeoDataFrame) -> float:
    """Residents of ward A in fragments wholly west of x = 400400 (BNG)."""
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(areas, resolution=9, crs=crs).to_crs(BNG)
    west = fragments[(fragments.bounds["maxx"] < 400400) & (fragments["area_code"] == "A")]
    keys = set(zip(west["cell"], west["area_code"], strict=True))
    cells = grid.cells
    mask = [(c, a) in keys for c, a in zip(cells["cell"], cells["area_code"], strict=True)]
    return float(cells.loc[mask, "residents"].sum())


def test_area_keyed_population_follows_the_raster(tmp_path) -> None:
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    data = np.zeros((10, 10), dtype="float32")
    data[:, 5:] = 1.0  # all weight in the east half of ward A
    path = tmp_path / "pop.tif"
    with rasterio.open(
        path, "w", driver="GTiff", height=10, width=10, count=1, dtype="float32", crs=BNG,
        transform=from_origin(400000.0, 287000.0, 100.0, 100.0),
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    areas = _areas()
    by_surface = _grid()
    by_raster = _grid(population_raster=path)
    assert _west_residents(by_surface, areas) > 50
    assert _west_residents(by_raster, areas) == pytest.approx(0.0, abs=1e-9)
    # the area figures stay exact either way
    for grid in (by_surface, by_raster):
        totals = grid.cells.groupby("area_code")["residents"].sum()
        assert totals["A"] == pytest.approx(600, rel=1e-12)
        assert totals["B"] == pytest.approx(300, rel=1e-12)
        assert grid.unallocated["residents"] == pytest.approx(0.0, abs=1e-9)


def test_small_area_households_used_when_population_is_keyed_by_areas() -> None:
    small = gpd.GeoDataFrame(
        {"area_code": ["S1", "S2"], "households": [100.0, 40.0]},
        geometry=[box(400000, 286000, 401000, 287000), box(401500, 286500, 402500, 287000)],
        crs=BNG,
    ).to_crs("EPSG:4326")
    grid = _grid(small_areas=small)
    by_area = grid.cells.groupby("area_code")["households"].sum()
    assert by_area["A"] == pytest.approx(100, rel=1e-5)
    assert by_area["B"] == pytest.approx(20, rel=1e-5)  # half of S2 lies east of every area
    assert grid.unallocated["households"] == pytest.approx(20, rel=1e-5)


def test_schemes_ratings_and_absent_inputs() -> None:
    schemes = gpd.GeoDataFrame(
        {"households": [80.0, 30.0], "members": [8.0, 3.0]},
        geometry=[box(400000, 286000, 400500, 287000), shapely.Point(402000, 286500)],
        crs=BNG,
    ).to_crs("EPSG:4326")
    lat, lon = _wgs84_point(400250, 286250)
    ratings = pd.DataFrame(
        {
            "latitude": [lat, lat],
            "longitude": [lon, lon],
            "area_code": ["A", "A"],
            "rating": [4.0, 6.0],
        }
    )
    grid = _grid(schemes=schemes, ratings=ratings, settings={"schemes": {"point_radius_m": 100.0}})
    by_area = grid.cells.groupby("area_code")["watch_households"].sum()
    assert by_area["A"] == pytest.approx(80, rel=1e-5)
    # the point's 100 m circle sits on B's east edge: half of it is outside every area
    assert by_area["B"] == pytest.approx(15, rel=1e-3)
    assert grid.unallocated["watch_households"] == pytest.approx(15, rel=1e-3)
    rated = grid.cells[grid.cells["ratings"].fillna(0) > 0]
    assert len(rated) == 1
    assert rated["mean_rating"].iloc[0] == pytest.approx(5.0)
    assert rated["ratings"].iloc[0] == 2
    # no crimes input: the crime columns are null, not zero
    assert grid.cells["crimes"].isna().all() and grid.cells["asb"].isna().all()


def _nested_world() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """Nine 1 km wards in a 3 x 3 block, each cut into four quarter small areas of 100
    households, and a segment per small area named after its own ward."""
    wards, quarters = [], []
    for i in range(3):
        for j in range(3):
            x, y = 400000 + 1000 * i, 286000 + 1000 * j
            code = f"W{i}{j}"
            wards.append((code, box(x, y, x + 1000, y + 1000)))
            for qi in range(2):
                for qj in range(2):
                    qx, qy = x + 500 * qi, y + 500 * qj
                    quarters.append((f"{code}-{qi}{qj}", code, box(qx, qy, qx + 500, qy + 500)))
    areas = gpd.GeoDataFrame(
        {"area_code": [c for c, _ in wards]}, geometry=[g for _, g in wards], crs=BNG
    ).to_crs("EPSG:4326")
    small = gpd.GeoDataFrame(
        {"area_code": [c for c, _, _ in quarters], "households": 100.0},
        geometry=[g for _, _, g in quarters],
        crs=BNG,
    ).to_crs("EPSG:4326")
    segments = pd.DataFrame(
        {
            "key": [c for c, _, _ in quarters],
            "segment": [f"S-{ward}" for _, ward, _ in quarters],
            "households": 100.0,
        }
    )
    return areas, small, segments


def test_segment_households_land_on_their_own_fragments() -> None:
    """Regression: segments were joined to fragments by row position after the fragment table
    had been re-sorted, so a place carried another place's segment."""
    areas, small, segments = _nested_world()
    population = pd.DataFrame({"area_code": small["area_code"], "origin": "X", "residents": 240.0})
    grid = _grid(
        areas=areas,
        small_areas=small,
        population=population,
        keyed_by="small_areas",
        segments=SegmentInput(segments, "small_areas"),
        settings={"grid": {"small_area_fit": "centroid"}},  # the quarters nest in the wards
    )
    cs = grid.cell_segments
    assert cs is not None and len(cs) > 9
    # every fragment's segment is its own ward's
    assert (cs["segment"] == "S-" + cs["area_code"]).all()
    # and its segment households are its households
    per_fragment = cs.groupby(["cell", "area_code"])["households"].sum()
    households = grid.cells.set_index(["cell", "area_code"])["households"]
    assert per_fragment.reindex(households.index, fill_value=0.0).to_numpy() == pytest.approx(
        households.to_numpy(), rel=1e-9, abs=1e-9
    )
    assert per_fragment.sum() == pytest.approx(3600.0, rel=1e-9)


def test_grid_size_is_surface_over_a_cell_plus_a_ring_of_edge_cells() -> None:
    """A 5 km square at resolution 10: 25 km2 over the cell's 15,048 m2 on average, plus its
    20 km outline over a cell's width (sqrt(3) x the 75.86 m edge), without making a cell; and
    close to the fragments the grid then makes."""
    areas = gpd.GeoDataFrame(
        {"area_code": ["A"]}, geometry=[box(400000, 286000, 405000, 291000)], crs=BNG
    ).to_crs("EPSG:4326")
    size = grid_size(areas, resolution=10)
    cell = h3.average_hexagon_area(10, unit="m^2")
    edge = h3.average_hexagon_edge_length(10, unit="m")
    assert size.total_m2 == pytest.approx(25e6, rel=1e-3)
    assert size.cell_m2 == pytest.approx(cell)
    assert size.cells == int(np.ceil(size.total_m2 / cell + 20_000 / (np.sqrt(3) * edge)))
    fragments = areas_to_fragments(areas, resolution=10, crs=equal_area_crs(areas))
    assert size.cells == pytest.approx(len(fragments), rel=0.1)


def test_deprivation_keyed_by_small_areas_is_their_residents_weighted_mean() -> None:
    """Each small area's residents carry its value: a ward's value is the mean of its quarters'
    values weighted by their residents, computed here by hand; a quarter with no value leaves
    its residents out of the mean (and the warning says how many)."""
    areas, small, _ = _nested_world()
    rng = np.random.default_rng(3)
    residents = rng.integers(50, 500, len(small)).astype(float)
    population = pd.DataFrame(
        {"area_code": small["area_code"], "origin": "X", "residents": residents}
    )
    ranks = pd.Series(rng.integers(1, 32844, len(small)).astype(float), index=small["area_code"])
    ranks.iloc[0] = np.nan  # W00-00 has no value
    table = ranks.dropna().rename("value").rename_axis("area_code").reset_index()
    grid = _grid(
        areas=areas,
        population=population,
        keyed_by="small_areas",
        small_areas=small,
        deprivation=Deprivation(table, "small_areas", "IMD rank", higher_is_more_deprived=False),
        # each quarter wholly in its ward: split shares would leak float slivers across lines
        settings={"grid": {"small_area_fit": "centroid"}},
    )
    sums = grid.cells.groupby("area_code")[
        ["deprivation_residents", "deprivation_sum", "deprivation_need"]
    ].sum()
    ward = small["area_code"].str[:3].to_numpy()
    for code in sums.index:
        mine = (ward == code) & ranks.notna().to_numpy()
        expected = (residents[mine] * ranks.to_numpy()[mine]).sum() / residents[mine].sum()
        got = sums.loc[code, "deprivation_sum"] / sums.loc[code, "deprivation_residents"]
        assert got == pytest.approx(expected, rel=1e-9)
        # a rank counts 1 as most deprived: the need-oriented sum is its negative
        assert sums.loc[code, "deprivation_need"] == pytest.approx(
            -sums.loc[code, "deprivation_sum"]
        )
    share = residents[0] / residents.sum()
    assert any(f"{share:.1%} of residents live where" in w for w in grid.warnings)


def test_deprivation_on_its_own_outlines_follows_the_surface_they_cover() -> None:
    """Outlines of another geography: a fragment's residents take each outline's value by the
    share of its surface the outline covers. Ward A's west half is in a zone of 10 and its east
    half, with all of B, in a zone of 40; residents are spread evenly by surface."""
    zones = gpd.GeoDataFrame(
        {"area_code": ["Z1", "Z2"], "households": np.nan},
        geometry=[box(400000, 286000, 400500, 287000), box(400500, 286000, 402000, 287000)],
        crs=BNG,
    ).to_crs("EPSG:4326")
    table = pd.DataFrame({"area_code": ["Z1", "Z2"], "value": [10.0, 40.0]})
    grid = _grid(
        deprivation=Deprivation(table, "deprivation_areas", "IMD score", True),
        deprivation_areas=zones,
    )
    sums = grid.cells.groupby("area_code")[["deprivation_residents", "deprivation_sum"]].sum()
    value = sums["deprivation_sum"] / sums["deprivation_residents"]
    assert value["A"] == pytest.approx(25.0, rel=1e-6)
    assert value["B"] == pytest.approx(40.0, rel=1e-6)
    assert sums["deprivation_residents"].to_dict() == pytest.approx({"A": 600, "B": 300})
    assert (grid.cells["deprivation_need"] == grid.cells["deprivation_sum"]).all()
    # without the layer its counts are null, not 0
    assert _grid().cells["deprivation_sum"].isna().all()


def test_deprivation_on_coarser_outlines_reaches_each_small_area_by_its_point() -> None:
    """Small areas (quarters) inside the index's own geography (here the wards themselves, as
    OAs sit in LSOAs): each quarter takes the value of the outline holding a point on its
    surface, so every ward gets exactly its own value, weighted by its quarters' residents."""
    areas, small, _ = _nested_world()
    zones = areas.assign(households=np.nan).iloc[1:]  # W00 has no outline: its residents no value
    table = pd.DataFrame({"area_code": zones["area_code"], "value": np.arange(1.0, 9.0)})
    population = pd.DataFrame({"area_code": small["area_code"], "origin": "X", "residents": 100.0})
    grid = _grid(
        areas=areas, population=population, keyed_by="small_areas", small_areas=small,
        deprivation=Deprivation(table, "deprivation_areas", "IMD score", True),
        deprivation_areas=zones, settings={"grid": {"small_area_fit": "centroid"}},
    )  # fmt: skip
    sums = grid.cells.groupby("area_code")[["deprivation_residents", "deprivation_sum"]].sum()
    value = (sums["deprivation_sum"] / sums["deprivation_residents"]).dropna()
    assert value.to_dict() == pytest.approx(table.set_index("area_code")["value"].to_dict())
    assert sums.loc["W00", "deprivation_residents"] == 0
    assert any("11.1% of residents live where" in w for w in grid.warnings)  # 1 ward of 9


@pytest.mark.parametrize("fit", ["split", "best_fit", "centroid"])
def test_shapes_made_ahead_give_the_same_grid(fit: str) -> None:
    """A run makes the fragments and the small areas' weights beside its reading of the other
    inputs (`grid_shapes`): the grid on them is the grid made in one go."""
    areas, small, segments = _nested_world()
    population = pd.DataFrame({"area_code": small["area_code"], "origin": "X", "residents": 240.0})
    grids = [
        _grid(
            areas=areas,
            small_areas=small,
            population=population,
            keyed_by="small_areas",
            segments=SegmentInput(segments, "small_areas"),
            settings={"grid": {"small_area_fit": fit}},
            shapes_ahead=ahead,
        )
        for ahead in (False, True)
    ]
    pd.testing.assert_frame_equal(grids[0].cells, grids[1].cells)
    pd.testing.assert_frame_equal(grids[0].cell_origins, grids[1].cell_origins)
    assert grids[0].cell_segments is not None and grids[1].cell_segments is not None
    pd.testing.assert_frame_equal(grids[0].cell_segments, grids[1].cell_segments)
    assert grids[0].cells["households"].sum() == pytest.approx(3600.0)


def test_shapes_made_ahead_are_refused_with_a_population_raster() -> None:
    """The raster weighs the small areas over the fragments: shapes made without it would
    spread residents by surface alone."""
    with pytest.raises(ValueError, match="raster"):
        _grid(population_raster=Path("/pop.tif"), shapes_ahead=True)


def test_a_layer_still_being_read_is_placed_last_and_added_in_its_place() -> None:
    """Crimes read in a child (`Ingested.pending`) reach the same fragments, and the grid's
    columns keep the registry's order."""
    points = [_wgs84_point(400250, 286250), _wgs84_point(401500, 286500)]
    crimes = pd.DataFrame(
        {
            "latitude": [p[0] for p in points],
            "longitude": [p[1] for p in points],
            "area_code": ["A", "B"],
            "is_asb": [False, True],
            "is_sac": [True, False],
            "is_public": [False, False],
        }
    )
    lat, lon = points[0]
    ratings = pd.DataFrame(
        {"latitude": [lat], "longitude": [lon], "area_code": ["A"], "rating": [2.0]}
    )
    in_hand = _grid(crimes=crimes, ratings=ratings)
    reading = _grid(crimes=crimes, ratings=ratings, reading=("crimes",))
    pd.testing.assert_frame_equal(in_hand.cells, reading.cells)
    by_area = reading.cells.groupby("area_code")[["crimes", "sac_crimes", "asb"]].sum()
    assert by_area.loc["A"].tolist() == [1, 1, 0] and by_area.loc["B"].tolist() == [0, 0, 1]


@pytest.mark.skipif(not can_fork(), reason="forks only on Linux with two or more cores")
def test_a_child_forked_after_filling_polygons_stops_rather_than_waits() -> None:
    """h3ronpy fills polygons on threads a forked child does not have: a child forked after
    this process filled one would wait for them for ever, so it stops with a clear error."""
    areas = _areas()
    area_locator(areas, resolution=9)  # this process fills polygons with cells

    def fill() -> int:
        return len(areas_to_fragments(areas, resolution=9, crs=equal_area_crs(areas)))

    with pytest.raises(BackgroundError, match="fork the child earlier"):
        in_background(fill, name="filling", fork=True).result()
    assert in_background(fill, name="filling", fork=False).result() > 0


_ORIGINS = st.sampled_from(["White: Irish", "White: Other", "Pakistani", "Black Caribbean", "Any"])


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.tuples(st.integers(0, 6), _ORIGINS), st.floats(0, 500), max_size=25),
    st.dictionaries(st.tuples(st.integers(0, 6), _ORIGINS), st.integers(1, 40), max_size=10),
    st.permutations(range(6)),
)
def test_cell_origins_joins_and_sorts_as_text_keys_would(residents, registered, order) -> None:
    """Residents and sign-ups joined by fragment and origin (either missing counting 0), each
    fragment named by its cell and area, sorted by them and the origin; a fragment the keys do
    not name (6 here) is left out."""
    from targeting.grid.build import _cell_origins

    keys = pd.DataFrame(
        {
            "fragment": np.array(order),
            "cell": pd.array([f"89195da4{9 - f % 3}bfffff" for f in order], dtype="str"),
            "area_code": pd.array([f"E0500000{f % 2}" for f in order], dtype="str"),
        }
    )
    tables = {
        "residents_by_origin": pd.DataFrame(
            [(f, o, r) for (f, o), r in residents.items()],
            columns=["fragment", "origin", "residents"],
        ).astype({"fragment": "int64", "origin": "str", "residents": "float64"}),
        "registered_by_origin": pd.DataFrame(
            [(f, o, n) for (f, o), n in registered.items()],
            columns=["fragment", "origin", "registered"],
        ).astype({"fragment": "int64", "origin": "str", "registered": "int64"}),
    }
    merged = (
        tables["residents_by_origin"]
        .merge(tables["registered_by_origin"], on=["fragment", "origin"], how="outer")
        .fillna({"residents": 0.0, "registered": 0})
        .astype({"registered": "int64"})
        .merge(keys, on="fragment")
    )
    want = merged.sort_values(["cell", "area_code", "origin"], kind="stable")[
        ["cell", "area_code", "origin", "residents", "registered"]
    ].reset_index(drop=True)
    pd.testing.assert_frame_equal(_cell_origins(tables, keys), want, check_exact=True)


def test_a_run_finds_the_fragments_convex_outlines_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The small areas', the schemes' and the deprivation outlines' overlays all clip against
    the same fragments: their convex outlines are worked out once, with the fragments."""
    import dataclasses

    import targeting.grid.build as build
    import targeting.grid.overlay as overlay
    import targeting.grid.place as place
    from targeting.config import load_config
    from targeting.demo import write_demo_inputs
    from targeting.pipeline import run

    calls: list[int] = []
    found = build.convex_polygons

    def counted(geoms: np.ndarray) -> object:
        calls.append(len(geoms))
        return found(geoms)

    for module in (build, overlay, place):
        monkeypatch.setattr(module, "convex_polygons", counted)
    config = load_config(write_demo_inputs(tmp_path / "demo"))
    config = dataclasses.replace(config, history=dataclasses.replace(config.history, store=None))
    assert config.inputs.schemes is not None and config.inputs.small_areas is not None
    run(config, parallel=False)
    assert len(calls) == 1
