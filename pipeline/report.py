"""Terminal report of a run: accuracy per model and evaluation set, and Table 1 when corrupted sets exist."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import store
from pipeline.checks import model_warnings
from pipeline.store.schema import EVALUATION_SUMMARY, EVALUATIONS_TABLE, MODELS_TABLE


def render_report(run_dir: Path) -> str:
    """Accuracy table (models × evaluation sets) and, with corrupted sets, Table 1."""
    meta, _ = store.run_meta(run_dir)
    models = store.load(run_dir, MODELS_TABLE).to_pandas()
    evals = store.load(run_dir, EVALUATIONS_TABLE, EVALUATION_SUMMARY).to_pandas()
    evals["set"] = [store.EvalSet(c, s).name for c, s in zip(evals["corruption"], evals["severity"])]
    acc = evals.pivot_table(index="model_id", columns="set", values="accuracy", aggfunc="mean")
    cols = [store.CLEAN] * (store.CLEAN in acc.columns) + sorted(c for c in acc.columns if c != store.CLEAN)
    acc = acc[cols].reindex(models["model_id"])
    info = models.set_index("model_id")[["method", "sparsity"]]
    out = [f"run {run_dir.name}: {meta.get('dataset', '?')}, {meta['num_classes']} classes, {len(models)} models", ""]
    if len(cols) > 6:
        acc = pd.DataFrame({"clean": acc.get(store.CLEAN), "corrupted (mean)": acc[cols[1:]].mean(axis=1)})
    out.append(info.join(acc).to_string(float_format=lambda v: f"{v:.3f}"))
    if len(cols) > 1:
        out += [
            "",
            f"Table 1: Pearson correlation of per-sample robustness with clean geometry "
            f"(margin: {store.margin_label(meta)})",
            store.run_table1(run_dir).to_string(float_format=lambda v: f"{v:+.3f}"),
        ]
    first = list(models["model_id"][:1])
    labels = store.clean_samples(run_dir, first, ["label"], meta["num_classes"]).column("label").to_numpy()
    notes = model_warnings(models.to_dict("records"), evals.to_dict("records"), labels)
    if notes:
        out += ["", "Warnings:"] + [f"  - {n}" for n in notes]
    return "\n".join(out)


def _empty_note(what: str, fix: str) -> str:
    return f"this run has no {what}; {fix}"


def sensitivity_report(run_dir: Path) -> tuple[pd.DataFrame, str]:
    """The per-layer sensitivity table (one row per single-layer model) and its text: for each method
    and metric, the layer × sparsity grid (mean over seeds)."""
    table = store.run_sensitivity(run_dir)
    if table.empty:
        return table, _empty_note("single-layer models", "add a [[sensitivity]] table to the config")
    out = [f"run {run_dir.name}: per-layer sensitivity (each layer pruned alone; clean test set, against the parent)"]
    for method in dict.fromkeys(table["method"]):
        for metric, label in store.SENSITIVITY_METRICS.items():
            grid = store.sensitivity_grid(table, metric, method)
            grid.columns = [f"s={c:g}" for c in grid.columns]
            fmt = (lambda v: f"{v:.0f}") if metric == "flips" else (lambda v: f"{v:+.3f}")
            out += ["", f"{method}: {label} (layer × sparsity)", grid.to_string(float_format=fmt)]
    return table, "\n".join(out)


def pie_report(run_dir: Path) -> tuple[pd.DataFrame, str]:
    """The PIE of every pruned population (Hooker et al. 2019) and its text."""
    table = store.run_pie_table(run_dir)
    if table.empty:
        return table, _empty_note("pruned models", "add [[prune]] tables to the config")
    out = [
        f"run {run_dir.name}: pruning-identified exemplars (clean test set): samples whose modal prediction over "
        "a pruned population differs from that over the dense models it was pruned from"
    ]
    if (table["mode"] == store.FLIPS).any():
        out.append(
            f"mode {store.FLIPS}: one seed per model, so PIE fall back to the samples whose prediction flipped "
            "between the pruned model and its parent (give seeds = [0, 1, 2] for populations)"
        )
    out += ["", table.set_index("population").to_string(float_format=lambda v: f"{v:.3f}")]
    return table, "\n".join(out)


def similarity_json(run_dir: Path, evalset: str = store.CLEAN) -> dict:
    """Agreement and linear CKA of every pair of the run's models on `evalset` (a set name, `clean`
    or `fog-3`), as plain JSON values (null where CKA is undefined)."""
    from pipeline.store.similarity import run_similarity

    sim = run_similarity(run_dir, store.EvalSet.parse(evalset))

    def rows(mat: np.ndarray) -> list[list[float | None]]:
        return [[None if not np.isfinite(v) else round(float(v), 6) for v in row] for row in mat]

    return {
        "run": run_dir.name,
        "evaluation_set": sim.evalset.name,
        "samples": sim.n,
        "cka_samples": sim.cka_n,
        "models": sim.model_ids,
        "agreement": rows(sim.agreement),
        "cka": rows(sim.cka),
        "notes": [*sim.warnings, *sim.notes],
    }


def render_similarity(run_dir: Path, evalset: str = store.CLEAN) -> str:
    """The agreement (and linear CKA) of every pair of models, as numbered matrices in percent."""
    data = similarity_json(run_dir, evalset)
    models = data["models"]
    out = [
        f"run {run_dir.name}: similarity of {len(models)} models on {data['evaluation_set']} "
        f"({data['samples']} samples; linear CKA on {data['cka_samples']})",
        "",
        "models:",
        *(f"  {i:3d}  {m}" for i, m in enumerate(models)),
    ]
    for key, title in (("agreement", "prediction agreement"), ("cka", "linear CKA of the last-layer features")):
        mat = pd.DataFrame(data[key], index=range(len(models)), columns=range(len(models)), dtype=float)
        if mat.isna().all().all():
            continue
        out += [
            "",
            f"{title} (%, rows and columns numbered as above):",
            (mat * 100).to_string(float_format="{:.1f}".format, na_rep="–"),
        ]
    out += [f"note: {n}" for n in data["notes"]]
    return "\n".join(out)
