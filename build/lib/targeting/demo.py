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

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyogrio
import shapely
from pyproj import Transformer

from targeting.reference import DEMO_DIR
from targeting.segments import build_segments, shares

__all__ = ["write_demo_inputs"]

_POP = 2_200_000  # residents of the synthetic city
_OA_RESIDENTS = 300
_SCALE = 1.5  # spread of the real ward centroids about their mean (268 -> ~600 km2)
_OUTLINE_BUFFER_M = 1_800.0  # convex hull of the spread centroids + this = the city
_N_SIGNUPS, _N_KNOWN = 53_408, 52_000
_ROLES = {"coordinator": 1_146, "deputy": 113, "member": 11_142}
_N_SCHEMES, _SCHEME_HOUSEHOLDS = 653, 203_256
_N_RATINGS = 30_000
_CRIMES_PER_MONTH = 25_000
_MONTHS = np.arange(np.datetime64("2017-11"), np.datetime64("2018-11")).astype(str)
_UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))  # letters real postcode units use
_FORCE = "West Midlands Police"

# The demo city's tables live in reference_data/demo (see its README): per ward, the real WD13
# code and name, the real 2013 centroid (lon, lat), a postcode district, synthetic scores (South
# Asian, Black, White British concentration 0-1, WMNow uptake factor, crime factor), its NPU and
# whether its message ratings run lower; per origin, residents, known-origin sign-ups (blank = the
# remainder) and affinity to the ward scores (South Asian, Black, White British, city centre).


def _read_rows(name: str) -> list[dict[str, str]]:
    with (DEMO_DIR / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


_WARD_ROWS = _read_rows("wards.csv")
_WARDS = tuple(
    (
        r["area_code"],
        r["area_name"],
        float(r["lon"]),
        float(r["lat"]),
        r["postcode_district"],
        *(float(r[k]) for k in ("south_asian", "black", "white_british", "uptake", "crime")),
    )
    for r in _WARD_ROWS
)
_MINORITY_UPTAKE = np.array([float(r["minority_uptake"]) for r in _WARD_ROWS])
_NPUS: dict[str, tuple[str, ...]] = {}
for _row in _WARD_ROWS:
    _NPUS[_row["npu"]] = (*_NPUS.get(_row["npu"], ()), _row["area_name"])
_NPUS = dict(sorted(_NPUS.items()))
_LOW_RATING_WARDS = tuple(r["area_name"] for r in _WARD_ROWS if r["low_rating"] == "true")
_ORIGINS = {
    r["origin"]: (
        int(r["residents"]),
        int(r["signups"]) if r["signups"] else None,
        *(float(r[k]) for k in ("south_asian", "black", "white_british", "city_centre")),
    )
    for r in _read_rows("origins.csv")
}
# fmt: off
_CRIME_TYPES = {  # share of a WMP month, %
    "Anti-social behaviour": 24.0, "Violence and sexual offences": 16.0, "Burglary": 11.0,
    "Criminal damage and arson": 10.0, "Vehicle crime": 10.0, "Other theft": 9.0,
    "Shoplifting": 7.0, "Robbery": 3.0, "Drugs": 3.0, "Public order": 2.0,
    "Theft from the person": 1.6, "Other crime": 1.0, "Bicycle theft": 0.9,
    "Possession of weapons": 0.4,
}
_OUTCOMES = {
    "Investigation complete; no suspect identified": 34, "Unable to prosecute suspect": 25,
    "Status update unavailable": 10, "Awaiting court outcome": 5, "Court result unavailable": 5,
    "Local resolution": 5, "Offender given a caution": 3, "Offender sent to prison": 3,
    "Further investigation is not in the public interest": 3, "Offender given community sentence": 3,
    "Formal action is not in the public interest": 2, "Action to be taken by another organisation": 2,
}
_CRIME_HEADER = ("Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude",
                 "Location", "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context")
_PLACES = ("Supermarket", "Shopping Area", "Parking Area", "Petrol Station", "Nightclub", "Hospital",
           "Sports/Recreation Area", "Park/Open Space", "Further/Higher Educational Building")
_STREET_WORDS = ("Oak", "Ash", "Elm", "Birch", "Church", "Station", "Mill", "Park", "Victoria",
                 "Albert", "Stratford", "Coventry", "Warwick", "Chester", "Kingsbury", "Gravelly",
                 "Holly", "Rose", "Beech", "Cedar", "Willow", "Grange", "Manor", "Orchard", "Meadow",
                 "Hawthorn", "Chestnut", "Highfield", "Westfield", "Brook", "Green", "Hill", "Bristol",
                 "Pershore", "Alcester", "Lodge", "Stockfield", "Shirley", "Fox", "Heath")
_STREET_KINDS = ("Road", "Street", "Lane", "Avenue", "Close", "Grove", "Drive", "Way", "Crescent",
                 "Gardens", "Place", "Walk")
_NEIGHBOURS = ("Sandwell", "Solihull", "Walsall", "Dudley", "Bromsgrove", "Lichfield")
# fmt: on
_STREETS = np.array([f"{w} {k}" for w in _STREET_WORDS for k in _STREET_KINDS])
_ORIGIN_NAMES = np.array(list(_ORIGINS))
_SCORES = np.array([w[5:] for w in _WARDS])  # per ward: asian, black, english, uptake, crime
_ASIAN, _BLACK, _ENGLISH, _UPTAKE, _CRIME = range(5)
# message-rating distributions over 1..6: means ~5.46 and ~5.11 (overall ~5.44)
_RATING_P = np.array([0.015, 0.02, 0.03, 0.065, 0.165, 0.705])
_RATING_P_LOW = np.array([0.04, 0.04, 0.05, 0.09, 0.2, 0.58])

_CONFIG = """\
[inputs]
areas = "areas.geojson"
small_areas = "small_areas.gpkg"
population = "population.csv"
signups = "signups.csv"
postcodes = "postcodes.csv"
crimes = ["crime/*/*.csv"]
ratings = "ratings.csv"
schemes = "schemes.geojson"
segments = "segments.csv"                        # the open segmentation of the demo's census
segment_descriptions = "segment_descriptions.csv"

[grid]
resolution = 9

[run]
as_of = 2018-10-31

[output]
dir = "output"
"""


@dataclass(frozen=True)
class _City:
    """The synthetic city, in British National Grid metres (EPSG:27700)."""

    outline: shapely.Geometry
    ward_geoms: np.ndarray
    oa_geoms: np.ndarray
    oa_inner: np.ndarray  # OAs less a 2 m rim at the city edge, prepared: where points go
    oa_ward: np.ndarray  # ward index of each OA; OAs are sorted by ward
    residents: np.ndarray  # (OA, origin) counts
    oa_total: np.ndarray
    households: np.ndarray

    def ward_score(self, column: int) -> np.ndarray:
        """One of the ``_WARDS`` scores, per Output Area."""
        return _SCORES[self.oa_ward, column]

    def points_in(self, rng: np.random.Generator, oa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Uniform random points in the given OAs, never so close to the city edge that
        rounding to 6 dp or reading the WGS84 boundary could put them outside."""
        return _points_in(rng, self.oa_inner, oa)


def write_demo_inputs(out_dir: Path, *, seed: int = 2018) -> Path:
    """Write the demo data set (a West-Midlands-like city) into out_dir and return the path of its config TOML."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # one independent stream per component: changing one leaves the others' data alone
    rng_city, rng_pc, rng_su, rng_nhw, rng_crime, rng_rate = np.random.default_rng(seed).spawn(6)
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
    _write_csv(
        out / "postcodes.csv", _table({"pcds": pcs, "lat": lat.round(6), "long": lon.round(6)})
    )
    signups = _signups(rng_su, city, pcs, pc_x, pc_y)
    _write_geo(_schemes(rng_nhw, city, signups).to_crs(4326), out / "schemes.geojson", "GeoJSON")
    _write_csv(out / "signups.csv", _table(signups.columns))
    _write_crimes(rng_crime, out / "crime", city)
    _write_csv(out / "ratings.csv", _ratings(rng_rate, city, signups))
    _write_segments(out, city, seed=seed)
    config = out / "demo.toml"
    config.write_text(_CONFIG, encoding="utf-8")
    return config


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


# ------------------------------------------------------------------------------------ geography


@functools.cache
def _transformer(src: int, dst: int) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _wgs84(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """British National Grid metres to (longitude, latitude)."""
    return _transformer(27700, 4326).transform(x, y)


def _build_city(rng: np.random.Generator) -> _City:
    """Wards, nested Output Areas and their residents by origin."""
    lon, lat = np.array([w[2:4] for w in _WARDS]).T
    x, y = _transformer(4326, 27700).transform(lon, lat)
    sites = shapely.multipoints(
        np.c_[x.mean() + _SCALE * (x - x.mean()), y.mean() + _SCALE * (y - y.mean())]
    )
    outline = sites.convex_hull.buffer(_OUTLINE_BUFFER_M, quad_segs=16)  # smooth and convex
    cells = shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=outline, ordered=True))
    # dense vertices, so boundaries stay put whether edges are read as straight in metres or degrees
    wards = shapely.segmentize(shapely.intersection(cells, outline), 100.0)
    ward_pop = rng.gamma(50.0, size=len(_WARDS))  # ~55k each, +-14 %
    ward_pop *= _POP / ward_pop.sum()
    oa_geoms, oa_ward = _output_areas(rng, wards, ward_pop, shapely.centroid(outline))
    oa_inner = shapely.intersection(oa_geoms, outline.buffer(-2.0))
    shapely.prepare(oa_inner)
    residents = _population(rng, ward_pop, oa_ward)
    total = residents.sum(axis=1)
    households = np.rint(total / rng.uniform(2.2, 2.8, total.size)).astype(np.int64)
    return _City(outline, wards, oa_geoms, oa_inner, oa_ward, residents, total, households)


def _points_in(
    rng: np.random.Generator, geoms: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random points in ``geoms[idx]``: vectorised rejection sampling in bounding boxes."""
    bounds = shapely.bounds(geoms)
    x, y = np.empty(idx.size), np.empty(idx.size)
    todo = np.arange(idx.size)
    while todo.size:
        b = bounds[idx[todo]]
        px, py = rng.uniform(b[:, 0], b[:, 2]), rng.uniform(b[:, 1], b[:, 3])
        ok = shapely.contains_xy(geoms[idx[todo]], px, py)
        x[todo[ok]], y[todo[ok]] = px[ok], py[ok]
        todo = todo[~ok]
    return x, y


def _choose(rng: np.random.Generator, weight: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with replacement, probability proportional to ``weight``."""
    return rng.choice(weight.size, size=size, p=weight / weight.sum())


def _output_areas(
    rng: np.random.Generator, wards: np.ndarray, ward_pop: np.ndarray, centre: shapely.Point
) -> tuple[np.ndarray, np.ndarray]:
    """~300-resident Output Areas: per-ward Voronoi cells of points denser towards the centre.

    Built inside each ward (Voronoi, then intersected with the convex ward), so they nest
    exactly.  Within a ward they are sorted by bearing from its centroid, so runs of
    consecutive OAs are neighbours and can form LSOAs.
    """
    pieces: list[np.ndarray] = []
    ward_of: list[np.ndarray] = []
    for w, ward in enumerate(wards):
        n = max(round(ward_pop[w] / _OA_RESIDENTS), 5)
        cx, cy = _points_in(rng, np.array([ward]), np.zeros(4 * n, dtype=np.intp))
        density = np.exp(-np.hypot(cx - centre.x, cy - centre.y) / 6_000.0)
        pick = rng.choice(cx.size, size=n, replace=False, p=density / density.sum())
        sites = shapely.multipoints(np.c_[cx[pick], cy[pick]])
        cells = shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=ward, ordered=True))
        cells = shapely.intersection(cells, ward)
        middle = shapely.centroid(ward)
        pieces.append(cells[np.argsort(np.arctan2(cy[pick] - middle.y, cx[pick] - middle.x))])
        ward_of.append(np.full(n, w))
    geoms = np.concatenate(pieces)
    for i in np.flatnonzero(shapely.get_type_id(geoms) != 3):  # rare overlay leftovers
        parts = shapely.get_parts(geoms[i])
        geoms[i] = parts[np.argmax(shapely.area(parts))]
    return geoms, np.concatenate(ward_of)


def _cat(*parts: object) -> np.ndarray:
    """Element-wise string concatenation of arrays and scalars."""
    return functools.reduce(np.char.add, [np.asarray(p).astype(str) for p in parts])


def _numbered(prefix: str, n: int, width: int) -> np.ndarray:
    """``prefix`` + 1..n zero-padded, e.g. E00900001."""
    return _cat(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _write_areas(out: Path, city: _City) -> None:
    """areas.geojson (wards, EPSG:4326) and small_areas.gpkg (OAs, EPSG:27700 to exercise reprojection)."""
    npu = {
        ward: (f"NPU{i:02d}", n) for i, (n, wards) in enumerate(_NPUS.items(), 1) for ward in wards
    }
    rows = [(r["area_code"], r["area_name"], *npu[r["area_name"]]) for r in _WARD_ROWS]
    columns = ["area_code", "area_name", "parent_code", "parent_name"]
    wards = gpd.GeoDataFrame(rows, columns=columns, geometry=city.ward_geoms, crs=27700)
    _write_geo(wards.to_crs(4326), out / "areas.geojson", "GeoJSON")
    oas = {"area_code": _numbered("E009", city.oa_ward.size, 5), "households": city.households}
    _write_geo(
        gpd.GeoDataFrame(oas, geometry=city.oa_geoms, crs=27700), out / "small_areas.gpkg", "GPKG"
    )


def _write_geo(frame: gpd.GeoDataFrame, path: Path, driver: str) -> None:
    """Write a vector file; GDAL's GeoPackage timestamp is pinned so the bytes are reproducible."""
    path.unlink(missing_ok=True)
    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2018-10-31T00:00:00.000Z"})
    try:
        frame.to_file(path, driver=driver, engine="pyogrio", layer=path.stem)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})


def _table(columns: dict[str, np.ndarray]) -> pa.Table:
    """Arrow table from numpy columns; NaN and None become null (a blank cell)."""
    return pa.table({k: pa.array(v, from_pandas=True) for k, v in columns.items()})


def _write_csv(path: Path, table: pa.Table) -> None:
    """Fast, unquoted CSV (no generated value contains a comma or quote)."""
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none", quoting_header="none"))


def _take(vocabulary: object, index: np.ndarray, blank: np.ndarray | None = None) -> pa.Array:
    """A string column as ``vocabulary[index]``, blank where ``blank`` is true (cheap for big columns)."""
    return pa.array(np.asarray(vocabulary)).take(pa.array(index, mask=blank))


# --------------------------------------------------------------------------------------- people


def _ipf(
    seed: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, iterations: int = 60
) -> np.ndarray:
    """Iterative proportional fitting of ``seed`` to row and column totals (with equal sums)."""
    fit = seed.astype(float)
    for _ in range(iterations):
        fit *= (rows / fit.sum(axis=1))[:, None]
        fit *= cols / fit.sum(axis=0)
    return fit


def _population(rng: np.random.Generator, ward_pop: np.ndarray, oa_ward: np.ndarray) -> np.ndarray:
    """Residents per (OA, origin).

    Ward x origin counts: IPF of an affinity seed (ward scores x origin affinities) to the
    ward totals and the force-wide origin totals.  Each count is then split over the
    ward's OAs by a multinomial whose weights carry OA-level clustering, shared within an
    origin group (South Asian, Black, White British, city centre) and strongest for minorities.
    """
    scores = np.c_[_SCORES[:, :3], np.log(_SCORES[:, _CRIME])]
    affinity = np.array([v[2:] for v in _ORIGINS.values()])
    totals = np.array([v[0] for v in _ORIGINS.values()], dtype=float)
    fit = _ipf(np.exp(scores @ affinity.T), ward_pop * totals.sum() / ward_pop.sum(), totals)
    counts = np.rint(fit).astype(np.int64)
    group = np.argmax(affinity, axis=1)
    sigma = np.where(group == _ENGLISH, 0.25, 0.8)
    clustering = np.exp(sigma * rng.standard_normal((oa_ward.size, 4))[:, group])
    weight = rng.gamma(10.0, 0.1, (oa_ward.size, 1)) * clustering
    residents = np.empty(weight.shape, dtype=np.int64)
    for w in range(len(_WARDS)):
        sel = oa_ward == w
        residents[sel] = rng.multinomial(counts[w], (weight[sel] / weight[sel].sum(axis=0)).T).T
    return residents


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


# ------------------------------------------------------------------------------ crime, ratings


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
