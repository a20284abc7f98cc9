"""Shared pieces of ingest: recognised column names, the per-input summary, reject bookkeeping,
and parsing of dates and coordinates.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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


@dataclass(frozen=True)
class Column:
    """A canonical column of an input file: besides its own name, the names it is recognised by
    (`aliases`, case and punctuation ignored) and regular expressions a name may match
    (`patterns`). A `date` column's day/month order can be set with `[columns.<input>]
    <name>_format`; a `many` column is a list of the file's columns."""

    aliases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    date: bool = False
    many: bool = False


# a census geography's code column, as ONS, Nomis and MHCLG publish it
CENSUS_AREA_CODE = Column(
    ("OA11CD", "OA21CD", "OA", "LSOA11CD", "LSOA21CD", "lsoa21_code", "lsoa11_code", "LSOA",
     "MSOA11CD", "MSOA21CD", "MSOA", "geography code", "geo_code", "mnemonic", "code",
     "LSOA code (2011)", "LSOA code (2021)"),
    # ONS custom datasets ("Lower layer Super Output Areas Code") and Nomis downloads
    # ("2021 super output area - lower layer", cells "E01008928 : Birmingham 102E")
    (r".*(super output areas?|output areas?|wards?|local authorit(y|ies)) code",
     r"20\d\d (super output area|output area|electoral ward|ward|local authority).*"),
)  # fmt: skip
# a Nomis geography cell, "E01008928 : Birmingham 102E": the code is before the colon
_CODE_AND_NAME = re.compile(r"^\s*([A-Za-z0-9]+)\s+:\s+\S")


def parse_area_codes(values: pd.Series) -> pd.Series:
    """Area codes as text, with Nomis's "CODE : name" cells cut to the code."""
    codes = values.astype(str).str.strip()
    # the pattern needs a colon: a table of plain codes (most) skips the regular expression
    named = codes.str.contains(":", regex=False).to_numpy(dtype=bool)
    if not named.any():
        return codes
    split = codes.str.extract(_CODE_AND_NAME, expand=False)
    return split.where(split.notna(), codes)


@dataclass(frozen=True)
class FileColumns:
    """The canonical columns of one input, declared once beside its reader: the reader finds them
    in a file, the config checks `[columns.<input>]` against them."""

    input_name: str
    columns: Mapping[str, Column]

    def config_keys(self) -> frozenset[str]:
        """The keys `[columns.<input>]` accepts: the canonical names and, for each date
        column, `<name>_format`."""
        formats = {f"{name}_format" for name, c in self.columns.items() if c.date}
        return frozenset(self.columns) | formats

    def find(self, frame: pd.DataFrame, config: Config) -> dict[str, str | None]:
        """The file's column for each canonical name: the config's mapping, else a recognised
        name (None where there is none)."""
        mapping = config.columns_for(self.input_name)
        return {
            canon: find_column(
                frame.columns,
                canon,
                mapping=mapping,
                aliases=column.aliases,
                patterns=column.patterns,
            )
            for canon, column in self.columns.items()
            if not column.many
        }

    def require(
        self,
        found: Mapping[str, str | None],
        required: Sequence[str],
        path: Path,
        config: Config,
    ) -> None:
        """Stop with one error naming every required column the file lacks, and the fix."""
        mapping = config.columns_for(self.input_name)

        def expected(c: str) -> str:
            mapped = mapping.get(c)
            if isinstance(mapped, str):
                return f"'{mapped}', as mapped in [columns.{self.input_name}]"
            return " or ".join((c, *self.columns[c].aliases[:3]))

        problems = [
            missing_column_problem(path, c, self.input_name, expected(c))
            for c in required
            if found.get(c) is None
        ]
        if problems:
            raise InputError(self.input_name, path, problems)


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


def layout_warnings(frame: pd.DataFrame) -> list[str]:
    """A warning saying how a CSV was laid out when it was not a plain comma-separated table
    (another delimiter, title and footer lines), so the analyst can check it was read right."""
    layout = frame.attrs.get("layout", "")
    return [f"file layout: {layout}"] if layout else []


def is_in(values: pd.Series, wanted: Collection[str]) -> np.ndarray:
    """Which of the text `values` are among `wanted` (missing values never are), by pyarrow's
    hash lookup: pandas' `isin` on text makes a scalar of each wanted value, a tenth of a second
    for a force's small-area codes."""
    if not wanted:
        return np.zeros(len(values), dtype=bool)
    array = pa.array(values, from_pandas=True)
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        return values.isin(wanted).to_numpy(dtype=bool)
    found = pc.is_in(array, value_set=pa.array(list(wanted), type=array.type))
    return found.fill_null(False).to_numpy(zero_copy_only=False)


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


_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:[T ].*)?$")
_ZONED = re.compile(r"(?:Z|[+-]\d{2}:?\d{2}|[+-]\d{2}|\bUTC|\bGMT)$", re.IGNORECASE)
# 31/10/2018, 10-31-18, 31.10.2018 14:05, 31/10/2018 14:05:09: day and month in either order
_NUMERIC = re.compile(
    r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?$"
)


@dataclass(frozen=True)
class DateColumn:
    """How a date column was read: the dates (naive, in the force's local time; NaT where
    unparseable) and the day/month order used for numeric dates, with a note when it was
    inferred rather than forced."""

    values: pd.Series
    order: str  # "day-first", "month-first", or the strptime format given
    note: str | None


def _numeric_dates(parts: pd.DataFrame, order: str) -> pd.Series:
    """Dates from the numeric parts (`_NUMERIC` groups) in the given day/month order."""
    first, second = parts[0].astype(float), parts[1].astype(float)
    day, month = (first, second) if order == "day-first" else (second, first)
    year = parts[2].astype(float)
    two_digit = pd.Series(np.where(year < 70, 2000 + year, 1900 + year), index=year.index)
    year = year.where(parts[2].str.len() == 4, two_digit)
    fields = pd.DataFrame(
        {
            "year": year,
            "month": month,
            "day": day,
            "hour": parts[3].astype(float).fillna(0),
            "minute": parts[4].astype(float).fillna(0),
            "second": parts[5].astype(float).fillna(0),
        }
    )
    return pd.to_datetime(fields, errors="coerce")


def _local(text: pd.Series, *, timezone: str, dayfirst: bool = False) -> pd.Series:
    """Timestamps written with a zone, as the force's local clock read them (zone dropped)."""
    if text.empty:
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    stamped = pd.to_datetime(text, errors="coerce", format="mixed", utc=True, dayfirst=dayfirst)
    return stamped.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[us]")


def parse_dates(
    values: pd.Series,
    *,
    timezone: str,
    date_format: str | None = None,
    input_name: str = "",
    path: Path | None = None,
    column: str = "",
    canonical: str = "",
) -> DateColumn:
    """Dates as users write them, the day/month order decided once for the whole column.

    ISO dates (2018-10-31, 2018-10-31T23:30:00) are read first. Numeric dates such as 10/31/2018
    take one order for the column: month-first when some cannot be day-first and none cannot be
    month-first, else day-first (UK); a column with both kinds stops, naming an example of each
    (an `InputError` on `input_name`'s file `path`, column `canonical`). `date_format` forces an order
    ("day-first", "month-first") or a strptime format. A timestamp with a zone is converted to
    `timezone` before its date is taken; one without is taken as local time already.
    """
    codes, uniques = pd.factorize(values.astype(str).str.strip())
    text = pd.Series(uniques, dtype=object)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    zoned = text.str.contains(_ZONED)
    note = None
    if date_format is not None and "%" in date_format:
        fixed = pd.to_datetime(text, format=date_format, errors="coerce", utc="%z" in date_format)
        if "%z" in date_format:
            fixed = fixed.dt.tz_convert(timezone).dt.tz_localize(None)
        out = fixed.astype("datetime64[us]")
        order = date_format
    else:
        iso = text.str.match(_ISO)
        plain = iso & ~zoned
        out[plain] = pd.to_datetime(text[plain], format="ISO8601", errors="coerce")
        out[iso & zoned] = _local(text[iso & zoned], timezone=timezone)
        parts = text[~iso].str.extract(_NUMERIC)
        numeric = parts[0].notna()
        first, second = parts[0].astype(float), parts[1].astype(float)
        day_only = numeric & (first > 12) & (second <= 12)
        month_only = numeric & (second > 12) & (first <= 12)
        if date_format is not None:
            order = date_format
        elif day_only.any() and month_only.any():
            day_example = text[~iso][day_only].iloc[0]
            month_example = text[~iso][month_only].iloc[0]
            raise InputError(
                input_name,
                path or Path(input_name),
                [
                    Problem(
                        f"{path} column '{column or canonical}'",
                        f"has dates in both orders: {day_example} can only be day-first and "
                        f"{month_example} only month-first",
                        "correct the export, or force one order with "
                        f'[columns.{input_name}] {canonical}_format = "day-first" or '
                        '"month-first" (dates that do not fit it are then rejected)',
                    )
                ],
            )
        else:
            order = "month-first" if month_only.any() else "day-first"
            if month_only.any():
                note = (
                    f"{canonical} dates read month-first (e.g. "
                    f"{text[~iso][month_only].iloc[0]} cannot be day-first)"
                )
            elif (
                not day_only.any() and (ambiguous := numeric & (first <= 12) & (second <= 12)).any()
            ):
                note = (
                    f"{canonical} dates such as {text[~iso][ambiguous].iloc[0]} read day-first "
                    "(UK); set "
                    f'[columns.{input_name}] {canonical}_format = "month-first" if they are '
                    "month-first"
                )
        taken = parts[numeric]
        out[taken.index] = _numeric_dates(taken, order)
        rest = text.index.difference(text.index[iso]).difference(taken.index)
        rest_text = text[rest]
        rest_text = rest_text[rest_text != ""]
        rest_zoned = zoned[rest_text.index]
        out[rest_text.index[rest_zoned]] = _local(
            rest_text[rest_zoned], timezone=timezone, dayfirst=order == "day-first"
        )
        naive = rest_text[~rest_zoned]
        out[naive.index] = pd.to_datetime(
            naive, errors="coerce", format="mixed", dayfirst=order == "day-first"
        )
    values_out = pd.Series(out.to_numpy()[codes], index=values.index)
    values_out[codes < 0] = pd.NaT
    return DateColumn(values_out, order, note)


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


def read_dates(
    frame: pd.DataFrame, column: str, canonical: str, *, input_name: str, path: Path, config: Config
) -> DateColumn:
    """`parse_dates` on a file's date column with the run's time zone and any
    `[columns.<input>] <canonical>_format`."""
    given = config.columns_for(input_name).get(f"{canonical}_format")
    return parse_dates(
        frame[column],
        timezone=config.run.timezone,
        date_format=given if isinstance(given, str) else None,
        input_name=input_name,
        path=path,
        column=column,
        canonical=canonical,
    )
