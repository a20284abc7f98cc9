"""The package's own exceptions, so callers (and the CLI) can tell a data problem from a bug."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class TargetingError(Exception):
    """Base class for every error the engine raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: where it is, what is wrong and how to fix it."""

    where: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}. Fix: {self.fix}"


class ConfigError(TargetingError):
    """The run's TOML configuration is missing, malformed, or has unknown keys or wrong types."""

    def __init__(self, path: Path | str, problems: Sequence[Problem]) -> None:
        self.path = Path(path)
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"config {self.path} has {len(self.problems)} problem(s):\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from its own arguments (with any notes), so it crosses a process boundary
        return type(self), (self.path, self.problems), self.__dict__


class InputError(TargetingError):
    """An input file cannot be used at all; the run stops before any output is written."""

    def __init__(self, input_name: str, path: Path | str, problems: Sequence[Problem]) -> None:
        self.input_name = input_name
        self.path = Path(path)
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"input '{input_name}' ({self.path}) cannot be used, "
            f"{len(self.problems)} problem(s):\n{lines}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.input_name, self.path, self.problems), self.__dict__


class OutputError(TargetingError):
    """The output folder cannot be written or swapped into place."""


class OptionError(TargetingError):
    """A command-line option names something the run does not have (an origin, say)."""


class HistoryError(TargetingError):
    """A history store refuses a snapshot (another configuration, or other figures for a date it
    holds), or cannot be read."""


class NoRunError(TargetingError):
    """A command that reads a finished run's outputs found none where it looked."""


class TrialError(TargetingError):
    """A trial's files or options do not fit together (a missing column, an arm that is not
    there, more hotspots than the weeks hold)."""


class BatchError(TargetingError):
    """A batch cannot start (a bad config, two runs sharing an output folder), or some of its
    runs failed."""


class PlanError(TargetingError):
    """The week's plan could not be solved: a solver failure, not an input's fault."""
