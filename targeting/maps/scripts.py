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
