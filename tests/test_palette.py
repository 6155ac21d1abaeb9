"""The colours stay apart for colour-blind readers: every pair a view must tell apart is compared
after simulating protanopia, deuteranopia and tritanopia (Machado et al. 2009, full severity,
as colour-science implements it), by its CIEDE2000 colour difference."""

from __future__ import annotations

import itertools

import colour
import numpy as np
import pytest

from app.figures.local import CATEGORIES
from app.figures.style import BLUE, GREY, RED, SELECTED, YELLOW
from pipeline.store.methods import METHODS

DEFICIENCIES = ("Protanomaly", "Deuteranomaly", "Tritanomaly")
APART = 12.0  # ΔE2000 between two roles a view must tell apart (about 2.3 is just noticeable)
METHODS_APART = 8.0  # between two methods' colours (eight at once: a little closer, helped by the legend)


def seen_as(hex_color: str, deficiency: str | None) -> np.ndarray:
    """CIELAB of an sRGB colour as a reader with `deficiency` (None: normal vision) sees it."""
    linear = colour.cctf_decoding(colour.notation.HEX_to_RGB(hex_color), function="sRGB")
    if deficiency is not None:
        linear = np.clip(colour.blindness.matrix_cvd_Machado2009(deficiency, 1.0) @ linear, 0, 1)
    return colour.XYZ_to_Lab(colour.RGB_to_XYZ(linear, "sRGB"))


def closest(colors: list[str]) -> tuple[float, str, str, str]:
    """The smallest ΔE2000 between two of `colors` over normal vision and every deficiency."""
    worst = (np.inf, "", "", "")
    for deficiency, (a, b) in itertools.product((None, *DEFICIENCIES), itertools.combinations(colors, 2)):
        d = float(colour.delta_E(seen_as(a, deficiency), seen_as(b, deficiency), method="CIE 2000"))
        worst = min(worst, (d, a, b, deficiency or "normal"))
    return worst


@pytest.mark.parametrize(
    "roles, colors",
    [
        ("correct / wrong", [GREY, RED]),
        ("reference / compared", [GREY, YELLOW]),
        ("better / worse (evaluation table)", [BLUE, RED]),
        ("trajectory categories", [c for key, _, c in CATEGORIES if key != "all"]),
        ("parallel coordinates: correct, wrong, selected", [GREY, RED, SELECTED]),
    ],
)
def test_roles_stay_apart_for_colour_blind_readers(roles, colors):
    d, a, b, vision = closest(colors)
    assert d >= APART, f"{roles}: {a} and {b} are {d:.1f} apart for {vision} vision"


def test_method_colours_stay_apart_for_colour_blind_readers():
    d, a, b, vision = closest([m.color for m in METHODS.values()])
    assert d >= METHODS_APART, f"{a} and {b} are {d:.1f} apart for {vision} vision"


def test_the_check_catches_the_red_green_pair_it_replaced():
    assert closest(["#2ca02c", "#d62728"])[0] < APART  # the former wrong → right / right → wrong colours
