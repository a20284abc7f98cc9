"""Origin labels: sign-up origins (ORIGINS-style names) mapped onto the population's categories.

Representation is computed in the population's categories. A sign-up label maps, in order, to an
identical population category, to the user's `[origins] map`, or through the shipped default map
(ORIGINS-style name -> 2011/2021 census category -> the population's column for that category).
Anything else is unknown origin and is reported with its count, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from targeting.errors import InputError, Problem
from targeting.io import normalise_name, read_table

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference_data"
UNKNOWN_LABELS = frozenset({"", "notfound", "unknown", "unclassified", "none", "nan"})


@dataclass(frozen=True)
class OriginMapping:
    """How each sign-up label became a population category, and what could not be mapped."""

    to_population: Mapping[str, str]  # sign-up label -> population origin
    unmapped: Mapping[str, int]  # label with no mapping -> sign-ups carrying it
    not_found: int  # sign-ups with an empty or "Not Found" origin
    census_scheme: str | None  # which census vintage the default map matched, if used


@cache
def _reference(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / name, dtype=str, keep_default_na=False)


def read_origin_taxonomy() -> pd.DataFrame:
    """The shipped taxonomy: `origin, group, description` (origins roll up into groups)."""
    return _reference("origin_taxonomy.csv").copy()


def read_origin_map(path: Path) -> dict[str, str]:
    """A user's `origin, population_origin` CSV as a dict; duplicates or blanks are fatal."""
    frame = read_table(path, input_name="origins.map")
    missing = [c for c in ("origin", "population_origin") if c not in frame.columns]
    if missing:
        raise InputError(
            "origins.map",
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
    problems = [
        Problem(f"{path} row {i + 2}", f"origin {o!r} is mapped more than once", "keep one row")
        for i, o in enumerate(frame["origin"])
        if frame["origin"].iloc[:i].eq(o).any()
    ]
    if problems:
        raise InputError("origins.map", path, problems)
    return dict(
        zip(frame["origin"].str.strip(), frame["population_origin"].str.strip(), strict=True)
    )


def census_category_of(population_origins: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """The census scheme the population's origin names belong to, and category code -> name.

    The scheme is the one whose categories (by code, label or alias) match most of the names.
    """
    cats = _reference("census_categories.csv")
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
    cats = _reference("census_categories.csv")
    broad = dict(
        zip(
            cats.loc[cats["scheme"] == scheme, "category"],
            cats.loc[cats["scheme"] == scheme, "broad"],
            strict=True,
        )
    )
    table = _reference("origins_to_census.csv")
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
    user = {k: v for k, v in (user_map or {}).items() if v in set(population_origins)}
    distinct = pd.unique(clean)
    to_pop: dict[str, str] = {}
    for label in distinct:
        norm = normalise_name(label)
        if norm in UNKNOWN_LABELS:
            continue
        target = pop_by_norm.get(norm) or user.get(label) or default.get(label)
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
