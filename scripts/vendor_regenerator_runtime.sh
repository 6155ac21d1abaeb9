#!/usr/bin/env bash
# Vendor assets/regenerator-runtime.js: facebook/regenerator's runtime (MIT), the one part of Dash's
# @babel/polyfill that the dashboard's scripts need (Dash's async components call regeneratorRuntime).
# The rest of the polyfill is core-js 2 for browsers older than any that runs plotly.js; evaluating it
# cost 0.2 s of each first page on 2 cores, and it swaps native functions (String.prototype.trim) for
# slower ones. app.main's index page leaves the polyfill out and this file in (tests hold both).
# Needs npm (a developer's step: the file is committed). Rerun when Dash's polyfill moves.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.14.1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "regenerator-runtime@$version" >/dev/null && tar xzf "regenerator-runtime-$version.tgz")
out=assets/regenerator-runtime.js
{ echo "/* regenerator-runtime v$version (npm), vendored by scripts/vendor_regenerator_runtime.sh */"; cat "$work/package/runtime.js"; } > "$out"
ls -l "$out"
