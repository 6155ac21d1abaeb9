"""Colours and sizes used by every view. The paper's roles (grey reference/correct, red wrong,
yellow compared, purple both wrong) in hues that stay apart for the common colour-vision
deficiencies (tests/test_palette.py simulates them): "red" is Okabe–Ito's vermillion, what the
paper draws green (better, wrong → right) is Okabe–Ito's blue, purple is Paul Tol's wine. A pruning method's colour is
its entry in `pipeline.store.methods`."""

from __future__ import annotations

GREY = "#9e9e9e"
RED = "#D55E00"
YELLOW = "#F0B400"
PURPLE = "#882255"
BLUE = "#0072B2"
SELECTED = "#1f3fd6"

FONT = {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "size": 12}
