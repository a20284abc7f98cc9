"""Shares of source polygons (small areas, areas, Watch schemes) in each fragment, and spreading
counts by them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import scipy.sparse
import shapely

from targeting.grid.cells import THREADS, points_to_areas
from targeting.grid.clip import ConvexPolygons, convex_clip_areas, convex_polygons
from targeting.io import WGS84


def overlay_weights(
    sources: gpd.GeoSeries,
    fragments: gpd.GeoDataFrame,
    *,
    raster_weights: RasterWeights | None = None,
    convex: ConvexPolygons | None = None,
) -> pd.DataFrame:
    """Share of each source polygon that falls in each fragment: `source, fragment, weight`.

    `sources` and `fragments` share an equal-area CRS. Weights are surface shares, or, when
    `raster_weights` (raster cell centres in the same CRS) is given, raster mass
    shares, falling back to surface shares for sources no raster cell centre falls in. A source's
    weights sum to at most 1; the rest lies outside every area. Overlapping areas would count a
    piece twice, so a source whose weights exceed 1 is scaled back to 1. A source with no surface
    (a degenerate polygon) goes wholly to the fragment under its representative point.
    `convex` is `convex_polygons` of the fragments, where already worked out (a run's overlays
    all share one set of fragments).
    """
    # plain arrays of shapely geometries: the vectorised functions then skip pandas' slow
    # element-wise dispatch for extension arrays
    src_geoms = np.asarray(sources.values)
    frag_geoms = np.asarray(fragments.geometry.values)
    tree = shapely.STRtree(frag_geoms)
    if raster_weights is None:
        convex = convex if convex is not None else convex_polygons(frag_geoms)

        def part(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            s, f = tree.query(src_geoms[chunk], predicate="intersects")
            return chunk[s], f, shared_areas(src_geoms, chunk[s], frag_geoms, f, convex=convex)

        # GEOS and numpy release the interpreter's lock: the sources' halves run side by side
        chunks = np.array_split(np.arange(len(src_geoms)), THREADS if len(src_geoms) > 1000 else 1)
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            done = list(pool.map(part, chunks))
        src_idx, frag_idx, piece_area = (np.concatenate([d[i] for d in done]) for i in range(3))
    else:
        src_idx, frag_idx = tree.query(src_geoms, predicate="intersects")
        pieces = shapely.intersection(src_geoms[src_idx], frag_geoms[frag_idx])
        piece_area = shapely.area(pieces)
    src_area = shapely.area(src_geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(src_area[src_idx] > 0, piece_area / src_area[src_idx], 0.0)
    keep = weight > 0
    pairs = pd.DataFrame(
        {"source": src_idx[keep], "fragment": frag_idx[keep], "weight": weight[keep]}
    )
    if raster_weights is not None and len(pairs):
        pairs = _raster_shares(pairs, pieces[keep], src_geoms, raster_weights)

    degenerate = np.flatnonzero(src_area <= 0)
    if len(degenerate):
        points = shapely.point_on_surface(src_geoms[degenerate])
        p_idx, f_idx = tree.query(points, predicate="intersects")
        first = pd.DataFrame({"p": p_idx, "f": f_idx}).drop_duplicates("p")
        extra = pd.DataFrame(
            {
                "source": degenerate[first["p"].to_numpy()],
                "fragment": first["f"].to_numpy(),
                "weight": 1.0,
            }
        )
        pairs = pd.concat([pairs, extra], ignore_index=True)

    totals = pairs.groupby("source")["weight"].transform("sum").to_numpy()
    pairs["weight"] = np.where(
        totals > 1.0, pairs["weight"].to_numpy() / totals, pairs["weight"].to_numpy()
    )
    return pairs


def shared_areas(
    src_geoms: np.ndarray,
    src_idx: np.ndarray,
    frag_geoms: np.ndarray,
    frag_idx: np.ndarray,
    *,
    convex: ConvexPolygons,
) -> np.ndarray:
    """Area each pair (source, fragment) shares: clipped arithmetically where the fragment is a
    convex polygon (whole cells, per `convex`), by GEOS elsewhere (fragments cut by an area's
    outline)."""
    polygonal = np.isin(shapely.get_type_id(src_geoms), [3, 6])
    fast = convex.convex[frag_idx] & polygonal[src_idx]
    area = np.empty(len(src_idx))
    area[fast] = convex_clip_areas(src_geoms, src_idx[fast], convex, frag_idx[fast])
    slow = ~fast
    area[slow] = shapely.area(
        shapely.intersection(src_geoms[src_idx[slow]], frag_geoms[frag_idx[slow]])
    )
    return area


def home_areas(pairs: pd.DataFrame, fragments: gpd.GeoDataFrame) -> pd.Series:
    """The area holding the largest share of each source (surface or raster shares), indexed by
    source position: one ward per census area, as in a published lookup, by surface rather than by
    ONS's centroid rule (see `centroid_areas`).

    Sources whose largest share lies outside every area are absent; ties go to the first area
    code, so the fit does not depend on the order of the inputs.
    """
    shares = (
        pd.DataFrame(
            {
                "source": pairs["source"].to_numpy(),
                "area_code": fragments["area_code"].to_numpy()[pairs["fragment"].to_numpy()],
                "weight": pairs["weight"].to_numpy(),
            }
        )
        .groupby(["source", "area_code"], sort=True)["weight"]
        .sum()
        .reset_index()
    )
    outside = 1.0 - shares.groupby("source")["weight"].transform("sum")
    best = shares[shares["weight"] >= outside].sort_values(
        ["source", "weight", "area_code"], ascending=[True, False, True], kind="stable"
    )
    return best.drop_duplicates("source").set_index("source")["area_code"]


def centroid_areas(
    sources: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    pairs: pd.DataFrame,
    fragments: gpd.GeoDataFrame,
    *,
    largest: pd.Series,
) -> pd.Series:
    """The area containing a point on each source's surface, indexed by source position.

    ONS best-fit lookups give each census area the higher area holding its population-weighted
    centroid; a small-area file carries no such centroid, so a point on the surface (always inside
    the source, unlike the geometric centroid) stands in for it. Sources whose point lies outside
    every area are absent; a source whose point falls on a sliver too thin to share any surface
    with that area falls back to its largest share (`largest`, from `home_areas`), so no resident
    is lost.
    """
    geoms = np.asarray(sources.to_crs(areas.crs).geometry.values)
    points = shapely.point_on_surface(geoms)
    found = points_to_areas(shapely.get_x(points), shapely.get_y(points), areas)
    inside = np.flatnonzero(found >= 0)
    home = pd.Series(areas["area_code"].to_numpy()[found[inside]], index=inside)
    shared = pd.MultiIndex.from_arrays(
        [
            pairs["source"].to_numpy(),
            fragments["area_code"].to_numpy()[pairs["fragment"].to_numpy()],
        ]
    )
    has_share = pd.MultiIndex.from_arrays([home.index, home.to_numpy()]).isin(shared)
    fallback = home[~has_share].index.intersection(largest.index)
    return pd.concat([home[has_share], largest.loc[fallback]]).sort_index()


def best_fit_weights(
    pairs: pd.DataFrame, fragments: gpd.GeoDataFrame, home: pd.Series
) -> pd.DataFrame:
    """Pairs that keep each source wholly in its home area (see `home_areas`, `centroid_areas`).

    Within that area the source's own shares are kept and scaled up to 1, so its residents still
    go to the cells it covers there. A source with no home area keeps its split shares, so what
    lies outside every area stays unallocated.
    """
    pair_home = pairs["source"].map(home).to_numpy()
    in_home = fragments["area_code"].to_numpy()[pairs["fragment"].to_numpy()] == pair_home
    out = pairs[in_home | pd.isna(pair_home)].copy()
    out["weight"] = out["weight"] / np.where(
        pd.isna(out["source"].map(home)), 1.0, out.groupby("source")["weight"].transform("sum")
    )
    return out.reset_index(drop=True)


def split_share(
    pairs: pd.DataFrame, fragments: gpd.GeoDataFrame, home: pd.Series, weight: np.ndarray
) -> float:
    """Share of the sources' `weight` (e.g. residents, by source position) that splitting by
    surface places in areas other than their home area."""
    pair_home = pairs["source"].map(home).to_numpy()
    away = pd.notna(pair_home) & (
        fragments["area_code"].to_numpy()[pairs["fragment"].to_numpy()] != pair_home
    )
    source = pairs["source"].to_numpy()
    moved = float(np.sum(pairs["weight"].to_numpy()[away] * weight[source[away]]))
    total = float(weight.sum())
    return moved / total if total > 0 else 0.0


def _raster_shares(
    pairs: pd.DataFrame,
    pieces: np.ndarray,
    src_geoms: np.ndarray,
    raster_weights: RasterWeights,
) -> pd.DataFrame:
    """Replace surface shares by raster-mass shares where the raster has mass in the source."""
    value = raster_weights.value
    points = shapely.points(raster_weights.x, raster_weights.y)
    piece_tree = shapely.STRtree(pieces)
    pt, pc = piece_tree.query(points, predicate="within")
    piece_mass = np.bincount(pc, weights=value[pt], minlength=len(pieces))
    src_tree = shapely.STRtree(src_geoms)
    pt2, sc = src_tree.query(points, predicate="within")
    src_mass = np.bincount(sc, weights=value[pt2], minlength=len(src_geoms))
    total = src_mass[pairs["source"].to_numpy()]
    has_mass = total > 0
    out = pairs.copy()
    out["weight"] = np.where(has_mass, piece_mass / np.where(has_mass, total, 1.0), out["weight"])
    return out[out["weight"] > 0].reset_index(drop=True)


def allocate_to_fragments(
    pairs: pd.DataFrame, values: pd.DataFrame, *, source_col: str = "source"
) -> tuple[pd.DataFrame, pd.Series]:
    """Spread per-source values over fragments by the pair weights.

    `values` has a `source_col` column (source position) and numeric columns. Returns the values
    per (fragment, other key columns) and, per numeric column, the amount left outside every area
    (input minus allocated, so the two always add up to the input).
    """
    numeric = [
        c for c in values.columns if c != source_col and pd.api.types.is_float_dtype(values[c])
    ]
    keys = [c for c in values.columns if c not in numeric and c != source_col]
    source = pd.to_numeric(values[source_col]).to_numpy(dtype=float)
    if len(keys) == 1:  # one key (an origin): factorised as a column, ten times faster
        codes, single = pd.factorize(values[keys[0]], sort=True)
        levels = [pd.Index(single)]
    elif keys:
        codes, found = pd.MultiIndex.from_frame(values[keys]).factorize(sort=True)
        levels = [cast(pd.MultiIndex, found).get_level_values(i) for i in range(len(keys))]
    else:
        codes, levels = np.zeros(len(values), dtype=np.int64), []
    # rows with an unknown source or a missing key are not allocated
    use = ~np.isnan(source) & (codes >= 0)
    n_keys = max(len(levels[0]), 1) if levels else 1
    pair_source = pairs["source"].to_numpy(dtype=np.int64)
    pair_fragment = pairs["fragment"].to_numpy(dtype=np.int64)
    n_sources = int(max(pair_source.max(initial=-1), np.nanmax(source, initial=-1))) + 1
    n_fragments = int(pair_fragment.max(initial=-1)) + 1
    # sources x keys tables, then fragments x sources (the pair weights) times them
    cell = source[use].astype(np.int64) * n_keys + codes[use]
    spread = scipy.sparse.csr_array(
        (pairs["weight"].to_numpy(dtype=float), (pair_fragment, pair_source)),
        shape=(n_fragments, n_sources),
    )
    rows = np.bincount(cell, minlength=n_sources * n_keys).reshape(n_sources, n_keys)
    # a (fragment, key) is a row when any of its source rows reaches it, even with a 0 value
    reached = (spread > 0).astype(np.int64) @ rows
    fragment, key = np.nonzero(reached)
    allocated = pd.DataFrame({"fragment": fragment})
    for name, level in zip(keys, levels, strict=True):
        allocated[name] = level[key]
    for c in numeric:
        table = np.bincount(
            cell, weights=values[c].to_numpy(dtype=float)[use], minlength=n_sources * n_keys
        ).reshape(n_sources, n_keys)
        allocated[c] = (spread @ table)[fragment, key]
    unallocated = values[numeric].sum() - allocated[numeric].sum()
    return allocated, unallocated


@dataclass(frozen=True)
class RasterWeights:
    """Centres of a raster's positive cells in the grid's CRS, with their weights."""

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    negative_cells: int  # cells below zero, read as zero (weights must not be negative)


def raster_to_points(
    path: Path, *, crs: pyproj.CRS, bounds: tuple[float, float, float, float]
) -> RasterWeights:
    """The raster's positive cells within `bounds` (WGS84 min lon, min lat, max lon, max lat).

    Only the window covering the areas is read, so a national raster does not have to fit in
    memory for a force's run.
    """
    import rasterio
    from rasterio.windows import from_bounds

    with rasterio.open(path) as src:
        to_src = pyproj.Transformer.from_crs(WGS84, src.crs, always_xy=True)
        left, bottom, right, top = to_src.transform_bounds(*bounds)
        window = from_bounds(left, bottom, right, top, transform=src.transform)
        window = (
            window.round_offsets()
            .round_lengths()
            .intersection(rasterio.windows.Window(0, 0, src.width, src.height))
        )
        band = src.read(1, window=window, masked=True).astype(float)
        filled = np.ma.filled(band, 0.0)
        rows, cols = np.nonzero(filled > 0)
        xs, ys = rasterio.transform.xy(src.window_transform(window), rows, cols, offset="center")
        transformer = pyproj.Transformer.from_crs(src.crs, crs, always_xy=True)
        x, y = transformer.transform(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
    return RasterWeights(np.asarray(x), np.asarray(y), filled[rows, cols], int((filled < 0).sum()))


def own_area_pairs(
    areas: gpd.GeoDataFrame,
    fragments: gpd.GeoDataFrame,
    *,
    raster: RasterWeights | None,
    convex: ConvexPolygons | None = None,
) -> pd.DataFrame:
    """Weights that spread counts keyed by area over that area's own fragments (summing to 1)."""
    pairs = overlay_weights(
        areas.to_crs(fragments.crs).geometry, fragments, raster_weights=raster, convex=convex
    )
    own = fragments["area_code"].to_numpy()[pairs["fragment"].to_numpy()]
    pairs = pairs[own == areas["area_code"].to_numpy()[pairs["source"].to_numpy()]].copy()
    pairs["weight"] = pairs["weight"] / pairs.groupby("source")["weight"].transform("sum")
    return pairs.reset_index(drop=True)
