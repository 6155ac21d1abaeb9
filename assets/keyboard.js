/* Keyboard access to a clickable plot (the evaluation table): an element of class "keyboard-plot"
   around a dcc.Graph takes the focus with Tab; the arrow keys move to the nearest point of the plot's
   first trace in that direction (placed from its data: the table's points draw nothing) and show its
   hover label; Enter sends the click a mouse would (dcc.Graph turns it into clickData, the same
   callback then runs); Escape hides the label.
   The point in focus is the box's data-point attribute; a box that scrolls (the table's) scrolls it into sight. */
(function () {
  "use strict";
  const STEP = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  function plotOf(box) {
    return box.querySelector(".js-plotly-plot");
  }

  function centres(gd) {  // the first trace's points on screen (the table's: a point at each bar's slot)
    const trace = gd._fullData && gd._fullData[0];
    const full = gd._fullLayout;
    if (!trace || !trace.x || !trace.y || !full || !full.xaxis || !full.yaxis) return [];
    const box = gd.getBoundingClientRect();
    const xa = full.xaxis;
    const ya = full.yaxis;
    return Array.from(trace.x, (x, i) => ({
      x: box.left + xa._offset + xa.c2p(x),
      y: box.top + ya._offset + ya.c2p(trace.y[i]),
    }));
  }

  function nearest(points, from, dx, dy) {
    let best = -1;
    let score = Infinity;
    points.forEach((p, i) => {
      const along = (p.x - from.x) * dx + (p.y - from.y) * dy;
      if (along <= 1 || !Number.isFinite(p.x) || !Number.isFinite(p.y)) return;
      const across = Math.abs((p.x - from.x) * dy) + Math.abs((p.y - from.y) * dx);
      const s = along + 3 * across;
      if (s < score) { score = s; best = i; }
    });
    return best;
  }

  function show(box, gd, index) {
    box.dataset.point = String(index);
    const point = centres(gd)[index];
    if (point && box.scrollHeight > box.clientHeight) {  // a box that scrolls: the point in focus in sight
      const view = box.getBoundingClientRect();
      const margin = 50;
      if (point.y - margin < view.top) box.scrollTop -= view.top - point.y + margin;
      else if (point.y + margin > view.bottom) box.scrollTop += point.y + margin - view.bottom;
    }
    window.Plotly.Fx.hover(gd, [{ curveNumber: 0, pointNumber: index }]);
  }

  document.addEventListener("keydown", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLElement) || !box.classList.contains("keyboard-plot")) return;
    const gd = plotOf(box);
    if (!gd || !gd.data || !gd.data.length || !window.Plotly) return;
    const points = centres(gd);
    if (!points.length) return;
    let index = Number(box.dataset.point);
    if (!(index >= 0 && index < points.length)) index = -1;
    if (event.key in STEP) {
      event.preventDefault();
      if (index < 0) { show(box, gd, 0); return; }
      const [dx, dy] = STEP[event.key];
      const next = nearest(points, points[index], dx, dy);
      show(box, gd, next < 0 ? index : next);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (index < 0) { show(box, gd, 0); return; }
      gd.emit("plotly_click", { points: [{ curveNumber: 0, pointNumber: index, pointIndex: index }] });
    } else if (event.key === "Escape") {
      window.Plotly.Fx.unhover(gd);
    }
  });

  document.addEventListener("focusin", (event) => {
    const box = event.target;
    if (box instanceof HTMLElement && box.classList.contains("keyboard-plot")) {
      const gd = plotOf(box);
      const index = Number(box.dataset.point);
      if (gd && gd.data && window.Plotly && centres(gd).length) show(box, gd, index >= 0 ? index : 0);
    }
  });
  document.addEventListener("focusout", (event) => {
    const box = event.target;
    if (box instanceof HTMLElement && box.classList.contains("keyboard-plot")) {
      const gd = plotOf(box);
      if (gd && window.Plotly) window.Plotly.Fx.unhover(gd);
    }
  });
})();
