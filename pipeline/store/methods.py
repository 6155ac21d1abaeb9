"""What people see of a pruning method: its label, its short label and its colour.

Torch-free, so that the dashboard (which never imports torch) and the pipeline read the same
facts: the pruning registry (`pipeline.pruning.register_pruner`) refuses a method that has no
entry here, and every view colours and names methods through `facts`. A store written by
other tools may name methods we do not know: they get their own name and a stable colour.

The colours are the Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design") with a light
grey for random and Paul Tol's wine for mpt (Okabe–Ito's grey and reddish purple merge for
deuteranopes): tests/test_palette.py checks every pair with a colour-vision simulator.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodFacts:
    """How a method is named and drawn: `label` in full, `short` where room is scarce."""

    label: str
    short: str
    color: str


METHODS: dict[str, MethodFacts] = {
    "dense": MethodFacts("dense", "dense", "#000000"),
    "random": MethodFacts("random", "rand", "#BBBBBB"),
    "magnitude": MethodFacts("magnitude", "mag", "#0072B2"),
    "taylor": MethodFacts("taylor", "taylor", "#E69F00"),
    "mpt": MethodFacts("mpt", "mpt", "#882255"),
    "filter": MethodFacts("filter", "filter", "#009E73"),
    "channel": MethodFacts("channel", "chan", "#56B4E9"),
    "external": MethodFacts("external", "ext", "#D55E00"),
}
FALLBACK_COLORS = ("#882255", "#44AA99", "#332288", "#AA4499", "#117733", "#DDCC77")


def facts(method: str) -> MethodFacts:
    """The facts of `method`; a method this table does not know keeps its full name and gets a
    stable colour of its own."""
    known = METHODS.get(method)
    if known is not None:
        return known
    return MethodFacts(method, method, FALLBACK_COLORS[sum(map(ord, method)) % len(FALLBACK_COLORS)])
