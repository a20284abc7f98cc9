"""Origin labels mapped onto the population's categories."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from targeting.errors import InputError
from targeting.origins import (
    census_category_of,
    default_origin_map,
    map_origins,
    read_origin_map,
    read_origin_taxonomy,
)

WM_2011 = ["WhiteBrit", "Irish", "OtherWhite", "Mixed", "Indian", "Pakistani", "Bangladeshi", "Chinese",
           "OtherAsian", "BlkAfrican", "BlkCaribbean", "OtherBlk", "Arab", "Other"]  # fmt: skip


def test_real_2011_table_is_recognised_as_census_2011() -> None:
    scheme, found = census_category_of(WM_2011)
    assert scheme == "census2011"
    assert found["white_british"] == "WhiteBrit"
    assert found["black_caribbean"] == "BlkCaribbean"
    assert len(found) == 14


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("England", "WhiteBrit"),
        ("Polish", "OtherWhite"),
        ("Pakistani", "Pakistani"),
        ("Nigerian", "BlkAfrican"),
        ("Black Caribbean", "BlkCaribbean"),
        ("Hindu Indian", "Indian"),
    ],
)
def test_default_map_to_2011_groups(origin: str, expected: str) -> None:
    _, mapping = default_origin_map(WM_2011)
    assert mapping[origin] == expected


def test_default_map_to_2021_broad_groups() -> None:
    scheme, mapping = default_origin_map(["asian", "black", "mixed", "white", "other"])
    assert scheme == "census2021"
    assert mapping["Pakistani"] == "asian"
    assert mapping["England"] == "white"
    assert mapping["Nigerian"] == "black"


def test_identical_label_wins_then_user_map_then_default() -> None:
    labels = pd.Series(["Pakistani", "Polish", "Polish", "Martian", "", "Not Found", "England"])
    mapped, info = map_origins(labels, WM_2011, user_map={"Polish": "Other"})
    assert mapped.tolist()[:3] == ["Pakistani", "Other", "Other"]
    assert pd.isna(mapped.iloc[3]) and pd.isna(mapped.iloc[4]) and pd.isna(mapped.iloc[5])
    assert mapped.iloc[6] == "WhiteBrit"
    assert info.unmapped == {"Martian": 1}
    assert info.not_found == 2


def test_origin_names_in_the_population_need_no_map() -> None:
    mapped, info = map_origins(
        pd.Series(["Pakistani", "Bangladeshi"]),
        ["Pakistani", "Bangladeshi", "England"],
        user_map=None,
    )
    assert mapped.tolist() == ["Pakistani", "Bangladeshi"]
    assert info.unmapped == {}


def test_taxonomy_rolls_every_origin_into_a_group() -> None:
    taxonomy = read_origin_taxonomy()
    assert taxonomy["origin"].is_unique
    assert (taxonomy["group"] != "").all()
    assert {"Pakistani", "Bangladeshi", "England", "Polish", "Not Found"} <= set(taxonomy["origin"])


def test_user_map_rows_that_cannot_be_used_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(
        "origin,population_origin\n"
        "Polish, OtherWhite\n"
        "Polish,Other\n"  # the second mapping of Polish
        "Martian,Martians\n"  # not a category of the population
        ",Other\n",
        encoding="utf-8",
    )
    mapping, summary = read_origin_map(path, population_origins=WM_2011)
    assert mapping == {"Polish": "OtherWhite"}
    assert summary.rejects["reason"].tolist() == [
        "origin mapped more than once",
        "population_origin not in the population",
        "blank origin or population_origin",
    ]
    assert summary.rows_used + summary.rows_rejected == summary.rows_read == 4


def test_user_map_without_its_columns_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("label,category\nPolish,OtherWhite\n", encoding="utf-8")
    with pytest.raises(InputError, match="origin,population_origin"):
        read_origin_map(path, population_origins=WM_2011)


def test_user_map_keys_match_whatever_their_case_and_spacing() -> None:
    mapped, _ = map_origins(pd.Series(["polish ", "POLISH"]), WM_2011, user_map={"Polish": "Other"})
    assert mapped.tolist() == ["Other", "Other"]
