"""Robustness: relative margin change densities (Fig. 10) of the reference and compared models."""

from __future__ import annotations

from app.figures import Figure, figure
from app.figures.density import kde_of
from app.figures.local import empty_figure
from app.figures.style import FONT, GREY, YELLOW


def margin_change(curves: list[tuple[str, dict]], margin_label: str = "margin") -> Figure:
    """Densities of (m_clean − m_corrupted) / m_clean, one a model from its summary of the changes
    trimmed 0.5 % each side (pipeline.store.margin_change_summary, as stored or computed);
    `margin_label` names the run's margin definition."""
    curves = [(label, summary) for label, summary in curves if summary["n"] > 1]
    if not curves:
        return empty_figure(
            "no corrupted evaluations in this run: add [evaluation] corruptions to the config", height=300
        )
    traces = []
    for (label, summary), color in zip(curves, (GREY, YELLOW, "#1f77b4", "#ff7f0e")):
        x, d = kde_of(summary, points=160)
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": d,
                "mode": "lines",
                "fill": "tozeroy",
                "name": f"{label} (median {summary['median']:+.2f})",
                "line": {"color": color, "width": 2},
                "opacity": 0.8,
            }
        )
    return figure(
        {
            "data": traces,
            "layout": {
                "font": FONT,
                "height": 420,
                "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
                "title": {
                    "text": f"Relative change of the {margin_label} under corruption (right of 0: it shrinks)",
                    "font": {"size": 13},
                    "x": 0.01,
                },
                "xaxis": {"title": {"text": "(m_clean − m_corrupted) / m_clean"}},
                "yaxis": {"title": {"text": "density"}},
                "legend": {"orientation": "h", "y": -0.25, "font": {"size": 10}},
                "shapes": [
                    {
                        "type": "line",
                        "x0": 0,
                        "x1": 0,
                        "xref": "x",
                        "y0": 0,
                        "y1": 1,
                        "yref": "paper",
                        "line": {"color": "#888", "dash": "dot", "width": 1},
                    }
                ],
            },
        }
    )
