"""Origin labels: sign-up origins (ORIGINS-style names) mapped onto the population's categories.

Representation is computed in the population's categories. A sign-up label maps, in order, to an
identical population category, to the user's `[origins] map`, or through the shipped default map
(ORIGINS-style name -> 2011/2021 census category -> the population's column for that category).
Anything else is unknown origin and is reported with its count, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from targeting.errors import InputError, Problem
from targeting.ingest.common import (
    InputSummary,
    duplicated_among_valid,
    first_reason,
    split_rejects,
)
from targeting.io import normalise_name, read_table
from targeting.reference import read_reference

UNKNOWN_LABELS = frozenset({"", "notfound", "unknown", "unclassified", "none", "nan"})


@dataclass(frozen=True)
class OriginMapping:
    """How each sign-up label became a population category, and what could not be mapped."""

    to_population: Mapping[str, str]  # sign-up label -> population origin
    unmapped: Mapping[str, int]  # label with no mapping -> sign-ups carrying it
    not_found: int  # sign-ups with an empty or "Not Found" origin
    census_scheme: str | None  # which census vintage the default map matched, if used


def read_origin_taxonomy() -> pd.DataFrame:
    """The shipped taxonomy: `origin, group, description` (origins roll up into groups)."""
    return read_reference("origin_taxonomy.csv").copy()


def read_origin_map(
    path: Path, *, population_origins: Sequence[str]
) -> tuple[dict[str, str], InputSummary]:
    """A user's `origin, population_origin` CSV, each row checked against the population.

    Rows that cannot be used (blank, repeated, or naming a category the population does not have)
    go to the rejects, so a typo in the map is visible rather than silently unmapped.
    """
    frame = read_table(path, input_name="origins_map")
    missing = [c for c in ("origin", "population_origin") if c not in frame.columns]
    if missing:
        raise InputError(
            "origins_map",
            path,
            [
                Problem(
                    f"{path} column '{c}'",
                    "is missing",
                    "the map needs columns origin,population_origin",
                )
                for c in missing
            ],
        )
    origin = frame["origin"].astype(str).str.strip()
    target = frame["population_origin"].astype(str).str.strip()
    reasons = np.full(len(frame), "", dtype=object)
    first_reason(
        reasons, (origin.eq("") | target.eq("")).to_numpy(), "blank origin or population_origin"
    )
    first_reason(
        reasons,
        ~target.isin(set(population_origins)).to_numpy(),
        "population_origin not in the population",
    )
    first_reason(reasons, duplicated_among_valid(origin, reasons), "origin mapped more than once")
    ok, rejects = split_rejects(frame, reasons)
    mapping = dict(zip(origin[ok], target[ok], strict=True))
    return mapping, InputSummary("origins_map", (path,), len(frame), int(ok.sum()), rejects)


def census_category_of(population_origins: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """The census scheme the population's origin names belong to, and category code -> name.

    The scheme is the one whose categories (by code, label or alias) match most of the names.
    """
    cats = read_reference("census_categories.csv")
    best: tuple[str | None, dict[str, str]] = (None, {})
    for scheme, rows in cats.groupby("scheme", sort=True):
        lookup: dict[str, str] = {}
        for code, label, aliases in zip(
            rows["category"], rows["label"], rows["aliases"], strict=True
        ):
            for name in (code, label, *aliases.split("|")):
                if name:
                    lookup.setdefault(normalise_name(name), code)
        found: dict[str, str] = {}
        for pop in population_origins:
            code = lookup.get(normalise_name(pop))
            if code is not None:
                found.setdefault(code, pop)
        if len(found) > len(best[1]):
            best = (str(scheme), found)
    return best


def default_origin_map(population_origins: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """ORIGINS-style name -> population origin, through the shipped census map."""
    scheme, code_to_pop = census_category_of(population_origins)
    if scheme is None:
        return None, {}
    cats = read_reference("census_categories.csv")
    broad = dict(
        zip(
            cats.loc[cats["scheme"] == scheme, "category"],
            cats.loc[cats["scheme"] == scheme, "broad"],
            strict=True,
        )
    )
    table = read_reference("origins_to_census.csv")
    mapping: dict[str, str] = {}
    for origin, code in zip(table["origin"], table[scheme], strict=True):
        target = code_to_pop.get(code)
        if (
            target is None
            and code_to_pop.get("mixed")
            and code.startswith(("white_black", "white_asian", "other_mixed"))
        ):
            target = code_to_pop["mixed"]
        if target is None:
            target = code_to_pop.get(broad.get(code, ""))
        if target is not None:
            mapping[origin] = target
    return scheme, mapping


def map_origins(
    labels: pd.Series, population_origins: Sequence[str], *, user_map: Mapping[str, str] | None
) -> tuple[pd.Series, OriginMapping]:
    """Each sign-up label as a population origin (NA where unknown), and how it was mapped."""
    clean = labels.fillna("").astype(str).str.strip()
    pop_by_norm = {normalise_name(p): p for p in population_origins}
    scheme, default = default_origin_map(population_origins)
    user = {normalise_name(k): v for k, v in (user_map or {}).items()}
    distinct = pd.unique(clean)
    to_pop: dict[str, str] = {}
    for label in distinct:
        norm = normalise_name(label)
        if norm in UNKNOWN_LABELS:
            continue
        target = pop_by_norm.get(norm) or user.get(norm) or default.get(label)
        if target is None:
            target = next((v for k, v in default.items() if normalise_name(k) == norm), None)
        if target is not None:
            to_pop[label] = target
    mapped = clean.map(to_pop)
    counts = clean.value_counts()
    unknown_mask = clean.map(lambda s: normalise_name(s) in UNKNOWN_LABELS)
    unmapped = {
        str(k): int(v)
        for k, v in counts.items()
        if k not in to_pop and normalise_name(str(k)) not in UNKNOWN_LABELS
    }
    used_default = any(label not in pop_by_norm.values() and label not in user for label in to_pop)
    return mapped, OriginMapping(
        to_population=to_pop,
        unmapped=dict(sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0]))),
        not_found=int(unknown_mask.sum()),
        census_scheme=scheme if used_default else None,
    )
