"""Every input's counts on the fragment grid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from targeting.grid.cells import (
    areas_to_fragments,
    equal_area_crs,
    points_to_areas,
    points_to_fragments,
)
from targeting.grid.overlay import (
    allocate_to_fragments,
    best_fit_weights,
    centroid_areas,
    home_areas,
    overlay_weights,
    own_area_pairs,
    raster_to_points,
    split_share,
)

# above this share of residents moved across area lines by splitting, suggest best fit
SPLIT_WARNING_SHARE = 0.01


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
    # every fragment carries its id (its position in `fragments`, which the overlay pairs and
    # point lookups use); every join below is on this key, never on row position, since the
    # table is re-sorted before it is returned
    cells = pd.DataFrame(fragments[["cell", "area_code", "area_m2"]]).reset_index(drop=True)
    cells.insert(0, "fragment", np.arange(n))
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
            fit = centroid_areas(small_areas, areas, small_pairs, fragments, largest=home)
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
            before.merge(cells[["fragment", "cell", "area_code"]], on="fragment")[
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
        .merge(cells[["fragment", "cell", "area_code"]], on="fragment")
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
            by_segment.merge(cells[["fragment", "cell", "area_code"]], on="fragment")[
                ["cell", "area_code", "segment", "households"]
            ]
            .sort_values(["cell", "area_code", "segment"], kind="stable")
            .reset_index(drop=True)
        )
    return Grid(cells, cell_origins, unallocated, crs.srs, tuple(warnings), previous, cell_segments)
