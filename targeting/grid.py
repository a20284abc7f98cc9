"""The H3 analysis grid, held as cell x area fragments, and allocation of counts onto it.

H3 cells and areas do not nest, so every count is held per fragment: the part of a cell inside one
area. Area figures are sums of their fragments (exact); cell figures are sums over a cell's
fragments. Census counts are spread from small areas to fragments by the share of each small
area's surface (or raster weight) that lies in the fragment; points go to the area that contains
them and the cell that contains them. Geometry work happens in a Lambert azimuthal equal-area
projection centred on the areas, so surface shares are true shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyproj
import shapely
from h3ronpy.vector import coordinates_to_cells

from targeting.io import WGS84, polygonal_part

# pieces smaller than this are floating-point noise where a cell edge runs along an area edge
MIN_FRAGMENT_M2 = 0.01


# above this share of residents moved across area lines by splitting, suggest best fit
SPLIT_WARNING_SHARE = 0.01


def equal_area_crs(areas: gpd.GeoDataFrame) -> pyproj.CRS:
    """A Lambert azimuthal equal-area CRS centred on the areas (metres, true surface shares)."""
    minx, miny, maxx, maxy = areas.to_crs(WGS84).total_bounds
    lon0, lat0 = (minx + maxx) / 2, (miny + maxy) / 2
    return pyproj.CRS.from_proj4(
        f"+proj=laea +lat_0={lat0:.6f} +lon_0={lon0:.6f} +datum=WGS84 +units=m +no_defs"
    )


def points_to_cell_ids(lat: np.ndarray, lon: np.ndarray, *, resolution: int) -> np.ndarray:
    """The H3 cell of each WGS84 point as its 64-bit index (h3ronpy: vectorised, about 3x h3-py's
    per-point calls on 380,000 points)."""
    if len(lat) == 0:
        return np.array([], dtype=np.uint64)
    cells = coordinates_to_cells(
        np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64), resolution
    )
    return np.asarray(pa.array(cells).to_numpy(), dtype=np.uint64)


def cells_to_ids(cells: np.ndarray) -> np.ndarray:
    """H3 cells given as strings, as their 64-bit indexes."""
    return np.array([int(c, 16) for c in cells], dtype=np.uint64)


def points_to_cells(lat: np.ndarray, lon: np.ndarray, *, resolution: int) -> np.ndarray:
    """The H3 cell (as a string) of each WGS84 point."""
    ids = points_to_cell_ids(lat, lon, resolution=resolution)
    return np.array([format(i, "x") for i in ids.tolist()], dtype=object)


def points_to_areas(lon: np.ndarray, lat: np.ndarray, areas: gpd.GeoDataFrame) -> np.ndarray:
    """Index (position) of the area containing each point, -1 where none does.

    A point on a shared boundary goes to the first area in file order, so placement is
    deterministic.
    """
    result = np.full(len(lon), -1, dtype=np.int64)
    if len(lon) == 0:
        return result
    points = shapely.points(lon, lat)
    tree = shapely.STRtree(areas.geometry.values)
    point_idx, area_idx = tree.query(points, predicate="intersects")
    if len(point_idx):
        order = np.lexsort((area_idx, point_idx))
        point_idx, area_idx = point_idx[order], area_idx[order]
        first = np.r_[True, point_idx[1:] != point_idx[:-1]]
        result[point_idx[first]] = area_idx[first]
    return result


def _cell_polygons(cells: np.ndarray, transformer: pyproj.Transformer) -> np.ndarray:
    """Cell outlines in the equal-area CRS."""
    boundaries = [h3.cell_to_boundary(c) for c in cells]
    counts = np.array([len(b) for b in boundaries])
    coords = np.array([pt for b in boundaries for pt in b], dtype=float).reshape(-1, 2)
    x, y = transformer.transform(coords[:, 1], coords[:, 0])
    ring_idx = np.repeat(np.arange(len(cells)), counts)
    rings = shapely.linearrings(np.column_stack([x, y]), indices=ring_idx)
    return shapely.polygons(rings)


def areas_to_fragments(
    areas: gpd.GeoDataFrame, *, resolution: int, crs: pyproj.CRS
) -> gpd.GeoDataFrame:
    """The fragments (cell x area pieces) covering the areas, with their surface in m2.

    Returns columns `cell, area_code, area_m2, geometry` in `crs`. Cells wholly inside an area are
    whole fragments; boundary cells are cut by the area's outline.
    """
    to_proj = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
    projected = areas.to_crs(crs)
    frames = []
    for code, geom_wgs, geom_proj in zip(
        areas["area_code"], areas.geometry.values, projected.geometry.values, strict=True
    ):
        shape = h3.geo_to_h3shape(shapely.geometry.mapping(geom_wgs))
        full = set(h3.h3shape_to_cells_experimental(shape, resolution, contain="full"))
        overlap = set(h3.h3shape_to_cells_experimental(shape, resolution, contain="overlap"))
        edge = overlap - full
        # a ring around the edge cells catches slivers that h3's spherical test and the projected
        # outline disagree about, so no part of an area is left without a fragment
        candidates = set()
        for cell in edge or {h3.latlng_to_cell(*_rep_latlng(geom_wgs), resolution)}:
            candidates.update(h3.grid_disk(cell, 1))
        candidates -= full
        full_cells = np.array(sorted(full), dtype=object)
        edge_cells = np.array(sorted(candidates), dtype=object)
        full_polys = _cell_polygons(full_cells, to_proj) if len(full_cells) else np.array([])
        edge_polys = _cell_polygons(edge_cells, to_proj) if len(edge_cells) else np.array([])
        shapely.prepare(geom_proj)
        if len(edge_polys):
            hits = shapely.intersects(geom_proj, edge_polys)
            edge_cells, edge_polys = edge_cells[hits], edge_polys[hits]
            edge_polys = shapely.intersection(edge_polys, geom_proj)
            edge_polys = np.array([polygonal_part(g) for g in edge_polys], dtype=object)
        cells = np.concatenate([full_cells, edge_cells])
        polys = np.concatenate([full_polys, edge_polys])
        area = shapely.area(polys) if len(polys) else np.array([])
        keep = area > MIN_FRAGMENT_M2
        frames.append(
            pd.DataFrame(
                {
                    "cell": cells[keep],
                    "area_code": code,
                    "area_m2": area[keep],
                    "geometry": polys[keep],
                }
            )
        )
    fragments = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(fragments, geometry="geometry", crs=crs)


def _rep_latlng(geom: shapely.Geometry) -> tuple[float, float]:
    point = geom.representative_point()
    return point.y, point.x


def overlay_weights(
    sources: gpd.GeoSeries,
    fragments: gpd.GeoDataFrame,
    *,
    raster_weights: RasterWeights | None = None,
) -> pd.DataFrame:
    """Share of each source polygon that falls in each fragment: `source, fragment, weight`.

    `sources` and `fragments` share an equal-area CRS. Weights are surface shares, or, when
    `raster_weights` (raster cell centres in the same CRS) is given, raster mass
    shares, falling back to surface shares for sources no raster cell centre falls in. A source's
    weights sum to at most 1; the rest lies outside every area. Overlapping areas would count a
    piece twice, so a source whose weights exceed 1 is scaled back to 1. A source with no surface
    (a degenerate polygon) goes wholly to the fragment under its representative point.
    """
    # plain arrays of shapely geometries: the vectorised functions then skip pandas' slow
    # element-wise dispatch for extension arrays
    src_geoms = np.asarray(sources.values)
    frag_geoms = np.asarray(fragments.geometry.values)
    tree = shapely.STRtree(frag_geoms)
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
) -> pd.Series:
    """The area containing a point on each source's surface, indexed by source position.

    ONS best-fit lookups give each census area the higher area holding its population-weighted
    centroid; a small-area file carries no such centroid, so a point on the surface (always inside
    the source, unlike the geometric centroid) stands in for it. Sources whose point lies outside
    every area are absent; a source whose point falls on a sliver too thin to share any surface
    with that area falls back to its largest share (`home_areas`), so no resident is lost.
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
    largest = home_areas(pairs, fragments)
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
    merged = values.merge(pairs, left_on=source_col, right_on="source", how="inner")
    for c in numeric:
        merged[c] = merged[c].to_numpy() * merged["weight"].to_numpy()
    allocated = (
        merged.groupby(["fragment", *keys], sort=True, observed=True)[numeric].sum().reset_index()
    )
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


def points_to_fragments(
    lat: np.ndarray,
    lon: np.ndarray,
    area_code: np.ndarray,
    fragments: gpd.GeoDataFrame,
    *,
    resolution: int,
) -> np.ndarray:
    """Position of the fragment holding each point, given the area each point lies in.

    A point goes to the fragment of its own area in its own H3 cell. Where that cell has no
    fragment of the area (a point a hair inside an area whose piece of the cell was too thin to
    keep), it goes to the nearest fragment of its area, so every count sits in a real fragment.
    """
    cells = points_to_cell_ids(lat, lon, resolution=resolution)
    # one integer key per (cell, area): the cell's 64-bit index and the area's position in a
    # sorted list of the area codes, so the lookup is a join on integers, not on strings
    codes, frag_area = np.unique(fragments["area_code"].to_numpy(), return_inverse=True)
    point_area = np.searchsorted(codes, area_code)
    known = (point_area < len(codes)) & (codes[np.minimum(point_area, len(codes) - 1)] == area_code)
    lookup = pd.Series(
        np.arange(len(fragments)),
        index=pd.MultiIndex.from_arrays([cells_to_ids(fragments["cell"].to_numpy()), frag_area]),
    )
    found = lookup.reindex(pd.MultiIndex.from_arrays([cells, point_area])).to_numpy(
        dtype=float, copy=True
    )
    found[~known] = np.nan
    missing = np.flatnonzero(np.isnan(found))
    if len(missing):
        to_proj = pyproj.Transformer.from_crs(WGS84, fragments.crs, always_xy=True)
        x, y = to_proj.transform(lon[missing], lat[missing])
        points = shapely.points(x, y)
        geoms = np.asarray(fragments.geometry.values)
        edge = h3.average_hexagon_edge_length(resolution, unit="m")
        p_idx, f_idx = shapely.STRtree(geoms).query(points, predicate="dwithin", distance=2 * edge)
        same = fragments["area_code"].to_numpy()[f_idx] == area_code[missing][p_idx]
        p_idx, f_idx = p_idx[same], f_idx[same]
        dist = shapely.distance(points[p_idx], geoms[f_idx])
        nearest = (
            pd.DataFrame({"p": p_idx, "f": f_idx, "d": dist})
            .sort_values(["p", "d", "f"])
            .drop_duplicates("p")
        )
        found[missing[nearest["p"].to_numpy()]] = nearest["f"].to_numpy()
    if np.isnan(found).any():
        raise ValueError("a point lies in an area that has no fragment near it")
    return found.astype(np.int64)


def own_area_pairs(
    areas: gpd.GeoDataFrame, fragments: gpd.GeoDataFrame, *, raster: RasterWeights | None
) -> pd.DataFrame:
    """Weights that spread counts keyed by area over that area's own fragments (summing to 1)."""
    pairs = overlay_weights(areas.to_crs(fragments.crs).geometry, fragments, raster_weights=raster)
    own = fragments["area_code"].to_numpy()[pairs["fragment"].to_numpy()]
    pairs = pairs[own == areas["area_code"].to_numpy()[pairs["source"].to_numpy()]].copy()
    pairs["weight"] = pairs["weight"] / pairs.groupby("source")["weight"].transform("sum")
    return pairs.reset_index(drop=True)


@dataclass(frozen=True)
class Grid:
    """Every count on the cell x area fragment grid, and what fell outside every area."""

    cells: pd.DataFrame  # one row per fragment: `cell, area_code`, counts, `area_m2`
    cell_origins: pd.DataFrame  # cell, area_code, origin, residents, registered
    unallocated: dict[str, float]
    crs: str
    warnings: tuple[str, ...]
    previous: pd.DataFrame | None = None  # cell, area_code, origin, residents of the earlier census
    cell_segments: pd.DataFrame | None = None  # cell, area_code, segment, households


def _per_fragment(n: int, index: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(index, weights=weights, minlength=n)


def build_grid(
    *,
    areas: gpd.GeoDataFrame,
    small_areas: gpd.GeoDataFrame | None,
    population: pd.DataFrame,
    population_keyed_by: str,
    signups: pd.DataFrame,
    crimes: pd.DataFrame | None,
    ratings: pd.DataFrame | None,
    schemes: gpd.GeoDataFrame | None,
    resolution: int,
    raster_path: Path | None,
    point_radius_m: float,
    previous_population: pd.DataFrame | None = None,
    previous_keyed_by: str = "small_areas",
    small_area_fit: str = "split",
    low_rating: int = 2,
    segments: pd.DataFrame | None = None,
    segments_keyed_by: str = "small_areas",
    postcodes: pd.DataFrame | None = None,
) -> Grid:
    """Put every input's counts on the fragments of the areas.

    Census residents and small-area households go by surface (or raster) shares, Watch-scheme
    households by surface shares of the scheme (a point scheme covers a circle of
    `point_radius_m`), and sign-ups (not deleted), crimes and ratings by the point's fragment.
    Ratings at or below `low_rating` are also counted as `low_ratings`. Segment households
    (`key, segment, households`) go by the small areas' shares, or, keyed by postcode, to the
    fragment of the postcode's centroid.
    An earlier population snapshot, when given, is allocated the same way as the current one.
    With `small_area_fit="best_fit"` each small area goes wholly to the area holding its largest
    share, with "centroid" to the area holding a point on its surface; with "split", a warning says how many residents the split moved across area lines.
    Inputs that are absent leave their columns null rather than zero.
    """
    crs = equal_area_crs(areas)
    fragments = areas_to_fragments(areas, resolution=resolution, crs=crs)
    n = len(fragments)
    cells = pd.DataFrame(fragments[["cell", "area_code", "area_m2"]])
    unallocated: dict[str, float] = {}
    warnings: list[str] = []

    raster = None
    if raster_path is not None:
        raster = raster_to_points(raster_path, crs=crs, bounds=tuple(areas.total_bounds))
        if raster.negative_cells:
            warnings.append(f"population_raster: {raster.negative_cells} negative cells read as 0")
    small_pairs = None
    if small_areas is not None:
        small_geoms = small_areas.to_crs(crs).geometry
        small_pairs = overlay_weights(small_geoms, fragments, raster_weights=raster)
        home = home_areas(small_pairs, fragments)
        if small_area_fit == "best_fit":
            small_pairs = best_fit_weights(small_pairs, fragments, home)
        elif small_area_fit == "centroid":
            fit = centroid_areas(small_areas, areas, small_pairs, fragments)
            small_pairs = best_fit_weights(small_pairs, fragments, fit)
        elif population_keyed_by == "small_areas":
            per_source = (
                population.groupby("area_code")["residents"]
                .sum()
                .reindex(small_areas["area_code"].to_numpy(), fill_value=0.0)
                .to_numpy(dtype=float)
            )
            moved = split_share(small_pairs, fragments, home, per_source)
            if moved > SPLIT_WARNING_SHARE:
                warnings.append(
                    f"population: {moved:.1%} of residents were shared across area lines by "
                    "surface, from small areas that area boundaries cut; if the small areas are "
                    "built to nest in the areas (OAs in wards) and only the outlines differ, set "
                    '[grid] small_area_fit = "centroid" (or "best_fit")'
                )
    area_pairs: pd.DataFrame | None = None

    def allocate(table: pd.DataFrame, keyed_by: str) -> tuple[pd.DataFrame, float]:
        nonlocal area_pairs
        if keyed_by == "small_areas" and small_areas is not None and small_pairs is not None:
            sources, pairs = small_areas, small_pairs
        else:
            if area_pairs is None:
                area_pairs = own_area_pairs(areas, fragments, raster=raster)
            sources, pairs = areas, area_pairs
        position = pd.Series(np.arange(len(sources)), index=sources["area_code"].to_numpy())
        values = pd.DataFrame(
            {
                "source": table["area_code"].map(position).to_numpy(),
                "origin": table["origin"].to_numpy(),
                "residents": table["residents"].to_numpy(dtype=float),
            }
        )
        allocated, left = allocate_to_fragments(pairs, values)
        return allocated, float(left["residents"])

    by_origin, unallocated["residents"] = allocate(population, population_keyed_by)
    previous = None
    if previous_population is not None:
        before, unallocated["residents_previous"] = allocate(previous_population, previous_keyed_by)
        previous = (
            before.join(cells[["cell", "area_code"]], on="fragment")[
                ["cell", "area_code", "origin", "residents"]
            ]
            .sort_values(["cell", "area_code", "origin"], kind="stable")
            .reset_index(drop=True)
        )
    cells["residents"] = _per_fragment(
        n, by_origin["fragment"].to_numpy(), by_origin["residents"].to_numpy()
    )

    cells["households"] = np.nan
    if (
        small_areas is not None
        and small_pairs is not None
        and small_areas["households"].notna().any()
    ):
        hh = pd.DataFrame(
            {
                "source": np.arange(len(small_areas)),
                "households": small_areas["households"].fillna(0).to_numpy(float),
            }
        )
        alloc, hh_left = allocate_to_fragments(small_pairs, hh)
        cells["households"] = _per_fragment(
            n, alloc["fragment"].to_numpy(), alloc["households"].to_numpy()
        )
        unallocated["households"] = float(hh_left["households"])

    cells["watch_households"] = np.nan
    cells["watch_scheme_members"] = np.nan
    if schemes is not None:
        geoms = np.asarray(schemes.to_crs(crs).geometry.values)
        is_point = np.isin(shapely.get_type_id(geoms), [0, 4])
        geoms = np.where(is_point, shapely.buffer(geoms, point_radius_m), geoms)
        s_pairs = overlay_weights(gpd.GeoSeries(geoms, crs=crs), fragments)
        sv = pd.DataFrame(
            {
                "source": np.arange(len(geoms)),
                "watch_households": schemes["households"].to_numpy(float),
                "watch_scheme_members": schemes["members"].fillna(0).to_numpy(float),
            }
        )
        alloc, s_left = allocate_to_fragments(s_pairs, sv)
        for col in ("watch_households", "watch_scheme_members"):
            cells[col] = _per_fragment(n, alloc["fragment"].to_numpy(), alloc[col].to_numpy())
            unallocated[col] = float(s_left[col])

    def locate(frame: pd.DataFrame) -> np.ndarray:
        return points_to_fragments(
            frame["latitude"].to_numpy(),
            frame["longitude"].to_numpy(),
            frame["area_code"].to_numpy(),
            fragments,
            resolution=resolution,
        )

    live = signups[signups["status"] != "deleted"]
    at = locate(live)
    known = live["origin"].notna().to_numpy()
    cells["registered"] = _per_fragment(n, at).astype(np.int64)
    cells["registered_known"] = _per_fragment(n, at[known]).astype(np.int64)
    in_watch = live["watch_role"].isin(["member", "coordinator", "deputy"]).to_numpy()
    cells["watch_members"] = _per_fragment(n, at[in_watch]).astype(np.int64)

    for col in ("crimes", "sac_crimes", "asb"):
        cells[col] = pd.array([pd.NA] * n, dtype="Int64")
    if crimes is not None:
        c_at = locate(crimes)
        is_asb = crimes["is_asb"].to_numpy()
        cells["crimes"] = _per_fragment(n, c_at[~is_asb]).astype(np.int64)
        cells["sac_crimes"] = _per_fragment(n, c_at[crimes["is_sac"].to_numpy()]).astype(np.int64)
        cells["asb"] = _per_fragment(n, c_at[is_asb]).astype(np.int64)

    cells["ratings"] = pd.array([pd.NA] * n, dtype="Int64")
    cells["low_ratings"] = pd.array([pd.NA] * n, dtype="Int64")
    cells["mean_rating"] = np.nan
    if ratings is not None:
        r_at = locate(ratings)
        count = _per_fragment(n, r_at)
        value = ratings["rating"].to_numpy(dtype=float)
        total = _per_fragment(n, r_at, value)
        cells["ratings"] = count.astype(np.int64)
        cells["low_ratings"] = _per_fragment(n, r_at[value <= low_rating]).astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            cells["mean_rating"] = np.where(
                count > 0, total / np.where(count > 0, count, 1), np.nan
            )

    registered = (
        pd.DataFrame({"fragment": at[known], "origin": live["origin"].to_numpy()[known]})
        .groupby(["fragment", "origin"])
        .size()
        .rename("registered")
        .reset_index()
    )
    cell_origins = (
        by_origin[["fragment", "origin", "residents"]]
        .merge(registered, on=["fragment", "origin"], how="outer")
        .fillna({"residents": 0.0, "registered": 0})
        .astype({"registered": "int64"})
        .join(cells[["cell", "area_code"]], on="fragment")
    )
    cell_origins = cell_origins.sort_values(["cell", "area_code", "origin"], kind="stable")[
        ["cell", "area_code", "origin", "residents", "registered"]
    ].reset_index(drop=True)
    cells = cells.sort_values(["cell", "area_code"], kind="stable").reset_index(drop=True)
    cell_segments = None
    if segments is not None:
        if (
            segments_keyed_by == "small_areas"
            and small_areas is not None
            and small_pairs is not None
        ):
            position = pd.Series(
                np.arange(len(small_areas)), index=small_areas["area_code"].to_numpy()
            )
            values = pd.DataFrame(
                {
                    "source": segments["key"].map(position).to_numpy(),
                    "segment": segments["segment"].to_numpy(),
                    "households": segments["households"].to_numpy(dtype=float),
                }
            )
            by_segment, left = allocate_to_fragments(small_pairs, values)
            unallocated["segment_households"] = float(left["households"])
        else:
            located = segments.merge(
                postcodes if postcodes is not None else pd.DataFrame(columns=["key"]), on="key"
            )
            area_idx = points_to_areas(
                located["longitude"].to_numpy(), located["latitude"].to_numpy(), areas
            )
            inside = located[area_idx >= 0].assign(
                area_code=areas["area_code"].to_numpy()[area_idx[area_idx >= 0]]
            )
            by_segment = (
                inside.assign(fragment=locate(inside))
                .groupby(["fragment", "segment"], as_index=False)[["households"]]
                .sum()
            )
            unallocated["segment_households"] = float(
                segments["households"].sum() - by_segment["households"].sum()
            )
        cell_segments = (
            by_segment.join(cells[["cell", "area_code"]], on="fragment")[
                ["cell", "area_code", "segment", "households"]
            ]
            .sort_values(["cell", "area_code", "segment"], kind="stable")
            .reset_index(drop=True)
        )
    return Grid(cells, cell_origins, unallocated, crs.srs, tuple(warnings), previous, cell_segments)
