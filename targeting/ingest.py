"""Validated ingest of every input in the contract.

Each `read_*` function returns the usable rows in canonical columns and an `InputSummary` that
holds the rows it could not use (as read, with a `reason`), so nothing is dropped silently. A file
that cannot be used at all raises one `InputError` listing every problem found in it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from targeting.config import Config
from targeting.errors import InputError, Problem
from targeting.grid import points_to_areas
from targeting.io import (
    expand_globs,
    find_column,
    missing_column_problem,
    parse_numbers,
    read_table,
    read_vector,
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


def _columns(frame: pd.DataFrame, input_name: str, config: Config) -> dict[str, str | None]:
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


def _require(
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


def _first_reason(reasons: np.ndarray, mask: np.ndarray, reason: str | np.ndarray) -> None:
    """Record `reason` for rows in `mask` that have no earlier reason (first reason wins)."""
    target = mask & (reasons == "")
    reasons[target] = reason if isinstance(reason, str) else reason[target]


def _split(frame: pd.DataFrame, reasons: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    bad = reasons != ""
    rejects = frame.loc[bad].copy()
    rejects["reason"] = reasons[bad]
    return ~bad, rejects.reset_index(drop=True)


def _all_rejected(input_name: str, path: Path, rejects: pd.DataFrame, fix: str) -> InputError:
    top = rejects["reason"].value_counts().head(3)
    listed = "; ".join(f"{k} ({v} rows)" for k, v in top.items())
    return InputError(input_name, path, [Problem(str(path), f"no usable rows: {listed}", fix)])


def _vector_rejects(frame: gpd.GeoDataFrame, reasons: np.ndarray) -> pd.DataFrame:
    bad = reasons != ""
    attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name)).loc[bad].copy()
    attrs["reason"] = reasons[bad]
    return attrs.reset_index(drop=True)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    types = shapely.get_type_id(geoms)
    return np.isin(types, [3, 6]) & ~shapely.is_empty(geoms)


def read_areas(config: Config) -> tuple[gpd.GeoDataFrame, InputSummary]:
    """The areas to rank: `area_code, area_name, parent_code, parent_name, geometry` in WGS84."""
    path = config.inputs.areas
    frame, repaired = read_vector(path, input_name="areas")
    cols = _columns(frame, "areas", config)
    _require(cols, ["area_code"], path, "areas", config.columns_for("areas"))
    code = frame[cols["area_code"]].astype(str).str.strip()
    reasons = np.full(len(frame), "", dtype=object)
    geoms = frame.geometry.values
    _first_reason(
        reasons,
        code.eq("").to_numpy() | frame[cols["area_code"]].isna().to_numpy(),
        "missing area_code",
    )
    _first_reason(reasons, ~_polygonal(np.asarray(geoms)), "missing or non-polygon geometry")
    _first_reason(reasons, code.duplicated().to_numpy(), "duplicate area_code")
    ok = reasons == ""
    rejects = _vector_rejects(frame, reasons)
    if not ok.any():
        raise _all_rejected("areas", path, rejects, "check the area codes and geometry")
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
        geometry=np.asarray(geoms)[ok],
        crs=frame.crs,
    )
    warnings = []
    if repaired:
        warnings.append(f"{repaired} invalid area polygon(s) repaired with make_valid")
    if not cols["area_name"]:
        warnings.append("areas have no name column; area codes are used as names")
    summary = InputSummary("areas", (path,), len(frame), int(ok.sum()), rejects, tuple(warnings))
    return out, summary


def read_small_areas(config: Config) -> tuple[gpd.GeoDataFrame | None, InputSummary | None]:
    """Census small areas: `area_code, households, geometry` in WGS84 (None if not configured)."""
    path = config.inputs.small_areas
    if path is None:
        return None, None
    frame, repaired = read_vector(path, input_name="small_areas")
    cols = _columns(frame, "small_areas", config)
    _require(cols, ["area_code"], path, "small_areas", config.columns_for("small_areas"))
    code = frame[cols["area_code"]].astype(str).str.strip()
    households = (
        parse_numbers(frame[cols["households"]].astype(str))
        if cols["households"]
        else np.full(len(frame), np.nan)
    )
    reasons = np.full(len(frame), "", dtype=object)
    _first_reason(
        reasons,
        code.eq("").to_numpy() | frame[cols["area_code"]].isna().to_numpy(),
        "missing area_code",
    )
    _first_reason(
        reasons, ~_polygonal(np.asarray(frame.geometry.values)), "missing or non-polygon geometry"
    )
    _first_reason(reasons, code.duplicated().to_numpy(), "duplicate area_code")
    _first_reason(reasons, households < 0, "negative households")
    ok = reasons == ""
    rejects = _vector_rejects(frame, reasons)
    if not ok.any():
        raise _all_rejected("small_areas", path, rejects, "check the codes and geometry")
    out = gpd.GeoDataFrame(
        {"area_code": code[ok].to_numpy(), "households": households[ok]},
        geometry=np.asarray(frame.geometry.values)[ok],
        crs=frame.crs,
    )
    warnings = (
        [f"{repaired} invalid small-area polygon(s) repaired with make_valid"] if repaired else []
    )
    return out, InputSummary(
        "small_areas", (path,), len(frame), int(ok.sum()), rejects, tuple(warnings)
    )


# columns that describe a row rather than count an origin: dates, years, codes, names, ids
_NOT_ORIGIN = re.compile(
    r"(date|year)|(code|cd|nm|name|_id)$|^(id|rgn|region|lad|lsoa|msoa|oa)$", re.I
)


def _mostly_numeric(values: pd.Series) -> bool:
    """A count column: at least half its non-blank values are numbers (a stray bad cell rejects
    its row rather than hiding the whole origin); text columns (codes, names) have none."""
    text = values.astype(str).str.strip()
    text = text[text != ""]
    return len(text) > 0 and bool(np.isfinite(parse_numbers(text)).mean() >= 0.5)


def _age_fraction(band: str, min_age: int) -> float:
    """Share of an age band aged `min_age` or over, assuming ages spread evenly within the band."""
    text = band.lower()
    nums = [int(n) for n in re.findall(r"\d+", text)]
    if not nums:
        return np.nan
    if "under" in text:
        low, high = 0, nums[-1] if "and under" in text else nums[-1] - 1
    elif "over" in text or "+" in text or "plus" in text:
        low, high = nums[0], 200
    elif len(nums) >= 2:
        low, high = nums[0], nums[1]
    else:
        low = high = nums[0]
    if low >= min_age:
        return 1.0
    if high < min_age:
        return 0.0
    return (high - min_age + 1) / (high - low + 1)


@dataclass(frozen=True)
class Population:
    """Residents per origin, long: `area_code, origin, residents`, keyed by areas or small areas."""

    table: pd.DataFrame
    keyed_by: str  # "small_areas" or "areas"
    origins: tuple[str, ...]


def read_population(
    config: Config, *, area_codes: set[str], small_area_codes: set[str] | None
) -> tuple[Population, InputSummary]:
    """The population table (wide or long), checked against its total and its geography."""
    path = config.inputs.population
    frame = read_table(path, input_name="population")
    cols = _columns(frame, "population", config)
    _require(cols, ["area_code"], path, "population", config.columns_for("population"))
    mapping = config.columns_for("population")
    is_long = (
        cols["origin"] is not None and cols["residents"] is not None and "origins" not in mapping
    )
    codes = frame[cols["area_code"]].astype(str).str.strip()
    in_small = codes.isin(small_area_codes or set()).sum()
    in_areas = codes.isin(area_codes).sum()
    keyed_by = "small_areas" if small_area_codes is not None and in_small >= in_areas else "areas"
    if in_small == 0 and in_areas == 0:
        fix = (
            "add inputs.small_areas for its geography"
            if small_area_codes is None
            else "check the area_code column"
        )
        raise InputError(
            "population",
            path,
            [
                Problem(
                    f"{path} column '{cols['area_code']}'",
                    "matches no area or small-area code",
                    fix,
                )
            ],
        )
    known = small_area_codes if keyed_by == "small_areas" else area_codes
    reasons = np.full(len(frame), "", dtype=object)
    _first_reason(reasons, codes.eq("").to_numpy(), "missing area_code")
    _first_reason(reasons, ~codes.isin(known or set()).to_numpy(), f"area_code not in {keyed_by}")
    warnings: list[str] = []
    details: dict[str, Any] = {"format": "long" if is_long else "wide", "keyed_by": keyed_by}

    if is_long:
        origin = frame[cols["origin"]].astype(str).str.strip()
        residents = parse_numbers(frame[cols["residents"]])
        _first_reason(reasons, origin.eq("").to_numpy(), "missing origin")
        _first_reason(reasons, np.isnan(residents), "non-numeric residents")
        _first_reason(reasons, residents < 0, "negative residents")
        factor = np.ones(len(frame))
        if cols["age_band"]:
            bands = frame[cols["age_band"]].astype(str)
            fractions = {b: _age_fraction(b, config.population.min_age) for b in bands.unique()}
            factor = bands.map(fractions).to_numpy(dtype=float)
            _first_reason(reasons, np.isnan(factor), "unparseable age_band")
            details["base"] = f"residents aged {config.population.min_age} and over"
        key = pd.DataFrame(
            {"a": codes, "o": origin, "b": frame[cols["age_band"]] if cols["age_band"] else ""}
        )
        _first_reason(reasons, key.duplicated().to_numpy(), "duplicate area_code and origin")
        ok, rejects = _split(frame, reasons)
        long = pd.DataFrame(
            {
                "area_code": codes[ok].to_numpy(),
                "origin": origin[ok].to_numpy(),
                "residents": (residents * factor)[ok],
            }
        )
        long = long.groupby(["area_code", "origin"], sort=True, as_index=False)["residents"].sum()
    else:
        total_col = cols["total"]
        explicit = mapping.get("origins")
        if isinstance(explicit, tuple):
            missing = [c for c in explicit if c not in frame.columns]
            if missing:
                raise InputError(
                    "population", path,
                    [missing_column_problem(path, c, "population", "the origins list") for c in missing],
                )  # fmt: skip
            origin_cols = list(explicit)
        else:
            origin_cols = [
                c for c in frame.columns
                if c not in (cols["area_code"], total_col)
                and not _NOT_ORIGIN.search(c)
                and _mostly_numeric(frame[c])
            ]  # fmt: skip
        if not origin_cols:
            raise InputError(
                "population", path,
                [Problem(str(path), "has no numeric origin columns", "give one column per origin, or a long table area_code,origin,residents")],
            )  # fmt: skip
        values = np.column_stack([parse_numbers(frame[c]) for c in origin_cols])
        bad_col = np.isnan(values)
        first_bad = np.where(
            bad_col.any(axis=1), np.array(origin_cols, dtype=object)[bad_col.argmax(axis=1)], ""
        )
        _first_reason(
            reasons,
            bad_col.any(axis=1),
            np.array([f"non-numeric count in column {c}" for c in first_bad], dtype=object),
        )
        _first_reason(reasons, (values < 0).any(axis=1), "negative count")
        # a repeated area row would count its residents twice (like a repeated long row)
        _first_reason(reasons, codes.duplicated().to_numpy(), "duplicate area_code and origin")
        parts = np.nansum(values, axis=1)
        tol = config.population.total_tolerance
        if total_col:
            total = parse_numbers(frame[total_col])
            _first_reason(reasons, np.isnan(total), f"non-numeric total in column {total_col}")
            _first_reason(
                reasons,
                parts > total * (1 + tol),
                f"origins add up to more than {total_col} by over the tolerance",
            )
            ok_rows = reasons == ""
            short = ok_rows & (total > parts)
            if short.any():
                warnings.append(
                    f"{int(short.sum())} row(s) have {total_col} above the sum of their origins "
                    f"({total[short].sum() - parts[short].sum():,.0f} residents in groups the table leaves out); "
                    "targets use the sum of the origins"
                )
                details["total_above_parts"] = {
                    "rows": int(short.sum()),
                    "residents": float(total[short].sum() - parts[short].sum()),
                }
            over = ok_rows & (parts > total)
            if over.any():
                warnings.append(
                    f"{int(over.sum())} row(s) have origins above {total_col} within the tolerance"
                )
        details["detected_origins"] = origin_cols
        details["total_column"] = total_col
        ok, rejects = _split(frame, reasons)
        wide = pd.DataFrame(values[ok], columns=origin_cols)
        wide.insert(0, "area_code", codes[ok].to_numpy())
        long = wide.melt(id_vars="area_code", var_name="origin", value_name="residents")
        long = long.groupby(["area_code", "origin"], sort=True, as_index=False)["residents"].sum()
    if not ok.any():
        raise _all_rejected("population", path, rejects, "check the codes and counts")
    long["residents"] = long["residents"].astype(float)
    origins = tuple(sorted(long["origin"].unique()))
    summary = InputSummary(
        "population", (path,), len(frame), int(ok.sum()), rejects, tuple(warnings), details
    )
    return Population(long, keyed_by, origins), summary


def _parse_dates(values: pd.Series) -> pd.Series:
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


def _coords(
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


def normalise_postcode(values: pd.Series) -> pd.Series:
    """Postcodes compared regardless of spacing and case."""
    return values.astype(str).str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)


def read_postcodes(config: Config) -> tuple[pd.DataFrame | None, InputSummary | None]:
    """Postcode centroids: `key, latitude, longitude` (key = upper case, no spaces)."""
    path = config.inputs.postcodes
    if path is None:
        return None, None
    frame = read_table(path, input_name="postcodes")
    cols = _columns(frame, "postcodes", config)
    _require(
        cols,
        ["postcode", "latitude", "longitude"],
        path,
        "postcodes",
        config.columns_for("postcodes"),
    )
    key = normalise_postcode(frame[cols["postcode"]])
    lat, lon, _, valid = _coords(frame, cols["latitude"], cols["longitude"])
    reasons = np.full(len(frame), "", dtype=object)
    _first_reason(reasons, key.eq("").to_numpy(), "missing postcode")
    _first_reason(reasons, ~valid, "invalid coordinates")
    _first_reason(reasons, key.duplicated().to_numpy(), "duplicate postcode")
    ok, rejects = _split(frame, reasons)
    out = pd.DataFrame({"key": key[ok].to_numpy(), "latitude": lat[ok], "longitude": lon[ok]})
    return out, InputSummary("postcodes", (path,), len(frame), int(ok.sum()), rejects)


@dataclass(frozen=True)
class Signups:
    """Located, validated sign-ups. No names; ids stay inside the run, never in shared outputs."""

    table: (
        pd.DataFrame
    )  # user_id, joined, latitude, longitude, area_code, label, status, watch_role
    as_of: dt.date


def read_signups(
    config: Config, *, areas: gpd.GeoDataFrame, postcodes: pd.DataFrame | None
) -> tuple[Signups, InputSummary]:
    """Sign-ups placed by their first usable location (lat/lon, easting/northing, postcode)."""
    path = config.inputs.signups
    frame = read_table(path, input_name="signups")
    cols = _columns(frame, "signups", config)
    _require(cols, ["user_id", "joined"], path, "signups", config.columns_for("signups"))
    kinds = {
        "latitude,longitude": cols["latitude"] and cols["longitude"],
        "easting,northing": cols["easting"] and cols["northing"],
        "postcode": cols["postcode"],
    }
    if not any(kinds.values()):
        raise InputError(
            "signups", path,
            [Problem(str(path), "has no location columns", "add latitude,longitude or easting,northing or postcode")],
        )  # fmt: skip
    n = len(frame)
    reasons = np.full(n, "", dtype=object)
    user = frame[cols["user_id"]].astype(str).str.strip()
    joined = _parse_dates(frame[cols["joined"]])
    _first_reason(reasons, user.eq("").to_numpy(), "missing user_id")
    _first_reason(reasons, joined.isna().to_numpy(), "unparseable joined date")
    as_of = config.run.as_of or joined.max().date()
    _first_reason(
        reasons, (joined.dt.date > as_of).fillna(False).to_numpy(dtype=bool), "joined after as_of"
    )
    _first_reason(reasons, user.duplicated().to_numpy(), "duplicate user_id")
    status = (
        frame[cols["status"]].astype(str).str.strip().str.lower().replace("", "active")
        if cols["status"]
        else pd.Series("active", index=frame.index)
    )
    role = (
        frame[cols["watch_role"]].astype(str).str.strip().str.lower().replace("", "none")
        if cols["watch_role"]
        else pd.Series("none", index=frame.index)
    )
    _first_reason(reasons, ~status.isin(STATUSES).to_numpy(), "unknown status")
    _first_reason(reasons, ~role.isin(WATCH_ROLES).to_numpy(), "unknown watch_role")

    lat, lon, given, valid = _coords(frame, cols["latitude"], cols["longitude"])
    _first_reason(reasons, given & ~valid, "invalid latitude/longitude")
    use_en = ~given
    if cols["easting"] and cols["northing"]:
        e_text = frame[cols["easting"]].astype(str).str.strip()
        n_text = frame[cols["northing"]].astype(str).str.strip()
        en_given = use_en & (e_text.ne("") | n_text.ne("")).to_numpy()
        east, north = parse_numbers(e_text), parse_numbers(n_text)
        en_valid = (east >= 0) & (east <= 700_000) & (north >= 0) & (north <= 1_300_000)
        _first_reason(reasons, en_given & ~en_valid, "invalid easting/northing")
        take = en_given & en_valid
        if take.any():
            tr = pyproj.Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)
            lon_en, lat_en = tr.transform(east[take], north[take])
            lon[take], lat[take] = lon_en, lat_en
        use_pc = use_en & ~en_given
    else:
        use_pc = use_en
    if cols["postcode"]:
        pc = normalise_postcode(frame[cols["postcode"]])
        pc_given = use_pc & pc.ne("").to_numpy()
        if pc_given.any() and postcodes is None:
            raise InputError(
                "signups", path,
                [Problem(str(path), f"{int(pc_given.sum())} rows are located only by postcode", "add inputs.postcodes (a postcode,latitude,longitude lookup)")],
            )  # fmt: skip
        if postcodes is not None:
            lookup = postcodes.set_index("key")
            found = pc.map(lookup["latitude"]).to_numpy(dtype=float)
            _first_reason(reasons, pc_given & np.isnan(found), "postcode not found")
            take = pc_given & ~np.isnan(found)
            lat[take] = found[take]
            lon[take] = pc.map(lookup["longitude"]).to_numpy(dtype=float)[take]
        use_none = use_pc & ~pc_given
    else:
        use_none = use_pc
    _first_reason(reasons, use_none, "no location")
    placed = reasons == ""
    area_idx = np.full(n, -1)
    area_idx[placed] = points_to_areas(lon[placed], lat[placed], areas)
    _first_reason(reasons, placed & (area_idx < 0), "outside areas")
    ok, rejects = _split(frame, reasons)
    if not ok.any():
        raise _all_rejected("signups", path, rejects, "check the location columns and their CRS")
    label = (
        frame[cols["origin"]].astype(str).str.strip()
        if cols["origin"]
        else pd.Series("", index=frame.index)
    )
    table = pd.DataFrame(
        {
            "user_id": user[ok].to_numpy(),
            "joined": joined[ok].to_numpy(),
            "latitude": lat[ok],
            "longitude": lon[ok],
            "area_code": areas["area_code"].to_numpy()[area_idx[ok]],
            "label": label[ok].to_numpy(),
            "status": status[ok].to_numpy(),
            "watch_role": role[ok].to_numpy(),
        }
    )
    warnings = [] if cols["origin"] else ["sign-ups have no origin column; every origin is unknown"]
    details = {
        "status_counts": {
            k: int(v) for k, v in table["status"].value_counts().sort_index().items()
        },
        "watch_role_counts": {
            k: int(v) for k, v in table["watch_role"].value_counts().sort_index().items()
        },
    }
    summary = InputSummary("signups", (path,), n, int(ok.sum()), rejects, tuple(warnings), details)
    return Signups(table, as_of), summary


def read_crimes(
    config: Config, *, areas: gpd.GeoDataFrame, as_of: dt.date, crime_types: pd.DataFrame
) -> tuple[pd.DataFrame | None, InputSummary | None]:
    """police.uk street-level rows: `latitude, longitude, area_code, month, crime_type, is_asb, is_sac`."""
    if not config.inputs.crimes:
        return None, None
    files = expand_globs(config.inputs.crimes, input_name="crimes")
    frames, raws, problems, bad_files = [], [], [], []
    for f in files:
        part = read_table(f, input_name="crimes")
        cols = _columns(part, "crimes", config)
        missing = [c for c in ("month", "longitude", "latitude", "crime_type") if cols[c] is None]
        problems += [
            missing_column_problem(f, c, "crimes", ALIASES["crimes"][c][0]) for c in missing
        ]
        if missing:
            bad_files.append(f)
            continue
        # canonical columns to work on; rejects keep the columns as read, after file and row
        frames.append(pd.DataFrame({k: part[v] if v else "" for k, v in cols.items()}))
        raw = part.copy()
        raw.insert(0, "file", f.name)
        raw.insert(1, "row", np.arange(2, len(part) + 2))
        raws.append(raw)
    if problems:
        raise InputError("crimes", bad_files[0], problems)
    frame = pd.concat(frames, ignore_index=True)
    raw = pd.concat(raws, ignore_index=True).fillna("")
    reasons = np.full(len(frame), "", dtype=object)
    lat, lon, given, valid = _coords(frame, "latitude", "longitude")
    _first_reason(reasons, ~given, "no coordinates")
    _first_reason(reasons, ~valid, "invalid coordinates")
    month = pd.to_datetime(frame["month"].astype(str).str.strip(), format="%Y-%m", errors="coerce")
    _first_reason(reasons, month.isna().to_numpy(), "unparseable Month")
    _first_reason(
        reasons, (month.dt.date > as_of).fillna(False).to_numpy(dtype=bool), "month after as_of"
    )
    ctype = frame["crime_type"].astype(str).str.strip()
    _first_reason(reasons, ctype.eq("").to_numpy(), "missing crime type")
    cid = frame["crime_id"].astype(str).str.strip()
    _first_reason(reasons, (cid.ne("") & cid.duplicated()).to_numpy(), "duplicate Crime ID")
    placed = reasons == ""
    area_idx = np.full(len(frame), -1)
    area_idx[placed] = points_to_areas(lon[placed], lat[placed], areas)
    _first_reason(reasons, placed & (area_idx < 0), "outside areas")
    ok, rejects = _split(raw, reasons)
    known_types = set(crime_types["crime_type"])
    unknown = sorted(set(ctype[ok]) - known_types)
    warnings = (
        [f"crime types not in the police.uk list (counted as crimes): {', '.join(unknown)}"]
        if unknown
        else []
    )
    is_asb = ctype[ok].eq(ASB).to_numpy()
    table = pd.DataFrame(
        {
            "latitude": lat[ok],
            "longitude": lon[ok],
            "area_code": areas["area_code"].to_numpy()[area_idx[ok]],
            "month": month[ok].dt.strftime("%Y-%m").to_numpy(),
            "crime_type": ctype[ok].to_numpy(),
            "is_asb": is_asb,
            "is_sac": ctype[ok].isin(config.crimes.sac_types).to_numpy() & ~is_asb,
        }
    )
    details = {"asb_rows": int(is_asb.sum()), "months": sorted(table["month"].unique().tolist())}
    summary = InputSummary(
        "crimes", tuple(files), len(frame), int(ok.sum()), rejects, tuple(warnings), details
    )
    return table, summary


def read_ratings(
    config: Config, *, areas: gpd.GeoDataFrame, signups: pd.DataFrame, as_of: dt.date
) -> tuple[pd.DataFrame | None, InputSummary | None]:
    """Message ratings located by their own point or their sign-up's: `latitude, longitude, area_code, rating`."""
    path = config.inputs.ratings
    if path is None:
        return None, None
    frame = read_table(path, input_name="ratings")
    cols = _columns(frame, "ratings", config)
    _require(cols, ["rated_at", "rating"], path, "ratings", config.columns_for("ratings"))
    if not (cols["latitude"] and cols["longitude"]) and not cols["user_id"]:
        raise InputError(
            "ratings", path,
            [Problem(str(path), "has no location", "add latitude,longitude or a user_id of a sign-up")],
        )  # fmt: skip
    reasons = np.full(len(frame), "", dtype=object)
    rated = _parse_dates(frame[cols["rated_at"]])
    rating = parse_numbers(frame[cols["rating"]])
    _first_reason(reasons, rated.isna().to_numpy(), "unparseable rated_at")
    _first_reason(
        reasons, (rated.dt.date > as_of).fillna(False).to_numpy(dtype=bool), "rated after as_of"
    )
    _first_reason(reasons, ~np.isin(rating, np.arange(1, 7)), "rating not an integer 1 to 6")
    lat, lon, given, valid = _coords(frame, cols["latitude"], cols["longitude"])
    _first_reason(reasons, given & ~valid, "invalid latitude/longitude")
    if cols["user_id"]:
        by_user = signups.set_index("user_id")
        uid = frame[cols["user_id"]].astype(str).str.strip()
        need = ~given & uid.ne("").to_numpy()
        u_lat = uid.map(by_user["latitude"]).to_numpy(dtype=float)
        _first_reason(reasons, need & np.isnan(u_lat), "unknown user_id")
        take = need & ~np.isnan(u_lat)
        lat[take] = u_lat[take]
        lon[take] = uid.map(by_user["longitude"]).to_numpy(dtype=float)[take]
        _first_reason(reasons, ~given & uid.eq("").to_numpy(), "no location")
    else:
        _first_reason(reasons, ~given, "no location")
    placed = reasons == ""
    area_idx = np.full(len(frame), -1)
    area_idx[placed] = points_to_areas(lon[placed], lat[placed], areas)
    _first_reason(reasons, placed & (area_idx < 0), "outside areas")
    ok, rejects = _split(frame, reasons)
    table = pd.DataFrame(
        {
            "latitude": lat[ok],
            "longitude": lon[ok],
            "area_code": areas["area_code"].to_numpy()[area_idx[ok]],
            "rating": rating[ok],
        }
    )
    return table, InputSummary("ratings", (path,), len(frame), int(ok.sum()), rejects)


def read_schemes(
    config: Config, *, areas: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame | None, InputSummary | None]:
    """Watch schemes: `scheme_id, scheme_name, scheme_type, households, members, geometry` (points kept)."""
    path = config.inputs.schemes
    if path is None:
        return None, None
    frame, repaired = read_vector(path, input_name="schemes")
    cols = _columns(frame, "schemes", config)
    _require(cols, ["scheme_id", "households"], path, "schemes", config.columns_for("schemes"))
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
    _first_reason(
        reasons,
        sid.eq("").to_numpy() | frame[cols["scheme_id"]].isna().to_numpy(),
        "missing scheme_id",
    )
    _first_reason(reasons, sid.duplicated().to_numpy(), "duplicate scheme_id")
    _first_reason(
        reasons, np.isnan(households) | (households < 0), "households not a non-negative number"
    )
    _first_reason(
        reasons,
        shapely.is_missing(geoms) | shapely.is_empty(geoms) | ~np.isin(types, [0, 3, 4, 6]),
        "missing or unsupported geometry",
    )
    candidates = reasons == ""
    tree = shapely.STRtree(areas.geometry.values)
    inside = np.zeros(len(frame), bool)
    hit, _ = tree.query(geoms[candidates], predicate="intersects")
    inside[np.flatnonzero(candidates)[np.unique(hit)]] = True
    _first_reason(reasons, ~inside, "outside areas")
    ok = reasons == ""
    rejects = _vector_rejects(frame, reasons)
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
