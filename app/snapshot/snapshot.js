/* PruneScope snapshot: draw the embedded figures and link them without a server.
 * A box or lasso selection in a geometry plot, or a brushed axis in the parallel coordinates,
 * becomes the selection: every other plot outlines (or colours) the same samples and the
 * gallery shows their images. */
(function () {
  "use strict";
  const S = JSON.parse(document.getElementById("snapshot-data").textContent);
  const MAX_CARDS = 48;
  const SELECTED_COLOR = 2; // parcoords colour index of a selected line
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
    if (source !== "global" && divs.global && S.parcoords.ids.length) {
      const color = S.parcoords.color.map((c, i) => (selection && selection.has(S.parcoords.ids[i]) ? SELECTED_COLOR : c));
      Plotly.restyle(divs.global, { "line.color": [color] }, [0]);
    }
    const status = document.getElementById("selection-status");
    status.textContent = selection ? selection.size + " samples selected (" + (source === "global" ? "global" : "local") + " geometry)" : "no selection";
    drawGallery();
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

  if (divs.global && S.parcoords.ids.length) {
    divs.global.on("plotly_restyle", (ev) => {
      if (!ev || !ev[0] || !Object.keys(ev[0]).some((k) => k.includes("constraintrange"))) return;
      const dims = divs.global.data[0].dimensions;
      let keep = S.parcoords.ids.map(() => true);
      let any = false;
      dims.forEach((d, j) => {
        if (!d.constraintrange || !d.constraintrange.length) return;
        any = true;
        const spans = Array.isArray(d.constraintrange[0]) ? d.constraintrange : [d.constraintrange];
        const values = S.parcoords.values[j];
        keep = keep.map((k, i) => k && spans.some(([lo, hi]) => values[i] >= lo && values[i] <= hi));
      });
      select(any ? S.parcoords.ids.filter((_, i) => keep[i]) : null, "global");
    });
  }

  document.getElementById("clear-selection").addEventListener("click", () => {
    for (const key of Object.keys(S.linked)) if (divs[key]) Plotly.relayout(divs[key], { selections: [] });
    if (divs.global && divs.global.data[0].dimensions) {
      const cleared = {};
      divs.global.data[0].dimensions.forEach((d, j) => { if (d.constraintrange) cleared["dimensions[" + j + "].constraintrange"] = null; });
      if (Object.keys(cleared).length) Plotly.restyle(divs.global, cleared, [0]);
    }
    select(null, null);
  });

  drawGallery();
  window.prunescopeSnapshot = { selected: () => (selection ? Array.from(selection) : null), source: () => source };
})();
