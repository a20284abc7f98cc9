"""The `targeting` command: a thin layer over `targeting.pipeline`.

Library errors become one clear message on stderr and a non-zero exit code (2 for a bad config or
option, 3 for unusable input, 4 for an output folder that cannot be written, 5 for a command that
reads a finished run where there is none); progress goes to stderr so stdout stays clean for
scripts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from targeting import __version__, pipeline
from targeting.errors import (
    BatchError,
    ConfigError,
    InputError,
    NoRunError,
    OptionError,
    OutputError,
    TargetingError,
    TrialError,
)

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(
    name="targeting",
    help=(
        "Find the communities a police alert system misses, and where to go to invite them in.\n\n"
        "Example: targeting demo --out demo"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()
EXIT_CODES = {
    ConfigError: 2,
    OptionError: 2,
    InputError: 3,
    TrialError: 3,
    OutputError: 4,
    NoRunError: 5,
}


@dataclass(frozen=True)
class _Options:
    """What the top-level options (`targeting --quiet ...`) say, for every command."""

    quiet: bool = False


def _is_quiet(ctx: typer.Context, quiet: bool) -> bool:
    """Quiet when `--quiet` came before the command or after it."""
    root = ctx.find_root().obj
    return quiet or (isinstance(root, _Options) and root.quiet)


def _say(text: object) -> None:
    """A result (a folder, a file, a number) on stdout, whole: a long path is never wrapped."""
    typer.echo(str(text))


QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")
]


def _version(value: bool) -> None:
    if value:
        out.print(f"targeting {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    quiet: QuietOption = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Engagement targeting for police community messaging (inviting people in, not enforcement)."""
    ctx.obj = _Options(quiet=quiet)


@contextmanager
def _progress(steps: Sequence[str], *, quiet: bool) -> Iterator[Callable[[str], None]]:
    if quiet:
        yield lambda _step: None
        return
    with Progress(
        TextColumn("[bold]{task.description:<16}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=len(steps))
        seen: set[str] = set()

        def step(name: str) -> None:
            if seen:
                progress.advance(task)
            seen.add(name)
            progress.update(task, description=name)

        yield step
        progress.update(task, completed=len(steps))


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except TargetingError as exc:
        err.print("[bold red]error:[/]", end=" ")
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CODES.get(type(exc), 1)) from None


def _summary(result: pipeline.RunResult, *, quiet: bool) -> None:
    if quiet:
        return
    m = result.manifest
    for name, info in m["inputs"].items():
        err.print(
            f"  {name:<18} read {info['rows_read']:>9,}  used {info['rows_used']:>9,}  "
            f"rejected {info['rows_rejected']:>7,}",
            highlight=False,
            soft_wrap=True,
        )
    for warning in m.get("warnings", []):
        err.print("  [yellow]warning:[/]", end=" ")
        err.print(warning, markup=False, highlight=False, soft_wrap=True)


@app.command()
def run(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="The run's TOML config.", show_default=False)],
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous",
            help="An earlier run's output folder: the tasking pack shows what changed since.",
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Run the engine: read and check every input, build the grid, write every output.

    Outputs replace the config's [output] dir only when the run has finished.

    Example: targeting run pipelines/nhw_week.toml --previous last_month/
    """
    quiet = _is_quiet(ctx, quiet)
    with _errors(), _progress(pipeline.RUN_STEPS, quiet=quiet) as step:
        result = pipeline.run(config, previous=previous, on_step=step)
    _summary(result, quiet=quiet)
    _say(result.out_dir)


@app.command()
def validate(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="The run's TOML config.", show_default=False)],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the report (default: <output dir>/validation)."),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Read and check every input; write rejects/, validation.json and validation.md only.

    Example: targeting validate pipelines/weekly_tasking.toml
    """
    quiet = _is_quiet(ctx, quiet)
    with _errors(), _progress(pipeline.INGEST_STEPS, quiet=quiet) as step:
        result = pipeline.validate(config, out_dir=out_dir, on_step=step)
    _summary(result, quiet=quiet)
    _say(result.out_dir)


@app.command()
def demo(
    ctx: typer.Context,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the demo inputs and outputs.")
    ] = Path("targeting-demo"),
    quiet: QuietOption = False,
) -> None:
    """Run the whole engine on the built-in demo city (synthetic, West-Midlands-like).

    Writes the demo inputs and demo.toml into the folder, and the outputs into its output/ folder.

    Example: targeting demo --out demo
    """
    quiet = _is_quiet(ctx, quiet)
    with _errors(), _progress(("demo data", *pipeline.RUN_STEPS), quiet=quiet) as step:
        result = pipeline.run_demo(out_dir, on_step=step)
    _summary(result, quiet=quiet)
    _say(result.out_dir)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the inputs and configs.")],
    scale: Annotated[str, typer.Option("--scale", help="force or national.")] = "force",
    tiles: Annotated[
        int | None, typer.Option("--tiles", help="Demo cities to tile (overrides the scale's).")
    ] = None,
    one_run: Annotated[
        bool,
        typer.Option("--one-run", help="National: every force in one set of inputs, one run."),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first city.")] = 2018,
) -> None:
    """Write synthetic inputs at force or national scale (for benchmarks), with their configs.

    National inputs are written a folder per force, as forces hold them, for `targeting batch`.

    Example: targeting synth --scale national --out /data/nat && targeting batch /data/nat/forces/*/synth.toml --out /data/nat/batch
    """
    from targeting.synth import SCALES, write_synthetic_forces, write_synthetic_inputs

    with _errors():
        if scale not in SCALES:
            raise typer.BadParameter(f"--scale must be one of {', '.join(SCALES)}")
        if scale == "national" and not one_run:
            configs = write_synthetic_forces(out_dir, tiles=tiles, seed=seed)
        else:
            configs = [write_synthetic_inputs(out_dir, scale=scale, tiles=tiles, seed=seed)]
    for config in configs:
        _say(config.resolve())


@app.command()
def batch(
    ctx: typer.Context,
    configs: Annotated[
        list[Path],
        typer.Argument(help="The runs' TOML configs (one per force).", show_default=False),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the batch's summary.")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Runs at once (one per core).")] = (
        os.cpu_count() or 1
    ),
    quiet: QuietOption = False,
) -> None:
    """Run many configs as one batch (a national picture, a run per force), each in its own
    process, then write batch.csv, representation_by_run.csv and index.html.

    Example: targeting batch forces/*/run.toml --out national --jobs 2
    """
    from targeting.batch import BatchRun, run_batch

    quiet = _is_quiet(ctx, quiet)

    def done(r: BatchRun) -> None:
        if not quiet:
            note = f"{r.seconds:.1f} s, {r.peak_rss_mb:,.0f} MB" if r.status == "ok" else r.error
            err.print(f"  {r.label}: {r.status} ({note})", markup=False, highlight=False)

    with _errors():
        result = run_batch(configs, out_dir=out_dir, jobs=jobs, on_done=done)
        if result.failed:
            names = ", ".join(r.label for r in result.failed)
            raise BatchError(
                f"{len(result.failed)} of {len(result.runs)} runs failed ({names}); "
                f"see {result.out_dir / 'batch.csv'}, fix their inputs and run those again"
            )
    _say(result.out_dir)


segments_app = typer.Typer(
    help="Geodemographic segments: build the open segmentation from the census.",
    no_args_is_help=True,
)
app.add_typer(segments_app, name="segments")


@segments_app.command("build")
def segments_build(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="The run's TOML config.", show_default=False)],
    k: Annotated[
        int | None, typer.Option("--k", help="Segments (default: [segments] k, or by silhouette).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder (default: segments/ beside the config).")
    ] = None,
) -> None:
    """Cluster the small areas on their census shares into segments, reproducibly from the seed.

    Example: targeting segments build pipelines/nhw_week.toml --k 8
    """
    with _errors():
        target, seg = pipeline.build_open_segments(config, k=k, out_dir=out_dir)
    if not _is_quiet(ctx, False):
        err.print(
            f"{seg.k} segments; to use them, add to the config's \\[inputs]:\n"
            f'  segments = "{target / "segments.csv"}"\n'
            f'  segment_descriptions = "{target / "segment_descriptions.csv"}"'
        )
    _say(target)


trial_app = typer.Typer(
    help="Engagement trials: assign hotspots to tactics, count outcomes, evaluate, size.",
    no_args_is_help=True,
)
app.add_typer(trial_app, name="trial")


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
    marking: Annotated[
        str, typer.Option("--marking", help="Protective marking.")
    ] = "OFFICIAL-SENSITIVE",
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
    with _errors():
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
    if not _is_quiet(ctx, False):
        err.print(balance.to_string(index=False), markup=False, highlight=False)
    _say(out_file.resolve())


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

    with _errors():
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
    if summary.rows_rejected and not _is_quiet(ctx, False):
        reasons = ", ".join(f"{n:,} {r}" for r, n in summary.reasons().items())
        err.print(
            f"{summary.rows_rejected:,} of {summary.rows_read:,} sign-up rows not counted: {reasons}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    _say(out_file.resolve())


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

    with _errors():
        table = _read_trial_csv(assignments)
        found = _read_trial_csv(outcomes)
        result = evaluate_trial(table, found, control=control, draws=draws, seed=seed)
        write_csv(result, out_file)
    if not _is_quiet(ctx, False):
        for line in result["summary"]:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
    _say(out_file.resolve())


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

    with _errors():
        if baseline <= 0 or hotspots < 2 * arms or not 0 < alpha < 1 or not 0 < power < 1:
            raise TrialError(
                "needs --baseline > 0, at least two hotspots per arm, 0 < alpha, power < 1"
            )
        ratio = minimum_detectable_ratio(baseline=baseline, dispersion=dispersion, hotspots=hotspots,
                                         arms=arms, alpha=alpha, power=power, sims=sims)  # fmt: skip
    _say(f"{ratio:.3f}")
    if not _is_quiet(ctx, False):
        err.print(
            f"With {hotspots:,} hotspots in {arms} arms ({hotspots // arms:,} each), a control mean of "
            f"{baseline} and dispersion {dispersion}, an arm must reach {ratio:.2f} times control to be "
            f"detected {power:.0%} of the time (two-sided alpha {alpha}).",
            highlight=False,
        )


def _choose(name: str, choices: Sequence[str]) -> str:
    """The choice `name` means, whatever its case and spacing; an unknown name is an error that
    suggests the nearest choice ("did you mean Bangladeshi?") and lists them all."""
    from difflib import get_close_matches

    from targeting.io import normalise_name

    by_key = {normalise_name(c): c for c in choices}
    if normalise_name(name) in by_key:
        return by_key[normalise_name(name)]
    near = get_close_matches(name.lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
    hint = f"did you mean {next(c for c in choices if c.lower() == near[0])}? " if near else ""
    raise OptionError(
        f"--origin {name!r} is not in this run; {hint}use one of: {', '.join(choices)}"
    )


def _read_trial_csv(path: Path) -> pd.DataFrame:
    """A CSV the trial commands read, with a clean error when it is missing."""
    import pandas as pd

    if not path.is_file():
        raise TrialError(f"{path}: file not found")
    return pd.read_csv(path, dtype={"hotspot_id": str, "block": str, "cell": str})


@app.command(name="map")
def map_command(
    config: Annotated[Path, typer.Argument(help="The run's TOML config.", show_default=False)],
    origin: Annotated[
        str | None,
        typer.Option("--origin", help="Origin (or 'group: NAME') the map opens on."),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Where to write the page (default: map.html).")
    ] = None,
) -> None:
    """Render the officers' offline map from a finished run's store, without rerunning it.

    Example: targeting map pipelines/nhw_week.toml --origin Pakistani --out maps/nhw.html
    """
    from targeting.config import load_config
    from targeting.maps import map_to_html, origin_keys, read_map_data
    from targeting.store import STORE_NAME

    with _errors():
        cfg = load_config(config)
        if not (cfg.output.dir / STORE_NAME).is_file():
            raise NoRunError(
                f"no finished run in {cfg.output.dir}: run `targeting run {config}` first"
            )
        data = read_map_data(cfg.output.dir, config=cfg)
        chosen = _choose(origin, origin_keys(data)) if origin is not None else None
        target = out_file or cfg.output.dir / "map.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(map_to_html(data, origin=chosen), encoding="utf-8")
    _say(target.resolve())


@app.command()
def representation(
    config: Annotated[Path, typer.Argument(help="The run's TOML config.", show_default=False)],
    level: Annotated[
        str, typer.Option("--level", help="force, parent or area.", case_sensitive=False)
    ] = "force",
    origin: Annotated[
        str | None, typer.Option("--origin", help="One origin (or group with --groups).")
    ] = None,
    groups: Annotated[bool, typer.Option("--groups", help="Origin groups, not origins.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Rows to show.")] = 25,
) -> None:
    """Print a finished run's representation table, largest parity gap first, for a quick look.

    Reads representation.csv from the config's output folder (run `targeting run` first);
    suppressed values show as "suppressed".

    Example: targeting representation pipelines/weekly_tasking.toml --level area --origin Pakistani
    """
    from rich.table import Table

    from targeting.config import load_config
    from targeting.report import format_origin_rows
    from targeting.representation import LEVELS, read_representation, select_rows

    with _errors():
        if level.lower() not in LEVELS:
            raise typer.BadParameter(f"--level must be one of {', '.join(LEVELS)}")
        cfg = load_config(config)
        table = read_representation(cfg.output.dir / "representation.csv")
        origin_level = "group" if groups else "origin"
        names = table.loc[table["origin_level"] == origin_level, "origin"].dropna().unique()
        chosen = _choose(origin, sorted(names)) if origin is not None else None
        rows = select_rows(
            table, level=level.lower(), origin=chosen, origin_level=origin_level
        ).head(limit)
    shown = Table(title=f"Representation ({level}, {cfg.output.protective_marking})")
    formatted = format_origin_rows(rows, with_area=True)
    for header in formatted.columns:
        shown.add_column(header, justify="left" if header in ("Area", "Origin") else "right")
    for values in formatted.itertuples(index=False):
        shown.add_row(*values)
    # piped to a file or another program, print the table whole rather than squeezed to 80 columns
    (out if out.is_terminal else Console(width=200)).print(shown)
