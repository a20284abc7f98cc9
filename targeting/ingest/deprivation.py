"""A deprivation index by census geography, as published: the English Indices of Deprivation
(IMD 2019 by 2011 LSOA, IMD 2025 by 2021 LSOA: a score, rank or decile) or the census's household
deprivation (TS011: the share of households deprived in at least one of its four dimensions).

Police analysts weigh deprivation beside crime when they look for vulnerable localities (the
Vulnerable Localities Index); here it is one more layer the score can use. The index is keyed by
the small areas, or by another geography whose outlines `[inputs] deprivation_areas` gives, and
reaches the grid by residents (`targeting.grid.place.place_deprivation`).
"""

from __future__ import annotations

from dataclasses import dataclass

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
from targeting.io import find_column, parse_numbers, read_table

NAME = "deprivation"  # its [inputs] key, its manifest entry and its rejects file
DEPRIVATION = FileColumns(NAME, {"area_code": CENSUS_AREA_CODE})


@dataclass(frozen=True)
class Measure:
    """A published deprivation measure, recognised by its column's name."""

    label: str  # what the value is, in the outputs' words
    column: Column  # the names it is published under (case and punctuation ignored)
    higher_is_more_deprived: bool


# in order of preference: a score keeps the distances a rank or decile throws away
MEASURES = (
    Measure(
        "IMD score",
        Column(("IMDSCORE", "imd_score", "index_of_multiple_deprivation_imd_score"),
               (r"index of multiple deprivation \(imd\) score",)),
        higher_is_more_deprived=True,
    ),
    Measure(
        "IMD rank (1 = most deprived)",
        Column(("imd_rank", "index_of_multiple_deprivation_imd_rank", "IMDRANK"),
               (r"index of multiple deprivation \(imd\) rank.*",)),
        higher_is_more_deprived=False,
    ),
    Measure(
        "IMD decile (1 = most deprived)",
        Column(("imd_decile", "index_of_multiple_deprivation_imd_decile", "IMDDECIL"),
               (r"index of multiple deprivation \(imd\) decile.*",)),
        higher_is_more_deprived=False,
    ),
)  # fmt: skip
# census TS011: all households, and those deprived in no dimension (the clean extract's names,
# and Nomis's "Household deprivation: Total: All households; measures: Value")
TS011_LABEL = "share of households deprived in any dimension (census TS011)"
TS011_ALL = Column(("total_households", "all_households"), (r".*total: all households.*",))
TS011_NONE = Column(("deprived_0_dims",), (r".*not deprived in any dimension.*",))


@dataclass(frozen=True)
class Deprivation:
    """A deprivation value per area of the geography it is keyed by."""

    table: pd.DataFrame  # area_code, value
    keyed_by: str  # "small_areas", or "deprivation_areas" (its own outlines)
    label: str  # what the value is: a published measure, or the column's name
    higher_is_more_deprived: bool


def read_deprivation(
    config: Config, *, small_area_codes: set[str] | None, outline_codes: set[str] | None
) -> tuple[Deprivation | None, InputSummary | None]:
    """The deprivation table (None if not configured), keyed by `[inputs] deprivation_areas`
    when given (`outline_codes`), else by the small areas; rows whose code is not in that
    geography, or whose value is not a number, are rejected and counted."""
    path = config.inputs.deprivation
    if path is None:
        return None, None
    keyed_by, known = (
        ("deprivation_areas", outline_codes)
        if outline_codes is not None
        else ("small_areas", small_area_codes)
    )
    if known is None:
        raise InputError(NAME, path, [Problem(
            str(path), "has no geography to place it by",
            "add [inputs] small_areas (the geography it is keyed by), or the outlines of its "
            "own geography as [inputs] deprivation_areas (e.g. LSOA 2011 for IMD 2019)")])  # fmt: skip
    frame = read_table(path, input_name=NAME)
    cols = DEPRIVATION.find(frame, config)
    DEPRIVATION.require(cols, ["area_code"], path, config)
    value, label, column, higher = _values(frame, config)
    codes = parse_area_codes(frame[cols["area_code"]])
    if not is_in(codes, known).any():
        raise InputError(NAME, path, [Problem(
            f"{path} column '{cols['area_code']}'", f"matches no code of {keyed_by}",
            "give the outlines of the geography it is keyed by as [inputs] deprivation_areas "
            "(IMD 2019 is by 2011 LSOA, IMD 2025 and TS011 by 2021 LSOA)")])  # fmt: skip
    reasons = np.full(len(frame), "", dtype=object)
    first_reason(reasons, codes.eq("").to_numpy(), "missing area_code")
    first_reason(reasons, ~is_in(codes, known), f"area_code not in {keyed_by}")
    first_reason(reasons, ~np.isfinite(value), f"non-numeric value in column {column}")
    first_reason(reasons, duplicated_among_valid(codes, reasons), "duplicate area_code")
    ok, rejects = split_rejects(frame, reasons)
    if not ok.any():
        raise all_rejected(NAME, path, rejects, "check the codes and the values")
    table = pd.DataFrame({"area_code": codes[ok].to_numpy(), "value": value[ok]})
    details = {"measure": label, "column": column, "higher_is_more_deprived": higher,
               "keyed_by": keyed_by}  # fmt: skip
    summary = InputSummary(NAME, (path,), len(frame), int(ok.sum()), rejects,
                           tuple(layout_warnings(frame)), details)  # fmt: skip
    return Deprivation(table, keyed_by, label, higher), summary


def _values(frame: pd.DataFrame, config: Config) -> tuple[np.ndarray, str, str, bool]:
    """Each row's value, what it is, the column(s) it comes from, and which way it runs: the
    `[deprivation] column`, else the first published measure the file has."""
    path = config.inputs.deprivation
    settings = config.deprivation
    columns = list(frame.columns)
    if settings.column is not None:
        if settings.column not in columns:
            raise InputError(NAME, path, [Problem(
                f"{path} column '{settings.column}'", "is missing (named by [deprivation] column)",
                f"use one of: {', '.join(map(str, columns))}")])  # fmt: skip
        known = next((m for m in MEASURES if _find([settings.column], m.column)), None)
        higher = settings.higher_is_more_deprived
        if higher is None and known is None:
            raise InputError(NAME, path, [Problem(
                f"{path} column '{settings.column}'", "is not a published measure, so which way "
                "it runs is not known",
                "add [deprivation] higher_is_more_deprived = true (a score) or false (a rank)")])  # fmt: skip
        label = known.label if known is not None else settings.column
        direction = higher if higher is not None else bool(known and known.higher_is_more_deprived)
        return parse_numbers(frame[settings.column]), label, settings.column, direction
    for measure in MEASURES:
        found = _find(columns, measure.column)
        if found is not None:
            higher = settings.higher_is_more_deprived
            direction = measure.higher_is_more_deprived if higher is None else higher
            return parse_numbers(frame[found]), measure.label, found, direction
    every, none = _find(columns, TS011_ALL), _find(columns, TS011_NONE)
    if every is not None and none is not None:
        total = parse_numbers(frame[every])
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, 1.0 - parse_numbers(frame[none]) / total, np.nan)
        return share, TS011_LABEL, f"1 - {none} / {every}", True
    raise InputError(NAME, path, [Problem(
        str(path), "has no deprivation measure it recognises (an IMD score, rank or decile, or "
        "census TS011's households)", "name the column: [deprivation] column = \"Your column\" "
        "and higher_is_more_deprived = true or false")])  # fmt: skip


def _find(columns: list[str], column: Column) -> str | None:
    """The file's column published under one of `column`'s names, if any."""
    return find_column(columns, column.aliases[0], mapping={}, aliases=column.aliases,
                       patterns=column.patterns)  # fmt: skip
