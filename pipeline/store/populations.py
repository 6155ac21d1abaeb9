"""Questions asked of a run's population of models, shared by `pipeline report` and the dashboard.

- Per-layer sensitivity: the models of scope `layer:<name>` (one layer pruned alone) against the
  dense model they were pruned from: change in clean accuracy and mean margin, and the number of
  samples whose prediction flipped.
- Pruning-identified exemplars (Hooker et al. 2019, "What do compressed deep neural networks
  forget?"): a sample is a PIE of a pruned population (the models that differ only in their seed,
  column `population`) when the modal prediction of that population differs from the modal
  prediction of the dense population it was pruned from. With one model on each side this is the
  set of samples whose prediction flipped between the two models, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.store.errors import PruneScopeError
from pipeline.store.io import clean_samples, load, run_meta
from pipeline.store.layout import CLEAN
from pipeline.store.schema import EVALUATION_SUMMARY, EVALUATIONS_TABLE, MODELS_TABLE

LAYER_SCOPE = "layer:"  # pipeline.config writes scopes `layer:<name>` for a layer pruned alone
PIE, FLIPS = "pie", "flips"
SENSITIVITY_METRICS = {
    "delta_accuracy": "Δ clean accuracy",
    "delta_margin": "Δ mean margin",
    "flips": "flipped predictions",
}


def main_models(models: pd.DataFrame) -> pd.Series:
    """Whether each model counts in the whole-run analyses (evaluation table, accuracy vs sparsity,
    Table 1, Fig. 3, the paper's claims): all but the models that prune one layer alone (the
    sensitivity view's) and the seeds other than 0 of a population (PIE's), so each population counts once."""
    keep = pd.Series(True, index=models.index)
    if "scope" in models:
        keep &= models["scope"].map(layer_of).isna()
    if "replicate" in models:
        keep &= models["replicate"].fillna(0).eq(0)
    return keep


def population_of(models: pd.DataFrame) -> pd.Series:
    """Each model's population (its `population`, or its own id where that is null), by model_id."""
    pop = models["population"] if "population" in models else pd.Series(None, index=models.index, dtype=object)
    return pd.Series(pop.where(pop.notna(), models["model_id"]).to_numpy(), index=models["model_id"].to_numpy())


def modal(preds: np.ndarray, num_classes: int) -> np.ndarray:
    """The most frequent class of each column of `preds` (models × samples); ties go to the smallest
    class. Counts the (column, class) pairs that occur, not a classes × samples table, which at 1000
    classes is 40 MB to fill and scan per call."""
    m, n = preds.shape
    if m == 0:
        return np.zeros(n, np.int64)
    pairs = np.repeat(np.arange(n, dtype=np.int64)[None, :], m, axis=0) * num_classes + preds
    keys, counts = np.unique(pairs, return_counts=True)
    column, cls = np.divmod(keys, num_classes)
    order = np.lexsort((cls, -counts, column))  # by column, the most frequent first, then the smallest class
    first = np.r_[True, column[order][1:] != column[order][:-1]]
    return cls[order][first]


@dataclass(frozen=True)
class PieResult:
    """The PIE of one pruned population: `samples` has sample_id, label, dense_mode, pruned_mode, pie."""

    model_id: str
    pruned: tuple[str, ...]
    dense: tuple[str, ...]
    mode: str  # PIE (a population on a side) or FLIPS (one model on each side)
    samples: pd.DataFrame

    @property
    def count(self) -> int:
        return int(self.samples["pie"].sum())

    @property
    def note(self) -> str:
        """One line saying what was compared."""
        if self.mode == FLIPS:
            return (
                f"one seed per model: PIE fall back to the {self.count} samples whose prediction flipped "
                f"between {self.dense[0]} and {self.pruned[0]}"
            )
        return (
            f"{self.count} PIE: the modal prediction of {len(self.pruned)} pruned models differs from that of "
            f"{len(self.dense)} dense models"
        )

    def per_class(self, num_classes: int) -> list[int]:
        """How many PIE each (true) class has."""
        labels = self.samples.loc[self.samples["pie"], "label"].to_numpy(np.int64)
        return np.bincount(labels, minlength=num_classes).tolist()


def _sides(models: pd.DataFrame, pops: pd.Series, model_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The pruned population of `model_id` (those of its models whose parent is in the run) and
    the dense population: their parents, each pruned model's own (seed s against seed s)."""
    parents = models.drop_duplicates("model_id").set_index("model_id")["parent_id"]
    members = [m for m in pops.index[pops == pops[model_id]] if pd.notna(parents[m]) and parents[m] in pops.index]
    if not members:
        raise PruneScopeError(
            f"model {model_id!r} has no parent in the run, so it has no PIE",
            "compare a pruned model (its parent_id names the dense model it was pruned from)",
        )
    return tuple(members), tuple(dict.fromkeys(parents[m] for m in members))


def pie_of(models: pd.DataFrame, model_id: str, predictions: pd.DataFrame, num_classes: int) -> PieResult:
    """The PIE of the population of pruned model `model_id` against the population of its parents.

    `predictions` holds the clean rows (model_id, sample_id, label, pred) of at least both
    populations; a sample counts where every model of both has it. One pruned model: the flips
    against its parent (mode FLIPS)."""
    pops = population_of(models)
    if model_id not in pops.index:
        raise PruneScopeError(f"model {model_id!r} is not in the run", "pick a model of models.parquet")
    pruned, dense = _sides(models, pops, model_id)
    wide = predictions.pivot_table(index="sample_id", columns="model_id", values="pred", aggfunc="first")
    missing = [m for m in pruned + dense if m not in wide.columns]
    if missing:
        raise PruneScopeError(f"models {missing} have no clean samples", "rebuild or validate the run")
    wide = wide[list(pruned + dense)].dropna()
    labels = predictions.drop_duplicates("sample_id").set_index("sample_id")["label"].reindex(wide.index)
    dense_mode = modal(wide[list(dense)].to_numpy(np.int64).T, num_classes)
    pruned_mode = modal(wide[list(pruned)].to_numpy(np.int64).T, num_classes)
    samples = pd.DataFrame(
        {
            "sample_id": wide.index.to_numpy(np.int64),
            "label": labels.to_numpy(np.int64),
            "dense_mode": dense_mode,
            "pruned_mode": pruned_mode,
            "pie": dense_mode != pruned_mode,
        }
    )
    mode = FLIPS if len(pruned) == 1 else PIE
    return PieResult(model_id, pruned, dense, mode, samples)


def _clean_predictions(run_dir: Path, model_ids: list[str], num_classes: int) -> pd.DataFrame:
    return clean_samples(run_dir, model_ids, ["sample_id", "label", "pred"], num_classes).to_pandas()


def run_pie(run_dir: Path, model_id: str) -> PieResult:
    """`pie_of` on a run folder (reads the clean predictions of both populations only)."""
    meta, _ = run_meta(run_dir)
    models = load(run_dir, MODELS_TABLE).to_pandas()
    pops = population_of(models)
    if model_id not in pops.index:
        raise PruneScopeError(f"model {model_id!r} is not in the run", "pick a model of models.parquet")
    pruned, dense = _sides(models, pops, model_id)
    wanted = set(pruned) | set(dense)
    preds = _clean_predictions(run_dir, sorted(wanted), meta["num_classes"])
    return pie_of(models, model_id, preds, meta["num_classes"])


def run_pie_table(run_dir: Path) -> pd.DataFrame:
    """One row per pruned population: method, sparsity, models on each side, mode, PIE count and share,
    and the count of each class (columns named by the class names)."""
    meta, _ = run_meta(run_dir)
    models = load(run_dir, MODELS_TABLE).to_pandas()
    names, num_classes = list(meta["class_names"]), meta["num_classes"]
    preds = _clean_predictions(run_dir, list(models["model_id"]), num_classes)
    pops = population_of(models)
    rows = []
    for mid in models.loc[models["parent_id"].notna(), "model_id"].drop_duplicates():
        first = pops.index[pops == pops[mid]][0]
        if first != mid:
            continue  # one row per population, under its first model
        try:
            res = pie_of(models, mid, preds, num_classes)
        except PruneScopeError:
            continue  # its parent is not in the run
        m = models.set_index("model_id").loc[mid]
        rows.append(
            {
                "population": pops[mid],
                "method": m["method"],
                "scope": m["scope"],
                "target_sparsity": m["target_sparsity"],
                "pruned_models": len(res.pruned),
                "dense_models": len(res.dense),
                "mode": res.mode,
                "pie": res.count,
                "share": res.count / len(res.samples) if len(res.samples) else float("nan"),
                **dict(zip(names, res.per_class(num_classes))),
            }
        )
    return pd.DataFrame(rows)


def layer_of(scope: object) -> str | None:
    """The layer a `layer:<name>` scope prunes alone (None for any other scope)."""
    return scope[len(LAYER_SCOPE) :] if isinstance(scope, str) and scope.startswith(LAYER_SCOPE) else None


def sensitivity_of(models: pd.DataFrame, evals: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per single-layer model: model_id, parent_id, replicate, method, layer, target_sparsity,
    accuracy and its change from the parent (delta_accuracy), delta_margin (mean margin) and flips
    (samples whose clean prediction differs from the parent's). Layers in the order the run lists them."""
    layers = models["scope"].map(layer_of)
    mine = models[layers.notna()].assign(layer=layers[layers.notna()])
    cols = ["model_id", "parent_id", "replicate", "method", "layer", "target_sparsity"]
    if mine.empty:
        return pd.DataFrame(columns=cols + ["accuracy", "delta_accuracy", "delta_margin", "flips"])
    clean = evals[evals["corruption"] == CLEAN].set_index("model_id")
    if "replicate" not in mine:
        mine = mine.assign(replicate=0)
    out = mine[cols].reset_index(drop=True)
    out["accuracy"] = clean["accuracy"].reindex(out["model_id"]).to_numpy()
    out["delta_accuracy"] = out["accuracy"] - clean["accuracy"].reindex(out["parent_id"]).to_numpy()
    out["delta_margin"] = (
        clean["mean_margin"].reindex(out["model_id"]).to_numpy()
        - clean["mean_margin"].reindex(out["parent_id"]).to_numpy()
    )
    wide = predictions.pivot_table(index="sample_id", columns="model_id", values="pred", aggfunc="first")
    out["flips"] = [
        float((wide[m] != wide[p]).sum()) if m in wide and p in wide else float("nan")
        for m, p in zip(out["model_id"], out["parent_id"])
    ]
    return out


def run_sensitivity(run_dir: Path) -> pd.DataFrame:
    """`sensitivity_of` on a run folder (reads the clean predictions of the single-layer models and their parents)."""
    meta, _ = run_meta(run_dir)
    models = load(run_dir, MODELS_TABLE).to_pandas()
    evals = load(run_dir, EVALUATIONS_TABLE, EVALUATION_SUMMARY).to_pandas()
    single = models[models["scope"].map(layer_of).notna()]
    ids = sorted(set(single["model_id"]) | set(single["parent_id"].dropna()))
    return sensitivity_of(models, evals, _clean_predictions(run_dir, ids, meta["num_classes"]))


def sensitivity_grid(table: pd.DataFrame, metric: str, method: str | None = None) -> pd.DataFrame:
    """Layer × sparsity of one metric (mean over replicates) for one method (default: the first)."""
    if table.empty:
        return pd.DataFrame()
    method = method if method is not None else str(table["method"].iloc[0])
    sub = table[table["method"] == method]
    order = list(dict.fromkeys(sub["layer"]))
    grid = sub.pivot_table(index="layer", columns="target_sparsity", values=metric, aggfunc="mean")
    return grid.reindex(order)
