"""Segment inputs: a MOSAIC-style segment per small area or postcode with its households, segment
descriptions, and the numeric census tables the open segmentation clusters on."""

from __future__ import annotations

import re
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from targeting.config import CensusTable, Config
from targeting.errors import InputError, Problem
from targeting.ingest.boundaries import CENSUS_CODES
from targeting.ingest.common import (
    Column,
    FileColumns,
    InputSummary,
    all_rejected,
    first_reason,
    is_in,
    split_rejects,
)
from targeting.ingest.points import normalise_postcode
from targeting.io import parse_numbers, read_table, read_vector
from targeting.segments import shares

# a column named like a total is the sum of the others, not a category of its own
TOTAL_PATTERN = r"(?i)^(total|all\b|all_)"


SEGMENTS = FileColumns(
    "segments",
    {
        "area_code": Column(CENSUS_CODES),
        "postcode": Column(("pcds", "pcd", "post_code")),
        "segment": Column(("mosaic", "mosaic_type", "segment_code", "type", "class")),
        "households": Column(("hh", "households_total", "total_households")),
    },
)
SEGMENT_DESCRIPTIONS = FileColumns(
    "segment_descriptions",
    {
        "segment": Column(("code", "segment_code", "type")),
        "group": Column(("supergroup", "group_name", "group_code")),
        "label": Column(("name", "segment_name", "title")),
        "description": Column(("desc", "text", "notes")),
    },
)


@dataclass(frozen=True)
class SegmentInput:
    """Households per (key, segment); keyed by small-area code or by postcode (normalised)."""

    table: pd.DataFrame  # key, segment, households
    keyed_by: str  # "small_areas" or "postcodes"


def read_segment_descriptions(config: Config) -> tuple[pd.DataFrame | None, InputSummary | None]:
    """`segment, group, label, description`; a segment listed twice keeps its first row."""
    path = config.inputs.segment_descriptions
    if path is None:
        return None, None
    frame = read_table(path, input_name="segment_descriptions")
    cols = SEGMENT_DESCRIPTIONS.find(frame, config)
    SEGMENT_DESCRIPTIONS.require(cols, ["segment"], path, config)
    reasons = np.full(len(frame), "", dtype=object)
    segment = frame[cols["segment"]].str.strip()
    first_reason(reasons, (segment == "").to_numpy(), "missing segment")
    first_reason(reasons, segment.duplicated().to_numpy(), "duplicate segment")
    ok, rejects = split_rejects(frame, reasons)
    table = pd.DataFrame({"segment": segment[ok].to_numpy()})
    for name in ("group", "label", "description"):
        table[name] = frame[cols[name]].to_numpy()[ok] if cols[name] else ""
    return table, InputSummary("segment_descriptions", (path,), len(frame), int(ok.sum()), rejects)


def read_segments(
    config: Config,
    *,
    small_area_codes: set[str] | None,
    postcodes: pd.DataFrame | None,
    descriptions: pd.DataFrame | None,
) -> tuple[SegmentInput | None, InputSummary | None]:
    """The segment input, keyed by small area (`area_code`) or, failing that, by `postcode`.

    Rows with no segment, a segment the descriptions do not list, an unknown area code or
    postcode, or households that are not a number of at least 0 are rejected with their reason.
    """
    path = config.inputs.segments
    if path is None:
        return None, None
    frame = read_table(path, input_name="segments")
    cols = SEGMENTS.find(frame, config)
    SEGMENTS.require(cols, ["segment", "households"], path, config)
    if cols["area_code"]:
        keyed_by, key = "small_areas", frame[cols["area_code"]].str.strip()
        if small_area_codes is None:
            raise InputError("segments", path, [Problem(
                str(path), "is keyed by area_code but the run has no small_areas",
                "add inputs.small_areas (the geography the segments are given for)")])  # fmt: skip
        known = is_in(key, small_area_codes)
        unknown_reason = "unknown area_code"
    elif cols["postcode"]:
        keyed_by, key = "postcodes", normalise_postcode(frame[cols["postcode"]])
        if postcodes is None:
            raise InputError("segments", path, [Problem(
                str(path), "is keyed by postcode but the run has no postcodes",
                "add inputs.postcodes (postcode centroids) so the segments can be placed")])  # fmt: skip
        known = is_in(key, set(postcodes["key"]))
        unknown_reason = "unknown postcode"
    else:
        raise InputError("segments", path, [Problem(
            str(path), "has neither an area_code nor a postcode column",
            "add area_code (small-area codes) or postcode, or map one in [columns.segments]")])  # fmt: skip
    reasons = np.full(len(frame), "", dtype=object)
    segment = frame[cols["segment"]].str.strip()
    households = parse_numbers(frame[cols["households"]])
    first_reason(
        reasons,
        (key == "").to_numpy(),
        f"missing {'area_code' if keyed_by == 'small_areas' else 'postcode'}",
    )
    first_reason(reasons, (segment == "").to_numpy(), "missing segment")
    if descriptions is not None:
        listed = segment.isin(set(descriptions["segment"])).to_numpy()
        first_reason(reasons, ~listed, "unknown segment (not in segment_descriptions)")
    first_reason(reasons, ~known, unknown_reason)
    first_reason(reasons, ~(households >= 0), "households not a number of at least 0")
    ok, rejects = split_rejects(frame, reasons)
    if not ok.any():
        raise all_rejected("segments", path, rejects, "check the codes, segments and households")
    table = (
        pd.DataFrame(
            {
                "key": key[ok].to_numpy(),
                "segment": segment[ok].to_numpy(),
                "households": households[ok],
            }
        )
        .groupby(["key", "segment"], as_index=False, sort=True)[["households"]]
        .sum()
    )
    details = {"keyed_by": keyed_by, "segments": sorted(table["segment"].unique().tolist())}
    summary = InputSummary("segments", (path,), len(frame), int(ok.sum()), rejects, (), details)
    return SegmentInput(table, keyed_by), summary


def _key_column(frame: pd.DataFrame, codes: set[str]) -> str | None:
    """The column whose values match the most of `codes` (at least one)."""
    best, hits = None, 0
    for col in frame.columns:
        values = frame[col]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        n = int(values.astype(str).str.strip().isin(codes).sum())
        if n > hits:
            best, hits = col, n
    return best


def census_table_to_shares(frame: pd.DataFrame, *, key: str) -> pd.DataFrame:
    """A census table (wide: one numeric column per category; or long: a category column and one
    count) as each key's shares of its categories. Total columns and text columns are left out."""
    numeric = {c: parse_numbers(frame[c]) for c in frame.columns if c != key}
    counts = [c for c, v in numeric.items() if np.isfinite(v).mean() > 0.95]
    text = [c for c in frame.columns if c != key and c not in counts]
    # in a long table the category varies within a key; names and other labels do not
    varying = [c for c in text if frame.groupby(key)[c].nunique().max() > 1]
    if len(counts) == 1 and varying:
        category = min(varying, key=lambda c: frame[c].nunique())
        wide = pd.DataFrame(
            {
                "key": frame[key].str.strip(),
                "category": frame[category],
                "count": numeric[counts[0]],
            }
        ).pivot_table(index="key", columns="category", values="count", aggfunc="sum")  # fmt: skip
    else:
        parts = [c for c in counts if not re.match(TOTAL_PATTERN, c)]
        wide = pd.DataFrame({c: numeric[c] for c in parts}).set_axis(frame[key].str.strip())
        wide = wide.groupby(level=0).sum()
    wide.columns = [str(c) for c in wide.columns]
    return shares(wide.fillna(0.0))


def read_census_variables(
    config: Config, *, small_areas: gpd.GeoDataFrame, population: pd.DataFrame
) -> pd.DataFrame:
    """Census shares per small area for the open segmentation: origin shares from the population,
    and the shares of every `[segments] census` table, which small areas take from the polygon
    of `areas` holding their point on surface when a table is keyed by another geography."""
    codes = small_areas["area_code"].astype(str)
    origin = population.pivot_table(
        index="area_code", columns="origin", values="residents", aggfunc="sum"
    )
    parts = [shares(origin.fillna(0.0)).reindex(codes)]
    for entry in config.segments.census:
        parts.append(_census_part(entry, codes=codes, small_areas=small_areas))
    variables = pd.concat(parts, axis=1)
    variables.index = codes.to_numpy()
    return variables.loc[:, ~variables.columns.duplicated()]


def _census_part(
    entry: CensusTable, *, codes: pd.Series, small_areas: gpd.GeoDataFrame
) -> pd.DataFrame:
    frame = read_table(entry.table, input_name="segments.census")
    if entry.areas is None:
        key = _key_column(frame, set(codes))
        if key is None:
            raise InputError("segments.census", entry.table, [Problem(
                str(entry.table), "has no column of the small areas' codes",
                'key it by the small areas, or give its geography as areas = "lsoa.geojson"')])  # fmt: skip
        return census_table_to_shares(frame, key=key).reindex(codes.to_numpy())
    polygons, _ = read_vector(entry.areas, input_name="segments.census areas")
    key, poly_key, hits = None, None, 0
    for col in polygons.columns.drop("geometry"):
        candidate = _key_column(frame, set(polygons[col].astype(str)))
        if candidate is not None:
            n = int(frame[candidate].str.strip().isin(set(polygons[col].astype(str))).sum())
            if n > hits:
                key, poly_key, hits = candidate, col, n
    if key is None or poly_key is None:
        raise InputError("segments.census", entry.table, [Problem(
            str(entry.table), f"shares no codes with {entry.areas}",
            "give the boundaries of the geography the table is keyed by")])  # fmt: skip
    values = census_table_to_shares(frame, key=key)
    points = shapely.point_on_surface(small_areas.to_crs(polygons.crs).geometry.values)
    tree = shapely.STRtree(polygons.geometry.values)
    p_idx, g_idx = tree.query(points, predicate="within")
    holder = pd.Series(polygons[poly_key].astype(str).to_numpy()[g_idx], index=p_idx)
    holder = holder[~holder.index.duplicated()].reindex(np.arange(len(codes)))
    return values.reindex(holder.to_numpy()).set_axis(codes.to_numpy())
