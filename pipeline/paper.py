"""`python -m pipeline paper RUN`: the paper's quantitative claims (seeds/000, §5.3–7.3) against a run.

For each claim: the paper's value, the run's, and whether it reproduces (yes, partly, no, or
n/a when the run cannot measure it). Torch-free: it reads the store only. Models at chance
(`store.stats.at_chance`, the rule Table 1 uses) are left out of the correlations, with a note:
their robustness and geometry say nothing about what the network learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import store
from pipeline.store.stats import CHANCE_MARGIN

# Table 1 of the paper: Pearson correlation of per-sample robustness with clean geometry.
PAPER_TABLE1 = {
    "ResNet18": {"angle": -0.8148, "length": 0.3401, "margin": 0.7794},
    "VGG16": {"angle": -0.8107, "length": 0.5783, "margin": 0.8234},
    "AlexNet": {"angle": -0.8572, "length": 0.5557, "margin": 0.7681},
}
PAPER_UNTRAINED = (88.8, 6.8, 84)  # untrained LeNet-5 on MNIST: mean, std angle to the class direction; its width
STRONG = 0.5  # |r| from which a correlation counts as strong (the paper's "significant")
NEAR_90 = 10.0  # degrees: "near 90" for the angle to unrelated class directions


@dataclass(frozen=True)
class Claim:
    """One quantitative claim of the paper, checked on a run."""

    source: str  # where the paper makes it: "Table 1", "Fig. 3", ...
    claim: str
    paper: str
    run: str
    verdict: str  # yes | partly | no | n/a


def _verdict(hits: int, total: int) -> str:
    if total == 0:
        return "n/a"
    return "yes" if hits == total else ("no" if hits == 0 else "partly")


def _fmt(values: pd.Series) -> str:
    v = values.dropna()
    return f"median {v.median():+.2f} (range {v.min():+.2f} … {v.max():+.2f})" if len(v) else "none"


NO_CORRUPTIONS = "no corrupted evaluations (add [evaluation] corruptions): no robustness to correlate"
ALL_AT_CHANCE = "every model is at chance: no geometry to correlate"


def table1_claims(t1: pd.DataFrame, dense: list[str], why: str = NO_CORRUPTIONS) -> list[Claim]:
    """Signs and sizes of Table 1 on the models above chance; `why` says what an empty `t1` means."""
    paper = {
        m: ", ".join(f"{v[m]:+.2f} ({arch})" for arch, v in PAPER_TABLE1.items()) for m in ("angle", "length", "margin")
    }
    if t1.empty:
        return [
            Claim("Table 1", f"{m}–robustness correlation", paper[m], why, "n/a") for m in ("angle", "length", "margin")
        ]
    med = t1.median()

    def run(m: str) -> str:
        dense_r = ", ".join(f"{d} {t1.loc[d, m]:+.2f}" for d in dense if d in t1.index)
        return f"{dense_r}; {len(t1)} models above chance: {_fmt(t1[m])}"

    out = []
    for m, sign in (("angle", -1), ("length", 1), ("margin", 1)):
        hits = int((np.sign(t1[m]) == sign).sum())
        word = "negative" if sign < 0 else "positive"
        out.append(
            Claim(
                "Table 1",
                f"{m}–robustness correlation is {word}",
                paper[m],
                f"{run(m)}; {hits} {word}",
                _verdict(hits, int(t1[m].notna().sum())),
            )
        )
    for m in ("angle", "margin"):
        strong = int((t1[m].abs() >= STRONG).sum())
        out.append(
            Claim(
                "Table 1",
                f"{m} correlates strongly (|r| ≥ {STRONG})",
                paper[m],
                f"{strong} of {int(t1[m].notna().sum())} models, median |r| {t1[m].abs().median():.2f}",
                _verdict(strong, int(t1[m].notna().sum())),
            )
        )
    weaker = bool(abs(med["length"]) < min(abs(med["angle"]), abs(med["margin"])))
    out.append(
        Claim(
            "Table 1",
            "length correlates more weakly than angle and margin (moderate or weak)",
            "|r| 0.34–0.58 vs 0.77–0.86",
            f"median |r|: length {abs(med['length']):.2f}, angle {abs(med['angle']):.2f}, "
            f"margin {abs(med['margin']):.2f}",
            "yes" if weaker else "no",
        )
    )
    return out


def fig3_claims(summary: pd.DataFrame) -> list[Claim]:
    """Fig. 3 and §5.4: random vectors, an untrained model, trained models' angles."""
    dims = sorted({int(d) for d in summary["dim"]}) if len(summary) else []
    probe = np.array([2, 10, 100, 1000, *dims])
    mean, std = store.random_angle_stats(probe)
    shown = ", ".join(f"d={d}: {m:.0f}° ± {s:.1f}°" for d, m, s in zip(probe, mean, std))
    out = [
        Claim(
            "Fig. 3 (top)",
            "angle between random vectors → 90° with a shrinking spread as the dimension grows",
            "converges to 90°, std shrinks",
            f"{shown} (exact, isotropic vectors)",
            "yes" if np.all(np.diff(std[:4]) < 0) else "no",
        )
    ]
    untrained = summary[summary["kind"] == "untrained"]
    m0, s0, d0 = PAPER_UNTRAINED
    if untrained.empty:
        out.append(
            Claim(
                "Fig. 3 / §5.4",
                "an untrained model's samples are about 90° from their class direction",
                f"{m0}° ± {s0}° (LeNet-5, width {d0})",
                "no untrained model in this run (build one with [train] epochs = 0)",
                "n/a",
            )
        )
    else:
        m, s = store.pooled(untrained["n"], untrained["angle_mean"], untrained["angle_std"])
        d = int(untrained["dim"].max())
        r = float(store.random_angle_stats(np.array([d]))[1][0])
        ok = abs(m - 90) <= r and s <= 2 * r
        out.append(
            Claim(
                "Fig. 3 / §5.4",
                "an untrained model's samples are about 90° from their class direction",
                f"{m0}° ± {s0}° (LeNet-5, width {d0})",
                f"{m:.1f}° ± {s:.1f}° (width {d}; random vectors 90° ± {r:.1f}°)",
                "yes" if ok else "no",
            )
        )
    trained = summary[summary["kind"] == "dense"]
    if trained.empty:
        out.append(
            Claim(
                "§5.4",
                "trained models: most samples above 30° from their class direction, ~90° from the others",
                "most above 30°; unrelated ≈ 90°",
                "no trained dense model",
                "n/a",
            )
        )
        return out
    above = trained["above_30"]
    out.append(
        Claim(
            "§5.4",
            "trained models: most samples are more than 30° from their class direction",
            "most above 30°",
            ", ".join(f"{a:.0%}" for a in above) + " of the samples (dense)",
            _verdict(int((above > 0.5).sum()), len(above)),
        )
    )
    other = trained["other_mean"]
    out.append(
        Claim(
            "§5.4",
            "trained models: samples are near 90° from the unrelated class directions",
            "near 90°",
            ", ".join(f"{o:.1f}°" for o in other) + " (dense, mean)",
            _verdict(int(((other - 90).abs() <= NEAR_90).sum()), len(other)),
        )
    )
    if trained["dim"].nunique() < 2:
        out.append(
            Claim(
                "Fig. 3 (bottom)",
                "a wider last feature layer gives larger angles with a smaller spread",
                "mean up, std down with width",
                f"one width ({dims[-1] if dims else '?'}) in this run",
                "n/a",
            )
        )
    else:
        t = trained.sort_values("dim")
        up = bool(np.all(np.diff(t["angle_mean"]) > 0)) and bool(np.all(np.diff(t["angle_std"]) < 0))
        out.append(
            Claim(
                "Fig. 3 (bottom)",
                "a wider last feature layer gives larger angles with a smaller spread",
                "mean up, std down with width",
                ", ".join(f"{d}: {m:.1f}° ± {s:.1f}°" for d, m, s in zip(t["dim"], t["angle_mean"], t["angle_std"])),
                "yes" if up else "no",
            )
        )
    return out


def fig7_claims(models: pd.DataFrame, evals: pd.DataFrame) -> list[Claim]:
    """Fig. 7: magnitude pruning without fine-tuning moves the clean geometry the wrong way
    (angle up, length and margin down), the more the more is pruned."""
    clean = evals[evals["corruption"] == store.CLEAN].set_index("model_id")
    picked = models[
        (models["method"] == "magnitude")
        & (models["finetune_epochs"].fillna(0) == 0)
        & (models["schedule"].fillna("oneshot") == "oneshot")
        & models["parent_id"].notna()
    ]
    paper = "angle ↑, length ↓, margin ↓ (10 % barely moves, 30 % notably, 50–70 % strongly)"
    if picked.empty:
        return [
            Claim(
                "Fig. 7",
                "magnitude pruning without fine-tuning: angle ↑, length ↓, margin ↓",
                paper,
                "no one-shot magnitude model without fine-tuning in this run",
                "n/a",
            )
        ]
    out = []
    for metric, sign in (("angle", 1), ("length", -1), ("margin", -1)):
        deltas = []
        for parent, g in picked.groupby("parent_id"):
            base = clean.loc[parent, f"mean_{metric}"]
            for r in g.sort_values("sparsity").itertuples():
                deltas.append((r.sparsity, clean.loc[r.model_id, f"mean_{metric}"] - base))
        deltas.sort()
        hits = sum(1 for _, d in deltas if np.sign(d) == sign)
        grows = abs(deltas[-1][1]) >= abs(deltas[0][1])
        word = "↑" if sign > 0 else "↓"
        verdict = _verdict(hits, len(deltas))
        if verdict == "yes" and not grows:
            verdict = "partly"
        out.append(
            Claim(
                "Fig. 7",
                f"magnitude pruning without fine-tuning: mean clean {metric} {word} vs dense, growing with sparsity",
                paper,
                ", ".join(f"{s:.0%}: {d:+.3f}" for s, d in deltas) + f" ({hits} of {len(deltas)} {word})",
                verdict,
            )
        )
    return out


def fig10_claims(
    changes: dict[str, dict[str, np.ndarray]], models: pd.DataFrame, accuracy: dict[str, float]
) -> list[Claim]:
    """Fig. 10: an MPT model's relative margin change under corruption is smaller than the dense model's,
    over every corruption. `changes`: model → corruption → relative margin changes (all severities)."""
    paper = "MPT (95 % pruned, 91 %) shifts less than dense VGG16 (91 %) over all corruptions"
    mpt = models[models["method"] == "mpt"]["model_id"].tolist()
    dense = models[models["method"] == "dense"]["model_id"].tolist()
    if not mpt or not dense or not changes:
        why = "no MPT model" if not mpt else ("no dense model" if not dense else "no corrupted evaluations")
        return [
            Claim(
                "Fig. 10",
                "MPT's relative margin change is smaller than the dense model's",
                paper,
                f"{why} in this run",
                "n/a",
            )
        ]
    ref = dense[0]
    out = []
    for m in mpt:
        if m not in changes or ref not in changes:
            continue
        corruptions = sorted(set(changes[m]) & set(changes[ref]))
        overall = [float(np.median(store.trim(np.concatenate([changes[k][c] for c in corruptions])))) for k in (m, ref)]
        per = [float(np.nanmedian(changes[m][c])) < float(np.nanmedian(changes[ref][c])) for c in corruptions]
        smaller = overall[0] < overall[1]
        verdict = "yes" if smaller and all(per) else ("partly" if smaller or any(per) else "no")
        out.append(
            Claim(
                "Fig. 10",
                f"{m} ({accuracy.get(m, math.nan):.3f}) shifts less than {ref} ({accuracy.get(ref, math.nan):.3f})",
                paper,
                f"median relative change {overall[0]:+.3f} vs {overall[1]:+.3f} (0.5 % trimmed); "
                f"smaller in {sum(per)} of {len(per)} corruptions",
                verdict,
            )
        )
    return out


def margin_changes(
    run_dir: Path, model_id: str, sets: list[tuple[str, int]], num_classes: int
) -> dict[str, np.ndarray]:
    """Relative margin change of every sample per corruption (all its severities), untrimmed."""
    index = store.SamplesIndex(run_dir, model_id)

    def margins(corruption: str, severity: int) -> pd.Series:
        t = store.read_samples(index, store.EvalSet(corruption, severity), ["sample_id", "margin"], num_classes)
        return t.to_pandas().set_index("sample_id")["margin"]

    clean = margins(store.CLEAN, 0)
    out: dict[str, list[np.ndarray]] = {}
    for c, s in sets:
        corrupted = margins(c, s).reindex(clean.index).to_numpy()
        out.setdefault(c, []).append(store.relative_margin_change(clean.to_numpy(), corrupted))
    return {c: np.concatenate(v) for c, v in out.items()}


def check_claims(run_dir: Path) -> tuple[dict, list[Claim], list[str]]:
    """The run's metadata, every claim checked on it, and notes (models left out, margin definition)."""
    run_dir = Path(run_dir)
    meta, _ = store.run_meta(run_dir)
    models = store.load(run_dir, store.TABLES["models"]).to_pandas()
    models = models[store.main_models(models)].reset_index(drop=True)
    evals = store.load(run_dir, store.TABLES["evaluations"]).to_pandas()
    evals = evals[evals["model_id"].isin(models["model_id"])]
    table1 = store.run_table1(run_dir)
    left_out = table1.index[table1["note"].str.startswith("at chance")].tolist()
    notes = [f"margin: {store.margin_label(meta)} (run.json `margin`)"]
    if left_out:
        notes.append(
            f"{len(left_out)} model(s) at chance (clean accuracy at most the most frequent class's share "
            f"+ {CHANCE_MARGIN:.2f}) left out of the Table 1 correlations: {', '.join(left_out)}"
        )
    t1 = table1.drop(index=left_out)[["angle", "length", "margin"]].dropna(how="all")
    has_corrupted = bool((evals["corruption"] != store.CLEAN).any())
    dense = models.loc[models["method"] == "dense", "model_id"].tolist()
    claims = table1_claims(t1, dense, ALL_AT_CHANCE) if has_corrupted else table1_claims(t1.iloc[0:0], dense)
    claims += fig3_claims(store.run_angle_summary(run_dir))
    claims += fig7_claims(models, evals)
    changes = {}
    if has_corrupted:
        for m in models.loc[models["method"].isin(["mpt", "dense"]), "model_id"]:
            mine = evals[(evals["model_id"] == m) & (evals["corruption"] != store.CLEAN)]
            sets = list(zip(mine["corruption"], mine["severity"].astype(int)))
            changes[m] = margin_changes(run_dir, m, sets, meta["num_classes"])
    claims += fig10_claims(changes, models, models.set_index("model_id")["clean_accuracy"].to_dict())
    return meta, claims, notes


def render_paper(run_dir: Path) -> str:
    """The claims as text: one block per claim, the verdict first, then a tally and the notes."""
    meta, claims, notes = check_claims(run_dir)
    out = [f"The paper's claims on run {Path(run_dir).name} ({meta.get('dataset')}, {meta['num_classes']} classes)", ""]
    for c in claims:
        out += [f"[{c.verdict:^6}] {c.source}: {c.claim}", f"         paper: {c.paper}", f"         run:   {c.run}"]
    tally = pd.Series([c.verdict for c in claims]).value_counts()
    out += ["", "reproduces: " + ", ".join(f"{k} {tally.get(k, 0)}" for k in ("yes", "partly", "no", "n/a")), ""]
    out += [f"note: {n}" for n in notes]
    return "\n".join(out)
