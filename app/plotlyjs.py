"""The plotly.js that the dashboard and the HTML snapshots run.

assets/plotly-bundle.min.js is plotly.js built with only the trace types the figure builders
make (scripts/build_plotly_bundle.sh): about a third of the full bundle's script evaluation,
which on a 2-core machine was a second of the first page. The dashboard's graphs run it through
dcc.Graph's own loader, pointed at it by app.main.PruneScopeDash; the snapshot inlines the same
file. Its first line names the plotly.js version and the traces, which the tests hold to
plotly.py's version and to every builder's output.
"""

from __future__ import annotations

import re
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[1] / "assets" / "plotly-bundle.min.js"
BANNER = re.compile(
    r"/\* plotly\.js v(?P<version>[0-9.]+), partial bundle for PruneScope: traces (?P<traces>[a-z0-9 ]+)\."
)


def source() -> str:
    """The bundle's JavaScript."""
    return BUNDLE.read_text(encoding="utf-8")


def contents() -> tuple[str, frozenset[str]]:
    """The bundle's plotly.js version and trace types, from its first line."""
    with BUNDLE.open(encoding="utf-8") as f:
        m = BANNER.match(f.readline())
    if m is None:
        raise ValueError(f"{BUNDLE} has no PruneScope banner: rebuild it with scripts/build_plotly_bundle.sh")
    return m["version"], frozenset(m["traces"].split())
