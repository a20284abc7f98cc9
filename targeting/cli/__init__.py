"""The `targeting` command: a thin layer over `targeting.pipeline`.

Every command imports the library it needs when it runs, so `targeting --help`, `--version` and
a mistyped command answer without loading pandas, geopandas, DuckDB, scikit-learn or folium.

Library errors become one clear message on stderr and a non-zero exit code (2 for a bad config or
option, 3 for unusable input, 4 for an output folder that cannot be written, 5 for a command that
reads a finished run where there is none, 6 for a history store that refuses a run); progress
goes to stderr so stdout stays clean for scripts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from targeting import __version__
from targeting.cli.common import (
    Options,
    QuietOption,
    choose,
    err,
    handled_errors,
    is_quiet,
    out,
    print_summary,
    progress_steps,
    say,
)
from targeting.cli.history import history_app, portal
from targeting.cli.trial import trial_app
from targeting.errors import BatchError, NoRunError

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
    ctx.obj = Options(quiet=quiet)


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
    from targeting import pipeline

    quiet = is_quiet(ctx, quiet)
    with handled_errors(), progress_steps(pipeline.RUN_STEPS, quiet=quiet) as step:
        result = pipeline.run(config, previous=previous, on_step=step)
    print_summary(result, quiet=quiet)
    say(result.out_dir)


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
    from targeting import pipeline

    quiet = is_quiet(ctx, quiet)
    with handled_errors(), progress_steps(pipeline.INGEST_STEPS, quiet=quiet) as step:
        result = pipeline.validate(config, out_dir=out_dir, on_step=step)
    print_summary(result, quiet=quiet)
    say(result.out_dir)


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
    from targeting import pipeline

    quiet = is_quiet(ctx, quiet)
    with handled_errors(), progress_steps(("demo data", *pipeline.RUN_STEPS), quiet=quiet) as step:
        result = pipeline.run_demo(out_dir, on_step=step)
    print_summary(result, quiet=quiet)
    say(result.out_dir)


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

    with handled_errors():
        if scale not in SCALES:
            raise typer.BadParameter(f"--scale must be one of {', '.join(SCALES)}")
        if scale == "national" and not one_run:
            configs = write_synthetic_forces(out_dir, tiles=tiles, seed=seed)
        else:
            configs = [write_synthetic_inputs(out_dir, scale=scale, tiles=tiles, seed=seed)]
    for config in configs:
        say(config.resolve())


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

    quiet = is_quiet(ctx, quiet)

    def done(r: BatchRun) -> None:
        if not quiet:
            note = f"{r.seconds:.1f} s, {r.peak_rss_mb:,.0f} MB" if r.status == "ok" else r.error
            err.print(f"  {r.label}: {r.status} ({note})", markup=False, highlight=False)

    with handled_errors():
        result = run_batch(configs, out_dir=out_dir, jobs=jobs, on_done=done)
        if result.failed:
            names = ", ".join(r.label for r in result.failed)
            raise BatchError(
                f"{len(result.failed)} of {len(result.runs)} runs failed ({names}); "
                f"see {result.out_dir / 'batch.csv'}, fix their inputs and run those again"
            )
    say(result.out_dir)


app.add_typer(trial_app, name="trial")
app.add_typer(history_app, name="history")
app.command()(portal)

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
    from targeting.segments_build import build_open_segments

    with handled_errors():
        target, seg = build_open_segments(config, k=k, out_dir=out_dir)
    if not is_quiet(ctx, False):
        err.print(
            f"{seg.k} segments; to use them, add to the config's \\[inputs]:\n"
            f'  segments = "{target / "segments.csv"}"\n'
            f'  segment_descriptions = "{target / "segment_descriptions.csv"}"'
        )
    say(target)


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

    with handled_errors():
        cfg = load_config(config)
        if not (cfg.output.dir / STORE_NAME).is_file():
            raise NoRunError(
                f"no finished run in {cfg.output.dir}: run `targeting run {config}` first"
            )
        data = read_map_data(cfg.output.dir, config=cfg)
        chosen = choose(origin, origin_keys(data)) if origin is not None else None
        target = out_file or cfg.output.dir / "map.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(map_to_html(data, origin=chosen), encoding="utf-8")
    say(target.resolve())


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

    with handled_errors():
        if level.lower() not in LEVELS:
            raise typer.BadParameter(f"--level must be one of {', '.join(LEVELS)}")
        cfg = load_config(config)
        table = read_representation(cfg.output.dir / "representation.csv")
        origin_level = "group" if groups else "origin"
        names = table.loc[table["origin_level"] == origin_level, "origin"].dropna().unique()
        chosen = choose(origin, sorted(names)) if origin is not None else None
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
