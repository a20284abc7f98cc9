"""The user's `[origins] map`: sign-up labels mapped to the population's categories by hand."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from targeting.errors import InputError, Problem
from targeting.ingest.common import (
    InputSummary,
    duplicated_among_valid,
    first_reason,
    split_rejects,
)
from targeting.io import read_table
from targeting.origins import label_key, population_origin_of, read_population_categories


def read_origin_map(
    path: Path, *, population_origins: Sequence[str]
) -> tuple[dict[str, str], InputSummary]:
    """A user's `origin, population_origin` CSV, each row checked against the population.

    A `population_origin` may name the population's category in any case and punctuation, or by
    any crosswalk label of the same census category ("white" or "WhiteBrit" for "White British").
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
    population = read_population_categories(population_origins)
    resolved = target.map(lambda t: population_origin_of(t, population) if t else None)
    reasons = np.full(len(frame), "", dtype=object)
    first_reason(
        reasons, (origin.eq("") | target.eq("")).to_numpy(), "blank origin or population_origin"
    )
    first_reason(reasons, resolved.isna().to_numpy(), "population_origin not in the population")
    first_reason(
        reasons,
        duplicated_among_valid(origin.map(label_key), reasons),
        "origin mapped more than once",
    )
    ok, rejects = split_rejects(frame, reasons)
    mapping = dict(zip(origin[ok], resolved[ok], strict=True))
    return mapping, InputSummary("origins_map", (path,), len(frame), int(ok.sum()), rejects)
