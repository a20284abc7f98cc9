"""Validated ingest: every reject reason, every fatal message, and rows read = used + rejected."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
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
    build_config,
    reasons_by,
    wards_frame,
    write_csv,
    write_text,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon, box

from targeting.errors import InputError
from targeting.ingest import (
    read_areas,
    read_crimes,
    read_population,
    read_postcodes,
    read_ratings,
    read_schemes,
    read_signups,
    read_small_areas,
)
from targeting.ingest.population import _age_fraction
from targeting.reference import REFERENCE_DIR

AS_OF = dt.date(2018, 10, 31)
AREA_CODES = {CODE_A, CODE_B}


def crime_types() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / "police_uk_crime_types.csv", dtype=str)


def assert_fatal(info: pytest.ExceptionInfo[InputError], path: Path, *texts: str) -> None:
    """A fatal message names the file, says the problem and gives the fix."""
    message = str(info.value)
    assert str(path) in message
    assert "Fix:" in message
    for text in texts:
        assert text in message, (text, message)


# --- areas and small areas --------------------------------------------------------------------


def test_read_areas_recognises_ons_columns_and_rejects_bad_rows(tmp_path: Path) -> None:
    sq = WARD_A_BNG
    frame = gpd.GeoDataFrame(
        {
            "WD13CD": [CODE_A, CODE_B, "", None, CODE_A, "E05000003", "E05000004"],
            "WD13NM": ["Alpha", "Tyburn", "x", "x", "x", "x", "x"],
            "LAD_CD": ["L1", "L2", "L1", "L1", "L1", "L1", "L1"],
            "LAD_NM": ["Birm", "Solihull", "", "", "", "", ""],
            "note": ["a", "b", "blank", "null", "dup", "point", "nogeom"],
        },
        geometry=[sq, WARD_B_BNG, sq, sq, sq, Point(400500, 286500), None],
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
    assert summary.rows_read == 7 and summary.rows_used == 2
    assert reasons_by(summary, "note") == {
        "blank": "missing area_code",
        "null": "missing area_code",
        "dup": "duplicate area_code",
        "point": "missing or non-polygon geometry",
        "nogeom": "missing or non-polygon geometry",
    }
    assert "geometry" not in summary.rejects.columns
    assert_accounting(summary)


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
        "dup": "duplicate area_code",
        "line": "missing or non-polygon geometry",
        "neg": "negative households",
    }
    assert summary.rows_read == 7 and summary.rows_used == 2
    assert_accounting(summary)


def test_read_small_areas_not_configured(tmp_path: Path) -> None:
    assert read_small_areas(build_config(tmp_path)) == (None, None)


# --- population: wide ----------------------------------------------------------------------

WIDE = """code,name,Persons,Pakistani,WhiteBrit,Bangladeshi,date,Census Year,LAD_code,Rural Urban
E05000001,Alpha,105,30,60,10,2011,2011,101,Urban
E05000002,Tyburn,200,100,101,0,2011,2011,101,Urban
E05000009,Nowhere,10,5,5,0,2011,2011,101,Urban
E05000003,Three,50,x,40,0,2011,2011,101,Urban
E05000004,Four,60,-5,60,5,2011,2011,101,Urban
E05000005,Five,100,50,52,0,2011,2011,101,Urban
E05000001,Alpha,100,30,60,10,2011,2011,101,Urban
,Blank,10,5,5,0,2011,2011,101,Urban
E05000006,Six,abc,1,1,1,2011,2011,101,Urban
"""
WIDE_CODES = {CODE_A, CODE_B, "E05000003", "E05000004", "E05000005", "E05000006"}


def read_pop(
    tmp_path: Path,
    text: str,
    *,
    small: set[str] | None = None,
    areas: set[str] = AREA_CODES,
    **sections: Any,
):
    write_text(tmp_path / "population.csv", text)
    config = build_config(tmp_path, **sections)
    return read_population(config, area_codes=areas, small_area_codes=small)


def residents(pop_table: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {
        (a, o): r
        for a, o, r in zip(
            pop_table["area_code"], pop_table["origin"], pop_table["residents"], strict=True
        )
    }


def test_wide_population_detects_origins_and_rejects_bad_rows(tmp_path: Path) -> None:
    pop, summary = read_pop(tmp_path, WIDE, areas=WIDE_CODES)
    # text columns and columns named like date, year or code are never origins; Bangladeshi is
    assert summary.details["detected_origins"] == ["Pakistani", "WhiteBrit", "Bangladeshi"]
    assert summary.details["total_column"] == "Persons"
    assert summary.details["format"] == "wide"
    assert summary.details["keyed_by"] == "areas"
    assert pop.keyed_by == "areas"
    assert pop.origins == ("Bangladeshi", "Pakistani", "WhiteBrit")
    assert residents(pop.table) == {
        (CODE_A, "Bangladeshi"): 10.0,
        (CODE_A, "Pakistani"): 30.0,
        (CODE_A, "WhiteBrit"): 60.0,
        (CODE_B, "Bangladeshi"): 0.0,
        (CODE_B, "Pakistani"): 100.0,
        (CODE_B, "WhiteBrit"): 101.0,
    }
    assert summary.rejects["reason"].tolist() == [
        "area_code not in areas",
        "non-numeric count in column Pakistani",
        "negative count",
        "origins add up to more than Persons by over the tolerance",
        "duplicate area_code and origin",
        "missing area_code",
        "non-numeric total in column Persons",
    ]
    assert summary.rejects["name"].tolist()[:2] == ["Nowhere", "Three"]  # rows as read
    assert summary.rows_read == 9 and summary.rows_used == 2
    assert_accounting(summary)


def test_wide_total_above_parts_is_a_warning_with_rows_and_residents(tmp_path: Path) -> None:
    _, summary = read_pop(tmp_path, WIDE, areas=WIDE_CODES)
    assert summary.details["total_above_parts"] == {"rows": 1, "residents": 5.0}
    [short] = [w for w in summary.warnings if "above the sum of their origins" in w]
    assert short.startswith("1 row(s) have Persons above the sum of their origins (5 residents")
    assert "1 row(s) have origins above Persons within the tolerance" in summary.warnings


def test_wide_tolerance_comes_from_the_config(tmp_path: Path) -> None:
    _, strict = read_pop(tmp_path, WIDE, areas=WIDE_CODES, population={"total_tolerance": 0.0})
    _, loose = read_pop(tmp_path, WIDE, areas=WIDE_CODES, population={"total_tolerance": 0.05})
    tol_reason = "origins add up to more than Persons by over the tolerance"
    # 201 against 200 is within 1% but not 0%; 102 against 100 is within 5%
    assert strict.reasons()[tol_reason] == 2
    assert tol_reason not in loose.reasons()
    assert loose.rows_used == 3
    assert strict.rows_used == 1


def test_real_census_table_keyed_by_small_areas(tmp_path: Path) -> None:
    text = (
        "OA,Persons,WhiteBrit,Irish,Pakistani,Bangladeshi,BlkCaribbean,LAD\n"
        "OA1,300,200,10,60,25,5,Birmingham\n"
        "OA2,205,180,0,20,0,0,Birmingham\n"
    )
    pop, summary = read_pop(tmp_path, text, small={"OA1", "OA2", "OA3"})
    assert pop.keyed_by == "small_areas"
    assert summary.details["detected_origins"] == [
        "WhiteBrit",
        "Irish",
        "Pakistani",
        "Bangladeshi",
        "BlkCaribbean",
    ]
    assert residents(pop.table)[("OA1", "Bangladeshi")] == 25.0
    assert pop.table.groupby("area_code")["residents"].sum().to_dict() == {
        "OA1": 300.0,
        "OA2": 200.0,
    }
    assert summary.details["total_above_parts"] == {"rows": 1, "residents": 5.0}


def test_explicit_origins_and_total_columns(tmp_path: Path) -> None:
    text = "geo,All,P,W,Other\nE05000001,10,4,5,1\nE05000002,12,x,6,6\n"
    pop, summary = read_pop(
        tmp_path,
        text,
        columns={"population": {"area_code": "geo", "total": "All", "origins": ["P", "W"]}},
    )
    assert summary.details["detected_origins"] == ["P", "W"]
    assert residents(pop.table) == {(CODE_A, "P"): 4.0, (CODE_A, "W"): 5.0}
    assert reasons_by(summary, "geo") == {CODE_B: "non-numeric count in column P"}
    assert summary.details["total_above_parts"] == {"rows": 1, "residents": 1.0}


def test_explicit_origin_not_in_file_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_pop(
            tmp_path,
            "code,P\nE05000001,4\n",
            columns={"population": {"origins": ["P", "Polish"]}},
        )
    assert_fatal(info, tmp_path / "population.csv", "column 'Polish': is missing")


def test_wide_without_total_uses_the_parts(tmp_path: Path) -> None:
    pop, summary = read_pop(tmp_path, "code,A,B\nE05000001,3,4\nE05000002,0,2\n")
    assert summary.details["total_column"] is None
    assert summary.warnings == ()
    assert pop.table["residents"].sum() == 9.0


def test_population_with_no_origin_columns_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_pop(tmp_path, "code,name,Persons\nE05000001,Alpha,10\n")
    assert_fatal(info, tmp_path / "population.csv", "has no numeric origin columns")


def test_population_codes_matching_nothing_is_fatal_and_suggests_small_areas(
    tmp_path: Path,
) -> None:
    with pytest.raises(InputError) as info:
        read_pop(tmp_path, "OA,A,B\nOA1,3,4\n")
    assert_fatal(
        info,
        tmp_path / "population.csv",
        "column 'OA': matches no area or small-area code",
        "add inputs.small_areas for its geography",
    )


def test_population_without_code_column_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_pop(tmp_path, "where,A\nE05000001,3\n")
    assert_fatal(
        info,
        tmp_path / "population.csv",
        "column 'area_code': is missing",
        "[columns.population] area_code",
    )


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 50)),
        min_size=2,
        max_size=2,
    )
)
def test_wide_totals_at_or_above_parts_are_all_used(rows: list[tuple[int, int, int]]) -> None:
    lines = ["code,Total,A,B"] + [
        f"{code},{a + b + extra},{a},{b}"
        for code, (a, b, extra) in zip((CODE_A, CODE_B), rows, strict=True)
    ]
    with tempfile.TemporaryDirectory() as folder:
        pop, summary = read_pop(Path(folder), "\n".join(lines) + "\n")
    assert summary.rows_used == 2 and summary.rows_rejected == 0
    assert pop.table["residents"].sum() == sum(a + b for a, b, _ in rows)
    extra = sum(e for _, _, e in rows)
    if extra:
        assert summary.details["total_above_parts"] == {
            "rows": sum(1 for _, _, e in rows if e),
            "residents": float(extra),
        }
    else:
        assert "total_above_parts" not in summary.details


# --- population: long -------------------------------------------------------------------------


def test_long_population_rejects(tmp_path: Path) -> None:
    text = (
        "area_code,origin,residents\n"
        "E05000001,Pakistani,30\n"
        "E05000001,,5\n"
        "E05000001,WhiteBrit,-1\n"
        "E05000001,Indian,abc\n"
        "E05000001,Pakistani,30\n"
        "E05000009,Pakistani,3\n"
        ",Pakistani,3\n"
        "E05000002,WhiteBrit,1,040\n"
    )
    text = text.replace("1,040", '"1,040"')
    pop, summary = read_pop(tmp_path, text)
    assert summary.details["format"] == "long"
    assert residents(pop.table) == {(CODE_A, "Pakistani"): 30.0, (CODE_B, "WhiteBrit"): 1040.0}
    assert summary.rejects["reason"].tolist() == [
        "missing origin",
        "negative residents",
        "non-numeric residents",
        "duplicate area_code and origin",
        "area_code not in areas",
        "missing area_code",
    ]
    assert summary.rows_read == 8 and summary.rows_used == 2
    assert_accounting(summary)


AGED = (
    "area_code,age_band,origin,residents\n"
    "E05000001,Aged 16 to 24 years,Pakistani,90\n"
    "E05000001,Aged 25 to 49 years,Pakistani,10\n"
    "E05000001,Aged 15 years and under,Pakistani,50\n"
    "E05000001,Aged 65 years and over,WhiteBrit,20\n"
    "E05000001,All ages,WhiteBrit,100\n"
)


@pytest.mark.parametrize(
    ("min_age", "pakistani", "white"),
    [
        (18, 90 * 7 / 9 + 10, 20.0),  # "Aged 16 to 24 years" counts 7/9
        (16, 100.0, 20.0),
        (25, 10.0, 20.0),
    ],
)
def test_long_age_bands_count_adults_pro_rata(
    tmp_path: Path, min_age: int, pakistani: float, white: float
) -> None:
    pop, summary = read_pop(tmp_path, AGED, population={"min_age": min_age})
    got = residents(pop.table)
    assert got[(CODE_A, "Pakistani")] == pytest.approx(pakistani, rel=1e-12)
    assert got[(CODE_A, "WhiteBrit")] == pytest.approx(white, rel=1e-12)
    assert reasons_by(summary, "age_band") == {"All ages": "unparseable age_band"}
    assert summary.details["base"] == f"residents aged {min_age} and over"
    assert_accounting(summary)


def test_long_age_bands_duplicate_only_within_a_band(tmp_path: Path) -> None:
    text = AGED + "E05000001,Aged 25 to 49 years,Pakistani,10\n"
    _, summary = read_pop(tmp_path, text)
    assert summary.reasons() == {"duplicate area_code and origin": 1, "unparseable age_band": 1}


@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, 110))
def test_age_fraction_is_the_share_of_whole_years_at_or_above_min_age(
    a: int, b: int, min_age: int
) -> None:
    low, high = min(a, b), max(a, b)
    band = f"Aged {low} to {high} years"
    expected = sum(1 for age in range(low, high + 1) if age >= min_age) / (high - low + 1)
    assert _age_fraction(band, min_age) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("band", "fraction"),
    [
        ("Aged 16 to 24 years", 7 / 9),
        ("Aged 18 to 19 years", 1.0),
        ("Aged 17 years", 0.0),
        ("Aged 4 years and under", 0.0),
        ("Aged under 18", 0.0),
        ("Aged 85 years and over", 1.0),
        ("90+", 1.0),
        ("Total", np.nan),
    ],
)
def test_age_fraction_of_published_band_names(band: str, fraction: float) -> None:
    got = _age_fraction(band, 18)
    if np.isnan(fraction):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(fraction)


# --- postcodes --------------------------------------------------------------------------------


def write_onspd(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "postcodes.csv",
        [
            {"pcd": "B1  1AA", "pcd2": "B1  1AA", "pcds": "B1 1AA", "lat": A_LAT, "long": A_LON},
            {"pcd": "B2  2BB", "pcd2": "B2  2BB", "pcds": "B2 2BB", "lat": B_LAT, "long": B_LON},
            {
                "pcd": "ZZ991ZZ",
                "pcd2": "ZZ99 1ZZ",
                "pcds": "ZZ99 1ZZ",
                "lat": 99.999999,
                "long": 0.0,
            },
            {"pcd": "", "pcd2": "", "pcds": "", "lat": A_LAT, "long": A_LON},
            {"pcd": "B1  1AA", "pcd2": "B1  1AA", "pcds": "b1 1aa", "lat": B_LAT, "long": B_LON},
        ],
    )


def test_read_postcodes_onspd_columns(tmp_path: Path) -> None:
    write_onspd(tmp_path)
    table, summary = read_postcodes(build_config(tmp_path, {"postcodes": "postcodes.csv"}))
    assert table is not None and summary is not None
    assert table["key"].tolist() == ["B11AA", "B22BB"]
    np.testing.assert_allclose(table["latitude"], [A_LAT, B_LAT], rtol=0, atol=1e-6)
    np.testing.assert_allclose(table["longitude"], [A_LON, B_LON], rtol=0, atol=1e-6)
    assert reasons_by(summary, "pcd2") == {
        "ZZ99 1ZZ": "invalid coordinates",
        "": "missing postcode",
        "B1  1AA": "duplicate postcode",
    }
    assert_accounting(summary)


def test_read_postcodes_missing_longitude_is_fatal(tmp_path: Path) -> None:
    write_text(tmp_path / "postcodes.csv", "pcds,lat\nB1 1AA,52.4\n")
    with pytest.raises(InputError) as info:
        read_postcodes(build_config(tmp_path, {"postcodes": "postcodes.csv"}))
    assert_fatal(info, tmp_path / "postcodes.csv", "column 'longitude': is missing")


def test_read_postcodes_not_configured(tmp_path: Path) -> None:
    assert read_postcodes(build_config(tmp_path)) == (None, None)


# --- sign-ups ---------------------------------------------------------------------------------

POSTCODES = pd.DataFrame({"key": ["B11AA"], "latitude": [A_LAT], "longitude": [A_LON]})
SIGNUP_COLUMNS = ["user_id", "joined", "latitude", "longitude", "easting", "northing", "postcode",
                  "origin", "status", "watch_role"]  # fmt: skip


def signup(uid: str, joined: str = "2018-03-01", **kw: Any) -> dict[str, Any]:
    row = dict.fromkeys(SIGNUP_COLUMNS, "")
    row.update(user_id=uid, joined=joined, origin="Polish", **kw)
    return row


def read_su(
    tmp_path: Path,
    rows: list[dict[str, Any]],
    *,
    postcodes: pd.DataFrame | None = POSTCODES,
    areas: gpd.GeoDataFrame,
    **sections: Any,
):
    write_csv(tmp_path / "signups.csv", rows)
    config = build_config(tmp_path, **sections)
    return read_signups(config, areas=areas, postcodes=postcodes)


def test_signups_every_reject_reason(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    rows = [
        signup("U1", "2018-01-01", latitude=A_LAT, longitude=A_LON),
        signup("U2", easting=401500, northing=286500),
        signup("U3", postcode="b11aa"),
        signup("", latitude=A_LAT, longitude=A_LON),
        signup("U5", "not a date", latitude=A_LAT, longitude=A_LON),
        signup("U6", "2018-11-01", latitude=A_LAT, longitude=A_LON),
        signup("U1", "2018-01-05", latitude=A_LAT, longitude=A_LON),
        signup("U8", status="banned", latitude=A_LAT, longitude=A_LON),
        signup("U9", watch_role="captain", latitude=A_LAT, longitude=A_LON),
        signup("U10", latitude=95, longitude=A_LON),
        signup("U11", easting=-5, northing=286500),
        signup("U12", postcode="ZZ9 9ZZ"),
        signup("U13"),
        signup("U14", latitude=FAR_LAT, longitude=FAR_LON),
        signup("U15", latitude=B_LAT, longitude=B_LON, postcode="ZZ9 9ZZ"),
        signup("U16", easting=400500, northing=286500, postcode="ZZ9 9ZZ"),
        signup("U17", latitude=B_LAT, longitude=B_LON, status="Deleted", watch_role="Member"),
    ]
    signups, summary = read_su(tmp_path, rows, areas=areas, run={"as_of": AS_OF})
    assert signups.as_of == AS_OF
    t = signups.table.set_index("user_id")
    assert t["area_code"].to_dict() == {
        "U1": CODE_A,
        "U2": CODE_B,  # easting/northing
        "U3": CODE_A,  # postcode
        "U15": CODE_B,  # latitude/longitude comes first; the unknown postcode is not used
        "U16": CODE_A,  # easting/northing comes before the postcode
        "U17": CODE_B,
    }
    assert t.loc["U17", "status"] == "deleted" and t.loc["U17", "watch_role"] == "member"
    assert t.loc["U1", "status"] == "active" and t.loc["U1", "watch_role"] == "none"
    assert t.loc["U1", "joined"] == pd.Timestamp("2018-01-01")  # the first U1, not the duplicate
    assert t.loc["U1", "label"] == "Polish"
    reasons = summary.rejects["reason"].tolist()
    assert reasons == [
        "missing user_id",
        "unparseable joined date",
        "joined after as_of",
        "duplicate user_id",
        "unknown status",
        "unknown watch_role",
        "invalid latitude/longitude",
        "invalid easting/northing",
        "postcode not found",
        "no location",
        "outside areas",
    ]
    assert summary.rejects["user_id"].tolist()[1:] == [
        "U5", "U6", "U1", "U8", "U9", "U10", "U11", "U12", "U13", "U14"
    ]  # fmt: skip
    assert summary.rows_read == 17 and summary.rows_used == 6
    assert summary.details["status_counts"] == {"active": 5, "deleted": 1}
    assert summary.details["watch_role_counts"] == {"member": 1, "none": 5}
    assert_accounting(summary)


def test_signups_easting_northing_only_are_located(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    rows = [
        {"user_id": "E1", "joined": "2018-01-01", "easting": 400500, "northing": 286500},
        {"user_id": "E2", "joined": "2018-01-02", "easting": 401500, "northing": 286500},
        {"user_id": "E3", "joined": "2018-01-03", "easting": 401900, "northing": 286100},
    ]
    signups, summary = read_su(tmp_path, rows, areas=areas, postcodes=None)
    t = signups.table
    assert t["area_code"].tolist() == [CODE_A, CODE_B, CODE_B]
    np.testing.assert_allclose(t["latitude"][:2], [A_LAT, B_LAT], atol=1e-7)
    np.testing.assert_allclose(t["longitude"][:2], [A_LON, B_LON], atol=1e-7)
    assert summary.rows_used == 3
    assert "sign-ups have no origin column; every origin is unknown" in summary.warnings


def test_signups_postcodes_match_whatever_their_spacing_and_case(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    write_onspd(tmp_path)
    postcodes, _ = read_postcodes(build_config(tmp_path, {"postcodes": "postcodes.csv"}))
    rows = [
        {"user_id": f"P{i}", "joined": "2018-01-01", "postcode": pc}
        for i, pc in enumerate(["B1 1AA", "b11aa", " B1  1aa ", "b2-2bb", "B22BB"])
    ]
    signups, summary = read_su(tmp_path, rows, areas=areas, postcodes=postcodes)
    assert signups.table["area_code"].tolist() == [CODE_A] * 3 + [CODE_B] * 2
    assert summary.rows_rejected == 0


def test_signups_as_of_defaults_to_the_latest_joined(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    rows = [
        signup("U1", "2018-01-01", latitude=A_LAT, longitude=A_LON),
        signup("U2", "15/03/2018", latitude=A_LAT, longitude=A_LON),  # UK day-first
        signup("U3", "2018-02-10 17:45:00", latitude=B_LAT, longitude=B_LON),
    ]
    signups, summary = read_su(tmp_path, rows, areas=areas)
    assert signups.as_of == dt.date(2018, 3, 15)
    assert signups.table["joined"].tolist() == [
        pd.Timestamp("2018-01-01"),
        pd.Timestamp("2018-03-15"),
        pd.Timestamp("2018-02-10 17:45:00"),
    ]
    assert summary.rows_rejected == 0


def test_signups_dates_with_and_without_time_zones_in_one_file(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    rows = [
        signup("U1", "2018-01-01T10:00:00Z", latitude=A_LAT, longitude=A_LON),
        signup("U2", "2018-01-02", latitude=A_LAT, longitude=A_LON),
        signup("U3", "2018-06-30T23:30:00-02:00", latitude=A_LAT, longitude=A_LON),
    ]
    signups, summary = read_su(tmp_path, rows, areas=areas, run={"as_of": "2018-06-30"})
    assert signups.table["user_id"].tolist() == ["U1", "U2"]
    assert reasons_by(summary, "user_id") == {"U3": "joined after as_of"}  # 1 July 01:30 UTC
    assert signups.table["joined"].iloc[0] == pd.Timestamp("2018-01-01 10:00:00")


def test_signups_column_mapping(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    rows = [{"Member Ref": "M1", "Date Registered": "2018-01-01", "Lat": A_LAT, "Lng": A_LON,
             "Ethnicity": "Irish"}]  # fmt: skip
    signups, _ = read_su(
        tmp_path,
        rows,
        areas=areas,
        columns={"signups": {"user_id": "Member Ref", "joined": "Date Registered"}},
    )
    assert signups.table[["user_id", "area_code", "label"]].values.tolist() == [
        ["M1", CODE_A, "Irish"]
    ]


def test_signups_postcode_rows_without_a_postcode_lookup_is_fatal(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    rows = [signup("U1", latitude=A_LAT, longitude=A_LON), signup("U2", postcode="B1 1AA")]
    with pytest.raises(InputError) as info:
        read_su(tmp_path, rows, areas=areas, postcodes=None)
    assert_fatal(
        info,
        tmp_path / "signups.csv",
        "1 rows are located only by postcode",
        "add inputs.postcodes",
    )


def test_signups_without_location_columns_is_fatal(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    with pytest.raises(InputError) as info:
        read_su(tmp_path, [{"user_id": "U1", "joined": "2018-01-01"}], areas=areas)
    assert_fatal(
        info,
        tmp_path / "signups.csv",
        "has no location columns",
        "add latitude,longitude or easting,northing or postcode",
    )


def test_signups_without_joined_is_fatal(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    with pytest.raises(InputError) as info:
        read_su(tmp_path, [{"user_id": "U1", "lat": A_LAT, "lon": A_LON}], areas=areas)
    assert_fatal(
        info,
        tmp_path / "signups.csv",
        "column 'joined': is missing",
        '[columns.signups] joined = "Your column name"',
    )


def test_signups_all_rejected_is_fatal(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    rows = [signup("U1", latitude=FAR_LAT, longitude=FAR_LON), signup("U2")]
    with pytest.raises(InputError) as info:
        read_su(tmp_path, rows, areas=areas)
    assert_fatal(
        info,
        tmp_path / "signups.csv",
        "no usable rows:",
        "outside areas (1 rows)",
        "no location (1 rows)",
        "coordinates are usually swapped or in another CRS",
    )


# --- crimes -----------------------------------------------------------------------------------

POLICE_UK = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude",
             "Location", "LSOA code", "LSOA name", "Crime type", "Last outcome category",
             "Context"]  # fmt: skip


def crime(cid: str, month: str, lon: Any, lat: Any, ctype: str, where: str) -> dict[str, Any]:
    row = dict.fromkeys(POLICE_UK, "")
    row.update(
        {
            "Crime ID": cid,
            "Month": month,
            "Reported by": "West Midlands Police",
            "Falls within": "West Midlands Police",
            "Longitude": lon,
            "Latitude": lat,
            "Location": where,
            "Crime type": ctype,
        }
    )
    return row


def write_crime_files(tmp_path: Path) -> None:
    folder = tmp_path / "crime"
    write_csv(
        folder / "2018-09-west-midlands-street.csv",
        [
            crime("c1", "2018-09", A_LON, A_LAT, "Burglary", "burglary A"),
            crime("", "2018-09", A_LON, A_LAT, "Anti-social behaviour", "asb 1"),
            crime("", "2018-09", A_LON, A_LAT, "Anti-social behaviour", "asb 2"),
            crime("c2", "2018-09", "", "", "Robbery", "no coords"),
            crime("c3", "2018-09", B_LON, B_LAT, "Violence and sexual offences", "violence B"),
        ],
    )
    write_csv(
        folder / "2018-10-west-midlands-street.csv",
        [
            crime("c1", "2018-10", A_LON, A_LAT, "Burglary", "repeat c1"),
            crime("c4", "2018-11", A_LON, A_LAT, "Burglary", "november"),
            crime("c5", "2018-10", FAR_LON, FAR_LAT, "Burglary", "far"),
            crime("c6", "2018-10", B_LON, B_LAT, "Vehicle crime", "vehicle B"),
            crime("c7", "2018-10", B_LON, B_LAT, "Theft from the person", "theft person B"),
            crime("c8", "2018-10", A_LON, A_LAT, "Shoplifting", "shoplifting A"),
            crime("c9", "Oct 2018", A_LON, A_LAT, "Shoplifting", "bad month"),
            crime("c10", "2018-10", A_LON, A_LAT, "", "no type"),
            crime("c11", "2018-10", A_LON, 95, "Drugs", "bad lat"),
        ],
    )


def test_crimes_police_uk_files(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    write_crime_files(tmp_path)
    config = build_config(tmp_path, {"crimes": ["crime/*-street.csv"]})
    table, summary = read_crimes(config, areas=areas, as_of=AS_OF, crime_types=crime_types())
    assert table is not None and summary is not None
    assert [p.name for p in summary.files] == [
        "2018-09-west-midlands-street.csv",
        "2018-10-west-midlands-street.csv",
    ]
    assert table["crime_type"].tolist() == [
        "Burglary",
        "Anti-social behaviour",
        "Anti-social behaviour",  # a blank Crime ID is never a duplicate
        "Violence and sexual offences",
        "Vehicle crime",
        "Theft from the person",
        "Shoplifting",
    ]
    assert table["area_code"].tolist() == [CODE_A, CODE_A, CODE_A, CODE_B, CODE_B, CODE_B, CODE_A]
    assert table["is_asb"].tolist() == [False, True, True, False, False, False, False]
    assert table["is_sac"].tolist() == [True, False, False, False, True, True, False]
    assert table["month"].tolist() == ["2018-09"] * 4 + ["2018-10"] * 3
    assert summary.details["asb_rows"] == 2
    assert summary.details["months"] == ["2018-09", "2018-10"]
    assert reasons_by(summary, "Location") == {
        "no coords": "no coordinates",
        "repeat c1": "duplicate Crime ID",
        "november": "month after as_of",
        "far": "outside areas",
        "bad month": "unparseable Month",
        "no type": "missing crime type",
        "bad lat": "invalid coordinates",
    }
    # rejects hold the file and line, then the columns as read
    rej = summary.rejects
    assert list(rej.columns) == ["file", "row", *POLICE_UK, "reason"]
    first = rej.iloc[0]
    assert (first["file"], first["row"]) == ("2018-09-west-midlands-street.csv", 5)
    assert summary.rows_read == 14 and summary.rows_used == 7
    assert summary.warnings == ()
    assert_accounting(summary)


def test_crimes_sac_types_from_config_and_unknown_types_warned(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    write_csv(
        tmp_path / "c.csv",
        [
            crime("r1", "2018-09", A_LON, A_LAT, "Robbery", "robbery"),
            crime("b1", "2018-09", A_LON, A_LAT, "Burglary", "burglary"),
            crime("x1", "2018-09", A_LON, A_LAT, "Alien abduction", "alien"),
        ],
    )
    config = build_config(tmp_path, {"crimes": "c.csv"}, crimes={"sac_types": ["Burglary"]})
    table, summary = read_crimes(config, areas=areas, as_of=AS_OF, crime_types=crime_types())
    assert table["is_sac"].tolist() == [False, True, False]
    assert summary.warnings == (
        "crime types not in the police.uk list (counted as crimes): Alien abduction",
    )
    assert summary.rows_used == 3


def test_crimes_missing_column_in_one_file_names_that_file(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    write_csv(tmp_path / "crime" / "a.csv", [crime("c1", "2018-09", A_LON, A_LAT, "Drugs", "x")])
    bad = pd.DataFrame([crime("c2", "2018-09", A_LON, A_LAT, "Drugs", "y")]).drop(
        columns="Crime type"
    )
    bad.to_csv(tmp_path / "crime" / "b.csv", index=False)
    config = build_config(tmp_path, {"crimes": ["crime/*.csv"]})
    with pytest.raises(InputError) as info:
        read_crimes(config, areas=areas, as_of=AS_OF, crime_types=crime_types())
    assert info.value.path == tmp_path / "crime" / "b.csv"
    assert len(info.value.problems) == 1
    assert_fatal(
        info,
        tmp_path / "crime" / "b.csv",
        "column 'crime_type': is missing (looked for Crime type)",
        "[columns.crimes] crime_type",
    )
    assert str(tmp_path / "crime" / "a.csv") not in str(info.value)


def test_crimes_glob_matching_nothing_is_fatal(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    config = build_config(tmp_path, {"crimes": ["crime/*.csv"]})
    with pytest.raises(InputError) as info:
        read_crimes(config, areas=areas, as_of=AS_OF, crime_types=crime_types())
    assert "matches no file" in str(info.value)
    assert str(tmp_path / "crime" / "*.csv") in str(info.value)


def test_crimes_not_configured(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    config = build_config(tmp_path)
    assert read_crimes(config, areas=areas, as_of=AS_OF, crime_types=crime_types()) == (
        None,
        None,
    )


# --- ratings ----------------------------------------------------------------------------------

SIGNUPS = pd.DataFrame(
    {"user_id": ["U1", "U2"], "latitude": [A_LAT, B_LAT], "longitude": [A_LON, B_LON]}
)


def rating(note: str, value: Any, user: str = "", lat: Any = "", lon: Any = "",
           at: str = "2018-05-01") -> dict[str, Any]:  # fmt: skip
    return {"rated_at": at, "rating": value, "user_id": user, "latitude": lat,
            "longitude": lon, "note": note}  # fmt: skip


def test_ratings_by_user_and_by_point(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    write_csv(
        tmp_path / "ratings.csv",
        [
            rating("by user", 5, "U1"),
            rating("by point", 3, lat=B_LAT, lon=B_LON),
            rating("point wins", 6, "U2", A_LAT, A_LON),
            rating("seven", 7, "U1"),
            rating("zero", 0, "U1"),
            rating("half", 2.5, "U1"),
            rating("unknown user", 4, "U99"),
            rating("bad date", 4, "U1", at="someday"),
            rating("late", 4, "U1", at="2018-11-01"),
            rating("nowhere", 4),
            rating("far", 4, lat=FAR_LAT, lon=FAR_LON),
            rating("bad lat", 4, lat=-91, lon=A_LON),
        ],
    )
    config = build_config(tmp_path, {"ratings": "ratings.csv"})
    table, summary = read_ratings(config, areas=areas, signups=SIGNUPS, as_of=AS_OF)
    assert table is not None and summary is not None
    assert table[["rating", "area_code"]].values.tolist() == [
        [5.0, CODE_A],
        [3.0, CODE_B],
        [6.0, CODE_A],
    ]
    assert reasons_by(summary, "note") == {
        "seven": "rating not an integer 1 to 6",
        "zero": "rating not an integer 1 to 6",
        "half": "rating not an integer 1 to 6",
        "unknown user": "unknown user_id",
        "bad date": "unparseable rated_at",
        "late": "rated after as_of",
        "nowhere": "no location",
        "far": "outside areas",
        "bad lat": "invalid latitude/longitude",
    }
    assert_accounting(summary)


def test_ratings_with_only_a_user_id_column(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    write_text(tmp_path / "ratings.csv", "date,score,user\n2018-05-01,2,U1\n2018-05-02,4,U2\n")
    config = build_config(tmp_path, {"ratings": "ratings.csv"})
    table, summary = read_ratings(config, areas=areas, signups=SIGNUPS, as_of=AS_OF)
    assert table["area_code"].tolist() == [CODE_A, CODE_B]
    np.testing.assert_allclose(table["latitude"], [A_LAT, B_LAT])
    np.testing.assert_allclose(table["longitude"], [A_LON, B_LON])
    assert summary.rows_used == 2


def test_ratings_without_any_location_is_fatal(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    write_text(tmp_path / "ratings.csv", "rated_at,rating\n2018-05-01,2\n")
    config = build_config(tmp_path, {"ratings": "ratings.csv"})
    with pytest.raises(InputError) as info:
        read_ratings(config, areas=areas, signups=SIGNUPS, as_of=AS_OF)
    assert_fatal(
        info,
        tmp_path / "ratings.csv",
        "has no location",
        "add latitude,longitude or a user_id of a sign-up",
    )


def test_ratings_not_configured(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    config = build_config(tmp_path)
    assert read_ratings(config, areas=areas, signups=SIGNUPS, as_of=AS_OF) == (None, None)


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


def test_nomis_bulk_wide_table_total_subtotals_and_decorated_names(tmp_path: Path) -> None:
    text = (
        "date,geography,geography code,"
        "Ethnic Group: All categories: Ethnic group; measures: Value,"
        "Ethnic Group: White; measures: Value,"
        "Ethnic Group: White: English/Welsh/Scottish/Northern Irish/British; measures: Value,"
        "Ethnic Group: White: Irish; measures: Value,"
        "Ethnic Group: Asian/Asian British: Pakistani; measures: Value\n"
        f"2011,Ward A,{CODE_A},100,70,60,10,30\n"
        f"2011,Ward B,{CODE_B},50,45,40,5,5\n"
    )
    pop, summary = read_pop(tmp_path, text, areas=WIDE_CODES)
    # the total is recognised; the "White" subtotal is not an origin (it would count twice)
    assert summary.details["total_column"].startswith("Ethnic Group: All categories")
    assert pop.origins == (
        "Asian/Asian British: Pakistani",
        "White: English/Welsh/Scottish/Northern Irish/British",
        "White: Irish",
    )
    assert pop.table["residents"].sum() == 150
    assert any(
        "subtotal columns not counted" in w and "White; measures" in w for w in summary.warnings
    )
    assert summary.rows_rejected == 0
