"""Scores that rank areas and cells for engagement, the tactic each gets, and the reason a sergeant
can read aloud in a tasking meeting.

Each score component is a number per unit (area or cell) where more means more need; components are
normalised to rank percentiles in [0, 1] so that a weight means the same for every component, and
the score is their weighted mean. A weight of 0 removes a component; a component whose input was
not given is switched off with a note, never read as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from targeting.config.model import ScoringConfig


@dataclass(frozen=True)
class Force:
    """Force-wide rates the components and reasons compare units against."""

    signups_per_resident: float
    crimes_per_1000: float
    sac_per_1000: float
    low_rating_share: float
    deprivation_value: float = float("nan")  # residents-weighted, as published
    deprivation_need: float = float("nan")  # the same, signed so that more is more deprived


def _per_1000(units: pd.DataFrame, column: str) -> np.ndarray:
    residents = units["residents"].to_numpy(dtype=float)
    scale = np.where(residents > 0, 1000.0 / np.where(residents > 0, residents, 1.0), np.nan)
    return units[column].to_numpy(dtype=float) * scale


def _watch_gap(units: pd.DataFrame, force: Force, scoring: ScoringConfig) -> np.ndarray:
    households = units["households"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        watch = units["watch_households"].to_numpy(dtype=float) / households
    return np.where(households > 0, 1.0 - np.minimum(1.0, watch), np.nan)


def low_rating_share(
    low: np.ndarray, ratings: np.ndarray, *, force_share: float, prior: float
) -> np.ndarray:
    """The share of low ratings, shrunk towards the force's share by `prior` ratings' worth, so
    that a unit with three ratings, all low, does not outrank one with three hundred, mostly
    low (the score's `low_satisfaction` and the map's satisfaction layer)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(low, dtype=float) + prior * force_share) / (
            np.asarray(ratings, dtype=float) + prior
        )


def _low_satisfaction(units: pd.DataFrame, force: Force, scoring: ScoringConfig) -> np.ndarray:
    return low_rating_share(
        units["low_ratings"].to_numpy(dtype=float),
        units["ratings"].to_numpy(dtype=float),
        force_share=force.low_rating_share,
        prior=scoring.rating_prior,
    )


def _gap_clause(raw: pd.Series, units: pd.DataFrame, force: Force, who: pd.Series) -> pd.Series:
    named = who.reindex(units.index).fillna("").astype(str)
    prefix = np.where(named != "", "largest gap: " + named + " residents, ", "")
    return prefix + raw.round(0).map("{:,.0f}".format).astype(object) + " sign-ups short of parity"


def _penetration_clause(
    raw: pd.Series, units: pd.DataFrame, force: Force, who: pd.Series
) -> pd.Series:
    n = units["registered_known"].to_numpy(dtype=float)
    res = units["residents"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_1000 = pd.Series(1000.0 * n / res, index=units.index)
    return (
        per_1000.map("{:.1f}".format).astype(object)
        + f" sign-ups per 1,000 residents against {1000.0 * force.signups_per_resident:.1f} "
        "force-wide"
    )


def _per_resident(units: pd.DataFrame, column: str) -> np.ndarray:
    """A residents-weighted mean: `column` (a sum over residents) per resident it covers."""
    if column not in units:
        return np.full(len(units), np.nan)
    covered = units["deprivation_residents"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(covered > 0, units[column].to_numpy(dtype=float) / covered, np.nan)


def _figure(value: float) -> str:
    """A number at the precision its size calls for: ranks whole, scores to one decimal place,
    shares to two."""
    if np.isnan(value):
        return "unknown"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


def _deprivation_clause(
    raw: pd.Series, units: pd.DataFrame, force: Force, who: pd.Series
) -> pd.Series:
    more = np.where(raw.to_numpy(dtype=float) > force.deprivation_need, "more", "less")
    shown = pd.Series(_per_resident(units, "deprivation_sum"), index=units.index).map(_figure)
    return (
        pd.Series(more, index=units.index).astype(object)
        + " deprived than the force as a whole (index "
        + shown.astype(object)
        + f" against {_figure(force.deprivation_value)} force-wide)"
    )


@dataclass(frozen=True)
class Component:
    """A score component, declared once: config weights, ranked-area columns, manifest notes,
    tactics and reasons all read it from `COMPONENTS`.

    `value` gives each unit's raw value, more meaning more need (NaN where its input is absent);
    `clause` says it in plain words for a reason; `cell_clause`, where given, is what a cell's
    reason says instead, since the figure could reveal a cell's few sign-ups. `measure`, where
    given, names a figure in the input's own units that the ranked areas publish beside the
    component, and how a unit's is worked out.
    """

    name: str
    default_weight: float
    tactic: str  # the tactic it calls for: door, street or station
    needs: str  # its input, named in the note when that input is absent
    value: Callable[[pd.DataFrame, Force, ScoringConfig], np.ndarray]
    clause: Callable[[pd.Series, pd.DataFrame, Force, pd.Series], pd.Series]
    cell_clause: str | None = None
    measure: tuple[str, Callable[[pd.DataFrame], np.ndarray]] | None = None


# Which tactic follows from the component that drives a unit's score: door-knocking gave by far
# the most sign-ups per hotspot (about nine times control), so sign-up shortfalls get doors;
# street engagement raised trust and confidence where it was low; the mobile station went to
# areas of low engagement during Neighbourhood Watch week, to promote Watch schemes.
COMPONENTS: tuple[Component, ...] = (
    Component(
        "representation_gap", 1.0, "door",
        "published parity gap (absent, or withheld as small numbers)",
        lambda units, force, scoring: units["parity_gap"].to_numpy(dtype=float),
        _gap_clause,
        cell_clause="home to residents of under-represented origins",
    ),
    Component(
        "watch_gap", 0.5, "station", "schemes (or households)", _watch_gap,
        lambda raw, units, force, who: "Watch covers "
        + (1 - raw).map("{:.0%}".format).astype(object) + " of households",
    ),
    Component(
        "crime", 0.25, "street", "crimes",
        lambda units, force, scoring: _per_1000(units, "crimes"),
        lambda raw, units, force, who: raw.map("{:.0f}".format).astype(object)
        + f" crimes per 1,000 residents (force {force.crimes_per_1000:.0f})",
    ),
    Component(
        "sac", 0.25, "street", "crimes",
        lambda units, force, scoring: _per_1000(units, "sac_crimes"),
        lambda raw, units, force, who: raw.map("{:.0f}".format).astype(object)
        + " serious acquisitive crimes per 1,000 residents "
        + f"(force {force.sac_per_1000:.0f})",
    ),
    Component(
        "low_satisfaction", 0.25, "street", "ratings", _low_satisfaction,
        lambda raw, units, force, who: raw.map("{:.0%}".format).astype(object)
        + f" of message ratings low (force {force.low_rating_share:.0%})",
    ),
    Component(
        "low_penetration", 0.5, "door",
        "published penetration gap (absent, or withheld as small numbers)",
        lambda units, force, scoring: units["penetration_gap"].to_numpy(dtype=float),
        _penetration_clause,
    ),
    # deprivation, as police analysts weigh it in the Vulnerable Localities Index: off unless
    # a force gives it a weight, so that adding the layer changes no ranking by itself
    Component(
        "deprivation", 0.0, "door", "deprivation index",
        lambda units, force, scoring: _per_resident(units, "deprivation_need"),
        _deprivation_clause,
        measure=("deprivation_value", lambda units: _per_resident(units, "deprivation_sum")),
    ),
)  # fmt: skip
COMPONENT_NAMES = tuple(c.name for c in COMPONENTS)
MEASURE_NAMES = tuple(c.measure[0] for c in COMPONENTS if c.measure is not None)
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {c.name: c.default_weight for c in COMPONENTS}
)
_BY_NAME = {c.name: c for c in COMPONENTS}


def force_rates(units: pd.DataFrame) -> Force:
    """The force-wide rates, from the sums of every unit (areas, or fragments)."""
    counted = ["residents", "registered_known", "crimes", "sac_crimes", "ratings", "low_ratings",
               "deprivation_residents", "deprivation_sum", "deprivation_need"]  # fmt: skip
    total = units.reindex(columns=counted).sum(min_count=1)

    def ratio(num: str, den: str, scale: float = 1.0) -> float:
        n, d = total[num], total[den]
        return float(scale * n / d) if pd.notna(n) and pd.notna(d) and d > 0 else float("nan")

    return Force(
        signups_per_resident=ratio("registered_known", "residents"),
        crimes_per_1000=ratio("crimes", "residents", 1000.0),
        sac_per_1000=ratio("sac_crimes", "residents", 1000.0),
        low_rating_share=ratio("low_ratings", "ratings"),
        deprivation_value=ratio("deprivation_sum", "deprivation_residents"),
        deprivation_need=ratio("deprivation_need", "deprivation_residents"),
    )


def units_to_components(
    units: pd.DataFrame, *, force: Force, scoring: ScoringConfig
) -> pd.DataFrame:
    """Each unit's raw component values (more = more need); NaN where its input is absent."""
    return pd.DataFrame(
        {c.name: c.value(units, force, scoring) for c in COMPONENTS}, index=units.index
    )


def unit_measures(units: pd.DataFrame) -> pd.DataFrame:
    """Each unit's figures in the inputs' own units that the ranked areas publish beside their
    components (`Component.measure`)."""
    return pd.DataFrame(
        {c.measure[0]: c.measure[1](units) for c in COMPONENTS if c.measure is not None},
        index=units.index,
    )


def rank_percentiles(raw: pd.DataFrame) -> pd.DataFrame:
    """Each column as rank percentiles in [0, 1] (ties share their mean rank; NaN stays NaN).

    A column with one distinct value carries no information and gets 0.5 everywhere.
    """
    ranks = raw.rank(method="average")
    counts = raw.notna().sum()
    spread = (counts - 1).where(counts > 1)
    return ((ranks - 1) / spread).fillna(0.5).where(raw.notna())


def effective_weights(
    weights: Mapping[str, float], raw: pd.DataFrame
) -> tuple[dict[str, float], list[str]]:
    """The weights to score with, and a note per component switched off for lack of input."""
    out: dict[str, float] = {}
    notes: list[str] = []
    for component in COMPONENTS:
        name = component.name
        w = float(weights.get(name, 0.0))
        if w > 0 and raw[name].isna().all():
            notes.append(f"score: {name} switched off (weight {w:g} to 0): no {component.needs}")
            w = 0.0
        out[name] = w
    return out, notes


def score_units(normalised: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series:
    """The weighted mean of the normalised components, over those a unit has a value for.

    A component with weight 0 takes no part at all, not even in the denominator.
    """
    used = [c for c in COMPONENT_NAMES if weights.get(c, 0.0) > 0]
    if not used:
        return pd.Series(np.nan, index=normalised.index, name="score")
    values = normalised[used].to_numpy(dtype=float)
    w = np.array([weights[c] for c in used], dtype=float)
    present = ~np.isnan(values)
    total_w = (present * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(total_w > 0, np.nansum(values * w, axis=1) / total_w, np.nan)
    return pd.Series(score, index=normalised.index, name="score")


def dominant_components(normalised: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """Per unit, the components ordered by their weighted contribution: columns `first`, `second`
    (NA where no component contributes), with ties resolved in `COMPONENTS` order."""
    contrib = normalised.fillna(0.0) * pd.Series(weights).reindex(normalised.columns).fillna(0.0)
    values = contrib.to_numpy(dtype=float)
    order = np.argsort(-values, axis=1, kind="stable")
    names = np.array(normalised.columns, dtype=object)
    top = np.take_along_axis(values, order, axis=1)
    first = pd.Series(names[order[:, 0]], index=normalised.index).where(top[:, 0] > 0)
    second = pd.Series(names[order[:, 1]], index=normalised.index).where(top[:, 1] > 0)
    return pd.DataFrame({"first": first, "second": second})


def rank_by_score(scored: pd.DataFrame, *, key: str) -> pd.DataFrame:
    """The rows best first, with `rank` 1..n: score descending, then `key` ascending, so ties
    always come out in the same order; a unit with no score goes last."""
    ordered = scored.sort_values(
        ["score", key], ascending=[False, True], na_position="last", kind="stable"
    ).reset_index(drop=True)
    ordered.insert(0, "rank", np.arange(1, len(ordered) + 1))
    return ordered


def tactics_of(dominant: pd.Series, *, allowed: tuple[str, ...]) -> pd.Series:
    """The tactic for each unit's driving component; door-knocking where the tactic the component
    calls for is not `allowed` (hotspots take doors or streets, not the station) or nothing drives
    the score."""
    tactic = dominant.map({c.name: c.tactic for c in COMPONENTS})
    return tactic.where(tactic.isin(allowed), "door").astype(str)


def reason_clauses(
    components: pd.DataFrame,
    units: pd.DataFrame,
    gap_origins: pd.Series,
    *,
    force: Force,
    cells: bool = False,
) -> pd.DataFrame:
    """One plain-language clause per component and unit (blank where it has no value).

    `gap_origins` names, per unit, the origins with the largest parity gaps ("Pakistani and
    Bangladeshi"), or is blank. For `cells`, a component's `cell_clause` replaces its figure.
    """
    out: dict[str, pd.Series] = {}
    for c in COMPONENTS:
        raw = components[c.name]
        if cells and c.cell_clause is not None:
            out[c.name] = pd.Series(c.cell_clause, index=units.index)
            continue
        text = c.clause(raw, units, force, gap_origins)
        out[c.name] = pd.Series(np.where(raw.notna(), text, ""), index=units.index)
    return pd.DataFrame(out, index=units.index)


def reasons(clauses: pd.DataFrame, dominant: pd.DataFrame) -> pd.Series:
    """The one-line reason: the clauses of the two components that drive the score most."""
    lookup = clauses.to_numpy(dtype=object)
    col = {c: i for i, c in enumerate(clauses.columns)}
    rows = np.arange(len(clauses))
    parts = []
    for which in ("first", "second"):
        idx = dominant[which].map(col)
        has = idx.notna().to_numpy()
        text = np.full(len(clauses), "", dtype=object)
        text[has] = lookup[rows[has], idx[has].astype(int).to_numpy()]
        parts.append(pd.Series(text, index=clauses.index))
    both = (parts[0] != "") & (parts[1] != "")
    joined = parts[0].where(~both, parts[0] + "; " + parts[1])
    return joined.where(joined != "", parts[1]).where(
        (joined != "") | (parts[1] != ""), "no gap measured"
    )
