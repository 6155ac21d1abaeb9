"""The metrics kernel against a plain per-sample, per-class reference loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.metrics import sample_metrics


def eq5_margin(x: np.ndarray, w: np.ndarray, label: int, correct: bool) -> float:
    """Paper eq. 5 for one sample, literally: min over j != label of |(W_i − W_j)·X| / ‖W_i − W_j‖
    (no bias; W_i = W_j is no hyperplane), times −1 when the prediction is wrong."""
    distances = []
    for j in range(len(w)):
        diff = [float(a) - float(c) for a, c in zip(w[label], w[j])]
        norm = math.sqrt(sum(d * d for d in diff))
        if j == label or norm == 0:
            continue
        distances.append(abs(sum(d * float(v) for d, v in zip(diff, x))) / norm)
    if not distances:
        return math.nan
    return min(distances) if correct else -min(distances)


def reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, y: np.ndarray, margin: str) -> dict[str, np.ndarray]:
    """shared/DESIGN.md §1, written as literally as possible, in float64."""
    x, w, b = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    n, c = len(x), len(w)
    out = {k: np.full(n, np.nan) for k in ("angle", "length", "margin", "confidence", "loss")}
    out["angles"] = np.full((n, c), np.nan)
    out["pred"] = np.zeros(n, np.int64)
    for i in range(n):
        length = math.sqrt(sum(v * v for v in x[i]))
        out["length"][i] = length
        for j in range(c):
            wn = math.sqrt(sum(v * v for v in w[j]))
            if length > 0 and wn > 0:
                cos = float(np.dot(w[j], x[i])) / (wn * length)
                out["angles"][i, j] = math.degrees(math.acos(min(1.0, max(-1.0, cos))))
        out["angle"][i] = out["angles"][i, y[i]]
        best = math.inf
        for j in range(c):
            diff = w[y[i]] - w[j]
            if j == y[i] or not diff.any():
                continue
            d = (float(np.dot(diff, x[i])) + b[y[i]] - b[j]) / math.sqrt(float(np.dot(diff, diff)))
            best = min(best, d)
        z = w @ x[i] + b
        out["pred"][i] = int(np.argmax(z))
        if margin == "signed":
            out["margin"][i] = best if best < math.inf else math.nan
        else:
            out["margin"][i] = eq5_margin(x[i], w, int(y[i]), out["pred"][i] == y[i])
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        out["confidence"][i] = p.max()
        out["loss"][i] = -math.log(p[y[i]])
    return out


def check(x, w, b, y, atol_deg=1e-2, margin="eq5"):
    got = sample_metrics(x, w, b, y, margin=margin)
    ref = reference(x, w, b, y, margin)
    np.testing.assert_allclose(got["angles"], ref["angles"], atol=atol_deg, equal_nan=True)
    np.testing.assert_allclose(got["angle"], ref["angle"], atol=atol_deg, equal_nan=True)
    np.testing.assert_allclose(got["length"], ref["length"], rtol=1e-5)
    np.testing.assert_allclose(got["margin"], ref["margin"], rtol=1e-4, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(got["confidence"], ref["confidence"], rtol=1e-4)
    np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got["pred"], ref["pred"])
    return got


@pytest.mark.parametrize("margin", ["eq5", "signed"])
@pytest.mark.parametrize("c", [2, 10, 37])
def test_matches_reference_loop(c, margin):
    rng = np.random.default_rng(c)
    x = rng.normal(size=(60, 16)).astype(np.float32)
    w = rng.normal(size=(c, 16)).astype(np.float32)
    b = rng.normal(size=c).astype(np.float32)
    y = rng.integers(0, c, 60)
    y[:30] = np.argmax(x[:30] @ w.T + b, axis=1)  # right and wrong predictions
    got = check(x, w, b, y, margin=margin)
    assert got["correct"].any() and (~got["correct"]).any()  # wrong predictions are part of the check


@pytest.mark.parametrize("margin", ["eq5", "signed"])
def test_thousand_classes(margin):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 24)).astype(np.float32)
    w = rng.normal(size=(1000, 24)).astype(np.float32)
    b = rng.normal(size=1000).astype(np.float32)
    check(x, w, b, rng.integers(0, 1000, 12), margin=margin)


@pytest.mark.parametrize("margin", ["eq5", "signed"])
def test_margin_positive_exactly_when_correct(margin):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5000, 8)).astype(np.float32)
    w = rng.normal(size=(5, 8)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    y = rng.integers(0, 5, 5000)
    m = sample_metrics(x, w, b, y, margin=margin)
    assert m["correct"].any() and (~m["correct"]).any()
    np.testing.assert_array_equal(m["margin"] > 0, m["correct"])


def test_eq5_takes_the_nearest_hyperplane_not_the_most_violated():
    """A wrong prediction: eq. 5 is minus the distance to the nearest hyperplane of the true class;
    the signed margin is the most violated boundary. Worked by hand in 2-D."""
    w = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], np.float32)
    x = np.array([[-1.0, 0.2]], np.float32)  # label 0; the model predicts 2
    y = np.array([0])
    eq5 = sample_metrics(x, w, None, y)
    signed = sample_metrics(x, w, None, y, margin="signed")
    assert eq5["pred"][0] == 2 and not eq5["correct"][0]
    # hyperplanes of class 0: (1, -1)·X = -1.2 at distance 1.2/√2 ≈ 0.85 (the nearest);
    # (2, 0)·X = -2 at distance 2/2 = 1 (the most violated)
    assert eq5["margin"][0] == pytest.approx(-1.2 / math.sqrt(2), rel=1e-6)
    assert signed["margin"][0] == pytest.approx(-1.0, rel=1e-6)


def test_eq5_ignores_the_bias():
    x = np.array([[1.0, 0.0]], np.float32)
    w = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    m = sample_metrics(x, w, np.array([0.0, 0.5], np.float32), np.array([0]))
    assert m["correct"][0] and m["margin"][0] == pytest.approx(1 / math.sqrt(2), rel=1e-6)
    wrong = sample_metrics(x, w, np.array([0.0, 2.0], np.float32), np.array([0]))
    assert not wrong["correct"][0] and wrong["margin"][0] == pytest.approx(-1 / math.sqrt(2), rel=1e-6)


def test_unknown_margin_definition():
    with pytest.raises(ValueError, match="eq5, signed"):
        sample_metrics(np.ones((1, 2)), np.eye(2), None, np.zeros(1, np.int64), margin="hinge")


@pytest.mark.parametrize("margin", ["eq5", "signed"])
def test_zero_feature_gives_nan_angles_and_flag(margin):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    x[1] = 0
    w = rng.normal(size=(3, 6)).astype(np.float32)
    y = np.array([0, 1, 2, 0])
    m = check(x, w, rng.normal(size=3).astype(np.float32), y, margin=margin)
    assert m["zero_feature"].tolist() == [False, True, False, False]
    assert np.isnan(m["angles"][1]).all() and np.isfinite(m["angles"][[0, 2, 3]]).all()
    assert m["length"][1] == 0 and np.isfinite(m["margin"]).all()
    if margin == "eq5":
        assert m["margin"][1] == 0  # the origin lies on every hyperplane through it


@pytest.mark.parametrize("margin", ["eq5", "signed"])
def test_identical_class_rows_are_skipped(margin):
    rng = np.random.default_rng(4)
    w = rng.normal(size=(4, 6)).astype(np.float32)
    w[2] = w[1]  # two classes share a direction: no boundary between them
    w[3] = 0  # a pruned-away head row: angle undefined, boundary still defined
    x = rng.normal(size=(50, 6)).astype(np.float32)
    b = np.zeros(4, np.float32)
    m = check(x, w, b, rng.integers(0, 4, 50), margin=margin)
    assert np.isnan(m["angles"][:, 3]).all()
    assert np.isfinite(m["margin"]).all()


def test_single_class_has_no_margin():
    x = np.ones((3, 4), np.float32)
    m = check(x, np.ones((1, 4), np.float32), np.zeros(1, np.float32), np.zeros(3, np.int64))
    assert np.isnan(m["margin"]).all() and m["correct"].all()


def test_bias_enters_the_signed_margin():
    x = np.array([[1.0, 0.0]], np.float32)
    w = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    m0 = sample_metrics(x, w, np.zeros(2, np.float32), np.array([0]), margin="signed")
    m1 = sample_metrics(x, w, np.array([0.0, 2.0], np.float32), np.array([0]), margin="signed")
    assert m0["margin"][0] == pytest.approx(1 / math.sqrt(2), rel=1e-6)
    assert m1["margin"][0] == pytest.approx(-1 / math.sqrt(2), rel=1e-6)
    assert not m1["correct"][0]


def test_chunking_is_invisible(monkeypatch):
    import pipeline.metrics as metrics

    rng = np.random.default_rng(5)
    x = rng.normal(size=(103, 8)).astype(np.float32)
    w = rng.normal(size=(7, 8)).astype(np.float32)
    y = rng.integers(0, 7, 103)
    whole = sample_metrics(x, w, None, y)
    assert (~whole["correct"]).any()
    for chunk_rows, elements in ((10, 7 * 3), (4, 7 * 11)):  # passes over 3 rows of 10-row blocks; 4-row
        monkeypatch.setattr(metrics, "CHUNK_ROWS", chunk_rows)  # products in blocks of 11 rows
        monkeypatch.setattr(metrics, "CACHE_ELEMENTS", elements)
        chunked = sample_metrics(x, w, None, y)
        for k in whole:
            np.testing.assert_allclose(whole[k], chunked[k], rtol=1e-5, atol=1e-5)  # BLAS blocking may differ


def test_gpu_passes_cover_an_evaluation_set_and_give_the_same_numbers(monkeypatch):
    """On a GPU each pass is a kernel launch: one block covers a 10,000-image set up to C = 1000;
    the GPU's sizes, run here on the CPU, give what the cache-sized chunks give."""
    import pipeline.metrics as metrics

    assert metrics.block_sizes("cuda", 1000)[0] >= 10_000 and metrics.block_sizes("cpu", 1000) == (4096, 4096, 1 << 17)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(9000, 16)).astype(np.float32)
    w = rng.normal(size=(10, 16)).astype(np.float32)
    y = rng.integers(0, 10, 9000)
    chunked = sample_metrics(x, w, None, y)
    gpu_sizes = metrics.block_sizes("cuda", 10)
    monkeypatch.setattr(metrics, "block_sizes", lambda device, c: gpu_sizes)
    whole = sample_metrics(x, w, None, y)
    for k in whole:
        np.testing.assert_allclose(whole[k], chunked[k], rtol=1e-5, atol=1e-5)


def test_empty_and_bad_shapes():
    m = sample_metrics(np.zeros((0, 4), np.float32), np.ones((3, 4), np.float32), None, np.zeros(0, np.int64))
    assert m["angles"].shape == (0, 3)
    with pytest.raises(ValueError):
        sample_metrics(np.zeros((2, 4)), np.ones((3, 5)), None, np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        sample_metrics(np.zeros((2, 4)), np.ones((3, 4)), None, np.array([0, 3]))
