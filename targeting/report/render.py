"""The report's building block (`Section`), the display of counts that may be withheld, and
the HTML and Markdown it is written as."""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

WITHHELD = "suppressed"
WATCH_ROLES = ("coordinator", "deputy", "member")


@dataclass(frozen=True)
class Section:
    """One part of the report: a title, a few sentences, tables and an optional picture."""

    title: str
    text: str = ""
    tables: Sequence[tuple[str, pd.DataFrame]] = ()
    image_png: bytes | None = None
    image_alt: str = ""
    anchor: str = field(default="")


NOT_DEFINED = "n/a"


def _blank(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _count(value: object, *, threshold: int | None = None) -> str:
    """A count for display; withheld (NA, or below the threshold when given) reads 'suppressed'."""
    if _blank(value):
        return WITHHELD
    number = float(value)  # type: ignore[arg-type]
    if threshold is not None and 0 < number < threshold:
        return WITHHELD
    return f"{number:,.0f}"


def _pct(value: object, digits: int = 2) -> str:
    if _blank(value):
        return WITHHELD
    return f"{100 * float(value):.{digits}f}%"  # type: ignore[arg-type]


def _md(value: object) -> str:
    """Text safe inside a Markdown table cell: no raw HTML, no cell breaks, no line breaks."""
    text = html.escape(str(value), quote=False)
    return text.replace("|", "/").replace("\r", " ").replace("\n", " ")


def sections_to_markdown(
    sections: Sequence[Section], *, title: str, marking: str, lead: str
) -> str:
    """The report as Markdown (pictures are in the HTML report)."""
    out = [f"**{_md(marking)}**", "", f"# {_md(title)}", "", _md(lead), ""]
    for section in sections:
        out += [f"## {_md(section.title)}", "", _md(section.text), ""]
        if section.image_png is not None:
            out += [f"*Picture: {section.image_alt} (in report.html).*", ""]
        for caption, frame in section.tables:
            if caption:
                out += [f"### {_md(caption)}", ""]
            if frame.empty:
                out += ["None.", ""]
                continue
            out.append("| " + " | ".join(map(_md, frame.columns)) + " |")
            out.append("|" + "---|" * len(frame.columns))
            out += [
                "| " + " | ".join(_md(v) for v in row) + " |"
                for row in frame.itertuples(index=False)
            ]
            out.append("")
    out += [f"**{_md(marking)}**", ""]
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif;margin:1.5rem auto;max-width:1100px;color:#1a1a1a;padding:0 1rem}
.marking{background:#b00020;color:#fff;text-align:center;font-weight:700;padding:.3rem;letter-spacing:.08em}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:2px solid #08306b;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1rem;margin-bottom:.3rem}
table{border-collapse:collapse;font-size:.82rem;margin:.4rem 0 1rem;width:100%}
th,td{border:1px solid #ccc;padding:.25rem .4rem;text-align:right}th{background:#eef3fa}
td:first-child,th:first-child{text-align:left}
nav a{margin-right:.8rem}img{max-width:100%}
.note{color:#444;font-size:.9rem}
@media print{nav{display:none}h2{page-break-after:avoid}table{page-break-inside:auto}tr{page-break-inside:avoid}
.marking{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def sections_to_html(sections: Sequence[Section], *, title: str, marking: str, lead: str) -> str:
    """The report as one self-contained HTML page: inline CSS, pictures embedded, no scripts."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f'<div class="marking">{esc(marking)}</div>',
        f"<h1>{esc(title)}</h1>",
        f'<p class="note">{esc(lead)}</p>',
        "<nav>"
        + "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
        + "</nav>",
    ]
    for section in sections:
        parts.append(f'<section id="{esc(section.anchor)}"><h2>{esc(section.title)}</h2>')
        if section.text:
            parts.append(f'<p class="note">{esc(section.text)}</p>')
        if section.image_png is not None:
            data = base64.b64encode(section.image_png).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{esc(section.image_alt)}">')
        for caption, frame in section.tables:
            if caption:
                parts.append(f"<h3>{esc(caption)}</h3>")
            if frame.empty:
                parts.append('<p class="note">None.</p>')
                continue
            head = "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>"
                for row in frame.itertuples(index=False)
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts.append("</section>")
    parts += [f'<div class="marking">{esc(marking)}</div>', "</body></html>"]
    return "\n".join(parts) + "\n"


def write_report(
    folder: Path, sections: Sequence[Section], *, marking: str, as_of: dt.date, base: str
) -> None:
    """`report.html` and `report.md` in `folder`."""
    title = f"Who is missing from the alert system: representation report to {as_of:%d %B %Y}"
    lead = (
        "For engagement, not enforcement: this report shows where residents are under-represented "
        f"among sign-ups so that teams can invite them in. Targets are based on {base}. "
        "Aggregates only; small counts are suppressed."
    )
    (folder / "report.html").write_text(
        sections_to_html(sections, title=title, marking=marking, lead=lead), encoding="utf-8"
    )
    (folder / "report.md").write_text(
        sections_to_markdown(sections, title=title, marking=marking, lead=lead), encoding="utf-8"
    )
