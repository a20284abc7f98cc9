"""Small SVG pictures for the report and the tasking pack, written as text.

A calendar heatmap and an outline map are a few hundred shapes: writing them as SVG takes
milliseconds, where drawing them with matplotlib took two seconds of a force's run (a third of a
second of it loading matplotlib). SVG also prints sharp at any size and its labels stay text.
The pictures go into pages as `data:` URIs of `<img>` elements, so they run nothing and fetch
nothing.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def text(x: float, y: float, value: str, *, size: float, anchor: str = "start",
         fill: str = "#222222", bold: bool = False) -> str:  # fmt: skip
    """A label at (x, y) (its baseline), escaped."""
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" text-anchor="{anchor}" '
        f'fill="{fill}"{weight}>{html.escape(value)}</text>'
    )


def document(width: int, height: int, parts: Iterable[str], *, title: str) -> str:
    """A standalone SVG of `width` x `height` pixels with a white background."""
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="{FONT}">',
            f"<title>{html.escape(title)}</title>",
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
            *parts,
            "</svg>",
        ]
    )


def data_uri(svg: str) -> str:
    """The picture as a `data:` URI for an `<img src>`."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
