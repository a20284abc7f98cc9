"""Ingest of a deprivation index (targeting.ingest.deprivation): the published measures it
recognises and which way each runs, the census TS011 share, a named column, rejects counted by
reason and the stops that say what to do."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_accounting, assert_fatal, build_config, reasons_by, write_text
from tiny import REALDATA, needs_realdata

from targeting.errors import ConfigError, InputError
from targeting.ingest.deprivation import TS011_LABEL, read_deprivation

SMALL = {"E01000001", "E01000002", "E01000003"}

IMD2019 = """lsoa11_code,lsoa11_name,index_of_multiple_deprivation_imd_rank,income_rank,index_of_multiple_deprivation_imd_decile
E01000001,Alpha 001A,3924,4887,2
E01000002,Alpha 001B,939,1934,1
E01000003,Alpha 001C,x,100,1
E01000009,Elsewhere 009A,20000,100,7
E01000002,Alpha 001B,939,1934,1
,Blank,5,5,1
"""


def _read(tmp_path: Path, text: str, *, small=SMALL, outlines=None, **deprivation):
    write_text(tmp_path / "imd.csv", text)
    config = build_config(
        tmp_path,
        {"deprivation": "imd.csv"},
        **({"deprivation": deprivation} if deprivation else {}),
    )
    return read_deprivation(config, small_area_codes=small, outline_codes=outlines)


def test_imd_2019_rank_is_found_runs_low_to_high_and_bad_rows_are_counted(tmp_path: Path) -> None:
    data, summary = _read(tmp_path, IMD2019)
    assert data is not None and summary is not None
    assert data.label == "IMD rank (1 = most deprived)"
    assert data.higher_is_more_deprived is False and data.keyed_by == "small_areas"
    assert data.table.set_index("area_code")["value"].to_dict() == {
        "E01000001": 3924.0,
        "E01000002": 939.0,
    }
    assert_accounting(summary)
    assert reasons_by(summary, "lsoa11_name") == {
        "Alpha 001C": "non-numeric value in column index_of_multiple_deprivation_imd_rank",
        "Elsewhere 009A": "area_code not in small_areas",
        "Alpha 001B": "duplicate area_code",
        "Blank": "missing area_code",
    }
    assert summary.details["column"] == "index_of_multiple_deprivation_imd_rank"


def test_a_score_is_preferred_to_a_rank_and_runs_high_to_low(tmp_path: Path) -> None:
    """IMD 2025 as the West Midlands file has it (LSOA21CD, IMDSCORE) and the MHCLG File 7's
    own headings both give the score, which keeps distances a rank throws away."""
    data, _ = _read(tmp_path, "LSOA21CD,IMDSCORE,2024POP\nE01000001,5.839,1119\n")
    assert data.label == "IMD score" and data.higher_is_more_deprived is True
    assert data.table["value"].tolist() == [5.839]
    mhclg = (
        '"LSOA code (2011)","Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)",'
        '"Index of Multiple Deprivation (IMD) Score"\nE01000002,939,61.2\n'
    )
    data, _ = _read(tmp_path, mhclg)
    assert data.label == "IMD score" and data.table["value"].tolist() == [61.2]


def test_ts011_gives_the_share_of_households_deprived_in_any_dimension(tmp_path: Path) -> None:
    text = (
        "LSOA21CD,total_households,deprived_0_dims,deprived_1_dim\n"
        "E01000001,737,172,273\nE01000002,0,0,0\n"
    )
    data, summary = _read(tmp_path, text)
    assert data.label == TS011_LABEL and data.higher_is_more_deprived is True
    assert data.table["value"].tolist() == [pytest.approx(1 - 172 / 737)]
    # no households: no share, counted rather than read as 0
    assert reasons_by(summary, "LSOA21CD")["E01000002"].startswith("non-numeric value")


def test_a_named_column_needs_its_direction_unless_it_is_a_published_measure(
    tmp_path: Path,
) -> None:
    text = "code,vli\nE01000001,12.5\nE01000002,3\n"
    with pytest.raises(InputError) as info:
        _read(tmp_path, text, column="vli")
    assert_fatal(info, tmp_path / "imd.csv", "higher_is_more_deprived")
    data, _ = _read(tmp_path, text, column="vli", higher_is_more_deprived=True)
    assert data.label == "vli" and data.higher_is_more_deprived is True
    # a published measure named in the config keeps its known direction
    data, _ = _read(tmp_path, IMD2019, column="index_of_multiple_deprivation_imd_decile")
    assert data.label == "IMD decile (1 = most deprived)" and not data.higher_is_more_deprived
    with pytest.raises(InputError) as info:
        _read(tmp_path, text, column="missing", higher_is_more_deprived=True)
    assert_fatal(info, tmp_path / "imd.csv", "[deprivation] column", "vli")


def test_config_reads_the_deprivation_settings_and_their_types(tmp_path: Path) -> None:
    config = build_config(tmp_path, deprivation={"column": "x", "higher_is_more_deprived": False})
    assert config.deprivation.column == "x" and config.deprivation.higher_is_more_deprived is False
    assert build_config(tmp_path).deprivation.higher_is_more_deprived is None
    with pytest.raises(ConfigError, match=r"deprivation\.higher_is_more_deprived"):
        build_config(tmp_path, deprivation={"higher_is_more_deprived": "no"})


def test_stops_say_which_geography_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        _read(tmp_path, IMD2019, small=None)
    assert_fatal(info, tmp_path / "imd.csv", "deprivation_areas", "small_areas")
    # codes of another geography or vintage: not a quiet run with no values
    with pytest.raises(InputError) as info:
        _read(tmp_path, IMD2019, small={"E00000001"})
    assert_fatal(info, tmp_path / "imd.csv", "matches no code of small_areas", "LSOA")
    with pytest.raises(InputError) as info:
        _read(tmp_path, "code,name\nE01000001,a\n")
    assert_fatal(info, tmp_path / "imd.csv", "no deprivation measure")
    # given outlines, the codes are checked against them, not the small areas
    data, summary = _read(tmp_path, IMD2019, outlines={"E01000009"})
    assert data.keyed_by == "deprivation_areas" and data.table["area_code"].tolist() == [
        "E01000009"
    ]
    assert summary.rows_rejected == 5


@needs_realdata
def test_the_published_west_midlands_files_are_read_whole(tmp_path: Path) -> None:
    """IMD 2019 by 2011 LSOA, IMD 2025 by 2021 LSOA and census TS011, as shipped: every row
    used, each measure recognised."""
    files = {
        "imd2019": (REALDATA / "deprivation" / "imd2019_lsoa11_wm.csv", "lsoa11_code", 1680),
        "imd2025": (REALDATA / "deprivation" / "imd2025_score_lsoa21_wm.csv", "LSOA21CD", 1719),
        "ts011": (
            REALDATA / "census" / "census2021_ts011_household_deprivation_lsoa21_wm.csv",
            "LSOA21CD",
            1719,
        ),
    }
    labels = {}
    for name, (path, code, rows) in files.items():
        codes = set(pd.read_csv(path, usecols=[code])[code])
        config = build_config(tmp_path, {"deprivation": str(path)})
        data, summary = read_deprivation(config, small_area_codes=codes, outline_codes=None)
        assert summary.rows_used == rows and summary.rows_rejected == 0
        labels[name] = data.label
    assert labels == {
        "imd2019": "IMD rank (1 = most deprived)",
        "imd2025": "IMD score",
        "ts011": TS011_LABEL,
    }
