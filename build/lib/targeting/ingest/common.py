"""Shared pieces of ingest: recognised column names, the per-input summary, reject bookkeeping,
and parsing of dates and coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from targeting.config import Config
from targeting.errors import InputError, Problem
from targeting.io import (
    find_column,
    missing_column_problem,
    parse_numbers,
    sha256_file,
)

STATUSES = ("active", "comms_issue", "incommunicado", "deleted")
WATCH_ROLES = ("none", "member", "coordinator", "deputy")
ASB = "Anti-social behaviour"

ALIASES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "areas": {
        "area_code": ("code", "ward_code", "geography code", "geo_code"),
        "area_name": ("name", "ward_name", "geography", "geo_name"),
        "parent_code": ("LAD_CD", "LADCD", "npu_code", "parent"),
        "parent_name": ("LAD_NM", "LADNM", "npu_name", "npu"),
    },
    "small_areas": {
        "area_code": ("OA11CD", "OA21CD", "LSOA11CD", "LSOA21CD", "MSOA11CD", "MSOA21CD", "code"),
        "households": ("total_households", "households_total"),
    },
    "population": {
        "area_code": (
            "OA11CD", "OA21CD", "OA", "LSOA11CD", "LSOA21CD", "lsoa21_code", "lsoa11_code", "LSOA",
            "MSOA11CD", "MSOA21CD", "MSOA", "geography code", "geo_code", "mnemonic", "code",
        ),
        "origin": ("ethnicity", "ethnic_group", "ethnic group", "group"),
        "residents": ("usual_residents", "count", "observation", "value", "persons"),
        "age_band": ("age_group", "age"),
        "total": (
            "Persons", "total_usual_residents", "All usual residents", "Total: All usual residents",
            "All persons", "all_residents", "Total",
        ),
    },
    "segments": {
        "area_code": ("OA11CD", "OA21CD", "LSOA11CD", "LSOA21CD", "MSOA11CD", "MSOA21CD", "code"),
        "postcode": ("pcds", "pcd", "post_code"),
        "segment": ("mosaic", "mosaic_type", "segment_code", "type", "class"),
        "households": ("hh", "households_total", "total_households"),
    },
    "segment_descriptions": {
        "segment": ("code", "segment_code", "type"),
        "group": ("supergroup", "group_name", "group_code"),
        "label": ("name", "segment_name", "title"),
        "description": ("desc", "text", "notes"),
    },
    "visited": {
        "cell": ("h3", "h3_cell", "hotspot_cell"),
        "visited_on": ("visited", "date", "visit_date", "visited_at"),
    },
    "signups": {
        "user_id": ("userid", "id", "user"),
        "joined": ("joined_at", "registered_at", "created", "created_at", "date_joined"),
        "latitude": ("lat",),
        "longitude": ("lon", "lng", "long"),
        "easting": ("x", "east"),
        "northing": ("y", "north"),
        "postcode": ("pcds", "post_code", "pcd"),
        "origin": ("origins", "ethnicity"),
        "status": ("user_status",),
        "watch_role": ("role", "nhw_role"),
    },
    "crimes": {
        "crime_id": ("Crime ID",),
        "month": ("Month",),
        "longitude": ("Longitude",),
        "latitude": ("Latitude",),
        "crime_type": ("Crime type",),
    },
    "ratings": {
        "rated_at": ("date", "rated", "timestamp"),
        "rating": ("score", "stars"),
        "user_id": ("userid", "user"),
        "latitude": ("lat",),
        "longitude": ("lon", "lng", "long"),
    },
    "schemes": {
        "scheme_id": ("id", "scheme"),
        "scheme_name": ("name",),
        "scheme_type": ("type",),
        "households": ("households_covered", "homes"),
        "members": ("member_count",),
    },
    "postcodes": {
        "postcode": ("pcds", "pcd", "pcd2", "postcode"),
        "latitude": ("lat",),
        "longitude": ("long", "lon", "lng"),
    },
}  # fmt: skip
PATTERNS = {
    ("areas", "area_code"): (r"WD\d\dCD", r"(LAD|LSOA|MSOA|OA|CTY|PCON)\d\dCD"),
    ("areas", "area_name"): (r"WD\d\dNM", r"(LAD|LSOA|MSOA|OA|CTY|PCON)\d\dNM"),
    ("areas", "parent_code"): (r"LAD\d\dCD",),
    ("areas", "parent_name"): (r"LAD\d\dNM",),
    # Nomis bulk downloads: "Ethnic Group: All categories: Ethnic group; measures: Value"
    ("population", "total"): (r".*\ball (usual residents|persons|categories)\b.*",),
}


@dataclass(frozen=True)
class InputSummary:
    """What happened to one input: files, rows read/used/rejected, rejects and warnings."""

    name: str
    files: tuple[Path, ...]
    rows_read: int
    rows_used: int
    rejects: pd.DataFrame
    warnings: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)

    def reasons(self) -> dict[str, int]:
        if self.rejects.empty:
            return {}
        counts = self.rejects["reason"].value_counts()
        return {str(k): int(v) for k, v in sorted(counts.items())}

    def to_manifest(self) -> dict[str, Any]:
        return {
            "files": {str(p): sha256_file(p) for p in self.files},
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected,
            "reject_reasons": self.reasons(),
            "warnings": list(self.warnings),
            **{k: v for k, v in self.details.items()},
        }


def columns_of(frame: pd.DataFrame, input_name: str, config: Config) -> dict[str, str | None]:
    mapping = config.columns_for(input_name)
    return {
        canon: find_column(
            frame.columns,
            canon,
            mapping=mapping,
            aliases=aliases,
            patterns=PATTERNS.get((input_name, canon), ()),
        )
        for canon, aliases in ALIASES[input_name].items()
    }


def require_columns(
    cols: Mapping[str, str | None],
    required: Sequence[str],
    path: Path,
    input_name: str,
    mapping: Mapping[str, object] | None = None,
) -> None:
    def expected(c: str) -> str:
        mapped = (mapping or {}).get(c)
        if isinstance(mapped, str):
            return f"'{mapped}', as mapped in [columns.{input_name}]"
        return " or ".join((c, *ALIASES[input_name][c][:3]))

    problems = [
        missing_column_problem(path, c, input_name, expected(c))
        for c in required
        if cols.get(c) is None
    ]
    if problems:
        raise InputError(input_name, path, problems)


def first_reason(reasons: np.ndarray, mask: np.ndarray, reason: str | np.ndarray) -> None:
    """Record `reason` for rows in `mask` that have no earlier reason (first reason wins)."""
    target = mask & (reasons == "")
    reasons[target] = reason if isinstance(reason, str) else reason[target]


def duplicated_among_valid(values: pd.Series | pd.DataFrame, reasons: np.ndarray) -> np.ndarray:
    """Later copies of a value among rows not yet rejected.

    A copy whose first occurrence was rejected for another reason is not a duplicate: it is the
    only usable row with that value.
    """
    valid = reasons == ""
    out = np.zeros(len(reasons), dtype=bool)
    out[valid] = values[valid].duplicated().to_numpy()
    return out


def split_rejects(frame: pd.DataFrame, reasons: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    bad = reasons != ""
    rejects = frame.loc[bad].copy()
    rejects["reason"] = reasons[bad]
    return ~bad, rejects.reset_index(drop=True)


def all_rejected(input_name: str, path: Path, rejects: pd.DataFrame, fix: str) -> InputError:
    top = rejects["reason"].value_counts().head(3)
    listed = "; ".join(f"{k} ({v} rows)" for k, v in top.items())
    return InputError(input_name, path, [Problem(str(path), f"no usable rows: {listed}", fix)])


def vector_rejects(frame: gpd.GeoDataFrame, reasons: np.ndarray) -> pd.DataFrame:
    bad = reasons != ""
    attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name)).loc[bad].copy()
    attrs["reason"] = reasons[bad]
    return attrs.reset_index(drop=True)


def polygonal(geoms: np.ndarray) -> np.ndarray:
    types = shapely.get_type_id(geoms)
    return np.isin(types, [3, 6]) & ~shapely.is_empty(geoms)


def parse_dates(values: pd.Series) -> pd.Series:
    """Dates as users write them: ISO first, then UK day-first; NaT where unparseable.

    Times with a zone are converted to UTC and the zone dropped, so one file may mix them with
    times without a zone (read as UTC).
    """
    text = values.astype(str).str.strip()
    iso = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    rest = iso.isna() & text.ne("")
    if rest.any():
        iso = iso.where(
            ~rest,
            pd.to_datetime(text[rest], errors="coerce", dayfirst=True, format="mixed", utc=True),
        )
    return iso.dt.tz_convert(None)


def coords(
    frame: pd.DataFrame, lat_col: str | None, lon_col: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Latitude, longitude, 'has any value' and 'valid WGS84' per row."""
    n = len(frame)
    if lat_col is None or lon_col is None:
        return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, bool), np.zeros(n, bool)
    lat_text = frame[lat_col].astype(str).str.strip()
    lon_text = frame[lon_col].astype(str).str.strip()
    given = (lat_text.ne("") | lon_text.ne("")).to_numpy()
    lat, lon = parse_numbers(lat_text), parse_numbers(lon_text)
    valid = (np.abs(lat) <= 90) & (np.abs(lon) <= 180) & ~((lat == 0) & (lon == 0))
    return lat, lon, given, valid
