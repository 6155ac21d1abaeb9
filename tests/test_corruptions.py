"""Every registered corruption held to one contract, the official-file reader, and the
robustness statistics against brute force."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from PIL import Image
from scipy import ndimage
from sklearn.datasets import load_sample_images

from pipeline import store
from pipeline.config import parse_config
from pipeline.corruptions import (
    CORRUPTION_NAMES,
    CORRUPTIONS,
    SEVERITIES,
    CorruptionOptions,
    Draws,
    _clipped_zoom,
    corrupt,
    glass_blur_moves,
    load_official,
)
from pipeline.datasets import load_dataset
from pipeline.errors import PruneScopeError
from pipeline.runner import build_run
from pipeline.store import relative_margin_change, trim
from pipeline.store import run_table1 as table1
from pipeline.units import RunContext, evalset_images
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parents[1]
DIGITS = load_dataset("digits", test_limit=60).test_images


def photo_patches(n: int = 24) -> np.ndarray:
    """Real RGB photographs (scikit-learn's sample images) cut into 32×32 patches."""
    img = load_sample_images().images[1]
    small = np.asarray(Image.fromarray(img).resize((160, 107), Image.BOX))
    return np.stack([small[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32] for r in range(3) for c in range(5)] * 2)[:n]


PHOTOS = photo_patches()


def test_registry_is_the_canonical_nineteen():
    assert CORRUPTIONS.names() == sorted(CORRUPTION_NAMES) and len(CORRUPTION_NAMES) == 19


@pytest.mark.parametrize("name", CORRUPTION_NAMES)
def test_shape_dtype_and_batch_independence(name):
    for images in (DIGITS, PHOTOS):
        ids = np.arange(100, 100 + len(images))
        whole = corrupt(images, name, 3, ids)
        assert whole.shape == images.shape and whole.dtype == np.uint8
        halves = np.concatenate([corrupt(images[:7], name, 3, ids[:7]), corrupt(images[7:], name, 3, ids[7:])])
        np.testing.assert_array_equal(whole, halves)
        reordered = corrupt(images[::-1], name, 3, ids[::-1])[::-1]
        np.testing.assert_array_equal(whole, reordered)
        assert (
            not np.array_equal(corrupt(images, name, 3, ids, CorruptionOptions(seed=1)), whole) or name in DETERMINISTIC
        )


DETERMINISTIC = {
    "defocus_blur",
    "zoom_blur",
    "gaussian_blur",
    "brightness",
    "contrast",
    "pixelate",
    "jpeg_compression",
    "saturate",
}
# These use no randomness, so a different seed gives the same image.

# Where the CIFAR-10-C constants themselves are not monotone in pixel change, or do nothing on digits:
# elastic_transform trades a large affine jitter at severity 1 for elastic deformation later;
# saturate desaturates at severities 1-2 (x0.3, x0.1) and oversaturates at 3-5, and leaves a gray
# pixel gray at 1-3 (there is no saturation to scale), so it is measured on RGB photographs;
# zoom_blur crops and zooms whole pixels as the reference does, so on 8×8 digits its severity 1
# (zooms up to 1.05: 8 pixels stay 8) leaves the image as it is.
NOT_MONOTONE_ON_DIGITS = {"elastic_transform", "saturate", "zoom_blur"}


# The reference generator's outputs (make_cifar_c.py, which made the official CIFAR-10-C files) on six
# real 32×32 photos, made by scripts/reference_corruptions.py in the reference's own environment.
REFERENCE = np.load(REPO / "tests" / "fixtures" / "cifar_c_reference.npz")
# Where equality with the reference does not apply: the reference draws from numpy's global random
# state (and, for motion_blur and snow, through ImageMagick), so its output is one draw, not a value
# PruneScope could reproduce from its per-sample streams.
NOT_COMPARABLE = {
    "gaussian_noise": "additive noise drawn by the reference's global np.random",
    "shot_noise": "Poisson noise drawn by the reference's global np.random",
    "impulse_noise": "salt-and-pepper positions drawn by skimage.util.random_noise",
    "speckle_noise": "multiplicative noise drawn by the reference's global np.random",
    "motion_blur": "random angle, and ImageMagick's MotionBlurImage (not available here)",
    "snow": "random snow layer and angle, streaked by ImageMagick",
    "frost": "random crop of frost photographs the reference does not ship",
    "fog": "random plasma fractal",
    "spatter": "random liquid layer",
    "elastic_transform": "random affine jitter and displacement field",
}


def test_every_name_is_compared_with_the_reference_or_says_why_not():
    compared = set(REFERENCE.files) & set(CORRUPTION_NAMES)
    assert compared | set(NOT_COMPARABLE) == set(CORRUPTION_NAMES) and not compared & set(NOT_COMPARABLE)
    assert compared == DETERMINISTIC | {"glass_blur"}


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_equal_to_the_reference_generator(name):
    images = REFERENCE["images"]
    for severity in SEVERITIES:
        ours = corrupt(images, name, severity, np.arange(len(images)))
        np.testing.assert_array_equal(ours, REFERENCE[name][severity - 1], err_msg=f"{name} severity {severity}")


def test_glass_blur_equals_the_reference_with_its_own_pixel_moves():
    images = REFERENCE["images"]
    for severity in SEVERITIES:
        draws = REFERENCE[f"glass_blur_draws_s{severity}"]
        moves = draws.reshape(len(images), 1 if severity <= 3 else 2, -1, 2)
        ours = glass_blur_moves(images, severity, moves)
        np.testing.assert_array_equal(ours, REFERENCE["glass_blur"][severity - 1], err_msg=f"severity {severity}")


def literal_moves(image: np.ndarray, delta: int, moves: np.ndarray, swap: bool = False) -> np.ndarray:
    """The reference's loop, position by position: `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on numpy
    views (which copies the pixel at (h', w') onto (h, w)), or with `swap` a real exchange."""
    x = image.copy()
    h, w = x.shape[:2]
    for it_moves in moves:
        positions = [(hh, ww) for hh in range(h - delta, delta, -1) for ww in range(w - delta, delta, -1)]
        for (hh, ww), (dx, dy) in zip(positions, it_moves):
            if swap:
                x[hh, ww], x[hh + dy, ww + dx] = x[hh + dy, ww + dx].copy(), x[hh, ww].copy()
            else:
                x[hh, ww], x[hh + dy, ww + dx] = x[hh + dy, ww + dx], x[hh, ww]
    return x


def test_glass_blur_pixel_moves_copy_and_follow_earlier_moves():
    """Moves of up to two pixels (64-pixel images, scale 2) include down/right ones, which read a
    pixel that has already moved: the vectorised moves equal the literal loop; a real swap differs."""
    images = np.stack([np.asarray(Image.fromarray(p).resize((64, 64), Image.BOX)) for p in PHOTOS[:3]])
    moves = np.random.default_rng(5).integers(-2, 2, (3, 2, 60 * 60, 2))
    sigma = 0.25 * 2  # severity 4 at scale 2

    def blur_save(x: np.ndarray) -> np.ndarray:
        out = ndimage.gaussian_filter(x / 255.0, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0)
        return (np.clip(out, 0, 1) * 255).astype(np.uint8)

    first = blur_save(images)
    expected = blur_save(np.stack([literal_moves(b, 2, m) for b, m in zip(first, moves)]))
    np.testing.assert_array_equal(glass_blur_moves(images, 4, moves, scale=2.0), expected)
    swapped = blur_save(np.stack([literal_moves(b, 2, m, swap=True) for b, m in zip(first, moves)]))
    assert not np.array_equal(swapped, expected)


def reference_clipped_zoom(img: np.ndarray, factor: float) -> np.ndarray:
    """make_cifar_c.py's clipped_zoom of one (H, W, C) float32 image: one scipy zoom per image."""
    h, w = img.shape[:2]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    zoomed = ndimage.zoom(img[top : top + ch, left : left + cw], (factor, factor, 1), order=1)
    trim_top, trim_left = (zoomed.shape[0] - h) // 2, (zoomed.shape[1] - w) // 2
    return zoomed[trim_top : trim_top + h, trim_left : trim_left + w]


def test_clipped_zoom_equals_scipy_bit_for_bit():
    """The batched zoom (zoom_blur, snow) gives scipy's float32 values exactly, image by image, at
    every zoom factor the corruptions use, at CIFAR, MNIST, digits and odd sizes, flat images included."""
    rng = np.random.default_rng(0)
    factors = [*np.arange(1, 1.26, 0.01), 1.25, 1.75, 2.25]
    for shape in ((32, 32, 3), (28, 28, 1), (8, 8, 1), (20, 27, 3), (64, 64, 3), (5, 5, 1)):
        x = (rng.integers(0, 256, (12, *shape)) / 255.0).astype(np.float32)
        x[:3] = x[:3, :1, :1]
        for f in factors:
            expected = np.stack([reference_clipped_zoom(img, f) for img in x])
            np.testing.assert_array_equal(_clipped_zoom(x, f).view(np.uint32), expected.view(np.uint32), f"{shape} {f}")


def test_pixelate_equals_pillow_image_by_image_at_any_size():
    """The batched BOX resizes give what Pillow gives one image at a time (the reference's calls)."""
    rng = np.random.default_rng(3)
    for shape in [(5, 32, 32, 3), (4, 28, 28, 1), (4, 8, 8, 1), (3, 80, 64, 3), (3, 33, 47, 3)]:
        images = rng.integers(0, 256, shape, dtype=np.uint8)
        h, w = shape[1:3]
        for severity, c in zip(SEVERITIES, (0.95, 0.9, 0.85, 0.75, 0.65)):
            small = (max(1, int(w * c)), max(1, int(h * c)))
            one_by_one = [
                np.asarray(Image.fromarray(im.squeeze(2) if im.shape[2] == 1 else im).resize(small, Image.BOX))
                for im in images
            ]
            expected = np.stack([np.asarray(Image.fromarray(s).resize((w, h), Image.BOX)) for s in one_by_one])
            got = corrupt(images, "pixelate", severity, np.arange(len(images)))
            np.testing.assert_array_equal(got, expected.reshape(shape), err_msg=f"{shape} severity {severity}")


def test_random_draws_depend_on_the_sample_id_only():
    """Draws for a sample are the same alone, in a run of consecutive ids, out of order or repeated,
    and differ between samples, corruptions, severities and purposes."""
    ids = np.array([7, 8, 9, 3, 8, 20])
    together = Draws((0, 5, 2), ids).uniform(1, (4, 3))
    alone = np.concatenate([Draws((0, 5, 2), [i]).uniform(1, (4, 3)) for i in ids])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together[1], together[4])
    assert len({row.tobytes() for row in together}) == 5
    for other in (Draws((0, 5, 3), ids).uniform(1, (4, 3)), Draws((0, 6, 2), ids).uniform(1, (4, 3))):
        assert not np.isin(other, together).any()
    assert not np.isin(Draws((0, 5, 2), ids).uniform(2, (4, 3)), together).any()
    z = Draws((1, 0, 1), np.arange(400)).normal(0, (32, 32, 3), 0.0, 1.0)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01 and 4.32 < np.abs(z).max() < 4.33


def test_shot_noise_follows_the_references_poisson_distribution():
    """shot_noise draws saved levels from alias tables: their frequencies match those of the reference's
    `np.uint8(np.clip(np.random.poisson(x * c) / c, 0, 1) * 255)` computed exactly from the Poisson pmf."""
    from scipy.stats import poisson

    for severity, c in ((1, 500), (3, 100), (5, 50)):
        for k in (1, 30, 128, 255):
            out = corrupt(np.full((1000, 16, 16, 1), k, np.uint8), "shot_noise", severity, np.arange(1000)).ravel()
            counts = np.arange(4 * c)
            saved = (np.clip(counts.astype(np.float32) / c, 0, 1) * 255).astype(np.int64)
            expected = np.bincount(saved, weights=poisson.pmf(counts, float(np.float32(k / 255) * c)), minlength=256)
            observed = np.bincount(out, minlength=256) / out.size
            assert np.abs(observed - expected).max() < 0.004, (severity, k)
            assert abs(out.mean() - expected @ np.arange(256)) < 0.1, (severity, k)


def mean_change(images: np.ndarray, name: str) -> list[float]:
    ids = np.arange(len(images))
    return [float(np.abs(corrupt(images, name, s, ids).astype(np.float64) - images).mean()) for s in SEVERITIES]


@pytest.mark.parametrize("name", CORRUPTION_NAMES)
def test_change_grows_with_severity_on_real_images(name):
    images = PHOTOS if name in NOT_MONOTONE_ON_DIGITS else DIGITS
    change = mean_change(images, name)
    assert min(change) > 0, change
    if name == "saturate":
        assert change[1] > change[0] and change[4] > change[3] > change[2], change
    elif name != "elastic_transform":
        assert change[-1] > change[0], change


def test_elastic_transform_deforms_at_every_severity():
    change = mean_change(DIGITS, "elastic_transform")
    assert min(change) > 5, change


def test_same_images_in_another_process():
    code = (
        "import hashlib, json, numpy as np\n"
        "from pipeline.corruptions import CORRUPTION_NAMES, corrupt\n"
        "from pipeline.datasets import load_dataset\n"
        "x = load_dataset('digits', test_limit=12).test_images\n"
        "print(json.dumps({n: hashlib.sha256(corrupt(x, n, 4, np.arange(12)).tobytes()).hexdigest()"
        " for n in CORRUPTION_NAMES}))\n"
    )
    other = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    here = {
        n: hashlib.sha256(corrupt(DIGITS[:12], n, 4, np.arange(12)).tobytes()).hexdigest() for n in CORRUPTION_NAMES
    }
    there = json.loads(other.stdout)
    assert {n for n in here if here[n] != there[n]} == set()


def test_bad_arguments():
    with pytest.raises(PruneScopeError, match="severity 6"):
        corrupt(DIGITS, "fog", 6, np.arange(len(DIGITS)))
    with pytest.raises(PruneScopeError, match="(?s)unknown corruption 'rain'.*brightness"):
        corrupt(DIGITS, "rain", 1, np.arange(len(DIGITS)))
    with pytest.raises(ValueError, match="uint8"):
        corrupt(DIGITS.astype(np.float32), "fog", 1, np.arange(len(DIGITS)))


def test_frost_from_a_folder_of_photos(tmp_path):
    Image.fromarray(load_sample_images().images[0]).save(tmp_path / "frost1.jpg")
    ids = np.arange(len(PHOTOS))
    with_photo = corrupt(PHOTOS, "frost", 5, ids, CorruptionOptions(frost_dir=str(tmp_path)))
    procedural = corrupt(PHOTOS, "frost", 5, ids)
    assert with_photo.shape == PHOTOS.shape and not np.array_equal(with_photo, procedural)
    with pytest.raises(PruneScopeError, match="no frost images"):
        corrupt(
            PHOTOS,
            "frost",
            5,
            ids,
            CorruptionOptions(frost_dir=str(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else "")),
        )


def write_official(root: Path, test_images: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    """Tiny files in the official CIFAR-10-C layout: <name>.npy severity-major, labels.npy."""
    root.mkdir(parents=True, exist_ok=True)
    n = len(test_images)
    for name in names:
        stack = np.concatenate(
            [np.clip(test_images.astype(np.int16) + 10 * s, 0, 255).astype(np.uint8) for s in SEVERITIES]
        )
        np.save(root / f"{name}.npy", stack)
    np.save(root / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    assert len(np.load(root / f"{names[0]}.npy")) == 5 * n


def test_official_files_are_read_instead_of_generated(tmp_path):
    from tests.test_datasets import make_cifar

    make_cifar(tmp_path / "cifar")
    data = load_dataset("cifar10", tmp_path / "cifar")
    write_official(tmp_path / "c10c", data.test_images, data.test_labels, ["fog", "snow"])
    np.testing.assert_array_equal(
        load_official(tmp_path / "c10c", "fog", 3, 4), np.clip(data.test_images.astype(np.int16) + 30, 0, 255)
    )
    cfg = parse_config(
        tiny_config(
            dataset={"name": "cifar10", "root": str(tmp_path / "cifar")},
            models=[{"arch": "lenet5"}],
            prune=[],
            train={"epochs": 1},
            evaluation={"corruptions": ["fog"], "severities": [2], "corrupted_root": str(tmp_path / "c10c")},
        )
    )
    ctx = RunContext(cfg, tmp_path / "run")
    np.testing.assert_array_equal(
        evalset_images(ctx, "fog", 2), np.clip(data.test_images.astype(np.int16) + 20, 0, 255)
    )
    with pytest.raises(PruneScopeError, match="gaussian_noise.npy not found"):
        evalset_images(ctx, "gaussian_noise", 1)
    np.save(tmp_path / "c10c" / "labels.npy", np.zeros(20, np.uint8) + 3)
    with pytest.raises(PruneScopeError, match="labels .* do not match"):
        evalset_images(ctx, "fog", 2)


@pytest.fixture(scope="module")
def corrupted_run(tmp_path_factory) -> Path:
    cfg = tiny_config(
        prune=[{"method": "magnitude", "sparsity": 0.7}],
        evaluation={"corruptions": ["gaussian_noise", "fog", "pixelate"], "severities": [2, 5]},
    )
    return build_run(parse_config(cfg), tmp_path_factory.mktemp("c")).run_dir


def test_corrupted_sets_are_evaluated_and_cached(corrupted_run):
    assert store.validate_run(corrupted_run) == []
    evals = pq.read_table(corrupted_run / store.EVALUATIONS).to_pandas()
    assert len(evals) == 2 * (1 + 3 * 2)
    assert sorted((corrupted_run / "corrupted").glob("*.npy"))[0].name == "fog-2.npy"
    assert len(list((corrupted_run / "corrupted").glob("*.npy"))) == 6


def test_robustness_equals_brute_force_count(corrupted_run):
    ds = store.samples_dataset(corrupted_run)
    df = ds.to_table().to_pandas()
    for model_id, g in df.groupby("model_id"):
        corrupted = g[g["corruption"] != "clean"]
        expected = corrupted.groupby("sample_id")["correct"].mean()
        clean = g[g["corruption"] == "clean"].set_index("sample_id")
        np.testing.assert_allclose(clean["robustness"].sort_index(), expected.sort_index(), rtol=1e-6)


def test_table1_equals_numpy_by_hand(corrupted_run):
    got = table1(corrupted_run)
    clean = store.samples_dataset(corrupted_run).to_table(filter=pads.field("corruption") == "clean").to_pandas()
    for model_id, g in clean.groupby("model_id"):
        for metric in ("angle", "length", "margin"):
            ok = np.isfinite(g[metric]) & np.isfinite(g["robustness"])
            expected = np.corrcoef(g.loc[ok, "robustness"], g.loc[ok, metric])[0, 1]
            assert got.loc[model_id, metric] == pytest.approx(expected, rel=1e-9)


def test_report_prints_table1(corrupted_run):
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "report", str(corrupted_run)], cwd=REPO, capture_output=True, text=True
    )
    assert "Table 1" in out.stdout and "margin" in out.stdout and out.returncode == 0


def test_relative_margin_change_and_trimming():
    clean = np.array([2.0, -1.0, 0.0, 4.0])
    corrupted = np.array([[1.0, -2.0, 1.0, 4.0], [0.0, 1.0, 1.0, 8.0]])
    change = relative_margin_change(clean, corrupted)
    np.testing.assert_allclose(change[0], [0.5, -1.0, np.nan, 0.0])
    np.testing.assert_allclose(change[1], [1.0, 2.0, np.nan, -1.0])
    values = np.concatenate([np.arange(1000.0), [np.nan]])
    kept = trim(values)
    assert kept.min() >= 4.995 and kept.max() <= 994.005 and len(kept) == 990


def test_preview_contact_sheet(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "corruptions", "--preview", str(tmp_path / "sheet.png"), "--sample", "5"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.size[0] > 500 and sheet.size[1] > 19 * 90
