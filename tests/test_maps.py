"""The officers' offline map: compact shared geometry, no network, escaped names, suppressed
values shown as suppressed, and a real browser that draws it with no JavaScript errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h3
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from browser import chromium, needs_chromium
from conftest import HOSTILE_NAME
from typer.testing import CliRunner

from targeting.cli import app
from targeting.config import load_config
from targeting.maps import (
    MAP_NAME,
    encode_cells,
    leaflet_assets,
    map_to_html,
    read_map_data,
    script_json,
)

HOSTILE = HOSTILE_NAME


def test_cells_encode_to_their_h3_outlines() -> None:
    cells = pd.Series(sorted(h3.grid_disk(h3.latlng_to_cell(52.5, -1.9, 9), 2)))
    enc = encode_cells(cells)
    centre = np.array(enc["c"]).reshape(-1, 2)
    offsets = np.array(enc["o"]).reshape(-1, 6, 2)
    decoded = (centre[:, None, :] + offsets) / 1e5
    truth = np.array([h3.cell_to_boundary(c) for c in cells])
    assert np.abs(decoded - truth).max() <= 0.5e-5 + 1e-12  # rounded to 1e-5 degree
    # offsets are small integers: a cell costs a few dozen characters, not hundreds
    assert np.abs(offsets).max() < 1000


def test_leaflet_is_inlined_with_its_images() -> None:
    assets = leaflet_assets()
    assert "L.map" in assets or "leaflet" in assets.lower()
    assert "url(images/" not in assets
    assert "data:image/png;base64," in assets
    assert "sourceMappingURL" not in assets


def testscript_json_cannot_close_its_script_element() -> None:
    text = script_json({"name": HOSTILE})
    assert "</script>" not in text and "<" not in text and "&" not in text
    assert json.loads(text)["name"] == HOSTILE


@pytest.fixture(scope="module")
def demo_map(demo_output: Path) -> dict[str, object]:
    """The shared demo run (whose first area carries a hostile name) and its map."""
    return {
        "config": demo_output.parent / "demo.toml",
        "out": demo_output,
        "html": (demo_output / MAP_NAME).read_text(encoding="utf-8"),
    }


def test_map_loads_nothing_from_the_network(demo_map: dict[str, object]) -> None:
    html = str(demo_map["html"])
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=[\"']?https?:", html)
    assert not re.search(r"@import", html)
    assert "cdn." not in html and "code.jquery" not in html


def test_map_holds_no_user_id_and_escapes_names(demo_map: dict[str, object]) -> None:
    html = str(demo_map["html"])
    signups = pd.read_csv(Path(str(demo_map["config"])).parent / "signups.csv", dtype=str)
    ids = signups["user_id"].sample(200, random_state=1)
    assert not any(uid in html for uid in ids)
    assert HOSTILE not in html and "<script>alert" not in html
    assert (
        json.dumps(HOSTILE).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        in html
    )


def test_map_shows_suppressed_values_as_suppressed(demo_map: dict[str, object]) -> None:
    config = load_config(Path(str(demo_map["config"])))
    data = read_map_data(Path(str(demo_map["out"])), config=config)
    payload = json.loads(
        re.search(r"var D = (\{.*?\});\n", map_to_html(data)).group(1)  # type: ignore[union-attr]
    )
    withheld = data.origin_cells[data.origin_cells["suppressed"]]
    assert len(withheld) > 0
    origin = withheld["origin"].iloc[0]
    entry = payload["origin_cells"]["index"][origin]
    assert any(entry["s"]) and all(
        v is None for v, s in zip(entry["v"], entry["s"], strict=True) if s
    )


def test_map_command_renders_from_the_store(demo_map: dict[str, object], tmp_path: Path) -> None:
    target = tmp_path / "pak.html"
    runner = CliRunner()
    done = runner.invoke(
        app, ["map", str(demo_map["config"]), "--origin", "Pakistani", "--out", str(target)]
    )
    assert done.exit_code == 0, done.output
    assert '"default_origin":"Pakistani"' in target.read_text(encoding="utf-8")
    again = tmp_path / "again.html"
    runner.invoke(
        app, ["map", str(demo_map["config"]), "--origin", "Pakistani", "--out", str(again)]
    )
    assert again.read_bytes() == target.read_bytes()  # fixed element ids, no timestamps
    bad = runner.invoke(app, ["map", str(demo_map["config"]), "--origin", "Martian"])
    assert bad.exit_code == 2 and "use one of" in bad.output


PROBE_HEAD = (
    "<script>window.__errors=[];window.addEventListener('error',"
    "function(e){window.__errors.push(String(e.message))});</script>"
)
PROBE_END = """<script>window.addEventListener('load', function () {
  var boxes = Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'));
  var watch = boxes.find(function (b) { return b.textContent.indexOf('Watch coverage') >= 0; });
  if (watch) watch.querySelector('input').click();
  var picker = document.getElementById('origin-picker');
  picker.value = 'Bangladeshi'; picker.dispatchEvent(new Event('change'));
  var b = document.body;
  b.setAttribute('data-js-errors', window.__errors.join(' | '));
  b.setAttribute('data-overlays', String(boxes.length));
  b.setAttribute('data-legend', document.querySelector('.legend').textContent);
  b.setAttribute('data-labels', Array.from(document.querySelectorAll('.area-label'))
    .map(function (l) { return l.textContent; }).join(' ; '));
});</script></body>"""


@needs_chromium
def test_browser_draws_the_map_offline(demo_map: dict[str, object], tmp_path: Path) -> None:
    page = Path(str(demo_map["out"])) / MAP_NAME
    screenshot = tmp_path / "map.png"
    shot = chromium(
        page.as_uri(), "--window-size=1200,900", f"--screenshot={screenshot}", home=tmp_path / "a"
    )
    console_errors = [
        line for line in shot.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line
    ]
    assert console_errors == []
    pixels = matplotlib.image.imread(screenshot)[..., :3]
    colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50  # areas, outlines, labels and legend drawn, not a blank page

    probe = tmp_path / "probe.html"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE_HEAD, 1)
        .replace("</body>", PROBE_END),
        encoding="utf-8",
    )  # fmt: skip
    # the probe switches the Watch coverage cells on: they must be drawn too
    cells_shot = tmp_path / "cells.png"
    chromium(probe.as_uri(), "--window-size=1200,900", f"--screenshot={cells_shot}",
             home=tmp_path / "c")  # fmt: skip
    with_cells = matplotlib.image.imread(cells_shot)[..., :3]
    changed = np.abs(with_cells - pixels).max(axis=2) > 0.05
    assert changed.mean() > 0.05  # the cells changed a real part of the picture
    dom = chromium(probe.as_uri(), "--dump-dom", home=tmp_path / "b").stdout
    body = re.search(r"<body[^>]*>", dom).group(0)  # type: ignore[union-attr]
    attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', body))
    assert attrs["data-js-errors"] == ""
    assert int(attrs["data-overlays"]) >= 12
    assert "Watch coverage" in attrs["data-legend"]  # the toggled layer brought its legend
    assert "Bangladeshi" in attrs["data-legend"]  # the origin picker restyled the index layer
    assert "data-map-ready-ms" in attrs
    # the hostile name shows as text (escaped once more in the DOM dump), never as markup
    assert (
        "&amp;lt;script&amp;gt;" in attrs["data-labels"] or "&lt;script&gt;" in attrs["data-labels"]
    )
    assert "<script>alert" not in dom


def test_a_large_grid_is_mapped_on_coarser_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    import targeting.maps.data as maps

    cells = pd.Series(sorted(h3.grid_disk(h3.latlng_to_cell(52.5, -1.9, 9), 20)))  # 1,261 cells
    assert maps.map_cell_resolution(cells, resolution=9) == 9
    monkeypatch.setattr(maps, "MAP_MAX_CELLS", 100)
    resolution = maps.map_cell_resolution(cells, resolution=9)
    parents = cells.map(lambda c: h3.cell_to_parent(c, resolution)).nunique()
    finer = cells.map(lambda c: h3.cell_to_parent(c, resolution + 1)).nunique()
    assert parents <= 100 < finer  # the finest resolution that fits


# ------------------------------------------------------------ an officer's phone and laptop

# what is on the screen over the map: every control and marking bar that is showing
CONTROLS_JS = r"""
function shown(el) {
  const s = getComputedStyle(el), r = el.getBoundingClientRect();
  return s.display !== 'none' && s.visibility !== 'hidden' && r.width > 0 && r.height > 0;
}
function controls() {
  return [...document.querySelectorAll('.leaflet-control, .marking')].filter(shown)
    .map(el => { const r = el.getBoundingClientRect();
      return {cls: el.className, left: r.left, top: r.top, right: r.right, bottom: r.bottom}; });
}
function size(el) { const r = el.getBoundingClientRect(); return [r.width, r.height]; }
const wait = ms => new Promise(done => setTimeout(done, ms));
const T = window.targetingMap, map = T.map, D = T.data;
"""

PHONE_JS = (
    CONTROLS_JS
    + r"""
const atOpen = {
  errors: window.__errors.slice(),
  legendShown: shown(document.querySelector('.legend')),
  layersExpanded: !!document.querySelector('.leaflet-control-layers-expanded'),
  controls: controls(),
  window: [innerWidth, innerHeight],
  targets: {
    zoom: size(document.querySelector('.leaflet-control-zoom-in')),
    layers: size(document.querySelector('.leaflet-control-layers-toggle')),
    legend: size(document.querySelector('.legend-button')),
    picker: size(document.querySelector('#origin-picker')),
    badge: size(document.querySelector('.rank-label')),
    hotspot: size(document.querySelector('.spot')),
  },
  pickerLabel: document.querySelector('label[for=origin-picker]').textContent,
};
// tap the first door hotspot, zoomed in to street level
const i = D.hotspots.tactic.indexOf('door');
map.setView([D.hotspots.lat[i], D.hotspots.lng[i]], 16, {reset: true});
await wait(300);
const marker = T.hotspots.getLayers()[i], r = marker.getElement().getBoundingClientRect();
const x = r.left + r.width / 2, y = r.top + r.height / 2;
const hit = document.elementFromPoint(x, y);
hit.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, clientX: x, clientY: y, view: window}));
await wait(1500);
const popup = document.querySelector('.leaflet-popup');
const p = popup ? popup.getBoundingClientRect() : null;
const view = map.getBounds();
const lines = T.streets.getLayers().filter(l => view.intersects(l.getBounds())).length;
const names = [...document.querySelectorAll('.street-label span')].filter(el => shown(el)).filter(el => {
  const b = el.getBoundingClientRect(); return b.left >= 0 && b.top >= 0 && b.right <= innerWidth && b.bottom <= innerHeight; });
return {atOpen, tapped: {postcode: D.hotspots.postcode[i], hitIsMarker: marker.getElement().contains(hit),
  popupText: popup ? popup.textContent : null,
  popup: p ? {left: p.left, top: p.top, right: p.right, bottom: p.bottom} : null,
  controls: controls()}, streets: {lines, names: names.map(el => el.textContent)},
  errors: window.__errors};
"""
)


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"]
        and a["right"] > b["left"]
        and a["top"] < b["bottom"]
        and a["bottom"] > b["top"]
    )


def _covered_share(rects: list[dict[str, float]], width: int, height: int) -> float:
    """The share of the screen under any of `rects`, counted on a 2 px grid (overlaps once)."""
    ys, xs = np.mgrid[0:height:2, 0:width:2]
    under = np.zeros(xs.shape, dtype=bool)
    for r in rects:
        under |= (xs >= r["left"]) & (xs < r["right"]) & (ys >= r["top"]) & (ys < r["bottom"])
    return float(under.mean())


@needs_chromium
def test_browser_phone_opens_folded_and_a_tapped_hotspot_shows_its_postcode(
    demo_map: dict[str, object], tmp_path: Path
) -> None:
    from browser import evaluate

    page = Path(str(demo_map["out"])) / MAP_NAME
    got = evaluate(page, PHONE_JS, width=390, height=844, home=tmp_path)
    assert "error" not in got, got
    opened = got["atOpen"]
    assert opened["errors"] == [] and got["errors"] == []
    assert opened["window"] == [390, 844]
    # legend and layer list folded behind buttons; the map itself is at least 80% of the screen
    assert not opened["legendShown"] and not opened["layersExpanded"]
    assert _covered_share(opened["controls"], 390, 844) <= 0.2, opened["controls"]
    # every control a 44 px target; the origin picker has a label
    for name, (w, h) in opened["targets"].items():
        assert w >= 44 and h >= 44, (name, w, h)
    assert opened["pickerLabel"] == "Representation index of"
    tapped = got["tapped"]
    assert tapped["hitIsMarker"], "something lay over the hotspot"
    assert tapped["popupText"] and f"Nearest postcode: {tapped['postcode']}" in tapped["popupText"]
    assert "What to say" in tapped["popupText"] and "Chosen for" in tapped["popupText"]
    popup = tapped["popup"]
    assert (
        popup["left"] >= 0
        and popup["right"] <= 390
        and popup["top"] >= 0
        and popup["bottom"] <= 844
    )
    under = [c for c in tapped["controls"] if _overlap(popup, c)]
    assert under == [], under  # no control over any part of the popup
    # the demo's synthetic streets are drawn there, with at least one name
    assert got["streets"]["lines"] > 5 and got["streets"]["names"], got["streets"]


DESKTOP_JS = (
    CONTROLS_JS
    + r"""
const force = T.outlines.getLayers().reduce((b, l) => b.extend(l.getBounds()), L.latLngBounds([]));
return {errors: window.__errors, legendShown: shown(document.querySelector('.legend')),
  fits: map.getBounds().contains(force), stored: localStorage.length + sessionStorage.length,
  layersExpanded: !!document.querySelector('.leaflet-control-layers-expanded'),
  title: document.querySelector('.title-bar').textContent,
  labels: [...document.querySelectorAll('.area-label span')].filter(el => shown(el) && !el.parentElement.classList.contains('thinned'))
    .map(el => { const r = el.getBoundingClientRect(); return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; })};
"""
)


@needs_chromium
def test_browser_laptop_opens_with_title_legend_and_unclashing_labels(
    demo_map: dict[str, object], tmp_path: Path
) -> None:
    from browser import evaluate

    page = Path(str(demo_map["out"])) / MAP_NAME
    got = evaluate(page, DESKTOP_JS, width=1400, height=1000, home=tmp_path)
    assert got["errors"] == []
    assert got["fits"] and got["stored"] == 0  # the whole force at open; nothing remembered
    assert got["legendShown"] and got["layersExpanded"]
    assert got["title"].startswith("Demo city week to 31 October 2018")
    labels = got["labels"]
    assert len(labels) >= 10  # names are thinned, not all hidden
    assert not any(_overlap(a, b) for n, a in enumerate(labels) for b in labels[n + 1 :])


CONTRAST_JS = (
    CONTROLS_JS
    + r"""
// the first-ranked area filling the screen, and where its door hotspots are
const i = D.areas.rank.indexOf(1);
map.fitBounds(T.outlines.getLayers()[i].getBounds(), {animate: false});
map.setView(map.getCenter(), map.getZoom(), {reset: true});
await wait(500);
const spots = T.hotspots.getLayers().map((m, j) => [m, j]).filter(([m, j]) => D.hotspots.tactic[j] === 'door'
  && map.getBounds().contains(m.getLatLng())).map(([m, j]) => {
    const p = map.latLngToContainerPoint(m.getLatLng()); return [p.x, p.y]; });
return {spots, name: D.areas.name[i]};
"""
)


@needs_chromium
def test_browser_door_hotspots_stand_out_from_the_fill_of_the_first_ranked_area(
    demo_map: dict[str, object], tmp_path: Path
) -> None:
    """Measured as the RGB distance (0 to 441) between a door hotspot's centre and the median
    colour of a ring 15 to 22 px around it: at least 100 for every door hotspot in view. With
    the old colours (door #b2182b on an index fill of #b2182b) it was 0."""
    from browser import evaluate

    page = Path(str(demo_map["out"])) / MAP_NAME
    shot = tmp_path / "zoomed.png"
    got = evaluate(page, CONTRAST_JS, width=1400, height=1000, home=tmp_path, screenshot=shot)
    assert got["name"] == "Tyburn" and len(got["spots"]) >= 5
    pixels = (matplotlib.image.imread(shot)[..., :3] * 255).astype(float)
    ys, xs = np.mgrid[-22:23, -22:23]
    ring = (np.hypot(xs, ys) >= 15) & (np.hypot(xs, ys) <= 22)
    distances = []
    for x, y in got["spots"]:
        x, y = round(x), round(y)
        if not (25 <= x < 1375 and 25 <= y < 975):
            continue
        centre = pixels[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(axis=0)
        around = np.median(pixels[y - 22 : y + 23, x - 22 : x + 23][ring], axis=0)
        distances.append(float(np.linalg.norm(centre - around)))
    assert len(distances) >= 5 and min(distances) >= 100, distances


def test_a_forces_own_tiles_are_the_base_and_the_default_draws_none(
    demo_map: dict[str, object],
) -> None:
    import dataclasses

    config = load_config(Path(str(demo_map["config"])))
    assert "tile.openstreetmap.org" in str(demo_map["html"])  # an overlay, off at open
    assert config.map.tiles is None and '"tiles":null' in str(demo_map["html"])
    own = dataclasses.replace(
        config,
        map=dataclasses.replace(config.map, tiles="https://tiles.force.example/{z}/{x}/{y}.png",
                                tiles_attribution="Force GIS"),
    )  # fmt: skip
    page = map_to_html(read_map_data(Path(str(demo_map["out"])), config=own))
    assert '"tiles":"https://tiles.force.example/{z}/{x}/{y}.png"' in page
    assert '"tiles_attribution":"Force GIS"' in page
    # the streets and the week come from the store and the manifest when drawn again
    assert '"week":"week to 31 October 2018"' in page and '"streets":{"n":[' in page
