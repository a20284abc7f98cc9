"""Segments: the open segmentation recovers planted clusters reproducibly, and the profile index
by hand, with disclosure control."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from targeting.segments import (
    UNASSIGNED,
    build_segments,
    main_segments,
    segment_representation,
    shares,
)

PLANTED = {  # share profiles of four planted kinds of place
    "student": [0.55, 0.10, 0.05, 0.30],
    "family": [0.15, 0.45, 0.30, 0.10],
    "retired": [0.05, 0.10, 0.70, 0.15],
    "mixed": [0.25, 0.25, 0.25, 0.25],
}


def _planted(n_per: int = 60, noise: float = 0.03, seed: int = 3) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for kind, profile in PLANTED.items():
        for _ in range(n_per):
            rows.append(np.clip(np.array(profile) + rng.normal(0, noise, 4), 0.001, None))
            truth.append(kind)
    counts = pd.DataFrame(np.array(rows) * 300, columns=["young", "children", "old", "other"])
    counts.index = [f"E00{i:06d}" for i in range(len(counts))]
    return shares(counts), truth


def test_shares_by_hand() -> None:
    counts = pd.DataFrame({"a": [1.0, 0.0], "b": [3.0, 0.0]}, index=["x", "y"])
    out = shares(counts)
    assert out.loc["x"].tolist() == [0.25, 0.75]
    assert out.loc["y"].isna().all()


def test_planted_clusters_are_recovered_and_k_is_chosen() -> None:
    variables, truth = _planted()
    seg = build_segments(variables, k=None, seed=11, k_min=2, k_max=8)
    assert seg.k == 4
    assert max(seg.silhouettes, key=seg.silhouettes.get) == 4
    found = seg.assignments.set_index("area_code")["segment"].reindex(variables.index)
    # well-separated profiles with 3-point noise: k-means should misplace almost none; 0.9
    # allows a few borderline areas while failing any real confusion of two kinds
    assert adjusted_rand_score(truth, found) > 0.9


def test_segmentation_is_reproducible_and_numbered_by_size() -> None:
    variables, _ = _planted()
    variables = pd.concat([variables, variables.iloc[:30].add(0.001)])  # a larger kind
    variables.index = [f"E00{i:06d}" for i in range(len(variables))]
    a = build_segments(variables, k=4, seed=5)
    b = build_segments(variables.sample(frac=1.0, random_state=2), k=4, seed=5)
    pd.testing.assert_frame_equal(
        a.assignments.set_index("area_code").sort_index(),
        b.assignments.set_index("area_code").sort_index(),
    )
    sizes = a.assignments["segment"].value_counts()
    assert sizes.index[0] == "S01" and sizes.is_monotonic_decreasing


def test_segments_are_named_by_what_sets_them_apart() -> None:
    variables, truth = _planted()
    seg = build_segments(variables, k=4, seed=11)
    found = seg.assignments.set_index("area_code")["segment"].reindex(variables.index)
    retired = pd.Series(found.to_numpy())[np.array(truth) == "retired"].mode()[0]
    label = seg.descriptions.set_index("segment").loc[retired, "label"]
    assert label.startswith("high old")
    profile = seg.profiles[
        (seg.profiles["segment"] == retired) & (seg.profiles["variable"] == "old")
    ]
    assert profile["index"].iloc[0] > 150  # far above the average share of old residents
    assert set(seg.descriptions.columns) == {"segment", "group", "label", "description"}


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_profile_index_by_hand() -> None:
    base = pd.Series({"S01": 600.0, "S02": 400.0})
    signups = pd.Series({"S01": 30, "S02": 70})
    out = segment_representation(base, signups, threshold=10).set_index("segment")
    # S01: 30% of sign-ups from 60% of households -> 50; S02: 70% from 40% -> 175
    assert out.loc["S01", "profile_index"] == pytest.approx(50.0)
    assert out.loc["S02", "profile_index"] == pytest.approx(175.0)
    low, high = _wilson(30, 100)
    assert out.loc["S01", "ci_low"] == pytest.approx(low, rel=1e-6)
    assert out.loc["S01", "index_high"] == pytest.approx(100 * high / 0.6, rel=1e-6)
    assert out.loc["S01", "signups_per_1000_households"] == pytest.approx(50.0)
    assert bool(out.loc["S01", "under_represented"]) and not bool(
        out.loc["S02", "under_represented"]
    )


def test_small_segment_counts_are_withheld_with_their_complement() -> None:
    base = pd.Series({"S01": 500.0, "S02": 500.0})
    out = segment_representation(base, pd.Series({"S01": 4, "S02": 96}), threshold=10)
    out = out.set_index("segment")
    assert out["suppressed"].all()  # S02 would give S01 away by subtraction from the total
    assert out[["signups", "profile_index", "ci_low"]].isna().all().all()
    assert out["households"].tolist() == [500.0, 500.0]  # the base is public


def test_unassigned_signups_count_in_the_total_not_the_index() -> None:
    base = pd.Series({"S01": 500.0, "S02": 500.0})
    signups = pd.Series({"S01": 40, "S02": 40, UNASSIGNED: 20})
    out = segment_representation(base, signups, threshold=10).set_index("segment")
    assert out.loc["S01", "signup_share"] == pytest.approx(0.4)
    assert out.loc["S01", "profile_index"] == pytest.approx(80.0)
    assert pd.isna(out.loc[UNASSIGNED, "profile_index"])


def test_points_take_the_main_segment_of_their_small_area_or_nearest_postcode() -> None:
    import geopandas as gpd
    from shapely.geometry import box

    from targeting.segments import points_to_segments

    small = gpd.GeoDataFrame(
        {"area_code": ["OA1", "OA2"]},
        geometry=[box(-1.90, 52.50, -1.89, 52.51), box(-1.89, 52.50, -1.88, 52.51)],
        crs=4326,
    )
    segments = pd.DataFrame(
        {"key": ["OA1", "OA1", "OA2"], "segment": ["S01", "S02", "S02"],
         "households": [30.0, 70.0, 10.0]}
    )  # fmt: skip
    lat = np.array([52.505, 52.505, 52.60])
    lon = np.array([-1.895, -1.885, -1.895])
    found = points_to_segments(lat, lon, segments=segments, keyed_by="small_areas",
                               small_areas=small, postcodes=None)  # fmt: skip
    assert found.tolist() == ["S02", "S02", UNASSIGNED]  # OA1's main segment is S02 (70 of 100)
    postcodes = pd.DataFrame({"key": ["A1", "B2"], "latitude": [52.505, 52.70],
                              "longitude": [-1.895, -1.70]})  # fmt: skip
    by_postcode = pd.DataFrame(
        {"key": ["A1", "B2"], "segment": ["S03", "S04"], "households": [5.0, 5.0]}
    )
    found = points_to_segments(lat, lon, segments=by_postcode, keyed_by="postcodes",
                               small_areas=None, postcodes=postcodes)  # fmt: skip
    # the second point is about 680 m from A1 (beyond 500 m), the third far from both
    assert found.tolist() == ["S03", UNASSIGNED, UNASSIGNED]
    # overlapping small areas (a file's mistake): a point in both takes the first in file order
    overlapping = gpd.GeoDataFrame(
        {"area_code": ["OA2", "OA1"]},
        geometry=[box(-1.90, 52.50, -1.88, 52.51), box(-1.90, 52.50, -1.89, 52.51)],
        crs=4326,
    )
    own = pd.DataFrame({"key": ["OA1", "OA2"], "segment": ["S01", "S02"], "households": 1.0})
    found = points_to_segments(lat, lon, segments=own, keyed_by="small_areas",
                               small_areas=overlapping, postcodes=None)  # fmt: skip
    assert found.tolist() == ["S02", "S02", UNASSIGNED]


def test_dominant_segments_name_the_largest_with_shares() -> None:
    from targeting.segments import dominant_segments

    cell_segments = pd.DataFrame(
        {"cell": ["c1", "c1", "c2", "c2"], "area_code": ["A", "A", "A", "A"],
         "segment": ["S01", "S02", "S02", "S03"], "households": [10.0, 30.0, 50.0, 10.0]}
    )  # fmt: skip
    labels = pd.Series({"S02": "high Pakistani"})
    text = dominant_segments(cell_segments, by="area_code", labels=labels)
    assert text["A"] == "S02 high Pakistani (80%); S01 (10%)"


def test_hotspot_yields_follow_the_segment_where_given() -> None:
    from targeting.tasking import segment_yields

    out = segment_yields(
        pd.Series(["S01", "S02", None]),
        pd.Series(["door", "door", "street"]),
        yields={"door": 2.7, "street": 0.9},
        by_segment={"S01": {"door": 4.0}},
    )
    assert out.tolist() == [4.0, 2.7, 0.9]


def test_main_segment_adds_up_a_keys_rows_first() -> None:
    """A cell cut by a ward boundary has a row per fragment and segment: S01 has 27 + 112
    households in all, more than S02's 124 in one fragment."""
    rows = pd.DataFrame(
        {
            "key": ["c1", "c1", "c1", "c1", "c2"],
            "segment": ["S01", "S02", "S01", "S02", "S02"],
            "households": [27.0, 3.0, 112.0, 121.0, 5.0],
        }
    )
    assert main_segments(rows).to_dict() == {"c1": "S01", "c2": "S02"}


def test_segment_portraits_in_plain_words_known_answers() -> None:
    from targeting.segments import segment_portraits

    # c1 (area A) is all S1; c2 (area B) is a quarter S1 and three quarters S2 by households
    cell_segments = pd.DataFrame(
        {
            "cell": ["c1", "c2", "c2"],
            "area_code": ["A", "B", "B"],
            "segment": ["S1", "S1", "S2"],
            "households": [30.0, 5.0, 15.0],
        }
    )
    cell_origins = pd.DataFrame(
        {
            "cell": ["c1", "c1", "c2", "c2"],
            "area_code": ["A", "A", "B", "B"],
            "origin": ["Pakistani", "England", "England", "Polish"],
            "residents": [60.0, 40.0, 100.0, 120.0],
        }
    )
    # S1: Pakistani 60, England 40 + 25, Polish 30 (155): 39%, 42%, 19%; the force: Pakistani
    # 60 of 320 (18.75%), so S1 holds 2.06 times its share. S2: England 75, Polish 90 (165).
    # Deprivation over households: S1 (0.9 x 30 + 0.1 x 5) / 35 = 0.79, S2 0.1.
    words = segment_portraits(
        cell_segments, cell_origins, area_deprivation=pd.Series({"A": 0.9, "B": 0.1})
    )
    assert words["S1"] == (
        "Mainly England (42%) and Pakistani (39%) residents; twice the force's share of "
        "Pakistani residents; high deprivation."
    )
    # Polish: 55% against the force's 37.5% is 1.45 times, under the 1.5 that earns a mention
    assert words["S2"] == "Mainly Polish (55%) and England (45%) residents; low deprivation."
    no_deprivation = segment_portraits(cell_segments, cell_origins)
    assert no_deprivation["S2"] == "Mainly Polish (55%) and England (45%) residents."


_PAIRS = st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(["A", "B"]))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_PAIRS, st.sampled_from(["S1", "S2", "S3"]), st.floats(0.5, 50)),
             min_size=1, max_size=12),
    st.lists(st.tuples(_PAIRS, st.sampled_from(["England", "Pakistani", "Polish"]),
                       st.floats(0, 100)), min_size=1, max_size=15),
)  # fmt: skip
def test_residents_by_segment_is_the_merge_of_the_two_tables(homes, people) -> None:
    """Shared by households over each cell x area, as merging the tables on cell and area and
    summing gives, repeated rows and pairs in one table only included."""
    from targeting.segments import _residents_by_segment

    households = pd.DataFrame(
        [(c, a, s, h) for (c, a), s, h in homes],
        columns=["cell", "area_code", "segment", "households"],
    )
    cell_origins = pd.DataFrame(
        [(c, a, o, r) for (c, a), o, r in people],
        columns=["cell", "area_code", "origin", "residents"],
    )
    homes_summed = households.groupby(["cell", "area_code", "segment"], as_index=False).sum()
    homes_summed["part"] = homes_summed["households"] / homes_summed.groupby(["cell", "area_code"])[
        "households"
    ].transform("sum")
    joined = homes_summed.merge(cell_origins, on=["cell", "area_code"])
    got = _residents_by_segment(households, cell_origins)
    if joined.empty:
        assert got.empty
        return
    joined["residents"] = joined["residents"] * joined["part"]
    want = joined.pivot_table(
        index="segment", columns="origin", values="residents", aggfunc="sum", fill_value=0.0
    )
    assert list(got.index) == list(want.index) and list(got.columns) == list(want.columns)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=1e-9)
