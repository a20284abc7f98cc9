"""The week's plan: hotspot quotas, the households minimum, the cooldown, and published gaps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from targeting.config import Config, load_config
from targeting.grid import build_grid
from targeting.ingest.inputs import ingest_inputs
from targeting.pipeline import compute
from targeting.tasking import (
    cell_units,
    gap_origins,
    gap_origins_columns,
    hotspot_targets,
    nearest_postcodes,
    origins_by_cell,
    postcodes_per_cell,
    residential,
    round_to,
    target_origins_columns,
    target_residents,
    visited_cells,
)

CENTRE = h3.latlng_to_cell(52.52, -1.84, 9)


def _cells(n: int, area: str, *, households: float = 100.0, start: float = 1.0) -> pd.DataFrame:
    cells = (
        sorted(h3.grid_disk(CENTRE, 3))[:n] if area == "A" else sorted(h3.grid_disk(CENTRE, 3))[-n:]
    )
    return pd.DataFrame(
        {
            "area_code": area,
            "households": households,
            "score": np.linspace(start, start / 2, n),
        },
        index=pd.Index(cells, name="cell"),
    )


def test_hotspots_need_households_and_addresses_where_postcodes_were_counted() -> None:
    cells = _cells(6, "A")
    cells.loc[cells.index[1], "households"] = 5.0  # an industrial estate
    cells["postcodes"] = [0, 3, 3, 1, 5, 2]  # the first holds no address: a park
    assert residential(cells, min_households=40.0, min_postcodes=1).tolist() == [
        False, False, True, True, True, True,
    ]  # fmt: skip
    relaxed = residential(cells, min_households=40.0, min_postcodes=0)
    assert relaxed.tolist() == [True, False, True, True, True, True]
    # without postcodes counted, households alone decide
    assert residential(cells.drop(columns="postcodes"), min_households=40.0,
                       min_postcodes=1).sum() == 5  # fmt: skip


def test_postcodes_per_cell_counts_centroids() -> None:
    lat, lon = h3.cell_to_latlng(CENTRE)
    postcodes = pd.DataFrame({"key": ["A", "B", "C"], "latitude": [lat, lat, 52.40],
                              "longitude": [lon, lon, -1.90]})  # fmt: skip
    counts = postcodes_per_cell(postcodes, resolution=9)
    assert counts[CENTRE] == 2 and counts.sum() == 3
    assert postcodes_per_cell(None, resolution=9) is None


def test_cooldown_window() -> None:
    log = pd.DataFrame(
        {
            "cell": ["a", "b", "c"],
            "visited_on": pd.to_datetime(["2018-10-01", "2018-10-04", "2018-10-30"]),
        }
    )
    # a cell visited d days before as_of stays off the list while d < cooldown_days
    assert visited_cells(log, as_of=dt.date(2018, 10, 31), cooldown_days=28) == {"b", "c"}
    assert visited_cells(log, as_of=dt.date(2018, 10, 31), cooldown_days=27) == {"c"}
    assert visited_cells(log, as_of=dt.date(2018, 10, 31), cooldown_days=30) == {"b", "c"}
    assert visited_cells(log, as_of=dt.date(2018, 10, 31), cooldown_days=31) == {"a", "b", "c"}
    assert visited_cells(None, as_of=dt.date(2018, 10, 31), cooldown_days=28) == frozenset()


def test_round_to_hides_small_counts() -> None:
    assert round_to(np.array([0.0, 4.9, 5.0, 14.0, 15.0, 123.0]), 10).tolist() == [
        0.0, 0.0, 10.0, 10.0, 20.0, 120.0,
    ]  # fmt: skip


def test_cell_units_gaps_by_hand() -> None:
    a, b = sorted(h3.grid_disk(CENTRE, 1))[:2]
    cells = pd.DataFrame(
        {
            "cell": [a, a, b],
            "area_code": ["X", "Y", "Y"],
            "residents": [60.0, 40.0, 100.0],
            "registered_known": [3, 1, 0],
            "households": [25.0, 15.0, 40.0],
            "watch_households": [0.0, 0.0, 0.0],
            "crimes": [1, 1, 1],
            "sac_crimes": [0, 0, 0],
            "ratings": [0, 0, 0],
            "low_ratings": [0, 0, 0],
        }
    )
    origins = pd.DataFrame(
        {
            "cell": [a, a, a, b],
            "area_code": ["X", "X", "Y", "Y"],
            "origin": ["P", "W", "W", "W"],
            "residents": [50.0, 10.0, 40.0, 100.0],
            "registered": [0, 3, 1, 0],
        }
    )
    summed = tuple(c for c in cells.columns if c not in ("cell", "area_code"))
    units = cell_units(cells, origins_by_cell(origins), summed=summed, signups_per_resident=4 / 200)
    # cell a: P is half the residents and has none of the 4 sign-ups: short by 2
    assert units.loc[a, "parity_gap"] == pytest.approx(2.0)
    assert units.loc[a, "area_code"] == "X"  # the fragment with most residents
    assert units.loc[a, "households"] == pytest.approx(40.0)
    # force rate 4 / 200 = 0.02: cell b with 100 residents and no sign-ups is 2 short
    assert units.loc[b, "penetration_gap"] == pytest.approx(2.0)
    assert units.loc[a, "penetration_gap"] == pytest.approx(0.0)


def test_gap_origins_names_one_or_two_with_their_own_gaps() -> None:
    table = pd.DataFrame(
        {
            "level": ["area"] * 6 + ["force"],
            "area_code": ["A", "A", "A", "B", "B", "C", "ALL"],
            "origin_level": ["origin"] * 7,
            "origin": ["Pakistani", "Bangladeshi", "Polish", "Somali", "Irish", "Roma",
                       "Pakistani"],
            # C's only gap is withheld (blank): it is never named, nor given a number
            "parity_gap": [400.0, 210.0, 50.0, 90.0, 40.0, np.nan, 999.0],
        }
    )  # fmt: skip
    named = gap_origins(table)
    assert named.values.tolist() == [
        ["A", "Pakistani", 400.0], ["A", "Bangladeshi", 210.0], ["B", "Somali", 90.0],
    ]  # fmt: skip
    machine, words = gap_origins_columns(named)
    assert machine.to_dict() == {"A": "Pakistani:400;Bangladeshi:210", "B": "Somali:90"}
    assert words.to_dict() == {"A": "Pakistani 400, Bangladeshi 210", "B": "Somali 90"}
    assert gap_origins(table, level="force").values.tolist() == [["ALL", "Pakistani", 999.0]]


def test_hotspots_are_for_their_areas_origins_or_else_the_forces() -> None:
    named = pd.DataFrame({"area_code": ["A", "A"], "origin": ["Pakistani", "Somali"],
                          "parity_gap": [20.0, 12.0]})  # fmt: skip
    force = pd.DataFrame({"area_code": ["ALL"], "origin": ["Bangladeshi"], "parity_gap": [9.0]})
    targets = hotspot_targets(named, force, area_codes=pd.Series(["A", "B"]))
    assert targets.values.tolist() == [
        ["A", "Pakistani", 0], ["A", "Somali", 1], ["B", "Bangladeshi", 0],
    ]  # fmt: skip
    cells = pd.Series({"c1": "A", "c2": "B"})
    origins = pd.DataFrame({
        "cell": ["c1", "c1", "c1", "c2", "c2"], "area_code": ["A", "X", "A", "B", "B"],
        "origin": ["Pakistani", "Pakistani", "England", "Bangladeshi", "England"],
        "residents": [100.0, 24.0, 500.0, 4.0, 300.0], "registered": [0, 0, 0, 0, 0],
    })  # fmt: skip
    residents = target_residents(cells, origins_by_cell(origins), targets)
    # a cell's residents of its target origins, whichever area's fragment they live in
    assert residents.sort_values(["cell", "order"]).values.tolist() == [
        ["c1", "Pakistani", 0, 124.0], ["c1", "Somali", 1, 0.0], ["c2", "Bangladeshi", 0, 4.0],
    ]  # fmt: skip
    machine, words = target_origins_columns(residents, step=10)
    assert machine.to_dict() == {"c1": "Pakistani:120;Somali:0", "c2": "Bangladeshi:0"}
    assert words.to_dict() == {
        "c1": "about 120 Pakistani and fewer than 10 Somali residents",
        "c2": "fewer than 10 Bangladeshi residents",
    }


def _pairs(text: object) -> dict[str, int]:
    """`origin:number;origin:number` as a dict."""
    if not isinstance(text, str) or not text:
        return {}
    return {k: int(v) for k, v in (p.rsplit(":", 1) for p in text.split(";"))}


@pytest.fixture(scope="module")
def other_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another demo city, drawn from another seed: other places, other gaps."""
    from targeting.demo import write_demo_inputs
    from targeting.pipeline import run

    return run(write_demo_inputs(tmp_path_factory.mktemp("seed7"), seed=7)).out_dir


@pytest.mark.parametrize("city", ["demo_output", "other_city"])
def test_reasons_state_the_numbers_in_the_tables(city: str, request: pytest.FixtureRequest) -> None:
    """Across the files: every number in `gap_origins` is that origin's published parity gap in
    representation.csv, no withheld origin is named, the reason names the same origins with the
    same numbers, and every hotspot is chosen for at least one origin, whose residents in its cell
    (the store's census counts, rounded to 10) are what `target_origins` and its reason say."""
    out: Path = request.getfixturevalue(city)
    ranked = pd.read_csv(out / "ranked_areas.csv")
    rep = pd.read_csv(out / "representation.csv")
    area = rep[(rep["level"] == "area") & (rep["origin_level"] == "origin")]
    published = area.set_index(["area_code", "origin"])["parity_gap"]
    suppressed = set(
        area.loc[area["suppressed"].astype(bool), ["area_code", "origin"]].apply(tuple, axis=1)
    )
    named_areas = 0
    for code, gaps_text, reason in ranked[["area_code", "gap_origins", "reason"]].itertuples(
        index=False
    ):
        gaps = _pairs(gaps_text)
        named_areas += bool(gaps)
        for origin, gap in gaps.items():
            assert (code, origin) not in suppressed
            assert published[(code, origin)] == gap, (code, origin)
        said = ", ".join(f"{o} {g}" for o, g in gaps.items())
        assert (reason.startswith(said + " sign-ups short of parity; the area's parity gap is ")
                if gaps else "sign-ups short of parity" not in reason), (code, reason)  # fmt: skip
    assert named_areas >= len(ranked) // 2

    hotspots = pd.read_csv(out / "hotspots.csv", dtype={"cell": str})
    with duckdb.connect(str(out / "targeting.duckdb"), read_only=True) as con:
        census = (
            con.execute(
                "SELECT cell, origin, sum(residents) AS residents FROM cell_origins GROUP BY ALL"
            )
            .df()
            .set_index(["cell", "origin"])["residents"]
        )
    for cell, targets_text, reason in hotspots[["cell", "target_origins", "reason"]].itertuples(
        index=False
    ):
        targets = _pairs(targets_text)
        assert targets, cell
        for origin, shown in targets.items():
            assert shown == round_to(np.array([census.get((cell, origin), 0.0)]), 10)[0]
            said = f"{shown:,} {origin}" if shown >= 10 else f"fewer than 10 {origin}"
            assert said in reason, (cell, said, reason)
    for tactic, reason in hotspots[["tactic", "reason"]].itertuples(index=False):
        lead = "home to " if tactic == "door" else "a busy public place, home to "
        assert reason.startswith(lead), (tactic, reason)


def test_demo_hotspots_carry_the_segment_of_the_small_areas_under_them(demo_output: Path) -> None:
    """Each hotspot's segment is the one with the most households under its hexagon, worked out
    here from the demo's own files (small-area outlines and segments.csv) by overlay."""
    inputs = demo_output.parent
    hotspots = pd.read_csv(demo_output / "hotspots.csv", dtype={"cell": str})
    small = gpd.read_file(inputs / "small_areas.gpkg", layer="small_areas").to_crs(27700)
    segments = pd.read_csv(inputs / "segments.csv", dtype=str)
    small = small.merge(segments[["area_code", "segment"]], on="area_code")
    small["households"] = small["households"].astype(float)
    hexagons = gpd.GeoDataFrame(
        {"cell": hotspots["cell"]},
        geometry=[shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
                  for c in hotspots["cell"]],
        crs="EPSG:4326",
    ).to_crs(27700)  # fmt: skip
    small["whole_m2"] = small.area
    pieces = gpd.overlay(hexagons, small, how="intersection", keep_geom_type=True)
    pieces["households_under"] = pieces["households"] * pieces.area / pieces["whole_m2"]
    under = pieces.groupby(["cell", "segment"])["households_under"].sum().reset_index()
    main = under.sort_values(["cell", "households_under"], ascending=[True, False])
    main = main.drop_duplicates("cell").set_index("cell")["segment"]
    assert len(hotspots) == 120
    agree = hotspots["segment"].to_numpy() == hotspots["cell"].map(main).to_numpy()
    assert agree.all(), hotspots.loc[~agree, ["cell", "segment"]]


@pytest.mark.parametrize("city", ["demo_output", "other_city"])
def test_every_output_follows_the_one_plan(city: str, request: pytest.FixtureRequest) -> None:
    """Across the files: a hotspot's tactic is its area's planned tactic, and its area plans as
    many of them as it has; every planned station site lies in an area with as many station
    days; every geofence's tactic is its area's; the week's limits hold; plan.csv adds up to
    the areas' plans per NPU."""
    out: Path = request.getfixturevalue(city)
    ranked = pd.read_csv(out / "ranked_areas.csv").set_index("area_code")
    hotspots = pd.read_csv(out / "hotspots.csv", dtype={"cell": str})
    stations = pd.read_csv(out / "stations.csv", dtype={"cell": str})
    plan = pd.read_csv(out / "plan.csv")
    fences = gpd.read_file(out / "geofences.geojson")
    assert (
        hotspots["tactic"].to_numpy() == ranked.loc[hotspots["area_code"], "tactic"].to_numpy()
    ).all()
    per_area = hotspots.groupby(["area_code", "tactic"]).size().unstack(fill_value=0)
    for tactic, column in (("door", "hotspots"), ("street", "street_sites")):
        counted = per_area.get(tactic, pd.Series(dtype=int)).reindex(ranked.index, fill_value=0)
        assert (counted == ranked[column]).all(), tactic
    planned = stations[~stations["fixed"].astype(bool)]
    days = planned.groupby("area_code").size().reindex(ranked.index, fill_value=0)
    assert (days == ranked["station_days"]).all()
    assert (ranked.loc[ranked["station_days"] > 0, "tactic"] == "station").all()
    # a geofence is its area's tactic on the ground, or one of its social posts
    social = fences["tactic"] == "social"
    assert (fences.loc[~social, "tactic"].to_numpy()
            == ranked.loc[fences.loc[~social, "area_code"], "tactic"].to_numpy()).all()  # fmt: skip
    assert (ranked.loc[fences.loc[social, "area_code"], "social_posts"] > 0).all()
    # the week's limits: 120 hotspots, 5 station days, at most 12 hotspots an area
    assert len(hotspots) <= 120 and ranked["station_days"].sum() <= 5
    assert (ranked[["hotspots", "street_sites"]] <= 12).all().all()
    # one tactic on the ground per area
    assert (ranked[["hotspots", "street_sites", "station_days"]] > 0).sum(axis=1).max() == 1
    sums = ranked.groupby("parent_code")[
        ["hotspots", "street_sites", "station_days", "officer_hours"]
    ].sum()
    mine = plan.set_index("parent_code")[sums.columns].reindex(sums.index)
    assert np.allclose(mine.to_numpy(dtype=float), sums.to_numpy(dtype=float))
    assert set(ranked["tactic"]) <= {"door", "street", "station", "social", "none"}
    # the tasking pack states each NPU's week with plan.csv's numbers
    pack = (out / "tasking.html").read_text(encoding="utf-8")
    for row in plan[plan["officer_hours"] > 0].itertuples():
        said = (f"{row.officer_hours:,.0f} officer hours, about {row.expected_signups:,.0f} "
                f"sign-ups expected, {row.expected_gain:,.1f} of them")  # fmt: skip
        assert said in pack, (row.parent_code, said)


def _pipeline_config(demo_output: Path, tmp: Path, name: str) -> Config:
    """A shipped pipeline's config, reading the shared demo city as `targeting run
    pipelines/NAME.toml` does from a checkout beside `targeting-demo`."""
    (tmp / "pipelines").mkdir(exist_ok=True)
    if not (tmp / "targeting-demo").exists():
        (tmp / "targeting-demo").symlink_to(demo_output.parent)
    text = (Path(__file__).parents[1] / "pipelines" / f"{name}.toml").read_text(encoding="utf-8")
    (tmp / "pipelines" / f"{name}.toml").write_text(text, encoding="utf-8")
    return load_config(tmp / "pipelines" / f"{name}.toml")


def test_nhw_week_sends_the_station_where_watch_is_thin(demo_output: Path, tmp_path: Path) -> None:
    """The run before Neighbourhood Watch week plans the station by its overlay (Watch gap,
    penetration and crime weighed up), so it picks other sites than the weekly run, each in an
    area whose Watch coverage is below the force's median area. Both read the same files, so
    they share one ingest and grid; only their plans differ."""
    nhw = _pipeline_config(demo_output, tmp_path, "nhw_week")
    weekly = _pipeline_config(demo_output, tmp_path, "weekly_tasking")
    assert (nhw.inputs, nhw.grid) == (weekly.inputs, weekly.grid)
    data = ingest_inputs(nhw)
    grid = build_grid(data, config=nhw)
    sites = {name: compute(data, grid, cfg).plan.stations
             for name, cfg in (("nhw", nhw), ("weekly", weekly))}  # fmt: skip
    assert len(sites["nhw"]) == 5
    assert set(sites["nhw"]["cell"]) != set(sites["weekly"]["cell"])
    sums = grid.cells.groupby("area_code")[["watch_households", "households"]].sum()
    watch = (sums["watch_households"] / sums["households"]).clip(upper=1.0)
    assert (watch.loc[sites["nhw"]["area_code"]] < watch.median()).all()


def test_nearest_postcodes_spaced_with_streets_and_blank_when_far() -> None:
    postcodes = pd.DataFrame({
        "key": ["B356AB", "B11AA", "B12BB"], "latitude": [52.5000, 52.4800, 52.4700],
        "longitude": [-1.8000, -1.9000, -1.9100], "street": ["High Street", None, "Low Road"],
    }).astype({"key": "str", "street": "str"})  # fmt: skip
    points = pd.DataFrame({"latitude": [52.5001, 52.4801, 53.0], "longitude": [-1.8001, -1.9, -1.0]},
                          index=["near", "no street", "far"])  # fmt: skip
    found = nearest_postcodes(points, postcodes)
    assert found.loc["near"].tolist() == ["B35 6AB", "High Street"]
    assert found.loc["no street"].tolist() == ["B1 1AA", ""]
    assert found.loc["far"].tolist() == ["", ""]
    assert nearest_postcodes(points, None)["nearest_postcode"].tolist() == ["", "", ""]
