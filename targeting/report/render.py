"""The report's building block (`Section`), the display of counts that may be withheld, and
the HTML and Markdown it is written as."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from targeting import svg

WITHHELD = "suppressed"
WATCH_ROLES = ("coordinator", "deputy", "member")


@dataclass(frozen=True)
class Section:
    """One part of the report: a title, a few sentences, tables and an optional picture."""

    title: str
    text: str = ""
    tables: Sequence[tuple[str, pd.DataFrame]] = ()
    image_svg: str | None = None  # a picture (`targeting.svg`), shown after the text
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
    sections: Sequence[Section], *, title: str, marking: str, lead: str, headline: str = ""
) -> str:
    """The report as Markdown (pictures are in the HTML report); `headline` is Markdown built
    by the caller from escaped text."""
    out = [f"**{_md(marking)}**", "", f"# {_md(title)}", "", _md(lead), ""]
    if headline:
        out += [headline, ""]
    for section in sections:
        out += [f"## {_md(section.title)}", "", _md(section.text), ""]
        if section.image_svg is not None:
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


# Pages are read on laptops, on phones (390 px: a table scrolls inside its own box, the page
# never sideways) and on paper (A4, the marking in the top and bottom margin of every page).
_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif;margin:1.5rem auto;max-width:1100px;color:#1a1a1a;padding:0 1rem;overflow-wrap:anywhere}
.marking{background:#b00020;color:#fff;text-align:center;font-weight:700;padding:.3rem;letter-spacing:.08em}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:2px solid #08306b;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1rem;margin-bottom:.3rem}
.scroll{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;font-size:.82rem;margin:.4rem 0 1rem;width:100%}
th,td{border:1px solid #ccc;padding:.25rem .4rem;text-align:left;vertical-align:top;overflow-wrap:normal}
th{background:#eef3fa}.num{text-align:right;white-space:nowrap}
nav a{margin-right:.8rem;display:inline-block}img{max-width:100%;height:auto}
.note{color:#444;font-size:.9rem}
.headline{border:2px solid #08306b;border-radius:6px;padding:.6rem 1rem;background:#f5f8fc}
.headline li{margin:.25rem 0}
@media screen and (max-width:600px){body{margin:.5rem auto;padding:0 .5rem}h1{font-size:1.25rem}
.scroll table,.scroll tbody,.scroll tr,.scroll td{display:block;width:auto}.scroll thead{display:none}
.scroll tr{border:1px solid #ccc;border-radius:4px;margin:0 0 .5rem;padding:.25rem .5rem}
.scroll td{border:0;padding:.05rem 0;text-align:left;white-space:normal;min-width:0;height:auto}
.scroll td::before{content:attr(data-label) ": ";font-weight:600;color:#333}}
@media print{nav{display:none}h2,h3{break-after:avoid}tr{break-inside:avoid}thead{display:table-header-group}
.marking{-webkit-print-color-adjust:exact;print-color-adjust:exact}.scroll{overflow:visible}
body{max-width:none;margin:0;padding:0}}
"""
# a cell reads as a number when it is one, or a withheld or undefined value in a number's place
_NUMBER = re.compile(
    r"^(about |[<>≈~]\s?)?[-+−]?[\d,]*\.?\d+\s?%?(\s?[▲▼–-]\s?[\d,.]*)?$|^[▲▼–] ?[\d,.]*$"
)
_PLACEHOLDERS = {WITHHELD, NOT_DEFINED, "", "-", "–"}


def page_css(marking: str) -> str:
    """The pages' CSS with the protective marking in the top and bottom margin of every
    printed A4 page, and the page number."""
    # a CSS string: backslash, quote and angle brackets escaped (none can end the string or
    # the style element), line breaks as spaces
    quoted = (
        marking.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ")
        .replace(">", "\\3e ").replace("\n", " ").replace("\r", " ")
    )  # fmt: skip
    box = f'content:"{quoted}";color:#b00020;font:700 9pt system-ui,Arial,sans-serif;letter-spacing:.08em'
    return _CSS + (
        f"@page{{size:A4;margin:16mm 10mm 16mm 10mm;@top-center{{{box}}}@bottom-center{{{box}}}"
        '@bottom-right{content:"Page " counter(page) " of " counter(pages);font:8pt system-ui,Arial,sans-serif}}'
    )


def numeric_columns(frame: pd.DataFrame) -> list[bool]:
    """Which columns hold numbers (right-aligned): every value a number or a placeholder, and
    at least one a number."""
    out = []
    # display tables of a few hundred cells: plain Python beats a pandas string call per column
    for col in frame.columns:
        known = [str(v) for v in frame[col].tolist() if str(v) not in _PLACEHOLDERS]
        out.append(bool(known) and all(_NUMBER.match(v) for v in known))
    return out


def table_html(
    frame: pd.DataFrame, *, classes: str = "", column_classes: Mapping[str, str] | None = None
) -> str:
    """One table: numbers right, text left; on a phone each row reads as a card ("Area:
    Tyburn" ...), and a table that is still too wide scrolls in its own box, never the page.
    `column_classes` adds a class to a column's cells, by header (for widths)."""
    esc = html.escape
    extra_cls = column_classes or {}
    cls = []
    for header, numeric in zip(frame.columns, numeric_columns(frame), strict=True):
        names = " ".join(n for n in ("num" if numeric else "", extra_cls.get(header, "")) if n)
        cls.append(f' class="{esc(names)}"' if names else "")
    head = "".join(f"<th{c}>{esc(str(h))}</th>" for h, c in zip(frame.columns, cls, strict=True))
    # each cell carries its header, so that on a phone a row reads as a card of "header: value"
    labels = [f' data-label="{esc(str(h))}"' for h in frame.columns]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{c}{lab}>{esc(str(v))}</td>" for v, c, lab in zip(row, cls, labels, strict=True)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    extra = f' class="{esc(classes)}"' if classes else ""
    return f'<div class="scroll"><table{extra}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def sections_to_html(
    sections: Sequence[Section], *, title: str, marking: str, lead: str, headline: str = ""
) -> str:
    """The report as one self-contained HTML page: inline CSS, pictures embedded, no scripts.
    `headline` (HTML built by the caller from escaped text) opens the page, before the
    contents."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{page_css(marking)}</style></head><body>",
        f'<div class="marking">{esc(marking)}</div>',
        f"<h1>{esc(title)}</h1>",
        f'<p class="note">{esc(lead)}</p>',
        headline,
        "<nav>"
        + "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
        + "</nav>",
    ]
    for section in sections:
        parts.append(f'<section id="{esc(section.anchor)}"><h2>{esc(section.title)}</h2>')
        if section.text:
            parts.append(f'<p class="note">{esc(section.text)}</p>')
        if section.image_svg is not None:
            uri = svg.data_uri(section.image_svg)
            parts.append(f'<img src="{uri}" alt="{esc(section.image_alt)}">')
        for caption, frame in section.tables:
            if caption:
                parts.append(f"<h3>{esc(caption)}</h3>")
            if frame.empty:
                parts.append('<p class="note">None.</p>')
                continue
            parts.append(table_html(frame))
        parts.append("</section>")
    parts += [f'<div class="marking">{esc(marking)}</div>', "</body></html>"]
    return "\n".join(parts) + "\n"


def write_report(
    folder: Path,
    sections: Sequence[Section],
    *,
    marking: str,
    as_of: dt.date,
    base: str,
    headline: tuple[str, str] = ("", ""),
) -> None:
    """`report.html` and `report.md` in `folder`; `headline` is the first screen as (HTML,
    Markdown)."""
    title = f"Who is missing from the alert system: representation report to {as_of:%d %B %Y}"
    lead = (
        "For engagement, not enforcement: this report shows where residents are under-represented "
        f"among sign-ups so that teams can invite them in. Targets are based on {base}. "
        "Aggregates only; small counts are suppressed."
    )
    (folder / "report.html").write_text(
        sections_to_html(sections, title=title, marking=marking, lead=lead, headline=headline[0]),
        encoding="utf-8",
    )
    (folder / "report.md").write_text(
        sections_to_markdown(
            sections, title=title, marking=marking, lead=lead, headline=headline[1]
        ),
        encoding="utf-8",
    )
