"""The `targeting` command: a thin layer over `targeting.pipeline`.

Library errors become one clear message on stderr and a non-zero exit code (2 for a bad config,
3 for unusable input, 4 for an output folder that cannot be written); progress goes to stderr so
stdout stays clean for scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from targeting import __version__, pipeline
from targeting.errors import ConfigError, InputError, OutputError, TargetingError

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
EXIT_CODES = {ConfigError: 2, InputError: 3, OutputError: 4}


class _State:
    quiet = False


QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")
]


def _version(value: bool) -> None:
    if value:
        out.print(f"targeting {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    quiet: QuietOption = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Engagement targeting for police community messaging (inviting people in, not enforcement)."""
    _State.quiet = quiet


@contextmanager
def _progress(steps: Sequence[str]) -> Iterator[Callable[[str], None]]:
    if _State.quiet:
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


def _summary(result: pipeline.RunResult) -> None:
    if _State.quiet:
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
    _State.quiet |= quiet
    with _errors(), _progress(pipeline.RUN_STEPS) as step:
        result = pipeline.run(config, previous=previous, on_step=step)
    _summary(result)
    out.print(str(result.out_dir))


@app.command()
def validate(
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
    _State.quiet |= quiet
    with _errors(), _progress(pipeline.INGEST_STEPS) as step:
        result = pipeline.validate(config, out_dir=out_dir, on_step=step)
    _summary(result)
    out.print(str(result.out_dir))


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the demo inputs and outputs.")
    ] = Path("targeting-demo"),
    quiet: QuietOption = False,
) -> None:
    """Run the whole engine on the built-in demo city (synthetic, West-Midlands-like).

    Writes the demo inputs and demo.toml into the folder, and the outputs into its output/ folder.

    Example: targeting demo --out demo
    """
    _State.quiet |= quiet
    with _errors(), _progress(("demo data", *pipeline.RUN_STEPS)) as step:
        result = pipeline.run_demo(out_dir, on_step=step)
    _summary(result)
    out.print(str(result.out_dir))


segments_app = typer.Typer(
    help="Geodemographic segments: build the open segmentation from the census.",
    no_args_is_help=True,
)
app.add_typer(segments_app, name="segments")


@segments_app.command("build")
def segments_build(
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
    if not _State.quiet:
        err.print(
            f"{seg.k} segments; to use them, add to the config's \\[inputs]:\n"
            f'  segments = "{target / "segments.csv"}"\n'
            f'  segment_descriptions = "{target / "segment_descriptions.csv"}"'
        )
    out.print(str(target))


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
    from targeting.errors import OutputError
    from targeting.maps import map_to_html, origin_keys, read_map_data
    from targeting.store import STORE_NAME

    with _errors():
        cfg = load_config(config)
        if not (cfg.output.dir / STORE_NAME).is_file():
            raise OutputError(
                f"no finished run in {cfg.output.dir}: run `targeting run {config}` first"
            )
        data = read_map_data(cfg.output.dir, config=cfg)
        keys = origin_keys(data)
        if origin is not None and origin not in keys:
            raise typer.BadParameter(
                f"--origin {origin!r} is not in this run; use one of: {', '.join(keys)}"
            )
        target = out_file or cfg.output.dir / "map.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(map_to_html(data, origin=origin), encoding="utf-8")
    out.print(str(target.resolve()))


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
        rows = select_rows(
            table, level=level.lower(), origin=origin, origin_level="group" if groups else "origin"
        ).head(limit)
    shown = Table(title=f"Representation ({level}, {cfg.output.protective_marking})")
    formatted = format_origin_rows(rows, with_area=True)
    for header in formatted.columns:
        shown.add_column(header, justify="left" if header in ("Area", "Origin") else "right")
    for values in formatted.itertuples(index=False):
        shown.add_row(*values)
    # piped to a file or another program, print the table whole rather than squeezed to 80 columns
    (out if out.is_terminal else Console(width=200)).print(shown)
