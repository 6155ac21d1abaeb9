"""Every loader on tiny files written in its real on-disk format, and the errors on bad input."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.datasets import DATASETS, load_dataset
from pipeline.errors import PruneScopeError


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_mnist(root: Path, n_train: int = 20, n_test: int = 10, gz: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        write_idx(root / name, arr, gz)
    return arrays


def make_cifar(root: Path, per_batch: int = 4) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f)
    return data, np.asarray(labels)


def test_registry_holds_the_four_loaders():
    assert DATASETS.names() == ["cifar10", "digits", "imagefolder", "mnist"]


def test_digits_is_real_and_fixed():
    a = load_dataset("digits")
    b = load_dataset("digits")
    assert a.train_images.dtype == np.uint8 and a.image_shape == (8, 8, 1)
    assert len(a.train_labels) + len(a.test_labels) == 1797
    np.testing.assert_array_equal(a.test_images, b.test_images)
    assert a.train_images.max() == 255
    counts = np.bincount(a.test_labels, minlength=10)
    assert counts.min() >= 50  # stratified


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_round_trip(tmp_path, gz):
    arrays = make_mnist(tmp_path, gz=gz)
    ds = load_dataset("mnist", tmp_path)
    assert ds.train_images.shape == (20, 28, 28, 1) and ds.test_images.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(ds.test_images[..., 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.train_labels, arrays["train-labels-idx1-ubyte"])


def test_mnist_truncated_file_is_a_clear_error(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PruneScopeError, match="(?s)t10k-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", tmp_path)


def test_mnist_bad_magic_and_missing(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"hello world")
    with pytest.raises(PruneScopeError, match="not an IDX file"):
        load_dataset("mnist", tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(PruneScopeError, match="train-labels-idx1-ubyte not found"):
        load_dataset("mnist", tmp_path)


def test_cifar10_pickle_round_trip(tmp_path):
    data, labels = make_cifar(tmp_path)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.train_images.shape == (20, 32, 32, 3) and ds.test_images.shape == (4, 32, 32, 3)
    assert ds.class_names[0] == "airplane" and ds.num_classes == 10
    np.testing.assert_array_equal(ds.test_images, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(ds.test_labels, labels)


def test_cifar10_corrupt_batch(tmp_path):
    make_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"\x80\x04garbage")
    with pytest.raises(PruneScopeError, match="cannot read CIFAR batch"):
        load_dataset("cifar10", tmp_path)


def test_imagefolder_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(
                    tmp_path / split / cls / f"{i}.png"
                )
    ds = load_dataset("imagefolder", tmp_path)
    assert ds.class_names == ("cat", "dog")
    assert ds.train_images.shape == (6, 12, 12, 3) and ds.test_labels.tolist() == [0, 0, 1, 1]
    resized = load_dataset("imagefolder", tmp_path, image_size=8)
    assert resized.test_images.shape == (4, 8, 8, 3)


def test_imagefolder_mixed_sizes_ask_for_image_size(tmp_path):
    for i, size in enumerate((8, 10)):
        (tmp_path / "train" / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(tmp_path / "train" / "a" / f"{i}.png")
    (tmp_path / "test" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "test" / "a" / "0.png")
    with pytest.raises(PruneScopeError, match="image_size"):
        load_dataset("imagefolder", tmp_path)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "imagefolder"])
def test_missing_folder_names_path_and_layout(tmp_path, name):
    with pytest.raises(PruneScopeError) as info:
        load_dataset(name, tmp_path / "nowhere")
    assert "nowhere" in info.value.problem and info.value.fix


def test_limits():
    ds = load_dataset("digits", train_limit=10, test_limit=5)
    assert len(ds.train_labels) == 10 and len(ds.test_labels) == 5
