"""Image classification data sets as uint8 arrays, one registered loader each.

Every loader returns an `ImageDataset`: images are uint8 of shape (N, H, W, C), labels
int64 of shape (N,). Loaders read the standard on-disk formats as distributed; nothing is
downloaded. A missing folder or a malformed file raises `PruneScopeError` naming the path
and the expected layout.
"""

from __future__ import annotations

import gzip
import inspect
import pickle
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline.errors import PruneScopeError
from pipeline.registry import Registry

STATS_CHUNK = 1024  # images per step of channel_stats
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImageDataset:
    """Train and test splits of one data set, as uint8 images (N, H, W, C)."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self.test_images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images in [0, 1] (for normalisation)."""
        images, c = self.train_images, self.train_images.shape[-1]
        total, squares, count = np.zeros(c), np.zeros(c), 0
        for start in range(0, len(images), STATS_CHUNK):  # a chunk at a time: images may be mapped from disk
            x = np.asarray(images[start : start + STATS_CHUNK], np.float64).reshape(-1, c) / 255.0
            total += x.sum(axis=0)
            squares += np.square(x).sum(axis=0)
            count += len(x)
        mean = total / max(count, 1)
        std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0.0))
        return [float(v) for v in mean], [float(max(v, 1e-3)) for v in std]


Loader = Callable[..., ImageDataset]
DATASETS: Registry[Loader] = Registry("dataset")
register_dataset = DATASETS.register


def load_dataset(
    name: str,
    root: str | Path | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    **options: Any,
) -> ImageDataset:
    """Load data set `name` from `root`, optionally keeping only the first samples of each split."""
    loader = DATASETS.get(name)
    check_options(name, options)
    ds = loader(Path(root).expanduser() if root is not None else None, **options)
    _check_arrays(ds)
    if train_limit is not None or test_limit is not None:
        ds = ImageDataset(
            ds.name,
            ds.train_images[:train_limit],
            ds.train_labels[:train_limit],
            ds.test_images[:test_limit],
            ds.test_labels[:test_limit],
            ds.class_names,
        )
    return ds


MAX_IMAGE_SIZE = 1024  # pixels a side: larger images are resized down or refused

# Every loader option: a test of its value, what the test requires, and an example. A
# parametrized test holds every registered loader's options to having a rule here.
OPTION_RULES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "test_fraction": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1,
        "must be a fraction between 0 and 1",
        "test_fraction = 0.3",
    ),
    "split_seed": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "must be a whole number >= 0",
        "split_seed = 0",
    ),
    "image_size": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_IMAGE_SIZE,
        f"must be a whole number of pixels from 1 to {MAX_IMAGE_SIZE}",
        "image_size = 32",
    ),
}


def loader_options(name: str) -> list[str]:
    """The options (keyword arguments after `root`) the loader of data set `name` takes."""
    return list(inspect.signature(DATASETS.get(name)).parameters)[1:]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Validate `[dataset] options` before anything is read: known names, types and ranges."""
    known = loader_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise PruneScopeError(
            f"[dataset] options {unknown} are not options of data set {name!r}",
            f"its options: {', '.join(known)}" if known else f"{name!r} takes no options: remove them",
        )
    for key, value in options.items():
        ok, rule, example = OPTION_RULES[key]
        if not ok(value):
            raise PruneScopeError(f"[dataset] options.{key} = {value!r} {rule}", f"e.g. options = {{ {example} }}")


def _check_arrays(ds: ImageDataset) -> None:
    for split in ("train", "test"):
        images, labels = getattr(ds, f"{split}_images"), getattr(ds, f"{split}_labels")
        assert images.dtype == np.uint8 and images.ndim == 4, (split, images.dtype, images.shape)
        assert labels.shape == (len(images),), (split, labels.shape, images.shape)
        if len(labels) and (labels.min() < 0 or labels.max() >= ds.num_classes):
            raise PruneScopeError(
                f"data set {ds.name!r}: {split} labels outside 0..{ds.num_classes - 1}",
                "check that the files belong to this data set",
            )


def _require_root(root: Path | None, name: str, layout: str) -> Path:
    if root is None:
        raise PruneScopeError(f"data set {name!r} needs a folder", f"set `root` to a folder with {layout}")
    if not root.is_dir():
        raise PruneScopeError(f"data folder {root} does not exist", f"point `root` to a folder with {layout}")
    return root


@register_dataset("digits")
def load_digits(root: Path | None = None, test_fraction: float = 0.3, split_seed: int = 0) -> ImageDataset:
    """scikit-learn's 8×8 handwritten digits (1,797 real images, shipped with the package).

    Pixel values 0..16 are scaled to 0..255; the train/test split is stratified and fixed
    by `split_seed`, so every run sees the same test samples.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(idx, test_size=test_fraction, stratify=labels, random_state=split_seed)
    train_idx.sort()
    test_idx.sort()
    return ImageDataset(
        "digits",
        images[train_idx],
        labels[train_idx],
        images[test_idx],
        labels[test_idx],
        tuple(str(i) for i in range(10)),
    )


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_LAYOUT = "the four MNIST IDX files (" + ", ".join(MNIST_FILES.values()) + ", optionally .gz)"


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (uint8 data; optionally gzipped) into an array of its stated shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise PruneScopeError(f"cannot read IDX file {path}: {exc}", "replace it with an intact copy") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise PruneScopeError(f"{path} is not an IDX file (bad magic number)", "replace it with an intact copy")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != 0x08:
        raise PruneScopeError(f"{path}: IDX type 0x{dtype_code:02x} is not unsigned byte", "use the MNIST uint8 files")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise PruneScopeError(f"{path} is truncated (header)", "replace it with an intact copy")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(shape)) if shape else 0
    if len(raw) - header != size:
        raise PruneScopeError(
            f"{path} holds {len(raw) - header} data bytes but its header says {size}",
            "the file is truncated or corrupt: replace it with an intact copy",
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_mnist_file(root: Path, stem: str) -> Path:
    for folder in (root, root / "MNIST" / "raw", root / "raw"):
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    raise PruneScopeError(f"{stem} not found in {root}", f"put {MNIST_LAYOUT} in {root}")


@register_dataset("mnist")
def load_mnist(root: Path | None = None) -> ImageDataset:
    """MNIST from its four IDX files (as distributed by LeCun et al., or torchvision's raw/)."""
    root = _require_root(root, "mnist", MNIST_LAYOUT)
    arrays = {key: read_idx(_find_mnist_file(root, stem)) for key, stem in MNIST_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise PruneScopeError(
                f"MNIST {split} files in {root} disagree: images {images.shape}, labels {labels.shape}",
                "images must be (N, rows, cols) and labels (N,)",
            )
    return ImageDataset(
        "mnist",
        arrays["train_images"][..., None].copy(),
        arrays["train_labels"].astype(np.int64),
        arrays["test_images"][..., None].copy(),
        arrays["test_labels"].astype(np.int64),
        tuple(str(i) for i in range(10)),
    )


CIFAR_LAYOUT = "cifar-10-batches-py (data_batch_1..5, test_batch, batches.meta)"


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise PruneScopeError(f"{path.name} not found in {path.parent}", f"point `root` to {CIFAR_LAYOUT}")
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise PruneScopeError(f"cannot read CIFAR batch {path}: {exc}", "replace it with an intact copy") from None
    if not isinstance(obj, dict):
        raise PruneScopeError(f"{path} is not a CIFAR batch (not a dict)", "replace it with an intact copy")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except KeyError as exc:
        raise PruneScopeError(f"CIFAR batch {path} has no {exc} entry", "replace it with an intact copy") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise PruneScopeError(
            f"CIFAR batch {path}: data {data.shape}, labels {labels.shape}",
            "expected data (N, 3072) uint8 and N labels",
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


@register_dataset("cifar10")
def load_cifar10(root: Path | None = None) -> ImageDataset:
    """CIFAR-10 from the python-pickle batches (the `cifar-10-python.tar.gz` layout)."""
    root = _require_root(root, "cifar10", CIFAR_LAYOUT)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    parts = [_cifar_batch(root / f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = _cifar_batch(root / "test_batch")
    meta = _unpickle(root / "batches.meta")
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", []))
    if len(names) != 10:
        raise PruneScopeError(f"{root / 'batches.meta'} has no 10 label_names", "replace it with an intact copy")
    return ImageDataset(
        "cifar10",
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        test_x,
        test_y,
        names,
    )


IMAGEFOLDER_LAYOUT = "train/ and test/, each with one sub-folder of images per class"


def _read_image_split(folder: Path, classes: list[str], image_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The images of one split, streamed from disk into a memory-mapped array (an anonymous
    temporary file): one image is decoded at a time and the pages are the operating system's to
    evict, so a folder of many classes never sits in memory at once."""
    from PIL import Image, UnidentifiedImageError

    files = [
        (path, label)
        for label, cls in enumerate(classes)
        if (folder / cls).is_dir()
        for path in sorted(p for p in (folder / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    ]
    if not files:
        raise PruneScopeError(f"no images found under {folder}", f"the layout is {IMAGEFOLDER_LAYOUT}")

    def opened(path: Path) -> Image.Image:
        try:
            return Image.open(path)
        except Image.DecompressionBombError:
            raise PruneScopeError(
                f"image {path} has more pixels than Pillow decodes safely (limit {Image.MAX_IMAGE_PIXELS:,})",
                "shrink the image (or remove it); image_size resizes only after decoding",
            ) from None
        except (OSError, UnidentifiedImageError) as exc:
            raise PruneScopeError(f"cannot read image {path}: {exc}", "remove or replace the file") from None

    shapes = set()
    for path, _ in files:  # headers only: the size and channels of every image, before any is decoded
        with opened(path) as img:
            gray = img.mode in ("L", "1", "I;16", "I")
            size = (image_size, image_size) if image_size is not None else img.size
            shapes.add((size[1], size[0], 1 if gray else 3))
    if len({s[:2] for s in shapes}) > 1:
        raise PruneScopeError(
            f"images under {folder} have different sizes: {sorted(shapes)[:3]}",
            "set `image_size` in the [dataset] section to resize them to one square size",
        )
    h, w, _ = next(iter(shapes))
    channels = max(s[2] for s in shapes)
    images = np.memmap(tempfile.TemporaryFile(), dtype=np.uint8, mode="w+", shape=(len(files), h, w, channels))
    for i, (path, _) in enumerate(files):
        try:
            with opened(path) as img:
                img = img.convert("L" if img.mode in ("L", "1", "I;16", "I") else "RGB")
                if image_size is not None:
                    img = img.resize((image_size, image_size), Image.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as exc:
            raise PruneScopeError(f"cannot read image {path}: {exc}", "remove or replace the file") from None
        images[i] = arr[..., None] if arr.ndim == 2 else arr  # a grey image among colour ones is repeated
    return images, np.asarray([label for _, label in files], dtype=np.int64)


@register_dataset("imagefolder")
def load_imagefolder(root: Path | None = None, image_size: int | None = None) -> ImageDataset:
    """Images in `root/train/<class>/` and `root/test/<class>/` (class names from the train folders)."""
    root = _require_root(root, "imagefolder", IMAGEFOLDER_LAYOUT)
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise PruneScopeError(f"{root} has no train/ and test/ folders", f"the layout is {IMAGEFOLDER_LAYOUT}")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise PruneScopeError(f"{root / 'train'} has no class folders", f"the layout is {IMAGEFOLDER_LAYOUT}")
    unknown = sorted(p.name for p in (root / "test").iterdir() if p.is_dir() and p.name not in classes)
    if unknown:
        raise PruneScopeError(
            f"test classes {unknown} have no train folder in {root}", "use the same class folders in train/ and test/"
        )
    train_x, train_y = _read_image_split(root / "train", classes, image_size)
    test_x, test_y = _read_image_split(root / "test", classes, image_size)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise PruneScopeError(
            f"train images are {train_x.shape[1:]} but test images {test_x.shape[1:]} in {root}",
            "set `image_size` in the [dataset] section",
        )
    return ImageDataset("imagefolder", train_x, train_y, test_x, test_y, tuple(classes))
