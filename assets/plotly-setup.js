/* What the page sets on plotly.js (assets/plotly-bundle.min.js) when it arrives: app.main.PruneScopeDash
   lets the first graph load it, after this file, so this is done when the bundle sets window.Plotly
   (where plotly.js is there already, at once).

   WebGL at the screen's pixel ratio. plotly.js draws WebGL traces (the local geometry's points) on
   canvases of twice the plot's size by default (config plotGlPixelRatio 2), four times the pixels
   of a standard screen for nothing seen: in software WebGL the two canvases' contexts took 0.23 s
   to create and the graph 0.2 s longer to draw. The ratio is the screen's (rounded up, 1 or 2).

   A resize that changes nothing draws nothing. plotly.js's Plots.resize relayouts a graph without a
   fixed width, which draws it again from scratch, even when its size has not changed; dcc.Graph
   calls it after a graph's first drawing and whenever its box changes, so every graph of the first
   page was drawn twice (the local geometry's 40 subplots: a second or more on 2 cores). Plots.resize
   is patched to answer a resize at once when the graph's box is the size plotly last drew it at
   (within a pixel, as plotly's autosize rounds); a graph whose box did change (a window resize, a
   tab shown) is resized as before.
   The box is measured by a ResizeObserver, which reads it from the browser's own next layout:
   measured by the script (getComputedStyle) in an animation frame, each graph's check forced a
   layout of the whole page while other graphs were drawing (0.1 to 0.2 s of the first page). */
(function () {
  "use strict";

  function configure(Plotly) {
    Plotly.setPlotConfig({ plotGlPixelRatio: Math.min(2, Math.max(1, Math.ceil(window.devicePixelRatio || 1))) });
  }

  function patch(Plotly) {
    const resize = Plotly.Plots.resize;
    const asked = new Map(); // graph div -> the resizes asked of it since it was last measured

    function unchanged(gd, width, height) {
      const full = gd._fullLayout;
      if (!full || !gd.layout || gd.layout.width) {
        return false;
      }
      return Math.abs(width - full.width) < 1 && (Boolean(gd.layout.height) || Math.abs(height - full.height) < 1);
    }

    function answer(gd, same) {
      const calls = asked.get(gd) || [];
      asked.delete(gd);
      observer.unobserve(gd);
      for (const [self, args, done] of calls) {
        // a real resize in the next frame, as plotly's own callers do: not inside the observer's callback
        const redraw = (resolve) => resolve(resize.apply(self, args));
        done(same ? gd : new Promise((resolve) => window.requestAnimationFrame(() => redraw(resolve))));
      }
    }

    const observer = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const box = entry.borderBoxSize[0];
        if (asked.has(entry.target)) {
          answer(entry.target, unchanged(entry.target, box.inlineSize, box.blockSize));
        }
      }
    });

    Plotly.Plots.resize = function (gd) {
      const el = typeof gd === "string" ? document.getElementById(gd) : gd;
      if (!(el instanceof Element)) {
        return resize.apply(this, arguments);
      }
      const args = arguments;
      return new Promise((resolve) => {
        if (!asked.has(el)) {
          const calls = [];
          asked.set(el, calls);
          observer.observe(el); // its box comes with the next frame's layout
          // a box of no size (a hidden graph) is never reported: after two frames, resize as plotly would
          // (these calls only: a later call, asked after the observer answered these, waits for its own box)
          const fallback = () => asked.get(el) === calls && answer(el, false);
          window.requestAnimationFrame(() => window.requestAnimationFrame(fallback));
        }
        asked.get(el).push([this, args, resolve]);
      });
    };
  }

  function setUp(Plotly) {
    for (const step of [configure, patch]) {
      try {
        step(Plotly);
      } catch (error) {
        console.error("plotly-setup.js:", step.name, error); // plotly.js still draws, without this step
      }
    }
  }

  if (window.Plotly) {
    setUp(window.Plotly);
  } else {
    let plotly;
    Object.defineProperty(window, "Plotly", {
      configurable: true,
      enumerable: true,
      get: () => plotly,
      set: (value) => {
        plotly = value;
        setUp(value);
      },
    });
  }
})();
