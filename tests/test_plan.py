"""The week's plan: one integer program, solved exactly; known answers by hand and the optimum of
an independent formulation (PuLP's CBC) on seeded random instances."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pulp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from targeting.plan import Limits, area_plan, best_of_each_kind, solve_plan

# every area of these instances matters as much as the next
ONE = pd.Series(1.0, index=[f"A{i}" for i in range(8)] + [f"A{i:03d}" for i in range(200)]
                + ["A", "B", "C"])  # fmt: skip


def plan_gain(
    options: pd.DataFrame, chosen: np.ndarray, caps: pd.Series, priority: pd.Series
) -> float:
    """The plan's objective, worked out from what it chose: the sum over areas of priority x min(cap, value of its chosen
    options)."""
    taken = options.loc[chosen].groupby("area_code")["value"].sum()
    counted = np.minimum(taken, caps.reindex(taken.index).fillna(0.0).clip(lower=0.0))
    return float((counted * priority.reindex(taken.index).fillna(0.0).clip(lower=0.0)).sum())


def _options(rows: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    """Options from (area, parent, tactic, value, hours) rows; cells numbered."""
    frame = pd.DataFrame(rows, columns=["area_code", "parent_code", "tactic", "value", "hours"])
    frame["cell"] = [f"c{i}" for i in range(len(frame))]
    frame["signups"] = frame["value"] * 2
    return frame


def test_hotspots_go_where_they_win_most_within_the_weeks_limit() -> None:
    options = _options([
        ("A", "N1", "door", 3.0, 4), ("A", "N1", "door", 2.0, 4), ("A", "N1", "door", 0.5, 4),
        ("B", "N1", "door", 2.5, 4), ("B", "N1", "door", 1.0, 4),
    ])  # fmt: skip
    caps = pd.Series({"A": 100.0, "B": 100.0})
    limits = Limits(hotspots=3, officer_hours=None, station_days=0, social_posts=0)
    chosen = solve_plan(options, caps, ONE, limits=limits)
    assert options.loc[chosen, "cell"].tolist() == ["c0", "c1", "c3"]  # 3 + 2 + 2.5
    assert plan_gain(options, chosen, caps, ONE) == pytest.approx(7.5)


def test_an_area_gets_one_tactic_and_a_gap_caps_what_it_counts() -> None:
    options = _options([
        ("A", "N1", "door", 2.0, 4), ("A", "N1", "door", 2.0, 4),
        ("A", "N1", "station", 3.5, 16),
        ("B", "N1", "door", 1.0, 4),
    ])  # fmt: skip
    # A's gap is 3: two doors (4) count only 3, and the station (3.5) counts 3 too; it takes one
    # tactic, and no unit beyond what counts (the second door adds nothing, so it is left)
    caps = pd.Series({"A": 3.0, "B": 10.0})
    limits = Limits(hotspots=5, officer_hours=None, station_days=1, social_posts=0)
    chosen = solve_plan(options, caps, ONE, limits=limits)
    plan = area_plan(options, chosen, caps, area_codes=pd.Index(["A", "B", "C"]))
    assert plan.loc["A", "tactic"] in ("door", "station")
    assert (plan.loc["A", ["hotspots", "station_days"]] > 0).sum() == 1
    assert plan.loc["A", "expected_gain"] == pytest.approx(3.0)
    assert plan.loc["B", "hotspots"] == 1 and plan.loc["C", "tactic"] == "none"
    # the cheaper way to the same gain: the hours penalty breaks the tie
    assert plan.loc["A", "officer_hours"] == pytest.approx(8.0 if plan.loc["A", "hotspots"] else 16)
    assert plan_gain(options, chosen, caps, ONE) == pytest.approx(4.0)


def test_officer_hours_bind_per_npu() -> None:
    options = _options([
        ("A", "N1", "door", 3.0, 4), ("A", "N1", "door", 3.0, 4), ("A", "N1", "door", 3.0, 4),
        ("B", "N2", "door", 1.0, 4), ("B", "N2", "door", 1.0, 4),
    ])  # fmt: skip
    caps = pd.Series({"A": 100.0, "B": 100.0})
    limits = Limits(hotspots=None, officer_hours=8.0, station_days=0, social_posts=0)
    chosen = solve_plan(options, caps, ONE, limits=limits)
    used = options.loc[chosen].groupby("parent_code")["hours"].sum()
    assert used.to_dict() == {"N1": 8.0, "N2": 8.0}


def _independent_optimum(
    options: pd.DataFrame, caps: pd.Series, priority: pd.Series, limits: Limits
) -> float:
    """The same plan written afresh in PuLP and solved by CBC: max sum of priority x
    min(cap, value)."""
    problem = pulp.LpProblem("week", pulp.LpMaximize)
    y = [pulp.LpVariable(f"y{i}", cat="Binary") for i in range(len(options))]
    pairs = sorted(set(zip(options["area_code"], options["tactic"], strict=True)))
    z = {p: pulp.LpVariable(f"z_{p[0]}_{p[1]}", cat="Binary") for p in pairs}
    g = {a: pulp.LpVariable(f"g_{a}", 0, max(0.0, caps.get(a, 0.0))) for a in caps.index}
    problem += pulp.lpSum(priority[a] * g[a] for a in g)
    for i, row in enumerate(options.itertuples()):
        problem += y[i] <= z[(row.area_code, row.tactic)]
    for a in caps.index:
        problem += pulp.lpSum(z[p] for p in pairs if p[0] == a) <= 1
        problem += g[a] <= pulp.lpSum(
            row.value * y[i] for i, row in enumerate(options.itertuples()) if row.area_code == a
        )
    doors = [y[i] for i, t in enumerate(options["tactic"]) if t in ("door", "street")]
    if limits.hotspots is not None:
        problem += pulp.lpSum(doors) <= limits.hotspots
    problem += pulp.lpSum(y[i] for i, t in enumerate(options["tactic"]) if t == "station") <= (
        limits.station_days
    )
    if limits.officer_hours is not None:
        for parent in options["parent_code"].unique():
            problem += (
                pulp.lpSum(
                    row.hours * y[i]
                    for i, row in enumerate(options.itertuples())
                    if row.parent_code == parent
                )
                <= limits.officer_hours
            )
    problem.solve(pulp.PULP_CBC_CMD(msg=False))
    return float(pulp.value(problem.objective))


@pytest.mark.parametrize("seed", range(12))
def test_the_plan_is_the_exact_optimum_on_random_instances(seed: int) -> None:
    rng = np.random.default_rng(seed)
    areas = [f"A{i}" for i in range(8)]
    rows = []
    for a in areas:
        parent = f"N{int(a[1:]) % 3}"
        for tactic, count, value, hours in (("door", 5, 1.2, 4), ("street", 3, 0.8, 4),
                                            ("station", 1, 6.0, 16)):  # fmt: skip
            for v in np.sort(rng.gamma(2.0, value / 2, size=count))[::-1]:
                rows.append((a, parent, tactic, float(v), float(hours)))
    options = _options(rows)
    caps = pd.Series(rng.uniform(1, 12, size=len(areas)), index=areas)
    priority = pd.Series(rng.uniform(0.1, 1.0, size=len(areas)), index=areas)
    hours = None if seed % 2 else 24.0
    limits = Limits(hotspots=None if hours else 14, officer_hours=hours, station_days=3,
                    social_posts=0)  # fmt: skip
    chosen = solve_plan(options, caps, priority, limits=limits)
    assert plan_gain(options, chosen, caps, priority) == pytest.approx(
        _independent_optimum(options, caps, priority, limits), rel=1e-6, abs=1e-6
    )


def test_a_force_scale_plan_solves_in_well_under_two_seconds() -> None:
    """200 areas in 20 NPUs, 12 door and 12 street options each and a station day: the size of
    a large force's ward plan."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(200):
        for tactic, count, value, hours in (("door", 12, 1.0, 4), ("street", 12, 0.6, 4),
                                            ("station", 1, 5.0, 16)):  # fmt: skip
            for v in np.sort(rng.gamma(2.0, value / 2, size=count))[::-1]:
                rows.append((f"A{i:03d}", f"N{i % 20}", tactic, float(v), float(hours)))
    options = _options(rows)
    caps = pd.Series(rng.uniform(1, 30, size=200), index=[f"A{i:03d}" for i in range(200)])
    limits = Limits(hotspots=120, officer_hours=None, station_days=5, social_posts=0)
    start = time.perf_counter()
    chosen = solve_plan(options, caps, ONE, limits=limits)
    elapsed = time.perf_counter() - start
    taken = options.loc[chosen]
    assert taken["tactic"].isin(["door", "street"]).sum() <= 120
    assert (taken["tactic"] == "station").sum() <= 5
    assert taken.groupby("area_code")["tactic"].nunique().max() == 1
    assert elapsed < 2.0, elapsed


def _cell_table() -> pd.DataFrame:
    """Six cells of two areas: residents, residents of the area's target origins, crimes of busy
    public places, surface."""
    import h3

    ring = sorted(h3.grid_disk(h3.latlng_to_cell(52.48, -1.89, 9), 1))[:6]
    return pd.DataFrame(
        {
            "area_code": ["A", "A", "A", "B", "B", "B"],
            "residents": [400.0, 400.0, 200.0, 300.0, 300.0, 10.0],
            "target_residents": [200.0, 40.0, 150.0, 30.0, 0.0, 0.0],
            "public_crimes": [0.0, 5.0, 0.0, 0.0, 40.0, 10.0],
            "area_m2": [1e5] * 6,
        },
        index=pd.Index(ring, name="cell"),
    )


def test_options_are_each_tactics_own_places_valued_by_who_they_reach() -> None:
    from targeting.plan import plan_options

    cells = _cell_table()
    lived_in = pd.Series([True, True, True, True, True, False], index=cells.index)
    yields = {"door": 2.0, "street": 1.0, "station": 20.0, "social": 0.5}
    options = plan_options(
        cells, lived_in=lived_in, excluded=frozenset([cells.index[2]]),
        parents=pd.Series({"A": "N1", "B": "N2"}), stations_in=pd.Index(["B"]),
        door_yields=pd.Series(2.0, index=cells.index), yields=yields,
        hours={"door": 4.0, "street": 4.0, "station": 16.0, "social": 0.5},
        per_area=1, radius_m=2000.0, social=True,
    )  # fmt: skip
    by = {t: options[options["tactic"] == t].set_index("area_code") for t in yields}
    # door: the lived-in cell with the largest target share (cell 2, 75%, was visited lately:
    # it rests), one per area at most; B's only lived-in cell with target residents is its first
    assert by["door"].loc["A", "cell"] == cells.index[0]
    assert by["door"].loc["A", "value"] == pytest.approx(2.0 * 200 / 400)
    assert by["door"].loc["B", "value"] == pytest.approx(2.0 * 30 / 300)
    # street: the densest public-place crimes, whether or not people live there; value is the
    # yield x density against the median candidate's (40 / 10) x the area's target share
    assert by["street"].loc["B", "cell"] == cells.index[4]
    assert by["street"].loc["B", "value"] == pytest.approx(1.0 * 4.0 * 30 / 610)
    assert by["street"].loc["A", "value"] == pytest.approx(1.0 * 0.5 * 390 / 1000)
    # station: only in B, at the lived-in cell whose radius holds most residents (all of them)
    assert list(by["station"].index) == ["B"]
    assert by["station"].loc["B", "value"] == pytest.approx(20.0 * 420 / 1610)
    assert by["social"].loc["A", "value"] == pytest.approx(0.5 * 390 / 1000)
    assert set(options["parent_code"]) == {"N1", "N2"}
    assert (options.loc[options["tactic"] == "station", "hours"] == 16.0).all()


def test_the_station_goes_to_the_worse_half_where_watch_is_thin() -> None:
    from targeting.plan import station_areas

    areas = pd.DataFrame(
        {"score": [0.9, 0.8, 0.7, 0.2], "watch_share": [0.30, 0.05, 0.10, 0.01]},
        index=["A", "B", "C", "D"],
    )
    # worse half by score: A and B (median 0.75); Watch below the median area's (0.075): B
    assert list(station_areas(areas)) == ["B"]
    # without Watch data, the worse half alone
    assert list(station_areas(areas.assign(watch_share=np.nan))) == ["A", "B"]


def test_a_social_post_comes_on_top_of_an_areas_tactic_on_the_ground() -> None:
    options = _options([
        ("A", "N1", "door", 2.0, 4), ("A", "N1", "social", 0.4, 0.5),
        ("B", "N1", "social", 0.3, 0.5),
    ])  # fmt: skip
    caps = pd.Series({"A": 10.0, "B": 10.0})
    limits = Limits(hotspots=5, officer_hours=None, station_days=0, social_posts=2)
    chosen = solve_plan(options, caps, ONE, limits=limits)
    assert chosen.all()
    plan = area_plan(options, chosen, caps, area_codes=pd.Index(["A", "B"]))
    assert plan["tactic"].to_dict() == {"A": "door", "B": "social"}
    assert plan["social_posts"].to_dict() == {"A": 1, "B": 1}


def test_where_a_gap_is_filled_the_areas_best_places_fill_it() -> None:
    # any two of these three doors fill A's gap of 1.77 (a third adds nothing), so every pair
    # is an optimum of the programme (HiGHS's own answer is 0.67 and 1.32): the plan takes the
    # two best, whatever the solver's path
    options = _options([("A", "N", "door", v, 4.0) for v in (0.67, 1.11, 1.32)])
    limits = Limits(hotspots=3, officer_hours=None, station_days=0, social_posts=0)
    chosen = solve_plan(options, pd.Series({"A": 1.77}), ONE, limits=limits)
    assert options.loc[chosen, "value"].tolist() == [1.11, 1.32]


def test_best_of_each_kind_known_answers() -> None:
    options = _options([
        ("A", "N", "door", 0.5, 4.0), ("A", "N", "door", 0.9, 4.0), ("A", "N", "door", 0.7, 4.0),
        ("A", "N", "door", 0.9 + 1e-13, 4.0),  # a last-bit difference is a tie: cell decides
        ("A", "N", "street", 2.0, 4.0), ("A", "N", "street", 0.1, 4.0),
        ("B", "N", "door", 3.0, 4.0), ("B", "N", "door", 1.0, 6.0),  # longer: another kind
    ])  # fmt: skip
    chosen = np.array([True, False, True, False, False, True, False, True])
    best = best_of_each_kind(options, chosen)
    assert options.loc[best, "cell"].tolist() == ["c1", "c3", "c4", "c7"]


@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["door", "street"]),
                          st.floats(0.01, 5.0), st.sampled_from([4.0, 6.0]), st.booleans()),
                min_size=1, max_size=25))  # fmt: skip
def test_best_of_each_kind_keeps_every_limit_and_loses_no_value(
    rows: list[tuple[str, str, float, float, bool]],
) -> None:
    options = _options([(a, "N", t, v, h) for a, t, v, h, _ in rows])
    chosen = np.array([c for *_, c in rows])
    best = best_of_each_kind(options, chosen)
    kind = ["area_code", "tactic", "hours"]
    # as many of each kind (so the same hotspots, hours and tactics), each area's value no less
    assert options[best].groupby(kind).size().equals(options[chosen].groupby(kind).size())
    before = options[chosen].groupby("area_code")["value"].sum()
    after = options[best].groupby("area_code")["value"].sum().reindex(before.index)
    assert (after >= before - 1e-9).all()
    assert (best_of_each_kind(options, best) == best).all()
