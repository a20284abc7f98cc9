"""Origin labels: the crosswalk and its census categories, population names read through it, and
sign-up labels mapped onto the population's categories (known answers by hand)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from targeting.errors import InputError
from targeting.ingest.origins_map import read_origin_map
from targeting.origins import (
    UNKNOWN,
    is_unknown_label,
    label_key,
    label_table,
    map_origins,
    origin_groups,
    read_categories,
    read_crosswalk,
    read_origin_taxonomy,
    read_population_categories,
)
from targeting.reference import read_reference

WM_2011 = ["WhiteBrit", "Irish", "OtherWhite", "Mixed", "Indian", "Pakistani", "Bangladeshi", "Chinese",
           "OtherAsian", "BlkAfrican", "BlkCaribbean", "OtherBlk", "Arab", "Other"]  # fmt: skip
TS021_BROAD = ["asian", "black", "mixed", "white", "other"]
# the ONS bulk file's 24 category headers (census2021-ts021-lsoa.csv), 5 broad and 19 detailed
TS021_BULK = [
    "Ethnic group: Asian, Asian British or Asian Welsh",
    "Ethnic group: Asian, Asian British or Asian Welsh: Bangladeshi",
    "Ethnic group: Asian, Asian British or Asian Welsh: Chinese",
    "Ethnic group: Asian, Asian British or Asian Welsh: Indian",
    "Ethnic group: Asian, Asian British or Asian Welsh: Pakistani",
    "Ethnic group: Asian, Asian British or Asian Welsh: Other Asian",
    "Ethnic group: Black, Black British, Black Welsh, Caribbean or African",
    "Ethnic group: Black, Black British, Black Welsh, Caribbean or African: African",
    "Ethnic group: Black, Black British, Black Welsh, Caribbean or African: Caribbean",
    "Ethnic group: Black, Black British, Black Welsh, Caribbean or African: Other Black",
    "Ethnic group: Mixed or Multiple ethnic groups",
    "Ethnic group: Mixed or Multiple ethnic groups: White and Asian",
    "Ethnic group: Mixed or Multiple ethnic groups: White and Black African",
    "Ethnic group: Mixed or Multiple ethnic groups: White and Black Caribbean",
    "Ethnic group: Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups",
    "Ethnic group: White",
    "Ethnic group: White: English, Welsh, Scottish, Northern Irish or British",
    "Ethnic group: White: Irish",
    "Ethnic group: White: Gypsy or Irish Traveller",
    "Ethnic group: White: Roma",
    "Ethnic group: White: Other White",
    "Ethnic group: Other ethnic group",
    "Ethnic group: Other ethnic group: Arab",
    "Ethnic group: Other ethnic group: Any other ethnic group",
]
# Nomis's QS201EW bulk headers (2011): subtotals "White", "Mixed", "Asian", "Black", "Other"
QS201EW_BULK = [
    f"Ethnic Group: {name}; measures: Value"
    for name in (
        "White", "White: English/Welsh/Scottish/Northern Irish/British", "White: Irish",
        "White: Gypsy or Irish Traveller", "White: Other White", "Mixed",
        "Mixed/multiple ethnic group: White and Black Caribbean",
        "Mixed/multiple ethnic group: White and Black African",
        "Mixed/multiple ethnic group: White and Asian", "Mixed/multiple ethnic group: Other Mixed",
        "Asian", "Asian/Asian British: Indian", "Asian/Asian British: Pakistani",
        "Asian/Asian British: Bangladeshi", "Asian/Asian British: Chinese",
        "Asian/Asian British: Other Asian", "Black", "Black/African/Caribbean/Black British: African",
        "Black/African/Caribbean/Black British: Caribbean",
        "Black/African/Caribbean/Black British: Other Black", "Other",
        "Other ethnic group: Arab", "Other ethnic group: Any other ethnic group",
    )
]  # fmt: skip
DEMO_ORIGINS = ["England", "Scotland", "Wales", "Pakistani", "Bangladeshi", "Hindu Indian",
                "Sikh Indian", "Polish", "Black Caribbean", "Somali", "Chinese"]  # fmt: skip


def _mapped(labels: list[str], population: list[str], **options: object) -> dict[str, object]:
    mapped, _ = map_origins(pd.Series(labels), population, user_map=options.get("user_map"))  # type: ignore[arg-type]
    return dict(zip(labels, mapped.where(mapped.notna(), None), strict=True))


# ---------------------------------------------------------------------------------------------
# the shipped tables


def test_crosswalk_labels_are_unique_and_name_known_categories() -> None:
    table = read_reference("origin_crosswalk.csv")
    keys = table["label"].map(label_key)
    assert keys.is_unique, table[keys.duplicated(keep=False)]
    codes = {c for cats in table["category"] for c in cats.split("|")}
    assert codes <= set(read_categories()) | {UNKNOWN}
    assert len(read_crosswalk()) == len(table)


def test_every_census_category_label_of_2011_and_2021_reads_as_itself() -> None:
    categories = read_reference("census_categories.csv")
    for _, row in categories.iterrows():
        for label in (row["label_2011"], row["label_2021"], row["name"], row["category"]):
            if label:
                entry = read_crosswalk()[label_key(label)]
                assert row["category"] in entry.categories, (label, entry)


def test_every_origins_name_maps_to_a_census_category() -> None:
    taxonomy = read_origin_taxonomy()
    for origin in taxonomy["origin"]:
        entry = read_crosswalk()[label_key(origin)]
        assert "origins" in entry.sources
        assert (entry.categories == (UNKNOWN,)) == (origin == "Not Found"), origin


def test_the_20_category_table_reads_whole() -> None:
    """ONS custom datasets' "Ethnic group (20 categories)": 19 categories and Does not apply."""
    names = [
        "Asian, Asian British or Asian Welsh: Bangladeshi", "Asian, Asian British or Asian Welsh: Chinese",
        "Asian, Asian British or Asian Welsh: Indian", "Asian, Asian British or Asian Welsh: Pakistani",
        "Asian, Asian British or Asian Welsh: Other Asian",
        "Black, Black British, Black Welsh, Caribbean or African: African",
        "Black, Black British, Black Welsh, Caribbean or African: Caribbean",
        "Black, Black British, Black Welsh, Caribbean or African: Other Black",
        "Mixed or Multiple ethnic groups: White and Asian",
        "Mixed or Multiple ethnic groups: White and Black African",
        "Mixed or Multiple ethnic groups: White and Black Caribbean",
        "Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups",
        "White: English, Welsh, Scottish, Northern Irish or British", "White: Irish",
        "White: Gypsy or Irish Traveller", "White: Roma", "White: Other White",
        "Other ethnic group: Arab", "Other ethnic group: Any other ethnic group", "Does not apply",
    ]  # fmt: skip
    reading = read_population_categories(names)
    assert reading.not_origins == ("Does not apply",)
    assert reading.census and len(set(reading.categories.values())) == 19
    assert reading.renamed["White: Roma"] == "Roma"


@pytest.mark.parametrize(
    ("label", "category"),
    [
        ("Ethnic group: Asian, Asian British or Asian Welsh: Pakistani", "pakistani"),
        ("Ethnic Group: Asian/Asian British: Pakistani; measures: Value", "pakistani"),
        ("Ethnic group (20 categories): White: Roma", "roma"),
        ("WHITE - BRITISH", "white_british"),
        ("white_british", "white_british"),
        ("Mixed: White & Black Caribbean", "white_black_caribbean"),
        ("Black or Black British - African", "black_african"),
        ("asian - bangladeshi", "bangladeshi"),
        ("KS201EW0011", "pakistani"),
        ("A2", "pakistani"),  # police self-defined ethnicity code
        ("APKN", "pakistani"),  # school census code
        ("Eritrean", "black_african"),  # TS022: only under Black (African background)
        ("Polish", "other_white"),  # an ORIGINS name
        ("Other", "other_ethnic"),  # the finer reading first
    ],
)
def test_labels_read_whatever_their_form(label: str, category: str) -> None:
    assert read_crosswalk()[label_key(label)].categories[0] == category


@pytest.mark.parametrize(
    "label", ["", "  ", "Not Found", "not found", "Prefer not to say", "NOT STATED", "NS", "N/A"]
)
def test_labels_that_say_the_origin_is_unknown(label: str) -> None:
    assert is_unknown_label(label)


def test_ambiguous_ts022_names_are_left_out() -> None:
    """Names ONS coded under two TS022 sections (Kashmiri under Asian and Other) are not guessed."""
    for label in ("Kashmiri", "Hispanic or Latin American", "Iranian", "Mixed White"):
        assert label_key(label) not in read_crosswalk()


# ---------------------------------------------------------------------------------------------
# population names read through the crosswalk


def test_the_real_2011_table_gets_standard_names() -> None:
    reading = read_population_categories(WM_2011)
    assert reading.census
    assert reading.renamed["WhiteBrit"] == "White British"
    assert reading.renamed["BlkCaribbean"] == "Black Caribbean"
    assert reading.renamed["Mixed"] == "Mixed"  # the four Mixed groups combined
    # beside an Arab column, "Other" is Any other ethnic group, not the Other heading
    assert reading.renamed["Other"] == "Any other ethnic group"
    assert reading.categories["Any other ethnic group"] == "other_ethnic"
    assert reading.subtotals == () and reading.not_origins == ()


def test_the_broad_table_and_its_bulk_headers_read_the_same() -> None:
    short = read_population_categories(TS021_BROAD)
    bulk = read_population_categories(
        [h for h in TS021_BULK if h.count(":") == 1]  # the five broad headers
    )
    assert list(short.renamed.values()) == [
        "Asian",
        "Black",
        "Mixed",
        "White",
        "Other ethnic group",
    ]
    assert sorted(short.renamed.values()) == sorted(bulk.renamed.values())
    assert short.categories == bulk.categories


def test_broad_headings_beside_their_parts_are_subtotals() -> None:
    reading = read_population_categories(TS021_BULK)
    assert len(reading.subtotals) == 5 and len(reading.origins) == 19
    reading = read_population_categories(QS201EW_BULK)
    assert sorted(reading.subtotals) == sorted(
        f"Ethnic Group: {h}; measures: Value" for h in ("White", "Mixed", "Asian", "Black", "Other")
    )
    assert len(reading.origins) == 18


def test_origins_names_keep_their_names_and_only_unambiguous_categories() -> None:
    reading = read_population_categories(DEMO_ORIGINS)
    assert not reading.census
    assert list(reading.renamed.values()) == DEMO_ORIGINS
    # England, Scotland and Wales all mean White British: none is the place for that category
    assert reading.claims["white_british"] == ("England", "Scotland", "Wales")
    assert "white_british" not in reading.category_of.values()
    assert reading.category_of["Pakistani"] == "pakistani"


def test_standard_names_read_back_the_same() -> None:
    """The outputs' names are read again downstream (user maps, groups): reading them must give
    the same categories."""
    for names in (WM_2011, TS021_BROAD, TS021_BULK):
        first = read_population_categories(names)
        again = read_population_categories(first.origins)
        assert again.categories == first.categories
        assert list(again.renamed.values()) == list(first.origins)


# ---------------------------------------------------------------------------------------------
# sign-up labels


def test_mixed_wording_maps_onto_the_broad_groups() -> None:
    population = read_population_categories(TS021_BROAD).origins
    labels = {
        "White British": "White", "England": "White", "WHITE - BRITISH": "White", "Polish": "White",
        "Irish": "White", "Roma": "White", "Gypsy or Irish Traveller": "White",
        "Indian": "Asian", "Muslim Indian": "Asian", "Asian/Asian British: Indian": "Asian",
        "Asian, Asian British or Asian Welsh: Pakistani": "Asian", "Chinese": "Asian",
        "White and Black Caribbean": "Mixed", "Mixed": "Mixed",
        "Mixed/multiple ethnic groups: White and Asian": "Mixed",
        "African": "Black", "Somali": "Black", "Black Caribbean": "Black",
        "Arab": "Other ethnic group", "Any other ethnic group": "Other ethnic group",
        "North African": "Other ethnic group",
    }  # fmt: skip
    assert _mapped(list(labels), list(population)) == labels


def test_against_the_2011_table_roma_rolls_up_and_gypsy_is_explained() -> None:
    population = read_population_categories(WM_2011).origins
    labels = pd.Series(["Roma", "Gypsy or Irish Traveller", "White", "England", "Other", "Martian"])
    mapped, info = map_origins(labels, population, user_map=None)
    assert mapped.iloc[0] == "Other White" and pd.isna(mapped.iloc[1])
    how = {m.label: (m.origin, m.how) for m in info.labels}
    assert how["Roma"] == ("Other White", "crosswalk (census wording), rolled up from Roma")
    assert how["Gypsy or Irish Traveller"] == (
        None, "unmapped: the population has no Gypsy or Irish Traveller category"
    )  # fmt: skip
    assert how["White"][1].startswith("unmapped: coarser than the population's categories (")
    assert how["England"] == ("White British", "crosswalk (ORIGINS name)")
    assert how["Other"][0] == "Any other ethnic group"
    assert how["Martian"] == (None, "unmapped: not a label the crosswalk knows")
    assert info.unmapped == {"Gypsy or Irish Traveller": 1, "Martian": 1, "White": 1}
    assert info.unmapped_share == pytest.approx(3 / 6)


def test_census_wording_against_origins_names() -> None:
    how = {
        m.label: (m.origin, m.how)
        for m in map_origins(
            pd.Series(["Asian/Asian British: Pakistani", "White British", "Caribbean"]),
            DEMO_ORIGINS,
            user_map=None,
        )[1].labels
    }
    assert how["Asian/Asian British: Pakistani"][0] == "Pakistani"
    assert how["Caribbean"][0] == "Black Caribbean"
    assert how["White British"] == (
        None, "unmapped: White British could be any of England, Scotland, Wales"
    )  # fmt: skip


def test_identical_name_then_user_map_then_crosswalk() -> None:
    population = read_population_categories(WM_2011).origins
    labels = pd.Series(["Pakistani", "Polish", "Polish", "Martian", "", "Not Found", "England"])
    mapped, info = map_origins(labels, population, user_map={"polish": "Any other ethnic group"})
    assert mapped.tolist()[:3] == ["Pakistani", "Any other ethnic group", "Any other ethnic group"]
    assert mapped.iloc[3:6].isna().all()
    assert mapped.iloc[6] == "White British"
    assert info.unmapped == {"Martian": 1}
    assert info.not_found == 2 and info.known == 5


def test_label_table_withholds_small_counts_against_their_destination() -> None:
    labels = pd.Series(["Pakistani"] * 40 + ["Asian/Asian British: Pakistani"] * 3 + ["X"] * 12)
    _, info = map_origins(labels, read_population_categories(WM_2011).origins, user_map=None)
    table = label_table(info, threshold=10).set_index("label")
    # 3 would be 43 - 40: both parts of Pakistani's total are withheld, the 40 read as
    # withheld to protect the 3, not as a small count
    assert table.loc["Asian/Asian British: Pakistani", "signups"] == "<10"
    assert table.loc["Pakistani", "signups"] == "suppressed"
    assert table.loc["X", "signups"] == 12
    assert table.loc["Pakistani", "how"] == "same name as a population category"


def test_groups_of_census_and_origins_names() -> None:
    assert origin_groups(read_population_categories(WM_2011).origins)["Pakistani"] == "Asian"
    groups = origin_groups(["Pakistani", "England", "Polish", "Black Caribbean", "Martian"])
    assert groups == {
        "Pakistani": "South Asian",
        "England": "British",
        "Polish": "Eastern European",
        "Black Caribbean": "Black Caribbean",
        "Martian": "Other",
    }


# ---------------------------------------------------------------------------------------------
# the user's map


def test_user_map_targets_match_whatever_their_form(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(
        "origin,population_origin\n"
        "Kashmiri,asian\n"  # the population says "Asian": any case, any label of the category
        "Latin American,Ethnic group: Other ethnic group\n"
        "Kurdish , OTHER ETHNIC GROUP\n"
        "kurdish,Asian\n"  # the second mapping of Kurdish
        "Martian,Martians\n"  # not a category of the population
        ",Asian\n",
        encoding="utf-8",
    )
    population = read_population_categories(TS021_BROAD).origins
    mapping, summary = read_origin_map(path, population_origins=population)
    assert mapping == {
        "Kashmiri": "Asian",
        "Latin American": "Other ethnic group",
        "Kurdish": "Other ethnic group",
    }
    assert summary.rejects["reason"].tolist() == [
        "origin mapped more than once",
        "population_origin not in the population",
        "blank origin or population_origin",
    ]
    assert summary.rows_used + summary.rows_rejected == summary.rows_read == 6
    assert _mapped(["KASHMIRI"], list(population), user_map=mapping) == {"KASHMIRI": "Asian"}


def test_user_map_without_its_columns_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("label,category\nPolish,OtherWhite\n", encoding="utf-8")
    with pytest.raises(InputError, match="origin,population_origin"):
        read_origin_map(path, population_origins=WM_2011)
