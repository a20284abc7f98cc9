"""The page's CSS and scripts (Leaflet code run in the browser; data arrives as JSON)."""

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


PAGE_CSS = """
.marking{position:fixed;left:50%;transform:translateX(-50%);z-index:1000;background:#a50021;
color:#fff;font:bold 13px sans-serif;padding:2px 12px;letter-spacing:.05em;pointer-events:none}
.marking-top{top:0}.marking-bottom{bottom:0}
.legend{background:#fff;padding:6px 8px;font:12px sans-serif;line-height:18px;max-width:230px;
max-height:60vh;overflow:auto;box-shadow:0 1px 4px rgba(0,0,0,.3);border-radius:4px}
.legend h4{margin:2px 0 4px;font-size:12px}.legend i{width:14px;height:12px;float:left;
margin-right:6px;opacity:.85;border:1px solid #999}
.picker{background:#fff;padding:4px 6px;font:12px sans-serif;border-radius:4px;
box-shadow:0 1px 4px rgba(0,0,0,.3)}.picker label{display:block;font-weight:600;margin-bottom:2px}
.picker select{max-width:200px;min-height:32px;font-size:13px}
.title-bar{background:#fff;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);
font:13px sans-serif;padding:4px 8px;max-width:60vw}.title-bar b{font-size:14px}
.map-button{display:block;min-width:32px;height:32px;padding:0 8px;border:0;border-radius:4px;
background:#fff;box-shadow:0 1px 4px rgba(0,0,0,.3);font:bold 13px sans-serif;cursor:pointer}
/* a name sits centred under its point (below the rank badge there); Leaflet moves the outer box */
.area-label,.street-label{width:0;height:0;overflow:visible}
.area-label span,.street-label span{position:absolute;white-space:nowrap;transform:translate(-50%,0);
text-shadow:0 0 3px #fff,0 0 3px #fff}
.area-label span{font:11px sans-serif;color:#222;top:13px}.phone .area-label span{top:22px}
.street-label span{font:italic 11px sans-serif;color:#444;top:-7px}
.thinned{visibility:hidden}
.rank-label{display:flex;align-items:center;justify-content:center}
.rank-label span{background:#08306b;color:#fff;border:2px solid #fff;border-radius:12px;
min-width:22px;height:20px;font:bold 11px/20px sans-serif;text-align:center;padding:0 3px}
.spot{display:flex;align-items:center;justify-content:center}
/* a phone: every control a 44 px target, folded away until asked for, and out of a popup's way */
.phone .leaflet-bar a,.phone .leaflet-control-layers-toggle{width:44px!important;height:44px!important;
line-height:44px!important}
.phone .map-button{min-width:44px;height:44px;font-size:15px}.phone .picker select{min-height:44px;max-width:150px}
.phone .legend{max-width:70vw;max-height:50vh}
.phone .title-bar{max-width:75vw}.phone .title-bar .more{display:none}
.phone .title-bar.open .more{display:block}
.popup-open .picker,.popup-open .legend,.popup-open .leaflet-control-layers,.popup-open .title-bar,
.popup-open .map-button,.popup-open .leaflet-control-zoom,.popup-open .leaflet-control-scale{display:none!important}
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
  var SUPPRESSED = C.suppressed;
  // a phone (or any narrow window): controls fold away, tap targets grow
  var phone = window.innerWidth < 700;
  var container = map.getContainer();
  if (phone) container.classList.add("phone");
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
  var suppressedKey = '<i style="background:' + SUPPRESSED + '"></i>suppressed (under ' + D.threshold +
    ' sign-ups)<br><i style="background:#fff"></i>no data<br>';

  // the title bar: the force, the week and the marking; on a phone one line, tap for more
  var title = L.control({position: "topleft"});
  title.onAdd = function () {
    var div = L.DomUtil.create("div", "title-bar");
    div.innerHTML = "<b>" + esc(D.title) + "</b> " + esc(D.week) +
      '<div class="more">' + esc(D.marking) + ": for engagement, not enforcement</div>";
    div.setAttribute("role", "button"); div.tabIndex = 0;
    L.DomEvent.disableClickPropagation(div);
    div.addEventListener("click", function () { div.classList.toggle("open"); });
    return div;
  };
  title.addTo(map);

  // the legend, behind a button: folded on a phone at open, open on a desktop
  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () {
    var wrap = L.DomUtil.create("div", "legend-wrap");
    var button = L.DomUtil.create("button", "map-button legend-button", wrap);
    button.type = "button"; button.textContent = "Legend"; button.setAttribute("aria-expanded", String(!phone));
    this._div = L.DomUtil.create("div", "legend", wrap);
    this._open = !phone;
    var self = this;
    button.addEventListener("click", function () {
      self._open = !self._open; button.setAttribute("aria-expanded", String(self._open)); showLegends(); });
    L.DomEvent.disableClickPropagation(wrap); L.DomEvent.disableScrollPropagation(wrap);
    return wrap;
  };
  legend.addTo(map);
  var legends = {};
  function showLegends() {
    var h = "";
    Object.keys(legends).forEach(function (k) { if (map.hasLayer(legends[k].layer)) h += legends[k].html(); });
    legend._div.innerHTML = h; legend._div.style.display = h && legend._open ? "block" : "none";
  }

  var selected = D.default_origin || D.origins[0];
  var A = D.areas;

  // area outlines and names: always drawn from the data, so no tiles are needed
  var outlines = L.layerGroup();
  var names = L.layerGroup();
  for (var i = 0; i < A.code.length; i++) {
    L.polygon(A.rings[i], {color: "#333", weight: 1.2, fill: false, interactive: false}).addTo(outlines);
    L.marker(A.label[i], {interactive: false, keyboard: false, icon: L.divIcon({className: "area-label",
      html: "<span>" + esc(A.name[i]) + "</span>", iconSize: null})}).addTo(names);
  }

  var TACTIC_NAMES = D.tactic_names;
  function areaPopup(i) {
    var gap = A.gap_suppressed[i] ? "suppressed" : num(A.parity_gap[i]);
    var pen = A.gap_suppressed[i] ? "suppressed" : num(A.penetration_gap[i]);
    var h = "<b>" + esc(A.name[i]) + "</b>" + (A.parent[i] ? " (" + esc(A.parent[i]) + ")" : "");
    if (A.rank[i] !== null) h += "<br>Rank " + num(A.rank[i]) + " this week: " +
      esc(TACTIC_NAMES[A.tactic[i]] || A.tactic[i]) + " (score " + num(A.score[i], 3) + ")";
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
    group.on("add", function () {
      if (built) return; built = true;
      cellRings = cellRings || hexes(D.cells);
      for (var i = 0; i < cellRings.length; i++) {
        var v = spec.v[i]; if (v === null) continue;
        L.polygon(cellRings[i], {renderer: renderer, weight: 0, fillOpacity: 0.7,
          fillColor: spec.colours[classOf(v, spec.breaks)]})
          .bindTooltip(esc(spec.label) + ": " + (spec.percent ? num(100 * v, 0) + "%" : num(v, v >= 100 ? 0 : spec.digits)))
          .addTo(group);
      }
    });
    return group;
  }

  // markers: a shape per tactic in a colour no fill uses, with a white rim; a 44 px target on a phone
  var BOX = phone ? 44 : 28;
  var SHAPES = {
    door: '<circle cx="10" cy="10" r="7" stroke-width="2.5"/>',
    street: '<rect x="4" y="4" width="12" height="12" transform="rotate(45 10 10)" stroke-width="2.5"/>',
    station: '<path d="M10 2 L18.5 17 L1.5 17 Z" stroke-width="2.2"/>'
  };
  function markerIcon(tactic, extra) {
    return L.divIcon({className: "spot spot-" + tactic + (extra || ""), iconSize: [BOX, BOX],
      html: '<svg width="20" height="20" viewBox="0 0 20 20" fill="' + (C.tactic[tactic] || "#444") +
        '" stroke="#fff">' + (SHAPES[tactic] || SHAPES.door) + "</svg>"});
  }
  var popupOptions = {autoPanPaddingTopLeft: [12, 40], autoPanPaddingBottomRight: [12, 40], maxWidth: 300};
  function place(postcode, street) {
    if (!postcode) return "";
    return "<br>Nearest postcode: <b>" + esc(postcode) + "</b>" + (street ? ", " + esc(street) : "");
  }
  function say(tactic) {
    return D.scripts[tactic] ? '<br><span class="say">What to say: <i>&ldquo;' + esc(D.scripts[tactic]) + "&rdquo;</i></span>" : "";
  }

  var ranked = L.layerGroup(), rankMarkers = [];
  for (var i = 0; i < A.code.length; i++) {
    if (A.rank[i] === null) continue;
    var rm = L.marker(A.label[i], {icon: L.divIcon({className: "rank-label", html: "<span>" + esc(num(A.rank[i])) + "</span>",
      iconSize: [BOX, BOX]}), zIndexOffset: 1000 - A.rank[i], keyboard: false})
      .bindPopup((function (j) { return function () { return areaPopup(j); }; })(i), popupOptions)
      .bindTooltip(esc(A.name[i]) + ": rank " + num(A.rank[i]));
    rm.rank = A.rank[i]; rankMarkers.push(rm); rm.addTo(ranked);
  }

  var H = D.hotspots, hot = L.layerGroup();
  for (var i = 0; i < H.lat.length; i++) {
    var spot = L.marker([H.lat[i], H.lng[i]], {icon: markerIcon(H.tactic[i], " hotspot"), zIndexOffset: 2000, keyboard: false})
      .bindPopup("<b>Hotspot " + num(H.rank[i]) + "</b> (number " + num(H.rank[i]) + " in the tasking pack)<br>" +
        esc(TACTIC_NAMES[H.tactic[i]] || H.tactic[i]) + " in " + esc(H.area[i]) + ", " + esc(D.week) +
        place(H.postcode[i], H.street[i]) + "<br>Chosen for: " + esc(H.reason[i]) + say(H.tactic[i]), popupOptions);
    // a phone has no hover: a tooltip would only sit beside the popup a tap opens
    if (!phone) spot.bindTooltip("Hotspot " + num(H.rank[i]) + ": " + esc(TACTIC_NAMES[H.tactic[i]] || H.tactic[i]));
    spot.addTo(hot);
  }

  var S = D.stations, st = L.layerGroup();
  for (var i = 0; i < S.lat.length; i++) {
    L.circle([S.lat[i], S.lng[i]], {radius: S.radius, color: C.tactic.station, weight: 2, fillOpacity: 0.06,
      interactive: false}).addTo(st);
    L.marker([S.lat[i], S.lng[i]], {icon: markerIcon("station", " station"), zIndexOffset: 2100, keyboard: false})
      .bindPopup("<b>Mobile police station, site S" + num(S.rank[i]) + "</b>: day " + num(S.rank[i]) + " of the " +
        "station's week, " + esc(D.week) + "<br>In " + esc(S.area[i]) + place(S.postcode[i], S.street[i]) +
        "<br>Residents within a " + num(S.radius) + " m walk: " + num(S.residents[i]) +
        "<br>Why here: more residents of the origins the force misses live within a walk of it than of other sites " +
        "(parity gap covered, to the nearest " + D.threshold + ": " + num(S.gap[i]) + ")" + say("station"), popupOptions)
      .bindTooltip("Station site S" + num(S.rank[i])).addTo(st);
  }

  // streets around the week's visits, drawn from the data (no tiles): lines from zoom 14, names from 16
  var streets = L.layerGroup(), streetNames = L.layerGroup(), streetLabels = [];
  if (D.streets && D.streets.n.length) {
    var streetPane = map.createPane("streets"); streetPane.style.zIndex = 390; streetPane.style.pointerEvents = "none";
    var streetRenderer = L.canvas({pane: "streets", padding: 0.2});
    var d = D.streets.d, k = 0;
    for (var i = 0; i < D.streets.n.length; i++) {
      var pts = [], lat = 0, lng = 0;
      for (var m = 0; m < D.streets.n[i]; m++, k += 2) {
        if (m === 0) { lat = d[k]; lng = d[k + 1]; } else { lat += d[k]; lng += d[k + 1]; }
        pts.push([lat / 1e5, lng / 1e5]);
      }
      L.polyline(pts, {renderer: streetRenderer, color: "#555", weight: 1.6, opacity: 0.9, interactive: false}).addTo(streets);
    }
    for (var i = 0; i < D.streets.names.length; i++) {
      var lab = L.marker(D.streets.at[i], {interactive: false, keyboard: false,
        icon: L.divIcon({className: "street-label", html: "<span>" + esc(D.streets.names[i]) + "</span>", iconSize: null})});
      streetLabels.push(lab); lab.addTo(streetNames);
    }
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
  legends.hot = {layer: hot, html: function () { return "<h4>Hotspots</h4>" + ["door", "street"].map(function (t) {
    return '<svg width="16" height="16" viewBox="0 0 20 20" fill="' + C.tactic[t] + '" stroke="#fff" style="vertical-align:middle;margin-right:4px">' +
      SHAPES[t] + "</svg>" + esc(TACTIC_NAMES[t]); }).join("<br>") + "<br><small>tap one for its postcode and what to say</small>"; }};
  legends.st = {layer: st, html: function () { return '<h4>Mobile-station sites</h4><svg width="16" height="16" viewBox="0 0 20 20" fill="' +
    C.tactic.station + '" stroke="#fff" style="vertical-align:middle;margin-right:4px">' + SHAPES.station +
    '</svg>site; the ring is a ' + num(S.radius) + ' m walk'; }};
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
      return legendHtml(spec.label, spec.colours, spec.breaks); }};
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
  if (D.streets && D.streets.n.length) {
    overlays["Streets (around the week's visits)"] = streets;
    overlays["Street names"] = streetNames;
  }
  if (D.tiles) {
    // the force's own tile server, named in the config: the base under everything
    L.tileLayer(D.tiles, {maxZoom: 19, attribution: esc(D.tiles_attribution)}).addTo(map);
  } else {
    overlays["OpenStreetMap background (needs network)"] = L.tileLayer(
      "https://tile.openstreetmap.org/{z}/{x}/{y}.png", {maxZoom: 19, attribution: "&copy; OpenStreetMap contributors"});
  }

  [areaIndex, outlines, names, ranked, hot, st, streets, streetNames].forEach(function (l) { l.addTo(map); });
  var layersControl = L.control.layers(null, overlays, {collapsed: true, position: "topright"}).addTo(map);
  if (!phone) layersControl.expand();

  var picker = L.control({position: "topleft"});
  picker.onAdd = function () {
    var div = L.DomUtil.create("div", "picker");
    var label = L.DomUtil.create("label", "", div);
    label.htmlFor = "origin-picker"; label.textContent = "Representation index of";
    var sel = L.DomUtil.create("select", "", div);
    sel.id = "origin-picker"; sel.title = "Origin or group for the representation index";
    D.origins.forEach(function (o) { var opt = document.createElement("option"); opt.value = o; opt.textContent = o;
      if (o === selected) opt.selected = true; sel.appendChild(opt); });
    L.DomEvent.disableClickPropagation(div);
    sel.addEventListener("change", function () { selected = sel.value; areaIndex.restyle(); cellIndex.restyle(); showLegends(); });
    return div;
  };
  picker.addTo(map);
  map.on("overlayadd overlayremove", showLegends);
  // a popup is never under a control: on a phone the controls step aside while it is open
  map.on("popupopen", function () { if (phone) container.classList.add("popup-open"); });
  map.on("popupclose", function () { container.classList.remove("popup-open"); });

  // streets draw from zoom 14 and their names from 16; labels that would overlap are thinned,
  // the ranked areas' badges and the first-ranked areas' names kept first
  function zoomed() {
    var z = map.getZoom();
    container.classList.toggle("no-streets", z < 14);
    streets.eachLayer(function (l) { l.setStyle({opacity: z < 14 ? 0 : 0.9, weight: z >= 16 ? 2.5 : 1.6}); });
    var show = z >= 16;
    streetLabels.forEach(function (l) { var e = l.getElement(); if (e) e.style.display = show ? "" : "none"; });
    thin();
  }
  function thin() {
    var taken = [];
    function keep(el) {
      if (!el || el.style.display === "none") return;
      el.classList.remove("thinned");
      var r = (el.firstElementChild || el).getBoundingClientRect();
      if (!r.width) return;
      var clash = taken.some(function (t) { return r.left < t.right && r.right > t.left && r.top < t.bottom && r.bottom > t.top; });
      if (clash) el.classList.add("thinned"); else taken.push(r);
    }
    if (map.hasLayer(ranked)) rankMarkers.slice().sort(function (a, b) { return a.rank - b.rank; })
      .forEach(function (m) { keep(m.getElement()); });
    var order = A.code.map(function (c, i) { return i; }).sort(function (a, b) {
      return (A.rank[a] === null ? 1e9 : A.rank[a]) - (A.rank[b] === null ? 1e9 : A.rank[b]); });
    var labels = names.getLayers();
    if (map.hasLayer(names)) order.forEach(function (i) { keep(labels[i].getElement()); });
    if (map.hasLayer(streetNames)) streetLabels.forEach(function (l) { keep(l.getElement()); });
  }
  map.on("zoomend moveend overlayadd", zoomed);
  // the whole force at open, at once (no zoom animation to wait for)
  map.fitBounds(outlines.getLayers().reduce(function (b, l) { return b.extend(l.getBounds()); }, L.latLngBounds([])),
    {animate: false});
  showLegends();
  zoomed();
  // for tests and for anyone scripting the page: the map and its layers
  window.targetingMap = {map: map, data: D, outlines: outlines, hotspots: hot, stations: st, ranked: ranked,
    streets: streets, streetNames: streetNames};
  map.whenReady(function () { document.body.setAttribute("data-map-ready-ms", String(Math.round(performance.now()))); });
})();
"""
