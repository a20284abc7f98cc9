"""The portal's published series, protected as one table over time.

Publishing the same table at many dates makes the differences between dates counts too (the
sign-ups of an origin in a ward between two runs), and a count withheld at one date could be
recovered from the others. Cell suppression would have to follow every small difference through
every date and level; instead every sign-up-derived count the portal shows (at every level,
origin and date, each on its own) goes through one rounding rule, `publish_counts`:

- 0 is published as 0;
- 1 to threshold - 1 is withheld (shown as "<10" at the default threshold of 10);
- anything larger is rounded to the nearest multiple of the threshold (halves up), so a
  published 10 means 10 to 14 and a published 40 means 35 to 44.

Every measure the portal shows (sign-ups per 1,000 residents, shares, the representation index,
parity and penetration gaps, the share of low ratings) is computed from the rounded counts and
the public census and Watch figures only, never from an exact count, so no published number
narrows a count below its rounding interval; and since each count is rounded on its own, parts
need not add up to their rounded total. Counts that are not about people (hotspots planned) and
the public census and Watch figures are published as they are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from targeting.history import History
from targeting.representation import FORCE_CODE, FORCE_NAME, count_hierarchy

LEVELS = ("force", "parent", "area")
# the per-place counts derived from sign-ups and ratings: each published through the rule
PROTECTED = ("signups", "signups_known", "comms_issue", "incommunicado", "ratings", "low_ratings")
# counts a run has only with a visited log or a plan (blank otherwise, never a misleading 0);
# sign-ups in visited hotspots go through the rule too
OPTIONAL = ("hotspots_planned", "hotspots_visited", "visit_signups")
# below this many ratings (exact) a mean rating is not shown
MEAN_RATING_MIN = 2


def publish_counts(values: np.ndarray | pd.Series, *, threshold: int) -> np.ndarray:
    """Counts as the portal publishes them: 0 stays 0, 1 to `threshold` - 1 are withheld
    (NaN), larger counts are rounded to the nearest multiple of `threshold`, halves up."""
    v = np.asarray(values, dtype=float)
    rounded = np.floor(v / threshold + 0.5) * threshold
    return np.where((v > 0) & (v < threshold), np.nan, rounded)


def interval_of(published: np.ndarray, *, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """What a reader knows of each count from its published value: the smallest and largest
    count that publishes as it (for the audit and the portal's note)."""
    p = np.asarray(published, dtype=float)
    half = threshold // 2
    low = np.where(np.isnan(p), 1, np.where(p == 0, 0, np.maximum(p - half, threshold)))
    high = np.where(np.isnan(p), threshold - 1, np.where(p == 0, 0, p + threshold - half - 1))
    return low.astype(np.int64), high.astype(np.int64)


@dataclass(frozen=True)
class Series:
    """The published series: per date and place, and per date, place and origin."""

    force: str
    dates: tuple[dt.date, ...]
    places: pd.DataFrame  # as_of, level, code, name, parent_code, parent_name and measures
    origins: pd.DataFrame  # as_of, level, code, origin_level, origin, measures
    threshold: int
    quality_days: int


def _geo_keys(areas: pd.DataFrame) -> pd.DataFrame:
    """Each area's row at each level it rolls up to: the area, its parent and the force."""
    has_parent = areas["parent_code"].notna() & areas["parent_code"].astype(str).ne("")
    frames = [
        areas.assign(level="area", code=areas["area_code"], name=areas["area_name"]),
        areas[has_parent].assign(
            level="parent",
            code=areas.loc[has_parent, "parent_code"],
            name=areas.loc[has_parent, "parent_name"].fillna(areas.loc[has_parent, "parent_code"]),
        ),
        areas.assign(level="force", code=FORCE_CODE, name=FORCE_NAME),
    ]
    return pd.concat(frames, ignore_index=True)


def _places(history: History, *, threshold: int) -> pd.DataFrame:
    """Per date and place (area, parent, force): public counts as they are, sign-up-derived
    counts rounded, and the measures computed from those."""
    rolled = _geo_keys(history.areas)
    public = ["residents", "households", "watch_households", "rating_total"]
    sums = (
        rolled.groupby(["as_of", "level", "code"], sort=False)[[*public, *PROTECTED]]
        .sum()
        .join(
            rolled.groupby(["as_of", "level", "code"], sort=False)[list(OPTIONAL)].sum(min_count=1)
        )
    )
    names = rolled.groupby(["as_of", "level", "code"], sort=False)[["name"]].first()
    parents = history.areas.drop_duplicates("area_code").set_index("area_code")[
        ["parent_code", "parent_name"]
    ]
    places = sums.join(names).reset_index()
    places = places.join(parents, on="code")
    places.loc[places["level"] != "area", ["parent_code", "parent_name"]] = None
    exact_ratings = places["ratings"].to_numpy(dtype=float)
    for col in (*PROTECTED, "visit_signups"):
        values = places[col].astype(float)
        places[col] = np.where(values.isna(), np.nan, publish_counts(values, threshold=threshold))
    with np.errstate(invalid="ignore", divide="ignore"):
        residents = places["residents"].to_numpy(dtype=float)
        places["per_1000"] = np.where(residents > 0, places["signups"] / residents * 1000, np.nan)
        places["watch_coverage"] = np.where(
            places["households"] > 0, places["watch_households"] / places["households"], np.nan
        )
        places["low_share"] = np.where(
            places["ratings"] > 0, places["low_ratings"] / places["ratings"], np.nan
        )
        mean = places["rating_total"].to_numpy(dtype=float) / exact_ratings
        places["mean_rating"] = np.where(
            exact_ratings >= max(threshold, MEAN_RATING_MIN), np.round(mean, 1), np.nan
        )
        unreachable = places["comms_issue"] + places["incommunicado"]
        places["unreachable_per_1000"] = np.where(
            places["signups"] > 0, unreachable / places["signups"] * 1000, np.nan
        )
    force = places[places["level"] == "force"].set_index("as_of")
    rate = force["signups_known"] / force["residents"]
    places["penetration_gap"] = np.ceil(
        np.maximum(0, places["as_of"].map(rate) * places["residents"] - places["signups_known"])
    )
    places["residents"] = places["residents"].round()
    return places.drop(columns=["rating_total"])


def _origins(history: History, *, threshold: int) -> pd.DataFrame:
    """Per date, place and origin (and origin group): residents and target rate (public), the
    rounded sign-ups, and the index and parity gap computed from the rounded counts."""
    # every date at once: a pair of columns per date, summed up both hierarchies together
    dates = sorted(history.origins["as_of"].unique())
    wide = history.origins.pivot_table(
        index=["area_code", "origin"], columns="as_of", values=["residents", "registered"],
        aggfunc="sum",
    ).reindex(columns=pd.MultiIndex.from_product([["residents", "registered"], dates]))  # fmt: skip
    wide.columns = [f"{name}|{i}" for name, i in
                    zip(wide.columns.get_level_values(0),
                        [dates.index(d) for d in wide.columns.get_level_values(1)], strict=True)]  # fmt: skip
    latest = history.areas[history.areas["as_of"] == dates[-1]]
    # one block of numbers (a frame of many separate columns is slow to extend)
    leaves = wide.reset_index().copy()
    summed, *_ = count_hierarchy(leaves, areas=latest, values=list(wide.columns))
    keys = ["level", "geo", "origin_level", "node"]
    counts = pd.concat(
        [summed[[*keys, f"residents|{i}", f"registered|{i}"]]
         .set_axis([*keys, "residents", "registered"], axis=1).assign(as_of=day)
         for i, day in enumerate(dates)],
        ignore_index=True,
    ).rename(columns={"geo": "code"})  # fmt: skip
    counts["registered"] = publish_counts(counts["registered"], threshold=threshold)
    totals = counts[counts["origin_level"] == "total"].set_index(["as_of", "level", "code"])
    key = pd.MultiIndex.from_frame(counts[["as_of", "level", "code"]])
    all_residents = totals["residents"].reindex(key).to_numpy()
    known = totals["registered"].reindex(key).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        target = np.where(all_residents > 0, counts["residents"] / all_residents, np.nan)
        actual = np.where(known > 0, counts["registered"] / known, np.nan)
        index = np.where(target > 0, 100 * actual / target, np.nan)
        gap = np.where(
            (known > 0) & (target > 0) & (target < 1),
            np.ceil(np.maximum(0, (target * known - counts["registered"]) / (1 - target))),
            np.nan,
        )
    out = counts[counts["origin_level"] != "total"].assign(
        target_rate=target[counts["origin_level"].to_numpy() != "total"],
        actual_rate=actual[counts["origin_level"].to_numpy() != "total"],
        representation_index=index[counts["origin_level"].to_numpy() != "total"],
        parity_gap=gap[counts["origin_level"].to_numpy() != "total"],
    )
    out = out.rename(columns={"node": "origin"})
    out["residents"] = out["residents"].round()
    return out[["as_of", "level", "code", "origin_level", "origin", "residents", "registered",
                "target_rate", "actual_rate", "representation_index", "parity_gap"]
               ].reset_index(drop=True)  # fmt: skip


def _place_parity_gaps(places: pd.DataFrame, origins: pd.DataFrame) -> pd.Series:
    """Each place's parity gap from the rounded counts: the sum over origins of the shortfall
    below their share of the place's sign-ups (a withheld count taken as half the threshold)."""
    rows = origins[origins["origin_level"] == "origin"]
    known = places.set_index(["as_of", "level", "code"])["signups_known"]
    n = known.reindex(pd.MultiIndex.from_frame(rows[["as_of", "level", "code"]])).to_numpy()
    shortfall = np.maximum(0, rows["target_rate"].to_numpy() * n - rows["registered"].to_numpy())
    summed = (
        pd.Series(shortfall, index=rows.index)
        .groupby([rows["as_of"], rows["level"], rows["code"]])
        .sum(min_count=1)
    )
    return summed.reindex(pd.MultiIndex.from_frame(places[["as_of", "level", "code"]])).round()


def publish_series(history: History, *, threshold: int) -> Series:
    """The portal's series from a force's history: every date, every level, protected by
    `threshold` (the largest of its runs' disclosure thresholds)."""
    places = _places(history, threshold=threshold)
    origins = _origins(history, threshold=threshold)
    filled = origins.assign(
        registered=origins["registered"].fillna(threshold / 2)
    )  # a withheld count, for the place's gap only
    places["parity_gap"] = _place_parity_gaps(places, filled).to_numpy()
    order = {level: i for i, level in enumerate(LEVELS)}
    places = places.sort_values(
        ["as_of", "level", "code"], key=lambda c: c.map(order) if c.name == "level" else c
    ).reset_index(drop=True)
    dates = tuple(sorted(history.snapshots["as_of"]))
    days = int(history.snapshots["quality_days"].max())
    return Series(history.force, dates, places, origins, threshold, days)
