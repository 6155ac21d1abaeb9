#!/usr/bin/env bash
# Build assets/plotly-bundle.min.js: plotly.js with only the trace types PruneScope draws
# (scatter, scattergl, bar, heatmap), with plotly.js's own esbuild settings. The full bundle costs about
# a second of script evaluation on a 2-core machine before the first figure; this one a third.
# Dash's graphs use window.Plotly when a script in assets/ defines it, and the HTML snapshot
# inlines the same file. Needs node and npm (a developer's step: the built file is committed).
# Rebuild when requirements.txt moves plotly: the version must be plotly.py's plotly.js
# (tests/test_app_unit.py checks it, and that every builder's trace type is bundled).
# To bundle another trace type, add it to `traces`.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(.venv/bin/python -c 'from plotly.offline import get_plotlyjs_version; print(get_plotlyjs_version())')
traces="scatter scattergl bar heatmap"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/package.json" <<JSON
{"name": "prunescope-plotly-bundle", "private": true, "version": "0.0.0"}
JSON
(cd "$work" && npm install --no-audit --no-fund --silent "plotly.js@$version" esbuild@0.28 esbuild-plugin-glsl@1 \
  esbuild-plugin-environment@0.5 esbuild-plugin-inline-css@0.0.1 stream-browserify@3 buffer@6)
modules=$(for t in $traces; do [ "$t" = scatter ] || printf "require('plotly.js/lib/%s'), " "$t"; done)
cat > "$work/entry.js" <<JS
var Plotly = require('plotly.js/lib/core');  // core carries scatter
Plotly.register([${modules%, }]);
module.exports = Plotly;
JS
cat > "$work/build.js" <<JS
// plotly.js's esbuild-config.js, with our entry point and minified
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
esbuild.build({
  entryPoints: ['./entry.js'], outfile: process.argv[2], format: 'iife', globalName: 'Plotly', bundle: true, minify: true,
  plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
  alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
  define: { global: 'window', 'define.amd': 'false' }, target: 'es2016', logLevel: 'warning',
  banner: { js: '/* plotly.js v$version, partial bundle for PruneScope: traces $traces. (c) Plotly, Inc., MIT license */' },
}).catch(() => process.exit(1));
JS
out="$PWD/assets/plotly-bundle.min.js"
(cd "$work" && node build.js "$out")
ls -l "$out"
