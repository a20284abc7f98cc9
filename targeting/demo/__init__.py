"""Synthetic demo data set: a West-Midlands-like city for the targeting engine.

Nothing here is real personal data.  The numbers are *shaped* by the West
Midlands Police report to the Strategic Policing and Crime Board, "Engagement"
(20 November 2018, ``wmp-engagement-report-2018.txt``):

* Appendix A, "PREDOMINANT ETHNICITIES": force-wide resident counts ("Active in
  Area"), the target registration rates (England 56.92 %, Pakistani 4.85 %,
  Bangladeshi 1.36 %) and the "Registered Users" per origin.  Some cells are
  garbled by PDF extraction (e.g. "Russian 490,620", "Polish 5.18 %"); those
  are replaced by plausible values.  Pakistani and Bangladeshi sign-ups use the
  report's actual registration rates (3.24 % and 0.78 % of known origins).
* Appendix A, user summary: 53,408 WMNow users.
* Appendix B: 1,146 coordinators, 113 deputies, 11,142 members, 653
  Neighbourhood Watch schemes covering 203,256 households.

Geography: the 40 pre-2018 Birmingham wards (real WD13 codes) as Voronoi cells
of their real centroids (taken once from the ONS 2013 ward boundaries, rounded
to 3 dp and hard-coded: nothing outside this module is read), spread by 1.5
about the centre so that ~2.2 million people live in ~600 km2.  The ten
constituencies stand in for the NPUs.  Everything is built in British National
Grid metres; the ward outlines are densified so they mean the same place
whether read in metres or in degrees.
Synthetic Output Areas (~300 residents) nest in the wards; the population,
WMNow sign-ups, police.uk-style street crime, message ratings and Neighbourhood
Watch schemes are all drawn from one seeded generator, so the same seed gives
byte-identical files.  A few deliberately broken sign-up rows let the demo
show how the engine reports rejects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from targeting.demo.crime import (
    _ratings,
    _write_crimes,
)
from targeting.demo.data import (
    _CONFIG,
    _ORIGIN_NAMES,
    _WARDS,
    CRIME_FOLDER,
    PILOT_AREA,
    PILOT_CELLS,
    PILOT_END,
    PILOT_SHARE,
    PILOT_START,
)
from targeting.demo.geography import (
    _build_city,
    _City,
    _numbered,
    _table,
    _wgs84,
    _write_areas,
    _write_csv,
    _write_geo,
)
from targeting.demo.people import (
    _postcodes,
    _schemes,
    _signups,
)
from targeting.demo.streets import city_streets
from targeting.segments import build_segments, shares

__all__ = ["write_demo_inputs"]


def write_demo_inputs(out_dir: Path, *, seed: int = 2018) -> Path:
    """Write the demo data set (a West-Midlands-like city) into out_dir and return the path of its config TOML."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # one independent stream per component: changing one leaves the others' data alone
    streams = np.random.default_rng(seed).spawn(7)
    rng_city, rng_pc, rng_su, rng_nhw, rng_crime, rng_rate, rng_pilot = streams
    city = _build_city(rng_city)
    _write_areas(out, city)
    oa, origin = np.nonzero(city.residents)
    population = {
        "area_code": _numbered("E009", city.oa_ward.size, 5)[oa],
        "origin": _ORIGIN_NAMES[origin],
    }
    _write_csv(
        out / "population.csv", _table({**population, "residents": city.residents[oa, origin]})
    )
    pcs, pc_x, pc_y = _postcodes(rng_pc, city)
    lon, lat = _wgs84(pc_x, pc_y)
    streets = city_streets(city)
    _write_geo(streets, out / "streets.gpkg", "GPKG")
    # each postcode is on the street nearest its centroid, as a postcode file names it
    nearest = shapely.STRtree(streets.geometry.to_numpy()).query_nearest(
        shapely.points(pc_x, pc_y), return_distance=False, all_matches=False
    )[1]
    _write_csv(
        out / "postcodes.csv",
        _table({"pcds": pcs, "lat": lat.round(6), "long": lon.round(6),
                "street": streets["name"].to_numpy()[nearest]}),
    )  # fmt: skip
    signups = _signups(rng_su, city, pcs, pc_x, pc_y)
    _pilot(rng_pilot, signups.columns["joined"], in_pilot=_in_pilot_area(city, signups.oa))
    _pilot_visits(city).to_csv(out / "visited.csv", index=False, lineterminator="\n")
    _write_geo(_schemes(rng_nhw, city, signups).to_crs(4326), out / "schemes.geojson", "GeoJSON")
    _write_csv(out / "signups.csv", _table(signups.columns))
    _write_crimes(rng_crime, out / CRIME_FOLDER, city)
    _write_csv(out / "ratings.csv", _ratings(rng_rate, city, signups))
    _write_segments(out, city, seed=seed)
    config = out / "demo.toml"
    config.write_text(_CONFIG, encoding="utf-8")
    return config


def _in_pilot_area(city: _City, oa: np.ndarray) -> np.ndarray:
    """Whether each sign-up lives in the pilot's ward."""
    ward = next(i for i, w in enumerate(_WARDS) if w[1] == PILOT_AREA)
    return city.oa_ward[oa] == ward


def _pilot(rng: np.random.Generator, joined: np.ndarray, *, in_pilot: np.ndarray) -> None:
    """Move `PILOT_SHARE` of the pilot ward's sign-ups who joined before the pilot to a day
    during it (in place: `joined` is the demo's own column of ISO dates). The run's totals are
    unchanged; only when they joined moves, so the history shows the pilot's effect."""
    start, end = np.datetime64(PILOT_START), np.datetime64("2018-10-31")
    dated = np.array([j if isinstance(j, str) and j[:1] == "2" else "" for j in joined])
    before = np.flatnonzero(in_pilot & (dated != "") & (dated < PILOT_START))
    moved = rng.choice(before, size=round(PILOT_SHARE * before.size), replace=False)
    days = rng.integers(0, (end - start).astype(int) + 1, size=moved.size)
    joined[moved] = (start + days).astype(str).astype(object)


def _pilot_visits(city: _City) -> pd.DataFrame:
    """The pilot's visit log: the pilot ward's most populous cells (by their Output Areas'
    residents), one visit each, spread evenly from the pilot's start to its end."""
    from targeting.h3cells import points_to_cells

    ward = next(i for i, w in enumerate(_WARDS) if w[1] == PILOT_AREA)
    inside = np.flatnonzero(city.oa_ward == ward)
    centres = shapely.centroid(city.oa_geoms[inside])
    lon, lat = _wgs84(shapely.get_x(centres), shapely.get_y(centres))
    cells = pd.Series(city.oa_total[inside]).groupby(points_to_cells(lat, lon, resolution=9)).sum()
    chosen = cells.sort_values(ascending=False, kind="stable").index[:PILOT_CELLS]
    days = np.linspace(0, (np.datetime64(PILOT_END) - np.datetime64(PILOT_START)).astype(int),
                       len(chosen)).round().astype(int)  # fmt: skip
    return pd.DataFrame(
        {"cell": chosen, "visited_on": (np.datetime64(PILOT_START) + days).astype(str)}
    )


def _write_segments(out: Path, city: _City, *, seed: int) -> None:
    """The open segmentation of the demo's Output Areas by their origin shares (six segments),
    as `targeting segments build` would write it."""
    codes = _numbered("E009", city.oa_ward.size, 5)
    counts = pd.DataFrame(city.residents, index=codes, columns=_ORIGIN_NAMES)
    seg = build_segments(shares(counts), k=6, seed=seed, weights=counts.sum(axis=1))
    households = pd.Series(city.households, index=codes)
    table = seg.assignments.assign(households=seg.assignments["area_code"].map(households))
    table.to_csv(out / "segments.csv", index=False, lineterminator="\n")
    seg.descriptions.to_csv(out / "segment_descriptions.csv", index=False, lineterminator="\n")
