"""Scoring: components by hand, rank percentiles, weights that mean what they say, and rankings
that follow each component."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from targeting.config import ScoringConfig
from targeting.scoring import (
    COMPONENT_NAMES,
    Force,
    effective_weights,
    force_rates,
    rank_by_score,
    rank_percentiles,
    reason_clauses,
    reasons,
    score_units,
    unit_measures,
    units_to_components,
)

FORCE = Force(
    signups_per_resident=0.02,
    crimes_per_1000=80.0,
    sac_per_1000=20.0,
    low_rating_share=0.2,
    watch_share=0.1,
)


def _units(n: int = 4, **columns: list[float]) -> pd.DataFrame:
    base = {
        "residents": [1000.0] * n,
        "registered_known": [20.0] * n,
        "households": [400.0] * n,
        "watch_households": [40.0] * n,
        "crimes": [80.0] * n,
        "sac_crimes": [20.0] * n,
        "ratings": [50.0] * n,
        "low_ratings": [10.0] * n,
        "parity_gap": [5.0] * n,
        "penetration_gap": [0.0] * n,
    }
    base.update(columns)
    return pd.DataFrame(base, index=[f"A{i}" for i in range(n)])


def _rank(units: pd.DataFrame, weights: dict[str, float]) -> list[str]:
    raw = units_to_components(units, force=FORCE, scoring=ScoringConfig())
    used, _ = effective_weights(weights, raw)
    scored = units.assign(score=score_units(rank_percentiles(raw), used))
    return rank_by_score(scored.rename_axis("area_code").reset_index(), key="area_code")[
        "area_code"
    ].tolist()


def test_components_by_hand() -> None:
    units = _units(
        2,
        residents=[2000.0, 500.0],
        crimes=[100.0, 50.0],
        sac_crimes=[10.0, 0.0],
        households=[800.0, 200.0],
        watch_households=[200.0, 300.0],
        ratings=[0.0, 80.0],
        low_ratings=[0.0, 40.0],
    )
    raw = units_to_components(units, force=FORCE, scoring=ScoringConfig())
    assert raw.loc["A0", "crime"] == pytest.approx(50.0)  # 100 per 2,000 residents
    assert raw.loc["A1", "crime"] == pytest.approx(100.0)
    assert raw.loc["A0", "sac"] == pytest.approx(5.0)
    assert raw.loc["A0", "watch_gap"] == pytest.approx(0.75)  # 1 - 200/800
    assert raw.loc["A1", "watch_gap"] == pytest.approx(0.0)  # more Watch households than homes
    # no ratings: the force share; 40 low of 80: (40 + 20 x 0.2) / (80 + 20) = 0.44
    assert raw.loc["A0", "low_satisfaction"] == pytest.approx(0.2)
    assert raw.loc["A1", "low_satisfaction"] == pytest.approx(0.44)
    assert list(raw.columns) == list(COMPONENT_NAMES)


def test_rank_percentiles_ties_constants_and_gaps() -> None:
    raw = pd.DataFrame({"a": [3.0, 1.0, 2.0, 2.0], "b": [7.0] * 4, "c": [1.0, np.nan, 2.0, 3.0]})
    pct = rank_percentiles(raw)
    assert pct["a"].tolist() == [1.0, 0.0, 0.5, 0.5]
    assert pct["b"].tolist() == [0.5] * 4
    assert pct["c"].iloc[[0, 2, 3]].tolist() == [0.0, 0.5, 1.0]
    assert np.isnan(pct["c"].iloc[1])


def test_zero_weight_removes_a_component_entirely() -> None:
    normalised = pd.DataFrame({c: [0.0, 1.0] for c in COMPONENT_NAMES})
    normalised.loc[0, "crime"] = np.nan
    weights = {c: 0.0 for c in COMPONENT_NAMES} | {"representation_gap": 1.0, "crime": 0.0}
    score = score_units(normalised, weights)
    # the missing crime value does not matter: crime takes no part, not even in the denominator
    assert score.tolist() == [0.0, 1.0]
    weights["crime"] = 1.0
    assert score_units(normalised, weights).tolist() == [0.0, 1.0]  # row 0 averages over gap only


def test_absent_input_switches_a_component_off_with_a_note() -> None:
    units = _units(3, crimes=[np.nan] * 3, sac_crimes=[np.nan] * 3)
    raw = units_to_components(units, force=FORCE, scoring=ScoringConfig())
    used, notes = effective_weights({c: 1.0 for c in COMPONENT_NAMES}, raw)
    assert used["crime"] == 0.0 and used["sac"] == 0.0 and used["watch_gap"] == 1.0
    assert any("crime switched off" in n and "no crimes" in n for n in notes)


def test_planted_gaps_come_first_and_each_component_moves_the_ranking_its_way() -> None:
    # A3 and A1 have planted representation gaps; each other component has its own leader
    units = _units(
        5,
        parity_gap=[2.0, 300.0, 5.0, 500.0, 1.0],
        penetration_gap=[900.0, 0.0, 10.0, 0.0, 5.0],
        crimes=[50.0, 60.0, 400.0, 70.0, 80.0],
        sac_crimes=[5.0, 6.0, 7.0, 8.0, 90.0],
        watch_households=[100.0, 90.0, 80.0, 200.0, 0.0],
        low_ratings=[5.0, 6.0, 7.0, 40.0, 8.0],
    )
    alone = {c: 0.0 for c in COMPONENT_NAMES}
    assert _rank(units, alone | {"representation_gap": 1.0})[:2] == ["A3", "A1"]
    assert _rank(units, alone | {"low_penetration": 1.0})[0] == "A0"
    assert _rank(units, alone | {"crime": 1.0})[0] == "A2"
    assert _rank(units, alone | {"sac": 1.0})[0] == "A4"
    assert _rank(units, alone | {"watch_gap": 1.0})[0] == "A4"  # no Watch households at all
    assert _rank(units, alone | {"low_satisfaction": 1.0})[0] == "A3"


def test_ties_keep_a_stable_order() -> None:
    units = _units(4)  # every area identical
    assert _rank(units, {c: 1.0 for c in COMPONENT_NAMES}) == ["A0", "A1", "A2", "A3"]
    shuffled = units.iloc[[2, 0, 3, 1]]
    assert _rank(shuffled, {c: 1.0 for c in COMPONENT_NAMES}) == ["A0", "A1", "A2", "A3"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=30),
    st.dictionaries(st.sampled_from(COMPONENT_NAMES), st.floats(0, 5), min_size=1),
)
def test_ranking_is_a_permutation(gaps: list[float], weights: dict[str, float]) -> None:
    n = len(gaps)
    rng = np.random.default_rng(n)
    units = _units(
        n,
        parity_gap=gaps,
        penetration_gap=list(rng.random(n) * 100),
        crimes=list(rng.integers(0, 100, n).astype(float)),
    )
    order = _rank(units, weights)
    assert sorted(order) == sorted(units.index)
    raw = units_to_components(units, force=FORCE, scoring=ScoringConfig())
    score = score_units(rank_percentiles(raw), weights)
    assert ((score >= 0) & (score <= 1)).all() or score.isna().all()


def test_reason_names_each_origins_own_gap_then_the_total_then_the_next_driver() -> None:
    units = _units(3, parity_gap=[410.0, np.nan, 0.0], watch_households=[16.0, 20.0, 40.0])
    raw = units_to_components(units, force=FORCE, scoring=ScoringConfig())
    names = pd.Series({"A0": "Pakistani 16, Bangladeshi 14"})
    clauses = reason_clauses(raw, units, names, force=FORCE)
    # the watch gap drives A0 most, but who is short always leads
    order = pd.DataFrame(
        [["watch_gap", "representation_gap", "crime"], ["watch_gap", None, None],
         ["watch_gap", "crime", None]],
        index=units.index,
    )  # fmt: skip
    text = reasons(clauses, order)
    assert text["A0"] == (
        "Pakistani 16, Bangladeshi 14 sign-ups short of parity; the area's parity gap is 410; "
        "Watch covers 4% of households (force 10%)"
    )
    assert text["A1"] == "Watch covers 5% of households (force 10%)"
    # A2 is at the force's figures everywhere: nothing is cited as a reason
    assert text["A2"] == "no measure worse than the force's"


def test_gap_clause_without_named_origins_gives_the_total_alone() -> None:
    units = _units(1, parity_gap=[130.0])
    raw = units_to_components(units, force=FORCE, scoring=ScoringConfig())
    clause = reason_clauses(raw, units, pd.Series(dtype=str), force=FORCE)["representation_gap"]
    assert clause["A0"] == "the area's parity gap is 130 sign-ups"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 200), st.floats(0, 60), st.floats(0, 400), st.floats(0, 100),
            st.floats(0, 50),
        ),
        min_size=1, max_size=12,
    )
)  # fmt: skip
def test_no_clause_cites_a_figure_at_or_better_than_the_forces(
    rows: list[tuple[float, float, float, float, float]],
) -> None:
    """Whatever the units, a clause is given only where the unit is worse than the force on
    that component (more crime, less Watch, more low ratings, fewer sign-ups, a gap)."""
    crimes, sac, watch, low, registered = (list(c) for c in zip(*rows, strict=True))
    n = len(rows)
    units = _units(n, crimes=crimes, sac_crimes=sac, watch_households=watch, low_ratings=low,
                   registered_known=registered, parity_gap=[0.0] * n)  # fmt: skip
    units["penetration_gap"] = np.maximum(0.0, 0.02 * 1000 - units["registered_known"])
    raw = units_to_components(units, force=FORCE, scoring=ScoringConfig())
    clauses = reason_clauses(raw, units, pd.Series(dtype=str), force=FORCE)
    better = {
        "crime": units["crimes"] <= 80.0,
        "sac": units["sac_crimes"] <= 20.0,
        "watch_gap": units["watch_households"] / 400.0 >= 0.1,
        "low_penetration": units["registered_known"] >= 20.0,
        "representation_gap": pd.Series(True, index=units.index),
    }
    for name, at_or_better in better.items():
        assert (clauses.loc[at_or_better, name] == "").all(), name


def test_force_rates_sum_every_unit() -> None:
    force = force_rates(_units(2, registered_known=[10.0, 30.0], low_ratings=[5.0, 15.0]))
    assert force.signups_per_resident == pytest.approx(40 / 2000)
    assert force.low_rating_share == pytest.approx(20 / 100)
    assert force.crimes_per_1000 == pytest.approx(80.0)


def test_deprivation_is_a_residents_weighted_mean_ranked_most_deprived_first() -> None:
    """IMD ranks count 1 as most deprived: the component is the negated mean (more is more
    need), the published value stays as the index has it, and the reason says which way the
    area lies from the force."""
    # A0 mean rank 1,000 (most deprived), A1 20,000, A2 has no deprivation value
    units = _units(
        3,
        deprivation_residents=[1000.0, 500.0, np.nan],
        deprivation_sum=[1000.0 * 1000, 500.0 * 20000, np.nan],
        deprivation_need=[-1000.0 * 1000, -500.0 * 20000, np.nan],
    )
    force = force_rates(units)
    assert force.deprivation_value == pytest.approx((1e6 + 1e7) / 1500)
    measures = unit_measures(units)
    assert measures["deprivation_value"].tolist()[:2] == [1000.0, 20000.0]
    raw = units_to_components(units.join(measures), force=force, scoring=ScoringConfig())
    assert raw["deprivation"].tolist()[:2] == [-1000.0, -20000.0]
    assert np.isnan(raw.loc["A2", "deprivation"])
    alone = dict.fromkeys(COMPONENT_NAMES, 0.0) | {"deprivation": 1.0}
    assert _rank(units, alone)[:2] == ["A0", "A1"]
    clauses = reason_clauses(raw, units, pd.Series(dtype=str), force=force)["deprivation"]
    assert (
        clauses["A0"]
        == "more deprived than the force as a whole (index 1,000 against 7,333 force-wide)"
    )
    # less deprived than the force is no reason to go there: it is never cited
    assert clauses["A1"] == "" and clauses["A2"] == ""
    # its default weight is 0: a run that adds the layer keeps its ranking
    weights = dict(ScoringConfig().weights)
    assert weights["deprivation"] == 0.0
    plain = units.drop(columns=["deprivation_residents", "deprivation_sum", "deprivation_need"])
    units = units.assign(parity_gap=[5.0, 9.0, 1.0], crimes=[10.0, 90.0, 50.0])
    plain = plain.assign(parity_gap=[5.0, 9.0, 1.0], crimes=[10.0, 90.0, 50.0])
    assert _rank(units, weights) == _rank(plain, weights) == ["A1", "A0", "A2"]
