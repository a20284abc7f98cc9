"""What every command shares: the consoles, quiet mode, progress, and library errors turned into
one message on stderr and an exit code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from targeting.errors import (
    ConfigError,
    HistoryError,
    InputError,
    NoRunError,
    OptionError,
    OutputError,
    TargetingError,
    TrialError,
)

if TYPE_CHECKING:
    from targeting.pipeline import RunResult

err = Console(stderr=True)
out = Console()
EXIT_CODES = {
    ConfigError: 2,
    OptionError: 2,
    InputError: 3,
    TrialError: 3,
    OutputError: 4,
    NoRunError: 5,
    HistoryError: 6,
}


@dataclass(frozen=True)
class Options:
    """What the top-level options (`targeting --quiet ...`) say, for every command."""

    quiet: bool = False


def is_quiet(ctx: typer.Context, quiet: bool) -> bool:
    """Quiet when `--quiet` came before the command or after it."""
    root = ctx.find_root().obj
    return quiet or (isinstance(root, Options) and root.quiet)


def say(text: object) -> None:
    """A result (a folder, a file, a number) on stdout, whole: a long path is never wrapped."""
    typer.echo(str(text))


# the protective marking printed on every page a command writes (the run's own comes from its
# config's [output] protective_marking)
MarkingOption = Annotated[str, typer.Option("--marking", help="Protective marking on every page.")]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr.")
]


@contextmanager
def progress_steps(steps: Sequence[str], *, quiet: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr over `steps`; yields the callback the library calls at each."""
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
def handled_errors() -> Iterator[None]:
    """Turn the library's errors into one message on stderr and the exit code for their kind."""
    try:
        yield
    except TargetingError as exc:
        err.print("[bold red]error:[/]", end=" ")
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=EXIT_CODES.get(type(exc), 1)) from None


def print_summary(result: RunResult, *, quiet: bool) -> None:
    """Rows read, used and rejected per input, and the run's warnings, on stderr."""
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
    if result.history:
        outcomes = Counter(a.outcome for a in result.history)
        dates = sorted(a.as_of for a in result.history)
        span = f"{dates[0]:%Y-%m-%d}" + (f" to {dates[-1]:%Y-%m-%d}" if len(dates) > 1 else "")
        err.print(
            f"  history: {result.history[0].force}, {span}: "
            + ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())),
            markup=False,
            highlight=False,
        )


def choose(name: str, choices: Sequence[str]) -> str:
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
