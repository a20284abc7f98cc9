"""Scores that rank areas and cells for engagement, and the reason a sergeant can read aloud in a
tasking meeting (the tactic each area gets is the week's plan's, `targeting.plan`).

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
    watch_share: float = float("nan")  # households in a Watch scheme's area, per household
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
    """Each named origin with its own published parity gap, then the area's parity gap, which is
    a different measure (every origin's shortfall from its share at today's total of sign-ups,
    which can be smaller than one origin's gap), so it is named apart and never passed off as
    theirs."""
    named = who.reindex(units.index).fillna("").astype(str)
    total = raw.round(0).map("{:,.0f}".format).astype(object)
    return pd.Series(
        np.where(
            named != "",
            named + " sign-ups short of parity; the area's parity gap is " + total,
            "the area's parity gap is " + total + " sign-ups",
        ),
        index=units.index,
    )


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
    """A score component, declared once: config weights, ranked-area columns, manifest notes and
    reasons all read it from `COMPONENTS`.

    `value` gives each unit's raw value, more meaning more need (NaN where its input is absent);
    `clause` says it in plain words for a reason, and `force_value` is the force's own value on
    the same scale: a reason cites a component only where the unit is worse than the force.
    `cell_clause`, where given, is what a cell's reason says instead, without the figure, which
    could reveal a cell's few sign-ups (a `{who}` in it is filled with what the caller names).
    `measure`, where given, names a figure in the input's own units that the ranked areas publish
    beside the component, and how a unit's is worked out.
    """

    name: str
    default_weight: float
    needs: str  # its input, named in the note when that input is absent
    value: Callable[[pd.DataFrame, Force, ScoringConfig], np.ndarray]
    clause: Callable[[pd.Series, pd.DataFrame, Force, pd.Series], pd.Series]
    force_value: Callable[[Force], float] = lambda force: 0.0  # gaps: any shortfall is worse
    cell_clause: str | None = None
    measure: tuple[str, Callable[[pd.DataFrame], np.ndarray]] | None = None


# the component other modules read by name (the segments' portraits say how deprived they are)
DEPRIVATION = "deprivation"
COMPONENTS: tuple[Component, ...] = (
    Component(
        "representation_gap", 1.0, "published parity gap (absent, or withheld as small numbers)",
        lambda units, force, scoring: units["parity_gap"].to_numpy(dtype=float),
        _gap_clause,
        cell_clause="{who}",
    ),
    Component(
        "watch_gap", 0.5, "schemes (or households)", _watch_gap,
        lambda raw, units, force, who: "Watch covers "
        + (1 - raw).map("{:.0%}".format).astype(object)
        + f" of households (force {force.watch_share:.0%})",
        force_value=lambda force: 1.0 - force.watch_share,
    ),
    Component(
        "crime", 0.25, "crimes",
        lambda units, force, scoring: _per_1000(units, "crimes"),
        lambda raw, units, force, who: raw.map("{:.0f}".format).astype(object)
        + f" crimes per 1,000 residents (force {force.crimes_per_1000:.0f})",
        force_value=lambda force: force.crimes_per_1000,
    ),
    Component(
        "sac", 0.25, "crimes",
        lambda units, force, scoring: _per_1000(units, "sac_crimes"),
        lambda raw, units, force, who: raw.map("{:.0f}".format).astype(object)
        + " serious acquisitive crimes per 1,000 residents "
        + f"(force {force.sac_per_1000:.0f})",
        force_value=lambda force: force.sac_per_1000,
    ),
    Component(
        "low_satisfaction", 0.25, "ratings", _low_satisfaction,
        lambda raw, units, force, who: raw.map("{:.0%}".format).astype(object)
        + f" of message ratings low (force {force.low_rating_share:.0%})",
        force_value=lambda force: force.low_rating_share,
        cell_clause="more low message ratings than the force as a whole",
    ),
    Component(
        "low_penetration", 0.5, "published penetration gap (absent, or withheld as small numbers)",
        lambda units, force, scoring: units["penetration_gap"].to_numpy(dtype=float),
        _penetration_clause,
        cell_clause="fewer sign-ups per resident than the force as a whole",
    ),
    # deprivation, as police analysts weigh it in the Vulnerable Localities Index: off unless
    # a force gives it a weight, so that adding the layer changes no ranking by itself
    Component(
        DEPRIVATION, 0.0, "deprivation index",
        lambda units, force, scoring: _per_resident(units, "deprivation_need"),
        _deprivation_clause,
        force_value=lambda force: force.deprivation_need,
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
               "households", "watch_households", "deprivation_residents", "deprivation_sum",
               "deprivation_need"]  # fmt: skip
    total = units.reindex(columns=counted).sum(min_count=1)

    def ratio(num: str, den: str, scale: float = 1.0) -> float:
        n, d = total[num], total[den]
        return float(scale * n / d) if pd.notna(n) and pd.notna(d) and d > 0 else float("nan")

    return Force(
        signups_per_resident=ratio("registered_known", "residents"),
        crimes_per_1000=ratio("crimes", "residents", 1000.0),
        sac_per_1000=ratio("sac_crimes", "residents", 1000.0),
        low_rating_share=ratio("low_ratings", "ratings"),
        watch_share=min(1.0, ratio("watch_households", "households")),
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


def contribution_order(normalised: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """Per unit, every component by its weighted contribution, largest first: column i holds the
    i-th (NA where it contributes nothing), ties resolved in `COMPONENTS` order."""
    contrib = normalised.fillna(0.0) * pd.Series(weights).reindex(normalised.columns).fillna(0.0)
    values = contrib.to_numpy(dtype=float)
    order = np.argsort(-values, axis=1, kind="stable")
    names = np.array(normalised.columns, dtype=object)[order]
    top = np.take_along_axis(values, order, axis=1)
    names[top <= 0] = None
    return pd.DataFrame(names, index=normalised.index)


def dominant_components(normalised: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """Per unit, the two components that contribute most: columns `first`, `second` (NA where no
    component contributes), with ties resolved in `COMPONENTS` order."""
    order = contribution_order(normalised, weights)
    return pd.DataFrame({"first": order[0], "second": order[1]}, index=normalised.index)


def rank_by_score(scored: pd.DataFrame, *, key: str) -> pd.DataFrame:
    """The rows best first, with `rank` 1..n: score descending, then `key` ascending, so ties
    always come out in the same order; a unit with no score goes last."""
    ordered = scored.sort_values(
        ["score", key], ascending=[False, True], na_position="last", kind="stable"
    ).reset_index(drop=True)
    ordered.insert(0, "rank", np.arange(1, len(ordered) + 1))
    return ordered


def reason_clauses(
    components: pd.DataFrame,
    units: pd.DataFrame,
    who: pd.Series,
    *,
    force: Force,
    cells: bool = False,
) -> pd.DataFrame:
    """One plain-language clause per component and unit, blank where the unit has no value or is
    no worse than the force (a figure better than the force's is never given as a reason).

    `who` names, per unit, what the representation clause is about: for areas, the origins with
    their own parity gaps ("Pakistani 16, Black Caribbean 14"); for `cells`, the residents a
    hotspot is chosen for, which fill its `cell_clause` (given wherever `who` is).
    """
    named = who.astype(object).reindex(units.index).fillna("").astype(str)
    out: dict[str, pd.Series] = {}
    for c in COMPONENTS:
        raw = components[c.name]
        worse = raw.notna().to_numpy() & (raw.to_numpy(dtype=float) > c.force_value(force))
        if cells and c.cell_clause is not None:
            if "{who}" in c.cell_clause:
                text = pd.Series([c.cell_clause.format(who=w) for w in named], index=units.index)
                out[c.name] = text.where(named != "", "")
            else:
                out[c.name] = pd.Series(np.where(worse, c.cell_clause, ""), index=units.index)
            continue
        text = c.clause(raw, units, force, named)
        out[c.name] = pd.Series(np.where(worse, text, ""), index=units.index)
    return pd.DataFrame(out, index=units.index)


def reasons(
    clauses: pd.DataFrame, order: pd.DataFrame, *, lead: str = "representation_gap"
) -> pd.Series:
    """The one-line reason: the `lead` component's clause where the unit has one (who is short, or
    who a hotspot is for), then the clauses of the components that drive the score most (`order`,
    from `contribution_order`), two in all; "no measure worse than the force's" where none
    applies."""
    text = clauses.to_numpy(dtype=object)
    rows = np.arange(len(clauses))
    position = {c: i for i, c in enumerate(clauses.columns)}
    first = clauses[lead].to_numpy(dtype=object)
    second = np.full(len(clauses), "", dtype=object)
    have = (first != "").astype(int)
    # one pass per place in the order (a handful of components), every unit at once
    for names in order.to_numpy(dtype=object).T:
        idx = pd.Series(names).map(position).to_numpy(dtype=float)
        valid = ~np.isnan(idx) & (names != lead)
        found = np.full(len(clauses), "", dtype=object)
        found[valid] = text[rows[valid], idx[valid].astype(int)]
        take = valid & (found != "") & (have < 2)
        first = np.where(take & (have == 0), found, first)
        second = np.where(take & (have == 1), found, second)
        have = have + take
    joined = np.where(second != "", first + "; " + second, first)
    return pd.Series(
        np.where(joined != "", joined, "no measure worse than the force's"), index=clauses.index
    )
