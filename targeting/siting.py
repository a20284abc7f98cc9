"""Where to park a mobile police station during Neighbourhood Watch week.

The choice is a maximal covering location problem (MCLP, Church & ReVelle 1974): open k sites so
that the demand weight of H3 cells whose centre lies within walking distance of an open site is as
large as possible. The weight is whatever the force wants to reach (the parity gap of
under-represented origins, or their residents); existing sites can be fixed open. The exact
problem is NP-hard, so sites are chosen greedily by marginal covered weight, which covers at least
(1 - 1/e) of the optimum because coverage is submodular (Nemhauser, Wolsey & Fisher 1978), and
then improved by 2-exchange local search: close two sites and open the best pair in their place.
That includes every Teitz-Bart 1-exchange swap and also moves two overlapping sites together,
which single swaps cannot, and which on clustered demand recovers most of what greedy leaves.
Coverage is a sparse site x cell matrix, so every step is a sparse product rather than a loop
over cells. Ties go to the smaller cell string, so the same input always gives the same sites.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial import cKDTree

from targeting.h3cells import cell_centres, valid_cells

# h3's mean Earth radius; distances are computed in h3's order of operations (radians, km, then
# metres) so that a pair exactly at the radius is in or out just as h3.great_circle_distance says
EARTH_RADIUS_KM = 6371.007180918475

# Moves strictly increase coverage so the search always ends; the cap bounds the time it can take
MAX_MOVES = 1000

# A move must gain more than this share of the total weight, so rounding noise cannot cycle
MOVE_TOLERANCE = 1e-9

SITE_COLUMNS = [
    "rank",
    "cell",
    "fixed",
    "latitude",
    "longitude",
    "covered_cells",
    "covered_residents",
    "covered_weight",
]


def _centres(cells: Iterable[str], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude (degrees) of each cell's centre; ValueError names bad cells."""
    # an Index or Series converts at once; a Python iteration of one costs a microsecond a cell
    cells = np.asarray(
        cells if isinstance(cells, np.ndarray | pd.Index | pd.Series) else list(cells), dtype=object
    )
    bad = cells[~valid_cells(cells)].tolist()
    if bad:
        raise ValueError(f"{len(bad)} {what} are not valid H3 cells, e.g. {bad[:3]!r}")
    return cell_centres(cells)


def _unit_vectors(lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    """Points on the unit sphere, where straight-line (chord) distance grows with arc distance."""
    phi, lam = np.radians(lat), np.radians(lng)
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def _haversine_m(
    lat1: np.ndarray, lng1: np.ndarray, lat2: np.ndarray, lng2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in metres, by the formula and in the order h3 uses."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    sin_lat = np.sin((p2 - p1) * 0.5)
    sin_lng = np.sin((np.radians(lng2) - np.radians(lng1)) * 0.5)
    a = sin_lat * sin_lat + np.cos(p1) * np.cos(p2) * sin_lng * sin_lng
    return 2 * np.arctan2(np.sqrt(a), np.sqrt(1 - a)) * EARTH_RADIUS_KM * 1000


def _coverage(
    site_centres: tuple[np.ndarray, np.ndarray],
    demand_centres: tuple[np.ndarray, np.ndarray],
    radius_m: float,
) -> sparse.csr_array:
    """coverage_matrix from centres already computed, so each set of cells is looked up once."""
    if not (np.isfinite(radius_m) and radius_m >= 0):
        raise ValueError(f"radius_m must be a finite distance of zero or more, not {radius_m}")
    (s_lat, s_lng), (d_lat, d_lng) = site_centres, demand_centres
    shape = (len(s_lat), len(d_lat))
    if 0 in shape:
        return sparse.csr_array(shape, dtype=np.float64)
    # the chord of the radius finds every candidate pair; the slack keeps pairs that rounding in
    # the 3D coordinates would push just outside, and the haversine test then decides exactly
    chord = 2 * np.sin(min(radius_m / (EARTH_RADIUS_KM * 1000), np.pi) / 2) * (1 + 1e-9) + 1e-12
    sites = cKDTree(_unit_vectors(s_lat, s_lng))
    demand = cKDTree(_unit_vectors(d_lat, d_lng))
    pairs = sites.sparse_distance_matrix(demand, chord, output_type="ndarray")
    i, j = pairs["i"], pairs["j"]
    keep = _haversine_m(s_lat[i], s_lng[i], d_lat[j], d_lng[j]) <= radius_m
    ones = np.ones(int(keep.sum()), dtype=np.float64)
    return sparse.csr_array((ones, (i[keep], j[keep])), shape=shape)


def coverage_matrix(
    demand_cells: Iterable[str],
    site_cells: Iterable[str],
    *,
    radius_m: float,
) -> sparse.csr_array:
    """Sites x demand cells, 1.0 where the cell centres are at most radius_m apart on the sphere.

    Rows follow site_cells and columns follow demand_cells as given (duplicates included). Invalid
    H3 cells raise ValueError.
    """
    return _coverage(
        _centres(site_cells, "sites"), _centres(demand_cells, "demand cells"), radius_m
    )


def _weights(demand: pd.DataFrame, weight: str) -> tuple[np.ndarray, np.ndarray]:
    """The demand's weight and residents as float arrays, after checking the frame can be used."""
    missing = [c for c in dict.fromkeys(["cell", weight, "residents"]) if c not in demand.columns]
    if missing:
        raise ValueError(f"demand has no column(s) {missing}")
    if demand["cell"].duplicated().any():
        raise ValueError("demand has repeated cells; aggregate to one row per cell first")
    w = demand[weight].to_numpy(dtype=np.float64)
    residents = demand["residents"].to_numpy(dtype=np.float64)
    for name, values in ((weight, w), ("residents", residents)):
        if not np.all(np.isfinite(values) & (values >= 0)):
            raise ValueError(f"demand column '{name}' must be finite and non-negative")
    return w, residents


def _greedy(
    cover: sparse.csr_array, w: np.ndarray, covered: np.ndarray, n_pick: int
) -> tuple[list[int], np.ndarray]:
    """Rows picked in turn by largest weight not yet covered (ties: lowest row), and the cover."""
    covered = covered.copy()
    picked: list[int] = []
    is_open = np.zeros(cover.shape[0], dtype=bool)
    for _ in range(min(n_pick, cover.shape[0])):
        gains = cover @ np.where(covered, 0.0, w)
        gains[is_open] = -np.inf
        best = int(np.argmax(gains))
        picked.append(best)
        is_open[best] = True
        covered[cover.indices[cover.indptr[best] : cover.indptr[best + 1]]] = True
    return picked, covered


def _best_pair(
    cover: sparse.csr_array, cover_t: sparse.csr_array, u: np.ndarray, closed: np.ndarray
) -> tuple[float, int, int]:
    """The two closed candidates that together cover the most uncovered weight u, exactly.

    A pair covers g_a + g_b minus the weight they share. If candidate a shares weight with m
    others, one of the m + 2 best candidates is neither a nor shares with a, so a's best partner
    is among those; and the best candidate's own best pair beats every pair outside the top
    (its m + 2). So only a small block of top rows by top columns needs scoring.
    """
    gain = np.where(closed, cover @ u, -np.inf)
    order = np.argsort(-gain, kind="stable")  # stable: ties go to the smaller cell string
    top = order[: (cover[order[:1]].multiply(u) @ cover_t).nnz + 2]
    shared = sparse.csr_array(cover[top].multiply(u) @ cover_t)
    cols = order[: int(np.diff(shared.indptr).max()) + 2]
    value = gain[top, None] + gain[None, cols] - shared[:, cols].toarray()
    value[top[:, None] == cols[None, :]] = -np.inf
    i, j = np.unravel_index(int(np.argmax(value)), value.shape)
    return float(value[i, j]), int(top[i]), int(cols[j])


def _improve(
    cover: sparse.csr_array, w: np.ndarray, fixed_count: np.ndarray, chosen: list[int]
) -> list[int]:
    """2-exchange local search: close two open sites and open the best pair for what they leave.

    The first strictly improving move (in cell order) is taken until none is left. A new pair
    that keeps one of the closed sites is a Teitz-Bart 1-exchange, so every single swap is tried
    too; moving two overlapping sites together, which single swaps cannot, is what recovers the
    few per cent greedy loses on clustered demand. One new site needs none: greedy is exact.
    """
    chosen = sorted(chosen)
    tolerance = MOVE_TOLERANCE * float(w.sum())
    cover_t = sparse.csr_array(cover.T)  # once, for the many small products in _best_pair
    for _ in range(MAX_MOVES):
        current = float(w[fixed_count + cover[chosen].sum(axis=0) > 0].sum())
        for drop in combinations(range(len(chosen)), 2):
            rest = [c for i, c in enumerate(chosen) if i not in drop]
            covered = fixed_count + cover[rest].sum(axis=0) > 0
            closed = np.ones(cover.shape[0], dtype=bool)
            closed[rest] = False
            value, a, b = _best_pair(cover, cover_t, np.where(covered, 0.0, w), closed)
            if float(w[covered].sum()) + value > current + tolerance:
                chosen = sorted([*rest, a, b])
                break
        else:
            break
    return chosen


def site_stations(
    demand: pd.DataFrame,
    *,
    k: int,
    radius_m: float = 800.0,
    candidates: Iterable[str] | None = None,
    fixed: Iterable[str] = (),
    weight: str = "weight",
    improve: bool = True,
) -> pd.DataFrame:
    """Open k new sites, in addition to the fixed ones, to cover the most demand weight.

    demand has one row per H3 `cell`, a non-negative `weight` column (named by `weight`) and
    `residents`. Candidates default to the demand cells with weight or residents above zero (a van
    parks where there are streets, and cells that matter to no one are not worth a visit); fixed
    sites are always open, count towards coverage and are never candidates. min(k, candidates) new
    sites are opened even when some add nothing. improve=False stops after the greedy step.

    One row per open site: fixed sites first, then new ones, each group ordered greedily by
    marginal covered weight (ties: cell string). Columns: rank (1...), cell, fixed, latitude and
    longitude (cell centre, 6 dp), covered_cells, covered_residents, covered_weight. Every covered
    demand cell is credited to the best-ranked site that covers it, so the covered_ columns sum to
    the totals without double counting and a new site's figures are what it adds. Invalid H3
    cells in candidates or fixed, or an unusable demand frame, raise ValueError.
    """
    if k < 0:
        raise ValueError(f"k must be zero or more, not {k}")
    w, residents = _weights(demand, weight)
    cells = demand["cell"].to_numpy(dtype=object)
    fixed_cells = sorted({str(c) for c in fixed})
    if candidates is None:
        candidates = cells[(w > 0) | (residents > 0)].tolist()
    options = sorted({str(c) for c in candidates} - set(fixed_cells))
    d_centres = _centres(cells, "demand cells")
    f_centres = _centres(fixed_cells, "fixed sites")
    c_centres = _centres(options, "candidates")
    fixed_cover = _coverage(f_centres, d_centres, radius_m)
    cover = _coverage(c_centres, d_centres, radius_m)

    fixed_count = fixed_cover.sum(axis=0)
    chosen, _ = _greedy(cover, w, fixed_count > 0, k)
    if improve and chosen:
        chosen = _improve(cover, w, fixed_count, chosen)

    # rank by greedy re-ordering so the credit of each site is its marginal contribution
    chosen = sorted(chosen)  # options are sorted, so this orders the new sites by cell string
    new_cells = [options[i] for i in chosen]
    new_cover = cover[chosen]
    fixed_order, fixed_covered = _greedy(
        fixed_cover, w, np.zeros(len(w), dtype=bool), len(fixed_cells)
    )
    new_order, _ = _greedy(new_cover, w, fixed_covered, len(new_cells))
    sites = [fixed_cells[i] for i in fixed_order] + [new_cells[i] for i in new_order]
    ranked = sparse.vstack([fixed_cover[fixed_order], new_cover[new_order]], format="csc")
    credited = np.flatnonzero(np.diff(ranked.indptr) > 0)
    # each covered cell goes to its best-ranked (lowest) row
    owner = np.minimum.reduceat(ranked.indices, ranked.indptr[credited])

    def credit(values: np.ndarray) -> np.ndarray:
        return np.bincount(owner, weights=values[credited], minlength=len(sites)).astype(np.float64)

    lat, lng = _centres(sites, "sites")
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(sites) + 1, dtype=np.int64),
            "cell": pd.Series(sites, dtype=object),
            "fixed": np.arange(len(sites)) < len(fixed_cells),
            "latitude": lat.round(6),
            "longitude": lng.round(6),
            "covered_cells": np.bincount(owner, minlength=len(sites)).astype(np.int64),
            "covered_residents": credit(residents),
            "covered_weight": credit(w),
        },
        columns=SITE_COLUMNS,
    )


def covered_weight(
    demand: pd.DataFrame,
    sites: Iterable[str],
    *,
    radius_m: float = 800.0,
    weight: str = "weight",
) -> float:
    """Total weight of demand cells within radius_m of at least one site, each counted once."""
    w, _ = _weights(demand, weight)
    cover = coverage_matrix(demand["cell"].to_numpy(dtype=object), sites, radius_m=radius_m)
    return float(w[cover.sum(axis=0) > 0].sum())
