"""The report: formatting with known answers, the daily heatmap, escaping and self-containment,
and the demo run's report as headless Chromium renders it."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from browser import CHROMIUM, chromium, needs_chromium
from pages import Page, markdown_table
from PIL import Image

from targeting import svg
from targeting.report import (
    WITHHELD,
    Section,
    daily_heatmap_svg,
    format_origin_rows,
    sections_to_html,
    sections_to_markdown,
    under_represented,
)
from targeting.report.origins import every_origin, small_withheld
from targeting.representation import Representation

SVG = "{http://www.w3.org/2000/svg}"  # the namespace of every element of a picture
MARKING = "OFFICIAL-SENSITIVE"
MARKING_RED = (0xB0, 0x00, 0x20)
HEATMAP_BLUES = ((0xC6, 0xDB, 0xEF), (0x6B, 0xAE, 0xD6))  # the 1-9 and 10-19 bands
EVIL = "<script>alert(1)</script>"
DEMO_TITLES = (
    "At a glance: week to 31 October 2018",
    "Under-represented origins",
    "Areas: sign-ups and gaps",
    "Predominant origins",
    "Registrations from under-represented origins, last six months",
    "Sign-ups per month by origin",
    "Origins by NPU",
    "User management",
    "Neighbourhood Watch",
    "Sign-ups with no known origin",
    "How sign-up origins were read",
    "Sign-ups by segment",
)
ORIGIN_COLUMNS = [
    "Origin",
    "Residents",
    "Sign-ups",
    "Share of residents",
    "Share of sign-ups",
    "Difference",
    "Index",
    "95% interval of sign-up share",
    "Parity gap",
    "Under-represented",
    "Beyond chance",
]
WITHHELD_COLUMNS = [
    "Sign-ups",
    "Share of sign-ups",
    "Difference",
    "Index",
    "95% interval of sign-up share",
    "Parity gap",
    "Under-represented",
    "Beyond chance",
]
UNDER_COLUMNS = [c for c in ORIGIN_COLUMNS if c != "Under-represented"]


# ---------------------------------------------------------------------------------------------
# unit tests with known answers


def origin_frame(*, nullable: bool = True) -> pd.DataFrame:
    """Two force-level representation rows: Pakistani in full and Somali withheld.

    `nullable` mimics the table in memory (Int64/boolean with <NA>); otherwise the float/object
    columns with NaN that `representation.csv` reads back as.
    """
    na = pd.NA if nullable else np.nan
    frame = pd.DataFrame(
        {
            "level": ["force", "force"],
            "area_code": ["ALL", "ALL"],
            "area_name": ["All areas", "All areas"],
            "origin_level": ["origin", "origin"],
            "origin": ["Pakistani", "Somali"],
            "active_in_area": [106701.0, 22001.0],
            "registered": [1644, na],
            "target_rate": [0.0485, 0.01],
            "actual_rate": [0.0323, np.nan],
            "rate_delta": [0.0162, np.nan],
            "representation_index": [66.6, np.nan],
            "ci_low": [0.0308, np.nan],
            "ci_high": [0.0339, np.nan],
            "parity_gap": [868, na],
            "under_represented": [True, na],
            "suppressed": [False, True],
            "p_value": [0.0, np.nan],
            "q_value": [0.001, np.nan],
        }
    )
    if nullable:
        return frame.astype(
            {"registered": "Int64", "parity_gap": "Int64", "under_represented": "boolean"}
        )
    return frame.astype({"registered": float, "parity_gap": float, "under_represented": object})


@pytest.mark.parametrize("nullable", [True, False], ids=["in-memory", "csv"])
def test_format_origin_rows_known_answers_and_withheld_read_suppressed(nullable: bool) -> None:
    table = format_origin_rows(origin_frame(nullable=nullable))
    assert list(table.columns) == ORIGIN_COLUMNS
    shown, withheld = (row.to_dict() for _, row in table.iterrows())
    assert shown == {
        "Origin": "Pakistani",
        "Residents": "106,701",
        "Sign-ups": "1,644",
        "Share of residents": "4.85%",
        "Share of sign-ups": "3.23%",
        "Difference": "−1.62 pts",  # a shortfall reads negative (rate_delta is +0.0162)
        "Index": "67",
        "95% interval of sign-up share": "3.08-3.39%",
        "Parity gap": "868",
        "Under-represented": "yes",
        "Beyond chance": "yes",
    }
    # residents and the target are census figures: shown; everything from sign-ups is withheld
    assert withheld["Origin"] == "Somali"
    assert withheld["Residents"] == "22,001"
    assert withheld["Share of residents"] == "1.00%"
    assert {c: withheld[c] for c in WITHHELD_COLUMNS} == dict.fromkeys(WITHHELD_COLUMNS, WITHHELD)
    for value in withheld.values():
        assert not re.fullmatch(r"0(\.0+)?%?|nan|<NA>|None|no", value), value


def test_format_origin_rows_real_zero_is_zero_and_area_column() -> None:
    frame = origin_frame()
    frame.loc[0, ["registered", "parity_gap"]] = 0
    frame.loc[0, ["actual_rate", "ci_low"]] = 0.0
    frame.loc[0, "under_represented"] = False
    frame.loc[0, "q_value"] = 0.5
    table = format_origin_rows(frame, with_area=True)
    assert list(table.columns) == ["Area", *ORIGIN_COLUMNS]
    assert list(table["Area"]) == ["All areas", "All areas"]
    first = table.iloc[0]
    assert (first["Sign-ups"], first["Share of sign-ups"], first["Parity gap"]) == (
        "0",
        "0.00%",
        "0",
    )
    assert (first["Under-represented"], first["Beyond chance"]) == ("no", "no")
    assert table.iloc[1]["Sign-ups"] == WITHHELD


def _rep_row(
    origin: str,
    *,
    delta: float,
    gap: int | None,
    active: float = 100.0,
    level: str = "force",
    area_code: str = "ALL",
    origin_level: str = "origin",
) -> dict[str, object]:
    """One representation row; `gap=None` makes it a withheld (suppressed) row."""
    hidden = gap is None
    return {
        "level": level,
        "area_code": area_code,
        "area_name": "All areas" if area_code == "ALL" else area_code,
        "origin_level": origin_level,
        "origin": origin,
        "active_in_area": active,
        "registered": pd.NA if hidden else 20,
        "target_rate": 0.05,
        "actual_rate": np.nan if hidden else 0.05 - delta,
        "rate_delta": np.nan if hidden else delta,
        "representation_index": np.nan if hidden else 100 * (0.05 - delta) / 0.05,
        "ci_low": np.nan if hidden else 0.01,
        "ci_high": np.nan if hidden else 0.09,
        "parity_gap": pd.NA if hidden else gap,
        "under_represented": pd.NA if hidden else delta > 0,
        "suppressed": hidden,
        "p_value": np.nan if hidden else 0.5,
        "q_value": np.nan if hidden else 0.5,
    }


def representation_table() -> pd.DataFrame:
    rows = [
        _rep_row("Small gap", delta=0.01, gap=5, active=100),
        _rep_row("Big gap", delta=0.02, gap=50),
        _rep_row("Over-represented", delta=-0.01, gap=0),
        _rep_row("Withheld", delta=np.nan, gap=None, active=5000),
        _rep_row("A group", delta=0.05, gap=500, origin_level="group"),
        _rep_row("In a parent", delta=0.05, gap=400, level="parent", area_code="P1"),
        _rep_row("At parity", delta=0.0, gap=0),
        _rep_row("Small gap, more residents", delta=0.01, gap=5, active=1000),
    ]
    return pd.DataFrame(rows).astype(
        {"registered": "Int64", "parity_gap": "Int64", "under_represented": "boolean"}
    )


def test_under_represented_keeps_only_under_represented_origin_rows_largest_gap_first() -> None:
    table = representation_table()
    force = under_represented(table, level="force", area_code="ALL")
    # groups, other levels, over-represented, at-parity and withheld rows (whose flag is
    # withheld) are left out; ties on the gap go to the larger origin
    assert list(force["Origin"]) == ["Big gap", "Small gap, more residents", "Small gap"]
    assert list(force["Parity gap"]) == ["50", "5", "5"]
    assert list(force["Difference"]) == ["−2.00 pts", "−1.00 pts", "−1.00 pts"]
    assert list(force.columns) == UNDER_COLUMNS
    parent = under_represented(table, level="parent", area_code="P1")
    assert list(parent["Origin"]) == ["In a parent"]
    assert list(under_represented(table, level="force", area_code="ALL", limit=2)["Origin"]) == [
        "Big gap",
        "Small gap, more residents",
    ]
    assert under_represented(table, level="parent", area_code="nowhere").empty


AS_OF = dt.date(2018, 10, 31)


def signup_days(**extra: int) -> pd.Series:
    """Join dates (as `datetime.date`, like `build_sections` passes) for a known pattern of days;
    `extra` adds days by ISO date: `d2018_10_01=3` -> three sign-ups on 1 October 2018."""
    counts = {dt.date(2018, 9, 15): 25, dt.date(2018, 8, 1): 60, dt.date(2018, 6, 12): 12}
    for key, n in extra.items():
        counts[dt.date.fromisoformat(key[1:].replace("_", "-"))] = n
    return pd.Series([d for d, n in counts.items() for _ in range(n)], dtype=object)


def heatmap(days: pd.Series, threshold: int = 10) -> str:
    return daily_heatmap_svg(days, as_of=AS_OF, threshold=threshold)


def day_boxes(picture: str) -> list[str]:
    """The fill of each day's box in a heatmap (the boxes of the crisp-edged group)."""
    root = ElementTree.fromstring(picture)
    (days,) = [g for g in root.iter(f"{SVG}g") if g.get("shape-rendering") == "crispEdges"]
    return [r.get("fill", "") for r in days.iter(f"{SVG}rect")]


def test_daily_heatmap_is_an_svg_with_one_box_per_day_and_a_key() -> None:
    picture = heatmap(signup_days(d2018_10_01=3))
    root = ElementTree.fromstring(picture)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height")) == ("990", "264")
    fills = day_boxes(picture)
    assert len(fills) == 182  # the six months to as_of, day by day
    # 60 on 1 August, 25 on 15 September, 12 on 12 June, 3 on 1 October, none on the rest
    assert Counter(fills) == {"#08306b": 1, "#2171b5": 1, "#6baed6": 1, "#c6dbef": 1,
                              "#f0f0f0": 178}  # fmt: skip
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert labels[-5:] == ["0", "1-9", "10-19", "20-49", "50+"]  # the key, lowest first
    assert {"Mon", "Sun", "Jun 2018", "Oct 2018"} <= set(labels)
    assert heatmap(signup_days(d2018_10_01=3)) == picture  # deterministic


def test_daily_heatmap_days_with_1_to_9_share_one_colour_band() -> None:
    three, seven = heatmap(signup_days(d2018_10_01=3)), heatmap(signup_days(d2018_10_01=7))
    assert three == seven  # byte for byte: a small count cannot be read off the picture
    assert heatmap(signup_days(d2018_10_01=1)) == heatmap(signup_days(d2018_10_01=9)) == three
    # ...while the bands themselves do show: none vs a few, a few vs the threshold
    assert heatmap(signup_days(d2018_10_01=0)) != three
    assert heatmap(signup_days(d2018_10_01=10)) != three
    # the band follows the threshold
    assert heatmap(signup_days(d2018_10_01=3), 5) != heatmap(signup_days(d2018_10_01=7), 5)


def test_daily_heatmap_ignores_days_outside_the_six_months() -> None:
    inside = heatmap(signup_days())
    assert heatmap(signup_days(d2018_01_01=40, d2018_11_05=40)) == inside
    empty = heatmap(pd.Series([], dtype=object))
    assert set(day_boxes(empty)) == {"#f0f0f0"} and empty != inside


def tiny_svg() -> str:
    return svg.document(3, 2, ['<rect width="3" height="2" fill="#08306b"/>'], title="tiny")


def hostile_sections() -> list[Section]:
    return [
        Section(
            EVIL,
            f"text {EVIL}",
            [(f"caption {EVIL}", pd.DataFrame({EVIL: [EVIL, "safe & sound"], "n": [1, 2]}))],
            image_svg=tiny_svg(),
            image_alt=f'alt {EVIL} "quoted"',
            anchor='x"><script>alert(2)</script>',
        ),
        Section("Empty", "", [("", pd.DataFrame({"Origin": []}))], anchor="empty"),
    ]


def test_sections_to_html_escapes_everything_and_runs_no_script() -> None:
    page = sections_to_html(hostile_sections(), title=f"Title {EVIL}", marking=MARKING, lead=EVIL)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parsed = Page(page)
    assert "script" not in parsed.tags
    # the text round-trips: what a reader sees is the literal string, not markup
    assert parsed.h2 == [EVIL, "Empty"]
    assert parsed.tables['x"><script>alert(2)</script>'][0] == [[EVIL, "1"], ["safe & sound", "2"]]
    assert ("img", "alt", f'alt {EVIL} "quoted"') in parsed.attributes
    assert ("section", "id", 'x"><script>alert(2)</script>') in parsed.attributes
    assert '<p class="note">None.</p>' in page  # an empty table says so


def test_sections_to_html_has_the_marking_top_and_bottom() -> None:
    page = sections_to_html(hostile_sections(), title="T", marking=MARKING, lead="L")
    marking_div = f'<div class="marking">{MARKING}</div>'
    body = page.split("<body>", 1)[1]
    assert body.lstrip().startswith(marking_div)
    assert body.rstrip().endswith(f"{marking_div}\n</body></html>")
    assert Page(page).markings == [MARKING, MARKING]
    assert ".marking{background:#b00020" in page
    assert "print-color-adjust:exact" in page  # the band survives printing


def test_sections_to_html_is_self_contained_and_offline() -> None:
    picture = tiny_svg()
    page = sections_to_html(hostile_sections(), title="T", marking=MARKING, lead="L")
    assert not re.search(r"https?://", page, re.IGNORECASE)
    assert not re.search(r"<\s*(script|link|iframe|object|embed|base)\b", page, re.IGNORECASE)
    assert "@import" not in page and "url(" not in page
    parsed = Page(page)
    for tag, name, value in parsed.attributes:
        if name == "href":
            assert value.startswith("#"), (tag, value)
        if name == "src":
            assert value.startswith("data:image/svg+xml;base64,"), (tag, value)
    (image,) = parsed.images
    decoded = base64.b64decode(image["src"].split(",", 1)[1], validate=True)
    assert decoded.decode("utf-8") == picture


def test_sections_to_markdown_renders_tables() -> None:
    sections = [
        Section(
            "Areas",
            "Some words.",
            [("By area", pd.DataFrame({"Area": ["A|B", "Tyburn"], "Sign-ups": [WITHHELD, 12]}))],
            image_svg=tiny_svg(),
            image_alt="A picture",
        ),
        Section("Nothing", "", [("", pd.DataFrame({"Origin": []}))]),
    ]
    text = sections_to_markdown(sections, title="Report", marking=MARKING, lead="Lead.")
    lines = text.splitlines()
    assert lines[0] == f"**{MARKING}**"
    assert [line for line in lines if line][-1] == f"**{MARKING}**"
    assert "# Report" in lines and "Lead." in lines
    assert lines[lines.index("## Areas") :][:4] == ["## Areas", "", "Some words.", ""]
    assert "*Picture: A picture (in report.html).*" in lines
    table = lines[lines.index("### By area") + 2 :][:4]
    assert table == [
        "| Area | Sign-ups |",
        "|---|---|",
        "| A/B | suppressed |",  # a pipe in a cell cannot break the table
        "| Tyburn | 12 |",
    ]
    nothing = lines[lines.index("## Nothing") :]
    assert nothing[:5] == ["## Nothing", "", "", "", "None."]


# ---------------------------------------------------------------------------------------------
# the demo run: report.md, and report.html in headless Chromium


@pytest.fixture(scope="module")
def demo_out(demo_output: Path) -> Path:
    return demo_output


def test_demo_markdown_has_the_html_sections(demo_out: Path) -> None:
    text = (demo_out / "report.md").read_text(encoding="utf-8")
    titles = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert titles == list(DEMO_TITLES)
    html_page = Page((demo_out / "report.html").read_text(encoding="utf-8"))
    assert html_page.h2 == titles
    assert text.startswith(f"**{MARKING}**") and text.rstrip().endswith(f"**{MARKING}**")


def test_demo_force_level_pakistani_row(demo_out: Path) -> None:
    text = (demo_out / "report.md").read_text(encoding="utf-8")
    rows = markdown_table(text, "Under-represented origins", "Under-represented: all areas")
    (pakistani,) = [r for r in rows if r["Origin"] == "Pakistani"]
    assert pakistani["Share of residents"] == "4.85%"
    assert re.fullmatch(r"3\.2\d%", pakistani["Share of sign-ups"]), pakistani
    assert pakistani["Difference"] == "−1.61 pts"
    predominant = markdown_table(text, "Predominant origins", "All areas")
    (same,) = [r for r in predominant if r["Origin"] == "Pakistani"]
    assert same["Under-represented"] == "yes"
    assert {k: same[k] for k in pakistani} == pakistani
    # the HTML shows the same row
    page = Page((demo_out / "report.html").read_text(encoding="utf-8"))
    first_table = page.tables["under-represented"][0]
    assert list(pakistani.values()) in first_table


@pytest.fixture(scope="module")
def rendered(demo_out: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """report.html rendered: its DOM, a 1200x9000 screenshot, and the sizes of its images as
    the browser decoded them (a copy of the page with a probe script that records them)."""
    if not CHROMIUM.exists():
        pytest.skip(f"headless browser test needs Chromium at {CHROMIUM}")
    work = tmp_path_factory.mktemp("browser")
    report = demo_out / "report.html"
    screenshot = work / "report_screenshot.png"
    chromium(
        report.as_uri(),
        "--window-size=1200,9000",
        "--hide-scrollbars",
        f"--screenshot={screenshot}",
        home=work / "shot",
    )
    dom = chromium(report.as_uri(), "--dump-dom", home=work / "dom").stdout
    probe = work / "probe.html"
    probe.write_text(
        report.read_text(encoding="utf-8").replace(
            "</body>",
            "<script>window.addEventListener('load',()=>{document.body.setAttribute("
            "'data-img-sizes',Array.from(document.images).map(i=>i.naturalWidth+'x'+"
            "i.naturalHeight).join(' '))})</script></body>",
        ),
        encoding="utf-8",
    )
    probed = chromium(probe.as_uri(), "--dump-dom", home=work / "probe").stdout
    sizes = re.search(r'data-img-sizes="([^"]*)"', probed)
    return {
        "dom": dom,
        "page": Page(dom),
        "screenshot": screenshot,
        "sizes": sizes.group(1).split() if sizes else None,
    }


@needs_chromium
def test_browser_dom_has_every_section(rendered: dict[str, object]) -> None:
    page = rendered["page"]
    assert isinstance(page, Page)
    assert page.h2 == list(DEMO_TITLES)
    assert page.markings == [MARKING, MARKING]
    assert "script" not in page.tags


@needs_chromium
def test_browser_heatmap_image_decodes(rendered: dict[str, object]) -> None:
    page = rendered["page"]
    assert isinstance(page, Page)
    (image,) = page.images
    prefix = "data:image/svg+xml;base64,"
    assert image["src"].startswith(prefix)
    picture = base64.b64decode(image["src"][len(prefix) :], validate=True).decode("utf-8")
    assert len(day_boxes(picture)) == 182
    assert image["alt"] == "Calendar heatmap of daily sign-ups from under-represented origins"
    # and the browser itself decoded it: naturalWidth x naturalHeight from the probe copy
    assert rendered["sizes"] == ["990x264"]


@needs_chromium
def test_browser_tyburn_heads_the_areas_table(rendered: dict[str, object]) -> None:
    page = rendered["page"]
    assert isinstance(page, Page)
    (areas,) = page.tables["areas"]
    assert areas[0][0] == "Tyburn"
    assert len(areas) == 40  # every demo ward
    gaps = [float(row[5]) for row in areas]  # gap per 100 sign-ups, largest first
    assert gaps == sorted(gaps, reverse=True)


@needs_chromium
def test_browser_screenshot_is_not_blank(rendered: dict[str, object]) -> None:
    screenshot = rendered["screenshot"]
    assert isinstance(screenshot, Path)
    with Image.open(screenshot) as image:
        rgb = image.convert("RGB")
    assert rgb.size == (1200, 9000)
    colours = rgb.getcolors(1 << 24)
    assert colours is not None and len(colours) > 100
    pixels = np.asarray(rgb)
    assert (pixels != 255).any(axis=-1).mean() > 0.02  # text, rules and tables, not white
    # the protective marking: a red band across the top, starting ~24 px down
    red_rows = [
        y for y in range(80) if (pixels[y, 100:1100] == MARKING_RED).all(axis=-1).mean() > 0.8
    ]
    assert red_rows, "no #b00020 marking band at the top of the page"
    assert 10 <= red_rows[0] <= 40 and len(red_rows) >= 15, red_rows
    assert 20 <= np.median(red_rows) <= 45
    # the heatmap is painted: its blue bands appear, well below the top of the page
    for blue in HEATMAP_BLUES:
        rows = np.nonzero((pixels == blue).all(axis=-1).any(axis=1))[0]
        assert rows.size and rows[0] > 1000, blue


def test_undefined_values_read_n_a_not_suppressed() -> None:
    frame = origin_frame()
    # an area with no sign-ups: nothing withheld, but no actual rate, interval or gap exists
    frame.loc[0, ["actual_rate", "rate_delta", "representation_index", "ci_low", "ci_high"]] = (
        np.nan
    )
    frame.loc[0, ["parity_gap", "under_represented", "q_value"]] = pd.NA
    frame.loc[0, "registered"] = 0
    row = format_origin_rows(frame).iloc[0]
    assert row["Sign-ups"] == "0"
    for column in ("Share of sign-ups", "Index", "95% interval of sign-up share", "Parity gap",
                   "Under-represented"):  # fmt: skip
        assert row[column] == "n/a", column
    assert format_origin_rows(frame).iloc[1]["Parity gap"] == WITHHELD


def test_markdown_escapes_untrusted_text_and_keeps_table_shape() -> None:
    table = pd.DataFrame({"Origin | label": ["<img src=x onerror=alert(1)>", "two\nlines"]})
    md = sections_to_markdown(
        [Section("Origins", "text <b>", [("caption", table)])], title="T", marking=MARKING, lead="L"
    )
    assert "<img" not in md and "<b>" not in md
    assert "| Origin / label |" in md
    assert "| &lt;img src=x onerror=alert(1)&gt; |" in md
    assert "| two lines |" in md


def test_heatmap_counts_the_first_day_of_the_window_and_any_threshold() -> None:
    as_of = dt.date(2018, 10, 31)
    first = as_of - dt.timedelta(days=181)
    empty = daily_heatmap_svg(pd.Series([], dtype=object), as_of=as_of, threshold=10)
    with_first = daily_heatmap_svg(pd.Series([first] * 12), as_of=as_of, threshold=10)
    assert with_first != empty
    for threshold in (1, 2):  # degenerate thresholds still give a legend
        picture = daily_heatmap_svg(pd.Series([first]), as_of=as_of, threshold=threshold)
        assert len(day_boxes(picture)) == 182


def test_counts_adding_to_a_known_total_protect_each_other() -> None:
    from targeting.report.sections import _protected_counts

    # the 3 alone would be recoverable from the total, so the smallest other (12) goes too
    assert _protected_counts(np.array([3, 12, 40]), threshold=10) == [WITHHELD, WITHHELD, "40"]
    assert _protected_counts(np.array([0, 12, 40]), threshold=10) == ["0", "12", "40"]


def test_demo_segments_show_who_is_missing(demo_out: Path) -> None:
    text = (demo_out / "report.md").read_text(encoding="utf-8")
    rows = {r["Segment"]: r for r in markdown_table(text, "Sign-ups by segment")}
    table = pd.read_csv(demo_out / "segment_representation.csv").set_index("segment")
    pakistani = table.index[table["label"].str.startswith("high Pakistani")][0]
    # the segment where Pakistani residents live is under-represented, as the demo was built
    assert table.loc[pakistani, "profile_index"] < 80
    assert bool(table.loc[pakistani, "under_represented"])
    assert rows[pakistani]["Profile index"] == f"{table.loc[pakistani, 'profile_index']:.0f}"
    shares = table["base_share"].sum()
    assert shares == pytest.approx(1.0)


# the headline box and, within it, the line naming the first-ranked area, as laid out
HEADLINE_PLACE = (
    "(function(){const box=document.getElementById('headline');"
    r"const item=[...box.querySelectorAll('li')].find(e=>/^\d+\. /.test(e.textContent));"
    "return {top: box.getBoundingClientRect().top, text: item.textContent,"
    " bottom: item.getBoundingClientRect().bottom}})()"
)


@needs_chromium
def test_browser_report_opens_on_the_headline_with_the_top_area(
    demo_out: Path, tmp_path: Path
) -> None:
    from browser import probe

    ranked = pd.read_csv(demo_out / "ranked_areas.csv").sort_values("rank")
    top = ranked[ranked["tactic"] != "none"].iloc[0]
    assert top["rank"] == 1  # the demo's first-ranked area is sent a team
    place = probe(demo_out / "report.html", HEADLINE_PLACE, width=1400, height=1000,
                  home=tmp_path)  # fmt: skip
    # within the first 1,000 px at 1400 wide: the headline and the first area's line, with the
    # area's name, its tactic and the reason as ranked_areas.csv gives it
    assert place["top"] < 300 and place["bottom"] <= 1000, place
    assert place["text"].startswith(f"{top['rank']}. {top['area_name']} (")
    assert f"Why: {top['reason']}." in place["text"]


@needs_chromium
def test_browser_report_fits_a_phone_without_sideways_scrolling(
    demo_out: Path, tmp_path: Path
) -> None:
    from browser import WIDTHS, probe

    widths = probe(demo_out / "report.html", WIDTHS, width=390, height=844, home=tmp_path)
    assert widths["window"] == 390 and widths["doc"] <= widths["window"], widths


def test_headline_known_answers_with_a_previous_run() -> None:
    from targeting.report import build_headline
    from targeting.store import PreviousRun

    force = pd.DataFrame(
        {
            "level": "force",
            "origin_level": ["origin", "origin", "group"],
            "origin": ["Pakistani", "England", "Asian"],
            "active_in_area": [100.0, 900.0, 100.0],
            "registered": [30, 970, 1000],
            "target_rate": [0.0485, 0.9, 0.1],
            "actual_rate": [0.0324, 0.97, 1.0],
            "representation_index": [66.8, 107.8, 100.0],
            "parity_gap": [864, 0, 0],
            "under_represented": [True, False, False],
        }
    )
    ranked = pd.DataFrame(
        {
            "rank": [1, 2],
            "area_code": ["A", "B"],
            "area_name": ["Penn", "Tyburn"],
            "parent_name": ["Wolverhampton", "Erdington"],
            "tactic": ["none", "door"],
            "hotspots": [0, 12],
            "street_sites": [0, 0],
            "station_days": [0, 0],
            "social_posts": [0, 0],
            "expected_signups": [0.0, 32.4],
            "parity_gap": [20.0, 140.0],
            "reason": ["little", "Pakistani 16 sign-ups short of parity"],
        }
    )
    previous = PreviousRun(
        ranking=pd.DataFrame(
            {
                "area_code": ["A", "B"],
                "rank": [2, 5],
                "parity_gap": [20, 150],
                "area_name": ["Penn", "Tyburn"],
                "tactic": ["none", "door"],
            }
        ),
        force=force.assign(actual_rate=[0.0300, 0.97, 1.0], registered=[28, 952, 980]),
        as_of=dt.date(2018, 9, 30),
    )
    headline = build_headline(representation=force, ranked_areas=ranked, previous=previous,
                              base="adults")  # fmt: skip
    assert headline.origins == (
        "Pakistani: 4.85% of adults but 3.24% of sign-ups (index 67); 864 more sign-ups would "
        "reach parity. ▲ share of sign-ups was 3.00%.",
    )
    # Penn is first-ranked but sent nobody this week: the first area a team goes to is Tyburn
    assert headline.areas == (
        "2. Tyburn (Erdington): door-knocking, 12 door hotspots; about 32.4 sign-ups expected. "
        "Why: Pakistani 16 sign-ups short of parity. ▲ up 3 from 5.",
    )
    assert headline.changes == (
        "Sign-ups with a known origin: 1,000, ▲ 20 more since the run to 30 September 2018.",
        "The areas' parity gaps add up to 160, ▼ from 170 since the run to 30 September 2018 "
        "(closing).",
    )


def test_small_withheld_marks_only_withheld_small_counts_of_the_same_place_and_origin() -> None:
    counts = pd.DataFrame({
        "level": ["area", "area", "area", "parent"],
        "geo": ["A", "A", "B", "P"],
        "origin_level": ["origin"] * 4,
        "node": ["Pakistani", "Somali", "Pakistani", "Pakistani"],
        "registered": [3, 25, 4, 7],
        "suppressed": [True, True, False, True],
    })  # fmt: skip
    rep = Representation(table=pd.DataFrame(), counts=counts, unknown=pd.DataFrame(),
                         areas=pd.DataFrame())  # fmt: skip
    rows = pd.DataFrame({
        "level": ["area", "area", "area", "area", "parent"],
        "area_code": ["A", "A", "B", "C", "P"],
        "origin_level": ["origin"] * 5,
        "origin": ["Pakistani", "Somali", "Pakistani", "Pakistani", "Pakistani"],
    })  # fmt: skip
    # 3 withheld reads <10; 25 withheld to protect it reads suppressed; 4 is published (a count
    # the audit left out is not "<10"); C has no count; the parent's 7 is withheld
    assert small_withheld(rep, rows, threshold=10).tolist() == [True, False, False, False, True]


def test_every_origin_gives_each_place_its_own_rows_largest_first() -> None:
    one = origin_frame().assign(level="parent", area_code="P1", area_name="North")
    two = origin_frame().assign(level="parent", area_code="P2", area_name="South",
                                active_in_area=[5.0, 50.0], suppressed=[True, False])  # fmt: skip
    counts = pd.DataFrame({
        "level": ["parent"] * 4, "geo": ["P1", "P1", "P2", "P2"], "origin_level": ["origin"] * 4,
        "node": ["Pakistani", "Somali", "Pakistani", "Somali"], "registered": [1644, 4, 3, 20],
        "suppressed": [False, True, True, False],
    })  # fmt: skip
    rep = Representation(table=pd.concat([one, two], ignore_index=True), counts=counts,
                         unknown=pd.DataFrame(), areas=pd.DataFrame())  # fmt: skip
    north, south, nowhere = every_origin(rep, level="parent", area_codes=["P1", "P2", "P3"],
                                         threshold=10)  # fmt: skip
    assert north["Origin"].tolist() == ["Pakistani", "Somali"]
    assert north["Sign-ups"].tolist() == ["1,644", "<10"]
    assert south["Origin"].tolist() == ["Somali", "Pakistani"]  # its own residents' order
    assert south["Sign-ups"].tolist()[1] == "<10"
    assert nowhere.empty and list(nowhere.columns) == ORIGIN_COLUMNS
