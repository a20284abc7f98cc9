"""The demo city's geography: wards, nested Output Areas, postcodes, in BNG metres."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyogrio
import shapely
from pyproj import Transformer

from targeting.demo.data import (
    _CRIME,
    _ENGLISH,
    _NPUS,
    _OA_RESIDENTS,
    _ORIGINS,
    _OUTLINE_BUFFER_M,
    _POP,
    _SCALE,
    _SCORES,
    _WARD_ROWS,
    _WARDS,
)


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
