"""Polygon inputs: the areas to rank, census small areas, Watch schemes, and the raster check."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from targeting.config import Config
from targeting.errors import InputError, Problem
from targeting.grid import equal_area_crs
from targeting.ingest.common import (
    Column,
    FileColumns,
    InputSummary,
    all_rejected,
    duplicated_among_valid,
    first_reason,
    polygonal,
    vector_rejects,
)
from targeting.io import (
    parse_numbers,
    polygonal_part,
    read_vector,
)

AREAS = FileColumns(
    "areas",
    {
        "area_code": Column(("code", "ward_code", "geography code", "geo_code"),
                            (r"WD\d\dCD", r"(LAD|LSOA|MSOA|OA|CTY|PCON)\d\dCD")),
        "area_name": Column(("name", "ward_name", "geography", "geo_name"),
                            (r"WD\d\dNM", r"(LAD|LSOA|MSOA|OA|CTY|PCON)\d\dNM")),
        "parent_code": Column(("LAD_CD", "LADCD", "npu_code", "parent"), (r"LAD\d\dCD",)),
        "parent_name": Column(("LAD_NM", "LADNM", "npu_name", "npu"), (r"LAD\d\dNM",)),
    },
)  # fmt: skip
CENSUS_CODES = ("OA11CD", "OA21CD", "LSOA11CD", "LSOA21CD", "MSOA11CD", "MSOA21CD", "code")
SMALL_AREAS = FileColumns(
    "small_areas",
    {
        "area_code": Column(CENSUS_CODES),
        "households": Column(("total_households", "households_total")),
    },
)
DEPRIVATION_AREAS = FileColumns("deprivation_areas", {"area_code": Column(CENSUS_CODES)})
SCHEMES = FileColumns(
    "schemes",
    {
        "scheme_id": Column(("id", "scheme")),
        "scheme_name": Column(("name",)),
        "scheme_type": Column(("type",)),
        "households": Column(("households_covered", "homes")),
        "members": Column(("member_count",)),
    },
)


def read_areas(config: Config) -> tuple[gpd.GeoDataFrame, InputSummary]:
    """The areas to rank: `area_code, area_name, parent_code, parent_name, geometry` in WGS84."""
    path = config.inputs.areas
    frame, repaired = read_vector(path, input_name="areas")
    cols = AREAS.find(frame, config)
    AREAS.require(cols, ["area_code"], path, config)
    code = frame[cols["area_code"]].astype(str).str.strip()
    reasons = np.full(len(frame), "", dtype=object)
    geoms = np.asarray(frame.geometry.values)
    first_reason(
        reasons,
        code.eq("").to_numpy() | frame[cols["area_code"]].isna().to_numpy(),
        "missing area_code",
    )
    # an area with no outline would silently drop out of the ranking and send its sign-ups to
    # the rejects as "outside areas": the boundaries are broken, so the run stops
    unusable = (reasons == "") & ~polygonal(geoms)
    if unusable.any():
        raise InputError("areas", path, [Problem(
            f"{path} area {code.iloc[i]} (feature {i + 1})", _geometry_problem(geoms[i]),
            "export the boundaries again with every area's polygon") for i in np.flatnonzero(unusable)])  # fmt: skip
    geoms, merged = _one_outline_per_code(
        code, geoms, reasons, input_name="areas", path=path, merge=config.areas.merge_duplicates
    )
    ok = reasons == ""
    rejects = vector_rejects(frame, reasons)
    if not ok.any():
        raise all_rejected("areas", path, rejects, "check the area codes and geometry")
    out = gpd.GeoDataFrame(
        {
            "area_code": code[ok].to_numpy(),
            "area_name": (
                frame.loc[ok, cols["area_name"]].astype(str).to_numpy()
                if cols["area_name"]
                else code[ok].to_numpy()
            ),
            "parent_code": frame.loc[ok, cols["parent_code"]].astype(str).to_numpy()
            if cols["parent_code"]
            else None,
            "parent_name": frame.loc[ok, cols["parent_name"]].astype(str).to_numpy()
            if cols["parent_name"]
            else None,
        },
        geometry=geoms[ok],
        crs=frame.crs,
    )
    warnings = []
    if repaired:
        warnings.append(f"{repaired} invalid area polygon(s) repaired with make_valid")
    if merged:
        warnings.append(f"{merged} area code(s) with several outlines merged into one")
    if not cols["area_name"]:
        warnings.append("areas have no name column; area codes are used as names")
    out, slivers = resolve_overlaps(out, path=path)
    if slivers:
        warnings.append(
            f"{slivers} small overlap(s) between areas (each under {OVERLAP_STOP_M2:,.0f} m2 and "
            f"{OVERLAP_STOP_SHARE:.0%} of the smaller area) given to the area with the first code"
        )
    summary = InputSummary("areas", (path,), len(frame), int(ok.sum()), rejects, tuple(warnings))
    return out, summary


def _geometry_problem(geom: shapely.Geometry | None) -> str:
    if geom is None:
        return "has no geometry"
    if shapely.is_empty(geom):
        return "has an empty geometry"
    return f"is a {geom.geom_type}, not a polygon"


def _one_outline_per_code(
    code: pd.Series,
    geoms: np.ndarray,
    reasons: np.ndarray,
    *,
    input_name: str,
    path: Path,
    merge: bool,
) -> tuple[np.ndarray, int]:
    """One outline per code among the rows still valid: exact copies of an outline are rejected
    as duplicates (in `reasons`); a code with different outlines stops the run, naming it, or,
    with `merge`, its outlines are merged into its first row (the others rejected as merged).
    Returns the outlines and how many codes were merged."""
    valid = reasons == ""
    repeated = valid & code.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return geoms, 0
    shape = pd.Series(
        shapely.to_wkb(shapely.normalize(geoms[repeated])), index=np.flatnonzero(repeated)
    )
    rows = pd.DataFrame(
        {"code": code.to_numpy()[repeated], "shape": shape.to_numpy()}, index=shape.index
    )
    outlines = rows.groupby("code")["shape"].nunique()
    different = outlines[outlines > 1].index
    copies = rows[~rows["code"].isin(different)]
    first_reason(reasons, np.isin(np.arange(len(reasons)), copies.index[copies.duplicated()]),
                 "duplicate area_code (same outline)")  # fmt: skip
    if len(different) == 0:
        return geoms, 0
    clash = rows[rows["code"].isin(different)]
    if not merge:
        listed = "; ".join(
            f"{c} (features {', '.join(str(i + 1) for i in group.index)})"
            for c, group in clash.groupby("code")
        )
        raise InputError(input_name, path, [Problem(
            str(path), f"{len(different)} code(s) have different outlines: {listed}",
            "give each its own code, or set [areas] merge_duplicates = true to merge the "
            "outlines of a code into one")])  # fmt: skip
    out = geoms.copy()
    for _, group in clash.groupby("code"):  # one per repeated code: a handful
        first, *others = group.index
        out[first] = shapely.union_all(geoms[group.index])
        reasons[others] = "merged into the first row of its area_code"
    return out, len(different)


# overlaps this large are an error in the boundaries; smaller ones are digitising slivers
OVERLAP_STOP_M2 = 1_000.0
OVERLAP_STOP_SHARE = 0.01


def resolve_overlaps(areas: gpd.GeoDataFrame, *, path: Path) -> tuple[gpd.GeoDataFrame, int]:
    """Areas with no overlaps: a pair overlapping by more than 1,000 m2 or 1% of the smaller area
    stops the run, listing every such pair; a smaller sliver goes to the area with the first
    code (taken out of the other). Returns the areas and how many slivers were given."""
    projected = areas.to_crs(equal_area_crs(areas)).geometry.to_numpy()
    left, right = shapely.STRtree(projected).query(projected, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    if len(left) == 0:
        return areas, 0
    shared = shapely.area(shapely.intersection(projected[left], projected[right]))
    smaller = np.minimum(shapely.area(projected[left]), shapely.area(projected[right]))
    overlapping = shared > 1e-6
    big = overlapping & ((shared > OVERLAP_STOP_M2) | (shared > OVERLAP_STOP_SHARE * smaller))
    codes = areas["area_code"].to_numpy()
    if big.any():
        listed = "; ".join(
            f"{codes[a]} and {codes[b]} ({m2:,.0f} m2)"
            for a, b, m2 in zip(left[big], right[big], shared[big], strict=True)
        )
        raise InputError("areas", path, [Problem(
            str(path), f"areas overlap: {listed}",
            "fix the boundaries so that each place is in one area (overlaps up to 1,000 m2 and "
            "1% of the smaller area are taken as slivers)")])  # fmt: skip
    small = overlapping & ~big
    if not small.any():
        return areas, 0
    first_is_left = codes[left] < codes[right]
    loser = np.where(first_is_left, right, left)[small]
    winner = np.where(first_is_left, left, right)[small]
    geoms = areas.geometry.to_numpy().copy()
    for lose, win in zip(loser, winner, strict=True):  # one per sliver: a handful
        geoms[lose] = polygonal_part(shapely.difference(geoms[lose], geoms[win]))
    return areas.set_geometry(geoms, crs=areas.crs), int(small.sum())


def read_small_areas(config: Config) -> tuple[gpd.GeoDataFrame | None, InputSummary | None]:
    """Census small areas: `area_code, households, geometry` in WGS84 (None if not configured)."""
    return read_outlines(config, columns=SMALL_AREAS)


def read_outlines(
    config: Config, *, columns: FileColumns
) -> tuple[gpd.GeoDataFrame | None, InputSummary | None]:
    """A census geography's outlines, for the input `columns.input_name` (small areas, or the
    geography a deprivation index is keyed by): `area_code, households, geometry` in WGS84,
    households null where the file has none (None if not configured)."""
    name = columns.input_name
    path = config.inputs[name]
    if path is None:
        return None, None
    frame, repaired = read_vector(path, input_name=name)
    cols = columns.find(frame, config)
    columns.require(cols, ["area_code"], path, config)
    code = frame[cols["area_code"]].astype(str).str.strip()
    households = (
        parse_numbers(frame[cols["households"]].astype(str))
        if cols.get("households")
        else np.full(len(frame), np.nan)
    )
    reasons = np.full(len(frame), "", dtype=object)
    first_reason(
        reasons,
        code.eq("").to_numpy() | frame[cols["area_code"]].isna().to_numpy(),
        "missing area_code",
    )
    geoms = np.asarray(frame.geometry.values)
    first_reason(reasons, ~polygonal(geoms), "missing or non-polygon geometry")
    first_reason(reasons, households < 0, "negative households")
    geoms, merged = _one_outline_per_code(
        code, geoms, reasons, input_name=name, path=path, merge=config.areas.merge_duplicates
    )
    ok = reasons == ""
    rejects = vector_rejects(frame, reasons)
    if not ok.any():
        raise all_rejected(name, path, rejects, "check the codes and geometry")
    out = gpd.GeoDataFrame(
        {"area_code": code[ok].to_numpy(), "households": households[ok]},
        geometry=geoms[ok],
        crs=frame.crs,
    )
    noun = name.replace("_areas", "-area")  # small-area, deprivation-area
    warnings = (
        [f"{repaired} invalid {noun} polygon(s) repaired with make_valid"] if repaired else []
    )
    if merged:
        warnings.append(f"{merged} {noun} code(s) with several outlines merged into one")
    return out, InputSummary(name, (path,), len(frame), int(ok.sum()), rejects, tuple(warnings))


def read_schemes(
    config: Config, *, areas: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame | None, InputSummary | None]:
    """Watch schemes: `scheme_id, scheme_name, scheme_type, households, members, geometry` (points kept)."""
    path = config.inputs.schemes
    if path is None:
        return None, None
    frame, repaired = read_vector(path, input_name="schemes")
    cols = SCHEMES.find(frame, config)
    SCHEMES.require(cols, ["scheme_id", "households"], path, config)
    sid = frame[cols["scheme_id"]].astype(str).str.strip()
    households = parse_numbers(frame[cols["households"]].astype(str))
    members = (
        parse_numbers(frame[cols["members"]].astype(str))
        if cols["members"]
        else np.full(len(frame), np.nan)
    )
    geoms = np.asarray(frame.geometry.values)
    types = shapely.get_type_id(geoms)
    reasons = np.full(len(frame), "", dtype=object)
    first_reason(
        reasons,
        sid.eq("").to_numpy() | frame[cols["scheme_id"]].isna().to_numpy(),
        "missing scheme_id",
    )
    first_reason(
        reasons, np.isnan(households) | (households < 0), "households not a non-negative number"
    )
    first_reason(
        reasons,
        shapely.is_missing(geoms) | shapely.is_empty(geoms) | ~np.isin(types, [0, 3, 4, 6]),
        "missing or unsupported geometry",
    )
    candidates = reasons == ""
    # a point scheme covers a circle, so it counts as inside when its circle reaches an area
    crs = equal_area_crs(areas)
    shapes = gpd.GeoSeries(geoms[candidates], crs=frame.crs).to_crs(crs).to_numpy()
    is_point = np.isin(shapely.get_type_id(shapes), [0, 4])
    shapes[is_point] = shapely.buffer(shapes[is_point], config.schemes.point_radius_m)
    tree = shapely.STRtree(areas.to_crs(crs).geometry.values)
    inside = np.zeros(len(frame), bool)
    hit, _ = tree.query(shapes, predicate="intersects")
    inside[np.flatnonzero(candidates)[np.unique(hit)]] = True
    first_reason(reasons, ~inside, "outside areas")
    first_reason(reasons, duplicated_among_valid(sid, reasons), "duplicate scheme_id")
    ok = reasons == ""
    rejects = vector_rejects(frame, reasons)
    out = gpd.GeoDataFrame(
        {
            "scheme_id": sid[ok].to_numpy(),
            "scheme_name": frame.loc[ok, cols["scheme_name"]].astype(str).to_numpy()
            if cols["scheme_name"]
            else sid[ok].to_numpy(),
            "scheme_type": frame.loc[ok, cols["scheme_type"]].astype(str).str.lower().to_numpy()
            if cols["scheme_type"]
            else "neighbourhood",
            "households": households[ok],
            "members": members[ok],
        },
        geometry=geoms[ok],
        crs=frame.crs,
    )
    warnings = (
        [f"{repaired} invalid scheme polygon(s) repaired with make_valid"] if repaired else []
    )
    return out, InputSummary(
        "schemes", (path,), len(frame), int(ok.sum()), rejects, tuple(warnings)
    )


def check_raster(config: Config) -> InputSummary | None:
    """Open the dasymetric raster once, so a bad file stops the run before any work."""
    path = config.inputs.population_raster
    if path is None:
        return None
    import rasterio

    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(
            "population_raster",
            path,
            [Problem(str(path), "missing or empty", "check inputs.population_raster")],
        )
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(
                    "population_raster",
                    path,
                    [Problem(str(path), "declares no CRS", "save the GeoTIFF with its CRS")],
                )
            rows = src.width * src.height
    except rasterio.errors.RasterioError as exc:
        raise InputError(
            "population_raster",
            path,
            [Problem(str(path), f"cannot be read ({exc})", "save it as a GeoTIFF")],
        ) from exc
    return InputSummary("population_raster", (path,), rows, rows, pd.DataFrame(columns=["reason"]))
