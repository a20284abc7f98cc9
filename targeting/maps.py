"""The map engagement officers open on a laptop or phone, often with no network: one
self-contained HTML page (folium and Leaflet, with Leaflet's script and styles inlined from the
installed `xstatic-leaflet` package) drawn from a finished run's store.

The page carries its data once, compactly: H3 cell outlines as integer offsets from their centres,
and each layer as an array of values over those shared outlines, so ten thousand cells and a
dozen layers stay a few megabytes. Only aggregates are drawn, with the same disclosure control as
the published tables: a withheld value shows as "suppressed", never as 0. Every name from the
inputs is escaped where the page shows it.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import folium
import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
import xstatic.pkg.leaflet
from branca.element import Figure, MacroElement
from jinja2 import Template

from targeting.config import Config
from targeting.segments import main_segments
from targeting.store import STORE_NAME

LEAFLET_DIR = Path(xstatic.pkg.leaflet.BASE_DIR)
SCALE = 100_000  # coordinates as integers of 1e-5 degree: about a metre, enough for a street map
MAP_NAME = "map.html"
MAP_MAX_CELLS = 60_000  # about 5 MB of cell outlines: a page that opens on a phone
# index classes: below parity in reds, above in blues (100 = parity)
INDEX_BREAKS = (50, 80, 95, 105, 125, 200)
INDEX_COLOURS = ("#b2182b", "#ef8a62", "#fddbc7", "#f7f7f7", "#d1e5f0", "#67a9cf", "#2166ac")
SEQUENTIAL = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
GREENS = ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c")
TACTIC_COLOURS = {"door": "#b2182b", "street": "#2166ac", "station": "#1b7837"}
# ColorBrewer Set3: twelve categories that stay apart
SEGMENT_COLOURS = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
                   "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f")  # fmt: skip


class OfflineMap(folium.Map):
    """A folium map that loads nothing from a CDN: Leaflet is inlined by `leaflet_assets`, and
    nothing else (jQuery, Bootstrap, icon fonts) is used."""

    default_js: list[tuple[str, str]] = []  # noqa: RUF012  (folium's class attribute)
    default_css: list[tuple[str, str]] = []  # noqa: RUF012


class _Script(MacroElement):
    """A script that runs after the map exists (folium renders a child after its parent)."""

    _template = Template("{% macro script(this, kwargs) %}{{ this.code }}{% endmacro %}")

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "Layers"
        self._id = "layers"
        self.code = code


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


@dataclass(frozen=True)
class MapData:
    """What the map draws, read from a finished run's output folder."""

    cell_resolution: int  # resolution of the grid-cell layers (coarser than the grid when large)
    default_origin: str | None  # the origin the map opens on: the force's largest parity gap
    areas: gpd.GeoDataFrame  # area_code, area_name, parent_name, geometry (WGS84)
    cells: pd.DataFrame  # cell, residents, watch_share, crimes_km2, sac_km2 (whole cells)
    origin_cells: pd.DataFrame  # cell, origin, representation_index, suppressed (map resolution)
    area_rows: pd.DataFrame  # area-level representation rows (origins and groups)
    area_gaps: pd.DataFrame  # area_code, parity_gap, penetration_gap, suppressed
    satisfaction: pd.Series  # per area_code: shrunk share of low ratings (NaN without ratings)
    ranked: pd.DataFrame
    hotspots: pd.DataFrame
    stations: pd.DataFrame
    geofences: gpd.GeoDataFrame
    marking: str
    station_radius_m: float
    threshold: int
    segment_labels: pd.Series  # segment -> label (empty without descriptions)


def read_map_data(out_dir: Path, *, config: Config) -> MapData:
    """The map's tables from a run's store and files, without recomputing anything."""
    with duckdb.connect(str(out_dir / STORE_NAME), read_only=True) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        frag = con.execute("SELECT * FROM cells").df()
        areas = con.execute("SELECT * FROM areas").df()
        rep = con.execute("SELECT * FROM representation WHERE level = 'area'").df()
        force = con.execute(
            "SELECT origin, parity_gap FROM representation "
            "WHERE level = 'force' AND origin_level = 'origin'"
        ).df()
        gaps = con.execute("SELECT * FROM area_gaps WHERE level = 'area'").df()
        origin_cells = con.execute("SELECT * FROM map_representation").df()
        plan = {
            name: con.execute(f"SELECT * FROM {name}").df() if name in tables else pd.DataFrame()
            for name in ("ranked_areas", "hotspots", "stations", "cell_segments",
                         "segment_representation")
        }  # fmt: skip
    # a national grid would make one giant page: its cell layers go to coarser parent cells until
    # they number at most MAP_MAX_CELLS (sums are additive, so the figures stay exact)
    cell_resolution = map_cell_resolution(frag["cell"])
    if cell_resolution < h3.get_resolution(str(frag["cell"].iloc[0])):
        parent = {c: h3.cell_to_parent(c, cell_resolution) for c in frag["cell"].unique()}
        frag = frag.assign(cell=frag["cell"].map(parent))
        if not plan["cell_segments"].empty:
            seg = plan["cell_segments"]
            plan["cell_segments"] = (
                seg.assign(cell=seg["cell"].map(parent))
                .groupby(["cell", "segment"], as_index=False)[["households"]]
                .sum()
            )
    cells = frag.groupby("cell", sort=True)[
        ["residents", "households", "watch_households", "crimes", "sac_crimes", "area_m2"]
    ].sum(min_count=1)
    km2 = cells["area_m2"] / 1e6
    with np.errstate(invalid="ignore", divide="ignore"):
        cells["watch_share"] = np.where(
            cells["households"] > 0,
            np.minimum(1.0, cells["watch_households"] / cells["households"]),
            np.nan,
        )
    if not plan["cell_segments"].empty:
        main = main_segments(plan["cell_segments"].rename(columns={"cell": "key"}))
        cells["segment"] = main.reindex(cells.index)
    cells["crimes_km2"] = cells["crimes"] / km2
    cells["sac_km2"] = cells["sac_crimes"] / km2
    prior = config.scoring.rating_prior
    ratings = areas["ratings"].astype(float)
    low = areas["low_ratings"].astype(float) if "low_ratings" in areas else ratings * np.nan
    force_share = low.sum() / ratings.sum() if ratings.sum() > 0 else np.nan
    satisfaction = pd.Series(
        ((low + prior * force_share) / (ratings + prior)).to_numpy(), index=areas["area_code"]
    )
    outlines = gpd.GeoDataFrame(
        areas[["area_code", "area_name", "parent_name"]],
        geometry=shapely.from_wkt(areas["geometry_wkt"].to_numpy()),
        crs="EPSG:4326",
    )
    fences_path = out_dir / "geofences.geojson"
    fences = (
        gpd.read_file(fences_path)
        if fences_path.is_file()
        else gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    )
    gap = pd.Series(
        pd.to_numeric(force["parity_gap"], errors="coerce").to_numpy(), index=force["origin"]
    ).sort_index()
    default = str(gap.idxmax()) if gap.notna().any() and gap.max() > 0 else None
    return MapData(
        cell_resolution=cell_resolution,
        default_origin=default,
        areas=outlines,
        cells=cells.reset_index(),
        origin_cells=origin_cells,
        area_rows=rep,
        area_gaps=gaps,
        satisfaction=satisfaction,
        ranked=plan["ranked_areas"],
        hotspots=plan["hotspots"],
        stations=plan["stations"],
        geofences=fences,
        marking=config.output.protective_marking,
        station_radius_m=config.stations.radius_m,
        segment_labels=(
            plan["segment_representation"].set_index("segment")["label"].dropna().astype(str)
            if "label" in plan["segment_representation"]
            else pd.Series(dtype=str)
        ),
        threshold=config.privacy.suppression_threshold,
    )


def map_cell_resolution(cells: pd.Series) -> int:
    """The finest resolution, at or above the grid's, at which the cells number at most
    `MAP_MAX_CELLS`."""
    unique = pd.Series(cells.unique())
    resolution = h3.get_resolution(str(unique.iloc[0]))
    count = len(unique)
    while count > MAP_MAX_CELLS and resolution > 0:
        resolution -= 1
        count = unique.map(lambda c, r=resolution: h3.cell_to_parent(c, r)).nunique()
    return resolution


def encode_cells(cells: pd.Series) -> dict[str, list[int]]:
    """H3 cell outlines, compactly: each centre as integers of 1e-5 degree, and the six corners
    (a pentagon repeats its last) as offsets from it."""
    centres = np.array([h3.cell_to_latlng(c) for c in cells], dtype=float).reshape(-1, 2)
    corners = np.array(
        [(list(h3.cell_to_boundary(c)) * 2)[:6] if h3.is_pentagon(c) else h3.cell_to_boundary(c)
         for c in cells],
        dtype=float,
    ).reshape(-1, 6, 2)  # fmt: skip
    centre_i = np.round(centres * SCALE).astype(np.int64)
    offsets = np.round(corners * SCALE).astype(np.int64) - centre_i[:, None, :]
    return {"c": centre_i.ravel().tolist(), "o": offsets.ravel().tolist()}


def _values(series: pd.Series, digits: int) -> list[float | None]:
    """Values rounded for the page, NaN as null."""
    rounded = series.astype(float).round(digits)
    return [None if math.isnan(v) else v for v in rounded.tolist()]


def _quantile_breaks(values: pd.Series, classes: int = 5) -> list[float]:
    """Class breaks at quantiles of the positive values, rounded to 2 significant digits."""
    positive = values[values > 0].dropna()
    if positive.empty:
        return [1.0] * (classes - 1)
    qs = positive.quantile(np.linspace(0, 1, classes + 1)[1:-1]).to_numpy()
    return [float(f"{q:.2g}") for q in qs]


def _outline(geom: shapely.Geometry) -> list[list[list[float]]]:
    """Rings of a (multi)polygon as [lat, lng] lists, simplified to about 10 m."""
    simple = shapely.simplify(geom, 1e-4, preserve_topology=True)
    rings = []
    for poly in getattr(simple, "geoms", [simple]):
        for ring in (poly.exterior, *poly.interiors):
            coords = np.asarray(ring.coords)[:, ::-1].round(5)
            rings.append(coords.tolist())
    return rings


def map_payload(data: MapData, *, origin: str | None) -> dict[str, Any]:
    """Everything the page's script needs, as plain JSON-ready structures."""
    areas = data.areas.sort_values("area_code").reset_index(drop=True)
    points = areas.geometry.representative_point()
    gaps = data.area_gaps.set_index("area_code")
    ranked = data.ranked.set_index("area_code") if not data.ranked.empty else pd.DataFrame()

    def area_field(frame: pd.DataFrame, col: str) -> list[Any]:
        if frame.empty or col not in frame:
            return [None] * len(areas)
        values = frame[col].reindex(areas["area_code"])
        return [None if pd.isna(v) else (v if isinstance(v, str) else float(v)) for v in values]

    rows = data.area_rows
    index = rows.assign(key=_keys(rows))
    keys = origin_keys(data)
    by_key = {}
    for key, part in index.groupby("key"):
        part = part.set_index("area_code").reindex(areas["area_code"])
        by_key[key] = {
            "v": _values(part["representation_index"], 1),
            "s": [bool(s) if pd.notna(s) else False for s in part["suppressed"]],
        }
    cell_origins = data.origin_cells
    origin_cell_ids = sorted(cell_origins["cell"].unique())
    by_origin = {}
    for key, part in cell_origins.groupby("origin"):
        part = part.set_index("cell").reindex(origin_cell_ids)
        by_origin[key] = {
            "v": _values(part["representation_index"], 1),
            "s": [bool(s) if pd.notna(s) else False for s in part["suppressed"]],
        }
    default = origin if origin in by_key else data.default_origin
    cells = data.cells
    layers_cells = {}
    for col, label, digits in (
        ("watch_share", "Watch coverage", 3),
        ("crimes_km2", "Crimes per km²", 0),
        ("sac_km2", "Serious acquisitive crimes per km²", 0),
    ):
        if cells[col].notna().any():
            layers_cells[col] = {
                "label": label,
                "v": _values(cells[col], digits),
                "breaks": [0.05, 0.1, 0.2, 0.4] if col == "watch_share"
                else _quantile_breaks(cells[col]),
            }  # fmt: skip
    hotspots = data.hotspots
    stations = data.stations
    fences = data.geofences
    return {
        "marking": data.marking,
        "threshold": data.threshold,
        "default_origin": default,
        "origins": keys,
        "areas": {
            "code": areas["area_code"].tolist(),
            "name": areas["area_name"].astype(str).tolist(),
            "parent": [None if pd.isna(p) else str(p) for p in areas["parent_name"]],
            "rings": [_outline(g) for g in areas.geometry],
            "label": np.column_stack([points.y, points.x]).round(5).tolist(),
            "parity_gap": area_field(gaps, "parity_gap"),
            "penetration_gap": area_field(gaps, "penetration_gap"),
            "gap_suppressed": [
                bool(v) for v in gaps["suppressed"].reindex(areas["area_code"]).fillna(False)
            ],
            "satisfaction": _values(data.satisfaction.reindex(areas["area_code"]), 3),
            "rank": area_field(ranked, "rank"),
            "score": area_field(ranked, "score"),
            "tactic": area_field(ranked, "tactic"),
            "reason": area_field(ranked, "reason"),
            "expected": area_field(ranked, "expected_signups"),
            "index": by_key,
        },
        "cells": {
            "resolution": data.cell_resolution,
            **encode_cells(cells["cell"]),
            "layers": layers_cells,
            "segments": _segment_layer(cells, data.segment_labels),
        },
        "origin_cells": {**encode_cells(pd.Series(origin_cell_ids, dtype=str)), "index": by_origin},
        "hotspots": {
            "lat": hotspots.get("latitude", pd.Series(dtype=float)).round(5).tolist(),
            "lng": hotspots.get("longitude", pd.Series(dtype=float)).round(5).tolist(),
            "rank": hotspots.get("rank", pd.Series(dtype=int)).astype(int).tolist(),
            "tactic": hotspots.get("tactic", pd.Series(dtype=str)).astype(str).tolist(),
            "area": hotspots.get("area_name", pd.Series(dtype=str)).astype(str).tolist(),
            "reason": hotspots.get("reason", pd.Series(dtype=str)).astype(str).tolist(),
            "gap": _values(hotspots.get("parity_gap", pd.Series(dtype=float)), 0),
        },
        "stations": {
            "lat": stations.get("latitude", pd.Series(dtype=float)).round(5).tolist(),
            "lng": stations.get("longitude", pd.Series(dtype=float)).round(5).tolist(),
            "rank": stations.get("rank", pd.Series(dtype=int)).astype(int).tolist(),
            "area": stations.get("area_name", pd.Series(dtype=str)).astype(str).tolist(),
            "residents": _values(stations.get("covered_residents", pd.Series(dtype=float)), 0),
            "gap": _values(stations.get("covered_parity_gap", pd.Series(dtype=float)), 0),
            "radius": data.station_radius_m,
        },
        "geofences": {
            "id": fences.get("geofence_id", pd.Series(dtype=str)).astype(str).tolist(),
            "tactic": fences.get("tactic", pd.Series(dtype=str)).astype(str).tolist(),
            "rank": fences.get("rank", pd.Series(dtype=int)).astype(int).tolist(),
            "rings": [_outline(g) for g in fences.geometry],
        },
        "colours": {
            "index_breaks": list(INDEX_BREAKS),
            "index": list(INDEX_COLOURS),
            "sequential": list(SEQUENTIAL),
            "greens": list(GREENS),
            "tactic": TACTIC_COLOURS,
        },
    }


def _keys(rows: pd.DataFrame) -> np.ndarray:
    return np.where(rows["origin_level"] == "group", "group: " + rows["origin"], rows["origin"])


def origin_keys(data: MapData) -> list[str]:
    """The origins and groups (as "group: NAME") the map's selector offers: origins first."""
    return sorted(set(_keys(data.area_rows)), key=lambda k: (k.startswith("group: "), k))


def _segment_layer(cells: pd.DataFrame, labels: pd.Series) -> dict[str, Any] | None:
    """Each cell's main segment as an index into the segment list, with the segments' labels."""
    if "segment" not in cells or cells["segment"].isna().all():
        return None
    names = sorted(cells["segment"].dropna().unique())
    position = {name: i for i, name in enumerate(names)}
    return {
        "names": names,
        "labels": [str(labels.get(n, "")) for n in names],
        "v": [None if pd.isna(v) else position[v] for v in cells["segment"]],
        "colours": [SEGMENT_COLOURS[i % len(SEGMENT_COLOURS)] for i in range(len(names))],
    }


def _script_json(payload: dict[str, Any]) -> str:
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
    root.header.add_child(folium.Element(leaflet_assets()), name="leaflet")
    root.header.add_child(folium.Element(f"<style>{PAGE_CSS}</style>"), name="css")
    root.html.add_child(
        folium.Element(
            '<div class="marking marking-top"></div><div class="marking marking-bottom"></div>'
        ),
        name="marking",
    )
    code = script.replace("__MAP__", fmap.get_name()).replace("__DATA__", _script_json(payload))
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


POINTS_JS = r"""
(function () {
  var D = __DATA__, map = __MAP__;
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]; }); }
  document.querySelector(".marking-top").textContent = D.marking;
  document.querySelector(".marking-bottom").textContent = D.marking;
  var group = L.featureGroup().addTo(map);
  for (var i = 0; i < D.lat.length; i++) {
    L.circleMarker([D.lat[i], D.lng[i]], {radius: 7, color: "#333", weight: 1, fillOpacity: 0.9,
      fillColor: D.colours[D.kind[i]]}).bindTooltip(esc(D.label[i]) + " (" + esc(D.kind[i]) + ")").addTo(group);
  }
  if (D.lat.length) map.fitBounds(group.getBounds().pad(0.1));
  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "legend");
    div.innerHTML = "<h4>" + esc(D.title) + "</h4>" + Object.keys(D.colours).map(function (k) {
      return '<i style="background:' + D.colours[k] + '"></i>' + esc(k); }).join("<br>");
    return div;
  };
  legend.addTo(map);
})();
"""


def write_map(
    out_dir: Path, *, config: Config, origin: str | None = None, path: Path | None = None
) -> Path:
    """Render `map.html` (or `path`) from the run in `out_dir`."""
    target = path or out_dir / MAP_NAME
    html_text = map_to_html(read_map_data(out_dir, config=config), origin=origin)
    target.write_text(html_text, encoding="utf-8")
    return target


PAGE_CSS = """
.marking{position:fixed;left:50%;transform:translateX(-50%);z-index:1000;background:#a50021;
color:#fff;font:bold 13px sans-serif;padding:2px 12px;letter-spacing:.05em;pointer-events:none}
.marking-top{top:0}.marking-bottom{bottom:0}
.legend{background:#fff;padding:6px 8px;font:12px sans-serif;line-height:18px;max-width:230px;
box-shadow:0 1px 4px rgba(0,0,0,.3);border-radius:4px}
.legend h4{margin:2px 0 4px;font-size:12px}.legend i{width:14px;height:12px;float:left;
margin-right:6px;opacity:.85;border:1px solid #999}
.picker{background:#fff;padding:6px;font:12px sans-serif;border-radius:4px;
box-shadow:0 1px 4px rgba(0,0,0,.3)}.picker select{max-width:200px}
.area-label{font:11px sans-serif;color:#222;text-shadow:0 0 3px #fff;white-space:nowrap;
padding-left:13px;margin-top:-7px}
.rank-label{background:#08306b;color:#fff;border-radius:10px;text-align:center;
font:bold 11px/20px sans-serif}
"""

PAGE_JS = r"""
(function () {
  var D = __DATA__;
  var map = __MAP__;
  var C = D.colours;
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function num(v, digits) {
    if (v === null || v === undefined) return "n/a";
    return Number(v).toLocaleString("en-GB", {maximumFractionDigits: digits || 0});
  }
  document.querySelector(".marking-top").textContent = D.marking;
  document.querySelector(".marking-bottom").textContent = D.marking;
  var cellsPane = map.createPane("cells"); cellsPane.style.zIndex = 350;
  var renderer = L.canvas({pane: "cells", padding: 0.2});
  function hexes(enc) {
    var out = [], c = enc.c, o = enc.o;
    for (var i = 0; i < c.length / 2; i++) {
      var ring = [];
      for (var k = 0; k < 6; k++) {
        ring.push([(c[2 * i] + o[12 * i + 2 * k]) / 1e5, (c[2 * i + 1] + o[12 * i + 2 * k + 1]) / 1e5]);
      }
      out.push(ring);
    }
    return out;
  }
  function classOf(v, breaks) {
    var i = 0; while (i < breaks.length && v >= breaks[i]) i++; return i;
  }
  var SUPPRESSED = "#bdbdbd";
  function indexColour(v, s) {
    if (s) return SUPPRESSED;
    if (v === null) return null;
    return C.index[classOf(v, C.index_breaks)];
  }
  function legendHtml(title, colours, breaks, extra) {
    var h = "<h4>" + esc(title) + "</h4>";
    for (var i = 0; i < colours.length; i++) {
      var lo = i === 0 ? null : breaks[i - 1], hi = i < breaks.length ? breaks[i] : null;
      var text = lo === null ? "below " + num(hi, 2) : hi === null ? num(lo, 2) + " and above"
        : num(lo, 2) + " to " + num(hi, 2);
      h += '<i style="background:' + colours[i] + '"></i>' + text + "<br>";
    }
    return h + (extra || "");
  }
  var suppressedKey = '<i style="background:' + SUPPRESSED + '"></i>suppressed (under ' + D.threshold + " sign-ups)<br>";

  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () { this._div = L.DomUtil.create("div", "legend"); return this._div; };
  legend.addTo(map);
  var legends = {};
  function showLegends() {
    var h = "";
    Object.keys(legends).forEach(function (k) { if (map.hasLayer(legends[k].layer)) h += legends[k].html(); });
    legend._div.innerHTML = h; legend._div.style.display = h ? "block" : "none";
  }

  var selected = D.default_origin || D.origins[0];
  var A = D.areas;

  // area outlines and names: always drawn from the data, so no tiles are needed
  var outlines = L.layerGroup();
  var names = L.layerGroup();
  for (var i = 0; i < A.code.length; i++) {
    L.polygon(A.rings[i], {color: "#333", weight: 1.2, fill: false, interactive: false}).addTo(outlines);
    L.marker(A.label[i], {interactive: false, icon: L.divIcon({className: "area-label",
      html: esc(A.name[i]), iconSize: null})}).addTo(names);
  }

  function areaPopup(i) {
    var gap = A.gap_suppressed[i] ? "suppressed" : num(A.parity_gap[i]);
    var pen = A.gap_suppressed[i] ? "suppressed" : num(A.penetration_gap[i]);
    var h = "<b>" + esc(A.name[i]) + "</b>" + (A.parent[i] ? " (" + esc(A.parent[i]) + ")" : "");
    if (A.rank[i] !== null) h += "<br>Rank " + num(A.rank[i]) + ", score " + num(A.score[i], 3) + ", tactic " + esc(A.tactic[i]);
    h += "<br>Parity gap: " + gap + "; penetration gap: " + pen;
    if (A.expected[i] !== null) h += "<br>Expected sign-ups this week: " + num(A.expected[i], 1);
    if (A.reason[i]) h += "<br><i>" + esc(A.reason[i]) + "</i>";
    return h;
  }

  function areaLayer(styleOf, tipOf) {
    var group = L.layerGroup(), shapes = [];
    for (var i = 0; i < A.code.length; i++) {
      var p = L.polygon(A.rings[i], {renderer: renderer, weight: 0.5, color: "#555", fillOpacity: 0.7});
      p.bindTooltip((function (j) { return function () { return tipOf(j); }; })(i), {sticky: true});
      p.bindPopup((function (j) { return function () { return areaPopup(j); }; })(i));
      shapes.push(p); p.addTo(group);
    }
    group.restyle = function () {
      shapes.forEach(function (p, j) { var f = styleOf(j); p.setStyle({fillColor: f || "#fff", fillOpacity: f ? 0.7 : 0}); });
    };
    group.restyle();
    return group;
  }
  function indexTip(name, entry, j) {
    var v = entry ? entry.v[j] : null, s = entry ? entry.s[j] : false;
    return esc(name) + ": " + esc(selected) + " index " + (s ? "suppressed" : v === null ? "n/a" : num(v, 0));
  }
  var areaIndex = areaLayer(function (j) {
    var e = A.index[selected]; return e ? indexColour(e.v[j], e.s[j]) : null;
  }, function (j) { return indexTip(A.name[j], A.index[selected], j); });

  var gapBreaks = [25, 50, 100, 200];
  var areaGap = areaLayer(function (j) {
    if (A.gap_suppressed[j]) return SUPPRESSED;
    return A.parity_gap[j] === null ? null : C.sequential[classOf(A.parity_gap[j], gapBreaks)];
  }, function (j) { return esc(A.name[j]) + ": parity gap " + (A.gap_suppressed[j] ? "suppressed" : num(A.parity_gap[j])); });

  var satBreaks = [0.1, 0.2, 0.3, 0.4];
  var hasSat = A.satisfaction.some(function (v) { return v !== null; });
  var areaSat = areaLayer(function (j) {
    return A.satisfaction[j] === null ? null : C.sequential[classOf(A.satisfaction[j], satBreaks)];
  }, function (j) { return esc(A.name[j]) + ": " + (A.satisfaction[j] === null ? "no ratings" : num(100 * A.satisfaction[j], 0) + "% of ratings low"); });

  // per-origin index on the map's coarser cells
  var OC = D.origin_cells, ohex = hexes(OC);
  var cellIndex = L.layerGroup(), ocShapes = [];
  for (var i = 0; i < ohex.length; i++) {
    var p = L.polygon(ohex[i], {renderer: renderer, weight: 0, fillOpacity: 0.75});
    p.bindTooltip((function (j) { return function () {
      var e = OC.index[selected];
      if (!e) return esc(selected) + ": cells show origins, not groups";
      return esc(selected) + " index " + (e.s[j] ? "suppressed" : e.v[j] === null ? "n/a" : num(e.v[j], 0));
    }; })(i), {sticky: true});
    ocShapes.push(p); p.addTo(cellIndex);
  }
  cellIndex.restyle = function () {
    var e = OC.index[selected];
    ocShapes.forEach(function (p, j) {
      var f = e ? indexColour(e.v[j], e.s[j]) : null;
      p.setStyle({fillColor: f || "#fff", fillOpacity: f ? 0.75 : 0});
    });
  };
  cellIndex.restyle();

  // analysis-grid layers share one set of cell outlines, built when first shown
  var cellRings = null;
  function cellLayer(key) {
    var spec = D.cells.layers[key], group = L.layerGroup(), built = false;
    var colours = key === "watch_share" ? C.greens : C.sequential;
    group.on("add", function () {
      if (built) return; built = true;
      cellRings = cellRings || hexes(D.cells);
      for (var i = 0; i < cellRings.length; i++) {
        var v = spec.v[i]; if (v === null) continue;
        L.polygon(cellRings[i], {renderer: renderer, weight: 0, fillOpacity: 0.7,
          fillColor: colours[classOf(v, spec.breaks)]})
          .bindTooltip(esc(spec.label) + ": " + (key === "watch_share" ? num(100 * v, 0) + "%" : num(v, 0)))
          .addTo(group);
      }
    });
    return group;
  }

  var ranked = L.layerGroup();
  for (var i = 0; i < A.code.length; i++) {
    if (A.rank[i] === null) continue;
    L.marker(A.label[i], {icon: L.divIcon({className: "rank-label", html: esc(num(A.rank[i])), iconSize: [22, 20]}),
      zIndexOffset: 1000 - A.rank[i]})
      .bindPopup((function (j) { return function () { return areaPopup(j); }; })(i))
      .bindTooltip(esc(A.name[i]) + ": rank " + num(A.rank[i])).addTo(ranked);
  }

  var H = D.hotspots, hot = L.layerGroup();
  for (var i = 0; i < H.lat.length; i++) {
    L.circleMarker([H.lat[i], H.lng[i]], {radius: 6, color: "#fff", weight: 1, fillOpacity: 0.9,
      fillColor: C.tactic[H.tactic[i]] || "#444"})
      .bindPopup("<b>Hotspot " + num(H.rank[i]) + "</b>: " + esc(H.tactic[i]) + " in " + esc(H.area[i]) +
        "<br>Parity gap (to the nearest " + D.threshold + "): " + num(H.gap[i]) + "<br><i>" + esc(H.reason[i]) + "</i>")
      .bindTooltip("Hotspot " + num(H.rank[i]) + ": " + esc(H.tactic[i])).addTo(hot);
  }

  var S = D.stations, st = L.layerGroup();
  for (var i = 0; i < S.lat.length; i++) {
    L.circle([S.lat[i], S.lng[i]], {radius: S.radius, color: C.tactic.station, weight: 2, fillOpacity: 0.08}).addTo(st);
    L.circleMarker([S.lat[i], S.lng[i]], {radius: 8, color: "#fff", weight: 2, fillOpacity: 1, fillColor: C.tactic.station})
      .bindPopup("<b>Station site " + num(S.rank[i]) + "</b> in " + esc(S.area[i]) + "<br>Residents within " +
        num(S.radius) + " m: " + num(S.residents[i]) + "<br>Parity gap covered (to the nearest " + D.threshold + "): " + num(S.gap[i]))
      .addTo(st);
  }

  var G = D.geofences, fences = L.layerGroup();
  for (var i = 0; i < G.id.length; i++) {
    L.polygon(G.rings[i], {color: C.tactic[G.tactic[i]] || "#444", weight: 2, dashArray: "4 3", fillOpacity: 0.05})
      .bindTooltip(esc(G.id[i]) + ": " + esc(G.tactic[i]) + ", rank " + num(G.rank[i])).addTo(fences);
  }

  var idxExtra = suppressedKey + '<small>100 = parity: below, fewer sign-ups than the population share</small>';
  legends.areaIndex = {layer: areaIndex, html: function () { return legendHtml("Representation index, areas: " + selected, C.index, C.index_breaks, idxExtra); }};
  legends.cellIndex = {layer: cellIndex, html: function () { return legendHtml("Representation index, cells: " + selected, C.index, C.index_breaks, idxExtra); }};
  legends.gap = {layer: areaGap, html: function () { return legendHtml("Parity gap (sign-ups)", C.sequential, gapBreaks, suppressedKey); }};
  legends.sat = {layer: areaSat, html: function () { return legendHtml("Share of message ratings low", C.sequential, satBreaks); }};
  var tactics = '<h4>Hotspots and sites</h4>' + Object.keys(C.tactic).map(function (t) {
    return '<i style="background:' + C.tactic[t] + '"></i>' + esc(t); }).join("<br>");
  legends.hot = {layer: hot, html: function () { return tactics; }};
  legends.st = {layer: st, html: function () { return '<h4>Mobile-station sites</h4><i style="background:' +
    C.tactic.station + '"></i>site; the ring is a ' + num(S.radius) + ' m walk'; }};
  legends.fences = {layer: fences, html: function () { return '<h4>Geofences</h4>dashed outlines, coloured by tactic'; }};

  var overlays = {
    "Area outlines": outlines,
    "Area names": names,
    "Representation index (areas)": areaIndex,
    "Representation index (cells)": cellIndex,
    "Parity gap (areas)": areaGap
  };
  if (hasSat) overlays["Satisfaction (areas)"] = areaSat;
  Object.keys(D.cells.layers).forEach(function (k) {
    var layer = cellLayer(k), spec = D.cells.layers[k];
    overlays[spec.label + " (cells, resolution " + D.cells.resolution + ")"] = layer;
    legends[k] = {layer: layer, html: function () {
      return legendHtml(spec.label, k === "watch_share" ? C.greens : C.sequential, spec.breaks); }};
  });
  var SG = D.cells.segments;
  if (SG) {
    var segLayer = L.layerGroup(), segBuilt = false;
    segLayer.on("add", function () {
      if (segBuilt) return; segBuilt = true;
      cellRings = cellRings || hexes(D.cells);
      for (var i = 0; i < cellRings.length; i++) {
        var v = SG.v[i]; if (v === null) continue;
        L.polygon(cellRings[i], {renderer: renderer, weight: 0, fillOpacity: 0.75, fillColor: SG.colours[v]})
          .bindTooltip(esc(SG.names[v] + " " + SG.labels[v])).addTo(segLayer);
      }
    });
    overlays["Segments (cells, resolution " + D.cells.resolution + ")"] = segLayer;
    legends.segments = {layer: segLayer, html: function () {
      return "<h4>Main segment of each cell</h4>" + SG.names.map(function (n, i) {
        return '<i style="background:' + SG.colours[i] + '"></i>' + esc(n + " " + SG.labels[i]); }).join("<br>"); }};
  }
  overlays["Ranked areas"] = ranked;
  overlays["Hotspots"] = hot;
  overlays["Mobile-station sites"] = st;
  overlays["Geofences"] = fences;
  overlays["OpenStreetMap background (needs network)"] = L.tileLayer(
    "https://tile.openstreetmap.org/{z}/{x}/{y}.png", {maxZoom: 19, attribution: "&copy; OpenStreetMap contributors"});

  [areaIndex, outlines, names, ranked, hot].forEach(function (l) { l.addTo(map); });
  L.control.layers(null, overlays, {collapsed: window.innerWidth < 700, position: "topright"}).addTo(map);

  var picker = L.control({position: "topleft"});
  picker.onAdd = function () {
    var div = L.DomUtil.create("div", "picker"), sel = L.DomUtil.create("select", "", div);
    sel.id = "origin-picker"; sel.title = "Origin or group for the representation index";
    D.origins.forEach(function (o) { var opt = document.createElement("option"); opt.value = o; opt.textContent = o;
      if (o === selected) opt.selected = true; sel.appendChild(opt); });
    L.DomEvent.disableClickPropagation(div);
    sel.addEventListener("change", function () { selected = sel.value; areaIndex.restyle(); cellIndex.restyle(); showLegends(); });
    return div;
  };
  picker.addTo(map);
  map.on("overlayadd overlayremove", showLegends);
  map.fitBounds(outlines.getLayers().reduce(function (b, l) { return b.extend(l.getBounds()); }, L.latLngBounds([])));
  showLegends();
  map.whenReady(function () { document.body.setAttribute("data-map-ready-ms", String(Math.round(performance.now()))); });
})();
"""
