"""Colours and sizes used by every view (the paper's: grey reference/correct, red wrong,
yellow compared, purple both wrong), and one colour per pruning method."""

from __future__ import annotations

GREY = "#9e9e9e"
RED = "#d62728"
YELLOW = "#f2b701"
PURPLE = "#7b3fa0"
GREEN = "#2ca02c"
SELECTED = "#1f5fd6"

METHOD_COLORS = {
    "dense": "#222222",
    "random": "#8c8c8c",
    "magnitude": "#1f77b4",
    "taylor": "#ff7f0e",
    "mpt": "#9467bd",
    "filter": "#2ca02c",
    "channel": "#17becf",
    "external": "#e377c2",
}
FALLBACK_COLORS = ("#bcbd22", "#8c564b", "#e377c2", "#7f7f7f", "#aec7e8", "#ffbb78")


def method_color(method: str) -> str:
    """A stable colour for a pruning method (unknown methods get a stable fallback)."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return FALLBACK_COLORS[sum(map(ord, method)) % len(FALLBACK_COLORS)]


FONT = {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "size": 12}
