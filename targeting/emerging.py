"""Emerging communities: where an origin has grown since an earlier census snapshot.

A neighbourhood team meets a new community before it shows in sign-ups; comparing two
population snapshots on the same grid shows where one is arriving. Census counts are public, so
nothing here is suppressed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from targeting.h3cells import cell_parents

EMERGING_COLUMNS = (
    "level", "code", "name", "origin", "residents_before", "residents_now", "increase", "growth",
)  # fmt: skip


def _parents(cells: pd.Series, resolution: int) -> dict[str, str]:
    unique = cells.unique()
    return dict(zip(unique, cell_parents(unique, resolution=resolution), strict=True))


def find_emerging(
    current: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    areas: pd.DataFrame,
    cell_resolution: int,
    min_growth: float,
    min_increase: float,
) -> pd.DataFrame:
    """Areas and cells where an origin grew by more than `min_increase` residents and by more
    than `min_growth` of its earlier count (or appeared from none).

    `current` and `previous` are `cell, area_code, origin, residents` on the same grid; cells are
    compared at `cell_resolution` (the map's resolution), where allocation noise is smaller.
    """
    names = dict(zip(areas["area_code"], areas["area_name"], strict=True))
    frames = []
    for level in ("area", "cell"):
        both = []
        for label, table in (("residents_now", current), ("residents_before", previous)):
            key = (
                table["area_code"]
                if level == "area"
                else table["cell"].map(_parents(table["cell"], cell_resolution))
            )
            both.append(
                table.assign(code=key.to_numpy())
                .groupby(["code", "origin"])["residents"]
                .sum()
                .rename(label)
            )
        joined = pd.concat(both, axis=1).fillna(0.0).reset_index()
        joined["increase"] = joined["residents_now"] - joined["residents_before"]
        with np.errstate(divide="ignore", invalid="ignore"):
            joined["growth"] = np.where(
                joined["residents_before"] > 0,
                joined["increase"] / joined["residents_before"],
                np.inf,
            )
        keep = (joined["increase"] > min_increase) & (joined["growth"] > min_growth)
        out = joined[keep].assign(level=level)
        out["name"] = out["code"].map(names) if level == "area" else ""
        frames.append(out)
    result = pd.concat(frames, ignore_index=True)
    result["growth"] = result["growth"].replace(np.inf, np.nan)
    result = result.sort_values(
        ["level", "increase", "code", "origin"], ascending=[True, False, True, True]
    )
    return result[list(EMERGING_COLUMNS)].reset_index(drop=True)
