"""The population table, wide (ONS/Nomis) or long, checked against its total and geography."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from targeting.config import Config
from targeting.errors import InputError, Problem
from targeting.ingest.common import (
    CENSUS_AREA_CODE,
    Column,
    FileColumns,
    InputSummary,
    all_rejected,
    duplicated_among_valid,
    first_reason,
    is_in,
    layout_warnings,
    parse_area_codes,
    split_rejects,
)
from targeting.io import (
    missing_column_problem,
    parse_numbers,
    read_table,
)
from targeting.origins import PopulationCategories, read_population_categories

POPULATION = FileColumns(
    "population",
    {
        "area_code": CENSUS_AREA_CODE,
        # the long form of an ONS custom dataset: "Ethnic group (20 categories)"
        "origin": Column(("ethnicity", "ethnic_group", "ethnic group", "group"),
                         (r"ethnic group(\s*\(.*\))?",)),
        "residents": Column(("usual_residents", "count", "observation", "value", "persons")),
        "age_band": Column(("age_group", "age")),
        "total": Column(
            ("Persons", "total_usual_residents", "All usual residents",
             "Total: All usual residents", "All persons", "all_residents", "Total"),
            # Nomis bulk downloads: "Ethnic Group: All categories: Ethnic group; measures: Value"
            (r".*\ball (usual residents|persons|categories)\b.*",),
        ),
        "origins": Column(many=True),  # a wide table's origin columns, named in the config
    },
)  # fmt: skip
_NOT_ORIGIN = re.compile(
    r"(date|year)|(code|cd|nm|name|_id)$|^(id|rgn|region|lad|lsoa|msoa|oa)$", re.I
)
# a percentage beside each count, as Nomis downloads carry ("%", "% Asian", "Asian (percent)")
_PERCENTAGE = re.compile(r"%|\bper ?cent(age)?\b|\bpct\b|\bproportion\b", re.I)


def _is_total(name: str) -> bool:
    """An origin label that is really a total ("Total", "All usual residents", "All categories")."""
    return bool(re.search(r"\btotal\b|\ball (usual residents|persons|categories)\b", name, re.I))


def _subtotals(columns: list[str]) -> set[str]:
    """Columns that add up others, as Nomis tables carry: "White" beside "White: Irish", or "Total"."""
    names = {c: _origin_names([c])[0] for c in columns}
    out = {c for c, n in names.items() if _is_total(n)}
    for c, n in names.items():
        if any(o != n and o.startswith(n + ":") for o in names.values()):
            out.add(c)
    return out


def _origin_names(columns: list[str]) -> list[str]:
    """Origin names without Nomis decoration ("; measures: Value") or a prefix shared by all."""
    names = [re.sub(r";\s*measures:.*$", "", c).strip() for c in columns]
    if len(names) > 1:
        # a character prefix is wanted here, not path components
        prefix = os.path.commonprefix(names)  # noqa: RUF071
        prefix = prefix[: prefix.rfind(": ") + 2] if ": " in prefix else ""
        names = [n[len(prefix) :] or n for n in names]
    return names


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


def _left_out_warnings(reading: PopulationCategories, *, residents: pd.Series) -> list[str]:
    """Warnings naming the population's names that are not origins or add up others."""
    out = []
    for kind, names in (
        ("not an ethnic group", reading.not_origins),
        ("a heading that adds up the origins beside it", reading.subtotals),
    ):
        if names:
            listed = ", ".join(f"{n} ({residents.get(n, 0.0):,.0f} residents)" for n in names)
            out.append(f"left out as {kind}: {listed}")
    return out


@dataclass(frozen=True)
class Population:
    """Residents per origin, long: `area_code, origin, residents`, keyed by areas or small areas."""

    table: pd.DataFrame
    keyed_by: str  # "small_areas" or "areas"
    origins: tuple[str, ...]
    base: str = "all residents"  # who the counts are: all residents, or adults from min_age
    # each origin as the file names it (a wide table's column, a long table's value) -> the
    # name the outputs use (a census category's standard name)
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Counts:
    """A population file's rows read as counts: the long table, which rows were used, the
    rejects, how its names were read, warnings and manifest details."""

    long: pd.DataFrame
    ok: np.ndarray
    rejects: pd.DataFrame
    reading: PopulationCategories
    warnings: list[str]
    details: dict[str, Any]


def read_population(
    config: Config,
    *,
    area_codes: set[str],
    small_area_codes: set[str] | None,
    input_name: str = "population",
) -> tuple[Population, InputSummary]:
    """The population table (wide or long), checked against its total and its geography.

    `input_name` is `population`, or `population_previous` for the earlier snapshot (same
    formats, same `[columns.population]` mapping).
    """
    path = getattr(config.inputs, input_name)
    frame = read_table(path, input_name=input_name)
    cols = POPULATION.find(frame, config)
    POPULATION.require(cols, ["area_code"], path, config)
    is_long = (
        cols["origin"] is not None
        and cols["residents"] is not None
        and "origins" not in config.columns_for("population")
    )
    codes = parse_area_codes(frame[cols["area_code"]])
    in_small = is_in(codes, small_area_codes or set()).sum()
    in_areas = is_in(codes, area_codes).sum()
    keyed_by = "small_areas" if small_area_codes is not None and in_small >= in_areas else "areas"
    if in_small == 0 and in_areas == 0:
        fix = (
            "add inputs.small_areas for its geography"
            if small_area_codes is None
            else "check the area_code column"
        )
        raise InputError(
            input_name, path,
            [Problem(f"{path} column '{cols['area_code']}'", "matches no area or small-area code", fix)],
        )  # fmt: skip
    known = small_area_codes if keyed_by == "small_areas" else area_codes
    reasons = np.full(len(frame), "", dtype=object)
    first_reason(reasons, codes.eq("").to_numpy(), "missing area_code")
    first_reason(reasons, ~is_in(codes, known or set()), f"area_code not in {keyed_by}")
    read = (
        _long_counts(frame, cols, codes, reasons, config=config)
        if is_long
        else _wide_counts(frame, cols, codes, reasons, config=config, input_name=input_name)
    )
    if not read.ok.any():
        raise all_rejected(input_name, path, read.rejects, "check the codes and counts")
    long = (
        read.long.groupby(["area_code", "origin"], sort=True)["residents"]
        .sum()
        .astype(float)
        .reset_index()
    )
    origins = tuple(sorted(long["origin"].unique()))
    details = {"format": "long" if is_long else "wide", "keyed_by": keyed_by, **read.details}
    warnings = tuple(layout_warnings(frame) + read.warnings)
    summary = InputSummary(
        input_name, (path,), len(frame), int(read.ok.sum()), read.rejects, warnings, details
    )
    base = str(details.get("base", "all residents"))
    columns = details.get("origin_columns") or {
        k: v for k, v in read.reading.renamed.items() if v in origins
    }
    return Population(long, keyed_by, origins, base, dict(columns)), summary


def _long_counts(
    frame: pd.DataFrame,
    cols: Mapping[str, str | None],
    codes: pd.Series,
    reasons: np.ndarray,
    *,
    config: Config,
) -> _Counts:
    """A long table's rows (`area_code, origin, residents`, optionally by age band)."""
    origin = frame[str(cols["origin"])].astype(str).str.strip()
    residents = parse_numbers(frame[str(cols["residents"])])
    first_reason(reasons, origin.eq("").to_numpy(), "missing origin")
    first_reason(reasons, np.isnan(residents), "non-numeric residents")
    first_reason(reasons, residents < 0, "negative residents")
    factor = np.ones(len(frame))
    details: dict[str, Any] = {}
    if cols["age_band"]:
        bands = frame[cols["age_band"]].astype(str)
        fractions = {b: _age_fraction(b, config.population.min_age) for b in bands.unique()}
        factor = bands.map(fractions).to_numpy(dtype=float)
        first_reason(reasons, np.isnan(factor), "unparseable age_band")
        details["base"] = f"residents aged {config.population.min_age} and over"
    # a total row beside its parts would count every resident twice
    totals = [o for o in origin.unique() if _is_total(o)]  # each label once, not each row
    first_reason(reasons, origin.isin(totals).to_numpy(), "origin is a total, not an origin")
    key = pd.DataFrame(
        {"a": codes, "o": origin, "b": frame[cols["age_band"]] if cols["age_band"] else ""}
    )
    first_reason(reasons, duplicated_among_valid(key, reasons), "duplicate area_code and origin")
    ok, rejects = split_rejects(frame, reasons)
    reading = read_population_categories(sorted(origin[ok].unique()))
    left_out = origin.isin([*reading.subtotals, *reading.not_origins]).to_numpy() & ok
    warnings = _left_out_warnings(
        reading,
        residents=pd.Series(residents[left_out]).groupby(origin[left_out].to_numpy()).sum(),
    )
    keep = ok & ~left_out
    long = pd.DataFrame(
        {
            "area_code": codes[keep].to_numpy(),
            "origin": origin[keep].map(reading.renamed).to_numpy(),
            "residents": (residents * factor)[keep],
        }
    )
    return _Counts(long, ok, rejects, reading, warnings, details)


def _wide_counts(
    frame: pd.DataFrame,
    cols: Mapping[str, str | None],
    codes: pd.Series,
    reasons: np.ndarray,
    *,
    config: Config,
    input_name: str,
) -> _Counts:
    """A wide table's rows: one column per origin, optionally a total to check them against."""
    origin_cols, warnings = _origin_columns(frame, cols, config=config, input_name=input_name)
    values = np.column_stack([parse_numbers(frame[c]) for c in origin_cols])
    bad_col = np.isnan(values)
    first_bad = np.where(
        bad_col.any(axis=1), np.array(origin_cols, dtype=object)[bad_col.argmax(axis=1)], ""
    )
    first_reason(
        reasons,
        bad_col.any(axis=1),
        np.array([f"non-numeric count in column {c}" for c in first_bad], dtype=object),
    )
    first_reason(reasons, np.asarray((values < 0).any(axis=1)), "negative count")
    details: dict[str, Any] = {}
    total_col = cols["total"]
    if total_col:
        warnings += _check_total(
            frame[total_col], np.nansum(values, axis=1), reasons, column=total_col,
            tolerance=config.population.total_tolerance, details=details,
        )  # fmt: skip
    # a repeated area row would count its residents twice (like a repeated long row)
    first_reason(reasons, duplicated_among_valid(codes, reasons), "duplicate area_code and origin")
    reading = read_population_categories(_origin_names(origin_cols))
    output_names = [reading.renamed[n] for n in _origin_names(origin_cols)]
    details["detected_origins"] = output_names
    details["origin_columns"] = dict(zip(origin_cols, output_names, strict=True))
    details["total_column"] = total_col
    ok, rejects = split_rejects(frame, reasons)
    wide = pd.DataFrame(values[ok], columns=output_names)
    wide.insert(0, "area_code", codes[ok].to_numpy())
    long = wide.melt(id_vars="area_code", var_name="origin", value_name="residents")
    return _Counts(long, ok, rejects, reading, warnings, details)


def _origin_columns(
    frame: pd.DataFrame, cols: Mapping[str, str | None], *, config: Config, input_name: str
) -> tuple[list[str], list[str]]:
    """A wide table's origin columns, and warnings naming the columns left out: those listed in
    `[columns.population] origins`, else the numeric columns that are not codes, percentages,
    subtotals or headings that are not ethnic groups."""
    path = getattr(config.inputs, input_name)
    explicit = config.columns_for("population").get("origins")
    warnings: list[str] = []
    if isinstance(explicit, tuple):
        missing = [c for c in explicit if c not in frame.columns]
        if missing:
            raise InputError(
                input_name, path,
                [missing_column_problem(path, c, "population", "the origins list") for c in missing],
            )  # fmt: skip
        origin_cols = list(explicit)
    else:
        numeric = [
            c for c in frame.columns
            if c not in (cols["area_code"], cols["total"])
            and not _NOT_ORIGIN.search(c)
            and _mostly_numeric(frame[c])
        ]  # fmt: skip
        percentages = [c for c in numeric if _PERCENTAGE.search(c)]
        if percentages:
            warnings.append(
                f"{len(percentages)} percentage column(s) beside the counts not read as "
                f"origins: {', '.join(percentages)}"
            )
        candidates = [c for c in numeric if c not in percentages]
        subtotals = _subtotals(candidates)
        origin_cols = [c for c in candidates if c not in subtotals]
        if subtotals:
            warnings.append(
                f"subtotal columns not counted as origins: {', '.join(sorted(subtotals))}"
            )
        named = dict(zip(origin_cols, _origin_names(origin_cols), strict=True))
        reading = read_population_categories(list(named.values()))
        left_out = {c for c, n in named.items() if n in (*reading.subtotals, *reading.not_origins)}
        warnings += _left_out_warnings(
            reading,
            residents=pd.Series(
                {named[c]: np.nansum(parse_numbers(frame[c])) for c in left_out}, dtype=float
            ),
        )
        origin_cols = [c for c in origin_cols if c not in left_out]
    if not origin_cols:
        raise InputError(
            input_name, path,
            [Problem(str(path), "has no numeric origin columns", "give one column per origin, or a long table area_code,origin,residents")],
        )  # fmt: skip
    return origin_cols, warnings


def _check_total(
    total_text: pd.Series,
    parts: np.ndarray,
    reasons: np.ndarray,
    *,
    column: str,
    tolerance: float,
    details: dict[str, Any],
) -> list[str]:
    """Reject rows whose origins add up to more than their total by over the tolerance; warn
    about totals above their parts (groups the table leaves out) and within the tolerance below
    them. `details` gains the residents in groups left out."""
    total = parse_numbers(total_text)
    first_reason(reasons, np.isnan(total), f"non-numeric total in column {column}")
    first_reason(
        reasons,
        parts > total * (1 + tolerance),
        f"origins add up to more than {column} by over the tolerance",
    )
    ok_rows = reasons == ""
    warnings = []
    short = ok_rows & (total > parts)
    if short.any():
        warnings.append(
            f"{int(short.sum())} row(s) have {column} above the sum of their origins "
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
            f"{int(over.sum())} row(s) have origins above {column} within the tolerance"
        )
    return warnings
