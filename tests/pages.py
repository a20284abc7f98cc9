"""Reading the run's pages and CSVs back as a reader would: HTML and Markdown tables cell by
cell, and the numbers as written."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd


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


# how the contract and docs/contract.md say numbers are published, rebuilt here by column name
# (not read from the library): counts are whole; rates, shares, intervals, indices and p-values
# are the only numbers with more than 6 decimals
COUNTS = frozenset({
    "registered", "active_in_area", "residents", "households", "watch_households", "parity_gap",
    "penetration_gap", "covered_residents", "covered_parity_gap", "signups", "hotspots",
    "street_sites", "station_days", "social_posts", "rank", "previous_rank", "rank_change",
    "parity_gap_change", "penetration_gap_change", "residents_before", "residents_now",
    "increase", "unknown_origin", "radius_m",
})  # fmt: skip
RATE_LIKE = re.compile(r"rate|share|^ci_|index|p_value|q_value|delta|growth|ratio|per_1000")


def decimals(text: str) -> int:
    """Digits after the decimal point as written, scientific notation included ("1.5e-07"
    has 8)."""
    mantissa, _, exponent = text.lower().partition("e")
    places = len(mantissa.partition(".")[2])
    return max(0, places - int(exponent or 0))


def unpublished_numbers(folder: Path) -> list[str]:
    """Every number in the CSVs a run wrote (not the rejects, which are rows as read) that is
    not as published: a fractional count, or more than 6 decimals outside rates and
    intervals. Empty when all are."""
    problems = []
    for path in sorted(folder.glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in frame.columns:
            values = frame[column]
            numeric = values[values.str.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")]
            if numeric.empty:
                continue
            if column in COUNTS:
                bad = numeric[numeric.str.contains(r"[.eE]")]
            elif RATE_LIKE.search(column):
                continue
            else:
                bad = numeric[numeric.map(decimals) > 6]
            problems += [f"{path.name}:{column}={v}" for v in bad.head(3)]
    return problems


class Page(HTMLParser):
    """What a test needs from an HTML page: tags, attributes, h2 texts, images, markings and
    the body rows of every table, grouped by the id of the section holding them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.h2: list[str] = []
        self.markings: list[str] = []
        self.images: list[dict[str, str]] = []
        self.tables: dict[str, list[list[list[str]]]] = {}
        self._section = ""
        self._text: list[str] | None = None
        self._row: list[str] | None = None
        self._in_tbody = False
        self._in_marking = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self.attributes += [(tag, k, v) for k, v in attr.items()]
        if tag == "section":
            self._section = attr.get("id", "")
        elif tag == "table":
            self.tables.setdefault(self._section, []).append([])
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self._row = []
        elif tag == "img":
            self.images.append(attr)
        elif tag == "div" and attr.get("class") == "marking":
            self._in_marking, self._text = True, []
        if tag in ("h2", "td"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text or [])
        if tag == "h2":
            self.h2.append(text)
        elif tag == "td" and self._row is not None:
            self._row.append(text)
        elif tag == "tr" and self._row is not None:
            self.tables[self._section][-1].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_tbody = False
        elif tag == "div" and self._in_marking:
            self.markings.append(text)
            self._in_marking = False
        elif tag == "section":
            self._section = ""
        if tag in ("h2", "td", "div"):
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)
