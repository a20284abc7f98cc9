"""`targeting history` and `targeting portal`: keep each run's aggregates by date, and publish
them as the engagement portal."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from targeting.cli.common import (
    MarkingOption,
    QuietOption,
    err,
    handled_errors,
    is_quiet,
    out,
    say,
)

history_app = typer.Typer(
    help="The history of runs the portal is built from: add a run, list what is held.",
    no_args_is_help=True,
)

StoreOption = Annotated[
    Path, typer.Option("--store", help="The history store (a DuckDB file).", show_default=False)
]


@history_app.command("add")
def history_add(
    ctx: typer.Context,
    output_dir: Annotated[
        Path, typer.Argument(help="A finished run's output folder.", show_default=False)
    ],
    store: StoreOption,
    backfill: Annotated[
        int,
        typer.Option(
            "--backfill",
            min=0,
            help="Also add this many earlier dates, reconstructed from the run's sign-ups by "
            "the day they joined (a new portal's first year).",
        ),
    ] = 0,
    every: Annotated[
        str, typer.Option("--every", help="Spacing of the backfilled dates: month or week.")
    ] = "month",
    quiet: QuietOption = False,
) -> None:
    """Add a finished run to the history store (created if missing); the same run twice is a
    no-op, and a run of other areas or origins is refused.

    Example: targeting history add out/ --store history.duckdb --backfill 11
    """
    from targeting.history import add_run

    with handled_errors():
        added = add_run(output_dir, store=store, backfill=backfill, every=every)
    if not is_quiet(ctx, quiet):
        for a in added:
            err.print(f"  {a.force} {a.as_of:%Y-%m-%d} ({a.source}): {a.outcome}", markup=False,
                      highlight=False)  # fmt: skip
    say(store.resolve())


@history_app.command("list")
def history_list(store: StoreOption) -> None:
    """Print each snapshot in the store: force, date, where it came from, areas and sign-ups.

    Example: targeting history list --store history.duckdb
    """
    from rich.table import Table

    from targeting.history import list_snapshots

    with handled_errors():
        held = list_snapshots(store)
    table = Table(title=f"History in {store}")
    for header in ("force", "as_of", "source", "areas", "sign-ups"):
        table.add_column(header, justify="right" if header in ("areas", "sign-ups") else "left")
    for force, as_of, source, areas, signups in held[
        ["force", "as_of", "source", "areas", "signups"]
    ].itertuples(index=False, name=None):
        table.add_row(str(force), f"{as_of:%Y-%m-%d}", str(source), f"{areas:,}", f"{signups:,}")
    out.print(table)


def portal(
    ctx: typer.Context,
    store: StoreOption,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the site.")] = Path("portal"),
    force: Annotated[
        str | None, typer.Option("--force", help="The force, when the store holds several.")
    ] = None,
    marking: MarkingOption = "OFFICIAL-SENSITIVE",
    serve: Annotated[
        bool, typer.Option("--serve", help="Then serve it at http://localhost:PORT/.")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --serve.")] = 8000,
    quiet: QuietOption = False,
) -> None:
    """Write the engagement portal: a static site of trends for the force, each NPU and each
    area, protected across dates, that opens with no network (from a file share or any web
    server).

    Example: targeting portal --store targeting-demo/history.duckdb --out portal
    """
    from targeting.portal import build_portal, serve_portal

    with handled_errors():
        result = build_portal(store, out_dir, force=force, marking=marking)
    if not is_quiet(ctx, quiet):
        err.print(
            f"  {result.force}: {result.dates} dates, {result.pages} pages, "
            f"{result.bytes / 1e6:.1f} MB",
            markup=False,
            highlight=False,
        )
    say(result.out_dir / "index.html")
    if serve:
        err.print(f"  serving on http://localhost:{port}/ (Ctrl-C stops)", markup=False)
        with contextlib.suppress(KeyboardInterrupt):
            serve_portal(result.out_dir, port=port)
