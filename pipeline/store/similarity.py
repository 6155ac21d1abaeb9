"""Model similarity (issue 16): prediction agreement between every pair of models, linear CKA of
their last-layer features where the run stores them, and an MDS embedding of the models by either.

Torch-free and part of the contract package, so that the dashboard and `python -m pipeline report
--similarity` compute the same numbers from the same files.

- **agreement**(i, j): the fraction of the evaluation set's samples that models i and j predict
  as the same class (over the samples both were evaluated on).
- **linear CKA**(i, j) (Kornblith et al. 2019, "Similarity of Neural Network Representations
  Revisited"): HSIC(K_i, K_j) / sqrt(HSIC(K_i, K_i) HSIC(K_j, K_j)) with the linear kernels
  K = X Xᵀ of the feature vectors X (the input of the final linear layer); HSIC(K, L) =
  tr(K H L H) / (n − 1)², H the centring matrix. It compares representations of any widths.
  On more than `CKA_SAMPLES` samples it is computed on a seeded random subset of that size.
- **MDS**: scikit-learn's metric MDS of the dissimilarity 1 − similarity, seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipeline.store.bits import KEYS
from pipeline.store.errors import Problem, PruneScopeError
from pipeline.store.io import RESUME, conform, expected_sets, load, run_meta, set_samples
from pipeline.store.layout import CLEAN_SET, FEATURES_DIR, EvalSet, partition_dir
from pipeline.store.preds import unpack_preds
from pipeline.store.schema import EVALUATIONS_TABLE, FEATURES_TABLE, MODELS_TABLE

MEASURES = {"agreement": "prediction agreement", "cka": "linear CKA of the last-layer features"}
CKA_SAMPLES = 1000  # linear CKA on at most this many samples (a seeded subset): its Gram matrices are n × n
SEED = 0


def agreement_matrix(preds: np.ndarray) -> np.ndarray:
    """(M, M) fraction of samples on which two models predict the same class; `preds` is
    (M, N) of class indices, negative where a model has no prediction for a sample (those
    pairs of the sample are left out; NaN where two models share no sample)."""
    preds = np.asarray(preds, np.int64)
    if preds.size and preds.max() < 2**15:
        preds = preds.astype(np.int16)  # a quarter of the bytes to compare: 0.60 -> 0.45 s at 200 models × 5,200
    valid = (preds >= 0).astype(np.float64)
    both = valid @ valid.T
    same = np.empty_like(both)
    for i, row in enumerate(preds):  # one model against all: M passes, whatever the number of classes
        same[i] = ((preds == row) & (row >= 0)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(both > 0, same / both, np.nan)


def centred_gram(features: np.ndarray) -> np.ndarray:
    """H X Xᵀ H of one model's (n, d) features: the linear kernel, centred (the same as the
    kernel of the column-centred features)."""
    x = np.asarray(features, np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    return x @ x.T


def cka_matrix(features: list[np.ndarray]) -> np.ndarray:
    """(M, M) linear CKA between every pair of (n, d_i) feature matrices of the same n samples
    in the same order; NaN for a model whose features are constant (zero kernel)."""
    if not features:
        return np.zeros((0, 0))
    grams = np.empty((len(features), len(features[0]) ** 2), np.float32)  # n² per model: single precision
    for i, f in enumerate(features):
        k = centred_gram(f).ravel()
        norm = np.linalg.norm(k)
        grams[i] = k / norm if norm > 0 else np.nan
    # ⟨K_i, K_j⟩_F = tr(K_i H K_j H) for kernels already centred; the 1/(n−1)² of HSIC cancels in the ratio
    return np.clip(grams @ grams.T, 0.0, 1.0).astype(np.float64)


def mds_embedding(similarity: np.ndarray, seed: int = SEED) -> np.ndarray:
    """(M, 2) coordinates whose distances follow the dissimilarity 1 − `similarity` (scikit-learn's
    metric MDS on the precomputed matrix, classical-MDS start, seeded); fewer than 3 models
    are placed on a line."""
    from sklearn.manifold import MDS

    d = 1.0 - np.asarray(similarity, np.float64)
    d = np.nan_to_num((d + d.T) / 2, nan=1.0)
    np.fill_diagonal(d, 0.0)
    m = len(d)
    if m < 3:
        return np.column_stack([np.arange(m) * (d[0, -1] if m == 2 else 0.0), np.zeros(m)])
    mds = MDS(n_components=2, metric="precomputed", init="classical_mds", random_state=seed, n_init=1)
    return mds.fit_transform(d)


@dataclass
class Similarity:
    """The similarity of a run's models on one evaluation set: `model_ids` (M) in models.parquet
    order, `agreement` (M, M), `cka` (M, M, NaN rows for the models without stored features),
    `n` the samples of the agreement and `cka_n` those of the CKA (0: no features); `notes` are
    about the CKA, `warnings` name stored values that were malformed and read from the samples instead."""

    evalset: EvalSet
    model_ids: list[str]
    agreement: np.ndarray
    cka: np.ndarray
    n: int
    cka_n: int
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def matrix(self, measure: str) -> np.ndarray:
        return self.cka if measure == "cka" else self.agreement

    def embedding(self, measure: str, seed: int = SEED) -> tuple[list[str], np.ndarray]:
        """The models that have the measure and their MDS coordinates by it."""
        mat = self.matrix(measure)
        keep = [i for i in range(len(self.model_ids)) if np.isfinite(mat[i, i])]
        return [self.model_ids[i] for i in keep], mds_embedding(mat[np.ix_(keep, keep)], seed)


def read_features(run_dir: Path, model_id: str, evalset: EvalSet) -> tuple[np.ndarray, np.ndarray] | None:
    """Sample ids and (n, d) features of one model on one evaluation set, or None when the run
    stores none for it. A file named after the set holds that set only (docs/store.md)."""
    part = partition_dir(run_dir, FEATURES_DIR, model_id)
    named = part / f"{evalset.name}.parquet"
    files = [named] if named.is_file() else sorted(p for p in part.glob("*.parquet") if p.name[0] not in "._")
    flt = (pc.field("corruption") == evalset.corruption) & (pc.field("severity") == evalset.severity)
    parts = []
    for path in files:
        where = f"{FEATURES_DIR}/{part.name}/{path.name}"
        try:
            table = pads.dataset(path, format="parquet").to_table(columns=["sample_id", "feature"], filter=flt)
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise Problem(where, f"is not a readable features file ({exc})", RESUME) from None
        if table.num_rows:
            dim = int(pc.list_value_length(table.column("feature")).to_numpy(zero_copy_only=False)[0])
            parts.append(conform(table, FEATURES_TABLE, ["sample_id", "feature"], {"feature_dim": dim}, where)[0])
    if not parts:
        return None
    table = pa.concat_tables(parts) if len({p.schema for p in parts}) == 1 else None
    if table is None:
        raise Problem(f"{FEATURES_DIR}/{part.name}/", "holds features of different widths", RESUME)
    flat = table.column("feature").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    ids = table.column("sample_id").to_numpy()
    return ids, flat.reshape(len(ids), -1)


def stored_preds(run_dir: Path, evalset: EvalSet, num_classes: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """The predictions on `evalset` that evaluations.parquet stores (its optional `preds`), by
    model, and warnings naming the values that are malformed (those models are read from the samples)."""
    try:
        evals = load(run_dir, EVALUATIONS_TABLE, [*KEYS, "n", "preds"])
    except PruneScopeError as exc:
        return {}, [f"{exc.problem}: the predictions come from the samples files (python -m pipeline validate)"]
    mine = pc.and_(
        pc.equal(evals.column("corruption"), evalset.corruption), pc.equal(evals.column("severity"), evalset.severity)
    )
    stored, wrong = unpack_preds(evals.filter(mine), num_classes)
    warnings = [
        f"{EVALUATIONS_TABLE.path}: the stored preds of {len(wrong)} model(s) on {evalset.label} are malformed "
        f"(model {m!r}: {what}); their predictions come from the samples (python -m pipeline validate lists them)"
        for (m, _, _), what in list(wrong.items())[:1]
    ]
    return {m: row for (m, _, _), row in stored.items()}, warnings


def run_similarity(run_dir: Path, evalset: EvalSet = CLEAN_SET, seed: int = SEED) -> Similarity:
    """Agreement and linear CKA of every pair of the run's models on `evalset` (models without
    that evaluation set are left out)."""
    run_dir = Path(run_dir)
    meta, _ = run_meta(run_dir)
    order = load(run_dir, MODELS_TABLE, ["model_id"]).column("model_id").to_pylist()
    stored, warnings = stored_preds(run_dir, evalset, meta["num_classes"])
    rest = [m for m in order if m not in stored]
    rows = set_samples(run_dir, rest, ["sample_id", "pred"], meta["num_classes"], evalset)
    present_ids = set(stored) | set(pc.unique(rows.column("model_id")).to_pylist())
    model_ids = [m for m in order if m in present_ids]
    if not model_ids:
        listed = sorted({es.name for sets in expected_sets(run_dir).values() for es in sets})
        raise PruneScopeError(
            f"no model of run {run_dir.name!r} was evaluated on {evalset.name}", f"pick one of: {', '.join(listed)}"
        )
    sample = rows.column("sample_id").to_numpy().astype(np.int64)
    n_ids = max([int(sample.max()) + 1 if len(sample) else 0, *(len(stored[m]) for m in model_ids if m in stored)])
    preds = np.full((len(model_ids), n_ids), -1, np.int64)
    row_of = {m: i for i, m in enumerate(model_ids)}
    for m in model_ids:
        if m in stored:
            preds[row_of[m], : len(stored[m])] = stored[m]
    if rows.num_rows:
        at = pc.index_in(rows.column("model_id"), value_set=pa.array(model_ids, pa.string())).to_numpy()
        preds[at.astype(np.int64), sample] = rows.column("pred").to_numpy()
    present = (preds >= 0).all(axis=0)
    agreement = agreement_matrix(preds)
    cka = np.full_like(agreement, np.nan)
    notes = []
    found = {m: read_features(run_dir, m, evalset) for m in model_ids}
    with_features = [m for m in model_ids if found[m] is not None]
    shared = set(range(n_ids)) & set(np.flatnonzero(present).tolist())
    for m in with_features:
        shared &= set(found[m][0].tolist())
    chosen = np.array(sorted(shared), np.int64)
    if len(chosen) > CKA_SAMPLES:
        chosen = np.sort(np.random.default_rng(seed).choice(chosen, CKA_SAMPLES, replace=False))
        notes.append(f"linear CKA on a random subset of {CKA_SAMPLES} of the {len(shared)} samples (seed {seed})")
    if with_features and len(chosen) > 1:
        mats = []
        for m in with_features:
            ids, feats = found[m]
            pos = np.full(max(n_ids, int(ids.max()) + 1), -1, np.int64)
            pos[ids] = np.arange(len(ids))
            mats.append(feats[pos[chosen]])
        idx = [row_of[m] for m in with_features]
        cka[np.ix_(idx, idx)] = cka_matrix(mats)
    missing = len(model_ids) - len(with_features)
    if missing and with_features:
        notes.append(f"{missing} of {len(model_ids)} models have no stored features on {evalset.label}: no CKA")
    elif not with_features:
        notes.append(f'the run stores no features on {evalset.label}: no CKA ([evaluation] features = "clean")')
    return Similarity(
        evalset, model_ids, agreement, cka, int(present.sum()), len(chosen) if with_features else 0, notes, warnings
    )
