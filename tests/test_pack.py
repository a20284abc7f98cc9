"""The tasking pack: a tiny plan with known answers, the demo's pack against its CSVs, and the
pack printed to A4 by headless Chromium (offline), page by page."""

from __future__ import annotations

import base64
import datetime as dt
import re
import unicodedata
from pathlib import Path
from xml.etree import ElementTree

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from browser import CHROMIUM, chromium, needs_chromium
from pages import Page

from targeting.pack import TO_FILL, tasking_html, tasking_rows
from targeting.plan import TACTIC_COLOURS, units_text
from targeting.scoring import COMPONENT_NAMES, MEASURE_NAMES
from targeting.tasking import HOTSPOTS_COLUMNS, RANKED_AREAS_COLUMNS, STATIONS_COLUMNS, Plan

MARKING = "OFFICIAL-SENSITIVE"
H3_CELL = re.compile(r"\b8[0-9a-f]{14}\b")
SVG = "{http://www.w3.org/2000/svg}"


def tiny_plan() -> tuple[Plan, gpd.GeoDataFrame]:
    """Two NPUs: P1 with the first-ranked area (gap 40) and P2 with more need (gaps 50 + 30)."""
    ranked = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "area_code": ["A1", "B1", "B2"],
            "area_name": ["Alpha", "Beta", "Gamma"],
            "parent_code": ["P1", "P2", "P2"],
            "parent_name": ["North", "South", "South"],
            "score": [0.9123456, 0.8, 0.5],
            "tactic": ["door", "station", "none"],
            "parity_gap": [40.0, 50.0, 30.0],
            "penetration_gap": [100.4, 80.0, 10.0],
            "expected_signups": [32.4000001, 20.0, 0.0],
            "expected_gain": [4.2, 1.2, 0.0],
            "hotspots": [2, 0, 0],
            "street_sites": [0, 0, 0],
            "station_days": [0, 1, 0],
            "social_posts": [0, 0, 0],
            "officer_hours": [8.0, 16.0, 0.0],
            "reason": ["Pakistani 16 sign-ups short of parity", "Somali 28 short", "little"],
            "gap_origins": ["Pakistani:16", "Somali:28", ""],
            "segments": ["S01 x (60%)", "", ""],
        }
    ).assign(**dict.fromkeys([*COMPONENT_NAMES, *MEASURE_NAMES], 0.5))[list(RANKED_AREAS_COLUMNS)]
    hotspots = pd.DataFrame(
        {
            "rank": [7, 3],
            "hotspot_id": ["HS-891", "HS-892"],
            "cell": ["89195c0481bffff", "89195c04333ffff"],
            "area_code": ["A1", "A1"],
            "area_name": ["Alpha", "Alpha"],
            "parent_code": ["P1", "P1"],
            "tactic": ["door", "door"],
            "latitude": [52.5, 52.51],
            "longitude": [-1.8, -1.81],
            "nearest_postcode": ["B35 6AB", "B35 7XY"],
            "street": ["Tyburn Road", ""],
            "score": [0.9, 0.95],
            "parity_gap": [10.0, 20.0],
            "households": [300.2, 410.0],
            "expected_signups": [2.7, 2.7],
            "reason": [
                "home to about 50 Pakistani residents",
                "home to about 80 Pakistani residents",
            ],
            "target_origins": ["Pakistani:50", "Pakistani:80"],
            "segment": ["S01", "S02"],
            "segment_label": ["high Pakistani", "high England"],
        }
    )[list(HOTSPOTS_COLUMNS)]
    stations = pd.DataFrame(
        {
            "rank": [1],
            "cell": ["89195c041b7ffff"],
            "area_code": ["B1"],
            "area_name": ["Beta"],
            "latitude": [52.4],
            "longitude": [-1.9],
            "nearest_postcode": ["B9 1LJ"],
            "street": [""],
            "covered_residents": [12134.9],
            "covered_parity_gap": [100.0],
            "fixed": [False],
        }
    )[list(STATIONS_COLUMNS)]
    week = pd.DataFrame(
        {
            "parent_code": ["P1", "P2"],
            "parent_name": ["North", "South"],
            "tactics": ["door 1", "station 1"],
            "officer_hours_capacity": [np.nan, np.nan],
            "hotspots": [2, 0],
            "street_sites": [0, 0],
            "station_days": [0, 1],
            "social_posts": [0, 0],
            "officer_hours": [8.0, 16.0],
            "expected_signups": [32.4, 20.0],
            "expected_gain": [4.2, 1.2],
        }
    )
    plan = Plan(ranked, hotspots, stations, gpd.GeoDataFrame(geometry=[], crs=4326),
                pd.DataFrame(), week, ())  # fmt: skip
    outlines = gpd.GeoDataFrame(
        {"area_code": ["A1", "B1", "B2"], "area_name": ["Alpha", "Beta", "Gamma"]},
        geometry=[shapely.box(-1.85, 52.45, -1.75, 52.55), shapely.box(-1.95, 52.35, -1.85, 52.45),
                  shapely.box(-1.85, 52.35, -1.75, 52.45)],
        crs=4326,
    )  # fmt: skip
    return plan, outlines


def tiny_page(*, portraits: pd.Series | None = None) -> tuple[pd.DataFrame, Page, str]:
    plan, outlines = tiny_plan()
    rows = tasking_rows(plan, None)
    text = tasking_html(rows, plan, outlines=outlines, portraits=portraits, previous=False,
                        marking=MARKING, as_of=dt.date(2018, 10, 31))  # fmt: skip
    return rows, Page(text), text


def test_pack_opens_on_the_force_then_npus_by_need_each_on_a_new_page() -> None:
    _, page, text = tiny_page()
    assert page.h2 == ["Top 3 areas force-wide", "South", "North"]  # South's gaps add to 80
    (top,) = page.tables["force"]
    # human headers, numbers rounded as the CSVs publish them, the tactic in words
    assert top[0] == ["1", "Alpha", "North", "door-knocking", "2 door hotspots", "40", "32.4",
                      "Pakistani 16 sign-ups short of parity"]  # fmt: skip
    assert top[1][3:5] == ["mobile police station", "1 station day"]
    assert top[2][3:5] == ["nothing this week", "–"]
    assert text.count('class="npu"') == 2 and ".npu{break-before:page}" in text
    assert "@top-center" in text and "@bottom-center" in text and page.markings == [MARKING] * 2


def test_pack_lists_hotspots_numbered_with_postcode_street_and_blank_columns() -> None:
    _, page, text = tiny_page(portraits=pd.Series({"S01": "Mainly Pakistani (40%) residents."}))
    visits, areas = page.tables["parent-P1"]
    # hotspots by force-wide rank (the map's numbers), then stations; the fill-in columns blank
    assert [row[:5] for row in visits] == [
        ["3", "Alpha", "door-knocking", "B35 7XY", ""],
        ["7", "Alpha", "door-knocking", "B35 6AB", "Tyburn Road"],
    ]
    assert [row[-3:] for row in visits] == [["", "", ""]] * 2
    assert "S01: Mainly Pakistani (40%) residents." in text
    (south_visits, _) = page.tables["parent-P2"]
    assert south_visits[0][:4] == ["S1", "Beta", "mobile police station", "B9 1LJ"]
    # an NPU whose visits name no street has no street column: "Why here" follows the postcode
    assert south_visits[0][4] == "mobile police station site"
    assert len(areas) == 1
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", text)
    assert {*TO_FILL, "Nearest postcode", "Street", "Why here"} <= set(headers)
    assert not [h for h in headers if "_" in h]
    assert not H3_CELL.search(text)
    # numbers right, text left
    assert '<th class="num">Parity gap</th>' in text and "<th>Area</th>" in text


def test_pack_leaves_out_the_street_column_without_street_names() -> None:
    plan, outlines = tiny_plan()
    plan = Plan(plan.ranked_areas, plan.hotspots.assign(street=""), plan.stations,
                plan.geofences, plan.circles, plan.plan, ())  # fmt: skip
    text = tasking_html(tasking_rows(plan, None), plan, outlines=outlines, portraits=None,
                        previous=False, marking=MARKING, as_of=dt.date(2018, 10, 31))  # fmt: skip
    assert "<th>Street</th>" not in text and "<th>Nearest postcode</th>" in text


# ------------------------------------------------------------------------ the demo's pack


def test_pack_maps_number_each_hotspot_and_station_as_its_list_does() -> None:
    """Each NPU's map is an SVG picture: the list's numbers beside the markers, by tactic, the
    outlines and names of its areas, a key, and a frame drawn at the pack's size."""
    _, page, _ = tiny_page()
    pictures = [base64.b64decode(i["src"].split(",", 1)[1]).decode("utf-8") for i in page.images]
    assert [i["src"][:26] for i in page.images] == ["data:image/svg+xml;base64,"] * 2
    south, north = (ElementTree.fromstring(p) for p in pictures)  # in the pack's order
    for root in (south, north):
        assert (root.get("width"), root.get("height")) == ("770", "506")
    labels = [t.text for t in north.iter(f"{SVG}text")]
    assert labels[0] == "North"  # the title
    assert {"7", "3", "Alpha", "door-knocking"} <= set(labels)
    dots = list(north.iter(f"{SVG}circle"))
    assert len(dots) == 3 and {d.get("fill") for d in dots} == {TACTIC_COLOURS["door"]}  # 2 + key
    # both hotspots inside the frame, the higher latitude nearer the top, west to the left
    top, bottom = sorted(((float(d.get("cx")), float(d.get("cy"))) for d in dots[:2]),
                         key=lambda xy: xy[1])  # fmt: skip
    assert all(8 <= x <= 762 and 36 <= y <= 500 for x, y in (top, bottom))
    assert top[0] < bottom[0]  # 52.51 N is west of 52.50 N (1.81 W against 1.80 W)
    south_labels = [t.text for t in south.iter(f"{SVG}text")]
    assert {"S1", "Beta", "mobile police station"} <= set(south_labels)
    assert len(list(south.iter(f"{SVG}polygon"))) == 2  # the station and its key
    assert len(list(south.iter(f"{SVG}path"))) == 2  # Beta and Gamma's outlines
    assert H3_CELL.search("".join(pictures)) is None


def test_demo_pack_agrees_with_its_csvs(demo_output: Path) -> None:
    text = (demo_output / "tasking.html").read_text(encoding="utf-8")
    page = Page(text)
    ranked = pd.read_csv(demo_output / "ranked_areas.csv", dtype={"area_code": str})
    hotspots = pd.read_csv(demo_output / "hotspots.csv", dtype=str, keep_default_na=False)
    assert not H3_CELL.search(text), "a cell id in the pack"
    (top,) = page.tables["force"]
    for row, area in zip(top, ranked.head(10).itertuples(), strict=True):
        assert row[0] == str(area.rank) and row[1] == area.area_name
        assert row[5] == f"{area.parity_gap:,.0f}" and row[6] == f"{area.expected_signups:,.1f}"
        assert row[-1] == area.reason
    # each NPU's areas with the week's units ranked_areas.csv gives them
    units = {a.area_name: units_text(a._asdict()) or "–" for a in ranked.itertuples()}
    for section, tables in page.tables.items():
        if section.startswith("parent-"):
            for row in tables[-1]:
                assert row[3] == units[row[1]], row
    # every hotspot in its NPU's list, by its number, with its postcode
    listed = {}
    for section, tables in page.tables.items():
        if section.startswith("parent-") and len(tables) == 2:  # visits, then areas
            for row in tables[0]:
                listed[row[0]] = (section.removeprefix("parent-"), row[3])
    for spot in hotspots.itertuples():
        assert listed[spot.rank] == (spot.parent_code, spot.nearest_postcode), spot.rank
    # NPUs by need: their areas' parity gaps add up to less and less
    order = [s.removeprefix("parent-") for s in page.tables if s.startswith("parent-")]
    need = ranked.groupby("parent_code")["parity_gap"].sum()
    assert list(need[order]) == sorted(need[order], reverse=True)


# ----------------------------------------------------------- printed by Chromium, page by page


def _lines_by_height(page: object) -> list[tuple[float, str]]:
    """A PDF page's text chunks with their height on the page (points from the bottom)."""
    found: list[tuple[float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if text.strip():  # NFKC: the PDF's ligatures ("ﬁ") read as letters
            found.append((tm[5] * cm[3] + cm[5], unicodedata.normalize("NFKC", text.strip())))

    page.extract_text(visitor_text=visit)  # type: ignore[attr-defined]
    return sorted(found, key=lambda t: -t[0])


@pytest.fixture(scope="module")
def printed(
    demo_output: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[list[tuple[float, str]]]:
    if not CHROMIUM.exists():
        pytest.skip(f"headless browser test needs Chromium at {CHROMIUM}")
    from pypdf import PdfReader

    work = tmp_path_factory.mktemp("print")
    pdf = work / "tasking.pdf"
    chromium((demo_output / "tasking.html").as_uri(), "--no-pdf-header-footer",
             f"--print-to-pdf={pdf}", home=work / "home")  # fmt: skip
    reader = PdfReader(pdf)
    assert all(round(float(p.mediabox.width)) == 595 for p in reader.pages)  # A4, 210 mm
    return [_lines_by_height(p) for p in reader.pages]


@needs_chromium
def test_printed_pack_has_the_marking_at_the_top_and_bottom_of_every_page(
    printed: list[list[tuple[float, str]]],
) -> None:
    assert 8 <= len(printed) <= 40
    for number, lines in enumerate(printed, start=1):
        top = [y for y, t in lines if t == MARKING and y > 800]
        bottom = [y for y, t in lines if t == MARKING and y < 60]
        assert top and bottom, f"page {number}: {lines[:2]} ... {lines[-2:]}"


@needs_chromium
def test_printed_pack_starts_each_npu_on_a_new_page(
    demo_output: Path, printed: list[list[tuple[float, str]]]
) -> None:
    page = Page((demo_output / "tasking.html").read_text(encoding="utf-8"))
    npus = page.h2[1:]
    assert len(npus) == 10
    # the first line under the marking of the page where each NPU begins is its name
    firsts = [next(t for y, t in lines if y < 800 and t != MARKING) for lines in printed]
    assert all(name in firsts for name in npus), firsts
    starts = [firsts.index(name) for name in npus]
    assert starts == sorted(starts) and starts[0] >= 1, firsts
    assert sum(first in npus for first in firsts) == len(npus)


@needs_chromium
def test_pack_fits_a_phone_without_sideways_scrolling(demo_output: Path, tmp_path: Path) -> None:
    from browser import WIDTHS, probe

    widths = probe(demo_output / "tasking.html", WIDTHS, width=390, height=844, home=tmp_path)
    assert widths["window"] == 390 and widths["doc"] <= widths["window"], widths
