"""Accuracy against measured sparsity, one line per pruning variant (the "sweet spot" curve)."""

from __future__ import annotations

import pandas as pd

from app.figures import Figure, figure
from app.figures.style import FONT
from pipeline.store import main_models
from pipeline.store.methods import facts

LEGEND_ROW_PX = 18


def variant_labels(models: pd.DataFrame) -> pd.Series:
    """Method plus what distinguishes its curves: schedule and fine-tuning (vectorised)."""
    method = models["method"].astype(str).map(lambda m: facts(m).label)
    iterative = models["schedule"].eq("iterative")
    steps = models["steps"].fillna(0).astype(int).astype(str)
    ft = models["finetune_epochs"].fillna(0).astype(int)
    label = method + iterative.map({True: ", iterative ×", False: ""}) + steps.where(iterative, "")
    return label + ft.gt(0).map({True: ", ft ", False: ""}) + ft.astype(str).where(ft.gt(0), "")


def accuracy_vs_sparsity(
    models: pd.DataFrame,
    accuracy: str = "clean_accuracy",
    title: str = "Clean accuracy vs sparsity",
    selected: str | None = None,
    legend_below: bool = False,
    height: int | None = None,
) -> Figure:
    """One line per (method, schedule, fine-tuning) over measured sparsity; the dense model as a
    dashed reference line. `models` needs model_id, method, schedule, steps, finetune_epochs,
    sparsity and the `accuracy` column; `selected` (a model id) is ringed. The run's main models only
    (store.main_models: single-layer models and other seeds have their own views)."""
    return sweet_spot_figure(sweet_spot_curves(models, accuracy), title, selected, legend_below, height)


def sweet_spot_curves(models: pd.DataFrame, accuracy: str = "clean_accuracy") -> dict:
    """What accuracy_vs_sparsity draws whichever model is ringed (traces, shapes, notes, and each
    model's point): a view keeps it per run and rings a new reference without building it again."""
    models = models[main_models(models)]
    traces, shapes, notes = [], [], []
    if models.empty:
        notes.append(
            {"text": "no models in this run", "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}
        )
    df = models.assign(variant=variant_labels(models))
    for variant, g in df[df["method"] != "dense"].groupby("variant", sort=True):
        g = g.sort_values("sparsity")
        ft = int(g["finetune_epochs"].iloc[0] or 0)
        traces.append(
            {
                "type": "scatter",
                "x": g["sparsity"].to_numpy(),
                "y": g[accuracy].to_numpy(),
                "mode": "lines+markers",
                "name": variant,
                "line": {"color": facts(str(g["method"].iloc[0])).color, "dash": "solid" if ft else "dot"},
                "customdata": g["model_id"].to_numpy(),
                "hovertemplate": "%{customdata}<br>sparsity %{x:.3f}<br>accuracy %{y:.3f}<extra></extra>",
            }
        )
    for _, row in df[df["method"] == "dense"].iterrows():
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": row[accuracy],
                "y1": row[accuracy],
                "line": {"color": facts("dense").color, "dash": "dash", "width": 1},
            }
        )
        notes.append(
            {
                "text": f"dense {row[accuracy]:.3f}",
                "showarrow": False,
                "xref": "paper",
                "x": 0,
                "xanchor": "left",
                "xshift": 10,
                "yref": "y",
                "y": row[accuracy],
                "yanchor": "top",
            }
        )
    points = dict(zip(df["model_id"], zip(df["sparsity"], df[accuracy])))
    return {"traces": traces, "shapes": shapes, "notes": notes, "points": points}


def sweet_spot_figure(
    curves: dict,
    title: str = "Clean accuracy vs sparsity",
    selected: str | None = None,
    legend_below: bool = False,
    height: int | None = None,
) -> Figure:
    """The figure of sweet_spot_curves, `selected` (a model id) ringed."""
    traces, shapes, notes = list(curves["traces"]), curves["shapes"], curves["notes"]
    if selected in curves["points"]:
        x, y = curves["points"][selected]
        traces.append(
            {
                "type": "scatter",
                "x": [x],
                "y": [y],
                "mode": "markers",
                "name": "selected",
                "marker": {"size": 16, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "black"}},
                "hoverinfo": "skip",
            }
        )
    # A legend below the plot gets its own rows under the axis title (two entries a row), anchored
    # to the container so that it never runs into the title.
    legend_rows = -(-len(traces) // 2) if legend_below else 0
    return figure(
        {
            "data": traces,
            "layout": {
                "title": {"text": title},
                "font": FONT,
                **({"height": height + LEGEND_ROW_PX * legend_rows} if height else {}),
                "margin": {"l": 50, "r": 10, "t": 40, "b": 50 + LEGEND_ROW_PX * legend_rows},
                "shapes": shapes,
                "annotations": notes,
                "xaxis": {"title": {"text": "sparsity (fraction of weights removed, measured)"}, "range": [-0.02, 1.0]},
                "yaxis": {"title": {"text": "accuracy"}, "range": [0, 1.02]},
                "legend": {
                    "font": {"size": 9},
                    **(
                        {
                            "orientation": "h",
                            "yref": "container",
                            "y": 0,
                            "yanchor": "bottom",
                            "entrywidth": 0.5,  # two entries a row, whatever the labels' length
                            "entrywidthmode": "fraction",
                        }
                        if legend_below
                        else {}
                    ),
                },
            },
        }
    )
