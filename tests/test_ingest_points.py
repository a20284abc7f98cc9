"""Ingest of point inputs (targeting.ingest.points): postcode centroids, sign-ups, police.uk
crimes and message ratings. Every reject reason, every fatal message, and rows read = used +
rejected.
"""

from __future__ import annotations

import datetime as dt
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
    CODE_A,
    CODE_B,
    FAR_LAT,
    FAR_LON,
    assert_accounting,
    assert_fatal,
    build_config,
    reasons_by,
    write_csv,
    write_text,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from targeting.errors import InputError
from targeting.ingest import (
    normalise_postcode,
    read_crimes,
    read_postcodes,
    read_ratings,
    read_signups,
)
from targeting.ingest.points import _parse_months
from targeting.reference import REFERENCE_DIR

AS_OF = dt.date(2018, 10, 31)


def crime_types() -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / "police_uk_crime_types.csv", dtype=str)


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


def test_read_postcodes_duplicate_counted_only_among_valid_rows(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "postcodes.csv",
        [
            {"pcds": "B1 1AA", "lat": 99.5, "long": A_LON, "note": "bad first"},
            {"pcds": "B1 1AA", "lat": A_LAT, "long": A_LON, "note": "usable second"},
            {"pcds": "B2 2BB", "lat": B_LAT, "long": B_LON, "note": "ok"},
            {"pcds": "b2 2bb", "lat": A_LAT, "long": A_LON, "note": "dup"},
        ],
    )
    table, summary = read_postcodes(build_config(tmp_path, {"postcodes": "postcodes.csv"}))
    assert table is not None and summary is not None
    assert table["key"].tolist() == ["B11AA", "B22BB"]
    np.testing.assert_allclose(table["latitude"], [A_LAT, B_LAT], rtol=0, atol=1e-9)
    assert reasons_by(summary, "note") == {
        "bad first": "invalid coordinates",
        "dup": "duplicate postcode",
    }
    assert_accounting(summary)


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


def test_signups_duplicate_counted_only_among_valid_rows(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    rows = [
        signup("U1", "not a date", latitude=A_LAT, longitude=A_LON),
        signup("U1", "2018-01-05", latitude=B_LAT, longitude=B_LON),  # the only usable U1
        signup("U2", "2018-02-01", latitude=A_LAT, longitude=A_LON),
        signup("U2", "2018-02-02", latitude=B_LAT, longitude=B_LON),  # a true copy
    ]
    signups, summary = read_su(tmp_path, rows, areas=areas, run={"as_of": AS_OF})
    t = signups.table.set_index("user_id")
    assert t["area_code"].to_dict() == {"U1": CODE_B, "U2": CODE_A}
    assert t.loc["U1", "joined"] == pd.Timestamp("2018-01-05")
    assert summary.rejects[["user_id", "joined", "reason"]].values.tolist() == [
        ["U1", "not a date", "unparseable joined date"],
        ["U2", "2018-02-02", "duplicate user_id"],
    ]
    assert summary.rows_read == 4 and summary.rows_used == 2
    assert_accounting(summary)


def test_signups_easting_northing_only_are_located(tmp_path: Path, areas: gpd.GeoDataFrame) -> None:
    rows = [
        {"user_id": "E1", "joined": "2018-01-01", "easting": 400500, "northing": 286500,
         "origin": "Pakistani"},
        {"user_id": "E2", "joined": "2018-01-02", "easting": 401500, "northing": 286500,
         "origin": ""},
        {"user_id": "E3", "joined": "2018-01-03", "easting": 401900, "northing": 286100,
         "origin": "England"},
    ]  # fmt: skip
    signups, summary = read_su(tmp_path, rows, areas=areas, postcodes=None)
    t = signups.table
    assert t["area_code"].tolist() == [CODE_A, CODE_B, CODE_B]
    np.testing.assert_allclose(t["latitude"][:2], [A_LAT, B_LAT], atol=1e-7)
    np.testing.assert_allclose(t["longitude"][:2], [A_LON, B_LON], atol=1e-7)
    assert summary.rows_used == 3
    assert t["label"].tolist() == ["Pakistani", "", "England"]


def test_signups_postcodes_match_whatever_their_spacing_and_case(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    write_onspd(tmp_path)
    postcodes, _ = read_postcodes(build_config(tmp_path, {"postcodes": "postcodes.csv"}))
    rows = [
        {"user_id": f"P{i}", "joined": "2018-01-01", "postcode": pc, "origin": "England"}
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
        read_su(
            tmp_path, [{"user_id": "U1", "joined": "2018-01-01", "origin": "England"}], areas=areas
        )
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


def test_signups_all_outside_areas_suggests_swapped_or_other_crs(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    # latitude and longitude swapped: valid numbers, but a point in the Indian Ocean
    rows = [
        signup("U1", latitude=A_LON, longitude=A_LAT),
        signup("U2", latitude=B_LON, longitude=B_LAT),
    ]
    with pytest.raises(InputError) as info:
        read_su(tmp_path, rows, areas=areas)
    assert_fatal(
        info,
        tmp_path / "signups.csv",
        "no usable rows: outside areas (2 rows)",
        "swapped or in another CRS",
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
    later = rej[rej["Location"] == "bad lat"].iloc[0]  # the second file's ninth row
    assert (later["file"], later["row"]) == ("2018-10-west-midlands-street.csv", 10)
    assert summary.rows_read == 14 and summary.rows_used == 7
    assert summary.warnings == ()
    assert_accounting(summary)


def test_crimes_duplicate_counted_only_among_valid_rows(
    tmp_path: Path, areas: gpd.GeoDataFrame
) -> None:
    write_csv(
        tmp_path / "c.csv",
        [
            crime("c1", "2018-09", "", "", "Burglary", "c1 without coordinates"),
            crime("c1", "2018-09", B_LON, B_LAT, "Burglary", "c1 located"),  # the only usable c1
            crime("c2", "2018-09", A_LON, A_LAT, "Robbery", "c2"),
            crime("c2", "2018-10", A_LON, A_LAT, "Robbery", "c2 again"),  # a true copy
        ],
    )
    config = build_config(tmp_path, {"crimes": "c.csv"})
    table, summary = read_crimes(config, areas=areas, as_of=AS_OF, crime_types=crime_types())
    assert table is not None and summary is not None
    assert table[["crime_type", "area_code"]].values.tolist() == [
        ["Burglary", CODE_B],
        ["Robbery", CODE_A],
    ]
    assert reasons_by(summary, "Location") == {
        "c1 without coordinates": "no coordinates",
        "c2 again": "duplicate Crime ID",
    }
    assert summary.rows_read == 4 and summary.rows_used == 2
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


def test_visited_log_rejects_bad_cells_dates_and_resolutions(tmp_path) -> None:
    import datetime as dt

    import h3

    from targeting.config import config_from_dict
    from targeting.ingest import read_visited

    good = h3.latlng_to_cell(52.52, -1.84, 9)
    coarse = h3.latlng_to_cell(52.52, -1.84, 8)
    (tmp_path / "visited.csv").write_text(
        "cell,visited_on\n"
        f"{good},2018-10-20\n"
        f"{good.upper()},2018-10-01\n"
        "not-a-cell,2018-10-20\n"
        f"{coarse},2018-10-20\n"
        f"{good},someday\n"
        f"{good},2018-11-20\n",
        encoding="utf-8",
    )
    config = config_from_dict(
        {"inputs": {"areas": "a", "population": "p", "signups": "s", "visited": "visited.csv"}},
        path=tmp_path / "c.toml",
    )
    table, summary = read_visited(config, as_of=dt.date(2018, 10, 31))
    assert table["cell"].tolist() == [good, good]
    assert summary.reasons() == {
        "not an H3 cell": 1,
        "cell not at the grid's resolution 9": 1,
        "unparseable visited_on": 1,
        "visited after as_of": 1,
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=10)), max_size=20))
@example(["b35 6ab", "B35-6AB", "ß1 1aa", "é1 2", " w1a 1aa ", "", None, "b35\u00a06ab"])
def test_postcodes_normalise_to_upper_case_letters_and_digits(values: list[str | None]) -> None:
    """Spaces, punctuation and case never stop a postcode matching, whatever the text: the
    same as keeping only A-Z and 0-9 after upper-casing (missing stays missing)."""
    column = pd.Series(values, dtype="str", name="postcode")
    expected = column.str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)
    pd.testing.assert_series_equal(normalise_postcode(column), expected)


@given(st.lists(st.sampled_from(["2018-09", " 2018-10 ", "2018-13", "", "Sept 2018", None]),
                max_size=30))  # fmt: skip
def test_crime_months_parse_as_a_whole_column_does(values: list[str | None]) -> None:
    # each distinct month is parsed once; the result is what parsing every row gives
    text = pd.Series(values, dtype="str", index=np.arange(len(values)) * 2)
    expected = pd.to_datetime(text.astype(str).str.strip(), format="%Y-%m", errors="coerce")
    pd.testing.assert_series_equal(_parse_months(text), expected)
