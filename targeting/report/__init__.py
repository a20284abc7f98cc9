"""The run's report for engagement leads: `report.html` (self-contained, offline, printable) and
`report.md`, built from the same sections.

Every sign-up-derived number here comes from disclosure-controlled tables or is withheld below
the threshold on the spot; withheld values read "suppressed", never 0.
"""

from targeting.report.headline import (
    Headline,
    build_headline,
    headline_to_html,
    headline_to_markdown,
)
from targeting.report.origins import format_origin_rows, predominant, under_represented
from targeting.report.render import (
    WITHHELD,
    Section,
    sections_to_html,
    sections_to_markdown,
    write_report,
)
from targeting.report.sections import build_sections, daily_heatmap_svg, segment_section

__all__ = [
    "WITHHELD",
    "Headline",
    "Section",
    "build_headline",
    "build_sections",
    "daily_heatmap_svg",
    "format_origin_rows",
    "headline_to_html",
    "headline_to_markdown",
    "predominant",
    "sections_to_html",
    "sections_to_markdown",
    "segment_section",
    "under_represented",
    "write_report",
]
