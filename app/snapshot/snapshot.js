/* PruneScope snapshot: draw the views' embedded figures and link them without a server.
 * Everything a view draws comes from Python (its figures, its sample cards); this script only
 * keeps the selection: a box or lasso selection in a linked plot, or a box over axes of the
 * parallel coordinates, becomes the selection, the linked plots outline the same samples, the
 * parallel coordinates repaint their lines and the gallery shows the selection's cards. */
(function () {
  "use strict";
  const S = JSON.parse(document.getElementById("snapshot-data").textContent);
  const lines = S.views.global; // {ids, group, positions}: every drawn line of the parallel coordinates
  const gallery = S.views.samples; // {order: [[id, label]], cards: {id: html}, max, focus, focusName}
  const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["toImage"] };
  const divs = {};
  let selection = null; // Set of sample ids, or null
  let source = null;

  for (const [key, fig] of Object.entries(S.figures)) {
    const div = document.getElementById("fig-" + key);
    if (!div) continue;
    divs[key] = div;
    Plotly.newPlot(div, fig.data, fig.layout, key === "density" ? { staticPlot: true } : config);
  }

  function drawGallery() {
    if (!gallery) return;
    const rows = gallery.order.filter(([id, label]) => (selection ? selection.has(id) : label === gallery.focus));
    // the cards are the dashboard's own markup, rendered and escaped by Python (app.snapshot.to_html)
    document.getElementById("samples-grid").innerHTML = rows.slice(0, gallery.max).map(([id]) => gallery.cards[id]).join("");
    const what = selection ? "selected" : "of class " + gallery.focusName;
    document.getElementById("samples-count").textContent =
      Math.min(rows.length, gallery.max) + " of " + rows.length + " samples " + what + (S.compared ? ", most moved first" : "");
  }

  // The parallel coordinates' first three traces: the two line groups, then the selected lines.
  function polylines(rows) {
    const x = [], y = [];
    for (const i of rows) {
      lines.positions.forEach((axis, j) => { x.push(j); y.push(axis[i]); });
      x.push(null); y.push(null);
    }
    return [x, y];
  }

  function paintLines() {
    const groups = [[], [], []];
    lines.ids.forEach((id, i) => groups[selection && selection.has(id) ? 2 : lines.group[i]].push(i));
    const xy = groups.map(polylines);
    Plotly.restyle(divs.global, { x: xy.map((l) => l[0]), y: xy.map((l) => l[1]) }, [0, 1, 2]);
  }

  // A sample is brushed when one of its lines passes every box (as app.figures.parallel.brushed).
  function brushedLines(boxes) {
    const spans = {}; // axis index -> [[bottom, top], ...] in axis positions (0..1)
    for (const b of boxes) {
      const [x0, x1] = [b.x0, b.x1].sort((p, q) => p - q);
      const [y0, y1] = [b.y0, b.y1].sort((p, q) => p - q);
      lines.positions.forEach((_, j) => { if (x0 <= j && j <= x1) (spans[j] = spans[j] || []).push([y0, y1]); });
    }
    const axes = Object.keys(spans).map(Number);
    if (!axes.length) return null;
    const inside = (p, [lo, hi]) => p !== null && p >= lo && p <= hi; // null: no value on this axis
    const hit = lines.ids.filter((_, i) => axes.every((j) => spans[j].some((span) => inside(lines.positions[j][i], span))));
    return Array.from(new Set(hit));
  }

  function select(ids, from) {
    selection = ids === null ? null : new Set(ids);
    source = from;
    for (const [key, traces] of Object.entries(S.linked)) {
      if (key === source || !divs[key]) continue;
      const idx = Object.keys(traces).map(Number);
      const widths = idx.map((i) => traces[i].map((id) => (selection && selection.has(id) ? 1.5 : 0)));
      if (idx.length) Plotly.restyle(divs[key], { "marker.line.width": widths }, idx);
    }
    if (divs.global && lines && lines.ids.length) paintLines();
    document.getElementById("selection-status").textContent = selection
      ? selection.size + " samples selected (" + (source === "global" ? "global" : "local") + " geometry)"
      : "no selection";
    drawGallery();
  }

  for (const key of Object.keys(S.linked)) {
    const div = divs[key];
    if (!div) continue;
    div.on("plotly_selected", (ev) => {
      if (!ev || !ev.points) return select(null, key);
      const ids = [];
      for (const p of ev.points) {
        const traceIds = S.linked[key][p.curveNumber];
        const i = p.pointIndex !== undefined ? p.pointIndex : p.pointNumber;
        if (traceIds && i !== undefined && traceIds[i] !== undefined) ids.push(traceIds[i]);
      }
      select(ids, key);
    });
    div.on("plotly_deselect", () => select(null, key));
  }

  if (divs.global && lines && lines.ids.length) {
    divs.global.on("plotly_relayout", (ev) => {
      if (!ev || !Array.isArray(ev.selections)) return;
      const boxes = ev.selections.filter((b) => b.type === "rect");
      if (!boxes.length) return select(null, "global");
      const ids = brushedLines(boxes);
      if (ids !== null) select(ids, "global");
    });
  }

  document.getElementById("clear-selection").addEventListener("click", () => {
    for (const key of [...Object.keys(S.linked), "global"]) if (divs[key]) Plotly.relayout(divs[key], { selections: [] });
    select(null, null);
  });

  drawGallery();
  window.prunescopeSnapshot = { selected: () => (selection ? Array.from(selection) : null), source: () => source };
})();
