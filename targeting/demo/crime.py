"""The demo city's police.uk-style street crime and message ratings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely

from targeting.demo.data import (
    _CRIME,
    _CRIME_HEADER,
    _CRIME_TYPES,
    _CRIMES_PER_MONTH,
    _FORCE,
    _LOW_RATING_WARDS,
    _MONTHS,
    _N_RATINGS,
    _NEIGHBOURS,
    _OUTCOMES,
    _PLACES,
    _RATING_P,
    _RATING_P_LOW,
    _STREETS,
    _WARDS,
)
from targeting.demo.geography import (
    _cat,
    _choose,
    _City,
    _numbered,
    _points_in,
    _table,
    _take,
    _wgs84,
    _write_csv,
)
from targeting.demo.people import (
    _Signups,
)


def _write_crimes(rng: np.random.Generator, crime_dir: Path, city: _City) -> None:
    """Twelve monthly police.uk street-level files, ~25k rows each, weighted to the inner city."""
    season = 1.0 + 0.06 * np.cos(2 * np.pi * (np.arange(12) - 8) / 12)  # peaks in July
    month = np.repeat(np.arange(12), rng.poisson(_CRIMES_PER_MONTH * season))
    n = month.size
    hotspot = rng.lognormal(0.0, 0.6, city.oa_ward.size)  # persistent OA hot spots
    oa = _choose(rng, city.oa_total * city.ward_score(_CRIME) * hotspot, n)
    x, y = city.points_in(rng, oa)
    u = rng.random(n)
    outside, nowhere = u < 0.003, (u >= 0.003) & (u < 0.008)  # just outside; "No Location"
    ring = shapely.difference(city.outline.buffer(1_500.0), city.outline.buffer(5.0))
    x[outside], y[outside] = _points_in(
        rng, np.array([ring]), np.zeros(outside.sum(), dtype=np.intp)
    )
    lon, lat = _wgs84(x, y)

    types = np.array(list(_CRIME_TYPES))
    crime_type = _choose(rng, np.array(list(_CRIME_TYPES.values())), n)
    asb = types[crime_type] == "Anti-social behaviour"
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype="S1")[rng.integers(0, 16, (n, 64))]
    crime_id = pa.array(hex_digits.view("S64").ravel(), mask=asb).cast(pa.string())
    outcomes = [*_OUTCOMES, "Under investigation"]
    outcome = _choose(rng, np.array(list(_OUTCOMES.values()), dtype=float), n)
    outcome[rng.random(n) < 0.05 + 0.55 * (month / 11) ** 3] = len(_OUTCOMES)  # recent: still open

    streets = rng.integers(0, _STREETS.size, (city.oa_ward.size, 3))  # each OA has 3 streets
    location = streets[oa, rng.integers(0, 3, n)]
    at_place = rng.random(n) < np.where(types[crime_type] == "Shoplifting", 0.6, 0.08)
    location[at_place] = _STREETS.size + rng.integers(0, len(_PLACES), at_place.sum())
    location[nowhere] = _STREETS.size + len(_PLACES)
    places = [*np.char.add("On or near ", np.r_[_STREETS, _PLACES]).tolist(), "No Location"]

    lsoa = _lsoas(city.oa_ward)
    n_lsoa = lsoa.max() + 1
    lsoa_codes = [*_numbered("E019", n_lsoa, 5), *(f"E0101{i * 37:04d}" for i in range(60))]
    msoa = np.char.zfill((np.arange(n_lsoa) // 5 + 1).astype(str), 3)
    lsoa_names = [*_cat("Birmingham ", msoa, np.array(list("ABCDE"))[np.arange(n_lsoa) % 5])]
    lsoa_names += [f"{_NEIGHBOURS[i % 6]} {i // 6 * 4 + 1:03d}A" for i in range(60)]  # just outside
    area = lsoa[oa]
    area[outside] = n_lsoa + rng.integers(0, 60, outside.sum())

    lon, lat = np.where(nowhere, np.nan, lon.round(6)), np.where(nowhere, np.nan, lat.round(6))
    columns = [crime_id, _take(_MONTHS, month), pa.repeat(_FORCE, n), pa.repeat(_FORCE, n)]
    columns += [pa.array(lon, from_pandas=True), pa.array(lat, from_pandas=True)]
    columns += [_take(places, location), _take(lsoa_codes, area, nowhere)]
    columns += [_take(lsoa_names, area, nowhere), _take(types, crime_type)]
    columns += [_take(outcomes, outcome, asb), pa.nulls(n, pa.string())]
    table = pa.table(dict(zip(_CRIME_HEADER, columns, strict=True)))
    start = np.searchsorted(month, np.arange(13))
    for m, label in enumerate(_MONTHS):
        (crime_dir / label).mkdir(parents=True, exist_ok=True)
        rows = table.slice(start[m], start[m + 1] - start[m])
        _write_csv(crime_dir / label / f"{label}-west-midlands-street.csv", rows)


def _lsoas(oa_ward: np.ndarray) -> np.ndarray:
    """LSOA index per OA: runs of ~5 neighbouring OAs within a ward."""
    first = np.searchsorted(oa_ward, oa_ward)
    per_ward = np.maximum(np.bincount(oa_ward) // 5, 1)
    local = np.minimum((np.arange(oa_ward.size) - first) // 5, per_ward[oa_ward] - 1)
    return np.r_[0, np.cumsum(per_ward)[:-1]][oa_ward] + local


def _ratings(rng: np.random.Generator, city: _City, su: _Signups) -> pa.Table:
    """~30,000 message ratings 1-6 (mean ~5.44), a little lower in a few inner-city wards.

    85 % are keyed by an existing user; 15 % carry only the rater's location.
    """
    n_user = round(0.85 * _N_RATINGS)
    n_loc = _N_RATINGS - n_user
    who = rng.choice(np.flatnonzero(su.usable & (su.columns["status"] != "deleted")), size=n_user)
    oa = _choose(rng, city.oa_total.astype(float), n_loc)
    lon, lat = _wgs84(*city.points_in(rng, oa))
    low_wards = [i for i, w in enumerate(_WARDS) if w[1] in _LOW_RATING_WARDS]
    low = np.isin(city.oa_ward[np.r_[su.oa[who], oa]], low_wards)
    rating = 1 + np.where(
        low, rng.choice(6, _N_RATINGS, p=_RATING_P_LOW), rng.choice(6, _N_RATINGS, p=_RATING_P)
    )
    day = rng.integers(0, 365, _N_RATINGS)
    order = np.argsort(day, kind="stable")
    blank = np.full(n_user, np.nan)
    columns = {
        "rated_at": (np.datetime64("2017-11-01") + day).astype(str),
        "rating": rating,
        "user_id": np.r_[su.columns["user_id"][who], np.full(n_loc, None)],
        "latitude": np.r_[blank, lat.round(6)],
        "longitude": np.r_[blank, lon.round(6)],
    }
    return _table({k: v[order] for k, v in columns.items()})
