"""Segment inputs: keyed by small area or by postcode, descriptions, rejects with reasons, and
census tables (wide or long, from another geography) turned into shares."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from conftest import build_config
from shapely.geometry import box

from targeting.errors import InputError
from targeting.ingest.segments import (
    census_table_to_shares,
    read_census_variables,
    read_segment_descriptions,
    read_segments,
)

POSTCODES = pd.DataFrame(
    {"key": ["B356AB", "B61AA"], "latitude": [52.52, 52.50], "longitude": [-1.80, -1.89]}
)


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def test_segments_by_small_area_with_every_reject_reason(tmp_path: Path) -> None:
    _write(tmp_path, "desc.csv", "segment,group,label,description\nS01,G1,Young,x\nS02,G1,Old,y\n")
    _write(
        tmp_path,
        "seg.csv",
        "OA11CD,mosaic,households\n"
        "OA1,S01,60\nOA1,S02,40\nOA2,S02,100\nOA1,S01,5\n"  # two rows of (OA1, S01) add up
        "OA9,S01,10\nOA2,,10\nOA2,S99,10\nOA2,S01,-3\nOA2,S01,many\n",
    )
    config = build_config(tmp_path, {"segments": "seg.csv", "segment_descriptions": "desc.csv"})
    descriptions, _ = read_segment_descriptions(config)
    seg, summary = read_segments(
        config, small_area_codes={"OA1", "OA2"}, postcodes=None, descriptions=descriptions
    )
    assert seg is not None and summary is not None
    assert seg.keyed_by == "small_areas"
    assert seg.table.values.tolist() == [["OA1", "S01", 65.0], ["OA1", "S02", 40.0],
                                         ["OA2", "S02", 100.0]]  # fmt: skip
    assert summary.reasons() == {
        "unknown area_code": 1,
        "missing segment": 1,
        "unknown segment (not in segment_descriptions)": 1,
        "households not a number of at least 0": 2,
    }
    assert summary.rows_read == 9 and summary.rows_used == 4


def test_segments_by_postcode_whatever_the_spacing(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "seg.csv",
        "postcode,segment,households\nb35 6ab,S01,12\nB6  1AA,S02,8\nZZ1 1ZZ,S01,3\n",
    )
    config = build_config(tmp_path, {"segments": "seg.csv"})
    seg, summary = read_segments(
        config, small_area_codes=None, postcodes=POSTCODES, descriptions=None
    )
    assert seg is not None and summary is not None
    assert seg.keyed_by == "postcodes"
    assert seg.table["key"].tolist() == ["B356AB", "B61AA"]
    assert summary.reasons() == {"unknown postcode": 1}


def test_segments_keyed_by_postcode_need_postcodes(tmp_path: Path) -> None:
    _write(tmp_path, "seg.csv", "postcode,segment,households\nB35 6AB,S01,12\n")
    config = build_config(tmp_path, {"segments": "seg.csv"})
    with pytest.raises(InputError, match=r"inputs\.postcodes"):
        read_segments(config, small_area_codes=None, postcodes=None, descriptions=None)


def test_segments_without_a_key_or_usable_row_stop(tmp_path: Path) -> None:
    _write(tmp_path, "seg.csv", "segment,households\nS01,12\n")
    config = build_config(tmp_path, {"segments": "seg.csv"})
    with pytest.raises(InputError, match="neither an area_code nor a postcode"):
        read_segments(config, small_area_codes={"OA1"}, postcodes=None, descriptions=None)
    _write(tmp_path, "seg.csv", "area_code,segment,households\nOA7,S01,12\n")
    with pytest.raises(InputError, match="no usable rows: unknown area_code"):
        read_segments(config, small_area_codes={"OA1"}, postcodes=None, descriptions=None)


def test_census_tables_wide_and_long_become_shares() -> None:
    wide = pd.DataFrame(
        {"LSOA21CD": ["L1", "L2"], "LSOA21NM": ["a", "b"], "total_households": ["10", "4"],
         "deprived_0_dims": ["6", "1"], "deprived_1_dim": ["4", "3"]}
    )  # fmt: skip
    shares = census_table_to_shares(wide, key="LSOA21CD")
    assert list(shares.columns) == ["deprived_0_dims", "deprived_1_dim"]  # the total is left out
    assert shares.loc["L1"].tolist() == [0.6, 0.4]
    long = pd.DataFrame(
        {"lsoa21_code": ["L1", "L1", "L2", "L2"], "lsoa21_name": ["a", "a", "b", "b"],
         "age_group": ["young", "old", "young", "old"], "usual_residents": ["30", "10", "5", "15"]}
    )  # fmt: skip
    shares = census_table_to_shares(long, key="lsoa21_code")
    assert shares.loc["L1", "young"] == 0.75 and shares.loc["L2", "old"] == 0.75


def test_census_variables_from_a_coarser_geography(tmp_path: Path) -> None:
    lsoas = gpd.GeoDataFrame(
        {"LSOA21CD": ["L1", "L2"]},
        geometry=[box(400000, 286000, 401000, 287000), box(401000, 286000, 402000, 287000)],
        crs="EPSG:27700",
    )
    lsoas.to_file(tmp_path / "lsoa.geojson", driver="GeoJSON")
    _write(tmp_path, "dep.csv", "LSOA21CD,deprived_0_dims,deprived_1_dim\nL1,3,1\nL2,1,1\n")
    small = gpd.GeoDataFrame(
        {"area_code": ["OA1", "OA2", "OA3"]},
        geometry=[box(400100, 286100, 400200, 286200), box(401100, 286100, 401200, 286200),
                  box(400500, 286500, 400600, 286600)],
        crs="EPSG:27700",
    ).to_crs(4326)  # fmt: skip
    population = pd.DataFrame(
        {"area_code": ["OA1", "OA1", "OA2", "OA3"], "origin": ["P", "W", "W", "P"],
         "residents": [10.0, 30.0, 20.0, 5.0]}
    )  # fmt: skip
    config = build_config(
        tmp_path, segments={"census": [{"table": "dep.csv", "areas": "lsoa.geojson"}]}
    )
    variables = read_census_variables(config, small_areas=small, population=population)
    assert variables.loc["OA1", "P"] == 0.25 and variables.loc["OA2", "W"] == 1.0
    assert variables.loc["OA1", "deprived_0_dims"] == 0.75  # OA1 lies in L1
    assert variables.loc["OA2", "deprived_0_dims"] == 0.5  # OA2 in L2
    assert variables.loc["OA3", "deprived_1_dim"] == 0.25
