"""The synthetic demo data set: shapes, known answers from the 2018 WMP report, determinism."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from targeting.demo import write_demo_inputs

CRIME_HEADER = (
    "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,"
    "LSOA code,LSOA name,Crime type,Last outcome category,Context"
)
MONTHS = [f"2017-{m}" for m in ("11", "12")] + [f"2018-{m:02d}" for m in range(1, 11)]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_inputs(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def root(config: Path) -> Path:
    return config.parent


@pytest.fixture(scope="module")
def signups(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "signups.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def wards(root: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(root / "areas.geojson").to_crs(27700)


@pytest.fixture(scope="module")
def oas(root: Path, wards: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Output Areas with the ward holding their representative point."""
    oas = gpd.read_file(root / "small_areas.gpkg", layer="small_areas")
    where = gpd.sjoin(
        gpd.GeoDataFrame(geometry=oas.representative_point(), crs=oas.crs),
        wards[["area_name", "geometry"]],
        predicate="within",
    )
    return oas.join(where["area_name"])


def _ward_population(root: Path, oas: gpd.GeoDataFrame) -> pd.Series:
    population = pd.read_csv(root / "population.csv")
    ward_of = oas.set_index("area_code")["area_name"]
    return population.groupby(population["area_code"].map(ward_of))["residents"].sum()


def test_config_names_every_input(config: Path) -> None:
    settings = tomllib.loads(config.read_text())
    inputs = settings["inputs"]
    for key in ("areas", "small_areas", "population", "signups", "postcodes", "ratings", "schemes"):
        assert (config.parent / inputs[key]).is_file(), key
    assert len(list(config.parent.glob(inputs["crimes"][0]))) == 12
    assert str(settings["run"]["as_of"]) == "2018-10-31"
    assert settings["grid"]["resolution"] == 9


def test_signups_match_appendix_b(signups: pd.DataFrame) -> None:
    assert len(signups) == 53_408
    assert list(signups.columns) == [
        "user_id",
        "joined",
        "latitude",
        "longitude",
        "easting",
        "northing",
        "postcode",
        "origin",
        "status",
        "watch_role",
    ]
    roles = signups["watch_role"].value_counts()
    assert roles.to_dict() == {
        "none": 53_408 - 12_401,
        "member": 11_142,
        "coordinator": 1_146,
        "deputy": 113,
    }
    assert set(signups["status"]) == {"active", "comms_issue", "incommunicado", "deleted"}
    assert (signups["status"] == "active").mean() == pytest.approx(0.93, abs=0.005)


def test_signup_origins_follow_the_report(signups: pd.DataFrame) -> None:
    unknown = signups["origin"].isin(["", "Not Found"])
    assert unknown.sum() == 1_408
    assert (signups["origin"] == "").sum() > 0 and (signups["origin"] == "Not Found").sum() > 0
    known = signups.loc[~unknown, "origin"]
    assert len(known) == 52_000
    assert (known == "Pakistani").sum() / len(known) == 1685 / 52_000
    assert (known == "Bangladeshi").sum() == round(0.0078 * 52_000)
    assert (known == "Wales").sum() == 3_735


def test_each_signup_has_one_location_kind_except_the_bad_rows(signups: pd.DataFrame) -> None:
    kinds = pd.DataFrame(
        {
            "latlon": signups["latitude"].ne("") & signups["longitude"].ne(""),
            "grid": signups["easting"].ne("") & signups["northing"].ne(""),
            "postcode": signups["postcode"].ne(""),
        }
    ).sum(axis=1)
    assert kinds.max() == 1
    assert 1 <= (kinds == 0).sum() <= 20  # deliberately location-less rows
    assert signups["latitude"].ne("").mean() == pytest.approx(0.75, abs=0.02)


def test_deliberately_bad_signups_are_present(root: Path, signups: pd.DataFrame) -> None:
    assert 1 <= (signups["joined"] == "31/13/2018").sum() <= 20
    assert 1 <= signups["user_id"].duplicated().sum() <= 20
    good_dates = pd.to_datetime(signups["joined"], format="%Y-%m-%d", errors="coerce").dropna()
    assert good_dates.min() >= pd.Timestamp("2016-01-01")
    assert good_dates.max() <= pd.Timestamp("2018-10-31")
    postcodes = set(pd.read_csv(root / "postcodes.csv")["pcds"])
    given = signups.loc[signups["postcode"] != "", "postcode"]
    assert 1 <= (~given.isin(postcodes)).sum() <= 20
    # read the boundaries as straight lines in degrees, as a WGS84 point-in-polygon does:
    # only the planted far-away points may fall outside, nothing on a sliver of the edge
    ll = signups[signups["latitude"] != ""]
    x, y = ll["longitude"].astype(float).to_numpy(), ll["latitude"].astype(float).to_numpy()
    city = shapely.union_all(gpd.read_file(root / "areas.geojson").geometry.values)
    outside = ~shapely.contains_xy(city, x, y)
    assert 1 <= outside.sum() <= 20
    assert shapely.distance(city, shapely.points(x[outside], y[outside])).min() > 0.1


def test_schemes_match_appendix_b(root: Path) -> None:
    schemes = gpd.read_file(root / "schemes.geojson")
    assert len(schemes) == 653
    assert schemes.crs.to_epsg() == 4326
    assert schemes["scheme_id"].is_unique
    assert schemes["households"].sum() == 203_256
    assert schemes["members"].sum() <= 12_401
    assert (schemes.geom_type == "Polygon").mean() == pytest.approx(0.7, abs=0.06)
    assert set(schemes.geom_type) == {"Polygon", "Point"}
    assert schemes["scheme_type"].value_counts().idxmax() == "neighbourhood"
    assert (schemes["scheme_type"] == "canal").sum() == 2


def test_wards_are_the_birmingham_wards(wards: gpd.GeoDataFrame) -> None:
    assert len(wards) == 40
    assert wards.set_index("area_name").loc["Tyburn", "area_code"] == "E05001215"
    assert wards.set_index("area_name").loc["Tyburn", "parent_name"] == "Erdington"
    assert wards["parent_code"].nunique() == 10
    assert 500e6 < wards.area.sum() < 700e6


def test_population_totals(root: Path) -> None:
    population = pd.read_csv(root / "population.csv")
    assert list(population.columns) == ["area_code", "origin", "residents"]
    assert (population["residents"] > 0).all()
    total = population["residents"].sum()
    assert total == pytest.approx(2_200_000, rel=0.02)
    by_origin = population.groupby("origin")["residents"].sum()
    assert by_origin.size == 30
    assert by_origin["Pakistani"] / total * 100 == pytest.approx(4.85, abs=0.05)
    assert by_origin["England"] / total * 100 == pytest.approx(56.92, abs=0.05)


def test_output_areas_nest_in_wards(
    root: Path, oas: gpd.GeoDataFrame, wards: gpd.GeoDataFrame
) -> None:
    assert pyogrio.list_layers(root / "small_areas.gpkg")[0][0] == "small_areas"
    assert oas.crs.to_epsg() == 27700
    assert set(oas.geom_type) == {"Polygon"}
    assert not oas.geometry.is_empty.any()
    assert 6_000 < len(oas) < 8_500 and oas["area_code"].is_unique
    ward_geom = wards.set_index("area_name").geometry
    inside = shapely.area(
        shapely.intersection(oas.geometry.values, ward_geom.loc[oas["area_name"]].values)
    )
    assert (inside / oas.area.to_numpy()).min() >= 0.999


def test_tyburn_has_among_the_lowest_signup_rates(
    root: Path, signups: pd.DataFrame, wards: gpd.GeoDataFrame, oas: gpd.GeoDataFrame
) -> None:
    ll = signups[signups["latitude"] != ""]
    points = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(ll["longitude"].astype(float), ll["latitude"].astype(float)),
        crs=4326,
    ).to_crs(27700)
    hits = gpd.sjoin(points, wards[["area_name", "geometry"]], predicate="within")
    rate = (hits["area_name"].value_counts() / _ward_population(root, oas)).sort_values()
    assert "Tyburn" in rate.index[:3]
    assert rate.index[-1].startswith("Sutton")


def test_crime_files_look_like_police_uk(root: Path) -> None:
    files = sorted((root / "crime").glob("*/*.csv"))
    assert [f.name for f in files] == [f"{m}-west-midlands-street.csv" for m in MONTHS]
    hex64 = re.compile(r"^[0-9a-f]{64}$")
    for month, path in zip(MONTHS, files, strict=True):
        assert path.parent.name == month
        assert path.read_text().split("\n", 1)[0] == CRIME_HEADER
        crimes = pd.read_csv(path, dtype=str, keep_default_na=False)
        assert 20_000 <= len(crimes) <= 30_000
        assert (crimes["Month"] == month).all()
        assert (crimes["Falls within"] == "West Midlands Police").all()
        asb = crimes["Crime type"] == "Anti-social behaviour"
        assert ((crimes["Crime ID"] == "") == asb).all()
        assert crimes.loc[~asb, "Crime ID"].str.match(hex64).all()
        assert asb.mean() == pytest.approx(0.24, abs=0.02)
        no_location = crimes["Longitude"] == ""
        assert 0 < no_location.mean() < 0.02
        assert (crimes.loc[no_location, "Location"] == "No Location").all()
        assert (crimes["Context"] == "").all()


def test_postcodes_are_canonical_and_unique(root: Path) -> None:
    postcodes = pd.read_csv(root / "postcodes.csv")
    assert list(postcodes.columns) == ["pcds", "lat", "long", "street"]
    assert postcodes["street"].str.len().gt(0).all()  # each on its nearest synthetic street
    assert postcodes["pcds"].is_unique
    assert postcodes["pcds"].str.fullmatch(r"B\d{1,2} \d[A-Z]{2}").all()
    assert (
        postcodes["lat"].between(52.3, 52.7).all() and postcodes["long"].between(-2.2, -1.6).all()
    )


def test_ratings(root: Path, signups: pd.DataFrame) -> None:
    ratings = pd.read_csv(root / "ratings.csv", dtype={"user_id": str})
    assert len(ratings) == 30_000
    assert ratings["rating"].between(1, 6).all()
    assert ratings["rating"].mean() == pytest.approx(5.44, abs=0.05)
    keyed = ratings["user_id"].notna()
    assert keyed.mean() == pytest.approx(0.85, abs=0.01)
    assert ratings.loc[keyed, "user_id"].isin(signups["user_id"]).all()
    assert ratings.loc[keyed, "latitude"].isna().all()
    assert ratings.loc[~keyed, ["latitude", "longitude"]].notna().all().all()
    dates = pd.to_datetime(ratings["rated_at"], format="%Y-%m-%d")
    assert dates.min() >= pd.Timestamp("2017-11-01") and dates.max() <= pd.Timestamp("2018-10-31")


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_bytes(root: Path, tmp_path: Path) -> None:
    again = write_demo_inputs(tmp_path / "again").parent
    first, second = _digests(root), _digests(again)
    # 11 inputs (streets.gpkg and the pilot's visited.csv too) + demo.toml, 12 crime months
    assert len(first) == 12 + 12
    assert first == second


def test_another_seed_gives_other_data_with_the_same_known_answers(
    root: Path, tmp_path: Path
) -> None:
    other_root = write_demo_inputs(tmp_path, seed=7).parent
    other = pd.read_csv(other_root / "signups.csv", dtype=str, keep_default_na=False)
    assert len(other) == 53_408
    assert np.count_nonzero(other["watch_role"] == "coordinator") == 1_146
    assert (other_root / "signups.csv").read_bytes() != (root / "signups.csv").read_bytes()
