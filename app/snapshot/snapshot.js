/* PruneScope snapshot: draw the embedded figures and link them without a server.
 * A box or lasso selection in a geometry plot, or a box over axes of the parallel coordinates,
 * becomes the selection: every other plot outlines (or colours) the same samples and the
 * gallery shows their images. */
(function () {
  "use strict";
  const S = JSON.parse(document.getElementById("snapshot-data").textContent);
  const MAX_CARDS = 48;
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
  if (!S.figures.trajectories) document.getElementById("card-trajectories").style.display = "none";

  function metrics(s, suffix) {
    const f = (v, d) => (v === null || v === undefined ? "–" : v.toFixed(d));
    const m = s["margin" + suffix];
    return "∠" + f(s["angle" + suffix], 0) + "° ‖x‖" + f(s["length" + suffix], 1) + " m" + (m !== null && m >= 0 ? "+" : "") + f(m, 2);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function card(s) {
    const c = el("div", "sample-card");
    c.dataset.sampleId = s.sample_id;
    if (s.img) {
      const img = el("img");
      img.src = s.img;
      img.title = "sample " + s.sample_id;
      c.appendChild(img);
    } else {
      c.appendChild(el("div", "noimg", "image not embedded"));
    }
    const cap = el("div", "caption");
    cap.appendChild(el("b", null, "#" + s.sample_id + " "));
    cap.appendChild(el("span", null, "label " + S.classNames[s.label]));
    c.appendChild(cap);
    const preds = el("div", "preds");
    preds.appendChild(el("span", s.correct ? "ok" : "bad", "ref: " + S.classNames[s.pred]));
    if (S.compared) preds.appendChild(el("span", s.correct_cmp ? "ok" : "bad", " cmp: " + S.classNames[s.pred_cmp]));
    c.appendChild(preds);
    c.appendChild(el("div", "metrics", metrics(s, "")));
    if (S.compared) c.appendChild(el("div", "metrics cmp", metrics(s, "_cmp")));
    return c;
  }

  function drawGallery() {
    const rows = selection ? S.samples.filter((s) => selection.has(s.sample_id)) : S.samples.filter((s) => s.label === S.focus);
    const grid = document.getElementById("samples-grid");
    grid.replaceChildren(...rows.slice(0, MAX_CARDS).map(card));
    const what = selection ? "selected" : "of class " + S.classNames[S.focus];
    document.getElementById("samples-count").textContent = Math.min(rows.length, MAX_CARDS) + " of " + rows.length + " samples " + what + (S.compared ? ", most moved first" : "");
  }

  function highlight() {
    for (const [key, traces] of Object.entries(S.linked)) {
      if (key === source || !divs[key]) continue;
      const idx = Object.keys(traces).map(Number);
      const widths = idx.map((i) => traces[i].map((id) => (selection && selection.has(id) ? 1.5 : 0)));
      if (idx.length) Plotly.restyle(divs[key], { "marker.line.width": widths }, idx);
    }
    if (divs.global && S.parallel.ids.length) paintLines();
    const status = document.getElementById("selection-status");
    status.textContent = selection ? selection.size + " samples selected (" + (source === "global" ? "global" : "local") + " geometry)" : "no selection";
    drawGallery();
  }

  // The parallel coordinates' first three traces: correct (grey), incorrect (red), selected (blue) lines.
  function polylines(rows) {
    const x = [], y = [];
    for (const i of rows) {
      S.parallel.positions.forEach((axis, j) => { x.push(j); y.push(axis[i]); });
      x.push(null); y.push(null);
    }
    return [x, y];
  }

  function paintLines() {
    const groups = [[], [], []];
    S.parallel.ids.forEach((id, i) => groups[selection && selection.has(id) ? 2 : S.parallel.correct[i] ? 0 : 1].push(i));
    const lines = groups.map(polylines);
    Plotly.restyle(divs.global, { x: lines.map((l) => l[0]), y: lines.map((l) => l[1]) }, [0, 1, 2]);
  }

  function brushedLines(boxes) {
    const spans = {}; // axis index -> [[bottom, top], ...] in axis positions (0..1)
    for (const b of boxes) {
      const [x0, x1] = [b.x0, b.x1].sort((p, q) => p - q);
      const [y0, y1] = [b.y0, b.y1].sort((p, q) => p - q);
      S.parallel.positions.forEach((_, j) => { if (x0 <= j && j <= x1) (spans[j] = spans[j] || []).push([y0, y1]); });
    }
    const axes = Object.keys(spans).map(Number);
    if (!axes.length) return null;
    const inside = (p, [lo, hi]) => p !== null && p >= lo && p <= hi; // null: no value on this axis
    return S.parallel.ids.filter((_, i) => axes.every((j) => spans[j].some((span) => inside(S.parallel.positions[j][i], span))));
  }

  function select(ids, from) {
    selection = ids === null ? null : new Set(ids);
    source = from;
    highlight();
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

  if (divs.global && S.parallel.ids.length) {
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
