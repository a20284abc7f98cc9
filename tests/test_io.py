"""Reading files as users have them: tables in any common encoding, boundaries in any declared CRS."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import BNG, WARD_A_BNG, WARD_B_BNG, WGS84, wards_frame, write_text
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import GeometryCollection, LineString, Point, Polygon, box

from targeting.errors import InputError
from targeting.io import (
    csv_layout,
    expand_globs,
    find_column,
    floats_as_text,
    normalise_name,
    parse_numbers,
    polygonal_part,
    read_table,
    read_vector,
    sha256_file,
)

# --- read_table -----------------------------------------------------------------------------


def test_utf8_csv_is_read_as_text(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "t.csv", "code,name,count\nE05000001,Café Ward,007\nE05000002,,12\n"
    )
    frame = read_table(path, input_name="t")
    assert list(frame.columns) == ["code", "name", "count"]
    assert frame["name"].tolist() == ["Café Ward", ""]
    assert frame["count"].tolist() == ["007", "12"]  # text: leading zeros kept
    assert frame["code"].tolist() == ["E05000001", "E05000002"]


@pytest.mark.parametrize(
    ("text", "delimiter", "header"),
    [
        ("a,b,c\n1,2,3\n", ",", 0),
        ("a;b;c\n1,5;2;3\n4;5,5;6\n", ";", 0),  # decimal commas inside fields
        ("a\tb\n1\t2\n", "\t", 0),
        ("a|b|c\n1|2|3\n", "|", 0),
        ('\n"Title"\n"Units :","Persons"\n\n"code","x","y"\n\n"A",1,2\n"B",3,4\n"Footer"\n', ",", 4),
        ("just one column\nvalue\n", ",", 0),
    ],
)  # fmt: skip
def test_csv_layout_finds_the_delimiter_and_the_header(
    text: str, delimiter: str, header: int
) -> None:
    assert csv_layout(text) == (delimiter, header)


@pytest.mark.parametrize(
    ("text", "layout"),
    [
        ("id;lat;lon\nU1;52,47;-1,99\n", "semicolon-separated, decimal commas read as points"),
        ("id\tlat\tlon\nU1\t52.47\t-1.99\n", "tab-separated"),
        ("id|lat|lon\nU1|52.47|-1.99\n", "pipe-separated"),
    ],
)
def test_other_delimiters_read_the_same_table(tmp_path: Path, text: str, layout: str) -> None:
    frame = read_table(write_text(tmp_path / "t.csv", text), input_name="signups")
    assert frame.to_dict(orient="list") == {"id": ["U1"], "lat": ["52.47"], "lon": ["-1.99"]}
    assert frame.attrs["layout"] == layout


def test_a_table_between_title_and_footer_lines_is_found(tmp_path: Path) -> None:
    text = (
        '\n"TS021 - Ethnic group"\n"ONS Crown Copyright Reserved"\n"Population :","All"\n\n'
        '"area","Total","%"\n\n"E01 : One",10,100.0\n"E02 : Two",20,100.0\n\n'
        '"In order to protect against disclosure, records have been swapped."\n'
    )
    frame = read_table(write_text(tmp_path / "nomis.csv", text), input_name="population")
    assert list(frame.columns) == ["area", "Total", "%"]
    assert frame["Total"].tolist() == ["10", "20"]
    assert frame.attrs["layout"] == (
        "the table at line 6 (5 title line(s) above it and 1 footer line(s) below it left out)"
    )


def test_utf8_with_bom_header_has_no_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfuser_id,origin\nU1,Polish\n")
    frame = read_table(path, input_name="signups")
    assert list(frame.columns) == ["user_id", "origin"]
    assert frame["user_id"].tolist() == ["U1"]


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("latin-1", "Zoë Ward, Ærø"),
        ("cp1252", "€5 \u2013 O\u2019Neill"),  # en dash, curly quote
    ],
)
def test_latin1_and_cp1252_are_decoded(tmp_path: Path, encoding: str, text: str) -> None:
    path = write_text(tmp_path / "x.csv", f'code,name\nW1,"{text}"\n', encoding=encoding)
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the file really is not UTF-8
    frame = read_table(path, input_name="x")
    assert frame["name"].tolist() == [text]


def test_crlf_line_endings_leave_no_carriage_returns(tmp_path: Path) -> None:
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"code,total\r\nW1,10\r\nW2,20\r\n")
    frame = read_table(path, input_name="x")
    assert list(frame.columns) == ["code", "total"]
    assert frame["total"].tolist() == ["10", "20"]
    assert len(frame) == 2


def test_header_names_are_stripped(tmp_path: Path) -> None:
    path = write_text(tmp_path / "x.csv", " code , total\nW1,10\n")
    assert list(read_table(path, input_name="x").columns) == ["code", "total"]


def test_parquet_is_read_as_text_with_blanks_for_nulls(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"code": ["W1", None], "residents": [12, 7], "share": [0.5, np.nan]}).to_parquet(
        path
    )
    frame = read_table(path, input_name="population")
    assert frame["code"].tolist() == ["W1", ""]
    assert frame["residents"].tolist() == ["12", "7"]
    assert frame["share"].tolist() == ["0.5", ""]
    assert all(isinstance(v, str) for v in frame.to_numpy().ravel())


def test_empty_file_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError) as info:
        read_table(path, input_name="signups")
    message = str(info.value)
    assert str(path) in message
    assert "file is empty" in message
    assert "Fix: export the data again" in message
    assert info.value.input_name == "signups"


def test_header_only_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "head.csv", "user_id,joined,latitude,longitude\n")
    with pytest.raises(InputError) as info:
        read_table(path, input_name="signups")
    message = str(info.value)
    assert str(path) in message
    assert "has a header but no rows" in message
    assert "Fix:" in message


def test_missing_file_is_an_input_error_naming_the_config_key(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(InputError) as info:
        read_table(path, input_name="ratings")
    assert str(path) in str(info.value)
    assert "file not found" in str(info.value)
    assert "check [inputs] ratings" in str(info.value)


def test_unreadable_parquet_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(InputError) as info:
        read_table(path, input_name="population")
    assert str(path) in str(info.value)
    assert "cannot be read as a table" in str(info.value)
    assert "save it as UTF-8 CSV or Parquet" in str(info.value)


REAL_CRIME = (
    Path(__file__).resolve().parents[2] / "shared/realdata/crime/2014-01-west-midlands-street.csv"
)

_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters='"'),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_cell, _cell), min_size=1, max_size=5))
@example([("", ";;"), ("", ";;0")])  # semicolons in a comma CSV's values
@example([(";", ";;")])
def test_any_utf8_text_comes_back_exactly_as_written(rows: list[tuple[str, str]]) -> None:
    frame = pd.DataFrame(rows, columns=["a", "b"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        frame.to_csv(path, index=False, encoding="utf-8")
        back = read_table(path, input_name="t")
    assert back["a"].tolist() == [r[0] for r in rows]
    assert back["b"].tolist() == [r[1] for r in rows]


# --- find_column and small helpers ----------------------------------------------------------


def test_find_column_mapping_wins_and_must_exist() -> None:
    cols = ["area_code", "Ward", "WD13CD"]
    assert find_column(cols, "area_code", mapping={"area_code": "Ward"}) == "Ward"
    # a mapped column that is not in the file is missing, even if another would match
    assert find_column(cols, "area_code", mapping={"area_code": "WARD_ID"}) is None


def test_find_column_canonical_then_alias_ignoring_case_and_punctuation() -> None:
    assert find_column(["x", "Area Code"], "area_code", mapping={}) == "Area Code"
    assert find_column(["CRIME_ID", "month"], "crime_id", mapping={}, aliases=("Crime ID",)) == (
        "CRIME_ID"
    )
    assert find_column(["lat", "long"], "longitude", mapping={}, aliases=("lon", "long")) == "long"
    assert find_column(["lat", "long"], "latitude", mapping={}, aliases=("lat",)) == "lat"


def test_find_column_pattern_finds_ons_ward_codes() -> None:
    cols = ["FID", "LAD13CD", "WD13CD", "WD13NM"]
    patterns = (r"WD\d\dCD", r"(LAD|LSOA|MSOA|OA)\d\dCD")
    assert find_column(cols, "area_code", mapping={}, patterns=patterns) == "WD13CD"
    # the first pattern wins over a later one whatever the column order
    assert find_column(["WD22CD"], "area_code", mapping={}, patterns=patterns) == "WD22CD"
    assert find_column(["LAD21CD"], "area_code", mapping={}, patterns=patterns) == "LAD21CD"
    assert find_column(["FID"], "area_code", mapping={}, patterns=patterns) is None


@given(st.text(max_size=20))
def test_normalise_name_ignores_case_and_punctuation(name: str) -> None:
    norm = normalise_name(name)
    assert normalise_name(norm) == norm
    assert normalise_name(name.upper()) == normalise_name(name.lower()) or not name.isascii()
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789" for c in norm)


def test_parse_numbers_handles_thousands_blanks_and_text() -> None:
    out = parse_numbers(pd.Series(["1,234", " 5 ", "", "x", "-3.5"]))
    assert out[0] == 1234 and out[1] == 5 and out[4] == -3.5
    assert np.isnan(out[2]) and np.isnan(out[3])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.from_regex(r"\A[ ]?[+-]?[0-9,]{0,12}(\.[0-9]{0,17})?([eE][+-]?[0-9]{1,3})?[ ]?\Z"),
            st.floats(allow_nan=True, allow_infinity=True).map(str),
            st.text(max_size=6),
            st.none(),
        ),
        min_size=1, max_size=40,
    )
)  # fmt: skip
@example(["1e500", "0x10", "inf", "nan", "1_000", "\xa04", " 4 ", "1.", ".5", "+3", "", None])
def test_parse_numbers_is_pandas_to_numeric_value_for_value(values) -> None:
    """The pyarrow cast of plain decimals gives what pandas' `to_numeric` gives, every value,
    but correctly rounded (Python's `float`) where pandas is a unit in the last place off."""
    _assert_read_as_pandas_reads(values)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.from_regex(r"\A[ ]?[+-]?[0-9,]{1,12}(\.[0-9]{0,17})?([eE][+-]?[0-9]{1,3})?[ ]?\Z"),
            st.floats(allow_nan=True, allow_infinity=True).map(str),
            st.sampled_from(["", " ", "Infinity", "-inf", "NaN"]),
            st.none(),
        ),
        min_size=1, max_size=40,
    )
)  # fmt: skip
def test_a_column_of_numbers_and_blanks_cast_at_once_reads_as_pandas_reads(values) -> None:
    """Numbers, blanks and the words for them only: the column is cast whole, to the same
    values as read one by one."""
    _assert_read_as_pandas_reads(values)


def _assert_read_as_pandas_reads(values: list[str | None]) -> None:
    series = pd.Series(values, dtype=object)
    cleaned = series.astype(str).str.strip().str.replace(",", "", regex=False)
    want = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float)
    got = parse_numbers(series)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.allclose(got, want, rtol=3e-16, atol=0, equal_nan=True)
    plain = cleaned.str.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?").to_numpy(bool)
    exact = [float(v) for v in cleaned[plain]]
    assert np.array_equal(got[plain], np.array(exact, dtype=float))


def test_sha256_file_is_the_digest_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert sha256_file(path) == hashlib.sha256(b"abc").hexdigest()
    assert sha256_file(path).startswith("ba7816bf")


def test_expand_globs_sorted_unique_and_unmatched_is_fatal(tmp_path: Path) -> None:
    for name in ("2018-10.csv", "2018-09.csv"):
        write_text(tmp_path / "crime" / name, "x\n1\n")
    pattern = str(tmp_path / "crime" / "*.csv")
    files = expand_globs([pattern, str(tmp_path / "crime" / "2018-09.csv")], input_name="crimes")
    assert [f.name for f in files] == ["2018-09.csv", "2018-10.csv"]
    with pytest.raises(InputError) as info:
        expand_globs([pattern, str(tmp_path / "nothing" / "*.csv")], input_name="crimes")
    assert str(tmp_path / "nothing" / "*.csv") in str(info.value)
    assert "matches no file" in str(info.value)
    assert "[inputs] crimes" in str(info.value)


# --- read_vector ----------------------------------------------------------------------------


def test_geojson_in_wgs84_is_read_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "wards.geojson"
    wards = wards_frame()
    wards.to_file(path, driver="GeoJSON")
    frame, repaired = read_vector(path, input_name="areas")
    assert repaired == 0
    assert frame.crs.to_epsg() == 4326
    assert frame["WD13CD"].tolist() == wards["WD13CD"].tolist()
    np.testing.assert_allclose(frame.total_bounds, wards.total_bounds, atol=1e-7)


def _bng_corner_in_wgs84() -> tuple[float, float]:
    import pyproj

    tr = pyproj.Transformer.from_crs(BNG, WGS84, always_xy=True)
    return tr.transform(400000, 286000)


def _check_reprojected_wards(frame: gpd.GeoDataFrame) -> None:
    assert frame.crs.to_epsg() == 4326
    corners = np.asarray(frame.geometry.iloc[0].exterior.coords)
    lon, lat = _bng_corner_in_wgs84()
    # the corner at (400000, 286000) is a vertex of ward A, moved exactly as pyproj moves it
    assert np.abs(corners - [lon, lat]).sum(axis=1).min() < 1e-7
    # by hand: easting 400000 is the BNG central meridian (2 W), northing 286000 is about 52.47 N;
    # the OSGB36 -> WGS84 datum shift moves it by about 100 m (0.0015 degrees)
    assert -2.003 < lon < -1.997
    assert 52.46 < lat < 52.48
    assert frame.geometry.iloc[0].contains(shapely.Point(-1.994, 52.476))


def test_geopackage_in_bng_is_reprojected_to_wgs84(tmp_path: Path) -> None:
    path = tmp_path / "wards.gpkg"
    gpd.GeoDataFrame({"WD13CD": ["A", "B"]}, geometry=[WARD_A_BNG, WARD_B_BNG], crs=BNG).to_file(
        path, driver="GPKG"
    )
    frame, repaired = read_vector(path, input_name="areas")
    assert repaired == 0
    _check_reprojected_wards(frame)


def test_shapefile_with_prj_is_reprojected(tmp_path: Path) -> None:
    path = tmp_path / "wards.shp"
    gpd.GeoDataFrame({"WD13CD": ["A", "B"]}, geometry=[WARD_A_BNG, WARD_B_BNG], crs=BNG).to_file(
        path
    )
    assert path.with_suffix(".prj").is_file()
    frame, _ = read_vector(path, input_name="areas")
    _check_reprojected_wards(frame)


def test_shapefile_without_prj_is_an_input_error_about_the_crs(tmp_path: Path) -> None:
    path = tmp_path / "wards.shp"
    gpd.GeoDataFrame({"WD13CD": ["A", "B"]}, geometry=[WARD_A_BNG, WARD_B_BNG], crs=BNG).to_file(
        path
    )
    path.with_suffix(".prj").unlink()
    with pytest.raises(InputError) as info:
        read_vector(path, input_name="areas")
    message = str(info.value)
    assert str(path) in message
    assert "declares no coordinate reference system" in message
    assert "CRS" in message
    assert ".prj" in message


def test_geoparquet_is_read_and_reprojected(tmp_path: Path) -> None:
    path = tmp_path / "wards.parquet"
    gpd.GeoDataFrame({"WD13CD": ["A", "B"]}, geometry=[WARD_A_BNG, WARD_B_BNG], crs=BNG).to_parquet(
        path
    )
    frame, _ = read_vector(path, input_name="areas")
    _check_reprojected_wards(frame)
    assert frame["WD13CD"].tolist() == ["A", "B"]


def test_bow_tie_polygon_is_repaired_not_dropped_and_counted(tmp_path: Path) -> None:
    s = 0.01
    x0, y0 = -2.0, 52.0
    bow_tie = Polygon(
        [(x0, y0), (x0 + 2 * s, y0 + 2 * s), (x0 + 2 * s, y0), (x0, y0 + 2 * s), (x0, y0)]
    )
    assert not bow_tie.is_valid
    path = tmp_path / "areas.geojson"
    gpd.GeoDataFrame(
        {"code": ["BOW", "OK"]},
        geometry=[bow_tie, box(x0 + 3 * s, y0, x0 + 4 * s, y0 + s)],
        crs=WGS84,
    ).to_file(path, driver="GeoJSON")
    frame, repaired = read_vector(path, input_name="areas")
    assert repaired == 1
    assert frame["code"].tolist() == ["BOW", "OK"]
    fixed = frame.geometry.iloc[0]
    assert fixed.is_valid
    assert fixed.geom_type == "MultiPolygon"
    # two triangles of base 2s and height s: total area 2 s^2 (the original's signed area is 0)
    assert fixed.area == pytest.approx(2 * s * s, rel=1e-9)
    assert frame.geometry.iloc[1].equals(box(x0 + 3 * s, y0, x0 + 4 * s, y0 + s))


def test_polygonal_part_keeps_only_polygons() -> None:
    square = box(0, 0, 1, 1)
    mixed = GeometryCollection([square, LineString([(2, 2), (3, 3)]), Point(5, 5)])
    assert polygonal_part(mixed).equals(square)
    assert polygonal_part(square) is square
    empty = polygonal_part(GeometryCollection([LineString([(0, 0), (1, 1)])]))
    assert empty.geom_type == "Polygon" and empty.is_empty
    two = polygonal_part(GeometryCollection([square, box(2, 0, 3, 1)]))
    assert two.area == pytest.approx(2.0)
    assert shapely.get_num_geometries(two) == 2


def test_corrupt_geojson_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "areas.geojson", "{this is not json")
    with pytest.raises(InputError) as info:
        read_vector(path, input_name="areas")
    message = str(info.value)
    assert str(path) in message
    assert "cannot be read as boundaries" in message
    assert "export it again as GeoJSON, GeoPackage, Shapefile or GeoParquet" in message


def test_truncated_geojson_is_an_input_error(tmp_path: Path) -> None:
    good = tmp_path / "good.geojson"
    wards_frame().to_file(good, driver="GeoJSON")
    text = good.read_text(encoding="utf-8")
    path = write_text(tmp_path / "areas.geojson", text[: len(text) // 2])
    with pytest.raises(InputError) as info:
        read_vector(path, input_name="areas")
    assert str(path) in str(info.value)
    assert "cannot be read as boundaries" in str(info.value)


def test_geojson_with_no_features_is_an_input_error(tmp_path: Path) -> None:
    path = write_text(tmp_path / "areas.geojson", '{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputError) as info:
        read_vector(path, input_name="areas")
    assert str(path) in str(info.value)
    assert "has no features. Fix: export it again" in str(info.value)


def test_empty_vector_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "areas.gpkg"
    path.write_bytes(b"")
    with pytest.raises(InputError) as info:
        read_vector(path, input_name="areas")
    assert "file is empty" in str(info.value)
    assert str(path) in str(info.value)


# any text a form or an export writes: line breaks inside values included, other control
# characters not (a lone carriage return inside quotes is read differently by pandas' parser)
_any_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\n"),
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_any_cell, _any_cell, _any_cell), min_size=1, max_size=6))
@example([("a\nb", "", "0"), (" x, y ", '"q"', "")])
def test_the_columnar_reader_reads_as_the_general_one(rows: list[tuple[str, str, str]]) -> None:
    """Quotes, commas and line breaks inside values, spaces, any Unicode: the fast path for
    plain CSVs gives the frame the general reader gives (or steps aside for it)."""
    from targeting.io import _read_csv_text

    frame = pd.DataFrame(rows, columns=["a", "b", "c"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        frame.to_csv(path, index=False, encoding="utf-8")
        fast = _read_csv_text(path).astype(object)
        general = _read_csv_text(path, columnar=False).astype(object)
    pd.testing.assert_frame_equal(fast, general)


@pytest.mark.skipif(not REAL_CRIME.is_file(), reason="needs ../shared/realdata")
def test_a_real_police_uk_file_reads_the_same_either_way() -> None:
    from targeting.io import _read_csv_text

    fast = _read_csv_text(REAL_CRIME)
    general = _read_csv_text(REAL_CRIME, columnar=False)
    assert len(fast) > 10_000
    pd.testing.assert_frame_equal(fast.astype(object), general.astype(object))


def test_floats_as_text_known_answers() -> None:
    """Python's forms, which Arrow's cast writes otherwise (52, 0.00001, 1e+15)."""
    values = pd.Series([52.0, 1e-05, 1e15, 1e16, np.nan, 0.1, -0.0, np.inf, 52.4867])
    assert floats_as_text(values).tolist() == [
        "52.0", "1e-05", "1000000000000000.0", "1e+16", "", "0.1", "-0.0", "inf", "52.4867",
    ]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True), max_size=60))
@example([1e-4, 9.999999999999999e14, 123456789.0, 5e-324, 1.7976931348623157e308])
def test_floats_as_text_is_what_pandas_writes(values: list[float]) -> None:
    """A Parquet column of doubles reads as the same text as `astype("string")` gives (so as a
    CSV pandas wrote), whatever the values."""
    column = pd.Series(values, dtype=np.float64)
    expected = column.astype("string").fillna("")
    got = floats_as_text(column)
    assert got.dtype == expected.dtype
    assert got.tolist() == expected.tolist()


def test_a_parquet_table_reads_as_the_text_of_its_values(tmp_path: Path) -> None:
    path = tmp_path / "postcodes.parquet"
    pd.DataFrame(
        {"pcd": ["B1 1AA", None], "lat": [52.48, np.nan], "n": [3, 4], "flag": [True, False]}
    ).to_parquet(path)
    frame = read_table(path, input_name="postcodes")
    assert frame.to_dict("list") == {
        "pcd": ["B1 1AA", ""], "lat": ["52.48", ""], "n": ["3", "4"], "flag": ["True", "False"],
    }  # fmt: skip
