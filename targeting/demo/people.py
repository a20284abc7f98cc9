"""The demo city's residents, sign-ups and Watch schemes."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from targeting.demo.data import (
    _ASIAN,
    _ENGLISH,
    _MINORITY_UPTAKE,
    _N_KNOWN,
    _N_SCHEMES,
    _N_SIGNUPS,
    _ORIGIN_NAMES,
    _ORIGINS,
    _ROLES,
    _SCHEME_HOUSEHOLDS,
    _STREETS,
    _UNIT_LETTERS,
    _UPTAKE,
    _WARD_ROWS,
    _WARDS,
)
from targeting.demo.geography import (
    _cat,
    _choose,
    _City,
    _numbered,
    _wgs84,
)


def _postcodes(rng: np.random.Generator, city: _City) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical postcodes ("B23 6XY"), ~1 per 15 residents, one district per ward, sorted."""
    unit = np.arange(4_000)  # 10 sectors x 400 two-letter units
    units = _cat(unit // 400, _UNIT_LETTERS[unit % 400 // 20], _UNIT_LETTERS[unit % 20])
    wards, units_of, oas = [], [], []
    for w in range(len(_WARDS)):
        sel = np.flatnonzero(city.oa_ward == w)
        n = min(round(city.oa_total[sel].sum() / 15), unit.size)
        wards.append(np.full(n, w))
        units_of.append(rng.choice(unit.size, size=n, replace=False))
        oas.append(sel[_choose(rng, city.oa_total[sel].astype(float), n)])
    ward, unit, oa = np.concatenate(wards), np.concatenate(units_of), np.concatenate(oas)
    district = np.array([r["postcode_district"] + " " for r in _WARD_ROWS])
    order = np.lexsort((unit, np.argsort(np.argsort(district))[ward]))
    x, y = city.points_in(rng, oa[order])
    return _cat(district[ward[order]], units[unit[order]]), x, y


@dataclass(frozen=True)
class _Signups:
    """The sign-up columns plus the true home point and OA behind every row."""

    columns: dict[str, np.ndarray]
    x: np.ndarray
    y: np.ndarray
    oa: np.ndarray
    usable: np.ndarray  # False for the deliberately bad rows


def _signups(
    rng: np.random.Generator, city: _City, pcs: np.ndarray, pc_x: np.ndarray, pc_y: np.ndarray
) -> _Signups:
    """53,408 WMNow users: origin, home OA drawn ∝ residents of that origin x ward uptake."""
    n, unknown = _N_SIGNUPS, _N_SIGNUPS - _N_KNOWN
    known = {o: v[1] for o, v in _ORIGINS.items() if v[1]}
    known["England"] = _N_KNOWN - sum(known.values())
    counts = np.array([known[o] for o in _ORIGIN_NAMES])
    uptake = city.ward_score(_UPTAKE) * rng.lognormal(0.0, 0.3, city.oa_ward.size)
    blank_or_not_found = np.repeat(["", "Not Found"], [unknown // 2, unknown - unknown // 2])
    origin = np.r_[np.repeat(_ORIGIN_NAMES, counts), blank_or_not_found]
    # in a few wards (Tyburn) residents outside the British origins sign up far less often
    minority = _MINORITY_UPTAKE[city.oa_ward]
    british = np.isin(_ORIGIN_NAMES, ["England", "Wales", "Scotland", "Northern Ireland"])
    weights = [
        city.residents[:, j] * uptake * (1.0 if british[j] else minority)
        for j in range(counts.size)
    ] + [city.oa_total * uptake]
    oa = np.concatenate(
        [_choose(rng, w, c) for w, c in zip(weights, [*counts, unknown], strict=True)]
    )
    perm = rng.permutation(n)
    origin, oa = origin[perm], oa[perm]
    x, y = city.points_in(rng, oa)

    # joined: growing over 2016-01-01 .. 2018-10-31; user ids follow the join order
    days = np.arange((np.datetime64("2018-10-31") - np.datetime64("2016-01-01")).astype(int) + 1)
    day = rng.choice(days, size=n, p=(growth := 1.0 + 4.0 * days / days[-1]) / growth.sum())
    joined = (np.datetime64("2016-01-01") + day).astype(str).astype(object)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(day, kind="stable")] = np.arange(1, n + 1)
    user_id = _cat("U", np.char.zfill(rank.astype(str), 6)).astype(object)
    k = np.rint(n * np.array([0.03, 0.02, 0.02])).astype(int)
    status = np.repeat(["active", "comms_issue", "incommunicado", "deleted"], [n - k.sum(), *k])
    status = status[rng.permutation(n)]
    kind = rng.choice(3, size=n, p=[0.75, 0.10, 0.15])  # lat/lon, easting/northing, postcode

    # 40 deliberately bad rows, 8 per problem, so the demo shows its reject report
    bad = rng.choice(n, size=40, replace=False).reshape(5, 8)
    usable = np.ones(n, dtype=bool)
    usable[bad] = False
    kind[bad[0]] = 3  # no location at all
    joined[bad[1]] = "31/13/2018"
    user_id[bad[2]] = user_id[rng.choice(np.flatnonzero(usable), size=8, replace=False)]
    kind[bad[3]], kind[bad[4]] = 2, 0  # postcode not in the lookup; point far outside
    px, py = x.copy(), y.copy()
    angle, dist = rng.uniform(0, 2 * np.pi, 8), rng.uniform(30_000, 45_000, 8)
    centre = shapely.centroid(city.outline)
    px[bad[4]], py[bad[4]] = centre.x + dist * np.cos(angle), centre.y + dist * np.sin(angle)

    postcode = np.full(n, "", dtype=object)
    wanted = np.flatnonzero(kind == 2)
    near = shapely.STRtree(shapely.points(pc_x, pc_y)).query_nearest(
        shapely.points(px[wanted], py[wanted])
    )
    postcode[wanted[near[0]]] = pcs[near[1]]
    postcode[bad[3]] = _cat("B99 ", rng.integers(0, 10, 8), "ZZ")
    lon, lat = _wgs84(px, py)
    on_grid = kind == 1
    return _Signups(
        {
            "user_id": user_id,
            "joined": joined,
            "latitude": np.where(kind == 0, lat.round(6), np.nan),
            "longitude": np.where(kind == 0, lon.round(6), np.nan),
            "easting": np.where(on_grid, px.round(1), np.nan),
            "northing": np.where(on_grid, py.round(1), np.nan),
            "postcode": postcode,
            "origin": origin,
            "status": status,
            "watch_role": np.full(n, "none", dtype=object),
        },
        x,
        y,
        oa,
        usable,
    )


def _apportion(total: int, weight: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weight`` summing exactly to ``total`` (largest remainders)."""
    raw = total * weight / weight.sum()
    out = np.floor(raw).astype(np.int64)
    out[np.argsort(out - raw, kind="stable")[: total - out.sum()]] += 1
    return out


def _schemes(rng: np.random.Generator, city: _City, su: _Signups) -> gpd.GeoDataFrame:
    """653 Neighbourhood Watch schemes, mostly suburban: 70 % small polygons, 30 % points.

    Also hands Appendix B's exact coordinator, deputy and member counts to sign-ups living
    near a scheme (every reachable scheme gets a coordinator first); ``members`` counts them.
    """
    n = _N_SCHEMES
    suburban = (0.5 + city.ward_score(_ENGLISH)) * (1.2 - city.ward_score(_ASIAN))
    weight = city.households * city.ward_score(_UPTAKE) ** 1.5 * suburban
    cx, cy = city.points_in(rng, rng.choice(weight.size, n, replace=False, p=weight / weight.sum()))
    k = 10  # vertices of irregular star-shaped polygons 100-400 m across
    angle = (np.arange(k) + rng.uniform(-0.3, 0.3, (n, k))) * 2 * np.pi / k
    radius = rng.uniform(60, 200, (n, 1)) * rng.uniform(0.75, 1.0, (n, k))
    rings = np.stack(
        [cx[:, None] + radius * np.cos(angle), cy[:, None] + radius * np.sin(angle)], axis=-1
    )
    is_poly = rng.random(n) < 0.7
    geoms = np.where(is_poly, shapely.polygons(rings), shapely.points(cx, cy))
    kinds = np.repeat(["neighbourhood", "street", "business", "canal"], [n - 79, 55, 22, 2])[
        rng.permutation(n)
    ]
    names = _cat(_STREETS[rng.integers(0, _STREETS.size, n)], " ", np.char.title(kinds), " Watch")
    names = names.astype(object)
    names[kinds == "canal"] = ["Grand Union Canal Watch", "Birmingham and Fazeley Canal Watch"]

    pool = np.flatnonzero(su.usable)  # roles: within 250 m of a polygon, 400 m of a point
    tree = shapely.STRtree(shapely.points(su.x[pool], su.y[pool]))
    scheme, person = tree.query(
        shapely.buffer(geoms, np.where(is_poly, 250.0, 400.0)), predicate="contains"
    )
    shuffle = rng.permutation(scheme.size)
    scheme, person = scheme[shuffle], pool[person[shuffle]]
    once = np.sort(np.unique(person, return_index=True)[1])  # each person in one scheme
    scheme, person = scheme[once], person[once]
    lead = np.unique(scheme, return_index=True)[1]  # first candidate of each scheme
    queue = np.r_[lead, np.setdiff1d(np.arange(scheme.size), lead)]
    need = sum(_ROLES.values())
    spare = rng.permutation(np.setdiff1d(pool, person))[: max(need - queue.size, 0)]
    person = np.r_[person[queue], spare][:need]
    scheme = np.r_[scheme[queue], np.full(spare.size, -1)][:need]
    su.columns["watch_role"][person] = np.repeat(list(_ROLES), list(_ROLES.values()))
    columns = {
        "scheme_id": _numbered("NHW", n, 4),
        "scheme_name": names,
        "scheme_type": kinds,
        "households": _apportion(_SCHEME_HOUSEHOLDS, rng.lognormal(0.0, 0.7, n)),
        "members": np.bincount(scheme[scheme >= 0], minlength=n),
    }
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=27700)
