"""Ingest of the population table (targeting.ingest.population), wide and long: detected origins,
totals and subtotals, age bands, every reject reason and fatal message.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import (
    CODE_A,
    CODE_B,
    assert_accounting,
    assert_fatal,
    build_config,
    reasons_by,
    write_text,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from targeting.errors import InputError
from targeting.ingest import read_population
from targeting.ingest.population import _age_fraction

AREA_CODES = {CODE_A, CODE_B}

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
    # census columns get their standard names (the file's are in origin_columns)
    assert summary.details["detected_origins"] == ["Pakistani", "White British", "Bangladeshi"]
    assert summary.details["origin_columns"]["WhiteBrit"] == "White British"
    assert summary.details["total_column"] == "Persons"
    assert summary.details["format"] == "wide"
    assert summary.details["keyed_by"] == "areas"
    assert pop.keyed_by == "areas"
    assert pop.origins == ("Bangladeshi", "Pakistani", "White British")
    assert residents(pop.table) == {
        (CODE_A, "Bangladeshi"): 10.0,
        (CODE_A, "Pakistani"): 30.0,
        (CODE_A, "White British"): 60.0,
        (CODE_B, "Bangladeshi"): 0.0,
        (CODE_B, "Pakistani"): 100.0,
        (CODE_B, "White British"): 101.0,
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
        "White British",
        "White Irish",
        "Pakistani",
        "Bangladeshi",
        "Black Caribbean",
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
    assert residents(pop.table) == {
        (CODE_A, "Pakistani"): 30.0,
        (CODE_B, "White British"): 1040.0,
    }
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


@pytest.mark.parametrize("total", ["Total", "All usual residents"])
def test_long_origin_named_like_a_total_is_rejected_and_not_counted(
    tmp_path: Path, total: str
) -> None:
    text = (
        "area_code,origin,residents\n"
        "E05000001,Pakistani,30\n"
        "E05000001,WhiteBrit,70\n"
        f"E05000001,{total},100\n"
        "E05000002,Pakistani,5\n"
        f"E05000002,{total},5\n"
    )
    pop, summary = read_pop(tmp_path, text)
    assert pop.origins == ("Pakistani", "White British")
    assert residents(pop.table) == {
        (CODE_A, "Pakistani"): 30.0,
        (CODE_A, "White British"): 70.0,
        (CODE_B, "Pakistani"): 5.0,
    }
    assert pop.table["residents"].sum() == 105.0  # not 210: the totals are not counted again
    assert summary.rejects["reason"].tolist() == ["origin is a total, not an origin"] * 2
    assert summary.rejects["origin"].tolist() == [total, total]
    assert summary.rows_read == 5 and summary.rows_used == 3
    assert_accounting(summary)


def test_long_duplicate_counted_only_among_valid_rows(tmp_path: Path) -> None:
    text = (
        "area_code,origin,residents\n"
        "E05000001,Pakistani,-5\n"  # rejected, so the next row is the only Pakistani in A
        "E05000001,Pakistani,30\n"
        "E05000002,WhiteBrit,8\n"
        "E05000002,WhiteBrit,9\n"  # a true copy of a usable row
    )
    pop, summary = read_pop(tmp_path, text)
    assert residents(pop.table) == {(CODE_A, "Pakistani"): 30.0, (CODE_B, "White British"): 8.0}
    # rejects hold the rows as read (text)
    assert summary.rejects[["residents", "reason"]].values.tolist() == [
        ["-5", "negative residents"],
        ["9", "duplicate area_code and origin"],
    ]
    assert summary.rows_read == 4 and summary.rows_used == 2
    assert_accounting(summary)


def test_wide_duplicate_counted_only_among_valid_rows(tmp_path: Path) -> None:
    text = (
        "code,A,B\n"
        "E05000001,-1,4\n"  # rejected, so the next row is the only usable row for ward A
        "E05000001,3,4\n"
        "E05000002,1,1\n"
        "E05000002,2,2\n"  # a true copy of a usable row
    )
    pop, summary = read_pop(tmp_path, text)
    assert residents(pop.table) == {
        (CODE_A, "A"): 3.0,
        (CODE_A, "B"): 4.0,
        (CODE_B, "A"): 1.0,
        (CODE_B, "B"): 1.0,
    }
    assert summary.rejects[["A", "reason"]].values.tolist() == [
        ["-1", "negative count"],
        ["2", "duplicate area_code and origin"],
    ]
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
    assert got[(CODE_A, "White British")] == pytest.approx(white, rel=1e-12)
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
    assert pop.origins == ("Pakistani", "White British", "White Irish")
    assert pop.table["residents"].sum() == 150
    assert any(
        "subtotal columns not counted" in w and "White; measures" in w for w in summary.warnings
    )
    assert summary.rows_rejected == 0


# --- census tables as ONS and Nomis publish them ----------------------------------------------


def test_ons_custom_dataset_long_table_with_does_not_apply(tmp_path: Path) -> None:
    """The long CSV of an ONS "create a custom dataset" download: the area code column, the
    20-category variable (its code column beside it) and Observation; Does not apply is left out."""
    text = (
        "Lower layer Super Output Areas Code,Lower layer Super Output Areas,"
        "Ethnic group (20 categories) Code,Ethnic group (20 categories),Observation\n"
        f"{CODE_A},Alpha 001A,-8,Does not apply,0\n"
        f'{CODE_A},Alpha 001A,4,"Asian, Asian British or Asian Welsh: Pakistani",30\n'
        f'{CODE_A},Alpha 001A,13,"White: English, Welsh, Scottish, Northern Irish or British",60\n'
        f"{CODE_A},Alpha 001A,16,White: Roma,5\n"
        f"{CODE_B},Beta 001A,-8,Does not apply,0\n"
        f'{CODE_B},Beta 001A,4,"Asian, Asian British or Asian Welsh: Pakistani",100\n'
    )
    pop, summary = read_pop(tmp_path, text)
    assert summary.details["format"] == "long"
    assert pop.origins == ("Pakistani", "Roma", "White British")
    assert residents(pop.table) == {
        (CODE_A, "Pakistani"): 30.0,
        (CODE_A, "Roma"): 5.0,
        (CODE_A, "White British"): 60.0,
        (CODE_B, "Pakistani"): 100.0,
    }
    assert "left out as not an ethnic group: Does not apply (0 residents)" in summary.warnings
    assert summary.rows_rejected == 0
    assert_accounting(summary)


def test_ons_bulk_table_with_broad_and_detailed_columns(tmp_path: Path) -> None:
    """census2021-ts021 bulk headers: the five broad headings add up their parts and are left
    out, so no resident counts twice; the detailed columns get their standard names."""
    text = (
        "date,geography,geography code,Ethnic group: Total: All usual residents,"
        '"Ethnic group: Asian, Asian British or Asian Welsh",'
        '"Ethnic group: Asian, Asian British or Asian Welsh: Pakistani",'
        '"Ethnic group: Asian, Asian British or Asian Welsh: Other Asian",'
        "Ethnic group: White,"
        '"Ethnic group: White: English, Welsh, Scottish, Northern Irish or British",'
        "Ethnic group: Other ethnic group,Ethnic group: Other ethnic group: Arab,"
        "Ethnic group: Other ethnic group: Any other ethnic group\n"
        f"2021,Alpha,{CODE_A},100,40,30,10,55,55,5,2,3\n"
        f"2021,Beta,{CODE_B},50,20,20,0,30,30,0,0,0\n"
    )
    pop, summary = read_pop(tmp_path, text)
    assert summary.details["detected_origins"] == [
        "Pakistani", "Other Asian", "White British", "Arab", "Any other ethnic group",
    ]  # fmt: skip
    assert pop.table.groupby("area_code")["residents"].sum().to_dict() == {
        CODE_A: 100.0,
        CODE_B: 50.0,
    }
    assert any("subtotal columns not counted as origins" in w for w in summary.warnings)
    assert summary.rows_rejected == 0


def test_nomis_geography_cells_hold_code_and_name(tmp_path: Path) -> None:
    text = (
        '"2021 super output area - lower layer","Total: All usual residents","White","%"\n'
        f'"{CODE_A} : Birmingham 001A",100,90,90.0\n'
        f'"{CODE_B} : Birmingham 001B",50,45,90.0\n'
    )
    pop, summary = read_pop(tmp_path, text)
    assert residents(pop.table) == {(CODE_A, "White"): 90.0, (CODE_B, "White"): 45.0}
    assert summary.details["total_column"] == "Total: All usual residents"
    assert any("1 percentage column(s)" in w for w in summary.warnings)
