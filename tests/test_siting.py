"""Siting: coverage against brute force, known answers near Birmingham, and MCLP optimality."""

from __future__ import annotations

from itertools import combinations

import h3
import numpy as np
import pandas as pd
import pulp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from targeting.h3cells import cell_centres
from targeting.siting import SITE_COLUMNS, coverage_matrix, covered_weight, site_stations

CENTRE = h3.latlng_to_cell(52.52, -1.84, 9)
DISK = sorted(h3.grid_disk(CENTRE, 4))
WIDE = sorted(h3.grid_disk(CENTRE, 5))


def _metres(a: str, b: str) -> float:
    """h3's distance between two cells' centres, as the engine finds them (vectorised H3 gives
    h3-py's centres to 1e-13 degree; a pair exactly at the radius is decided on the engine's)."""
    lat, lon = cell_centres([a, b])
    return h3.great_circle_distance((lat[0], lon[0]), (lat[1], lon[1]), unit="m")


def _demand(weights: dict[str, float], residents: float = 10.0) -> pd.DataFrame:
    cells = sorted(weights)
    return pd.DataFrame(
        {"cell": cells, "weight": [weights[c] for c in cells], "residents": residents}
    )


def _clusters() -> tuple[str, str, pd.DataFrame]:
    """Cluster A (19 cells of weight 10) and, 3 km east, cluster B (19 cells of weight 5)."""
    x1 = CENTRE
    x2 = h3.latlng_to_cell(52.52, -1.796, 9)
    weights = {c: 10.0 for c in h3.grid_disk(x1, 2)} | {c: 5.0 for c in h3.grid_disk(x2, 2)}
    weights |= {c: 0.0 for c in h3.grid_disk(x1, 4) if c not in weights}
    return x1, x2, _demand(weights)


def test_coverage_matrix_matches_brute_force() -> None:
    demand = sorted(h3.grid_disk(CENTRE, 6))
    sites = [*WIDE[::7], h3.latlng_to_cell(52.6, -1.9, 9)]
    # the last radius is exactly the distance between two centres, which must count as covered
    for radius in (300.0, 800.0, 1234.5, _metres(CENTRE, h3.grid_ring(CENTRE, 3)[1])):
        cover = coverage_matrix(demand, sites, radius_m=radius)
        assert isinstance(cover, sparse.csr_array)
        expected = np.array([[_metres(s, d) <= radius for d in demand] for s in sites])
        np.testing.assert_array_equal(cover.toarray(), expected.astype(float))
    assert coverage_matrix([], sites, radius_m=800.0).shape == (len(sites), 0)
    with pytest.raises(ValueError, match="not valid H3"):
        coverage_matrix(demand, ["nonsense"], radius_m=800.0)


def test_k1_picks_the_heavy_cluster() -> None:
    # only the cluster's centre is within 800 m of all 19 heavy cells; light cells are everywhere
    heavy = h3.latlng_to_cell(52.515, -1.83, 9)
    weights = {c: 1.0 for c in h3.grid_disk(CENTRE, 8)} | {c: 50.0 for c in h3.grid_disk(heavy, 2)}
    demand = _demand(weights)
    sites = site_stations(demand, k=1)
    assert sites["cell"].tolist() == [heavy]
    assert sites["covered_weight"].iloc[0] == covered_weight(demand, [heavy])
    assert sites["covered_weight"].iloc[0] >= 19 * 50


def test_k2_picks_two_clusters_not_two_sites_in_one() -> None:
    # the two best single sites are both in A, but the second adds far less there than x2 does
    x1, x2, demand = _clusters()
    single = coverage_matrix(demand["cell"], demand["cell"], radius_m=800.0) @ demand["weight"]
    top_two = demand["cell"].to_numpy()[np.argsort(-single, kind="stable")[:2]]
    assert all(_metres(c, x1) < 1000 for c in top_two)
    sites = site_stations(demand, k=2)
    assert sites["cell"].tolist() == [x1, x2]
    assert sites["covered_weight"].tolist() == [190.0, 95.0]
    within = [sum(_metres(s, c) <= 800 for c in demand["cell"]) for s in (x1, x2)]
    assert sites["covered_cells"].tolist() == within
    assert sites["rank"].tolist() == [1, 2]
    assert not sites["fixed"].any()


def test_fixed_site_is_kept_and_its_coverage_not_double_counted() -> None:
    x1, x2, demand = _clusters()
    sites = site_stations(demand, k=1, fixed=[x1])
    assert sites["cell"].tolist() == [x1, x2]
    assert sites["fixed"].tolist() == [True, False]

    # a fixed site next to x1 covers 14 of A's 19 cells: x2 adds all of B, then x1 the other 5
    # cells of A, and is credited with those alone although on its own it covers all 190
    near = h3.grid_ring(x1, 1)[0]
    sites = site_stations(demand, k=2, fixed=[near])
    assert sites["cell"].tolist() == [near, x2, x1]
    assert sites["fixed"].tolist() == [True, False, False]
    assert sites["covered_weight"].tolist() == [140.0, 95.0, 50.0]
    assert covered_weight(demand, [near]) == 140.0 and covered_weight(demand, [x1]) == 190.0
    assert covered_weight(demand, sites["cell"]) == sites["covered_weight"].sum() == 285.0
    reached = sum(any(_metres(s, c) <= 800 for s in sites["cell"]) for c in demand["cell"])
    assert sites["covered_cells"].sum() == reached
    assert sites["covered_residents"].sum() == 10.0 * reached


def test_output_frame_and_edge_cases() -> None:
    x1, _, demand = _clusters()
    before = demand.copy()
    sites = site_stations(demand, k=2)
    pd.testing.assert_frame_equal(demand, before)
    assert sites.columns.tolist() == SITE_COLUMNS
    lat, lng = h3.cell_to_latlng(x1)
    assert sites[["latitude", "longitude"]].iloc[0].tolist() == [round(lat, 6), round(lng, 6)]

    assert site_stations(demand.iloc[:0], k=3).columns.tolist() == SITE_COLUMNS
    assert site_stations(demand.iloc[:0], k=3).empty
    assert site_stations(demand, k=0).empty
    only_fixed = site_stations(demand.iloc[:0], k=3, fixed=[x1])
    assert only_fixed["cell"].tolist() == [x1] and only_fixed["covered_weight"].tolist() == [0.0]

    few = [x1, h3.grid_ring(x1, 3)[0], h3.grid_ring(x1, 3)[2]]
    assert sorted(site_stations(demand, k=10, candidates=few)["cell"]) == sorted(few)

    # cells with no weight and no residents are not candidates by default
    empty_centre = demand.assign(
        weight=np.where(demand["cell"] == x1, 0.0, demand["weight"]),
        residents=np.where(demand["cell"] == x1, 0.0, demand["residents"]),
    )
    assert x1 not in site_stations(empty_centre, k=3)["cell"].tolist()

    with pytest.raises(ValueError, match="fixed sites are not valid H3"):
        site_stations(demand, k=1, fixed=["89195c0ffffffff0"])
    with pytest.raises(ValueError, match="repeated cells"):
        site_stations(pd.concat([demand, demand.iloc[:1]]), k=1)
    with pytest.raises(ValueError, match="non-negative"):
        site_stations(demand.assign(weight=-1.0), k=1)
    with pytest.raises(ValueError, match="no column"):
        site_stations(demand, k=1, weight="gap")


def _instance(seed: int) -> tuple[pd.DataFrame, int, list[str]]:
    """A few res-9 disks around Birmingham, lognormal or mostly-zero weights, k of 3 to 10."""
    rng = np.random.default_rng(seed)
    cells: set[str] = set()
    for _ in range(rng.integers(2, 5)):
        lat, lng = 52.52 + rng.uniform(-0.05, 0.05), -1.84 + rng.uniform(-0.08, 0.08)
        cells |= set(h3.grid_disk(h3.latlng_to_cell(lat, lng, 9), int(rng.integers(5, 13))))
    ordered = sorted(cells)
    n = len(ordered)
    if seed % 2:
        w = rng.lognormal(0, 1.5, n)
    else:
        w = np.where(rng.random(n) < 0.15, rng.lognormal(1, 1, n), 0.0)
    residents = rng.poisson(40, n).astype(float)
    k = int(rng.integers(3, 11))
    fixed = [str(c) for c in rng.choice(ordered, 2, replace=False)] if seed % 3 == 0 else []
    return pd.DataFrame({"cell": ordered, "weight": w, "residents": residents}), k, fixed


def _exact_mclp(demand: pd.DataFrame, k: int, fixed: list[str], candidates: list[str]) -> float:
    cover = coverage_matrix(demand["cell"], candidates + fixed, radius_m=800.0).tocsc()
    w = demand["weight"].to_numpy()
    model = pulp.LpProblem("mclp", pulp.LpMaximize)
    x = [pulp.LpVariable(f"x{j}", cat="Binary") for j in range(cover.shape[0])]
    y = {i: pulp.LpVariable(f"y{i}", cat="Binary") for i in np.flatnonzero(w > 0)}
    model += pulp.lpSum(w[i] * yi for i, yi in y.items())
    for i, yi in y.items():
        model += yi <= pulp.lpSum(
            x[j] for j in cover.indices[cover.indptr[i] : cover.indptr[i + 1]]
        )
    model += pulp.lpSum(x[: len(candidates)]) == k
    for xj in x[len(candidates) :]:
        model += xj == 1
    model.solve(pulp.PULP_CBC_CMD(msg=False))
    assert pulp.LpStatus[model.status] == "Optimal"
    return float(pulp.value(model.objective))


# greedy alone falls short of 98% on 0, 10, 21 and 65; 142 was the worst of 200 seeds after the
# local search (98.5%). PuLP 3 warns about the PuLP 2 API the project's pulp>=2.8 pin still needs.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("seed", [0, 1, 2, 10, 21, 48, 65, 142])
def test_close_to_the_exact_mclp_optimum(seed: int) -> None:
    demand, k, fixed = _instance(seed)
    candidates = [c for c in demand["cell"] if c not in fixed]
    sites = site_stations(demand, k=k, fixed=fixed, candidates=candidates)
    greedy = site_stations(demand, k=k, fixed=fixed, candidates=candidates, improve=False)
    optimum = _exact_mclp(demand, k, fixed, candidates)
    ours = sites["covered_weight"].sum()
    assert ours == pytest.approx(covered_weight(demand, sites["cell"]))
    assert ours <= optimum * (1 + 1e-9)
    assert ours >= 0.98 * optimum
    assert ours >= greedy["covered_weight"].sum() - 1e-9


@st.composite
def _small_problems(draw: st.DrawFn) -> tuple[pd.DataFrame, int, list[str], float]:
    cells = draw(st.lists(st.sampled_from(DISK), min_size=0, max_size=len(DISK), unique=True))
    values = st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0, 30.0])
    demand = pd.DataFrame(
        {
            "cell": cells,
            "weight": draw(st.lists(values, min_size=len(cells), max_size=len(cells))),
            "residents": draw(st.lists(values, min_size=len(cells), max_size=len(cells))),
        }
    )
    fixed = draw(st.lists(st.sampled_from(WIDE), max_size=2, unique=True))
    return demand, draw(st.integers(0, 5)), fixed, draw(st.floats(200.0, 1500.0))


@settings(max_examples=60, deadline=None)
@given(_small_problems())
def test_site_properties(problem: tuple[pd.DataFrame, int, list[str], float]) -> None:
    demand, k, fixed, radius = problem
    sites = site_stations(demand, k=k, fixed=fixed, radius_m=radius)
    greedy = site_stations(demand, k=k, fixed=fixed, radius_m=radius, improve=False)
    candidates = sorted(
        set(demand.loc[(demand["weight"] > 0) | (demand["residents"] > 0), "cell"]) - set(fixed)
    )
    w = demand["weight"].to_numpy()
    total = sites["covered_weight"].sum()

    assert sites["cell"].is_unique
    assert len(sites) == min(k, len(candidates)) + len(fixed)
    assert set(sites.loc[sites["fixed"], "cell"]) == set(fixed)
    assert sites["fixed"].tolist() == sorted(sites["fixed"], reverse=True)
    assert sites["rank"].tolist() == list(range(1, len(sites) + 1))
    assert total == pytest.approx(covered_weight(demand, sites["cell"], radius_m=radius))
    assert total <= w.sum() + 1e-9
    assert total >= greedy["covered_weight"].sum() - 1e-9
    reach = coverage_matrix(demand["cell"], sites["cell"], radius_m=radius).sum(axis=0) > 0
    assert sites["covered_cells"].sum() == reach.sum()

    # no 2-exchange (close two new sites, open any two closed candidates) does better; that
    # includes every single swap (brute force, dense)
    cover = coverage_matrix(demand["cell"], candidates + fixed, radius_m=radius).toarray() > 0
    index = {c: i for i, c in enumerate(candidates + fixed)}
    open_rows = [index[c] for c in sites["cell"]]
    new_rows = [index[c] for c in sites.loc[~sites["fixed"], "cell"]]
    for drop in combinations(new_rows, 2):
        rest = [r for r in open_rows if r not in drop]
        reached = cover[rest].any(axis=0)
        closed = cover[[c for c in range(len(candidates)) if c not in rest]].astype(float)
        u = np.where(reached, 0.0, w)
        gain = closed @ u
        pair = gain[:, None] + gain[None, :] - (closed * u) @ closed.T
        np.fill_diagonal(pair, -np.inf)
        assert w[reached].sum() + pair.max() <= total + 1e-9 * (1 + w.sum())

    # with at most two new sites the 2-exchange search is exhaustive, so the answer is optimal
    if k <= 2 and len(candidates) >= k:
        fixed_rows = [index[c] for c in fixed]
        best = max(
            w[cover[[*fixed_rows, *pick]].any(axis=0)].sum()
            for pick in combinations(range(len(candidates)), k)
        )
        assert total == pytest.approx(best)


@settings(max_examples=20, deadline=None)
@given(_small_problems())
def test_row_order_does_not_change_the_sites(
    problem: tuple[pd.DataFrame, int, list[str], float],
) -> None:
    demand, k, fixed, radius = problem
    shuffled = demand.sample(frac=1.0, random_state=len(demand))
    first = site_stations(demand, k=k, fixed=fixed, radius_m=radius)
    second = site_stations(shuffled, k=k, fixed=fixed, radius_m=radius)
    pd.testing.assert_frame_equal(first, second)
