"""`targeting trial`: assign hotspots to tactics at random, count the sign-ups that follow, evaluate
each tactic against control, and size a trial before it runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from targeting.cli.common import MarkingOption, err, handled_errors, is_quiet, say
from targeting.errors import TrialError

if TYPE_CHECKING:
    import pandas as pd

trial_app = typer.Typer(
    help="Engagement trials: assign hotspots to tactics, count outcomes, evaluate, size.",
    no_args_is_help=True,
)


@trial_app.command("assign")
def trial_assign(
    ctx: typer.Context,
    hotspots: Annotated[
        Path, typer.Argument(help="hotspots.csv (or CSV/GeoJSON).", show_default=False)
    ],
    arms: Annotated[
        str, typer.Option("--arms", help="Arms, comma-separated.")
    ] = "door,street,social,control",
    block_by: Annotated[str, typer.Option("--block-by", help="Column to block by.")] = "area_code",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 2018,
    out_file: Annotated[Path, typer.Option("--out", help="assignments CSV to write.")] = Path(
        "assignments.csv"
    ),
    ratios: Annotated[str | None, typer.Option("--ratios", help="e.g. door=2,control=1")] = None,
    weeks: Annotated[int | None, typer.Option("--weeks", help="Spread over N weeks.")] = None,
    per_week: Annotated[int | None, typer.Option("--per-week", help="At most K a week.")] = None,
    spillover: Annotated[
        str,
        typer.Option(
            "--spillover",
            help="flag: mark neighbours of other arms; same: neighbours share an arm.",
        ),
    ] = "flag",
    lists: Annotated[
        Path | None, typer.Option("--lists", help="Folder for weekly lists and maps.")
    ] = None,
    marking: MarkingOption = "OFFICIAL-SENSITIVE",
) -> None:
    """Randomly assign hotspots to arms within blocks, reproducibly from the seed.

    Example: targeting trial assign out/hotspots.csv --arms door,street,social,control --block-by area_code --seed 7 --weeks 14 --per-week 120 --out assignments.csv
    """
    import json

    from targeting.io import sha256_file
    from targeting.store import write_csv
    from targeting.trial import (
        assign_arms,
        balance_table,
        parse_ratios,
        read_hotspots,
        write_weekly_lists,
    )

    arm_list = [a.strip() for a in arms.split(",") if a.strip()]
    with handled_errors():
        if len(arm_list) < 2:
            raise TrialError("--arms needs at least two arms, e.g. door,control")
        if spillover not in ("flag", "same"):
            raise TrialError("--spillover must be flag or same")
        frame = read_hotspots(hotspots, block_by=block_by)
        try:
            shares = parse_ratios(arm_list, ratios)
        except ValueError as exc:
            raise TrialError(f"--ratios: {exc}") from None
        assigned = assign_arms(frame, arms=arm_list, block_by=block_by, seed=seed, ratios=ratios,
                               weeks=weeks, per_week=per_week, spillover=spillover)  # fmt: skip
        write_csv(assigned, out_file)
        balance = balance_table(assigned, columns=("score", "parity_gap", "households"))
        out_file.with_suffix(".json").write_text(
            json.dumps(
                {"seed": seed, "input": str(hotspots), "input_sha256": sha256_file(hotspots),
                 "arms": shares, "block_by": block_by, "weeks": weeks, "per_week": per_week,
                 "spillover": spillover, "hotspots": len(assigned),
                 "balance": balance.to_dict(orient="records")},
                indent=2, default=str,
            ) + "\n",
            encoding="utf-8",
        )  # fmt: skip
        if lists is not None:
            parent = "parent_code" if "parent_code" in assigned.columns else "block"
            write_weekly_lists(assigned, lists, marking=marking, parent_by=parent)
    if not is_quiet(ctx, False):
        err.print(balance.to_string(index=False), markup=False, highlight=False)
    say(out_file.resolve())


@trial_app.command("outcomes")
def trial_outcomes(
    ctx: typer.Context,
    assignments: Annotated[Path, typer.Argument(help="assignments CSV.", show_default=False)],
    signups: Annotated[Path, typer.Argument(help="Sign-up export (CSV).", show_default=False)],
    start: Annotated[str, typer.Option("--start", help="First day of week 1 (YYYY-MM-DD).")],
    days: Annotated[
        int, typer.Option("--days", help="Days counted after each visit week starts.")
    ] = 28,
    out_file: Annotated[Path, typer.Option("--out", help="outcomes CSV to write.")] = Path(
        "outcomes.csv"
    ),
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A run's TOML config: read the export with its [columns.signups], "
            "[inputs] postcodes and [run] time zone.",
        ),
    ] = None,
) -> None:
    """Count the sign-ups located in each hotspot's cell in the window after its visit week.

    The export is read as a run reads it; rows it cannot use are counted on stderr by reason.

    Example: targeting trial outcomes assignments.csv signups.csv --start 2018-03-05 --days 28 --out outcomes.csv
    """
    import datetime as dt

    from targeting.config import load_config
    from targeting.h3cells import cell_resolutions
    from targeting.store import write_csv
    from targeting.trial import count_outcomes, read_trial_signups

    with handled_errors():
        table = _read_trial_csv(assignments)
        if "cell" not in table:
            raise TrialError(
                f"{assignments}: no cell column; assign from a hotspots file with cells"
            )
        try:
            first = dt.date.fromisoformat(start)
        except ValueError:
            raise TrialError(f"--start {start!r} is not a date; write it as 2018-03-05") from None
        resolution = int(cell_resolutions(table["cell"].to_numpy()[:1])[0])
        cfg = load_config(config) if config is not None else None
        located, summary = read_trial_signups(signups, resolution=resolution, config=cfg)
        result = count_outcomes(table, located["cell"], located["joined"], start=first, days=days)
        write_csv(result, out_file)
    if summary.rows_rejected and not is_quiet(ctx, False):
        reasons = ", ".join(f"{n:,} {r}" for r, n in summary.reasons().items())
        err.print(
            f"{summary.rows_rejected:,} of {summary.rows_read:,} sign-up rows not counted: {reasons}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    say(out_file.resolve())


@trial_app.command("evaluate")
def trial_evaluate(
    ctx: typer.Context,
    assignments: Annotated[Path, typer.Argument(help="assignments CSV.", show_default=False)],
    outcomes: Annotated[
        Path, typer.Argument(help="outcomes CSV: hotspot_id, signups.", show_default=False)
    ],
    control: Annotated[str, typer.Option("--control", help="The control arm.")] = "control",
    out_file: Annotated[Path, typer.Option("--out", help="results CSV to write.")] = Path(
        "results.csv"
    ),
    draws: Annotated[int, typer.Option("--draws", help="Randomisation-inference draws.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the draws.")] = 2018,
) -> None:
    """Compare each arm with control: rate ratio, 95% interval and p-values, one line per arm.

    Example: targeting trial evaluate assignments.csv outcomes.csv --control control --out results.csv
    """
    from targeting.store import write_csv
    from targeting.trial import evaluate_trial

    with handled_errors():
        table = _read_trial_csv(assignments)
        found = _read_trial_csv(outcomes)
        result = evaluate_trial(table, found, control=control, draws=draws, seed=seed)
        write_csv(result, out_file)
    if not is_quiet(ctx, False):
        for line in result["summary"]:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
    say(out_file.resolve())


@trial_app.command("power")
def trial_power(
    ctx: typer.Context,
    baseline: Annotated[float, typer.Option("--baseline", help="Control sign-ups per hotspot.")],
    hotspots: Annotated[int, typer.Option("--hotspots", help="Hotspots in the trial.")],
    arms: Annotated[int, typer.Option("--arms", help="Arms, control included.")] = 4,
    dispersion: Annotated[
        float, typer.Option("--dispersion", help="Over-dispersion (variance = mean + d x mean²).")
    ] = 1.0,
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided significance level.")] = 0.05,
    power: Annotated[float, typer.Option("--power", help="Power wanted.")] = 0.8,
    sims: Annotated[
        int, typer.Option("--sims", help="Simulated trials per candidate ratio.")
    ] = 1000,
) -> None:
    """The smallest rate ratio against control that an arm can be detected with.

    Example: targeting trial power --baseline 0.25 --dispersion 1 --hotspots 2124 --arms 4
    """
    from targeting.trial import minimum_detectable_ratio

    with handled_errors():
        if baseline <= 0 or hotspots < 2 * arms or not 0 < alpha < 1 or not 0 < power < 1:
            raise TrialError(
                "needs --baseline > 0, at least two hotspots per arm, 0 < alpha, power < 1"
            )
        ratio = minimum_detectable_ratio(baseline=baseline, dispersion=dispersion, hotspots=hotspots,
                                         arms=arms, alpha=alpha, power=power, sims=sims)  # fmt: skip
    say(f"{ratio:.3f}")
    if not is_quiet(ctx, False):
        err.print(
            f"With {hotspots:,} hotspots in {arms} arms ({hotspots // arms:,} each), a control mean of "
            f"{baseline} and dispersion {dispersion}, an arm must reach {ratio:.2f} times control to be "
            f"detected {power:.0%} of the time (two-sided alpha {alpha}).",
            highlight=False,
        )


def _read_trial_csv(path: Path) -> pd.DataFrame:
    """A CSV the trial commands read, with a clean error when it is missing."""
    import pandas as pd

    if not path.is_file():
        raise TrialError(f"{path}: file not found")
    return pd.read_csv(path, dtype={"hotspot_id": str, "block": str, "cell": str})
