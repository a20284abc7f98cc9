"""The page: folium and Leaflet inline, fixed element names, the data and the script."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import folium
import pandas as pd
import xstatic.pkg.leaflet
from branca.element import Element, Figure, MacroElement
from jinja2 import Template

from targeting.maps.data import SEGMENT_COLOURS, MapData, map_payload
from targeting.maps.scripts import PAGE_CSS, PAGE_JS, POINTS_JS
from targeting.plan import TACTIC_COLOURS

LEAFLET_DIR = Path(xstatic.pkg.leaflet.BASE_DIR)
MAP_NAME = "map.html"


class OfflineMap(folium.Map):
    """A folium map that loads nothing from a CDN: Leaflet is inlined by `leaflet_assets`, and
    nothing else (jQuery, Bootstrap, icon fonts) is used."""

    default_js: list[tuple[str, str]] = []  # noqa: RUF012  (folium's class attribute)
    default_css: list[tuple[str, str]] = []  # noqa: RUF012


class _Verbatim(Element):
    """Text put into the page as it is. A `folium.Element(text)` compiles its text as a Jinja
    template: Leaflet's 150 kB script took a tenth of a second to tokenise, and any "{{" in it
    would have been run as a template."""

    _template = Template("{{ this.text }}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class _Script(MacroElement):
    """A script that runs after the map exists (folium renders a child after its parent).

    It goes into the page verbatim: folium's own `MacroElement` compiles a rendered script as a
    Jinja template, which took 0.7 s on a national force's 7.6 MB of map data, and would run any
    "{{" in a name as template code.
    """

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "Layers"
        self._id = "layers"
        self.code = code

    def render(self, **kwargs: Any) -> str:
        root = self.get_root()
        assert isinstance(root, Figure)
        root.script.add_child(_Verbatim(self.code), name=self.get_name())
        return ""  # nothing in place: the script is in the page's script block


def leaflet_assets() -> str:
    """Leaflet's CSS (its images as data URIs) and script, inline, from the installed package."""
    css = (LEAFLET_DIR / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        data = (LEAFLET_DIR / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

    css = re.sub(r"url\((images/[\w\-.]+\.png)\)", inline, css)
    js = (LEAFLET_DIR / "leaflet.js").read_text(encoding="utf-8")
    js = js.replace("//# sourceMappingURL=leaflet.js.map", "")
    return f"<style>{css}</style>\n<script>{js}</script>"


def script_json(payload: dict[str, Any]) -> str:
    """JSON safe inside a <script> element: no "<", ">" or "&" that could end it early."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def map_to_html(data: MapData, *, origin: str | None = None) -> str:
    """The whole page: Leaflet inline, the data once, the layers built in the browser."""
    payload = map_payload(data, origin=origin)
    bounds = data.areas.total_bounds
    fmap = OfflineMap(
        location=[float((bounds[1] + bounds[3]) / 2), float((bounds[0] + bounds[2]) / 2)],
        zoom_start=11,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
    )
    return _offline_page(fmap, name="targeting", script=PAGE_JS, payload=payload)


def _offline_page(fmap: OfflineMap, *, name: str, script: str, payload: dict[str, Any]) -> str:
    """The page around a map: Leaflet and the page's CSS inline, the marking's places, fixed
    element names (a rerun writes the same bytes), and the script with its data."""
    fmap._id = name
    root = fmap.get_root()
    assert isinstance(root, Figure)
    root._id = "page"
    root.header.add_child(_Verbatim(leaflet_assets()), name="leaflet")
    root.header.add_child(_Verbatim(f"<style>{PAGE_CSS}</style>"), name="css")
    root.html.add_child(
        _Verbatim(
            '<div class="marking marking-top"></div><div class="marking marking-bottom"></div>'
        ),
        name="marking",
    )
    code = script.replace("__MAP__", fmap.get_name()).replace("__DATA__", script_json(payload))
    fmap.add_child(_Script(code), name="script")
    return root.render()


def points_to_map_html(
    points: pd.DataFrame, *, title: str, marking: str, colour_by: str = "arm"
) -> str:
    """A small offline map of labelled points (e.g. a week's trial hotspots coloured by arm):
    `latitude, longitude, label` and the `colour_by` column; Leaflet inline, names escaped."""
    values = sorted(points[colour_by].astype(str).unique())
    colours = {v: SEGMENT_COLOURS[i % len(SEGMENT_COLOURS)] for i, v in enumerate(values)}
    colours.update({k: v for k, v in TACTIC_COLOURS.items() if k in colours})
    payload = {
        "title": title,
        "marking": marking,
        "lat": points["latitude"].round(5).tolist(),
        "lng": points["longitude"].round(5).tolist(),
        "label": points["label"].astype(str).tolist(),
        "kind": points[colour_by].astype(str).tolist(),
        "colours": colours,
    }
    fmap = OfflineMap(location=[float(points["latitude"].mean()), float(points["longitude"].mean())],
                      zoom_start=13, tiles=None, control_scale=True)  # fmt: skip
    return _offline_page(fmap, name="points", script=POINTS_JS, payload=payload)
