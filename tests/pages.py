"""Reading the run's Markdown report back as a reader would: its tables, cell by cell."""

from __future__ import annotations

import html


def markdown_table(text: str, section: str, caption: str = "") -> list[dict[str, str]]:
    """The rows of the first table (or the one under `### caption`) of a `## section`, with
    HTML entities read back ("&lt;10" is "<10")."""
    lines = text.splitlines()
    lines = lines[lines.index(f"## {section}") + 1 :]
    if caption:
        lines = lines[lines.index(f"### {caption}") + 1 :]
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    end = next(i for i, line in enumerate(lines) if i > start and not line.startswith("|"))
    block = lines[start:end]
    cells = [[html.unescape(c.strip()) for c in row.strip("|").split("|")] for row in block]
    header, rows = cells[0], cells[2:]
    return [dict(zip(header, row, strict=True)) for row in rows]


def captions(text: str, section: str) -> list[str]:
    """The `### ` captions of a `## section`, in order."""
    lines = text.splitlines()
    lines = lines[lines.index(f"## {section}") + 1 :]
    end = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    return [line[4:] for line in lines[:end] if line.startswith("### ")]
