"""How each kind of input reaches the fragments: counts keyed by small areas or by areas (spread
by surface or raster weights), points (to the fragment holding them), polygons (by surface
share) and postcodes (to the fragment holding the centroid).

A layer's placer takes the grid's context and the layer's ingested data and returns what it adds
(`Placed`): counts per fragment, tables keyed by fragment, what fell outside every area, and
warnings. Placers never change the context; `build_grid` assembles their results. Every table is
keyed by the fragment's id, its position in `GridContext.fragments`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from targeting.config import Config
from targeting.grid.cells import points_to_areas, points_to_fragments
from targeting.grid.clip import ConvexPolygons, convex_polygons
from targeting.grid.overlay import (
    RasterWeights,
    allocate_to_fragments,
    best_fit_weights,
    centroid_areas,
    home_areas,
    overlay_weights,
    own_area_pairs,
    split_share,
)

if TYPE_CHECKING:  # the ingest imports the grid: its types are named, not imported, here
    from targeting.ingest import Population, Signups
    from targeting.ingest.deprivation import Deprivation
    from targeting.ingest.segments import SegmentInput

# above this share of residents moved across area lines by splitting, suggest fitting whole
SPLIT_WARNING_SHARE = 0.01
# above this share of residents living where a deprivation index has no value, say so
DEPRIVATION_GAP_SHARE = 0.01


@dataclass(frozen=True)
class Count:
    """A number a layer adds to each fragment of the grid."""

    name: str
    integer: bool = False  # whole numbers
    summed: bool = True  # adds up over fragments (so over cells and areas); a mean does not

    def absent(self, n: int) -> Any:
        """The values where its layer was not given: null, never a misleading 0."""
        if self.integer:
            return pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
        return np.full(n, np.nan)


@dataclass(frozen=True)
class Placed:
    """What one layer adds to the grid."""

    counts: Mapping[str, np.ndarray] = field(default_factory=dict)  # per fragment, by column
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # keyed by `fragment`
    unallocated: Mapping[str, float] = field(default_factory=dict)  # outside every area
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmallAreaWeights:
    """How small areas spread over fragments: the pair weights after `[grid] small_area_fit`,
    and, for the split warning, the surface pairs and each small area's home area."""

    pairs: pd.DataFrame  # source (small-area position), fragment, weight
    surface_pairs: pd.DataFrame
    home: pd.Series
    codes: np.ndarray  # the small areas' codes, by position


def small_area_weights(
    small_areas: gpd.GeoDataFrame,
    *,
    areas: gpd.GeoDataFrame,
    fragments: gpd.GeoDataFrame,
    crs: pyproj.CRS,
    config: Config,
    raster: RasterWeights | None,
    convex: ConvexPolygons | None = None,
) -> SmallAreaWeights:
    """The small areas' pair weights over the fragments, fitted as `[grid] small_area_fit` says
    (`convex`: the fragments' `convex_polygons`, where already worked out)."""
    geoms = small_areas.to_crs(crs).geometry
    surface = overlay_weights(geoms, fragments, raster_weights=raster, convex=convex)
    home = home_areas(surface, fragments)
    fit = config.grid.small_area_fit
    pairs = surface
    if fit == "best_fit":
        pairs = best_fit_weights(surface, fragments, home)
    elif fit == "centroid":
        chosen = centroid_areas(small_areas, areas, surface, fragments, largest=home)
        pairs = best_fit_weights(surface, fragments, chosen)
    return SmallAreaWeights(pairs, surface, home, small_areas["area_code"].to_numpy())


class GridContext:
    """What every placer reads: the areas, their fragments and CRS, the grid's resolution, the
    config, the small areas' and areas' weights and the fragments' convex outlines for the
    overlays (each computed once, when first needed, unless worked out beforehand:
    `small_weights`, `convex`)."""

    def __init__(
        self,
        *,
        areas: gpd.GeoDataFrame,
        fragments: gpd.GeoDataFrame,
        crs: pyproj.CRS,
        config: Config,
        small_areas: gpd.GeoDataFrame | None,
        raster: RasterWeights | None,
        small_weights: SmallAreaWeights | None = None,
        convex: ConvexPolygons | None = None,
    ) -> None:
        self.areas = areas
        self.fragments = fragments
        self.crs = crs
        self.config = config
        self.resolution = config.grid.resolution
        self.small_areas = small_areas
        self.raster = raster
        self.n = len(fragments)
        self._small_weights = small_weights
        self._convex = convex

    @property
    def _overlay_convex(self) -> ConvexPolygons | None:
        # a raster's weights are shares of its cells' centres: no clipping to share
        return self.convex if self.raster is None else None

    @cached_property
    def convex(self) -> ConvexPolygons:
        """The fragments' `convex_polygons`, which every overlay on them clips against."""
        if self._convex is not None:
            return self._convex
        return convex_polygons(np.asarray(self.fragments.geometry.values))

    @cached_property
    def small_weights(self) -> SmallAreaWeights | None:
        """The small areas' pair weights (`small_area_weights`); None without small areas."""
        if self.small_areas is None or self._small_weights is not None:
            return self._small_weights
        return small_area_weights(self.small_areas, areas=self.areas, fragments=self.fragments,
                                  crs=self.crs, config=self.config, raster=self.raster,
                                  convex=self._overlay_convex)  # fmt: skip

    @cached_property
    def area_pairs(self) -> pd.DataFrame:
        """Weights that spread counts keyed by area over its own fragments."""
        return own_area_pairs(
            self.areas, self.fragments, raster=self.raster, convex=self._overlay_convex
        )

    def sources(self, keyed_by: str) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
        """The polygons counts keyed by `keyed_by` ("small_areas" or "areas") come from, and
        their pair weights."""
        weights = self.small_weights
        if keyed_by == "small_areas" and self.small_areas is not None and weights is not None:
            return self.small_areas, weights.pairs
        return self.areas, self.area_pairs

    def fragment_of(self, points: pd.DataFrame) -> np.ndarray:
        """The fragment of each point (`latitude, longitude, area_code`)."""
        return points_to_fragments(
            points["latitude"].to_numpy(),
            points["longitude"].to_numpy(),
            points["area_code"].to_numpy(),
            self.fragments,
            resolution=self.resolution,
        )

    def per_fragment(self, at: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Counts (or sums of `weights`) per fragment, from each item's fragment."""
        return np.bincount(at, weights=weights, minlength=self.n)


def allocate_keyed(
    ctx: GridContext,
    table: pd.DataFrame,
    *,
    keyed_by: str,
    keys: tuple[str, ...],
    values: tuple[str, ...],
) -> tuple[pd.DataFrame, pd.Series]:
    """Values keyed by area code (of small areas or areas) spread over fragments by their
    weights, kept apart by the `keys` columns: a table `fragment, *keys, *values`, and per value
    what fell outside every area."""
    sources, pairs = ctx.sources(keyed_by)
    position = pd.Series(np.arange(len(sources)), index=sources["area_code"].to_numpy())
    frame = pd.DataFrame({"source": table["area_code"].map(position).to_numpy()})
    for key in keys:
        frame[key] = table[key].to_numpy()
    for value in values:
        frame[value] = table[value].to_numpy(dtype=float)
    return allocate_to_fragments(pairs, frame)


def place_population(ctx: GridContext, population: Population) -> Placed:
    """Residents per origin, from small areas or areas, by their weights; with the split
    warning where surface shares moved residents across area lines."""
    table, keyed_by = population.table, population.keyed_by
    by_origin, left = allocate_keyed(
        ctx, table, keyed_by=keyed_by, keys=("origin",), values=("residents",)
    )
    warnings: tuple[str, ...] = ()
    weights = ctx.small_weights
    if ctx.config.grid.small_area_fit == "split" and keyed_by == "small_areas" and weights:
        per_source = (
            table.groupby("area_code")["residents"].sum()
            .reindex(weights.codes, fill_value=0.0)
            .to_numpy(dtype=float)
        )  # fmt: skip
        moved = split_share(weights.pairs, ctx.fragments, weights.home, per_source)
        if moved > SPLIT_WARNING_SHARE:
            warnings = (
                f"population: {moved:.1%} of residents were shared across area lines by "
                "surface, from small areas that area boundaries cut; if the small areas are "
                "built to nest in the areas (OAs in wards) and only the outlines differ, set "
                '[grid] small_area_fit = "centroid" (or "best_fit")',
            )
    residents = ctx.per_fragment(
        by_origin["fragment"].to_numpy(), by_origin["residents"].to_numpy()
    )
    return Placed(
        counts={"residents": residents},
        tables={"residents_by_origin": by_origin},
        unallocated={"residents": float(left["residents"])},
        warnings=warnings,
    )


def place_previous(ctx: GridContext, previous: Population) -> Placed:
    """An earlier census snapshot, allocated as the current one is."""
    by_origin, left = allocate_keyed(
        ctx,
        previous.table,
        keyed_by=previous.keyed_by,
        keys=("origin",),
        values=("residents",),
    )
    return Placed(
        tables={"previous_by_origin": by_origin},
        unallocated={"residents_previous": float(left["residents"])},
    )


def place_households(ctx: GridContext, small_areas: gpd.GeoDataFrame) -> Placed:
    """Small-area households by the small areas' weights (none when no household is given)."""
    weights = ctx.small_weights
    if weights is None or not small_areas["households"].notna().any():
        return Placed()
    values = pd.DataFrame(
        {
            "source": np.arange(len(small_areas)),
            "households": small_areas["households"].fillna(0).to_numpy(float),
        }
    )
    alloc, left = allocate_to_fragments(weights.pairs, values)
    return Placed(
        counts={"households": ctx.per_fragment(alloc["fragment"].to_numpy(),
                                               alloc["households"].to_numpy())},
        unallocated={"households": float(left["households"])},
    )  # fmt: skip


def place_schemes(ctx: GridContext, schemes: gpd.GeoDataFrame) -> Placed:
    """Watch-scheme households and members by surface share of each scheme (a point scheme
    covers a circle of `[schemes] point_radius_m`)."""
    geoms = np.asarray(schemes.to_crs(ctx.crs).geometry.values)
    is_point = np.isin(shapely.get_type_id(geoms), [0, 4])
    geoms = np.where(is_point, shapely.buffer(geoms, ctx.config.schemes.point_radius_m), geoms)
    pairs = overlay_weights(gpd.GeoSeries(geoms, crs=ctx.crs), ctx.fragments, convex=ctx.convex)
    values = pd.DataFrame(
        {
            "source": np.arange(len(geoms)),
            "watch_households": schemes["households"].to_numpy(float),
            "watch_scheme_members": schemes["members"].fillna(0).to_numpy(float),
        }
    )
    alloc, left = allocate_to_fragments(pairs, values)
    columns = ("watch_households", "watch_scheme_members")
    return Placed(
        counts={c: ctx.per_fragment(alloc["fragment"].to_numpy(), alloc[c].to_numpy())
                for c in columns},
        unallocated={c: float(left[c]) for c in columns},
    )  # fmt: skip


def place_signups(ctx: GridContext, signups: Signups) -> Placed:
    """Sign-ups that are not deleted, each in the fragment holding it: all, those of a known
    origin, those in a Watch role, and per origin."""
    table = signups.table
    live = table[table["status"] != "deleted"]
    at = ctx.fragment_of(live)
    known = live["origin"].notna().to_numpy()
    in_watch = live["watch_role"].isin(["member", "coordinator", "deputy"]).to_numpy()
    by_origin = (
        pd.DataFrame({"fragment": at[known], "origin": live["origin"].to_numpy()[known]})
        .groupby(["fragment", "origin"])
        .size()
        .rename("registered")
        .reset_index()
    )
    return Placed(
        counts={
            "registered": ctx.per_fragment(at).astype(np.int64),
            "registered_known": ctx.per_fragment(at[known]).astype(np.int64),
            "watch_members": ctx.per_fragment(at[in_watch]).astype(np.int64),
        },
        tables={"registered_by_origin": by_origin},
    )


def place_crimes(ctx: GridContext, crimes: pd.DataFrame) -> Placed:
    """Crimes (all but anti-social behaviour), serious acquisitive crimes, crimes of busy public
    places and anti-social behaviour, each in the fragment holding it."""
    at = ctx.fragment_of(crimes)
    is_asb = crimes["is_asb"].to_numpy()
    return Placed(
        counts={
            "crimes": ctx.per_fragment(at[~is_asb]).astype(np.int64),
            "sac_crimes": ctx.per_fragment(at[crimes["is_sac"].to_numpy()]).astype(np.int64),
            "public_crimes": ctx.per_fragment(at[crimes["is_public"].to_numpy()]).astype(np.int64),
            "asb": ctx.per_fragment(at[is_asb]).astype(np.int64),
        }
    )


def place_ratings(ctx: GridContext, ratings: pd.DataFrame) -> Placed:
    """Message ratings in the fragment holding them: how many, how many low (at or below
    `[scoring] low_rating`), and their mean."""
    at = ctx.fragment_of(ratings)
    count = ctx.per_fragment(at)
    value = ratings["rating"].to_numpy(dtype=float)
    total = ctx.per_fragment(at, value)
    low = value <= ctx.config.scoring.low_rating
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.where(count > 0, count, 1), np.nan)
    return Placed(
        counts={
            "ratings": count.astype(np.int64),
            "low_ratings": ctx.per_fragment(at[low]).astype(np.int64),
            "mean_rating": mean,
        }
    )


def place_segments(
    ctx: GridContext, segments: SegmentInput, postcodes: pd.DataFrame | None
) -> Placed:
    """Segment households: by the small areas' weights, or, keyed by postcode, to the fragment
    of the postcode's centroid."""
    table, keyed_by = segments.table, segments.keyed_by
    weights = ctx.small_weights
    if keyed_by == "small_areas" and ctx.small_areas is not None and weights is not None:
        by_segment, left = allocate_keyed(
            ctx,
            table.rename(columns={"key": "area_code"}),
            keyed_by="small_areas",
            keys=("segment",),
            values=("households",),
        )
        outside = float(left["households"])
    else:
        located = table.merge(
            postcodes if postcodes is not None else pd.DataFrame(columns=["key"]), on="key"
        )
        area_idx = points_to_areas(
            located["longitude"].to_numpy(), located["latitude"].to_numpy(), ctx.areas
        )
        inside = located[area_idx >= 0].assign(
            area_code=ctx.areas["area_code"].to_numpy()[area_idx[area_idx >= 0]]
        )
        by_segment = (
            inside.assign(fragment=ctx.fragment_of(inside))
            .groupby(["fragment", "segment"], as_index=False)[["households"]]
            .sum()
        )
        outside = float(table["households"].sum() - by_segment["households"].sum())
    return Placed(
        tables={"segments_by_fragment": by_segment},
        unallocated={"segment_households": outside},
    )


def place_deprivation(
    ctx: GridContext,
    deprivation: Deprivation,
    population: Population,
    outlines: gpd.GeoDataFrame | None,
) -> Placed:
    """A deprivation index by residents: per fragment, `deprivation_residents` (its residents
    where the index has a value), `deprivation_sum` (their values added up, as published) and
    `deprivation_need` (the same, signed so that more is more deprived). An area's or a cell's
    value is the residents-weighted mean, `deprivation_sum / deprivation_residents`.

    With the population keyed by small areas, each small area's residents carry its value (its
    own, or that of the outline of the index's geography holding a point on its surface, as ONS
    fits one geography to another) by the small areas' own weights: an area's value is then
    exactly the residents-weighted mean over its small areas. With the population keyed by
    areas, a fragment's residents take the values of the outlines over it in proportion to the
    surface each covers, as tobler interpolates an intensive variable.
    """
    if population.keyed_by == "small_areas" and ctx.small_areas is not None:
        covered, total, everyone = _deprivation_by_small_areas(ctx, deprivation, population,
                                                               outlines)  # fmt: skip
    else:
        zones = outlines if deprivation.keyed_by == "deprivation_areas" else ctx.small_areas
        assert zones is not None, "the reader keys deprivation by outlines it was given"
        covered, total, everyone = _deprivation_by_surface(ctx, deprivation, population, zones)
    missing = 1.0 - float(covered.sum()) / everyone if everyone else 0.0
    sign = 1.0 if deprivation.higher_is_more_deprived else -1.0
    warnings = (
        (f"deprivation: {missing:.1%} of residents live where the index ({deprivation.label}) "
         "has no value (small areas of another geography or vintage, or rows rejected); each "
         "area's value is the mean over the rest",)
        if missing > DEPRIVATION_GAP_SHARE
        else ()
    )  # fmt: skip
    return Placed(
        counts={"deprivation_residents": covered, "deprivation_sum": total,
                "deprivation_need": sign * total},
        warnings=warnings,
    )  # fmt: skip


def _deprivation_by_small_areas(
    ctx: GridContext,
    deprivation: Deprivation,
    population: Population,
    outlines: gpd.GeoDataFrame | None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Residents with a value and their values' sum per fragment, and all residents on the
    grid, carried from each small area by its weights."""
    small = ctx.small_areas
    assert small is not None, "called with small areas only"
    values = deprivation.table.set_index("area_code")["value"]
    if deprivation.keyed_by == "small_areas":
        value = values.reindex(small["area_code"]).to_numpy(dtype=float)
    else:
        assert outlines is not None, "the reader keys deprivation by outlines it was given"
        points = small.geometry.representative_point()
        inside = points_to_areas(points.x.to_numpy(), points.y.to_numpy(), outlines)
        value = np.full(len(small), np.nan)
        value[inside >= 0] = values.reindex(
            outlines["area_code"].to_numpy()[inside[inside >= 0]]
        ).to_numpy(dtype=float)
    per_area = population.table.groupby("area_code")["residents"].sum()
    of_small = pd.Series(value, index=small["area_code"].to_numpy()).reindex(per_area.index)
    has = of_small.notna().to_numpy()
    table = pd.DataFrame({
        "area_code": per_area.index,
        "residents": per_area.to_numpy(dtype=float),
        "deprivation_residents": np.where(has, per_area.to_numpy(dtype=float), 0.0),
        "deprivation_sum": np.where(has, per_area.to_numpy() * of_small.to_numpy(), 0.0),
    })  # fmt: skip
    alloc, _ = allocate_keyed(ctx, table, keyed_by="small_areas", keys=(),
                              values=("residents", "deprivation_residents", "deprivation_sum"))  # fmt: skip
    at = alloc["fragment"].to_numpy()
    return (
        ctx.per_fragment(at, alloc["deprivation_residents"].to_numpy()),
        ctx.per_fragment(at, alloc["deprivation_sum"].to_numpy()),
        float(alloc["residents"].sum()),
    )


def _deprivation_by_surface(
    ctx: GridContext, deprivation: Deprivation, population: Population, zones: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray, float]:
    """Residents with a value and their values' sum per fragment, and all residents on the
    grid: each fragment's residents valued by the surface shares of the outlines over it."""
    values = deprivation.table.set_index("area_code")["value"]
    zones = zones[zones["area_code"].isin(values.index)]
    geoms = zones.to_crs(ctx.crs).geometry
    pairs = overlay_weights(geoms, ctx.fragments, convex=ctx.convex)
    source, at = pairs["source"].to_numpy(), pairs["fragment"].to_numpy()
    # the share of each fragment's surface each outline covers
    piece = pairs["weight"].to_numpy() * shapely.area(np.asarray(geoms.values))[source]
    share = piece / ctx.fragments["area_m2"].to_numpy(dtype=float)[at]
    by_origin, _ = allocate_keyed(ctx, population.table, keyed_by=population.keyed_by,
                                  keys=("origin",), values=("residents",))  # fmt: skip
    residents = ctx.per_fragment(
        by_origin["fragment"].to_numpy(), by_origin["residents"].to_numpy()
    )
    mean = ctx.per_fragment(at, share * values.reindex(zones["area_code"]).to_numpy()[source])
    return (
        residents * np.minimum(1.0, ctx.per_fragment(at, share)),
        residents * mean,
        float(residents.sum()),
    )
