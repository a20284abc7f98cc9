"""The report's first screen: who is missing force-wide, where the week goes and why, and what
changed since the previous run, in sentences with the numbers of the tables behind them.

Every number is read from a published table (the force rows of `representation.csv`, the
areas of `ranked_areas.csv`), so a sentence and its table never disagree.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

import pandas as pd

from targeting.plan import TACTIC_NAMES, units_text
from targeting.report.origins import DOWN, SAME, UP
from targeting.report.render import _md
from targeting.store import PreviousRun, round_as_published

TOP_ORIGINS = 6
TOP_AREAS = 5


@dataclass(frozen=True)
class Headline:
    """Three short lists of sentences: origins, areas this week, changes since the last run."""

    origins: tuple[str, ...]
    areas: tuple[str, ...]
    changes: tuple[str, ...]


def _arrow(now: float, before: float) -> str:
    return UP if now > before else DOWN if now < before else SAME


def _origin_sentences(force: pd.DataFrame, previous: PreviousRun | None, *, base: str) -> list[str]:
    rows = force[(force["origin_level"] == "origin") & force["under_represented"].eq(True)]
    rows = rows.sort_values(["parity_gap", "active_in_area"], ascending=False)
    before = (
        previous.force[previous.force["origin_level"] == "origin"].set_index("origin")[
            "actual_rate"
        ]
        if previous is not None and not previous.force.empty
        else pd.Series(dtype=float)
    )
    out = []
    for row in rows.head(TOP_ORIGINS).to_dict("records"):
        text = (
            f"{row['origin']}: {100 * row['target_rate']:.2f}% of {base} but "
            f"{100 * row['actual_rate']:.2f}% of sign-ups (index "
            f"{row['representation_index']:.0f}); {row['parity_gap']:,.0f} more sign-ups would "
            "reach parity."
        )
        was = before.get(row["origin"])
        if was is not None and pd.notna(was):
            text += (
                f" {_arrow(float(row['actual_rate']), float(was))} share of sign-ups was "
                f"{100 * float(was):.2f}%."
            )
        out.append(text)
    if len(rows) > TOP_ORIGINS:
        out.append(
            f"And {len(rows) - TOP_ORIGINS} more under-represented origins (see Under-represented "
            "origins)."
        )
    if not out:
        out.append("No origin is under-represented force-wide.")
    return out


def _planned(ranked: pd.DataFrame) -> pd.DataFrame:
    """Where teams go: the first-ranked areas that the week sends someone to."""
    if "tactic" not in ranked:
        return ranked.sort_values("rank").head(TOP_AREAS)
    return ranked[ranked["tactic"].ne("none")].sort_values("rank").head(TOP_AREAS)


def _area_sentences(ranked: pd.DataFrame, previous: PreviousRun | None) -> list[str]:
    before = (
        previous.ranking.set_index("area_code")["rank"] if previous is not None else pd.Series()
    )
    out = []
    for row in _planned(ranked).to_dict("records"):
        units = units_text(row)
        parent = f" ({row['parent_name']})" if pd.notna(row.get("parent_name")) else ""
        what = TACTIC_NAMES.get(str(row["tactic"]), str(row["tactic"]))
        text = (
            f"{int(row['rank'])}. {row['area_name']}{parent}: {what}"
            + (f", {units}" if units else "")
            + f"; about {row['expected_signups']:,.1f} sign-ups expected. Why: {row['reason']}."
        )
        was = before.get(row["area_code"])
        if was is not None and pd.notna(was):
            moved = int(was) - int(row["rank"])
            text += (
                f" {UP} up {moved} from {int(was)}." if moved > 0
                else f" {DOWN} down {-moved} from {int(was)}." if moved < 0
                else f" {SAME} same place as last run."
            )  # fmt: skip
        elif previous is not None:
            text += " New to the ranking."
        out.append(text)
    if not out:
        out.append("Nothing is planned this week.")
    return out


def _known_signups(force: pd.DataFrame) -> int | None:
    """The force's sign-ups with a known origin: the sum of its published group rows (None
    when one is withheld)."""
    groups = force.loc[force["origin_level"] == "group", "registered"]
    if groups.empty or groups.isna().any():
        return None
    return int(groups.sum())


def _change_sentences(
    force: pd.DataFrame, ranked: pd.DataFrame, previous: PreviousRun | None, *, threshold: int
) -> list[str]:
    if previous is None:
        return [
            "No earlier run was given: run with --previous FOLDER (last run's output) to see "
            "what changed."
        ]
    since = (
        f" since the run to {previous.as_of:%d %B %Y}"
        if previous.as_of
        else " since the previous run"
    )
    now, was = _known_signups(force), _known_signups(previous.force)
    out = []
    if now is not None and was is not None:
        # a change of 1 to threshold-1 is a small count of sign-ups: not printed as such
        change = abs(now - was)
        size = f"fewer than {threshold}" if 0 < change < threshold else f"{change:,}"
        out.append(
            f"Sign-ups with a known origin: {now:,}, {_arrow(now, was)} {size} "
            f"{'more' if now >= was else 'fewer'}{since}."
        )
    gap_now, gap_was = ranked["parity_gap"].sum(), previous.ranking["parity_gap"].sum()
    out.append(
        f"The areas' parity gaps add up to {gap_now:,.0f}, {_arrow(gap_now, gap_was)} "
        + (
            f"unchanged{since}."
            if round(gap_now) == round(gap_was)
            else f"from {gap_was:,.0f}{since} ({'closing' if gap_now < gap_was else 'widening'})."
        )
    )
    # the same list as "where to go": the first-ranked areas that are sent someone
    top_was = _planned(previous.ranking)
    left = top_was[~top_was["area_code"].isin(_planned(ranked)["area_code"])]
    if len(left):
        out.append(
            f"Out of the top {TOP_AREAS} since then: "
            + ", ".join(map(str, left["area_name"]))
            + "."
        )
    return out


def build_headline(
    *,
    representation: pd.DataFrame,
    ranked_areas: pd.DataFrame,
    previous: PreviousRun | None,
    base: str,
    threshold: int = 10,
) -> Headline:
    """The first screen of the report, from the force rows and the ranked areas as the CSVs
    publish them (rounded as published, so that a sentence reads as its table and an earlier
    run's CSVs compare like with like)."""
    published = round_as_published(representation)
    force = published[published["level"] == "force"]
    ranked = round_as_published(ranked_areas)
    return Headline(
        origins=tuple(_origin_sentences(force, previous, base=base)),
        areas=tuple(_area_sentences(ranked, previous)),
        changes=tuple(_change_sentences(force, ranked, previous, threshold=threshold)),
    )


def headline_to_html(headline: Headline, *, as_of: dt.date) -> str:
    """The headline block (escaped text, no scripts)."""
    esc = html.escape

    def items(lines: tuple[str, ...]) -> str:
        return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"

    return (
        '<section class="headline" id="headline">'
        f"<h2>At a glance: week to {as_of:%d %B %Y}</h2>"
        "<h3>Who is missing from the alert system</h3>" + items(headline.origins)
        + "<h3>Where to go this week, and why</h3>" + items(headline.areas)
        + "<h3>Since the last run</h3>" + items(headline.changes)
        + "</section>"
    )  # fmt: skip


def headline_to_markdown(headline: Headline, *, as_of: dt.date) -> str:
    """The headline block as Markdown."""
    out = [f"## At a glance: week to {as_of:%d %B %Y}", ""]
    for title, lines in (
        ("Who is missing from the alert system", headline.origins),
        ("Where to go this week, and why", headline.areas),
        ("Since the last run", headline.changes),
    ):
        out += [f"### {title}", "", *(f"- {_md(line)}" for line in lines), ""]
    return "\n".join(out)
