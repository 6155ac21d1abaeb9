/* A resize that changes nothing draws nothing. plotly.js's Plots.resize relayouts a graph without a
   fixed width, which draws it again from scratch, even when its size has not changed; dcc.Graph
   calls it after a graph's first drawing and whenever its box changes, so every graph of the first
   page was drawn twice (the local geometry's 40 subplots: a second or more on 2 cores). This file
   loads after plotly-bundle.min.js (assets load in name order) and answers a resize at once when
   the graph's box is the size plotly last drew it at (within a pixel, as plotly's autosize
   rounds); a graph whose box did change (a window resize, a tab shown) is resized as before. */
(function () {
  "use strict";
  const resize = window.Plotly.Plots.resize;

  function unchanged(gd) {
    const full = gd && gd._fullLayout;
    if (!full || !gd.layout || gd.layout.width) {
      return false;
    }
    const style = window.getComputedStyle(gd);
    const width = parseFloat(style.width);
    const height = parseFloat(style.height);
    return Math.abs(width - full.width) < 1 && (Boolean(gd.layout.height) || Math.abs(height - full.height) < 1);
  }

  window.Plotly.Plots.resize = function (gd) {
    const el = typeof gd === "string" ? document.getElementById(gd) : gd;
    const args = arguments;
    // Measured before the next frame, when the browser lays the page out anyway: measured at once,
    // each call forced a layout of the page (about 10 ms each on 2 cores, two calls a graph).
    return new Promise((resolve) => {
      window.requestAnimationFrame(() => resolve(unchanged(el) ? el : resize.apply(this, args)));
    });
  };
})();
