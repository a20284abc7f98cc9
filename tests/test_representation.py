"""Representation: every column of representation.csv against answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from targeting.representation import (
    bh_q_values,
    binomial_p_values,
    origin_groups,
    parity_gaps,
    represent,
    select_rows,
    wilson_interval,
)

Z = 1.959963984540054


def _wilson_by_hand(k: float, n: float) -> tuple[float, float]:
    p = k / n
    denom = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def _areas(parents: dict[str, str] | None = None) -> pd.DataFrame:
    codes = ["A1", "A2"]
    parents = parents or {}
    return pd.DataFrame(
        {
            "area_code": codes,
            "area_name": ["Alpha", "Beta"],
            "parent_code": [parents.get(c) for c in codes],
            "parent_name": [f"Parent {parents[c]}" if c in parents else None for c in codes],
        }
    )


def _counts(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["area_code", "origin", "residents", "registered"])


def _unknown(**values: int) -> pd.Series:
    return pd.Series({"A1": values.get("A1", 0), "A2": values.get("A2", 0)})


def _row(table: pd.DataFrame, level: str, code: str, origin: str, origin_level: str = "origin"):
    hit = table[
        (table["level"] == level)
        & (table["area_code"] == code)
        & (table["origin"] == origin)
        & (table["origin_level"] == origin_level)
    ]
    assert len(hit) == 1
    return hit.iloc[0]


def test_wilson_interval_matches_the_formula_and_known_values() -> None:
    low, high = wilson_interval(np.array([10, 0]), np.array([100, 50]))
    assert (low[0], high[0]) == pytest.approx(_wilson_by_hand(10, 100), rel=1e-12)
    assert (low[0], high[0]) == pytest.approx((0.05522914, 0.17436566), rel=1e-6)
    assert low[1] == pytest.approx(0.0, abs=1e-12)
    assert high[1] == pytest.approx(Z**2 / (50 + Z**2), rel=1e-9)  # 0 of 50
    nan_low, _ = wilson_interval(np.array([0]), np.array([0]))
    assert np.isnan(nan_low[0])


def test_parity_gap_by_hand() -> None:
    # 20% of residents, 10 of 100 sign-ups: (0.2 * 100 - 10) / 0.8 = 12.5, so 13 more;
    # check: 23 of 113 is 20.35% (enough), 22 of 112 is 19.6% (not)
    gaps = parity_gaps(np.array([0.2, 0.8, 0.5, 0.0, 1.0, 0.2]), np.array([10, 90, 50, 3, 5, 0]),
                       np.array([100, 100, 100, 10, 5, 0]))  # fmt: skip
    assert gaps[0] == 13
    assert gaps[1] == 0  # over-represented: no gap
    assert gaps[2] == 0  # exactly at parity
    assert np.isnan(gaps[3]) and np.isnan(gaps[4]) and np.isnan(gaps[5])  # t = 0, t = 1, N = 0


def test_binomial_p_value_and_bh_q_values() -> None:
    p = binomial_p_values(np.array([10, 0]), np.array([100, 0]), np.array([0.2, 0.3]))
    assert p[0] == pytest.approx(2 * 0.005696380955793536, rel=1e-9)  # 2 x P(X <= 10)
    assert np.isnan(p[1])
    # sorted p 0.01, 0.03, 0.04, 0.5 (m = 4): q = min over later ranks of p m / rank
    q = bh_q_values(np.array([0.01, 0.04, 0.03, 0.5, np.nan]))
    assert q[:4] == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert np.isnan(q[4])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5_000), st.integers(0, 5_000), st.floats(0.0, 1.0)),
        min_size=1, max_size=30,
    )
)  # fmt: skip
def test_closed_forms_agree_with_statsmodels_and_scipy_stats(rows) -> None:
    """The interval, p-values and q-values are closed forms on scipy.special (scipy.stats
    takes 0.8 s to load); they are the libraries' own answers."""
    from scipy.stats import binom
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportion_confint

    n = np.array([max(a, b) for a, b, _ in rows], dtype=float)
    k = np.array([min(a, b) for a, b, _ in rows], dtype=float)
    t = np.array([r for _, _, r in rows])
    low, high = wilson_interval(k, n)
    some = n > 0
    want_low, want_high = proportion_confint(k[some], n[some], alpha=0.05, method="wilson")
    assert low[some] == pytest.approx(want_low, abs=1e-12)
    assert high[some] == pytest.approx(want_high, abs=1e-12)
    assert np.isnan(low[~some]).all()
    p = binomial_p_values(k, n, t)
    defined = some & (t > 0) & (t < 1)
    clipped = np.clip(t, 1e-12, 1 - 1e-12)  # as the engine always has
    tail = np.minimum(binom.cdf(k, n, clipped), binom.sf(k - 1, n, clipped))
    # far tails (below 1e-15) differ in the ninth digit between the two libraries
    assert p[defined] == pytest.approx(np.minimum(1, 2 * tail[defined]), rel=1e-9, abs=1e-15)
    assert np.isnan(p[~defined]).all()
    q = bh_q_values(p)
    if defined.any():
        assert q[defined] == pytest.approx(multipletests(p[defined], method="fdr_bh")[1])
    assert np.isnan(q[~defined]).all()


def test_every_column_of_an_area_row_by_hand() -> None:
    counts = _counts([("A1", "England", 80, 90), ("A1", "Pakistani", 20, 10),
                      ("A2", "England", 50, 40), ("A2", "Pakistani", 50, 40)])  # fmt: skip
    table = represent(counts, areas=_areas(), unknown_by_area=_unknown(), threshold=1).table
    pak = _row(table, "area", "A1", "Pakistani")
    assert pak["area_name"] == "Alpha"
    assert pak["active_in_area"] == 20
    assert pak["registered"] == 10
    assert pak["target_rate"] == pytest.approx(0.2)
    assert pak["actual_rate"] == pytest.approx(0.1)
    assert pak["rate_delta"] == pytest.approx(0.1)
    assert pak["representation_index"] == pytest.approx(50.0)
    assert (pak["ci_low"], pak["ci_high"]) == pytest.approx(_wilson_by_hand(10, 100))
    assert pak["parity_gap"] == 13
    assert bool(pak["under_represented"]) is True  # 17.4% < 20%
    assert not pak["suppressed"]
    eng = _row(table, "area", "A1", "England")
    assert eng["representation_index"] == pytest.approx(112.5)
    assert eng["parity_gap"] == 0
    assert bool(eng["under_represented"]) is False
    # A2 is at parity: index 100, no gap, not under-represented
    at_parity = _row(table, "area", "A2", "Pakistani")
    assert at_parity["representation_index"] == pytest.approx(100.0)
    assert at_parity["parity_gap"] == 0
    assert bool(at_parity["under_represented"]) is False
    # the force adds the areas up: Pakistani 70 of 200 residents, 50 of 180 sign-ups
    force = _row(table, "force", "ALL", "Pakistani")
    assert force["area_name"] == "All areas"
    assert force["active_in_area"] == 70 and force["registered"] == 50
    assert force["target_rate"] == pytest.approx(0.35)
    assert force["actual_rate"] == pytest.approx(50 / 180)
    assert force["parity_gap"] == math.ceil((0.35 * 180 - 50) / 0.65)


def test_index_around_parity_and_zero_cases() -> None:
    counts = _counts([("A1", "England", 99, 98), ("A1", "Pakistani", 1, 2),
                      ("A2", "England", 100, 0), ("A2", "Pakistani", 0, 0)])  # fmt: skip
    table = represent(counts, areas=_areas(), unknown_by_area=_unknown(), threshold=1).table
    above = _row(table, "area", "A1", "Pakistani")  # 2% of sign-ups vs 1% of residents
    assert above["representation_index"] == pytest.approx(200.0)
    assert above["parity_gap"] == 0
    below = _row(table, "area", "A1", "England")  # 98% vs 99%
    assert below["representation_index"] == pytest.approx(98 / 99 * 100)
    assert below["parity_gap"] == math.ceil((0.99 * 100 - 98) / 0.01 - 1e-9)
    # A2: no sign-ups at all, and an origin with no residents
    none = _row(table, "area", "A2", "England")
    assert pd.isna(none["actual_rate"]) and pd.isna(none["ci_low"]) and pd.isna(none["parity_gap"])
    assert none["registered"] == 0
    no_residents = _row(table, "area", "A2", "Pakistani")
    assert no_residents["target_rate"] == 0
    assert pd.isna(no_residents["representation_index"])


def test_groups_and_parents_roll_up() -> None:
    counts = _counts([("A1", "Pakistani", 30, 20), ("A1", "Bangladeshi", 10, 12),
                      ("A1", "England", 60, 68), ("A2", "Pakistani", 10, 15),
                      ("A2", "England", 90, 85)])  # fmt: skip
    rep = represent(
        counts, areas=_areas({"A1": "P1", "A2": "P1"}), unknown_by_area=_unknown(), threshold=1
    )
    table = rep.table
    south_asian = _row(table, "area", "A1", "South Asian", "group")
    assert south_asian["active_in_area"] == 40 and south_asian["registered"] == 32
    assert south_asian["target_rate"] == pytest.approx(0.4)
    parent = _row(table, "parent", "P1", "Pakistani")
    assert parent["area_name"] == "Parent P1"
    assert parent["active_in_area"] == 40 and parent["registered"] == 35
    assert set(table["level"]) == {"force", "parent", "area"}
    # Bangladeshi has no residents in A2 but is still a row there (0 of 100)
    assert _row(table, "area", "A2", "Bangladeshi")["active_in_area"] == 0


def test_origin_groups_from_taxonomy_and_census() -> None:
    groups = origin_groups(
        ["Pakistani", "England", "Polish", "WhiteBrit", "BlkCaribbean", "Martian"]
    )
    assert groups == {
        "Pakistani": "South Asian",
        "England": "British",
        "Polish": "Eastern European",
        "WhiteBrit": "White",
        "BlkCaribbean": "Black",
        "Martian": "Other",
    }


def test_small_counts_and_everything_derived_from_them_are_blank() -> None:
    counts = _counts([("A1", "England", 80, 90), ("A1", "Pakistani", 20, 4),
                      ("A2", "England", 50, 40), ("A2", "Pakistani", 50, 40)])  # fmt: skip
    table = represent(counts, areas=_areas(), unknown_by_area=_unknown(), threshold=10).table
    small = _row(table, "area", "A1", "Pakistani")
    assert small["suppressed"]
    for column in ("registered", "actual_rate", "rate_delta", "representation_index", "ci_low",
                   "ci_high", "parity_gap", "under_represented", "p_value", "q_value"):  # fmt: skip
        assert pd.isna(small[column]), column
    assert small["target_rate"] == pytest.approx(0.2)  # census figures are public
    # England in A1 would give the 4 away (94 - 90): withheld too
    assert _row(table, "area", "A1", "England")["suppressed"]
    published = table["registered"].dropna()
    assert not ((published >= 1) & (published < 10)).any()


def test_unknown_origin_share_flagged_above_20_percent() -> None:
    counts = _counts([("A1", "England", 80, 60), ("A1", "Pakistani", 20, 20),
                      ("A2", "England", 50, 50), ("A2", "Pakistani", 50, 50)])  # fmt: skip
    rep = represent(counts, areas=_areas(), unknown_by_area=_unknown(A1=30, A2=12), threshold=10)
    area = rep.unknown[rep.unknown["level"] == "area"].set_index("area_code")
    assert area.loc["A1", "unknown_origin"] == 30
    assert area.loc["A1", "unknown_share"] == pytest.approx(30 / 110)
    assert bool(area.loc["A1", "unreliable"]) is True
    assert bool(area.loc["A2", "unreliable"]) is False  # 12 of 112
    assert rep.unknown[rep.unknown["level"] == "force"].iloc[0]["unknown_origin"] == 42


def test_small_unknown_counts_cannot_be_worked_out_from_the_force_total() -> None:
    counts = _counts([("A1", "England", 80, 60), ("A1", "Pakistani", 20, 20),
                      ("A2", "England", 50, 50), ("A2", "Pakistani", 50, 50)])  # fmt: skip
    rep = represent(counts, areas=_areas(), unknown_by_area=_unknown(A1=30, A2=3), threshold=10)
    area = rep.unknown[rep.unknown["level"] == "area"].set_index("area_code")
    force = rep.unknown[rep.unknown["level"] == "force"].iloc[0]
    assert force["unknown_origin"] == 33
    # 3 is withheld, so 30 must be too: otherwise 33 - 30 gives it away
    assert pd.isna(area.loc["A2", "unknown_origin"]) and pd.isna(area.loc["A1", "unknown_origin"])
    assert pd.isna(area.loc["A2", "unreliable"])


def test_area_gaps_by_hand() -> None:
    counts = _counts([("A1", "England", 80, 90), ("A1", "Pakistani", 20, 10),
                      ("A2", "England", 50, 40), ("A2", "Pakistani", 50, 40)])  # fmt: skip
    gaps = represent(counts, areas=_areas(), unknown_by_area=_unknown(), threshold=1).areas
    a1 = gaps[(gaps["level"] == "area") & (gaps["area_code"] == "A1")].iloc[0]
    assert a1["parity_gap"] == pytest.approx(0.2 * 100 - 10)  # the area form: no 1/(1 - t)
    assert a1["parity_gap_per_100"] == pytest.approx(10.0)
    assert a1["signups_per_1000"] == pytest.approx(1000.0)
    # force: 180 sign-ups for 200 residents, p = 0.9; A1 has 100 for 100 residents, A2 80 for 100
    a2 = gaps[(gaps["level"] == "area") & (gaps["area_code"] == "A2")].iloc[0]
    assert a1["penetration_gap"] == 0
    assert a2["penetration_gap"] == pytest.approx(0.9 * 100 - 80)


def test_select_rows_for_the_cli() -> None:
    counts = _counts([("A1", "England", 80, 90), ("A1", "Pakistani", 20, 10),
                      ("A2", "England", 50, 40), ("A2", "Pakistani", 50, 40)])  # fmt: skip
    table = represent(counts, areas=_areas(), unknown_by_area=_unknown(), threshold=1).table
    rows = select_rows(table, level="area", origin="pakistani")
    assert rows["area_code"].tolist() == ["A1", "A2"]  # largest parity gap first


def test_penetration_gap_blank_when_the_force_total_is_withheld() -> None:
    counts = _counts([("A1", "England", 80, 3), ("A1", "Pakistani", 20, 1),
                      ("A2", "England", 50, 2), ("A2", "Pakistani", 50, 0)])  # fmt: skip
    gaps = represent(counts, areas=_areas(), unknown_by_area=_unknown(), threshold=10).areas
    force = gaps[gaps["level"] == "force"].iloc[0]
    assert force["suppressed"] and pd.isna(force["registered"])  # 6 sign-ups in all
    assert gaps["penetration_gap"].isna().all()
